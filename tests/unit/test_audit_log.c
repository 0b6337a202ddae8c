/* The audit writer (p11core/audit.c) against a real SoftHSM token, reached
 * through the fault-injecting shim: what each operation records, that the
 * chain and MACs hold, what fail-closed and fail-open do when the log
 * cannot be written, forked children, and that the PIN is never written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "p11core.h"

#define TEST_PIN "Pin-7hQzx41"

static char dir[256], pin_file[300], key_file[300];
static void (*shim_fail)(const char *, CK_RV, long);
static const unsigned char hash32[32] = {9, 8, 7};

static int setup_token(void **state)
{
    char cmd[1024];
    void *shim;
    FILE *f;

    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/primus-audit-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(cmd, sizeof(cmd),
             "bash -c 'source %s && token_setup %s/t && token_create AUDIT %s && "
             "token_keygen AUDIT EC:prime256v1 02 ec-key %s'",
             PRIMUS_TOKEN_SH, dir, TEST_PIN, TEST_PIN);
    if (system(cmd) != 0)
        return -1;
    snprintf(cmd, sizeof(cmd), "%s/t/softhsm2.conf", dir);
    setenv("SOFTHSM2_CONF", cmd, 1);
    snprintf(pin_file, sizeof(pin_file), "%s/pin", dir);
    snprintf(key_file, sizeof(key_file), "%s/audit.key", dir);
    if ((f = fopen(pin_file, "w")) == NULL)
        return -1;
    fputs(TEST_PIN "\n", f);
    fclose(f);
    chmod(pin_file, 0600);
    if ((f = fopen(key_file, "w")) == NULL)
        return -1;
    fputs("0123456789abcdef0123456789abcdef", f);
    fclose(f);
    chmod(key_file, 0600);
    shim = dlopen(PRIMUS_SHIM_PATH, RTLD_NOW | RTLD_LOCAL);
    if (shim == NULL)
        return -1;
    shim_fail = (void (*)(const char *, CK_RV, long))dlsym(shim, "p11shim_fail");
    return shim_fail ? 0 : -1;
}

static int remove_token(void **state)
{
    char cmd[300];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static p11_core *audited_core(const char *log, const char *policy, int with_key)
{
    p11_core *core = p11_core_new();
    char spec[320];

    assert_non_null(core);
    snprintf(spec, sizeof(spec), "file:%s", pin_file);
    assert_int_equal(p11_core_set(core, "pkcs11-module-path", PRIMUS_SHIM_PATH), P11_OK);
    assert_int_equal(p11_core_set(core, "pkcs11-module-token-pin", spec), P11_OK);
    assert_int_equal(p11_core_set(core, "primus-audit-log", log), P11_OK);
    if (policy)
        assert_int_equal(p11_core_set(core, "primus-audit-policy", policy), P11_OK);
    if (with_key)
        assert_int_equal(p11_core_set(core, "primus-audit-key", key_file), P11_OK);
    return core;
}

static p11_key *open_ec_key(p11_core *core)
{
    p11_uri *uri = NULL;
    p11_key *key = NULL;

    assert_int_equal(p11_uri_parse("pkcs11:token=AUDIT;object=ec-key", &uri, NULL), P11_URI_OK);
    assert_int_equal(p11_key_open_uri(core, uri, CKO_PRIVATE_KEY, &key), P11_OK);
    p11_uri_free(uri);
    return key;
}

static p11_status sign_once(p11_key *key)
{
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    unsigned char sig[128];
    size_t len = sizeof(sig);
    return p11_key_sign(key, &mech, hash32, sizeof(hash32), sig, &len);
}

static void log_path(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", dir, name);
    unlink(out);
}

/* The records of a log, one JSON object per line, checked the way
 * `primusctl audit verify` does: per stream, seq from 1 and +1, prev is the
 * hash of the stream's previous line, and (with the key) the mac. */
