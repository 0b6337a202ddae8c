/*
 * provider.h: types shared by the files of the primus OpenSSL provider.
 *
 * The provider is a thin face over p11core: every file implements one
 * OpenSSL operation and ends with its OSSL_DISPATCH table.  Nothing here
 * talks PKCS#11 directly except through p11core's key references.
 *
 * Key model (key.c): a primus_key is either
 *   - an HSM key: a p11core reference (p11) to a private or public key object,
 *     plus its public half as a software EVP_PKEY (sw) in the provider's own
 *     library context, used for verify/encrypt/export/match; or
 *   - a software key (p11 == NULL): a whole EVP_PKEY in the provider's own
 *     library context.  These exist because OpenSSL may pick this provider's
 *     key management for keys that have nothing to do with the HSM (TLS
 *     ephemeral keys, keys imported for comparison); everything is then done
 *     in software by the default provider.
 * Private key material of HSM keys never leaves the HSM.
 */
#ifndef PRIMUS_PROVIDER_H
#define PRIMUS_PROVIDER_H

#include <stdatomic.h>
#include <stddef.h>
#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "p11core.h"

#define PRIMUS_PROV_NAME "primus"
#define PRIMUS_PROV_FULLNAME "Primus HSM PKCS#11 provider"
#define PRIMUS_PROPS "provider=primus"

/* The URI PEM file, the same format as pkcs11-provider's. */
#define PRIMUS_URI_PEM_LABEL "PKCS#11 PROVIDER URI"
#define PRIMUS_URI_PEM_DESC "PKCS#11 Provider URI v1.0"
#define PRIMUS_URI_DER_STRUCTURE "pk11-uri"
/* The URI file decoders' name, and the key manager's that it must be. */
#define PRIMUS_URI_DECODER_NAME "PKCS11-URI"

/* Key generation parameter naming the object to create. */
#define PRIMUS_PARAM_PKCS11_URI "pkcs11_uri"

/* ---- reason codes (provider.c has the strings) -------------------------- */
enum {
    PRIMUS_R_CONFIG = 1,
    PRIMUS_R_URI,
    PRIMUS_R_MODULE,
    PRIMUS_R_NO_TOKEN,
    PRIMUS_R_PIN,
    PRIMUS_R_NOT_FOUND,
    PRIMUS_R_AMBIGUOUS,
    PRIMUS_R_MECHANISM,
    PRIMUS_R_UNAVAILABLE,
    PRIMUS_R_OPERATION,
    PRIMUS_R_BUFFER,
    PRIMUS_R_AUDIT,
    PRIMUS_R_MEMORY,
    PRIMUS_R_INTERNAL,
    PRIMUS_R_WRONG_OBJECT_TYPE,
    PRIMUS_R_WRONG_KEY_TYPE,
    PRIMUS_R_NO_PRIVATE_KEY,
    PRIMUS_R_NO_PUBLIC_KEY,
    PRIMUS_R_UNSUPPORTED_DIGEST,
    PRIMUS_R_UNSUPPORTED_PADDING,
    PRIMUS_R_INVALID_SALT_LENGTH,
    PRIMUS_R_UNSUPPORTED_CURVE,
    PRIMUS_R_KEYGEN,
    PRIMUS_R_PRIVATE_EXPORT,
    PRIMUS_R_BAD_URI_PEM,
    PRIMUS_R_BAD_PARAMETER,
    PRIMUS_R_SOFTWARE,
    PRIMUS_R_UNSUPPORTED_OBJECT,
    PRIMUS_R_INPUT_TOO_LONG,
    PRIMUS_R_MAX
};

/* ---- the provider context ------------------------------------------------ */
typedef struct primus_prov {
    const OSSL_CORE_HANDLE *handle;
    /* Our own library context (made from the core's dispatch so that core
     * BIOs work) with only the default provider loaded: software digests,
     * verify, encrypt and key (de)serialisation never reach back into this
     * provider. */
    OSSL_LIB_CTX *libctx;
    OSSL_PROVIDER *deflt;
    p11_core *core;
    int rand_enabled;
    char *rand_uri;        /* which partition's RNG ("pkcs11:" for any) */
    /* A bad configuration value does not stop the provider from loading
     * (OpenSSL would drop the error silently); it is reported, with this
     * text, by every operation that would use the HSM. */
    int config_reason;
    char config_error[512];
    /* SHA-1 and SHA-2 digests fetched once (see primus_fetch_digest):
     * a signature init must not pay a method-store fetch. */
    EVP_MD *_Atomic digests[5];
} primus_prov;

/* The digest called name from the provider's own library context, as a
 * new reference (free it with EVP_MD_free); NULL when unknown. */
EVP_MD *primus_fetch_digest(primus_prov *prov, const char *name);

/* 1 when the configuration was good; otherwise raises its error, 0. */
int primus_prov_ready(const primus_prov *prov);

OSSL_LIB_CTX *primus_libctx(const primus_prov *prov);

