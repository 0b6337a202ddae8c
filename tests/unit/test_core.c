/* p11core against a real SoftHSM token.  The token is reached through the
 * shim module, which forwards to SoftHSM, counts calls and injects faults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "p11core.h"

static char dir[256], pin_file[300];
static void (*shim_fail)(const char *, CK_RV, long);
static unsigned long (*shim_calls)(const char *);
static void (*shim_delay)(const char *, unsigned);

/* DigestInfo(SHA-256) || 32 bytes, a valid CKM_RSA_PKCS input */
static const unsigned char rsa_input[51] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48,
                                            0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04,
                                            0x20, 1, 2, 3};
static const unsigned char hash32[32] = {9, 8, 7};

static int setup_token(void **state)
{
    char cmd[1024];
    void *shim;

    snprintf(dir, sizeof(dir), "/tmp/primus-core-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(cmd, sizeof(cmd),
             "bash -c 'source %s && token_setup %s/t && token_create CORE 1234 && "
             "token_keygen CORE rsa:2048 01 rsa-key && token_keygen CORE EC:prime256v1 02 ec-key "
             "&& token_keygen CORE EC:secp384r1 03 ec-key && echo $SOFTHSM2_CONF > %s/conf'",
             PRIMUS_TOKEN_SH, dir, dir);
    if (system(cmd) != 0)
        return -1;
    snprintf(cmd, sizeof(cmd), "%s/t/softhsm2.conf", dir);
    setenv("SOFTHSM2_CONF", cmd, 1);
    snprintf(pin_file, sizeof(pin_file), "%s/pin", dir);
    FILE *f = fopen(pin_file, "w");
    fputs("1234\n", f);
    fclose(f);
    chmod(pin_file, 0600);
    shim = dlopen(PRIMUS_SHIM_PATH, RTLD_NOW | RTLD_LOCAL);
    if (shim == NULL)
        return -1;
    shim_fail = (void (*)(const char *, CK_RV, long))dlsym(shim, "p11shim_fail");
    shim_calls = (unsigned long (*)(const char *))dlsym(shim, "p11shim_calls");
    shim_delay = (void (*)(const char *, unsigned))dlsym(shim, "p11shim_delay");
    (void)state;
    return shim_fail && shim_calls && shim_delay ? 0 : -1;
}

static int remove_token(void **state)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    (void)state;
    return system(cmd) == 0 ? 0 : -1;
}

static p11_core *new_core(const char *pin_spec)
{
    p11_core *core = p11_core_new();
    char spec[320];

    assert_non_null(core);
    assert_int_equal(p11_core_set(core, "pkcs11-module-path", PRIMUS_SHIM_PATH), P11_OK);
    if (pin_spec) {
        snprintf(spec, sizeof(spec), "%s", pin_spec);
        assert_int_equal(p11_core_set(core, "pkcs11-module-token-pin", spec), P11_OK);
    }
    return core;
}

static p11_core *core_with_pin(void)
{
    char spec[320];
    snprintf(spec, sizeof(spec), "file:%s", pin_file);
    return new_core(spec);
}

static p11_key *open_key(p11_core *core, const char *text, CK_OBJECT_CLASS cls)
{
    p11_uri *uri = NULL;
    p11_key *key = NULL;

    assert_int_equal(p11_uri_parse(text, &uri, NULL), P11_URI_OK);
    assert_int_equal(p11_key_open_uri(core, uri, cls, &key), P11_OK);
    p11_uri_free(uri);
    return key;
}

/* The first partition's state as `cluster status` reports it. */
static void assert_partition_state(p11_core *core, const char *want)
{
    json_t *status = p11_core_status_json(core);

    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(status, "partitions"), 0), "state")),
                        want);
    json_decref(status);
}

static void test_find_lists_every_key_with_a_uri_that_parses(void **state)
{
    p11_core *core = core_with_pin();
    p11_uri *uri = NULL, *back;
    p11_object_list list;
    size_t i, priv = 0;

    assert_int_equal(p11_uri_parse("pkcs11:token=CORE", &uri, NULL), P11_URI_OK);
    assert_int_equal(p11_find_objects(core, uri, P11_CLASS_FROM_URI, &list), P11_OK);
    assert_int_equal(list.count, 6);
    for (i = 0; i < list.count; i++) {
        back = NULL;
        assert_int_equal(p11_uri_parse(list.items[i].uri, &back, NULL), P11_URI_OK);
        assert_string_equal(p11_uri_get(back, P11_URI_TOKEN, NULL), "CORE");
        p11_uri_free(back);
        priv += list.items[i].cls == CKO_PRIVATE_KEY;
        if (list.items[i].key_type == CKK_EC && list.items[i].cls == CKO_PRIVATE_KEY) {
            /* the EC point of a private key comes from its public half */
            assert_true(list.items[i].ec_point.len == 65 || list.items[i].ec_point.len == 97);
            assert_int_equal(list.items[i].ec_point.data[0], 0x04);
        }
    }
    assert_int_equal(priv, 3);
    p11_object_list_clear(&list);
    p11_uri_free(uri);
    p11_core_free(core);
    (void)state;
}

