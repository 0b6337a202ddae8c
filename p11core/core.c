/* The core: start on first use, discovery of tokens into partitions, the
 * process generation (fork) and the exit guard. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "audit.h"
#include "topology.h"

/* ---- process generation: bumped in every forked child ---- */
static _Atomic unsigned long fork_generation;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
    atomic_fetch_add(&fork_generation, 1);
    p11_module_after_fork_child();
}
static void install_atfork(void) { pthread_atfork(NULL, NULL, on_fork_child); }

unsigned long p11_fork_generation(void) { return atomic_load_explicit(&fork_generation, memory_order_acquire); }

/* ---- exit guard ----
 * A module such as SoftHSM tears itself down with exit-time destructors
 * that it registers while it loads and initializes.  OpenSSL frees providers
 * from its own exit handler, registered earlier, so it runs later: by then
 * the module is gone.  We register a handler after each C_Initialize (so it
 * runs before the module's destructors), finalize there, and make no
 * PKCS#11 call afterwards.  Not a module that cluster members call on their
 * worker threads: exit does not stop those, and finalizing under a call
 * still running there (a probe) crashed p11-kit's client (assertion
 * "sock->refs > 0") or waited for a call to a dead HSM. */
static pthread_mutex_t guard_lock = PTHREAD_MUTEX_INITIALIZER;
static p11_module *guarded[16];
static size_t n_guarded;
static atomic_int process_exiting;
static atomic_int guard_no_deinit;

int p11_process_exiting(void) { return atomic_load(&process_exiting); }

static void exit_guard(void)
{
    size_t i;

    if (atomic_exchange(&process_exiting, 1))
        return;
    pthread_mutex_lock(&guard_lock);
    for (i = 0; i < n_guarded; i++) {
        p11_module *mod = guarded[i];
        if (!atomic_load(&guard_no_deinit) && mod->initialized && mod->owns_init &&
            mod->fork_gen == p11_fork_generation() && !atomic_load(&mod->worker_calls))
            mod->fl->C_Finalize(NULL);
        mod->initialized = 0;
    }
    n_guarded = 0;
    pthread_mutex_unlock(&guard_lock);
}

void p11_exit_guard_register(p11_module *mod)
{
    size_t i;

    pthread_mutex_lock(&guard_lock);
    for (i = 0; i < n_guarded && guarded[i] != mod; i++)
        ;
    if (i == n_guarded && n_guarded < sizeof(guarded) / sizeof(guarded[0]))
        guarded[n_guarded++] = mod;
    pthread_mutex_unlock(&guard_lock);
    atexit(exit_guard); /* one more registration: it must run before what the module just registered */
}

void p11_exit_guard_forget(p11_module *mod)
{
    size_t i;

    pthread_mutex_lock(&guard_lock);
    for (i = 0; i < n_guarded; i++)
        if (guarded[i] == mod) {
            guarded[i] = guarded[--n_guarded];
            break;
        }
    pthread_mutex_unlock(&guard_lock);
}

/* ---- discovery ---- */
static p11_member *new_member(p11_partition *part);
static p11_partition *partition_for_label(p11_core *core, const char *label)
{
    p11_partition *part, **grown;
    size_t i;

    for (i = 0; i < core->n_parts; i++)
        if (strcmp(core->parts[i]->name, label) == 0)
            return core->parts[i];
    grown = realloc(core->parts, (core->n_parts + 1) * sizeof(*grown));
    if (grown == NULL)
        return NULL;
    core->parts = grown;
    part = calloc(1, sizeof(*part));
    if (part == NULL || (part->name = p11_strdup(label)) == NULL) {
        free(part);
        return NULL;
    }
    pthread_mutex_init(&part->pin_lock, NULL);
    part->core = core;
    core->parts[core->n_parts++] = part;
    return part;
}

static p11_member *member_by_serial(p11_partition *part, p11_module *mod, const char *serial)
{
    size_t i;

    for (i = 0; i < part->n_members; i++)
        if (part->members[i]->mod == mod && strcmp(part->members[i]->serial, serial) == 0)
            return part->members[i];
    return NULL;
}

