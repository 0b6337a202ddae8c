/*
 * key.c: the provider's key object and the key management functions the
 * RSA, RSA-PSS, EC and Ed25519 key managers share.
 *
 * A primus_key is an HSM key (a p11core reference plus its public half as a
 * software EVP_PKEY in the provider's own library context) or a software key
 * (an EVP_PKEY only).  See provider.h for why software keys exist.
 *
 * Export rule: the public half and domain parameters of any key can be
 * exported; a request that includes the private key of an HSM key fails
 * quietly (returns 0 without raising).  OpenSSL 3.0 relies on that failure:
 * it first tries to export a key into the provider of whichever signature
 * (cipher, exchange) implementation it fetched, and only when that fails
 * does it use this provider's own implementation.
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_object.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "provider.h"

static const char primus_ref_magic[8] = { 'P', 'R', 'I', 'M', 'K', 'E', 'Y', '1' };

/* DER of the Ed25519 OID 1.3.101.112 and of the PrintableString
 * "edwards25519" some tokens use in CKA_EC_PARAMS. */
static const unsigned char ed25519_oid_der[] = { 0x06, 0x03, 0x2B, 0x65, 0x70 };
static const unsigned char ed25519_str_der[] = { 0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd', 's',
                                                 '2', '5', '5', '1', '9' };

const char *primus_key_type_name(primus_key_type t)
{
    switch (t) {
    case PRIMUS_KEY_RSA: return "RSA";
    case PRIMUS_KEY_RSA_PSS: return "RSA-PSS";
    case PRIMUS_KEY_EC: return "EC";
    case PRIMUS_KEY_ED25519: return "ED25519";
    default: return "unknown";
    }
}

static int is_ed25519_params(const p11_bytes *ec_params)
{
    if (ec_params == NULL || ec_params->data == NULL)
        return 0;
    if (ec_params->len == sizeof(ed25519_oid_der)
        && memcmp(ec_params->data, ed25519_oid_der, sizeof(ed25519_oid_der)) == 0)
        return 1;
    if (ec_params->len == sizeof(ed25519_str_der)
        && memcmp(ec_params->data, ed25519_str_der, sizeof(ed25519_str_der)) == 0)
        return 1;
    return 0;
}

primus_key_type primus_key_type_from_ck(CK_KEY_TYPE kt, const p11_bytes *ec_params)
{
    switch (kt) {
    case CKK_RSA:
        return PRIMUS_KEY_RSA;
    case CKK_EC:
        return PRIMUS_KEY_EC;
    case CKK_EC_EDWARDS:
        /* Ed448 is not handled; an Edwards key without params is taken as
         * Ed25519 (the only curve most tokens have). */
        if (ec_params == NULL || ec_params->len == 0 || is_ed25519_params(ec_params))
            return PRIMUS_KEY_ED25519;
        return PRIMUS_KEY_NONE;
    default:
        return PRIMUS_KEY_NONE;
    }
}

/* ---- life cycle ------------------------------------------------------------- */

primus_key *primus_key_new(primus_prov *prov, primus_key_type type)
{
    primus_key *key = OPENSSL_zalloc(sizeof(*key));

    if (key == NULL) {
        PRIMUS_RAISE(prov, PRIMUS_R_MEMORY, "no memory for a key object");
        return NULL;
    }
    key->prov = prov;
    key->refcnt = 1;
    key->type = type;
    return key;
}

primus_key *primus_key_up_ref(primus_key *key)
{
    if (key != NULL)
        __atomic_add_fetch(&key->refcnt, 1, __ATOMIC_SEQ_CST);
    return key;
}

void primus_key_free(primus_key *key)
{
    if (key == NULL)
        return;
    if (__atomic_sub_fetch(&key->refcnt, 1, __ATOMIC_SEQ_CST) > 0)
        return;
    if (key->p11 != NULL)
        p11_key_unref(key->p11);
    EVP_PKEY_free(key->sw);
    OPENSSL_free(key);
}

const p11_object_info *primus_key_info(const primus_key *key)
{
    return key != NULL && key->p11 != NULL ? p11_key_info(key->p11) : NULL;
}

const char *primus_key_uri(const primus_key *key)
{
    const p11_object_info *info = primus_key_info(key);

    return info != NULL ? info->uri : NULL;
}

int primus_key_has_private(const primus_key *key)
{
    return key != NULL && (key->hsm_private || (key->p11 == NULL && key->sw_private));
}

/* Does the token give what primus_pub_from_info needs? */
static int info_has_public(const p11_object_info *info, primus_key_type type)
{
    switch (type) {
    case PRIMUS_KEY_RSA:
    case PRIMUS_KEY_RSA_PSS:
        return info->modulus.len > 0 && info->public_exponent.len > 0;
    case PRIMUS_KEY_EC:
        return info->ec_point.len > 0;
    case PRIMUS_KEY_ED25519:
        return info->ec_point.len == 32;
    default:
        return 0;
    }
}

int primus_key_has_public(const primus_key *key)
{
    return key != NULL && key->type != PRIMUS_KEY_NONE
           && (key->sw != NULL
               || (key->p11 != NULL && info_has_public(p11_key_info(key->p11), key->type)));
}

EVP_PKEY *primus_key_public(const primus_key *key)
{
    primus_key *k = (primus_key *)key; /* the cache, not the key, changes */
    EVP_PKEY *pk, *none = NULL;

    if (key == NULL)
        return NULL;
    pk = k->sw;
    if (pk != NULL || k->p11 == NULL || !info_has_public(p11_key_info(k->p11), k->type))
        return pk;
    primus_set_error_mark(k->prov);
    pk = primus_pub_from_info(k->prov, p11_key_info(k->p11), k->type);
    primus_pop_error_to_mark(k->prov);
    if (pk != NULL && !atomic_compare_exchange_strong(&k->sw, &none, pk)) {
        EVP_PKEY_free(pk); /* another thread built it first */
        pk = none;
    }
    return pk;
}

