/*
 * keymgmt_ec.c: key management for EC (named curves P-256, P-384, P-521)
 * and Ed25519 keys.
 *
 * The work is shared with the RSA key manager (key.c).  The public half of
 * an EC key is always exported with its named group, never with explicit
 * curve parameters, so `openssl pkey -pubout` and certificates carry the
 * curve's OID exactly as the default provider writes them.
 * Keys in the HSM are generated with
 *   openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
 *       -pkeyopt 'pkcs11_uri:pkcs11:token=T;object=label;id=%02'
 */
#include <openssl/core_names.h>

#include "provider.h"

static OSSL_FUNC_keymgmt_new_fn ec_new;
static OSSL_FUNC_keymgmt_new_fn ed25519_new;
static OSSL_FUNC_keymgmt_free_fn ec_free;
static OSSL_FUNC_keymgmt_load_fn ec_load;
static OSSL_FUNC_keymgmt_load_fn ed25519_load;
static OSSL_FUNC_keymgmt_has_fn ec_has;
static OSSL_FUNC_keymgmt_match_fn ec_match;
static OSSL_FUNC_keymgmt_import_fn ec_import;
static OSSL_FUNC_keymgmt_import_types_fn ec_import_types;
static OSSL_FUNC_keymgmt_import_types_fn ed25519_import_types;
static OSSL_FUNC_keymgmt_export_fn ec_export;
static OSSL_FUNC_keymgmt_get_params_fn ec_get_params;
static OSSL_FUNC_keymgmt_gettable_params_fn ec_gettable_params;
static OSSL_FUNC_keymgmt_gettable_params_fn ed25519_gettable_params;
static OSSL_FUNC_keymgmt_set_params_fn ec_set_params;
static OSSL_FUNC_keymgmt_settable_params_fn ec_settable_params;
static OSSL_FUNC_keymgmt_settable_params_fn ed25519_settable_params;
static OSSL_FUNC_keymgmt_validate_fn ec_validate;
static OSSL_FUNC_keymgmt_dup_fn ec_dup;
static OSSL_FUNC_keymgmt_query_operation_name_fn ec_query_operation_name;
static OSSL_FUNC_keymgmt_query_operation_name_fn ed25519_query_operation_name;
static OSSL_FUNC_keymgmt_gen_init_fn ec_gen_init;
static OSSL_FUNC_keymgmt_gen_init_fn ed25519_gen_init;
static OSSL_FUNC_keymgmt_gen_set_params_fn ec_gen_set_params;
static OSSL_FUNC_keymgmt_gen_settable_params_fn ec_gen_settable_params;
static OSSL_FUNC_keymgmt_gen_settable_params_fn ed25519_gen_settable_params;
static OSSL_FUNC_keymgmt_gen_set_template_fn ec_gen_set_template;
static OSSL_FUNC_keymgmt_gen_fn ec_gen;
static OSSL_FUNC_keymgmt_gen_cleanup_fn ec_gen_cleanup;

static void *ec_new(void *provctx)
{
    return primus_km_new(provctx, PRIMUS_KEY_EC);
}

static void *ed25519_new(void *provctx)
{
    return primus_km_new(provctx, PRIMUS_KEY_ED25519);
}

static void ec_free(void *keydata)
{
    primus_km_free(keydata);
}

static void *ec_load(const void *reference, size_t reference_sz)
{
    return primus_km_load(reference, reference_sz, PRIMUS_KEY_EC);
}

static void *ed25519_load(const void *reference, size_t reference_sz)
{
    return primus_km_load(reference, reference_sz, PRIMUS_KEY_ED25519);
}

static int ec_has(const void *keydata, int selection)
{
    return primus_km_has(keydata, selection);
}

static int ec_match(const void *keydata1, const void *keydata2, int selection)
{
    return primus_km_match(keydata1, keydata2, selection);
}

static int ec_import(void *keydata, int selection, const OSSL_PARAM params[])
{
    return primus_km_import(keydata, selection, params);
}

static const OSSL_PARAM ec_key_types[] = {
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_BN(OSSL_PKEY_PARAM_PRIV_KEY, NULL, 0),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_USE_COFACTOR_ECDH, NULL),
    OSSL_PARAM_END
};

