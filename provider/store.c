/*
 * store.c: the OSSL_STORE loader for "pkcs11:" URIs.
 *
 *   openssl pkey -in 'pkcs11:token=T;object=web' -pubout
 *   openssl x509 -in 'pkcs11:token=T;object=web;type=cert'
 *   openssl storeutl 'pkcs11:token=T'
 *
 * What is returned: private keys, public keys and certificates matching the
 * URI, narrowed by the URI's type= and by the kind the caller expects
 * (OSSL_STORE_expect).  Keys go to OpenSSL by reference (the key never
 * leaves the HSM); certificates as DER.  When the caller expects one kind of
 * object (a private key, a public key, a certificate) and the URI matches
 * several, that is an error naming each candidate's URI.  A search by alias
 * (OSSL_STORE_SEARCH_BY_ALIAS) matches the object label.  A caller that
 * wants a public key also gets the public half of a private key when the
 * token has no separate public key object.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_object.h>
#include <openssl/err.h>
#include <openssl/store.h>
#include <openssl/x509.h>

#include "provider.h"

typedef struct store_item {
    int object_type;          /* OSSL_OBJECT_PKEY or OSSL_OBJECT_CERT */
    primus_key *key;
    unsigned char *der;
    size_t der_len;
    char *desc;
} store_item;

typedef struct primus_store_ctx {
    primus_prov *prov;
    p11_uri *uri;
    char *shown;              /* the URI without PIN, for messages */
    int expect;               /* OSSL_STORE_INFO_* or 0 */
    char *alias;
    X509_NAME *subject;
    X509_NAME *issuer;
    BIGNUM *serial;
    int searched;
    int failed;
    store_item *items;
    size_t n_items, next;
} primus_store_ctx;

static OSSL_FUNC_store_open_fn store_open;
static OSSL_FUNC_store_attach_fn store_attach;
static OSSL_FUNC_store_settable_ctx_params_fn store_settable_ctx_params;
static OSSL_FUNC_store_set_ctx_params_fn store_set_ctx_params;
static OSSL_FUNC_store_load_fn store_load;
static OSSL_FUNC_store_eof_fn store_eof;
static OSSL_FUNC_store_close_fn store_close;
static OSSL_FUNC_store_export_object_fn store_export_object;

static void store_ctx_free(primus_store_ctx *ctx)
{
    size_t i;

    if (ctx == NULL)
        return;
    for (i = 0; i < ctx->n_items; i++) {
        primus_key_free(ctx->items[i].key);
        OPENSSL_free(ctx->items[i].der);
        OPENSSL_free(ctx->items[i].desc);
    }
    OPENSSL_free(ctx->items);
    p11_uri_free(ctx->uri);
    free(ctx->shown);
    OPENSSL_free(ctx->alias);
    X509_NAME_free(ctx->subject);
    X509_NAME_free(ctx->issuer);
    BN_free(ctx->serial);
    OPENSSL_free(ctx);
}

static void *store_open(void *provctx, const char *uri)
{
    primus_prov *prov = provctx;
    primus_store_ctx *ctx;

    if (!primus_prov_ready(prov))
        return NULL;
    ctx = OPENSSL_zalloc(sizeof(*ctx));
    if (ctx == NULL)
        return NULL;
    ctx->prov = prov;
    ctx->uri = primus_parse_uri(prov, uri);
    if (ctx->uri == NULL) {
        store_ctx_free(ctx);
        return NULL;
    }
    ctx->shown = p11_uri_format(ctx->uri, P11_URI_FORMAT_OMIT_PIN);
    if (ctx->shown == NULL) {
        store_ctx_free(ctx);
        return NULL;
    }
    return ctx;
}

static void *store_attach(void *provctx, OSSL_CORE_BIO *in)
{
    return NULL; /* a pkcs11: URI names a token, not a stream */
}

