/* Audit evidence: one JSON line per sensitive operation, hash-chained per
 * process (a "stream") and, with a key, authenticated (docs/AUDIT.md).
 *
 * Cost: an operation only copies a few strings into a bounded queue under a
 * short lock; a writer thread formats, chains, MACs and appends a
 * whole batch with one write().  Sequence numbers are given at queue time
 * and the queue is FIFO, so the file order of a stream is its seq order.
 *
 * When the log cannot be written the writer keeps the chained bytes it
 * could not write and retries; meanwhile fail-closed refuses sensitive
 * operations (p11_audit_admit) and fail-open lets them go on, dropping what
 * does not fit in the queue and saying how many in a "records-lost" record
 * once writing works again.
 *
 * Processes: the file is opened O_APPEND and each batch is one write() of
 * whole lines, so several processes (server workers) share one log without
 * mixing lines.  A forked child starts its own stream, whose first record
 * names the parent's stream and seq at the fork. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "internal.h"
#include "audit.h"

#define AUDIT_QUEUE_SLOTS 1024
#define AUDIT_WAKE_AT 64          /* queued records that wake the writer at once */
#define AUDIT_FLUSH_MS 20         /* otherwise it writes at least this often */
#define AUDIT_RETRY_MS 250        /* how often a failing log is tried again */
#define AUDIT_URI_MAX 768
#define AUDIT_ID_HEX_MAX 129      /* 64-byte CKA_ID */

typedef struct audit_entry {
    const char *event;            /* static string */
    unsigned long long seq;
    struct timespec when;
    CK_MECHANISM_TYPE mech;
    CK_RV rv;
    long long latency_us;         /* -1: not an operation */
    unsigned char has_mech, has_rv;
    unsigned long long lost;      /* records-lost */
    unsigned long long count;     /* stream-end */
    unsigned long long parent_seq;
    /* strings last: only their first byte is cleared for a new record */
    char partition[P11_LABEL_LEN + 1];
    char member[96];
    char key_uri[AUDIT_URI_MAX];
    char key_id[AUDIT_ID_HEX_MAX];
    char detail[256];
    char parent_stream[33];       /* stream-start of a forked child */
} audit_entry;

struct p11_audit {
    char *path;
    unsigned char *key;
    size_t key_len;
    p11_audit_mac *mac;           /* SHA-256, and HMAC with the key, prepared once */
    int fail_open;

    pthread_mutex_t lock;         /* queue, stream identity, writer state */
    pthread_cond_t wake_writer, space, written;
    audit_entry *slots;
    size_t head, count;
    unsigned long long last_seq;  /* the last seq given */
    unsigned long long written_seq;
    unsigned long long lost;      /* fail-open: records dropped since the last records-lost */
    char stream[33];
    unsigned long gen;            /* process generation the stream belongs to */
    int writer_running, stopping, closed, flush_wanted;
    pthread_t writer;
    _Atomic int failing;          /* the last write (or open) failed */
    int failing_errno;

    /* Owned by whoever formats and writes (the writer, or close); fork
     * waits for format_lock so that a child never inherits the HMAC
     * context, the pending buffer or prev halfway through a record. */
    pthread_mutex_t format_lock;
    int fd;
    char prev[P11_AUDIT_HEX_SIZE];
    char *out;                    /* chained lines not yet written */
    size_t out_len, out_cap;
    int time_cached;              /* time_prefix is time_sec formatted */
    time_t time_sec;
    char time_prefix[32];
    size_t time_prefix_len;

    pid_t pid;
    uid_t uid;
    char process[17];

    struct p11_audit *next_open;  /* every open log, for the exit handler */
};

static _Thread_local unsigned long long thread_last_seq;
static pthread_mutex_t open_logs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct p11_audit *open_logs;
static pthread_once_t exit_handler_once = PTHREAD_ONCE_INIT;

unsigned long long p11_audit_last_seq(void) { return thread_last_seq; }

/* ---- stream identity ---- */

static void read_process_identity(p11_audit *a)
{
    FILE *f = fopen("/proc/self/comm", "re");

    a->pid = getpid();
    a->uid = getuid();
    a->process[0] = '\0';
    if (f) {
        if (fgets(a->process, sizeof(a->process), f))
            a->process[strcspn(a->process, "\n")] = '\0';
        fclose(f);
    }
}

