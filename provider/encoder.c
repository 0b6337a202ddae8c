/*
 * encoder.c: writing HSM keys.
 *
 * An HSM private key cannot be written as PKCS#8; what is written instead
 * is the URI PEM file pkcs11-provider also uses, so files carry over in
 * both directions:
 *
 *   -----BEGIN PKCS#11 PROVIDER URI-----
 *   DER of SEQUENCE { VisibleString "PKCS#11 Provider URI v1.0",
 *                     UTF8String    "pkcs11:token=...;id=...;type=private" }
 *   -----END PKCS#11 PROVIDER URI-----
 *
 * (PEM, or the bare DER for -outform DER.)  The decoder (decoder.c) and
 * OpenSSL applications that load key files read it back.  Public halves
 * are written by the default provider's encoders (the key manager exports
 * the public half), byte for byte what it writes for the same key.  The
 * text encoder prints the URI and the public half.
 */
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "provider.h"

typedef struct primus_uri_der_st {
    ASN1_VISIBLESTRING *desc;
    ASN1_UTF8STRING *uri;
} PRIMUS_URI_DER;

DECLARE_ASN1_FUNCTIONS(PRIMUS_URI_DER)

ASN1_SEQUENCE(PRIMUS_URI_DER) = {
    ASN1_SIMPLE(PRIMUS_URI_DER, desc, ASN1_VISIBLESTRING),
    ASN1_SIMPLE(PRIMUS_URI_DER, uri, ASN1_UTF8STRING),
} ASN1_SEQUENCE_END(PRIMUS_URI_DER)

IMPLEMENT_ASN1_FUNCTIONS(PRIMUS_URI_DER)

int primus_uri_der_encode(const char *uri, unsigned char **der, size_t *der_len)
{
    PRIMUS_URI_DER *obj = PRIMUS_URI_DER_new();
    int len = -1;

    *der = NULL;
    if (obj != NULL
        && ASN1_STRING_set(obj->desc, PRIMUS_URI_PEM_DESC, (int)strlen(PRIMUS_URI_PEM_DESC))
        && ASN1_STRING_set(obj->uri, uri, (int)strlen(uri)))
        len = i2d_PRIMUS_URI_DER(obj, der);
    PRIMUS_URI_DER_free(obj);
    if (len <= 0)
        return 0;
    *der_len = (size_t)len;
    return 1;
}

char *primus_uri_der_decode(const unsigned char *der, size_t der_len)
{
    const unsigned char *p = der;
    PRIMUS_URI_DER *obj = d2i_PRIMUS_URI_DER(NULL, &p, (long)der_len);
    char *uri = NULL;

    if (obj == NULL) {
        ERR_clear_error(); /* not ours: no error */
        return NULL;
    }
    if (ASN1_STRING_length(obj->desc) == (int)strlen(PRIMUS_URI_PEM_DESC)
        && memcmp(ASN1_STRING_get0_data(obj->desc), PRIMUS_URI_PEM_DESC,
                  strlen(PRIMUS_URI_PEM_DESC)) == 0
        && ASN1_STRING_length(obj->uri) > 0
        && memchr(ASN1_STRING_get0_data(obj->uri), '\0', ASN1_STRING_length(obj->uri)) == NULL)
        uri = OPENSSL_strndup((const char *)ASN1_STRING_get0_data(obj->uri),
                              (size_t)ASN1_STRING_length(obj->uri));
    PRIMUS_URI_DER_free(obj);
    return uri;
}

/* ---- encoder context ----------------------------------------------------- */

typedef struct primus_enc_ctx {
    primus_prov *prov;
    char *cipher;          /* for software keys written through us */
    char *cipher_props;
} primus_enc_ctx;

static OSSL_FUNC_encoder_newctx_fn enc_newctx;
static OSSL_FUNC_encoder_freectx_fn enc_freectx;
static OSSL_FUNC_encoder_does_selection_fn uri_does_selection;
static OSSL_FUNC_encoder_does_selection_fn text_does_selection;
static OSSL_FUNC_encoder_encode_fn uri_pem_encode;
static OSSL_FUNC_encoder_encode_fn uri_der_encode;
static OSSL_FUNC_encoder_encode_fn text_encode;
static OSSL_FUNC_encoder_set_ctx_params_fn enc_set_ctx_params;
static OSSL_FUNC_encoder_settable_ctx_params_fn enc_settable_ctx_params;

static void *enc_newctx(void *provctx)
{
    primus_enc_ctx *ctx = OPENSSL_zalloc(sizeof(*ctx));

    if (ctx != NULL)
        ctx->prov = provctx;
    return ctx;
}

static void enc_freectx(void *vctx)
{
    primus_enc_ctx *ctx = vctx;

    if (ctx == NULL)
        return;
    OPENSSL_free(ctx->cipher);
    OPENSSL_free(ctx->cipher_props);
    OPENSSL_free(ctx);
}

