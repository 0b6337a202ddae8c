/*
 * decoder.c: reading URI PEM key files (see encoder.c for the format).
 *
 * Two steps, the way OpenSSL chains decoders:
 *   1. "DER" from input=pem: a PEM block labelled "PKCS#11 PROVIDER URI"
 *      becomes DER with the data structure "pk11-uri" (other PEM blocks are
 *      left to the default provider);
 *   2. "PKCS11-URI" from input=der, structure=pk11-uri (also a bare DER file,
 *      -inform DER): the URI is looked up in the HSM and the key handed on
 *      by reference, with its real type (RSA, RSA-PSS, EC, ED25519), to the
 *      provider's key manager for that type.  Applications that load a key file through OpenSSL (nginx,
 * Apache httpd, curl, Python's ssl, openssl pkey -in file.pem) then use the
 * HSM key.  A caller that asks for a public key gets the key's public half.
 *
 * Why one name of our own rather than decoders named RSA, EC and ED25519:
 * OpenSSL 3.0 builds a decoder chain for every key it decodes, and a decoder
 * named after a key type joins every chain for that type, including the
 * one for the public key of each certificate read (a CA bundle: 144 per
 * process).  Ours would be set up there, and chained to a PEM-to-DER step,
 * only to be skipped.  A decoder's name must be a key manager's, so
 * PKCS11-URI is also the name of a key manager that holds no keys; OpenSSL
 * asks for it only when the caller does not know the key type, which is how
 * key files are read (PEM_read_PrivateKey, OSSL_STORE, openssl -in FILE).
 * The PEM-to-DER step is still named DER, as OpenSSL's own: OpenSSL's file
 * store reaches a key file's contents only through decoders of that name.
 * Reading the system CA bundle with the provider configured costs 34 % more
 * instructions than without it with decoders named after key types, 22 %
 * with these (bench/RESULTS.md, "Start-up").
 */
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_object.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "provider.h"

#define MAX_DER_INPUT (64 * 1024)

typedef struct primus_dec_ctx {
    primus_prov *prov;
} primus_dec_ctx;

static OSSL_FUNC_decoder_newctx_fn dec_newctx;
static OSSL_FUNC_decoder_freectx_fn dec_freectx;
static OSSL_FUNC_decoder_decode_fn pem_to_der_decode;
static OSSL_FUNC_decoder_decode_fn uri_der_decode;
static OSSL_FUNC_decoder_export_object_fn uri_export_object;

static void *dec_newctx(void *provctx)
{
    primus_dec_ctx *ctx = OPENSSL_zalloc(sizeof(*ctx));

    if (ctx != NULL)
        ctx->prov = provctx;
    return ctx;
}

static void dec_freectx(void *vctx)
{
    OPENSSL_free(vctx);
}

/* A URI key file (our description string) whose URI cannot be used: say why
 * instead of passing it on as "not ours", which ends in OpenSSL's vague
 * "unsupported".  Returns 1 when it raised an error. */
static int raise_broken_uri_file(primus_prov *prov, const unsigned char *der, size_t der_len)
{
    const unsigned char *p = der;
    STACK_OF(ASN1_TYPE) *seq;
    const ASN1_TYPE *desc = NULL, *uri = NULL;
    const unsigned char *nul;
    int ours;

    primus_set_error_mark(prov);
    seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, (long)der_len);
    primus_pop_error_to_mark(prov); /* d2i's complaints about files that are not ours */
    ours = seq != NULL && sk_ASN1_TYPE_num(seq) == 2
           && (desc = sk_ASN1_TYPE_value(seq, 0))->type == V_ASN1_VISIBLESTRING
           && (uri = sk_ASN1_TYPE_value(seq, 1))->type == V_ASN1_UTF8STRING
           && ASN1_STRING_length(desc->value.visiblestring) == (int)strlen(PRIMUS_URI_PEM_DESC)
           && memcmp(ASN1_STRING_get0_data(desc->value.visiblestring), PRIMUS_URI_PEM_DESC,
                     strlen(PRIMUS_URI_PEM_DESC)) == 0;
    if (ours) {
        nul = memchr(ASN1_STRING_get0_data(uri->value.utf8string), '\0',
                     (size_t)ASN1_STRING_length(uri->value.utf8string));
        if (nul != NULL)
            PRIMUS_RAISE(prov, PRIMUS_R_BAD_URI_PEM,
                         "the URI in the key file holds a raw NUL byte at offset %d; a URI is "
                         "text: write the byte as %%00 (primusctl uri-pem writes such files)",
                         (int)(nul - ASN1_STRING_get0_data(uri->value.utf8string)));
        else
            PRIMUS_RAISE(prov, PRIMUS_R_BAD_URI_PEM,
                         "the key file holds an empty URI; write it again with primusctl uri-pem");
    }
    sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
    return ours;
}

