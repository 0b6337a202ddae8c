/*
 * signature.c: RSA (PKCS#1 v1.5, PSS), ECDSA and Ed25519 signatures.
 *
 * Signing with an HSM key: the message is hashed in software (the default
 * provider in our own library context) and only the hash goes to the token:
 *   RSA PKCS#1 v1.5  CKM_RSA_PKCS over DigestInfo(hash)
 *   RSA-PSS          CKM_RSA_PKCS_PSS over the hash, with hash/MGF1/salt
 *   ECDSA            CKM_ECDSA over the hash; the token's r||s is DER-encoded
 *   Ed25519          CKM_EDDSA over the whole message (one shot only)
 * Verification always runs in software with the key's public half.  Keys
 * that are not in the HSM (software keys, see provider.h) are handled by
 * the default provider entirely.
 *
 * The context parameters follow OpenSSL's own RSA and ECDSA signature
 * implementations (pad-mode, saltlen, mgf1-digest, digest as integers or
 * strings) and answer algorithm-id, so X.509, CMS and TLS signing work.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "provider.h"

#ifndef CKM_SHA3_256
#define CKM_SHA3_256 0x2b0UL
#define CKM_SHA3_224 0x2b5UL
#define CKM_SHA3_384 0x2c0UL
#define CKM_SHA3_512 0x2d0UL
#endif
#ifndef CKG_MGF1_SHA3_224
#define CKG_MGF1_SHA3_224 0x6UL
#define CKG_MGF1_SHA3_256 0x7UL
#define CKG_MGF1_SHA3_384 0x8UL
#define CKG_MGF1_SHA3_512 0x9UL
#endif

static const struct {
    int nid;
    CK_MECHANISM_TYPE ckm;
    CK_RSA_PKCS_MGF_TYPE ckg;
} md_table[] = {
    { NID_sha1, CKM_SHA_1, CKG_MGF1_SHA1 },
    { NID_sha224, CKM_SHA224, CKG_MGF1_SHA224 },
    { NID_sha256, CKM_SHA256, CKG_MGF1_SHA256 },
    { NID_sha384, CKM_SHA384, CKG_MGF1_SHA384 },
    { NID_sha512, CKM_SHA512, CKG_MGF1_SHA512 },
    { NID_sha3_224, CKM_SHA3_224, CKG_MGF1_SHA3_224 },
    { NID_sha3_256, CKM_SHA3_256, CKG_MGF1_SHA3_256 },
    { NID_sha3_384, CKM_SHA3_384, CKG_MGF1_SHA3_384 },
    { NID_sha3_512, CKM_SHA3_512, CKG_MGF1_SHA3_512 },
};

CK_MECHANISM_TYPE primus_ckm_for_md(int md_nid)
{
    size_t i;

    for (i = 0; i < sizeof(md_table) / sizeof(md_table[0]); i++)
        if (md_table[i].nid == md_nid)
            return md_table[i].ckm;
    return 0;
}

CK_RSA_PKCS_MGF_TYPE primus_ckg_for_md(int md_nid)
{
    size_t i;

    for (i = 0; i < sizeof(md_table) / sizeof(md_table[0]); i++)
        if (md_table[i].nid == md_nid)
            return md_table[i].ckg;
    return 0;
}

typedef struct primus_sig_ctx {
    primus_prov *prov;
    primus_key_type family;   /* RSA, EC or ED25519 */
    primus_key *key;
    int signing;
    /* digest */
    EVP_MD *md;
    int md_nid;
    size_t md_size;
    EVP_MD_CTX *mdctx;
    int md_locked;            /* digest_sign_init fixed the digest */
    /* RSA */
    int pad;
    EVP_MD *mgf1_md;
    int saltlen;
} primus_sig_ctx;

static OSSL_FUNC_signature_newctx_fn rsa_sig_newctx;
static OSSL_FUNC_signature_newctx_fn ecdsa_sig_newctx;
static OSSL_FUNC_signature_newctx_fn ed25519_sig_newctx;
static OSSL_FUNC_signature_freectx_fn sig_freectx;
static OSSL_FUNC_signature_dupctx_fn sig_dupctx;
static OSSL_FUNC_signature_sign_init_fn sig_sign_init;
static OSSL_FUNC_signature_sign_fn sig_sign;
static OSSL_FUNC_signature_verify_init_fn sig_verify_init;
static OSSL_FUNC_signature_verify_fn sig_verify;
static OSSL_FUNC_signature_digest_sign_init_fn sig_digest_sign_init;
static OSSL_FUNC_signature_digest_sign_update_fn sig_digest_update;
static OSSL_FUNC_signature_digest_sign_final_fn sig_digest_sign_final;
static OSSL_FUNC_signature_digest_sign_fn sig_digest_sign;
static OSSL_FUNC_signature_digest_verify_init_fn sig_digest_verify_init;
static OSSL_FUNC_signature_digest_verify_final_fn sig_digest_verify_final;
static OSSL_FUNC_signature_digest_verify_fn sig_digest_verify;
static OSSL_FUNC_signature_get_ctx_params_fn sig_get_ctx_params;
static OSSL_FUNC_signature_gettable_ctx_params_fn rsa_sig_gettable_ctx_params;
static OSSL_FUNC_signature_gettable_ctx_params_fn ec_sig_gettable_ctx_params;
static OSSL_FUNC_signature_set_ctx_params_fn sig_set_ctx_params;
static OSSL_FUNC_signature_settable_ctx_params_fn rsa_sig_settable_ctx_params;
static OSSL_FUNC_signature_settable_ctx_params_fn ec_sig_settable_ctx_params;

/* ---- life cycle ---------------------------------------------------------- */

static void *sig_newctx(void *provctx, primus_key_type family)
{
    primus_sig_ctx *ctx = OPENSSL_zalloc(sizeof(*ctx));

    if (ctx == NULL)
        return NULL;
    ctx->prov = provctx;
    ctx->family = family;
    ctx->pad = RSA_PKCS1_PADDING;
    ctx->saltlen = RSA_PSS_SALTLEN_AUTO;
    return ctx;
}

