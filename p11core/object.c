/* Object lookup by URI and attribute reading.  Only public attributes are
 * ever read: private key material stays in the token. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "rv.h"

/* ---- attribute reading ---- */

/* Read variable-length attributes in two batched calls (lengths, then
 * values), so that a remote member costs two round trips per object.
 * Attributes the object lacks come back with data NULL. */
static CK_RV read_attributes(p11_member *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                             CK_ATTRIBUTE *t, CK_ULONG n)
{
    CK_FUNCTION_LIST *fl = m->mod->fl;
    CK_ULONG i;
    CK_RV rv;

    for (i = 0; i < n; i++) {
        t[i].pValue = NULL;
        t[i].ulValueLen = 0;
    }
    rv = fl->C_GetAttributeValue(s, h, t, n);
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_ATTRIBUTE_SENSITIVE) {
        if (p11_rv_is_member_fault(rv))
            return rv;
        /* Some modules refuse a whole batch for one bad attribute: ask one by one. */
        for (i = 0; i < n; i++)
            if (fl->C_GetAttributeValue(s, h, &t[i], 1) != CKR_OK)
                t[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
    }
    for (i = 0; i < n; i++) {
        if (t[i].ulValueLen == CK_UNAVAILABLE_INFORMATION || t[i].ulValueLen == 0) {
            t[i].ulValueLen = 0;
            continue;
        }
        t[i].pValue = malloc(t[i].ulValueLen);
        if (t[i].pValue == NULL)
            return CKR_HOST_MEMORY;
    }
    rv = fl->C_GetAttributeValue(s, h, t, n);
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_ATTRIBUTE_SENSITIVE) {
        if (p11_rv_is_member_fault(rv))
            return rv;
        for (i = 0; i < n; i++)
            if (t[i].pValue && fl->C_GetAttributeValue(s, h, &t[i], 1) != CKR_OK) {
                free(t[i].pValue);
                t[i].pValue = NULL;
                t[i].ulValueLen = 0;
            }
    }
    for (i = 0; i < n; i++)
        if (t[i].ulValueLen == CK_UNAVAILABLE_INFORMATION) {
            free(t[i].pValue);
            t[i].pValue = NULL;
            t[i].ulValueLen = 0;
        }
    return CKR_OK;
}

static void take_bytes(p11_bytes *dst, CK_ATTRIBUTE *a)
{
    dst->data = a->pValue;
    dst->len = a->pValue ? a->ulValueLen : 0;
    a->pValue = NULL;
}

static int attr_bool(const CK_ATTRIBUTE *a)
{
    return a->pValue && a->ulValueLen == sizeof(CK_BBOOL) && *(CK_BBOOL *)a->pValue == CK_TRUE;
}

/* Named curves we know the size of: DER of the OID, field bits. */
static const struct {
    unsigned char der[12];
    size_t len;
    CK_ULONG bits;
} known_curves[] = {
    {{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}, 10, 256}, /* P-256 */
    {{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22}, 7, 384},                   /* P-384 */
    {{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23}, 7, 521},                   /* P-521 */
    {{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a}, 7, 256},                   /* secp256k1 */
    {{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x01}, 10, 192}, /* P-192 */
    {{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x21}, 7, 224},                   /* P-224 */
    {{0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07}, 11, 256}, /* brainpoolP256r1 */
    {{0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0b}, 11, 384}, /* brainpoolP384r1 */
    {{0x06, 0x09, 0x2b, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x0d}, 11, 512}, /* brainpoolP512r1 */
    {{0x06, 0x03, 0x2b, 0x65, 0x70}, 5, 255},                               /* Ed25519 */
    {{0x06, 0x03, 0x2b, 0x65, 0x71}, 5, 448},                               /* Ed448 */
};

static CK_ULONG curve_bits(const p11_bytes *params)
{
    size_t i;

    for (i = 0; i < sizeof(known_curves) / sizeof(known_curves[0]); i++)
        if (params->len == known_curves[i].len &&
            memcmp(params->data, known_curves[i].der, params->len) == 0)
            return known_curves[i].bits;
    /* PrintableString "edwards25519" (PKCS#11 3.0 allows curve names) */
    if (params->len == 14 && params->data[0] == 0x13 && memcmp(params->data + 2, "edwards25519", 12) == 0)
        return 255;
    return 0;
}

