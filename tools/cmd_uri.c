/*
 * primusctl uri parse [--show-pin] [--json] URI
 *
 * Checks a pkcs11: URI the way the provider will read it and shows what it
 * says: the canonical form first, then each decoded attribute.  A PIN is
 * never printed unless --show-pin is given; that covers the canonical form
 * (formatted without pin-value) and the attribute list.  URI "-" reads the
 * URI from the first line of stdin, so a URI that carries a PIN need not
 * appear in the process list.
 *
 * Text output, one attribute a line:
 *   name: value        printable text (UTF-8 without control characters)
 *   name: hex:0a0b     text that is not printable
 *   id: 0a0b           the id, always hex (it is binary)
 *   pin-value: (set, hidden)
 * --json prints {"uri": ..., "attributes": [{"name", "component", and one of
 * "value" / "hex" / "hidden"}]}; an array, because vendor query attributes
 * may repeat.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "primusctl.h"
#include "p11uri.h"

#define USAGE "usage: primusctl uri parse [--show-pin] [--json] URI|-\n"

typedef struct uri_options {
    int show_pin;
    int json;
    const char *uri;
} uri_options;

static int usage_error(const char *what)
{
    fprintf(stderr, "primusctl: %s\n" USAGE, what);
    return PRIMUSCTL_USAGE;
}

/* argv: "uri" "parse" [options] URI.  Returns 0 or an exit code. */
static int read_options(int argc, char **argv, uri_options *o)
{
    if (argc < 2)
        return usage_error("uri: missing verb (parse)");
    if (strcmp(argv[1], "parse") != 0) {
        fprintf(stderr, "primusctl: uri: unknown verb \"%s\"\n" USAGE, argv[1]);
        return PRIMUSCTL_USAGE;
    }
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--show-pin") == 0) {
            o->show_pin = 1;
        } else if (strcmp(arg, "--json") == 0) {
            o->json = 1;
        } else if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(USAGE, stdout);
            return -1;
        } else if (arg[0] == '-' && arg[1] != '\0') {
            fprintf(stderr, "primusctl: uri parse: unknown option \"%s\"\n" USAGE, arg);
            return PRIMUSCTL_USAGE;
        } else if (o->uri) {
            return usage_error("uri parse: more than one URI given");
        } else {
            o->uri = arg;
        }
    }
    if (!o->uri)
        return usage_error("uri parse: missing URI");
    return 0;
}

/* The URI from the first line of stdin (for "-"), without its newline. */
static char *read_stdin_line(size_t *len)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    line[n] = '\0';
    *len = (size_t)n;
    return line;
}

/* Length of the UTF-8 sequence at s (at most n bytes) if it is a valid,
 * printable character; 0 otherwise. */