static const OSSL_PARAM ed25519_key_types[] = {
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PRIV_KEY, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM *ec_import_types(int selection)
{
    return ec_key_types;
}

static const OSSL_PARAM *ed25519_import_types(int selection)
{
    return ed25519_key_types;
}

static int ec_export(void *keydata, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
    return primus_km_export(keydata, selection, cb, cbarg);
}

static int ec_get_params(void *keydata, OSSL_PARAM params[])
{
    return primus_km_get_params(keydata, params);
}

static const OSSL_PARAM ec_gettable[] = {
    OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM ed25519_gettable[] = {
    OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_MANDATORY_DIGEST, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM *ec_gettable_params(void *provctx)
{
    return ec_gettable;
}

static const OSSL_PARAM *ed25519_gettable_params(void *provctx)
{
    return ed25519_gettable;
}

static int ec_set_params(void *keydata, const OSSL_PARAM params[])
{
    return primus_km_set_params(keydata, params);
}

static const OSSL_PARAM ec_settable[] = {
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
    OSSL_PARAM_int(OSSL_PKEY_PARAM_USE_COFACTOR_ECDH, NULL),
    OSSL_PARAM_END
};

static const OSSL_PARAM ed25519_settable[] = {
    OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM *ec_settable_params(void *provctx)
{
    return ec_settable;
}

static const OSSL_PARAM *ed25519_settable_params(void *provctx)
{
    return ed25519_settable;
}

static int ec_validate(const void *keydata, int selection, int checktype)
{
    return primus_km_validate(keydata, selection, checktype);
}

static void *ec_dup(const void *keydata, int selection)
{
    return primus_km_dup(keydata, selection);
}

static const char *ec_query_operation_name(int operation_id)
{
    switch (operation_id) {
    case OSSL_OP_KEYEXCH:
        return "ECDH";
    case OSSL_OP_SIGNATURE:
        return "ECDSA";
    }
    return NULL;
}

static const char *ed25519_query_operation_name(int operation_id)
{
    return operation_id == OSSL_OP_SIGNATURE ? "ED25519" : NULL;
}

static void *ec_gen_init(void *provctx, int selection, const OSSL_PARAM params[])
{
    return primus_gen_init(provctx, PRIMUS_KEY_EC, selection, params);
}

static void *ed25519_gen_init(void *provctx, int selection, const OSSL_PARAM params[])
{
    return primus_gen_init(provctx, PRIMUS_KEY_ED25519, selection, params);
}

static int ec_gen_set_params(void *genctx, const OSSL_PARAM params[])
{
    return primus_gen_set_params(genctx, params);
}

static const OSSL_PARAM ec_gen_settable[] = {
    OSSL_PARAM_utf8_string(PRIMUS_PARAM_PKCS11_URI, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM ed25519_gen_settable[] = {
    OSSL_PARAM_utf8_string(PRIMUS_PARAM_PKCS11_URI, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM *ec_gen_settable_params(void *genctx, void *provctx)
{
    return ec_gen_settable;
}

static const OSSL_PARAM *ed25519_gen_settable_params(void *genctx, void *provctx)
{
    return ed25519_gen_settable;
}

static int ec_gen_set_template(void *genctx, void *templ)
{
    return primus_gen_set_template(genctx, templ);
}

static void *ec_gen(void *genctx, OSSL_CALLBACK *cb, void *cbarg)
{
    return primus_gen(genctx, cb, cbarg);
}

static void ec_gen_cleanup(void *genctx)
{
    primus_gen_cleanup(genctx);
}

#define EC_COMMON_FUNCTIONS                                                       \
    { OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))ec_free },                          \
    { OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))ec_has },                            \
    { OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))ec_match },                        \
    { OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))ec_import },                      \
    { OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))ec_export },                      \
    { OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))ec_get_params },              \
    { OSSL_FUNC_KEYMGMT_SET_PARAMS, (void (*)(void))ec_set_params },              \
    { OSSL_FUNC_KEYMGMT_VALIDATE, (void (*)(void))ec_validate },                  \
    { OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))ec_dup },                            \
    { OSSL_FUNC_KEYMGMT_GEN_SET_PARAMS, (void (*)(void))ec_gen_set_params },      \
    { OSSL_FUNC_KEYMGMT_GEN_SET_TEMPLATE, (void (*)(void))ec_gen_set_template },  \
    { OSSL_FUNC_KEYMGMT_GEN, (void (*)(void))ec_gen },                            \
    { OSSL_FUNC_KEYMGMT_GEN_CLEANUP, (void (*)(void))ec_gen_cleanup }

const OSSL_DISPATCH primus_ec_keymgmt_functions[] = {
    { OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))ec_new },
    { OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))ec_load },
    { OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))ec_import_types },
    { OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))ec_import_types },
    { OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))ec_gettable_params },
    { OSSL_FUNC_KEYMGMT_SETTABLE_PARAMS, (void (*)(void))ec_settable_params },
    { OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))ec_query_operation_name },
    { OSSL_FUNC_KEYMGMT_GEN_INIT, (void (*)(void))ec_gen_init },
    { OSSL_FUNC_KEYMGMT_GEN_SETTABLE_PARAMS, (void (*)(void))ec_gen_settable_params },
    EC_COMMON_FUNCTIONS,
    { 0, NULL }
};

const OSSL_DISPATCH primus_ed25519_keymgmt_functions[] = {
    { OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))ed25519_new },
    { OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))ed25519_load },
    { OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))ed25519_import_types },
    { OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))ed25519_import_types },
    { OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, (void (*)(void))ed25519_gettable_params },
    { OSSL_FUNC_KEYMGMT_SETTABLE_PARAMS, (void (*)(void))ed25519_settable_params },
    { OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, (void (*)(void))ed25519_query_operation_name },
    { OSSL_FUNC_KEYMGMT_GEN_INIT, (void (*)(void))ed25519_gen_init },
    { OSSL_FUNC_KEYMGMT_GEN_SETTABLE_PARAMS, (void (*)(void))ed25519_gen_settable_params },
    EC_COMMON_FUNCTIONS,
    { 0, NULL }
};