int primus_key_bits(const primus_key *key)
{
    const p11_object_info *info;

    if (key->sw != NULL)
        return EVP_PKEY_get_bits(key->sw);
    info = primus_key_info(key);
    if (info == NULL)
        return 0;
    if (key->type == PRIMUS_KEY_ED25519)
        return 256; /* as OpenSSL 3.0 reports Ed25519 keys (ED25519_BITS) */
    if (info->bits > 0)
        return (int)info->bits;
    /* a curve the core does not know the size of */
    return primus_key_public(key) != NULL ? EVP_PKEY_get_bits(key->sw) : 0;
}

/* As OpenSSL's default provider rates keys, so that a key answered from its
 * attributes compares the same in security level checks as one answered
 * from its public half; -1 where only the public half can say (RSA moduli
 * of other sizes: OpenSSL computes those with SP 800-56B's formula). */
static int security_bits(primus_key_type type, int bits)
{
    static const int rsa[][2] = {
        {2048, 112}, {3072, 128}, {4096, 152}, {6144, 176}, {7680, 192}, {8192, 200}, {15360, 256},
    };
    size_t i;

    switch (type) {
    case PRIMUS_KEY_RSA:
    case PRIMUS_KEY_RSA_PSS:
        for (i = 0; i < sizeof(rsa) / sizeof(rsa[0]); i++)
            if (rsa[i][0] == bits)
                return rsa[i][1];
        return -1;
    case PRIMUS_KEY_EC: /* SP 800-57 part 1, table 2 */
        return bits >= 512 ? 256 : bits >= 384 ? 192 : bits >= 256 ? 128 : bits >= 224 ? 112
               : bits >= 160 ? 80 : bits / 2;
    case PRIMUS_KEY_ED25519:
        return 128;
    default:
        return -1;
    }
}

/* The DER ECDSA signature of most bytes on a curve whose order has `bits`
 * bits: SEQUENCE { INTEGER r, INTEGER s } with r = s = the order, as
 * OpenSSL's ECDSA_size counts.  An integer needs a leading 0x00 when the
 * order's top bit is set, which is when bits is a multiple of 8. */
static size_t ecdsa_der_max(size_t bits)
{
    size_t ilen = (bits + 7) / 8 + (bits % 8 == 0 ? 1 : 0);
    size_t ihdr = ilen < 128 ? 2 : 3;
    size_t seq = 2 * (ihdr + ilen);

    return seq + (seq < 128 ? 2 : 3);
}

size_t primus_key_max_size(const primus_key *key)
{
    int bits;

    if (key->sw != NULL) {
        int sz = EVP_PKEY_get_size(key->sw);

        if (sz > 0)
            return (size_t)sz;
    }
    bits = primus_key_bits(key);
    switch (key->type) {
    case PRIMUS_KEY_RSA:
    case PRIMUS_KEY_RSA_PSS:
        return ((size_t)bits + 7) / 8;
    case PRIMUS_KEY_EC:
        return ecdsa_der_max((size_t)bits);
    case PRIMUS_KEY_ED25519:
        return 64;
    default:
        return 0;
    }
}

/* ---- the public half from token attributes -------------------------------- */

static EVP_PKEY *pkey_fromdata(primus_prov *prov, const char *name, int selection,
                               OSSL_PARAM *params)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(prov->libctx, name, NULL);
    EVP_PKEY *pk = NULL;

    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0
        || EVP_PKEY_fromdata(ctx, &pk, selection, params) <= 0)
        pk = NULL;
    EVP_PKEY_CTX_free(ctx);
    return pk;
}

/* The curve's short name ("prime256v1", "secp384r1") from DER params. */
static const char *ec_group_from_params(const p11_bytes *ec_params)
{
    const unsigned char *p;
    ASN1_OBJECT *obj;
    int nid;

    if (ec_params == NULL || ec_params->data == NULL || ec_params->len < 2
        || ec_params->data[0] != V_ASN1_OBJECT)
        return NULL;
    p = ec_params->data;
    obj = d2i_ASN1_OBJECT(NULL, &p, (long)ec_params->len);
    if (obj == NULL)
        return NULL;
    nid = OBJ_obj2nid(obj);
    ASN1_OBJECT_free(obj);
    if (nid == NID_undef)
        return NULL;
    return OBJ_nid2sn(nid);
}

EVP_PKEY *primus_pub_from_info(primus_prov *prov, const p11_object_info *info,
                               primus_key_type type)
{
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    BIGNUM *n = NULL, *e = NULL;
    EVP_PKEY *pk = NULL;

    switch (type) {
    case PRIMUS_KEY_RSA:
    case PRIMUS_KEY_RSA_PSS:
        if (info->modulus.len == 0 || info->public_exponent.len == 0)
            return NULL;
        n = BN_bin2bn(info->modulus.data, (int)info->modulus.len, NULL);
        e = BN_bin2bn(info->public_exponent.data, (int)info->public_exponent.len, NULL);
        bld = OSSL_PARAM_BLD_new();
        if (n == NULL || e == NULL || bld == NULL
            || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n)
            || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e)
            || (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
            break;
        pk = pkey_fromdata(prov, primus_key_type_name(type), EVP_PKEY_PUBLIC_KEY, params);
        break;
    case PRIMUS_KEY_EC: {
        const char *group = ec_group_from_params(&info->ec_params);

        if (group == NULL || info->ec_point.len == 0)
            return NULL;
        bld = OSSL_PARAM_BLD_new();
        if (bld == NULL
            || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0)
            || !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
                                                 info->ec_point.data, info->ec_point.len)
            || (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
            break;
        pk = pkey_fromdata(prov, "EC", EVP_PKEY_PUBLIC_KEY, params);
        break;
    }
    case PRIMUS_KEY_ED25519:
        if (info->ec_point.len != 32)
            return NULL;
        pk = EVP_PKEY_new_raw_public_key_ex(prov->libctx, "ED25519", NULL, info->ec_point.data,
                                            info->ec_point.len);
        break;
    default:
        break;
    }
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return pk;
}

