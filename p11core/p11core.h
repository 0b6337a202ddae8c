/*
 * p11core: the PKCS#11 core of primus-provider.
 *
 * It loads PKCS#11 modules, groups tokens into partitions (a partition is
 * the set of tokens bearing one label, one per cluster member), pools
 * sessions, logs in, finds objects by URI, and runs key operations on a live
 * member with failover.  It knows nothing of OpenSSL; the provider and
 * primusctl are thin faces over it.
 *
 * Thread safety: every function may be called from any thread.  Fork
 * safety: after fork() the child re-initializes PKCS#11 on first use; keys
 * obtained before the fork stay valid.
 *
 * Errors: functions return a p11_status; the calling thread's last error
 * (p11_error_*) holds a sentence that names the cause and the fix.
 */
#ifndef PRIMUS_P11CORE_H
#define PRIMUS_P11CORE_H

#include <stddef.h>
#include <stdint.h>
#include <p11-kit/pkcs11.h>
#include <jansson.h>

#include "p11uri.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PRIMUS_VERSION_STR "0.1.0"
#define PRIMUS_DEFAULT_MODULE "/usr/local/primus/lib/libprimusP11.so"
#define PRIMUS_MODULE_ENV "PRIMUS_PKCS11_MODULE"

typedef enum p11_status {
    P11_OK = 0,
    P11_ERR_CONFIG,     /* a configuration value is wrong */
    P11_ERR_URI,        /* the pkcs11: URI is malformed */
    P11_ERR_MODULE,     /* the PKCS#11 module is missing, not a library, or not PKCS#11 */
    P11_ERR_NO_TOKEN,   /* no token (partition) matches */
    P11_ERR_PIN,        /* no PIN, wrong PIN, locked PIN, unreadable pin file */
    P11_ERR_NOT_FOUND,  /* no object matches */
    P11_ERR_AMBIGUOUS,  /* several objects match where one was wanted */
    P11_ERR_MECHANISM,  /* the token lacks the mechanism, or the key may not use it */
    P11_ERR_UNAVAILABLE,/* every member of the partition is down */
    P11_ERR_OPERATION,  /* the token refused the operation (bad data, key type, ...) */
    P11_ERR_BUFFER,     /* the output buffer is too small */
    P11_ERR_AUDIT,      /* the audit log cannot be written and the policy is fail-closed */
    P11_ERR_MEMORY,
    P11_ERR_INTERNAL
} p11_status;

/* ---- errors (per thread) ---------------------------------------------- */
p11_status p11_error_status(void);
CK_RV p11_error_rv(void);            /* the PKCS#11 code behind it, CKR_OK when none */
const char *p11_error_message(void); /* "" when no error */
void p11_error_clear(void);
const char *p11_status_name(p11_status st);
/* "CKR_PIN_INCORRECT", or "CKR_0x..." for unknown codes. */
const char *p11_rv_name(CK_RV rv);
const char *p11_mechanism_name(CK_MECHANISM_TYPE m);

/* ---- the core --------------------------------------------------------- */
typedef struct p11_core p11_core;

/* A new core holds only configuration: it touches no module until first
 * use (p11_core_start, or any lookup/operation). */
p11_core *p11_core_new(void);
/* Configuration keys (same names as pkcs11-provider where they mean the same):
 *   pkcs11-module-path        module to load (else $PRIMUS_PKCS11_MODULE,
 *                             else PRIMUS_DEFAULT_MODULE); a URI's
 *                             module-path overrides it for that URI
 *   pkcs11-module-token-pin   "file:/path" (not readable by others) or the PIN
 *   pkcs11-module-init-args   passed as pReserved to C_Initialize
 *   pkcs11-module-quirks      space-separated: "no-deinit" (never C_Finalize)
 *   primus-topology           JSON topology file declaring partitions/members
 *   primus-audit-log          audit log path (JSON lines)
 *   primus-audit-key          HMAC key file for audit records
 *   primus-audit-policy       "fail-closed" (default) or "fail-open"
 *   primus-session-key-cache  "auto" (default), "yes", "no": use session
 *                             copies of token keys where the token allows it
 *   primus-member-timeout-ms  default per-call deadline for cluster members
 * Unknown keys and bad values: P11_ERR_CONFIG with a message. */
