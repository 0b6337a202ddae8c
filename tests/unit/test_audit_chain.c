/* The audit chain primitives shared by the writer and `primusctl audit
 * verify` (p11core/audit_chain.c): line hash, body MAC, appending and
 * splitting the mac member, checking it, loading the key file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "p11core.h"

#define MAC_TAIL_LEN (sizeof(",\"mac\":\"") - 1 + 64 + 2)

static const unsigned char key32[] = "0123456789abcdef0123456789abcdef";

/* ---- hash and MAC against published vectors ---- */

static void test_line_hash_is_sha256_hex(void **state)
{
    char out[P11_AUDIT_HEX_SIZE];

    (void)state;
    assert_true(p11_audit_line_hash("abc", 3, out));
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_true(p11_audit_line_hash("", 0, out));
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    /* the length counts, not a NUL: the newline is never part of the line */
    assert_true(p11_audit_line_hash("abc\n", 3, out));
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_body_mac_is_hmac_sha256_hex(void **state)
{
    char out[P11_AUDIT_HEX_SIZE];
    const char *data = "what do ya want for nothing?";

    (void)state;
    /* RFC 4231, test case 2 */
    assert_true(p11_audit_body_mac((const unsigned char *)"Jefe", 4, data, strlen(data), out));
    assert_string_equal(out, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

/* ---- append / split round trips ---- */

static void round_trip(const char *body)
{
    char mac[P11_AUDIT_HEX_SIZE], got[P11_AUDIT_HEX_SIZE];
    size_t len = strlen(body), line_len = 0, body_end = 0;
    char *line, *rebuilt;

    assert_true(p11_audit_body_mac(key32, 32, body, len, mac));
    line = p11_audit_append_mac(body, len, mac, &line_len);
    assert_non_null(line);
    assert_int_equal(line_len, len + MAC_TAIL_LEN - 1);
    assert_int_equal(strlen(line), line_len);
    /* the mac member is the last one, just before the closing brace */
    assert_memory_equal(line, body, len - 1);
    assert_memory_equal(line + len - 1, ",\"mac\":\"", 8);
    assert_memory_equal(line + line_len - 2, "\"}", 2);

    assert_true(p11_audit_split_mac(line, line_len, &body_end, got));
    assert_string_equal(got, mac);
    assert_int_equal(body_end, len - 1);
    rebuilt = malloc(body_end + 2);
    assert_non_null(rebuilt);
    memcpy(rebuilt, line, body_end);
    rebuilt[body_end] = '}';
    rebuilt[body_end + 1] = '\0';
    assert_string_equal(rebuilt, body);
    free(rebuilt);

    assert_true(p11_audit_mac_matches(key32, 32, line, line_len));
    assert_false(p11_audit_mac_matches(key32, 31, line, line_len));
    assert_false(p11_audit_mac_matches((const unsigned char *)"another key, 32 bytes long......",
                                       32, line, line_len));
    free(line);
}

static void test_append_then_split_gives_the_body_back(void **state)
{
    (void)state;
    round_trip("{\"v\":1,\"stream\":\"00112233445566778899aabbccddeeff\",\"seq\":1,"
               "\"event\":\"stream-start\",\"prev\":"
               "\"0000000000000000000000000000000000000000000000000000000000000000\"}");
    round_trip("{}");
    round_trip("{\"a\":1}");
    /* text that looks like a mac member inside a string is not one */
    round_trip("{\"detail\":\",\\\"mac\\\":\\\""
               "0000000000000000000000000000000000000000000000000000000000000000\\\"}\"}");
    round_trip("{\"process\":\"w\xc3\xb6rker\",\"detail\":\"}}}\"}");
}

static void test_append_refuses_what_is_not_an_object(void **state)
{
    char mac[P11_AUDIT_HEX_SIZE];
    size_t n = 99;

    (void)state;
    memset(mac, 'a', 64);
    mac[64] = '\0';
    assert_null(p11_audit_append_mac("{\"a\":1", 6, mac, &n));
    assert_null(p11_audit_append_mac("}", 1, mac, &n));
    assert_null(p11_audit_append_mac("", 0, mac, &n));
}

/* ---- malformed mac tails ---- */

static char *with_tail(const char *head, const char *tail)
{
    char *s = malloc(strlen(head) + strlen(tail) + 1);
    assert_non_null(s);
    strcpy(s, head);
    strcat(s, tail);
    return s;
}

static void test_split_rejects_malformed_tails(void **state)
{
    static const char hex64[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    static const char *bad_tails[] = {
        "}",                                            /* no mac */
        ",\"mac\":\"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\"}", /* upper */
        ",\"mac\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\"}",  /* 63 */
        ",\"mac\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeff\"}", /* 65 */
        ",\"mac\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg\"}",  /* g */
        ",\"mac\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}\n", /* \n */
        ",\"mac\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"} ",  /* sp */
        ",\"mac\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef}",    /* " */
        ",\"mac\": \"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}", /* sp */
        ",\"MAC\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"}",  /* name */
        ",\"mac\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"x\":1}",
    };
    char mac[P11_AUDIT_HEX_SIZE];
    size_t body_end, i;
    char *line;

    (void)state;
    for (i = 0; i < sizeof(bad_tails) / sizeof(bad_tails[0]); i++) {
        line = with_tail("{\"v\":1", bad_tails[i]);
        body_end = 12345;
        assert_false(p11_audit_split_mac(line, strlen(line), &body_end, mac));
        assert_false(p11_audit_mac_matches(key32, 32, line, strlen(line)));
        free(line);
    }
    /* the tail alone (nothing before it) and shorter lines */
    line = malloc(MAC_TAIL_LEN + 1);
    assert_non_null(line);
    snprintf(line, MAC_TAIL_LEN + 1, ",\"mac\":\"%s\"}", hex64);
    assert_false(p11_audit_split_mac(line, strlen(line), &body_end, mac));
    assert_false(p11_audit_split_mac(line + 1, strlen(line) - 1, &body_end, mac));
    assert_false(p11_audit_split_mac("", 0, &body_end, mac));
    free(line);
    /* the shortest well-formed line: one character before the tail */
    line = malloc(MAC_TAIL_LEN + 2);
    assert_non_null(line);
    snprintf(line, MAC_TAIL_LEN + 2, "{,\"mac\":\"%s\"}", hex64);
    assert_true(p11_audit_split_mac(line, strlen(line), &body_end, mac));
    assert_int_equal(body_end, 1);
    assert_string_equal(mac, hex64);
    free(line);
}

static void test_any_change_breaks_the_mac(void **state)
{
    const char *body = "{\"v\":1,\"seq\":7,\"event\":\"sign\",\"result\":\"CKR_OK\"}";
    char mac[P11_AUDIT_HEX_SIZE];
    size_t len = 0, i;
    char *line;

    (void)state;
    assert_true(p11_audit_body_mac(key32, 32, body, strlen(body), mac));
    line = p11_audit_append_mac(body, strlen(body), mac, &len);
    assert_non_null(line);
    assert_true(p11_audit_mac_matches(key32, 32, line, len));
    for (i = 0; i < len; i++) {
        char saved = line[i];
        /* another character; a hex digit stays a lower-case hex digit */
        if ((saved >= '0' && saved <= '9') || (saved >= 'a' && saved <= 'f'))
            line[i] = saved == '0' ? '1' : '0';
        else
            line[i] = (char)(saved ^ 1);
        assert_false(p11_audit_mac_matches(key32, 32, line, len));
        line[i] = saved;
    }
    assert_true(p11_audit_mac_matches(key32, 32, line, len));
    free(line);
}

/* ---- the key file ---- */

static char key_path[64];

static void write_key(const void *data, size_t len, mode_t mode)
{
    FILE *f;

    strcpy(key_path, "/tmp/test_audit_chain.XXXXXX");
    close(mkstemp(key_path));
    f = fopen(key_path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
    assert_int_equal(chmod(key_path, mode), 0);
}

static void test_key_file(void **state)
{
    unsigned char *key = NULL;
    size_t len = 0;

    (void)state;
    write_key(key32, 32, 0600);
    assert_int_equal(p11_audit_key_load(key_path, &key, &len), P11_OK);
    assert_int_equal(len, 32);
    assert_memory_equal(key, key32, 32);
    p11_audit_key_free(key, len);
    unlink(key_path);

    /* the key is the file's bytes exactly: a random key may end in 0x0a */
    write_key("0123456789abcdef\r\n", 18, 0600);
    assert_int_equal(p11_audit_key_load(key_path, &key, &len), P11_OK);
    assert_int_equal(len, 18);
    assert_memory_equal(key, "0123456789abcdef\r\n", 18);
    p11_audit_key_free(key, len);
    unlink(key_path);

    /* binary keys keep their zero bytes */
    write_key("\0\1\2\3\4\5\6\7\0\1\2\3\4\5\6\7\0", 17, 0400);
    assert_int_equal(p11_audit_key_load(key_path, &key, &len), P11_OK);
    assert_int_equal(len, 17);
    p11_audit_key_free(key, len);
    unlink(key_path);

    write_key("too short", 9, 0600);
    key = (unsigned char *)"x";
    assert_int_equal(p11_audit_key_load(key_path, &key, &len), P11_ERR_CONFIG);
    assert_null(key);
    assert_non_null(strstr(p11_error_message(), "at least 16"));
    unlink(key_path);

    write_key(key32, 32, 0640);
    assert_int_equal(p11_audit_key_load(key_path, &key, &len), P11_ERR_CONFIG);
    assert_non_null(strstr(p11_error_message(), "readable by other users"));
    unlink(key_path);

    assert_int_equal(p11_audit_key_load("/nonexistent/audit.key", &key, &len), P11_ERR_CONFIG);
    assert_non_null(strstr(p11_error_message(), "/nonexistent/audit.key"));
    p11_audit_key_free(NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_hash_is_sha256_hex),
        cmocka_unit_test(test_body_mac_is_hmac_sha256_hex),
        cmocka_unit_test(test_append_then_split_gives_the_body_back),
        cmocka_unit_test(test_append_refuses_what_is_not_an_object),
        cmocka_unit_test(test_split_rejects_malformed_tails),
        cmocka_unit_test(test_any_change_breaks_the_mac),
        cmocka_unit_test(test_key_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
