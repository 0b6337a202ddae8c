/* Keys are references (partition + class + id/label), not handles: each
 * member resolves the reference once, caches the handle for the member's
 * generation, and resolves again when the member restarts or the handle is
 * refused.  No operation searches, logs in or opens a session once warm. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "audit.h"
#include "rv.h"

#define P11_MAX_OUTPUT 1024 /* RSA-8192 signatures; EC and Ed are far smaller */

struct p11_key {
    _Atomic int refs;
    p11_core *core;
    p11_partition *part;
    p11_object_info info;
    pthread_mutex_t lock;
    struct {
        unsigned gen_plus_one; /* 0: not resolved */
        CK_OBJECT_HANDLE handle;
        /* the member lacked the key (or held it twice) in this generation:
         * answer so without a search until then, so that operations move
         * on to a member that has it at the cost of one cheap refusal */
        unsigned missing_gen_plus_one;
        unsigned long long missing_until_ns;
        CK_RV missing_rv;
    } handles[P11_MAX_MEMBERS];
};

#define P11_KEY_MISSING_RECHECK_NS 1000000000ULL /* a replicated key shows up within 1 s */

static p11_partition *partition_named(p11_core *core, const char *name)
{
    size_t i;
    p11_partition *found = NULL;

    pthread_mutex_lock(&core->lock);
    for (i = 0; i < core->n_parts && !found; i++)
        if (strcmp(core->parts[i]->name, name) == 0)
            found = core->parts[i];
    pthread_mutex_unlock(&core->lock);
    return found;
}

p11_status p11_key_open(p11_core *core, const p11_object_info *info, const p11_uri *pin_uri,
                        p11_key **out)
{
    p11_key *key;
    p11_status st;
    char *pin = NULL;

    *out = NULL;
    st = p11_core_ensure(core);
    if (st != P11_OK)
        return st;
    if (info->partition == NULL || info->cls == (CK_OBJECT_CLASS)-1)
        return p11_error_set(P11_ERR_INTERNAL, CKR_OK, "key description without a partition");
    if (info->id.len == 0 && (info->label == NULL || info->label[0] == '\0'))
        return p11_error_set(P11_ERR_NOT_FOUND, CKR_OK,
                             "the object has neither CKA_ID nor CKA_LABEL, so it cannot be found "
                             "again on another member; give the key an id or a label");
    key = calloc(1, sizeof(*key));
    if (key == NULL)
        return p11_error_set(P11_ERR_MEMORY, CKR_HOST_MEMORY, "out of memory");
    key->part = partition_named(core, info->partition);
    if (key->part == NULL) {
        free(key);
        return p11_error_set(P11_ERR_NO_TOKEN, CKR_OK, "partition \"%s\" is not present",
                             info->partition);
    }
    st = p11_object_info_copy(&key->info, info);
    if (st == P11_OK && pin_uri && (st = p11_pin_from_uri(pin_uri, &pin)) == P11_OK && pin)
        st = p11_partition_offer_pin(key->part, pin);
    p11_pin_free(pin);
    if (st != P11_OK) {
        p11_object_info_clear(&key->info);
        free(key);
        return st;
    }
    key->core = core;
    atomic_init(&key->refs, 1);
    pthread_mutex_init(&key->lock, NULL);
    *out = key;
    return P11_OK;
}

static p11_status ambiguous_error(const p11_object_list *list)
{
    char names[1024];
    size_t used = 0, i;

    names[0] = '\0';
    for (i = 0; i < list->count && used < sizeof(names); i++) {
        int k = snprintf(names + used, sizeof(names) - used, "%s%s", i ? ", " : "",
                         list->items[i].uri);
        if (k > 0)
            used += (size_t)k;
    }
    return p11_error_set(P11_ERR_AMBIGUOUS, CKR_OK,
                         "the URI matches %zu objects; name one of them (add id= or type=): %s",
                         list->count, names);
}