static void test_sign_and_verify_in_token(void **state)
{
    p11_core *core = core_with_pin();
    p11_key *priv = open_key(core, "pkcs11:token=CORE;object=rsa-key", CKO_PRIVATE_KEY);
    p11_key *pub = open_key(core, "pkcs11:token=CORE;object=rsa-key", CKO_PUBLIC_KEY);
    CK_MECHANISM mech = {CKM_RSA_PKCS, NULL, 0};
    unsigned char sig[512];
    size_t len = 0;

    assert_int_equal(p11_key_sign(priv, &mech, rsa_input, sizeof(rsa_input), NULL, &len), P11_OK);
    assert_int_equal(len, 256);
    len = sizeof(sig);
    assert_int_equal(p11_key_sign(priv, &mech, rsa_input, sizeof(rsa_input), sig, &len), P11_OK);
    assert_int_equal(len, 256);
    assert_int_equal(p11_key_verify(pub, &mech, rsa_input, sizeof(rsa_input), sig, len), P11_OK);
    sig[10] ^= 1;
    assert_int_not_equal(p11_key_verify(pub, &mech, rsa_input, sizeof(rsa_input), sig, len), P11_OK);
    p11_key_unref(priv);
    p11_key_unref(pub);
    p11_core_free(core);
    (void)state;
}

static void test_ambiguous_uri_lists_candidates(void **state)
{
    p11_core *core = core_with_pin();
    p11_uri *uri = NULL;
    p11_key *key = NULL;

    assert_int_equal(p11_uri_parse("pkcs11:token=CORE;object=ec-key", &uri, NULL), P11_URI_OK);
    assert_int_equal(p11_key_open_uri(core, uri, CKO_PRIVATE_KEY, &key), P11_ERR_AMBIGUOUS);
    assert_null(key);
    assert_non_null(strstr(p11_error_message(), "matches 2 objects"));
    assert_non_null(strstr(p11_error_message(), "id=%02"));
    assert_non_null(strstr(p11_error_message(), "id=%03"));
    p11_uri_free(uri);
    p11_core_free(core);
    (void)state;
}

/* Once warm, an operation neither logs in, nor opens a session, nor searches. */
static void test_warm_operations_make_no_lookup_login_or_session_open(void **state)
{
    p11_core *core = core_with_pin();
    p11_key *key = open_key(core, "pkcs11:token=CORE;id=%02", CKO_PRIVATE_KEY);
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    unsigned char sig[128];
    unsigned long logins, opens, finds;
    size_t len = sizeof(sig);
    int i;

    assert_int_equal(p11_key_sign(key, &mech, hash32, 32, sig, &len), P11_OK);
    logins = shim_calls("C_Login");
    opens = shim_calls("C_OpenSession");
    finds = shim_calls("C_FindObjectsInit");
    for (i = 0; i < 50; i++) {
        len = sizeof(sig);
        assert_int_equal(p11_key_sign(key, &mech, hash32, 32, sig, &len), P11_OK);
        assert_int_equal(len, 64);
    }
    assert_int_equal(shim_calls("C_Login"), logins);
    assert_int_equal(shim_calls("C_OpenSession"), opens);
    assert_int_equal(shim_calls("C_FindObjectsInit"), finds);
    p11_key_unref(key);
    p11_core_free(core);
    (void)state;
}

static void test_wrong_pin_is_never_retried(void **state)
{
    char spec[320], bad[300];
    p11_core *core;
    p11_uri *uri = NULL;
    p11_key *key = NULL;
    unsigned long before;
    FILE *f;

    snprintf(bad, sizeof(bad), "%s/badpin", dir);
    f = fopen(bad, "w");
    fputs("9999", f);
    fclose(f);
    chmod(bad, 0600);
    snprintf(spec, sizeof(spec), "file:%s", bad);
    core = new_core(spec);
    assert_int_equal(p11_uri_parse("pkcs11:token=CORE;object=rsa-key", &uri, NULL), P11_URI_OK);
    before = shim_calls("C_Login");
    assert_int_equal(p11_key_open_uri(core, uri, CKO_PRIVATE_KEY, &key), P11_ERR_PIN);
    assert_non_null(strstr(p11_error_message(), "CKR_PIN_INCORRECT"));
    assert_non_null(strstr(p11_error_message(), "not retried"));
    assert_int_equal(p11_key_open_uri(core, uri, CKO_PRIVATE_KEY, &key), P11_ERR_PIN);
    assert_non_null(strstr(p11_error_message(), "not attempted again"));
    assert_int_equal(shim_calls("C_Login"), before + 1);
    p11_uri_free(uri);
    p11_core_free(core);
    (void)state;
}

/* C_Login answers that are no verdict on the PIN (the token compared
 * nothing) are asked again a few times; SoftHSM gives them for a moment
 * while another process rewrites its token file.  A PIN the token refused
 * is still never retried (above). */
