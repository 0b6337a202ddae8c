/* Key generation inside the HSM and the token's RNG.  Generation is not
 * idempotent: it runs on one member and is never retried elsewhere. */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "internal.h"
#include "audit.h"
#include "rv.h"

typedef struct keygen_call {
    const p11_keygen_params *params;
    const char *label;
    p11_bytes id;
    p11_object_info info; /* the private key, read back */
} keygen_call;

static CK_RV keygen_on_member(p11_member *m, CK_SESSION_HANDLE s, void *arg)
{
    keygen_call *c = arg;
    const p11_keygen_params *p = c->params;
    CK_FUNCTION_LIST *fl = m->mod->fl;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_BBOOL sensitive = p->extractable ? CK_FALSE : CK_TRUE;
    CK_BBOOL extractable = p->extractable ? CK_TRUE : CK_FALSE;
    CK_ULONG bits = p->rsa_bits;
    static unsigned char f4[] = {0x01, 0x00, 0x01};
    CK_MECHANISM mech = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pub[8], priv[10];
    CK_ULONG np = 0, nk = 0;
    CK_OBJECT_HANDLE hpub, hpriv;
    CK_RV rv;

#define ADD(arr, n, t, v, l) (arr[n].type = (t), arr[n].pValue = (void *)(v), arr[n++].ulValueLen = (l))
    ADD(pub, np, CKA_TOKEN, &yes, sizeof(yes));
    ADD(pub, np, CKA_PRIVATE, &no, sizeof(no));
    ADD(pub, np, CKA_VERIFY, &yes, sizeof(yes));
    ADD(pub, np, CKA_LABEL, c->label, strlen(c->label));
    ADD(pub, np, CKA_ID, c->id.data, c->id.len);
    ADD(priv, nk, CKA_TOKEN, &yes, sizeof(yes));
    ADD(priv, nk, CKA_PRIVATE, &yes, sizeof(yes));
    ADD(priv, nk, CKA_SENSITIVE, &sensitive, sizeof(sensitive));
    ADD(priv, nk, CKA_EXTRACTABLE, &extractable, sizeof(extractable));
    ADD(priv, nk, CKA_SIGN, &yes, sizeof(yes));
    ADD(priv, nk, CKA_LABEL, c->label, strlen(c->label));
    ADD(priv, nk, CKA_ID, c->id.data, c->id.len);
    if (p->key_type == CKK_RSA) {
        ADD(pub, np, CKA_MODULUS_BITS, &bits, sizeof(bits));
        if (p->rsa_public_exponent.len)
            ADD(pub, np, CKA_PUBLIC_EXPONENT, p->rsa_public_exponent.data, p->rsa_public_exponent.len);
        else
            ADD(pub, np, CKA_PUBLIC_EXPONENT, f4, sizeof(f4));
        ADD(pub, np, CKA_ENCRYPT, &yes, sizeof(yes));
        ADD(priv, nk, CKA_DECRYPT, &yes, sizeof(yes));
    } else {
        mech.mechanism = p->key_type == CKK_EC ? CKM_EC_KEY_PAIR_GEN : CKM_EC_EDWARDS_KEY_PAIR_GEN;
        ADD(pub, np, CKA_EC_PARAMS, p->ec_params.data, p->ec_params.len);
        if (p->key_type == CKK_EC)
            ADD(priv, nk, CKA_DERIVE, &yes, sizeof(yes));
    }
#undef ADD
    rv = fl->C_GenerateKeyPair(s, &mech, pub, np, priv, nk, &hpub, &hpriv);
    if (rv != CKR_OK)
        return rv;
    (void)hpub;
    rv = p11_object_read(m, s, hpriv, &c->info);
    if (rv == CKR_OK && c->info.ec_point.len == 0 && p->key_type != CKK_RSA) {
        p11_object_info pubinfo;
        if (p11_object_read(m, s, hpub, &pubinfo) == CKR_OK) {
            c->info.ec_point = pubinfo.ec_point;
            pubinfo.ec_point.data = NULL;
            p11_object_info_clear(&pubinfo);
        }
    }
    if (rv == CKR_OK) {
        c->info.partition = p11_strdup(m->part->name);
        c->info.uri = p11_object_uri(m->part->name, &c->info);
        if (c->info.partition == NULL || c->info.uri == NULL)
            rv = CKR_HOST_MEMORY;
    }
    return rv;
}