static void new_stream_id(char out[33])
{
    unsigned char r[16];
    static const char digits[] = "0123456789abcdef";
    size_t got = 0;

    while (got < sizeof(r)) {
        ssize_t n = getrandom(r + got, sizeof(r) - got, 0);
        if (n <= 0) {
            /* No entropy source: pid and time still make streams distinct. */
            unsigned long long t = p11_now_ns() ^ ((unsigned long long)getpid() << 40);
            for (; got < sizeof(r); got++, t = t * 6364136223846793005ull + 1442695040888963407ull)
                r[got] = (unsigned char)(t >> 56);
            break;
        }
        got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof(r); i++) {
        out[2 * i] = digits[r[i] >> 4];
        out[2 * i + 1] = digits[r[i] & 15];
    }
    out[32] = '\0';
}

/* ---- formatting (writer side) ---- */

/* One record's line as it is built (writer side). */
typedef struct line_buf {
    char *p;
    size_t len, cap;
    int failed;
} line_buf;

static void put(line_buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        char *p;
        while (cap < b->len + n + 1)
            cap *= 2;
        if ((p = realloc(b->p, cap)) == NULL) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* Length of the well-formed UTF-8 sequence at s, 0 if there is none: no
 * overlong forms, no surrogates, nothing above U+10FFFF (jansson's rules). */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
    unsigned c = s[0], v;
    size_t n, i;

    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0;
    if (c < 0xE0)
        n = 2, v = c & 0x1F;
    else if (c < 0xF0)
        n = 3, v = c & 0x0F;
    else if (c < 0xF5)
        n = 4, v = c & 0x07;
    else
        return 0;
    if (n > left)
        return 0;
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (n == 3 && v < 0x800) ||
        (n == 4 && v < 0x10000))
        return 0;
    return n;
}

/* A JSON string, escaped as jansson's compact dump does (\" \\ \b \f \n \r
 * \t, other control characters \u00XX, everything else as it is).  JSON
 * wants UTF-8 and a token label need not be: in a string that is not, the
 * bytes outside printable ASCII are written as '?' rather than losing the
 * record. */
static void put_string(line_buf *b, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t mark = b->len, i, run, n;
    int valid = 1, checked = 0;

again:
    put(b, "\"", 1);
    for (i = run = 0; u[i]; i++) {
        unsigned char c = u[i];
        char seq[8];
        const char *esc;
        size_t esc_len = 2;

        if (c >= 0x80 && !checked) {
            /* all before is ASCII: check the rest once */
            size_t left = strlen(s + i);
            checked = 1;
            for (size_t j = 0; j < left; j += n)
                if ((n = utf8_seq(u + i + j, left - j)) == 0) {
                    valid = 0;
                    b->len = mark; /* control characters come out differently */
                    goto again;
                }
        }
        if (c >= 0x20 && c != '"' && c != '\\' && (valid || c < 0x80))
            continue;
        put(b, s + run, i - run);
        run = i + 1;
        if (!valid && (c < 0x20 || c >= 0x80))
            esc = "?", esc_len = 1;
        else if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\b')
            esc = "\\b";
        else if (c == '\f')
            esc = "\\f";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else {
            snprintf(seq, sizeof(seq), "\\u%04X", c);
            esc = seq, esc_len = 6;
        }
        put(b, esc, esc_len);
    }
    put(b, s + run, i - run);
    put(b, "\"", 1);
}

static void put_int(line_buf *b, long long v)
{
    char num[24], *p = num + sizeof(num);
    unsigned long long n = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;

    do
        *--p = (char)('0' + n % 10);
    while ((n /= 10) != 0);
    if (v < 0)
        *--p = '-';
    put(b, p, (size_t)(num + sizeof(num) - p));
}

/* ,"name": and the value; name is a string literal */
#define PUT_NAME(b, name) put(b, ",\"" name "\":", sizeof(",\"" name "\":") - 1)
#define PUT_STR(b, name, value) (PUT_NAME(b, name), put_string(b, value))
#define PUT_INT(b, name, value) (PUT_NAME(b, name), put_int(b, (long long)(value)))

/* RFC 3339 UTC with microseconds, quoted.  The part up to the second is
 * kept from the record before (most records share it). */
