/*
 * rv.c: names of PKCS#11 return codes and mechanisms, operator advice for
 * the return codes, and which codes mean "this member failed".
 *
 * Plain C, no OpenSSL.  The tables are static arrays sorted by value and
 * searched by bisection; they are used on error and logging paths only,
 * but cost nothing to keep cheap.  p11_rv_tables_check() verifies the
 * order (run by tests/unit/test_rv.c).
 *
 * Values are written as numbers, not as the header's macros, on purpose:
 * they are the OASIS PKCS#11 3.0 values (pkcs11t.h), and p11-kit 0.24's
 * pkcs11.h gets five of them wrong (CKR_EXCEEDED_MAX_ITERATIONS ..
 * CKR_PUBLIC_KEY_INVALID are 0x1b5..0x1b9 in the standard, 0x1c0..0x1c4
 * in that header).  Both spellings are named below so that a module built
 * against either header is reported correctly; no standard code uses
 * 0x1c0..0x1c4.  The mechanism table covers every CKM_ of p11-kit's header
 * and of PKCS#11 3.0; where two names share a value (deprecated aliases)
 * the current name is used: CKM_EC_KEY_PAIR_GEN, not
 * CKM_ECDSA_KEY_PAIR_GEN; CKM_CAST128_*, not CKM_CAST5_*.
 */
#include <stdio.h>
#include <stddef.h>

#include "p11core.h"
#include "rv.h"

#define P11_VENDOR_DEFINED 0x80000000UL

struct rv_entry {
    CK_RV rv;
    const char *name;
    const char *advice; /* "" when there is nothing useful to say */
};

struct mech_entry {
    CK_MECHANISM_TYPE mech;
    const char *name;
};

#define RV(value, name, advice) { value##UL, #name, advice }

