/* The topology file loader: every field of a valid file, the defaults, and
 * each class of error with its exact line:column and message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "topology.h"

#define FILE_NAME "/etc/primus/topology.json"

/* Allocation failures: the loader's own allocations are reached by wrapping
 * malloc/calloc at link time (see topology.cmake), jansson's through its
 * allocator hooks.  fail_countdown: allocations left before one fails
 * (-1: none fails). */
void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
static long fail_countdown = -1;
static int failed_in_jansson; /* the failed allocation was jansson's */

static int alloc_fails(void)
{
    if (fail_countdown < 0)
        return 0;
    return fail_countdown-- == 0;
}

void *__wrap_malloc(size_t size)
{
    return alloc_fails() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return alloc_fails() ? NULL : __real_calloc(n, size);
}

static void *json_alloc(size_t size)
{
    if (alloc_fails()) {
        failed_in_jansson = 1;
        return NULL;
    }
    return __real_malloc(size);
}

static void json_release(void *p)
{
    free(p);
}

static p11_topology *parse_ok(const char *text, unsigned default_timeout_ms)
{
    p11_topology *topo = NULL;
    p11_status st = p11_topology_parse(text, strlen(text), FILE_NAME, default_timeout_ms, &topo);

    if (st != P11_OK)
        fail_msg("parse failed: %s", p11_error_message());
    assert_non_null(topo);
    return topo;
}

/* The parse fails with P11_ERR_CONFIG, the message begins with
 * "<file>:<where>: " (where "" for no position) and holds fragment. */
