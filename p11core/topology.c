/*
 * topology.c: the cluster topology file (format and rules in topology.h).
 *
 * jansson parses the text (rejecting duplicate keys) and reports syntax
 * errors with a line and column.  It keeps no positions of the values it
 * parsed, so the semantic checks find their own: the validator keeps the
 * path of the object it is looking at (partitions[i].members[j].env ...),
 * and on an error a light scanner walks the original text along that path
 * (strings with escapes, nesting of {} and []) to the offending key, or to
 * the opening brace of an object that lacks a required key.  The scan runs
 * only on the error path, and only over text jansson accepted.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "topology.h"

#define NAME_MAX_LEN 64   /* member names and partition ids */
#define SERIAL_MAX_LEN 16 /* CK_TOKEN_INFO.serialNumber */
#define MAX_PATH_STEPS 6
#define QUOTE_MAX 64      /* bytes of a value shown in a message */

/* ---- positions in the original text ------------------------------------ */

/* One step from a value to one inside it: a key of an object, or an index
 * of an array (key NULL). */
struct step {
    const char *key;
    size_t index;
};

typedef struct ctx {
    const char *text;
    size_t len;
    const char *file;
    unsigned default_timeout_ms;
    struct step path[MAX_PATH_STEPS]; /* from the top value to the current object */
    size_t depth;
    char where[3 * (QUOTE_MAX * 4 + 8) + 64]; /* "member \"m\" of partition \"p\"" */
} ctx;

static int is_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

static size_t skip_ws(const ctx *c, size_t i)
{
    while (i < c->len && is_ws(c->text[i]))
        i++;
    return i;
}

/* i at an opening quote; returns the index after the closing one. */
static size_t skip_string(const ctx *c, size_t i)
{
    for (i++; i < c->len; i++) {
        if (c->text[i] == '\\')
            i++;
        else if (c->text[i] == '"')
            return i + 1;
    }
    return c->len;
}

static size_t skip_value(const ctx *c, size_t i)
{
    size_t depth = 0;

    if (i >= c->len)
        return c->len;
    if (c->text[i] == '"')
        return skip_string(c, i);
    if (c->text[i] != '{' && c->text[i] != '[') {
        while (i < c->len && !is_ws(c->text[i]) && c->text[i] != ',' && c->text[i] != ']' &&
               c->text[i] != '}')
            i++;
        return i;
    }
    while (i < c->len) {
        char ch = c->text[i];
        if (ch == '"') {
            i = skip_string(c, i);
            continue;
        }
        if (ch == '{' || ch == '[')
            depth++;
        else if ((ch == '}' || ch == ']') && --depth == 0)
            return i + 1;
        i++;
    }
    return c->len;
}

static int hex4(const ctx *c, size_t i, unsigned long *out)
{
    unsigned long v = 0;

    if (i + 4 > c->len)
        return 0;
    for (size_t k = 0; k < 4; k++) {
        char ch = c->text[i + k];
        v <<= 4;
        if (ch >= '0' && ch <= '9')
            v |= (unsigned long)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            v |= (unsigned long)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F')
            v |= (unsigned long)(ch - 'A' + 10);
        else
            return 0;
    }
    *out = v;
    return 1;
}