static void *rsa_sig_newctx(void *provctx, const char *propq)
{
    return sig_newctx(provctx, PRIMUS_KEY_RSA);
}

static void *ecdsa_sig_newctx(void *provctx, const char *propq)
{
    return sig_newctx(provctx, PRIMUS_KEY_EC);
}

static void *ed25519_sig_newctx(void *provctx, const char *propq)
{
    return sig_newctx(provctx, PRIMUS_KEY_ED25519);
}

static void sig_freectx(void *vctx)
{
    primus_sig_ctx *ctx = vctx;

    if (ctx == NULL)
        return;
    primus_key_free(ctx->key);
    EVP_MD_free(ctx->md);
    EVP_MD_free(ctx->mgf1_md);
    EVP_MD_CTX_free(ctx->mdctx);
    OPENSSL_free(ctx);
}

static void *sig_dupctx(void *vctx)
{
    primus_sig_ctx *src = vctx, *ctx;

    ctx = OPENSSL_memdup(src, sizeof(*src));
    if (ctx == NULL)
        return NULL;
    ctx->mdctx = NULL;
    if (ctx->key != NULL)
        primus_key_up_ref(ctx->key);
    if (ctx->md != NULL)
        EVP_MD_up_ref(ctx->md);
    if (ctx->mgf1_md != NULL)
        EVP_MD_up_ref(ctx->mgf1_md);
    if (src->mdctx != NULL) {
        ctx->mdctx = EVP_MD_CTX_new();
        if (ctx->mdctx == NULL || !EVP_MD_CTX_copy_ex(ctx->mdctx, src->mdctx)) {
            sig_freectx(ctx);
            return NULL;
        }
    }
    return ctx;
}

/* ---- digests ------------------------------------------------------------------ */

static int set_md(primus_sig_ctx *ctx, const char *mdname)
{
    EVP_MD *md;
    int nid;

    if (ctx->md_locked) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_BAD_PARAMETER,
                     "the digest cannot be changed once hashing has started");
        return 0;
    }
    md = primus_fetch_digest(ctx->prov, mdname);
    if (md == NULL) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_UNSUPPORTED_DIGEST,
                     "unknown digest \"%s\"; use SHA1, SHA224, SHA256, SHA384 or SHA512", mdname);
        return 0;
    }
    nid = EVP_MD_get_type(md);
    if (ctx->family == PRIMUS_KEY_ED25519) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_UNSUPPORTED_DIGEST,
                     "Ed25519 signs the message itself; do not give a digest (%s)", mdname);
        EVP_MD_free(md);
        return 0;
    }
    if (ctx->family == PRIMUS_KEY_RSA && nid != NID_md5_sha1 && OBJ_nid2obj(nid) == NULL) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_UNSUPPORTED_DIGEST,
                     "digest %s has no OID for an RSA DigestInfo", mdname);
        EVP_MD_free(md);
        return 0;
    }
    EVP_MD_free(ctx->md);
    ctx->md = md;
    ctx->md_nid = nid;
    ctx->md_size = (size_t)EVP_MD_get_size(md);
    return 1;
}

static int set_mgf1(primus_sig_ctx *ctx, const char *mdname)
{
    EVP_MD *md = primus_fetch_digest(ctx->prov, mdname);

    if (md == NULL) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_UNSUPPORTED_DIGEST, "unknown MGF1 digest \"%s\"",
                     mdname);
        return 0;
    }
    EVP_MD_free(ctx->mgf1_md);
    ctx->mgf1_md = md;
    return 1;
}

static const EVP_MD *mgf1_of(const primus_sig_ctx *ctx)
{
    return ctx->mgf1_md != NULL ? ctx->mgf1_md : ctx->md;
}

/* ---- init ------------------------------------------------------------------------ */

static int family_accepts(primus_key_type family, primus_key_type t)
{
    if (family == PRIMUS_KEY_RSA)
        return t == PRIMUS_KEY_RSA || t == PRIMUS_KEY_RSA_PSS;
    return family == t;
}

static int sig_init(primus_sig_ctx *ctx, void *vkey, const OSSL_PARAM params[], int signing)
{
    primus_key *key = vkey;

    if (key != NULL) {
        if (!family_accepts(ctx->family, key->type)) {
            PRIMUS_RAISE(ctx->prov, PRIMUS_R_WRONG_KEY_TYPE,
                         "a %s key cannot make %s signatures",
                         primus_key_type_name(key->type),
                         ctx->family == PRIMUS_KEY_RSA ? "RSA"
                         : ctx->family == PRIMUS_KEY_EC ? "ECDSA" : "Ed25519");
            return 0;
        }
        if (signing && !primus_key_has_private(key)) {
            PRIMUS_RAISE(ctx->prov, PRIMUS_R_NO_PRIVATE_KEY,
                         "%s is a public key; signing needs the private key (type=private)",
                         primus_key_uri(key) != NULL ? primus_key_uri(key) : "the key");
            return 0;
        }
        if (!signing && key->sw == NULL) {
            PRIMUS_RAISE(ctx->prov, PRIMUS_R_NO_PUBLIC_KEY,
                         "verification needs the public half of %s, which the token does not "
                         "give; store the public key or certificate with the same CKA_ID",
                         primus_key_uri(key) != NULL ? primus_key_uri(key) : "the key");
            return 0;
        }
        primus_key_free(ctx->key);
        ctx->key = primus_key_up_ref(key);
        ctx->pad = key->type == PRIMUS_KEY_RSA_PSS ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING;
    } else if (ctx->key == NULL) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_INTERNAL, "no key given to the signature operation");
        return 0;
    }
    ctx->signing = signing;
    ctx->md_locked = 0;
    ctx->saltlen = RSA_PSS_SALTLEN_AUTO;
    return sig_set_ctx_params(ctx, params);
}

static int sig_sign_init(void *vctx, void *vkey, const OSSL_PARAM params[])
{
    return sig_init(vctx, vkey, params, 1);
}

