/* The gate: a member's PKCS#11 calls under a deadline.
 *
 * A stopped HSM (or a silent network) blocks a PKCS#11 call with no
 * timeout at all, and the call may still take effect later.  Calls to a
 * gated member therefore run on the member's worker threads while the
 * caller waits until the member's deadline.  A caller that gives up leaves
 * the call to its worker, which owns a private copy of the operation's data
 * (p11_op_class.clone) and releases it when the call finally returns, so a
 * late answer can never write into memory the caller has moved on from.
 *
 * Workers block every signal (p11_thread_start): SIGPIPE, since p11-kit's
 * client writes to a dead socket without MSG_NOSIGNAL and a member's death
 * must never kill its host, and the application's own signals. */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define P11_GATE_MAX_THREADS 64

typedef struct p11_job {
    struct p11_job *next;
    pthread_mutex_t lock;
    pthread_cond_t done_cond;
    int done, abandoned;
    p11_member *m;
    int login;
    const p11_op_class *cls;
    void *copy;
    CK_RV rv;
    int fault;
} p11_job;

/* Worker threads and the prober run code of the library that contains
 * this core (primus.so inside OpenSSL).  OpenSSL unloads providers at exit
 * while such threads still wait, and a thread waking in unmapped code
 * crashes the process; so before the first thread starts, the library is
 * made undeletable (a no-op when the core is linked into a program). */
static pthread_once_t pin_once = PTHREAD_ONCE_INIT;

static void pin_code_in_memory_once(void)
{
    Dl_info self;

    if (dladdr((void *)&p11_gate_init, &self) && self.dli_fname)
        dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

void p11_pin_code_in_memory(void)
{
    pthread_once(&pin_once, pin_code_in_memory_once);
}

void p11_gate_init(p11_gate *g)
{
    memset(g, 0, sizeof(*g));
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->wake, NULL);
}

static void job_free(p11_job *job)
{
    pthread_mutex_destroy(&job->lock);
    pthread_cond_destroy(&job->done_cond);
    free(job);
}

/* A late hook touches the member's partition and core, which a core being
 * freed takes away once its gates are shut: so hooks run only while the gate
 * is open, and shutting it waits for those running. */
static int gate_enter_late(p11_gate *g)
{
    int open;

    pthread_mutex_lock(&g->lock);
    open = !g->closing;
    if (open)
        g->late_running++;
    pthread_mutex_unlock(&g->lock);
    return open;
}

static void gate_leave_late(p11_gate *g)
{
    pthread_mutex_lock(&g->lock);
    g->late_running--;
    pthread_cond_broadcast(&g->wake);
    pthread_mutex_unlock(&g->lock);
}

static void *worker_main(void *arg)
{
    p11_member *m = arg;
    p11_gate *g = &m->gate;

    for (;;) {
        p11_job *job;
        CK_RV rv;
        int abandoned, fault = 0;

        pthread_mutex_lock(&g->lock);
        while (g->head == NULL && !g->closing)
            pthread_cond_wait(&g->wake, &g->lock);
        if (g->head == NULL) { /* closing, nothing left to do */
            g->threads--;
            g->idle--;
            pthread_cond_broadcast(&g->wake);
            pthread_mutex_unlock(&g->lock);
            return NULL;
        }
        job = g->head;
        g->head = job->next;
        if (g->head == NULL)
            g->tail = NULL;
        pthread_mutex_unlock(&g->lock); /* its dispatcher reserved this worker */

        rv = p11_member_call(job->m, job->login, job->cls, job->copy, &fault);

        pthread_mutex_lock(&job->lock);
        job->rv = rv;
        job->fault = fault;
        job->done = 1;
        abandoned = job->abandoned;
        pthread_cond_signal(&job->done_cond);
        pthread_mutex_unlock(&job->lock);
        if (abandoned) {
            /* The caller left at its deadline: the late result is dropped,
             * unless its class still has a use for it. */
            if (job->cls->late && gate_enter_late(g)) {
                job->cls->late(job->m, rv);
                gate_leave_late(g);
            }
            job->cls->release(job->copy);
            job_free(job);
            pthread_mutex_lock(&g->lock);
            g->stuck--;
            pthread_mutex_unlock(&g->lock);
        }
        pthread_mutex_lock(&g->lock);
        g->idle++;
        pthread_mutex_unlock(&g->lock);
    }
    return NULL;
}

