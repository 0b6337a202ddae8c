/*
 * p11uri: RFC 7512 "pkcs11:" URIs.
 *
 * A small opaque type with parse, format and getters.  Plain C: no OpenSSL,
 * no PKCS#11 calls.  Values are stored percent-decoded, as byte strings (an
 * "id" is binary and may contain NUL bytes); every getter also hands back a
 * NUL-terminated copy for convenience, with the true length beside it.
 */
#ifndef PRIMUS_P11URI_H
#define PRIMUS_P11URI_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct p11_uri p11_uri;

/* The attributes RFC 7512 defines, path first, then query. */
typedef enum p11_uri_attr {
    P11_URI_TOKEN = 0,
    P11_URI_MANUFACTURER,
    P11_URI_SERIAL,
    P11_URI_MODEL,
    P11_URI_LIBRARY_MANUFACTURER,
    P11_URI_LIBRARY_DESCRIPTION,
    P11_URI_LIBRARY_VERSION,
    P11_URI_OBJECT,
    P11_URI_TYPE,
    P11_URI_ID,
    P11_URI_SLOT_DESCRIPTION,
    P11_URI_SLOT_MANUFACTURER,
    P11_URI_SLOT_ID,
    /* query attributes */
    P11_URI_PIN_SOURCE,
    P11_URI_PIN_VALUE,
    P11_URI_MODULE_NAME,
    P11_URI_MODULE_PATH,
    P11_URI_ATTR_COUNT
} p11_uri_attr;

/* Values of the "type" attribute (RFC 7512 section 2.3). */
typedef enum p11_uri_type {
    P11_URI_TYPE_NONE = 0, /* no type= in the URI */
    P11_URI_TYPE_PUBLIC,
    P11_URI_TYPE_PRIVATE,
    P11_URI_TYPE_CERT,
    P11_URI_TYPE_SECRET_KEY,
    P11_URI_TYPE_DATA
} p11_uri_type;

typedef enum p11_uri_result {
    P11_URI_OK = 0,
    P11_URI_ERR_SCHEME,       /* does not start with "pkcs11:" */
    P11_URI_ERR_SYNTAX,       /* an attribute without '=', an empty name, ... */
    P11_URI_ERR_PERCENT,      /* '%' not followed by two hex digits */
    P11_URI_ERR_BAD_CHAR,     /* a character that must be percent-encoded appears raw */
    P11_URI_ERR_UNKNOWN_ATTR, /* an attribute RFC 7512 does not define and not "x-..." */
    P11_URI_ERR_DUPLICATE,    /* the same attribute twice */
    P11_URI_ERR_BAD_VALUE,    /* a value the attribute cannot take (type, slot-id, library-version) */
    P11_URI_ERR_TOO_LONG,     /* longer than the PKCS#11 field the attribute matches */
    P11_URI_ERR_CONFLICT,     /* pin-source and pin-value both given */
    P11_URI_ERR_MEMORY
} p11_uri_result;

/* What went wrong, where, and with which attribute. */
typedef struct p11_uri_error {
    p11_uri_result code;
    size_t offset;        /* byte offset in the input where the fault was seen */
    char attribute[64];   /* the attribute at fault, "" when none */
    char message[256];    /* a sentence: what is wrong and how to fix it */
} p11_uri_error;

/* Parse a NUL-terminated string.  On failure *out is NULL and err (when not
 * NULL) says why.  The URI is validated completely: unknown attributes are
 * an error (vendor "x-" attributes are kept), duplicates are an error. */
p11_uri_result p11_uri_parse(const char *text, p11_uri **out, p11_uri_error *err);
/* The same on a byte string that may contain NUL bytes (a raw NUL is an error). */
p11_uri_result p11_uri_parse_n(const char *text, size_t len, p11_uri **out,
                               p11_uri_error *err);

p11_uri *p11_uri_new(void);
p11_uri *p11_uri_dup(const p11_uri *uri);
void p11_uri_free(p11_uri *uri);

/* Canonical form: path attributes in the order of p11_uri_attr, then path
 * vendor attributes in input order, then query attributes likewise; "id"
 * always fully percent-encoded; other values encode only what RFC 7512
 * requires.  The result parses back to an equal URI.  malloc'd; NULL on
 * allocation failure. */
#define P11_URI_FORMAT_DEFAULT 0u
#define P11_URI_FORMAT_OMIT_PIN 1u   /* leave pin-value out (for display and logs) */
#define P11_URI_FORMAT_OMIT_QUERY 2u /* path attributes only */
char *p11_uri_format(const p11_uri *uri, unsigned flags);

/* Getters: NULL when the attribute is absent.  The value is decoded and
 * NUL-terminated; *len (when not NULL) is its length without the NUL. */
const char *p11_uri_get(const p11_uri *uri, p11_uri_attr attr, size_t *len);
int p11_uri_has(const p11_uri *uri, p11_uri_attr attr);
/* Setters take decoded bytes; value NULL removes the attribute.  They check
 * the value the way the parser would and return P11_URI_ERR_BAD_VALUE /
 * P11_URI_ERR_TOO_LONG when it could not have been parsed. */
p11_uri_result p11_uri_set(p11_uri *uri, p11_uri_attr attr, const void *value, size_t len);

p11_uri_type p11_uri_get_type(const p11_uri *uri);
/* 1 and the numbers when library-version is present ("M" means "M.0"). */
int p11_uri_get_library_version(const p11_uri *uri, unsigned *major, unsigned *minor);
/* 1 and the number when slot-id is present. */
int p11_uri_get_slot_id(const p11_uri *uri, unsigned long *slot_id);

/* Vendor attributes ("x-..."), in the order they were given. */
size_t p11_uri_vendor_count(const p11_uri *uri);
int p11_uri_vendor_get(const p11_uri *uri, size_t index, const char **name,
                       const char **value, size_t *len, int *in_query);

/* True when the URI names no attribute that selects a token, slot or
 * library (a bare "pkcs11:" or one with only object/id/type).  module-name
 * and module-path count as selecting the library; pin-source, pin-value and
 * vendor attributes select nothing. */
int p11_uri_is_empty(const p11_uri *uri);

/* True when both name the same attributes with the same decoded values and
 * the same vendor attributes in the same order (what a format/parse round
 * trip preserves).  Numbers compare by value: "slot-id=007" equals
 * "slot-id=7", "library-version=3.0" equals "library-version=3". */
int p11_uri_equal(const p11_uri *a, const p11_uri *b);

const char *p11_uri_attr_name(p11_uri_attr attr);
const char *p11_uri_type_name(p11_uri_type type);
const char *p11_uri_result_name(p11_uri_result code);

/* The maximum decoded length of attributes that map to fixed PKCS#11 fields
 * (token label 32, manufacturer 32, model 16, serial 16, slot description
 * 64, ...), 0 when unbounded. */
size_t p11_uri_attr_max_len(p11_uri_attr attr);

#ifdef __cplusplus
}
#endif

#endif