typedef struct audit_log {
    json_t *records; /* array */
    char *text;
} audit_log;

static audit_log read_log(const char *path, int with_key)
{
    audit_log lg = {json_array(), NULL};
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    json_t *streams = json_object(); /* stream -> [last seq, last hash] */
    size_t total = 0;

    assert_non_null(f);
    lg.text = calloc(1, 1);
    while ((n = getline(&line, &cap, f)) > 0) {
        char hash[P11_AUDIT_HEX_SIZE];
        json_t *rec, *st;
        const char *stream;
        json_int_t seq;

        lg.text = realloc(lg.text, total + (size_t)n + 1);
        memcpy(lg.text + total, line, (size_t)n + 1);
        total += (size_t)n;
        assert_int_equal(line[n - 1], '\n');
        line[--n] = '\0';
        rec = json_loads(line, 0, NULL);
        assert_non_null(rec);
        {
            /* the writer formats lines itself (for speed); jansson is the
             * reference: the line is exactly jansson's compact dump of it */
            char *again = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
            assert_non_null(again);
            assert_string_equal(again, line);
            free(again);
        }
        stream = json_string_value(json_object_get(rec, "stream"));
        seq = json_integer_value(json_object_get(rec, "seq"));
        assert_non_null(stream);
        st = json_object_get(streams, stream);
        if (st == NULL) {
            assert_int_equal(seq, 1);
            assert_string_equal(json_string_value(json_object_get(rec, "event")), "stream-start");
            assert_string_equal(json_string_value(json_object_get(rec, "prev")),
                                "0000000000000000000000000000000000000000000000000000000000000000");
        } else {
            assert_int_equal(seq, json_integer_value(json_array_get(st, 0)) + 1);
            assert_string_equal(json_string_value(json_object_get(rec, "prev")),
                                json_string_value(json_array_get(st, 1)));
        }
        if (with_key)
            assert_true(p11_audit_mac_matches((const unsigned char *)"0123456789abcdef0123456789abcdef",
                                              32, line, (size_t)n));
        assert_true(p11_audit_line_hash(line, (size_t)n, hash));
        json_object_set_new(streams, stream, json_pack("[I, s]", seq, hash));
        json_array_append_new(lg.records, rec);
    }
    free(line);
    fclose(f);
    json_decref(streams);
    return lg;
}

static void free_log(audit_log *lg)
{
    json_decref(lg->records);
    free(lg->text);
}

static size_t count_events(const audit_log *lg, const char *event, const char *stream)
{
    size_t i, n = 0;
    json_t *r;

    json_array_foreach(lg->records, i, r)
        if (strcmp(json_string_value(json_object_get(r, "event")), event) == 0 &&
            (stream == NULL || strcmp(json_string_value(json_object_get(r, "stream")), stream) == 0))
            n++;
    return n;
}

static json_t *first_event(const audit_log *lg, const char *event)
{
    size_t i;
    json_t *r;

    json_array_foreach(lg->records, i, r)
        if (strcmp(json_string_value(json_object_get(r, "event")), event) == 0)
            return r;
    return NULL;
}

static const char *field(json_t *rec, const char *name)
{
    return json_string_value(json_object_get(rec, name));
}

