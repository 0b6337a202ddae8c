/*
 * Differential test: our RFC 7512 parser against p11-kit's, over the corpus
 * tests/unit/uri-corpus.txt (format described at its top).
 *
 * p11-kit is the reference most PKCS#11 software uses, but it is lenient
 * where RFC 7512 is not.  Every place the two are known to differ is listed
 * in the corpus with the clause that decides it; an unlisted difference, or
 * a listed one that went away, fails the test so that neither parser's
 * behaviour can drift unnoticed.
 *
 * The corpus path comes from URI_CORPUS_PATH (set by tests/unit/uri.cmake)
 * or from argv[1].
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <p11-kit/uri.h>

#include "p11uri.h"

#ifndef URI_CORPUS_PATH
#define URI_CORPUS_PATH "tests/unit/uri-corpus.txt"
#endif

/* The corpus is the point of the test; a truncated one should not pass. */
#define MIN_ENTRIES 60

static const char *corpus_path = URI_CORPUS_PATH;

typedef struct entry {
    int line;
    int valid;            /* the corpus verdict */
    char uri[1024];       /* unescaped */
    size_t uri_len;
    const char *disagree; /* the clause, or NULL (points into the line buffer) */
} entry;

typedef struct tally {
    int entries;
    int listed_disagreements;
    int failures;
} tally;

static int hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Undo the corpus escapes (\xHH, \\) of one URI word.  0 on a bad escape. */
static int unescape(const char *s, size_t n, char *out, size_t size, size_t *out_len)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '\\' && i + 1 < n && s[i + 1] == '\\') {
            i++;
        } else if (c == '\\') {
            if (n - i < 4 || s[i + 1] != 'x')
                return 0;
            int hi = hex_digit((unsigned char)s[i + 2]);
            int lo = hex_digit((unsigned char)s[i + 3]);
            if (hi < 0 || lo < 0 || (hi | lo) == 0)
                return 0; /* p11-kit takes C strings: no NUL */
            c = hi << 4 | lo;
            i += 3;
        }
        if (o + 1 >= size)
            return 0;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    *out_len = o;
    return 1;
}

/* Split "VERDICT URI [disagree: CLAUSE]".  1 for an entry, 0 for a blank or
 * comment line, -1 for a malformed line. */
static int read_entry(char *line, int line_no, entry *e)
{
    char *p = line + strspn(line, " \t");
    p[strcspn(p, "\r\n")] = '\0';
    if (*p == '\0' || *p == '#')
        return 0;

    size_t verdict_len = strcspn(p, " \t");
    if (verdict_len == 5 && strncmp(p, "valid", 5) == 0)
        e->valid = 1;
    else if (verdict_len == 7 && strncmp(p, "invalid", 7) == 0)
        e->valid = 0;
    else
        return -1;
    p += verdict_len;
    p += strspn(p, " \t");

    size_t uri_len = strcspn(p, " \t");
    if (uri_len == 0 || !unescape(p, uri_len, e->uri, sizeof(e->uri), &e->uri_len))
        return -1;
    p += uri_len;
    p += strspn(p, " \t");

    e->line = line_no;
    e->disagree = NULL;
    if (*p) {
        if (strncmp(p, "disagree:", 9) != 0)
            return -1;
        e->disagree = p + 9 + strspn(p + 9, " \t");
        if (*e->disagree == '\0')
            return -1; /* a disagreement must say which clause decides it */
    }
    return 1;
}

/* A PKCS#11 fixed field as p11-kit stores it: blank-padded, or all zero
 * when the URI did not name it. */
static int same_padded(const char *ours, size_t ours_len, const unsigned char *field,
                       size_t field_len)
{
    if (!ours) {
        for (size_t i = 0; i < field_len; i++)
            if (field[i] != 0)
                return 0;
        return 1;
    }
    if (ours_len > field_len || memcmp(ours, field, ours_len) != 0)
        return 0;
    for (size_t i = ours_len; i < field_len; i++)
        if (field[i] != ' ')
            return 0;
    return 1;
}

static int same_attribute(const char *ours, size_t ours_len, const CK_ATTRIBUTE *theirs)
{
    if (!ours || !theirs)
        return !ours && !theirs;
    return theirs->ulValueLen == ours_len &&
           (ours_len == 0 || memcmp(theirs->pValue, ours, ours_len) == 0);
}