void p11_audit_lookup_failed(p11_core *core, const p11_uri *uri, const char *reason)
{
    char *text;
    p11_audit_fields f = {.event = "lookup-failed", .detail = reason};

    if (!core->audit)
        return;
    if (p11_error_rv() != CKR_OK) {
        f.rv = p11_error_rv();
        f.has_rv = 1;
    }
    text = p11_uri_format(uri, P11_URI_FORMAT_OMIT_PIN);
    f.uri = text;
    p11_audit_record(core, &f);
    free(text);
}

p11_status p11_key_open_uri(p11_core *core, const p11_uri *uri, CK_OBJECT_CLASS cls,
                            p11_key **out)
{
    p11_object_list list;
    p11_status st;

    *out = NULL;
    st = p11_find_objects(core, uri, cls, &list);
    if (st != P11_OK) {
        if (st != P11_ERR_URI && st != P11_ERR_MEMORY)
            p11_audit_lookup_failed(core, uri, p11_error_message());
        return st;
    }
    if (list.count == 0) {
        char *text = p11_uri_format(uri, P11_URI_FORMAT_OMIT_PIN);
        st = p11_error_set(P11_ERR_NOT_FOUND, CKR_OK,
                           "no object matches %s; `primusctl list` shows the objects of each "
                           "partition as URIs",
                           text ? text : "the URI");
        free(text);
    } else if (list.count > 1) {
        st = ambiguous_error(&list);
    } else {
        st = p11_key_open(core, &list.items[0], uri, out);
    }
    if (st != P11_OK)
        p11_audit_lookup_failed(core, uri, p11_error_message());
    p11_object_list_clear(&list);
    return st;
}

p11_key *p11_key_ref(p11_key *key)
{
    if (key)
        atomic_fetch_add(&key->refs, 1);
    return key;
}

void p11_key_unref(p11_key *key)
{
    if (key == NULL || atomic_fetch_sub(&key->refs, 1) != 1)
        return;
    p11_object_info_clear(&key->info);
    pthread_mutex_destroy(&key->lock);
    free(key);
}

const p11_object_info *p11_key_info(const p11_key *key) { return &key->info; }

/* ---- handles ---- */
/* Replace *h by a session copy of the key, held by the member's keeper
 * session; the token object stays what it was.  A token that refuses the
 * copy (CKA_COPYABLE false, no session objects) is simply used directly. */
static void use_session_copy(p11_member *m, CK_OBJECT_HANDLE *h)
{
    CK_SESSION_HANDLE keeper = p11_member_keeper(m);
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE session_only = {CKA_TOKEN, &no, sizeof(no)};
    CK_OBJECT_HANDLE copy;

    if (keeper != CK_INVALID_HANDLE &&
        m->mod->fl->C_CopyObject(keeper, *h, &session_only, 1, &copy) == CKR_OK)
        *h = copy;
}

