/* primusctl check URI: the onboarding proof that a key works.  It resolves
 * the key, shows its attributes, warns on weak ones, and on EACH member of
 * the key's partition (every HSM of a cluster, one by one, no failover)
 * signs a fresh message and verifies it in software with the public half the
 * token reports (or, for a decrypt-only RSA key, encrypts in software and
 * decrypts in the HSM), so the proof does not rest on the token alone.
 * With an audit log, the evidence names the audit records of those
 * operations (stream and sequence numbers). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "primusctl.h"

/* DER DigestInfo prefix for SHA-256 (RFC 8017 section 9.2 note 1). */
static const unsigned char sha256_prefix[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                                              0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};

static EVP_PKEY *public_half(const p11_object_info *info)
{
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    BIGNUM *n = NULL, *e = NULL;
    const char *type = NULL;

    if (bld == NULL)
        return NULL;
    if (info->key_type == CKK_RSA && info->modulus.len && info->public_exponent.len) {
        n = BN_bin2bn(info->modulus.data, (int)info->modulus.len, NULL);
        e = BN_bin2bn(info->public_exponent.data, (int)info->public_exponent.len, NULL);
        if (n && e && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
            type = "RSA";
    } else if (info->key_type == CKK_EC && info->ec_params.len && info->ec_point.len) {
        const unsigned char *p = info->ec_params.data;
        ASN1_OBJECT *oid = d2i_ASN1_OBJECT(NULL, &p, (long)info->ec_params.len);
        const char *curve = oid ? OBJ_nid2sn(OBJ_obj2nid(oid)) : NULL;
        if (curve && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curve, 0) &&
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, info->ec_point.data,
                                             info->ec_point.len))
            type = "EC";
        ASN1_OBJECT_free(oid);
    } else if (info->key_type == CKK_EC_EDWARDS && info->ec_point.len == 32) {
        pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, info->ec_point.data, 32);
    }
    if (type && (params = OSSL_PARAM_BLD_to_param(bld)) != NULL &&
        (ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL)) != NULL &&
        EVP_PKEY_fromdata_init(ctx) > 0)
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return pkey;
}

/* r||s from PKCS#11 into the DER ECDSA-Sig-Value OpenSSL verifies. */
static int ecdsa_raw_to_der(const unsigned char *raw, size_t len, unsigned char **der, int *der_len)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, (int)(len / 2), NULL), *s = BN_bin2bn(raw + len / 2, (int)(len / 2), NULL);

    *der = NULL;
    if (sig == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(sig, r, s)) {
        ECDSA_SIG_free(sig);
        BN_free(r);
        BN_free(s);
        return 0;
    }
    *der_len = i2d_ECDSA_SIG(sig, der);
    ECDSA_SIG_free(sig);
    return *der_len > 0;
}

