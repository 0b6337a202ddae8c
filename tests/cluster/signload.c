/* signload: a signing load through p11core for the failover tests.
 *
 *   signload --topology FILE --pin-source file:PIN --uri URI --pub PEM
 *            --threads N --count N [--status-out FILE] [--progress FILE]
 *            [--allow-failures 1 --pace-ms MS]   (an outage: failures allowed, every op paced)
 *            [--stop-file F]   (end early, as soon as F exists)
 *
 * Every thread signs SHA-256 digests with CKM_ECDSA (EC keys) or
 * CKM_RSA_PKCS (RSA keys) and verifies each signature in software against
 * the reference public key, so a wrong or lost signature is counted.  The
 * progress file gets the core's status JSON with "done" every 200 ops, so
 * the driving script can time its faults and watch member counts.  Exit 0 only when every operation
 * succeeded and verified. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "p11core.h"

static const unsigned char sha256_prefix[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                              0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};

static p11_key *key;
static EVP_PKEY *pub;
static int per_thread;
static atomic_long done, failed, bad, ok_since_failure;
static p11_core *core;
static double worst_fail_ms;
static const char *progress_path;
static double worst_ms;
static pthread_mutex_t worst_lock = PTHREAD_MUTEX_INITIALIZER;

static int verify(const unsigned char *hash, const unsigned char *sig, size_t len)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pub, NULL);
    unsigned char *der = NULL;
    int ok = 0, der_len;

    if (ctx == NULL || EVP_PKEY_verify_init(ctx) <= 0)
        goto out;
    if (EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA) {
        ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0 &&
             EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) > 0 &&
             EVP_PKEY_verify(ctx, sig, len, hash, 32) == 1;
    } else {
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, (int)len / 2, NULL), *s = BN_bin2bn(sig + len / 2, (int)len / 2, NULL);
        if (es && r && s && ECDSA_SIG_set0(es, r, s)) {
            r = s = NULL;
            der_len = i2d_ECDSA_SIG(es, &der);
            ok = der_len > 0 && EVP_PKEY_verify(ctx, der, (size_t)der_len, hash, 32) == 1;
        }
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
    }
out:
    OPENSSL_free(der);
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static unsigned pace_ms;
static const char *stop_path;

/* The live view for the driving script: operations done and the core's
 * status (states and per-member counts), replaced atomically. */
static void write_progress(long n)
{
    char tmp[512];
    json_t *status = p11_core_status_json(core);

    snprintf(tmp, sizeof(tmp), "%s.tmp.%lu", progress_path, (unsigned long)pthread_self());
    json_object_set_new(status, "done", json_integer(n));
    json_object_set_new(status, "failed", json_integer(atomic_load(&failed)));
    json_object_set_new(status, "bad_signatures", json_integer(atomic_load(&bad)));
    if (json_dump_file(status, tmp, JSON_COMPACT) == 0)
        rename(tmp, progress_path);
    json_decref(status);
}