static void put_time(p11_audit *a, line_buf *b, const struct timespec *ts)
{
    char frac[9];
    unsigned us = (unsigned)(ts->tv_nsec / 1000) % 1000000u;

    if (!a->time_cached || a->time_sec != ts->tv_sec) {
        struct tm tm;
        gmtime_r(&ts->tv_sec, &tm);
        a->time_prefix_len =
            strftime(a->time_prefix, sizeof(a->time_prefix), "%Y-%m-%dT%H:%M:%S", &tm);
        a->time_sec = ts->tv_sec;
        a->time_cached = 1;
    }
    frac[0] = '.';
    for (int i = 6; i >= 1; i--, us /= 10)
        frac[i] = (char)('0' + us % 10);
    frac[7] = 'Z';
    frac[8] = '"';
    put(b, "\"", 1);
    put(b, a->time_prefix, a->time_prefix_len);
    put(b, frac, sizeof(frac));
}

/* The record as one compact JSON object, members in the order of
 * docs/AUDIT.md, "prev" last (the MAC is added after it); malloc'd. */
static char *format_body(p11_audit *a, const audit_entry *e)
{
    line_buf b = {0};

    put(&b, "{\"v\":1", 6);
    PUT_STR(&b, "stream", a->stream);
    PUT_INT(&b, "seq", e->seq);
    PUT_NAME(&b, "time");
    put_time(a, &b, &e->when);
    PUT_INT(&b, "pid", a->pid);
    PUT_STR(&b, "process", a->process);
    PUT_INT(&b, "uid", a->uid);
    PUT_STR(&b, "event", e->event);
    if (e->partition[0])
        PUT_STR(&b, "partition", e->partition);
    if (e->member[0])
        PUT_STR(&b, "member", e->member);
    if (e->key_uri[0])
        PUT_STR(&b, "key", e->key_uri);
    if (e->key_id[0])
        PUT_STR(&b, "key_id", e->key_id);
    if (e->has_mech)
        PUT_STR(&b, "mechanism", p11_mechanism_name(e->mech));
    if (e->has_rv)
        PUT_STR(&b, "result", p11_rv_name(e->rv));
    if (e->latency_us >= 0)
        PUT_INT(&b, "latency_us", e->latency_us);
    if (e->detail[0])
        PUT_STR(&b, "detail", e->detail);
    if (e->parent_stream[0]) {
        PUT_NAME(&b, "parent");
        put(&b, "{\"stream\":", 10);
        put_string(&b, e->parent_stream);
        put(&b, ",\"seq\":", 7);
        put_int(&b, (long long)e->parent_seq);
        put(&b, "}", 1);
    }
    if (strcmp(e->event, "records-lost") == 0)
        PUT_INT(&b, "lost", e->lost);
    if (strcmp(e->event, "stream-end") == 0)
        PUT_INT(&b, "records", e->count);
    PUT_STR(&b, "prev", a->prev);
    put(&b, "}", 1);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

static int out_reserve(p11_audit *a, size_t more)
{
    if (a->out_len + more <= a->out_cap)
        return 1;
    size_t cap = a->out_cap ? a->out_cap : 65536;
    while (cap < a->out_len + more)
        cap *= 2;
    char *n = realloc(a->out, cap);
    if (n == NULL)
        return 0;
    a->out = n;
    a->out_cap = cap;
    return 1;
}

/* Format, chain and authenticate one record onto the pending bytes. */
static int chain_entry(p11_audit *a, const audit_entry *e)
{
    char *body = format_body(a, e), *line = body;
    size_t len;
    int ok = 0;

    if (body == NULL)
        return 0;
    len = strlen(body);
    if (a->key) {
        char mac[P11_AUDIT_HEX_SIZE];
        line = p11_audit_mac_body(a->mac, body, len, mac)
                   ? p11_audit_append_mac(body, len, mac, &len)
                   : NULL;
    }
    if (line && out_reserve(a, len + 1) && p11_audit_mac_hash_line(a->mac, line, len, a->prev)) {
        memcpy(a->out + a->out_len, line, len);
        a->out[a->out_len + len] = '\n';
        a->out_len += len + 1;
        ok = 1;
    }
    if (line != body)
        free(line);
    free(body);
    return ok;
}

/* Append the pending bytes; what could not be written stays pending. */
static int write_pending(p11_audit *a)
{
    size_t done = 0;

    if (a->fd < 0) {
        a->fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (a->fd < 0) {
            a->failing_errno = errno;
            return 0;
        }
    }
    while (done < a->out_len) {
        ssize_t n = write(a->fd, a->out + done, a->out_len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            a->failing_errno = n < 0 ? errno : EIO;
            break;
        }
        done += (size_t)n;
    }
    memmove(a->out, a->out + done, a->out_len - done);
    a->out_len -= done;
    return a->out_len == 0;
}

/* ---- the queue ---- */

static audit_entry *slot_at(p11_audit *a, size_t i) { return &a->slots[(a->head + i) % AUDIT_QUEUE_SLOTS]; }

/* Take a slot at the tail and give it the next seq (lock held, space known). */
static audit_entry *push_locked(p11_audit *a, const char *event)
{
    audit_entry *e = slot_at(a, a->count);

    memset(e, 0, offsetof(audit_entry, partition));
    e->partition[0] = e->member[0] = e->key_uri[0] = e->key_id[0] = '\0';
    e->detail[0] = e->parent_stream[0] = '\0';
    e->latency_us = -1;
    e->event = event;
    e->seq = ++a->last_seq;
    clock_gettime(CLOCK_REALTIME, &e->when);
    a->count++;
    return e;
}

/* Say how many records fail-open dropped, once there is room again. */
static void push_lost_locked(p11_audit *a)
{
    if (a->lost && !atomic_load(&a->failing) && a->count + 2 <= AUDIT_QUEUE_SLOTS) {
        audit_entry *e = push_locked(a, "records-lost");
        e->lost = a->lost;
        snprintf(e->detail, sizeof(e->detail),
                 "the audit log could not be written (%s); primus-audit-policy is fail-open, so "
                 "operations went on without these records",
                 strerror(a->failing_errno ? a->failing_errno : ENOSPC));
        a->lost = 0;
    }
}

static void *writer_main(void *arg);
static p11_status p11_audit_failure(p11_audit *a);

static void start_writer_locked(p11_audit *a)
{
    if (a->writer_running)
        return;
    if (p11_thread_start(&a->writer, NULL, writer_main, a) == 0)
        a->writer_running = 1;
}

/* Format and write the first n queued records (writer side, no lock held:
 * producers only touch slots beyond head + count). */
static void write_batch(p11_audit *a, size_t n)
{
    pthread_mutex_lock(&a->format_lock);
    for (size_t i = 0; i < n; i++)
        chain_entry(a, slot_at(a, i));
    pthread_mutex_unlock(&a->format_lock);
}

static void *writer_main(void *arg)
{
    p11_audit *a = arg;

    pthread_mutex_lock(&a->lock);
    for (;;) {
        if (atomic_load(&a->failing)) {
            struct timespec until;
            int ok;
            pthread_mutex_unlock(&a->lock);
            ok = write_pending(a);
            pthread_mutex_lock(&a->lock);
            if (ok) {
                atomic_store(&a->failing, 0);
                push_lost_locked(a);
            } else if (a->stopping) {
                break; /* one last try was made: what is left is lost */
            } else {
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_nsec += AUDIT_RETRY_MS * 1000000L;
                until.tv_sec += until.tv_nsec / 1000000000L;
                until.tv_nsec %= 1000000000L;
                pthread_cond_timedwait(&a->wake_writer, &a->lock, &until);
                continue;
            }
        }
        if (a->count == 0) {
            pthread_cond_broadcast(&a->written);
            if (a->stopping)
                break;
        }
        if (a->count < AUDIT_WAKE_AT && !a->stopping && !a->flush_wanted) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += AUDIT_FLUSH_MS * 1000000L;
            until.tv_sec += until.tv_nsec / 1000000000L;
            until.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&a->wake_writer, &a->lock, &until);
            if (a->count == 0)
                continue;
        }
        size_t n = a->count;
        unsigned long long upto = slot_at(a, n - 1)->seq;
        a->flush_wanted = 0;
        pthread_mutex_unlock(&a->lock);
        write_batch(a, n);
        int ok = write_pending(a);
        pthread_mutex_lock(&a->lock);
        a->head = (a->head + n) % AUDIT_QUEUE_SLOTS;
        a->count -= n;
        pthread_cond_broadcast(&a->space);
        if (ok) {
            a->written_seq = upto;
            push_lost_locked(a);
            pthread_cond_broadcast(&a->written);
        } else {
            atomic_store(&a->failing, 1);
        }
    }
    pthread_cond_broadcast(&a->written);
    pthread_mutex_unlock(&a->lock);
    OPENSSL_thread_stop(); /* libcrypto's per-thread state of this thread */
    return NULL;
}

