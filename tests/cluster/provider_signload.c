/* provider_signload: the failover load through the provider, as an
 * application sees it: keys from OSSL_STORE by pkcs11: URI, signatures
 * with EVP_DigestSign (one EVP_MD_CTX per thread), each verified with the
 * default provider against the reference public key.
 *
 *   provider_signload --conf openssl.cnf --uri URI --pub PEM --threads N --count N
 *                     [--progress FILE] [--fork]
 *
 * The progress file gets the number of completed operations every 200
 * operations.  --fork: load the key, then fork; the child runs the load
 * (keys loaded before a fork must work in the child).  Exit 0 only when
 * every signature was made and verified. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/store.h>

#include "../lib/store_key.h"

static OSSL_LIB_CTX *libctx;
static EVP_PKEY *key, *pub;
static int per_thread;
static atomic_long done, failed, bad;
static const char *progress_path;
static double worst_ms;
static pthread_mutex_t worst_lock = PTHREAD_MUTEX_INITIALIZER;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void *worker(void *arg)
{
    EVP_MD_CTX *sign_ctx = EVP_MD_CTX_new(), *verify_ctx = EVP_MD_CTX_new();
    unsigned char sig[1024];
    int i;

    for (i = 0; i < per_thread; i++) {
        char msg[64];
        size_t len = sizeof(sig);
        double t0 = now_ms(), took;
        long n;

        snprintf(msg, sizeof(msg), "%ld-%d", (long)(intptr_t)arg, i);
        if (EVP_DigestSignInit_ex(sign_ctx, NULL, "SHA256", libctx, NULL, key, NULL) != 1 ||
            EVP_DigestSign(sign_ctx, sig, &len, (unsigned char *)msg, strlen(msg)) != 1) {
            if (atomic_fetch_add(&failed, 1) < 5) {
                fprintf(stderr, "provider_signload: signing failed:\n");
                ERR_print_errors_fp(stderr);
            }
            ERR_clear_error();
        } else if (ERR_peek_error() != 0) {
            /* a signature that succeeds must leave the error queue empty:
             * servers such as nginx read it after each handshake */
            if (atomic_fetch_add(&failed, 1) < 5) {
                fprintf(stderr, "provider_signload: signing left errors in the queue:\n");
                ERR_print_errors_fp(stderr);
            }
            ERR_clear_error();
        } else if (EVP_DigestVerifyInit_ex(verify_ctx, NULL, "SHA256", libctx, "provider=default",
                                           pub, NULL) != 1 ||
                   EVP_DigestVerify(verify_ctx, sig, len, (unsigned char *)msg, strlen(msg)) != 1) {
            atomic_fetch_add(&bad, 1);
        }
        took = now_ms() - t0;
        pthread_mutex_lock(&worst_lock);
        if (took > worst_ms)
            worst_ms = took;
        pthread_mutex_unlock(&worst_lock);
        n = atomic_fetch_add(&done, 1) + 1;
        if (progress_path && n % 200 == 0) {
            char tmp[512];
            FILE *f;
            snprintf(tmp, sizeof(tmp), "%s.%ld", progress_path, (long)(intptr_t)arg);
            if ((f = fopen(tmp, "w")) != NULL) {
                fprintf(f, "%ld\n", n);
                fclose(f);
                rename(tmp, progress_path);
            }
        }
    }
    EVP_MD_CTX_free(sign_ctx);
    EVP_MD_CTX_free(verify_ctx);
    return NULL;
}

static int run_load(int threads)
{
    pthread_t tids[64];
    double t0 = now_ms();
    int i;

    for (i = 0; i < threads; i++)
        pthread_create(&tids[i], NULL, worker, (void *)(intptr_t)i);
    for (i = 0; i < threads; i++)
        pthread_join(tids[i], NULL);
    printf("operations %ld failed %ld bad-signatures %ld seconds %.2f worst-ms %.1f\n", (long)done,
           (long)failed, (long)bad, (now_ms() - t0) / 1e3, worst_ms);
    fflush(stdout);
    return failed == 0 && bad == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *conf = NULL, *uri = NULL, *pub_path = NULL;
    int threads = 2, count = 1000, fork_first = 0, i, rc;
    FILE *f;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--fork")) { fork_first = 1; continue; }
        if (i + 1 >= argc) break;
        if (!strcmp(argv[i], "--conf")) conf = argv[++i];
        else if (!strcmp(argv[i], "--uri")) uri = argv[++i];
        else if (!strcmp(argv[i], "--pub")) pub_path = argv[++i];
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--count")) count = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--progress")) progress_path = argv[++i];
    }
    if (!conf || !uri || !pub_path || threads < 1 || threads > 64) {
        fprintf(stderr, "usage: provider_signload --conf CNF --uri URI --pub PEM [--threads N] [--count N] [--fork]\n");
        return 2;
    }
    libctx = OSSL_LIB_CTX_new();
    if (libctx == NULL || !OSSL_LIB_CTX_load_config(libctx, conf)) {
        ERR_print_errors_fp(stderr);
        return 3;
    }
    f = fopen(pub_path, "r");
    pub = f ? PEM_read_PUBKEY_ex(f, NULL, NULL, NULL, libctx, NULL) : NULL;
    if (f)
        fclose(f);
    key = test_store_load_private_key(libctx, uri);
    if (key == NULL || pub == NULL) {
        fprintf(stderr, "provider_signload: cannot load %s\n", key ? pub_path : uri);
        ERR_print_errors_fp(stderr);
        return 3;
    }
    per_thread = count / threads;
    if (fork_first) {
        /* sign once in the parent, so the child inherits a warm state */
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned char sig[1024];
        size_t len = sizeof(sig);
        int status;
        pid_t pid;
        if (EVP_DigestSignInit_ex(ctx, NULL, "SHA256", libctx, NULL, key, NULL) != 1 ||
            EVP_DigestSign(ctx, sig, &len, (const unsigned char *)"parent", 6) != 1) {
            fprintf(stderr, "provider_signload: the parent cannot sign\n");
            return 3;
        }
        EVP_MD_CTX_free(ctx);
        pid = fork();
        if (pid == 0)
            _exit(run_load(threads));
        if (pid < 0 || waitpid(pid, &status, 0) != pid)
            return 4;
        rc = WIFEXITED(status) ? WEXITSTATUS(status) : 5;
    } else {
        rc = run_load(threads);
    }
    EVP_PKEY_free(key);
    EVP_PKEY_free(pub);
    OSSL_LIB_CTX_free(libctx);
    return rc;
}
