/*
 * p11uri.c: RFC 7512 "pkcs11:" URIs, parsed, validated and formatted.
 *
 * Grammar (RFC 7512 section 2.3, abridged):
 *
 *   pk11-URI   = "pkcs11:" pk11-path [ "?" pk11-query ]
 *   pk11-path  = [ pk11-pattr *(";" pk11-pattr) ]
 *   pk11-query = [ pk11-qattr *("&" pk11-qattr) ]
 *   pk11-pchar = unreserved / pk11-res-avail / "&" / pct-encoded
 *   pk11-qchar = unreserved / pk11-res-avail / "/" / "?" / "|" / pct-encoded
 *   pk11-res-avail = ":" / "[" / "]" / "@" / "!" / "$" / "'" / "(" / ")"
 *                  / "*" / "+" / "," / "="
 *   pk11-lib-ver = "library-version" "=" 1*DIGIT [ "." 1*DIGIT ]
 *   pk11-type    = "type" "=" ( "public" / "private" / "cert" / "secret-key" / "data" )
 *   pk11-slot-id = "slot-id" "=" 1*DIGIT
 *   pk11-v-pattr = "x-" 1*pk11-v-attr-nm-char "=" *pk11-pchar   (query: *pk11-qchar)
 *   pk11-v-attr-nm-char = ALPHA / DIGIT / "-" / "_"
 *
 * Decisions where the RFC leaves room, each enforced below:
 *
 *  - The scheme is matched case-insensitively (RFC 3986 section 3.1 says
 *    schemes are); the formatter writes it in lower case.
 *  - Attribute names are matched case-sensitively.  RFC 5234 would make the
 *    quoted names of the ABNF case-insensitive, but RFC 7512 only ever spells
 *    them in lower case and p11-kit and NSS match them exactly; accepting
 *    "TOKEN=" would create a second spelling that other consumers ignore or
 *    reject, so we refuse it and name the lower-case spelling in the error.
 *    The same holds for the type values.
 *  - type, slot-id and library-version are written in the ABNF without
 *    pct-encoded, so a '%' in them is refused rather than decoded.
 *  - A path attribute may appear once.  Standard query attributes may
 *    appear once; vendor query attributes may repeat (RFC 7512 section 2:
 *    duplicate vendor attributes MAY be present in the query).
 *  - pin-source and pin-value together are refused (RFC 7512 section 2:
 *    such a URI SHOULD be refused as invalid).
 *  - Values that map to fixed-size PKCS#11 fields (token label 32 bytes,
 *    ...) and are longer than the field can never match, so they are errors
 *    instead of silently matching nothing.  RFC 7512 leaves such length
 *    checks to the consumer; one of its own section 3 examples (a 34-byte
 *    token label) fails this check.
 *  - module-name, module-path and pin-source are handed to the C library as
 *    file names; a %00 in them would truncate the name, so it is refused.
 *
 * Memory: a parsed URI is one allocation.  The struct, the vendor table and
 * every decoded value live in one block sized from the input (decoding only
 * shrinks text).  Setters allocate separately and mark the value as owned.
 * Nothing here touches global state, so every function is thread-safe on
 * distinct objects.
 */
#include "p11uri.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEME "pkcs11:"
#define SCHEME_LEN 7

/* ------------------------------------------------------------------ */
/* Attribute table                                                     */

typedef enum value_kind {
    KIND_TEXT,    /* percent-decoded bytes */
    KIND_CSTRING, /* percent-decoded bytes that are used as a C string: no NUL */
    KIND_BYTES,   /* the id: binary, always fully percent-encoded on output */
    KIND_TYPE,
    KIND_VERSION,
    KIND_SLOT_ID
} value_kind;

typedef struct attr_info {
    const char *name;
    size_t name_len;
    int in_query;
    value_kind kind;
    size_t max_len;    /* 0: no fixed-size PKCS#11 field behind it */
    const char *field; /* the field that sets max_len, for messages */
} attr_info;

#define NAME(s) s, sizeof(s) - 1
static const attr_info ATTRS[P11_URI_ATTR_COUNT] = {
    [P11_URI_TOKEN] = {NAME("token"), 0, KIND_TEXT, 32, "a token label (CK_TOKEN_INFO.label)"},
    [P11_URI_MANUFACTURER] = {NAME("manufacturer"), 0, KIND_TEXT, 32,
                              "a token manufacturer (CK_TOKEN_INFO.manufacturerID)"},
    [P11_URI_SERIAL] = {NAME("serial"), 0, KIND_TEXT, 16,
                        "a token serial number (CK_TOKEN_INFO.serialNumber)"},
    [P11_URI_MODEL] = {NAME("model"), 0, KIND_TEXT, 16, "a token model (CK_TOKEN_INFO.model)"},
    [P11_URI_LIBRARY_MANUFACTURER] = {NAME("library-manufacturer"), 0, KIND_TEXT, 32,
                                      "a library manufacturer (CK_INFO.manufacturerID)"},
    [P11_URI_LIBRARY_DESCRIPTION] = {NAME("library-description"), 0, KIND_TEXT, 32,
                                     "a library description (CK_INFO.libraryDescription)"},
    [P11_URI_LIBRARY_VERSION] = {NAME("library-version"), 0, KIND_VERSION, 0, NULL},
    [P11_URI_OBJECT] = {NAME("object"), 0, KIND_TEXT, 0, NULL},
    [P11_URI_TYPE] = {NAME("type"), 0, KIND_TYPE, 0, NULL},
    [P11_URI_ID] = {NAME("id"), 0, KIND_BYTES, 0, NULL},
    [P11_URI_SLOT_DESCRIPTION] = {NAME("slot-description"), 0, KIND_TEXT, 64,
                                  "a slot description (CK_SLOT_INFO.slotDescription)"},
    [P11_URI_SLOT_MANUFACTURER] = {NAME("slot-manufacturer"), 0, KIND_TEXT, 32,
                                   "a slot manufacturer (CK_SLOT_INFO.manufacturerID)"},
    [P11_URI_SLOT_ID] = {NAME("slot-id"), 0, KIND_SLOT_ID, 0, NULL},
    [P11_URI_PIN_SOURCE] = {NAME("pin-source"), 1, KIND_CSTRING, 0, NULL},
    [P11_URI_PIN_VALUE] = {NAME("pin-value"), 1, KIND_TEXT, 0, NULL},
    [P11_URI_MODULE_NAME] = {NAME("module-name"), 1, KIND_CSTRING, 0, NULL},
    [P11_URI_MODULE_PATH] = {NAME("module-path"), 1, KIND_CSTRING, 0, NULL},
};

