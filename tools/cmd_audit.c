/* primusctl audit verify FILE [--key KEYFILE] [--allow-open] [--json]:
 * check an audit log against docs/AUDIT.md and summarize it.
 *
 * The file is read line by line and never held whole: each stream (one per
 * writing process) keeps only its last seq, the hash of its last line and
 * where that line was, so a log of any size is checked in one pass with
 * memory proportional to the number of streams.  The first broken record
 * stops the check ("FILE:LINE: stream S seq N: reason", exit 1).
 *
 * Hashing and MACs are p11core's (p11_audit_line_hash, p11_audit_split_mac,
 * p11_audit_mac_matches): the writer and the verifier share one definition
 * of what a record's hash and MAC cover. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "primusctl.h"

#define STREAM_HEX 32
#define CHAIN_HEX 64
#define TEXT_PROCESS_LIMIT 50
#define TIME_MAX 64

static const char zero_prev[CHAIN_HEX + 1] =
    "0000000000000000000000000000000000000000000000000000000000000000";

typedef struct stream_state {
    char id[STREAM_HEX + 1];
    unsigned long long seq;        /* last seq seen */
    unsigned long long line;       /* line of the last record */
    unsigned long long first_line; /* line of stream-start */
    char hash[P11_AUDIT_HEX_SIZE]; /* SHA-256 of the last line */
    int has_mac;                   /* the stream's records carry a mac */
    int ended;                     /* stream-end seen */
    json_int_t pid, uid;           /* -1: absent */
    char *process;
    char *parent_stream;           /* forked child: the parent's stream */
    json_int_t parent_seq;
} stream_state;

typedef struct verifier {
    const char *file;
    const unsigned char *key;
    size_t key_len;
    int allow_open;

    /* streams in order of appearance, and an open-addressing index */
    stream_state **streams;
    size_t n_streams, cap_streams;
    size_t *index; /* positions in streams, SIZE_MAX when free; power-of-two size */
    size_t index_size;

    unsigned long long records, macs_present, macs_checked;
    json_int_t lost;
    char first_time[TIME_MAX], last_time[TIME_MAX];
    json_t *events;  /* event -> count */
    json_t *results; /* result -> count */
    json_t *keys;    /* key URI -> {result -> count} */

    /* the first broken record */
    unsigned long long bad_line;
    char bad_stream[STREAM_HEX + 1];
    unsigned long long bad_seq; /* 0: unknown */
    char reason[768];
} verifier;

/* ---- streams ----------------------------------------------------------- */

static size_t id_hash(const char *id)
{
    /* The ids are random hex: FNV-1a over them spreads well enough. */
    uint64_t h = 1469598103934665603ULL;
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ULL;
    return (size_t)h;
}

static void index_insert(verifier *v, size_t pos)
{
    size_t mask = v->index_size - 1, i = id_hash(v->streams[pos]->id) & mask;

    while (v->index[i] != SIZE_MAX)
        i = (i + 1) & mask;
    v->index[i] = pos;
}

static stream_state *stream_find(verifier *v, const char *id)
{
    size_t mask, i;

    if (v->index_size == 0)
        return NULL;
    mask = v->index_size - 1;
    for (i = id_hash(id) & mask; v->index[i] != SIZE_MAX; i = (i + 1) & mask)
        if (strcmp(v->streams[v->index[i]]->id, id) == 0)
            return v->streams[v->index[i]];
    return NULL;
}

