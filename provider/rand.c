/*
 * rand.c: the HSM's random number generator as an OpenSSL RAND ("PRIMUS-HSM-RNG").
 *
 * Offered only with `primus-rand = yes` in the provider's section: SoftHSM
 * and other in-process modules draw their own randomness from OpenSSL, so
 * making the HSM the process's random source would recurse.  Typical use is
 * as the seed source of OpenSSL's DRBGs:
 *
 *   [random_sect]
 *   seed = PRIMUS-HSM-RNG
 *   seed_properties = provider=primus
 *
 * primus-rand-uri picks the partition (default "pkcs11:", any).
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include "provider.h"

#define PRIMUS_RAND_MAX_REQUEST 4096
#define PRIMUS_RAND_STRENGTH 256

typedef struct primus_rand_ctx {
    primus_prov *prov;
    p11_uri *where;
    int state;
} primus_rand_ctx;

static OSSL_FUNC_rand_newctx_fn rand_newctx;
static OSSL_FUNC_rand_freectx_fn rand_freectx;
static OSSL_FUNC_rand_instantiate_fn rand_instantiate;
static OSSL_FUNC_rand_uninstantiate_fn rand_uninstantiate;
static OSSL_FUNC_rand_generate_fn rand_generate;
static OSSL_FUNC_rand_reseed_fn rand_reseed;
static OSSL_FUNC_rand_enable_locking_fn rand_enable_locking;
static OSSL_FUNC_rand_lock_fn rand_lock;
static OSSL_FUNC_rand_unlock_fn rand_unlock;
static OSSL_FUNC_rand_get_ctx_params_fn rand_get_ctx_params;
static OSSL_FUNC_rand_gettable_ctx_params_fn rand_gettable_ctx_params;
static OSSL_FUNC_rand_get_seed_fn rand_get_seed;
static OSSL_FUNC_rand_clear_seed_fn rand_clear_seed;

static void *rand_newctx(void *provctx, void *parent, const OSSL_DISPATCH *parent_dispatch)
{
    primus_prov *prov = provctx;
    primus_rand_ctx *ctx;

    if (parent != NULL) {
        PRIMUS_RAISE(prov, PRIMUS_R_BAD_PARAMETER,
                     "PRIMUS-HSM-RNG is a seed source and takes no parent");
        return NULL;
    }
    if (!primus_prov_ready(prov))
        return NULL;
    ctx = OPENSSL_zalloc(sizeof(*ctx));
    if (ctx == NULL)
        return NULL;
    ctx->prov = prov;
    ctx->where = primus_parse_uri(prov, prov->rand_uri != NULL ? prov->rand_uri : "pkcs11:");
    if (ctx->where == NULL) {
        OPENSSL_free(ctx);
        return NULL;
    }
    ctx->state = EVP_RAND_STATE_UNINITIALISED;
    return ctx;
}

static void rand_freectx(void *vctx)
{
    primus_rand_ctx *ctx = vctx;

    if (ctx == NULL)
        return;
    p11_uri_free(ctx->where);
    OPENSSL_free(ctx);
}

static int rand_instantiate(void *vctx, unsigned int strength, int prediction_resistance,
                            const unsigned char *pstr, size_t pstr_len,
                            const OSSL_PARAM params[])
{
    primus_rand_ctx *ctx = vctx;

    ctx->state = EVP_RAND_STATE_READY;
    return 1;
}

static int rand_uninstantiate(void *vctx)
{
    primus_rand_ctx *ctx = vctx;

    ctx->state = EVP_RAND_STATE_UNINITIALISED;
    return 1;
}

static int rand_generate(void *vctx, unsigned char *out, size_t outlen, unsigned int strength,
                         int prediction_resistance, const unsigned char *adin, size_t adin_len)
{
    primus_rand_ctx *ctx = vctx;
    p11_status st;

    while (outlen > 0) {
        size_t n = outlen > PRIMUS_RAND_MAX_REQUEST ? PRIMUS_RAND_MAX_REQUEST : outlen;

        primus_set_error_mark(ctx->prov);
        st = p11_generate_random(ctx->prov->core, ctx->where, out, n);
        primus_pop_error_to_mark(ctx->prov);
        if (st != P11_OK) {
            PRIMUS_RAISE_P11(ctx->prov, st, "random bytes from the HSM");
            ctx->state = EVP_RAND_STATE_ERROR;
            return 0;
        }
        out += n;
        outlen -= n;
    }
    return 1;
}

static int rand_reseed(void *vctx, int prediction_resistance, const unsigned char *ent,
                       size_t ent_len, const unsigned char *adin, size_t adin_len)
{
    return 1;
}

static int rand_enable_locking(void *vctx)
{
    return 1; /* p11core is thread-safe */
}

