/*
 * asym_cipher.c: RSA decryption in the HSM (PKCS#1 v1.5, OAEP, raw) and
 * encryption in software with the key's public half.
 *
 * OAEP goes to the token as CKM_RSA_PKCS_OAEP with the hash, MGF1 hash and
 * label; an empty label is passed as NULL/0 (SoftHSM 2.6 refuses a pointer
 * with a zero length).  Tokens differ in the OAEP hashes they accept
 * (SoftHSM: SHA-1 only); a refusal is reported naming the hash.
 * The TLS RSA key exchange padding (RSA_PKCS1_WITH_TLS_PADDING) is handled
 * as OpenSSL does: on any failure a random premaster secret is returned.
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "provider.h"

typedef struct primus_cipher_ctx {
    primus_prov *prov;
    primus_key *key;
    int pad;
    EVP_MD *oaep_md;
    EVP_MD *mgf1_md;
    unsigned char *label;
    size_t label_len;
    unsigned int client_version;
    unsigned int alt_version;
} primus_cipher_ctx;

static OSSL_FUNC_asym_cipher_newctx_fn rsa_cipher_newctx;
static OSSL_FUNC_asym_cipher_freectx_fn rsa_cipher_freectx;
static OSSL_FUNC_asym_cipher_dupctx_fn rsa_cipher_dupctx;
static OSSL_FUNC_asym_cipher_encrypt_init_fn rsa_encrypt_init;
static OSSL_FUNC_asym_cipher_encrypt_fn rsa_encrypt;
static OSSL_FUNC_asym_cipher_decrypt_init_fn rsa_decrypt_init;
static OSSL_FUNC_asym_cipher_decrypt_fn rsa_decrypt;
static OSSL_FUNC_asym_cipher_get_ctx_params_fn rsa_cipher_get_ctx_params;
static OSSL_FUNC_asym_cipher_gettable_ctx_params_fn rsa_cipher_gettable_ctx_params;
static OSSL_FUNC_asym_cipher_set_ctx_params_fn rsa_cipher_set_ctx_params;
static OSSL_FUNC_asym_cipher_settable_ctx_params_fn rsa_cipher_settable_ctx_params;

static void *rsa_cipher_newctx(void *provctx)
{
    primus_cipher_ctx *ctx = OPENSSL_zalloc(sizeof(*ctx));

    if (ctx == NULL)
        return NULL;
    ctx->prov = provctx;
    ctx->pad = RSA_PKCS1_PADDING;
    return ctx;
}

static void rsa_cipher_freectx(void *vctx)
{
    primus_cipher_ctx *ctx = vctx;

    if (ctx == NULL)
        return;
    primus_key_free(ctx->key);
    EVP_MD_free(ctx->oaep_md);
    EVP_MD_free(ctx->mgf1_md);
    OPENSSL_clear_free(ctx->label, ctx->label_len);
    OPENSSL_free(ctx);
}

static void *rsa_cipher_dupctx(void *vctx)
{
    primus_cipher_ctx *src = vctx, *ctx;

    ctx = OPENSSL_memdup(src, sizeof(*src));
    if (ctx == NULL)
        return NULL;
    if (ctx->key != NULL)
        primus_key_up_ref(ctx->key);
    if (ctx->oaep_md != NULL)
        EVP_MD_up_ref(ctx->oaep_md);
    if (ctx->mgf1_md != NULL)
        EVP_MD_up_ref(ctx->mgf1_md);
    if (src->label != NULL) {
        ctx->label = OPENSSL_memdup(src->label, src->label_len);
        if (ctx->label == NULL) {
            ctx->label_len = 0;
            rsa_cipher_freectx(ctx);
            return NULL;
        }
    }
    return ctx;
}

static int cipher_init(primus_cipher_ctx *ctx, void *vkey, const OSSL_PARAM params[],
                       int decrypting)
{
    primus_key *key = vkey;

    if (key != NULL) {
        if (key->type != PRIMUS_KEY_RSA) {
            PRIMUS_RAISE(ctx->prov, PRIMUS_R_WRONG_KEY_TYPE,
                         "a %s key cannot %s; RSA keys can",
                         primus_key_type_name(key->type), decrypting ? "decrypt" : "encrypt");
            return 0;
        }
        if (decrypting && !primus_key_has_private(key)) {
            PRIMUS_RAISE(ctx->prov, PRIMUS_R_NO_PRIVATE_KEY,
                         "%s is a public key; decryption needs the private key",
                         primus_key_uri(key) != NULL ? primus_key_uri(key) : "the key");
            return 0;
        }
        if (!decrypting && primus_key_public(key) == NULL) {
            PRIMUS_RAISE(ctx->prov, PRIMUS_R_NO_PUBLIC_KEY,
                         "encryption needs the public half of %s, which the token does not give",
                         primus_key_uri(key) != NULL ? primus_key_uri(key) : "the key");
            return 0;
        }
        primus_key_free(ctx->key);
        ctx->key = primus_key_up_ref(key);
    }
    ctx->pad = RSA_PKCS1_PADDING;
    return rsa_cipher_set_ctx_params(ctx, params);
}

static int rsa_encrypt_init(void *vctx, void *vkey, const OSSL_PARAM params[])
{
    return cipher_init(vctx, vkey, params, 0);
}

static int rsa_decrypt_init(void *vctx, void *vkey, const OSSL_PARAM params[])
{
    return cipher_init(vctx, vkey, params, 1);
}

/* The same operation in software, on the key's public half (encrypt) or a
 * software key (decrypt). */
