/* primusctl cluster status: each partition, its members, their state, last
 * error, latency and operation counts.  With --probe-uri it first runs a
 * lookup so that members are actually contacted. */
#include <string.h>

#include "primusctl.h"

static void print_text(json_t *doc)
{
    json_t *part, *m;
    size_t i, j;

    json_array_foreach(json_object_get(doc, "partitions"), i, part) {
        printf("partition \"%s\": %s\n", json_string_value(json_object_get(part, "name")),
               json_string_value(json_object_get(part, "state")));
        printf("  %-14s %-8s %-4s %-10s %-9s %-8s %s\n", "member", "state", "prio", "operations",
               "failures", "mean ms", "last error");
        json_array_foreach(json_object_get(part, "members"), j, m) {
            const char *last = json_string_value(json_object_get(m, "last_error"));
            printf("  %-14s %-8s %-4lld %-10lld %-9lld %-8.3f %s\n",
                   json_string_value(json_object_get(m, "name")),
                   json_string_value(json_object_get(m, "state")),
                   (long long)json_integer_value(json_object_get(m, "priority")),
                   (long long)json_integer_value(json_object_get(m, "operations")),
                   (long long)json_integer_value(json_object_get(m, "failures")),
                   json_real_value(json_object_get(m, "mean_latency_ms")), last ? last : "-");
        }
    }
}

int primusctl_cluster(int argc, char **argv, primusctl_opts *opts)
{
    p11_core *core;
    json_t *doc;
    int rc;

    if (argc != 2 || strcmp(argv[1], "status") != 0) {
        fprintf(stderr, "usage: primusctl [--topology FILE] cluster status [--json]\n");
        return PRIMUSCTL_USAGE;
    }
    core = primusctl_started_core(opts, &rc);
    if (core == NULL)
        return rc;
    doc = p11_core_status_json(core);
    if (opts->json)
        primusctl_print_json(json_incref(doc));
    else
        print_text(doc);
    json_decref(doc);
    p11_core_free(core);
    return PRIMUSCTL_OK;
}