static int sig_verify_init(void *vctx, void *vkey, const OSSL_PARAM params[])
{
    return sig_init(vctx, vkey, params, 0);
}

/* ---- RSA helpers -------------------------------------------------------------------- */

static int rsa_mod_bits(const primus_sig_ctx *ctx)
{
    return primus_key_bits(ctx->key);
}

/* The concrete PSS salt length for signing (or for algorithm-id). */
static int pss_salt(primus_sig_ctx *ctx, int *out)
{
    int bits = rsa_mod_bits(ctx);
    int emlen = (bits - 1 + 7) / 8;
    int max = emlen - (int)ctx->md_size - 2;

    if (ctx->md == NULL)
        return 0;
    switch (ctx->saltlen) {
    case RSA_PSS_SALTLEN_DIGEST:
        *out = (int)ctx->md_size;
        break;
    case RSA_PSS_SALTLEN_AUTO:
    case RSA_PSS_SALTLEN_MAX:
        *out = max;
        break;
    default:
        *out = ctx->saltlen;
        break;
    }
    if (*out < 0 || *out > max) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_INVALID_SALT_LENGTH,
                     "salt length %d does not fit a %d-bit key with %s (at most %d)", *out,
                     bits, EVP_MD_get0_name(ctx->md), max);
        return 0;
    }
    return 1;
}

/* Infer the digest of a bare hash (EVP_PKEY_sign with PSS and no digest). */
static int md_from_hash_len(primus_sig_ctx *ctx, size_t len)
{
    const char *name = len == 20 ? "SHA1" : len == 28 ? "SHA224" : len == 32 ? "SHA256"
                       : len == 48 ? "SHA384" : len == 64 ? "SHA512" : NULL;

    if (name == NULL) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_UNSUPPORTED_DIGEST,
                     "PSS needs a digest: set one (e.g. -pkeyopt digest:SHA256)");
        return 0;
    }
    return set_md(ctx, name);
}

static int check_mech(primus_sig_ctx *ctx, CK_MECHANISM_TYPE mech, CK_FLAGS purpose,
                      const char *hint)
{
    if (primus_key_supports(ctx->prov, ctx->key->p11, mech, purpose))
        return 1;
    PRIMUS_RAISE(ctx->prov, PRIMUS_R_MECHANISM,
                 "the token holding %s does not offer %s for this key%s%s",
                 primus_key_uri(ctx->key) != NULL ? primus_key_uri(ctx->key) : "the key",
                 p11_mechanism_name(mech), hint != NULL ? "; " : "", hint != NULL ? hint : "");
    p11_error_clear();
    return 0;
}

static int hsm_sign(primus_sig_ctx *ctx, CK_MECHANISM *mech, const unsigned char *in,
                    size_t inlen, unsigned char *out, size_t *outlen)
{
    p11_status st;

    /* Errors an in-process module (SoftHSM) leaves in OpenSSL's queue are
     * dropped on success (libssl reads the queue) and kept on failure. */
    primus_set_error_mark(ctx->prov);
    st = p11_key_sign(ctx->key->p11, mech, in, inlen, out, outlen);
    if (st == P11_OK)
        primus_pop_error_to_mark(ctx->prov);
    else
        primus_clear_last_error_mark(ctx->prov);
    if (st != P11_OK) {
        char what[512];

        if (mech->mechanism == CKM_RSA_PKCS_PSS && ctx->md != NULL)
            snprintf(what, sizeof(what),
                     "signing with %s (CKM_RSA_PKCS_PSS, %s, MGF1 %s, salt %lu); tokens may "
                     "accept only some combinations (SoftHSM: MGF1 with the same digest)",
                     primus_key_uri(ctx->key) != NULL ? primus_key_uri(ctx->key) : "the HSM key",
                     EVP_MD_get0_name(ctx->md), EVP_MD_get0_name(mgf1_of(ctx)),
                     (unsigned long)((CK_RSA_PKCS_PSS_PARAMS *)mech->pParameter)->sLen);
        else
            snprintf(what, sizeof(what), "signing with %s (%s)",
                     primus_key_uri(ctx->key) != NULL ? primus_key_uri(ctx->key) : "the HSM key",
                     p11_mechanism_name(mech->mechanism));
        PRIMUS_RAISE_P11(ctx->prov, st, what);
        return 0;
    }
    return 1;
}