static void test_login_answer_without_verdict_is_asked_again(void **state)
{
    static const CK_RV no_verdict[] = {CKR_GENERAL_ERROR, CKR_USER_PIN_NOT_INITIALIZED};
    p11_core *core;
    p11_uri *uri = NULL;
    p11_key *key = NULL;
    unsigned long before;
    size_t i;

    assert_int_equal(p11_uri_parse("pkcs11:token=CORE;object=rsa-key", &uri, NULL), P11_URI_OK);
    for (i = 0; i < sizeof(no_verdict) / sizeof(no_verdict[0]); i++) {
        core = core_with_pin();
        shim_fail("C_Login", no_verdict[i], 2);
        before = shim_calls("C_Login");
        assert_int_equal(p11_key_open_uri(core, uri, CKO_PRIVATE_KEY, &key), P11_OK);
        assert_int_equal(shim_calls("C_Login"), before + 3);
        p11_key_unref(key);
        key = NULL;
        p11_core_free(core);
    }
    /* one that lasts is reported, and the next operation tries again */
    core = core_with_pin();
    shim_fail("C_Login", CKR_GENERAL_ERROR, 3);
    before = shim_calls("C_Login");
    assert_int_not_equal(p11_key_open_uri(core, uri, CKO_PRIVATE_KEY, &key), P11_OK);
    assert_non_null(strstr(p11_error_message(), "CKR_GENERAL_ERROR"));
    assert_int_equal(shim_calls("C_Login"), before + 3);
    assert_int_equal(p11_key_open_uri(core, uri, CKO_PRIVATE_KEY, &key), P11_OK);
    p11_key_unref(key);
    p11_core_free(core);
    p11_uri_free(uri);
    (void)state;
}

static void test_refused_handle_is_looked_up_again(void **state)
{
    p11_core *core = core_with_pin();
    p11_key *key = open_key(core, "pkcs11:token=CORE;id=%02", CKO_PRIVATE_KEY);
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    unsigned char sig[128];
    size_t len = sizeof(sig);
    unsigned long finds;

    assert_int_equal(p11_key_sign(key, &mech, hash32, 32, sig, &len), P11_OK);
    finds = shim_calls("C_FindObjectsInit");
    shim_fail("C_SignInit", CKR_OBJECT_HANDLE_INVALID, 1);
    len = sizeof(sig);
    assert_int_equal(p11_key_sign(key, &mech, hash32, 32, sig, &len), P11_OK);
    assert_int_equal(shim_calls("C_FindObjectsInit"), finds + 1);
    p11_key_unref(key);
    p11_core_free(core);
    (void)state;
}

static void test_device_error_names_member_and_recovers(void **state)
{
    p11_core *core = core_with_pin();
    p11_key *key = open_key(core, "pkcs11:token=CORE;id=%02", CKO_PRIVATE_KEY);
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    unsigned char sig[128];
    size_t len = sizeof(sig);

    shim_fail("C_Sign", CKR_DEVICE_ERROR, 1);
    assert_int_equal(p11_key_sign(key, &mech, hash32, 32, sig, &len), P11_ERR_UNAVAILABLE);
    assert_non_null(strstr(p11_error_message(), "every member is down"));
    assert_non_null(strstr(p11_error_message(), "CKR_DEVICE_ERROR"));
    assert_non_null(strstr(p11_error_message(), "serial"));
    assert_partition_state(core, "down");
    /* the next operation finds the member answering again */
    len = sizeof(sig);
    assert_int_equal(p11_key_sign(key, &mech, hash32, 32, sig, &len), P11_OK);
    assert_partition_state(core, "up");
    p11_key_unref(key);
    p11_core_free(core);
    (void)state;
}

/* A catch-all code from a member that still answers is the caller's error:
 * bad input must not take a healthy member out of rotation. */
static void test_general_error_from_a_live_member_is_not_a_fault(void **state)
{
    p11_core *core = core_with_pin();
    p11_key *key = open_key(core, "pkcs11:token=CORE;id=%02", CKO_PRIVATE_KEY);
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    unsigned char sig[128];
    size_t len = sizeof(sig);

    shim_fail("C_Sign", CKR_GENERAL_ERROR, 1);
    assert_int_equal(p11_key_sign(key, &mech, hash32, 32, sig, &len), P11_ERR_OPERATION);
    assert_non_null(strstr(p11_error_message(), "CKR_GENERAL_ERROR"));
    assert_partition_state(core, "up");
    p11_key_unref(key);
    p11_core_free(core);
    (void)state;
}

