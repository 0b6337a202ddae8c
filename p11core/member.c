/* Members of a partition: which one serves the next operation, what a
 * fault does to it, and the failover loop every operation runs through. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "audit.h"
#include "rv.h"

/* The member that served the calling thread's last operation (audit). */
static _Thread_local p11_member *served_by;

p11_member *p11_partition_served(void) { return served_by; }

static void record_member_event(p11_member *m, const char *event, CK_RV rv, const char *detail)
{
    p11_audit_fields f = {.event = event, .member = m, .rv = rv, .has_rv = rv != CKR_OK,
                          .detail = detail};
    p11_audit_record(m->part->core, &f);
}

/* A member marked down is tried again after this long (half-open): the
 * application recovers by itself once the HSM answers again. */
#define P11_MEMBER_RETRY_SECONDS 1

static long long now_seconds(void) { return (long long)time(NULL); }

void p11_member_mark_down(p11_member *m, CK_RV rv)
{
    atomic_store(&m->last_rv, rv);
    atomic_store(&m->last_change, now_seconds());
    if (atomic_exchange(&m->state, P11_MEMBER_DOWN) != P11_MEMBER_DOWN) {
        atomic_fetch_add(&m->downs, 1);
        record_member_event(m, "member-down", rv,
                            rv == P11_CKR_TIMEOUT ? "no answer within the member's deadline"
                                                  : NULL);
    }
    atomic_fetch_add(&m->generation, 1);
    if (m->gated)
        p11_member_schedule_probe(m); /* the prober decides when it is back */
}

void p11_member_mark_up(p11_member *m)
{
    if (atomic_exchange(&m->state, P11_MEMBER_UP) != P11_MEMBER_UP) {
        atomic_store(&m->last_change, now_seconds());
        atomic_fetch_add(&m->ups, 1);
        record_member_event(m, "member-up", CKR_OK, NULL);
    }
}

static int member_usable(p11_member *m, long long now)
{
    if (atomic_load(&m->state) == P11_MEMBER_UP)
        return 1;
    /* A cluster member comes back through the prober; others are simply
     * tried again after a while. */
    return !m->gated && now - atomic_load(&m->last_change) >= P11_MEMBER_RETRY_SECONDS;
}

p11_member *p11_partition_pick_member(p11_partition *part, unsigned tried_mask)
{
    long long now = now_seconds();
    int best_priority = -1;
    size_t i, n = part->n_members, candidates = 0;
    unsigned start;

    if (n == 1 && !part->members[0]->gated) /* the common case: one token, no choice */
        return (tried_mask & 1u) ? NULL : part->members[0];
    /* the highest-priority pool that has a usable member */
    for (i = 0; i < n; i++) {
        p11_member *m = part->members[i];
        if ((tried_mask & (1u << i)) || !member_usable(m, now))
            continue;
        if (best_priority < 0 || m->priority < best_priority) {
            best_priority = m->priority;
            candidates = 0;
        }
        if (m->priority == best_priority)
            candidates++;
    }
    if (best_priority < 0) {
        /* Nothing usable: try any member not yet tried, so that a partition
         * whose members are all down recovers as soon as one answers.  Not
         * cluster members: those fail fast until the prober sees one back. */
        for (i = 0; i < n; i++)
            if (!(tried_mask & (1u << i)) && !part->members[i]->gated)
                return part->members[i];
        return NULL;
    }
    /* round robin within the pool */
    start = atomic_fetch_add(&part->rr, 1);
    for (i = 0; i < n; i++) {
        p11_member *m = part->members[(start + i) % n];
        if (!(tried_mask & (1u << m->index)) && m->priority == best_priority &&
            member_usable(m, now))
            return m;
    }
    return NULL;
}

static p11_status status_for_rv(CK_RV rv)
{
    switch (rv) {
    case CKR_MECHANISM_INVALID:
    case CKR_MECHANISM_PARAM_INVALID:
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
    case CKR_KEY_TYPE_INCONSISTENT:
        return P11_ERR_MECHANISM;
    case CKR_BUFFER_TOO_SMALL:
        return P11_ERR_BUFFER;
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_EXPIRED:
    case CKR_PIN_LOCKED:
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_USER_PIN_NOT_INITIALIZED:
        return P11_ERR_PIN;
    case CKR_HOST_MEMORY:
        return P11_ERR_MEMORY;
    default:
        return P11_ERR_OPERATION;
    }
}

