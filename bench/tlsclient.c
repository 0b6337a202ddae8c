/*
 * tlsclient: full TLS 1.3 handshakes per second against a server, for
 * tlsbench.sh.  Every connection is new (no session resumption, no
 * tickets asked for).  By default it closes right after the handshake
 * (the server's signature and key exchange are done before the client can
 * finish, so throughput is bounded by the server's handshake work);
 * --request sends one HTTP/1.0 request and reads the answer until the server
 * closes.  Certificates are not
 * verified (the client's cost should be the same whatever key the server
 * has); tlsbench.sh checks the servers once with `openssl s_client`.
 *
 *   tlsclient --port N [--host 127.0.0.1] [--seconds 2] [--threads 2]
 *             [--request] [--max-errors 100]
 *
 * Prints one line: "handshakes N seconds S rate R errors E".  Exit status 1
 * when nothing succeeded or too many connections failed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static struct {
    const char *host;
    int port;
    double seconds;
    int threads;
    int request;
    long max_errors;
} opt = {"127.0.0.1", 0, 2.0, 2, 0, 100};

static SSL_CTX *ctx;
static atomic_int stop;
static atomic_long errors;
static char first_error[512];
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t start;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void note_error(const char *what)
{
    unsigned long code = ERR_peek_last_error();
    char buf[256] = "";

    if (atomic_fetch_add(&errors, 1) == 0) {
        if (code)
            ERR_error_string_n(code, buf, sizeof(buf));
        pthread_mutex_lock(&err_lock);
        snprintf(first_error, sizeof(first_error), "%s%s%s%s%s", what, errno ? ": " : "",
                 errno ? strerror(errno) : "", code ? ": " : "", buf);
        pthread_mutex_unlock(&err_lock);
    }
    ERR_clear_error();
    if (atomic_load(&errors) > opt.max_errors)
        atomic_store(&stop, 1);
}

/* One connection: 1 when the handshake (and request) succeeded. */
static int one_connection(const struct sockaddr_in *sa)
{
    static const char req[] = "GET / HTTP/1.0\r\n\r\n";
    char buf[4096];
    int fd, ok = 0, one = 1, n;
    SSL *ssl = NULL;

    errno = 0;
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        note_error("socket");
        return 0;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (!opt.request) {
        /* we close first: reset instead of leaving TIME_WAIT sockets behind,
         * which would run out of local ports at thousands of connections/s */
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0) {
        note_error("connect");
        goto out;
    }
    errno = 0;
    ssl = SSL_new(ctx);
    if (ssl == NULL || !SSL_set_fd(ssl, fd)) {
        note_error("SSL_new");
        goto out;
    }
    if (SSL_connect(ssl) != 1) {
        note_error("SSL_connect");
        goto out;
    }
    if (opt.request) {
        if (SSL_write(ssl, req, (int)sizeof(req) - 1) != (int)sizeof(req) - 1) {
            note_error("SSL_write");
            goto out;
        }
        while ((n = SSL_read(ssl, buf, sizeof(buf))) > 0)
            ;
        /* the server closing (close_notify or EOF) ends the answer */
        ERR_clear_error();
    }
    ok = 1;
out:
    if (ssl) {
        SSL_set_quiet_shutdown(ssl, 1);
        SSL_free(ssl);
    }
    close(fd);
    return ok;
}

typedef struct thread {
    pthread_t t;
    long done;
    double end;
} thread;

static struct sockaddr_in addr;

static void *thread_main(void *arg)
{
    thread *th = arg;

    pthread_barrier_wait(&start);
    while (!atomic_load_explicit(&stop, memory_order_relaxed))
        if (one_connection(&addr))
            th->done++;
    th->end = now();
    return NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: tlsclient --port N [--host IP] [--seconds S] [--threads N] "
                    "[--request] [--max-errors N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    thread th[64];
    struct timespec ts;
    double t0, end = 0;
    long total = 0;
    int i;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--request") == 0) { opt.request = 1; continue; }
        if (v == NULL)
            usage();
        i++;
        if (strcmp(a, "--host") == 0) opt.host = v;
        else if (strcmp(a, "--port") == 0) opt.port = atoi(v);
        else if (strcmp(a, "--seconds") == 0) opt.seconds = atof(v);
        else if (strcmp(a, "--threads") == 0) opt.threads = atoi(v);
        else if (strcmp(a, "--max-errors") == 0) opt.max_errors = atol(v);
        else usage();
    }
    if (opt.port <= 0 || opt.seconds <= 0 || opt.threads < 1 || opt.threads > 64)
        usage();
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)opt.port);
    if (inet_pton(AF_INET, opt.host, &addr.sin_addr) != 1)
        usage();

    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return 1;
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);

    pthread_barrier_init(&start, NULL, (unsigned)opt.threads + 1);
    memset(th, 0, sizeof(th));
    for (i = 0; i < opt.threads; i++)
        pthread_create(&th[i].t, NULL, thread_main, &th[i]);
    pthread_barrier_wait(&start);
    t0 = now();
    ts.tv_sec = (time_t)opt.seconds;
    ts.tv_nsec = (long)((opt.seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    atomic_store(&stop, 1);
    for (i = 0; i < opt.threads; i++) {
        pthread_join(th[i].t, NULL);
        total += th[i].done;
        if (th[i].end > end)
            end = th[i].end;
    }
    printf("handshakes %ld seconds %.3f rate %.1f errors %ld\n", total, end - t0,
           total / (end - t0), atomic_load(&errors));
    if (atomic_load(&errors))
        fprintf(stderr, "tlsclient: first error: %s\n", first_error);
    SSL_CTX_free(ctx);
    return total == 0 || atomic_load(&errors) > opt.max_errors ? 1 : 0;
}