static void test_forked_child_signs_with_parents_key(void **state)
{
    p11_core *core = core_with_pin();
    p11_key *rsa = open_key(core, "pkcs11:token=CORE;object=rsa-key", CKO_PRIVATE_KEY);
    p11_key *ec = open_key(core, "pkcs11:token=CORE;id=%03", CKO_PRIVATE_KEY);
    CK_MECHANISM rmech = {CKM_RSA_PKCS, NULL, 0}, emech = {CKM_ECDSA, NULL, 0};
    unsigned char sig[512];
    size_t len = sizeof(sig);
    int status;
    pid_t pid;

    assert_int_equal(p11_key_sign(rsa, &rmech, rsa_input, sizeof(rsa_input), sig, &len), P11_OK);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        size_t l1 = sizeof(sig), l2 = sizeof(sig);
        int ok = p11_key_sign(rsa, &rmech, rsa_input, sizeof(rsa_input), sig, &l1) == P11_OK &&
                 l1 == 256 && p11_key_sign(ec, &emech, hash32, 32, sig, &l2) == P11_OK && l2 == 96;
        _exit(ok ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* and the parent still works */
    len = sizeof(sig);
    assert_int_equal(p11_key_sign(ec, &emech, hash32, 32, sig, &len), P11_OK);
    p11_key_unref(rsa);
    p11_key_unref(ec);
    p11_core_free(core);
    (void)state;
}

/* Two cores in one process (a provider in two library contexts) share one
 * module instance: freeing one must not finalize the module under the other. */
static void test_two_cores_share_the_module(void **state)
{
    p11_core *a = core_with_pin(), *b = core_with_pin();
    p11_key *ka = open_key(a, "pkcs11:token=CORE;id=%02", CKO_PRIVATE_KEY);
    p11_key *kb = open_key(b, "pkcs11:token=CORE;id=%02", CKO_PRIVATE_KEY);
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    unsigned char sig[128];
    size_t len = sizeof(sig);
    unsigned long inits = shim_calls("C_Initialize");

    p11_key_unref(ka);
    p11_core_free(a);
    assert_int_equal(p11_key_sign(kb, &mech, hash32, 32, sig, &len), P11_OK);
    assert_int_equal(shim_calls("C_Initialize"), inits);
    p11_key_unref(kb);
    p11_core_free(b);
    (void)state;
}

/* With the session key cache on, a private key is copied into a session
 * object once per member generation, and signatures are made with it. */
static void test_session_copy_is_made_once_and_signs(void **state)
{
    p11_core *core = core_with_pin();
    p11_key *key, *pub;
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    unsigned char sig[128];
    size_t len;
    unsigned long copies;
    int i;

    assert_int_equal(p11_core_set(core, "primus-session-key-cache", "yes"), P11_OK);
    key = open_key(core, "pkcs11:token=CORE;id=%02", CKO_PRIVATE_KEY);
    pub = open_key(core, "pkcs11:token=CORE;id=%02", CKO_PUBLIC_KEY);
    copies = shim_calls("C_CopyObject");
    for (i = 0; i < 20; i++) {
        len = sizeof(sig);
        assert_int_equal(p11_key_sign(key, &mech, hash32, 32, sig, &len), P11_OK);
        assert_int_equal(p11_key_verify(pub, &mech, hash32, 32, sig, len), P11_OK);
    }
    assert_int_equal(shim_calls("C_CopyObject"), copies + 1);
    /* a member fault makes every handle stale: the copy is made again */
    shim_fail("C_Sign", CKR_DEVICE_ERROR, 1);
    len = sizeof(sig);
    assert_int_not_equal(p11_key_sign(key, &mech, hash32, 32, sig, &len), P11_OK);
    len = sizeof(sig);
    assert_int_equal(p11_key_sign(key, &mech, hash32, 32, sig, &len), P11_OK);
    assert_int_equal(shim_calls("C_CopyObject"), copies + 2);
    p11_key_unref(key);
    p11_key_unref(pub);
    p11_core_free(core);

    /* and with the cache off, no copy at all */
    core = core_with_pin();
    assert_int_equal(p11_core_set(core, "primus-session-key-cache", "no"), P11_OK);
    key = open_key(core, "pkcs11:token=CORE;id=%02", CKO_PRIVATE_KEY);
    copies = shim_calls("C_CopyObject");
    len = sizeof(sig);
    assert_int_equal(p11_key_sign(key, &mech, hash32, 32, sig, &len), P11_OK);
    assert_int_equal(shim_calls("C_CopyObject"), copies);
    p11_key_unref(key);
    p11_core_free(core);
    (void)state;
}

/* The mechanism check says no only when the token's list is known: a list
 * that could not be read is asked for again, never cached as empty. */
static void test_unreadable_mechanism_list_is_not_cached(void **state)
{
    p11_core *core = core_with_pin();
    p11_key *key = open_key(core, "pkcs11:token=CORE;id=%02", CKO_PRIVATE_KEY);

    shim_fail("C_GetMechanismList", CKR_GENERAL_ERROR, 1);
    assert_true(p11_key_supports(key, CKM_ECDSA, CKF_SIGN));  /* unknown: not a "no" */
    assert_true(p11_key_supports(key, CKM_ECDSA, CKF_SIGN));  /* read now */
    assert_false(p11_key_supports(key, CKM_RSA_X9_31, CKF_SIGN)); /* SoftHSM lacks it */
    p11_key_unref(key);
    p11_core_free(core);
    (void)state;
}

static void expect_module_error(const char *path, const char *fragment)
{
    p11_core *core = p11_core_new();
    assert_int_equal(p11_core_set(core, "pkcs11-module-path", path), P11_OK);
    assert_int_equal(p11_core_start(core), P11_ERR_MODULE);
    assert_non_null(strstr(p11_error_message(), fragment));
    p11_core_free(core);
}

static void test_module_errors_name_the_cause(void **state)
{
    expect_module_error("/nonexistent/libnothing.so", "does not exist");
    expect_module_error("/etc/hostname", "not a loadable shared library");
    expect_module_error("libc.so.6", "does not exist"); /* relative names are not searched */
    (void)state;
}

static void expect_pin_error(const char *spec, const char *fragment)
{
    p11_core *core = new_core(spec);
    p11_uri *uri = NULL;
    p11_key *key = NULL;

    assert_int_equal(p11_uri_parse("pkcs11:token=CORE;id=%01;type=private", &uri, NULL), P11_URI_OK);
    assert_int_equal(p11_key_open_uri(core, uri, CKO_PRIVATE_KEY, &key), P11_ERR_PIN);
    assert_non_null(strstr(p11_error_message(), fragment));
    p11_uri_free(uri);
    p11_core_free(core);
}

static void test_pin_sources_are_checked(void **state)
{
    char path[300], spec[320];
    FILE *f;

    snprintf(spec, sizeof(spec), "file:%s/missing", dir);
    expect_pin_error(spec, "cannot read pin file");
    snprintf(path, sizeof(path), "%s/open-pin", dir);
    f = fopen(path, "w");
    fputs("1234", f);
    fclose(f);
    chmod(path, 0644);
    snprintf(spec, sizeof(spec), "file:%s", path);
    expect_pin_error(spec, "readable by other users");
    snprintf(path, sizeof(path), "%s/empty-pin", dir);
    fclose(fopen(path, "w"));
    chmod(path, 0600);
    snprintf(spec, sizeof(spec), "file:%s", path);
    expect_pin_error(spec, "is empty");
    expect_pin_error(NULL, "no PIN is configured");
    expect_pin_error("file://pinhost.example/etc/pin", "names a file on host \"pinhost.example\"");
    /* RFC 8089's local forms: no host, or localhost */
    for (int i = 0; i < 2; i++) {
        p11_core *core;
        p11_key *key;
        snprintf(spec, sizeof(spec), "file://%s%s", i ? "localhost" : "", pin_file);
        core = new_core(spec);
        key = open_key(core, "pkcs11:token=CORE;id=%02", CKO_PRIVATE_KEY);
        p11_key_unref(key);
        p11_core_free(core);
    }
    (void)state;
}

static void test_config_errors(void **state)
{
    p11_core *core = p11_core_new();

    assert_int_equal(p11_core_set(core, "pkcs11-module-pth", "/x"), P11_ERR_CONFIG);
    assert_non_null(strstr(p11_error_message(), "unknown configuration key \"pkcs11-module-pth\""));
    assert_int_equal(p11_core_set(core, "pkcs11-module-quirks", "no-deinit bogus"), P11_ERR_CONFIG);
    assert_non_null(strstr(p11_error_message(), "bogus"));
    assert_int_equal(p11_core_set(core, "primus-member-timeout-ms", "soon"), P11_ERR_CONFIG);
    assert_int_equal(p11_core_set(core, "primus-audit-policy", "maybe"), P11_ERR_CONFIG);
    assert_int_equal(p11_core_set(core, "primus-session-key-cache", "auto"), P11_OK);
    p11_core_free(core);
    (void)state;
}

static void test_no_such_token_and_key(void **state)
{
    p11_core *core = core_with_pin();
    p11_uri *uri = NULL;
    p11_key *key = NULL;

    assert_int_equal(p11_uri_parse("pkcs11:token=ELSEWHERE;object=rsa-key", &uri, NULL), P11_URI_OK);
    assert_int_equal(p11_key_open_uri(core, uri, CKO_PRIVATE_KEY, &key), P11_ERR_NO_TOKEN);
    assert_non_null(strstr(p11_error_message(), "no token labelled \"ELSEWHERE\""));
    p11_uri_free(uri);
    assert_int_equal(p11_uri_parse("pkcs11:token=CORE;object=nothing", &uri, NULL), P11_URI_OK);
    assert_int_equal(p11_key_open_uri(core, uri, CKO_PRIVATE_KEY, &key), P11_ERR_NOT_FOUND);
    assert_non_null(strstr(p11_error_message(), "no object matches"));
    p11_uri_free(uri);
    p11_core_free(core);
    (void)state;
}

/* A key deleted from the token under a running process: the operation
 * fails with the reason, the member stays in rotation, and the answer is
 * remembered briefly instead of searching on every operation. */
static void test_key_deleted_under_a_running_process(void **state)
{
    p11_core *core = core_with_pin();
    p11_key *key;
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    unsigned char sig[128];
    size_t len = sizeof(sig);
    unsigned long finds;
    char cmd[1024];

    snprintf(cmd, sizeof(cmd), "bash -c 'source %s && token_keygen CORE EC:prime256v1 09 doomed'",
             PRIMUS_TOKEN_SH);
    assert_int_equal(system(cmd), 0);
    key = open_key(core, "pkcs11:token=CORE;object=doomed", CKO_PRIVATE_KEY);
    assert_int_equal(p11_key_sign(key, &mech, hash32, 32, sig, &len), P11_OK);
    snprintf(cmd, sizeof(cmd),
             "pkcs11-tool --module %s --token-label CORE --login --pin 1234 --delete-object "
             "--type privkey --id 09 >/dev/null 2>&1",
             PRIMUS_SOFTHSM_PATH);
    assert_int_equal(system(cmd), 0);
    /* SoftHSM notices the deletion on its next use of the handle; make that
     * certain by refusing the cached handle once */
    shim_fail("C_SignInit", CKR_KEY_HANDLE_INVALID, 1);
    len = sizeof(sig);
    assert_int_equal(p11_key_sign(key, &mech, hash32, 32, sig, &len), P11_ERR_NOT_FOUND);
    assert_non_null(strstr(p11_error_message(), "the key is missing on member"));
    assert_non_null(strstr(p11_error_message(), "partition \"CORE\""));
    assert_null(strstr(p11_error_message(), "no other member")); /* there is none */
    assert_partition_state(core, "up");
    finds = shim_calls("C_FindObjectsInit");
    len = sizeof(sig);
    assert_int_equal(p11_key_sign(key, &mech, hash32, 32, sig, &len), P11_ERR_NOT_FOUND);
    assert_int_equal(shim_calls("C_FindObjectsInit"), finds);
    p11_key_unref(key);
    p11_core_free(core);
    (void)state;
}

/* A second object with the key's id and label appears under a running
 * process: the key no longer names one object, and the error says so. */
static void test_key_made_ambiguous_under_a_running_process(void **state)
{
    p11_core *core = core_with_pin();
    p11_key *key;
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    unsigned char sig[128];
    size_t len = sizeof(sig);
    char cmd[1024];

    snprintf(cmd, sizeof(cmd), "bash -c 'source %s && token_keygen CORE EC:prime256v1 0b twin'",
             PRIMUS_TOKEN_SH);
    assert_int_equal(system(cmd), 0);
    key = open_key(core, "pkcs11:token=CORE;object=twin", CKO_PRIVATE_KEY);
    assert_int_equal(p11_key_sign(key, &mech, hash32, 32, sig, &len), P11_OK);
    assert_int_equal(system(cmd), 0); /* the same id and label once more */
    shim_fail("C_SignInit", CKR_KEY_HANDLE_INVALID, 1); /* the cached handle is looked up again */
    len = sizeof(sig);
    assert_int_equal(p11_key_sign(key, &mech, hash32, 32, sig, &len), P11_ERR_AMBIGUOUS);
    assert_non_null(strstr(p11_error_message(), "the key is not unique on member"));
    assert_partition_state(core, "up");
    p11_key_unref(key);
    p11_core_free(core);
    (void)state;
}

static p11_core *core_freed_at_exit;

static void free_core_at_exit(void)
{
    p11_core_free(core_freed_at_exit); /* as OpenSSL frees the provider at exit */
}

/* A process that exits while the prober re-initializes a down member (nginx
 * workers stopping during a failover): the core freed at exit must not pull
 * the member and module from under the prober's call (ASan saw a
 * use-after-free there).  Run in a child, which exits in the middle of a
 * slowed C_Initialize of the probe. */
static void test_exit_during_a_probe(void **state)
{
    char topo[300], spec[320];
    FILE *f;
    pid_t pid;
    int status;

    if (getenv("PRIMUS_TSAN")) /* ThreadSanitizer cannot follow a fork with threads running */
        skip();

    snprintf(topo, sizeof(topo), "%s/exit-topology.json", dir);
    f = fopen(topo, "w");
    assert_non_null(f);
    fprintf(f, "{\"partitions\": [{\"name\": \"CORE\", \"members\": [{\"name\": \"m1\", "
               "\"module\": \"%s\", \"env\": {\"PRIMUS_TEST_MEMBER\": \"m1\"}, "
               "\"timeout-ms\": 2000}]}]}\n",
            PRIMUS_SHIM_PATH);
    fclose(f);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
        unsigned char sig[128];
        size_t len = sizeof(sig);
        p11_key *key;

        atexit(free_core_at_exit); /* before the core's own exit handlers: runs after them */
        core_freed_at_exit = p11_core_new();
        snprintf(spec, sizeof(spec), "file:%s", pin_file);
        if (p11_core_set(core_freed_at_exit, "primus-topology", topo) != P11_OK ||
            p11_core_set(core_freed_at_exit, "pkcs11-module-token-pin", spec) != P11_OK)
            _exit(10);
        key = open_key(core_freed_at_exit, "pkcs11:token=CORE;id=%02", CKO_PRIVATE_KEY);
        shim_fail("C_Sign", CKR_DEVICE_ERROR, 1);
        if (p11_key_sign(key, &mech, hash32, 32, sig, &len) != P11_ERR_UNAVAILABLE)
            _exit(11); /* the member is down now; the prober probes it in 100 ms */
        shim_delay("C_Initialize", 600);
        usleep(350 * 1000); /* the probe is inside C_Initialize */
        exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    (void)state;
}

/* A worker forked while the parent's prober hangs in C_Initialize of a down
 * member (an nginx reload during an HSM outage).  The child has no such
 * thread, so a lock that thread held at the fork must not hold up the
 * child's own start: before, the child's first operation waited for a lock
 * that would never be released, and the member stayed down in it for good. */
static void test_fork_while_a_probe_hangs(void **state)
{
    char topo[300], spec[320];
    FILE *f;
    pid_t pid;
    int status;

    if (getenv("PRIMUS_TSAN")) /* ThreadSanitizer cannot follow a fork with threads running */
        skip();

    snprintf(topo, sizeof(topo), "%s/fork-topology.json", dir);
    f = fopen(topo, "w");
    assert_non_null(f);
    fprintf(f, "{\"partitions\": [{\"name\": \"CORE\", \"members\": [{\"name\": \"m1\", "
               "\"module\": \"%s\", \"env\": {\"PRIMUS_TEST_MEMBER\": \"m1\"}, "
               "\"timeout-ms\": 3000}]}]}\n",
            PRIMUS_SHIM_PATH);
    fclose(f);
    fflush(NULL);
    pid = fork(); /* the server's master process */
    assert_true(pid >= 0);
    if (pid == 0) {
        CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
        unsigned char sig[128];
        size_t len = sizeof(sig);
        p11_core *core = p11_core_new();
        p11_key *key;
        pid_t worker;
        int wstatus;

        snprintf(spec, sizeof(spec), "file:%s", pin_file);
        if (p11_core_set(core, "primus-topology", topo) != P11_OK ||
            p11_core_set(core, "pkcs11-module-token-pin", spec) != P11_OK)
            _exit(10);
        key = open_key(core, "pkcs11:token=CORE;id=%02", CKO_PRIVATE_KEY);
        shim_fail("C_Sign", CKR_DEVICE_ERROR, 1);
        if (p11_key_sign(key, &mech, hash32, 32, sig, &len) != P11_ERR_UNAVAILABLE)
            _exit(11); /* the member is down; the prober probes it in 100 ms */
        shim_delay("C_Initialize", 2500);
        usleep(400 * 1000); /* the probe is inside C_Initialize */
        fflush(NULL);
        worker = fork();
        if (worker < 0)
            _exit(12);
        if (worker == 0) {
            shim_delay("C_Initialize", 0); /* the HSM answers the worker */
            len = sizeof(sig);
            if (p11_key_sign(key, &mech, hash32, 32, sig, &len) != P11_OK) {
                fprintf(stderr, "worker: %s\n", p11_error_message());
                _exit(13);
            }
            _exit(0);
        }
        if (waitpid(worker, &wstatus, 0) != worker || !WIFEXITED(wstatus))
            _exit(14);
        _exit(WEXITSTATUS(wstatus));
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    (void)state;
}

/* A member whose reconnect takes longer than its deadline (a networked
 * HSM's library connecting in C_Initialize, slower than one signature may
 * take): the probe outlives the deadline but succeeds, and the member must
 * come back.  Before, every such probe was abandoned and its answer
 * dropped, so the member stayed down for good although it was healthy. */
static void test_slow_reconnect_brings_the_member_back(void **state)
{
    char topo[300], spec[320];
    FILE *f;
    pid_t pid;
    int status;

    snprintf(topo, sizeof(topo), "%s/slow-topology.json", dir);
    f = fopen(topo, "w");
    assert_non_null(f);
    fprintf(f, "{\"partitions\": [{\"name\": \"CORE\", \"members\": [{\"name\": \"m1\", "
               "\"module\": \"%s\", \"env\": {\"PRIMUS_TEST_MEMBER\": \"m1\"}, "
               "\"timeout-ms\": 400}]}]}\n",
            PRIMUS_SHIM_PATH);
    fclose(f);
    fflush(NULL);
    pid = fork(); /* the shim's delays and faults stay in this child */
    assert_true(pid >= 0);
    if (pid == 0) {
        CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
        unsigned char sig[128];
        size_t len = sizeof(sig);
        p11_core *core = p11_core_new();
        time_t give_up;
        p11_status st = P11_ERR_UNAVAILABLE;
        p11_key *key;

        snprintf(spec, sizeof(spec), "file:%s", pin_file);
        if (p11_core_set(core, "primus-topology", topo) != P11_OK ||
            p11_core_set(core, "pkcs11-module-token-pin", spec) != P11_OK)
            _exit(10);
        key = open_key(core, "pkcs11:token=CORE;id=%02", CKO_PRIVATE_KEY);
        shim_delay("C_Initialize", 900); /* every reconnect from now on: over the deadline */
        shim_fail("C_Sign", CKR_DEVICE_ERROR, 1);
        if (p11_key_sign(key, &mech, hash32, 32, sig, &len) != P11_ERR_UNAVAILABLE)
            _exit(11); /* the member is down now */
        give_up = time(NULL) + 8;
        while (st != P11_OK && time(NULL) < give_up) {
            usleep(50 * 1000);
            len = sizeof(sig);
            st = p11_key_sign(key, &mech, hash32, 32, sig, &len);
        }
        if (st != P11_OK) {
            fprintf(stderr, "member not back after 8 s: %s\n", p11_error_message());
            _exit(12);
        }
        p11_core_free(core);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    (void)state;
}

/* A key with CKA_ALWAYS_AUTHENTICATE takes a context-specific login before
 * each signature: without it the token refuses C_Sign (user not logged in). */
static void test_always_authenticate_key_logs_in_for_each_signature(void **state)
{
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    unsigned char sig[128];
    size_t len;
    unsigned long logins;
    p11_core *core;
    p11_key *key;
    int i;

    assert_int_equal(system("pkcs11-tool --module " PRIMUS_SOFTHSM_PATH " --token-label CORE "
                            "--login --pin 1234 --keypairgen --key-type EC:prime256v1 --id 0a "
                            "--label always-auth-key --always-auth >/dev/null"),
                     0);
    core = core_with_pin();
    key = open_key(core, "pkcs11:token=CORE;id=%0a", CKO_PRIVATE_KEY);
    logins = shim_calls("C_Login");
    for (i = 0; i < 3; i++) {
        len = sizeof(sig);
        assert_int_equal(p11_key_sign(key, &mech, hash32, 32, sig, &len), P11_OK);
        assert_int_equal(len, 64);
    }
    assert_true(shim_calls("C_Login") >= logins + 3);
    p11_key_unref(key);
    p11_core_free(core);
    assert_int_equal(system("for t in privkey pubkey; do pkcs11-tool --module " PRIMUS_SOFTHSM_PATH
                            " --token-label CORE --login --pin 1234 --delete-object --type $t "
                            "--id 0a >/dev/null || exit 1; done"),
                     0);
    (void)state;
}

static void note_signal(int sig) { (void)sig; }

/* The core's threads (gate workers, prober) take none of the application's
 * signals.  An nginx master loads its keys, so these threads start, before
 * it blocks its signals and waits for them in sigsuspend; a SIGCHLD or
 * SIGQUIT handed to one of our threads instead never woke it, and the
 * master did not stop (seen as a hang at `nginx -s quit`). */
static void test_core_threads_take_no_application_signal(void **state)
{
    char topo[300];
    FILE *f;
    pid_t pid;
    int status;

    snprintf(topo, sizeof(topo), "%s/signal-topology.json", dir);
    f = fopen(topo, "w");
    assert_non_null(f);
    fprintf(f, "{\"partitions\": [{\"name\": \"CORE\", \"members\": [{\"name\": \"m1\", "
               "\"module\": \"%s\", \"env\": {\"PRIMUS_TEST_MEMBER\": \"m1\"}}]}]}\n",
            PRIMUS_SHIM_PATH);
    fclose(f);
    fflush(NULL);
    pid = fork(); /* the signal set-up stays in this child */
    assert_true(pid >= 0);
    if (pid == 0) {
        CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
        unsigned char sig[128];
        size_t len = sizeof(sig);
        struct timespec wait = {3, 0};
        sigset_t usr1;
        p11_core *core = p11_core_new();
        char spec[320];
        p11_key *key;

        signal(SIGUSR1, note_signal);
        snprintf(spec, sizeof(spec), "file:%s", pin_file);
        if (p11_core_set(core, "primus-topology", topo) != P11_OK ||
            p11_core_set(core, "pkcs11-module-token-pin", spec) != P11_OK)
            _exit(10);
        key = open_key(core, "pkcs11:token=CORE;id=%02", CKO_PRIVATE_KEY);
        if (p11_key_sign(key, &mech, hash32, 32, sig, &len) != P11_OK) /* gate workers */
            _exit(11);
        shim_fail("C_Sign", CKR_DEVICE_ERROR, 1);
        len = sizeof(sig);
        (void)p11_key_sign(key, &mech, hash32, 32, sig, &len); /* member down: the prober */
        /* as the master does once its keys are loaded: block, then wait */
        sigemptyset(&usr1);
        sigaddset(&usr1, SIGUSR1);
        sigprocmask(SIG_BLOCK, &usr1, NULL);
        kill(getpid(), SIGUSR1);
        if (sigtimedwait(&usr1, NULL, &wait) != SIGUSR1)
            _exit(12); /* one of the core's threads took it */
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find_lists_every_key_with_a_uri_that_parses),
        cmocka_unit_test(test_sign_and_verify_in_token),
        cmocka_unit_test(test_ambiguous_uri_lists_candidates),
        cmocka_unit_test(test_warm_operations_make_no_lookup_login_or_session_open),
        cmocka_unit_test(test_wrong_pin_is_never_retried),
        cmocka_unit_test(test_login_answer_without_verdict_is_asked_again),
        cmocka_unit_test(test_refused_handle_is_looked_up_again),
        cmocka_unit_test(test_device_error_names_member_and_recovers),
        cmocka_unit_test(test_general_error_from_a_live_member_is_not_a_fault),
        cmocka_unit_test(test_forked_child_signs_with_parents_key),
        cmocka_unit_test(test_two_cores_share_the_module),
        cmocka_unit_test(test_session_copy_is_made_once_and_signs),
        cmocka_unit_test(test_unreadable_mechanism_list_is_not_cached),
        cmocka_unit_test(test_module_errors_name_the_cause),
        cmocka_unit_test(test_pin_sources_are_checked),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_no_such_token_and_key),
        cmocka_unit_test(test_key_deleted_under_a_running_process),
        cmocka_unit_test(test_key_made_ambiguous_under_a_running_process),
        cmocka_unit_test(test_exit_during_a_probe),
        cmocka_unit_test(test_fork_while_a_probe_hangs),
        cmocka_unit_test(test_slow_reconnect_brings_the_member_back),
        cmocka_unit_test(test_always_authenticate_key_logs_in_for_each_signature),
        cmocka_unit_test(test_core_threads_take_no_application_signal),
    };
    return cmocka_run_group_tests(tests, setup_token, remove_token);
}
