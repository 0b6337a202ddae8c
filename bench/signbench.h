/* signbench.h: what signbench.c needs from libp11_engine.c (the only file
 * that touches the deprecated ENGINE API). */
#ifndef PRIMUS_SIGNBENCH_H
#define PRIMUS_SIGNBENCH_H

#include <stddef.h>
#include <openssl/evp.h>

typedef struct bench_engine bench_engine;

/* Load libp11's engine from engine_so, pointed at the PKCS#11 module with
 * the user PIN.  NULL on failure, with a message in err. */
bench_engine *bench_engine_open(const char *engine_so, const char *module, const char *pin,
                                char *err, size_t errlen);
EVP_PKEY *bench_engine_load_key(bench_engine *be, const char *uri, char *err, size_t errlen);
/* One EVP_DigestSignInit + EVP_DigestSign with an engine key (default
 * library context); pss: RSA-PSS, salt length = digest length, MGF1 with
 * the same digest.  1 on success. */
int bench_engine_sign(EVP_MD_CTX *mctx, EVP_PKEY *pkey, const char *mdname, int pss,
                      const unsigned char *msg, size_t msglen, unsigned char *sig,
                      size_t *siglen);
void bench_engine_close(bench_engine *be);

#endif
