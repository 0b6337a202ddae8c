/*
 * The cluster topology file (configuration key primus-topology): which
 * partitions exist and which redundant HSMs (members) hold each of them.
 *
 * File format:
 *
 * ```json
 * {
 *   "partitions": [
 *     {
 *       "name": "PAYMENTS",
 *       "id": "payments-prod",
 *       "members": [
 *         {
 *           "name": "hsm-zurich-1",
 *           "module": "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so",
 *           "env": { "P11_KIT_SERVER_ADDRESS": "unix:path=/run/hsm1.sock" },
 *           "init-args": "",
 *           "token": "PAYMENTS",
 *           "serial": "1234abcd",
 *           "slot": 3,
 *           "priority": 0,
 *           "timeout-ms": 1000
 *         }
 *       ]
 *     }
 *   ]
 * }
 * ```
 *
 * Rules (any other key, at any level, is an error; so is a duplicate key):
 *   top level    an object holding only "partitions", a non-empty array
 *   partition    "name"     required string, 1..32 bytes: the token label
 *                           that URIs name with token=; unique in the file
 *                "id"       optional string, 1..64 bytes (default: name)
 *                "members"  required array of 1..16 member objects
 *   member       "module"   required string: absolute path of the PKCS#11
 *                           module
 *                "name"     optional string, 1..64 bytes (default
 *                           "member-N", N counted from 1 within the
 *                           partition); unique within the partition
 *                "env"      optional object of string values, set in the
 *                           environment before the module is loaded; names
 *                           match [A-Za-z_][A-Za-z0-9_]*
 *                "init-args" optional string, pReserved of C_Initialize
 *                "token"    optional string, 1..32 bytes: the token label
 *                           to select on that module (default: the
 *                           partition name)
 *                "serial"   optional string, 1..16 bytes: the token serial
 *                "slot"     optional integer >= 0: the slot ID
 *                "priority" optional integer 0..99 (default 0, highest)
 *                "timeout-ms" optional integer 1..600000 (default: the
 *                           loader's default_timeout_ms)
 * Names, ids and token labels hold no control characters; labels and
 * serials do not end in a space (PKCS#11 pads them with spaces, so such a
 * value could never match).
 *
 * Members are grouped by priority (0 highest): work goes to the
 * highest-priority pool that has a live member.
 *
 * Errors are P11_ERR_CONFIG with the message "<file>:<line>:<column>: what
 * is wrong and how to fix it" (1-based; the column counts characters),
 * pointing at the offending key, or at the opening brace of an object that
 * lacks a required key.
 *
 * OpenSSL-free, plain C11.
 */
#ifndef PRIMUS_P11CORE_TOPOLOGY_H
#define PRIMUS_P11CORE_TOPOLOGY_H

#include <stddef.h>
#include <p11-kit/pkcs11.h>

#include "p11core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define P11_TOPOLOGY_MAX_FILE (1024 * 1024) /* bytes; a larger file is refused */

typedef struct p11_topology_member {
    char *name;
    char *module;          /* absolute path */
    char **env;            /* NULL-terminated array of "NAME=value" strings, NULL when none */
    char *init_args;       /* NULL when absent or empty */
    char *token;           /* token label to select (default: the partition name) */
    char *serial;          /* NULL when absent */
    long slot;             /* -1 when absent */
    int priority;
    unsigned timeout_ms;
} p11_topology_member;

typedef struct p11_topology_partition {
    char *name;
    char *id;
    p11_topology_member *members;
    size_t n_members;
} p11_topology_partition;

typedef struct p11_topology {
    p11_topology_partition *parts;
    size_t n_parts;
} p11_topology;

/* Load and validate; default_timeout_ms fills members without timeout-ms.
 * On error *out is NULL and the thread's error says what and where. */
p11_status p11_topology_load(const char *path, unsigned default_timeout_ms, p11_topology **out);
/* The same from a string (path is used only in messages); for tests and fuzzing. */
p11_status p11_topology_parse(const char *text, size_t len, const char *path,
                              unsigned default_timeout_ms, p11_topology **out);
void p11_topology_free(p11_topology *topo);

#ifdef __cplusplus
}
#endif

#endif
