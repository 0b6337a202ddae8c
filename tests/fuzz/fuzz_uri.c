/*
 * libFuzzer target for uri/p11uri.
 *
 * Any input: parse_n must not crash, and a refusal must come with a usable
 * report.  An accepted input: its canonical form must parse back to an
 * equal URI and format to the same text again, and the setters must accept
 * every value the parser accepted (the two validate by the same rules).
 * The same bytes are also read as setter calls (check_built_uri) so that
 * the formatter sees arbitrary values.  Any broken invariant aborts, which
 * libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p11uri.h"

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_uri: %s: ", #cond);                                             \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_refusal(p11_uri_result rc, const p11_uri_error *err, size_t size)
{
    CHECK(err->code == rc, "code %d vs %d", err->code, rc);
    CHECK(err->offset <= size, "offset %zu past the input (%zu)", err->offset, size);
    CHECK(memchr(err->attribute, '\0', sizeof(err->attribute)) != NULL, "attribute unterminated");
    CHECK(memchr(err->message, '\0', sizeof(err->message)) != NULL, "message unterminated");
    CHECK(strlen(err->message) > 0, "empty message for %s", p11_uri_result_name(rc));
}

/* format -> parse -> equal -> format gives the same text. */
static void check_round_trip(const p11_uri *uri, unsigned flags)
{
    p11_uri_error err;
    p11_uri *again = NULL;
    char *text = p11_uri_format(uri, flags);
    CHECK(text != NULL, "format failed");
    p11_uri_result rc = p11_uri_parse(text, &again, &err);
    CHECK(rc == P11_URI_OK, "canonical form \"%s\" does not parse: %s", text, err.message);
    if (flags == P11_URI_FORMAT_DEFAULT)
        CHECK(p11_uri_equal(uri, again), "\"%s\" parses to a different URI", text);
    char *text2 = p11_uri_format(again, flags);
    CHECK(text2 && strcmp(text, text2) == 0, "\"%s\" formats again as \"%s\"", text,
          text2 ? text2 : "(null)");
    free(text);
    free(text2);
    p11_uri_free(again);
}

/* Every value the parser kept, a setter must take back unchanged. */
static void check_setters_agree(const p11_uri *uri)
{
    p11_uri *copy = p11_uri_dup(uri);
    CHECK(copy != NULL, "dup failed");
    CHECK(p11_uri_equal(uri, copy), "dup differs");
    for (int a = 0; a < P11_URI_ATTR_COUNT; a++) {
        size_t len;
        const char *value = p11_uri_get(uri, (p11_uri_attr)a, &len);
        if (!value)
            continue;
        size_t max = p11_uri_attr_max_len((p11_uri_attr)a);
        CHECK(max == 0 || len <= max, "%s longer than its limit",
              p11_uri_attr_name((p11_uri_attr)a));
        p11_uri_result rc = p11_uri_set(copy, (p11_uri_attr)a, value, len);
        CHECK(rc == P11_URI_OK, "set(%s) refused a parsed value: %s",
              p11_uri_attr_name((p11_uri_attr)a), p11_uri_result_name(rc));
    }
    CHECK(p11_uri_equal(uri, copy), "setting parsed values changed the URI");
    p11_uri_free(copy);
}

/* The same bytes read as records (attribute, length, value bytes) and fed
 * to the setters: this reaches the formatter with arbitrary values, which
 * parsing alone reaches only through lucky percent-escapes.  Refused values
 * are fine; whatever is accepted must survive the round trip. */
static void check_built_uri(const uint8_t *data, size_t size)
{
    p11_uri *uri = p11_uri_new();
    CHECK(uri != NULL, "p11_uri_new failed");
    for (size_t i = 0; i + 2 <= size;) {
        p11_uri_attr attr = (p11_uri_attr)(data[i] % P11_URI_ATTR_COUNT);
        size_t len = data[i + 1];
        i += 2;
        if (len > size - i)
            len = size - i;
        p11_uri_result rc = p11_uri_set(uri, attr, data + i, len);
        CHECK(rc != P11_URI_ERR_MEMORY && rc != P11_URI_ERR_UNKNOWN_ATTR, "set(%s): %s",
              p11_uri_attr_name(attr), p11_uri_result_name(rc));
        i += len;
    }
    check_round_trip(uri, P11_URI_FORMAT_DEFAULT);
    check_setters_agree(uri);
    p11_uri_free(uri);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    p11_uri *uri = NULL;
    p11_uri_error err;
    check_built_uri(data, size);

    p11_uri_result rc = p11_uri_parse_n((const char *)data, size, &uri, &err);
    if (rc != P11_URI_OK) {
        CHECK(uri == NULL, "a refused parse returned a URI");
        check_refusal(rc, &err, size);
        return 0;
    }
    CHECK(uri != NULL, "an accepted parse returned no URI");
    check_round_trip(uri, P11_URI_FORMAT_DEFAULT);
    check_round_trip(uri, P11_URI_FORMAT_OMIT_PIN);
    check_round_trip(uri, P11_URI_FORMAT_OMIT_QUERY);
    check_setters_agree(uri);
    p11_uri_free(uri);
    return 0;
}