static const OSSL_PARAM *store_settable_ctx_params(void *provctx)
{
    static const OSSL_PARAM settable[] = {
        OSSL_PARAM_int(OSSL_STORE_PARAM_EXPECT, NULL),
        OSSL_PARAM_utf8_string(OSSL_STORE_PARAM_ALIAS, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_STORE_PARAM_SUBJECT, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_STORE_PARAM_ISSUER, NULL, 0),
        OSSL_PARAM_BN(OSSL_STORE_PARAM_SERIAL, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_STORE_PARAM_PROPERTIES, NULL, 0),
        OSSL_PARAM_END
    };
    return settable;
}

static int get_name_param(const OSSL_PARAM *p, X509_NAME **out)
{
    const void *der;
    size_t len;
    const unsigned char *q;

    if (!OSSL_PARAM_get_octet_string_ptr(p, &der, &len))
        return 0;
    q = der;
    X509_NAME_free(*out);
    *out = d2i_X509_NAME(NULL, &q, (long)len);
    return *out != NULL;
}

static int store_set_ctx_params(void *loaderctx, const OSSL_PARAM params[])
{
    primus_store_ctx *ctx = loaderctx;
    const OSSL_PARAM *p;

    if (params == NULL)
        return 1;
    if (ctx->searched && OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_EXPECT) != NULL)
        return 0; /* too late: loading has started */
    p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_EXPECT);
    if (p != NULL && !OSSL_PARAM_get_int(p, &ctx->expect))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_ALIAS);
    if (p != NULL) {
        OPENSSL_free(ctx->alias);
        ctx->alias = NULL;
        if (!OSSL_PARAM_get_utf8_string(p, &ctx->alias, 0))
            return 0;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_SUBJECT);
    if (p != NULL && !get_name_param(p, &ctx->subject))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_ISSUER);
    if (p != NULL && !get_name_param(p, &ctx->issuer))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_SERIAL);
    if (p != NULL && !OSSL_PARAM_get_BN(p, &ctx->serial))
        return 0;
    return 1;
}

static int add_item(primus_store_ctx *ctx, store_item *item)
{
    store_item *tmp;

    tmp = OPENSSL_realloc(ctx->items, (ctx->n_items + 1) * sizeof(*tmp));
    if (tmp == NULL)
        return 0;
    ctx->items = tmp;
    ctx->items[ctx->n_items++] = *item;
    return 1;
}

static int cert_matches(primus_store_ctx *ctx, const p11_object_info *info)
{
    const unsigned char *p = info->cert_der.data;
    X509 *x;
    int ok = 1;

    if (ctx->subject == NULL && ctx->issuer == NULL && ctx->serial == NULL)
        return 1;
    if (p == NULL)
        return 0;
    x = d2i_X509(NULL, &p, (long)info->cert_der.len);
    if (x == NULL)
        return 0;
    if (ctx->subject != NULL && X509_NAME_cmp(ctx->subject, X509_get_subject_name(x)) != 0)
        ok = 0;
    if (ok && ctx->issuer != NULL && X509_NAME_cmp(ctx->issuer, X509_get_issuer_name(x)) != 0)
        ok = 0;
    if (ok && ctx->serial != NULL) {
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);

        ok = bn != NULL && BN_cmp(bn, ctx->serial) == 0;
        BN_free(bn);
    }
    X509_free(x);
    return ok;
}

/* The URI the search runs on: the caller's, with object= set to the alias. */
static p11_uri *search_uri(primus_store_ctx *ctx)
{
    p11_uri *uri = p11_uri_dup(ctx->uri);

    if (uri == NULL)
        return NULL;
    if (ctx->alias != NULL
        && p11_uri_set(uri, P11_URI_OBJECT, ctx->alias, strlen(ctx->alias)) != P11_URI_OK) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_URI,
                     "the alias \"%s\" cannot be used as an object label (too long?)",
                     ctx->alias);
        p11_uri_free(uri);
        return NULL;
    }
    return uri;
}