static CK_RV resolve_handle(p11_key *key, p11_member *m, CK_SESSION_HANDLE s,
                            CK_OBJECT_HANDLE *h)
{
    CK_OBJECT_HANDLE token_handle;
    unsigned gen = atomic_load(&m->generation) + 1;
    CK_ATTRIBUTE t[4];
    CK_OBJECT_CLASS cls = key->info.cls;
    CK_BBOOL on_token = CK_TRUE;
    CK_OBJECT_HANDLE *found = NULL;
    size_t count = 0;
    CK_ULONG n = 0;
    CK_RV rv;

    pthread_mutex_lock(&key->lock);
    if (key->handles[m->index].gen_plus_one == gen) {
        *h = key->handles[m->index].handle;
        pthread_mutex_unlock(&key->lock);
        return CKR_OK;
    }
    if (key->handles[m->index].missing_gen_plus_one == gen &&
        p11_now_ns() < key->handles[m->index].missing_until_ns) {
        rv = key->handles[m->index].missing_rv;
        pthread_mutex_unlock(&key->lock);
        return rv;
    }
    pthread_mutex_unlock(&key->lock);

    t[n].type = CKA_CLASS;
    t[n].pValue = &cls;
    t[n++].ulValueLen = sizeof(cls);
    /* token objects only: our own session copies carry the same id and label */
    t[n].type = CKA_TOKEN;
    t[n].pValue = &on_token;
    t[n++].ulValueLen = sizeof(on_token);
    if (key->info.id.len) {
        t[n].type = CKA_ID;
        t[n].pValue = key->info.id.data;
        t[n++].ulValueLen = key->info.id.len;
    }
    if (key->info.label && key->info.label[0]) {
        t[n].type = CKA_LABEL;
        t[n].pValue = key->info.label;
        t[n++].ulValueLen = strlen(key->info.label);
    }
    rv = p11_object_search(m, s, t, n, &found, &count);
    if (rv != CKR_OK)
        return rv;
    if (count != 1) {
        free(found);
        rv = count ? P11_CKR_KEY_NOT_UNIQUE : P11_CKR_KEY_MISSING;
        pthread_mutex_lock(&key->lock);
        key->handles[m->index].missing_gen_plus_one = gen;
        key->handles[m->index].missing_until_ns = p11_now_ns() + P11_KEY_MISSING_RECHECK_NS;
        key->handles[m->index].missing_rv = rv;
        pthread_mutex_unlock(&key->lock);
        return rv;
    }
    token_handle = *h = found[0];
    free(found);
    if (key->info.cls == CKO_PRIVATE_KEY && p11_member_copies_keys(m))
        use_session_copy(m, h);
    pthread_mutex_lock(&key->lock);
    if (key->handles[m->index].gen_plus_one == gen) {
        /* another thread resolved it meanwhile: keep theirs, drop our copy */
        if (*h != token_handle)
            m->mod->fl->C_DestroyObject(s, *h);
        *h = key->handles[m->index].handle;
    } else {
        key->handles[m->index].gen_plus_one = gen;
        key->handles[m->index].handle = *h;
    }
    pthread_mutex_unlock(&key->lock);
    return CKR_OK;
}

static void forget_handle(p11_key *key, p11_member *m)
{
    pthread_mutex_lock(&key->lock);
    key->handles[m->index].gen_plus_one = 0;
    pthread_mutex_unlock(&key->lock);
}

static int handle_refused(CK_RV rv)
{
    return rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_KEY_HANDLE_INVALID;
}

/* ---- one-shot operations ---- */
typedef CK_RV (*init_fn)(CK_SESSION_HANDLE, CK_MECHANISM *, CK_OBJECT_HANDLE);
typedef CK_RV (*run_fn)(CK_SESSION_HANDLE, CK_BYTE *, CK_ULONG, CK_BYTE *, CK_ULONG *);

typedef struct key_call {
    p11_key *key;
    CK_MECHANISM mech;
    int which;                 /* KEY_SIGN, ... */
    const unsigned char *in;
    size_t in_len;
    const unsigned char *sig;  /* verify */
    size_t sig_len;
    unsigned char *out;
    CK_ULONG out_len;
} key_call;

enum { KEY_SIGN, KEY_VERIFY, KEY_DECRYPT, KEY_ENCRYPT };

static CK_RV key_call_on_member(p11_member *m, CK_SESSION_HANDLE s, void *arg)
{
    key_call *c = arg;
    CK_FUNCTION_LIST *fl = m->mod->fl;
    CK_OBJECT_HANDLE h;
    CK_RV rv;
    int attempt;

    for (attempt = 0; attempt < 2; attempt++) {
        rv = resolve_handle(c->key, m, s, &h);
        if (rv != CKR_OK)
            return rv;
        switch (c->which) {
        case KEY_SIGN: rv = fl->C_SignInit(s, &c->mech, h); break;
        case KEY_VERIFY: rv = fl->C_VerifyInit(s, &c->mech, h); break;
        case KEY_DECRYPT: rv = fl->C_DecryptInit(s, &c->mech, h); break;
        default: rv = fl->C_EncryptInit(s, &c->mech, h); break;
        }
        if (!handle_refused(rv))
            break;
        /* the member restarted or the object was recreated: look it up again */
        forget_handle(c->key, m);
    }
    if (rv != CKR_OK)
        return rv;
    if ((c->key->info.flags & P11_OBJ_ALWAYS_AUTHENTICATE) &&
        (c->which == KEY_SIGN || c->which == KEY_DECRYPT)) {
        rv = p11_context_login(m, s);
        if (rv != CKR_OK) {
            /* end the operation so the session goes back to the pool clean */
            CK_ULONG none = 0;
            if (c->which == KEY_SIGN)
                fl->C_Sign(s, (CK_BYTE *)c->in, (CK_ULONG)c->in_len, NULL, &none);
            return rv;
        }
    }
    switch (c->which) {
    case KEY_SIGN:
        return fl->C_Sign(s, (CK_BYTE *)c->in, (CK_ULONG)c->in_len, c->out, &c->out_len);
    case KEY_VERIFY:
        return fl->C_Verify(s, (CK_BYTE *)c->in, (CK_ULONG)c->in_len, (CK_BYTE *)c->sig,
                            (CK_ULONG)c->sig_len);
    case KEY_DECRYPT:
        return fl->C_Decrypt(s, (CK_BYTE *)c->in, (CK_ULONG)c->in_len, c->out, &c->out_len);
    default:
        return fl->C_Encrypt(s, (CK_BYTE *)c->in, (CK_ULONG)c->in_len, c->out, &c->out_len);
    }
}