/* Sorted by value (checked by p11_rv_tables_check). */
static const struct rv_entry rv_table[] = {
    RV(0x00000000, CKR_OK, ""),
    RV(0x00000001, CKR_CANCEL,
       "the application's notify callback cancelled the operation"),
    RV(0x00000002, CKR_HOST_MEMORY,
       "the PKCS#11 library ran out of memory in this process: check the process's memory "
       "limits (ulimit, cgroup) and its memory use"),
    RV(0x00000003, CKR_SLOT_ID_INVALID,
       "the slot does not exist (slot IDs change when the library re-initializes): name the "
       "token by label or serial in the URI, not by slot-id"),
    RV(0x00000005, CKR_GENERAL_ERROR,
       "the PKCS#11 library failed for a reason it did not name: see the HSM library's own log; "
       "if it persists, check the member's health and restart the process"),
    RV(0x00000006, CKR_FUNCTION_FAILED,
       "the token could not complete the request and gave no reason: check the input and the "
       "key, then the HSM library's own log"),
    RV(0x00000007, CKR_ARGUMENTS_BAD,
       "the PKCS#11 library rejected the call's arguments (some tokens are strict about "
       "mechanism parameter blocks): report it with the mechanism and key type"),
    RV(0x00000008, CKR_NO_EVENT, ""),
    RV(0x00000009, CKR_NEED_TO_CREATE_THREADS,
       "the PKCS#11 library needs to create threads but was told it may not"),
    RV(0x0000000a, CKR_CANT_LOCK,
       "the PKCS#11 library cannot do the locking asked for in C_Initialize: it must be "
       "initialized with CKF_OS_LOCKING_OK; check pkcs11-module-init-args and the library version"),
    RV(0x00000010, CKR_ATTRIBUTE_READ_ONLY,
       "the attribute cannot be set or changed on this object"),
    RV(0x00000011, CKR_ATTRIBUTE_SENSITIVE,
       "the attribute cannot be read because the key is sensitive (expected for private and "
       "secret key material)"),
    RV(0x00000012, CKR_ATTRIBUTE_TYPE_INVALID,
       "the token does not know one of the attributes used: the HSM library may be older than "
       "the feature asked for"),
    RV(0x00000013, CKR_ATTRIBUTE_VALUE_INVALID,
       "the token refused a value in the key template (curve, key size, exponent, label or "
       "id): ask for parameters the HSM supports"),
    RV(0x0000001b, CKR_ACTION_PROHIBITED,
       "the token's policy forbids this action (for example copying or exporting a key)"),
    RV(0x00000020, CKR_DATA_INVALID,
       "the input is not valid for this mechanism (for example a digest of the wrong size for "
       "the padding)"),
    RV(0x00000021, CKR_DATA_LEN_RANGE,
       "the input is too long or too short for this key and mechanism (for example data larger "
       "than the RSA modulus, or a digest of the wrong size)"),
    RV(0x00000030, CKR_DEVICE_ERROR,
       "the HSM member stopped answering or reported a device fault: the request goes to "
       "another member if there is one; check the member's network link and service"),
    RV(0x00000031, CKR_DEVICE_MEMORY,
       "the HSM member ran out of memory (too many sessions or objects): the request goes to "
       "another member if there is one; close idle clients or delete unused objects"),
    RV(0x00000032, CKR_DEVICE_REMOVED,
       "the HSM member stopped answering (connection lost or device removed): the request goes "
       "to another member if there is one; check the member's network link and service"),
    RV(0x00000040, CKR_ENCRYPTED_DATA_INVALID,
       "the ciphertext is not valid for this key (wrong key, wrong padding or OAEP parameters, "
       "or corrupted data)"),
    RV(0x00000041, CKR_ENCRYPTED_DATA_LEN_RANGE,
       "the ciphertext has the wrong length for this key (an RSA ciphertext must be as long as "
       "the modulus)"),
    RV(0x00000050, CKR_FUNCTION_CANCELED, "the operation was cancelled"),
    RV(0x00000051, CKR_FUNCTION_NOT_PARALLEL, ""),
    RV(0x00000054, CKR_FUNCTION_NOT_SUPPORTED,
       "the PKCS#11 library does not implement this function: upgrade the HSM library or avoid "
       "the feature"),
    RV(0x00000060, CKR_KEY_HANDLE_INVALID,
       "the key handle is not valid: the member restarted, the key was deleted, or this process "
       "cannot see the token's objects (for example a server worker running as another user); "
       "check that the key exists on every member and is readable by the process's user"),
    RV(0x00000062, CKR_KEY_SIZE_RANGE,
       "the key size is outside what the token supports for this mechanism"),
    RV(0x00000063, CKR_KEY_TYPE_INCONSISTENT,
       "the key's type does not fit the mechanism (for example an EC key with an RSA "
       "mechanism): check that the URI names the intended key"),
    RV(0x00000064, CKR_KEY_NOT_NEEDED, ""),
    RV(0x00000065, CKR_KEY_CHANGED, ""),
    RV(0x00000066, CKR_KEY_NEEDED, ""),
    RV(0x00000067, CKR_KEY_INDIGESTIBLE, ""),
    RV(0x00000068, CKR_KEY_FUNCTION_NOT_PERMITTED,
       "the key's attributes forbid this use (CKA_SIGN/CKA_DECRYPT/CKA_DERIVE is false, or "
       "CKA_ALLOWED_MECHANISMS excludes the mechanism): use a key made for this purpose"),
    RV(0x00000069, CKR_KEY_NOT_WRAPPABLE, "the key cannot be wrapped (exported under another key)"),
    RV(0x0000006a, CKR_KEY_UNEXTRACTABLE,
       "the key cannot leave the token (CKA_EXTRACTABLE is false), as intended for HSM keys"),
    RV(0x00000070, CKR_MECHANISM_INVALID,
       "the token does not offer this mechanism: choose another algorithm or padding, or see "
       "the partition's mechanisms with primusctl list"),
    RV(0x00000071, CKR_MECHANISM_PARAM_INVALID,
       "the token refused the mechanism's parameters (hash, MGF, salt length or OAEP label): use "
       "parameters the HSM supports"),
    RV(0x00000082, CKR_OBJECT_HANDLE_INVALID,
       "the object handle is not valid: the member restarted or the object was deleted; check "
       "that the object exists on every member"),
    RV(0x00000090, CKR_OPERATION_ACTIVE,
       "another operation is still active in this session (an internal error: please report it)"),
    RV(0x00000091, CKR_OPERATION_NOT_INITIALIZED,
       "no operation was started in this session (an internal error: please report it)"),
    RV(0x000000a0, CKR_PIN_INCORRECT,
       "the PIN is wrong; it was not retried, since retries can lock the partition: correct "
       "pkcs11-module-token-pin or the URI's pin-source"),
    RV(0x000000a1, CKR_PIN_INVALID,
       "the PIN holds characters the token does not accept: check pkcs11-module-token-pin or "
       "the pin file for stray characters (a carriage return, spaces)"),
    RV(0x000000a2, CKR_PIN_LEN_RANGE,
       "the PIN is too long or too short for the token: check pkcs11-module-token-pin or the "
       "pin file"),
    RV(0x000000a3, CKR_PIN_EXPIRED,
       "the partition's PIN has expired: the HSM administrator must set a new one, then update "
       "pkcs11-module-token-pin or the pin file"),
    RV(0x000000a4, CKR_PIN_LOCKED,
       "the PIN is locked after too many wrong attempts: the HSM administrator must unlock or "
       "reset it; no key of this partition can be used until then"),
    RV(0x000000b0, CKR_SESSION_CLOSED,
       "the session was closed during the call (member restart): a new session is opened"),
    RV(0x000000b1, CKR_SESSION_COUNT,
       "the token has no more sessions to give: run fewer processes or threads against it, or "
       "raise the HSM's session limit"),
    RV(0x000000b3, CKR_SESSION_HANDLE_INVALID,
       "the session is no longer valid (the member restarted or the connection was "
       "re-established): a new session is opened and the request retried"),
    RV(0x000000b4, CKR_SESSION_PARALLEL_NOT_SUPPORTED, ""),
    RV(0x000000b5, CKR_SESSION_READ_ONLY,
       "the operation needs a read-write session (an internal error: please report it)"),
    RV(0x000000b6, CKR_SESSION_EXISTS,
       "a session is already open where none may be (for example while initializing the token)"),
    RV(0x000000b7, CKR_SESSION_READ_ONLY_EXISTS,
       "a read-only session is open, so the security officer cannot log in"),
    RV(0x000000b8, CKR_SESSION_READ_WRITE_SO_EXISTS,
       "a security officer (SO) session is open on the token: close it in the administration "
       "tool and retry"),
    RV(0x000000c0, CKR_SIGNATURE_INVALID,
       "the signature does not match the data and key (wrong key, changed data, or a different "
       "hash or padding)"),
    RV(0x000000c1, CKR_SIGNATURE_LEN_RANGE,
       "the signature has the wrong length for this key"),
    RV(0x000000d0, CKR_TEMPLATE_INCOMPLETE,
       "the token needs an attribute the request did not give (for example the curve or the "
       "modulus size)"),
    RV(0x000000d1, CKR_TEMPLATE_INCONSISTENT,
       "the requested attributes contradict each other or the partition's policy (for example "
       "an extractable key where the partition forbids it)"),
    RV(0x000000e0, CKR_TOKEN_NOT_PRESENT,
       "the token (partition) is not there: the member is down or restarting, or the "
       "partition was removed; the request goes to another member if there is one"),
    RV(0x000000e1, CKR_TOKEN_NOT_RECOGNIZED,
       "the PKCS#11 library does not recognize the token: the member may be restarting or "
       "misconfigured; the request goes to another member if there is one"),
    RV(0x000000e2, CKR_TOKEN_WRITE_PROTECTED,
       "the token is write-protected: keys cannot be generated or stored in this partition"),
    RV(0x000000f0, CKR_UNWRAPPING_KEY_HANDLE_INVALID, ""),
    RV(0x000000f1, CKR_UNWRAPPING_KEY_SIZE_RANGE, ""),
    RV(0x000000f2, CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT, ""),
    RV(0x00000100, CKR_USER_ALREADY_LOGGED_IN,
       "the partition is already logged in by this process (harmless)"),
    RV(0x00000101, CKR_USER_NOT_LOGGED_IN,
       "the key needs a login and there was none: give the PIN with pkcs11-module-token-pin or "
       "the URI's pin-source"),
    RV(0x00000102, CKR_USER_PIN_NOT_INITIALIZED,
       "the partition's user PIN was never set: initialize it with the HSM's administration "
       "tool (for SoftHSM: softhsm2-util --init-token)"),
    RV(0x00000103, CKR_USER_TYPE_INVALID, ""),
    RV(0x00000104, CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
       "another user (for example the security officer) is logged in to the token in this "
       "process: log that user out"),
    RV(0x00000105, CKR_USER_TOO_MANY_TYPES,
       "too many different users are logged in to the token: log the others out"),
    RV(0x00000110, CKR_WRAPPED_KEY_INVALID, ""),
    RV(0x00000112, CKR_WRAPPED_KEY_LEN_RANGE, ""),
    RV(0x00000113, CKR_WRAPPING_KEY_HANDLE_INVALID, ""),
    RV(0x00000114, CKR_WRAPPING_KEY_SIZE_RANGE, ""),
    RV(0x00000115, CKR_WRAPPING_KEY_TYPE_INCONSISTENT, ""),
    RV(0x00000120, CKR_RANDOM_SEED_NOT_SUPPORTED, ""),
    RV(0x00000121, CKR_RANDOM_NO_RNG, "the token has no random number generator"),
    RV(0x00000130, CKR_DOMAIN_PARAMS_INVALID,
       "the token refused the key's domain parameters: choose a curve or group it supports"),
    RV(0x00000140, CKR_CURVE_NOT_SUPPORTED,
       "the token does not support this elliptic curve: choose a curve the HSM supports"),
    RV(0x00000150, CKR_BUFFER_TOO_SMALL,
       "the output buffer is too small (an internal error: please report it)"),
    RV(0x00000160, CKR_SAVED_STATE_INVALID, ""),
    RV(0x00000170, CKR_INFORMATION_SENSITIVE, ""),
    RV(0x00000180, CKR_STATE_UNSAVEABLE, ""),
    RV(0x00000190, CKR_CRYPTOKI_NOT_INITIALIZED,
       "the PKCS#11 library is not initialized in this process (after a fork, or finalized by "
       "another component): it is initialized again and the request retried"),
    RV(0x00000191, CKR_CRYPTOKI_ALREADY_INITIALIZED,
       "another component of this process already initialized the PKCS#11 library (harmless: "
       "it is shared)"),
    RV(0x000001a0, CKR_MUTEX_BAD, ""),
    RV(0x000001a1, CKR_MUTEX_NOT_LOCKED, ""),
    RV(0x000001b0, CKR_NEW_PIN_MODE, ""),
    RV(0x000001b1, CKR_NEXT_OTP, ""),
    RV(0x000001b5, CKR_EXCEEDED_MAX_ITERATIONS, ""),
    RV(0x000001b6, CKR_FIPS_SELF_TEST_FAILED,
       "the HSM member failed its FIPS self-test and must not be used: tell the HSM "
       "administrator"),
    RV(0x000001b7, CKR_LIBRARY_LOAD_FAILED,
       "the PKCS#11 library could not load one of its own parts: check its installation "
       "(ldd on pkcs11-module-path)"),
    RV(0x000001b8, CKR_PIN_TOO_WEAK, "the new PIN does not meet the token's PIN policy"),
    RV(0x000001b9, CKR_PUBLIC_KEY_INVALID,
       "the public key is not valid (for example an EC point not on the curve)"),
    /* p11-kit 0.24's pkcs11.h values for the five codes above (see top). */
    RV(0x000001c0, CKR_EXCEEDED_MAX_ITERATIONS, ""),
    RV(0x000001c1, CKR_FIPS_SELF_TEST_FAILED,
       "the HSM member failed its FIPS self-test and must not be used: tell the HSM "
       "administrator"),
    RV(0x000001c2, CKR_LIBRARY_LOAD_FAILED,
       "the PKCS#11 library could not load one of its own parts: check its installation "
       "(ldd on pkcs11-module-path)"),
    RV(0x000001c3, CKR_PIN_TOO_WEAK, "the new PIN does not meet the token's PIN policy"),
    RV(0x000001c4, CKR_PUBLIC_KEY_INVALID,
       "the public key is not valid (for example an EC point not on the curve)"),
    RV(0x00000200, CKR_FUNCTION_REJECTED,
       "the token rejected the request (for example a user declined it on the device)"),
    RV(0x00000201, CKR_TOKEN_RESOURCE_EXCEEDED,
       "the token ran out of a resource (objects, storage): delete unused objects or raise the "
       "partition's quota"),
    RV(0x00000202, CKR_OPERATION_CANCEL_FAILED, ""),
};

