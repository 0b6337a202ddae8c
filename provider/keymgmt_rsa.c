/*
 * keymgmt_rsa.c: key management for RSA and RSA-PSS keys.
 *
 * The work is shared with the EC key manager (key.c); this file holds what
 * is RSA's own: parameter lists, the operation names, and the dispatch
 * tables.  Keys in the HSM are generated with
 *   openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 \
 *       -pkeyopt 'pkcs11_uri:pkcs11:token=T;object=label;id=%01'
 * (sensitive, not extractable); without pkcs11_uri the key is an ordinary
 * software key.
 */
#include <openssl/core_names.h>

#include "provider.h"

static OSSL_FUNC_keymgmt_new_fn rsa_new;
static OSSL_FUNC_keymgmt_new_fn rsapss_new;
static OSSL_FUNC_keymgmt_free_fn rsa_free;
static OSSL_FUNC_keymgmt_load_fn rsa_load;
static OSSL_FUNC_keymgmt_load_fn rsapss_load;
static OSSL_FUNC_keymgmt_has_fn rsa_has;
static OSSL_FUNC_keymgmt_match_fn rsa_match;
static OSSL_FUNC_keymgmt_import_fn rsa_import;
static OSSL_FUNC_keymgmt_import_types_fn rsa_import_types;
static OSSL_FUNC_keymgmt_export_fn rsa_export;
static OSSL_FUNC_keymgmt_export_types_fn rsa_export_types;
static OSSL_FUNC_keymgmt_get_params_fn rsa_get_params;
static OSSL_FUNC_keymgmt_gettable_params_fn rsa_gettable_params;
static OSSL_FUNC_keymgmt_set_params_fn rsa_set_params;
static OSSL_FUNC_keymgmt_settable_params_fn rsa_settable_params;
static OSSL_FUNC_keymgmt_validate_fn rsa_validate;
static OSSL_FUNC_keymgmt_dup_fn rsa_dup;
static OSSL_FUNC_keymgmt_query_operation_name_fn rsa_query_operation_name;
static OSSL_FUNC_keymgmt_gen_init_fn rsa_gen_init;
static OSSL_FUNC_keymgmt_gen_init_fn rsapss_gen_init;
static OSSL_FUNC_keymgmt_gen_set_params_fn rsa_gen_set_params;
static OSSL_FUNC_keymgmt_gen_settable_params_fn rsa_gen_settable_params;
static OSSL_FUNC_keymgmt_gen_settable_params_fn rsapss_gen_settable_params;
static OSSL_FUNC_keymgmt_gen_set_template_fn rsa_gen_set_template;
static OSSL_FUNC_keymgmt_gen_fn rsa_gen;
static OSSL_FUNC_keymgmt_gen_cleanup_fn rsa_gen_cleanup;

static void *rsa_new(void *provctx)
{
    return primus_km_new(provctx, PRIMUS_KEY_RSA);
}

static void *rsapss_new(void *provctx)
{
    return primus_km_new(provctx, PRIMUS_KEY_RSA_PSS);
}

static void rsa_free(void *keydata)
{
    primus_km_free(keydata);
}

static void *rsa_load(const void *reference, size_t reference_sz)
{
    return primus_km_load(reference, reference_sz, PRIMUS_KEY_RSA);
}

static void *rsapss_load(const void *reference, size_t reference_sz)
{
    return primus_km_load(reference, reference_sz, PRIMUS_KEY_RSA_PSS);
}

static int rsa_has(const void *keydata, int selection)
{
    return primus_km_has(keydata, selection);
}

static int rsa_match(const void *keydata1, const void *keydata2, int selection)
{
    return primus_km_match(keydata1, keydata2, selection);
}

static int rsa_import(void *keydata, int selection, const OSSL_PARAM params[])
{
    return primus_km_import(keydata, selection, params);
}

#define RSA_KEY_PARAMS                                            \
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),                \
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),                \
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_D, NULL, 0),                \
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_FACTOR1, NULL, 0),          \
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_FACTOR2, NULL, 0),          \
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_EXPONENT1, NULL, 0),        \
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_EXPONENT2, NULL, 0),        \
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_COEFFICIENT1, NULL, 0)

#define RSA_PSS_PARAMS                                                        \
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_RSA_DIGEST, NULL, 0),              \
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_RSA_MASKGENFUNC, NULL, 0),         \
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_RSA_MGF1_DIGEST, NULL, 0),         \
    OSSL_PARAM_int(OSSL_PKEY_PARAM_RSA_PSS_SALTLEN, NULL)

static const OSSL_PARAM rsa_key_types[] = {
    RSA_KEY_PARAMS,
    RSA_PSS_PARAMS,
    OSSL_PARAM_END
};

static const OSSL_PARAM *rsa_import_types(int selection)
{
    return rsa_key_types;
}

static int rsa_export(void *keydata, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
    return primus_km_export(keydata, selection, cb, cbarg);
}

static const OSSL_PARAM *rsa_export_types(int selection)
{
    return rsa_key_types;
}

static int rsa_get_params(void *keydata, OSSL_PARAM params[])
{
    return primus_km_get_params(keydata, params);
}