static void *keygen_clone(const void *arg)
{
    const keygen_call *c = arg;
    const p11_keygen_params *p = c->params;
    size_t label_len = strlen(c->label) + 1;
    size_t need = sizeof(keygen_call) + sizeof(p11_keygen_params) + label_len + c->id.len +
                  p->rsa_public_exponent.len + p->ec_params.len;
    keygen_call *copy = calloc(1, need);
    p11_keygen_params *params;
    unsigned char *q;

    if (copy == NULL)
        return NULL;
    params = (p11_keygen_params *)(copy + 1);
    *params = *p;
    q = (unsigned char *)(params + 1);
    memcpy(q, c->label, label_len);
    copy->label = (char *)q;
    params->label = copy->label;
    q += label_len;
    memcpy(q, c->id.data, c->id.len);
    copy->id.data = q;
    copy->id.len = c->id.len;
    params->id = copy->id;
    q += c->id.len;
    if (p->rsa_public_exponent.len)
        memcpy(q, p->rsa_public_exponent.data, p->rsa_public_exponent.len);
    params->rsa_public_exponent.data = q;
    q += p->rsa_public_exponent.len;
    if (p->ec_params.len)
        memcpy(q, p->ec_params.data, p->ec_params.len);
    params->ec_params.data = q;
    copy->params = params;
    return copy;
}

static void keygen_merge(void *arg, const void *from)
{
    keygen_call *c = arg;
    keygen_call *copy = (keygen_call *)from;

    c->info = copy->info;
    memset(&copy->info, 0, sizeof(copy->info)); /* moved */
}

static void keygen_release(void *arg)
{
    keygen_call *copy = arg;

    p11_object_info_clear(&copy->info);
    free(copy);
}

static const p11_op_class keygen_class = {.run = keygen_on_member, .clone = keygen_clone, .merge = keygen_merge, .release = keygen_release};

static p11_status one_partition(p11_core *core, const p11_uri *where, p11_partition **out)
{
    p11_partition *parts[2];
    size_t n;
    p11_status st;

    st = p11_core_ensure(core);
    if (st != P11_OK)
        return st;
    n = p11_core_match_partitions(core, where, parts, 2);
    if (n == 0 && p11_core_rescan(core) == P11_OK)
        n = p11_core_match_partitions(core, where, parts, 2);
    if (n == 0)
        return p11_error_set(P11_ERR_NO_TOKEN, CKR_OK,
                             "no token matches the URI; `primusctl list` shows the partitions");
    if (n > 1)
        return p11_error_set(P11_ERR_AMBIGUOUS, CKR_OK,
                             "the URI matches several partitions; add token=<partition name>");
    *out = parts[0];
    return P11_OK;
}

static void record_keygen(p11_core *core, p11_partition *part, const p11_uri *where,
                          const p11_object_info *made, const p11_keygen_params *params,
                          p11_status st, unsigned long long t0)
{
    char *asked = NULL;
    p11_audit_fields f = {.event = "keygen",
                          .member = p11_partition_served(),
                          .partition = part->name,
                          .has_mech = 1,
                          .mech = params->key_type == CKK_RSA        ? CKM_RSA_PKCS_KEY_PAIR_GEN
                                  : params->key_type == CKK_EC_EDWARDS ? CKM_EC_EDWARDS_KEY_PAIR_GEN
                                                                     : CKM_EC_KEY_PAIR_GEN,
                          .rv = st == P11_OK ? CKR_OK : p11_error_rv(),
                          .has_rv = 1,
                          .started_ns = t0,
                          .detail = params->extractable ? "generated EXTRACTABLE (weak)" : NULL};

    if (!core->audit)
        return;
    if (st == P11_OK && made->uri)
        f.key = made;
    else
        f.uri = asked = p11_uri_format(where, P11_URI_FORMAT_OMIT_PIN);
    p11_audit_record(core, &f);
    free(asked);
}