static int sw_crypt(primus_cipher_ctx *ctx, int decrypting, unsigned char *out, size_t *outlen,
                    size_t outsize, const unsigned char *in, size_t inlen)
{
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_pkey(ctx->prov->libctx, primus_key_public(ctx->key), NULL);
    OSSL_PARAM params[7], *p = params;
    int pad = ctx->pad, ok = 0;

    if (pctx == NULL)
        return 0;
    *p++ = OSSL_PARAM_construct_int(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, &pad);
    if (ctx->oaep_md != NULL)
        *p++ = OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST,
                                                (char *)EVP_MD_get0_name(ctx->oaep_md), 0);
    if (ctx->mgf1_md != NULL)
        *p++ = OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST,
                                                (char *)EVP_MD_get0_name(ctx->mgf1_md), 0);
    if (ctx->label != NULL)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, ctx->label,
                                                 ctx->label_len);
    if (ctx->client_version != 0)
        *p++ = OSSL_PARAM_construct_uint(OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION,
                                         &ctx->client_version);
    if (ctx->alt_version != 0)
        *p++ = OSSL_PARAM_construct_uint(OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION,
                                         &ctx->alt_version);
    *p = OSSL_PARAM_construct_end();
    if ((decrypting ? EVP_PKEY_decrypt_init(pctx) : EVP_PKEY_encrypt_init(pctx)) > 0
        && EVP_PKEY_CTX_set_params(pctx, params)) {
        *outlen = outsize;
        ok = (decrypting ? EVP_PKEY_decrypt(pctx, out, outlen, in, inlen)
                         : EVP_PKEY_encrypt(pctx, out, outlen, in, inlen)) > 0;
    }
    EVP_PKEY_CTX_free(pctx);
    return ok;
}

static int rsa_encrypt(void *vctx, unsigned char *out, size_t *outlen, size_t outsize,
                       const unsigned char *in, size_t inlen)
{
    primus_cipher_ctx *ctx = vctx;

    if (out == NULL) {
        *outlen = primus_key_max_size(ctx->key);
        return 1;
    }
    return sw_crypt(ctx, 0, out, outlen, outsize, in, inlen);
}

