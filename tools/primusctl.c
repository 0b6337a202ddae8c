/* primusctl: the operator CLI.  This file holds the dispatcher and what
 * every subcommand shares; each subcommand lives in its own cmd_*.c. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "primusctl.h"

static const struct {
    const char *name;
    primusctl_command_fn run;
    const char *summary;
} commands[] = {
    {"list", primusctl_list, "list modules, partitions, keys and certificates as pkcs11: URIs"},
    {"uri", primusctl_uri, "uri parse URI: check a pkcs11: URI and print its canonical form"},
    {"uri-pem", primusctl_uri_pem, "uri-pem URI [-out FILE]: a PEM key file holding only the URI"},
    {"check", primusctl_check, "check URI: prove a key works (attributes, sign and verify)"},
    {"cluster", primusctl_cluster, "cluster status: partitions, members, states, counters"},
    {"audit", primusctl_audit,
     "audit verify FILE [--key KEYFILE] [--allow-open]: check an audit log's chain and MACs"},
};

static void usage(FILE *to)
{
    size_t i;

    fprintf(to, "usage: primusctl [--module PATH] [--pin-source file:PATH] [--topology FILE] "
                "[--audit-log PATH] [--audit-key FILE] [--audit-policy fail-closed|fail-open] "
                "[--json] COMMAND ...\n\ncommands:\n");
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(to, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(to, "\nThe module defaults to $%s, then %s.\n", PRIMUS_MODULE_ENV,
            PRIMUS_DEFAULT_MODULE);
}

/* Take the shared options out of argv wherever they stand. */
static int parse_common(int *argc, char **argv, primusctl_opts *opts)
{
    int in, out = 0;

    for (in = 0; in < *argc; in++) {
        const char *a = argv[in];
        const char **slot = NULL;
        if (strcmp(a, "--json") == 0) {
            opts->json = 1;
            continue;
        }
        if (strcmp(a, "--module") == 0)
            slot = &opts->module;
        else if (strcmp(a, "--pin-source") == 0)
            slot = &opts->pin_source;
        else if (strcmp(a, "--topology") == 0)
            slot = &opts->topology;
        else if (strcmp(a, "--audit-log") == 0)
            slot = &opts->audit_log;
        else if (strcmp(a, "--audit-key") == 0)
            slot = &opts->audit_key;
        else if (strcmp(a, "--audit-policy") == 0)
            slot = &opts->audit_policy;
        if (slot) {
            if (in + 1 >= *argc) {
                fprintf(stderr, "primusctl: %s needs a value\n", a);
                return 0;
            }
            *slot = argv[++in];
            continue;
        }
        argv[out++] = argv[in];
    }
    *argc = out;
    argv[out] = NULL;
    return 1;
}

p11_core *primusctl_core(const primusctl_opts *opts)
{
    p11_core *core = p11_core_new();
    p11_status st = P11_OK;

    if (core == NULL) {
        fprintf(stderr, "primusctl: out of memory\n");
        return NULL;
    }
    if (opts->module)
        st = p11_core_set(core, "pkcs11-module-path", opts->module);
    if (st == P11_OK && opts->pin_source)
        st = p11_core_set(core, "pkcs11-module-token-pin", opts->pin_source);
    if (st == P11_OK && opts->topology)
        st = p11_core_set(core, "primus-topology", opts->topology);
    if (st == P11_OK && opts->audit_log)
        st = p11_core_set(core, "primus-audit-log", opts->audit_log);
    if (st == P11_OK && opts->audit_key)
        st = p11_core_set(core, "primus-audit-key", opts->audit_key);
    if (st == P11_OK && opts->audit_policy)
        st = p11_core_set(core, "primus-audit-policy", opts->audit_policy);
    if (st != P11_OK) {
        primusctl_fail(st, "configuration");
        p11_core_free(core);
        return NULL;
    }
    return core;
}

p11_core *primusctl_started_core(const primusctl_opts *opts, int *rc)
{
    p11_core *core = primusctl_core(opts);
    p11_status st;

    *rc = PRIMUSCTL_CONFIG;
    if (core == NULL)
        return NULL;
    st = p11_core_start(core);
    if (st != P11_OK) {
        *rc = primusctl_fail(st, "cannot start the HSM module");
        p11_core_free(core);
        return NULL;
    }
    *rc = PRIMUSCTL_OK;
    return core;
}

int primusctl_fail(p11_status st, const char *what)
{
    fprintf(stderr, "primusctl: %s: %s\n", what, p11_error_message());
    switch (st) {
    case P11_ERR_CONFIG:
    case P11_ERR_MODULE:
    case P11_ERR_PIN:
        return PRIMUSCTL_CONFIG;
    case P11_ERR_NO_TOKEN:
    case P11_ERR_NOT_FOUND:
        return PRIMUSCTL_NOT_FOUND;
    default:
        return PRIMUSCTL_FAIL;
    }
}

void primusctl_print_json(json_t *doc)
{
    if (doc) {
        json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(doc);
    }
}

char *primusctl_hex(const unsigned char *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *out = malloc(2 * len + 1);
    size_t i;

    if (out == NULL)
        return NULL;
    for (i = 0; i < len; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 15];
    }
    out[2 * len] = '\0';
    return out;
}

int main(int argc, char **argv)
{
    primusctl_opts opts = {0};
    size_t i;

    /* A dead remote HSM member must not kill the tool through SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    argc--;
    argv++;
    if (!parse_common(&argc, argv, &opts))
        return PRIMUSCTL_USAGE;
    if (argc == 0 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0 ||
        strcmp(argv[0], "help") == 0) {
        usage(argc == 0 ? stderr : stdout);
        return argc == 0 ? PRIMUSCTL_USAGE : PRIMUSCTL_OK;
    }
    if (strcmp(argv[0], "--version") == 0) {
        printf("primusctl %s\n", PRIMUS_VERSION_STR);
        return PRIMUSCTL_OK;
    }
    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[0], commands[i].name) == 0)
            return commands[i].run(argc, argv, &opts);
    fprintf(stderr, "primusctl: unknown command \"%s\"\n", argv[0]);
    usage(stderr);
    return PRIMUSCTL_USAGE;
}