static const char *const TYPE_NAMES[] = {
    [P11_URI_TYPE_NONE] = NULL,
    [P11_URI_TYPE_PUBLIC] = "public",
    [P11_URI_TYPE_PRIVATE] = "private",
    [P11_URI_TYPE_CERT] = "cert",
    [P11_URI_TYPE_SECRET_KEY] = "secret-key",
    [P11_URI_TYPE_DATA] = "data",
};
#define TYPE_COUNT (sizeof(TYPE_NAMES) / sizeof(TYPE_NAMES[0]))

/* CK_VERSION holds two CK_BYTEs. */
#define VERSION_PART_MAX 255u

/* ------------------------------------------------------------------ */
/* The object                                                          */

typedef struct uri_value {
    char *data; /* NUL-terminated; NULL when the attribute is absent */
    size_t len;
    int owned; /* malloc'd by a setter (else it lives in the URI's block) */
} uri_value;

typedef struct uri_vendor {
    const char *name;
    size_t name_len;
    const char *value;
    size_t len;
    int in_query;
} uri_vendor;

struct p11_uri {
    uri_value values[P11_URI_ATTR_COUNT];
    p11_uri_type type;
    unsigned lib_major, lib_minor;
    unsigned long slot_id;
    uri_vendor *vendors;
    size_t vendor_count;
};

/* ------------------------------------------------------------------ */
/* Characters                                                          */