p11_status p11_core_set(p11_core *core, const char *key, const char *value);
/* Load modules, initialize, discover slots and partitions.  Idempotent and
 * cheap once done; redone in a forked child. */
p11_status p11_core_start(p11_core *core);
/* Finalizes modules (unless the process is exiting or quirks say no-deinit). */
void p11_core_free(p11_core *core);

/* Status of modules, partitions and members, as JSON (for primusctl
 * list/cluster status).  The caller owns the reference. */
json_t *p11_core_status_json(p11_core *core);

/* ---- objects ---------------------------------------------------------- */
typedef struct p11_bytes {
    unsigned char *data;
    size_t len;
} p11_bytes;

/* Flags read from the object (CKA_*), for keys. */
#define P11_OBJ_PRIVATE              (1u << 0)
#define P11_OBJ_SENSITIVE            (1u << 1)
#define P11_OBJ_EXTRACTABLE          (1u << 2)
#define P11_OBJ_ALWAYS_SENSITIVE     (1u << 3)
#define P11_OBJ_NEVER_EXTRACTABLE    (1u << 4)
#define P11_OBJ_ALWAYS_AUTHENTICATE  (1u << 5)
#define P11_OBJ_CAN_SIGN             (1u << 6)
#define P11_OBJ_CAN_DECRYPT          (1u << 7)
#define P11_OBJ_CAN_DERIVE           (1u << 8)
#define P11_OBJ_CAN_VERIFY           (1u << 9)
#define P11_OBJ_CAN_ENCRYPT          (1u << 10)
#define P11_OBJ_LOCAL                (1u << 11)

typedef struct p11_object_info {
    CK_OBJECT_CLASS cls;          /* CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_CERTIFICATE, ... */
    CK_KEY_TYPE key_type;         /* CKK_RSA, CKK_EC, CKK_EC_EDWARDS; (CK_KEY_TYPE)-1 if not a key */
    char *label;                  /* "" when the object has none */
    p11_bytes id;
    char *partition;              /* the token label */
    char *uri;                    /* a URI naming exactly this object (no PIN) */
    unsigned flags;               /* P11_OBJ_* */
    CK_ULONG bits;                /* RSA modulus bits, EC field bits */
    /* Public material (for private keys, taken from the key itself or from
     * the public key / certificate with the same CKA_ID): */
    p11_bytes modulus, public_exponent; /* RSA, big-endian */
    p11_bytes ec_params;          /* DER: OID of a named curve */
    p11_bytes ec_point;           /* raw uncompressed point (04||X||Y), or the 32-byte Ed25519 key;
                                     DER OCTET STRING wrapping already removed */
    p11_bytes cert_der;           /* CKO_CERTIFICATE: CKA_VALUE */
    CK_MECHANISM_TYPE *allowed_mechanisms; /* CKA_ALLOWED_MECHANISMS, NULL when absent */
    size_t n_allowed_mechanisms;
} p11_object_info;

typedef struct p11_object_list {
    p11_object_info *items;
    size_t count;
} p11_object_list;

/* Every object matching the URI.  cls narrows the search; pass
 * P11_CLASS_FROM_URI to honor the URI's type= (any class when absent).
 * A URI that names no token searches every partition.  No match is P11_OK
 * with count 0 (callers decide whether that is an error). */
#define P11_CLASS_FROM_URI ((CK_OBJECT_CLASS)~0UL)
p11_status p11_find_objects(p11_core *core, const p11_uri *uri, CK_OBJECT_CLASS cls,
                            p11_object_list *out);