/* A record of the calling process's stream, or NULL (then nothing is
 * recorded: the log is closing, or fail-open dropped it).  Returns with
 * a->lock held when not NULL; finish with commit_locked. */
static audit_entry *begin_record(p11_audit *a, const char *event)
{
    pthread_mutex_lock(&a->lock);
    if (a->closed || a->gen != p11_fork_generation()) {
        pthread_mutex_unlock(&a->lock);
        return NULL;
    }
    push_lost_locked(a);
    while (a->count == AUDIT_QUEUE_SLOTS) {
        if (a->fail_open || atomic_load(&a->failing)) {
            a->lost++;
            pthread_mutex_unlock(&a->lock);
            return NULL;
        }
        start_writer_locked(a);
        pthread_cond_wait(&a->space, &a->lock); /* fail-closed: back-pressure, never loss */
    }
    return push_locked(a, event);
}

static void commit_locked(p11_audit *a, audit_entry *e)
{
    thread_last_seq = e->seq;
    start_writer_locked(a);
    if (a->count >= AUDIT_WAKE_AT)
        pthread_cond_signal(&a->wake_writer);
    pthread_mutex_unlock(&a->lock);
}

static void start_stream_locked(p11_audit *a, const char *parent, unsigned long long parent_seq)
{
    audit_entry *e;

    new_stream_id(a->stream);
    read_process_identity(a);
    memset(a->prev, '0', 64);
    a->prev[64] = '\0';
    a->last_seq = a->written_seq = 0;
    a->gen = p11_fork_generation();
    e = push_locked(a, "stream-start");
    snprintf(e->detail, sizeof(e->detail), "primus-provider %s, policy %s, %s", PRIMUS_VERSION_STR,
             a->fail_open ? "fail-open" : "fail-closed",
             a->key ? "HMAC-SHA-256 authenticated" : "hash chain only (no audit key)");
    if (parent) {
        snprintf(e->parent_stream, sizeof(e->parent_stream), "%s", parent);
        e->parent_seq = parent_seq;
    }
}