static p11_status all_members_failed(p11_partition *part, const char *what)
{
    char detail[1024];
    size_t i, used = 0;

    detail[0] = '\0';
    for (i = 0; i < part->n_members && used < sizeof(detail); i++) {
        p11_member *m = part->members[i];
        CK_RV last = atomic_load(&m->last_rv);
        int k = snprintf(detail + used, sizeof(detail) - used, "%s%s (%s%s): %s",
                         i ? "; " : "", m->name ? m->name : m->mod->path,
                         m->serial[0] ? "serial " : "token ", m->serial[0] ? m->serial : m->label,
                         last == P11_CKR_TIMEOUT ? "no answer within the deadline"
                                                                     : p11_rv_name(last));
        if (k > 0)
            used += (size_t)k;
    }
    return p11_error_set(P11_ERR_UNAVAILABLE, atomic_load(&part->members[0]->last_rv),
                         "%s on partition \"%s\" failed: every member is down [%s]; the "
                         "operation will succeed again as soon as one member answers",
                         what, part->name, detail);
}

/* Is rv the member's failure rather than the caller's?  Catch-all codes
 * (CKR_GENERAL_ERROR ...) are also what tokens answer to bad input, so the
 * member is asked a harmless question first: one crafted ciphertext must
 * not take healthy members out of rotation. */
static int member_failed(p11_member *m, CK_RV rv)
{
    CK_TOKEN_INFO ti;

    if (p11_rv_is_member_fault(rv))
        return 1;
    return p11_rv_needs_probe(rv) && p11_rv_is_member_fault(m->mod->fl->C_GetTokenInfo(m->slot, &ti));
}

CK_RV p11_member_call(p11_member *m, int login, const p11_op_class *cls, void *arg, int *fault)
{
    CK_SESSION_HANDLE s;
    unsigned long long t0;
    CK_RV rv;

    if (cls->no_session) {
        rv = cls->run(m, CK_INVALID_HANDLE, arg);
        *fault = rv != CKR_OK && p11_rv_is_member_fault(rv);
        return rv;
    }
    rv = p11_session_get(m, login, &s);
    if (rv != CKR_OK) {
        *fault = member_failed(m, rv);
        return rv;
    }
    t0 = p11_now_ns();
    rv = cls->run(m, s, arg);
    atomic_fetch_add_explicit(&m->latency_ns_total, p11_now_ns() - t0, memory_order_relaxed);
    *fault = rv != CKR_OK && member_failed(m, rv);
    if (*fault)
        p11_session_discard(m, s);
    else
        p11_session_put(m, s);
    return rv;
}

/* No member is live: a cluster member that is down but was not tried in this
 * run may be back before the prober has seen it (probe.c says why). */
static p11_member *revive_untried_member(p11_partition *part, unsigned tried)
{
    size_t i;

    for (i = 0; i < part->n_members; i++) {
        p11_member *m = part->members[i];
        if (!(tried & (1u << m->index)) && m->gated && p11_member_try_revive(m))
            return m;
    }
    return NULL;
}

static int key_not_on_member(CK_RV rv)
{
    return rv == P11_CKR_KEY_MISSING || rv == P11_CKR_KEY_NOT_UNIQUE;
}

/* Every member that was tried lacked the key (or held several objects for
 * it), the others being down: name them, since a key that is not on every
 * member is a replication problem the operator must see. */
static p11_status key_not_on_members(p11_partition *part, const char *what, unsigned lacking,
                                     CK_RV rv, int whole_partition)
{
    char names[512];
    size_t i, used = 0;

    names[0] = '\0';
    for (i = 0; i < part->n_members && used < sizeof(names); i++) {
        p11_member *m = part->members[i];
        int k;
        if (!(lacking & (1u << m->index)))
            continue;
        k = snprintf(names + used, sizeof(names) - used, "%s%s (serial %s)", used ? ", " : "",
                     m->name ? m->name : m->mod->path, m->serial);
        if (k > 0)
            used += (size_t)k;
    }
    return p11_error_set(rv == P11_CKR_KEY_NOT_UNIQUE ? P11_ERR_AMBIGUOUS : P11_ERR_NOT_FOUND,
                         CKR_KEY_HANDLE_INVALID,
                         "%s on partition \"%s\" failed: the key is %s on member%s %s%s; a key "
                         "must exist once on every member of a partition (check replication, "
                         "or the key's id and label)",
                         what, part->name,
                         rv == P11_CKR_KEY_NOT_UNIQUE ? "not unique" : "missing",
                         (lacking & (lacking - 1)) ? "s" : "", names,
                         whole_partition ? ", and no other member that answered has it" : "");
}