/* Sign msg on one member, verify in software.  NULL on success, else a reason. */
static const char *prove_sign(p11_key *key, size_t member, const unsigned char *msg,
                              size_t msg_len, const char **mech_name)
{
    const p11_object_info *info = p11_key_info(key);
    unsigned char hash[32], in[sizeof(sha256_prefix) + 32], sig[1024], *der = NULL;
    size_t in_len = 0, sig_len = sizeof(sig);
    CK_MECHANISM mech = {CKM_RSA_PKCS, NULL, 0};
    EVP_PKEY *pub = public_half(info);
    EVP_PKEY_CTX *vctx = NULL;
    EVP_MD_CTX *mctx = NULL;
    const char *failure = NULL;
    int ok = 0, der_len = 0;

    if (pub == NULL)
        return "the token does not report a usable public half for this key";
    EVP_Digest(msg, msg_len, hash, NULL, EVP_sha256(), NULL);
    switch (info->key_type) {
    case CKK_RSA:
        memcpy(in, sha256_prefix, sizeof(sha256_prefix));
        memcpy(in + sizeof(sha256_prefix), hash, 32);
        in_len = sizeof(in);
        break;
    case CKK_EC:
        mech.mechanism = CKM_ECDSA;
        memcpy(in, hash, 32);
        in_len = 32;
        break;
    case CKK_EC_EDWARDS:
        mech.mechanism = CKM_EDDSA;
        break;
    default:
        EVP_PKEY_free(pub);
        return "this key type cannot sign";
    }
    *mech_name = p11_mechanism_name(mech.mechanism);
    if (info->key_type == CKK_EC_EDWARDS ? p11_key_sign_on_member(key, member, &mech, msg, msg_len, sig, &sig_len) != P11_OK
                                         : p11_key_sign_on_member(key, member, &mech, in, in_len, sig, &sig_len) != P11_OK) {
        EVP_PKEY_free(pub);
        return p11_error_message();
    }
    if (info->key_type == CKK_RSA) {
        ok = (vctx = EVP_PKEY_CTX_new(pub, NULL)) != NULL && EVP_PKEY_verify_init(vctx) > 0 &&
             EVP_PKEY_CTX_set_rsa_padding(vctx, RSA_PKCS1_PADDING) > 0 &&
             EVP_PKEY_CTX_set_signature_md(vctx, EVP_sha256()) > 0 &&
             EVP_PKEY_verify(vctx, sig, sig_len, hash, 32) == 1;
    } else if (info->key_type == CKK_EC) {
        ok = ecdsa_raw_to_der(sig, sig_len, &der, &der_len) &&
             (vctx = EVP_PKEY_CTX_new(pub, NULL)) != NULL && EVP_PKEY_verify_init(vctx) > 0 &&
             EVP_PKEY_verify(vctx, der, (size_t)der_len, hash, 32) == 1;
    } else {
        ok = (mctx = EVP_MD_CTX_new()) != NULL &&
             EVP_DigestVerifyInit(mctx, NULL, NULL, NULL, pub) > 0 &&
             EVP_DigestVerify(mctx, sig, sig_len, msg, msg_len) == 1;
    }
    if (!ok)
        failure = "the signature made in the HSM does not verify with the key's public half";
    OPENSSL_free(der);
    EVP_MD_CTX_free(mctx);
    EVP_PKEY_CTX_free(vctx);
    EVP_PKEY_free(pub);
    return failure;
}

/* Encrypt a fresh secret in software with the public half (RSA PKCS#1
 * v1.5), decrypt it on one member, compare. */
static const char *prove_decrypt(p11_key *key, size_t member, const char **mech_name)
{
    const p11_object_info *info = p11_key_info(key);
    unsigned char secret[32], ct[1024], pt[1024];
    size_t ct_len = sizeof(ct), pt_len = sizeof(pt);
    CK_MECHANISM mech = {CKM_RSA_PKCS, NULL, 0};
    EVP_PKEY *pub = public_half(info);
    EVP_PKEY_CTX *ectx = NULL;
    const char *failure = NULL;
    int ok;

    *mech_name = p11_mechanism_name(mech.mechanism);
    if (pub == NULL || info->key_type != CKK_RSA) {
        EVP_PKEY_free(pub);
        return "the key can neither sign nor (as RSA) decrypt";
    }
    ok = RAND_bytes(secret, sizeof(secret)) == 1 && (ectx = EVP_PKEY_CTX_new(pub, NULL)) != NULL &&
         EVP_PKEY_encrypt_init(ectx) > 0 &&
         EVP_PKEY_CTX_set_rsa_padding(ectx, RSA_PKCS1_PADDING) > 0 &&
         EVP_PKEY_encrypt(ectx, ct, &ct_len, secret, sizeof(secret)) > 0;
    EVP_PKEY_CTX_free(ectx);
    EVP_PKEY_free(pub);
    if (!ok)
        return "encrypting a test secret with the key's public half failed";
    if (p11_key_decrypt_on_member(key, member, &mech, ct, ct_len, pt, &pt_len) != P11_OK)
        return p11_error_message();
    if (pt_len != sizeof(secret) || CRYPTO_memcmp(pt, secret, sizeof(secret)) != 0)
        failure = "the HSM decrypted the test secret to a different value";
    OPENSSL_cleanse(pt, sizeof(pt));
    return failure;
}

