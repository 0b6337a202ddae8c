/*
 * test_rv.c: names of PKCS#11 return codes and mechanisms, operator advice,
 * and the member-fault classification that drives failover (p11core/rv.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include "p11core.h"
#include "rv.h"

/* Every CKR_ and CKM_ that p11-kit 0.24's pkcs11.h defines. */
#define HEADER_CKR(X) \
    X(CKR_OK) X(CKR_CANCEL) X(CKR_HOST_MEMORY) X(CKR_SLOT_ID_INVALID) X(CKR_GENERAL_ERROR) \
    X(CKR_FUNCTION_FAILED) X(CKR_ARGUMENTS_BAD) X(CKR_NO_EVENT) X(CKR_NEED_TO_CREATE_THREADS) \
    X(CKR_CANT_LOCK) X(CKR_ATTRIBUTE_READ_ONLY) X(CKR_ATTRIBUTE_SENSITIVE) \
    X(CKR_ATTRIBUTE_TYPE_INVALID) X(CKR_ATTRIBUTE_VALUE_INVALID) X(CKR_ACTION_PROHIBITED) \
    X(CKR_DATA_INVALID) X(CKR_DATA_LEN_RANGE) X(CKR_DEVICE_ERROR) X(CKR_DEVICE_MEMORY) \
    X(CKR_DEVICE_REMOVED) X(CKR_ENCRYPTED_DATA_INVALID) X(CKR_ENCRYPTED_DATA_LEN_RANGE) \
    X(CKR_FUNCTION_CANCELED) X(CKR_FUNCTION_NOT_PARALLEL) X(CKR_FUNCTION_NOT_SUPPORTED) \
    X(CKR_KEY_HANDLE_INVALID) X(CKR_KEY_SIZE_RANGE) X(CKR_KEY_TYPE_INCONSISTENT) \
    X(CKR_KEY_NOT_NEEDED) X(CKR_KEY_CHANGED) X(CKR_KEY_NEEDED) X(CKR_KEY_INDIGESTIBLE) \
    X(CKR_KEY_FUNCTION_NOT_PERMITTED) X(CKR_KEY_NOT_WRAPPABLE) X(CKR_KEY_UNEXTRACTABLE) \
    X(CKR_MECHANISM_INVALID) X(CKR_MECHANISM_PARAM_INVALID) X(CKR_OBJECT_HANDLE_INVALID) \
    X(CKR_OPERATION_ACTIVE) X(CKR_OPERATION_NOT_INITIALIZED) X(CKR_PIN_INCORRECT) \
    X(CKR_PIN_INVALID) X(CKR_PIN_LEN_RANGE) X(CKR_PIN_EXPIRED) X(CKR_PIN_LOCKED) \
    X(CKR_SESSION_CLOSED) X(CKR_SESSION_COUNT) X(CKR_SESSION_HANDLE_INVALID) \
    X(CKR_SESSION_PARALLEL_NOT_SUPPORTED) X(CKR_SESSION_READ_ONLY) X(CKR_SESSION_EXISTS) \
    X(CKR_SESSION_READ_ONLY_EXISTS) X(CKR_SESSION_READ_WRITE_SO_EXISTS) X(CKR_SIGNATURE_INVALID) \
    X(CKR_SIGNATURE_LEN_RANGE) X(CKR_TEMPLATE_INCOMPLETE) X(CKR_TEMPLATE_INCONSISTENT) \
    X(CKR_TOKEN_NOT_PRESENT) X(CKR_TOKEN_NOT_RECOGNIZED) X(CKR_TOKEN_WRITE_PROTECTED) \
    X(CKR_UNWRAPPING_KEY_HANDLE_INVALID) X(CKR_UNWRAPPING_KEY_SIZE_RANGE) \
    X(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT) X(CKR_USER_ALREADY_LOGGED_IN) \
    X(CKR_USER_NOT_LOGGED_IN) X(CKR_USER_PIN_NOT_INITIALIZED) X(CKR_USER_TYPE_INVALID) \
    X(CKR_USER_ANOTHER_ALREADY_LOGGED_IN) X(CKR_USER_TOO_MANY_TYPES) X(CKR_WRAPPED_KEY_INVALID) \
    X(CKR_WRAPPED_KEY_LEN_RANGE) X(CKR_WRAPPING_KEY_HANDLE_INVALID) X(CKR_WRAPPING_KEY_SIZE_RANGE) \
    X(CKR_WRAPPING_KEY_TYPE_INCONSISTENT) X(CKR_RANDOM_SEED_NOT_SUPPORTED) X(CKR_RANDOM_NO_RNG) \
    X(CKR_DOMAIN_PARAMS_INVALID) X(CKR_CURVE_NOT_SUPPORTED) X(CKR_BUFFER_TOO_SMALL) \
    X(CKR_SAVED_STATE_INVALID) X(CKR_INFORMATION_SENSITIVE) X(CKR_STATE_UNSAVEABLE) \
    X(CKR_CRYPTOKI_NOT_INITIALIZED) X(CKR_CRYPTOKI_ALREADY_INITIALIZED) X(CKR_MUTEX_BAD) \
    X(CKR_MUTEX_NOT_LOCKED) X(CKR_NEW_PIN_MODE) X(CKR_NEXT_OTP) X(CKR_EXCEEDED_MAX_ITERATIONS) \
    X(CKR_FIPS_SELF_TEST_FAILED) X(CKR_LIBRARY_LOAD_FAILED) X(CKR_PIN_TOO_WEAK) \
    X(CKR_PUBLIC_KEY_INVALID) X(CKR_FUNCTION_REJECTED)