primus_key *primus_key_from_p11(primus_prov *prov, p11_key *p11, int public_view)
{
    const p11_object_info *info = p11_key_info(p11);
    primus_key_type type;
    primus_key *key;

    type = primus_key_type_from_ck(info->key_type, &info->ec_params);
    if (type == PRIMUS_KEY_NONE) {
        PRIMUS_RAISE(prov, PRIMUS_R_WRONG_KEY_TYPE,
                     "%s is a key of PKCS#11 type 0x%lx, which the provider does not handle "
                     "(RSA, EC on named curves and Ed25519 are)",
                     info->uri != NULL ? info->uri : "the key", (unsigned long)info->key_type);
        p11_key_unref(p11);
        return NULL;
    }
    if (type == PRIMUS_KEY_EC && info->ec_params.len > 0
        && ec_group_from_params(&info->ec_params) == NULL) {
        PRIMUS_RAISE(prov, PRIMUS_R_UNSUPPORTED_CURVE,
                     "%s uses explicit or unknown EC parameters; use a key on a named curve "
                     "(P-256, P-384, P-521)", info->uri != NULL ? info->uri : "the key");
        p11_key_unref(p11);
        return NULL;
    }
    key = primus_key_new(prov, type);
    if (key == NULL) {
        p11_key_unref(p11);
        return NULL;
    }
    key->p11 = p11;
    key->hsm_private = (info->cls == CKO_PRIVATE_KEY) && !public_view;
    /* A private key's public half is built when first needed (provider.h). */
    if (!key->hsm_private)
        key->sw = primus_pub_from_info(prov, info, type);
    if (key->sw == NULL && !key->hsm_private) {
        PRIMUS_RAISE(prov, PRIMUS_R_NO_PUBLIC_KEY,
                     "the token gave no usable public key material for %s",
                     info->uri != NULL ? info->uri : "the key");
        primus_key_free(key);
        return NULL;
    }
    /* A failed software build of the public half is not an error for a
     * private key (signing and decryption still work). */
    ERR_clear_error();
    return key;
}

/* ---- references ---------------------------------------------------------------- */

void primus_key_ref_init(primus_key_ref *ref, primus_key *key)
{
    memcpy(ref->magic, primus_ref_magic, sizeof(ref->magic));
    ref->key = key;
}

primus_key *primus_key_ref_get(const void *reference, size_t reference_sz)
{
    const primus_key_ref *ref = reference;

    if (reference == NULL || reference_sz != sizeof(primus_key_ref)
        || memcmp(ref->magic, primus_ref_magic, sizeof(ref->magic)) != 0)
        return NULL;
    return ref->key;
}

/* ---- looking keys up by URI --------------------------------------------------- */

p11_uri *primus_parse_uri(const primus_prov *prov, const char *text)
{
    p11_uri *uri = NULL;
    p11_uri_error err;

    memset(&err, 0, sizeof(err));
    if (p11_uri_parse(text, &uri, &err) != P11_URI_OK || uri == NULL) {
        PRIMUS_RAISE(prov, PRIMUS_R_URI, "%s%s%s",
                     err.message[0] != '\0' ? err.message : "the URI could not be parsed",
                     err.attribute[0] != '\0' ? "; attribute: " : "", err.attribute);
        return NULL;
    }
    return uri;
}

p11_uri *primus_uri_with_prompted_pin(const p11_uri *uri, OSSL_PASSPHRASE_CALLBACK *pw_cb,
                                      void *pw_cbarg)
{
    char pin[256];
    size_t pin_len = 0;
    char info[160];
    const char *token;
    OSSL_PARAM params[2];
    p11_uri *copy = NULL;

    if (pw_cb == NULL)
        return NULL;
    token = p11_uri_get(uri, P11_URI_TOKEN, NULL);
    snprintf(info, sizeof(info), "PKCS#11 token %s%s%s", token != NULL ? "\"" : "",
             token != NULL ? token : "PIN", token != NULL ? "\" user PIN" : "");
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PASSPHRASE_PARAM_INFO, info, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (!pw_cb(pin, sizeof(pin) - 1, &pin_len, params, pw_cbarg) || pin_len == 0) {
        OPENSSL_cleanse(pin, sizeof(pin));
        return NULL;
    }
    copy = p11_uri_dup(uri);
    if (copy != NULL && p11_uri_set(copy, P11_URI_PIN_VALUE, pin, pin_len) != P11_URI_OK) {
        p11_uri_free(copy);
        copy = NULL;
    }
    OPENSSL_cleanse(pin, sizeof(pin));
    return copy;
}

static int pin_error_is_wrong_pin(void)
{
    CK_RV rv = p11_error_rv();

    return rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED || rv == CKR_PIN_EXPIRED
           || rv == CKR_PIN_LEN_RANGE || rv == CKR_PIN_INVALID;
}