static json_t *attributes_json(const p11_object_info *info)
{
    char *id = primusctl_hex(info->id.data, info->id.len);
    json_t *mechs = json_array(), *j;
    size_t i;

    for (i = 0; i < info->n_allowed_mechanisms; i++)
        json_array_append_new(mechs, json_string(p11_mechanism_name(info->allowed_mechanisms[i])));
    j = json_pack("{s:s, s:s, s:s, s:I, s:b, s:b, s:b, s:b, s:b, s:o}", "label",
                  info->label ? info->label : "", "id", id ? id : "", "partition",
                  info->partition, "bits", (json_int_t)info->bits, "sensitive",
                  !!(info->flags & P11_OBJ_SENSITIVE), "extractable",
                  !!(info->flags & P11_OBJ_EXTRACTABLE), "always_sensitive",
                  !!(info->flags & P11_OBJ_ALWAYS_SENSITIVE), "never_extractable",
                  !!(info->flags & P11_OBJ_NEVER_EXTRACTABLE), "always_authenticate",
                  !!(info->flags & P11_OBJ_ALWAYS_AUTHENTICATE), "allowed_mechanisms", mechs);
    free(id);
    return j;
}

/* The proof on one member: an object describing it, and whether it passed. */
static json_t *prove_on_member(p11_key *key, size_t i, int can_sign, const char *msg,
                               int *passed)
{
    p11_member_view mv;
    const char *mech = "", *failure;
    unsigned long long seq_before = p11_audit_last_seq(), seq;
    json_t *j;

    p11_key_member_describe(key, i, &mv);
    failure = can_sign ? prove_sign(key, i, (const unsigned char *)msg, strlen(msg), &mech)
                       : prove_decrypt(key, i, &mech);
    seq = p11_audit_last_seq();
    *passed = failure == NULL;
    j = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}", "member", mv.name, "serial", mv.serial,
                  "slot", (json_int_t)mv.slot, "operation", can_sign ? "sign+verify" : "encrypt+decrypt",
                  "mechanism", mech, "result", failure ? "fail" : "pass");
    if (failure)
        json_object_set_new(j, "reason", json_string(failure));
    if (seq != seq_before)
        json_object_set_new(j, "audit_seq", json_integer((json_int_t)seq));
    return j;
}

static void print_human(const json_t *doc, const p11_object_info *info)
{
    json_t *a = json_object_get(doc, "attributes"), *w, *m, *mechs;
    size_t i;

    printf("key        %s\n", info->uri);
    printf("label      %s\nid         %s\nbits       %lld\n",
           json_string_value(json_object_get(a, "label")),
           json_string_value(json_object_get(a, "id")),
           (long long)json_integer_value(json_object_get(a, "bits")));
    printf("sensitive %s, extractable %s, always-sensitive %s, never-extractable %s, "
           "always-authenticate %s\n",
           info->flags & P11_OBJ_SENSITIVE ? "yes" : "no",
           info->flags & P11_OBJ_EXTRACTABLE ? "yes" : "no",
           info->flags & P11_OBJ_ALWAYS_SENSITIVE ? "yes" : "no",
           info->flags & P11_OBJ_NEVER_EXTRACTABLE ? "yes" : "no",
           info->flags & P11_OBJ_ALWAYS_AUTHENTICATE ? "yes" : "no");
    mechs = json_object_get(a, "allowed_mechanisms");
    printf("allowed mechanisms ");
    if (json_array_size(mechs) == 0)
        printf("(any)");
    json_array_foreach(mechs, i, m)
        printf("%s%s", i ? ", " : "", json_string_value(m));
    printf("\n");
    json_array_foreach(json_object_get(doc, "warnings"), i, w)
        printf("warning: %s\n", json_string_value(w));
    json_array_foreach(json_object_get(doc, "members"), i, m) {
        json_t *seq = json_object_get(m, "audit_seq");
        const char *reason = json_string_value(json_object_get(m, "reason"));
        printf("member %s (serial %s): %s (%s): %s%s%s", json_string_value(json_object_get(m, "member")),
               json_string_value(json_object_get(m, "serial")),
               json_string_value(json_object_get(m, "operation")),
               json_string_value(json_object_get(m, "mechanism")),
               reason ? "FAIL: " : "pass", reason ? reason : "", "");
        if (seq)
            printf(" [audit seq %lld]", (long long)json_integer_value(seq));
        printf("\n");
    }
    if (json_object_get(doc, "audit"))
        printf("audit stream %s in %s\n",
               json_string_value(json_object_get(json_object_get(doc, "audit"), "stream")),
               json_string_value(json_object_get(json_object_get(doc, "audit"), "log")));
    printf("result: %s\n", json_is_true(json_object_get(doc, "pass")) ? "pass" : "FAIL");
}

