/*
 * libp11_engine.c: the libp11 PKCS#11 engine as a contender in signbench.
 *
 * Engines are deprecated in OpenSSL 3, so this file alone is compiled with
 * -Wno-deprecated-declarations.  The engine is loaded the way applications
 * load it without a configuration file: ENGINE_by_id("dynamic") with
 * SO_PATH, then MODULE_PATH and PIN, ENGINE_init, ENGINE_load_private_key.
 * The key it returns is a legacy EVP_PKEY whose RSA/EC_KEY method calls
 * into the token; signing uses the default library context (engine keys
 * cannot live in any other).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "signbench.h"

struct bench_engine {
    ENGINE *e;
};

static void err_text(char *err, size_t errlen, const char *what)
{
    unsigned long code = ERR_peek_last_error();
    char buf[256] = "";

    if (code)
        ERR_error_string_n(code, buf, sizeof(buf));
    snprintf(err, errlen, "%s%s%s", what, code ? ": " : "", buf);
    ERR_clear_error();
}

bench_engine *bench_engine_open(const char *engine_so, const char *module, const char *pin,
                                char *err, size_t errlen)
{
    bench_engine *be;
    ENGINE *e;

    ENGINE_load_dynamic();
    e = ENGINE_by_id("dynamic");
    if (e == NULL) {
        err_text(err, errlen, "ENGINE_by_id(\"dynamic\") failed");
        return NULL;
    }
    if (!ENGINE_ctrl_cmd_string(e, "SO_PATH", engine_so, 0)
        || !ENGINE_ctrl_cmd_string(e, "ID", "pkcs11", 0)
        || !ENGINE_ctrl_cmd_string(e, "LIST_ADD", "1", 0)
        || !ENGINE_ctrl_cmd_string(e, "LOAD", NULL, 0)) {
        err_text(err, errlen, "loading the libp11 engine failed");
        ENGINE_free(e);
        return NULL;
    }
    if (!ENGINE_ctrl_cmd_string(e, "MODULE_PATH", module, 0)
        || !ENGINE_ctrl_cmd_string(e, "PIN", pin, 0)) {
        err_text(err, errlen, "configuring the libp11 engine (MODULE_PATH, PIN) failed");
        ENGINE_free(e);
        return NULL;
    }
    if (!ENGINE_init(e)) {
        err_text(err, errlen, "ENGINE_init(pkcs11) failed");
        ENGINE_free(e);
        return NULL;
    }
    be = OPENSSL_zalloc(sizeof(*be));
    if (be == NULL) {
        ENGINE_finish(e);
        ENGINE_free(e);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    be->e = e;
    return be;
}

EVP_PKEY *bench_engine_load_key(bench_engine *be, const char *uri, char *err, size_t errlen)
{
    EVP_PKEY *pkey = ENGINE_load_private_key(be->e, uri, NULL, NULL);

    if (pkey == NULL)
        err_text(err, errlen, "ENGINE_load_private_key failed");
    return pkey;
}

int bench_engine_sign(EVP_MD_CTX *mctx, EVP_PKEY *pkey, const char *mdname, int pss,
                      const unsigned char *msg, size_t msglen, unsigned char *sig,
                      size_t *siglen)
{
    EVP_PKEY_CTX *pctx = NULL;
    const EVP_MD *md = EVP_get_digestbyname(mdname);

    if (md == NULL || EVP_DigestSignInit(mctx, &pctx, md, NULL, pkey) != 1)
        return 0;
    if (pss && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0
                || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0
                || EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) <= 0))
        return 0;
    return EVP_DigestSign(mctx, sig, siglen, msg, msglen) == 1;
}

void bench_engine_close(bench_engine *be)
{
    if (be == NULL)
        return;
    ENGINE_finish(be->e);
    ENGINE_free(be->e);
    OPENSSL_free(be);
}
