/*
 * provider.c: the entry point of the primus OpenSSL provider.
 *
 * OSSL_provider_init reads the provider's configuration section, hands every
 * key p11core knows to p11_core_set and returns the dispatch table.  It does
 * not touch the HSM: p11core starts on first use (a store lookup, a key
 * operation).  The algorithms offered are static.
 *
 * Configuration (openssl.cnf, the provider's section):
 *   module                   path of this primus.so (read by OpenSSL)
 *   pkcs11-module-path       PKCS#11 library (else $PRIMUS_PKCS11_MODULE)
 *   pkcs11-module-token-pin  "file:/path" or the PIN itself
 *   pkcs11-module-init-args, pkcs11-module-quirks, primus-topology,
 *   primus-audit-log, primus-audit-key, primus-audit-policy,
 *   primus-session-key-cache, primus-member-timeout-ms   see p11core.h
 *   primus-rand              "yes": offer the HSM RNG as a random source
 *                            ("PRIMUS-HSM-RNG"); default "no"
 *   primus-rand-uri          which token's RNG (default "pkcs11:")
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/provider.h>

#include "provider.h"

#ifndef PRIMUS_BUILDINFO
#define PRIMUS_BUILDINFO "primus-provider " PRIMUS_VERSION_STR " (" OPENSSL_VERSION_TEXT ")"
#endif

/* Core functions we call back into (set once in OSSL_provider_init). */
static OSSL_FUNC_core_get_params_fn *c_get_params;
static OSSL_FUNC_core_new_error_fn *c_new_error;
static OSSL_FUNC_core_set_error_debug_fn *c_set_error_debug;
static OSSL_FUNC_core_vset_error_fn *c_vset_error;
static OSSL_FUNC_core_set_error_mark_fn *c_set_error_mark;
static OSSL_FUNC_core_pop_error_to_mark_fn *c_pop_error_to_mark;
static OSSL_FUNC_core_clear_last_error_mark_fn *c_clear_last_error_mark;

OSSL_LIB_CTX *primus_libctx(const primus_prov *prov)
{
    return prov != NULL ? prov->libctx : NULL;
}

/* ---- errors ------------------------------------------------------------ */

static const OSSL_ITEM primus_reason_strings[] = {
#define R(code, text) { (code), (void *)(text) }
    R(PRIMUS_R_CONFIG, "the provider configuration is invalid"),
    R(PRIMUS_R_URI, "the pkcs11: URI is malformed"),
    R(PRIMUS_R_MODULE, "the PKCS#11 module could not be loaded"),
    R(PRIMUS_R_NO_TOKEN, "no token matches the URI"),
    R(PRIMUS_R_PIN, "the token PIN is missing or was refused"),
    R(PRIMUS_R_NOT_FOUND, "no object in the HSM matches the URI"),
    R(PRIMUS_R_AMBIGUOUS, "the URI matches several objects where one is needed"),
    R(PRIMUS_R_MECHANISM, "the token does not offer the mechanism this operation needs"),
    R(PRIMUS_R_UNAVAILABLE, "no HSM member of the partition is reachable"),
    R(PRIMUS_R_OPERATION, "the HSM refused the operation"),
    R(PRIMUS_R_BUFFER, "the output buffer is too small"),
    R(PRIMUS_R_AUDIT, "the audit log cannot be written and the policy is fail-closed"),
    R(PRIMUS_R_MEMORY, "out of memory"),
    R(PRIMUS_R_INTERNAL, "internal error in the primus provider"),
    R(PRIMUS_R_WRONG_OBJECT_TYPE, "the URI names an object of another kind than the one asked for"),
    R(PRIMUS_R_WRONG_KEY_TYPE, "the key is of a type this operation cannot use"),
    R(PRIMUS_R_NO_PRIVATE_KEY, "the operation needs a private key but the key is public only"),
    R(PRIMUS_R_NO_PUBLIC_KEY, "the public half of the key is not available from the token"),
    R(PRIMUS_R_UNSUPPORTED_DIGEST, "the digest cannot be used with this key and mechanism"),
    R(PRIMUS_R_UNSUPPORTED_PADDING, "the padding mode is not supported with HSM keys"),
    R(PRIMUS_R_INVALID_SALT_LENGTH, "the PSS salt length is invalid for this key and digest"),
    R(PRIMUS_R_UNSUPPORTED_CURVE, "the elliptic curve is not supported (named curves only)"),
    R(PRIMUS_R_KEYGEN, "key generation in the HSM failed"),
    R(PRIMUS_R_PRIVATE_EXPORT, "private key material of HSM keys is never exported"),
    R(PRIMUS_R_BAD_URI_PEM, "the PKCS#11 PROVIDER URI file is malformed"),
    R(PRIMUS_R_BAD_PARAMETER, "a parameter has a value the provider cannot use"),
    R(PRIMUS_R_SOFTWARE, "the software half of the operation failed"),
    R(PRIMUS_R_UNSUPPORTED_OBJECT, "the object kind is not handled by the provider"),
    R(PRIMUS_R_INPUT_TOO_LONG, "the input is too long for the key"),
#undef R
    { 0, NULL }
};

