/*
 * exchange.c: ECDH with an HSM private key.
 *
 * The peer's public point goes to the token (CKM_ECDH1_DERIVE, CKD_NULL,
 * through p11_key_derive_ecdh); the shared secret (the x coordinate) comes
 * back.  No KDF is applied here (OpenSSL's "X963KDF" option is refused
 * with an error); software keys are derived by the default provider.
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "provider.h"

typedef struct primus_ecdh_ctx {
    primus_prov *prov;
    primus_key *key;
    primus_key *peer;
    int cofactor_mode;
} primus_ecdh_ctx;

static OSSL_FUNC_keyexch_newctx_fn ecdh_newctx;
static OSSL_FUNC_keyexch_init_fn ecdh_init;
static OSSL_FUNC_keyexch_set_peer_fn ecdh_set_peer;
static OSSL_FUNC_keyexch_derive_fn ecdh_derive;
static OSSL_FUNC_keyexch_freectx_fn ecdh_freectx;
static OSSL_FUNC_keyexch_dupctx_fn ecdh_dupctx;
static OSSL_FUNC_keyexch_set_ctx_params_fn ecdh_set_ctx_params;
static OSSL_FUNC_keyexch_settable_ctx_params_fn ecdh_settable_ctx_params;
static OSSL_FUNC_keyexch_get_ctx_params_fn ecdh_get_ctx_params;
static OSSL_FUNC_keyexch_gettable_ctx_params_fn ecdh_gettable_ctx_params;

static void *ecdh_newctx(void *provctx)
{
    primus_ecdh_ctx *ctx = OPENSSL_zalloc(sizeof(*ctx));

    if (ctx == NULL)
        return NULL;
    ctx->prov = provctx;
    ctx->cofactor_mode = -1;
    return ctx;
}

static void ecdh_freectx(void *vctx)
{
    primus_ecdh_ctx *ctx = vctx;

    if (ctx == NULL)
        return;
    primus_key_free(ctx->key);
    primus_key_free(ctx->peer);
    OPENSSL_free(ctx);
}

static void *ecdh_dupctx(void *vctx)
{
    primus_ecdh_ctx *src = vctx, *ctx;

    ctx = OPENSSL_memdup(src, sizeof(*src));
    if (ctx == NULL)
        return NULL;
    primus_key_up_ref(ctx->key);
    primus_key_up_ref(ctx->peer);
    return ctx;
}

static int ecdh_init(void *vctx, void *vkey, const OSSL_PARAM params[])
{
    primus_ecdh_ctx *ctx = vctx;
    primus_key *key = vkey;

    if (key == NULL || key->type != PRIMUS_KEY_EC) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_WRONG_KEY_TYPE,
                     "ECDH needs an EC key, not %s",
                     key != NULL ? primus_key_type_name(key->type) : "none");
        return 0;
    }
    if (!primus_key_has_private(key)) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_NO_PRIVATE_KEY,
                     "%s is a public key; key agreement needs the private key",
                     primus_key_uri(key) != NULL ? primus_key_uri(key) : "the key");
        return 0;
    }
    primus_key_free(ctx->key);
    ctx->key = primus_key_up_ref(key);
    return ecdh_set_ctx_params(ctx, params);
}

static int ecdh_set_peer(void *vctx, void *vpeer)
{
    primus_ecdh_ctx *ctx = vctx;
    primus_key *peer = vpeer;

    if (peer == NULL || peer->type != PRIMUS_KEY_EC || primus_key_public(peer) == NULL) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_WRONG_KEY_TYPE,
                     "the ECDH peer must be an EC public key on the same curve");
        return 0;
    }
    primus_key_free(ctx->peer);
    ctx->peer = primus_key_up_ref(peer);
    return 1;
}

static size_t secret_len(const primus_ecdh_ctx *ctx)
{
    return ((size_t)primus_key_bits(ctx->key) + 7) / 8;
}

static int ecdh_derive(void *vctx, unsigned char *secret, size_t *secretlen, size_t outlen)
{
    primus_ecdh_ctx *ctx = vctx;
    unsigned char point[1 + 2 * 66];
    size_t plen = 0, need = secret_len(ctx), len;
    EVP_PKEY *own, *peer;
    p11_status st;

    if (ctx->key == NULL || ctx->peer == NULL) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_BAD_PARAMETER, "set the peer key before deriving");
        return 0;
    }
    if (secret == NULL) {
        *secretlen = need;
        return 1;
    }
    own = primus_key_public(ctx->key);
    peer = primus_key_public(ctx->peer); /* ecdh_set_peer made sure there is one */
    if (!ctx->key->hsm_private) {
        EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(ctx->prov->libctx, own, NULL);
        int ok;

        *secretlen = outlen;
        ok = pctx != NULL && EVP_PKEY_derive_init(pctx) > 0
             && EVP_PKEY_derive_set_peer(pctx, peer) > 0
             && EVP_PKEY_derive(pctx, secret, secretlen) > 0;
        EVP_PKEY_CTX_free(pctx);
        return ok;
    }
    if (own != NULL && EVP_PKEY_parameters_eq(own, peer) != 1) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_BAD_PARAMETER,
                     "the peer key is on another curve than %s",
                     primus_key_uri(ctx->key) != NULL ? primus_key_uri(ctx->key) : "the key");
        return 0;
    }
    if (!EVP_PKEY_get_octet_string_param(peer, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                         sizeof(point), &plen)) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_SOFTWARE, "could not read the peer's public point");
        return 0;
    }
    if (!primus_key_supports(ctx->prov, ctx->key->p11, CKM_ECDH1_DERIVE, CKF_DERIVE)) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_MECHANISM,
                     "the token holding %s does not offer CKM_ECDH1_DERIVE",
                     primus_key_uri(ctx->key) != NULL ? primus_key_uri(ctx->key) : "the key");
        p11_error_clear();
        return 0;
    }
    if (outlen < need) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_BUFFER, "the secret buffer holds %zu bytes, %zu needed",
                     outlen, need);
        return 0;
    }
    len = outlen;
    primus_set_error_mark(ctx->prov);
    st = p11_key_derive_ecdh(ctx->key->p11, point, plen, secret, &len);
    if (st == P11_OK)
        primus_pop_error_to_mark(ctx->prov);
    else
        primus_clear_last_error_mark(ctx->prov);
    if (st != P11_OK) {
        char what[512];

        snprintf(what, sizeof(what), "ECDH with %s",
                 primus_key_uri(ctx->key) != NULL ? primus_key_uri(ctx->key) : "the HSM key");
        PRIMUS_RAISE_P11(ctx->prov, st, what);
        return 0;
    }
    *secretlen = len;
    return 1;
}