static int gate_dispatch(p11_member *m, p11_job *job)
{
    p11_gate *g = &m->gate;
    int ok = 1;

    pthread_mutex_lock(&g->lock);
    if (g->idle == 0) {
        pthread_t t;
        pthread_attr_t attr;
        if (g->threads >= P11_GATE_MAX_THREADS) {
            ok = 0;
        } else {
            p11_pin_code_in_memory();
            pthread_attr_init(&attr);
            pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
            pthread_attr_setstacksize(&attr, 256 * 1024);
            if (p11_thread_start(&t, &attr, worker_main, m) == 0) {
                g->threads++;
                g->idle++;
            } else {
                ok = 0;
            }
            pthread_attr_destroy(&attr);
        }
    }
    if (ok) {
        /* Reserve an idle worker for this job, so that no job ever waits
         * behind another one that may hang on the same member. */
        g->idle--;
        job->next = NULL;
        if (g->tail)
            g->tail->next = job;
        else
            g->head = job;
        g->tail = job;
        pthread_cond_signal(&g->wake);
    }
    pthread_mutex_unlock(&g->lock);
    return ok;
}

CK_RV p11_gate_run(p11_member *m, int login, const p11_op_class *cls, void *arg, int *fault,
                   int *abandoned)
{
    struct timespec deadline;
    p11_job *job;
    CK_RV rv;
    int err = 0;

    *abandoned = 0;
    job = calloc(1, sizeof(*job));
    if (job == NULL)
        return CKR_HOST_MEMORY;
    job->copy = cls->clone(arg);
    if (job->copy == NULL) {
        free(job);
        return CKR_HOST_MEMORY;
    }
    pthread_mutex_init(&job->lock, NULL);
    {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&job->done_cond, &ca);
        pthread_condattr_destroy(&ca);
    }
    job->m = m;
    job->login = login;
    job->cls = cls;
    if (!gate_dispatch(m, job)) {
        cls->release(job->copy);
        job_free(job);
        return CKR_HOST_MEMORY;
    }
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += m->timeout_ms / 1000;
    deadline.tv_nsec += (long)(m->timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&job->lock);
    while (!job->done && err != ETIMEDOUT)
        err = pthread_cond_timedwait(&job->done_cond, &job->lock, &deadline);
    if (!job->done) {
        job->abandoned = 1;
        pthread_mutex_unlock(&job->lock);
        pthread_mutex_lock(&m->gate.lock);
        m->gate.stuck++;
        pthread_mutex_unlock(&m->gate.lock);
        *abandoned = 1;
        *fault = 1;
        return P11_CKR_TIMEOUT;
    }
    pthread_mutex_unlock(&job->lock);
    rv = job->rv;
    *fault = job->fault;
    cls->merge(arg, job->copy);
    cls->release(job->copy);
    job_free(job);
    return rv;
}

int p11_gate_shutdown(p11_gate *g)
{
    int clean;

    if (p11_process_exiting())
        return 0; /* never wait at exit; the process is going anyway */
    pthread_mutex_lock(&g->lock);
    g->closing = 1;
    pthread_cond_broadcast(&g->wake);
    while (g->late_running > 0)
        pthread_cond_wait(&g->wake, &g->lock);
    /* Idle workers leave at once; a stuck one may never come back, and then
     * the member it points to must outlive it. */
    while (g->threads > 0 && g->stuck == 0 && g->threads == g->idle)
        pthread_cond_wait(&g->wake, &g->lock);
    clean = g->threads == 0;
    pthread_mutex_unlock(&g->lock);
    if (clean) {
        pthread_mutex_destroy(&g->lock);
        pthread_cond_destroy(&g->wake);
    }
    return clean;
}

unsigned p11_gate_stuck(p11_member *m)
{
    unsigned n;

    pthread_mutex_lock(&m->gate.lock);
    n = m->gate.stuck;
    pthread_mutex_unlock(&m->gate.lock);
    return n;
}