#define HEADER_CKM(X) \
    X(CKM_RSA_PKCS_KEY_PAIR_GEN) X(CKM_RSA_PKCS) X(CKM_RSA_9796) X(CKM_RSA_X_509) \
    X(CKM_MD2_RSA_PKCS) X(CKM_MD5_RSA_PKCS) X(CKM_SHA1_RSA_PKCS) X(CKM_RIPEMD128_RSA_PKCS) \
    X(CKM_RIPEMD160_RSA_PKCS) X(CKM_RSA_PKCS_OAEP) X(CKM_RSA_X9_31_KEY_PAIR_GEN) X(CKM_RSA_X9_31) \
    X(CKM_SHA1_RSA_X9_31) X(CKM_RSA_PKCS_PSS) X(CKM_SHA1_RSA_PKCS_PSS) X(CKM_DSA_KEY_PAIR_GEN) \
    X(CKM_DSA) X(CKM_DSA_SHA1) X(CKM_DSA_SHA224) X(CKM_DSA_SHA256) X(CKM_DSA_SHA384) \
    X(CKM_DSA_SHA512) X(CKM_DH_PKCS_KEY_PAIR_GEN) X(CKM_DH_PKCS_DERIVE) \
    X(CKM_X9_42_DH_KEY_PAIR_GEN) X(CKM_X9_42_DH_DERIVE) X(CKM_X9_42_DH_HYBRID_DERIVE) \
    X(CKM_X9_42_MQV_DERIVE) X(CKM_SHA256_RSA_PKCS) X(CKM_SHA384_RSA_PKCS) X(CKM_SHA512_RSA_PKCS) \
    X(CKM_SHA256_RSA_PKCS_PSS) X(CKM_SHA384_RSA_PKCS_PSS) X(CKM_SHA512_RSA_PKCS_PSS) \
    X(CKM_SHA512_224) X(CKM_SHA512_224_HMAC) X(CKM_SHA512_224_HMAC_GENERAL) \
    X(CKM_SHA512_224_KEY_DERIVATION) X(CKM_SHA512_256) X(CKM_SHA512_256_HMAC) \
    X(CKM_SHA512_256_HMAC_GENERAL) X(CKM_SHA512_256_KEY_DERIVATION) X(CKM_SHA512_T) \
    X(CKM_SHA512_T_HMAC) X(CKM_SHA512_T_HMAC_GENERAL) X(CKM_SHA512_T_KEY_DERIVATION) \
    X(CKM_RC2_KEY_GEN) X(CKM_RC2_ECB) X(CKM_RC2_CBC) X(CKM_RC2_MAC) X(CKM_RC2_MAC_GENERAL) \
    X(CKM_RC2_CBC_PAD) X(CKM_RC4_KEY_GEN) X(CKM_RC4) X(CKM_DES_KEY_GEN) X(CKM_DES_ECB) \
    X(CKM_DES_CBC) X(CKM_DES_MAC) X(CKM_DES_MAC_GENERAL) X(CKM_DES_CBC_PAD) X(CKM_DES2_KEY_GEN) \
    X(CKM_DES3_KEY_GEN) X(CKM_DES3_ECB) X(CKM_DES3_CBC) X(CKM_DES3_MAC) X(CKM_DES3_MAC_GENERAL) \
    X(CKM_DES3_CBC_PAD) X(CKM_DES3_CMAC_GENERAL) X(CKM_DES3_CMAC) X(CKM_CDMF_KEY_GEN) \
    X(CKM_CDMF_ECB) X(CKM_CDMF_CBC) X(CKM_CDMF_MAC) X(CKM_CDMF_MAC_GENERAL) X(CKM_CDMF_CBC_PAD) \
    X(CKM_DES_OFB64) X(CKM_DES_OFB8) X(CKM_DES_CFB64) X(CKM_DES_CFB8) X(CKM_MD2) X(CKM_MD2_HMAC) \
    X(CKM_MD2_HMAC_GENERAL) X(CKM_MD5) X(CKM_MD5_HMAC) X(CKM_MD5_HMAC_GENERAL) X(CKM_SHA_1) \
    X(CKM_SHA_1_HMAC) X(CKM_SHA_1_HMAC_GENERAL) X(CKM_RIPEMD128) X(CKM_RIPEMD128_HMAC) \
    X(CKM_RIPEMD128_HMAC_GENERAL) X(CKM_RIPEMD160) X(CKM_RIPEMD160_HMAC) \
    X(CKM_RIPEMD160_HMAC_GENERAL) X(CKM_SHA256) X(CKM_SHA256_HMAC) X(CKM_SHA256_HMAC_GENERAL) \
    X(CKM_SHA384) X(CKM_SHA384_HMAC) X(CKM_SHA384_HMAC_GENERAL) X(CKM_SHA512) X(CKM_SHA512_HMAC) \
    X(CKM_SHA512_HMAC_GENERAL) X(CKM_SECURID_KEY_GEN) X(CKM_SECURID) X(CKM_HOTP_KEY_GEN) \
    X(CKM_HOTP) X(CKM_ACTI) X(CKM_ACTI_KEY_GEN) X(CKM_CAST_KEY_GEN) X(CKM_CAST_ECB) \
    X(CKM_CAST_CBC) X(CKM_CAST_MAC) X(CKM_CAST_MAC_GENERAL) X(CKM_CAST_CBC_PAD) \
    X(CKM_CAST3_KEY_GEN) X(CKM_CAST3_ECB) X(CKM_CAST3_CBC) X(CKM_CAST3_MAC) \
    X(CKM_CAST3_MAC_GENERAL) X(CKM_CAST3_CBC_PAD) X(CKM_CAST5_KEY_GEN) X(CKM_CAST128_KEY_GEN) \
    X(CKM_CAST5_ECB) X(CKM_CAST128_ECB) X(CKM_CAST5_CBC) X(CKM_CAST128_CBC) X(CKM_CAST5_MAC) \
    X(CKM_CAST128_MAC) X(CKM_CAST5_MAC_GENERAL) X(CKM_CAST128_MAC_GENERAL) X(CKM_CAST5_CBC_PAD) \
    X(CKM_CAST128_CBC_PAD) X(CKM_RC5_KEY_GEN) X(CKM_RC5_ECB) X(CKM_RC5_CBC) X(CKM_RC5_MAC) \
    X(CKM_RC5_MAC_GENERAL) X(CKM_RC5_CBC_PAD) X(CKM_IDEA_KEY_GEN) X(CKM_IDEA_ECB) X(CKM_IDEA_CBC) \
    X(CKM_IDEA_MAC) X(CKM_IDEA_MAC_GENERAL) X(CKM_IDEA_CBC_PAD) X(CKM_GENERIC_SECRET_KEY_GEN) \
    X(CKM_CONCATENATE_BASE_AND_KEY) X(CKM_CONCATENATE_BASE_AND_DATA) \
    X(CKM_CONCATENATE_DATA_AND_BASE) X(CKM_XOR_BASE_AND_DATA) X(CKM_EXTRACT_KEY_FROM_KEY) \
    X(CKM_SSL3_PRE_MASTER_KEY_GEN) X(CKM_SSL3_MASTER_KEY_DERIVE) X(CKM_SSL3_KEY_AND_MAC_DERIVE) \
    X(CKM_SSL3_MASTER_KEY_DERIVE_DH) X(CKM_TLS_PRE_MASTER_KEY_GEN) X(CKM_TLS_MASTER_KEY_DERIVE) \
    X(CKM_TLS_KEY_AND_MAC_DERIVE) X(CKM_TLS_MASTER_KEY_DERIVE_DH) X(CKM_TLS_PRF) \
    X(CKM_SSL3_MD5_MAC) X(CKM_SSL3_SHA1_MAC) X(CKM_MD5_KEY_DERIVATION) X(CKM_MD2_KEY_DERIVATION) \
    X(CKM_SHA1_KEY_DERIVATION) X(CKM_SHA256_KEY_DERIVATION) X(CKM_SHA384_KEY_DERIVATION) \
    X(CKM_SHA512_KEY_DERIVATION) X(CKM_PBE_MD2_DES_CBC) X(CKM_PBE_MD5_DES_CBC) \
    X(CKM_PBE_MD5_CAST_CBC) X(CKM_PBE_MD5_CAST3_CBC) X(CKM_PBE_MD5_CAST5_CBC) \
    X(CKM_PBE_MD5_CAST128_CBC) X(CKM_PBE_SHA1_CAST5_CBC) X(CKM_PBE_SHA1_CAST128_CBC) \
    X(CKM_PBE_SHA1_RC4_128) X(CKM_PBE_SHA1_RC4_40) X(CKM_PBE_SHA1_DES3_EDE_CBC) \
    X(CKM_PBE_SHA1_DES2_EDE_CBC) X(CKM_PBE_SHA1_RC2_128_CBC) X(CKM_PBE_SHA1_RC2_40_CBC) \
    X(CKM_PKCS5_PBKD2) X(CKM_PBA_SHA1_WITH_SHA1_HMAC) X(CKM_WTLS_PRE_MASTER_KEY_GEN) \
    X(CKM_WTLS_MASTER_KEY_DERIVE) X(CKM_WTLS_MASTER_KEY_DERIVE_DH_ECC) X(CKM_WTLS_PRF) \
    X(CKM_WTLS_SERVER_KEY_AND_MAC_DERIVE) X(CKM_WTLS_CLIENT_KEY_AND_MAC_DERIVE) \
    X(CKM_TLS10_MAC_SERVER) X(CKM_TLS10_MAC_CLIENT) X(CKM_TLS12_MAC) X(CKM_TLS12_KDF) \
    X(CKM_TLS12_MASTER_KEY_DERIVE) X(CKM_TLS12_KEY_AND_MAC_DERIVE) \
    X(CKM_TLS12_MASTER_KEY_DERIVE_DH) X(CKM_TLS12_KEY_SAFE_DERIVE) X(CKM_TLS_MAC) X(CKM_TLS_KDF) \
    X(CKM_KEY_WRAP_LYNKS) X(CKM_KEY_WRAP_SET_OAEP) X(CKM_CMS_SIG) X(CKM_KIP_DERIVE) \
    X(CKM_KIP_WRAP) X(CKM_KIP_MAC) X(CKM_ARIA_KEY_GEN) X(CKM_ARIA_ECB) X(CKM_ARIA_CBC) \
    X(CKM_ARIA_MAC) X(CKM_ARIA_MAC_GENERAL) X(CKM_ARIA_CBC_PAD) X(CKM_ARIA_ECB_ENCRYPT_DATA) \
    X(CKM_ARIA_CBC_ENCRYPT_DATA) X(CKM_SEED_KEY_GEN) X(CKM_SEED_ECB) X(CKM_SEED_CBC) \
    X(CKM_SEED_MAC) X(CKM_SEED_MAC_GENERAL) X(CKM_SEED_CBC_PAD) X(CKM_SEED_ECB_ENCRYPT_DATA) \
    X(CKM_SEED_CBC_ENCRYPT_DATA) X(CKM_SKIPJACK_KEY_GEN) X(CKM_SKIPJACK_ECB64) \
    X(CKM_SKIPJACK_CBC64) X(CKM_SKIPJACK_OFB64) X(CKM_SKIPJACK_CFB64) X(CKM_SKIPJACK_CFB32) \
    X(CKM_SKIPJACK_CFB16) X(CKM_SKIPJACK_CFB8) X(CKM_SKIPJACK_WRAP) X(CKM_SKIPJACK_PRIVATE_WRAP) \
    X(CKM_SKIPJACK_RELAYX) X(CKM_KEA_KEY_PAIR_GEN) X(CKM_KEA_KEY_DERIVE) X(CKM_FORTEZZA_TIMESTAMP) \
    X(CKM_BATON_KEY_GEN) X(CKM_BATON_ECB128) X(CKM_BATON_ECB96) X(CKM_BATON_CBC128) \
    X(CKM_BATON_COUNTER) X(CKM_BATON_SHUFFLE) X(CKM_BATON_WRAP) X(CKM_ECDSA_KEY_PAIR_GEN) \
    X(CKM_EC_KEY_PAIR_GEN) X(CKM_ECDSA) X(CKM_ECDSA_SHA1) X(CKM_ECDSA_SHA224) X(CKM_ECDSA_SHA256) \
    X(CKM_ECDSA_SHA384) X(CKM_ECDSA_SHA512) X(CKM_ECDH1_DERIVE) X(CKM_ECDH1_COFACTOR_DERIVE) \
    X(CKM_ECMQV_DERIVE) X(CKM_ECDH_AES_KEY_WRAP) X(CKM_RSA_AES_KEY_WRAP) X(CKM_JUNIPER_KEY_GEN) \
    X(CKM_JUNIPER_ECB128) X(CKM_JUNIPER_CBC128) X(CKM_JUNIPER_COUNTER) X(CKM_JUNIPER_SHUFFLE) \
    X(CKM_JUNIPER_WRAP) X(CKM_FASTHASH) X(CKM_AES_KEY_GEN) X(CKM_AES_ECB) X(CKM_AES_CBC) \
    X(CKM_AES_MAC) X(CKM_AES_MAC_GENERAL) X(CKM_AES_CBC_PAD) X(CKM_AES_CTR) X(CKM_AES_GCM) \
    X(CKM_AES_CCM) X(CKM_AES_CTS) X(CKM_AES_CMAC) X(CKM_AES_CMAC_GENERAL) X(CKM_AES_XCBC_MAC) \
    X(CKM_AES_XCBC_MAC_96) X(CKM_AES_GMAC) X(CKM_BLOWFISH_KEY_GEN) X(CKM_BLOWFISH_CBC) \
    X(CKM_TWOFISH_KEY_GEN) X(CKM_TWOFISH_CBC) X(CKM_BLOWFISH_CBC_PAD) X(CKM_TWOFISH_CBC_PAD) \
    X(CKM_DES_ECB_ENCRYPT_DATA) X(CKM_DES_CBC_ENCRYPT_DATA) X(CKM_DES3_ECB_ENCRYPT_DATA) \
    X(CKM_DES3_CBC_ENCRYPT_DATA) X(CKM_AES_ECB_ENCRYPT_DATA) X(CKM_AES_CBC_ENCRYPT_DATA) \
    X(CKM_GOSTR3410_KEY_PAIR_GEN) X(CKM_GOSTR3410) X(CKM_GOSTR3410_WITH_GOSTR3411) \
    X(CKM_GOSTR3410_KEY_WRAP) X(CKM_GOSTR3410_DERIVE) X(CKM_GOSTR3411) X(CKM_GOSTR3411_HMAC) \
    X(CKM_GOST28147_KEY_GEN) X(CKM_GOST28147_ECB) X(CKM_GOST28147) X(CKM_GOST28147_MAC) \
    X(CKM_GOST28147_KEY_WRAP) X(CKM_DSA_PARAMETER_GEN) X(CKM_DH_PKCS_PARAMETER_GEN) \
    X(CKM_X9_42_DH_PARAMETER_GEN) X(CKM_DSA_PROBABLISTIC_PARAMETER_GEN) \
    X(CKM_DSA_SHAWE_TAYLOR_PARAMETER_GEN) X(CKM_AES_OFB) X(CKM_AES_CFB64) X(CKM_AES_CFB8) \
    X(CKM_AES_CFB128) X(CKM_AES_CFB1) X(CKM_SHA224) X(CKM_SHA224_HMAC) X(CKM_SHA224_HMAC_GENERAL) \
    X(CKM_SHA224_RSA_PKCS) X(CKM_SHA224_RSA_PKCS_PSS) X(CKM_SHA224_KEY_DERIVATION) \
    X(CKM_CAMELLIA_KEY_GEN) X(CKM_CAMELLIA_ECB) X(CKM_CAMELLIA_CBC) X(CKM_CAMELLIA_MAC) \
    X(CKM_CAMELLIA_MAC_GENERAL) X(CKM_CAMELLIA_CBC_PAD) X(CKM_CAMELLIA_ECB_ENCRYPT_DATA) \
    X(CKM_CAMELLIA_CBC_ENCRYPT_DATA) X(CKM_CAMELLIA_CTR) X(CKM_AES_KEY_WRAP) \
    X(CKM_AES_KEY_WRAP_PAD) X(CKM_RSA_PKCS_TPM_1_1) X(CKM_RSA_PKCS_OAEP_TPM_1_1) \
    X(CKM_EC_EDWARDS_KEY_PAIR_GEN) X(CKM_EDDSA)