p11_status primus_find(primus_prov *prov, const p11_uri *uri, CK_OBJECT_CLASS cls,
                       OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg, p11_object_list *out,
                       p11_uri **prompted)
{
    p11_status st;
    const p11_uri *use = *prompted != NULL ? *prompted : uri;

    memset(out, 0, sizeof(*out));
    /* A PKCS#11 module running OpenSSL in-process (SoftHSM) may leave
     * errors of its own in the queue while it initializes; p11core raises
     * none, so whatever appears during the call is not ours to report. */
    primus_set_error_mark(prov);
    st = p11_find_objects(prov->core, use, cls, out);
    primus_pop_error_to_mark(prov);
    if (st == P11_ERR_PIN && *prompted == NULL && pw_cb != NULL
        && !p11_uri_has(uri, P11_URI_PIN_VALUE) && !p11_uri_has(uri, P11_URI_PIN_SOURCE)
        && !pin_error_is_wrong_pin()
        /* a configured PIN source that cannot be used (pin file missing,
         * empty, readable by others) is reported, not bypassed by a prompt */
        && p11_error_rv() != CKR_OK) {
        p11_uri *copy = primus_uri_with_prompted_pin(uri, pw_cb, pw_cbarg);

        if (copy != NULL) {
            p11_error_clear();
            p11_object_list_clear(out);
            memset(out, 0, sizeof(*out));
            st = p11_find_objects(prov->core, copy, cls, out);
            *prompted = copy;
        }
    }
    return st;
}

static const char *class_noun(CK_OBJECT_CLASS cls)
{
    switch (cls) {
    case CKO_PRIVATE_KEY: return "private key";
    case CKO_PUBLIC_KEY: return "public key";
    case CKO_CERTIFICATE: return "certificate";
    case CKO_SECRET_KEY: return "secret key";
    case CKO_DATA: return "data object";
    default: return "object";
    }
}

/* Append "uri, uri, ..." (at most a few) to buf. */
static void list_uris(char *buf, size_t size, const p11_object_list *list, size_t max)
{
    size_t i, used = strlen(buf);

    for (i = 0; i < list->count && i < max && used + 4 < size; i++) {
        int n = snprintf(buf + used, size - used, "%s%s", i > 0 ? ", " : "",
                         list->items[i].uri != NULL ? list->items[i].uri : "(no URI)");
        if (n < 0)
            break;
        used += (size_t)n;
        if (used >= size)
            used = size - 1;
    }
    if (list->count > max && used + 8 < size)
        snprintf(buf + used, size - used, ", ... (%zu in all)", list->count);
}

/* Explain why nothing of class cls matched: what did match, if anything. */
static void raise_not_found(primus_prov *prov, const p11_uri *uri, const char *uri_text,
                            CK_OBJECT_CLASS cls, primus_key_type want, size_t n_wrong_type)
{
    char hint[1024];
    p11_object_list other;
    p11_uri *any = p11_uri_dup(uri);

    hint[0] = '\0';
    if (n_wrong_type > 0) {
        PRIMUS_RAISE(prov, PRIMUS_R_WRONG_KEY_TYPE,
                     "%s names a %s that is not a%s %s key, which this operation needs",
                     uri_text, class_noun(cls), want == PRIMUS_KEY_RSA || want == PRIMUS_KEY_EC
                                                        ? "n" : "",
                     primus_key_type_name(want));
        p11_uri_free(any);
        return;
    }
    /* Look for objects of other classes under the same URI without type=. */
    memset(&other, 0, sizeof(other));
    if (any != NULL && p11_uri_set(any, P11_URI_TYPE, NULL, 0) == P11_URI_OK
        && p11_find_objects(prov->core, any, P11_CLASS_FROM_URI, &other) == P11_OK
        && other.count > 0) {
        size_t i, n;

        /* only the objects of other kinds (one of the asked kind may have
         * appeared since, on a member that was not searched then) */
        for (i = 0, n = 0; i < other.count; i++) {
            if (other.items[i].cls != cls)
                other.items[n++] = other.items[i];
            else
                p11_object_info_clear(&other.items[i]);
        }
        other.count = n;
        if (n > 0) {
            snprintf(hint, sizeof(hint), "; it names %zu object%s of another kind (%s): ", n,
                     n == 1 ? "" : "s", class_noun(other.items[0].cls));
            list_uris(hint, sizeof(hint), &other, 4);
            PRIMUS_RAISE(prov, PRIMUS_R_WRONG_OBJECT_TYPE,
                         "no %s matches %s%s; give a URI naming a %s (type=%s)",
                         class_noun(cls), uri_text, hint, class_noun(cls),
                         cls == CKO_PRIVATE_KEY ? "private"
                         : cls == CKO_PUBLIC_KEY ? "public" : "cert");
            p11_object_list_clear(&other);
            p11_uri_free(any);
            p11_error_clear();
            return;
        }
    }
    p11_object_list_clear(&other);
    p11_uri_free(any);
    p11_error_clear();
    PRIMUS_RAISE(prov, PRIMUS_R_NOT_FOUND,
                 "no %s matches %s; list the token's objects with `primusctl list` or "
                 "`pkcs11-tool --list-objects` and check token=, object= and id=",
                 class_noun(cls), uri_text);
}

static void raise_ambiguous(primus_prov *prov, const char *uri_text, CK_OBJECT_CLASS cls,
                            const p11_object_list *list)
{
    char names[1536];

    names[0] = '\0';
    list_uris(names, sizeof(names), list, 8);
    PRIMUS_RAISE(prov, PRIMUS_R_AMBIGUOUS,
                 "%s matches %zu %ss: %s; add object= or id= (and token=) to name exactly one",
                 uri_text, list->count, class_noun(cls), names);
}

/* Keep only the items of the wanted key type; returns how many were dropped. */
static size_t filter_key_type(p11_object_list *list, primus_key_type want)
{
    size_t i, j, dropped = 0;

    if (want == PRIMUS_KEY_NONE)
        return 0;
    for (i = 0, j = 0; i < list->count; i++) {
        primus_key_type t = primus_key_type_from_ck(list->items[i].key_type,
                                                    &list->items[i].ec_params);
        int ok = t == want;

        if (ok) {
            if (i != j) {
                p11_object_info tmp = list->items[j];

                list->items[j] = list->items[i];
                list->items[i] = tmp;
            }
            j++;
        } else {
            dropped++;
        }
    }
    /* The dropped items now sit in [j, count): clear them. */
    for (i = j; i < list->count; i++)
        p11_object_info_clear(&list->items[i]);
    list->count = j;
    return dropped;
}

