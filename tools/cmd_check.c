/* primusctl check URI: prove that a key works.  It resolves the key,
 * shows its attributes, warns on weak ones, signs a fresh message in the
 * HSM and verifies the signature in software with the public half the
 * token reports, so the proof does not rest on the token alone. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
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

/* Sign msg in the HSM, verify in software.  Returns NULL on success, else a reason. */
static const char *sign_and_verify(p11_key *key, const unsigned char *msg, size_t msg_len,
                                   const char **mech_name)
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
    if (info->key_type == CKK_EC_EDWARDS) {
        if (p11_key_sign(key, &mech, msg, msg_len, sig, &sig_len) != P11_OK) {
            EVP_PKEY_free(pub);
            return p11_error_message();
        }
    } else if (p11_key_sign(key, &mech, in, in_len, sig, &sig_len) != P11_OK) {
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

int primusctl_check(int argc, char **argv, primusctl_opts *opts)
{
    p11_uri_error uerr;
    p11_uri *uri = NULL;
    p11_core *core;
    p11_key *key = NULL;
    const p11_object_info *info;
    json_t *doc, *warnings = json_array();
    const char *failure, *mech = "";
    char msg[128];
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
    snprintf(msg, sizeof(msg), "primusctl check %lld", (long long)time(NULL));
    failure = sign_and_verify(key, (const unsigned char *)msg, strlen(msg), &mech);
    doc = json_pack("{s:s, s:o, s:o, s:{s:s, s:s, s:s*}, s:b}", "uri", info->uri, "attributes",
                    attributes_json(info), "warnings", warnings, "sign_verify", "mechanism",
                    mech, "result", failure ? "fail" : "pass", "reason", failure, "pass",
                    failure == NULL);
    if (opts->json) {
        primusctl_print_json(doc);
    } else {
        json_t *a = json_object_get(doc, "attributes"), *w;
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
        json_array_foreach(json_object_get(doc, "warnings"), i, w)
            printf("warning: %s\n", json_string_value(w));
        if (failure)
            printf("sign+verify (%s): FAIL: %s\n", mech, failure);
        else
            printf("sign+verify (%s): pass\n", mech);
        json_decref(doc);
    }
    p11_key_unref(key);
    p11_core_free(core);
    return failure ? PRIMUSCTL_FAIL : PRIMUSCTL_OK;
}