static void test_tables_sorted(void **state)
{
    (void)state;
    assert_int_equal(p11_rv_tables_check(), 0);
}

static void test_rv_names(void **state)
{
    (void)state;
    assert_string_equal(p11_rv_name(CKR_OK), "CKR_OK");
    assert_string_equal(p11_rv_name(CKR_PIN_INCORRECT), "CKR_PIN_INCORRECT");
    assert_string_equal(p11_rv_name(CKR_PIN_LOCKED), "CKR_PIN_LOCKED");
    assert_string_equal(p11_rv_name(CKR_DEVICE_ERROR), "CKR_DEVICE_ERROR");
    assert_string_equal(p11_rv_name(CKR_KEY_FUNCTION_NOT_PERMITTED), "CKR_KEY_FUNCTION_NOT_PERMITTED");
    assert_string_equal(p11_rv_name(CKR_FUNCTION_REJECTED), "CKR_FUNCTION_REJECTED");
    /* PKCS#11 3.0 codes p11-kit 0.24 lacks, and the OASIS values of the
     * five that its header gets wrong. */
    assert_string_equal(p11_rv_name(0x000000f0UL), "CKR_UNWRAPPING_KEY_HANDLE_INVALID");
    assert_string_equal(p11_rv_name(0x00000201UL), "CKR_TOKEN_RESOURCE_EXCEEDED");
    assert_string_equal(p11_rv_name(0x00000202UL), "CKR_OPERATION_CANCEL_FAILED");
    assert_string_equal(p11_rv_name(0x000001b5UL), "CKR_EXCEEDED_MAX_ITERATIONS");
    assert_string_equal(p11_rv_name(0x000001b8UL), "CKR_PIN_TOO_WEAK");
    assert_string_equal(p11_rv_name(0x000001b9UL), "CKR_PUBLIC_KEY_INVALID");
}

