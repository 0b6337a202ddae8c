/*
 * fuzz_env.h: the world the provider fuzz targets (fuzz_uri_pem, fuzz_store)
 * run in: two throwaway SoftHSM2 tokens and a library context with the
 * default provider and the instrumented primus.so, made once per process.
 *
 * Token "fuzz" (user PIN 1234):
 *   id 01 "rsa"   RSA-2048 key pair
 *   id 02 "ec"    EC P-256 key pair and a certificate (CN=fuzz-ec, serial 4242)
 *   id 03 "dup"   EC P-384 key pair  } one label, two key pairs: ambiguous
 *   id 04 "dup"   EC P-256 key pair  }
 *   id 05 "ed"    Ed25519 key pair
 *   id 06 "aes"   AES-256 secret key (a kind the provider does not use)
 *   id 07 "other" a certificate without a key (CN=fuzz-other)
 *   id 08 "ec-renewed" a certificate with the subject of id 02's (serial 4243)
 *   id 09 "k1"    EC secp256k1 key pair (a curve outside the usual three)
 *   "data"        a data object
 * Token "fuzz2" (user PIN 5678):
 *   id 02 "ec"    EC P-256 key pair: a URI without token= matches both tokens
 */
#ifndef PRIMUS_FUZZ_ENV_H
#define PRIMUS_FUZZ_ENV_H

#include <stdio.h>
#include <stdlib.h>

#include <openssl/crypto.h>

#define FUZZ_TOKEN_A "fuzz"
#define FUZZ_PIN_A "1234"
#define FUZZ_TOKEN_B "fuzz2"
#define FUZZ_PIN_B "5678"
#define FUZZ_CERT_SUBJECT "fuzz-ec" /* CN of the certificate with id 02 */
#define FUZZ_CERT_SERIAL 4242

/* Make the tokens and the library context (once; later calls return the
 * same context).  Any failure is reported on stderr and exits: a fuzzer
 * that silently runs without its token would only test error paths.
 * The temporary directory (under $TMPDIR) is removed at exit. */
OSSL_LIB_CTX *fuzz_env_init(void);

#define FUZZ_CHECK(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond);                           \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
