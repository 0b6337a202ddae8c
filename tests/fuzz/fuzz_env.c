/*
 * fuzz_env.c: see fuzz_env.h.
 *
 * The tokens are made with the same tools the tests use (softhsm2-util,
 * pkcs11-tool, openssl), in a fresh directory that SOFTHSM2_CONF points at,
 * so the system token store is never touched and parallel fuzzer processes
 * (-jobs, -workers) each have their own.  The provider is configured the way
 * an application's openssl.cnf does it, with the module path and no PIN:
 * PINs come from the URIs (pin-value) or the passphrase callbacks the
 * targets install, as they do in real use.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw's struct FTW (the build also defines it) */
#endif
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <openssl/err.h>
#include <openssl/provider.h>

#include "fuzz_env.h"

#ifndef PRIMUS_FUZZ_PROVIDER_SO
#error "PRIMUS_FUZZ_PROVIDER_SO (the instrumented primus.so) must be defined by the build"
#endif
#ifndef PRIMUS_FUZZ_SOFTHSM
#define PRIMUS_FUZZ_SOFTHSM "/usr/lib/softhsm/libsofthsm2.so"
#endif

static char env_dir[4096];
static OSSL_LIB_CTX *env_libctx;

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void env_cleanup(void)
{
    if (env_dir[0] != '\0')
        nftw(env_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void env_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void env_fail(const char *fmt, ...)
{
    va_list ap;

    fputs("fuzz_env: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    ERR_print_errors_fp(stderr);
    env_cleanup();
    exit(1);
}

/* Run a shell command; its output goes to setup.log, shown if it fails.
 * Paths come from mkdtemp and are single-quoted. */
static void run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void run(const char *fmt, ...)
{
    char cmd[8192], full[8400];
    va_list ap;
    int n, rc;

    va_start(ap, fmt);
    n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(cmd))
        env_fail("command too long");
    snprintf(full, sizeof(full), "{ %s; } >>'%s/setup.log' 2>&1", cmd, env_dir);
    rc = system(full);
    if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
        char show[8400];

        snprintf(show, sizeof(show), "cat '%s/setup.log' >&2", env_dir);
        if (system(show) != 0)
            fputs("(no setup.log)\n", stderr);
        env_fail("setting up the tokens failed (exit %d): %s", rc, cmd);
    }
}

static void write_file(const char *name, const char *text)
{
    char path[4200];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", env_dir, name);
    f = fopen(path, "w");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
        env_fail("cannot write %s: %s", path, strerror(errno));
}

static void make_tokens(const char *softhsm)
{
    static const struct {
        const char *type, *id, *label;
    } keys[] = {
        {"rsa:2048", "01", "rsa"},      {"EC:prime256v1", "02", "ec"},
        {"EC:secp384r1", "03", "dup"},  {"EC:prime256v1", "04", "dup"},
        {"EC:edwards25519", "05", "ed"},     {"EC:secp256k1", "09", "k1"},
    };
    char tool_a[4600], tool_b[4600];
    size_t i;

    snprintf(tool_a, sizeof(tool_a),
             "pkcs11-tool --module '%s' --token-label " FUZZ_TOKEN_A " --login --pin " FUZZ_PIN_A,
             softhsm);
    snprintf(tool_b, sizeof(tool_b),
             "pkcs11-tool --module '%s' --token-label " FUZZ_TOKEN_B " --login --pin " FUZZ_PIN_B,
             softhsm);

    /* pkcs11-tool's --token-label matches a prefix: token "fuzz" is filled
     * before "fuzz2" exists.  The shared prefix stays, since a URI's token=
     * must match a label exactly. */
    run("softhsm2-util --init-token --free --label " FUZZ_TOKEN_A " --pin " FUZZ_PIN_A
        " --so-pin 12345678");
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        run("%s --keypairgen --key-type %s --id %s --label %s", tool_a, keys[i].type, keys[i].id,
            keys[i].label);
    run("%s --keygen --key-type AES:32 --id 06 --label aes", tool_a);
    run("printf 'not a key' >'%s/data.bin' && %s --write-object '%s/data.bin' --type data "
        "--label data",
        env_dir, tool_a, env_dir);
    /* Certificates are made in software: what matters is how the store
     * finds and returns them, not whose key signed them. */
    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 "
        "-subj /CN=" FUZZ_CERT_SUBJECT " -set_serial %d -keyout '%s/c1.key' -outform DER "
        "-out '%s/c1.der' && %s --write-object '%s/c1.der' --type cert --id 02 --label ec",
        FUZZ_CERT_SERIAL, env_dir, env_dir, tool_a, env_dir);
    /* the same subject again (a renewal): a search by subject finds two */
    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 "
        "-subj /CN=" FUZZ_CERT_SUBJECT " -set_serial %d -keyout '%s/c3.key' -outform DER "
        "-out '%s/c3.der' && %s --write-object '%s/c3.der' --type cert --id 08 "
        "--label ec-renewed",
        FUZZ_CERT_SERIAL + 1, env_dir, env_dir, tool_a, env_dir);
    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 "
        "-subj /CN=fuzz-other -keyout '%s/c2.key' -outform DER -out '%s/c2.der' && "
        "%s --write-object '%s/c2.der' --type cert --id 07 --label other",
        env_dir, env_dir, tool_a, env_dir);
    run("softhsm2-util --init-token --free --label " FUZZ_TOKEN_B " --pin " FUZZ_PIN_B
        " --so-pin 12345678");
    run("%s --keypairgen --key-type EC:prime256v1 --id 02 --label ec", tool_b);
}