int primusctl_check(int argc, char **argv, primusctl_opts *opts)
{
    p11_uri_error uerr;
    p11_uri *uri = NULL;
    p11_core *core;
    p11_key *key = NULL;
    const p11_object_info *info;
    json_t *doc, *members, *warnings = json_array();
    char msg[128], when[32];
    time_t now = time(NULL);
    size_t i, n;
    int all_pass = 1, can_sign;
    p11_status st;
    int rc;

    if (argc != 2) {
        fprintf(stderr, "usage: primusctl check [--json] 'pkcs11:token=...;object=...'\n");
        json_decref(warnings);
        return PRIMUSCTL_USAGE;
    }
    if (p11_uri_parse(argv[1], &uri, &uerr) != P11_URI_OK) {
        fprintf(stderr, "primusctl: invalid pkcs11 URI: %s\n", uerr.message);
        json_decref(warnings);
        return PRIMUSCTL_FAIL;
    }
    /* check proves a private key; any other type= would be ignored */
    if (p11_uri_get_type(uri) != P11_URI_TYPE_NONE && p11_uri_get_type(uri) != P11_URI_TYPE_PRIVATE) {
        fprintf(stderr, "primusctl: check needs a private key, but the URI names objects of "
                        "type=%s; use type=private or leave type= out\n",
                p11_uri_type_name(p11_uri_get_type(uri)));
        p11_uri_free(uri);
        json_decref(warnings);
        return PRIMUSCTL_FAIL;
    }
    core = primusctl_core(opts);
    if (core == NULL) {
        p11_uri_free(uri);
        json_decref(warnings);
        return PRIMUSCTL_CONFIG;
    }
    st = p11_key_open_uri(core, uri, CKO_PRIVATE_KEY, &key);
    p11_uri_free(uri);
    if (st != P11_OK) {
        rc = primusctl_fail(st, "cannot use the key");
        p11_core_free(core);
        json_decref(warnings);
        return rc;
    }
    info = p11_key_info(key);
    if (info->flags & P11_OBJ_EXTRACTABLE)
        json_array_append_new(warnings, json_string("the private key is extractable (CKA_EXTRACTABLE=true): it can leave the HSM"));
    if (!(info->flags & P11_OBJ_SENSITIVE))
        json_array_append_new(warnings, json_string("the private key is not sensitive (CKA_SENSITIVE=false): its value can be read"));
    if ((info->flags & P11_OBJ_SENSITIVE) && !(info->flags & P11_OBJ_ALWAYS_SENSITIVE))
        json_array_append_new(warnings, json_string("the private key was not always sensitive (CKA_ALWAYS_SENSITIVE=false): it may have been read before it was protected"));
    if (!(info->flags & P11_OBJ_EXTRACTABLE) && !(info->flags & P11_OBJ_NEVER_EXTRACTABLE))
        json_array_append_new(warnings, json_string("the private key was extractable once (CKA_NEVER_EXTRACTABLE=false): copies may exist outside the HSM"));
    /* A decrypt-only RSA key is proven by decryption; everything else signs. */
    can_sign = (info->flags & P11_OBJ_CAN_SIGN) || !(info->flags & P11_OBJ_CAN_DECRYPT);
    snprintf(msg, sizeof(msg), "primusctl check %lld", (long long)now);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    members = json_array();
    n = p11_key_member_count(key);
    for (i = 0; i < n; i++) {
        int passed;
        json_array_append_new(members, prove_on_member(key, i, can_sign, msg, &passed));
        all_pass &= passed;
    }
    doc = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:b}", "time", when, "uri", info->uri,
                    "partition", info->partition, "attributes", attributes_json(info),
                    "warnings", warnings, "members", members, "pass", all_pass && n > 0);
    if (p11_audit_stream_id(core)[0]) {
        /* The evidence points at records that are on disk, not in a queue. */
        p11_status ast = p11_audit_flush(core);
        json_object_set_new(doc, "audit",
                            json_pack("{s:s?, s:s, s:b}", "log", opts->audit_log, "stream",
                                      p11_audit_stream_id(core), "written", ast == P11_OK));
        if (ast != P11_OK) {
            all_pass = 0;
            json_object_set_new(doc, "pass", json_false());
        }
    }
    if (opts->json)
        primusctl_print_json(doc);
    else {
        print_human(doc, info);
        json_decref(doc);
    }
    p11_key_unref(key);
    p11_core_free(core);
    return all_pass && n > 0 ? PRIMUSCTL_OK : PRIMUSCTL_FAIL;
}