static void test_a_signature_leaves_a_complete_record(void **state)
{
    char log[300];
    p11_core *core;
    p11_key *key;
    audit_log lg;
    json_t *sign, *end;
    unsigned long long seq;

    (void)state;
    log_path(log, sizeof(log), "sign.jsonl");
    core = audited_core(log, NULL, 1);
    key = open_ec_key(core);
    assert_int_equal(sign_once(key), P11_OK);
    seq = p11_audit_last_seq();
    assert_true(seq > 0);
    assert_int_equal(p11_audit_flush(core), P11_OK);
    p11_key_unref(key);
    p11_core_free(core);

    lg = read_log(log, 1);
    assert_int_equal(count_events(&lg, "config-load", NULL), 1);
    assert_int_equal(count_events(&lg, "login", NULL), 1);
    assert_int_equal(count_events(&lg, "sign", NULL), 1);
    sign = first_event(&lg, "sign");
    assert_int_equal(json_integer_value(json_object_get(sign, "seq")), (json_int_t)seq);
    assert_string_equal(field(sign, "key"), "pkcs11:token=AUDIT;object=ec-key;type=private;id=%02");
    assert_string_equal(field(sign, "key_id"), "02");
    assert_string_equal(field(sign, "partition"), "AUDIT");
    assert_string_equal(field(sign, "mechanism"), "CKM_ECDSA");
    assert_string_equal(field(sign, "result"), "CKR_OK");
    assert_non_null(field(sign, "member"));
    assert_true(json_is_integer(json_object_get(sign, "latency_us")));
    assert_int_equal(json_integer_value(json_object_get(sign, "pid")), getpid());
    assert_int_equal(json_integer_value(json_object_get(sign, "uid")), getuid());
    /* RFC 3339 with microseconds, UTC */
    assert_int_equal(strlen(field(sign, "time")), strlen("2026-11-24T01:02:03.123456Z"));
    assert_int_equal(field(sign, "time")[26], 'Z');
    /* the stream is closed with the right count */
    end = json_array_get(lg.records, json_array_size(lg.records) - 1);
    assert_string_equal(field(end, "event"), "stream-end");
    assert_int_equal(json_integer_value(json_object_get(end, "records")),
                     (json_int_t)json_array_size(lg.records));
    assert_null(strstr(lg.text, TEST_PIN));
    free_log(&lg);
}

static void test_wrong_pin_and_lookup_failures_are_recorded_without_the_pin(void **state)
{
    char log[300];
    p11_core *core;
    p11_uri *uri = NULL;
    p11_key *key = NULL;
    audit_log lg;
    json_t *r;

    (void)state;
    log_path(log, sizeof(log), "failures.jsonl");
    core = audited_core(log, NULL, 0);
    /* a key that does not exist, asked for with a PIN in the URI */
    assert_int_equal(p11_uri_parse("pkcs11:token=AUDIT;object=nothing?pin-value=" TEST_PIN, &uri,
                                   NULL),
                     P11_URI_OK);
    assert_int_equal(p11_key_open_uri(core, uri, CKO_PRIVATE_KEY, &key), P11_ERR_NOT_FOUND);
    p11_uri_free(uri);
    /* a token label with a quote, a backslash, a tab, UTF-8 and a byte that
     * is not UTF-8: the record's detail quotes it, and the line stays JSON */
    assert_int_equal(p11_uri_parse("pkcs11:token=N%22O%5C%09%C3%BC;object=x", &uri, NULL),
                     P11_URI_OK);
    assert_int_equal(p11_key_open_uri(core, uri, CKO_PRIVATE_KEY, &key), P11_ERR_NO_TOKEN);
    p11_uri_free(uri);
    assert_int_equal(p11_uri_parse("pkcs11:token=BAD%FF;object=x", &uri, NULL), P11_URI_OK);
    assert_int_equal(p11_key_open_uri(core, uri, CKO_PRIVATE_KEY, &key), P11_ERR_NO_TOKEN);
    p11_uri_free(uri);
    p11_core_free(core);

    /* a wrong PIN */
    core = p11_core_new();
    assert_int_equal(p11_core_set(core, "pkcs11-module-path", PRIMUS_SHIM_PATH), P11_OK);
    assert_int_equal(p11_core_set(core, "pkcs11-module-token-pin", TEST_PIN "-wrong"), P11_OK);
    assert_int_equal(p11_core_set(core, "primus-audit-log", log), P11_OK);
    assert_int_equal(p11_uri_parse("pkcs11:token=AUDIT;object=ec-key", &uri, NULL), P11_URI_OK);
    assert_int_equal(p11_key_open_uri(core, uri, CKO_PRIVATE_KEY, &key), P11_ERR_PIN);
    p11_uri_free(uri);
    p11_core_free(core);

    lg = read_log(log, 0);
    r = first_event(&lg, "lookup-failed");
    assert_non_null(r);
    assert_string_equal(field(r, "key"), "pkcs11:token=AUDIT;object=nothing");
    r = NULL;
    {
        size_t i;
        json_t *each;
        json_array_foreach(lg.records, i, each)
            if (strcmp(field(each, "event"), "login") == 0 &&
                strcmp(field(each, "result"), "CKR_PIN_INCORRECT") == 0)
                r = each;
    }
    assert_non_null(r);
    assert_int_equal(count_events(&lg, "lookup-failed", NULL), 4);
    {
        size_t i;
        json_t *each;
        int quoted = 0, replaced = 0;
        json_array_foreach(lg.records, i, each) {
            const char *d = field(each, "detail");
            quoted |= d && strstr(d, "N\"O\\%09\xc3\xbc") != NULL;
            replaced |= d && strstr(d, "BAD?") != NULL;
        }
        assert_true(quoted);
        assert_true(replaced);
    }
    assert_null(strstr(lg.text, TEST_PIN));
    assert_null(strstr(lg.text, "pin-value"));
    free_log(&lg);
}