static int ecdh_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    primus_ecdh_ctx *ctx = vctx;
    const OSSL_PARAM *p;

    if (params == NULL)
        return 1;
    p = OSSL_PARAM_locate_const(params, OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE);
    if (p != NULL && !OSSL_PARAM_get_int(p, &ctx->cofactor_mode))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_EXCHANGE_PARAM_KDF_TYPE);
    if (p != NULL) {
        const char *kdf = NULL;

        if (!OSSL_PARAM_get_utf8_string_ptr(p, &kdf))
            return 0;
        if (kdf != NULL && kdf[0] != '\0') {
            PRIMUS_RAISE(ctx->prov, PRIMUS_R_BAD_PARAMETER,
                         "ECDH with HSM keys gives the plain shared secret; apply the %s KDF "
                         "to it separately", kdf);
            return 0;
        }
    }
    return 1;
}

static const OSSL_PARAM *ecdh_settable_ctx_params(void *vctx, void *provctx)
{
    static const OSSL_PARAM settable[] = {
        OSSL_PARAM_int(OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE, NULL),
        OSSL_PARAM_utf8_string(OSSL_EXCHANGE_PARAM_KDF_TYPE, NULL, 0),
        OSSL_PARAM_END
    };
    return settable;
}

static int ecdh_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    primus_ecdh_ctx *ctx = vctx;
    OSSL_PARAM *p;

    p = OSSL_PARAM_locate(params, OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE);
    if (p != NULL && !OSSL_PARAM_set_int(p, ctx->cofactor_mode))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_EXCHANGE_PARAM_KDF_TYPE);
    if (p != NULL && !OSSL_PARAM_set_utf8_string(p, ""))
        return 0;
    return 1;
}

static const OSSL_PARAM *ecdh_gettable_ctx_params(void *vctx, void *provctx)
{
    static const OSSL_PARAM gettable[] = {
        OSSL_PARAM_int(OSSL_EXCHANGE_PARAM_EC_ECDH_COFACTOR_MODE, NULL),
        OSSL_PARAM_utf8_string(OSSL_EXCHANGE_PARAM_KDF_TYPE, NULL, 0),
        OSSL_PARAM_END
    };
    return gettable;
}

const OSSL_DISPATCH primus_ecdh_exchange_functions[] = {
    { OSSL_FUNC_KEYEXCH_NEWCTX, (void (*)(void))ecdh_newctx },
    { OSSL_FUNC_KEYEXCH_INIT, (void (*)(void))ecdh_init },
    { OSSL_FUNC_KEYEXCH_SET_PEER, (void (*)(void))ecdh_set_peer },
    { OSSL_FUNC_KEYEXCH_DERIVE, (void (*)(void))ecdh_derive },
    { OSSL_FUNC_KEYEXCH_FREECTX, (void (*)(void))ecdh_freectx },
    { OSSL_FUNC_KEYEXCH_DUPCTX, (void (*)(void))ecdh_dupctx },
    { OSSL_FUNC_KEYEXCH_SET_CTX_PARAMS, (void (*)(void))ecdh_set_ctx_params },
    { OSSL_FUNC_KEYEXCH_SETTABLE_CTX_PARAMS, (void (*)(void))ecdh_settable_ctx_params },
    { OSSL_FUNC_KEYEXCH_GET_CTX_PARAMS, (void (*)(void))ecdh_get_ctx_params },
    { OSSL_FUNC_KEYEXCH_GETTABLE_CTX_PARAMS, (void (*)(void))ecdh_gettable_ctx_params },
    { 0, NULL }
};