/* One key wanted (a private key or a public key). */
static int search_one_key(primus_store_ctx *ctx, CK_OBJECT_CLASS cls,
                          OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    p11_uri *uri = search_uri(ctx);
    char *text;
    store_item item;

    if (uri == NULL)
        return 0;
    /* primus_open_key_uri parses text, so format with the PIN kept. */
    text = p11_uri_format(uri, P11_URI_FORMAT_DEFAULT);
    p11_uri_free(uri);
    if (text == NULL)
        return 0;
    memset(&item, 0, sizeof(item));
    item.object_type = OSSL_OBJECT_PKEY;
    item.key = primus_open_key_uri(ctx->prov, text, cls, PRIMUS_KEY_NONE, NULL, pw_cb, pw_cbarg);
    OPENSSL_cleanse(text, strlen(text));
    free(text);
    if (item.key == NULL)
        return 0;
    if (!add_item(ctx, &item)) {
        primus_key_free(item.key);
        return 0;
    }
    return 1;
}

/* Certificates; exactly one when one_only. */
static int search_certs(primus_store_ctx *ctx, int one_only, OSSL_PASSPHRASE_CALLBACK *pw_cb,
                        void *pw_cbarg)
{
    p11_uri *uri = search_uri(ctx), *prompted = NULL;
    p11_object_list list;
    p11_status st;
    size_t i, found = 0, first = 0;
    int ok = 0;

    if (uri == NULL)
        return 0;
    st = primus_find(ctx->prov, uri, CKO_CERTIFICATE, pw_cb, pw_cbarg, &list, &prompted);
    if (st != P11_OK) {
        PRIMUS_RAISE_P11(ctx->prov, st, ctx->shown);
        goto end;
    }
    for (i = 0; i < list.count; i++) {
        if (list.items[i].cert_der.len == 0 || !cert_matches(ctx, &list.items[i])) {
            list.items[i].cls = (CK_OBJECT_CLASS)-1; /* drop */
            continue;
        }
        if (found++ == 0)
            first = i;
    }
    if (one_only && found == 0) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_NOT_FOUND,
                     "no certificate matches %s%s; list the token's objects with "
                     "`primusctl list` or `pkcs11-tool --list-objects`",
                     ctx->shown, ctx->subject != NULL ? " with the subject asked for" : "");
        goto end;
    }
    if (one_only && found > 1 && ctx->subject == NULL) {
        char names[1536];
        size_t used = 0, shown = 0;

        names[0] = '\0';
        for (i = 0; i < list.count && shown < 8; i++) {
            int n;

            if (list.items[i].cls != CKO_CERTIFICATE)
                continue;
            n = snprintf(names + used, sizeof(names) - used, "%s%s", shown > 0 ? ", " : "",
                         list.items[i].uri != NULL ? list.items[i].uri : "(no URI)");
            if (n < 0 || (size_t)n >= sizeof(names) - used)
                break;
            used += (size_t)n;
            shown++;
        }
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_AMBIGUOUS,
                     "%s matches %zu certificates: %s; add object= or id= to name exactly one",
                     ctx->shown, found, names);
        goto end;
    }
    for (i = 0; i < list.count; i++) {
        store_item item;

        if (list.items[i].cls != CKO_CERTIFICATE)
            continue;
        if (one_only && i != first)
            continue;
        memset(&item, 0, sizeof(item));
        item.object_type = OSSL_OBJECT_CERT;
        item.der = OPENSSL_memdup(list.items[i].cert_der.data, list.items[i].cert_der.len);
        item.der_len = list.items[i].cert_der.len;
        item.desc = list.items[i].uri != NULL ? OPENSSL_strdup(list.items[i].uri) : NULL;
        if (item.der == NULL || !add_item(ctx, &item)) {
            OPENSSL_free(item.der);
            OPENSSL_free(item.desc);
            goto end;
        }
    }
    ok = 1;