static size_t utf8_encode(unsigned long cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Does the JSON string at i (its opening quote) decode to key? */
static int string_equals(const ctx *c, size_t i, const char *key)
{
    size_t klen = strlen(key), kp = 0;

    for (i++; i < c->len && c->text[i] != '"';) {
        char u[4];
        size_t ul;
        unsigned long cp, lo;

        if (c->text[i] != '\\') {
            if (kp >= klen || key[kp] != c->text[i])
                return 0;
            kp++;
            i++;
            continue;
        }
        if (i + 1 >= c->len)
            return 0;
        i += 2;
        switch (c->text[i - 1]) {
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u':
            if (!hex4(c, i, &cp))
                return 0;
            i += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && i + 6 <= c->len && c->text[i] == '\\' &&
                c->text[i + 1] == 'u' && hex4(c, i + 2, &lo) && lo >= 0xDC00 && lo < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
            break;
        default: cp = (unsigned char)c->text[i - 1]; break; /* " \ / */
        }
        ul = utf8_encode(cp, u);
        if (kp + ul > klen || memcmp(key + kp, u, ul) != 0)
            return 0;
        kp += ul;
    }
    return i < c->len && kp == klen;
}

/* In the object at obj: the offsets of key (its opening quote) and of its value. */
static int find_key(const ctx *c, size_t obj, const char *key, size_t *key_off, size_t *val_off)
{
    size_t i;

    if (obj >= c->len || c->text[obj] != '{')
        return 0;
    for (i = skip_ws(c, obj + 1); i < c->len && c->text[i] == '"';) {
        size_t k = i;
        int match = string_equals(c, i, key);

        i = skip_ws(c, skip_string(c, i));
        if (i < c->len && c->text[i] == ':')
            i = skip_ws(c, i + 1);
        if (match) {
            *key_off = k;
            *val_off = i;
            return 1;
        }
        i = skip_ws(c, skip_value(c, i));
        if (i >= c->len || c->text[i] != ',')
            break;
        i = skip_ws(c, i + 1);
    }
    return 0;
}

/* In the array at arr: the offset of element index. */
static int find_element(const ctx *c, size_t arr, size_t index, size_t *off)
{
    size_t i, k;

    if (arr >= c->len || c->text[arr] != '[')
        return 0;
    for (i = skip_ws(c, arr + 1), k = 0; i < c->len && c->text[i] != ']'; k++) {
        if (k == index) {
            *off = i;
            return 1;
        }
        i = skip_ws(c, skip_value(c, i));
        if (i >= c->len || c->text[i] != ',')
            break;
        i = skip_ws(c, i + 1);
    }
    return 0;
}

/* The offset of key in the current object, or of the current value itself
 * (key NULL).  Where the walk loses its way, the last place it reached. */
static size_t locate(const ctx *c, const char *key)
{
    size_t cur = skip_ws(c, 0), k, v;

    for (size_t d = 0; d < c->depth; d++) {
        const struct step *s = &c->path[d];
        if (s->key ? !find_key(c, cur, s->key, &k, &v) : !find_element(c, cur, s->index, &v))
            return cur;
        cur = v;
    }
    if (key && find_key(c, cur, key, &k, &v))
        return k;
    return cur;
}

/* 1-based line and column (in characters, as jansson counts) of offset off. */
static void line_col(const ctx *c, size_t off, unsigned long *line, unsigned long *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < c->len; i++) {
        unsigned char ch = (unsigned char)c->text[i];
        if (ch == '\n') {
            ++*line;
            *col = 1;
        } else if ((ch & 0xC0) != 0x80) {
            ++*col;
        }
    }
}

static void push_key(ctx *c, const char *key)
{
    c->path[c->depth].key = key;
    c->path[c->depth].index = 0;
    c->depth++;
}

static void push_index(ctx *c, size_t index)
{
    c->path[c->depth].key = NULL;
    c->path[c->depth].index = index;
    c->depth++;
}

/* ---- messages ----------------------------------------------------------- */

static p11_status vfail_at(const ctx *c, size_t off, const char *fmt, va_list ap)
{
    char msg[1200];
    unsigned long line, col;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    line_col(c, off, &line, &col);
    return p11_error_set(P11_ERR_CONFIG, CKR_OK, "%s:%lu:%lu: %s", c->file, line, col, msg);
}