/* ---- life cycle ---- */

static void close_log(p11_audit *a, int join);

static void close_every_log_at_exit(void)
{
    pthread_mutex_lock(&open_logs_lock);
    for (p11_audit *a = open_logs; a; a = a->next_open)
        close_log(a, 1);
    pthread_mutex_unlock(&open_logs_lock);
}

/* fork() waits until no writer is inside a record (see format_lock). */
static void before_fork(void)
{
    pthread_mutex_lock(&open_logs_lock);
    for (p11_audit *a = open_logs; a; a = a->next_open)
        pthread_mutex_lock(&a->format_lock);
}

static void after_fork_either_side(void)
{
    for (p11_audit *a = open_logs; a; a = a->next_open)
        pthread_mutex_unlock(&a->format_lock);
    pthread_mutex_unlock(&open_logs_lock);
}

static void register_exit_handler(void)
{
    /* libcrypto registers its own exit handler when it initializes; ours,
     * registered after it, runs before it, while SHA-256 still works.
     * (Options 0 would return early without initializing anything.) */
    OPENSSL_init_crypto(OPENSSL_INIT_ADD_ALL_DIGESTS, NULL);
    atexit(close_every_log_at_exit);
    pthread_atfork(before_fork, after_fork_either_side, after_fork_either_side);
}