/* A key call a gated member's worker may own: everything it reads or
 * writes lives in one allocation (see gate.c). */
static void *key_call_clone(const void *arg)
{
    const key_call *c = arg;
    size_t param_len = c->mech.pParameter ? c->mech.ulParameterLen : 0, label_len = 0;
    const CK_RSA_PKCS_OAEP_PARAMS *oaep = NULL;
    key_call *copy;
    unsigned char *p;

    if (c->mech.mechanism == CKM_RSA_PKCS_OAEP && param_len == sizeof(*oaep)) {
        oaep = c->mech.pParameter;
        label_len = oaep->pSourceData ? oaep->ulSourceDataLen : 0;
    }
    copy = malloc(sizeof(*copy) + param_len + label_len + c->in_len + c->sig_len + P11_MAX_OUTPUT);
    if (copy == NULL)
        return NULL;
    *copy = *c;
    p = (unsigned char *)(copy + 1);
    if (param_len) {
        memcpy(p, c->mech.pParameter, param_len);
        copy->mech.pParameter = p;
        p += param_len;
    }
    if (label_len) {
        memcpy(p, oaep->pSourceData, label_len);
        ((CK_RSA_PKCS_OAEP_PARAMS *)copy->mech.pParameter)->pSourceData = p;
        p += label_len;
    }
    memcpy(p, c->in, c->in_len);
    copy->in = p;
    p += c->in_len;
    if (c->sig_len)
        memcpy(p, c->sig, c->sig_len);
    copy->sig = p;
    p += c->sig_len;
    copy->out = c->out ? p : NULL;
    copy->out_len = c->out ? (c->out_len < P11_MAX_OUTPUT ? c->out_len : P11_MAX_OUTPUT) : 0;
    p11_key_ref(copy->key);
    return copy;
}

static void key_call_merge(void *arg, const void *from)
{
    key_call *c = arg;
    const key_call *copy = from;

    if (c->out && copy->out_len <= c->out_len)
        memcpy(c->out, copy->out, copy->out_len);
    c->out_len = copy->out_len;
}

static void key_call_release(void *arg)
{
    key_call *copy = arg;

    if (copy->out)
        p11_wipe(copy->out, P11_MAX_OUTPUT); /* may hold a decrypted secret */
    p11_key_unref(copy->key);
    free(copy);
}

static const p11_op_class key_call_class = {.run = key_call_on_member, .clone = key_call_clone, .merge = key_call_merge, .release = key_call_release};

/* The largest output an operation of this key can produce. */
static size_t max_output(const p11_key *key)
{
    switch (key->info.key_type) {
    case CKK_RSA:
        return key->info.modulus.len ? key->info.modulus.len : (key->info.bits + 7) / 8;
    case CKK_EC:
        return 2 * ((key->info.bits + 7) / 8);
    case CKK_EC_EDWARDS:
        return key->info.bits > 255 ? 114 : 64;
    default:
        return P11_MAX_OUTPUT;
    }
}