static int rand_lock(void *vctx)
{
    return 1;
}

static void rand_unlock(void *vctx)
{
}

static int rand_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    primus_rand_ctx *ctx = vctx;
    OSSL_PARAM *p;

    p = OSSL_PARAM_locate(params, OSSL_RAND_PARAM_STATE);
    if (p != NULL && !OSSL_PARAM_set_int(p, ctx->state))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_RAND_PARAM_STRENGTH);
    if (p != NULL && !OSSL_PARAM_set_uint(p, PRIMUS_RAND_STRENGTH))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_RAND_PARAM_MAX_REQUEST);
    if (p != NULL && !OSSL_PARAM_set_size_t(p, PRIMUS_RAND_MAX_REQUEST))
        return 0;
    return 1;
}

static const OSSL_PARAM *rand_gettable_ctx_params(void *vctx, void *provctx)
{
    static const OSSL_PARAM gettable[] = {
        OSSL_PARAM_int(OSSL_RAND_PARAM_STATE, NULL),
        OSSL_PARAM_uint(OSSL_RAND_PARAM_STRENGTH, NULL),
        OSSL_PARAM_size_t(OSSL_RAND_PARAM_MAX_REQUEST, NULL),
        OSSL_PARAM_END
    };
    return gettable;
}

static size_t rand_get_seed(void *vctx, unsigned char **buffer, int entropy, size_t min_len,
                            size_t max_len, int prediction_resistance,
                            const unsigned char *adin, size_t adin_len)
{
    primus_rand_ctx *ctx = vctx;
    size_t len = min_len > 0 ? min_len : (size_t)(entropy + 7) / 8;
    unsigned char *buf;

    if (len == 0)
        len = 32;
    if (max_len > 0 && len > max_len)
        len = max_len;
    buf = OPENSSL_secure_malloc(len);
    if (buf == NULL)
        return 0;
    if (!rand_generate(ctx, buf, len, PRIMUS_RAND_STRENGTH, prediction_resistance, adin,
                       adin_len)) {
        OPENSSL_secure_clear_free(buf, len);
        return 0;
    }
    *buffer = buf;
    return len;
}

static void rand_clear_seed(void *vctx, unsigned char *buffer, size_t b_len)
{
    OPENSSL_secure_clear_free(buffer, b_len);
}

const OSSL_DISPATCH primus_rand_functions[] = {
    { OSSL_FUNC_RAND_NEWCTX, (void (*)(void))rand_newctx },
    { OSSL_FUNC_RAND_FREECTX, (void (*)(void))rand_freectx },
    { OSSL_FUNC_RAND_INSTANTIATE, (void (*)(void))rand_instantiate },
    { OSSL_FUNC_RAND_UNINSTANTIATE, (void (*)(void))rand_uninstantiate },
    { OSSL_FUNC_RAND_GENERATE, (void (*)(void))rand_generate },
    { OSSL_FUNC_RAND_RESEED, (void (*)(void))rand_reseed },
    { OSSL_FUNC_RAND_ENABLE_LOCKING, (void (*)(void))rand_enable_locking },
    { OSSL_FUNC_RAND_LOCK, (void (*)(void))rand_lock },
    { OSSL_FUNC_RAND_UNLOCK, (void (*)(void))rand_unlock },
    { OSSL_FUNC_RAND_GET_CTX_PARAMS, (void (*)(void))rand_get_ctx_params },
    { OSSL_FUNC_RAND_GETTABLE_CTX_PARAMS, (void (*)(void))rand_gettable_ctx_params },
    { OSSL_FUNC_RAND_GET_SEED, (void (*)(void))rand_get_seed },
    { OSSL_FUNC_RAND_CLEAR_SEED, (void (*)(void))rand_clear_seed },
    { 0, NULL }
};