/* CKA_EC_POINT is a DER OCTET STRING by the spec; some modules give the raw
 * point.  Keep the raw point (or the raw Edwards key). */
static void unwrap_ec_point(p11_bytes *point, CK_ULONG bits)
{
    size_t field = (bits + 7) / 8, hdr, inner;
    unsigned char *d = point->data;
    size_t len = point->len;

    if (len < 2 || d[0] != 0x04)
        return;
    if (bits && len == 2 * field + 1)
        return; /* already a raw uncompressed point */
    if (d[1] < 0x80) {
        hdr = 2;
        inner = d[1];
    } else if (d[1] == 0x81 && len > 2) {
        hdr = 3;
        inner = d[2];
    } else if (d[1] == 0x82 && len > 3) {
        hdr = 4;
        inner = ((size_t)d[2] << 8) | d[3];
    } else {
        return;
    }
    if (hdr + inner != len)
        return;
    memmove(d, d + hdr, inner);
    point->len = inner;
}

static CK_ULONG modulus_bits(const p11_bytes *mod)
{
    size_t i = 0;
    CK_ULONG bits;
    unsigned char top;

    while (i < mod->len && mod->data[i] == 0)
        i++;
    if (i == mod->len)
        return 0;
    bits = (CK_ULONG)(mod->len - i) * 8;
    for (top = mod->data[i]; !(top & 0x80); top <<= 1)
        bits--;
    return bits;
}

enum { A_LABEL, A_ID, A_MODULUS, A_EXPONENT, A_EC_PARAMS, A_EC_POINT, A_VALUE, A_ALLOWED,
       A_PRIVATE, A_SENSITIVE, A_EXTRACTABLE, A_ALWAYS_SENSITIVE, A_NEVER_EXTRACTABLE,
       A_ALWAYS_AUTH, A_SIGN, A_DECRYPT, A_DERIVE, A_VERIFY, A_ENCRYPT, A_LOCAL, A_COUNT };