static const char *operation_name(int which)
{
    static const char *const names[] = {"signing", "verification", "decryption", "encryption"};
    return names[which];
}

/* The audit record of one operation with a key: who served, the result
 * (the PKCS#11 code behind a failure) and how long it took. */
static void record_key_op(p11_key *key, const char *event, CK_MECHANISM_TYPE mech, p11_status st,
                          unsigned long long started_ns)
{
    p11_audit_fields f = {.event = event,
                          .member = p11_partition_served(),
                          .partition = key->part->name,
                          .key = &key->info,
                          .mech = mech,
                          .has_mech = 1,
                          .rv = st == P11_OK ? CKR_OK : p11_error_rv(),
                          .has_rv = 1,
                          .started_ns = started_ns};
    if (st != P11_OK && f.rv == CKR_OK)
        f.rv = CKR_FUNCTION_FAILED; /* refused before reaching the token */
    p11_audit_record(key->core, &f);
}

/* One operation with the key: on a live member with failover (member
 * NULL), or on that member alone. */
static p11_status run_key_call(p11_key *key, p11_member *member, int which,
                               const CK_MECHANISM *mech, const unsigned char *in, size_t in_len,
                               const unsigned char *sig, size_t sig_len, unsigned char *out,
                               size_t *out_len)
{
    unsigned char buf[P11_MAX_OUTPUT];
    size_t max = max_output(key);
    key_call c = {key, *mech, which, in, in_len, sig, sig_len, NULL, 0};
    unsigned flags = P11_RUN_IDEMPOTENT;
    int sensitive = which == KEY_SIGN || which == KEY_DECRYPT;
    unsigned long long t0;
    char what[128];
    p11_status st;

    if (out_len && out == NULL) {
        *out_len = max;
        return P11_OK;
    }
    st = p11_core_ensure(key->core);
    if (st != P11_OK)
        return st;
    if (sensitive) {
        flags |= P11_RUN_NEEDS_LOGIN;
        if ((st = p11_audit_admit(key->core)) != P11_OK)
            return st;
    }
    /* Give the token a buffer that always fits, so no operation is left
     * half-done in a pooled session by CKR_BUFFER_TOO_SMALL. */
    if (out_len) {
        if (*out_len >= max && max <= sizeof(buf)) {
            c.out = out;
            c.out_len = (CK_ULONG)*out_len;
        } else {
            c.out = buf;
            c.out_len = sizeof(buf);
        }
    }
    snprintf(what, sizeof(what), "%s with %s (%s)", operation_name(which),
             key->info.label && key->info.label[0] ? key->info.label : "key",
             p11_mechanism_name(mech->mechanism));
    t0 = p11_now_ns();
    st = member ? p11_member_run(member, flags, what, &key_call_class, &c)
                : p11_partition_run(key->part, flags, what, &key_call_class, &c);
    if (sensitive)
        record_key_op(key, which == KEY_SIGN ? "sign" : "decrypt", mech->mechanism, st, t0);
    if (st != P11_OK || out_len == NULL)
        return st;
    if (c.out == buf) {
        if (c.out_len > *out_len) {
            p11_wipe(buf, c.out_len);
            return p11_error_set(P11_ERR_BUFFER, CKR_BUFFER_TOO_SMALL,
                                 "%s produced %lu bytes, more than the %zu the caller allowed",
                                 what, (unsigned long)c.out_len, *out_len);
        }
        memcpy(out, buf, c.out_len);
        p11_wipe(buf, c.out_len);
    }
    *out_len = c.out_len;
    return P11_OK;
}

p11_status p11_key_sign(p11_key *key, const CK_MECHANISM *mech, const unsigned char *in,
                        size_t in_len, unsigned char *out, size_t *out_len)
{
    return run_key_call(key, NULL, KEY_SIGN, mech, in, in_len, NULL, 0, out, out_len);
}

p11_status p11_key_verify(p11_key *key, const CK_MECHANISM *mech, const unsigned char *in,
                          size_t in_len, const unsigned char *sig, size_t sig_len)
{
    return run_key_call(key, NULL, KEY_VERIFY, mech, in, in_len, sig, sig_len, NULL, NULL);
}