static int hsm_decrypt(primus_cipher_ctx *ctx, unsigned char *out, size_t *outlen, size_t outsize,
                       const unsigned char *in, size_t inlen)
{
    size_t k = primus_key_max_size(ctx->key);
    CK_MECHANISM mech = { 0, NULL, 0 };
    CK_RSA_PKCS_OAEP_PARAMS oaep;
    unsigned char *buf = NULL;
    size_t buflen;
    p11_status st;
    int ok = 0, pad = ctx->pad;

    if (pad == RSA_PKCS1_WITH_TLS_PADDING)
        pad = RSA_PKCS1_PADDING;
    switch (pad) {
    case RSA_PKCS1_PADDING:
        mech.mechanism = CKM_RSA_PKCS;
        break;
    case RSA_NO_PADDING:
        mech.mechanism = CKM_RSA_X_509;
        break;
    case RSA_PKCS1_OAEP_PADDING: {
        const EVP_MD *md = ctx->oaep_md;
        const EVP_MD *mgf1 = ctx->mgf1_md != NULL ? ctx->mgf1_md : ctx->oaep_md;
        int md_nid = md != NULL ? EVP_MD_get_type(md) : NID_sha1;
        int mgf1_nid = mgf1 != NULL ? EVP_MD_get_type(mgf1) : NID_sha1;

        oaep.hashAlg = primus_ckm_for_md(md_nid);
        oaep.mgf = primus_ckg_for_md(mgf1_nid);
        if (oaep.hashAlg == 0 || oaep.mgf == 0) {
            PRIMUS_RAISE(ctx->prov, PRIMUS_R_UNSUPPORTED_DIGEST,
                         "PKCS#11 has no OAEP parameters for %s / MGF1 %s",
                         OBJ_nid2sn(md_nid), OBJ_nid2sn(mgf1_nid));
            return 0;
        }
        oaep.source = CKZ_DATA_SPECIFIED;
        oaep.pSourceData = ctx->label_len > 0 ? ctx->label : NULL;
        oaep.ulSourceDataLen = ctx->label_len;
        mech.mechanism = CKM_RSA_PKCS_OAEP;
        mech.pParameter = &oaep;
        mech.ulParameterLen = sizeof(oaep);
        break;
    }
    default:
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_UNSUPPORTED_PADDING,
                     "RSA padding mode %d cannot be used to decrypt with HSM keys; use pkcs1 "
                     "or oaep", ctx->pad);
        return 0;
    }
    if (!primus_key_supports(ctx->prov, ctx->key->p11, mech.mechanism, CKF_DECRYPT)) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_MECHANISM,
                     "the token holding %s does not offer %s for decryption",
                     primus_key_uri(ctx->key) != NULL ? primus_key_uri(ctx->key) : "the key",
                     p11_mechanism_name(mech.mechanism));
        p11_error_clear();
        return 0;
    }
    /* The token writes up to k bytes; the caller's buffer may be smaller. */
    buflen = k > 0 ? k : inlen;
    buf = OPENSSL_secure_malloc(buflen);
    if (buf == NULL)
        return 0;
    primus_set_error_mark(ctx->prov);
    st = p11_key_decrypt(ctx->key->p11, &mech, in, inlen, buf, &buflen);
    if (st == P11_OK)
        primus_pop_error_to_mark(ctx->prov);
    else
        primus_clear_last_error_mark(ctx->prov);
    if (st != P11_OK) {
        char what[512];

        if (mech.mechanism == CKM_RSA_PKCS_OAEP)
            snprintf(what, sizeof(what),
                     "decrypting with %s (CKM_RSA_PKCS_OAEP, %s, MGF1 %s%s); tokens may accept "
                     "only some OAEP hashes and labels (SoftHSM: SHA-1 only, no label)",
                     primus_key_uri(ctx->key) != NULL ? primus_key_uri(ctx->key) : "the HSM key",
                     ctx->oaep_md != NULL ? EVP_MD_get0_name(ctx->oaep_md) : "SHA1",
                     ctx->mgf1_md != NULL ? EVP_MD_get0_name(ctx->mgf1_md)
                     : ctx->oaep_md != NULL ? EVP_MD_get0_name(ctx->oaep_md) : "SHA1",
                     ctx->label_len > 0 ? ", with a label" : "");
        else
            snprintf(what, sizeof(what), "decrypting with %s (%s)",
                     primus_key_uri(ctx->key) != NULL ? primus_key_uri(ctx->key) : "the HSM key",
                     p11_mechanism_name(mech.mechanism));
        PRIMUS_RAISE_P11(ctx->prov, st, what);
        goto end;
    }
    if (buflen > outsize) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_BUFFER, "the output buffer holds %zu bytes, %zu needed",
                     outsize, buflen);
        goto end;
    }
    memcpy(out, buf, buflen);
    *outlen = buflen;
    ok = 1;
end:
    OPENSSL_secure_clear_free(buf, k > 0 ? k : inlen);
    return ok;
}