static int rsa_hsm_sign_hash(primus_sig_ctx *ctx, unsigned char *sig, size_t *siglen,
                             size_t sigsize, const unsigned char *tbs, size_t tbslen)
{
    size_t k = ((size_t)rsa_mod_bits(ctx) + 7) / 8;
    CK_MECHANISM mech = { 0, NULL, 0 };
    CK_RSA_PKCS_PSS_PARAMS pss;
    unsigned char *di = NULL;
    const unsigned char *in = tbs;
    size_t inlen = tbslen, outlen;
    int ok = 0;

    if (sigsize < k) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_BUFFER, "the signature buffer holds %zu bytes, %zu needed",
                     sigsize, k);
        return 0;
    }
    switch (ctx->pad) {
    case RSA_PKCS1_PADDING:
        mech.mechanism = CKM_RSA_PKCS;
        if (ctx->md != NULL && ctx->md_nid != NID_md5_sha1) {
            X509_SIG *xs = X509_SIG_new();
            X509_ALGOR *alg;
            ASN1_OCTET_STRING *oct;
            int len;

            if (tbslen != ctx->md_size) {
                X509_SIG_free(xs);
                PRIMUS_RAISE(ctx->prov, PRIMUS_R_BAD_PARAMETER,
                             "the input is %zu bytes, not a %s hash (%zu bytes)", tbslen,
                             EVP_MD_get0_name(ctx->md), ctx->md_size);
                return 0;
            }
            if (xs == NULL)
                return 0;
            X509_SIG_getm(xs, &alg, &oct);
            if (!X509_ALGOR_set0(alg, OBJ_nid2obj(ctx->md_nid), V_ASN1_NULL, NULL)
                || !ASN1_OCTET_STRING_set(oct, tbs, (int)tbslen)
                || (len = i2d_X509_SIG(xs, &di)) <= 0) {
                X509_SIG_free(xs);
                return 0;
            }
            X509_SIG_free(xs);
            in = di;
            inlen = (size_t)len;
        }
        if (inlen + 11 > k) {
            PRIMUS_RAISE(ctx->prov, PRIMUS_R_INPUT_TOO_LONG,
                         "%zu bytes do not fit a PKCS#1 v1.5 block of a %zu-bit key", inlen,
                         k * 8);
            goto end;
        }
        if (!check_mech(ctx, CKM_RSA_PKCS, CKF_SIGN, NULL))
            goto end;
        break;
    case RSA_PKCS1_PSS_PADDING: {
        int salt;

        if (ctx->md == NULL && !md_from_hash_len(ctx, tbslen))
            goto end;
        if (tbslen != ctx->md_size) {
            PRIMUS_RAISE(ctx->prov, PRIMUS_R_BAD_PARAMETER,
                         "the input is %zu bytes, not a %s hash (%zu bytes)", tbslen,
                         EVP_MD_get0_name(ctx->md), ctx->md_size);
            goto end;
        }
        if (!pss_salt(ctx, &salt))
            goto end;
        pss.hashAlg = primus_ckm_for_md(ctx->md_nid);
        pss.mgf = primus_ckg_for_md(EVP_MD_get_type(mgf1_of(ctx)));
        pss.sLen = (CK_ULONG)salt;
        if (pss.hashAlg == 0 || pss.mgf == 0) {
            PRIMUS_RAISE(ctx->prov, PRIMUS_R_UNSUPPORTED_DIGEST,
                         "PKCS#11 has no PSS parameters for %s / MGF1 %s; use SHA-1 or SHA-2",
                         EVP_MD_get0_name(ctx->md), EVP_MD_get0_name(mgf1_of(ctx)));
            goto end;
        }
        mech.mechanism = CKM_RSA_PKCS_PSS;
        mech.pParameter = &pss;
        mech.ulParameterLen = sizeof(pss);
        if (!check_mech(ctx, CKM_RSA_PKCS_PSS, CKF_SIGN, "use PKCS#1 v1.5 padding instead"))
            goto end;
        break;
    }
    case RSA_NO_PADDING:
        if (tbslen != k) {
            PRIMUS_RAISE(ctx->prov, PRIMUS_R_BAD_PARAMETER,
                         "raw RSA needs exactly %zu bytes of input, got %zu", k, tbslen);
            goto end;
        }
        mech.mechanism = CKM_RSA_X_509;
        if (!check_mech(ctx, CKM_RSA_X_509, CKF_SIGN, NULL))
            goto end;
        break;
    case RSA_X931_PADDING:
        mech.mechanism = CKM_RSA_X9_31;
        if (!check_mech(ctx, CKM_RSA_X9_31, CKF_SIGN, "use PKCS#1 v1.5 or PSS padding"))
            goto end;
        break;
    default:
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_UNSUPPORTED_PADDING,
                     "RSA padding mode %d cannot be used for signing with HSM keys; use "
                     "pkcs1 or pss", ctx->pad);
        goto end;
    }
    outlen = sigsize;
    if (!hsm_sign(ctx, &mech, in, inlen, sig, &outlen))
        goto end;
    *siglen = outlen;
    ok = 1;
end:
    OPENSSL_free(di);
    return ok;
}

/* One DER INTEGER from a big-endian unsigned number; returns its size. */
static size_t der_integer(const unsigned char *n, size_t len, unsigned char *out)
{
    size_t skip = 0, body, at = 0;

    while (skip + 1 < len && n[skip] == 0)
        skip++;
    body = len - skip + (n[skip] & 0x80 ? 1 : 0);
    out[at++] = 0x02;
    out[at++] = (unsigned char)body; /* at most 67 bytes (P-521) */
    if (n[skip] & 0x80)
        out[at++] = 0;
    memcpy(out + at, n + skip, len - skip);
    return at + len - skip;
}

/* The token's r||s as the DER ECDSA-Sig-Value OpenSSL expects, written
 * directly: a signature is too hot a path for ECDSA_SIG and two encodings.
 * 0 when out is too small. */
static int ecdsa_der_from_raw(const unsigned char *raw, size_t half, unsigned char *out,
                              size_t outsize, size_t *outlen)
{
    unsigned char body[2 * (3 + 66)];
    size_t n, hdr;

    if (half == 0 || half > 66)
        return 0;
    n = der_integer(raw, half, body);
    n += der_integer(raw + half, half, body + n);
    hdr = n < 0x80 ? 2 : 3;
    if (hdr + n > outsize)
        return 0;
    out[0] = 0x30;
    if (hdr == 2) {
        out[1] = (unsigned char)n;
    } else {
        out[1] = 0x81;
        out[2] = (unsigned char)n;
    }
    memcpy(out + hdr, body, n);
    *outlen = hdr + n;
    return 1;
}

static int ecdsa_hsm_sign_hash(primus_sig_ctx *ctx, unsigned char *sig, size_t *siglen,
                               size_t sigsize, const unsigned char *tbs, size_t tbslen)
{
    CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
    size_t nbytes = ((size_t)primus_key_bits(ctx->key) + 7) / 8;
    unsigned char raw[2 * 66 + 8];
    size_t rawlen = sizeof(raw);
    int ok = 0;

    if (ctx->md != NULL && tbslen != ctx->md_size) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_BAD_PARAMETER,
                     "the input is %zu bytes, not a %s hash (%zu bytes)", tbslen,
                     EVP_MD_get0_name(ctx->md), ctx->md_size);
        return 0;
    }
    /* ECDSA uses the leftmost bits of a hash longer than the order; the
     * orders of the curves handled here are whole bytes up to P-384, and
     * no hash is longer than P-521's order. */
    if (nbytes > 0 && tbslen > nbytes)
        tbslen = nbytes;
    if (!check_mech(ctx, CKM_ECDSA, CKF_SIGN, NULL))
        return 0;
    if (!hsm_sign(ctx, &mech, tbs, tbslen, raw, &rawlen))
        return 0;
    if (rawlen == 0 || rawlen % 2 != 0) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_OPERATION,
                     "the token returned a %zu-byte ECDSA signature (expected r||s)", rawlen);
        return 0;
    }
    if (!ecdsa_der_from_raw(raw, rawlen / 2, sig, sigsize, siglen)) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_BUFFER, "the signature buffer holds %zu bytes, too few "
                     "for a %zu-byte ECDSA signature", sigsize, rawlen);
        goto end;
    }
    ok = 1;