p11_status p11_key_decrypt(p11_key *key, const CK_MECHANISM *mech, const unsigned char *in,
                           size_t in_len, unsigned char *out, size_t *out_len)
{
    return run_key_call(key, NULL, KEY_DECRYPT, mech, in, in_len, NULL, 0, out, out_len);
}

p11_status p11_key_encrypt(p11_key *key, const CK_MECHANISM *mech, const unsigned char *in,
                           size_t in_len, unsigned char *out, size_t *out_len)
{
    return run_key_call(key, NULL, KEY_ENCRYPT, mech, in, in_len, NULL, 0, out, out_len);
}

/* ---- one member at a time (primusctl check) ---- */

size_t p11_key_member_count(const p11_key *key) { return key->part->n_members; }

p11_status p11_key_member_describe(const p11_key *key, size_t i, p11_member_view *out)
{
    const p11_member *m;

    if (i >= key->part->n_members)
        return p11_error_set(P11_ERR_INTERNAL, CKR_OK, "no member %zu", i);
    m = key->part->members[i];
    memset(out, 0, sizeof(*out));
    if (m->name)
        snprintf(out->name, sizeof(out->name), "%s", m->name);
    else
        snprintf(out->name, sizeof(out->name), "slot %lu", (unsigned long)m->slot);
    snprintf(out->serial, sizeof(out->serial), "%s", m->serial);
    out->slot = m->slot;
    out->up = atomic_load(&m->state) == P11_MEMBER_UP;
    out->last_rv = atomic_load(&m->last_rv);
    return P11_OK;
}

static p11_member *member_of(const p11_key *key, size_t i)
{
    if (i >= key->part->n_members) {
        p11_error_set(P11_ERR_INTERNAL, CKR_OK, "no member %zu", i);
        return NULL;
    }
    return key->part->members[i];
}

p11_status p11_key_sign_on_member(p11_key *key, size_t member, const CK_MECHANISM *mech,
                                  const unsigned char *in, size_t in_len, unsigned char *out,
                                  size_t *out_len)
{
    p11_member *m = member_of(key, member);
    return m ? run_key_call(key, m, KEY_SIGN, mech, in, in_len, NULL, 0, out, out_len)
             : P11_ERR_INTERNAL;
}

p11_status p11_key_decrypt_on_member(p11_key *key, size_t member, const CK_MECHANISM *mech,
                                     const unsigned char *in, size_t in_len, unsigned char *out,
                                     size_t *out_len)
{
    p11_member *m = member_of(key, member);
    return m ? run_key_call(key, m, KEY_DECRYPT, mech, in, in_len, NULL, 0, out, out_len)
             : P11_ERR_INTERNAL;
}

/* ---- ECDH ---- */
typedef struct derive_call {
    p11_key *key;
    CK_ECDH1_DERIVE_PARAMS params;
    unsigned char *out;
    CK_ULONG out_len;
} derive_call;

static CK_RV derive_on_member(p11_member *m, CK_SESSION_HANDLE s, void *arg)
{
    derive_call *c = arg;
    CK_FUNCTION_LIST *fl = m->mod->fl;
    CK_MECHANISM mech = {CKM_ECDH1_DERIVE, &c->params, sizeof(c->params)};
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG len = (c->key->info.bits + 7) / 8;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},       {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, &no, sizeof(no)},         {CKA_SENSITIVE, &no, sizeof(no)},
        {CKA_EXTRACTABLE, &yes, sizeof(yes)}, {CKA_VALUE_LEN, &len, sizeof(len)},
    };
    CK_ATTRIBUTE value = {CKA_VALUE, c->out, c->out_len};
    CK_OBJECT_HANDLE h, secret;
    CK_RV rv;

    rv = resolve_handle(c->key, m, s, &h);
    if (rv != CKR_OK)
        return rv;
    rv = fl->C_DeriveKey(s, &mech, h, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &secret);
    if (handle_refused(rv)) {
        forget_handle(c->key, m);
        if ((rv = resolve_handle(c->key, m, s, &h)) == CKR_OK)
            rv = fl->C_DeriveKey(s, &mech, h, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &secret);
    }
    if (rv != CKR_OK)
        return rv;
    rv = fl->C_GetAttributeValue(s, secret, &value, 1);
    fl->C_DestroyObject(s, secret);
    c->out_len = value.ulValueLen;
    return rv;
}