p11_status p11_partition_run(p11_partition *part, unsigned flags, const char *what,
                             const p11_op_class *cls, void *arg)
{
    int login = (flags & P11_RUN_NEEDS_LOGIN) != 0;
    unsigned tried = 0, lacking = 0;
    CK_RV lacking_rv = CKR_OK;
    p11_member *m;

    served_by = NULL;
    while ((m = p11_partition_pick_member(part, tried)) != NULL ||
           (m = revive_untried_member(part, tried)) != NULL) {
        int fault = 0, abandoned = 0;
        CK_RV rv;

        tried |= 1u << m->index;
        if (m->gated)
            rv = p11_gate_run(m, login, cls, arg, &fault, &abandoned);
        else
            rv = p11_member_call(m, login, cls, arg, &fault);
        served_by = m;
        if (rv == CKR_OK) {
            atomic_fetch_add_explicit(&m->ops, 1, memory_order_relaxed);
            if (atomic_load_explicit(&m->state, memory_order_relaxed) != P11_MEMBER_UP)
                p11_member_mark_up(m);
            return P11_OK;
        }
        if (key_not_on_member(rv)) {
            /* nothing ran: another member may hold the key, even for an
             * operation that is not idempotent */
            lacking |= 1u << m->index;
            lacking_rv = rv;
            continue;
        }
        atomic_fetch_add_explicit(&m->failures, 1, memory_order_relaxed);
        if (!fault) {
            /* The caller's problem (bad data, wrong PIN, mechanism): another
             * member would say the same.  A PIN error keeps the message the
             * login path set. */
            atomic_store(&m->last_rv, rv);
            if (status_for_rv(rv) == P11_ERR_PIN && p11_error_status() == P11_ERR_PIN)
                return P11_ERR_PIN;
            return p11_error_set_rv(status_for_rv(rv), rv, "%s on partition \"%s\" failed", what,
                                    part->name);
        }
        p11_member_mark_down(m, rv);
        if (flags & P11_RUN_IDEMPOTENT) {
            char detail[160];
            snprintf(detail, sizeof(detail), "%s failed on this member (%s); trying the next live "
                     "member", what, rv == P11_CKR_TIMEOUT ? "no answer in time" : p11_rv_name(rv));
            record_member_event(m, "failover", rv, detail);
        }
        if (!(flags & P11_RUN_IDEMPOTENT))
            return p11_error_set_rv(P11_ERR_UNAVAILABLE, rv,
                                    "%s on partition \"%s\" failed on member %s and is not "
                                    "retried elsewhere, since it may have taken effect",
                                    what, part->name, m->name ? m->name : m->serial);
    }
    if (lacking)
        return key_not_on_members(part, what, lacking, lacking_rv, part->n_members > 1);
    return all_members_failed(part, what);
}

p11_status p11_member_run(p11_member *m, unsigned flags, const char *what,
                          const p11_op_class *cls, void *arg)
{
    int login = (flags & P11_RUN_NEEDS_LOGIN) != 0, fault = 0, abandoned = 0;
    const char *who = m->name ? m->name : m->serial;
    CK_RV rv;

    served_by = m;
    if (atomic_load(&m->state) != P11_MEMBER_UP && m->gated) {
        CK_RV last = atomic_load(&m->last_rv);
        return p11_error_set(P11_ERR_UNAVAILABLE, last,
                             "%s on member %s of partition \"%s\" not attempted: the member is "
                             "down (%s); it is probed in the background and used again as soon "
                             "as it answers",
                             what, who, m->part->name,
                             last == P11_CKR_TIMEOUT ? "no answer within its deadline"
                                                     : p11_rv_name(last));
    }
    rv = m->gated ? p11_gate_run(m, login, cls, arg, &fault, &abandoned)
                  : p11_member_call(m, login, cls, arg, &fault);
    if (rv == CKR_OK) {
        atomic_fetch_add_explicit(&m->ops, 1, memory_order_relaxed);
        return P11_OK;
    }
    atomic_fetch_add_explicit(&m->failures, 1, memory_order_relaxed);
    if (key_not_on_member(rv))
        return key_not_on_members(m->part, what, 1u << m->index, rv, 0);
    if (fault) {
        p11_member_mark_down(m, rv);
        return p11_error_set_rv(P11_ERR_UNAVAILABLE, rv, "%s on member %s of partition \"%s\" "
                                "failed: the member is down", what, who, m->part->name);
    }
    if (status_for_rv(rv) == P11_ERR_PIN && p11_error_status() == P11_ERR_PIN)
        return P11_ERR_PIN;
    return p11_error_set_rv(status_for_rv(rv), rv, "%s on member %s of partition \"%s\" failed",
                            what, who, m->part->name);
}

