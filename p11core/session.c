/* Sessions and login, per member.  Sessions are pooled: an operation
 * borrows one and gives it back, so no operation opens, closes or logs in
 * once the pool is warm.  Login is per member (PKCS#11 login state is per
 * application and token), and a PIN the token refuses is never tried again:
 * a retry can lock the partition. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "audit.h"
#include "rv.h"

static int may_call_module(const p11_member *m)
{
    return !p11_process_exiting() && m->mod->initialized &&
           m->mod->fork_gen == p11_fork_generation();
}

void p11_session_pool_reset(p11_member *m, int close_them)
{
    size_t i;

    pthread_mutex_lock(&m->lock);
    if (close_them && may_call_module(m)) {
        for (i = 0; i < m->n_idle; i++)
            m->mod->fl->C_CloseSession(m->idle[i]);
        if (m->keeper_generation == atomic_load(&m->generation) + 1)
            m->mod->fl->C_CloseSession(m->keeper);
    }
    m->keeper_generation = 0;
    m->n_idle = 0;
    m->open_sessions = 0;
    m->logged_in = 0;
    m->pool_generation = atomic_load(&m->generation);
    pthread_mutex_unlock(&m->lock);
}

/* Called with m->lock held: a generation change (fault, fork) makes the
 * pooled sessions and the login stale. */
static void pool_catch_up(p11_member *m)
{
    unsigned gen = atomic_load(&m->generation);

    if (m->pool_generation != gen) {
        m->n_idle = 0;
        m->open_sessions = 0;
        m->logged_in = 0;
        m->pool_generation = gen;
    }
}

CK_RV p11_session_get(p11_member *m, int login, CK_SESSION_HANDLE *s)
{
    CK_RV rv = CKR_OK;

    pthread_mutex_lock(&m->lock);
    pool_catch_up(m);
    if (m->n_idle > 0) {
        *s = m->idle[--m->n_idle];
    } else {
        pthread_mutex_unlock(&m->lock);
        rv = m->mod->fl->C_OpenSession(m->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                                       s);
        if (rv != CKR_OK) {
            if (!p11_rv_is_member_fault(rv))
                p11_error_set_rv(P11_ERR_OPERATION, rv,
                                 "cannot open a session on partition \"%s\"", m->part->name);
            return rv;
        }
        pthread_mutex_lock(&m->lock);
        m->open_sessions++;
    }
    if (login && !m->logged_in && (m->token_flags & CKF_LOGIN_REQUIRED)) {
        rv = p11_member_login(m, *s);
        if (rv == CKR_OK)
            m->logged_in = 1;
    }
    pthread_mutex_unlock(&m->lock);
    if (rv != CKR_OK)
        p11_session_put(m, *s);
    return rv;
}

void p11_session_put(p11_member *m, CK_SESSION_HANDLE s)
{
    pthread_mutex_lock(&m->lock);
    if (m->pool_generation == atomic_load(&m->generation)) {
        if (m->n_idle == m->cap_idle) {
            size_t cap = m->cap_idle ? m->cap_idle * 2 : 8;
            CK_SESSION_HANDLE *grown = realloc(m->idle, cap * sizeof(*grown));
            if (grown) {
                m->idle = grown;
                m->cap_idle = cap;
            }
        }
        if (m->n_idle < m->cap_idle) {
            m->idle[m->n_idle++] = s;
            s = CK_INVALID_HANDLE;
        }
    }
    pthread_mutex_unlock(&m->lock);
    if (s != CK_INVALID_HANDLE && may_call_module(m))
        m->mod->fl->C_CloseSession(s);
}

void p11_session_discard(p11_member *m, CK_SESSION_HANDLE s)
{
    if (may_call_module(m))
        m->mod->fl->C_CloseSession(s);
}

CK_SESSION_HANDLE p11_member_keeper(p11_member *m)
{
    unsigned gen = atomic_load(&m->generation) + 1;
    CK_SESSION_HANDLE s = CK_INVALID_HANDLE;

    pthread_mutex_lock(&m->lock);
    if (m->keeper_generation != gen) {
        if (m->mod->fl->C_OpenSession(m->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                                      &m->keeper) == CKR_OK)
            m->keeper_generation = gen;
    }
    if (m->keeper_generation == gen)
        s = m->keeper;
    pthread_mutex_unlock(&m->lock);
    return s;
}