static void *worker(void *arg)
{
    int is_rsa = p11_key_info(key)->key_type == CKK_RSA, i;
    CK_MECHANISM mech = {is_rsa ? CKM_RSA_PKCS : CKM_ECDSA, NULL, 0};
    unsigned char in[sizeof(sha256_prefix) + 32], sig[1024], *hash = in + sizeof(sha256_prefix);

    memcpy(in, sha256_prefix, sizeof(sha256_prefix));
    for (i = 0; i < per_thread; i++) {
        size_t len = sizeof(sig);
        if (stop_path && i % 20 == 0 && access(stop_path, F_OK) == 0)
            break;
        char msg[64];
        double t0 = now_ms(), took;
        long n;

        snprintf(msg, sizeof(msg), "%ld-%d", (long)(intptr_t)arg, i);
        EVP_Digest(msg, strlen(msg), hash, NULL, EVP_sha256(), NULL);
        if (p11_key_sign(key, &mech, is_rsa ? in : hash, is_rsa ? sizeof(in) : 32, sig, &len) != P11_OK) {
            if (atomic_fetch_add(&failed, 1) < 5)
                fprintf(stderr, "signload: operation failed: %s\n", p11_error_message());
            atomic_store(&ok_since_failure, 0);
            took = now_ms() - t0;
            if (took > 500)
                fprintf(stderr, "signload: slow failure (%.0f ms): %s\n", took, p11_error_message());
            pthread_mutex_lock(&worst_lock);
            if (took > worst_fail_ms)
                worst_fail_ms = took;
            pthread_mutex_unlock(&worst_lock);
        } else if (!verify(hash, sig, len)) {
            atomic_fetch_add(&bad, 1);
        } else {
            atomic_fetch_add(&ok_since_failure, 1);
        }
        took = now_ms() - t0;
        pthread_mutex_lock(&worst_lock);
        if (took > worst_ms)
            worst_ms = took;
        pthread_mutex_unlock(&worst_lock);
        n = atomic_fetch_add(&done, 1) + 1;
        if (progress_path && n % 200 == 0)
            write_progress(n);
        if (pace_ms) /* an outage test: keep the load going through the outage */
            usleep(pace_ms * 1000);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *topology = NULL, *pin = NULL, *uri_text = NULL, *pub_path = NULL, *status_out = NULL;
    int threads = 2, count = 1000, i;
    pthread_t tids[64];
    p11_uri *uri = NULL;
    int allow_failures = 0;
    FILE *f;
    double t0;

    for (i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--topology")) topology = argv[i + 1];
        else if (!strcmp(argv[i], "--pin-source")) pin = argv[i + 1];
        else if (!strcmp(argv[i], "--uri")) uri_text = argv[i + 1];
        else if (!strcmp(argv[i], "--pub")) pub_path = argv[i + 1];
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--count")) count = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--status-out")) status_out = argv[i + 1];
        else if (!strcmp(argv[i], "--progress")) progress_path = argv[i + 1];
        else if (!strcmp(argv[i], "--allow-failures")) allow_failures = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--pace-ms")) pace_ms = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--stop-file")) stop_path = argv[i + 1];
    }
    if (!topology || !pin || !uri_text || !pub_path || threads < 1 || threads > 64) {
        fprintf(stderr, "usage: signload --topology F --pin-source file:P --uri U --pub PEM [--threads N] [--count N]\n");
        return 2;
    }
    f = fopen(pub_path, "r");
    pub = f ? PEM_read_PUBKEY(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    core = p11_core_new();
    if (pub == NULL || core == NULL || p11_core_set(core, "primus-topology", topology) != P11_OK ||
        p11_core_set(core, "pkcs11-module-token-pin", pin) != P11_OK ||
        p11_uri_parse(uri_text, &uri, NULL) != P11_URI_OK ||
        p11_key_open_uri(core, uri, CKO_PRIVATE_KEY, &key) != P11_OK) {
        fprintf(stderr, "signload: setup failed: %s\n", p11_error_message());
        return 3;
    }
    per_thread = count / threads;
    t0 = now_ms();
    for (i = 0; i < threads; i++)
        pthread_create(&tids[i], NULL, worker, (void *)(intptr_t)i);
    for (i = 0; i < threads; i++)
        pthread_join(tids[i], NULL);
    printf("operations %ld failed %ld bad-signatures %ld seconds %.2f worst-ms %.1f "
           "worst-failure-ms %.1f ok-since-last-failure %ld\n",
           (long)done, (long)failed, (long)bad, (now_ms() - t0) / 1e3, worst_ms, worst_fail_ms,
           (long)ok_since_failure);
    if (status_out) {
        json_t *status = p11_core_status_json(core);
        json_dump_file(status, status_out, JSON_INDENT(2));
        json_decref(status);
    }
    p11_key_unref(key);
    p11_uri_free(uri);
    p11_core_free(core);
    EVP_PKEY_free(pub);
    if (allow_failures) /* an outage test: failures expected, but it must end well */
        return bad == 0 && ok_since_failure > 0 ? 0 : 1;
    return failed == 0 && bad == 0 ? 0 : 1;
}