void p11_object_list_clear(p11_object_list *list);
void p11_object_info_clear(p11_object_info *info);
p11_status p11_object_info_copy(p11_object_info *dst, const p11_object_info *src);

/* ---- keys ------------------------------------------------------------- */
/* A key is a reference (partition + class + id/label), not a handle: the
 * handle is resolved per member, cached, and re-resolved when a member
 * restarts.  Reference-counted; safe to share between threads. */
typedef struct p11_key p11_key;

/* A reference to the object described by info (normally one item of a
 * p11_find_objects result).  pin_uri may carry pin-value/pin-source for
 * this key's partition (NULL: the configured PIN). */
p11_status p11_key_open(p11_core *core, const p11_object_info *info, const p11_uri *pin_uri,
                        p11_key **out);
/* Find exactly one object of class cls and open it: P11_ERR_NOT_FOUND or
 * P11_ERR_AMBIGUOUS (message lists the candidates as URIs) otherwise. */
p11_status p11_key_open_uri(p11_core *core, const p11_uri *uri, CK_OBJECT_CLASS cls,
                            p11_key **out);
p11_key *p11_key_ref(p11_key *key);
void p11_key_unref(p11_key *key);
const p11_object_info *p11_key_info(const p11_key *key);

/* Does the partition offer this mechanism for this purpose (CKF_SIGN,
 * CKF_DECRYPT, CKF_DERIVE ...)?  Answered from a per-member cache. */
int p11_key_supports(p11_key *key, CK_MECHANISM_TYPE mech, CK_FLAGS purpose);

/* One-shot operations on a live member, failed over to another member on a
 * member fault.  out NULL asks for the length only (*out_len set).
 * *out_len holds the buffer size on entry, the result size on return. */
p11_status p11_key_sign(p11_key *key, const CK_MECHANISM *mech, const unsigned char *in,
                        size_t in_len, unsigned char *out, size_t *out_len);
p11_status p11_key_verify(p11_key *key, const CK_MECHANISM *mech, const unsigned char *in,
                          size_t in_len, const unsigned char *sig, size_t sig_len);
p11_status p11_key_decrypt(p11_key *key, const CK_MECHANISM *mech, const unsigned char *in,
                           size_t in_len, unsigned char *out, size_t *out_len);
p11_status p11_key_encrypt(p11_key *key, const CK_MECHANISM *mech, const unsigned char *in,
                           size_t in_len, unsigned char *out, size_t *out_len);
/* ECDH (CKM_ECDH1_DERIVE, CKD_NULL) with the peer's raw public point; the
 * shared secret (x coordinate) is written to out. */
p11_status p11_key_derive_ecdh(p11_key *key, const unsigned char *peer_point, size_t peer_len,
                               unsigned char *out, size_t *out_len);

/* The members of the key's partition, each on its own, without failover:
 * the proof that a key works on every member of a cluster.  A member
 * known to be down is reported (P11_ERR_UNAVAILABLE), not called. */
typedef struct p11_member_view {
    char name[64];                /* topology name, else "slot N" */
    char serial[17];
    CK_SLOT_ID slot;
    int up;
    CK_RV last_rv;                /* the member's last failure */
} p11_member_view;
size_t p11_key_member_count(const p11_key *key);
p11_status p11_key_member_describe(const p11_key *key, size_t i, p11_member_view *out);
p11_status p11_key_sign_on_member(p11_key *key, size_t member, const CK_MECHANISM *mech,
                                  const unsigned char *in, size_t in_len, unsigned char *out,
                                  size_t *out_len);
p11_status p11_key_decrypt_on_member(p11_key *key, size_t member, const CK_MECHANISM *mech,
                                     const unsigned char *in, size_t in_len, unsigned char *out,
                                     size_t *out_len);