static int is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int is_unreserved(unsigned char c)
{
    return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static int is_res_avail(unsigned char c)
{
    switch (c) {
    case ':':
    case '[':
    case ']':
    case '@':
    case '!':
    case '$':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case '=': return 1;
    default: return 0;
    }
}

/* May c appear unencoded in a value of the path (pk11-pchar) or query (pk11-qchar)? */
static int is_raw_allowed(unsigned char c, int in_query)
{
    if (is_unreserved(c) || is_res_avail(c))
        return 1;
    if (in_query)
        return c == '/' || c == '?' || c == '|';
    return c == '&';
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int is_vendor_name(const char *name, size_t len)
{
    if (len < 3 || name[0] != 'x' || name[1] != '-')
        return 0;
    for (size_t i = 2; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!is_alnum(c) && c != '-' && c != '_')
            return 0;
    }
    return 1;
}

static int ascii_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

static int equal_ignoring_case(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
            return 0;
    return 1;
}

/* The standard attribute called name, or -1. */
static int lookup_attr(const char *name, size_t len, int ignore_case)
{
    for (int i = 0; i < P11_URI_ATTR_COUNT; i++) {
        if (ATTRS[i].name_len != len)
            continue;
        if (ignore_case ? equal_ignoring_case(ATTRS[i].name, name, len)
                        : memcmp(ATTRS[i].name, name, len) == 0)
            return i;
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* Value checks shared by the parser and the setters                   */

typedef enum value_fault {
    FAULT_NONE = 0,
    FAULT_NOT_NUMBER, /* slot-id / library-version not digits in the right shape */
    FAULT_RANGE,      /* a number too large for its field */
    FAULT_NOT_TYPE,   /* not one of the five type names */
    FAULT_ENCODED     /* a '%' in a value the ABNF writes literally */
} value_fault;

static p11_uri_type type_from_bytes(const char *v, size_t n)
{
    for (size_t t = 1; t < TYPE_COUNT; t++)
        if (strlen(TYPE_NAMES[t]) == n && memcmp(TYPE_NAMES[t], v, n) == 0)
            return (p11_uri_type)t;
    return P11_URI_TYPE_NONE;
}

static value_fault read_slot_id(const char *v, size_t n, unsigned long *out)
{
    unsigned long id = 0;
    if (n == 0)
        return FAULT_NOT_NUMBER;
    for (size_t i = 0; i < n; i++)
        if (v[i] < '0' || v[i] > '9')
            return FAULT_NOT_NUMBER;
    for (size_t i = 0; i < n; i++) {
        unsigned digit = (unsigned)(v[i] - '0');
        if (id > (ULONG_MAX - digit) / 10)
            return FAULT_RANGE;
        id = id * 10 + digit;
    }
    *out = id;
    return FAULT_NONE;
}

/* One part of a version: 1*DIGIT, at most VERSION_PART_MAX. */
static value_fault read_version_part(const char *v, size_t n, unsigned *out)
{
    unsigned part = 0;
    int too_big = 0;
    if (n == 0)
        return FAULT_NOT_NUMBER;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return FAULT_NOT_NUMBER;
        if (!too_big) {
            part = part * 10 + (unsigned)(v[i] - '0');
            too_big = part > VERSION_PART_MAX;
        }
    }
    if (too_big)
        return FAULT_RANGE;
    *out = part;
    return FAULT_NONE;
}

static value_fault read_version(const char *v, size_t n, unsigned *major, unsigned *minor)
{
    const char *dot = memchr(v, '.', n);
    value_fault f;
    if (!dot) {
        *minor = 0;
        return read_version_part(v, n, major);
    }
    /* Judge the shape first, so "3.x" says "not a version" rather than "range". */
    size_t major_len = (size_t)(dot - v);
    f = read_version_part(v, major_len, major);
    value_fault g = read_version_part(dot + 1, n - major_len - 1, minor);
    if (f == FAULT_NOT_NUMBER || g == FAULT_NOT_NUMBER)
        return FAULT_NOT_NUMBER;
    return f ? f : g;
}

/* The canonical text of a number-valued attribute, into buf. */
static size_t format_version(char *buf, size_t size, unsigned major, unsigned minor)
{
    int n = minor ? snprintf(buf, size, "%u.%u", major, minor) : snprintf(buf, size, "%u", major);
    return (size_t)n;
}

static size_t format_slot_id(char *buf, size_t size, unsigned long id)
{
    return (size_t)snprintf(buf, size, "%lu", id);
}

/* ------------------------------------------------------------------ */
/* Errors                                                              */

/* Up to 40 bytes of s, for quoting in a message: bytes that are not
 * printable ASCII become \xHH so the message stays one line, and a cut is
 * marked with "...". */
static void quote_bytes(char *out, size_t size, const char *s, size_t n)
{
    const size_t keep = 40;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i == keep || o + 8 > size) { /* room for \xHH, "..." and NUL */
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
    }
    out[o] = '\0';
}

static void set_error_attr(p11_uri_error *err, const char *name, size_t len)
{
    if (!name) {
        err->attribute[0] = '\0';
        return;
    }
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < sizeof(err->attribute); i++) {
        unsigned char c = (unsigned char)name[i];
        err->attribute[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    err->attribute[o] = '\0';
}

/* How a message starts: bare, 'attribute "x": <about its value>' or
 * 'attribute "x" <about the attribute itself>'. */
enum { PREFIX_NONE = 0, PREFIX_VALUE = 1, PREFIX_NAME = 2 };

static p11_uri_result vfail(p11_uri_error *err, p11_uri_result code, size_t offset,
                            const char *attr, size_t attr_len, int prefix, const char *fmt,
                            va_list ap)
{
    if (!err)
        return code;
    err->code = code;
    err->offset = offset;
    set_error_attr(err, attr, attr_len);

    size_t used = 0;
    if (prefix != PREFIX_NONE && attr) {
        int n = snprintf(err->message, sizeof(err->message),
                         prefix == PREFIX_VALUE ? "attribute \"%s\": " : "attribute \"%s\" ",
                         err->attribute);
        used = n > 0 ? (size_t)n : 0;
        if (used >= sizeof(err->message))
            used = sizeof(err->message) - 1;
    }
    vsnprintf(err->message + used, sizeof(err->message) - used, fmt, ap);
    return code;
}

#if defined(__GNUC__)
#define PRINTF_LIKE(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define PRINTF_LIKE(fmt, args)
#endif

/* An error about the URI as a whole (no attribute). */
PRINTF_LIKE(4, 5)
static p11_uri_result fail(p11_uri_error *err, p11_uri_result code, size_t offset, const char *fmt,
                           ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(err, code, offset, NULL, 0, PREFIX_NONE, fmt, ap);
    va_end(ap);
    return code;
}

static void clear_error(p11_uri_error *err)
{
    if (!err)
        return;
    err->code = P11_URI_OK;
    err->offset = 0;
    err->attribute[0] = '\0';
    err->message[0] = '\0';
}

/* ------------------------------------------------------------------ */
/* Parser                                                              */

typedef struct parser {
    const char *text;
    size_t len;
    p11_uri *uri;
    char *arena; /* decoded values go here; sized so it cannot overflow */
    size_t vendor_cap;
    size_t seen_at[P11_URI_ATTR_COUNT]; /* offsets, for duplicate messages */
    p11_uri_error *err;
} parser;

/* A span of the input. */
typedef struct span {
    size_t start, end;
} span;

static const char *at(const parser *p, size_t offset)
{
    return p->text + offset;
}

/* An error about the value of the attribute called name, seen at offset. */
PRINTF_LIKE(5, 6)
static p11_uri_result fail_value(parser *p, p11_uri_result code, span name, size_t offset,
                                 const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(p->err, code, offset, at(p, name.start), name.end - name.start, PREFIX_VALUE, fmt, ap);
    va_end(ap);
    return code;
}

/* An error about the attribute called name itself (unknown, repeated...). */
PRINTF_LIKE(4, 5)
static p11_uri_result fail_name(parser *p, p11_uri_result code, span name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(p->err, code, name.start, at(p, name.start), name.end - name.start, PREFIX_NAME, fmt, ap);
    va_end(ap);
    return code;
}

static int attr_is(const parser *p, span name, const char *expected)
{
    size_t n = strlen(expected);
    return name.end - name.start == n && memcmp(at(p, name.start), expected, n) == 0;
}

/* A byte for a message: '" "' and '"/"' for printable ones, else "0x1F". */
static const char *describe_char(char *buf, size_t size, unsigned char c)
{
    if (c > 0x20 && c < 0x7f)
        snprintf(buf, size, "\"%c\"", c);
    else if (c == ' ')
        snprintf(buf, size, "\" \" (space)");
    else
        snprintf(buf, size, "0x%02X", c);
    return buf;
}

/* Check the characters of value and percent-decode it into the arena.  The
 * result is NUL-terminated; *out and *out_len describe it. */
static p11_uri_result decode_value(parser *p, span name, span value, int in_query, char **out,
                                   size_t *out_len)
{
    char *dst = p->arena;
    size_t n = 0;
    for (size_t i = value.start; i < value.end; i++) {
        unsigned char c = (unsigned char)p->text[i];
        if (c == '%') {
            int complete = value.end - i >= 3;
            int hi = complete ? hex_value((unsigned char)p->text[i + 1]) : -1;
            int lo = complete ? hex_value((unsigned char)p->text[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                char shown[48];
                size_t avail = value.end - i < 3 ? value.end - i : 3;
                /* Never echo PIN bytes, not even a fragment of one. */
                if (attr_is(p, name, "pin-value"))
                    snprintf(shown, sizeof(shown), "%%...");
                else
                    quote_bytes(shown, sizeof(shown), at(p, i), avail);
                return fail_value(p, P11_URI_ERR_PERCENT, name, i,
                                  "\"%s\" at offset %zu is not a percent-escape; a \"%%\" must be "
                                  "followed by two hex digits (write a literal %% as %%25)",
                                  shown, i);
            }
            dst[n++] = (char)((hi << 4) | lo);
            i += 2;
        } else if (is_raw_allowed(c, in_query)) {
            dst[n++] = (char)c;
        } else {
            char shown_char[16];
            return fail_value(p, P11_URI_ERR_BAD_CHAR, name, i,
                              "character %s at offset %zu may not appear unencoded in the %s; "
                              "percent-encode it as %%%02X",
                              describe_char(shown_char, sizeof(shown_char), c), i,
                              in_query ? "query" : "path", c);
        }
    }
    dst[n] = '\0';
    *out = dst;
    *out_len = n;
    p->arena += n + 1;
    return P11_URI_OK;
}

/* Copy literal bytes into the arena. */
static char *arena_copy(parser *p, const char *s, size_t n)
{
    char *dst = p->arena;
    memcpy(dst, s, n);
    dst[n] = '\0';
    p->arena += n + 1;
    return dst;
}

/* Why a literal value (type, slot-id, library-version) was refused, as a
 * sentence that says how to write it instead. */
static p11_uri_result literal_error(parser *p, p11_uri_attr attr, span name, span value,
                                    value_fault fault)
{
    char shown[64];
    quote_bytes(shown, sizeof(shown), at(p, value.start), value.end - value.start);

    if (fault == FAULT_ENCODED)
        return fail_value(p, P11_URI_ERR_BAD_VALUE, name, value.start,
                          "\"%s\" is percent-encoded, but RFC 7512 writes this value literally; "
                          "write it without %%-escapes",
                          shown);
    if (attr == P11_URI_TYPE)
        return fail_value(p, P11_URI_ERR_BAD_VALUE, name, value.start,
                          "\"%s\" is not a valid type; use one of public, private, cert, "
                          "secret-key, data",
                          shown);
    if (attr == P11_URI_SLOT_ID && fault == FAULT_RANGE)
        return fail_value(p, P11_URI_ERR_BAD_VALUE, name, value.start,
                          "\"%s\" does not fit a CK_SLOT_ID (at most %lu); use a slot ID the "
                          "module reports",
                          shown, ULONG_MAX);
    if (attr == P11_URI_SLOT_ID)
        return fail_value(p, P11_URI_ERR_BAD_VALUE, name, value.start,
                          "\"%s\" is not a slot number; write the slot ID in decimal digits, "
                          "e.g. slot-id=0",
                          shown);
    if (fault == FAULT_RANGE)
        return fail_value(p, P11_URI_ERR_BAD_VALUE, name, value.start,
                          "\"%s\" is out of range; major and minor are CK_VERSION bytes, "
                          "so each must be 0 to 255",
                          shown);
    return fail_value(p, P11_URI_ERR_BAD_VALUE, name, value.start,
                      "\"%s\" is not a version; write \"M\" or \"M.m\" in decimal digits, "
                      "e.g. 3 or 2.40",
                      shown);
}

/* type, slot-id and library-version: literal text, checked and normalised
 * (slot-id=007 is stored as "7", library-version=3.0 as "3"). */
static p11_uri_result parse_literal_value(parser *p, p11_uri_attr attr, span name, span value)
{
    p11_uri *uri = p->uri;
    const char *v = at(p, value.start);
    size_t n = value.end - value.start;
    char canon[32];
    size_t canon_len = 0;
    value_fault fault = FAULT_NONE;

    if (memchr(v, '%', n))
        return literal_error(p, attr, name, value, FAULT_ENCODED);

    if (attr == P11_URI_TYPE) {
        uri->type = type_from_bytes(v, n);
        if (uri->type == P11_URI_TYPE_NONE)
            return literal_error(p, attr, name, value, FAULT_NOT_TYPE);
        canon_len = n; /* at most strlen("secret-key") */
        memcpy(canon, v, n);
    } else if (attr == P11_URI_SLOT_ID) {
        fault = read_slot_id(v, n, &uri->slot_id);
        if (fault == FAULT_NONE)
            canon_len = format_slot_id(canon, sizeof(canon), uri->slot_id);
    } else {
        fault = read_version(v, n, &uri->lib_major, &uri->lib_minor);
        if (fault == FAULT_NONE)
            canon_len = format_version(canon, sizeof(canon), uri->lib_major, uri->lib_minor);
    }
    if (fault != FAULT_NONE)
        return literal_error(p, attr, name, value, fault);

    /* The normal form is never longer than the input, so the arena bound
     * still holds. */
    uri->values[attr].data = arena_copy(p, canon, canon_len);
    uri->values[attr].len = canon_len;
    return P11_URI_OK;
}

static p11_uri_result check_decoded(parser *p, p11_uri_attr attr, span name, span value)
{
    const attr_info *info = &ATTRS[attr];
    const uri_value *val = &p->uri->values[attr];

    if (info->max_len && val->len > info->max_len)
        return fail_value(p, P11_URI_ERR_TOO_LONG, name, value.start,
                          "the value is %zu bytes, but %s holds at most %zu; shorten it to %zu "
                          "bytes or less",
                          val->len, info->field, info->max_len, info->max_len);
    if (info->kind == KIND_CSTRING && memchr(val->data, '\0', val->len))
        return fail_value(p, P11_URI_ERR_BAD_VALUE, name, value.start,
                          "the value contains %%00, which would cut the name short where it is "
                          "used; remove the %%00");
    return P11_URI_OK;
}

static p11_uri_result check_pin_conflict(parser *p, span name)
{
    const p11_uri *uri = p->uri;
    if (uri->values[P11_URI_PIN_SOURCE].data && uri->values[P11_URI_PIN_VALUE].data)
        return fail_name(p, P11_URI_ERR_CONFLICT, name,
                         "conflicts with \"%s\": RFC 7512 refuses a URI that gives both "
                         "pin-source and pin-value; keep only one (pin-source keeps the PIN out "
                         "of the URI)",
                         attr_is(p, name, "pin-value") ? "pin-source" : "pin-value");
    return P11_URI_OK;
}

static p11_uri_result parse_standard(parser *p, p11_uri_attr attr, span name, span value)
{
    const attr_info *info = &ATTRS[attr];
    p11_uri *uri = p->uri;
    p11_uri_result rc;

    if (uri->values[attr].data)
        return fail_name(p, P11_URI_ERR_DUPLICATE, name,
                         "is given twice (first at offset %zu); an attribute may appear only once, "
                         "so remove one",
                         p->seen_at[attr]);
    p->seen_at[attr] = name.start;

    if (info->kind == KIND_TYPE || info->kind == KIND_VERSION || info->kind == KIND_SLOT_ID)
        return parse_literal_value(p, attr, name, value);

    rc = decode_value(p, name, value, info->in_query, &uri->values[attr].data,
                      &uri->values[attr].len);
    if (rc == P11_URI_OK)
        rc = check_decoded(p, attr, name, value);
    if (rc == P11_URI_OK && (attr == P11_URI_PIN_SOURCE || attr == P11_URI_PIN_VALUE))
        rc = check_pin_conflict(p, name);
    return rc;
}

static p11_uri_result parse_vendor(parser *p, span name, span value, int in_query)
{
    p11_uri *uri = p->uri;
    const char *name_text = at(p, name.start);
    size_t name_len = name.end - name.start;
    p11_uri_result rc;

    /* RFC 7512 2.3 forbids duplicates in the path only. */
    if (!in_query) {
        for (size_t i = 0; i < uri->vendor_count; i++) {
            const uri_vendor *v = &uri->vendors[i];
            if (!v->in_query && v->name_len == name_len &&
                memcmp(v->name, name_text, name_len) == 0)
                return fail_name(p, P11_URI_ERR_DUPLICATE, name,
                                 "is given twice in the path; a path attribute may appear only "
                                 "once, so remove one");
        }
    }
    if (uri->vendor_count == p->vendor_cap) /* cannot happen: sized from the separators */
        return fail(p->err, P11_URI_ERR_MEMORY, name.start,
                    "internal error: more vendor attributes than separators");

    uri_vendor *v = &uri->vendors[uri->vendor_count];
    char *decoded;
    size_t decoded_len;
    rc = decode_value(p, name, value, in_query, &decoded, &decoded_len);
    if (rc != P11_URI_OK)
        return rc;
    v->value = decoded;
    v->len = decoded_len;
    v->name = arena_copy(p, name_text, name_len);
    v->name_len = name_len;
    v->in_query = in_query;
    uri->vendor_count++;
    return P11_URI_OK;
}

/* An attribute name that is neither standard (for this component) nor a
 * vendor name: say what the user most likely meant. */
static p11_uri_result unknown_attr(parser *p, span name, int in_query)
{
    const char *text = at(p, name.start);
    size_t len = name.end - name.start;
    int exact = lookup_attr(text, len, 0);
    int folded = lookup_attr(text, len, 1);

    if (exact >= 0 && ATTRS[exact].in_query && !in_query)
        return fail_name(p, P11_URI_ERR_UNKNOWN_ATTR, name,
                         "is a query attribute, not a path attribute; move it after \"?\" "
                         "(pkcs11:...?%s=...)",
                         ATTRS[exact].name);
    if (exact >= 0 && !ATTRS[exact].in_query && in_query)
        return fail_name(p, P11_URI_ERR_UNKNOWN_ATTR, name,
                         "is a path attribute, not a query attribute; move it before \"?\" "
                         "(pkcs11:%s=...;...)",
                         ATTRS[exact].name);
    if (folded >= 0)
        return fail_name(p, P11_URI_ERR_UNKNOWN_ATTR, name,
                         "is not defined by RFC 7512; attribute names are case-sensitive, "
                         "write \"%s\"",
                         ATTRS[folded].name);
    if (len >= 2 && text[0] == 'x' && text[1] == '-')
        return fail_name(p, P11_URI_ERR_UNKNOWN_ATTR, name,
                         "is not a valid vendor attribute name; write \"x-\" followed by letters, "
                         "digits, \"-\" or \"_\"");
    return fail_name(p, P11_URI_ERR_UNKNOWN_ATTR, name,
                     "is not defined by RFC 7512; use a standard %s attribute (%s) or give a "
                     "vendor attribute an \"x-\" prefix",
                     in_query ? "query" : "path",
                     in_query ? "pin-source, pin-value, module-name, module-path"
                              : "token, object, id, type, serial, slot-id, ...");
}

static p11_uri_result parse_attribute(parser *p, span attr, int in_query)
{
    const char *start = at(p, attr.start);
    const char *eq = memchr(start, '=', attr.end - attr.start);
    char shown[64];

    if (!eq)
        return fail_name(p, P11_URI_ERR_SYNTAX, attr,
                         "has no \"=\"; write name=value (an empty value is written \"name=\")");
    span name = {attr.start, (size_t)(eq - p->text)};
    span value = {name.end + 1, attr.end};
    if (name.start == name.end) {
        quote_bytes(shown, sizeof(shown), start, attr.end - attr.start);
        return fail(p->err, P11_URI_ERR_SYNTAX, attr.start,
                    "\"%s\" at offset %zu has no attribute name; write name=value", shown,
                    attr.start);
    }

    int std = lookup_attr(at(p, name.start), name.end - name.start, 0);
    if (std >= 0 && ATTRS[std].in_query == in_query)
        return parse_standard(p, (p11_uri_attr)std, name, value);
    if (std < 0 && is_vendor_name(at(p, name.start), name.end - name.start))
        return parse_vendor(p, name, value, in_query);
    return unknown_attr(p, name, in_query);
}

/* A component: attributes separated by sep.  Empty is fine; an empty
 * attribute (";;", a trailing ";") is not. */
static p11_uri_result parse_component(parser *p, span comp, char sep, int in_query)
{
    size_t pos = comp.start;
    if (comp.start == comp.end)
        return P11_URI_OK;
    for (;;) {
        const char *found = memchr(at(p, pos), sep, comp.end - pos);
        size_t end = found ? (size_t)(found - p->text) : comp.end;
        if (end == pos)
            return fail(p->err, P11_URI_ERR_SYNTAX, pos,
                        "empty attribute at offset %zu; remove the extra \"%c\"", pos, sep);
        p11_uri_result rc = parse_attribute(p, (span){pos, end}, in_query);
        if (rc != P11_URI_OK)
            return rc;
        if (!found)
            return P11_URI_OK;
        pos = end + 1;
    }
}

static size_t count_byte(const char *s, size_t n, char c)
{
    size_t count = 0;
    const char *end = s + n;
    while ((s = memchr(s, c, (size_t)(end - s))) != NULL) {
        count++;
        s++;
    }
    return count;
}

p11_uri_result p11_uri_parse_n(const char *text, size_t len, p11_uri **out, p11_uri_error *err)
{
    parser p;
    p11_uri_result rc;

    clear_error(err);
    if (out)
        *out = NULL;
    if (!text || !out)
        return fail(err, P11_URI_ERR_SYNTAX, 0, "no URI given; pass a pkcs11: URI");

    const char *nul = memchr(text, '\0', len);
    if (nul)
        return fail(err, P11_URI_ERR_BAD_CHAR, (size_t)(nul - text),
                    "raw NUL byte at offset %zu; a URI is text, percent-encode the byte as %%00",
                    (size_t)(nul - text));
    if (len < SCHEME_LEN || !equal_ignoring_case(text, SCHEME, SCHEME_LEN)) {
        char shown[72];
        quote_bytes(shown, sizeof(shown), text, len < 16 ? len : 16);
        if (len > 16) /* only the start is shown: say so */
            strcat(shown, "...");
        return fail(err, P11_URI_ERR_SCHEME, 0,
                    "\"%s\" is not a PKCS#11 URI; it must start with \"pkcs11:\", e.g. "
                    "pkcs11:token=mytoken;object=mykey",
                    shown);
    }

    /* Every attribute takes at least one separator or the start of a
     * component, and decoding only shrinks text; so one block holds all. */
    size_t max_attrs = count_byte(text, len, ';') + count_byte(text, len, '&') + 2;
    if (len > SIZE_MAX / 4 || max_attrs > (SIZE_MAX / 4) / sizeof(uri_vendor))
        return fail(err, P11_URI_ERR_MEMORY, 0, "the URI is too large to parse");
    size_t block = sizeof(p11_uri) + max_attrs * sizeof(uri_vendor) + len + 2 * max_attrs + 1;
    p11_uri *uri = calloc(1, block);
    if (!uri)
        return fail(err, P11_URI_ERR_MEMORY, 0,
                    "out of memory while parsing the URI; free memory and retry");
    uri->vendors = (uri_vendor *)(uri + 1);

    memset(&p, 0, sizeof(p));
    p.text = text;
    p.len = len;
    p.uri = uri;
    p.arena = (char *)(uri->vendors + max_attrs);
    p.vendor_cap = max_attrs;
    p.err = err;

    const char *qmark = memchr(text + SCHEME_LEN, '?', len - SCHEME_LEN);
    size_t path_end = qmark ? (size_t)(qmark - text) : len;
    rc = parse_component(&p, (span){SCHEME_LEN, path_end}, ';', 0);
    if (rc == P11_URI_OK && qmark)
        rc = parse_component(&p, (span){path_end + 1, len}, '&', 1);
    if (rc != P11_URI_OK) {
        free(uri);
        return rc;
    }
    *out = uri;
    return P11_URI_OK;
}

p11_uri_result p11_uri_parse(const char *text, p11_uri **out, p11_uri_error *err)
{
    return p11_uri_parse_n(text, text ? strlen(text) : 0, out, err);
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                          */

p11_uri *p11_uri_new(void)
{
    return calloc(1, sizeof(p11_uri));
}

void p11_uri_free(p11_uri *uri)
{
    if (!uri)
        return;
    for (int i = 0; i < P11_URI_ATTR_COUNT; i++)
        if (uri->values[i].owned)
            free(uri->values[i].data);
    free(uri);
}

p11_uri *p11_uri_dup(const p11_uri *uri)
{
    if (!uri)
        return NULL;
    size_t bytes = 0;
    for (int i = 0; i < P11_URI_ATTR_COUNT; i++)
        if (uri->values[i].data)
            bytes += uri->values[i].len + 1;
    for (size_t i = 0; i < uri->vendor_count; i++)
        bytes += uri->vendors[i].name_len + 1 + uri->vendors[i].len + 1;

    p11_uri *copy = malloc(sizeof(p11_uri) + uri->vendor_count * sizeof(uri_vendor) + bytes);
    if (!copy)
        return NULL;
    *copy = *uri;
    copy->vendors = (uri_vendor *)(copy + 1);
    char *arena = (char *)(copy->vendors + uri->vendor_count);

    for (int i = 0; i < P11_URI_ATTR_COUNT; i++) {
        uri_value *v = &copy->values[i];
        v->owned = 0;
        if (!v->data)
            continue;
        memcpy(arena, uri->values[i].data, v->len + 1);
        v->data = arena;
        arena += v->len + 1;
    }
    for (size_t i = 0; i < uri->vendor_count; i++) {
        const uri_vendor *from = &uri->vendors[i];
        uri_vendor *to = &copy->vendors[i];
        *to = *from;
        memcpy(arena, from->name, from->name_len + 1);
        to->name = arena;
        arena += from->name_len + 1;
        memcpy(arena, from->value, from->len + 1);
        to->value = arena;
        arena += from->len + 1;
    }
    return copy;
}

/* ------------------------------------------------------------------ */
/* Formatter                                                           */

typedef enum encoding {
    ENCODE_PATH,  /* only what pk11-pchar does not allow */
    ENCODE_QUERY, /* only what pk11-qchar does not allow */
    ENCODE_ALL    /* every byte (the id) */
} encoding;

/* Writes into buf when it is not NULL; always counts, so the same code
 * measures the result and then fills it. */
typedef struct sink {
    char *buf;
    size_t len;
} sink;

static void put(sink *s, const char *bytes, size_t n)
{
    if (s->buf)
        memcpy(s->buf + s->len, bytes, n);
    s->len += n;
}

static void put_encoded(sink *s, const char *v, size_t n, encoding enc)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (enc != ENCODE_ALL && is_raw_allowed(c, enc == ENCODE_QUERY)) {
            put(s, (const char *)&v[i], 1);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            put(s, esc, 3);
        }
    }
}

static void put_attr(sink *s, int *first, char sep, const char *name, size_t name_len,
                     const char *v, size_t n, encoding enc)
{
    if (!*first)
        put(s, &sep, 1);
    *first = 0;
    put(s, name, name_len);
    put(s, "=", 1);
    put_encoded(s, v, n, enc);
}

static void format_into(const p11_uri *uri, unsigned flags, sink *s)
{
    int first = 1;
    put(s, SCHEME, SCHEME_LEN);
    for (int i = 0; i < P11_URI_ATTR_COUNT; i++) {
        const uri_value *v = &uri->values[i];
        if (ATTRS[i].in_query || !v->data)
            continue;
        put_attr(s, &first, ';', ATTRS[i].name, ATTRS[i].name_len, v->data, v->len,
                 ATTRS[i].kind == KIND_BYTES ? ENCODE_ALL : ENCODE_PATH);
    }
    for (size_t i = 0; i < uri->vendor_count; i++) {
        const uri_vendor *v = &uri->vendors[i];
        if (!v->in_query)
            put_attr(s, &first, ';', v->name, v->name_len, v->value, v->len, ENCODE_PATH);
    }
    if (flags & P11_URI_FORMAT_OMIT_QUERY)
        return;

    first = 1;
    for (int i = 0; i < P11_URI_ATTR_COUNT; i++) {
        const uri_value *v = &uri->values[i];
        if (!ATTRS[i].in_query || !v->data)
            continue;
        if (i == P11_URI_PIN_VALUE && (flags & P11_URI_FORMAT_OMIT_PIN))
            continue;
        if (first)
            put(s, "?", 1);
        put_attr(s, &first, '&', ATTRS[i].name, ATTRS[i].name_len, v->data, v->len, ENCODE_QUERY);
    }
    for (size_t i = 0; i < uri->vendor_count; i++) {
        const uri_vendor *v = &uri->vendors[i];
        if (!v->in_query)
            continue;
        if (first)
            put(s, "?", 1);
        put_attr(s, &first, '&', v->name, v->name_len, v->value, v->len, ENCODE_QUERY);
    }
}

char *p11_uri_format(const p11_uri *uri, unsigned flags)
{
    if (!uri)
        return NULL;
    sink measure = {NULL, 0};
    format_into(uri, flags, &measure);
    sink fill = {malloc(measure.len + 1), 0};
    if (!fill.buf)
        return NULL;
    format_into(uri, flags, &fill);
    fill.buf[fill.len] = '\0';
    return fill.buf;
}

/* ------------------------------------------------------------------ */
/* Getters and setters                                                 */

static int valid_attr(p11_uri_attr attr)
{
    return (int)attr >= 0 && attr < P11_URI_ATTR_COUNT;
}

const char *p11_uri_get(const p11_uri *uri, p11_uri_attr attr, size_t *len)
{
    if (len)
        *len = 0;
    if (!uri || !valid_attr(attr) || !uri->values[attr].data)
        return NULL;
    if (len)
        *len = uri->values[attr].len;
    return uri->values[attr].data;
}

int p11_uri_has(const p11_uri *uri, p11_uri_attr attr)
{
    return uri && valid_attr(attr) && uri->values[attr].data != NULL;
}

static void drop_value(uri_value *v)
{
    if (v->owned)
        free(v->data);
    v->data = NULL;
    v->len = 0;
    v->owned = 0;
}

static p11_uri_result store_owned(uri_value *v, const void *bytes, size_t len)
{
    char *copy = malloc(len + 1);
    if (!copy)
        return P11_URI_ERR_MEMORY;
    if (len)
        memcpy(copy, bytes, len);
    copy[len] = '\0';
    drop_value(v);
    v->data = copy;
    v->len = len;
    v->owned = 1;
    return P11_URI_OK;
}

p11_uri_result p11_uri_set(p11_uri *uri, p11_uri_attr attr, const void *value, size_t len)
{
    if (!uri || !valid_attr(attr))
        return P11_URI_ERR_UNKNOWN_ATTR;
    uri_value *v = &uri->values[attr];
    if (!value) {
        drop_value(v);
        if (attr == P11_URI_TYPE)
            uri->type = P11_URI_TYPE_NONE;
        return P11_URI_OK;
    }

    const attr_info *info = &ATTRS[attr];
    const char *bytes = value;
    char canon[32];
    size_t canon_len;
    unsigned major, minor;
    unsigned long slot;
    p11_uri_type type;

    switch (info->kind) {
    case KIND_TYPE:
        type = type_from_bytes(bytes, len);
        if (type == P11_URI_TYPE_NONE)
            return P11_URI_ERR_BAD_VALUE;
        if (store_owned(v, bytes, len) != P11_URI_OK)
            return P11_URI_ERR_MEMORY;
        uri->type = type;
        return P11_URI_OK;
    case KIND_SLOT_ID:
        if (read_slot_id(bytes, len, &slot) != FAULT_NONE)
            return P11_URI_ERR_BAD_VALUE;
        canon_len = format_slot_id(canon, sizeof(canon), slot);
        if (store_owned(v, canon, canon_len) != P11_URI_OK)
            return P11_URI_ERR_MEMORY;
        uri->slot_id = slot;
        return P11_URI_OK;
    case KIND_VERSION:
        if (read_version(bytes, len, &major, &minor) != FAULT_NONE)
            return P11_URI_ERR_BAD_VALUE;
        canon_len = format_version(canon, sizeof(canon), major, minor);
        if (store_owned(v, canon, canon_len) != P11_URI_OK)
            return P11_URI_ERR_MEMORY;
        uri->lib_major = major;
        uri->lib_minor = minor;
        return P11_URI_OK;
    case KIND_CSTRING:
        if (memchr(bytes, '\0', len))
            return P11_URI_ERR_BAD_VALUE;
        break;
    case KIND_TEXT:
    case KIND_BYTES: break;
    }
    if (info->max_len && len > info->max_len)
        return P11_URI_ERR_TOO_LONG;
    if ((attr == P11_URI_PIN_SOURCE && uri->values[P11_URI_PIN_VALUE].data) ||
        (attr == P11_URI_PIN_VALUE && uri->values[P11_URI_PIN_SOURCE].data))
        return P11_URI_ERR_CONFLICT;
    return store_owned(v, bytes, len);
}

p11_uri_type p11_uri_get_type(const p11_uri *uri)
{
    return uri && uri->values[P11_URI_TYPE].data ? uri->type : P11_URI_TYPE_NONE;
}

int p11_uri_get_library_version(const p11_uri *uri, unsigned *major, unsigned *minor)
{
    if (!uri || !uri->values[P11_URI_LIBRARY_VERSION].data)
        return 0;
    if (major)
        *major = uri->lib_major;
    if (minor)
        *minor = uri->lib_minor;
    return 1;
}

int p11_uri_get_slot_id(const p11_uri *uri, unsigned long *slot_id)
{
    if (!uri || !uri->values[P11_URI_SLOT_ID].data)
        return 0;
    if (slot_id)
        *slot_id = uri->slot_id;
    return 1;
}

size_t p11_uri_vendor_count(const p11_uri *uri)
{
    return uri ? uri->vendor_count : 0;
}

int p11_uri_vendor_get(const p11_uri *uri, size_t index, const char **name, const char **value,
                       size_t *len, int *in_query)
{
    if (!uri || index >= uri->vendor_count)
        return 0;
    const uri_vendor *v = &uri->vendors[index];
    if (name)
        *name = v->name;
    if (value)
        *value = v->value;
    if (len)
        *len = v->len;
    if (in_query)
        *in_query = v->in_query;
    return 1;
}

int p11_uri_is_empty(const p11_uri *uri)
{
    /* Attributes that pick a token, a slot or a library (module-name and
     * module-path pick the library by file). */
    static const p11_uri_attr selectors[] = {
        P11_URI_TOKEN,           P11_URI_MANUFACTURER,         P11_URI_SERIAL,
        P11_URI_MODEL,           P11_URI_LIBRARY_MANUFACTURER, P11_URI_LIBRARY_DESCRIPTION,
        P11_URI_LIBRARY_VERSION, P11_URI_SLOT_DESCRIPTION,     P11_URI_SLOT_MANUFACTURER,
        P11_URI_SLOT_ID,         P11_URI_MODULE_NAME,          P11_URI_MODULE_PATH,
    };
    if (!uri)
        return 1;
    for (size_t i = 0; i < sizeof(selectors) / sizeof(selectors[0]); i++)
        if (uri->values[selectors[i]].data)
            return 0;
    return 1;
}

int p11_uri_equal(const p11_uri *a, const p11_uri *b)
{
    if (!a || !b)
        return a == b;
    /* Every value is stored decoded and normalised, so bytes decide. */
    for (int i = 0; i < P11_URI_ATTR_COUNT; i++) {
        const uri_value *x = &a->values[i], *y = &b->values[i];
        if (!x->data != !y->data || x->len != y->len)
            return 0;
        if (x->data && memcmp(x->data, y->data, x->len) != 0)
            return 0;
    }
    if (a->vendor_count != b->vendor_count)
        return 0;
    for (size_t i = 0; i < a->vendor_count; i++) {
        const uri_vendor *x = &a->vendors[i], *y = &b->vendors[i];
        if (x->in_query != y->in_query || x->name_len != y->name_len || x->len != y->len ||
            memcmp(x->name, y->name, x->name_len) != 0 || memcmp(x->value, y->value, x->len) != 0)
            return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* Names                                                               */

const char *p11_uri_attr_name(p11_uri_attr attr)
{
    return valid_attr(attr) ? ATTRS[attr].name : NULL;
}

const char *p11_uri_type_name(p11_uri_type type)
{
    return (size_t)type < TYPE_COUNT ? TYPE_NAMES[type] : NULL;
}

const char *p11_uri_result_name(p11_uri_result code)
{
    switch (code) {
    case P11_URI_OK: return "P11_URI_OK";
    case P11_URI_ERR_SCHEME: return "P11_URI_ERR_SCHEME";
    case P11_URI_ERR_SYNTAX: return "P11_URI_ERR_SYNTAX";
    case P11_URI_ERR_PERCENT: return "P11_URI_ERR_PERCENT";
    case P11_URI_ERR_BAD_CHAR: return "P11_URI_ERR_BAD_CHAR";
    case P11_URI_ERR_UNKNOWN_ATTR: return "P11_URI_ERR_UNKNOWN_ATTR";
    case P11_URI_ERR_DUPLICATE: return "P11_URI_ERR_DUPLICATE";
    case P11_URI_ERR_BAD_VALUE: return "P11_URI_ERR_BAD_VALUE";
    case P11_URI_ERR_TOO_LONG: return "P11_URI_ERR_TOO_LONG";
    case P11_URI_ERR_CONFLICT: return "P11_URI_ERR_CONFLICT";
    case P11_URI_ERR_MEMORY: return "P11_URI_ERR_MEMORY";
    }
    return "P11_URI_ERR_UNKNOWN";
}

size_t p11_uri_attr_max_len(p11_uri_attr attr)
{
    return valid_attr(attr) ? ATTRS[attr].max_len : 0;
}
