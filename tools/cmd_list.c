/* primusctl list: modules, partitions (with their members) and the keys
 * and certificates in each, as ready-to-paste pkcs11: URIs. */
#include <stdlib.h>
#include <string.h>

#include "primusctl.h"

static const char *class_name(CK_OBJECT_CLASS cls)
{
    switch (cls) {
    case CKO_PRIVATE_KEY: return "private key";
    case CKO_PUBLIC_KEY: return "public key";
    case CKO_CERTIFICATE: return "certificate";
    case CKO_SECRET_KEY: return "secret key";
    case CKO_DATA: return "data";
    default: return "object";
    }
}

static const char *key_type_name(CK_KEY_TYPE kt)
{
    switch (kt) {
    case CKK_RSA: return "RSA";
    case CKK_EC: return "EC";
    case CKK_EC_EDWARDS: return "EdDSA";
    case CKK_AES: return "AES";
    case CKK_GENERIC_SECRET: return "generic";
    default: return "";
    }
}

static json_t *object_json(const p11_object_info *o)
{
    char *id = primusctl_hex(o->id.data, o->id.len);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "uri", o->uri, "class",
                          class_name(o->cls), "key_type", key_type_name(o->key_type), "label",
                          o->label ? o->label : "", "id", id ? id : "");
    free(id);
    if (j && o->bits)
        json_object_set_new(j, "bits", json_integer((json_int_t)o->bits));
    return j;
}

/* Adds "objects" to each partition of the status document. */
static p11_status add_objects(p11_core *core, json_t *doc)
{
    json_t *parts = json_object_get(doc, "partitions"), *part;
    size_t i, j;

    json_array_foreach(parts, i, part) {
        const char *name = json_string_value(json_object_get(part, "name"));
        p11_uri *uri = p11_uri_new();
        p11_object_list list;
        json_t *objects = json_array();
        p11_status st;

        if (uri == NULL || objects == NULL ||
            p11_uri_set(uri, P11_URI_TOKEN, name, strlen(name)) != P11_URI_OK) {
            p11_uri_free(uri);
            json_decref(objects);
            return P11_ERR_MEMORY;
        }
        st = p11_find_objects(core, uri, P11_CLASS_FROM_URI, &list);
        p11_uri_free(uri);
        if (st != P11_OK) {
            json_decref(objects);
            return st;
        }
        for (j = 0; j < list.count; j++)
            json_array_append_new(objects, object_json(&list.items[j]));
        p11_object_list_clear(&list);
        json_object_set_new(part, "objects", objects);
    }
    return P11_OK;
}

static void print_text(json_t *doc)
{
    json_t *v, *part, *m, *o;
    size_t i, j;

    json_array_foreach(json_object_get(doc, "modules"), i, v)
        printf("module %s\n  %s, %s %s (PKCS#11 %s)\n",
               json_string_value(json_object_get(v, "path")),
               json_string_value(json_object_get(v, "manufacturer")),
               json_string_value(json_object_get(v, "description")),
               json_string_value(json_object_get(v, "version")),
               json_string_value(json_object_get(v, "cryptoki")));
    json_array_foreach(json_object_get(doc, "partitions"), i, part) {
        json_t *members = json_object_get(part, "members");
        printf("\npartition \"%s\" (%s, %zu member%s)\n",
               json_string_value(json_object_get(part, "name")),
               json_string_value(json_object_get(part, "state")), json_array_size(members),
               json_array_size(members) == 1 ? "" : "s");
        json_array_foreach(members, j, m)
            printf("  member serial %s, slot %lld, %s (%s)\n",
                   json_string_value(json_object_get(m, "serial")),
                   (long long)json_integer_value(json_object_get(m, "slot")),
                   json_string_value(json_object_get(m, "model")),
                   json_string_value(json_object_get(m, "state")));
        if (json_array_size(json_object_get(part, "objects")) == 0)
            printf("  (no objects visible%s)\n", "; give a PIN to see private objects");
        json_array_foreach(json_object_get(part, "objects"), j, o) {
            json_int_t bits = json_integer_value(json_object_get(o, "bits"));
            printf("  %-11s %-5s", json_string_value(json_object_get(o, "class")),
                   json_string_value(json_object_get(o, "key_type")));
            if (bits)
                printf(" %4lld", (long long)bits);
            else
                printf("     ");
            printf("  %s\n", json_string_value(json_object_get(o, "uri")));
        }
    }
}

int primusctl_list(int argc, char **argv, primusctl_opts *opts)
{
    p11_core *core;
    json_t *doc;
    p11_status st;
    int rc = PRIMUSCTL_OK;

    if (argc != 1) {
        fprintf(stderr, "usage: primusctl list [--json]\n");
        return PRIMUSCTL_USAGE;
    }
    core = primusctl_started_core(opts, &rc);
    if (core == NULL)
        return rc;
    doc = p11_core_status_json(core);
    st = doc ? add_objects(core, doc) : P11_ERR_MEMORY;
    if (st != P11_OK) {
        rc = primusctl_fail(st, "cannot list objects");
    } else if (opts->json) {
        primusctl_print_json(json_incref(doc));
    } else {
        print_text(doc);
    }
    json_decref(doc);
    p11_core_free(core);
    return rc;
}