p11_status p11_audit_open(p11_core *core)
{
    p11_audit *a;
    p11_status st;

    if (core->audit_log == NULL || core->audit != NULL)
        return P11_OK;
    a = calloc(1, sizeof(*a));
    if (a == NULL || (a->slots = calloc(AUDIT_QUEUE_SLOTS, sizeof(audit_entry))) == NULL ||
        (a->path = p11_strdup(core->audit_log)) == NULL) {
        if (a)
            free(a->slots);
        free(a);
        return p11_error_set(P11_ERR_MEMORY, CKR_HOST_MEMORY, "out of memory");
    }
    if (core->audit_key && (st = p11_audit_key_load(core->audit_key, &a->key, &a->key_len)) != P11_OK) {
        free(a->path);
        free(a->slots);
        free(a);
        return st;
    }
    if ((a->mac = p11_audit_mac_new(a->key, a->key_len)) == NULL) {
        p11_audit_key_free(a->key, a->key_len);
        free(a->path);
        free(a->slots);
        free(a);
        return p11_error_set(P11_ERR_CONFIG, CKR_OK, "the audit log needs SHA-256 and HMAC from libcrypto and cannot fetch them; load OpenSSL's default provider");
    }
    a->fail_open = core->audit_fail_open;
    pthread_mutex_init(&a->format_lock, NULL);
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->wake_writer, NULL);
    pthread_cond_init(&a->space, NULL);
    pthread_cond_init(&a->written, NULL);
    a->fd = -1;
    pthread_once(&exit_handler_once, register_exit_handler);
    pthread_mutex_lock(&a->lock);
    start_stream_locked(a, NULL, 0);
    pthread_mutex_unlock(&a->lock);
    /* Write stream-start now, before any operation and before the writer
     * exists, so that a log that cannot be written (missing directory, full
     * disk) is known at once: fail-closed refuses the first operation
     * rather than learning about it a batch later. */
    write_batch(a, a->count);
    if (write_pending(a)) {
        a->written_seq = a->last_seq;
        a->head = a->count = 0;
    } else {
        a->head = a->count = 0; /* chained into the pending bytes already */
        atomic_store(&a->failing, 1);
    }
    pthread_mutex_lock(&open_logs_lock);
    a->next_open = open_logs;
    open_logs = a;
    pthread_mutex_unlock(&open_logs_lock);
    core->audit = a;
    return P11_OK;
}

/* Write stream-end and everything queued, then stop the writer.  Only the
 * process that owns the stream does it: a forked child that never recorded
 * anything leaves its parent's stream alone. */
static void close_log(p11_audit *a, int join)
{
    audit_entry *e;
    int running;

    pthread_mutex_lock(&a->lock);
    if (a->closed || a->gen != p11_fork_generation()) {
        pthread_mutex_unlock(&a->lock);
        return;
    }
    if (a->count == AUDIT_QUEUE_SLOTS) {
        /* no room for stream-end: let the writer drain first */
        start_writer_locked(a);
        pthread_cond_signal(&a->wake_writer);
        while (a->count == AUDIT_QUEUE_SLOTS && !atomic_load(&a->failing))
            pthread_cond_wait(&a->space, &a->lock);
    }
    if (a->count < AUDIT_QUEUE_SLOTS) {
        e = push_locked(a, "stream-end");
        e->count = e->seq;
    }
    a->closed = 1;
    a->stopping = 1;
    start_writer_locked(a);
    running = a->writer_running;
    pthread_cond_signal(&a->wake_writer);
    pthread_mutex_unlock(&a->lock);
    if (running && join) {
        pthread_join(a->writer, NULL);
        a->writer_running = 0;
    }
}

void p11_audit_free(p11_core *core)
{
    p11_audit *a = core->audit;
    p11_audit **pp;

    if (a == NULL)
        return;
    close_log(a, 1);
    pthread_mutex_lock(&open_logs_lock);
    for (pp = &open_logs; *pp; pp = &(*pp)->next_open)
        if (*pp == a) {
            *pp = a->next_open;
            break;
        }
    pthread_mutex_unlock(&open_logs_lock);
    if (a->writer_running) /* a child's inherited copy: the writer is the parent's */
        a->writer_running = 0;
    if (a->fd >= 0)
        close(a->fd);
    p11_audit_mac_free(a->mac);
    p11_audit_key_free(a->key, a->key_len);
    pthread_mutex_destroy(&a->lock);
    pthread_mutex_destroy(&a->format_lock);
    pthread_cond_destroy(&a->wake_writer);
    pthread_cond_destroy(&a->space);
    pthread_cond_destroy(&a->written);
    free(a->out);
    free(a->slots);
    free(a->path);
    free(a);
    core->audit = NULL;
}