p11_status p11_generate_key_pair(p11_core *core, const p11_uri *where,
                                 const p11_keygen_params *params, p11_key **out)
{
    keygen_call c;
    p11_partition *part = NULL;
    unsigned char random_id[16];
    size_t len;
    char *pin = NULL;
    unsigned long long t0;
    p11_status st;

    *out = NULL;
    memset(&c, 0, sizeof(c));
    c.params = params;
    if (params->key_type == CKK_RSA && (params->rsa_bits < 1024 || params->rsa_bits > 16384))
        return p11_error_set(P11_ERR_CONFIG, CKR_OK,
                             "RSA key size %lu is not supported; use 2048 to 4096 bits",
                             (unsigned long)params->rsa_bits);
    if (params->key_type != CKK_RSA && params->ec_params.len == 0)
        return p11_error_set(P11_ERR_CONFIG, CKR_OK, "no curve given for the EC key");
    st = one_partition(core, where, &part);
    if (st != P11_OK)
        return st;
    if ((st = p11_pin_from_uri(where, &pin)) != P11_OK)
        return st;
    if (pin) {
        st = p11_partition_offer_pin(part, pin);
        p11_pin_free(pin);
        if (st != P11_OK)
            return st;
    }
    c.label = params->label ? params->label : p11_uri_get(where, P11_URI_OBJECT, NULL);
    if (c.label == NULL)
        c.label = "";
    if (params->id.len) {
        c.id = params->id;
    } else if ((c.id.data = (unsigned char *)p11_uri_get(where, P11_URI_ID, &len)) != NULL) {
        c.id.len = len;
    } else {
        if (getrandom(random_id, sizeof(random_id), 0) != (ssize_t)sizeof(random_id))
            return p11_error_set(P11_ERR_INTERNAL, CKR_OK, "no randomness for a key id");
        c.id.data = random_id;
        c.id.len = sizeof(random_id);
    }
    if ((st = p11_audit_admit(core)) != P11_OK)
        return st;
    t0 = p11_now_ns();
    st = p11_partition_run(part, P11_RUN_NEEDS_LOGIN, "key pair generation", &keygen_class, &c);
    record_keygen(core, part, where, &c.info, params, st, t0);
    if (st == P11_OK)
        st = p11_key_open(core, &c.info, NULL, out);
    p11_object_info_clear(&c.info);
    return st;
}

typedef struct random_call {
    unsigned char *out;
    size_t len;
} random_call;

static CK_RV random_on_member(p11_member *m, CK_SESSION_HANDLE s, void *arg)
{
    random_call *c = arg;
    return m->mod->fl->C_GenerateRandom(s, c->out, (CK_ULONG)c->len);
}

static void *random_clone(const void *arg)
{
    const random_call *c = arg;
    random_call *copy = malloc(sizeof(*copy) + c->len);

    if (copy) {
        copy->out = (unsigned char *)(copy + 1);
        copy->len = c->len;
    }
    return copy;
}

static void random_merge(void *arg, const void *from)
{
    random_call *c = arg;
    const random_call *copy = from;
    memcpy(c->out, copy->out, c->len);
}

static void random_release(void *arg)
{
    random_call *copy = arg;
    p11_wipe(copy->out, copy->len);
    free(copy);
}

static const p11_op_class random_class = {.run = random_on_member, .clone = random_clone, .merge = random_merge, .release = random_release};

p11_status p11_generate_random(p11_core *core, const p11_uri *where, unsigned char *out,
                               size_t len)
{
    p11_partition *part = NULL;
    random_call c = {out, len};
    p11_status st;
    p11_uri *any = NULL;

    if (where == NULL) {
        any = p11_uri_new();
        if (any == NULL)
            return p11_error_set(P11_ERR_MEMORY, CKR_HOST_MEMORY, "out of memory");
        where = any;
    }
    st = one_partition(core, where, &part);
    p11_uri_free(any);
    if (st != P11_OK)
        return st;
    return p11_partition_run(part, P11_RUN_IDEMPOTENT, "random generation", &random_class, &c);
}