end:
    OPENSSL_cleanse(raw, sizeof(raw));
    return ok;
}

/* Parameters for the software implementation, mirroring ours. */
static int sw_params(primus_sig_ctx *ctx, OSSL_PARAM *params, int *pad, int *salt)
{
    OSSL_PARAM *p = params;

    if (ctx->md != NULL)
        *p++ = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST,
                                                (char *)EVP_MD_get0_name(ctx->md), 0);
    if (ctx->family == PRIMUS_KEY_RSA) {
        *pad = ctx->pad;
        *p++ = OSSL_PARAM_construct_int(OSSL_SIGNATURE_PARAM_PAD_MODE, pad);
        if (ctx->pad == RSA_PKCS1_PSS_PADDING) {
            *salt = ctx->saltlen;
            *p++ = OSSL_PARAM_construct_int(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, salt);
            if (ctx->mgf1_md != NULL)
                *p++ = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST,
                                                        (char *)EVP_MD_get0_name(ctx->mgf1_md),
                                                        0);
        }
    }
    *p = OSSL_PARAM_construct_end();
    return 1;
}

static EVP_PKEY_CTX *sw_ctx(primus_sig_ctx *ctx, int signing)
{
    OSSL_PARAM params[6];
    int pad, salt;
    EVP_PKEY_CTX *pctx;

    pctx = EVP_PKEY_CTX_new_from_pkey(ctx->prov->libctx, ctx->key->sw, NULL);
    if (pctx == NULL)
        return NULL;
    sw_params(ctx, params, &pad, &salt);
    if ((signing ? EVP_PKEY_sign_init(pctx) : EVP_PKEY_verify_init(pctx)) <= 0
        || !EVP_PKEY_CTX_set_params(pctx, params)) {
        EVP_PKEY_CTX_free(pctx);
        return NULL;
    }
    return pctx;
}

static int sign_hash(primus_sig_ctx *ctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                     const unsigned char *tbs, size_t tbslen)
{
    if (ctx->key->hsm_private) {
        if (ctx->family == PRIMUS_KEY_RSA)
            return rsa_hsm_sign_hash(ctx, sig, siglen, sigsize, tbs, tbslen);
        if (ctx->family == PRIMUS_KEY_EC)
            return ecdsa_hsm_sign_hash(ctx, sig, siglen, sigsize, tbs, tbslen);
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_BAD_PARAMETER,
                     "Ed25519 signs the message in one shot (EVP_DigestSign)");
        return 0;
    } else {
        EVP_PKEY_CTX *pctx = sw_ctx(ctx, 1);
        int ok;

        *siglen = sigsize;
        ok = pctx != NULL && EVP_PKEY_sign(pctx, sig, siglen, tbs, tbslen) > 0;
        EVP_PKEY_CTX_free(pctx);
        return ok;
    }
}

static int verify_hash(primus_sig_ctx *ctx, const unsigned char *sig, size_t siglen,
                       const unsigned char *tbs, size_t tbslen)
{
    EVP_PKEY_CTX *pctx = sw_ctx(ctx, 0);
    int ok;

    ok = pctx != NULL ? EVP_PKEY_verify(pctx, sig, siglen, tbs, tbslen) : 0;
    EVP_PKEY_CTX_free(pctx);
    return ok > 0;
}

/* ---- one-shot sign/verify of a prepared hash ------------------------------------ */

static int sig_sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                    const unsigned char *tbs, size_t tbslen)
{
    primus_sig_ctx *ctx = vctx;

    if (sig == NULL) {
        *siglen = primus_key_max_size(ctx->key);
        return *siglen > 0;
    }
    return sign_hash(ctx, sig, siglen, sigsize, tbs, tbslen);
}

static int sig_verify(void *vctx, const unsigned char *sig, size_t siglen,
                      const unsigned char *tbs, size_t tbslen)
{
    return verify_hash(vctx, sig, siglen, tbs, tbslen);
}

/* ---- hash and sign ------------------------------------------------------------------ */

static int digest_init(primus_sig_ctx *ctx, const char *mdname, void *vkey,
                       const OSSL_PARAM params[], int signing)
{
    if (!sig_init(ctx, vkey, params, signing))
        return 0;
    if (ctx->family == PRIMUS_KEY_ED25519) {
        if (mdname != NULL && mdname[0] != '\0')
            return set_md(ctx, mdname); /* raises */
        return 1;
    }
    if (mdname == NULL || mdname[0] == '\0')
        mdname = "SHA256";
    if (!set_md(ctx, mdname))
        return 0;
    ctx->md_locked = 1;
    if (ctx->mdctx == NULL && (ctx->mdctx = EVP_MD_CTX_new()) == NULL)
        return 0;
    return EVP_DigestInit_ex2(ctx->mdctx, ctx->md, NULL);
}

static int sig_digest_sign_init(void *vctx, const char *mdname, void *vkey,
                                const OSSL_PARAM params[])
{
    return digest_init(vctx, mdname, vkey, params, 1);
}

static int sig_digest_verify_init(void *vctx, const char *mdname, void *vkey,
                                  const OSSL_PARAM params[])
{
    return digest_init(vctx, mdname, vkey, params, 0);
}