static const OSSL_ITEM *primus_get_reason_strings(void *provctx)
{
    return primus_reason_strings;
}

/* fmt is always "%s": the message, already formatted. */
static void set_error(const primus_prov *prov, int reason, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (prov != NULL && prov->handle != NULL && c_new_error != NULL && c_vset_error != NULL)
        c_vset_error(prov->handle, reason, fmt, ap);
    else
        ERR_vset_error(ERR_LIB_PROV, ERR_R_INTERNAL_ERROR, fmt, ap);
    va_end(ap);
}

void primus_raise(const primus_prov *prov, const char *file, int line, const char *func,
                  int reason, const char *fmt, ...)
{
    /* OpenSSL keeps no text at all of a message longer than its buffer
     * (ERR_MAX_DATA_SIZE, 1024 bytes with the NUL), e.g. one naming a URI
     * with a long label: shorten it instead. */
    char msg[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        msg[0] = '\0';
    else if ((size_t)n >= sizeof(msg))
        memcpy(msg + sizeof(msg) - 4, "...", 4);
    if (prov != NULL && prov->handle != NULL && c_new_error != NULL && c_vset_error != NULL) {
        c_new_error(prov->handle);
        if (c_set_error_debug != NULL)
            c_set_error_debug(prov->handle, file, line, func);
    } else {
        ERR_new();
        ERR_set_debug(file, line, func);
    }
    set_error(prov, reason, "%s", msg);
}

int primus_reason_for_status(p11_status st)
{
    switch (st) {
    case P11_OK: return PRIMUS_R_INTERNAL;
    case P11_ERR_CONFIG: return PRIMUS_R_CONFIG;
    case P11_ERR_URI: return PRIMUS_R_URI;
    case P11_ERR_MODULE: return PRIMUS_R_MODULE;
    case P11_ERR_NO_TOKEN: return PRIMUS_R_NO_TOKEN;
    case P11_ERR_PIN: return PRIMUS_R_PIN;
    case P11_ERR_NOT_FOUND: return PRIMUS_R_NOT_FOUND;
    case P11_ERR_AMBIGUOUS: return PRIMUS_R_AMBIGUOUS;
    case P11_ERR_MECHANISM: return PRIMUS_R_MECHANISM;
    case P11_ERR_UNAVAILABLE: return PRIMUS_R_UNAVAILABLE;
    case P11_ERR_OPERATION: return PRIMUS_R_OPERATION;
    case P11_ERR_BUFFER: return PRIMUS_R_BUFFER;
    case P11_ERR_AUDIT: return PRIMUS_R_AUDIT;
    case P11_ERR_MEMORY: return PRIMUS_R_MEMORY;
    case P11_ERR_INTERNAL: return PRIMUS_R_INTERNAL;
    }
    return PRIMUS_R_INTERNAL;
}

void primus_raise_p11(const primus_prov *prov, const char *file, int line, const char *func,
                      p11_status st, const char *what)
{
    const char *msg = p11_error_message();
    CK_RV rv = p11_error_rv();

    if (msg == NULL || *msg == '\0')
        msg = p11_status_name(st);
    if (rv != CKR_OK && strstr(msg, p11_rv_name(rv)) == NULL)
        primus_raise(prov, file, line, func, primus_reason_for_status(st), "%s: %s (%s)",
                     what != NULL ? what : "HSM operation", msg, p11_rv_name(rv));
    else
        primus_raise(prov, file, line, func, primus_reason_for_status(st), "%s: %s",
                     what != NULL ? what : "HSM operation", msg);
    p11_error_clear();
}

void primus_set_error_mark(const primus_prov *prov)
{
    if (prov != NULL && c_set_error_mark != NULL)
        c_set_error_mark(prov->handle);
    else
        ERR_set_mark();
}

void primus_pop_error_to_mark(const primus_prov *prov)
{
    if (prov != NULL && c_pop_error_to_mark != NULL)
        c_pop_error_to_mark(prov->handle);
    else
        ERR_pop_to_mark();
}

void primus_clear_last_error_mark(const primus_prov *prov)
{
    if (prov != NULL && c_clear_last_error_mark != NULL)
        c_clear_last_error_mark(prov->handle);
    else
        ERR_clear_last_mark();
}

/* ---- algorithms ---------------------------------------------------------- */

static const OSSL_ALGORITHM primus_keymgmt[] = {
    { PRIMUS_NAMES_RSA, PRIMUS_PROPS, primus_rsa_keymgmt_functions,
      "RSA keys in a PKCS#11 token" },
    { PRIMUS_NAMES_RSA_PSS, PRIMUS_PROPS, primus_rsapss_keymgmt_functions,
      "RSA-PSS keys in a PKCS#11 token" },
    { PRIMUS_NAMES_EC, PRIMUS_PROPS, primus_ec_keymgmt_functions,
      "EC keys in a PKCS#11 token" },
    { PRIMUS_NAMES_ED25519, PRIMUS_PROPS, primus_ed25519_keymgmt_functions,
      "Ed25519 keys in a PKCS#11 token" },
    { PRIMUS_URI_DECODER_NAME, PRIMUS_PROPS, primus_uri_keymgmt_functions,
      "no keys: names the decoders of PKCS#11 URI key files (decoder.c)" },
    { NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM primus_signature[] = {
    { PRIMUS_NAMES_RSA, PRIMUS_PROPS, primus_rsa_signature_functions,
      "RSA PKCS#1 v1.5 and PSS signatures in the HSM" },
    { "ECDSA", PRIMUS_PROPS, primus_ecdsa_signature_functions, "ECDSA signatures in the HSM" },
    { PRIMUS_NAMES_ED25519, PRIMUS_PROPS, primus_ed25519_signature_functions,
      "Ed25519 signatures in the HSM" },
    { NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM primus_asym_cipher[] = {
    { PRIMUS_NAMES_RSA, PRIMUS_PROPS, primus_rsa_asym_cipher_functions,
      "RSA PKCS#1 v1.5 and OAEP decryption in the HSM" },
    { NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM primus_exchange[] = {
    { "ECDH", PRIMUS_PROPS, primus_ecdh_exchange_functions, "ECDH with HSM keys" },
    { NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM primus_store[] = {
    { "pkcs11", PRIMUS_PROPS, primus_store_functions,
      "PKCS#11 URIs (RFC 7512) naming keys and certificates in the HSM" },
    { NULL, NULL, NULL, NULL }
};

#define ENC_PROPS(out, structure) PRIMUS_PROPS ",output=" out ",structure=" structure
static const OSSL_ALGORITHM primus_encoder[] = {
    { PRIMUS_NAMES_RSA, ENC_PROPS("pem", "PrivateKeyInfo"),
      primus_rsa_uri_pem_encoder_functions, NULL },
    { PRIMUS_NAMES_RSA_PSS, ENC_PROPS("pem", "PrivateKeyInfo"),
      primus_rsapss_uri_pem_encoder_functions, NULL },
    { PRIMUS_NAMES_EC, ENC_PROPS("pem", "PrivateKeyInfo"),
      primus_ec_uri_pem_encoder_functions, NULL },
    { PRIMUS_NAMES_ED25519, ENC_PROPS("pem", "PrivateKeyInfo"),
      primus_ed25519_uri_pem_encoder_functions, NULL },
    { PRIMUS_NAMES_RSA, ENC_PROPS("der", "PrivateKeyInfo"),
      primus_rsa_uri_der_encoder_functions, NULL },
    { PRIMUS_NAMES_RSA_PSS, ENC_PROPS("der", "PrivateKeyInfo"),
      primus_rsapss_uri_der_encoder_functions, NULL },
    { PRIMUS_NAMES_EC, ENC_PROPS("der", "PrivateKeyInfo"),
      primus_ec_uri_der_encoder_functions, NULL },
    { PRIMUS_NAMES_ED25519, ENC_PROPS("der", "PrivateKeyInfo"),
      primus_ed25519_uri_der_encoder_functions, NULL },
    { PRIMUS_NAMES_RSA, PRIMUS_PROPS ",output=text", primus_rsa_text_encoder_functions, NULL },
    { PRIMUS_NAMES_RSA_PSS, PRIMUS_PROPS ",output=text", primus_rsapss_text_encoder_functions,
      NULL },
    { PRIMUS_NAMES_EC, PRIMUS_PROPS ",output=text", primus_ec_text_encoder_functions, NULL },
    { PRIMUS_NAMES_ED25519, PRIMUS_PROPS ",output=text", primus_ed25519_text_encoder_functions,
      NULL },
    { NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM primus_decoder[] = {
    { "DER", PRIMUS_PROPS ",input=pem", primus_pem_to_der_decoder_functions,
      "PKCS#11 PROVIDER URI PEM files" },
    { PRIMUS_URI_DECODER_NAME, PRIMUS_PROPS ",input=der,structure=" PRIMUS_URI_DER_STRUCTURE,
      primus_uri_der_decoder_functions, "PKCS#11 PROVIDER URI key files in DER" },
    { NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM primus_rand[] = {
    { "PRIMUS-HSM-RNG", PRIMUS_PROPS, primus_rand_functions,
      "random bytes from the HSM's generator" },
    { NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM *primus_query_operation(void *provctx, int operation_id,
                                                    int *no_cache)
{
    primus_prov *prov = provctx;

    *no_cache = 0;
    switch (operation_id) {
    case OSSL_OP_KEYMGMT:
        return primus_keymgmt;
    case OSSL_OP_SIGNATURE:
        return primus_signature;
    case OSSL_OP_ASYM_CIPHER:
        return primus_asym_cipher;
    case OSSL_OP_KEYEXCH:
        return primus_exchange;
    case OSSL_OP_STORE:
        return primus_store;
    case OSSL_OP_ENCODER:
        return primus_encoder;
    case OSSL_OP_DECODER:
        return primus_decoder;
    case OSSL_OP_RAND:
        /* Off by default: SoftHSM (and other in-process modules) draw
         * their own randomness from OpenSSL, which would recurse. */
        return prov->rand_enabled ? primus_rand : NULL;
    }
    return NULL;
}

/* ---- parameters ------------------------------------------------------------ */

static const OSSL_PARAM primus_gettable_params_list[] = {
    OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_NAME, NULL, 0),
    OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_VERSION, NULL, 0),
    OSSL_PARAM_utf8_ptr(OSSL_PROV_PARAM_BUILDINFO, NULL, 0),
    OSSL_PARAM_int(OSSL_PROV_PARAM_STATUS, NULL),
    OSSL_PARAM_END
};

static const OSSL_PARAM *primus_gettable_params(void *provctx)
{
    return primus_gettable_params_list;
}

static int primus_get_params(void *provctx, OSSL_PARAM params[])
{
    OSSL_PARAM *p;

    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME);
    if (p != NULL && !OSSL_PARAM_set_utf8_ptr(p, PRIMUS_PROV_FULLNAME))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION);
    if (p != NULL && !OSSL_PARAM_set_utf8_ptr(p, PRIMUS_VERSION_STR))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO);
    if (p != NULL && !OSSL_PARAM_set_utf8_ptr(p, PRIMUS_BUILDINFO))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS);
    if (p != NULL
        && !OSSL_PARAM_set_int(p, provctx != NULL
                                      && ((primus_prov *)provctx)->config_reason == 0))
        return 0;
    return 1;
}

/* ---- life cycle -------------------------------------------------------------- */

int primus_prov_ready(const primus_prov *prov)
{
    if (prov == NULL)
        return 0;
    if (prov->config_reason == 0)
        return 1;
    PRIMUS_RAISE(prov, prov->config_reason, "%s", prov->config_error);
    return 0;
}

static void config_failed(primus_prov *prov, int reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void config_failed(primus_prov *prov, int reason, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(prov->config_error, sizeof(prov->config_error), fmt, ap);
    va_end(ap);
    prov->config_reason = reason;
    /* also raised now, for callers that look at provider load errors */
    PRIMUS_RAISE(prov, reason, "%s", prov->config_error);
}

static void primus_prov_free(primus_prov *prov)
{
    if (prov == NULL)
        return;
    /* p11core decides whether finalizing the module is safe (not when the
     * process is exiting, or with the no-deinit quirk). */
    p11_core_free(prov->core);
    {
        size_t i;
        for (i = 0; i < sizeof(prov->digests) / sizeof(prov->digests[0]); i++)
            EVP_MD_free(atomic_load(&prov->digests[i]));
    }
    prov->core = NULL;
    if (prov->deflt != NULL)
        OSSL_PROVIDER_unload(prov->deflt);
    OSSL_LIB_CTX_free(prov->libctx);
    OPENSSL_free(prov->rand_uri);
    OPENSSL_free(prov);
}

static void primus_teardown(void *provctx)
{
    primus_prov_free(provctx);
}

/* No TLS groups or signature algorithms of our own: answer "nothing, and
 * that is fine" (0 would make SSL_CTX_new fail). */
static int primus_get_capabilities(void *provctx, const char *capability, OSSL_CALLBACK *cb,
                                   void *arg)
{
    return 1;
}

static const OSSL_DISPATCH primus_dispatch_table[] = {
    { OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))primus_teardown },
    { OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, (void (*)(void))primus_gettable_params },
    { OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))primus_get_params },
    { OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))primus_query_operation },
    { OSSL_FUNC_PROVIDER_GET_REASON_STRINGS, (void (*)(void))primus_get_reason_strings },
    { OSSL_FUNC_PROVIDER_GET_CAPABILITIES, (void (*)(void))primus_get_capabilities },
    { 0, NULL }
};

/* The configuration keys p11core understands (p11core.h, p11_core_set). */
static const char *const primus_core_keys[] = {
    "pkcs11-module-path",
    "pkcs11-module-token-pin",
    "pkcs11-module-init-args",
    "pkcs11-module-quirks",
    "primus-topology",
    "primus-audit-log",
    "primus-audit-key",
    "primus-audit-policy",
    "primus-session-key-cache",
    "primus-member-timeout-ms",
};
#define N_CORE_KEYS (sizeof(primus_core_keys) / sizeof(primus_core_keys[0]))

static int parse_bool(const char *v, int *out)
{
    if (strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "on") == 0
        || strcmp(v, "1") == 0) {
        *out = 1;
        return 1;
    }
    if (strcasecmp(v, "no") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "off") == 0
        || strcmp(v, "0") == 0) {
        *out = 0;
        return 1;
    }
    return 0;
}

static int primus_configure(primus_prov *prov)
{
    char *values[N_CORE_KEYS + 2];
    OSSL_PARAM params[N_CORE_KEYS + 3];
    size_t i;

    memset(values, 0, sizeof(values));
    for (i = 0; i < N_CORE_KEYS; i++)
        params[i] = OSSL_PARAM_construct_utf8_ptr(primus_core_keys[i], &values[i], 0);
    params[N_CORE_KEYS] = OSSL_PARAM_construct_utf8_ptr("primus-rand", &values[N_CORE_KEYS], 0);
    params[N_CORE_KEYS + 1] =
        OSSL_PARAM_construct_utf8_ptr("primus-rand-uri", &values[N_CORE_KEYS + 1], 0);
    params[N_CORE_KEYS + 2] = OSSL_PARAM_construct_end();

    if (c_get_params == NULL || !c_get_params(prov->handle, params)) {
        config_failed(prov, PRIMUS_R_CONFIG,
                      "could not read the provider's configuration section from OpenSSL");
        return 0;
    }

    for (i = 0; i < N_CORE_KEYS; i++) {
        p11_status st;

        if (values[i] == NULL)
            continue;
        st = p11_core_set(prov->core, primus_core_keys[i], values[i]);
        if (st != P11_OK) {
            const char *msg = p11_error_message();

            /* p11core's message never echoes a PIN; ours names only the key */
            config_failed(prov, primus_reason_for_status(st),
                          "%s in the provider's configuration section: %s", primus_core_keys[i],
                          msg != NULL && *msg != '\0' ? msg : p11_status_name(st));
            p11_error_clear();
            return 0;
        }
    }
    if (values[N_CORE_KEYS] != NULL && !parse_bool(values[N_CORE_KEYS], &prov->rand_enabled)) {
        config_failed(prov, PRIMUS_R_CONFIG,
                      "primus-rand = %s in the provider's configuration section: use \"yes\" "
                      "or \"no\"", values[N_CORE_KEYS]);
        return 0;
    }
    prov->rand_uri = OPENSSL_strdup(values[N_CORE_KEYS + 1] != NULL ? values[N_CORE_KEYS + 1]
                                                                     : "pkcs11:");
    if (prov->rand_uri == NULL)
        return 0;
    return 1;
}

__attribute__((visibility("default")))
int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                       const OSSL_DISPATCH **out, void **provctx)
{
    primus_prov *prov;
    const OSSL_DISPATCH *d;

    for (d = in; d->function_id != 0; d++) {
        switch (d->function_id) {
        case OSSL_FUNC_CORE_GET_PARAMS:
            c_get_params = OSSL_FUNC_core_get_params(d);
            break;
        case OSSL_FUNC_CORE_NEW_ERROR:
            c_new_error = OSSL_FUNC_core_new_error(d);
            break;
        case OSSL_FUNC_CORE_SET_ERROR_DEBUG:
            c_set_error_debug = OSSL_FUNC_core_set_error_debug(d);
            break;
        case OSSL_FUNC_CORE_VSET_ERROR:
            c_vset_error = OSSL_FUNC_core_vset_error(d);
            break;
        case OSSL_FUNC_CORE_SET_ERROR_MARK:
            c_set_error_mark = OSSL_FUNC_core_set_error_mark(d);
            break;
        case OSSL_FUNC_CORE_POP_ERROR_TO_MARK:
            c_pop_error_to_mark = OSSL_FUNC_core_pop_error_to_mark(d);
            break;
        case OSSL_FUNC_CORE_CLEAR_LAST_ERROR_MARK:
            c_clear_last_error_mark = OSSL_FUNC_core_clear_last_error_mark(d);
            break;
        default:
            break;
        }
    }

    prov = OPENSSL_zalloc(sizeof(*prov));
    if (prov == NULL)
        return 0;
    prov->handle = handle;

    prov->libctx = OSSL_LIB_CTX_new_from_dispatch(handle, in);
    if (prov->libctx == NULL) {
        PRIMUS_RAISE(prov, PRIMUS_R_INTERNAL, "could not create the provider's library context");
        goto err;
    }
    prov->deflt = OSSL_PROVIDER_load(prov->libctx, "default");
    if (prov->deflt == NULL) {
        PRIMUS_RAISE(prov, PRIMUS_R_INTERNAL,
                     "could not load OpenSSL's default provider into the primus provider's "
                     "own library context (needed for software digests and verification)");
        goto err;
    }
    prov->core = p11_core_new();
    if (prov->core == NULL) {
        PRIMUS_RAISE(prov, PRIMUS_R_MEMORY, "could not create the PKCS#11 core");
        goto err;
    }
    if (!primus_configure(prov)) {
        /* Stay loaded; every HSM operation reports the configuration error
         * (OpenSSL itself drops errors of providers that fail to load). */
        prov->rand_enabled = 0;
    }

    *out = primus_dispatch_table;
    *provctx = prov;
    return 1;

err:
    primus_prov_free(prov);
    return 0;
}

EVP_MD *primus_fetch_digest(primus_prov *prov, const char *name)
{
    static const char *const cached[] = {"SHA1", "SHA2-224", "SHA2-256", "SHA2-384", "SHA2-512"};
    EVP_MD *md;
    size_t i;

    for (i = 0; i < sizeof(cached) / sizeof(cached[0]); i++) {
        md = atomic_load(&prov->digests[i]);
        if (md != NULL && EVP_MD_is_a(md, name))
            return EVP_MD_up_ref(md) ? md : NULL;
    }
    md = EVP_MD_fetch(prov->libctx, name, NULL);
    if (md == NULL)
        return NULL;
    for (i = 0; i < sizeof(cached) / sizeof(cached[0]); i++)
        if (EVP_MD_is_a(md, cached[i])) {
            EVP_MD *none = NULL;
            /* keep one reference in the cache; a lost race just frees it */
            if (EVP_MD_up_ref(md) && !atomic_compare_exchange_strong(&prov->digests[i], &none, md))
                EVP_MD_free(md);
            break;
        }
    return md;
}