/* TLS RSA key exchange: never reveal whether decryption failed. */
static int tls_premaster(primus_cipher_ctx *ctx, unsigned char *out, size_t *outlen,
                         size_t outsize, const unsigned char *in, size_t inlen)
{
    unsigned char pms[48];
    size_t len = 0;
    int good;

    if (outsize < sizeof(pms)) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_BUFFER, "the premaster buffer is too small");
        return 0;
    }
    if (RAND_priv_bytes_ex(ctx->prov->libctx, out, sizeof(pms), 0) <= 0)
        return 0;
    primus_set_error_mark(ctx->prov);
    good = hsm_decrypt(ctx, pms, &len, sizeof(pms), in, inlen) && len == sizeof(pms)
           && (ctx->client_version == 0
               || (pms[0] == ((ctx->client_version >> 8) & 0xff)
                   && pms[1] == (ctx->client_version & 0xff))
               || (ctx->alt_version != 0 && pms[0] == ((ctx->alt_version >> 8) & 0xff)
                   && pms[1] == (ctx->alt_version & 0xff)));
    primus_pop_error_to_mark(ctx->prov);
    if (good)
        memcpy(out, pms, sizeof(pms));
    OPENSSL_cleanse(pms, sizeof(pms));
    *outlen = sizeof(pms);
    return 1;
}

static int rsa_decrypt(void *vctx, unsigned char *out, size_t *outlen, size_t outsize,
                       const unsigned char *in, size_t inlen)
{
    primus_cipher_ctx *ctx = vctx;

    if (out == NULL) {
        *outlen = ctx->pad == RSA_PKCS1_WITH_TLS_PADDING ? 48 : primus_key_max_size(ctx->key);
        return 1;
    }
    if (!ctx->key->hsm_private)
        return sw_crypt(ctx, 1, out, outlen, outsize, in, inlen);
    if (ctx->pad == RSA_PKCS1_WITH_TLS_PADDING)
        return tls_premaster(ctx, out, outlen, outsize, in, inlen);
    return hsm_decrypt(ctx, out, outlen, outsize, in, inlen);
}

/* ---- parameters ------------------------------------------------------------- */

static int fetch_md(primus_cipher_ctx *ctx, const OSSL_PARAM *p, EVP_MD **out)
{
    const char *name = NULL;
    EVP_MD *md;

    if (!OSSL_PARAM_get_utf8_string_ptr(p, &name))
        return 0;
    md = EVP_MD_fetch(ctx->prov->libctx, name, NULL);
    if (md == NULL) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_UNSUPPORTED_DIGEST, "unknown digest \"%s\"", name);
        return 0;
    }
    EVP_MD_free(*out);
    *out = md;
    return 1;
}

static int rsa_cipher_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    primus_cipher_ctx *ctx = vctx;
    const OSSL_PARAM *p;

    if (params == NULL)
        return 1;
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_PAD_MODE);
    if (p != NULL) {
        int pad = 0;

        if (p->data_type == OSSL_PARAM_INTEGER) {
            if (!OSSL_PARAM_get_int(p, &pad))
                return 0;
        } else if (p->data_type == OSSL_PARAM_UTF8_STRING && p->data != NULL) {
            const char *s = p->data;

            if (strcmp(s, OSSL_PKEY_RSA_PAD_MODE_PKCSV15) == 0)
                pad = RSA_PKCS1_PADDING;
            else if (strcmp(s, OSSL_PKEY_RSA_PAD_MODE_OAEP) == 0)
                pad = RSA_PKCS1_OAEP_PADDING;
            else if (strcmp(s, OSSL_PKEY_RSA_PAD_MODE_NONE) == 0)
                pad = RSA_NO_PADDING;
            else {
                PRIMUS_RAISE(ctx->prov, PRIMUS_R_UNSUPPORTED_PADDING,
                             "unknown RSA padding \"%s\"; use pkcs1 or oaep", s);
                return 0;
            }
        } else {
            return 0;
        }
        ctx->pad = pad;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST);
    if (p != NULL && !fetch_md(ctx, p, &ctx->oaep_md))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST);
    if (p != NULL && !fetch_md(ctx, p, &ctx->mgf1_md))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL);
    if (p != NULL) {
        void *label = NULL;
        size_t len = 0;

        if (!OSSL_PARAM_get_octet_string(p, &label, 0, &len))
            return 0;
        OPENSSL_clear_free(ctx->label, ctx->label_len);
        ctx->label = label;
        ctx->label_len = len;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION);
    if (p != NULL && !OSSL_PARAM_get_uint(p, &ctx->client_version))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION);
    if (p != NULL && !OSSL_PARAM_get_uint(p, &ctx->alt_version))
        return 0;
    return 1;
}