static unsigned char *read_all(primus_prov *prov, OSSL_CORE_BIO *cin, size_t *len)
{
    BIO *in = BIO_new_from_core_bio(prov->libctx, cin);
    unsigned char *buf = NULL;
    size_t used = 0, cap = 0;

    if (in == NULL)
        return NULL;
    for (;;) {
        int n;

        if (used == cap) {
            unsigned char *tmp;

            if (cap >= MAX_DER_INPUT)
                break;
            cap = cap == 0 ? 1024 : cap * 2;
            tmp = OPENSSL_realloc(buf, cap);
            if (tmp == NULL) {
                OPENSSL_free(buf);
                BIO_free(in);
                return NULL;
            }
            buf = tmp;
        }
        n = BIO_read(in, buf + used, (int)(cap - used));
        if (n <= 0)
            break;
        used += (size_t)n;
    }
    BIO_free(in);
    *len = used;
    return buf;
}

/* der: a URI key file's DER.  Returns 1 with nothing handed on when it is
 * not ours, 0 after raising an error when it is ours but unusable. */
static int decode_uri_der(primus_dec_ctx *ctx, const unsigned char *der, size_t der_len,
                          int selection, OSSL_CALLBACK *data_cb, void *data_cbarg,
                          OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    char *uri;
    CK_OBJECT_CLASS cls;
    primus_key *key;
    int ok;

    if (selection != 0 && (selection & OSSL_KEYMGMT_SELECT_KEYPAIR) == 0)
        return 1; /* parameters only: nothing to give */
    cls = (selection == 0 || (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
              ? CKO_PRIVATE_KEY : CKO_PUBLIC_KEY;

    uri = primus_uri_der_decode(der, der_len);
    if (uri == NULL)
        return raise_broken_uri_file(ctx->prov, der, der_len) ? 0 : 1;
    if (!primus_prov_ready(ctx->prov)) {
        OPENSSL_free(uri);
        return 0;
    }
    key = primus_open_key_uri(ctx->prov, uri, cls, PRIMUS_KEY_NONE, NULL, pw_cb, pw_cbarg);
    OPENSSL_free(uri);
    if (key == NULL)
        return 0;

    {
        OSSL_PARAM params[4];
        int object_type = OSSL_OBJECT_PKEY;
        primus_key_ref ref;

        primus_key_ref_init(&ref, key);
        params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &object_type);
        params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE,
                                                     (char *)primus_key_type_name(key->type), 0);
        params[2] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &ref,
                                                      sizeof(ref));
        params[3] = OSSL_PARAM_construct_end();
        ok = data_cb(params, data_cbarg);
    }
    primus_key_free(key);
    return ok;
}