void p11_audit_after_fork(p11_core *core)
{
    p11_audit *a = core->audit;
    char parent[33];
    unsigned long long parent_seq;

    if (a == NULL)
        return;
    /* Only this thread exists: the locks may have been held by a thread of
     * the parent, and the queued records are the parent's to write. */
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->wake_writer, NULL);
    pthread_cond_init(&a->space, NULL);
    pthread_cond_init(&a->written, NULL);
    memcpy(parent, a->stream, sizeof(parent));
    parent_seq = a->last_seq;
    a->head = a->count = 0;
    a->out_len = 0;
    a->lost = 0;
    a->writer_running = a->stopping = a->closed = a->flush_wanted = 0;
    atomic_store(&a->failing, 0);
    pthread_mutex_lock(&a->lock);
    start_stream_locked(a, parent, parent_seq);
    pthread_mutex_unlock(&a->lock);
}

p11_status p11_audit_flush(p11_core *core)
{
    p11_audit *a = core->audit;
    p11_status st = P11_OK;

    if (a == NULL)
        return P11_OK;
    pthread_mutex_lock(&a->lock);
    if (a->gen == p11_fork_generation() && !a->closed) {
        unsigned long long want = a->last_seq;
        start_writer_locked(a);
        a->flush_wanted = 1;
        pthread_cond_signal(&a->wake_writer);
        while (a->written_seq < want && !atomic_load(&a->failing))
            pthread_cond_wait(&a->written, &a->lock);
        if (a->written_seq < want)
            st = p11_audit_failure(a);
    }
    pthread_mutex_unlock(&a->lock);
    return st;
}

const char *p11_audit_stream_id(p11_core *core)
{
    return core && core->audit ? core->audit->stream : "";
}

/* ---- what the rooms of p11core call ---- */

static p11_status p11_audit_failure(p11_audit *a)
{
    return p11_error_set(P11_ERR_AUDIT, CKR_FUNCTION_FAILED,
                         "the audit log %s cannot be written (%s), and primus-audit-policy is "
                         "fail-closed, so sensitive operations are refused; make the log "
                         "writable (disk space, permissions), or set primus-audit-policy = "
                         "fail-open to go on while counting the lost records",
                         a->path, strerror(a->failing_errno ? a->failing_errno : EIO));
}

p11_status p11_audit_admit(p11_core *core)
{
    p11_audit *a = core->audit;

    if (a == NULL || a->fail_open || !atomic_load_explicit(&a->failing, memory_order_relaxed))
        return P11_OK;
    return p11_audit_failure(a);
}

static void describe_member(const p11_member *m, char *out, size_t size)
{
    if (m->name)
        snprintf(out, size, "%s", m->name);
    else
        snprintf(out, size, "slot %lu serial %s", (unsigned long)m->slot, m->serial);
}

static void hex_into(const p11_bytes *b, char *out, size_t size)
{
    static const char digits[] = "0123456789abcdef";
    size_t n = b->len < (size - 1) / 2 ? b->len : (size - 1) / 2;

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b->data[i] >> 4];
        out[2 * i + 1] = digits[b->data[i] & 15];
    }
    out[2 * n] = '\0';
}

void p11_audit_record(p11_core *core, const p11_audit_fields *f)
{
    p11_audit *a = core->audit;
    audit_entry *e;

    if (a == NULL || (e = begin_record(a, f->event)) == NULL)
        return;
    if (f->member) {
        describe_member(f->member, e->member, sizeof(e->member));
        snprintf(e->partition, sizeof(e->partition), "%s", f->member->part->name);
    }
    if (f->partition)
        snprintf(e->partition, sizeof(e->partition), "%s", f->partition);
    if (f->key) {
        if (f->key->uri)
            snprintf(e->key_uri, sizeof(e->key_uri), "%s", f->key->uri);
        hex_into(&f->key->id, e->key_id, sizeof(e->key_id));
        if (!e->partition[0] && f->key->partition)
            snprintf(e->partition, sizeof(e->partition), "%s", f->key->partition);
    } else if (f->uri) {
        snprintf(e->key_uri, sizeof(e->key_uri), "%s", f->uri);
    }
    if (f->has_mech) {
        e->mech = f->mech;
        e->has_mech = 1;
    }
    if (f->has_rv) {
        e->rv = f->rv;
        e->has_rv = 1;
    }
    if (f->started_ns)
        e->latency_us = (long long)((p11_now_ns() - f->started_ns) / 1000);
    if (f->detail)
        snprintf(e->detail, sizeof(e->detail), "%s", f->detail);
    commit_locked(a, e);
}
