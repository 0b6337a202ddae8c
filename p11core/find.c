/* Finding objects by URI: which partitions the URI selects, login when
 * private objects are asked for, the search on one live member, and the
 * public half of private keys completed from their public key object. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "rv.h"

#define P11_MAX_MATCHED_PARTITIONS 64

typedef struct find_request {
    const p11_uri *uri;
    CK_OBJECT_CLASS cls;   /* (CK_OBJECT_CLASS)-1: any */
    p11_object_list *out;
} find_request;

static CK_OBJECT_CLASS class_of_uri(const p11_uri *uri)
{
    switch (p11_uri_get_type(uri)) {
    case P11_URI_TYPE_PUBLIC: return CKO_PUBLIC_KEY;
    case P11_URI_TYPE_PRIVATE: return CKO_PRIVATE_KEY;
    case P11_URI_TYPE_CERT: return CKO_CERTIFICATE;
    case P11_URI_TYPE_SECRET_KEY: return CKO_SECRET_KEY;
    case P11_URI_TYPE_DATA: return CKO_DATA;
    default: return (CK_OBJECT_CLASS)-1;
    }
}

static CK_BBOOL token_objects_only = CK_TRUE;

/* URIs name token objects; session objects (our own key copies among them)
 * are never a lookup's answer. */
static CK_ULONG build_template(const p11_uri *uri, CK_OBJECT_CLASS *cls, CK_ATTRIBUTE *t)
{
    CK_ULONG n = 0;
    const char *v;
    size_t len;

    t[n].type = CKA_TOKEN;
    t[n].pValue = &token_objects_only;
    t[n++].ulValueLen = sizeof(token_objects_only);

    if (*cls != (CK_OBJECT_CLASS)-1) {
        t[n].type = CKA_CLASS;
        t[n].pValue = cls;
        t[n++].ulValueLen = sizeof(*cls);
    }
    if ((v = p11_uri_get(uri, P11_URI_OBJECT, &len)) != NULL) {
        t[n].type = CKA_LABEL;
        t[n].pValue = (void *)v;
        t[n++].ulValueLen = len;
    }
    if ((v = p11_uri_get(uri, P11_URI_ID, &len)) != NULL) {
        t[n].type = CKA_ID;
        t[n].pValue = (void *)v;
        t[n++].ulValueLen = len;
    }
    return n;
}

/* A private key's public half: RSA private keys carry modulus and exponent;
 * an EC private key has no CKA_EC_POINT, so it comes from the public key
 * object with the same CKA_ID (or, without an id, the same label). */
static void complete_public_half(p11_member *m, CK_SESSION_HANDLE s, p11_object_info *key)
{
    CK_OBJECT_CLASS pub = CKO_PUBLIC_KEY;
    CK_ATTRIBUTE t[2] = {{CKA_CLASS, &pub, sizeof(pub)}};
    CK_OBJECT_HANDLE *found = NULL;
    size_t count = 0;
    p11_object_info info;

    if (key->cls != CKO_PRIVATE_KEY)
        return;
    if (key->key_type == CKK_RSA && key->modulus.len && key->public_exponent.len)
        return;
    if ((key->key_type == CKK_EC || key->key_type == CKK_EC_EDWARDS) && key->ec_point.len)
        return;
    if (key->id.len) {
        t[1].type = CKA_ID;
        t[1].pValue = key->id.data;
        t[1].ulValueLen = key->id.len;
    } else if (key->label && key->label[0]) {
        t[1].type = CKA_LABEL;
        t[1].pValue = key->label;
        t[1].ulValueLen = strlen(key->label);
    } else {
        return;
    }
    if (p11_object_search(m, s, t, 2, &found, &count) != CKR_OK || count == 0) {
        free(found);
        return;
    }
    if (p11_object_read(m, s, found[0], &info) == CKR_OK) {
        if (key->modulus.len == 0 && info.modulus.len) {
            key->modulus = info.modulus;
            info.modulus.data = NULL;
            key->bits = info.bits;
        }
        if (key->public_exponent.len == 0 && info.public_exponent.len) {
            key->public_exponent = info.public_exponent;
            info.public_exponent.data = NULL;
        }
        if (key->ec_point.len == 0 && info.ec_point.len) {
            key->ec_point = info.ec_point;
            info.ec_point.data = NULL;
        }
        if (key->ec_params.len == 0 && info.ec_params.len) {
            key->ec_params = info.ec_params;
            info.ec_params.data = NULL;
            key->bits = info.bits;
        }
        p11_object_info_clear(&info);
    }
    free(found);
}