primus_key *primus_open_key_uri(primus_prov *prov, const char *uri_text, CK_OBJECT_CLASS cls,
                                primus_key_type want, int *wrong_type,
                                OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    p11_uri *uri, *prompted = NULL;
    p11_object_list list;
    p11_status st;
    p11_key *p11 = NULL;
    primus_key *key = NULL;
    int public_view = 0;
    size_t dropped;
    char *shown = NULL;
    p11_uri_type utype;

    if (wrong_type != NULL)
        *wrong_type = 0;
    uri = primus_parse_uri(prov, uri_text);
    if (uri == NULL)
        return NULL;
    shown = p11_uri_format(uri, P11_URI_FORMAT_OMIT_PIN);

    utype = p11_uri_get_type(uri);
    if (utype == P11_URI_TYPE_PRIVATE && cls == CKO_PUBLIC_KEY) {
        /* the public half of the named private key */
        cls = CKO_PRIVATE_KEY;
        public_view = 1;
    } else if (utype != P11_URI_TYPE_NONE
               && !((utype == P11_URI_TYPE_PRIVATE && cls == CKO_PRIVATE_KEY)
                    || (utype == P11_URI_TYPE_PUBLIC && cls == CKO_PUBLIC_KEY))) {
        /* "openssl pkey -in URI;type=public" lands here: the app asked for a
         * private key because -pubin was left out, so say that too */
        PRIMUS_RAISE(prov, PRIMUS_R_WRONG_OBJECT_TYPE,
                     "%s names objects of type=%s but a %s is needed here; use type=%s%s",
                     shown != NULL ? shown : uri_text, p11_uri_type_name(utype),
                     class_noun(cls), cls == CKO_PRIVATE_KEY ? "private" : "public",
                     utype == P11_URI_TYPE_PUBLIC
                         ? ", or read it as a public key (openssl pkey/pkeyutl: -pubin)" : "");
        goto end;
    }

    st = primus_find(prov, uri, cls, pw_cb, pw_cbarg, &list, &prompted);
    if (st != P11_OK) {
        if (st != P11_ERR_URI)
            p11_audit_lookup_failed(prov->core, uri, p11_error_message());
        PRIMUS_RAISE_P11(prov, st, shown != NULL ? shown : uri_text);
        goto end;
    }
    if (list.count == 0 && cls == CKO_PUBLIC_KEY && utype == P11_URI_TYPE_NONE) {
        /* No public key object: the public half of a private key will do. */
        p11_object_list_clear(&list);
        st = primus_find(prov, uri, CKO_PRIVATE_KEY, pw_cb, pw_cbarg, &list, &prompted);
        if (st != P11_OK) {
            PRIMUS_RAISE_P11(prov, st, shown != NULL ? shown : uri_text);
            goto end;
        }
        public_view = 1;
        if (list.count == 0)
            cls = CKO_PUBLIC_KEY;
        else
            cls = CKO_PRIVATE_KEY;
    }
    dropped = filter_key_type(&list, want);
    if (list.count == 0) {
        if (dropped > 0 && wrong_type != NULL) {
            *wrong_type = 1; /* the caller decides (decoders try other types) */
        } else {
            p11_audit_lookup_failed(prov->core, uri, "no object of the wanted kind matches");
            raise_not_found(prov, uri, shown != NULL ? shown : uri_text,
                            public_view ? CKO_PUBLIC_KEY : cls, want, dropped);
        }
        p11_object_list_clear(&list);
        goto end;
    }
    if (list.count > 1) {
        p11_audit_lookup_failed(prov->core, uri, "the URI matches several objects");
        raise_ambiguous(prov, shown != NULL ? shown : uri_text, cls, &list);
        p11_object_list_clear(&list);
        goto end;
    }
    st = p11_key_open(prov->core, &list.items[0], prompted != NULL ? prompted : uri, &p11);
    p11_object_list_clear(&list);
    if (st != P11_OK) {
        PRIMUS_RAISE_P11(prov, st, shown != NULL ? shown : uri_text);
        goto end;
    }
    key = primus_key_from_p11(prov, p11, public_view);

end:
    p11_uri_free(prompted);
    p11_uri_free(uri);
    free(shown);
    return key;
}

/* ---- key management ------------------------------------------------------------- */

void *primus_km_new(primus_prov *prov, primus_key_type type)
{
    return primus_key_new(prov, type);
}

void primus_km_free(void *keydata)
{
    primus_key_free(keydata);
}

void *primus_km_load(const void *reference, size_t reference_sz, primus_key_type type)
{
    primus_key *key = primus_key_ref_get(reference, reference_sz);

    if (key == NULL)
        return NULL;
    if (key->type != type)
        return NULL;
    return primus_key_up_ref(key);
}

int primus_km_has(const void *keydata, int selection)
{
    const primus_key *key = keydata;
    int ok = 1;

    if (key == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) == 0
        && (selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS) == 0)
        return 1;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
        ok = ok && primus_key_has_private(key);
    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0)
        ok = ok && (key->sw != NULL || key->p11 != NULL);
    if ((selection & OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS) != 0 && key->type == PRIMUS_KEY_EC)
        ok = ok && (key->sw != NULL || key->p11 != NULL);
    return ok;
}