static void wait_until(int (*cond)(void *), void *arg, int ms)
{
    struct timespec ts = {0, 20 * 1000000L};
    for (int waited = 0; waited < ms && !cond(arg); waited += 20)
        nanosleep(&ts, NULL);
}

static int signing_works(void *key) { return sign_once(key) == P11_OK; }

static void test_fail_closed_refuses_while_the_log_cannot_be_written(void **state)
{
    char sub[300], log[340];
    p11_core *core;
    p11_key *key;
    audit_log lg;

    (void)state;
    snprintf(sub, sizeof(sub), "%s/not-yet", dir);
    snprintf(log, sizeof(log), "%s/audit.jsonl", sub);
    core = audited_core(log, NULL, 1);
    key = open_ec_key(core);
    assert_int_equal(sign_once(key), P11_ERR_AUDIT);
    assert_non_null(strstr(p11_error_message(), "cannot be written"));
    assert_non_null(strstr(p11_error_message(), "fail-closed"));
    assert_non_null(strstr(p11_error_message(), log));
    /* once the log can be written, operations go on, and nothing was lost */
    assert_int_equal(mkdir(sub, 0700), 0);
    wait_until(signing_works, key, 3000);
    assert_int_equal(sign_once(key), P11_OK);
    p11_key_unref(key);
    p11_core_free(core);
    lg = read_log(log, 1);
    assert_int_equal(count_events(&lg, "records-lost", NULL), 0);
    assert_true(count_events(&lg, "sign", NULL) >= 2);
    free_log(&lg);
}