/* Where both accept: do they read the same token label, object label and id? */
static const char *first_value_difference(const p11_uri *ours, P11KitUri *theirs)
{
    size_t len;
    const char *v;

    v = p11_uri_get(ours, P11_URI_TOKEN, &len);
    CK_TOKEN_INFO *token = p11_kit_uri_get_token_info(theirs);
    if (!same_padded(v, len, token->label, sizeof(token->label)))
        return "token label";
    v = p11_uri_get(ours, P11_URI_OBJECT, &len);
    if (!same_attribute(v, len, p11_kit_uri_get_attribute(theirs, CKA_LABEL)))
        return "object label";
    v = p11_uri_get(ours, P11_URI_ID, &len);
    if (!same_attribute(v, len, p11_kit_uri_get_attribute(theirs, CKA_ID)))
        return "id";
    return NULL;
}

static void report(tally *t, const entry *e, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: %s\n    ", corpus_path, e->line, e->uri);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    t->failures++;
}

static const char *verdict(int ok)
{
    return ok ? "valid" : "invalid";
}

static void check_entry(tally *t, const entry *e)
{
    p11_uri *ours = NULL;
    p11_uri_error err;
    int ours_ok = p11_uri_parse_n(e->uri, e->uri_len, &ours, &err) == P11_URI_OK;

    P11KitUri *theirs = p11_kit_uri_new();
    assert_non_null(theirs);
    int theirs_ok = p11_kit_uri_parse(e->uri, P11_KIT_URI_FOR_ANY, theirs) == P11_KIT_URI_OK;

    t->entries++;
    if (e->disagree)
        t->listed_disagreements++;

    if (ours_ok != e->valid)
        report(t, e, "our parser says %s, the corpus says %s%s%s", verdict(ours_ok),
               verdict(e->valid), ours_ok ? "" : ": ", ours_ok ? "" : err.message);

    if (e->disagree && theirs_ok == e->valid)
        report(t, e,
               "listed as a disagreement, but p11-kit now also says %s; drop the "
               "\"disagree:\" column (clause was: %s)",
               verdict(theirs_ok), e->disagree);
    else if (!e->disagree && theirs_ok != e->valid)
        report(t, e,
               "unlisted disagreement: p11-kit says %s, RFC 7512 (and we) say %s%s%s; decide "
               "it against the RFC and list it with \"disagree: <clause>\"",
               verdict(theirs_ok), verdict(e->valid), ours_ok ? "" : ": ",
               ours_ok ? "" : err.message);

    if (ours_ok && theirs_ok) {
        const char *what = first_value_difference(ours, theirs);
        if (what)
            report(t, e, "both accept, but they read a different %s", what);
    }
    p11_kit_uri_free(theirs);
    p11_uri_free(ours);
}

static void test_corpus_against_p11kit(void **state)
{
    (void)state;
    FILE *f = fopen(corpus_path, "r");
    if (!f)
        fail_msg("cannot open the corpus %s", corpus_path);

    tally t = {0, 0, 0};
    char line[4096];
    int line_no = 0;
    while (fgets(line, sizeof(line), f)) {
        entry e;
        line_no++;
        int kind = read_entry(line, line_no, &e);
        if (kind < 0) {
            fprintf(stderr, "%s:%d: malformed corpus line\n", corpus_path, line_no);
            t.failures++;
        } else if (kind > 0) {
            check_entry(&t, &e);
        }
    }
    fclose(f);

    print_message("%d URIs, %d listed disagreements with p11-kit, %d failures\n", t.entries,
                  t.listed_disagreements, t.failures);
    if (t.entries < MIN_ENTRIES)
        fail_msg("the corpus has only %d entries (at least %d expected)", t.entries, MIN_ENTRIES);
    if (t.failures)
        fail_msg("%d corpus failures (listed above)", t.failures);
}

/* The reader itself: escapes and the column rules. */
static void test_corpus_reader(void **state)
{
    (void)state;
    entry e;
    char line[256];

    strcpy(line, "valid pkcs11:token=a\\x20b\\\\  disagree: RFC 7512 2.3 x\n");
    assert_int_equal(read_entry(line, 1, &e), 1);
    assert_true(e.valid);
    assert_string_equal(e.uri, "pkcs11:token=a b\\");
    assert_string_equal(e.disagree, "RFC 7512 2.3 x");

    strcpy(line, "  # a comment\n");
    assert_int_equal(read_entry(line, 2, &e), 0);
    strcpy(line, "valid pkcs11:a=\\x00\n");
    assert_int_equal(read_entry(line, 3, &e), -1);
    strcpy(line, "maybe pkcs11:\n");
    assert_int_equal(read_entry(line, 4, &e), -1);
    strcpy(line, "invalid pkcs11:x because\n");
    assert_int_equal(read_entry(line, 5, &e), -1);
    strcpy(line, "invalid pkcs11:x disagree:\n");
    assert_int_equal(read_entry(line, 6, &e), -1);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        corpus_path = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_reader),
        cmocka_unit_test(test_corpus_against_p11kit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