/* ---- key generation (not idempotent: one member, never retried) ------- */
typedef struct p11_keygen_params {
    CK_KEY_TYPE key_type;         /* CKK_RSA, CKK_EC, CKK_EC_EDWARDS */
    CK_ULONG rsa_bits;            /* RSA: 2048 .. 4096 */
    p11_bytes rsa_public_exponent;/* RSA: big-endian, empty for 65537 */
    p11_bytes ec_params;          /* EC/Ed: DER OID of the curve */
    const char *label;            /* CKA_LABEL of both halves, NULL: from the URI's object= */
    p11_bytes id;                 /* CKA_ID, empty: from the URI's id=, else random */
    int extractable;              /* 0 (default): sensitive and not extractable */
} p11_keygen_params;

/* Generate a key pair in the partition the URI names (token= required when
 * several partitions exist).  *out is the private key. */
p11_status p11_generate_key_pair(p11_core *core, const p11_uri *where,
                                 const p11_keygen_params *params, p11_key **out);

/* Random bytes from a partition's RNG (any live member). */
p11_status p11_generate_random(p11_core *core, const p11_uri *where, unsigned char *out,
                               size_t len);

/* ---- audit evidence (audit.c, audit_chain.c) ------------------------- */
/* With primus-audit-log set, every sensitive operation appends one record
 * (a JSON line) to the log; the format and its guarantees are in README,
 * "Audit log".  Records of one process form a stream: a hash chain from
 * its "stream-start" record to its "stream-end" record. */

#define P11_AUDIT_HEX_SIZE 65 /* 64 hex digits and NUL */

/* The sequence number of the last record queued by the calling thread
 * (0: none yet), and the calling process's stream id ("" without a log). */
unsigned long long p11_audit_last_seq(void);
const char *p11_audit_stream_id(p11_core *core);
/* Record that an application asked for a key that could not be used
 * (none or several match, token absent): reason is a short sentence. */
void p11_audit_lookup_failed(p11_core *core, const p11_uri *uri, const char *reason);
/* Write every queued record now (primusctl does it before printing evidence). */
p11_status p11_audit_flush(p11_core *core);

/* The chain primitives, shared with the verifier.  Hex is lower-case. */
int p11_audit_line_hash(const char *line, size_t len, char out[P11_AUDIT_HEX_SIZE]);
int p11_audit_body_mac(const unsigned char *key, size_t key_len, const char *body, size_t len,
                       char out[P11_AUDIT_HEX_SIZE]);
/* The same hash and MAC with the algorithms fetched and the key prepared
 * once (the writer's, per record); key NULL: hashing only. */
typedef struct p11_audit_mac p11_audit_mac;
p11_audit_mac *p11_audit_mac_new(const unsigned char *key, size_t key_len);
int p11_audit_mac_hash_line(p11_audit_mac *m, const char *line, size_t len,
                            char out[P11_AUDIT_HEX_SIZE]);
int p11_audit_mac_body(p11_audit_mac *m, const char *body, size_t len,
                       char out[P11_AUDIT_HEX_SIZE]);
void p11_audit_mac_free(p11_audit_mac *m);
/* body (a JSON object ending with '}') with ,"mac":"<mac>" inserted before
 * its closing brace; malloc'd. */
char *p11_audit_append_mac(const char *body, size_t len, const char mac[P11_AUDIT_HEX_SIZE],
                           size_t *out_len);
/* Does line end with a well-formed mac member?  Then *body_end is where the
 * body stops (the body is line[0..body_end) followed by '}'). */
int p11_audit_split_mac(const char *line, size_t len, size_t *body_end,
                        char mac[P11_AUDIT_HEX_SIZE]);
/* Does the line carry a mac member that is right for key? */
int p11_audit_mac_matches(const unsigned char *key, size_t key_len, const char *line, size_t len);
/* Read an HMAC key file (mode 0600, at least 16 bytes); wipe with
 * p11_audit_key_free. */
p11_status p11_audit_key_load(const char *path, unsigned char **key, size_t *key_len);
void p11_audit_key_free(unsigned char *key, size_t key_len);

#ifdef __cplusplus
}
#endif

#endif