static int rsa_cipher_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    primus_cipher_ctx *ctx = vctx;
    OSSL_PARAM *p;

    p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_PAD_MODE);
    if (p != NULL) {
        if (p->data_type == OSSL_PARAM_INTEGER) {
            if (!OSSL_PARAM_set_int(p, ctx->pad))
                return 0;
        } else {
            const char *s = ctx->pad == RSA_PKCS1_OAEP_PADDING ? OSSL_PKEY_RSA_PAD_MODE_OAEP
                            : ctx->pad == RSA_NO_PADDING ? OSSL_PKEY_RSA_PAD_MODE_NONE
                            : OSSL_PKEY_RSA_PAD_MODE_PKCSV15;
            if (!OSSL_PARAM_set_utf8_string(p, s))
                return 0;
        }
    }
    p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST);
    if (p != NULL && !OSSL_PARAM_set_utf8_string(p, ctx->oaep_md != NULL
                                                        ? EVP_MD_get0_name(ctx->oaep_md)
                                                        : "SHA1"))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST);
    if (p != NULL && !OSSL_PARAM_set_utf8_string(p, ctx->mgf1_md != NULL
                                                        ? EVP_MD_get0_name(ctx->mgf1_md)
                                                        : ctx->oaep_md != NULL
                                                        ? EVP_MD_get0_name(ctx->oaep_md)
                                                        : "SHA1"))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL);
    if (p != NULL && !OSSL_PARAM_set_octet_ptr(p, ctx->label, ctx->label_len))
        return 0;
    return 1;
}

static const OSSL_PARAM rsa_cipher_params[] = {
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST_PROPS, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST_PROPS, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, NULL, 0),
    OSSL_PARAM_uint(OSSL_ASYM_CIPHER_PARAM_TLS_CLIENT_VERSION, NULL),
    OSSL_PARAM_uint(OSSL_ASYM_CIPHER_PARAM_TLS_NEGOTIATED_VERSION, NULL),
    OSSL_PARAM_END
};

static const OSSL_PARAM *rsa_cipher_gettable_ctx_params(void *vctx, void *provctx)
{
    return rsa_cipher_params;
}

static const OSSL_PARAM *rsa_cipher_settable_ctx_params(void *vctx, void *provctx)
{
    return rsa_cipher_params;
}

const OSSL_DISPATCH primus_rsa_asym_cipher_functions[] = {
    { OSSL_FUNC_ASYM_CIPHER_NEWCTX, (void (*)(void))rsa_cipher_newctx },
    { OSSL_FUNC_ASYM_CIPHER_FREECTX, (void (*)(void))rsa_cipher_freectx },
    { OSSL_FUNC_ASYM_CIPHER_DUPCTX, (void (*)(void))rsa_cipher_dupctx },
    { OSSL_FUNC_ASYM_CIPHER_ENCRYPT_INIT, (void (*)(void))rsa_encrypt_init },
    { OSSL_FUNC_ASYM_CIPHER_ENCRYPT, (void (*)(void))rsa_encrypt },
    { OSSL_FUNC_ASYM_CIPHER_DECRYPT_INIT, (void (*)(void))rsa_decrypt_init },
    { OSSL_FUNC_ASYM_CIPHER_DECRYPT, (void (*)(void))rsa_decrypt },
    { OSSL_FUNC_ASYM_CIPHER_GET_CTX_PARAMS, (void (*)(void))rsa_cipher_get_ctx_params },
    { OSSL_FUNC_ASYM_CIPHER_GETTABLE_CTX_PARAMS, (void (*)(void))rsa_cipher_gettable_ctx_params },
    { OSSL_FUNC_ASYM_CIPHER_SET_CTX_PARAMS, (void (*)(void))rsa_cipher_set_ctx_params },
    { OSSL_FUNC_ASYM_CIPHER_SETTABLE_CTX_PARAMS, (void (*)(void))rsa_cipher_settable_ctx_params },
    { 0, NULL }
};