static int sig_digest_update(void *vctx, const unsigned char *data, size_t datalen)
{
    primus_sig_ctx *ctx = vctx;

    if (ctx->mdctx == NULL) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_BAD_PARAMETER,
                     "Ed25519 cannot sign in parts; use the one-shot EVP_DigestSign");
        return 0;
    }
    return EVP_DigestUpdate(ctx->mdctx, data, datalen);
}

static int sig_digest_sign_final(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize)
{
    primus_sig_ctx *ctx = vctx;
    unsigned char hash[EVP_MAX_MD_SIZE];
    unsigned int hlen = 0;
    int ok;

    if (sig == NULL) {
        *siglen = primus_key_max_size(ctx->key);
        return *siglen > 0;
    }
    if (ctx->mdctx == NULL || !EVP_DigestFinal_ex(ctx->mdctx, hash, &hlen))
        return 0;
    ok = sign_hash(ctx, sig, siglen, sigsize, hash, hlen);
    OPENSSL_cleanse(hash, sizeof(hash));
    return ok;
}

static int sig_digest_verify_final(void *vctx, const unsigned char *sig, size_t siglen)
{
    primus_sig_ctx *ctx = vctx;
    unsigned char hash[EVP_MAX_MD_SIZE];
    unsigned int hlen = 0;

    if (ctx->mdctx == NULL || !EVP_DigestFinal_ex(ctx->mdctx, hash, &hlen))
        return 0;
    return verify_hash(ctx, sig, siglen, hash, hlen);
}

static int ed25519_sign(primus_sig_ctx *ctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                        const unsigned char *tbs, size_t tbslen)
{
    if (sigsize < 64) {
        PRIMUS_RAISE(ctx->prov, PRIMUS_R_BUFFER, "an Ed25519 signature needs 64 bytes");
        return 0;
    }
    if (ctx->key->hsm_private) {
        CK_MECHANISM mech = { CKM_EDDSA, NULL, 0 };

        *siglen = sigsize;
        if (!check_mech(ctx, CKM_EDDSA, CKF_SIGN, NULL))
            return 0;
        return hsm_sign(ctx, &mech, tbs, tbslen, sig, siglen);
    } else {
        EVP_MD_CTX *mctx = EVP_MD_CTX_new();
        int ok;

        *siglen = sigsize;
        ok = mctx != NULL
             && EVP_DigestSignInit_ex(mctx, NULL, NULL, ctx->prov->libctx, NULL, ctx->key->sw,
                                      NULL) > 0
             && EVP_DigestSign(mctx, sig, siglen, tbs, tbslen) > 0;
        EVP_MD_CTX_free(mctx);
        return ok;
    }
}

static int sig_digest_sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                           const unsigned char *tbs, size_t tbslen)
{
    primus_sig_ctx *ctx = vctx;
    unsigned char hash[EVP_MAX_MD_SIZE];
    unsigned int hlen = 0;
    int ok;

    if (sig == NULL) {
        *siglen = primus_key_max_size(ctx->key);
        return *siglen > 0;
    }
    if (ctx->family == PRIMUS_KEY_ED25519)
        return ed25519_sign(ctx, sig, siglen, sigsize, tbs, tbslen);
    if (ctx->mdctx == NULL || !EVP_DigestUpdate(ctx->mdctx, tbs, tbslen)
        || !EVP_DigestFinal_ex(ctx->mdctx, hash, &hlen))
        return 0;
    ok = sign_hash(ctx, sig, siglen, sigsize, hash, hlen);
    OPENSSL_cleanse(hash, sizeof(hash));
    return ok;
}

static int sig_digest_verify(void *vctx, const unsigned char *sig, size_t siglen,
                             const unsigned char *tbs, size_t tbslen)
{
    primus_sig_ctx *ctx = vctx;

    if (ctx->family == PRIMUS_KEY_ED25519) {
        EVP_MD_CTX *mctx = EVP_MD_CTX_new();
        int ok;

        ok = mctx != NULL
             && EVP_DigestVerifyInit_ex(mctx, NULL, NULL, ctx->prov->libctx, NULL,
                                        ctx->key->sw, NULL) > 0
             && EVP_DigestVerify(mctx, sig, siglen, tbs, tbslen) > 0;
        EVP_MD_CTX_free(mctx);
        return ok;
    }
    if (ctx->mdctx == NULL || !EVP_DigestUpdate(ctx->mdctx, tbs, tbslen))
        return 0;
    return sig_digest_verify_final(ctx, sig, siglen);
}

/* ---- parameters -------------------------------------------------------------------- */