/* SoftHSM re-reads a token object from disk on every use and keeps session
 * objects in memory: a session copy of the key signs ~1.6x faster.  Other
 * tokens gain nothing from it and may count session objects against their
 * memory, so "auto" copies on SoftHSM only. */
int p11_member_copies_keys(p11_member *m)
{
    int setting = m->part->core->session_key_cache;

    if (setting >= 0)
        return setting;
    return strncmp(m->model, "SoftHSM", 7) == 0;
}

p11_status p11_partition_offer_pin(p11_partition *part, const char *pin)
{
    char *copy;

    pthread_mutex_lock(&part->pin_lock);
    if (part->pin && strcmp(part->pin, pin) == 0) {
        pthread_mutex_unlock(&part->pin_lock);
        return P11_OK;
    }
    copy = p11_strdup(pin);
    if (copy == NULL) {
        pthread_mutex_unlock(&part->pin_lock);
        return p11_error_set(P11_ERR_MEMORY, CKR_HOST_MEMORY, "out of memory");
    }
    p11_pin_free(part->pin);
    part->pin = copy;
    part->pin_failure = CKR_OK; /* a different PIN is a new attempt, not a retry */
    pthread_mutex_unlock(&part->pin_lock);
    return P11_OK;
}

/* The PIN for the partition: one a URI offered, else the configured one.
 * Called with part->pin_lock held. */
static p11_status partition_pin(p11_partition *part, char **pin)
{
    if (part->pin) {
        *pin = p11_strdup(part->pin);
        return *pin ? P11_OK : p11_error_set(P11_ERR_MEMORY, CKR_HOST_MEMORY, "out of memory");
    }
    return p11_pin_resolve(part->core->token_pin_spec, pin);
}

/*
 * Answers to C_Login that are no verdict on the PIN: a token that compared
 * the PIN says CKR_PIN_INCORRECT (and counts it); with these it compared
 * nothing, so asking again cannot count against the PIN.  SoftHSM's file
 * store gives them for a moment when another process rewrites the token
 * file, which every login does, and the workers of a server that reach one
 * node log in together when the node restarts.  A few tries, a few
 * milliseconds apart, keep their handshakes from failing.
 */
#define P11_LOGIN_TRIES 3
#define P11_LOGIN_PAUSE_MS 15

static int login_answer_is_no_verdict(CK_RV rv)
{
    return rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED ||
           rv == CKR_USER_PIN_NOT_INITIALIZED;
}