#define P11_MAX_SECRET 256

static void *derive_clone(const void *arg)
{
    const derive_call *c = arg;
    derive_call *copy = malloc(sizeof(*copy) + c->params.ulPublicDataLen + P11_MAX_SECRET);
    unsigned char *p;

    if (copy == NULL)
        return NULL;
    *copy = *c;
    p = (unsigned char *)(copy + 1);
    memcpy(p, c->params.pPublicData, c->params.ulPublicDataLen);
    copy->params.pPublicData = p;
    copy->out = p + c->params.ulPublicDataLen;
    copy->out_len = c->out_len < P11_MAX_SECRET ? c->out_len : P11_MAX_SECRET;
    p11_key_ref(copy->key);
    return copy;
}

static void derive_merge(void *arg, const void *from)
{
    derive_call *c = arg;
    const derive_call *copy = from;

    if (copy->out_len <= c->out_len)
        memcpy(c->out, copy->out, copy->out_len);
    c->out_len = copy->out_len;
}

static void derive_release(void *arg)
{
    derive_call *copy = arg;

    p11_wipe(copy->out, copy->out_len < P11_MAX_SECRET ? copy->out_len : P11_MAX_SECRET);
    p11_key_unref(copy->key);
    free(copy);
}

static const p11_op_class derive_class = {.run = derive_on_member, .clone = derive_clone, .merge = derive_merge, .release = derive_release};

p11_status p11_key_derive_ecdh(p11_key *key, const unsigned char *peer_point, size_t peer_len,
                               unsigned char *out, size_t *out_len)
{
    size_t need = (key->info.bits + 7) / 8;
    derive_call c;
    unsigned long long t0;
    p11_status st;

    if (out == NULL) {
        *out_len = need;
        return P11_OK;
    }
    if (*out_len < need)
        return p11_error_set(P11_ERR_BUFFER, CKR_BUFFER_TOO_SMALL,
                             "the shared secret needs %zu bytes, the caller allowed %zu", need,
                             *out_len);
    st = p11_core_ensure(key->core);
    if (st == P11_OK)
        st = p11_audit_admit(key->core);
    if (st != P11_OK)
        return st;
    memset(&c, 0, sizeof(c));
    c.key = key;
    c.params.kdf = CKD_NULL;
    c.params.pPublicData = (CK_BYTE *)peer_point;
    c.params.ulPublicDataLen = (CK_ULONG)peer_len;
    c.out = out;
    c.out_len = (CK_ULONG)*out_len;
    t0 = p11_now_ns();
    st = p11_partition_run(key->part, P11_RUN_IDEMPOTENT | P11_RUN_NEEDS_LOGIN, "ECDH derivation",
                           &derive_class, &c);
    record_key_op(key, "derive", CKM_ECDH1_DERIVE, st, t0);
    if (st == P11_OK)
        *out_len = c.out_len;
    return st;
}

int p11_key_supports(p11_key *key, CK_MECHANISM_TYPE mech, CK_FLAGS purpose)
{
    p11_member *m;
    size_t i;

    if (key->info.n_allowed_mechanisms) {
        for (i = 0; i < key->info.n_allowed_mechanisms; i++)
            if (key->info.allowed_mechanisms[i] == mech)
                break;
        if (i == key->info.n_allowed_mechanisms)
            return 0;
    }
    /* Only a known mechanism list can say no; when the core cannot tell
     * (not started, no member answering), the operation itself reports the
     * real cause instead of a misleading "mechanism not offered". */
    if (p11_core_ensure(key->core) != P11_OK)
        return 1;
    m = p11_partition_pick_member(key->part, 0);
    return m == NULL || p11_member_has_mechanism(m, mech, purpose);
}