/* Rewrite a text field only when its value changed: a probe re-finds the
 * same token, and other threads read these fields (messages, status,
 * audit) without a lock; writing the same bytes again would race them. */
static void field_update(char *dst, size_t dst_size, const CK_UTF8CHAR *src, size_t src_len)
{
    char fresh[80];

    p11_field_copy(fresh, dst_size < sizeof(fresh) ? dst_size : sizeof(fresh), src, src_len);
    if (strcmp(fresh, dst) != 0)
        p11_field_copy(dst, dst_size, src, src_len);
}

void p11_member_fill(p11_member *m, CK_SLOT_ID slot, const CK_SLOT_INFO *si,
                     const CK_TOKEN_INFO *ti)
{
    if (m->slot != slot)
        m->slot = slot;
    field_update(m->serial, sizeof(m->serial), ti->serialNumber, sizeof(ti->serialNumber));
    field_update(m->label, sizeof(m->label), ti->label, sizeof(ti->label));
    field_update(m->model, sizeof(m->model), ti->model, sizeof(ti->model));
    field_update(m->manufacturer, sizeof(m->manufacturer), ti->manufacturerID,
                 sizeof(ti->manufacturerID));
    field_update(m->slot_description, sizeof(m->slot_description), si->slotDescription,
                 sizeof(si->slotDescription));
    field_update(m->slot_manufacturer, sizeof(m->slot_manufacturer), si->manufacturerID,
                 sizeof(si->manufacturerID));
    if (m->token_flags != ti->flags)
        m->token_flags = ti->flags;
}

/* Tokens of one module into partitions: a partition is the set of tokens
 * bearing one label.  Members are told apart by token serial, since slot
 * IDs may be renumbered when a module is re-initialized. */