/* Every CKM_ of p11-kit's pkcs11.h and of PKCS#11 3.0, sorted by value. */
static const struct mech_entry mech_table[] = {
    { 0x00000000UL, "CKM_RSA_PKCS_KEY_PAIR_GEN" },
    { 0x00000001UL, "CKM_RSA_PKCS" },
    { 0x00000002UL, "CKM_RSA_9796" },
    { 0x00000003UL, "CKM_RSA_X_509" },
    { 0x00000004UL, "CKM_MD2_RSA_PKCS" },
    { 0x00000005UL, "CKM_MD5_RSA_PKCS" },
    { 0x00000006UL, "CKM_SHA1_RSA_PKCS" },
    { 0x00000007UL, "CKM_RIPEMD128_RSA_PKCS" },
    { 0x00000008UL, "CKM_RIPEMD160_RSA_PKCS" },
    { 0x00000009UL, "CKM_RSA_PKCS_OAEP" },
    { 0x0000000aUL, "CKM_RSA_X9_31_KEY_PAIR_GEN" },
    { 0x0000000bUL, "CKM_RSA_X9_31" },
    { 0x0000000cUL, "CKM_SHA1_RSA_X9_31" },
    { 0x0000000dUL, "CKM_RSA_PKCS_PSS" },
    { 0x0000000eUL, "CKM_SHA1_RSA_PKCS_PSS" },
    { 0x00000010UL, "CKM_DSA_KEY_PAIR_GEN" },
    { 0x00000011UL, "CKM_DSA" },
    { 0x00000012UL, "CKM_DSA_SHA1" },
    { 0x00000013UL, "CKM_DSA_SHA224" },
    { 0x00000014UL, "CKM_DSA_SHA256" },
    { 0x00000015UL, "CKM_DSA_SHA384" },
    { 0x00000016UL, "CKM_DSA_SHA512" },
    { 0x00000018UL, "CKM_DSA_SHA3_224" },
    { 0x00000019UL, "CKM_DSA_SHA3_256" },
    { 0x0000001aUL, "CKM_DSA_SHA3_384" },
    { 0x0000001bUL, "CKM_DSA_SHA3_512" },
    { 0x00000020UL, "CKM_DH_PKCS_KEY_PAIR_GEN" },
    { 0x00000021UL, "CKM_DH_PKCS_DERIVE" },
    { 0x00000030UL, "CKM_X9_42_DH_KEY_PAIR_GEN" },
    { 0x00000031UL, "CKM_X9_42_DH_DERIVE" },
    { 0x00000032UL, "CKM_X9_42_DH_HYBRID_DERIVE" },
    { 0x00000033UL, "CKM_X9_42_MQV_DERIVE" },
    { 0x00000040UL, "CKM_SHA256_RSA_PKCS" },
    { 0x00000041UL, "CKM_SHA384_RSA_PKCS" },
    { 0x00000042UL, "CKM_SHA512_RSA_PKCS" },
    { 0x00000043UL, "CKM_SHA256_RSA_PKCS_PSS" },
    { 0x00000044UL, "CKM_SHA384_RSA_PKCS_PSS" },
    { 0x00000045UL, "CKM_SHA512_RSA_PKCS_PSS" },
    { 0x00000046UL, "CKM_SHA224_RSA_PKCS" },
    { 0x00000047UL, "CKM_SHA224_RSA_PKCS_PSS" },
    { 0x00000048UL, "CKM_SHA512_224" },
    { 0x00000049UL, "CKM_SHA512_224_HMAC" },
    { 0x0000004aUL, "CKM_SHA512_224_HMAC_GENERAL" },
    { 0x0000004bUL, "CKM_SHA512_224_KEY_DERIVATION" },
    { 0x0000004cUL, "CKM_SHA512_256" },
    { 0x0000004dUL, "CKM_SHA512_256_HMAC" },
    { 0x0000004eUL, "CKM_SHA512_256_HMAC_GENERAL" },
    { 0x0000004fUL, "CKM_SHA512_256_KEY_DERIVATION" },
    { 0x00000050UL, "CKM_SHA512_T" },
    { 0x00000051UL, "CKM_SHA512_T_HMAC" },
    { 0x00000052UL, "CKM_SHA512_T_HMAC_GENERAL" },
    { 0x00000053UL, "CKM_SHA512_T_KEY_DERIVATION" },
    { 0x00000060UL, "CKM_SHA3_256_RSA_PKCS" },
    { 0x00000061UL, "CKM_SHA3_384_RSA_PKCS" },
    { 0x00000062UL, "CKM_SHA3_512_RSA_PKCS" },
    { 0x00000063UL, "CKM_SHA3_256_RSA_PKCS_PSS" },
    { 0x00000064UL, "CKM_SHA3_384_RSA_PKCS_PSS" },
    { 0x00000065UL, "CKM_SHA3_512_RSA_PKCS_PSS" },
    { 0x00000066UL, "CKM_SHA3_224_RSA_PKCS" },
    { 0x00000067UL, "CKM_SHA3_224_RSA_PKCS_PSS" },
    { 0x00000100UL, "CKM_RC2_KEY_GEN" },
    { 0x00000101UL, "CKM_RC2_ECB" },
    { 0x00000102UL, "CKM_RC2_CBC" },
    { 0x00000103UL, "CKM_RC2_MAC" },
    { 0x00000104UL, "CKM_RC2_MAC_GENERAL" },
    { 0x00000105UL, "CKM_RC2_CBC_PAD" },
    { 0x00000110UL, "CKM_RC4_KEY_GEN" },
    { 0x00000111UL, "CKM_RC4" },
    { 0x00000120UL, "CKM_DES_KEY_GEN" },
    { 0x00000121UL, "CKM_DES_ECB" },
    { 0x00000122UL, "CKM_DES_CBC" },
    { 0x00000123UL, "CKM_DES_MAC" },
    { 0x00000124UL, "CKM_DES_MAC_GENERAL" },
    { 0x00000125UL, "CKM_DES_CBC_PAD" },
    { 0x00000130UL, "CKM_DES2_KEY_GEN" },
    { 0x00000131UL, "CKM_DES3_KEY_GEN" },
    { 0x00000132UL, "CKM_DES3_ECB" },
    { 0x00000133UL, "CKM_DES3_CBC" },
    { 0x00000134UL, "CKM_DES3_MAC" },
    { 0x00000135UL, "CKM_DES3_MAC_GENERAL" },
    { 0x00000136UL, "CKM_DES3_CBC_PAD" },
    { 0x00000137UL, "CKM_DES3_CMAC_GENERAL" },
    { 0x00000138UL, "CKM_DES3_CMAC" },
    { 0x00000140UL, "CKM_CDMF_KEY_GEN" },
    { 0x00000141UL, "CKM_CDMF_ECB" },
    { 0x00000142UL, "CKM_CDMF_CBC" },
    { 0x00000143UL, "CKM_CDMF_MAC" },
    { 0x00000144UL, "CKM_CDMF_MAC_GENERAL" },
    { 0x00000145UL, "CKM_CDMF_CBC_PAD" },
    { 0x00000150UL, "CKM_DES_OFB64" },
    { 0x00000151UL, "CKM_DES_OFB8" },
    { 0x00000152UL, "CKM_DES_CFB64" },
    { 0x00000153UL, "CKM_DES_CFB8" },
    { 0x00000200UL, "CKM_MD2" },
    { 0x00000201UL, "CKM_MD2_HMAC" },
    { 0x00000202UL, "CKM_MD2_HMAC_GENERAL" },
    { 0x00000210UL, "CKM_MD5" },
    { 0x00000211UL, "CKM_MD5_HMAC" },
    { 0x00000212UL, "CKM_MD5_HMAC_GENERAL" },
    { 0x00000220UL, "CKM_SHA_1" },
    { 0x00000221UL, "CKM_SHA_1_HMAC" },
    { 0x00000222UL, "CKM_SHA_1_HMAC_GENERAL" },
    { 0x00000230UL, "CKM_RIPEMD128" },
    { 0x00000231UL, "CKM_RIPEMD128_HMAC" },
    { 0x00000232UL, "CKM_RIPEMD128_HMAC_GENERAL" },
    { 0x00000240UL, "CKM_RIPEMD160" },
    { 0x00000241UL, "CKM_RIPEMD160_HMAC" },
    { 0x00000242UL, "CKM_RIPEMD160_HMAC_GENERAL" },
    { 0x00000250UL, "CKM_SHA256" },
    { 0x00000251UL, "CKM_SHA256_HMAC" },
    { 0x00000252UL, "CKM_SHA256_HMAC_GENERAL" },
    { 0x00000255UL, "CKM_SHA224" },
    { 0x00000256UL, "CKM_SHA224_HMAC" },
    { 0x00000257UL, "CKM_SHA224_HMAC_GENERAL" },
    { 0x00000260UL, "CKM_SHA384" },
    { 0x00000261UL, "CKM_SHA384_HMAC" },
    { 0x00000262UL, "CKM_SHA384_HMAC_GENERAL" },
    { 0x00000270UL, "CKM_SHA512" },
    { 0x00000271UL, "CKM_SHA512_HMAC" },
    { 0x00000272UL, "CKM_SHA512_HMAC_GENERAL" },
    { 0x00000280UL, "CKM_SECURID_KEY_GEN" },
    { 0x00000282UL, "CKM_SECURID" },
    { 0x00000290UL, "CKM_HOTP_KEY_GEN" },
    { 0x00000291UL, "CKM_HOTP" },
    { 0x000002a0UL, "CKM_ACTI" },
    { 0x000002a1UL, "CKM_ACTI_KEY_GEN" },
    { 0x000002b0UL, "CKM_SHA3_256" },
    { 0x000002b1UL, "CKM_SHA3_256_HMAC" },
    { 0x000002b2UL, "CKM_SHA3_256_HMAC_GENERAL" },
    { 0x000002b3UL, "CKM_SHA3_256_KEY_GEN" },
    { 0x000002b5UL, "CKM_SHA3_224" },
    { 0x000002b6UL, "CKM_SHA3_224_HMAC" },
    { 0x000002b7UL, "CKM_SHA3_224_HMAC_GENERAL" },
    { 0x000002b8UL, "CKM_SHA3_224_KEY_GEN" },
    { 0x000002c0UL, "CKM_SHA3_384" },
    { 0x000002c1UL, "CKM_SHA3_384_HMAC" },
    { 0x000002c2UL, "CKM_SHA3_384_HMAC_GENERAL" },
    { 0x000002c3UL, "CKM_SHA3_384_KEY_GEN" },
    { 0x000002d0UL, "CKM_SHA3_512" },
    { 0x000002d1UL, "CKM_SHA3_512_HMAC" },
    { 0x000002d2UL, "CKM_SHA3_512_HMAC_GENERAL" },
    { 0x000002d3UL, "CKM_SHA3_512_KEY_GEN" },
    { 0x00000300UL, "CKM_CAST_KEY_GEN" },
    { 0x00000301UL, "CKM_CAST_ECB" },
    { 0x00000302UL, "CKM_CAST_CBC" },
    { 0x00000303UL, "CKM_CAST_MAC" },
    { 0x00000304UL, "CKM_CAST_MAC_GENERAL" },
    { 0x00000305UL, "CKM_CAST_CBC_PAD" },
    { 0x00000310UL, "CKM_CAST3_KEY_GEN" },
    { 0x00000311UL, "CKM_CAST3_ECB" },
    { 0x00000312UL, "CKM_CAST3_CBC" },
    { 0x00000313UL, "CKM_CAST3_MAC" },
    { 0x00000314UL, "CKM_CAST3_MAC_GENERAL" },
    { 0x00000315UL, "CKM_CAST3_CBC_PAD" },
    { 0x00000320UL, "CKM_CAST128_KEY_GEN" },
    { 0x00000321UL, "CKM_CAST128_ECB" },
    { 0x00000322UL, "CKM_CAST128_CBC" },
    { 0x00000323UL, "CKM_CAST128_MAC" },
    { 0x00000324UL, "CKM_CAST128_MAC_GENERAL" },
    { 0x00000325UL, "CKM_CAST128_CBC_PAD" },
    { 0x00000330UL, "CKM_RC5_KEY_GEN" },
    { 0x00000331UL, "CKM_RC5_ECB" },
    { 0x00000332UL, "CKM_RC5_CBC" },
    { 0x00000333UL, "CKM_RC5_MAC" },
    { 0x00000334UL, "CKM_RC5_MAC_GENERAL" },
    { 0x00000335UL, "CKM_RC5_CBC_PAD" },
    { 0x00000340UL, "CKM_IDEA_KEY_GEN" },
    { 0x00000341UL, "CKM_IDEA_ECB" },
    { 0x00000342UL, "CKM_IDEA_CBC" },
    { 0x00000343UL, "CKM_IDEA_MAC" },
    { 0x00000344UL, "CKM_IDEA_MAC_GENERAL" },
    { 0x00000345UL, "CKM_IDEA_CBC_PAD" },
    { 0x00000350UL, "CKM_GENERIC_SECRET_KEY_GEN" },
    { 0x00000360UL, "CKM_CONCATENATE_BASE_AND_KEY" },
    { 0x00000362UL, "CKM_CONCATENATE_BASE_AND_DATA" },
    { 0x00000363UL, "CKM_CONCATENATE_DATA_AND_BASE" },
    { 0x00000364UL, "CKM_XOR_BASE_AND_DATA" },
    { 0x00000365UL, "CKM_EXTRACT_KEY_FROM_KEY" },
    { 0x00000370UL, "CKM_SSL3_PRE_MASTER_KEY_GEN" },
    { 0x00000371UL, "CKM_SSL3_MASTER_KEY_DERIVE" },
    { 0x00000372UL, "CKM_SSL3_KEY_AND_MAC_DERIVE" },
    { 0x00000373UL, "CKM_SSL3_MASTER_KEY_DERIVE_DH" },
    { 0x00000374UL, "CKM_TLS_PRE_MASTER_KEY_GEN" },
    { 0x00000375UL, "CKM_TLS_MASTER_KEY_DERIVE" },
    { 0x00000376UL, "CKM_TLS_KEY_AND_MAC_DERIVE" },
    { 0x00000377UL, "CKM_TLS_MASTER_KEY_DERIVE_DH" },
    { 0x00000378UL, "CKM_TLS_PRF" },
    { 0x00000380UL, "CKM_SSL3_MD5_MAC" },
    { 0x00000381UL, "CKM_SSL3_SHA1_MAC" },
    { 0x00000390UL, "CKM_MD5_KEY_DERIVATION" },
    { 0x00000391UL, "CKM_MD2_KEY_DERIVATION" },
    { 0x00000392UL, "CKM_SHA1_KEY_DERIVATION" },
    { 0x00000393UL, "CKM_SHA256_KEY_DERIVATION" },
    { 0x00000394UL, "CKM_SHA384_KEY_DERIVATION" },
    { 0x00000395UL, "CKM_SHA512_KEY_DERIVATION" },
    { 0x00000396UL, "CKM_SHA224_KEY_DERIVATION" },
    { 0x00000397UL, "CKM_SHA3_256_KEY_DERIVATION" },
    { 0x00000398UL, "CKM_SHA3_224_KEY_DERIVATION" },
    { 0x00000399UL, "CKM_SHA3_384_KEY_DERIVATION" },
    { 0x0000039aUL, "CKM_SHA3_512_KEY_DERIVATION" },
    { 0x0000039bUL, "CKM_SHAKE_128_KEY_DERIVATION" },
    { 0x0000039cUL, "CKM_SHAKE_256_KEY_DERIVATION" },
    { 0x000003a0UL, "CKM_PBE_MD2_DES_CBC" },
    { 0x000003a1UL, "CKM_PBE_MD5_DES_CBC" },
    { 0x000003a2UL, "CKM_PBE_MD5_CAST_CBC" },
    { 0x000003a3UL, "CKM_PBE_MD5_CAST3_CBC" },
    { 0x000003a4UL, "CKM_PBE_MD5_CAST128_CBC" },
    { 0x000003a5UL, "CKM_PBE_SHA1_CAST128_CBC" },
    { 0x000003a6UL, "CKM_PBE_SHA1_RC4_128" },
    { 0x000003a7UL, "CKM_PBE_SHA1_RC4_40" },
    { 0x000003a8UL, "CKM_PBE_SHA1_DES3_EDE_CBC" },
    { 0x000003a9UL, "CKM_PBE_SHA1_DES2_EDE_CBC" },
    { 0x000003aaUL, "CKM_PBE_SHA1_RC2_128_CBC" },
    { 0x000003abUL, "CKM_PBE_SHA1_RC2_40_CBC" },
    { 0x000003acUL, "CKM_SP800_108_COUNTER_KDF" },
    { 0x000003adUL, "CKM_SP800_108_FEEDBACK_KDF" },
    { 0x000003aeUL, "CKM_SP800_108_DOUBLE_PIPELINE_KDF" },
    { 0x000003b0UL, "CKM_PKCS5_PBKD2" },
    { 0x000003c0UL, "CKM_PBA_SHA1_WITH_SHA1_HMAC" },
    { 0x000003d0UL, "CKM_WTLS_PRE_MASTER_KEY_GEN" },
    { 0x000003d1UL, "CKM_WTLS_MASTER_KEY_DERIVE" },
    { 0x000003d2UL, "CKM_WTLS_MASTER_KEY_DERIVE_DH_ECC" },
    { 0x000003d3UL, "CKM_WTLS_PRF" },
    { 0x000003d4UL, "CKM_WTLS_SERVER_KEY_AND_MAC_DERIVE" },
    { 0x000003d5UL, "CKM_WTLS_CLIENT_KEY_AND_MAC_DERIVE" },
    { 0x000003d6UL, "CKM_TLS10_MAC_SERVER" },
    { 0x000003d7UL, "CKM_TLS10_MAC_CLIENT" },
    { 0x000003d8UL, "CKM_TLS12_MAC" },
    { 0x000003d9UL, "CKM_TLS12_KDF" },
    { 0x000003e0UL, "CKM_TLS12_MASTER_KEY_DERIVE" },
    { 0x000003e1UL, "CKM_TLS12_KEY_AND_MAC_DERIVE" },
    { 0x000003e2UL, "CKM_TLS12_MASTER_KEY_DERIVE_DH" },
    { 0x000003e3UL, "CKM_TLS12_KEY_SAFE_DERIVE" },
    { 0x000003e4UL, "CKM_TLS_MAC" },
    { 0x000003e5UL, "CKM_TLS_KDF" },
    { 0x00000400UL, "CKM_KEY_WRAP_LYNKS" },
    { 0x00000401UL, "CKM_KEY_WRAP_SET_OAEP" },
    { 0x00000500UL, "CKM_CMS_SIG" },
    { 0x00000510UL, "CKM_KIP_DERIVE" },
    { 0x00000511UL, "CKM_KIP_WRAP" },
    { 0x00000512UL, "CKM_KIP_MAC" },
    { 0x00000550UL, "CKM_CAMELLIA_KEY_GEN" },
    { 0x00000551UL, "CKM_CAMELLIA_ECB" },
    { 0x00000552UL, "CKM_CAMELLIA_CBC" },
    { 0x00000553UL, "CKM_CAMELLIA_MAC" },
    { 0x00000554UL, "CKM_CAMELLIA_MAC_GENERAL" },
    { 0x00000555UL, "CKM_CAMELLIA_CBC_PAD" },
    { 0x00000556UL, "CKM_CAMELLIA_ECB_ENCRYPT_DATA" },
    { 0x00000557UL, "CKM_CAMELLIA_CBC_ENCRYPT_DATA" },
    { 0x00000558UL, "CKM_CAMELLIA_CTR" },
    { 0x00000560UL, "CKM_ARIA_KEY_GEN" },
    { 0x00000561UL, "CKM_ARIA_ECB" },
    { 0x00000562UL, "CKM_ARIA_CBC" },
    { 0x00000563UL, "CKM_ARIA_MAC" },
    { 0x00000564UL, "CKM_ARIA_MAC_GENERAL" },
    { 0x00000565UL, "CKM_ARIA_CBC_PAD" },
    { 0x00000566UL, "CKM_ARIA_ECB_ENCRYPT_DATA" },
    { 0x00000567UL, "CKM_ARIA_CBC_ENCRYPT_DATA" },
    { 0x00000650UL, "CKM_SEED_KEY_GEN" },
    { 0x00000651UL, "CKM_SEED_ECB" },
    { 0x00000652UL, "CKM_SEED_CBC" },
    { 0x00000653UL, "CKM_SEED_MAC" },
    { 0x00000654UL, "CKM_SEED_MAC_GENERAL" },
    { 0x00000655UL, "CKM_SEED_CBC_PAD" },
    { 0x00000656UL, "CKM_SEED_ECB_ENCRYPT_DATA" },
    { 0x00000657UL, "CKM_SEED_CBC_ENCRYPT_DATA" },
    { 0x00001000UL, "CKM_SKIPJACK_KEY_GEN" },
    { 0x00001001UL, "CKM_SKIPJACK_ECB64" },
    { 0x00001002UL, "CKM_SKIPJACK_CBC64" },
    { 0x00001003UL, "CKM_SKIPJACK_OFB64" },
    { 0x00001004UL, "CKM_SKIPJACK_CFB64" },
    { 0x00001005UL, "CKM_SKIPJACK_CFB32" },
    { 0x00001006UL, "CKM_SKIPJACK_CFB16" },
    { 0x00001007UL, "CKM_SKIPJACK_CFB8" },
    { 0x00001008UL, "CKM_SKIPJACK_WRAP" },
    { 0x00001009UL, "CKM_SKIPJACK_PRIVATE_WRAP" },
    { 0x0000100aUL, "CKM_SKIPJACK_RELAYX" },
    { 0x00001010UL, "CKM_KEA_KEY_PAIR_GEN" },
    { 0x00001011UL, "CKM_KEA_KEY_DERIVE" },
    { 0x00001012UL, "CKM_KEA_DERIVE" },
    { 0x00001020UL, "CKM_FORTEZZA_TIMESTAMP" },
    { 0x00001030UL, "CKM_BATON_KEY_GEN" },
    { 0x00001031UL, "CKM_BATON_ECB128" },
    { 0x00001032UL, "CKM_BATON_ECB96" },
    { 0x00001033UL, "CKM_BATON_CBC128" },
    { 0x00001034UL, "CKM_BATON_COUNTER" },
    { 0x00001035UL, "CKM_BATON_SHUFFLE" },
    { 0x00001036UL, "CKM_BATON_WRAP" },
    { 0x00001040UL, "CKM_EC_KEY_PAIR_GEN" },
    { 0x00001041UL, "CKM_ECDSA" },
    { 0x00001042UL, "CKM_ECDSA_SHA1" },
    { 0x00001043UL, "CKM_ECDSA_SHA224" },
    { 0x00001044UL, "CKM_ECDSA_SHA256" },
    { 0x00001045UL, "CKM_ECDSA_SHA384" },
    { 0x00001046UL, "CKM_ECDSA_SHA512" },
    { 0x00001047UL, "CKM_ECDSA_SHA3_224" },
    { 0x00001048UL, "CKM_ECDSA_SHA3_256" },
    { 0x00001049UL, "CKM_ECDSA_SHA3_384" },
    { 0x0000104aUL, "CKM_ECDSA_SHA3_512" },
    { 0x00001050UL, "CKM_ECDH1_DERIVE" },
    { 0x00001051UL, "CKM_ECDH1_COFACTOR_DERIVE" },
    { 0x00001052UL, "CKM_ECMQV_DERIVE" },
    { 0x00001053UL, "CKM_ECDH_AES_KEY_WRAP" },
    { 0x00001054UL, "CKM_RSA_AES_KEY_WRAP" },
    { 0x00001055UL, "CKM_EC_EDWARDS_KEY_PAIR_GEN" },
    { 0x00001056UL, "CKM_EC_MONTGOMERY_KEY_PAIR_GEN" },
    { 0x00001057UL, "CKM_EDDSA" },
    { 0x00001060UL, "CKM_JUNIPER_KEY_GEN" },
    { 0x00001061UL, "CKM_JUNIPER_ECB128" },
    { 0x00001062UL, "CKM_JUNIPER_CBC128" },
    { 0x00001063UL, "CKM_JUNIPER_COUNTER" },
    { 0x00001064UL, "CKM_JUNIPER_SHUFFLE" },
    { 0x00001065UL, "CKM_JUNIPER_WRAP" },
    { 0x00001070UL, "CKM_FASTHASH" },
    { 0x00001071UL, "CKM_AES_XTS" },
    { 0x00001072UL, "CKM_AES_XTS_KEY_GEN" },
    { 0x00001080UL, "CKM_AES_KEY_GEN" },
    { 0x00001081UL, "CKM_AES_ECB" },
    { 0x00001082UL, "CKM_AES_CBC" },
    { 0x00001083UL, "CKM_AES_MAC" },
    { 0x00001084UL, "CKM_AES_MAC_GENERAL" },
    { 0x00001085UL, "CKM_AES_CBC_PAD" },
    { 0x00001086UL, "CKM_AES_CTR" },
    { 0x00001087UL, "CKM_AES_GCM" },
    { 0x00001088UL, "CKM_AES_CCM" },
    { 0x00001089UL, "CKM_AES_CTS" },
    { 0x0000108aUL, "CKM_AES_CMAC" },
    { 0x0000108bUL, "CKM_AES_CMAC_GENERAL" },
    { 0x0000108cUL, "CKM_AES_XCBC_MAC" },
    { 0x0000108dUL, "CKM_AES_XCBC_MAC_96" },
    { 0x0000108eUL, "CKM_AES_GMAC" },
    { 0x00001090UL, "CKM_BLOWFISH_KEY_GEN" },
    { 0x00001091UL, "CKM_BLOWFISH_CBC" },
    { 0x00001092UL, "CKM_TWOFISH_KEY_GEN" },
    { 0x00001093UL, "CKM_TWOFISH_CBC" },
    { 0x00001094UL, "CKM_BLOWFISH_CBC_PAD" },
    { 0x00001095UL, "CKM_TWOFISH_CBC_PAD" },
    { 0x00001100UL, "CKM_DES_ECB_ENCRYPT_DATA" },
    { 0x00001101UL, "CKM_DES_CBC_ENCRYPT_DATA" },
    { 0x00001102UL, "CKM_DES3_ECB_ENCRYPT_DATA" },
    { 0x00001103UL, "CKM_DES3_CBC_ENCRYPT_DATA" },
    { 0x00001104UL, "CKM_AES_ECB_ENCRYPT_DATA" },
    { 0x00001105UL, "CKM_AES_CBC_ENCRYPT_DATA" },
    { 0x00001200UL, "CKM_GOSTR3410_KEY_PAIR_GEN" },
    { 0x00001201UL, "CKM_GOSTR3410" },
    { 0x00001202UL, "CKM_GOSTR3410_WITH_GOSTR3411" },
    { 0x00001203UL, "CKM_GOSTR3410_KEY_WRAP" },
    { 0x00001204UL, "CKM_GOSTR3410_DERIVE" },
    { 0x00001210UL, "CKM_GOSTR3411" },
    { 0x00001211UL, "CKM_GOSTR3411_HMAC" },
    { 0x00001220UL, "CKM_GOST28147_KEY_GEN" },
    { 0x00001221UL, "CKM_GOST28147_ECB" },
    { 0x00001222UL, "CKM_GOST28147" },
    { 0x00001223UL, "CKM_GOST28147_MAC" },
    { 0x00001224UL, "CKM_GOST28147_KEY_WRAP" },
    { 0x00001225UL, "CKM_CHACHA20_KEY_GEN" },
    { 0x00001226UL, "CKM_CHACHA20" },
    { 0x00001227UL, "CKM_POLY1305_KEY_GEN" },
    { 0x00001228UL, "CKM_POLY1305" },
    { 0x0000140bUL, "CKM_EC_KEY_PAIR_GEN_W_EXTRA_BITS" },
    { 0x00002000UL, "CKM_DSA_PARAMETER_GEN" },
    { 0x00002001UL, "CKM_DH_PKCS_PARAMETER_GEN" },
    { 0x00002002UL, "CKM_X9_42_DH_PARAMETER_GEN" },
    { 0x00002003UL, "CKM_DSA_PROBABILISTIC_PARAMETER_GEN" },
    { 0x00002004UL, "CKM_DSA_SHAWE_TAYLOR_PARAMETER_GEN" },
    { 0x00002005UL, "CKM_DSA_FIPS_G_GEN" },
    { 0x00002104UL, "CKM_AES_OFB" },
    { 0x00002105UL, "CKM_AES_CFB64" },
    { 0x00002106UL, "CKM_AES_CFB8" },
    { 0x00002107UL, "CKM_AES_CFB128" },
    { 0x00002108UL, "CKM_AES_CFB1" },
    { 0x00002109UL, "CKM_AES_KEY_WRAP" },
    { 0x0000210aUL, "CKM_AES_KEY_WRAP_PAD" },
    { 0x0000210bUL, "CKM_AES_KEY_WRAP_KWP" },
    { 0x00004001UL, "CKM_RSA_PKCS_TPM_1_1" },
    { 0x00004002UL, "CKM_RSA_PKCS_OAEP_TPM_1_1" },
    { 0x00004003UL, "CKM_SHA_1_KEY_GEN" },
    { 0x00004004UL, "CKM_SHA224_KEY_GEN" },
    { 0x00004005UL, "CKM_SHA256_KEY_GEN" },
    { 0x00004006UL, "CKM_SHA384_KEY_GEN" },
    { 0x00004007UL, "CKM_SHA512_KEY_GEN" },
    { 0x00004008UL, "CKM_SHA512_224_KEY_GEN" },
    { 0x00004009UL, "CKM_SHA512_256_KEY_GEN" },
    { 0x0000400aUL, "CKM_SHA512_T_KEY_GEN" },
    { 0x0000400bUL, "CKM_NULL" },
    { 0x0000400cUL, "CKM_BLAKE2B_160" },
    { 0x0000400dUL, "CKM_BLAKE2B_160_HMAC" },
    { 0x0000400eUL, "CKM_BLAKE2B_160_HMAC_GENERAL" },
    { 0x0000400fUL, "CKM_BLAKE2B_160_KEY_DERIVE" },
    { 0x00004010UL, "CKM_BLAKE2B_160_KEY_GEN" },
    { 0x00004011UL, "CKM_BLAKE2B_256" },
    { 0x00004012UL, "CKM_BLAKE2B_256_HMAC" },
    { 0x00004013UL, "CKM_BLAKE2B_256_HMAC_GENERAL" },
    { 0x00004014UL, "CKM_BLAKE2B_256_KEY_DERIVE" },
    { 0x00004015UL, "CKM_BLAKE2B_256_KEY_GEN" },
    { 0x00004016UL, "CKM_BLAKE2B_384" },
    { 0x00004017UL, "CKM_BLAKE2B_384_HMAC" },
    { 0x00004018UL, "CKM_BLAKE2B_384_HMAC_GENERAL" },
    { 0x00004019UL, "CKM_BLAKE2B_384_KEY_DERIVE" },
    { 0x0000401aUL, "CKM_BLAKE2B_384_KEY_GEN" },
    { 0x0000401bUL, "CKM_BLAKE2B_512" },
    { 0x0000401cUL, "CKM_BLAKE2B_512_HMAC" },
    { 0x0000401dUL, "CKM_BLAKE2B_512_HMAC_GENERAL" },
    { 0x0000401eUL, "CKM_BLAKE2B_512_KEY_DERIVE" },
    { 0x0000401fUL, "CKM_BLAKE2B_512_KEY_GEN" },
    { 0x00004020UL, "CKM_SALSA20" },
    { 0x00004021UL, "CKM_CHACHA20_POLY1305" },
    { 0x00004022UL, "CKM_SALSA20_POLY1305" },
    { 0x00004023UL, "CKM_X3DH_INITIALIZE" },
    { 0x00004024UL, "CKM_X3DH_RESPOND" },
    { 0x00004025UL, "CKM_X2RATCHET_INITIALIZE" },
    { 0x00004026UL, "CKM_X2RATCHET_RESPOND" },
    { 0x00004027UL, "CKM_X2RATCHET_ENCRYPT" },
    { 0x00004028UL, "CKM_X2RATCHET_DECRYPT" },
    { 0x00004029UL, "CKM_XEDDSA" },
    { 0x0000402aUL, "CKM_HKDF_DERIVE" },
    { 0x0000402bUL, "CKM_HKDF_DATA" },
    { 0x0000402cUL, "CKM_HKDF_KEY_GEN" },
    { 0x0000402dUL, "CKM_SALSA20_KEY_GEN" },
    { 0x0000402eUL, "CKM_IKE2_PRF_PLUS_DERIVE" },
    { 0x0000402fUL, "CKM_IKE_PRF_DERIVE" },
    { 0x00004030UL, "CKM_IKE1_PRF_DERIVE" },
    { 0x00004031UL, "CKM_IKE1_EXTENDED_DERIVE" },
    { 0x00004032UL, "CKM_HSS_KEY_PAIR_GEN" },
    { 0x00004033UL, "CKM_HSS" },
};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const struct rv_entry *rv_find(CK_RV rv)
{
    size_t lo = 0, hi = N_ELEMS(rv_table);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rv_table[mid].rv == rv)
            return &rv_table[mid];
        if (rv_table[mid].rv < rv)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static const char *mech_find(CK_MECHANISM_TYPE m)
{
    size_t lo = 0, hi = N_ELEMS(mech_table);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (mech_table[mid].mech == m)
            return mech_table[mid].name;
        if (mech_table[mid].mech < m)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Names of unknown codes are formatted into a small ring of per-thread
 * buffers, so that a few of them can appear in one printf. */
#define NAME_RING 4
#define NAME_LEN 48

static char *name_buffer(void)
{
    static _Thread_local char ring[NAME_RING][NAME_LEN];
    static _Thread_local unsigned next;
    char *buf = ring[next % NAME_RING];
    next = (next + 1) % NAME_RING;
    return buf;
}

const char *p11_rv_name(CK_RV rv)
{
    const struct rv_entry *e = rv_find(rv);
    if (e)
        return e->name;
    if (rv == P11_VENDOR_DEFINED)
        return "CKR_VENDOR_DEFINED";
    char *buf = name_buffer();
    if (rv > P11_VENDOR_DEFINED)
        snprintf(buf, NAME_LEN, "CKR_VENDOR_DEFINED+0x%lx", (unsigned long)(rv - P11_VENDOR_DEFINED));
    else
        snprintf(buf, NAME_LEN, "CKR_0x%08lx", (unsigned long)rv);
    return buf;
}

const char *p11_mechanism_name(CK_MECHANISM_TYPE m)
{
    const char *name = mech_find(m);
    if (name)
        return name;
    char *buf = name_buffer();
    snprintf(buf, NAME_LEN, "CKM_0x%08lx", (unsigned long)m);
    return buf;
}

const char *p11_rv_advice(CK_RV rv)
{
    const struct rv_entry *e = rv_find(rv);
    return e ? e->advice : "";
}

/*
 * Member faults decide failover: the operation (sign, verify, decrypt,
 * encrypt, derive: all idempotent) is retried on another member and this
 * member is marked down until it answers again.  A false "yes" is worse
 * than a false "no": if input alone could produce the code, one bad
 * request (a TLS peer's crafted ciphertext) would walk through every
 * member, mark healthy members down and turn a refused request into an
 * outage.  So only codes that input cannot cause are listed.
 */
int p11_rv_is_member_fault(CK_RV rv)
{
    switch (rv) {
    /* The device or the link to it failed.  p11-kit's client returns
     * CKR_DEVICE_ERROR within milliseconds when its node dies, and the
     * function list stays broken until re-initialized. */
    case CKR_DEVICE_ERROR:
    case CKR_DEVICE_REMOVED:
    /* This member is out of memory; another one may not be, and the
     * operations failed over are idempotent. */
    case CKR_DEVICE_MEMORY:
    /* The partition is not (or no longer) on this member: the member is
     * restarting, or the partition is being moved or recreated. */
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_TOKEN_NOT_RECOGNIZED:
    /* Sessions die with a member restart or a reconnect; p11core only uses
     * sessions it opened itself, so a dead session means the member lost
     * its state, not that the caller passed a bad handle. */
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
    /* The library behind this member was finalized under us (fork, or
     * another component of the process): re-initialize that member. */
    case CKR_CRYPTOKI_NOT_INITIALIZED:
    /* A member that failed its self-test must not be used; the others may
     * be fine. */
    case 0x1b6UL: /* CKR_FIPS_SELF_TEST_FAILED (OASIS value) */
    case 0x1c1UL: /* CKR_FIPS_SELF_TEST_FAILED (p11-kit 0.24 value) */
        return 1;

    /* Not member faults, on purpose:
     * - CKR_GENERAL_ERROR, CKR_FUNCTION_FAILED: catch-alls that tokens also
     *   return for bad input (SoftHSM: CKR_GENERAL_ERROR for an RSA
     *   ciphertext with bad padding).  See p11_rv_needs_probe: probe the
     *   member, fail over only if the probe says it is at fault.
     * - CKR_KEY_HANDLE_INVALID, CKR_OBJECT_HANDLE_INVALID: a stale handle
     *   cache after a member restart; re-resolve the handle on the same
     *   member once, then report (the key may really be missing there).
     * - CKR_USER_NOT_LOGGED_IN: a restarted member forgot the login; log in
     *   again once.  Never retry on CKR_PIN_*: retries can lock the PIN.
     * - CKR_SESSION_COUNT: usually this process's own session use, the same
     *   on every member; failing over would only spread it.
     * - CKR_HOST_MEMORY, CKR_CANT_LOCK, CKR_ARGUMENTS_BAD: this process or
     *   its configuration, not the member. */
    default:
        return 0;
    }
}

int p11_rv_needs_probe(CK_RV rv)
{
    return rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED;
}

int p11_rv_tables_check(void)
{
    for (size_t i = 0; i < N_ELEMS(rv_table); i++) {
        if (!rv_table[i].name || !rv_table[i].advice || (i > 0 && rv_table[i - 1].rv >= rv_table[i].rv))
            return (int)i + 1;
    }
    for (size_t i = 0; i < N_ELEMS(mech_table); i++) {
        if (!mech_table[i].name || (i > 0 && mech_table[i - 1].mech >= mech_table[i].mech))
            return 1000 + (int)i + 1;
    }
    return 0;
}