static p11_status fail_at(const ctx *c, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static p11_status fail_at(const ctx *c, size_t off, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail_at(c, off, fmt, ap);
    va_end(ap);
    return P11_ERR_CONFIG;
}

/* An error at key of the current object, or at the current value (key NULL). */
static p11_status fail_key(const ctx *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static p11_status fail_key(const ctx *c, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail_at(c, locate(c, key), fmt, ap);
    va_end(ap);
    return P11_ERR_CONFIG;
}

static p11_status no_memory(const ctx *c)
{
    return p11_error_set(P11_ERR_MEMORY, CKR_HOST_MEMORY,
                         "out of memory while loading the topology file %s", c->file);
}

typedef struct qbuf {
    char s[QUOTE_MAX * 4 + 8];
} qbuf;

/* s in double quotes, control characters escaped, cut after QUOTE_MAX bytes
 * (at a character boundary) with "...". */
static const char *quote(qbuf *b, const char *s)
{
    size_t o = 0, i;

    b->s[o++] = '"';
    for (i = 0; s[i] && i < QUOTE_MAX; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            b->s[o++] = '\\';
            b->s[o++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            o += (size_t)snprintf(b->s + o, sizeof(b->s) - o, "\\x%02x", ch);
        } else {
            b->s[o++] = (char)ch;
        }
    }
    if (s[i]) {
        while (o > 1 && ((unsigned char)s[i] & 0xC0) == 0x80) { /* do not split a character */
            i--;
            o--;
        }
        memcpy(b->s + o, "...", 3);
        o += 3;
    }
    b->s[o++] = '"';
    b->s[o] = '\0';
    return b->s;
}

/* A JSON value as shown after "not": "high", 1.5, true, an object ... */
static const char *describe(qbuf *b, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING: return quote(b, json_string_value(v));
    case JSON_INTEGER:
        snprintf(b->s, sizeof(b->s), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return b->s;
    case JSON_REAL: snprintf(b->s, sizeof(b->s), "%g", json_real_value(v)); return b->s;
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL: return "null";
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    }
    return "a value";
}

/* ---- unknown keys ------------------------------------------------------- */

static char lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

#define SUGGEST_MAX_LEN 40

/* Optimal string alignment distance (a swap of neighbours counts one),
 * ignoring ASCII case.  Both strings at most SUGGEST_MAX_LEN bytes. */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t d[SUGGEST_MAX_LEN + 1][SUGGEST_MAX_LEN + 1];

    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = lower(a[i - 1]) != lower(b[j - 1]);
            size_t best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
                lower(a[i - 2]) == lower(b[j - 1]) && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

/* The known key the operator probably meant: the closest within two edits
 * (fewer edits than either key is long, so that "x" suggests nothing), else
 * one that the key begins, or that begins the key ("timeout" for
 * "timeout-ms", "environment" for "env"). */
static const char *suggest(const char *key, const char *const *known)
{
    size_t klen = strlen(key), best = 3;
    const char *pick = NULL;

    if (klen == 0 || klen > SUGGEST_MAX_LEN)
        return NULL;
    for (size_t i = 0; known[i]; i++) {
        size_t d = distance(key, known[i]);
        if (d < best && d < klen && d < strlen(known[i])) {
            best = d;
            pick = known[i];
        }
    }
    if (pick || klen < 3)
        return pick;
    for (size_t i = 0; known[i]; i++) {
        size_t n = strlen(known[i]), k;
        for (k = 0; k < n && k < klen && lower(key[k]) == lower(known[i][k]); k++)
            ;
        if (k == n || k == klen)
            return known[i];
    }
    return NULL;
}

static const char *const top_keys[] = {"partitions", NULL};
static const char *const partition_keys[] = {"name", "id", "members", NULL};
static const char *const member_keys[] = {"name",   "module", "env",      "init-args", "token",
                                          "serial", "slot",   "priority", "timeout-ms", NULL};

static p11_status check_keys(ctx *c, json_t *obj, const char *const *known, const char *allowed)
{
    const char *key;
    json_t *value;

    json_object_foreach(obj, key, value) {
        size_t i;
        const char *hint;
        qbuf qk;

        for (i = 0; known[i] && strcmp(known[i], key) != 0; i++)
            ;
        if (known[i])
            continue;
        hint = suggest(key, known);
        if (hint)
            return fail_key(c, key, "unknown key %s in %s; did you mean \"%s\"?", quote(&qk, key),
                            c->where, hint);
        return fail_key(c, key, "unknown key %s in %s; the keys allowed there are %s",
                        quote(&qk, key), c->where, allowed);
    }
    return P11_OK;
}

/* ---- typed fields ------------------------------------------------------- */

/* *out: the string value of key, NULL when absent. */
static p11_status get_string(ctx *c, json_t *obj, const char *key, const char **out)
{
    json_t *v = json_object_get(obj, key);
    qbuf d;

    *out = NULL;
    if (v == NULL)
        return P11_OK;
    if (!json_is_string(v))
        return fail_key(c, key, "\"%s\" must be a string, not %s, in %s", key, describe(&d, v),
                        c->where);
    *out = json_string_value(v);
    return P11_OK;
}

/* *out unchanged when key is absent. */
static p11_status get_integer(ctx *c, json_t *obj, const char *key, json_int_t min, json_int_t max,
                              const char *range, const char *hint, json_int_t *out)
{
    json_t *v = json_object_get(obj, key);
    qbuf d;

    if (v == NULL)
        return P11_OK;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return fail_key(c, key, "\"%s\" must be %s, not %s, in %s%s", key, range, describe(&d, v),
                        c->where, hint);
    *out = json_integer_value(v);
    return P11_OK;
}

/* A name, id, label or serial: 1..max bytes, no control characters, and
 * for PKCS#11 fields (padded with spaces), no trailing space.  `what` says
 * what the value is, for the message. */
static p11_status check_text(ctx *c, const char *key, const char *value, size_t max, int padded,
                             const char *what)
{
    size_t len = strlen(value);
    qbuf q;

    if (len == 0)
        return fail_key(c, key, "\"%s\" is empty in %s; %s holds 1 to %zu bytes", key, c->where,
                        what, max);
    if (len > max)
        return fail_key(c, key, "\"%s\" %s is %zu bytes long, in %s; %s holds at most %zu bytes",
                        key, quote(&q, value), len, c->where, what, max);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
            return fail_key(c, key, "\"%s\" %s contains a control character, in %s; remove it",
                            key, quote(&q, value), c->where);
    if (padded && value[len - 1] == ' ')
        return fail_key(c, key,
                        "\"%s\" %s ends with a space, in %s; PKCS#11 pads labels and serials "
                        "with spaces, so it could never match: remove the trailing space",
                        key, quote(&q, value), c->where);
    return P11_OK;
}

static int valid_env_name(const char *s)
{
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return 0;
    for (s++; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return 0;
    return 1;
}

static char *dup_or_null(const char *s, int *oom)
{
    char *d;

    if (s == NULL)
        return NULL;
    d = p11_strdup(s);
    if (d == NULL)
        *oom = 1;
    return d;
}

/* ---- members and partitions --------------------------------------------- */

static p11_status parse_env(ctx *c, json_t *env, p11_topology_member *m)
{
    const char *name;
    json_t *value;
    size_t n = json_object_size(env), k = 0;
    p11_status st = P11_OK;

    if (n == 0)
        return P11_OK;
    push_key(c, "env");
    json_object_foreach(env, name, value) {
        qbuf qn, d;
        if (!valid_env_name(name)) {
            st = fail_key(c, name,
                          "%s in \"env\" of %s is not a valid environment variable name; use "
                          "letters, digits and _, not starting with a digit",
                          quote(&qn, name), c->where);
            break;
        }
        if (!json_is_string(value)) {
            st = fail_key(c, name,
                          "environment variable %s in \"env\" of %s must be a string, not %s",
                          quote(&qn, name), c->where, describe(&d, value));
            break;
        }
    }
    c->depth--;
    if (st != P11_OK)
        return st;
    m->env = calloc(n + 1, sizeof(*m->env));
    if (m->env == NULL)
        return no_memory(c);
    json_object_foreach(env, name, value) {
        size_t ln = strlen(name), lv = strlen(json_string_value(value));
        char *kv = malloc(ln + lv + 2);
        if (kv == NULL)
            return no_memory(c);
        memcpy(kv, name, ln);
        kv[ln] = '=';
        memcpy(kv + ln + 1, json_string_value(value), lv + 1);
        m->env[k++] = kv;
    }
    return P11_OK;
}

static p11_status parse_member(ctx *c, p11_topology_partition *p, size_t j, json_t *mj,
                               const char *part_shown)
{
    p11_topology_member *m = &p->members[j];
    json_t *jname, *env;
    const char *name, *module, *init_args, *token, *serial;
    json_int_t slot = -1, priority = 0, timeout = c->default_timeout_ms;
    char dflt_name[32];
    int oom = 0;
    qbuf q, d;
    p11_status st;

    m->slot = -1;
    if (!json_is_object(mj))
        return fail_key(c, NULL,
                        "member %zu of partition %s must be an object {\"module\": ...}, not %s",
                        j + 1, part_shown, describe(&d, mj));
    snprintf(dflt_name, sizeof(dflt_name), "member-%zu", j + 1);
    jname = json_object_get(mj, "name");
    snprintf(c->where, sizeof(c->where), "member %s of partition %s",
             quote(&q, json_is_string(jname) ? json_string_value(jname) : dflt_name), part_shown);

    if ((st = check_keys(c, mj, member_keys,
                         "\"name\", \"module\", \"env\", \"init-args\", \"token\", \"serial\", "
                         "\"slot\", \"priority\" and \"timeout-ms\"")) != P11_OK)
        return st;
    if ((st = get_string(c, mj, "name", &name)) != P11_OK)
        return st;
    if (name && (st = check_text(c, "name", name, NAME_MAX_LEN, 0, "a member name")) != P11_OK)
        return st;
    if (name == NULL)
        name = dflt_name;
    for (size_t k = 0; k < j; k++) {
        if (strcmp(p->members[k].name, name) != 0)
            continue;
        if (jname)
            return fail_key(c, "name",
                            "member name %s is used twice in partition %s (members %zu and %zu); "
                            "give each member its own name",
                            quote(&q, name), part_shown, k + 1, j + 1);
        return fail_key(c, NULL,
                        "member %zu of partition %s has no \"name\", and its default name %s is "
                        "already used by member %zu; give one of them another name",
                        j + 1, part_shown, quote(&q, name), k + 1);
    }

    if ((st = get_string(c, mj, "module", &module)) != P11_OK)
        return st;
    if (module == NULL)
        return fail_key(c, NULL,
                        "%s has no \"module\"; add \"module\": \"/path/to/pkcs11-module.so\", the "
                        "absolute path of its PKCS#11 library",
                        c->where);
    if (module[0] != '/')
        return fail_key(c, "module",
                        "\"module\" must be an absolute path (starting with /), not %s, in %s",
                        quote(&q, module), c->where);

    env = json_object_get(mj, "env");
    if (env && !json_is_object(env))
        return fail_key(c, "env",
                        "\"env\" must be an object of environment variables {\"NAME\": \"value\"}, "
                        "not %s, in %s",
                        describe(&d, env), c->where);

    if ((st = get_string(c, mj, "init-args", &init_args)) != P11_OK ||
        (st = get_string(c, mj, "token", &token)) != P11_OK)
        return st;
    if (token && (st = check_text(c, "token", token, P11_LABEL_LEN, 1, "a token label")) != P11_OK)
        return st;
    if ((st = get_string(c, mj, "serial", &serial)) != P11_OK)
        return st;
    if (serial &&
        (st = check_text(c, "serial", serial, SERIAL_MAX_LEN, 1, "a token serial")) != P11_OK)
        return st;
    if ((st = get_integer(c, mj, "slot", 0, LONG_MAX, "a non-negative integer (a slot ID)", "",
                          &slot)) != P11_OK ||
        (st = get_integer(c, mj, "priority", 0, 99, "an integer from 0 to 99",
                          "; 0 is the highest priority", &priority)) != P11_OK ||
        (st = get_integer(c, mj, "timeout-ms", 1, 600000, "an integer from 1 to 600000",
                          "; it is the deadline of one call to the member, in milliseconds",
                          &timeout)) != P11_OK)
        return st;

    m->name = dup_or_null(name, &oom);
    m->module = dup_or_null(module, &oom);
    m->init_args = dup_or_null(init_args && init_args[0] ? init_args : NULL, &oom);
    m->token = dup_or_null(token ? token : p->name, &oom);
    m->serial = dup_or_null(serial, &oom);
    m->slot = (long)slot;
    m->priority = (int)priority;
    m->timeout_ms = (unsigned)timeout;
    if (oom)
        return no_memory(c);
    return env ? parse_env(c, env, m) : P11_OK;
}

static p11_status parse_partition(ctx *c, p11_topology *topo, size_t i, json_t *pj)
{
    p11_topology_partition *p = &topo->parts[i];
    json_t *jname, *members;
    const char *name, *id;
    char part_shown[sizeof(qbuf) + 32];
    int oom = 0;
    qbuf q, d;
    p11_status st;

    if (!json_is_object(pj))
        return fail_key(c, NULL,
                        "partition %zu in \"partitions\" must be an object {\"name\": ..., "
                        "\"members\": [...]}, not %s",
                        i + 1, describe(&d, pj));
    jname = json_object_get(pj, "name");
    if (json_is_string(jname))
        snprintf(part_shown, sizeof(part_shown), "%s", quote(&q, json_string_value(jname)));
    else
        snprintf(part_shown, sizeof(part_shown), "%zu", i + 1);
    snprintf(c->where, sizeof(c->where), "partition %s", part_shown);

    if ((st = check_keys(c, pj, partition_keys, "\"name\", \"id\" and \"members\"")) != P11_OK)
        return st;
    if ((st = get_string(c, pj, "name", &name)) != P11_OK)
        return st;
    if (name == NULL)
        return fail_key(c, NULL,
                        "partition %zu has no \"name\"; add \"name\": the label of the token "
                        "that holds the partition (1 to %d bytes)",
                        i + 1, P11_LABEL_LEN);
    if ((st = check_text(c, "name", name, P11_LABEL_LEN, 1, "a token label")) != P11_OK)
        return st;
    for (size_t k = 0; k < i; k++)
        if (strcmp(topo->parts[k].name, name) == 0)
            return fail_key(c, "name",
                            "partition name %s is used twice (partitions %zu and %zu); give each "
                            "partition its own name",
                            quote(&q, name), k + 1, i + 1);
    if ((st = get_string(c, pj, "id", &id)) != P11_OK)
        return st;
    if (id && (st = check_text(c, "id", id, NAME_MAX_LEN, 0, "a partition id")) != P11_OK)
        return st;

    members = json_object_get(pj, "members");
    if (members == NULL)
        return fail_key(c, NULL,
                        "partition %s has no \"members\"; list the HSMs that hold it: \"members\": "
                        "[{\"module\": \"/path/to/pkcs11-module.so\"}]",
                        part_shown);
    if (!json_is_array(members))
        return fail_key(c, "members",
                        "\"members\" must be an array of member objects, not %s, in partition %s",
                        describe(&d, members), part_shown);
    if (json_array_size(members) == 0)
        return fail_key(c, "members",
                        "\"members\" of partition %s is empty; list at least one member "
                        "{\"module\": \"/path/to/pkcs11-module.so\"}",
                        part_shown);
    if (json_array_size(members) > P11_MAX_MEMBERS)
        return fail_key(c, "members",
                        "partition %s has %zu members; at most %d are allowed, so split it or "
                        "drop members",
                        part_shown, json_array_size(members), P11_MAX_MEMBERS);

    p->name = dup_or_null(name, &oom);
    p->id = dup_or_null(id ? id : name, &oom);
    p->members = calloc(json_array_size(members), sizeof(*p->members));
    if (oom || p->members == NULL)
        return no_memory(c);
    p->n_members = json_array_size(members);
    for (size_t k = 0; k < p->n_members; k++)
        p->members[k].slot = -1;

    push_key(c, "members");
    for (size_t j = 0; j < p->n_members; j++) {
        push_index(c, j);
        st = parse_member(c, p, j, json_array_get(members, j), part_shown);
        c->depth--;
        if (st != P11_OK)
            break;
    }
    c->depth--;
    return st;
}

static p11_status parse_root(ctx *c, json_t *root, p11_topology *topo)
{
    json_t *parts;
    qbuf d;
    p11_status st = P11_OK;

    if (!json_is_object(root))
        return fail_key(c, NULL,
                        "the top level must be an object {\"partitions\": [...]}, not %s",
                        describe(&d, root));
    snprintf(c->where, sizeof(c->where), "the top level object");
    if ((st = check_keys(c, root, top_keys, "only \"partitions\"")) != P11_OK)
        return st;
    parts = json_object_get(root, "partitions");
    if (parts == NULL)
        return fail_key(c, NULL,
                        "the top level object has no \"partitions\"; add \"partitions\": "
                        "[{\"name\": \"TOKEN-LABEL\", \"members\": [{\"module\": "
                        "\"/path/to/pkcs11-module.so\"}]}]");
    if (!json_is_array(parts))
        return fail_key(c, "partitions", "\"partitions\" must be an array of partitions, not %s",
                        describe(&d, parts));
    if (json_array_size(parts) == 0)
        return fail_key(c, "partitions",
                        "\"partitions\" is empty; declare at least one partition {\"name\": ..., "
                        "\"members\": [...]}");

    topo->parts = calloc(json_array_size(parts), sizeof(*topo->parts));
    if (topo->parts == NULL)
        return no_memory(c);
    topo->n_parts = json_array_size(parts);

    push_key(c, "partitions");
    for (size_t i = 0; i < topo->n_parts; i++) {
        push_index(c, i);
        st = parse_partition(c, topo, i, json_array_get(parts, i));
        c->depth--;
        if (st != P11_OK)
            break;
    }
    c->depth--;
    return st;
}

/* A jansson refusal as a message: a duplicate key points at the second
 * occurrence's opening quote; anything else at jansson's position. */
static p11_status syntax_error(const ctx *c, const json_error_t *err)
{
    /* jansson gives no reason at all only when it cannot allocate its buffers */
    if (err->text[0] == '\0' || json_error_code(err) == json_error_out_of_memory)
        return no_memory(c);
    if (json_error_code(err) == json_error_duplicate_key && err->position > 1 &&
        (size_t)err->position <= c->len && c->text[err->position - 1] == '"') {
        size_t end = (size_t)err->position - 1, k = end;
        while (k > 0) {
            size_t bs = 0;
            k--;
            while (k >= bs + 1 && c->text[k - bs - 1] == '\\')
                bs++;
            if (c->text[k] == '"' && bs % 2 == 0)
                break;
        }
        if (c->text[k] == '"' && k < end) {
            char key[QUOTE_MAX + 8];
            size_t n = end - k + 1;
            if (n > QUOTE_MAX) {
                n = QUOTE_MAX;
                while (n > 0 && ((unsigned char)c->text[k + n] & 0xC0) == 0x80)
                    n--;
                snprintf(key, sizeof(key), "%.*s...", (int)n, c->text + k);
            } else {
                snprintf(key, sizeof(key), "%.*s", (int)n, c->text + k);
            }
            return fail_at(c, k,
                           "key %s appears twice in the same object; keep only one of them", key);
        }
    }
    return p11_error_set(P11_ERR_CONFIG, CKR_OK, "%s:%d:%d: not JSON: '%s'", c->file,
                         err->line > 0 ? err->line : 1, err->column > 0 ? err->column : 1,
                         err->text);
}

p11_status p11_topology_parse(const char *text, size_t len, const char *path,
                              unsigned default_timeout_ms, p11_topology **out)
{
    ctx c;
    json_t *root;
    json_error_t err;
    p11_topology *topo;
    p11_status st;

    if (out == NULL)
        return p11_error_set(P11_ERR_INTERNAL, CKR_OK, "p11_topology_parse: out is NULL");
    *out = NULL;
    if (text == NULL)
        len = 0;
    memset(&c, 0, sizeof(c));
    c.text = text ? text : "";
    c.len = len;
    c.file = path ? path : "topology";
    c.default_timeout_ms = default_timeout_ms;

    if (skip_ws(&c, 0) >= len)
        return fail_at(&c, 0,
                       "the file is empty; write a JSON object such as {\"partitions\": "
                       "[{\"name\": \"TOKEN-LABEL\", \"members\": [{\"module\": "
                       "\"/path/to/pkcs11-module.so\"}]}]}");
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        return fail_at(&c, 0,
                       "the file begins with a byte order mark; save it as UTF-8 without BOM");
    memset(&err, 0, sizeof(err)); /* jansson leaves the code byte unset when it fails early */
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (root == NULL)
        return syntax_error(&c, &err);

    topo = calloc(1, sizeof(*topo));
    if (topo == NULL) {
        json_decref(root);
        return no_memory(&c);
    }
    st = parse_root(&c, root, topo);
    json_decref(root);
    if (st != P11_OK) {
        p11_topology_free(topo);
        return st;
    }
    *out = topo;
    return P11_OK;
}

p11_status p11_topology_load(const char *path, unsigned default_timeout_ms, p11_topology **out)
{
    FILE *f;
    char *buf;
    size_t len = 0, n;
    p11_status st;

    if (out == NULL)
        return p11_error_set(P11_ERR_INTERNAL, CKR_OK, "p11_topology_load: out is NULL");
    *out = NULL;
    if (path == NULL || path[0] == '\0')
        return p11_error_set(P11_ERR_CONFIG, CKR_OK,
                             "primus-topology is empty; give the path of the JSON topology file");
    f = fopen(path, "rb");
    if (f == NULL)
        return p11_error_set(P11_ERR_CONFIG, CKR_OK,
                             "%s: cannot read topology file: %s; check the path given to "
                             "primus-topology and the file's permissions",
                             path, strerror(errno));
    buf = malloc(P11_TOPOLOGY_MAX_FILE + 1);
    if (buf == NULL) {
        fclose(f);
        return p11_error_set(P11_ERR_MEMORY, CKR_HOST_MEMORY,
                             "out of memory while loading the topology file %s", path);
    }
    while ((n = fread(buf + len, 1, P11_TOPOLOGY_MAX_FILE + 1 - len, f)) > 0) {
        len += n;
        if (len > P11_TOPOLOGY_MAX_FILE)
            break;
    }
    if (ferror(f)) {
        int e = errno;
        fclose(f);
        free(buf);
        return p11_error_set(P11_ERR_CONFIG, CKR_OK,
                             "%s: cannot read topology file: %s; check the path given to "
                             "primus-topology and the file's permissions",
                             path, strerror(e));
    }
    fclose(f);
    if (len > P11_TOPOLOGY_MAX_FILE) {
        free(buf);
        return p11_error_set(P11_ERR_CONFIG, CKR_OK,
                             "%s: the topology file is larger than %d bytes; check that "
                             "primus-topology names the topology file",
                             path, P11_TOPOLOGY_MAX_FILE);
    }
    st = p11_topology_parse(buf, len, path, default_timeout_ms, out);
    free(buf);
    return st;
}

static void member_clear(p11_topology_member *m)
{
    free(m->name);
    free(m->module);
    if (m->env)
        for (char **e = m->env; *e; e++)
            free(*e);
    free(m->env);
    free(m->init_args);
    free(m->token);
    free(m->serial);
}

void p11_topology_free(p11_topology *topo)
{
    if (topo == NULL)
        return;
    for (size_t i = 0; i < topo->n_parts; i++) {
        p11_topology_partition *p = &topo->parts[i];
        for (size_t j = 0; j < p->n_members; j++)
            member_clear(&p->members[j]);
        free(p->members);
        free(p->name);
        free(p->id);
    }
    free(topo->parts);
    free(topo);
}