static CK_RV search_on_member(p11_member *m, CK_SESSION_HANDLE s, void *arg)
{
    find_request *req = arg;
    CK_ATTRIBUTE t[4];
    CK_OBJECT_CLASS cls = req->cls;
    CK_OBJECT_HANDLE *found = NULL;
    size_t count = 0, i, base = req->out->count;
    p11_object_info *grown;
    CK_RV rv;

    rv = p11_object_search(m, s, t, build_template(req->uri, &cls, t), &found, &count);
    if (rv != CKR_OK)
        return rv;
    if (count) {
        grown = realloc(req->out->items, (base + count) * sizeof(*grown));
        if (grown == NULL) {
            free(found);
            return CKR_HOST_MEMORY;
        }
        req->out->items = grown;
    }
    for (i = 0; i < count; i++) {
        p11_object_info *info = &req->out->items[req->out->count];
        rv = p11_object_read(m, s, found[i], info);
        if (rv != CKR_OK) {
            if (p11_rv_is_member_fault(rv))
                break;
            rv = CKR_OK; /* an object we may not read is simply not listed */
            continue;
        }
        complete_public_half(m, s, info);
        info->partition = p11_strdup(m->part->name);
        info->uri = p11_object_uri(m->part->name, info);
        if (info->partition == NULL || info->uri == NULL) {
            p11_object_info_clear(info);
            rv = CKR_HOST_MEMORY;
            break;
        }
        req->out->count++;
    }
    free(found);
    if (rv != CKR_OK) {
        /* a failed member's partial results are dropped; the next member redoes the search */
        while (req->out->count > base)
            p11_object_info_clear(&req->out->items[--req->out->count]);
    }
    return rv;
}

static void *search_clone(const void *arg)
{
    const find_request *req = arg;
    find_request *copy = calloc(1, sizeof(*copy) + sizeof(p11_object_list));

    if (copy == NULL)
        return NULL;
    copy->uri = p11_uri_dup(req->uri);
    copy->cls = req->cls;
    copy->out = (p11_object_list *)(copy + 1);
    if (copy->uri == NULL) {
        free(copy);
        return NULL;
    }
    return copy;
}

static void search_merge(void *arg, const void *from)
{
    find_request *req = arg;
    const find_request *copy = from;
    p11_object_info *grown;
    size_t i;

    if (copy->out->count == 0)
        return;
    grown = realloc(req->out->items, (req->out->count + copy->out->count) * sizeof(*grown));
    if (grown == NULL)
        return; /* the results are lost; the caller sees fewer objects */
    req->out->items = grown;
    for (i = 0; i < copy->out->count; i++)
        req->out->items[req->out->count++] = copy->out->items[i];
    copy->out->count = 0; /* moved */
}

static void search_release(void *arg)
{
    find_request *copy = arg;

    p11_object_list_clear(copy->out);
    p11_uri_free((p11_uri *)copy->uri);
    free(copy);
}

static const p11_op_class search_class = {.run = search_on_member, .clone = search_clone, .merge = search_merge, .release = search_release};

/* The member that searched found nothing: in a cluster, a key that is not
 * yet replicated (or was generated on one member) may still be on another
 * live member, and operations go to the members that hold it (key.c).
 * Each other live member is asked once; the first that has a match
 * answers.  A failure there changes nothing: the empty answer stands. */