int primus_km_match(const void *keydata1, const void *keydata2, int selection)
{
    const primus_key *k1 = keydata1, *k2 = keydata2;

    if (k1 == NULL || k2 == NULL)
        return 0;
    if (k1 == k2)
        return 1;
    if (primus_key_public(k1) != NULL && primus_key_public(k2) != NULL) {
        if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0)
            return EVP_PKEY_eq(k1->sw, k2->sw) == 1;
        if ((selection & OSSL_KEYMGMT_SELECT_ALL_PARAMETERS) != 0)
            return EVP_PKEY_parameters_eq(k1->sw, k2->sw) == 1;
        return 1;
    }
    /* Without public halves only the same HSM object matches. */
    if (k1->p11 != NULL && k2->p11 != NULL) {
        const p11_object_info *i1 = p11_key_info(k1->p11), *i2 = p11_key_info(k2->p11);

        return i1->uri != NULL && i2->uri != NULL && strcmp(i1->uri, i2->uri) == 0;
    }
    return 0;
}

static int evp_selection(int selection, int with_private)
{
    if (with_private && (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
        return EVP_PKEY_KEYPAIR;
    if ((selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0)
        return EVP_PKEY_PUBLIC_KEY;
    return EVP_PKEY_KEY_PARAMETERS;
}

static int params_have_private(primus_key_type type, const OSSL_PARAM params[])
{
    if (params == NULL)
        return 0;
    switch (type) {
    case PRIMUS_KEY_RSA:
    case PRIMUS_KEY_RSA_PSS:
        return OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_D) != NULL;
    default:
        return OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PRIV_KEY) != NULL;
    }
}

int primus_km_import(void *keydata, int selection, const OSSL_PARAM params[])
{
    primus_key *key = keydata;
    int with_private;
    EVP_PKEY *pk;

    if (key == NULL || key->p11 != NULL)
        return 0; /* HSM keys are made by the token, not by import */
    with_private = (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0
                   && params_have_private(key->type, params);
    pk = pkey_fromdata(key->prov, primus_key_type_name(key->type),
                       evp_selection(selection, with_private), (OSSL_PARAM *)params);
    if (pk == NULL)
        return 0;
    EVP_PKEY_free(key->sw);
    key->sw = pk;
    key->sw_private = with_private;
    return 1;
}

int primus_km_export(void *keydata, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
    primus_key *key = keydata;
    OSSL_PARAM *params = NULL;
    int ret;

    if (key == NULL)
        return 0;
    /* Never the private half of an HSM key; fail quietly (see the top).
     * Checked first: OpenSSL 3.0 asks for everything at each
     * EVP_DigestSignInit (offering the key to the default provider's
     * signature before ours), and that must not build the public half. */
    if (key->hsm_private && (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
        return 0;
    if (primus_key_public(key) == NULL)
        return 0;
    if (EVP_PKEY_todata(key->sw, evp_selection(selection, key->p11 == NULL && key->sw_private),
                        &params) <= 0)
        return 0;
    ret = cb(params, cbarg);
    OSSL_PARAM_free(params);
    return ret;
}

static int set_int_if(OSSL_PARAM params[], const char *name, int v)
{
    OSSL_PARAM *p = OSSL_PARAM_locate(params, name);

    return p == NULL || OSSL_PARAM_set_int(p, v);
}

/* Does the caller ask only what the token's attributes answer?  OpenSSL
 * asks for these when it loads a key (EVP_PKEY's cached bits, size and
 * security bits), and a signer needs nothing more; anything else is
 * answered from the public half. */
static int only_size_params(const OSSL_PARAM params[])
{
    static const char *const from_attributes[] = {
        OSSL_PKEY_PARAM_BITS, OSSL_PKEY_PARAM_SECURITY_BITS, OSSL_PKEY_PARAM_MAX_SIZE,
        OSSL_PKEY_PARAM_DEFAULT_DIGEST, OSSL_PKEY_PARAM_MANDATORY_DIGEST,
        OSSL_PKEY_PARAM_GROUP_NAME,
    };
    const OSSL_PARAM *p;
    size_t i;

    for (p = params; p != NULL && p->key != NULL; p++) {
        for (i = 0; i < sizeof(from_attributes) / sizeof(from_attributes[0]); i++)
            if (strcmp(p->key, from_attributes[i]) == 0)
                break;
        if (i == sizeof(from_attributes) / sizeof(from_attributes[0]))
            return 0;
    }
    return 1;
}

int primus_km_get_params(void *keydata, OSSL_PARAM params[])
{
    primus_key *key = keydata;
    OSSL_PARAM *p;
    int bits, secbits;

    if (key == NULL)
        return 0;
    bits = primus_key_bits(key);
    secbits = security_bits(key->type, bits);
    if (key->sw == NULL && !(only_size_params(params) && bits > 0 && secbits >= 0))
        (void)primus_key_public(key);
    if (key->sw != NULL) {
        if (!EVP_PKEY_get_params(key->sw, params))
            return 0;
    } else {
        if (secbits < 0) /* no public half to ask: OpenSSL's older estimate */
            secbits = BN_security_bits(bits, -1);
        if (!set_int_if(params, OSSL_PKEY_PARAM_BITS, bits)
            || !set_int_if(params, OSSL_PKEY_PARAM_SECURITY_BITS, secbits)
            || !set_int_if(params, OSSL_PKEY_PARAM_MAX_SIZE, (int)primus_key_max_size(key)))
            return 0;
        if (key->type != PRIMUS_KEY_ED25519
            && (p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_DEFAULT_DIGEST)) != NULL
            && !OSSL_PARAM_set_utf8_string(p, "SHA256"))
            return 0;
        if (key->type == PRIMUS_KEY_ED25519
            && (p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_MANDATORY_DIGEST)) != NULL
            && !OSSL_PARAM_set_utf8_string(p, ""))
            return 0;
        if (key->type == PRIMUS_KEY_EC) {
            const p11_object_info *info = primus_key_info(key);
            const char *group = info != NULL ? ec_group_from_params(&info->ec_params) : NULL;

            if (group != NULL && (p = OSSL_PARAM_locate(params, OSSL_PKEY_PARAM_GROUP_NAME)) != NULL
                && !OSSL_PARAM_set_utf8_string(p, group))
                return 0;
        }
    }
    return 1;
}

int primus_km_set_params(void *keydata, const OSSL_PARAM params[])
{
    primus_key *key = keydata;

    if (key == NULL)
        return 0;
    if (params == NULL || params[0].key == NULL)
        return 1;
    if (key->p11 != NULL) {
        /* The public half of an HSM key is the token's: refuse changes. */
        if (OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY) != NULL
            || OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_PUB_KEY) != NULL)
            return 0;
        return 1;
    }
    if (key->sw == NULL) {
        /* e.g. an encoded public key set on an empty key: build from it */
        key->sw = pkey_fromdata(key->prov, primus_key_type_name(key->type),
                                EVP_PKEY_PUBLIC_KEY, (OSSL_PARAM *)params);
        return key->sw != NULL;
    }
    return EVP_PKEY_set_params(key->sw, (OSSL_PARAM *)params);
}