end:
    p11_object_list_clear(&list);
    p11_uri_free(prompted);
    p11_uri_free(uri);
    return ok;
}

/* Every key of class cls (listing: unsupported key types are skipped). */
static int search_all_keys(primus_store_ctx *ctx, CK_OBJECT_CLASS cls,
                           OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    p11_uri *uri = search_uri(ctx), *prompted = NULL;
    p11_object_list list;
    p11_status st;
    size_t i;
    int ok = 0;

    if (uri == NULL)
        return 0;
    st = primus_find(ctx->prov, uri, cls, pw_cb, pw_cbarg, &list, &prompted);
    if (st != P11_OK) {
        PRIMUS_RAISE_P11(ctx->prov, st, ctx->shown);
        goto end;
    }
    for (i = 0; i < list.count; i++) {
        p11_key *p11 = NULL;
        store_item item;

        if (primus_key_type_from_ck(list.items[i].key_type, &list.items[i].ec_params)
            == PRIMUS_KEY_NONE)
            continue;
        st = p11_key_open(ctx->prov->core, &list.items[i], prompted != NULL ? prompted : uri,
                          &p11);
        if (st != P11_OK) {
            PRIMUS_RAISE_P11(ctx->prov, st, list.items[i].uri);
            goto end;
        }
        memset(&item, 0, sizeof(item));
        item.object_type = OSSL_OBJECT_PKEY;
        primus_set_error_mark(ctx->prov);
        item.key = primus_key_from_p11(ctx->prov, p11, 0);
        if (item.key == NULL) {
            /* e.g. explicit EC parameters: skip it when listing */
            primus_pop_error_to_mark(ctx->prov);
            continue;
        }
        primus_clear_last_error_mark(ctx->prov);
        if (!add_item(ctx, &item)) {
            primus_key_free(item.key);
            goto end;
        }
    }
    ok = 1;
end:
    p11_object_list_clear(&list);
    p11_uri_free(prompted);
    p11_uri_free(uri);
    return ok;
}

static int store_search(primus_store_ctx *ctx, OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    p11_uri_type utype = p11_uri_get_type(ctx->uri);

    if (utype == P11_URI_TYPE_SECRET_KEY || utype == P11_URI_TYPE_DATA) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_UNSUPPORTED_OBJECT,
                     "%s asks for %s objects, which OpenSSL cannot use from a store; use "
                     "type=private, type=public or type=cert", ctx->shown,
                     p11_uri_type_name(utype));
        return 0;
    }

    switch (ctx->expect) {
    case OSSL_STORE_INFO_PKEY:
        return search_one_key(ctx, CKO_PRIVATE_KEY, pw_cb, pw_cbarg);
    case OSSL_STORE_INFO_PUBKEY:
        return search_one_key(ctx, CKO_PUBLIC_KEY, pw_cb, pw_cbarg);
    case OSSL_STORE_INFO_CERT:
        if (utype != P11_URI_TYPE_NONE && utype != P11_URI_TYPE_CERT) {
            PRIMUS_RAISE(ctx->prov, PRIMUS_R_WRONG_OBJECT_TYPE,
                         "%s names objects of type=%s but a certificate is needed here; "
                         "use type=cert", ctx->shown, p11_uri_type_name(utype));
            return 0;
        }
        return search_certs(ctx, 1, pw_cb, pw_cbarg);
    case 0:
        break;
    default:
        /* parameters, CRLs, names: the token holds none of these */
        return 1;
    }

    /* A search by subject, issuer or serial is a search for certificates
     * (X509_LOOKUP_store stops at the first object that is not one). */
    if (ctx->subject != NULL || ctx->issuer != NULL || ctx->serial != NULL)
        return search_certs(ctx, 0, pw_cb, pw_cbarg);

    /* Anything the URI matches (honouring type=). */
    if ((utype == P11_URI_TYPE_NONE || utype == P11_URI_TYPE_PRIVATE)
        && !search_all_keys(ctx, CKO_PRIVATE_KEY, pw_cb, pw_cbarg))
        return 0;
    if ((utype == P11_URI_TYPE_NONE || utype == P11_URI_TYPE_PUBLIC)
        && !search_all_keys(ctx, CKO_PUBLIC_KEY, pw_cb, pw_cbarg))
        return 0;
    if ((utype == P11_URI_TYPE_NONE || utype == P11_URI_TYPE_CERT)
        && !search_certs(ctx, 0, pw_cb, pw_cbarg))
        return 0;
    return 1;
}