static CK_RV login_as(p11_member *m, CK_SESSION_HANDLE s, CK_USER_TYPE who)
{
    p11_partition *part = m->part;
    char *pin = NULL;
    unsigned long long t0;
    int attempt;
    CK_RV rv;

    pthread_mutex_lock(&part->pin_lock);
    if (part->pin_failure != CKR_OK) {
        rv = part->pin_failure;
        pthread_mutex_unlock(&part->pin_lock);
        p11_error_set_rv(P11_ERR_PIN, rv,
                         "login to partition \"%s\" is not attempted again: the token refused "
                         "this PIN before",
                         part->name);
        return rv;
    }
    if (partition_pin(part, &pin) != P11_OK) {
        pthread_mutex_unlock(&part->pin_lock);
        return CKR_PIN_INVALID;
    }
    if (pin == NULL && !(m->token_flags & CKF_PROTECTED_AUTHENTICATION_PATH)) {
        pthread_mutex_unlock(&part->pin_lock);
        p11_error_set(P11_ERR_PIN, CKR_USER_NOT_LOGGED_IN,
                      "partition \"%s\" needs a login and no PIN is configured; set "
                      "pkcs11-module-token-pin = file:/path/to/pinfile, or add "
                      "pin-source=file:/path/to/pinfile to the URI",
                      part->name);
        return CKR_USER_NOT_LOGGED_IN;
    }
    for (attempt = 1;; attempt++) {
        struct timespec pause = {0, P11_LOGIN_PAUSE_MS * 1000000L * attempt};
        t0 = p11_now_ns();
        rv = m->mod->fl->C_Login(s, who, (CK_UTF8CHAR *)pin, pin ? (CK_ULONG)strlen(pin) : 0);
        if (rv == CKR_USER_ALREADY_LOGGED_IN)
            rv = CKR_OK;
        {
            p11_audit_fields f = {.event = "login", .member = m, .rv = rv, .has_rv = 1,
                                  .started_ns = t0,
                                  .detail = who == CKU_CONTEXT_SPECIFIC ? "context-specific login"
                                                                        : NULL};
            p11_audit_record(part->core, &f);
        }
        if (attempt == P11_LOGIN_TRIES || !login_answer_is_no_verdict(rv))
            break;
        nanosleep(&pause, NULL);
    }
    p11_pin_free(pin);
    switch (rv) {
    case CKR_OK:
        break;
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_LOCKED:
    case CKR_PIN_EXPIRED:
        part->pin_failure = rv;
        p11_error_set_rv(P11_ERR_PIN, rv, "login to partition \"%s\" failed", part->name);
        break;
    case CKR_USER_PIN_NOT_INITIALIZED: /* no PIN was checked: asking again cannot lock it */
        p11_error_set_rv(P11_ERR_PIN, rv, "login to partition \"%s\" failed", part->name);
        break;
    default:
        if (!p11_rv_is_member_fault(rv))
            p11_error_set_rv(P11_ERR_PIN, rv, "login to partition \"%s\" failed", part->name);
        break;
    }
    pthread_mutex_unlock(&part->pin_lock);
    return rv;
}

CK_RV p11_member_login(p11_member *m, CK_SESSION_HANDLE s)
{
    return login_as(m, s, CKU_USER);
}

CK_RV p11_context_login(p11_member *m, CK_SESSION_HANDLE s)
{
    return login_as(m, s, CKU_CONTEXT_SPECIFIC);
}

void p11_member_load_mechanisms(p11_member *m)
{
    CK_ULONG n = 0, i;
    CK_MECHANISM_TYPE *list = NULL;
    CK_MECHANISM_INFO *info = NULL;

    if (m->mod->fl->C_GetMechanismList(m->slot, NULL, &n) == CKR_OK && n > 0) {
        /* One spare element: p11-kit 0.24's client, purging mechanisms it
         * cannot forward, moves one element more than the list holds. */
        list = calloc(n + 1, sizeof(*list));
        info = calloc(n, sizeof(*info));
        if (list && info && m->mod->fl->C_GetMechanismList(m->slot, list, &n) == CKR_OK) {
            for (i = 0; i < n; i++)
                if (m->mod->fl->C_GetMechanismInfo(m->slot, list[i], &info[i]) != CKR_OK)
                    memset(&info[i], 0, sizeof(info[i]));
        } else {
            n = 0;
        }
    }
    free(m->mechs);
    free(m->mech_info);
    m->mechs = list;
    m->mech_info = info;
    m->n_mechs = list && info ? n : 0;
    /* A list that could not be read is asked for again next time, never
     * cached as "no mechanisms" for the life of the process. */
    m->mechs_loaded = m->n_mechs > 0;
}

int p11_member_has_mechanism(p11_member *m, CK_MECHANISM_TYPE mech, CK_FLAGS purpose)
{
    size_t i;
    int found = 0;

    pthread_mutex_lock(&m->lock);
    if (!m->mechs_loaded) {
        if (m->gated) {
            /* A cluster member's list is read by its probe, on a worker under
             * the deadline; until then, let the token itself say no. */
            pthread_mutex_unlock(&m->lock);
            return 1;
        }
        p11_member_load_mechanisms(m);
        if (!m->mechs_loaded) {
            /* unknown: the operation itself will say what the token thinks */
            pthread_mutex_unlock(&m->lock);
            return 1;
        }
    }
    for (i = 0; i < m->n_mechs; i++)
        if (m->mechs[i] == mech) {
            found = purpose == 0 || (m->mech_info[i].flags & purpose) == purpose;
            break;
        }
    pthread_mutex_unlock(&m->lock);
    return found;
}
