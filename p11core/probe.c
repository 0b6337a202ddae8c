/* Cluster members coming and going: starting a declared member, and the
 * background prober that takes a member that went down back into rotation
 * once it answers again, with back-off, without restarting the
 * application.  Every probe runs on the member's gate under its deadline,
 * so a hung member costs the prober no more than it costs an operation. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "rv.h"

#define P11_PROBE_FIRST_MS 100
#define P11_PROBE_MAX_MS 2000
#define P11_PROBE_TICK_MS 50
#define P11_REVIVE_INTERVAL_MS 100
#define P11_REVIVE_POLL_MS 2

typedef struct probe_arg {
    int reinitialize;
} probe_arg;

/* Find the member's token among the module's slots (slot IDs may change
 * when a module is re-initialized, so it is found again each time). */
static CK_RV locate_token(p11_member *m)
{
    CK_FUNCTION_LIST *fl = m->mod->fl;
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64, i;
    CK_RV rv;

    rv = fl->C_GetSlotList(CK_TRUE, slots, &n);
    if (rv != CKR_OK)
        return rv;
    for (i = 0; i < n; i++) {
        CK_SLOT_INFO si;
        CK_TOKEN_INFO ti;
        char label[P11_LABEL_LEN + 1], serial[17];

        if (m->want_slot >= 0 && (CK_SLOT_ID)m->want_slot != slots[i])
            continue;
        if (fl->C_GetSlotInfo(slots[i], &si) != CKR_OK || fl->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
            continue;
        p11_field_copy(label, sizeof(label), ti.label, sizeof(ti.label));
        p11_field_copy(serial, sizeof(serial), ti.serialNumber, sizeof(ti.serialNumber));
        if (strcmp(label, m->want_token) != 0 ||
            (m->want_serial && strcmp(serial, m->want_serial) != 0))
            continue;
        p11_member_fill(m, slots[i], &si, &ti);
        return CKR_OK;
    }
    return CKR_TOKEN_NOT_PRESENT;
}

static CK_RV probe_run(p11_member *m, CK_SESSION_HANDLE unused, void *arg)
{
    probe_arg *p = arg;
    CK_SESSION_HANDLE s;
    CK_SESSION_INFO info;
    CK_RV rv;

    (void)unused;
    if (p->reinitialize ? p11_module_reinitialize(m->mod) != P11_OK
                        : p11_module_initialize(m->mod) != P11_OK)
        return p11_error_rv() != CKR_OK ? p11_error_rv() : CKR_DEVICE_ERROR;
    rv = locate_token(m);
    if (rv != CKR_OK)
        return rv;
    rv = m->mod->fl->C_OpenSession(m->slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
    if (rv != CKR_OK)
        return rv;
    rv = m->mod->fl->C_GetSessionInfo(s, &info);
    m->mod->fl->C_CloseSession(s);
    if (rv == CKR_OK) {
        pthread_mutex_lock(&m->lock);
        p11_member_load_mechanisms(m);
        pthread_mutex_unlock(&m->lock);
    }
    return rv;
}

static void *probe_clone(const void *arg)
{
    probe_arg *copy = malloc(sizeof(*copy));
    if (copy)
        *copy = *(const probe_arg *)arg;
    return copy;
}

static void probe_merge(void *arg, const void *copy) { (void)arg; (void)copy; }

/* The member answered: it is back with fresh sessions, login and handles. */
static void probe_succeeded(p11_member *m)
{
    atomic_fetch_add(&m->generation, 1);
    p11_session_pool_reset(m, 0);
    m->probe_backoff_ms = P11_PROBE_FIRST_MS;
    p11_member_mark_up(m);
}

/*
 * A probe that outlived the member's deadline and then succeeded.  Its
 * module is initialized and its token found, so the member is back.
 * Dropping this answer would keep out for good a member whose reconnect
 * (C_Initialize of a networked HSM's library) always takes longer than the
 * deadline of one operation: every probe would be abandoned, however
 * healthy the member.  No other probe runs meanwhile: a member with a call
 * still out is not probed.
 */
static void probe_late(p11_member *m, CK_RV rv)
{
    if (rv == CKR_OK && atomic_load(&m->state) != P11_MEMBER_UP)
        probe_succeeded(m);
}

static const p11_op_class probe_class = {.run = probe_run, .clone = probe_clone, .merge = probe_merge, .release = free, .late = probe_late, .no_session = 1};

static unsigned long long ms_from_now(unsigned ms) { return p11_now_ns() + (unsigned long long)ms * 1000000ull; }

/* One probe; on success the member is back with fresh sessions and handles. */
static int probe_member(p11_member *m, int reinitialize)
{
    probe_arg arg = {reinitialize};
    int fault = 0, abandoned = 0;
    CK_RV rv;

    rv = p11_gate_run(m, 0, &probe_class, &arg, &fault, &abandoned);
    if (rv == CKR_OK) {
        probe_succeeded(m);
        return 1;
    }
    atomic_store(&m->last_rv, rv);
    m->probe_backoff_ms = m->probe_backoff_ms ? m->probe_backoff_ms * 2 : P11_PROBE_FIRST_MS;
    if (m->probe_backoff_ms > P11_PROBE_MAX_MS)
        m->probe_backoff_ms = P11_PROBE_MAX_MS;
    m->next_probe_ns = ms_from_now(m->probe_backoff_ms);
    return 0;
}

/* probe_member, unless a probe of m is already running (returns -1 then). */
static int probe_member_alone(p11_member *m, int reinitialize)
{
    int busy = 0, up;

    if (!atomic_compare_exchange_strong(&m->probing, &busy, 1))
        return -1;
    up = probe_member(m, reinitialize);
    atomic_store(&m->probing, 0);
    return up;
}

/*
 * Why an operation probes: the prober's back-off reaches 2 s, and an
 * operator restarting the nodes of a cluster one after the other does not
 * wait for our prober, only for the node.  Without this, the first node
 * back could still count as down when the last live one went away, and
 * operations would fail although a member was serving.  The interval keeps
 * a partition whose members are all really down failing fast: one probe per
 * member per interval, whatever the load; a member with a call still hung
 * (abandoned at its deadline) is not asked.
 */
int p11_member_try_revive(p11_member *m)
{
    unsigned long long now = p11_now_ns(), last = atomic_load(&m->last_revive_ns);
    unsigned long long give_up = now + (unsigned long long)m->timeout_ms * 1000000ull;
    struct timespec poll = {0, P11_REVIVE_POLL_MS * 1000000L};

    if (atomic_load(&m->state) == P11_MEMBER_UP)
        return 1;
    if (!m->gated || p11_gate_stuck(m) != 0)
        return 0;
    if ((last == 0 || now - last >= P11_REVIVE_INTERVAL_MS * 1000000ull) &&
        atomic_compare_exchange_strong(&m->last_revive_ns, &last, now)) {
        int up = probe_member_alone(m, 1);
        if (up >= 0)
            return up;
    }
    /* Someone else's probe is running (the prober's or another
     * operation's): its answer is ours. */
    while (atomic_load(&m->probing) && p11_now_ns() < give_up)
        nanosleep(&poll, NULL);
    return atomic_load(&m->state) == P11_MEMBER_UP;
}

static void *prober_main(void *arg)
{
    p11_core *core = arg;
    p11_member *due[64];
    size_t n, i, j;

    pthread_mutex_lock(&core->probe_lock);
    while (!core->probe_stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += P11_PROBE_TICK_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&core->probe_cond, &core->probe_lock, &until);
        if (core->probe_stop)
            break;
        pthread_mutex_unlock(&core->probe_lock);

        n = 0;
        pthread_mutex_lock(&core->lock);
        for (i = 0; i < core->n_parts; i++)
            for (j = 0; j < core->parts[i]->n_members && n < 64; j++) {
                p11_member *m = core->parts[i]->members[j];
                if (m->gated && atomic_load(&m->state) == P11_MEMBER_DOWN &&
                    p11_now_ns() >= m->next_probe_ns && p11_gate_stuck(m) == 0)
                    due[n++] = m;
            }
        pthread_mutex_unlock(&core->lock);
        for (i = 0; i < n && !core->probe_stop; i++)
            (void)probe_member_alone(due[i], 1); /* busy: an operation is probing it */

        pthread_mutex_lock(&core->probe_lock);
    }
    pthread_mutex_unlock(&core->probe_lock);
    return NULL;
}

void p11_prober_wake(p11_core *core)
{
    pthread_mutex_lock(&core->probe_lock);
    if (core->prober_gen != p11_fork_generation() + 1 && !core->probe_stop &&
        !p11_process_exiting()) {
        pthread_attr_t attr;
        p11_pin_code_in_memory();
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        if (p11_thread_start(&core->prober, &attr, prober_main, core) == 0)
            core->prober_gen = p11_fork_generation() + 1;
        pthread_attr_destroy(&attr);
    }
    pthread_cond_signal(&core->probe_cond);
    pthread_mutex_unlock(&core->probe_lock);
}

void p11_prober_stop(p11_core *core)
{
    int running;

    pthread_mutex_lock(&core->probe_lock);
    core->probe_stop = 1;
    running = core->prober_gen == p11_fork_generation() + 1;
    pthread_cond_signal(&core->probe_cond);
    pthread_mutex_unlock(&core->probe_lock);
    if (running && !p11_process_exiting())
        pthread_join(core->prober, NULL);
}

void p11_member_schedule_probe(p11_member *m)
{
    if (m->probe_backoff_ms == 0)
        m->probe_backoff_ms = P11_PROBE_FIRST_MS;
    m->next_probe_ns = ms_from_now(m->probe_backoff_ms);
    p11_prober_wake(m->part->core);
}

int p11_member_start(p11_member *m)
{
    if (probe_member_alone(m, 0) == 1)
        return 1;
    atomic_store(&m->state, P11_MEMBER_DOWN);
    atomic_store(&m->last_change, (long long)time(NULL));
    p11_member_schedule_probe(m);
    return 0;
}