CK_RV p11_object_read(p11_member *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                      p11_object_info *info)
{
    CK_OBJECT_CLASS cls = (CK_OBJECT_CLASS)-1;
    CK_KEY_TYPE kt = (CK_KEY_TYPE)-1;
    CK_ATTRIBUTE head[2] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &kt, sizeof(kt)}};
    CK_ATTRIBUTE t[A_COUNT];
    static const CK_ATTRIBUTE_TYPE types[A_COUNT] = {
        CKA_LABEL, CKA_ID, CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_EC_PARAMS, CKA_EC_POINT,
        CKA_VALUE, CKA_ALLOWED_MECHANISMS, CKA_PRIVATE, CKA_SENSITIVE, CKA_EXTRACTABLE,
        CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE, CKA_ALWAYS_AUTHENTICATE, CKA_SIGN,
        CKA_DECRYPT, CKA_DERIVE, CKA_VERIFY, CKA_ENCRYPT, CKA_LOCAL};
    static const unsigned flag_of[A_COUNT] = {
        [A_PRIVATE] = P11_OBJ_PRIVATE, [A_SENSITIVE] = P11_OBJ_SENSITIVE,
        [A_EXTRACTABLE] = P11_OBJ_EXTRACTABLE, [A_ALWAYS_SENSITIVE] = P11_OBJ_ALWAYS_SENSITIVE,
        [A_NEVER_EXTRACTABLE] = P11_OBJ_NEVER_EXTRACTABLE,
        [A_ALWAYS_AUTH] = P11_OBJ_ALWAYS_AUTHENTICATE, [A_SIGN] = P11_OBJ_CAN_SIGN,
        [A_DECRYPT] = P11_OBJ_CAN_DECRYPT, [A_DERIVE] = P11_OBJ_CAN_DERIVE,
        [A_VERIFY] = P11_OBJ_CAN_VERIFY, [A_ENCRYPT] = P11_OBJ_CAN_ENCRYPT,
        [A_LOCAL] = P11_OBJ_LOCAL};
    CK_ULONG i, n;
    CK_RV rv;

    memset(info, 0, sizeof(*info));
    rv = m->mod->fl->C_GetAttributeValue(s, h, head, 2);
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID) {
        if (p11_rv_is_member_fault(rv))
            return rv;
        if (m->mod->fl->C_GetAttributeValue(s, h, head, 1) != CKR_OK)
            return rv;
    }
    if (head[1].ulValueLen != sizeof(kt))
        kt = (CK_KEY_TYPE)-1;
    info->cls = cls;
    info->key_type = kt;
    for (i = 0; i < A_COUNT; i++)
        t[i].type = types[i];
    /* What to ask depends on the class: never CKA_VALUE of a key. */
    if (cls == CKO_CERTIFICATE || cls == CKO_DATA) {
        n = A_VALUE + 1;
        t[A_MODULUS].type = t[A_EXPONENT].type = t[A_EC_PARAMS].type = t[A_EC_POINT].type = CKA_LABEL;
    } else {
        n = A_COUNT;
        t[A_VALUE].type = CKA_LABEL; /* placeholder, dropped below */
        if (cls == CKO_SECRET_KEY)
            t[A_MODULUS].type = t[A_EXPONENT].type = t[A_EC_PARAMS].type = t[A_EC_POINT].type =
                CKA_LABEL;
    }
    rv = read_attributes(m, s, h, t, n);
    if (rv == CKR_OK) {
        for (i = A_MODULUS; i <= A_VALUE; i++)
            if (t[i].type == CKA_LABEL) {
                free(t[i].pValue);
                t[i].pValue = NULL;
            }
        info->label = malloc(t[A_LABEL].ulValueLen + 1);
        if (info->label) {
            if (t[A_LABEL].pValue)
                memcpy(info->label, t[A_LABEL].pValue, t[A_LABEL].ulValueLen);
            info->label[t[A_LABEL].pValue ? t[A_LABEL].ulValueLen : 0] = '\0';
        } else {
            rv = CKR_HOST_MEMORY;
        }
        take_bytes(&info->id, &t[A_ID]);
        take_bytes(&info->modulus, &t[A_MODULUS]);
        take_bytes(&info->public_exponent, &t[A_EXPONENT]);
        take_bytes(&info->ec_params, &t[A_EC_PARAMS]);
        take_bytes(&info->ec_point, &t[A_EC_POINT]);
        take_bytes(&info->cert_der, &t[A_VALUE]);
        if (n > A_ALLOWED && t[A_ALLOWED].pValue) {
            info->allowed_mechanisms = t[A_ALLOWED].pValue;
            info->n_allowed_mechanisms = t[A_ALLOWED].ulValueLen / sizeof(CK_MECHANISM_TYPE);
            t[A_ALLOWED].pValue = NULL;
        }
        for (i = A_PRIVATE; i < n; i++)
            if (attr_bool(&t[i]))
                info->flags |= flag_of[i];
        if (info->modulus.len)
            info->bits = modulus_bits(&info->modulus);
        else if (info->ec_params.len)
            info->bits = curve_bits(&info->ec_params);
        if (info->ec_point.len)
            unwrap_ec_point(&info->ec_point, info->bits);
    }
    for (i = 0; i < n; i++)
        free(t[i].pValue);
    if (rv != CKR_OK)
        p11_object_info_clear(info);
    return rv;
}

CK_RV p11_object_search(p11_member *m, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                        CK_OBJECT_HANDLE **handles, size_t *count)
{
    CK_FUNCTION_LIST *fl = m->mod->fl;
    CK_OBJECT_HANDLE chunk[64], *all = NULL, *grown;
    CK_ULONG got;
    size_t total = 0;
    CK_RV rv;

    *handles = NULL;
    *count = 0;
    rv = fl->C_FindObjectsInit(s, tmpl, n);
    if (rv != CKR_OK)
        return rv;
    for (;;) {
        rv = fl->C_FindObjects(s, chunk, 64, &got);
        if (rv != CKR_OK || got == 0)
            break;
        grown = realloc(all, (total + got) * sizeof(*all));
        if (grown == NULL) {
            rv = CKR_HOST_MEMORY;
            break;
        }
        all = grown;
        memcpy(all + total, chunk, got * sizeof(*all));
        total += got;
    }
    fl->C_FindObjectsFinal(s);
    if (rv != CKR_OK) {
        free(all);
        return rv;
    }
    *handles = all;
    *count = total;
    return CKR_OK;
}