static stream_state *stream_add(verifier *v, const char *id)
{
    stream_state *s;

    if (v->n_streams == v->cap_streams) {
        size_t cap = v->cap_streams ? 2 * v->cap_streams : 16;
        stream_state **n = realloc(v->streams, cap * sizeof(*n));
        if (n == NULL)
            return NULL;
        v->streams = n;
        v->cap_streams = cap;
    }
    if (2 * (v->n_streams + 1) > v->index_size) {
        size_t size = v->index_size ? 2 * v->index_size : 32, i;
        size_t *n = malloc(size * sizeof(*n));
        if (n == NULL)
            return NULL;
        for (i = 0; i < size; i++)
            n[i] = SIZE_MAX;
        free(v->index);
        v->index = n;
        v->index_size = size;
        for (i = 0; i < v->n_streams; i++)
            index_insert(v, i);
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    memcpy(s->id, id, STREAM_HEX + 1);
    s->pid = s->uid = -1;
    v->streams[v->n_streams] = s;
    index_insert(v, v->n_streams++);
    return s;
}

static void verifier_clear(verifier *v)
{
    size_t i;

    for (i = 0; i < v->n_streams; i++) {
        free(v->streams[i]->process);
        free(v->streams[i]->parent_stream);
        free(v->streams[i]);
    }
    free(v->streams);
    free(v->index);
    json_decref(v->events);
    json_decref(v->results);
    json_decref(v->keys);
}

/* ---- small helpers ----------------------------------------------------- */

static int is_hex(const char *s, size_t n)
{
    size_t i;

    if (strlen(s) != n)
        return 0;
    for (i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static void count(json_t *obj, const char *name)
{
    json_t *n = json_object_get(obj, name);

    if (n)
        json_integer_set(n, json_integer_value(n) + 1);
    else
        json_object_set_new(obj, name, json_integer(1));
}

/* Text taken from the log, made safe for a terminal: control characters
 * (an edited log could carry escape sequences) are shown as \xNN. */
static const char *printable(const char *s, char *buf, size_t size)
{
    static const char digits[] = "0123456789abcdef";
    size_t o = 0;

    for (; s && *s && o + 5 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f) {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = digits[c >> 4];
            buf[o++] = digits[c & 15];
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o] = '\0';
    return buf;
}

static void broken(verifier *v, unsigned long long line, const char *stream,
                   unsigned long long seq, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void broken(verifier *v, unsigned long long line, const char *stream,
                   unsigned long long seq, const char *fmt, ...)
{
    va_list ap;

    v->bad_line = line;
    snprintf(v->bad_stream, sizeof(v->bad_stream), "%s", stream ? stream : "");
    v->bad_seq = seq;
    va_start(ap, fmt);
    vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
    va_end(ap);
}

/* Best effort for a line that is not JSON (cut off, damaged): which
 * record was it?  The writer puts "stream" and "seq" near the start. */
static void guess_identity(const char *line, size_t len, char stream[STREAM_HEX + 1],
                           unsigned long long *seq)
{
    static const char sk[] = "\"stream\":\"", qk[] = "\"seq\":";
    const char *p = memmem(line, len, sk, sizeof(sk) - 1);
    size_t i;

    stream[0] = '\0';
    *seq = 0;
    if (p && (size_t)(line + len - p) >= sizeof(sk) - 1 + STREAM_HEX) {
        p += sizeof(sk) - 1;
        for (i = 0; i < STREAM_HEX; i++)
            if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
                break;
        if (i == STREAM_HEX) {
            memcpy(stream, p, STREAM_HEX);
            stream[STREAM_HEX] = '\0';
        }
    }
    p = memmem(line, len, qk, sizeof(qk) - 1);
    if (p) {
        unsigned long long n = 0;
        int digits = 0;
        for (p += sizeof(qk) - 1; p < line + len && *p >= '0' && *p <= '9' && digits < 19; p++)
            n = n * 10 + (unsigned long long)(*p - '0'), digits++;
        /* a number cut by the end of the line is not trustworthy */
        if (digits && p < line + len)
            *seq = n;
    }
}

/* ---- one record -------------------------------------------------------- */

/* Aggregates for the summary, from a record that passed every check. */
static void tally(verifier *v, stream_state *s, json_t *rec, const char *event)
{
    const char *t = json_string_value(json_object_get(rec, "time"));
    const char *key = json_string_value(json_object_get(rec, "key"));
    const char *result = json_string_value(json_object_get(rec, "result"));
    json_t *lost = json_object_get(rec, "lost");

    v->records++;
    count(v->events, event);
    if (result)
        count(v->results, result);
    if (key) {
        json_t *by = json_object_get(v->keys, key);
        if (by == NULL) {
            by = json_object();
            json_object_set_new(v->keys, key, by);
        }
        count(by, result ? result : "(no result)");
    }
    if (strcmp(event, "records-lost") == 0 && json_is_integer(lost))
        v->lost += json_integer_value(lost);
    if (t && strlen(t) < TIME_MAX) {
        if (v->first_time[0] == '\0' || strcmp(t, v->first_time) < 0)
            strcpy(v->first_time, t);
        if (strcmp(t, v->last_time) > 0)
            strcpy(v->last_time, t);
    }
    if (s->seq == 1) {
        json_t *parent = json_object_get(rec, "parent");
        const char *proc = json_string_value(json_object_get(rec, "process"));
        const char *ps = json_string_value(json_object_get(parent, "stream"));
        if (json_is_integer(json_object_get(rec, "pid")))
            s->pid = json_integer_value(json_object_get(rec, "pid"));
        if (json_is_integer(json_object_get(rec, "uid")))
            s->uid = json_integer_value(json_object_get(rec, "uid"));
        if (proc)
            s->process = strdup(proc);
        if (ps) {
            s->parent_stream = strdup(ps);
            s->parent_seq = json_integer_value(json_object_get(parent, "seq"));
        }
    }
}

/* Checks one line (without its newline); 1 when it is a good record, 0
 * when it is broken (v->reason says why), -1 when out of memory. */
static int check_record(verifier *v, unsigned long long lineno, const char *line, size_t len,
                        int has_newline)
{
    json_error_t jerr;
    json_t *rec, *jv, *jseq, *jmac, *jrecords;
    const char *stream_id, *event, *prev;
    char guess[STREAM_HEX + 1], mac[P11_AUDIT_HEX_SIZE], hash[P11_AUDIT_HEX_SIZE];
    unsigned long long seq, gseq;
    size_t body_end;
    stream_state *s;
    int has_mac;

    if (len == 0) {
        broken(v, lineno, NULL, 0,
               "empty line: not a record (the file was damaged or edited)");
        return 0;
    }
    if (!has_newline) {
        guess_identity(line, len, guess, &gseq);
        broken(v, lineno, guess, gseq,
               "the last line is cut off (%zu bytes, no newline): the log was truncated in "
               "the middle of this record",
               len);
        return 0;
    }
    rec = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (rec == NULL || !json_is_object(rec)) {
        guess_identity(line, len, guess, &gseq);
        if (rec == NULL)
            broken(v, lineno, guess, gseq,
                   "not a complete JSON object (%s, at byte %d): the record was damaged, "
                   "cut off or mixed with other data",
                   jerr.text, jerr.position);
        else
            broken(v, lineno, guess, gseq, "a JSON value that is not an object: not a record");
        json_decref(rec);
        return 0;
    }

    /* members every record has */
    guess_identity(line, len, guess, &gseq);
    jv = json_object_get(rec, "v");
    stream_id = json_string_value(json_object_get(rec, "stream"));
    jseq = json_object_get(rec, "seq");
    event = json_string_value(json_object_get(rec, "event"));
    prev = json_string_value(json_object_get(rec, "prev"));
    if (!json_is_integer(jv)) {
        broken(v, lineno, guess, gseq, "no format version (\"v\"): not an audit record");
        goto bad;
    }
    if (json_integer_value(jv) != 1) {
        broken(v, lineno, guess, gseq,
               "format version %lld: this primusctl reads version 1 records only",
               (long long)json_integer_value(jv));
        goto bad;
    }
    if (stream_id == NULL || !is_hex(stream_id, STREAM_HEX)) {
        broken(v, lineno, NULL, gseq,
               "\"stream\" is missing or not 32 lower-case hex digits: the record was altered");
        goto bad;
    }
    if (!json_is_integer(jseq) || json_integer_value(jseq) < 1) {
        broken(v, lineno, stream_id, 0,
               "\"seq\" is missing or not a positive integer: the record was altered");
        goto bad;
    }
    seq = (unsigned long long)json_integer_value(jseq);
    if (event == NULL || event[0] == '\0') {
        broken(v, lineno, stream_id, seq, "\"event\" is missing: the record was altered");
        goto bad;
    }
    if (prev == NULL || !is_hex(prev, CHAIN_HEX)) {
        broken(v, lineno, stream_id, seq,
               "\"prev\" is missing or not 64 lower-case hex digits: the record was altered");
        goto bad;
    }
    jmac = json_object_get(rec, "mac");
    has_mac = jmac != NULL;
    if (has_mac && !p11_audit_split_mac(line, len, &body_end, mac)) {
        broken(v, lineno, stream_id, seq,
               "the mac member is malformed (it must be the last member, 64 lower-case hex "
               "digits): the record was altered");
        goto bad;
    }

    /* the stream: seq and prev */
    s = stream_find(v, stream_id);
    if (s == NULL) {
        if (seq != 1) {
            broken(v, lineno, stream_id, seq,
                   "the stream's first record in the file has seq %llu: its records 1..%llu "
                   "are missing (removed, or the start of the log was cut off)",
                   seq, seq - 1);
            goto bad;
        }
        if (strcmp(event, "stream-start") != 0) {
            broken(v, lineno, stream_id, seq,
                   "seq 1 is a \"%s\" record, not stream-start: the stream's first record "
                   "was altered or replaced",
                   event);
            goto bad;
        }
        if (strcmp(prev, zero_prev) != 0) {
            broken(v, lineno, stream_id, seq,
                   "prev of seq 1 is not 64 zeros: the record was altered");
            goto bad;
        }
    } else {
        if (seq == s->seq) {
            broken(v, lineno, stream_id, seq,
                   "seq %llu appears twice (first on line %llu): a record was duplicated or "
                   "inserted",
                   seq, s->line);
            goto bad;
        }
        if (seq < s->seq) {
            broken(v, lineno, stream_id, seq,
                   "seq %llu comes after seq %llu (line %llu): records were reordered, or a "
                   "record was inserted",
                   seq, s->seq, s->line);
            goto bad;
        }
        if (s->ended) {
            broken(v, lineno, stream_id, seq,
                   "the stream already ended on line %llu (stream-end, seq %llu): a record "
                   "was inserted or appended after it",
                   s->line, s->seq);
            goto bad;
        }
        if (seq > s->seq + 1) {
            if (seq == s->seq + 2)
                broken(v, lineno, stream_id, seq,
                       "seq %llu follows seq %llu (line %llu): record %llu is missing here: it "
                       "was deleted, or records were reordered",
                       seq, s->seq, s->line, s->seq + 1);
            else
                broken(v, lineno, stream_id, seq,
                       "seq %llu follows seq %llu (line %llu): records %llu..%llu are missing "
                       "here: they were deleted, or records were reordered",
                       seq, s->seq, s->line, s->seq + 1, seq - 1);
            goto bad;
        }
        if (strcmp(prev, s->hash) != 0) {
            broken(v, lineno, stream_id, seq,
                   "prev does not match the hash of line %llu (seq %llu), the stream's "
                   "previous record: a record was edited, inserted or removed before this one",
                   s->line, s->seq);
            goto bad;
        }
        if (strcmp(event, "stream-start") == 0) {
            broken(v, lineno, stream_id, seq,
                   "a stream-start in the middle of the stream: the record was altered");
            goto bad;
        }
    }

    /* authenticity */
    if (v->key) {
        if (!has_mac) {
            broken(v, lineno, stream_id, seq,
                   "no mac, but a key was given: the record was written without the audit "
                   "key, or its mac was stripped");
            goto bad;
        }
        if (!p11_audit_mac_matches(v->key, v->key_len, line, len)) {
            broken(v, lineno, stream_id, seq,
                   "the mac is wrong for this key: the record was edited (the chain may have "
                   "been recomputed to hide it)%s",
                   v->macs_checked == 0 ? ", or the key is not the one this log was written "
                                          "with (no record has matched it so far)"
                                        : "");
            goto bad;
        }
        v->macs_checked++;
    } else if (s && has_mac != s->has_mac) {
        if (has_mac)
            broken(v, lineno, stream_id, seq,
                   "this record has a mac but the stream's earlier ones (line %llu) have "
                   "none: the record was inserted or altered",
                   s->line);
        else
            broken(v, lineno, stream_id, seq,
                   "no mac, but the stream's earlier records (line %llu) have one: the mac "
                   "was stripped, or the record was inserted",
                   s->line);
        goto bad;
    }
    if (has_mac)
        v->macs_present++;

    /* the end of a stream */
    jrecords = json_object_get(rec, "records");
    if (strcmp(event, "stream-end") == 0) {
        if (!json_is_integer(jrecords)) {
            broken(v, lineno, stream_id, seq,
                   "stream-end without a \"records\" count: the record was altered");
            goto bad;
        }
        if ((unsigned long long)json_integer_value(jrecords) != seq) {
            broken(v, lineno, stream_id, seq,
                   "stream-end counts %lld records but the stream has %llu: the record was "
                   "altered",
                   (long long)json_integer_value(jrecords), seq);
            goto bad;
        }
    }

    if (!p11_audit_line_hash(line, len, hash)) {
        json_decref(rec);
        return -1;
    }
    if (s == NULL) {
        s = stream_add(v, stream_id);
        if (s == NULL) {
            json_decref(rec);
            return -1;
        }
        s->first_line = lineno;
        s->has_mac = has_mac;
    }
    s->seq = seq;
    s->line = lineno;
    memcpy(s->hash, hash, sizeof(hash));
    if (strcmp(event, "stream-end") == 0)
        s->ended = 1;
    tally(v, s, rec, event);
    json_decref(rec);
    return 1;

bad:
    json_decref(rec);
    return 0;
}

/* After the last line: every stream must have ended (unless --allow-open).
 * The open stream reported is the one whose last record comes first. */
static int check_ends(verifier *v)
{
    stream_state *first = NULL;
    size_t i, open = 0;

    for (i = 0; i < v->n_streams; i++) {
        stream_state *s = v->streams[i];
        if (s->ended)
            continue;
        open++;
        if (first == NULL || s->line < first->line)
            first = s;
    }
    if (open == 0 || v->allow_open)
        return 1;
    broken(v, first->line, first->id, first->seq,
           "the stream has no stream-end after this record, its last: the log was cut off "
           "after it, or the process (pid %lld) is still running or was killed "
           "(%zu stream%s open; --allow-open accepts that)",
           (long long)first->pid, open, open == 1 ? " is" : "s are");
    return 0;
}

/* ---- output ------------------------------------------------------------ */

/* Processes are told apart by pid and name (a forked child has its own
 * stream and pid; one process normally has one stream). */
static size_t process_count(const verifier *v)
{
    json_t *seen = json_object();
    char name[64 + 4096];
    size_t i, n;

    if (seen == NULL)
        return v->n_streams;
    for (i = 0; i < v->n_streams; i++) {
        snprintf(name, sizeof(name), "%lld %s", (long long)v->streams[i]->pid,
                 v->streams[i]->process ? v->streams[i]->process : "");
        json_object_set_new(seen, name, json_true());
    }
    n = json_object_size(seen);
    json_decref(seen);
    return n;
}

static json_t *summary_json(const verifier *v, const char *key_file)
{
    json_t *doc, *procs = json_array();
    size_t i, open = 0;

    for (i = 0; i < v->n_streams; i++) {
        const stream_state *s = v->streams[i];
        json_t *p = json_pack("{s:s, s:I, s:s, s:I, s:I, s:I, s:I, s:b}", "stream", s->id, "pid",
                              s->pid, "process", s->process ? s->process : "", "uid", s->uid,
                              "records", (json_int_t)s->seq, "first_line",
                              (json_int_t)s->first_line, "last_line", (json_int_t)s->line,
                              "ended", s->ended);
        if (p && s->parent_stream)
            json_object_set_new(p, "parent", json_pack("{s:s, s:I}", "stream", s->parent_stream,
                                                       "seq", s->parent_seq));
        json_array_append_new(procs, p);
        open += !s->ended;
    }
    doc = json_pack("{s:s, s:b, s:I, s:I, s:I, s:I, s:s*, s:s*, s:{s:s, s:I, s:s*}, s:I, s:O, "
                    "s:O, s:O, s:o}",
                    "file", v->file, "intact", 1, "records", (json_int_t)v->records, "streams",
                    (json_int_t)v->n_streams, "open_streams", (json_int_t)open,
                    "process_count", (json_int_t)process_count(v), "first_time",
                    v->first_time[0] ? v->first_time : NULL, "last_time",
                    v->last_time[0] ? v->last_time : NULL, "mac", "state",
                    key_file ? "checked"
                    : v->macs_present ? "present, not checked"
                                      : "absent",
                    "records_with_mac", (json_int_t)v->macs_present, "key", key_file,
                    "records_lost", (json_int_t)v->lost, "events", v->events, "results",
                    v->results, "keys", v->keys, "processes", procs);
    return doc;
}

static void print_summary(const verifier *v, const char *key_file)
{
    const char *name;
    json_t *val, *by, *r;
    size_t i, open = 0;
    char a[4 * 4096], b[4 * 256];

    for (i = 0; i < v->n_streams; i++)
        open += !v->streams[i]->ended;
    printf("%s: intact\n", v->file);
    printf("records    %llu in %zu stream%s", v->records, v->n_streams,
           v->n_streams == 1 ? "" : "s");
    if (open)
        printf(" (%zu open: no stream-end yet)", open);
    printf("\n");
    if (v->first_time[0])
        printf("time       %s .. %s\n", printable(v->first_time, a, sizeof(a)),
               printable(v->last_time, b, sizeof(b)));
    if (key_file)
        printf("mac        every record's mac is right for %s\n", key_file);
    else if (v->macs_present)
        printf("mac        note: %llu record%s carry a mac, but no --key was given: "
               "authenticity was NOT checked, only the hash chain\n",
               v->macs_present, v->macs_present == 1 ? "" : "s");
    else
        printf("mac        none: the log was written without an audit key; the chain shows "
               "damage and naive edits, not a deliberate rewrite\n");
    if (v->lost)
        printf("lost       %lld record%s not written (fail-open; see the records-lost "
               "records)\n",
               (long long)v->lost, v->lost == 1 ? " was" : "s were");

    if (v->n_streams)
        printf("\nprocesses (%zu)\n", process_count(v));
    for (i = 0; i < v->n_streams && i < TEXT_PROCESS_LIMIT; i++) {
        const stream_state *s = v->streams[i];
        printf("  pid %-7lld %-16s uid %-6lld stream %s  %llu record%s, lines %llu..%llu, %s",
               (long long)s->pid, s->process ? printable(s->process, a, sizeof(a)) : "?",
               (long long)s->uid, s->id,
               s->seq, s->seq == 1 ? "" : "s", s->first_line, s->line,
               s->ended ? "ended" : "open");
        if (s->parent_stream)
            printf(", forked from stream %s at seq %lld",
                   printable(s->parent_stream, a, sizeof(a)),
                   (long long)s->parent_seq);
        printf("\n");
    }
    if (v->n_streams > TEXT_PROCESS_LIMIT)
        printf("  ... %zu more (--json lists them all)\n", v->n_streams - TEXT_PROCESS_LIMIT);

    if (json_object_size(v->events))
        printf("\nevents\n");
    json_object_foreach(v->events, name, val)
        printf("  %-14s %lld\n", printable(name, a, sizeof(a)),
               (long long)json_integer_value(val));
    if (json_object_size(v->results))
        printf("\nresults\n");
    json_object_foreach(v->results, name, val)
        printf("  %-32s %lld\n", printable(name, a, sizeof(a)),
               (long long)json_integer_value(val));
    if (json_object_size(v->keys))
        printf("\noperations by key and result\n");
    json_object_foreach(v->keys, name, by) {
        const char *res;
        int first = 1;
        printf("  %s\n    ", printable(name, a, sizeof(a)));
        json_object_foreach(by, res, r) {
            printf("%s%s %lld", first ? "" : ", ", printable(res, b, sizeof(b)),
                   (long long)json_integer_value(r));
            first = 0;
        }
        printf("\n");
    }
}

static void print_broken(const verifier *v, int json)
{
    FILE *to = json ? stderr : stdout;
    char text[4 * sizeof(v->reason)];

    fprintf(to, "%s:%llu: ", v->file, v->bad_line);
    if (v->bad_stream[0])
        fprintf(to, "stream %s ", v->bad_stream);
    if (v->bad_seq)
        fprintf(to, "seq %llu", v->bad_seq);
    else if (v->bad_stream[0])
        fprintf(to, "seq ?");
    if (v->bad_stream[0] || v->bad_seq)
        fprintf(to, ": ");
    fprintf(to, "%s\n", printable(v->reason, text, sizeof(text)));
    if (json) {
        /* stream and seq are null when the line did not say them */
        json_t *doc = json_pack("{s:s, s:b, s:I, s:o, s:o, s:s, s:I}", "file", v->file,
                                "intact", 0, "line", (json_int_t)v->bad_line, "stream",
                                v->bad_stream[0] ? json_string(v->bad_stream) : json_null(),
                                "seq",
                                v->bad_seq ? json_integer((json_int_t)v->bad_seq) : json_null(),
                                "reason", v->reason, "records_checked",
                                (json_int_t)v->records);
        if (doc == NULL)
            fprintf(stderr, "primusctl: out of memory\n");
        primusctl_print_json(doc);
    }
}

/* ---- the command ------------------------------------------------------- */

static int usage_verify(void)
{
    fprintf(stderr, "usage: primusctl audit verify FILE [--key KEYFILE] [--allow-open] "
                    "[--json]\n"
                    "  FILE defaults to --audit-log, KEYFILE to --audit-key; FILE - reads "
                    "standard input\n");
    return PRIMUSCTL_USAGE;
}

static int verify(const char *file, const char *key_file, int allow_open, int json)
{
    verifier v;
    FILE *in;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long long lineno = 0;
    unsigned char *key = NULL;
    size_t key_len = 0;
    int ok = 1, rc;

    memset(&v, 0, sizeof(v));
    v.file = file;
    v.allow_open = allow_open;
    if (key_file) {
        p11_status st = p11_audit_key_load(key_file, &key, &key_len);
        if (st != P11_OK) {
            /* a bad key file is a configuration problem, whatever the cause */
            primusctl_fail(st, "cannot use the audit key");
            return PRIMUSCTL_CONFIG;
        }
        v.key = key;
        v.key_len = key_len;
    }
    in = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
    if (in == NULL) {
        fprintf(stderr, "primusctl: cannot read the audit log %s: %s\n", file, strerror(errno));
        p11_audit_key_free(key, key_len);
        return PRIMUSCTL_CONFIG;
    }
    v.events = json_object();
    v.results = json_object();
    v.keys = json_object();
    if (v.events == NULL || v.results == NULL || v.keys == NULL)
        goto out_of_memory;

    errno = 0;
    while ((n = getline(&line, &cap, in)) != -1) {
        int has_newline = n > 0 && line[n - 1] == '\n';
        lineno++;
        rc = check_record(&v, lineno, line, (size_t)n - (has_newline ? 1 : 0), has_newline);
        if (rc < 0)
            goto out_of_memory;
        if (rc == 0) {
            ok = 0;
            break;
        }
        errno = 0;
    }
    if (ok && ferror(in)) {
        fprintf(stderr, "primusctl: cannot read the audit log %s (after line %llu): %s\n", file,
                lineno, strerror(errno ? errno : EIO));
        rc = PRIMUSCTL_CONFIG;
        goto done;
    }
    if (ok)
        ok = check_ends(&v);
    if (!ok) {
        print_broken(&v, json);
        rc = PRIMUSCTL_FAIL;
    } else {
        if (json)
            primusctl_print_json(summary_json(&v, key_file));
        else
            print_summary(&v, key_file);
        rc = PRIMUSCTL_OK;
    }
    goto done;

out_of_memory:
    fprintf(stderr, "primusctl: out of memory while verifying %s\n", file);
    rc = PRIMUSCTL_FAIL;
done:
    free(line);
    if (in != stdin)
        fclose(in);
    verifier_clear(&v);
    p11_audit_key_free(key, key_len);
    return rc;
}

int primusctl_audit(int argc, char **argv, primusctl_opts *opts)
{
    const char *file = NULL, *key_file = opts->audit_key;
    int allow_open = 0, i;

    if (argc < 2 || strcmp(argv[1], "verify") != 0)
        return usage_verify();
    for (i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--key") == 0) {
            if (i + 1 >= argc)
                return usage_verify();
            key_file = argv[++i];
        } else if (strcmp(argv[i], "--allow-open") == 0) {
            allow_open = 1;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "primusctl: audit verify: unknown option %s\n", argv[i]);
            return usage_verify();
        } else if (file == NULL) {
            file = argv[i];
        } else {
            return usage_verify();
        }
    }
    if (file == NULL)
        file = opts->audit_log;
    if (file == NULL)
        return usage_verify();
    return verify(file, key_file, allow_open, opts->json);
}