static int enc_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    primus_enc_ctx *ctx = vctx;
    const OSSL_PARAM *p;

    if (params == NULL)
        return 1;
    /* (OpenSSL passes NULL strings to mean "none") */
    p = OSSL_PARAM_locate_const(params, OSSL_ENCODER_PARAM_CIPHER);
    if (p != NULL) {
        OPENSSL_free(ctx->cipher);
        ctx->cipher = NULL;
        if (p->data != NULL && !OSSL_PARAM_get_utf8_string(p, &ctx->cipher, 0))
            return 0;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_ENCODER_PARAM_PROPERTIES);
    if (p != NULL) {
        OPENSSL_free(ctx->cipher_props);
        ctx->cipher_props = NULL;
        if (p->data != NULL && !OSSL_PARAM_get_utf8_string(p, &ctx->cipher_props, 0))
            return 0;
    }
    return 1;
}

static const OSSL_PARAM *enc_settable_ctx_params(void *provctx)
{
    static const OSSL_PARAM settable[] = {
        OSSL_PARAM_utf8_string(OSSL_ENCODER_PARAM_CIPHER, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_ENCODER_PARAM_PROPERTIES, NULL, 0),
        OSSL_PARAM_END
    };
    return settable;
}

/*
 * A software key that OpenSSL happened to manage with this provider (see
 * provider.h): OpenSSL tries only the first matching encoder, which may be
 * ours, so write it with the default provider's encoders, honouring the
 * cipher and passphrase the caller gave.
 */
static int encode_software_key(primus_enc_ctx *ctx, OSSL_CORE_BIO *cout, const primus_key *key,
                               int selection, const char *output_type,
                               const char *output_structure, OSSL_PASSPHRASE_CALLBACK *cb,
                               void *cbarg)
{
    EVP_PKEY *pub = primus_key_public(key);
    OSSL_ENCODER_CTX *ectx;
    BIO *out;
    int ok = 0;

    if (pub == NULL)
        return 0;
    ectx = OSSL_ENCODER_CTX_new_for_pkey(pub, selection, output_type, output_structure, NULL);
    out = BIO_new_from_core_bio(ctx->prov->libctx, cout);
    if (ectx != NULL && out != NULL && OSSL_ENCODER_CTX_get_num_encoders(ectx) > 0
        && (ctx->cipher == NULL
            || OSSL_ENCODER_CTX_set_cipher(ectx, ctx->cipher, ctx->cipher_props))
        && (cb == NULL || OSSL_ENCODER_CTX_set_passphrase_cb(ectx, cb, cbarg)))
        ok = OSSL_ENCODER_to_bio(ectx, out);
    BIO_free(out);
    OSSL_ENCODER_CTX_free(ectx);
    return ok;
}

static int uri_does_selection(void *provctx, int selection)
{
    return (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0;
}

static int text_does_selection(void *provctx, int selection)
{
    return 1;
}

static int uri_encode(primus_enc_ctx *ctx, OSSL_CORE_BIO *cout, const void *obj_raw,
                      int selection, int pem, OSSL_PASSPHRASE_CALLBACK *cb, void *cbarg)
{
    const primus_key *key = obj_raw;
    const char *uri;
    unsigned char *der = NULL;
    size_t der_len = 0;
    BIO *out;
    int ok = 0;

    if (key == NULL)
        return 0;
    if (key->p11 == NULL)
        return encode_software_key(ctx, cout, key, selection, pem ? "PEM" : "DER",
                                   "PrivateKeyInfo", cb, cbarg);
    uri = primus_key_uri(key);
    if (!key->hsm_private || uri == NULL) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_NO_PRIVATE_KEY,
                     "%s is a public key: write it with -pubout",
                     uri != NULL ? uri : "the key");
        return 0;
    }
    if (!primus_uri_der_encode(uri, &der, &der_len))
        return 0;
    out = BIO_new_from_core_bio(ctx->prov->libctx, cout);
    if (out != NULL) {
        if (pem)
            ok = PEM_write_bio(out, PRIMUS_URI_PEM_LABEL, "", der, (long)der_len) > 0;
        else
            ok = BIO_write(out, der, (int)der_len) == (int)der_len;
    }
    BIO_free(out);
    OPENSSL_free(der);
    return ok;
}

static int uri_pem_encode(void *vctx, OSSL_CORE_BIO *cout, const void *obj_raw,
                          const OSSL_PARAM obj_abstract[], int selection,
                          OSSL_PASSPHRASE_CALLBACK *cb, void *cbarg)
{
    return uri_encode(vctx, cout, obj_raw, selection, 1, cb, cbarg);
}