static void expect_error_n(const char *text, size_t len, const char *where, const char *fragment)
{
    p11_topology *topo = (p11_topology *)&topo; /* must be reset to NULL */
    char prefix[256];
    const char *msg;

    p11_error_clear();
    assert_int_equal(p11_topology_parse(text, len, FILE_NAME, 1000, &topo), P11_ERR_CONFIG);
    assert_null(topo);
    assert_int_equal(p11_error_status(), P11_ERR_CONFIG);
    assert_int_equal(p11_error_rv(), CKR_OK);
    msg = p11_error_message();
    snprintf(prefix, sizeof(prefix), "%s:%s: ", FILE_NAME, where);
    if (strncmp(msg, prefix, strlen(prefix)) != 0)
        fail_msg("message \"%s\" does not begin with \"%s\"", msg, prefix);
    if (strstr(msg, fragment) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", msg, fragment);
}

static void expect_error(const char *text, const char *where, const char *fragment)
{
    expect_error_n(text, strlen(text), where, fragment);
}

/* A file with one partition and one member; the member's keys start on
 * line 7 at column 11, `extra` (lines ending in a comma) goes before
 * "module".  Partition keys are at column 7; `pextra` goes on line 4. */
static const char *doc(const char *pextra, const char *extra)
{
    static char buf[8192];
    snprintf(buf, sizeof(buf),
             "{\n"                            /* 1 */
             "  \"partitions\": [\n"          /* 2 */
             "    {\n"                        /* 3 */
             "      %s\"name\": \"PAYMENTS\",\n" /* 4 */
             "      \"members\": [\n"         /* 5 */
             "        {\n"                    /* 6 */
             "          %s\"module\": \"/m.so\"\n" /* 7 */
             "        }\n"
             "      ]\n"
             "    }\n"
             "  ]\n"
             "}\n",
             pextra, extra);
    return buf;
}

/* ---- valid files ---- */

static const char full_file[] =
    "{\n"
    "  \"partitions\": [\n"
    "    {\n"
    "      \"name\": \"PAYMENTS\",\n"
    "      \"id\": \"payments-prod\",\n"
    "      \"members\": [\n"
    "        {\n"
    "          \"name\": \"hsm-zurich-1\",\n"
    "          \"module\": \"/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so\",\n"
    "          \"env\": { \"P11_KIT_SERVER_ADDRESS\": \"unix:path=/run/hsm1.sock\",\n"
    "                   \"_X9\": \"\" },\n"
    "          \"init-args\": \"configdir=/etc/hsm\",\n"
    "          \"token\": \"PAYMENTS-Z\",\n"
    "          \"serial\": \"1234abcd\",\n"
    "          \"slot\": 3,\n"
    "          \"priority\": 0,\n"
    "          \"timeout-ms\": 1500\n"
    "        },\n"
    "        {\n"
    "          \"name\": \"hsm-geneva-1\",\n"
    "          \"module\": \"/opt/primus/lib/libprimusP11.so\",\n"
    "          \"init-args\": \"\",\n"
    "          \"serial\": \"0123456789abcdef\",\n"
    "          \"slot\": 0,\n"
    "          \"priority\": 99,\n"
    "          \"timeout-ms\": 600000\n"
    "        }\n"
    "      ]\n"
    "    },\n"
    "    {\n"
    "      \"name\": \"Z\\u00fcrich \\\"lab\\\"\",\n"
    "      \"members\": [ { \"module\": \"/a.so\", \"timeout-ms\": 1, \"env\": {} } ]\n"
    "    }\n"
    "  ]\n"
    "}\n";

static void test_full_file(void **state)
{
    p11_topology *topo = parse_ok(full_file, 1000);
    p11_topology_partition *p;
    p11_topology_member *m;

    assert_int_equal(topo->n_parts, 2);
    p = &topo->parts[0];
    assert_string_equal(p->name, "PAYMENTS");
    assert_string_equal(p->id, "payments-prod");
    assert_int_equal(p->n_members, 2);

    m = &p->members[0];
    assert_string_equal(m->name, "hsm-zurich-1");
    assert_string_equal(m->module, "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so");
    assert_non_null(m->env);
    assert_string_equal(m->env[0], "P11_KIT_SERVER_ADDRESS=unix:path=/run/hsm1.sock");
    assert_string_equal(m->env[1], "_X9=");
    assert_null(m->env[2]);
    assert_string_equal(m->init_args, "configdir=/etc/hsm");
    assert_string_equal(m->token, "PAYMENTS-Z");
    assert_string_equal(m->serial, "1234abcd");
    assert_int_equal(m->slot, 3);
    assert_int_equal(m->priority, 0);
    assert_int_equal(m->timeout_ms, 1500);

    m = &p->members[1];
    assert_string_equal(m->name, "hsm-geneva-1");
    assert_string_equal(m->module, "/opt/primus/lib/libprimusP11.so");
    assert_null(m->env);
    assert_null(m->init_args); /* "" means none */
    assert_string_equal(m->token, "PAYMENTS");
    assert_string_equal(m->serial, "0123456789abcdef");
    assert_int_equal(m->slot, 0);
    assert_int_equal(m->priority, 99);
    assert_int_equal(m->timeout_ms, 600000);

    p = &topo->parts[1];
    assert_string_equal(p->name, "Z\xc3\xbcrich \"lab\"");
    assert_string_equal(p->id, p->name);
    assert_int_equal(p->n_members, 1);
    m = &p->members[0];
    assert_string_equal(m->name, "member-1");
    assert_string_equal(m->token, p->name);
    assert_null(m->env); /* {} */
    assert_int_equal(m->timeout_ms, 1);
    p11_topology_free(topo);
    (void)state;
}

static void test_defaults(void **state)
{
    p11_topology *topo = parse_ok("{\"partitions\":[{\"name\":\"P\",\"members\":[{\"module\":\"/a.so\"},"
                                  "{\"module\":\"/b.so\",\"name\":\"b\"},{\"module\":\"/c.so\"}]}]}",
                                  2500);
    p11_topology_partition *p = &topo->parts[0];

    assert_int_equal(topo->n_parts, 1);
    assert_string_equal(p->name, "P");
    assert_string_equal(p->id, "P");
    assert_int_equal(p->n_members, 3);
    assert_string_equal(p->members[0].name, "member-1");
    assert_string_equal(p->members[1].name, "b");
    assert_string_equal(p->members[2].name, "member-3");
    for (size_t i = 0; i < 3; i++) {
        p11_topology_member *m = &p->members[i];
        assert_string_equal(m->token, "P");
        assert_null(m->env);
        assert_null(m->init_args);
        assert_null(m->serial);
        assert_int_equal(m->slot, -1);
        assert_int_equal(m->priority, 0);
        assert_int_equal(m->timeout_ms, 2500);
    }
    assert_string_equal(p->members[2].module, "/c.so");
    p11_topology_free(topo);
    p11_topology_free(NULL);
    (void)state;
}

static void test_limits_accepted(void **state)
{
    /* 32-byte label and token, 16 members, 64-byte member name and id,
     * a slot beyond 32 bits. */
    char text[8192];
    size_t o = 0;
    p11_topology *topo;

    o += (size_t)snprintf(text + o, sizeof(text) - o,
                          "{\"partitions\":[{\"name\":\"%s\",\"id\":\"%s\",\"members\":[",
                          "0123456789abcdef0123456789abcdef",
                          "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    for (int i = 0; i < 16; i++)
        o += (size_t)snprintf(text + o, sizeof(text) - o,
                              "%s{\"module\":\"/m.so\",\"slot\":%d%s}", i ? "," : "",
                              i == 15 ? 0 : i,
                              i == 15 ? ",\"slot\":4294967296" : "");
    snprintf(text + o, sizeof(text) - o, "]}]}");
    /* the duplicate "slot" in the last member would be refused: drop it */
    char *dup = strstr(text, "\"slot\":0,\"slot\"");
    assert_non_null(dup);
    memmove(dup, dup + 9, strlen(dup + 9) + 1);
    topo = parse_ok(text, 1000);
    assert_int_equal(topo->parts[0].n_members, 16);
    assert_int_equal(topo->parts[0].members[15].slot, 4294967296L);
    assert_int_equal(strlen(topo->parts[0].id), 64);
    p11_topology_free(topo);

    topo = parse_ok(doc("", "\"name\": \"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\","
                            " \"token\": \"0123456789abcdef0123456789abcdef\","),
                    1000);
    assert_int_equal(strlen(topo->parts[0].members[0].name), 64);
    assert_int_equal(strlen(topo->parts[0].members[0].token), 32);
    p11_topology_free(topo);
    (void)state;
}

static void test_load_file(void **state)
{
    char dir[] = "/tmp/primus-topo-XXXXXX", path[300];
    p11_topology *topo = NULL;
    FILE *f;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/topology.json", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(full_file, f);
    fclose(f);
    assert_int_equal(p11_topology_load(path, 1000, &topo), P11_OK);
    assert_int_equal(topo->n_parts, 2);
    assert_string_equal(topo->parts[0].members[0].name, "hsm-zurich-1");
    p11_topology_free(topo);

    /* errors carry the file's path */
    f = fopen(path, "w");
    fputs("{\n  \"partitions\": 1\n}\n", f);
    fclose(f);
    topo = (p11_topology *)&topo;
    assert_int_equal(p11_topology_load(path, 1000, &topo), P11_ERR_CONFIG);
    assert_null(topo);
    char expect[400];
    snprintf(expect, sizeof(expect),
             "%s:2:3: \"partitions\" must be an array of partitions, not 1", path);
    assert_string_equal(p11_error_message(), expect);

    /* an empty file */
    f = fopen(path, "w");
    fclose(f);
    assert_int_equal(p11_topology_load(path, 1000, &topo), P11_ERR_CONFIG);
    snprintf(expect, sizeof(expect), "%s:1:1: the file is empty", path);
    assert_non_null(strstr(p11_error_message(), expect));

    /* missing file: no line or column */
    unlink(path);
    assert_int_equal(p11_topology_load(path, 1000, &topo), P11_ERR_CONFIG);
    assert_null(topo);
    snprintf(expect, sizeof(expect), "%s: cannot read topology file: No such file or directory",
             path);
    assert_non_null(strstr(p11_error_message(), expect));
    assert_non_null(strstr(p11_error_message(), "primus-topology"));

    /* a directory */
    assert_int_equal(p11_topology_load(dir, 1000, &topo), P11_ERR_CONFIG);
    snprintf(expect, sizeof(expect), "%s: cannot read topology file: Is a directory", dir);
    assert_non_null(strstr(p11_error_message(), expect));

    assert_int_equal(p11_topology_load("", 1000, &topo), P11_ERR_CONFIG);
    assert_non_null(strstr(p11_error_message(), "primus-topology is empty"));
    rmdir(dir);
    (void)state;
}

/* ---- errors ---- */

static void test_not_json(void **state)
{
    expect_error("{\n  \"partitions\": [\n    {\"name\" \"P\"}\n  ]\n}\n", "3:15",
                 "not JSON: '':' expected near '\"P\"''");
    expect_error("{\"partitions\": [1,]}", "1:19", "not JSON: 'unexpected token near ']''");
    expect_error("{\"partitions\": []} x", "1:20", "not JSON: 'end of file expected near 'x''");
    expect_error("{\"partitions\": [\n", "2:1", "not JSON:"); /* jansson says column 0 */
    expect_error("{\"name\": \"\\u0000\"}", "1:17", "not JSON: '\\u0000 is not allowed");
    expect_error("{\"slot\": 99999999999999999999}", "1:29", "not JSON: 'too big integer");
    expect_error("{\"a\": \"\xff\"}", "1:7", "not JSON: 'unable to decode byte 0xff");
    expect_error("\xef\xbb\xbf{}", "1:1", "byte order mark");
    (void)state;
}

static void test_duplicate_key(void **state)
{
    expect_error(doc("", "\"priority\": 1,\n          \"priority\": 2,\n          "), "8:11",
                 "key \"priority\" appears twice in the same object; keep only one of them");
    expect_error("{\"partitions\": [], \"partitions\": []}", "1:20",
                 "key \"partitions\" appears twice");
    /* an escaped spelling of the same key, and a key containing \" */
    expect_error("{\"a\\\"b\": 1,\n \"a\\u0022b\": 2}", "2:2", "key \"a\\u0022b\" appears twice");
    expect_error("{\"a\\\\\": 1, \"a\\\\\": 2}", "1:12", "key \"a\\\\\" appears twice");
    (void)state;
}

static void test_unknown_keys(void **state)
{
    expect_error("{\n  \"partition\": []\n}", "2:3",
                 "unknown key \"partition\" in the top level object; did you mean \"partitions\"?");
    expect_error("{\"partitions\": [], \"version\": 2}", "1:20",
                 "unknown key \"version\" in the top level object; the keys allowed there are "
                 "only \"partitions\"");
    expect_error(doc("\"member\": [],\n      ", ""), "4:7",
                 "unknown key \"member\" in partition \"PAYMENTS\"; did you mean \"members\"?");
    expect_error(doc("\"Name\": 1,\n      ", ""), "4:7", "did you mean \"name\"?");
    expect_error(doc("\"identifier\": \"x\",\n      ", ""), "4:7",
                 "unknown key \"identifier\" in partition \"PAYMENTS\"; did you mean \"id\"?");
    expect_error(doc("\"colour\": \"red\", ", ""), "4:7",
                 "unknown key \"colour\" in partition \"PAYMENTS\"; the keys allowed there are "
                 "\"name\", \"id\" and \"members\"");
    expect_error(doc("", "\"name\": \"hsm-zurich-1\", \"timeout\": 5,\n          "), "7:35",
                 "unknown key \"timeout\" in member \"hsm-zurich-1\" of partition \"PAYMENTS\"; "
                 "did you mean \"timeout-ms\"?");
    expect_error(doc("", "\"timeout_ms\": 5,"), "7:11", "did you mean \"timeout-ms\"?");
    expect_error(doc("", "\"initargs\": \"\","), "7:11", "did you mean \"init-args\"?");
    expect_error(doc("", "\"enviroment\": {},"), "7:11", "did you mean \"env\"?");
    expect_error(doc("", "\"serail\": \"1\","), "7:11", "did you mean \"serial\"?");
    expect_error(doc("", "\"x\": 1,"), "7:11",
                 "unknown key \"x\" in member \"member-1\" of partition \"PAYMENTS\"; the keys "
                 "allowed there are \"name\", \"module\"");
    /* the key is found even when written with escapes, and after a string
     * holding multibyte characters (columns count characters) */
    expect_error(doc("", "\"name\": \"h\xc3\xa9\xe2\x82\xac\", \"pri\\u006frty\": 1,"), "7:26",
                 "unknown key \"priorty\" in member \"h\xc3\xa9\xe2\x82\xac\"");
    /* a key that only appears inside a string value earlier is not confused */
    expect_error(doc("", "\"name\": \"\\\"bogus\\\": \", \"bogus\": 1,"), "7:34",
                 "unknown key \"bogus\"");
    /* control characters in a key are shown escaped */
    expect_error(doc("", "\"a\\tb\": 1,"), "7:11", "unknown key \"a\\x09b\"");
    (void)state;
}

static void test_wrong_types(void **state)
{
    expect_error("[]", "1:1",
                 "the top level must be an object {\"partitions\": [...]}, not an array");
    expect_error(" \"x\"", "1:2",
                 "the top level must be an object {\"partitions\": [...]}, not \"x\"");
    expect_error("42", "1:1", "not 42");
    expect_error("null", "1:1", "not null");
    expect_error("{\"partitions\": {}}", "1:2",
                 "\"partitions\" must be an array of partitions, not an object");
    expect_error("{\"partitions\": [{\"name\":\"P\",\"members\":[{\"module\":\"/m\"}]}, \"Q\"]}",
                 "1:59",
                 "partition 2 in \"partitions\" must be an object {\"name\": ..., \"members\": "
                 "[...]}, not \"Q\"");
    expect_error("{\"partitions\":[{\"name\":\"P\",\"members\":[3]}]}", "1:39",
                 "member 1 of partition \"P\" must be an object {\"module\": ...}, not 3");
    expect_error("{\"partitions\":[{\"name\":5,\"members\":[]}]}", "1:17",
                 "\"name\" must be a string, not 5, in partition 1");
    expect_error(doc("\"id\": false, ", ""), "4:7",
                 "\"id\" must be a string, not false, in partition \"PAYMENTS\"");
    expect_error("{\"partitions\":[{\"name\":\"P\",\"members\":{}}]}", "1:28",
                 "\"members\" must be an array of member objects, not an object, in partition "
                 "\"P\"");
    expect_error("{\"partitions\":[{\"name\":\"P\",\"members\":[{\"module\":true}]}]}", "1:40",
                 "\"module\" must be a string, not true, in member \"member-1\" of partition \"P\"");
    expect_error(doc("", "\"name\": 5,"), "7:11",
                 "\"name\" must be a string, not 5, in member \"member-1\" of partition \"PAYMENTS\"");
    expect_error(doc("", "\"env\": \"x\","), "7:11",
                 "\"env\" must be an object of environment variables {\"NAME\": \"value\"}, not "
                 "\"x\", in member \"member-1\" of partition \"PAYMENTS\"");
    expect_error(doc("", "\"env\": {\"A\": 1},"), "7:19",
                 "environment variable \"A\" in \"env\" of member \"member-1\" of partition "
                 "\"PAYMENTS\" must be a string, not 1");
    expect_error(doc("", "\"init-args\": [],"), "7:11",
                 "\"init-args\" must be a string, not an array");
    expect_error(doc("", "\"token\": {},"), "7:11", "\"token\" must be a string, not an object");
    expect_error(doc("", "\"serial\": 1234,"), "7:11", "\"serial\" must be a string, not 1234");
    expect_error(doc("", "\"slot\": \"3\","), "7:11",
                 "\"slot\" must be a non-negative integer (a slot ID), not \"3\"");
    expect_error(doc("", "\"slot\": 1.5,"), "7:11", "not 1.5");
    expect_error(doc("", "\"priority\": \"high\","), "7:11",
                 "\"priority\" must be an integer from 0 to 99, not \"high\", in member "
                 "\"member-1\" of partition \"PAYMENTS\"; 0 is the highest priority");
    expect_error(doc("", "\"priority\": true,"), "7:11",
                 "\"priority\" must be an integer from 0 to 99, not true");
    expect_error(doc("", "\"timeout-ms\": null,"), "7:11",
                 "\"timeout-ms\" must be an integer from 1 to 600000, not null");
    expect_error(doc("", "\"timeout-ms\": 1e3,"), "7:11",
                 "\"timeout-ms\" must be an integer from 1 to 600000, not 1000");
    (void)state;
}

static void test_missing_fields(void **state)
{
    expect_error("{}", "1:1", "the top level object has no \"partitions\"; add \"partitions\": [");
    expect_error("{\n \"partitions\": [ {\n   \"members\": [{\"module\": \"/m\"}] } ] }", "2:18",
                 "partition 1 has no \"name\"; add \"name\": the label of the token");
    expect_error("{\"partitions\":[{\"name\":\"P\"}]}", "1:16",
                 "partition \"P\" has no \"members\"; list the HSMs that hold it");
    expect_error("{\"partitions\":[{\"name\":\"P\",\"members\":[{\"module\":\"/m\"},\n"
                 "  {\"name\": \"b\"}]}]}",
                 "2:3",
                 "member \"b\" of partition \"P\" has no \"module\"; add \"module\": "
                 "\"/path/to/pkcs11-module.so\"");
    expect_error("{\"partitions\": []}", "1:2",
                 "\"partitions\" is empty; declare at least one partition");
    expect_error("{\"partitions\":[{\"name\":\"P\",\"members\":[]}]}", "1:28",
                 "\"members\" of partition \"P\" is empty; list at least one member");
    (void)state;
}

static void test_bad_values(void **state)
{
    /* environment variable names */
    expect_error(doc("", "\"env\": {\"OK_1\": \"x\", \"1BAD\": \"y\"},"), "7:32",
                 "\"1BAD\" in \"env\" of member \"member-1\" of partition \"PAYMENTS\" is not a "
                 "valid environment variable name; use letters, digits and _");
    expect_error(doc("", "\"env\": {\"A-B\": \"y\"},"), "7:19", "\"A-B\" in \"env\"");
    expect_error(doc("", "\"env\": {\"\": \"y\"},"), "7:19", "\"\" in \"env\"");
    expect_error(doc("", "\"env\": {\"A=B\": \"y\"},"), "7:19", "\"A=B\" in \"env\"");

    /* ranges */
    expect_error(doc("", "\"priority\": 100,"), "7:11",
                 "\"priority\" must be an integer from 0 to 99, not 100");
    expect_error(doc("", "\"priority\": -1,"), "7:11",
                 "\"priority\" must be an integer from 0 to 99, not -1");
    expect_error(doc("", "\"timeout-ms\": 0,"), "7:11",
                 "\"timeout-ms\" must be an integer from 1 to 600000, not 0");
    expect_error(doc("", "\"timeout-ms\": 600001,"), "7:11",
                 "\"timeout-ms\" must be an integer from 1 to 600000, not 600001");
    expect_error(doc("", "\"slot\": -1,"), "7:11",
                 "\"slot\" must be a non-negative integer (a slot ID), not -1");

    /* module path */
    expect_error("{\"partitions\":[{\"name\":\"P\",\"members\":[{\"module\":\"p11.so\"}]}]}", "1:40",
                 "\"module\" must be an absolute path (starting with /), not \"p11.so\"");
    expect_error("{\"partitions\":[{\"name\":\"P\",\"members\":[{\"module\":\"\"}]}]}", "1:40",
                 "\"module\" must be an absolute path (starting with /), not \"\"");

    /* names, labels, serials */
    expect_error("{\"partitions\":[{\"name\":\"0123456789abcdef0123456789abcdefX\",\"members\":[]}]}",
                 "1:17",
                 "\"name\" \"0123456789abcdef0123456789abcdefX\" is 33 bytes long, in partition "
                 "\"0123456789abcdef0123456789abcdefX\"; a token label holds at most 32 bytes");
    expect_error("{\"partitions\":[{\"name\":\"\",\"members\":[]}]}", "1:17",
                 "\"name\" is empty in partition \"\"; a token label holds 1 to 32 bytes");
    expect_error("{\"partitions\":[{\"name\":\"P \",\"members\":[]}]}", "1:17",
                 "\"name\" \"P \" ends with a space, in partition \"P \"; PKCS#11 pads labels and "
                 "serials with spaces, so it could never match: remove the trailing space");
    expect_error("{\"partitions\":[{\"name\":\"P\\u0001\",\"members\":[]}]}", "1:17",
                 "\"name\" \"P\\x01\" contains a control character, in partition \"P\\x01\"; remove it");
    expect_error(doc("\"id\": \"\", ", ""), "4:7",
                 "\"id\" is empty in partition \"PAYMENTS\"; a partition id holds 1 to 64 bytes");
    expect_error(doc("", "\"name\": \"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef!\","),
                 "7:11",
                 "is 65 bytes long, in member \"0123456789abcdef0123456789abcdef0123456789abcdef"
                 "0123456789abcdef...\" of partition \"PAYMENTS\"; a member name holds at most 64 "
                 "bytes");
    expect_error(doc("", "\"name\": \"\","), "7:11",
                 "\"name\" is empty in member \"\" of partition \"PAYMENTS\"");
    expect_error(doc("", "\"name\": \"a\\nb\","), "7:11",
                 "\"name\" \"a\\x0ab\" contains a control character");
    expect_error(doc("", "\"token\": \"0123456789abcdef0123456789abcdef0\","), "7:11",
                 "\"token\" \"0123456789abcdef0123456789abcdef0\" is 33 bytes long, in member "
                 "\"member-1\" of partition \"PAYMENTS\"; a token label holds at most 32 bytes");
    expect_error(doc("", "\"token\": \"T \","), "7:11", "\"token\" \"T \" ends with a space");
    expect_error(doc("", "\"serial\": \"0123456789abcdef0\","), "7:11",
                 "\"serial\" \"0123456789abcdef0\" is 17 bytes long, in member \"member-1\" of "
                 "partition \"PAYMENTS\"; a token serial holds at most 16 bytes");
    expect_error(doc("", "\"serial\": \"\","), "7:11",
                 "\"serial\" is empty in member \"member-1\" of partition \"PAYMENTS\"; a token serial "
                 "holds 1 to 16 bytes");
    (void)state;
}

static void test_duplicate_names(void **state)
{
    expect_error("{\"partitions\":[\n"
                 "{\"name\":\"A\",\"members\":[{\"module\":\"/a\"}]},\n"
                 "{\"name\":\"B\",\"members\":[{\"module\":\"/b\"}]},\n"
                 "{\"members\":[{\"module\":\"/c\"}], \"name\":\"A\"}]}",
                 "4:31",
                 "partition name \"A\" is used twice (partitions 1 and 3); give each partition its "
                 "own name");
    expect_error("{\"partitions\":[{\"name\":\"P\",\"members\":[\n"
                 "{\"name\":\"m\",\"module\":\"/a\"},\n"
                 " {\"module\":\"/b\", \"name\":\"m\"}]}]}",
                 "3:18",
                 "member name \"m\" is used twice in partition \"P\" (members 1 and 2); give each "
                 "member its own name");
    expect_error("{\"partitions\":[{\"name\":\"P\",\"members\":[\n"
                 "{\"name\":\"member-2\",\"module\":\"/a\"},\n"
                 "{\"module\":\"/b\"}]}]}",
                 "3:1",
                 "member 2 of partition \"P\" has no \"name\", and its default name \"member-2\" is "
                 "already used by member 1; give one of them another name");
    expect_error("{\"partitions\":[{\"name\":\"P\",\"members\":[{\"module\":\"/a\"},\n"
                 "  {\"name\":\"member-1\",\"module\":\"/b\"}]}]}",
                 "2:4", "member name \"member-1\" is used twice in partition \"P\" (members 1 and 2)");
    (void)state;
}

static void test_too_many_members(void **state)
{
    char text[4096];
    size_t o = (size_t)snprintf(text, sizeof(text), "{\"partitions\":[{\"name\":\"P\",\"members\":[");

    for (int i = 0; i < 17; i++)
        o += (size_t)snprintf(text + o, sizeof(text) - o, "%s{\"module\":\"/m\"}", i ? "," : "");
    snprintf(text + o, sizeof(text) - o, "]}]}");
    expect_error(text, "1:28", "partition \"P\" has 17 members; at most 16 are allowed");
    (void)state;
}

static void test_empty(void **state)
{
    p11_topology *topo = NULL;

    expect_error("", "1:1",
                 "the file is empty; write a JSON object such as {\"partitions\": [{\"name\": "
                 "\"TOKEN-LABEL\", \"members\": [{\"module\": \"/path/to/pkcs11-module.so\"}]}]}");
    expect_error(" \n\t\r\n", "1:1", "the file is empty");
    assert_int_equal(p11_topology_parse(NULL, 0, FILE_NAME, 1000, &topo), P11_ERR_CONFIG);
    assert_null(topo);
    assert_non_null(strstr(p11_error_message(), "the file is empty"));
    (void)state;
}

/* The position is searched in the right object, not at the first
 * occurrence of the key in the file, and the scan is not fooled by
 * brackets and quotes inside strings. */
static void test_positions_in_the_right_object(void **state)
{
    expect_error("{\"partitions\":[\n"
                 " {\"name\":\"A\",\"members\":[{\"module\":\"/a\",\"priority\":1}]},\n"
                 " {\"name\":\"B\",\"members\":[{\"module\":\"/b\",\"priority\":1},\n"
                 "   {\"module\":\"/c\",\"priority\":100}]}]}",
                 "4:19", "not 100, in member \"member-2\" of partition \"B\"");
    expect_error("{\"partitions\":[{\"name\":\"P\",\"members\":[{\"env\":{\"X\":\"}]{[\\\"\\\\\"},"
                 "\"module\":\"/a\"},\n"
                 "{\"module\":\"/b\",\"slot\":-1}]}]}",
                 "2:16", "\"slot\" must be a non-negative integer");
    /* the error is in the last of many partitions */
    {
        size_t cap = 400 * 1000, o = 0;
        char *text = malloc(cap);
        assert_non_null(text);
        o += (size_t)snprintf(text + o, cap - o, "{\"partitions\":[");
        for (int i = 0; i < 5000; i++)
            o += (size_t)snprintf(text + o, cap - o,
                                  "{\"name\":\"P%d\",\"members\":[{\"module\":\"/m\"}]},\n", i);
        o += (size_t)snprintf(text + o, cap - o, "{\"name\":\"Q\",\"members\":[{\"modul\":\"/m\"}]}]}");
        expect_error(text, "5001:25", "unknown key \"modul\" in member \"member-1\" of partition "
                                      "\"Q\"; did you mean \"module\"?");
        free(text);
    }
    (void)state;
}

static void test_input_is_not_a_c_string(void **state)
{
    static const char text[] =
        "{\"partitions\":[{\"name\":\"P\",\"members\":[{\"module\":\"/a\"}]}]}GARBAGE";
    p11_topology *topo = NULL;

    assert_int_equal(p11_topology_parse(text, sizeof(text) - 1 - 7, "t", 1000, &topo), P11_OK);
    assert_string_equal(topo->parts[0].members[0].module, "/a");
    p11_topology_free(topo);
    expect_error_n("{\"partitions\": [\0]}", 19, "1:17", "not JSON:");
    (void)state;
}

/* Every allocation, the loader's and jansson's, is failed in turn, until
 * the parse needs no failing allocation and succeeds (or reports the
 * input's own error).  A failure of the loader's own is P11_ERR_MEMORY with
 * nothing returned; none leaks (valgrind/ASan check). */
static void check_allocation_failures(const char *text, p11_status final, long min_own)
{
    long n, own = 0;

    json_set_alloc_funcs(json_alloc, json_release);
    for (n = 0; n < 100000; n++) {
        p11_topology *topo = NULL;
        p11_status st;

        fail_countdown = n;
        failed_in_jansson = 0;
        st = p11_topology_parse(text, strlen(text), "t", 1000, &topo);
        if (fail_countdown >= 0) { /* no allocation failed */
            fail_countdown = -1;
            assert_int_equal(st, final);
            p11_topology_free(topo);
            break;
        }
        fail_countdown = -1;
        if (failed_in_jansson) {
            /* jansson 2.14 reports some of its failures as syntax errors
             * and, when a string buffer cannot grow, drops the byte and
             * goes on: only "no crash, no leak" can be asked of it. */
            p11_topology_free(topo);
            continue;
        }
        own++;
        assert_null(topo);
        if (st != P11_ERR_MEMORY)
            fail_msg("allocation %ld failed: status %d, \"%s\"", n, st, p11_error_message());
        assert_string_equal(p11_error_message(), "out of memory while loading the topology file t");
    }
    json_set_alloc_funcs(malloc, free);
    assert_true(n < 100000);
    if (own < min_own)
        fail_msg("only %ld of the loader's own allocations failed", own);
}

static void test_allocation_failures(void **state)
{
    /* 23: topology, partition array; per partition name, id, member array;
     * members: 5 strings + env array + 2 entries, 4 strings, 3 strings */
    check_allocation_failures(full_file, P11_OK, 23);
    check_allocation_failures(doc("", "\"env\": {\"A\": \"1\", \"B\": \"2\"}, \"x\": 1,"),
                              P11_ERR_CONFIG, 4);
    (void)state;
}

static void test_file_too_large(void **state)
{
    char path[] = "/tmp/primus-topo-big-XXXXXX";
    int fd = mkstemp(path);
    p11_topology *topo = NULL;
    FILE *f;

    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    fputs("{\"partitions\": [], \"pad\": \"", f);
    for (int i = 0; i < P11_TOPOLOGY_MAX_FILE / 64; i++)
        fputs("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", f);
    fputs("\"}", f);
    fclose(f);
    assert_int_equal(p11_topology_load(path, 1000, &topo), P11_ERR_CONFIG);
    assert_null(topo);
    assert_non_null(strstr(p11_error_message(), "the topology file is larger than 1048576 bytes"));
    unlink(path);
    (void)state;
}

static void test_long_duplicate_key(void **state)
{
    /* the key is shown cut after 64 bytes, not inside a character */
    char key[200], text[500];
    snprintf(key, sizeof(key), "%s", "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab"
                                     "\xc3\xa9\xc3\xa9xyz\"");
    snprintf(text, sizeof(text), "{%s: 1,\n %s: 2}", key, key);
    expect_error(text, "2:2",
                 "key \"0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab\xc3\xa9... "
                 "appears twice");
    (void)state;
}

static void test_api(void **state)
{
    p11_topology *topo = NULL;

    assert_int_equal(p11_topology_parse("{}", 2, NULL, 1000, &topo), P11_ERR_CONFIG);
    assert_null(topo);
    assert_int_equal(strncmp(p11_error_message(), "topology:1:1: ", 14), 0);
    assert_int_equal(p11_topology_parse("{}", 2, "t", 1000, NULL), P11_ERR_INTERNAL);
    assert_int_equal(p11_topology_load("/x", 1000, NULL), P11_ERR_INTERNAL);
    assert_int_equal(p11_topology_load(NULL, 1000, &topo), P11_ERR_CONFIG);
    assert_null(topo);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_file),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_limits_accepted),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_not_json),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_missing_fields),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_duplicate_names),
        cmocka_unit_test(test_too_many_members),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_positions_in_the_right_object),
        cmocka_unit_test(test_input_is_not_a_c_string),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_file_too_large),
        cmocka_unit_test(test_long_duplicate_key),
        cmocka_unit_test(test_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
