/* stress_threads: many threads signing through the primus provider at once,
 * as a threaded server does, so that ThreadSanitizer (scripts/tsan.sh) and
 * the ordinary test runs see the provider's and the core's shared state
 * (module, partition, session pool, per-key handle cache, store) used
 * concurrently.
 *
 *   stress_threads --conf openssl.cnf --token LABEL [--threads N] [--count N]
 *
 * The token holds RSA-2048 keys rsa-0 .. rsa-(N-1) and P-256 keys ec-0 ..
 * ec-(N-1).  For each algorithm, two modes:
 *   shared  the main thread loads rsa-0 (ec-0) once and every thread signs
 *           with that one EVP_PKEY
 *   own     thread i loads rsa-i (ec-i) itself, all threads at once, through
 *           OSSL_STORE, and derives its public key itself
 * Every thread has its own EVP_MD_CTX, makes --count EVP_DigestSign
 * signatures of distinct messages and verifies each with the default
 * provider against the key's public half; a tampered message must not
 * verify (so verification is not vacuous).  A successful signature must
 * leave OpenSSL's error queue empty.  Exit 0 only when, in every mode,
 * signed == verified == threads * count and nothing failed. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/x509.h>

#include "../lib/store_key.h"

#define MAX_THREADS 64

static OSSL_LIB_CTX *libctx;
static const char *token;
static int count = 25;

typedef struct mode {
    const char *alg;     /* key name prefix: "rsa" or "ec" */
    int own;             /* each thread loads its own key */
    EVP_PKEY *key, *pub; /* shared mode: loaded by the main thread */
} mode;

typedef struct worker {
    int index;
    const mode *m;
    pthread_barrier_t *start;
    long signed_ok, verified, failed;
} worker;

/* The public half of an HSM key as a default-provider key: encoded by the
 * primus provider (SubjectPublicKeyInfo), decoded by the default provider,
 * so that verification never goes through the code under test. */
static EVP_PKEY *public_half(EVP_PKEY *key)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    EVP_PKEY *pub = NULL;
    int len = i2d_PUBKEY(key, &der);

    if (len <= 0)
        return NULL;
    p = der;
    pub = d2i_PUBKEY_ex(NULL, &p, len, libctx, "provider=default");
    OPENSSL_free(der);
    if (pub != NULL && strcmp(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(pub)), "default") != 0) {
        fprintf(stderr, "stress_threads: the public key was not decoded by the default provider\n");
        EVP_PKEY_free(pub);
        pub = NULL;
    }
    return pub;
}

static void key_uri(char *buf, size_t size, const char *alg, int i)
{
    snprintf(buf, size, "pkcs11:token=%s;object=%s-%d;type=private", token, alg, i);
}

/* Report a failure with the error queue; only the first few per thread, so
 * that a systematic failure does not flood the log. */
static void report(worker *w, const char *what)
{
    if (w->failed++ < 3) {
        fprintf(stderr, "stress_threads: %s %s thread %d: %s\n", w->m->alg,
                w->m->own ? "own" : "shared", w->index, what);
        ERR_print_errors_fp(stderr);
    }
    ERR_clear_error();
}

static void *run_worker(void *arg)
{
    worker *w = arg;
    EVP_MD_CTX *sctx = EVP_MD_CTX_new(), *vctx = EVP_MD_CTX_new();
    EVP_PKEY *key = w->m->key, *pub = w->m->pub;
    unsigned char sig[512];
    char msg[96];
    int i;

    /* all threads begin together, so that loads and signatures overlap */
    pthread_barrier_wait(w->start);
    if (sctx == NULL || vctx == NULL) {
        report(w, "out of memory");
        goto done;
    }
    if (w->m->own) {
        char uri[256];
        key_uri(uri, sizeof(uri), w->m->alg, w->index);
        key = test_store_load_private_key(libctx, uri);
        pub = key != NULL ? public_half(key) : NULL;
        if (key == NULL || pub == NULL) {
            report(w, key == NULL ? "cannot load its key" : "cannot derive its public key");
            goto done;
        }
    }
    for (i = 0; i < count; i++) {
        size_t len = sizeof(sig), mlen;

        mlen = (size_t)snprintf(msg, sizeof(msg), "%s/%s thread %d message %d", w->m->alg,
                                w->m->own ? "own" : "shared", w->index, i);
        if (EVP_DigestSignInit_ex(sctx, NULL, "SHA256", libctx, NULL, key, NULL) != 1 ||
            EVP_DigestSign(sctx, sig, &len, (const unsigned char *)msg, mlen) != 1) {
            report(w, "signing failed");
            continue;
        }
        if (ERR_peek_error() != 0) {
            report(w, "a successful signature left errors in the queue");
            continue;
        }
        w->signed_ok++;
        if (EVP_DigestVerifyInit_ex(vctx, NULL, "SHA256", libctx, "provider=default", pub,
                                    NULL) != 1 ||
            EVP_DigestVerify(vctx, sig, len, (const unsigned char *)msg, mlen) != 1) {
            report(w, "a signature does not verify");
            continue;
        }
        w->verified++;
        if (i == 0) {
            /* the same signature over another message must be refused */
            msg[0] ^= 1;
            if (EVP_DigestVerifyInit_ex(vctx, NULL, "SHA256", libctx, "provider=default", pub,
                                        NULL) != 1 ||
                EVP_DigestVerify(vctx, sig, len, (const unsigned char *)msg, mlen) == 1)
                report(w, "a signature verifies over a tampered message");
            ERR_clear_error(); /* the refusal leaves an error */
        }
    }
done:
    if (w->m->own) {
        EVP_PKEY_free(key);
        EVP_PKEY_free(pub);
    }
    EVP_MD_CTX_free(sctx);
    EVP_MD_CTX_free(vctx);
    /* OpenSSL keeps per-thread state (error queue, ...) until this */
    OPENSSL_thread_stop_ex(libctx);
    OPENSSL_thread_stop();
    return NULL;
}