static int algorithm_id(primus_sig_ctx *ctx, unsigned char **der)
{
    X509_ALGOR *alg = X509_ALGOR_new();
    int len = -1, snid;

    if (alg == NULL)
        return -1;
    switch (ctx->family) {
    case PRIMUS_KEY_RSA:
        if (ctx->md == NULL)
            break;
        if (ctx->pad == RSA_PKCS1_PSS_PADDING) {
            RSA_PSS_PARAMS *pss = RSA_PSS_PARAMS_new();
            const EVP_MD *mgf1 = mgf1_of(ctx);
            ASN1_STRING *os = NULL;
            int salt;

            if (pss == NULL || !pss_salt(ctx, &salt)) {
                RSA_PSS_PARAMS_free(pss);
                break;
            }
            if (ctx->md_nid != NID_sha1) {
                pss->hashAlgorithm = X509_ALGOR_new();
                if (pss->hashAlgorithm != NULL)
                    X509_ALGOR_set_md(pss->hashAlgorithm, ctx->md);
            }
            if (EVP_MD_get_type(mgf1) != NID_sha1) {
                X509_ALGOR *mh = X509_ALGOR_new();
                ASN1_STRING *st = NULL;

                if (mh != NULL) {
                    X509_ALGOR_set_md(mh, mgf1);
                    st = ASN1_item_pack(mh, ASN1_ITEM_rptr(X509_ALGOR), NULL);
                }
                X509_ALGOR_free(mh);
                pss->maskGenAlgorithm = X509_ALGOR_new();
                if (st == NULL || pss->maskGenAlgorithm == NULL
                    || !X509_ALGOR_set0(pss->maskGenAlgorithm, OBJ_nid2obj(NID_mgf1),
                                        V_ASN1_SEQUENCE, st)) {
                    ASN1_STRING_free(st);
                    RSA_PSS_PARAMS_free(pss);
                    break;
                }
            }
            if (salt != 20) {
                pss->saltLength = ASN1_INTEGER_new();
                if (pss->saltLength == NULL || !ASN1_INTEGER_set(pss->saltLength, salt)) {
                    RSA_PSS_PARAMS_free(pss);
                    break;
                }
            }
            os = ASN1_item_pack(pss, ASN1_ITEM_rptr(RSA_PSS_PARAMS), NULL);
            RSA_PSS_PARAMS_free(pss);
            if (os == NULL || !X509_ALGOR_set0(alg, OBJ_nid2obj(NID_rsassaPss), V_ASN1_SEQUENCE,
                                               os)) {
                ASN1_STRING_free(os);
                break;
            }
            len = i2d_X509_ALGOR(alg, der);
        } else if (ctx->pad == RSA_PKCS1_PADDING
                   && OBJ_find_sigid_by_algs(&snid, ctx->md_nid, NID_rsaEncryption)
                   && X509_ALGOR_set0(alg, OBJ_nid2obj(snid), V_ASN1_NULL, NULL)) {
            len = i2d_X509_ALGOR(alg, der);
        }
        break;
    case PRIMUS_KEY_EC:
        if (ctx->md != NULL
            && OBJ_find_sigid_by_algs(&snid, ctx->md_nid, NID_X9_62_id_ecPublicKey)
            && X509_ALGOR_set0(alg, OBJ_nid2obj(snid), V_ASN1_UNDEF, NULL))
            len = i2d_X509_ALGOR(alg, der);
        break;
    case PRIMUS_KEY_ED25519:
        if (X509_ALGOR_set0(alg, OBJ_nid2obj(NID_ED25519), V_ASN1_UNDEF, NULL))
            len = i2d_X509_ALGOR(alg, der);
        break;
    default:
        break;
    }
    X509_ALGOR_free(alg);
    return len;
}

static const char *pad_name(int pad)
{
    switch (pad) {
    case RSA_PKCS1_PADDING: return OSSL_PKEY_RSA_PAD_MODE_PKCSV15;
    case RSA_NO_PADDING: return OSSL_PKEY_RSA_PAD_MODE_NONE;
    case RSA_X931_PADDING: return OSSL_PKEY_RSA_PAD_MODE_X931;
    case RSA_PKCS1_PSS_PADDING: return OSSL_PKEY_RSA_PAD_MODE_PSS;
    }
    return "";
}

static int sig_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    primus_sig_ctx *ctx = vctx;
    OSSL_PARAM *p;

    if (ctx == NULL)
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_ALGORITHM_ID);
    if (p != NULL) {
        unsigned char *der = NULL;
        int len = algorithm_id(ctx, &der);
        int ok = len > 0 && OSSL_PARAM_set_octet_string(p, der, (size_t)len);

        OPENSSL_free(der);
        if (!ok)
            return 0;
    }
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_DIGEST);
    if (p != NULL && ctx->md != NULL && !OSSL_PARAM_set_utf8_string(p, EVP_MD_get0_name(ctx->md)))
        return 0;
    if (ctx->family != PRIMUS_KEY_RSA)
        return 1;
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
    if (p != NULL) {
        if (p->data_type == OSSL_PARAM_INTEGER) {
            if (!OSSL_PARAM_set_int(p, ctx->pad))
                return 0;
        } else if (!OSSL_PARAM_set_utf8_string(p, pad_name(ctx->pad))) {
            return 0;
        }
    }
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
    if (p != NULL) {
        if (p->data_type == OSSL_PARAM_INTEGER) {
            if (!OSSL_PARAM_set_int(p, ctx->saltlen))
                return 0;
        } else {
            char buf[32];
            const char *v = ctx->saltlen == RSA_PSS_SALTLEN_DIGEST ? OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST
                            : ctx->saltlen == RSA_PSS_SALTLEN_MAX ? OSSL_PKEY_RSA_PSS_SALT_LEN_MAX
                            : ctx->saltlen == RSA_PSS_SALTLEN_AUTO ? OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO
                            : NULL;

            if (v == NULL) {
                snprintf(buf, sizeof(buf), "%d", ctx->saltlen);
                v = buf;
            }
            if (!OSSL_PARAM_set_utf8_string(p, v))
                return 0;
        }
    }
    p = OSSL_PARAM_locate(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
    if (p != NULL && mgf1_of(ctx) != NULL
        && !OSSL_PARAM_set_utf8_string(p, EVP_MD_get0_name(mgf1_of(ctx))))
        return 0;
    return 1;
}

static int get_pad_param(primus_sig_ctx *ctx, const OSSL_PARAM *p, int *pad)
{
    if (p->data_type == OSSL_PARAM_INTEGER)
        return OSSL_PARAM_get_int(p, pad);
    if (p->data_type == OSSL_PARAM_UTF8_STRING && p->data != NULL) {
        const char *s = p->data;

        if (strcmp(s, OSSL_PKEY_RSA_PAD_MODE_PKCSV15) == 0)
            *pad = RSA_PKCS1_PADDING;
        else if (strcmp(s, OSSL_PKEY_RSA_PAD_MODE_PSS) == 0)
            *pad = RSA_PKCS1_PSS_PADDING;
        else if (strcmp(s, OSSL_PKEY_RSA_PAD_MODE_NONE) == 0)
            *pad = RSA_NO_PADDING;
        else if (strcmp(s, OSSL_PKEY_RSA_PAD_MODE_X931) == 0)
            *pad = RSA_X931_PADDING;
        else {
            PRIMUS_RAISE(ctx->prov, PRIMUS_R_UNSUPPORTED_PADDING,
                         "unknown RSA padding \"%s\"; use pkcs1 or pss", s);
            return 0;
        }
        return 1;
    }
    return 0;
}