static int pem_to_der_decode(void *vctx, OSSL_CORE_BIO *cin, int selection,
                             OSSL_CALLBACK *data_cb, void *data_cbarg,
                             OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    primus_dec_ctx *ctx = vctx;
    BIO *in = BIO_new_from_core_bio(ctx->prov->libctx, cin);
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long len = 0;
    int ok = 1; /* "not ours" is not an error: let the next decoder try */

    if (in == NULL)
        return 0;
    primus_set_error_mark(ctx->prov);
    if (PEM_read_bio(in, &name, &header, &data, &len) > 0
        && strcmp(name, PRIMUS_URI_PEM_LABEL) == 0) {
        OSSL_PARAM params[3];
        char *uri = primus_uri_der_decode(data, (size_t)len);
        p11_uri *parsed = NULL;

        primus_clear_last_error_mark(ctx->prov);
        /* A broken file or a malformed URI is said here, at the first step:
         * OpenSSL's file store (openssl pkey -in FILE) drops the errors of
         * the later steps and says only "unsupported". */
        if ((uri == NULL && raise_broken_uri_file(ctx->prov, data, (size_t)len))
            || (uri != NULL && (parsed = primus_parse_uri(ctx->prov, uri)) == NULL)) {
            ok = 0;
        } else {
            params[0] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_DATA, data,
                                                          (size_t)len);
            params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_STRUCTURE,
                                                         (char *)PRIMUS_URI_DER_STRUCTURE, 0);
            params[2] = OSSL_PARAM_construct_end();
            ok = data_cb(params, data_cbarg);
        }
        OPENSSL_free(uri);
        p11_uri_free(parsed);
    } else {
        primus_pop_error_to_mark(ctx->prov);
    }
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    BIO_free(in);
    return ok;
}

static int uri_der_decode(void *vctx, OSSL_CORE_BIO *cin, int selection, OSSL_CALLBACK *data_cb,
                          void *data_cbarg, OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    primus_dec_ctx *ctx = vctx;
    unsigned char *der;
    size_t der_len = 0;
    int ok;

    der = read_all(ctx->prov, cin, &der_len);
    if (der == NULL)
        return 1;
    ok = decode_uri_der(ctx, der, der_len, selection, data_cb, data_cbarg, pw_cb, pw_cbarg);
    OPENSSL_free(der);
    return ok;
}

/* A key manager of another provider asks for the decoded key: the public
 * half only, never for a private HSM key. */
static int uri_export_object(void *vctx, const void *reference, size_t reference_sz,
                             OSSL_CALLBACK *export_cb, void *export_cbarg)
{
    primus_key *key = primus_key_ref_get(reference, reference_sz);

    if (key == NULL || key->hsm_private)
        return 0;
    return primus_km_export(key, OSSL_KEYMGMT_SELECT_PUBLIC_KEY
                                     | OSSL_KEYMGMT_SELECT_ALL_PARAMETERS,
                            export_cb, export_cbarg);
}

const OSSL_DISPATCH primus_pem_to_der_decoder_functions[] = {
    { OSSL_FUNC_DECODER_NEWCTX, (void (*)(void))dec_newctx },
    { OSSL_FUNC_DECODER_FREECTX, (void (*)(void))dec_freectx },
    { OSSL_FUNC_DECODER_DECODE, (void (*)(void))pem_to_der_decode },
    { 0, NULL }
};

const OSSL_DISPATCH primus_uri_der_decoder_functions[] = {
    { OSSL_FUNC_DECODER_NEWCTX, (void (*)(void))dec_newctx },
    { OSSL_FUNC_DECODER_FREECTX, (void (*)(void))dec_freectx },
    { OSSL_FUNC_DECODER_DECODE, (void (*)(void))uri_der_decode },
    { OSSL_FUNC_DECODER_EXPORT_OBJECT, (void (*)(void))uri_export_object },
    { 0, NULL }
};

/* ---- the key manager PKCS11-URI (see the top): holds no keys ------------ */

static OSSL_FUNC_keymgmt_load_fn uri_km_load;
static OSSL_FUNC_keymgmt_free_fn uri_km_free;
static OSSL_FUNC_keymgmt_has_fn uri_km_has;

/* Keys decoded from URI files are loaded by the key manager of their type. */
static void *uri_km_load(const void *reference, size_t reference_sz)
{
    (void)reference;
    (void)reference_sz;
    return NULL;
}

static void uri_km_free(void *keydata)
{
    (void)keydata;
}

static int uri_km_has(const void *keydata, int selection)
{
    (void)keydata;
    (void)selection;
    return 0;
}

const OSSL_DISPATCH primus_uri_keymgmt_functions[] = {
    { OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))uri_km_load },
    { OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))uri_km_free },
    { OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))uri_km_has },
    { 0, NULL }
};
