/* The state of modules, partitions and members as one JSON document: the
 * single source for `primusctl list` and `primusctl cluster status`. */
#include <string.h>

#include "internal.h"
#include "rv.h"

static json_t *member_json(p11_member *m)
{
    unsigned long long ops = atomic_load(&m->ops);
    unsigned long long ns = atomic_load(&m->latency_ns_total);
    CK_RV last = atomic_load(&m->last_rv);
    json_t *j;

    j = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:i, s:s, s:s*, s:I, s:I, s:f}",
                     "module", m->mod->path,
                     "serial", m->serial,
                     "slot", (json_int_t)m->slot,
                     "label", m->label,
                     "model", m->model,
                     "manufacturer", m->manufacturer,
                     "priority", m->priority,
                     "state", atomic_load(&m->state) == P11_MEMBER_UP ? "up" : "down",
                     "last_error", last == CKR_OK ? NULL
                                   : last == P11_CKR_TIMEOUT ? "no answer within the deadline"
                                                             : p11_rv_name(last),
                     "operations", (json_int_t)ops,
                     "failures", (json_int_t)atomic_load(&m->failures),
                     "mean_latency_ms", ops ? (double)ns / (double)ops / 1e6 : 0.0);
    if (j == NULL)
        return NULL;
    json_object_set_new(j, "name", json_string(m->name ? m->name : m->serial));
    json_object_set_new(j, "timeout_ms", m->gated ? json_integer(m->timeout_ms) : json_null());
    json_object_set_new(j, "times_down", json_integer((json_int_t)atomic_load(&m->downs)));
    json_object_set_new(j, "times_back", json_integer((json_int_t)atomic_load(&m->ups)));
    if (m->gated)
        json_object_set_new(j, "hung_calls", json_integer(p11_gate_stuck(m)));
    return j;
}

json_t *p11_core_status_json(p11_core *core)
{
    json_t *doc = json_object(), *modules = json_array(), *parts = json_array();
    size_t i, j;

    if (doc == NULL || modules == NULL || parts == NULL) {
        json_decref(doc);
        json_decref(modules);
        json_decref(parts);
        return NULL;
    }
    pthread_mutex_lock(&core->lock);
    for (i = 0; i < core->n_modules; i++) {
        p11_module *mod = core->modules[i];
        char manufacturer[33], description[33], version[16];
        p11_field_copy(manufacturer, sizeof(manufacturer), mod->info.manufacturerID,
                       sizeof(mod->info.manufacturerID));
        p11_field_copy(description, sizeof(description), mod->info.libraryDescription,
                       sizeof(mod->info.libraryDescription));
        snprintf(version, sizeof(version), "%u.%u", mod->info.libraryVersion.major,
                 mod->info.libraryVersion.minor);
        json_array_append_new(modules,
                              json_pack("{s:s, s:s, s:s, s:s, s:s}", "path", mod->path,
                                        "manufacturer", manufacturer, "description", description,
                                        "version", version, "cryptoki",
                                        mod->info.cryptokiVersion.major >= 3 ? "3.x" : "2.x"));
    }
    for (i = 0; i < core->n_parts; i++) {
        p11_partition *part = core->parts[i];
        json_t *members = json_array();
        size_t live = 0;
        for (j = 0; j < part->n_members; j++) {
            json_array_append_new(members, member_json(part->members[j]));
            live += atomic_load(&part->members[j]->state) == P11_MEMBER_UP;
        }
        json_array_append_new(parts, json_pack("{s:s, s:s, s:o}", "name", part->name, "state",
                                               live == part->n_members ? "up"
                                               : live ? "degraded" : "down",
                                               "members", members));
    }
    pthread_mutex_unlock(&core->lock);
    json_object_set_new(doc, "modules", modules);
    json_object_set_new(doc, "partitions", parts);
    return doc;
}