/* ---- URIs for objects ---- */
static const char *type_word(CK_OBJECT_CLASS cls)
{
    switch (cls) {
    case CKO_PRIVATE_KEY: return "private";
    case CKO_PUBLIC_KEY: return "public";
    case CKO_CERTIFICATE: return "cert";
    case CKO_SECRET_KEY: return "secret-key";
    case CKO_DATA: return "data";
    default: return NULL;
    }
}

char *p11_object_uri(const char *partition, const p11_object_info *info)
{
    p11_uri *uri = p11_uri_new();
    const char *type = type_word(info->cls);
    char *text = NULL;

    if (uri == NULL)
        return NULL;
    if (p11_uri_set(uri, P11_URI_TOKEN, partition, strlen(partition)) == P11_URI_OK &&
        (info->id.len == 0 || p11_uri_set(uri, P11_URI_ID, info->id.data, info->id.len) == P11_URI_OK) &&
        (info->label == NULL || info->label[0] == '\0' ||
         p11_uri_set(uri, P11_URI_OBJECT, info->label, strlen(info->label)) == P11_URI_OK) &&
        (type == NULL || p11_uri_set(uri, P11_URI_TYPE, type, strlen(type)) == P11_URI_OK))
        text = p11_uri_format(uri, P11_URI_FORMAT_OMIT_QUERY);
    p11_uri_free(uri);
    return text;
}

/* ---- lists ---- */
void p11_object_info_clear(p11_object_info *info)
{
    if (info == NULL)
        return;
    free(info->label);
    free(info->id.data);
    free(info->partition);
    free(info->uri);
    free(info->modulus.data);
    free(info->public_exponent.data);
    free(info->ec_params.data);
    free(info->ec_point.data);
    free(info->cert_der.data);
    free(info->allowed_mechanisms);
    memset(info, 0, sizeof(*info));
}

void p11_object_list_clear(p11_object_list *list)
{
    size_t i;

    if (list == NULL)
        return;
    for (i = 0; i < list->count; i++)
        p11_object_info_clear(&list->items[i]);
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

static int copy_bytes(p11_bytes *dst, const p11_bytes *src)
{
    dst->len = 0;
    dst->data = NULL;
    if (src->len == 0)
        return 1;
    dst->data = malloc(src->len);
    if (dst->data == NULL)
        return 0;
    memcpy(dst->data, src->data, src->len);
    dst->len = src->len;
    return 1;
}

p11_status p11_object_info_copy(p11_object_info *dst, const p11_object_info *src)
{
    int ok;

    *dst = *src;
    dst->label = p11_strdup(src->label);
    dst->partition = p11_strdup(src->partition);
    dst->uri = p11_strdup(src->uri);
    dst->allowed_mechanisms = NULL;
    dst->n_allowed_mechanisms = 0;
    ok = (src->label == NULL || dst->label) && (src->partition == NULL || dst->partition) &&
         (src->uri == NULL || dst->uri);
    ok &= copy_bytes(&dst->id, &src->id);
    ok &= copy_bytes(&dst->modulus, &src->modulus);
    ok &= copy_bytes(&dst->public_exponent, &src->public_exponent);
    ok &= copy_bytes(&dst->ec_params, &src->ec_params);
    ok &= copy_bytes(&dst->ec_point, &src->ec_point);
    ok &= copy_bytes(&dst->cert_der, &src->cert_der);
    if (ok && src->n_allowed_mechanisms) {
        dst->allowed_mechanisms = malloc(src->n_allowed_mechanisms * sizeof(CK_MECHANISM_TYPE));
        if (dst->allowed_mechanisms) {
            memcpy(dst->allowed_mechanisms, src->allowed_mechanisms,
                   src->n_allowed_mechanisms * sizeof(CK_MECHANISM_TYPE));
            dst->n_allowed_mechanisms = src->n_allowed_mechanisms;
        } else {
            ok = 0;
        }
    }
    if (!ok) {
        p11_object_info_clear(dst);
        return p11_error_set(P11_ERR_MEMORY, CKR_HOST_MEMORY, "out of memory");
    }
    return P11_OK;
}