#if defined(__SANITIZE_THREAD__) /* gcc */
#define STRESS_TSAN 1
#elif defined(__has_feature) /* clang */
#if __has_feature(thread_sanitizer)
#define STRESS_TSAN 1
#endif
#endif

#ifdef STRESS_TSAN
/* gcc's ThreadSanitizer runtime interposes atexit() and registers the
 * handler for the end of the process, not for the library that asked (as
 * glibc's atexit does: it runs at dlclose).  The exit handler that the core
 * registers from primus.so would then run after OSSL_LIB_CTX_free has
 * unmapped primus.so, and crash.  Under TSan only, keep primus.so mapped to
 * the end, as it stays in any program that keeps its provider loaded. */
static void keep_provider_mapped(void)
{
    OSSL_PROVIDER *prov = OSSL_PROVIDER_load(libctx, "primus");
    Dl_info self;

    if (prov != NULL && dladdr((void *)OSSL_PROVIDER_get0_dispatch(prov), &self) &&
        self.dli_fname != NULL)
        dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
    OSSL_PROVIDER_unload(prov);
}
#else
static void keep_provider_mapped(void) {}
#endif

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One mode: threads start together, then the counts are checked. */
static int run_mode(mode *m, int threads)
{
    pthread_t tids[MAX_THREADS];
    worker ws[MAX_THREADS];
    pthread_barrier_t start;
    long signed_ok = 0, verified = 0, failed = 0, want = (long)threads * count;
    int i, started = 0, ok;
    double t0 = now_s();

    if (!m->own) {
        char uri[256];
        key_uri(uri, sizeof(uri), m->alg, 0);
        m->key = test_store_load_private_key(libctx, uri);
        m->pub = m->key != NULL ? public_half(m->key) : NULL;
        if (m->key == NULL || m->pub == NULL) {
            fprintf(stderr, "stress_threads: cannot load %s or its public half\n", uri);
            ERR_print_errors_fp(stderr);
            EVP_PKEY_free(m->key);
            EVP_PKEY_free(m->pub);
            return 0;
        }
    }
    pthread_barrier_init(&start, NULL, (unsigned)threads);
    for (i = 0; i < threads; i++) {
        ws[i] = (worker){ .index = i, .m = m, .start = &start };
        if (pthread_create(&tids[i], NULL, run_worker, &ws[i]) != 0)
            break;
        started++;
    }
    if (started < threads) {
        /* the barrier would never open: this cannot go on */
        fprintf(stderr, "stress_threads: could start only %d threads\n", started);
        exit(3);
    }
    for (i = 0; i < threads; i++) {
        pthread_join(tids[i], NULL);
        signed_ok += ws[i].signed_ok;
        verified += ws[i].verified;
        failed += ws[i].failed;
    }
    pthread_barrier_destroy(&start);
    if (!m->own) {
        EVP_PKEY_free(m->key);
        EVP_PKEY_free(m->pub);
        m->key = m->pub = NULL;
    }
    ok = signed_ok == want && verified == want && failed == 0;
    printf("%-3s %-6s threads %d signed %ld verified %ld failed %ld expected %ld seconds %.2f %s\n",
           m->alg, m->own ? "own" : "shared", threads, signed_ok, verified, failed, want,
           now_s() - t0, ok ? "ok" : "MISMATCH");
    fflush(stdout);
    return ok;
}

int main(int argc, char **argv)
{
    const char *conf = NULL;
    int threads = 8, i, all_ok = 1;
    mode modes[] = {
        { "rsa", 0, NULL, NULL }, { "rsa", 1, NULL, NULL },
        { "ec", 0, NULL, NULL },  { "ec", 1, NULL, NULL },
    };

    for (i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--conf")) conf = argv[i + 1];
        else if (!strcmp(argv[i], "--token")) token = argv[i + 1];
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--count")) count = atoi(argv[i + 1]);
        else break;
    }
    if (i != argc || conf == NULL || token == NULL || threads < 1 || threads > MAX_THREADS ||
        count < 1) {
        fprintf(stderr, "usage: stress_threads --conf CNF --token LABEL [--threads 1..%d] "
                        "[--count N]\n", MAX_THREADS);
        return 2;
    }
    libctx = OSSL_LIB_CTX_new();
    if (libctx == NULL || !OSSL_LIB_CTX_load_config(libctx, conf) ||
        !OSSL_PROVIDER_available(libctx, "primus")) {
        fprintf(stderr, "stress_threads: cannot load %s with the primus provider\n", conf);
        ERR_print_errors_fp(stderr);
        OSSL_LIB_CTX_free(libctx);
        return 3;
    }
    keep_provider_mapped();
    for (i = 0; i < (int)(sizeof(modes) / sizeof(modes[0])); i++)
        all_ok &= run_mode(&modes[i], threads);
    OSSL_LIB_CTX_free(libctx);
    printf("stress_threads: %s\n", all_ok ? "all counts match" : "FAILED");
    return all_ok ? 0 : 1;
}