static void test_rv_names_every_header_code(void **state)
{
    (void)state;
    int bad = 0;
#define CHECK_RV(code) \
    if (strcmp(p11_rv_name(code), #code) != 0) { \
        print_error("%s -> %s\n", #code, p11_rv_name(code)); \
        bad++; \
    }
    HEADER_CKR(CHECK_RV)
#undef CHECK_RV
    assert_int_equal(bad, 0);
}

static void test_rv_unknown(void **state)
{
    (void)state;
    assert_string_equal(p11_rv_name(0x00000004UL), "CKR_0x00000004");
    assert_string_equal(p11_rv_name(0x0000ffffUL), "CKR_0x0000ffff");
    assert_string_equal(p11_rv_name(CKR_VENDOR_DEFINED), "CKR_VENDOR_DEFINED");
    assert_string_equal(p11_rv_name(CKR_VENDOR_DEFINED + 0x1234UL), "CKR_VENDOR_DEFINED+0x1234");
    /* Several unknown names stay valid at once (small per-thread ring). */
    const char *a = p11_rv_name(0x4UL), *b = p11_rv_name(0x5fUL), *c = p11_mechanism_name(0x7777UL);
    assert_string_equal(a, "CKR_0x00000004");
    assert_string_equal(b, "CKR_0x0000005f");
    assert_string_equal(c, "CKM_0x00007777");
    /* Unknown codes have no advice, and no classification. */
    assert_string_equal(p11_rv_advice(0x4UL), "");
    assert_string_equal(p11_rv_advice(CKR_VENDOR_DEFINED + 1), "");
    assert_int_equal(p11_rv_is_member_fault(0x4UL), 0);
    assert_int_equal(p11_rv_is_member_fault(CKR_VENDOR_DEFINED + 1), 0);
}

static void *other_thread(void *arg)
{
    (void)arg;
    const char *s = p11_rv_name(0x00000abcUL);
    return (void *)(strcmp(s, "CKR_0x00000abc") == 0 ? s : NULL);
}

static void test_rv_unknown_thread_local(void **state)
{
    (void)state;
    const char *mine = p11_rv_name(0x00000defUL);
    pthread_t t;
    void *theirs = NULL;
    assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
    assert_int_equal(pthread_join(t, &theirs), 0);
    assert_non_null(theirs);
    assert_ptr_not_equal(theirs, mine);
    assert_string_equal(mine, "CKR_0x00000def");
}

static void test_mechanism_names(void **state)
{
    (void)state;
    assert_string_equal(p11_mechanism_name(CKM_RSA_PKCS_KEY_PAIR_GEN), "CKM_RSA_PKCS_KEY_PAIR_GEN");
    assert_string_equal(p11_mechanism_name(CKM_RSA_PKCS), "CKM_RSA_PKCS");
    assert_string_equal(p11_mechanism_name(CKM_RSA_PKCS_PSS), "CKM_RSA_PKCS_PSS");
    assert_string_equal(p11_mechanism_name(CKM_RSA_PKCS_OAEP), "CKM_RSA_PKCS_OAEP");
    assert_string_equal(p11_mechanism_name(CKM_ECDSA), "CKM_ECDSA");
    assert_string_equal(p11_mechanism_name(CKM_ECDH1_DERIVE), "CKM_ECDH1_DERIVE");
    assert_string_equal(p11_mechanism_name(CKM_EDDSA), "CKM_EDDSA");
    assert_string_equal(p11_mechanism_name(CKM_SHA256), "CKM_SHA256");
    assert_string_equal(p11_mechanism_name(CKM_AES_GCM), "CKM_AES_GCM");
    /* Aliases give the current name. */
    assert_string_equal(p11_mechanism_name(CKM_ECDSA_KEY_PAIR_GEN), "CKM_EC_KEY_PAIR_GEN");
    assert_string_equal(p11_mechanism_name(CKM_CAST5_CBC), "CKM_CAST128_CBC");
    /* PKCS#11 3.0 mechanisms p11-kit 0.24 lacks. */
    assert_string_equal(p11_mechanism_name(0x00001056UL), "CKM_EC_MONTGOMERY_KEY_PAIR_GEN");
    assert_string_equal(p11_mechanism_name(0x000002b0UL), "CKM_SHA3_256");
    assert_string_equal(p11_mechanism_name(0x0000402aUL), "CKM_HKDF_DERIVE");
    assert_string_equal(p11_mechanism_name(0x00001071UL), "CKM_AES_XTS");
    /* Unknown and vendor-defined. */
    assert_string_equal(p11_mechanism_name(0x0000ffffUL), "CKM_0x0000ffff");
    assert_string_equal(p11_mechanism_name(CKM_VENDOR_DEFINED + 0x10UL), "CKM_0x80000010");
}

/* Names of the header that share a value with a preferred name. */
static const char *const mech_aliases[] = {
    "CKM_ECDSA_KEY_PAIR_GEN", "CKM_CAST5_KEY_GEN", "CKM_CAST5_ECB", "CKM_CAST5_CBC",
    "CKM_CAST5_MAC", "CKM_CAST5_MAC_GENERAL", "CKM_CAST5_CBC_PAD", "CKM_PBE_MD5_CAST5_CBC",
    "CKM_PBE_SHA1_CAST5_CBC", "CKM_DSA_PROBABLISTIC_PARAMETER_GEN",
};

static int is_alias(const char *name)
{
    for (size_t i = 0; i < sizeof(mech_aliases) / sizeof(mech_aliases[0]); i++)
        if (strcmp(mech_aliases[i], name) == 0)
            return 1;
    return 0;
}

static void test_mechanism_names_every_header_mechanism(void **state)
{
    (void)state;
    int bad = 0;
#define CHECK_MECH(mech) \
    { \
        const char *got = p11_mechanism_name(mech); \
        if (strncmp(got, "CKM_0x", 6) == 0 || (strcmp(got, #mech) != 0 && !is_alias(#mech))) { \
            print_error("%s -> %s\n", #mech, got); \
            bad++; \
        } \
    }
    HEADER_CKM(CHECK_MECH)
#undef CHECK_MECH
    assert_int_equal(bad, 0);
}

static void test_advice(void **state)
{
    (void)state;
    static const CK_RV must_advise[] = {
        CKR_PIN_INCORRECT, CKR_PIN_LOCKED, CKR_PIN_EXPIRED, CKR_PIN_INVALID, CKR_PIN_LEN_RANGE,
        CKR_USER_NOT_LOGGED_IN, CKR_USER_PIN_NOT_INITIALIZED, CKR_TOKEN_NOT_PRESENT,
        CKR_TOKEN_NOT_RECOGNIZED, CKR_DEVICE_ERROR, CKR_DEVICE_REMOVED, CKR_DEVICE_MEMORY,
        CKR_SESSION_HANDLE_INVALID, CKR_OBJECT_HANDLE_INVALID, CKR_KEY_HANDLE_INVALID,
        CKR_MECHANISM_INVALID, CKR_MECHANISM_PARAM_INVALID, CKR_KEY_TYPE_INCONSISTENT,
        CKR_KEY_FUNCTION_NOT_PERMITTED, CKR_DATA_LEN_RANGE, CKR_ENCRYPTED_DATA_INVALID,
        CKR_ARGUMENTS_BAD, CKR_CRYPTOKI_NOT_INITIALIZED, CKR_CANT_LOCK, CKR_HOST_MEMORY,
        CKR_GENERAL_ERROR, CKR_FUNCTION_FAILED, CKR_TEMPLATE_INCONSISTENT,
        CKR_ATTRIBUTE_VALUE_INVALID, CKR_SLOT_ID_INVALID, CKR_SIGNATURE_INVALID,
    };
    for (size_t i = 0; i < sizeof(must_advise) / sizeof(must_advise[0]); i++) {
        const char *a = p11_rv_advice(must_advise[i]);
        if (a == NULL || strlen(a) < 20) {
            print_error("no advice for %s\n", p11_rv_name(must_advise[i]));
            fail();
        }
    }
    assert_non_null(strstr(p11_rv_advice(CKR_PIN_INCORRECT), "not retried"));
    assert_non_null(strstr(p11_rv_advice(CKR_PIN_INCORRECT), "pkcs11-module-token-pin"));
    assert_non_null(strstr(p11_rv_advice(CKR_PIN_LOCKED), "administrator"));
    assert_non_null(strstr(p11_rv_advice(CKR_MECHANISM_INVALID), "does not offer this mechanism"));
    assert_non_null(strstr(p11_rv_advice(CKR_KEY_FUNCTION_NOT_PERMITTED), "CKA_SIGN"));
    assert_string_equal(p11_rv_advice(CKR_OK), "");
}

static void test_member_fault(void **state)
{
    (void)state;
    static const CK_RV member[] = {
        CKR_DEVICE_ERROR, CKR_DEVICE_REMOVED, CKR_DEVICE_MEMORY, CKR_TOKEN_NOT_PRESENT,
        CKR_TOKEN_NOT_RECOGNIZED, CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED,
        CKR_CRYPTOKI_NOT_INITIALIZED,
    };
    static const CK_RV caller[] = {
        CKR_OK, CKR_PIN_INCORRECT, CKR_PIN_LOCKED, CKR_PIN_EXPIRED, CKR_USER_NOT_LOGGED_IN,
        CKR_MECHANISM_INVALID, CKR_MECHANISM_PARAM_INVALID, CKR_KEY_TYPE_INCONSISTENT,
        CKR_KEY_FUNCTION_NOT_PERMITTED, CKR_DATA_LEN_RANGE, CKR_DATA_INVALID,
        CKR_ENCRYPTED_DATA_INVALID, CKR_SIGNATURE_INVALID, CKR_ARGUMENTS_BAD,
        CKR_KEY_HANDLE_INVALID, CKR_OBJECT_HANDLE_INVALID, CKR_TEMPLATE_INCONSISTENT,
        CKR_HOST_MEMORY, CKR_CANT_LOCK, CKR_BUFFER_TOO_SMALL, CKR_SESSION_COUNT,
        /* catch-alls: probe first (p11_rv_needs_probe) */
        CKR_GENERAL_ERROR, CKR_FUNCTION_FAILED,
    };
    for (size_t i = 0; i < sizeof(member) / sizeof(member[0]); i++) {
        if (!p11_rv_is_member_fault(member[i])) {
            print_error("%s should be a member fault\n", p11_rv_name(member[i]));
            fail();
        }
        assert_int_equal(p11_rv_needs_probe(member[i]), 0);
    }
    for (size_t i = 0; i < sizeof(caller) / sizeof(caller[0]); i++) {
        if (p11_rv_is_member_fault(caller[i])) {
            print_error("%s should not be a member fault\n", p11_rv_name(caller[i]));
            fail();
        }
    }
    assert_int_equal(p11_rv_needs_probe(CKR_GENERAL_ERROR), 1);
    assert_int_equal(p11_rv_needs_probe(CKR_FUNCTION_FAILED), 1);
    assert_int_equal(p11_rv_needs_probe(CKR_PIN_INCORRECT), 0);
    assert_int_equal(p11_rv_needs_probe(CKR_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables_sorted),
        cmocka_unit_test(test_rv_names),
        cmocka_unit_test(test_rv_names_every_header_code),
        cmocka_unit_test(test_rv_unknown),
        cmocka_unit_test(test_rv_unknown_thread_local),
        cmocka_unit_test(test_mechanism_names),
        cmocka_unit_test(test_mechanism_names_every_header_mechanism),
        cmocka_unit_test(test_advice),
        cmocka_unit_test(test_member_fault),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