static p11_status discover_module(p11_core *core, p11_module *mod)
{
    CK_SLOT_ID *slots = NULL;
    CK_ULONG n = 0, i;
    CK_RV rv;

    rv = mod->fl->C_GetSlotList(CK_TRUE, NULL, &n);
    if (rv == CKR_OK && n > 0) {
        slots = calloc(n, sizeof(*slots));
        if (slots == NULL)
            return p11_error_set(P11_ERR_MEMORY, CKR_HOST_MEMORY, "out of memory");
        rv = mod->fl->C_GetSlotList(CK_TRUE, slots, &n);
    }
    if (rv != CKR_OK) {
        free(slots);
        return p11_error_set_rv(P11_ERR_MODULE, rv, "C_GetSlotList of %s failed", mod->path);
    }
    for (i = 0; i < n; i++) {
        CK_SLOT_INFO si;
        CK_TOKEN_INFO ti;
        char label[P11_LABEL_LEN + 1], serial[17];
        p11_partition *part;
        p11_member *m;

        if (mod->fl->C_GetSlotInfo(slots[i], &si) != CKR_OK ||
            mod->fl->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
            continue;
        if (!(ti.flags & CKF_TOKEN_INITIALIZED))
            continue;
        p11_field_copy(label, sizeof(label), ti.label, sizeof(ti.label));
        p11_field_copy(serial, sizeof(serial), ti.serialNumber, sizeof(ti.serialNumber));
        part = partition_for_label(core, label);
        if (part == NULL) {
            free(slots);
            return p11_error_set(P11_ERR_MEMORY, CKR_HOST_MEMORY, "out of memory");
        }
        m = member_by_serial(part, mod, serial);
        if (m == NULL) {
            m = new_member(part);
            if (m == NULL)
                continue;
            m->mod = mod;
            m->timeout_ms = core->member_timeout_ms;
        }
        p11_member_fill(m, slots[i], &si, &ti);
    }
    free(slots);
    return P11_OK;
}

static const char *configured_module_path(const p11_core *core)
{
    const char *env;

    if (core->module_path)
        return core->module_path;
    env = getenv(PRIMUS_MODULE_ENV);
    if (env && env[0])
        return env;
    return PRIMUS_DEFAULT_MODULE;
}

static p11_status load_module_locked(p11_core *core, const char *path, p11_module **out)
{
    p11_module *mod;
    p11_status st;
    size_t i;

    for (i = 0; i < core->n_modules; i++)
        if (strcmp(core->modules[i]->path, path) == 0) {
            *out = core->modules[i];
            return P11_OK;
        }
    if (core->n_modules == sizeof(core->modules) / sizeof(core->modules[0]))
        return p11_error_set(P11_ERR_CONFIG, CKR_OK, "too many PKCS#11 modules (at most %zu)",
                             sizeof(core->modules) / sizeof(core->modules[0]));
    st = p11_module_load(path, core->init_args, NULL, &mod);
    if (st != P11_OK)
        return st;
    st = p11_module_initialize(mod);
    if (st != P11_OK) {
        p11_module_release(mod, 1);
        return st;
    }
    core->modules[core->n_modules++] = mod;
    st = discover_module(core, mod);
    *out = mod;
    return st;
}

static p11_member *new_member(p11_partition *part)
{
    p11_member *m;

    if (part->n_members == P11_MAX_MEMBERS)
        return NULL;
    m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    p11_gate_init(&m->gate);
    m->want_slot = -1;
    m->part = part;
    m->index = (int)part->n_members;
    part->members[part->n_members++] = m;
    return m;
}

/* Partitions as the operator declared them: each member is its own module
 * instance (its own environment), gated by its deadline, and started under
 * that deadline; a member that does not answer starts down and the prober
 * takes it in when it does. */
static p11_status start_from_topology(p11_core *core)
{
    p11_topology *topo;
    p11_status st;
    size_t i, j;

    st = p11_topology_load(core->topology_file, core->member_timeout_ms, &topo);
    if (st != P11_OK)
        return st;
    for (i = 0; i < topo->n_parts && st == P11_OK; i++) {
        const p11_topology_partition *tp = &topo->parts[i];
        p11_partition *part = partition_for_label(core, tp->name);
        if (part == NULL) {
            st = p11_error_set(P11_ERR_MEMORY, CKR_HOST_MEMORY, "out of memory");
            break;
        }
        for (j = 0; j < tp->n_members && st == P11_OK; j++) {
            const p11_topology_member *tm = &tp->members[j];
            p11_module *mod;
            p11_member *m;

            if (core->n_modules == sizeof(core->modules) / sizeof(core->modules[0])) {
                st = p11_error_set(P11_ERR_CONFIG, CKR_OK, "too many members in the topology");
                break;
            }
            st = p11_module_load(tm->module, tm->init_args, tm->env, &mod);
            if (st != P11_OK)
                break;
            core->modules[core->n_modules++] = mod;
            m = new_member(part);
            if (m == NULL) {
                st = p11_error_set(P11_ERR_MEMORY, CKR_HOST_MEMORY, "out of memory");
                break;
            }
            m->mod = mod;
            m->gated = 1;
            atomic_store(&mod->worker_calls, 1);
            m->priority = tm->priority;
            m->timeout_ms = tm->timeout_ms;
            m->name = p11_strdup(tm->name);
            m->want_token = p11_strdup(tm->token ? tm->token : tp->name);
            m->want_serial = p11_strdup(tm->serial);
            m->want_slot = tm->slot;
            snprintf(m->label, sizeof(m->label), "%s", m->want_token ? m->want_token : "");
            if (m->name == NULL || m->want_token == NULL || (tm->serial && m->want_serial == NULL))
                st = p11_error_set(P11_ERR_MEMORY, CKR_HOST_MEMORY, "out of memory");
        }
    }
    p11_topology_free(topo);
    if (st != P11_OK)
        return st;
    core->from_topology = 1;
    for (i = 0; i < core->n_parts; i++)
        for (j = 0; j < core->parts[i]->n_members; j++)
            p11_member_start(core->parts[i]->members[j]);
    return P11_OK;
}

/* In a forked child: fresh C_Initialize for every module, and every session,
 * login and handle of the parent forgotten (never closed: they are the
 * parent's). */
static p11_status restart_after_fork(p11_core *core)
{
    size_t i, j;
    p11_status st = P11_OK;

    /* the parent's threads (prober, gate workers) do not exist here */
    core->prober_gen = 0;
    p11_audit_after_fork(core);
    for (i = 0; i < core->n_parts; i++)
        for (j = 0; j < core->parts[i]->n_members; j++) {
            p11_member *m = core->parts[i]->members[j];
            atomic_fetch_add(&m->generation, 1); /* the parent's handles mean nothing here */
            p11_session_pool_reset(m, 0);
            if (m->gated)
                p11_gate_init(&m->gate);
            atomic_store(&m->probing, 0); /* a probe running at the fork was the parent's */
            atomic_store(&m->last_revive_ns, 0);
            atomic_store(&m->state, P11_MEMBER_UP);
        }
    if (core->from_topology) {
        for (i = 0; i < core->n_parts; i++)
            for (j = 0; j < core->parts[i]->n_members; j++)
                p11_member_start(core->parts[i]->members[j]);
        return P11_OK;
    }
    for (i = 0; i < core->n_modules; i++) {
        p11_status one = p11_module_initialize(core->modules[i]);
        if (one != P11_OK)
            st = one;
    }
    for (i = 0; i < core->n_modules && st == P11_OK; i++)
        if (core->modules[i]->initialized)
            discover_module(core, core->modules[i]);
    return st;
}

/* What the process started with: the evidence that the audited
 * operations ran under this configuration. */
static void record_config_load(p11_core *core, p11_status st)
{
    char detail[256];
    size_t members = 0;
    p11_audit_fields f = {.event = "config-load", .rv = st == P11_OK ? CKR_OK : p11_error_rv(),
                          .has_rv = 1, .detail = detail};

    if (!core->audit)
        return;
    for (size_t i = 0; i < core->n_parts; i++)
        members += core->parts[i]->n_members;
    snprintf(detail, sizeof(detail), "%s %s; %zu partition(s), %zu member(s)%s%s",
             core->topology_file ? "topology" : "module",
             core->topology_file ? core->topology_file : configured_module_path(core),
             core->n_parts, members, st == P11_OK ? "" : "; start failed: ",
             st == P11_OK ? "" : p11_status_name(st));
    p11_audit_record(core, &f);
}

static _Thread_local int inside_start;

p11_status p11_core_ensure(p11_core *core)
{
    unsigned long gen;
    p11_status st = P11_OK;

    pthread_once(&atfork_once, install_atfork);
    gen = p11_fork_generation();
    if (atomic_load_explicit(&core->ready, memory_order_acquire) == gen + 1)
        return P11_OK;
    if (p11_process_exiting())
        return p11_error_set(P11_ERR_UNAVAILABLE, CKR_CRYPTOKI_NOT_INITIALIZED,
                             "the process is exiting; the HSM is no longer used");
    if (inside_start)
        /* The module called back into us while starting (a module that uses
         * OpenSSL in-process can reach the provider again). */
        return p11_error_set(P11_ERR_INTERNAL, CKR_OK,
                             "the PKCS#11 module called back into the provider while starting");
    pthread_mutex_lock(&core->lock);
    inside_start = 1;
    if (atomic_load(&core->ready) != gen + 1) {
        if (!core->started) {
            p11_module *mod;
            if (core->quirk_no_deinit)
                atomic_store(&guard_no_deinit, 1);
            st = p11_audit_open(core);
            if (st == P11_OK && core->topology_file)
                st = start_from_topology(core);
            else if (st == P11_OK)
                st = load_module_locked(core, configured_module_path(core), &mod);
            if (st == P11_OK)
                core->started = 1;
            record_config_load(core, st);
        } else {
            st = restart_after_fork(core);
        }
        if (st == P11_OK)
            atomic_store_explicit(&core->ready, gen + 1, memory_order_release);
    }
    inside_start = 0;
    pthread_mutex_unlock(&core->lock);
    return st;
}

p11_status p11_core_start(p11_core *core) { return p11_core_ensure(core); }

p11_status p11_core_rescan(p11_core *core)
{
    p11_status st;
    size_t i;

    st = p11_core_ensure(core);
    if (st != P11_OK || core->from_topology) /* declared partitions are not rediscovered */
        return st;
    pthread_mutex_lock(&core->lock);
    for (i = 0; i < core->n_modules && st == P11_OK; i++)
        st = discover_module(core, core->modules[i]);
    pthread_mutex_unlock(&core->lock);
    return st;
}

p11_status p11_core_use_module(p11_core *core, const char *path, p11_module **out)
{
    p11_status st = p11_core_ensure(core);

    if (st != P11_OK && core->started == 0) {
        /* The configured module failed, but the URI names its own: use that. */
        pthread_mutex_lock(&core->lock);
        st = load_module_locked(core, path, out);
        if (st == P11_OK) {
            core->started = 1;
            atomic_store(&core->ready, p11_fork_generation() + 1);
        }
        pthread_mutex_unlock(&core->lock);
        return st;
    }
    if (st != P11_OK)
        return st;
    pthread_mutex_lock(&core->lock);
    st = load_module_locked(core, path, out);
    pthread_mutex_unlock(&core->lock);
    return st;
}

size_t p11_core_match_partitions(p11_core *core, const p11_uri *uri, p11_partition **parts,
                                 size_t max)
{
    size_t i, j, n = 0;

    pthread_mutex_lock(&core->lock);
    for (i = 0; i < core->n_parts && n < max; i++) {
        p11_partition *part = core->parts[i];
        for (j = 0; j < part->n_members; j++)
            if (p11_member_matches_uri(part->members[j], uri)) {
                parts[n++] = part;
                break;
            }
    }
    pthread_mutex_unlock(&core->lock);
    return n;
}

static int core_has_gated_members(const p11_core *core)
{
    size_t i, j;

    for (i = 0; i < core->n_parts; i++)
        for (j = 0; j < core->parts[i]->n_members; j++)
            if (core->parts[i]->members[j]->gated)
                return 1;
    return 0;
}

/* Cores left in place at exit, reachable so that leak checkers do not count
 * them (the library is pinned in memory, so this array stays mapped). */
static p11_core *left_at_exit[8];
static atomic_size_t n_left_at_exit;

void p11_core_free(p11_core *core)
{
    size_t i;

    if (core == NULL)
        return;
    p11_prober_stop(core);
    if (p11_process_exiting() && core_has_gated_members(core)) {
        /* At exit the prober and the members' workers are not waited for
         * (one may hang in a dead HSM), so they may still be inside a call
         * that reads these members and modules (a probe re-initializing a
         * module reads its environment): freeing them would pull memory
         * from under those threads.  The process is ending; leave it all.
         * The audit log was already closed by its exit handler. */
        p11_pin_code_in_memory();
        i = atomic_fetch_add(&n_left_at_exit, 1);
        if (i < sizeof(left_at_exit) / sizeof(left_at_exit[0]))
            left_at_exit[i] = core;
        return;
    }
    for (i = 0; i < core->n_parts; i++)
        p11_partition_free(core->parts[i]);
    free(core->parts);
    for (i = 0; i < core->n_modules; i++)
        p11_module_release(core->modules[i], core->quirk_no_deinit);
    p11_audit_free(core); /* last: stopping members may still have left records */
    free(core->module_path);
    if (core->token_pin_spec)
        p11_wipe(core->token_pin_spec, strlen(core->token_pin_spec));
    free(core->token_pin_spec);
    free(core->init_args);
    free(core->topology_file);
    free(core->audit_log);
    free(core->audit_key);
    pthread_mutex_destroy(&core->lock);
    pthread_mutex_destroy(&core->probe_lock);
    pthread_cond_destroy(&core->probe_cond);
    free(core);
}