static int get_saltlen_param(primus_sig_ctx *ctx, const OSSL_PARAM *p, int *salt)
{
    if (p->data_type == OSSL_PARAM_INTEGER)
        return OSSL_PARAM_get_int(p, salt);
    if (p->data_type == OSSL_PARAM_UTF8_STRING && p->data != NULL) {
        const char *s = p->data;
        char *end;
        long v;

        if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST) == 0)
            *salt = RSA_PSS_SALTLEN_DIGEST;
        else if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_MAX) == 0)
            *salt = RSA_PSS_SALTLEN_MAX;
        else if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_AUTO) == 0)
            *salt = RSA_PSS_SALTLEN_AUTO;
        else {
            v = strtol(s, &end, 10);
            if (*s == '\0' || *end != '\0' || v < -3 || v > 65535) {
                PRIMUS_RAISE(ctx->prov, PRIMUS_R_INVALID_SALT_LENGTH,
                             "PSS salt length \"%s\": use digest, max, auto or a number", s);
                return 0;
            }
            *salt = (int)v;
        }
        return 1;
    }
    return 0;
}

static int sig_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    primus_sig_ctx *ctx = vctx;
    const OSSL_PARAM *p;

    if (ctx == NULL)
        return 0;
    if (params == NULL)
        return 1;
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_DIGEST);
    if (p != NULL) {
        const char *name = NULL;

        if (!OSSL_PARAM_get_utf8_string_ptr(p, &name) || !set_md(ctx, name))
            return 0;
    }
    if (ctx->family != PRIMUS_KEY_RSA)
        return 1;
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PAD_MODE);
    if (p != NULL) {
        int pad = 0;

        if (!get_pad_param(ctx, p, &pad))
            return 0;
        if (ctx->key != NULL && ctx->key->type == PRIMUS_KEY_RSA_PSS
            && pad != RSA_PKCS1_PSS_PADDING) {
            PRIMUS_RAISE(ctx->prov, PRIMUS_R_UNSUPPORTED_PADDING,
                         "an RSA-PSS key signs with PSS padding only");
            return 0;
        }
        ctx->pad = pad;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_PSS_SALTLEN);
    if (p != NULL && !get_saltlen_param(ctx, p, &ctx->saltlen))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_SIGNATURE_PARAM_MGF1_DIGEST);
    if (p != NULL) {
        const char *name = NULL;

        if (!OSSL_PARAM_get_utf8_string_ptr(p, &name) || !set_mgf1(ctx, name))
            return 0;
    }
    return 1;
}

static const OSSL_PARAM rsa_sig_gettable[] = {
    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM ec_sig_gettable[] = {
    OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM *rsa_sig_gettable_ctx_params(void *vctx, void *provctx)
{
    return rsa_sig_gettable;
}

static const OSSL_PARAM *ec_sig_gettable_ctx_params(void *vctx, void *provctx)
{
    return ec_sig_gettable;
}

static const OSSL_PARAM rsa_sig_settable[] = {
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_PROPERTIES, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM ec_sig_settable[] = {
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
    OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
    OSSL_PARAM_END
};

static const OSSL_PARAM *rsa_sig_settable_ctx_params(void *vctx, void *provctx)
{
    return rsa_sig_settable;
}

static const OSSL_PARAM *ec_sig_settable_ctx_params(void *vctx, void *provctx)
{
    return ec_sig_settable;
}

#define SIG_COMMON_FUNCTIONS                                                                 \
    { OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))sig_freectx },                            \
    { OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))sig_dupctx },                              \
    { OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, (void (*)(void))sig_digest_sign_init },          \
    { OSSL_FUNC_SIGNATURE_DIGEST_SIGN, (void (*)(void))sig_digest_sign },                    \
    { OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT, (void (*)(void))sig_digest_verify_init },      \
    { OSSL_FUNC_SIGNATURE_DIGEST_VERIFY, (void (*)(void))sig_digest_verify },                \
    { OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS, (void (*)(void))sig_get_ctx_params },              \
    { OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, (void (*)(void))sig_set_ctx_params }

#define SIG_HASH_FUNCTIONS                                                                   \
    { OSSL_FUNC_SIGNATURE_SIGN_INIT, (void (*)(void))sig_sign_init },                        \
    { OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))sig_sign },                                  \
    { OSSL_FUNC_SIGNATURE_VERIFY_INIT, (void (*)(void))sig_verify_init },                    \
    { OSSL_FUNC_SIGNATURE_VERIFY, (void (*)(void))sig_verify },                              \
    { OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, (void (*)(void))sig_digest_update },           \
    { OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, (void (*)(void))sig_digest_sign_final },        \
    { OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE, (void (*)(void))sig_digest_update },         \
    { OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL, (void (*)(void))sig_digest_verify_final }

const OSSL_DISPATCH primus_rsa_signature_functions[] = {
    { OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))rsa_sig_newctx },
    { OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, (void (*)(void))rsa_sig_gettable_ctx_params },
    { OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))rsa_sig_settable_ctx_params },
    SIG_COMMON_FUNCTIONS,
    SIG_HASH_FUNCTIONS,
    { 0, NULL }
};

const OSSL_DISPATCH primus_ecdsa_signature_functions[] = {
    { OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))ecdsa_sig_newctx },
    { OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, (void (*)(void))ec_sig_gettable_ctx_params },
    { OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))ec_sig_settable_ctx_params },
    SIG_COMMON_FUNCTIONS,
    SIG_HASH_FUNCTIONS,
    { 0, NULL }
};

const OSSL_DISPATCH primus_ed25519_signature_functions[] = {
    { OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))ed25519_sig_newctx },
    { OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS, (void (*)(void))ec_sig_gettable_ctx_params },
    { OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, (void (*)(void))ec_sig_settable_ctx_params },
    SIG_COMMON_FUNCTIONS,
    { 0, NULL }
};