static void test_fail_open_goes_on_and_counts_what_was_lost(void **state)
{
    char sub[300], log[340];
    p11_core *core;
    p11_key *key;
    audit_log lg;
    json_t *lost;
    int i, signed_ok = 0;

    (void)state;
    snprintf(sub, sizeof(sub), "%s/later", dir);
    snprintf(log, sizeof(log), "%s/audit.jsonl", sub);
    core = audited_core(log, "fail-open", 1);
    key = open_ec_key(core);
    /* more signatures than the queue holds while nothing can be written */
    for (i = 0; i < 1500; i++)
        signed_ok += sign_once(key) == P11_OK;
    assert_int_equal(signed_ok, 1500);
    assert_int_equal(mkdir(sub, 0700), 0);
    /* the writer retries on its own; the next records say how many were lost */
    {
        struct timespec ts = {0, 600 * 1000000L};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(sign_once(key), P11_OK);
    signed_ok++;
    p11_key_unref(key);
    p11_core_free(core);
    lg = read_log(log, 1);
    lost = first_event(&lg, "records-lost");
    assert_non_null(lost);
    assert_true(json_integer_value(json_object_get(lost, "lost")) > 0);
    /* every signature is either in the log or counted as lost */
    assert_int_equal(count_events(&lg, "sign", NULL) +
                         (size_t)json_integer_value(json_object_get(lost, "lost")),
                     (size_t)signed_ok);
    free_log(&lg);
}

/* Still reachable when the child exits: its exit handler writes the end. */
static p11_key *forked_key;

static void test_a_forked_child_writes_its_own_stream(void **state)
{
    char log[300];
    p11_core *core;
    p11_key *key;
    audit_log lg;
    const char *parent_stream;
    json_t *r, *child_start = NULL;
    size_t i;
    int status;
    pid_t pid;

    (void)state;
    log_path(log, sizeof(log), "fork.jsonl");
    core = audited_core(log, NULL, 1);
    key = forked_key = open_ec_key(core);
    assert_int_equal(sign_once(key), P11_OK);
    pid = fork();
    if (pid == 0) {
        int ok = sign_once(key) == P11_OK && sign_once(key) == P11_OK;
        if (!ok)
            fprintf(stderr, "child: %s\n", p11_error_message());
        exit(ok ? 0 : 1); /* exit writes stream-end */
    }
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status))
        fail_msg("the child died of signal %d", WTERMSIG(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(sign_once(key), P11_OK);
    p11_key_unref(key);
    p11_core_free(core);

    lg = read_log(log, 1);
    parent_stream = field(json_array_get(lg.records, 0), "stream");
    json_array_foreach(lg.records, i, r)
        if (strcmp(field(r, "stream"), parent_stream) != 0 &&
            strcmp(field(r, "event"), "stream-start") == 0)
            child_start = r;
    assert_non_null(child_start);
    assert_int_equal(json_integer_value(json_object_get(child_start, "pid")), pid);
    assert_string_equal(field(json_object_get(child_start, "parent"), "stream"), parent_stream);
    assert_int_equal(count_events(&lg, "sign", parent_stream), 2);
    assert_int_equal(count_events(&lg, "sign", field(child_start, "stream")), 2);
    assert_int_equal(count_events(&lg, "stream-end", parent_stream), 1);
    assert_int_equal(count_events(&lg, "stream-end", field(child_start, "stream")), 1);
    free_log(&lg);
}

static void test_a_member_fault_records_member_down_and_failover(void **state)
{
    char log[300];
    p11_core *core;
    p11_key *key;
    audit_log lg;
    json_t *r;

    (void)state;
    log_path(log, sizeof(log), "fault.jsonl");
    core = audited_core(log, NULL, 0);
    key = open_ec_key(core);
    assert_int_equal(sign_once(key), P11_OK);
    shim_fail("C_Sign", CKR_DEVICE_ERROR, 1);
    assert_int_not_equal(sign_once(key), P11_OK);
    p11_key_unref(key);
    p11_core_free(core);
    lg = read_log(log, 0);
    r = first_event(&lg, "member-down");
    assert_non_null(r);
    assert_string_equal(field(r, "result"), "CKR_DEVICE_ERROR");
    assert_non_null(field(r, "member"));
    assert_non_null(first_event(&lg, "failover"));
    free_log(&lg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_signature_leaves_a_complete_record),
        cmocka_unit_test(test_wrong_pin_and_lookup_failures_are_recorded_without_the_pin),
        cmocka_unit_test(test_fail_closed_refuses_while_the_log_cannot_be_written),
        cmocka_unit_test(test_fail_open_goes_on_and_counts_what_was_lost),
        cmocka_unit_test(test_a_forked_child_writes_its_own_stream),
        cmocka_unit_test(test_a_member_fault_records_member_down_and_failover),
    };
    return cmocka_run_group_tests(tests, setup_token, remove_token);
}