static size_t printable_utf8_char(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned long cp;
    if (c >= 0x20 && c < 0x7f)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0; /* ASCII control, DEL, stray continuation, invalid lead */
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    static const unsigned long min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_len[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0; /* overlong, out of range, surrogate */
    if (cp >= 0x80 && cp <= 0x9f)
        return 0; /* C1 controls */
    return len;
}

static int is_printable(const char *value, size_t len)
{
    const unsigned char *s = (const unsigned char *)value;
    for (size_t i = 0; i < len;) {
        size_t step = printable_utf8_char(s + i, len - i);
        if (!step)
            return 0;
        i += step;
    }
    return 1;
}

/* How one attribute is shown. */
typedef enum shown_as { SHOW_TEXT, SHOW_HEX, SHOW_HIDDEN } shown_as;

static shown_as show_kind(const char *name, const char *value, size_t len, int show_pin)
{
    if (strcmp(name, "pin-value") == 0 && !show_pin)
        return SHOW_HIDDEN;
    if (strcmp(name, "id") == 0 || !is_printable(value, len))
        return SHOW_HEX;
    return SHOW_TEXT;
}

static int print_attribute_text(const char *name, const char *value, size_t len, int show_pin)
{
    shown_as kind = show_kind(name, value, len, show_pin);
    if (kind == SHOW_HIDDEN) {
        printf("%s: (set, hidden)\n", name);
        return 0;
    }
    if (len == 0) { /* present but empty, e.g. "object=" */
        printf("%s:\n", name);
        return 0;
    }
    if (kind == SHOW_TEXT) {
        printf("%s: %.*s\n", name, (int)len, value);
        return 0;
    }
    char *hex = primusctl_hex((const unsigned char *)value, len);
    if (!hex)
        return -1;
    printf("%s: %s%s\n", name, strcmp(name, "id") == 0 ? "" : "hex:", hex);
    free(hex);
    return 0;
}

static json_t *attribute_json(const char *name, int in_query, const char *value, size_t len,
                              int show_pin)
{
    json_t *entry = json_object();
    char *hex = NULL;
    int bad = !entry;
    bad = bad || json_object_set_new(entry, "name", json_string(name));
    bad = bad || json_object_set_new(entry, "component", json_string(in_query ? "query" : "path"));
    switch (show_kind(name, value, len, show_pin)) {
    case SHOW_HIDDEN:
        bad = bad || json_object_set_new(entry, "hidden", json_true());
        break;
    case SHOW_TEXT:
        bad = bad || json_object_set_new(entry, "value", json_stringn(value, len));
        break;
    case SHOW_HEX:
        hex = primusctl_hex((const unsigned char *)value, len);
        bad = bad || !hex || json_object_set_new(entry, "hex", json_string(hex));
        free(hex);
        break;
    }
    if (bad) {
        json_decref(entry);
        return NULL;
    }
    return entry;
}

/* Standard attributes in canonical order (path, then query), each followed
 * by the vendor attributes of its component. */
static int emit_attributes(const p11_uri *uri, int show_pin, json_t *array)
{
    for (int component = 0; component < 2; component++) {
        for (int a = 0; a < P11_URI_ATTR_COUNT; a++) {
            size_t len;
            const char *value = p11_uri_get(uri, (p11_uri_attr)a, &len);
            int in_query = a >= P11_URI_PIN_SOURCE;
            if (!value || in_query != component)
                continue;
            const char *name = p11_uri_attr_name((p11_uri_attr)a);
            if (array ? json_array_append_new(array, attribute_json(name, in_query, value, len,
                                                                    show_pin))
                      : print_attribute_text(name, value, len, show_pin))
                return -1;
        }
        for (size_t i = 0; i < p11_uri_vendor_count(uri); i++) {
            const char *name, *value;
            size_t len;
            int in_query;
            p11_uri_vendor_get(uri, i, &name, &value, &len, &in_query);
            if (in_query != component)
                continue;
            if (array ? json_array_append_new(array, attribute_json(name, in_query, value, len,
                                                                    show_pin))
                      : print_attribute_text(name, value, len, show_pin))
                return -1;
        }
    }
    return 0;
}

static int report_invalid(const p11_uri_error *err, int json)
{
    if (err->attribute[0])
        fprintf(stderr, "primusctl: invalid pkcs11 URI: %s (attribute \"%s\", offset %zu)\n",
                err->message, err->attribute, err->offset);
    else
        fprintf(stderr, "primusctl: invalid pkcs11 URI: %s (offset %zu)\n", err->message,
                err->offset);
    if (json) {
        json_t *doc = json_pack("{s:b, s:{s:s, s:s, s:I, s:s}}", "valid", 0, "error", "code",
                                p11_uri_result_name(err->code), "attribute", err->attribute,
                                "offset", (json_int_t)err->offset, "message", err->message);
        if (doc)
            primusctl_print_json(doc);
    }
    return PRIMUSCTL_FAIL;
}

static int show_uri(const p11_uri *uri, const uri_options *o)
{
    unsigned flags = o->show_pin ? P11_URI_FORMAT_DEFAULT : P11_URI_FORMAT_OMIT_PIN;
    char *canonical = p11_uri_format(uri, flags);
    if (!canonical)
        goto out_of_memory;

    if (!o->json) {
        printf("%s\n", canonical);
        free(canonical);
        if (emit_attributes(uri, o->show_pin, NULL) < 0)
            goto out_of_memory;
        return PRIMUSCTL_OK;
    }

    json_t *attributes = json_array();
    json_t *doc = json_object();
    int bad = !attributes || !doc || emit_attributes(uri, o->show_pin, attributes) < 0;
    bad = bad || json_object_set_new(doc, "valid", json_true());
    bad = bad || json_object_set_new(doc, "uri", json_string(canonical));
    bad = bad || json_object_set(doc, "attributes", attributes);
    json_decref(attributes);
    free(canonical);
    if (bad) {
        json_decref(doc);
        goto out_of_memory;
    }
    primusctl_print_json(doc);
    return PRIMUSCTL_OK;

out_of_memory:
    fprintf(stderr, "primusctl: uri parse: out of memory\n");
    return PRIMUSCTL_FAIL;
}

int primusctl_uri(int argc, char **argv, primusctl_opts *opts)
{
    uri_options o = {0, opts && opts->json, NULL};
    int rc = read_options(argc, argv, &o);
    if (rc)
        return rc < 0 ? PRIMUSCTL_OK : rc;

    char *from_stdin = NULL;
    size_t len = 0;
    if (strcmp(o.uri, "-") == 0) {
        from_stdin = read_stdin_line(&len);
        if (!from_stdin) {
            fprintf(stderr, "primusctl: uri parse: no URI on stdin\n");
            return PRIMUSCTL_USAGE;
        }
    } else {
        len = strlen(o.uri);
    }

    p11_uri *uri = NULL;
    p11_uri_error err;
    if (p11_uri_parse_n(from_stdin ? from_stdin : o.uri, len, &uri, &err) != P11_URI_OK)
        rc = report_invalid(&err, o.json);
    else
        rc = show_uri(uri, &o);
    p11_uri_free(uri);
    free(from_stdin);
    return rc;
}