int primus_km_validate(const void *keydata, int selection, int checktype)
{
    const primus_key *key = keydata;
    EVP_PKEY_CTX *ctx;
    int ok = 1;

    if (!primus_km_has(keydata, selection))
        return 0;
    if (primus_key_public(key) == NULL)
        return 1;
    ctx = EVP_PKEY_CTX_new_from_pkey(key->prov->libctx, key->sw, NULL);
    if (ctx == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) != 0)
        ok = ok && EVP_PKEY_public_check(ctx) == 1;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 && key->p11 == NULL && key->sw_private)
        ok = ok && EVP_PKEY_private_check(ctx) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

void *primus_km_dup(const void *keydata, int selection)
{
    const primus_key *src = keydata;
    primus_key *key;

    if (src == NULL)
        return NULL;
    key = primus_key_new(src->prov, src->type);
    if (key == NULL)
        return NULL;
    if (src->p11 != NULL)
        key->p11 = p11_key_ref(src->p11);
    key->hsm_private = src->hsm_private && (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0;
    if (src->sw != NULL) { /* else built on first need, as for src */
        key->sw = EVP_PKEY_dup(src->sw);
        if (key->sw == NULL) {
            primus_key_free(key);
            return NULL;
        }
    }
    key->sw_private = src->sw_private && (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0;
    return key;
}

/* ---- key generation ------------------------------------------------------------ */

struct primus_gen_ctx {
    primus_prov *prov;
    primus_key_type type;
    int selection;
    char *uri;             /* pkcs11_uri: generate in the HSM */
    size_t bits;
    BIGNUM *e;
    char *group;
    int extractable;
    EVP_PKEY_CTX *sw;      /* software generation when no URI is given */
};

static int gen_sw_init(primus_gen_ctx *g, EVP_PKEY *templ)
{
    EVP_PKEY_CTX_free(g->sw);
    if (templ != NULL)
        g->sw = EVP_PKEY_CTX_new_from_pkey(g->prov->libctx, templ, NULL);
    else
        g->sw = EVP_PKEY_CTX_new_from_name(g->prov->libctx, primus_key_type_name(g->type), NULL);
    if (g->sw == NULL)
        return 0;
    if ((g->selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0)
        return EVP_PKEY_keygen_init(g->sw) > 0;
    return EVP_PKEY_paramgen_init(g->sw) > 0;
}

void *primus_gen_init(primus_prov *prov, primus_key_type type, int selection,
                      const OSSL_PARAM params[])
{
    primus_gen_ctx *g = OPENSSL_zalloc(sizeof(*g));

    if (g == NULL)
        return NULL;
    g->prov = prov;
    g->type = type;
    g->selection = selection;
    g->bits = 2048;
    if (!gen_sw_init(g, NULL) || !primus_gen_set_params(g, params)) {
        primus_gen_cleanup(g);
        return NULL;
    }
    return g;
}

int primus_gen_set_params(void *genctx, const OSSL_PARAM params[])
{
    primus_gen_ctx *g = genctx;
    const OSSL_PARAM *p;

    if (params == NULL)
        return 1;
    p = OSSL_PARAM_locate_const(params, PRIMUS_PARAM_PKCS11_URI);
    if (p != NULL) {
        OPENSSL_free(g->uri);
        g->uri = NULL;
        if (!OSSL_PARAM_get_utf8_string(p, &g->uri, 0))
            return 0;
    }
    p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_BITS);
    if (p != NULL && !OSSL_PARAM_get_size_t(p, &g->bits))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_RSA_E);
    if (p != NULL && !OSSL_PARAM_get_BN(p, &g->e))
        return 0;
    p = OSSL_PARAM_locate_const(params, OSSL_PKEY_PARAM_GROUP_NAME);
    if (p != NULL) {
        OPENSSL_free(g->group);
        g->group = NULL;
        if (!OSSL_PARAM_get_utf8_string(p, &g->group, 0))
            return 0;
    }
    p = OSSL_PARAM_locate_const(params, "pkcs11_extractable");
    if (p != NULL && !OSSL_PARAM_get_int(p, &g->extractable))
        return 0;
    /* Everything also goes to the software generator, which ignores what it
     * does not know. */
    if (g->sw != NULL && !EVP_PKEY_CTX_set_params(g->sw, params))
        return 0;
    return 1;
}

int primus_gen_set_template(void *genctx, void *templ)
{
    primus_gen_ctx *g = genctx;
    primus_key *t = templ;

    if (t == NULL || t->sw == NULL)
        return 0;
    if (t->type == PRIMUS_KEY_EC && g->group == NULL) {
        char name[64];

        if (EVP_PKEY_get_utf8_string_param(t->sw, OSSL_PKEY_PARAM_GROUP_NAME, name,
                                           sizeof(name), NULL))
            g->group = OPENSSL_strdup(name);
    }
    return gen_sw_init(g, t->sw);
}

static void *gen_in_hsm(primus_gen_ctx *g)
{
    primus_prov *prov = g->prov;
    p11_keygen_params kp;
    p11_uri *uri;
    p11_key *p11 = NULL;
    p11_status st;
    unsigned char *ecp = NULL, *exp = NULL;
    primus_key *key = NULL;

    if (!primus_prov_ready(prov))
        return NULL;
    uri = primus_parse_uri(prov, g->uri);
    if (uri == NULL)
        return NULL;
    memset(&kp, 0, sizeof(kp));
    kp.extractable = g->extractable;
    switch (g->type) {
    case PRIMUS_KEY_RSA:
    case PRIMUS_KEY_RSA_PSS:
        kp.key_type = CKK_RSA;
        kp.rsa_bits = g->bits;
        if (g->e != NULL) {
            int n = BN_num_bytes(g->e);

            exp = OPENSSL_malloc(n > 0 ? n : 1);
            if (exp == NULL)
                goto end;
            kp.rsa_public_exponent.len = (size_t)BN_bn2bin(g->e, exp);
            kp.rsa_public_exponent.data = exp;
        }
        break;
    case PRIMUS_KEY_EC: {
        int nid, len;
        ASN1_OBJECT *obj;

        if (g->group == NULL) {
            PRIMUS_RAISE(prov, PRIMUS_R_KEYGEN,
                         "no curve given for the EC key; add -pkeyopt ec_paramgen_curve:P-256 "
                         "(or P-384, P-521)");
            goto end;
        }
        nid = OBJ_txt2nid(g->group);
        if (nid == NID_undef)
            nid = EC_curve_nist2nid(g->group);
        obj = nid != NID_undef ? OBJ_nid2obj(nid) : NULL;
        if (obj == NULL || (len = i2d_ASN1_OBJECT(obj, &ecp)) <= 0) {
            PRIMUS_RAISE(prov, PRIMUS_R_UNSUPPORTED_CURVE,
                         "unknown curve \"%s\"; use P-256, P-384 or P-521", g->group);
            goto end;
        }
        kp.key_type = CKK_EC;
        kp.ec_params.data = ecp;
        kp.ec_params.len = (size_t)len;
        break;
    }
    case PRIMUS_KEY_ED25519:
        kp.key_type = CKK_EC_EDWARDS;
        kp.ec_params.data = (unsigned char *)ed25519_oid_der;
        kp.ec_params.len = sizeof(ed25519_oid_der);
        break;
    default:
        goto end;
    }
    primus_set_error_mark(prov);
    st = p11_generate_key_pair(prov->core, uri, &kp, &p11);
    primus_pop_error_to_mark(prov);
    if (st != P11_OK) {
        char *shown = p11_uri_format(uri, P11_URI_FORMAT_OMIT_PIN);

        PRIMUS_RAISE_P11(prov, st, shown != NULL ? shown : "key generation");
        free(shown);
        goto end;
    }
    key = primus_key_from_p11(prov, p11, 0);
    if (key != NULL && g->type == PRIMUS_KEY_RSA_PSS) {
        key->type = PRIMUS_KEY_RSA_PSS;
        if (key->sw != NULL) {
            /* rebuild the public half as an RSA-PSS key */
            EVP_PKEY *pss = primus_pub_from_info(prov, p11_key_info(key->p11),
                                                 PRIMUS_KEY_RSA_PSS);
            EVP_PKEY_free(key->sw);
            key->sw = pss;
        }
    }
end:
    OPENSSL_free(exp);
    OPENSSL_free(ecp);
    p11_uri_free(uri);
    return key;
}

void *primus_gen(void *genctx, OSSL_CALLBACK *cb, void *cbarg)
{
    primus_gen_ctx *g = genctx;
    primus_key *key;
    EVP_PKEY *pk = NULL;

    if (g == NULL)
        return NULL;
    if (g->uri != NULL && (g->selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0)
        return gen_in_hsm(g);

    /* No pkcs11_uri: an ordinary software key (e.g. a TLS ephemeral key
     * when OpenSSL happened to pick this key manager). */
    if (g->sw == NULL)
        return NULL;
    if ((g->selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0) {
        if (EVP_PKEY_generate(g->sw, &pk) <= 0)
            return NULL;
    } else if (EVP_PKEY_paramgen(g->sw, &pk) <= 0) {
        return NULL;
    }
    key = primus_key_new(g->prov, g->type);
    if (key == NULL) {
        EVP_PKEY_free(pk);
        return NULL;
    }
    key->sw = pk;
    key->sw_private = (g->selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0;
    return key;
}

void primus_gen_cleanup(void *genctx)
{
    primus_gen_ctx *g = genctx;

    if (g == NULL)
        return;
    EVP_PKEY_CTX_free(g->sw);
    OPENSSL_free(g->uri);
    OPENSSL_free(g->group);
    BN_free(g->e);
    OPENSSL_free(g);
}

/* p11_key_supports may be the first call into the core in a forked child,
 * and so start the PKCS#11 module again; an in-process module (SoftHSM)
 * then leaves errors of its own in OpenSSL's queue, which servers (nginx)
 * read as a failed handshake.  They are not ours: dropped. */
int primus_key_supports(const primus_prov *prov, p11_key *key, CK_MECHANISM_TYPE mech,
                        CK_FLAGS purpose)
{
    int yes;

    primus_set_error_mark(prov);
    yes = p11_key_supports(key, mech, purpose);
    primus_pop_error_to_mark(prov);
    return yes;
}
