/*
 * primusctl: shared pieces of the operator CLI.  Each subcommand lives in
 * its own cmd_*.c and has the signature of primusctl_command_fn.
 *
 * Exit codes are the same for every subcommand (documented in README):
 */
#ifndef PRIMUSCTL_H
#define PRIMUSCTL_H

#include <stdio.h>
#include <jansson.h>
#include "p11core.h"

enum primusctl_exit {
    PRIMUSCTL_OK = 0,
    PRIMUSCTL_FAIL = 1,     /* the operation ran and failed (check failed, bad URI, ...) */
    PRIMUSCTL_USAGE = 2,    /* wrong command line */
    PRIMUSCTL_CONFIG = 3,   /* bad configuration, module or PIN problem */
    PRIMUSCTL_NOT_FOUND = 4 /* no such token or key */
};

/* Options every subcommand that touches the HSM accepts (parsed by
 * primusctl_parse_common): --module PATH, --pin-source file:PATH,
 * --topology FILE, --audit-log PATH, --audit-key FILE,
 * --audit-policy fail-closed|fail-open, --json.  argv is compacted to the
 * remaining words. */
typedef struct primusctl_opts {
    int json;
    const char *module;
    const char *pin_source;
    const char *topology;
    const char *audit_log;    /* primus-audit-log */
    const char *audit_key;    /* primus-audit-key */
    const char *audit_policy; /* primus-audit-policy */
} primusctl_opts;

typedef int (*primusctl_command_fn)(int argc, char **argv, primusctl_opts *opts);

int primusctl_uri(int argc, char **argv, primusctl_opts *opts);
int primusctl_uri_pem(int argc, char **argv, primusctl_opts *opts);
int primusctl_list(int argc, char **argv, primusctl_opts *opts);
int primusctl_check(int argc, char **argv, primusctl_opts *opts);
int primusctl_cluster(int argc, char **argv, primusctl_opts *opts);
int primusctl_audit(int argc, char **argv, primusctl_opts *opts);

/* A core configured from the options (and PRIMUS_PKCS11_MODULE); prints
 * the error and returns NULL on failure. */
p11_core *primusctl_core(const primusctl_opts *opts);
/* The same, started (modules loaded, partitions found); NULL with *rc the
 * exit code (the error printed) when it cannot start. */
p11_core *primusctl_started_core(const primusctl_opts *opts, int *rc);
/* Map a p11core status to an exit code and print the thread's error. */
int primusctl_fail(p11_status st, const char *what);
/* Print a JSON document to stdout (indent 2) and drop the reference. */
void primusctl_print_json(json_t *doc);
/* Lower-case hex of bytes, malloc'd. */
char *primusctl_hex(const unsigned char *data, size_t len);

#endif