static void search_other_members(p11_partition *part, unsigned flags, find_request *req,
                                 p11_member *searched)
{
    size_t i, before = req->out->count;

    for (i = 0; i < part->n_members && req->out->count == before; i++) {
        p11_member *m = part->members[i];
        if (m == searched || atomic_load(&m->state) != P11_MEMBER_UP)
            continue;
        if (p11_member_run(m, flags, "object search", &search_class, req) != P11_OK)
            p11_error_clear();
    }
}

static int partition_has_pin(p11_partition *part)
{
    int has;

    pthread_mutex_lock(&part->pin_lock);
    has = part->pin != NULL || part->core->token_pin_spec != NULL;
    pthread_mutex_unlock(&part->pin_lock);
    return has;
}

static p11_status no_token_error(const p11_uri *uri)
{
    size_t len, i, used = 0;
    const char *label = p11_uri_get(uri, P11_URI_TOKEN, &len);
    char shown[3 * 64 + 1];

    if (label) {
        /* as the URI wrote it: a NUL or control byte shows as %XX */
        for (i = 0; i < len && used + 4 <= sizeof(shown); i++) {
            unsigned char c = (unsigned char)label[i];
            used += (size_t)snprintf(shown + used, sizeof(shown) - used,
                                     c < 0x20 || c == 0x7f || c == '%' ? "%%%02X" : "%c", c);
        }
        shown[used] = '\0';
        return p11_error_set(P11_ERR_NO_TOKEN, CKR_OK,
                             "no token labelled \"%s\" is present; `primusctl list` shows the "
                             "partitions this module offers",
                             shown);
    }
    return p11_error_set(P11_ERR_NO_TOKEN, CKR_OK,
                         "no initialized token matches the URI; `primusctl list` shows the "
                         "partitions this module offers");
}

p11_status p11_find_objects(p11_core *core, const p11_uri *uri, CK_OBJECT_CLASS cls,
                            p11_object_list *out)
{
    p11_partition *parts[P11_MAX_MATCHED_PARTITIONS];
    const char *module_path = p11_uri_get(uri, P11_URI_MODULE_PATH, NULL);
    char *pin = NULL;
    size_t n, i;
    p11_status st;

    out->items = NULL;
    out->count = 0;
    if (module_path) {
        p11_module *mod;
        st = p11_core_use_module(core, module_path, &mod);
    } else {
        st = p11_core_ensure(core);
    }
    if (st != P11_OK)
        return st;
    n = p11_core_match_partitions(core, uri, parts, P11_MAX_MATCHED_PARTITIONS);
    if (n == 0) {
        /* the token may have appeared since start */
        st = p11_core_rescan(core);
        if (st != P11_OK)
            return st;
        n = p11_core_match_partitions(core, uri, parts, P11_MAX_MATCHED_PARTITIONS);
        if (n == 0)
            return no_token_error(uri);
    }
    st = p11_pin_from_uri(uri, &pin);
    if (st != P11_OK)
        return st;
    if (cls == P11_CLASS_FROM_URI)
        cls = class_of_uri(uri);
    for (i = 0; i < n; i++) {
        find_request req = {uri, cls, out};
        unsigned flags = P11_RUN_IDEMPOTENT;
        if (pin && (st = p11_partition_offer_pin(parts[i], pin)) != P11_OK)
            break;
        /* Private objects are only visible after login.  Log in when they
         * are asked for, or may be and a PIN is at hand. */
        if (cls == CKO_PRIVATE_KEY || cls == CKO_SECRET_KEY ||
            ((cls == (CK_OBJECT_CLASS)-1 || cls == CKO_DATA) && partition_has_pin(parts[i])))
            flags |= P11_RUN_NEEDS_LOGIN;
        size_t before = out->count;
        st = p11_partition_run(parts[i], flags, "object search", &search_class, &req);
        if (st != P11_OK)
            break;
        if (out->count == before && parts[i]->n_members > 1)
            search_other_members(parts[i], flags, &req, p11_partition_served());
    }
    p11_pin_free(pin);
    if (st != P11_OK)
        p11_object_list_clear(out);
    return st;
}