static const OSSL_PARAM rsa_gettable[] = {
    OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM *rsa_gettable_params(void *provctx)
{
    return rsa_gettable;
}

static int rsa_set_params(void *keydata, const OSSL_PARAM params[])
{
    return primus_km_set_params(keydata, params);
}

static const OSSL_PARAM rsa_settable[] = {
    OSSL_PARAM_END
};

static const OSSL_PARAM *rsa_settable_params(void *provctx)
{
    return rsa_settable;
}

static int rsa_validate(const void *keydata, int selection, int checktype)
{
    return primus_km_validate(keydata, selection, checktype);
}

static void *rsa_dup(const void *keydata, int selection)
{
    return primus_km_dup(keydata, selection);
}

static const char *rsa_query_operation_name(int operation_id)
{
    return "RSA";
}

static void *rsa_gen_init(void *provctx, int selection, const OSSL_PARAM params[])
{
    return primus_gen_init(provctx, PRIMUS_KEY_RSA, selection, params);
}

static void *rsapss_gen_init(void *provctx, int selection, const OSSL_PARAM params[])
{
    return primus_gen_init(provctx, PRIMUS_KEY_RSA_PSS, selection, params);
}

static int rsa_gen_set_params(void *genctx, const OSSL_PARAM params[])
{
    return primus_gen_set_params(genctx, params);
}

static const OSSL_PARAM rsa_gen_settable[] = {
    OSSL_PARAM_utf8_string(PRIMUS_PARAM_PKCS11_URI, NULL, 0),
    OSSL_PARAM_size_t(OSSL_PKEY_PARAM_RSA_BITS, NULL),
    OSSL_PARAM_size_t(OSSL_PKEY_PARAM_RSA_PRIMES, NULL),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM rsapss_gen_settable[] = {
    OSSL_PARAM_utf8_string(PRIMUS_PARAM_PKCS11_URI, NULL, 0),
    OSSL_PARAM_size_t(OSSL_PKEY_PARAM_RSA_BITS, NULL),
    OSSL_PARAM_size_t(OSSL_PKEY_PARAM_RSA_PRIMES, NULL),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
    RSA_PSS_PARAMS,
    OSSL_PARAM_END
};

static const OSSL_PARAM *rsa_gen_settable_params(void *genctx, void *provctx)
{
    return rsa_gen_settable;
}

static const OSSL_PARAM *rsapss_gen_settable_params(void *genctx, void *provctx)
{
    return rsapss_gen_settable;
}

static int rsa_gen_set_template(void *genctx, void *templ)
{
    return primus_gen_set_template(genctx, templ);
}

static void *rsa_gen(void *genctx, OSSL_CALLBACK *cb, void *cbarg)
{
    return primus_gen(genctx, cb, cbarg);
}

static void rsa_gen_cleanup(void *genctx)
{
    primus_gen_cleanup(genctx);
}

#define RSA_COMMON_FUNCTIONS                                                               \
    { OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))rsa_free },                                  \
    { OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))rsa_has },                                    \
    { OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))rsa_match },                                \
    { OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))rsa_import },                              \
    { OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))rsa_import_types },                  \
    { OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))rsa_export },                              \
    { OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))rsa_export_types },                  \
    { OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))rsa_get_params },                      \
    { OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))rsa_gettable_params },            \
    { OSSL_FUNC_KEYMGMT_SET_PARAMS, (void (*)(void))rsa_set_params },                      \
    { OSSL_FUNC_KEYMGMT_SETTABLE_PARAMS, (void (*)(void))rsa_settable_params },            \
    { OSSL_FUNC_KEYMGMT_VALIDATE, (void (*)(void))rsa_validate },                          \
    { OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))rsa_dup },                                    \
    { OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))rsa_query_operation_name },  \
    { OSSL_FUNC_KEYMGMT_GEN_SET_PARAMS, (void (*)(void))rsa_gen_set_params },              \
    { OSSL_FUNC_KEYMGMT_GEN_SET_TEMPLATE, (void (*)(void))rsa_gen_set_template },          \
    { OSSL_FUNC_KEYMGMT_GEN, (void (*)(void))rsa_gen },                                    \
    { OSSL_FUNC_KEYMGMT_GEN_CLEANUP, (void (*)(void))rsa_gen_cleanup }

const OSSL_DISPATCH primus_rsa_keymgmt_functions[] = {
    { OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))rsa_new },
    { OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))rsa_load },
    { OSSL_FUNC_KEYMGMT_GEN_INIT, (void (*)(void))rsa_gen_init },
    { OSSL_FUNC_KEYMGMT_GEN_SETTABLE_PARAMS, (void (*)(void))rsa_gen_settable_params },
    RSA_COMMON_FUNCTIONS,
    { 0, NULL }
};

const OSSL_DISPATCH primus_rsapss_keymgmt_functions[] = {
    { OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))rsapss_new },
    { OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))rsapss_load },
    { OSSL_FUNC_KEYMGMT_GEN_INIT, (void (*)(void))rsapss_gen_init },
    { OSSL_FUNC_KEYMGMT_GEN_SETTABLE_PARAMS, (void (*)(void))rsapss_gen_settable_params },
    RSA_COMMON_FUNCTIONS,
    { 0, NULL }
};