static int uri_der_encode(void *vctx, OSSL_CORE_BIO *cout, const void *obj_raw,
                          const OSSL_PARAM obj_abstract[], int selection,
                          OSSL_PASSPHRASE_CALLBACK *cb, void *cbarg)
{
    return uri_encode(vctx, cout, obj_raw, selection, 0, cb, cbarg);
}

static int text_encode(void *vctx, OSSL_CORE_BIO *cout, const void *obj_raw,
                       const OSSL_PARAM obj_abstract[], int selection,
                       OSSL_PASSPHRASE_CALLBACK *cb, void *cbarg)
{
    primus_enc_ctx *ctx = vctx;
    const primus_key *key = obj_raw;
    const p11_object_info *info;
    BIO *out;
    int ok = 1;

    if (key == NULL)
        return 0;
    info = primus_key_info(key);
    if (info == NULL)
        return encode_software_key(ctx, cout, key, selection, "TEXT", NULL, NULL, NULL);
    out = BIO_new_from_core_bio(ctx->prov->libctx, cout);
    if (out == NULL)
        return 0;
    if (BIO_printf(out, "PKCS#11 %s %s key (%d bit)\n",
                   key->hsm_private ? "private" : "public", primus_key_type_name(key->type),
                   primus_key_bits(key)) <= 0)
        ok = 0;
    if (ok && BIO_printf(out, "URI: %s\n", info->uri != NULL ? info->uri : "(none)") <= 0)
        ok = 0;
    if (ok && key->hsm_private
        && BIO_printf(out, "Private key: in the HSM (%s, %s)\n",
                      (info->flags & P11_OBJ_SENSITIVE) ? "sensitive" : "not sensitive",
                      (info->flags & P11_OBJ_EXTRACTABLE) ? "extractable" : "not extractable")
               <= 0)
        ok = 0;
    /* the public half is built only when it is printed */
    if (ok && (selection & (OSSL_KEYMGMT_SELECT_KEYPAIR | OSSL_KEYMGMT_SELECT_ALL_PARAMETERS)) != 0
        && primus_key_public(key) != NULL)
        ok = EVP_PKEY_print_public(out, primus_key_public(key), 0, NULL) > 0;
    BIO_free(out);
    return ok;
}

#define URI_ENCODER(name, fn)                                                       \
    const OSSL_DISPATCH name[] = {                                                  \
        { OSSL_FUNC_ENCODER_NEWCTX, (void (*)(void))enc_newctx },                   \
        { OSSL_FUNC_ENCODER_FREECTX, (void (*)(void))enc_freectx },                 \
        { OSSL_FUNC_ENCODER_DOES_SELECTION, (void (*)(void))uri_does_selection },   \
        { OSSL_FUNC_ENCODER_ENCODE, (void (*)(void))fn },                           \
        { OSSL_FUNC_ENCODER_SET_CTX_PARAMS, (void (*)(void))enc_set_ctx_params },   \
        { OSSL_FUNC_ENCODER_SETTABLE_CTX_PARAMS,                                    \
          (void (*)(void))enc_settable_ctx_params },                                \
        { 0, NULL }                                                                 \
    }

#define TEXT_ENCODER(name)                                                          \
    const OSSL_DISPATCH name[] = {                                                  \
        { OSSL_FUNC_ENCODER_NEWCTX, (void (*)(void))enc_newctx },                   \
        { OSSL_FUNC_ENCODER_FREECTX, (void (*)(void))enc_freectx },                 \
        { OSSL_FUNC_ENCODER_DOES_SELECTION, (void (*)(void))text_does_selection },  \
        { OSSL_FUNC_ENCODER_ENCODE, (void (*)(void))text_encode },                  \
        { 0, NULL }                                                                 \
    }

URI_ENCODER(primus_rsa_uri_pem_encoder_functions, uri_pem_encode);
URI_ENCODER(primus_rsapss_uri_pem_encoder_functions, uri_pem_encode);
URI_ENCODER(primus_ec_uri_pem_encoder_functions, uri_pem_encode);
URI_ENCODER(primus_ed25519_uri_pem_encoder_functions, uri_pem_encode);
URI_ENCODER(primus_rsa_uri_der_encoder_functions, uri_der_encode);
URI_ENCODER(primus_rsapss_uri_der_encoder_functions, uri_der_encode);
URI_ENCODER(primus_ec_uri_der_encoder_functions, uri_der_encode);
URI_ENCODER(primus_ed25519_uri_der_encoder_functions, uri_der_encode);
TEXT_ENCODER(primus_rsa_text_encoder_functions);
TEXT_ENCODER(primus_rsapss_text_encoder_functions);
TEXT_ENCODER(primus_ec_text_encoder_functions);
TEXT_ENCODER(primus_ed25519_text_encoder_functions);