OSSL_LIB_CTX *fuzz_env_init(void)
{
    const char *tmp = getenv("TMPDIR");
    const char *provider = getenv("PRIMUS_FUZZ_PROVIDER");
    const char *softhsm = getenv("PRIMUS_SOFTHSM_MODULE");
    char conf[16384], path[4200];

    if (env_libctx != NULL)
        return env_libctx;
    if (tmp == NULL || *tmp == '\0')
        tmp = "/tmp";
    if (provider == NULL || *provider == '\0')
        provider = PRIMUS_FUZZ_PROVIDER_SO;
    if (softhsm == NULL || *softhsm == '\0')
        softhsm = PRIMUS_FUZZ_SOFTHSM;
    if (strchr(tmp, '\'') != NULL || strchr(softhsm, '\'') != NULL)
        env_fail("TMPDIR and PRIMUS_SOFTHSM_MODULE must not contain a quote");

    snprintf(env_dir, sizeof(env_dir), "%s/primus-fuzz-XXXXXX", tmp);
    if (mkdtemp(env_dir) == NULL) {
        int e = errno;

        env_dir[0] = '\0';
        env_fail("mkdtemp under %s: %s", tmp, strerror(e));
    }
    atexit(env_cleanup);

    snprintf(path, sizeof(path), "%s/tokens", env_dir);
    if (mkdir(path, 0700) != 0)
        env_fail("mkdir %s: %s", path, strerror(errno));
    snprintf(conf, sizeof(conf),
             "directories.tokendir = %s/tokens\n"
             "objectstore.backend = file\n"
             "log.level = ERROR\n"
             "slots.removable = false\n",
             env_dir);
    write_file("softhsm2.conf", conf);
    snprintf(path, sizeof(path), "%s/softhsm2.conf", env_dir);
    setenv("SOFTHSM2_CONF", path, 1);
    make_tokens(softhsm);

    /* What an application's openssl.cnf says (tests/lib/openssl_conf.sh). */
    snprintf(conf, sizeof(conf),
             "openssl_conf = openssl_init\n"
             "[openssl_init]\n"
             "providers = provider_sect\n"
             "[provider_sect]\n"
             "default = default_sect\n"
             "primus = primus_sect\n"
             "[default_sect]\n"
             "activate = 1\n"
             "[primus_sect]\n"
             "module = %s\n"
             "pkcs11-module-path = %s\n"
             "activate = 1\n",
             provider, softhsm);
    write_file("openssl.cnf", conf);
    snprintf(path, sizeof(path), "%s/openssl.cnf", env_dir);

    env_libctx = OSSL_LIB_CTX_new();
    if (env_libctx == NULL)
        env_fail("OSSL_LIB_CTX_new failed");
    if (!OSSL_LIB_CTX_load_config(env_libctx, path))
        env_fail("loading %s (provider %s) failed", path, provider);
    if (!OSSL_PROVIDER_available(env_libctx, "primus")
        || !OSSL_PROVIDER_available(env_libctx, "default"))
        env_fail("the primus and default providers are not both active (%s)", provider);
    ERR_clear_error();
    /* The library context lives as long as the process: unloading primus.so
     * would unmap counters libFuzzer still reads. */
    return env_libctx;
}