/* ---- errors ---------------------------------------------------------------- */
void primus_raise(const primus_prov *prov, const char *file, int line, const char *func,
                  int reason, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;
#define PRIMUS_RAISE(prov, reason, ...) \
    primus_raise((prov), OPENSSL_FILE, OPENSSL_LINE, OPENSSL_FUNC, (reason), __VA_ARGS__)
/* Raise the calling thread's p11core error; "what" says what we were doing. */
void primus_raise_p11(const primus_prov *prov, const char *file, int line, const char *func,
                      p11_status st, const char *what);
#define PRIMUS_RAISE_P11(prov, st, what) \
    primus_raise_p11((prov), OPENSSL_FILE, OPENSSL_LINE, OPENSSL_FUNC, (st), (what))
int primus_reason_for_status(p11_status st);
void primus_set_error_mark(const primus_prov *prov);
void primus_pop_error_to_mark(const primus_prov *prov);
void primus_clear_last_error_mark(const primus_prov *prov);

/* ---- keys (key.c) ------------------------------------------------------- */
/* p11_key_supports, keeping the module's own OpenSSL errors out of the queue. */
int primus_key_supports(const primus_prov *prov, p11_key *key, CK_MECHANISM_TYPE mech,
                        CK_FLAGS purpose);
typedef enum primus_key_type {
    PRIMUS_KEY_NONE = 0,
    PRIMUS_KEY_RSA,
    PRIMUS_KEY_RSA_PSS,
    PRIMUS_KEY_EC,
    PRIMUS_KEY_ED25519
} primus_key_type;

typedef struct primus_key primus_key;

struct primus_key {
    primus_prov *prov;
    int refcnt;
    primus_key_type type;
    p11_key *p11;       /* HSM object, NULL for software keys */
    int hsm_private;    /* p11 is a private key object used as such */
    /* Public half (HSM keys) or whole key (software keys).  For a private
     * HSM key it is built from the token's attributes on first need
     * (primus_key_public): signing never needs it, and building the first
     * one costs a process ~0.8 ms (OpenSSL fills the provider's library
     * context on its first key manager fetch). */
    EVP_PKEY *_Atomic sw;
    int sw_private;     /* sw holds private material (software keys only) */
};

/* The name OpenSSL knows the type by: "RSA", "RSA-PSS", "EC", "ED25519". */
const char *primus_key_type_name(primus_key_type t);
primus_key_type primus_key_type_from_ck(CK_KEY_TYPE kt, const p11_bytes *ec_params);

primus_key *primus_key_new(primus_prov *prov, primus_key_type type);
primus_key *primus_key_up_ref(primus_key *key);
void primus_key_free(primus_key *key);
/* A key for the object (takes over one reference of p11).  public_view: use
 * only the public half of a private key object.  NULL + raised error on
 * failure (p11 is released then). */
primus_key *primus_key_from_p11(primus_prov *prov, p11_key *p11, int public_view);
/* Public half from the p11core object info (NULL when the token gave none). */
EVP_PKEY *primus_pub_from_info(primus_prov *prov, const p11_object_info *info,
                               primus_key_type type);
int primus_key_has_private(const primus_key *key);
int primus_key_has_public(const primus_key *key);
/* The key's public half as a software EVP_PKEY (built on first use for HSM
 * keys), NULL when the token gives no usable public material. */
EVP_PKEY *primus_key_public(const primus_key *key);
const p11_object_info *primus_key_info(const primus_key *key);
/* "pkcs11:..." naming the HSM object, NULL for software keys. */
const char *primus_key_uri(const primus_key *key);
int primus_key_bits(const primus_key *key);
/* Maximum signature/ciphertext size. */
size_t primus_key_max_size(const primus_key *key);

/* Passing a key by reference from the store / decoder to the key manager:
 * a 16-byte record, deliberately not pointer-sized so that another
 * provider's load() never mistakes it for its own. */
typedef struct primus_key_ref {
    char magic[8];
    primus_key *key;
} primus_key_ref;
void primus_key_ref_init(primus_key_ref *ref, primus_key *key);
primus_key *primus_key_ref_get(const void *reference, size_t reference_sz);

/* Open the key a URI names.  cls is CKO_PRIVATE_KEY or CKO_PUBLIC_KEY; for
 * CKO_PUBLIC_KEY a private key object's public half is used when no public
 * key object matches.  pw_cb (may be NULL) is asked for the PIN when the
 * token wants one and none is configured.  want (PRIMUS_KEY_NONE: any)
 * restricts the key type; *wrong_type is set when an object matched but was
 * of another key type (no error raised then). */
primus_key *primus_open_key_uri(primus_prov *prov, const char *uri_text, CK_OBJECT_CLASS cls,
                                primus_key_type want, int *wrong_type,
                                OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg);
/* p11_find_objects, asking pw_cb for the PIN when the token needs one that
 * is not configured; *prompted (start NULL, caller frees) then holds a copy
 * of uri carrying the PIN, to open the keys found with. */
p11_status primus_find(primus_prov *prov, const p11_uri *uri, CK_OBJECT_CLASS cls,
                       OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg, p11_object_list *out,
                       p11_uri **prompted);
/* Parse a URI, raising a provider error on failure. */
p11_uri *primus_parse_uri(const primus_prov *prov, const char *text);
/* Ask pw_cb for the token PIN and return a copy of uri with pin-value set
 * (NULL when no PIN was given).  The PIN buffer is wiped. */
p11_uri *primus_uri_with_prompted_pin(const p11_uri *uri, OSSL_PASSPHRASE_CALLBACK *pw_cb,
                                      void *pw_cbarg);

/* keymgmt helpers shared by keymgmt_rsa.c and keymgmt_ec.c (key.c) */
void *primus_km_new(primus_prov *prov, primus_key_type type);
void primus_km_free(void *keydata);
void *primus_km_load(const void *reference, size_t reference_sz, primus_key_type type);
int primus_km_has(const void *keydata, int selection);
int primus_km_match(const void *keydata1, const void *keydata2, int selection);
int primus_km_import(void *keydata, int selection, const OSSL_PARAM params[]);
int primus_km_export(void *keydata, int selection, OSSL_CALLBACK *cb, void *cbarg);
int primus_km_get_params(void *keydata, OSSL_PARAM params[]);
int primus_km_set_params(void *keydata, const OSSL_PARAM params[]);
int primus_km_validate(const void *keydata, int selection, int checktype);
void *primus_km_dup(const void *keydata, int selection);

/* key generation shared by both key managers (key.c) */
typedef struct primus_gen_ctx primus_gen_ctx;
void *primus_gen_init(primus_prov *prov, primus_key_type type, int selection,
                      const OSSL_PARAM params[]);
int primus_gen_set_params(void *genctx, const OSSL_PARAM params[]);
int primus_gen_set_template(void *genctx, void *templ);
void *primus_gen(void *genctx, OSSL_CALLBACK *cb, void *cbarg);
void primus_gen_cleanup(void *genctx);

/* ---- digests (signature.c) -------------------------------------------- */
/* The PKCS#11 hash and MGF1 constants for an OpenSSL digest NID, 0 when
 * PKCS#11 has none. */
CK_MECHANISM_TYPE primus_ckm_for_md(int md_nid);
CK_RSA_PKCS_MGF_TYPE primus_ckg_for_md(int md_nid);

/* ---- dispatch tables ------------------------------------------------------ */
extern const OSSL_DISPATCH primus_rsa_keymgmt_functions[];
extern const OSSL_DISPATCH primus_rsapss_keymgmt_functions[];
extern const OSSL_DISPATCH primus_ec_keymgmt_functions[];
extern const OSSL_DISPATCH primus_ed25519_keymgmt_functions[];
extern const OSSL_DISPATCH primus_store_functions[];
extern const OSSL_DISPATCH primus_rsa_signature_functions[];
extern const OSSL_DISPATCH primus_ecdsa_signature_functions[];
extern const OSSL_DISPATCH primus_ed25519_signature_functions[];
extern const OSSL_DISPATCH primus_rsa_asym_cipher_functions[];
extern const OSSL_DISPATCH primus_ecdh_exchange_functions[];
extern const OSSL_DISPATCH primus_rsa_uri_pem_encoder_functions[];
extern const OSSL_DISPATCH primus_rsapss_uri_pem_encoder_functions[];
extern const OSSL_DISPATCH primus_ec_uri_pem_encoder_functions[];
extern const OSSL_DISPATCH primus_ed25519_uri_pem_encoder_functions[];
extern const OSSL_DISPATCH primus_rsa_uri_der_encoder_functions[];
extern const OSSL_DISPATCH primus_rsapss_uri_der_encoder_functions[];
extern const OSSL_DISPATCH primus_ec_uri_der_encoder_functions[];
extern const OSSL_DISPATCH primus_ed25519_uri_der_encoder_functions[];
extern const OSSL_DISPATCH primus_rsa_text_encoder_functions[];
extern const OSSL_DISPATCH primus_rsapss_text_encoder_functions[];
extern const OSSL_DISPATCH primus_ec_text_encoder_functions[];
extern const OSSL_DISPATCH primus_ed25519_text_encoder_functions[];
extern const OSSL_DISPATCH primus_pem_to_der_decoder_functions[];
extern const OSSL_DISPATCH primus_uri_der_decoder_functions[];
extern const OSSL_DISPATCH primus_uri_keymgmt_functions[];
extern const OSSL_DISPATCH primus_rand_functions[];

/* URI PEM (encoder.c): DER of SEQUENCE { VisibleString desc, UTF8String uri }. */
int primus_uri_der_encode(const char *uri, unsigned char **der, size_t *der_len);
/* The URI from the DER, malloc'd (OPENSSL_malloc), NULL when it is not ours. */
char *primus_uri_der_decode(const unsigned char *der, size_t der_len);

/* Algorithm names, the same as the default provider's. */
#define PRIMUS_NAMES_RSA "RSA:rsaEncryption:1.2.840.113549.1.1.1"
#define PRIMUS_NAMES_RSA_PSS "RSA-PSS:RSASSA-PSS:1.2.840.113549.1.1.10"
#define PRIMUS_NAMES_EC "EC:id-ecPublicKey:1.2.840.10045.2.1"
#define PRIMUS_NAMES_ED25519 "ED25519:1.3.101.112"

#endif