static int store_load(void *loaderctx, OSSL_CALLBACK *object_cb, void *object_cbarg,
                      OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    primus_store_ctx *ctx = loaderctx;
    store_item *item;
    OSSL_PARAM params[5], *p = params;
    primus_key_ref ref;
    const char *data_type;

    if (ctx->failed)
        return 0;
    if (!ctx->searched) {
        ctx->searched = 1;
        if (!store_search(ctx, pw_cb, pw_cbarg)) {
            ctx->failed = 1;
            return 0;
        }
    }
    if (ctx->next >= ctx->n_items)
        return 1; /* nothing (more); eof() now says so */

    item = &ctx->items[ctx->next++];
    *p++ = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &item->object_type);
    if (item->object_type == OSSL_OBJECT_PKEY) {
        data_type = primus_key_type_name(item->key->type);
        *p++ = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE, (char *)data_type,
                                                0);
        primus_key_ref_init(&ref, item->key);
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &ref, sizeof(ref));
        if (primus_key_uri(item->key) != NULL)
            *p++ = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DESC,
                                                    (char *)primus_key_uri(item->key), 0);
    } else {
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_DATA, item->der,
                                                 item->der_len);
        if (item->desc != NULL)
            *p++ = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DESC, item->desc, 0);
    }
    *p = OSSL_PARAM_construct_end();
    return object_cb(params, object_cbarg);
}

static int store_eof(void *loaderctx)
{
    primus_store_ctx *ctx = loaderctx;

    return ctx->failed || (ctx->searched && ctx->next >= ctx->n_items);
}

static int store_close(void *loaderctx)
{
    store_ctx_free(loaderctx);
    return 1;
}

/* Another provider's key manager asks for the key's data: only what may
 * leave the HSM (the public half), and only when no private key is
 * involved, so OpenSSL falls back to our own key manager for private keys. */
static int store_export_object(void *loaderctx, const void *reference, size_t reference_sz,
                               OSSL_CALLBACK *export_cb, void *export_cbarg)
{
    primus_key *key = primus_key_ref_get(reference, reference_sz);

    if (key == NULL || key->hsm_private)
        return 0;
    return primus_km_export(key, OSSL_KEYMGMT_SELECT_PUBLIC_KEY
                                     | OSSL_KEYMGMT_SELECT_ALL_PARAMETERS,
                            export_cb, export_cbarg);
}

const OSSL_DISPATCH primus_store_functions[] = {
    { OSSL_FUNC_STORE_OPEN, (void (*)(void))store_open },
    { OSSL_FUNC_STORE_ATTACH, (void (*)(void))store_attach },
    { OSSL_FUNC_STORE_SETTABLE_CTX_PARAMS, (void (*)(void))store_settable_ctx_params },
    { OSSL_FUNC_STORE_SET_CTX_PARAMS, (void (*)(void))store_set_ctx_params },
    { OSSL_FUNC_STORE_LOAD, (void (*)(void))store_load },
    { OSSL_FUNC_STORE_EOF, (void (*)(void))store_eof },
    { OSSL_FUNC_STORE_CLOSE, (void (*)(void))store_close },
    { OSSL_FUNC_STORE_EXPORT_OBJECT, (void (*)(void))store_export_object },
    { 0, NULL }
};