/* ---- URI matching ---- */
/* Compared whole, with the URI's length: a %00 in token=BADIN%00x must not
 * select the token "BADIN". */
static int text_matches(const p11_uri *uri, p11_uri_attr attr, const char *value)
{
    size_t len;
    const char *want = p11_uri_get(uri, attr, &len);
    return want == NULL || (len == strlen(value) && memcmp(want, value, len) == 0);
}

static int module_name_matches(const char *want, const char *path)
{
    const char *base = strrchr(path, '/');
    size_t n;

    base = base ? base + 1 : path;
    if (strcmp(want, base) == 0)
        return 1;
    /* RFC 7512 2.3: the name without the "lib" prefix and the suffix. */
    if (strncmp(base, "lib", 3) == 0)
        base += 3;
    n = strcspn(base, ".");
    return strlen(want) == n && strncmp(want, base, n) == 0;
}

int p11_member_matches_uri(const p11_member *m, const p11_uri *uri)
{
    const char *path;
    unsigned long slot_id;
    unsigned major, minor;
    char field[65];

    /* token= names the partition (in a topology, a member's token may bear
     * another label). */
    if (!text_matches(uri, P11_URI_TOKEN, m->part->name) ||
        !text_matches(uri, P11_URI_SERIAL, m->serial) ||
        !text_matches(uri, P11_URI_MODEL, m->model) ||
        !text_matches(uri, P11_URI_MANUFACTURER, m->manufacturer) ||
        !text_matches(uri, P11_URI_SLOT_DESCRIPTION, m->slot_description) ||
        !text_matches(uri, P11_URI_SLOT_MANUFACTURER, m->slot_manufacturer))
        return 0;
    if (p11_uri_get_slot_id(uri, &slot_id) && slot_id != m->slot)
        return 0;
    p11_field_copy(field, sizeof(field), m->mod->info.manufacturerID,
                   sizeof(m->mod->info.manufacturerID));
    if (!text_matches(uri, P11_URI_LIBRARY_MANUFACTURER, field))
        return 0;
    p11_field_copy(field, sizeof(field), m->mod->info.libraryDescription,
                   sizeof(m->mod->info.libraryDescription));
    if (!text_matches(uri, P11_URI_LIBRARY_DESCRIPTION, field))
        return 0;
    if (p11_uri_get_library_version(uri, &major, &minor) &&
        (major != m->mod->info.libraryVersion.major || minor != m->mod->info.libraryVersion.minor))
        return 0;
    path = p11_uri_get(uri, P11_URI_MODULE_PATH, NULL);
    if (path && strcmp(path, m->mod->path) != 0)
        return 0;
    path = p11_uri_get(uri, P11_URI_MODULE_NAME, NULL);
    if (path && !module_name_matches(path, m->mod->path))
        return 0;
    return 1;
}

void p11_member_free(p11_member *m)
{
    if (m == NULL)
        return;
    if (m->gated && !p11_gate_shutdown(&m->gate)) {
        /* a worker still hangs in a call on this member: leave it, and its
         * module, be */
        atomic_store(&m->mod->left_in_use, 1);
        return;
    }
    p11_session_pool_reset(m, 1);
    free(m->idle);
    free(m->mechs);
    free(m->mech_info);
    pthread_mutex_destroy(&m->lock);
    free(m->name);
    free(m->want_token);
    free(m->want_serial);
    free(m);
}

void p11_partition_free(p11_partition *part)
{
    size_t i;

    if (part == NULL)
        return;
    for (i = 0; i < part->n_members; i++)
        p11_member_free(part->members[i]);
    p11_pin_free(part->pin);
    pthread_mutex_destroy(&part->pin_lock);
    free(part->name);
    free(part);
}
