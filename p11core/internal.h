/*
 * Internal structures of p11core, shared by its rooms:
 *   module.c   a loaded PKCS#11 library
 *   member.c   one token on one module (a cluster member): state, choice, failover loop
 *   session.c  session pool and login per member
 *   object.c   object search and attribute reading
 *   key.c      key references and one-shot operations
 *   core.c     the core: configuration, start, discovery, fork and exit
 */
#ifndef PRIMUS_P11CORE_INTERNAL_H
#define PRIMUS_P11CORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>

#include "p11core.h"

#define P11_MAX_MEMBERS 16
#define P11_LABEL_LEN 32

/* ---- errors (error.c) ---- */
/* Set the calling thread's error; the message is a printf format.  Returns st. */
p11_status p11_error_set(p11_status st, CK_RV rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same, with the PKCS#11 code's name and advice appended to the message. */
p11_status p11_error_set_rv(p11_status st, CK_RV rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- PINs (pin.c) ---- */
/* Resolve a PIN specification: "file:/path" (the file must exist, be
 * non-empty and not readable by group/others) or a literal PIN.  *pin is
 * malloc'd; release with p11_pin_free (wipes it). */
p11_status p11_pin_resolve(const char *spec, char **pin);
/* The PIN of a URI's pin-value or pin-source; *pin NULL when the URI has none. */
p11_status p11_pin_from_uri(const p11_uri *uri, char **pin);
void p11_pin_free(char *pin);
void p11_wipe(void *p, size_t n);
/* Read a secret file (PIN, audit key): regular, not readable by group or
 * others, non-empty, at most max bytes; a text secret loses one trailing
 * line break.  Messages name it as `what` and say the file should hold
 * `fill_hint`; errors carry status st.  *out is NUL-terminated, malloc'd:
 * wipe it. */
p11_status p11_secret_file_read(const char *path, const char *what, const char *fill_hint,
                                size_t max, int is_text, p11_status st, unsigned char **out,
                                size_t *out_len);

/* ---- modules (module.c) ---- */
typedef struct p11_module {
    char *path;
    void *dl;
    CK_FUNCTION_LIST *fl;
    CK_INFO info;
    _Atomic int initialized; /* C_Initialize done in this process generation */
    int owns_init;         /* we initialized it (not CKR_CRYPTOKI_ALREADY_INITIALIZED) */
    char *init_args;
    unsigned long fork_gen;/* process generation of the last C_Initialize */
    int refs;              /* cores using it; modules are shared process-wide */
    int exit_guarded;      /* the exit guard knows it */
    char **env;            /* "NAME=value" set around C_GetFunctionList/C_Initialize */
    char *env_key;         /* env joined: part of the instance's identity */
    atomic_int env_taken_at_load; /* an instance per C_GetFunctionList: env not needed later */
    atomic_int worker_calls; /* gated members call it on their worker threads */
    atomic_int left_in_use;  /* a worker may still be inside a call to it: never finalize or free */
} p11_module;

/* The process-wide instance of the module at path (loaded on first use,
 * shared by every core, so one C_Initialize serves them all). */
p11_status p11_module_load(const char *path, const char *init_args, char *const *env,
                           p11_module **out);
/* C_Initialize (again, after fork: C_Finalize first). */
p11_status p11_module_initialize(p11_module *mod);
/* C_Finalize + C_Initialize of this instance alone (a remote member whose
 * connection broke stays broken until then). */
p11_status p11_module_reinitialize(p11_module *mod);
/* Locks of the module layer made afresh in a forked child (atfork). */
void p11_module_after_fork_child(void);
/* Drop a core's use; the last user finalizes (unless no_deinit or exiting). */
void p11_module_release(p11_module *mod, int no_deinit);

/* ---- members and partitions (member.c) ---- */
typedef struct p11_audit p11_audit;
typedef enum p11_member_state {
    P11_MEMBER_UP = 0,
    P11_MEMBER_DOWN = 1
} p11_member_state;

typedef struct p11_partition p11_partition;
typedef struct p11_member p11_member;

/* An operation the failover loop runs on one member with a session of it.
 * clone/merge/release let a gated member's worker own a private copy of the
 * operation's data (see gate.c); run returns the PKCS#11 code. */
typedef struct p11_op_class {
    CK_RV (*run)(p11_member *m, CK_SESSION_HANDLE s, void *arg);
    void *(*clone)(const void *arg);           /* NULL on allocation failure */
    void (*merge)(void *arg, const void *copy); /* results back into the caller's arg */
    void (*release)(void *copy);
    /* Optional: the result of a call its caller gave up on at the deadline,
     * on the worker, once it returns (a slow probe that did succeed). */
    void (*late)(p11_member *m, CK_RV rv);
    int no_session;                            /* run gets no session (probes) */
} p11_op_class;

/* The code a gated call returns when the member did not answer in time. */
#define P11_CKR_TIMEOUT (CKR_VENDOR_DEFINED | 0x7072696dUL)
/* The codes a key operation returns when its key reference does not name
 * exactly one object on this member (a key not yet replicated there, or one
 * generated on another member): the member is fine, another one may hold
 * the key. */
#define P11_CKR_KEY_MISSING (CKR_VENDOR_DEFINED | 0x70726d30UL)
#define P11_CKR_KEY_NOT_UNIQUE (CKR_VENDOR_DEFINED | 0x70726d31UL)

typedef struct p11_gate {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct p11_job *head, *tail;
    unsigned threads, idle;
    unsigned stuck;          /* calls abandoned at their deadline and not yet returned */
    unsigned late_running;   /* op_class.late hooks running now (shutdown waits for them) */
    int closing;
} p11_gate;

struct p11_member {
    p11_partition *part;
    p11_module *mod;
    int index;              /* position in part->members */
    CK_SLOT_ID slot;
    char serial[17];
    char label[P11_LABEL_LEN + 1];
    char model[17];
    char manufacturer[33];
    char slot_description[65];
    char slot_manufacturer[33];
    CK_FLAGS token_flags;
    int priority;           /* 0 is highest */
    unsigned timeout_ms;

    _Atomic int state;      /* p11_member_state */
    _Atomic unsigned generation; /* bumped whenever sessions/handles become stale */

    pthread_mutex_t lock;   /* guards the pool, login and mechanism cache */
    CK_SESSION_HANDLE *idle;
    size_t n_idle, cap_idle;
    unsigned pool_generation;
    int logged_in;
    size_t open_sessions;

    CK_MECHANISM_TYPE *mechs;
    CK_MECHANISM_INFO *mech_info;
    size_t n_mechs;
    int mechs_loaded;

    _Atomic unsigned long long ops, failures;
    _Atomic unsigned long long latency_ns_total;
    _Atomic CK_RV last_rv;
    _Atomic long long last_change; /* unix seconds of the last state change */

    int gated;              /* calls run on workers under timeout_ms (cluster members) */
    p11_gate gate;
    char *name;             /* from the topology, NULL in automatic grouping */
    char *want_token;       /* topology selector: token label */
    char *want_serial;      /* topology selector: token serial, NULL: any */
    long want_slot;         /* topology selector: slot id, -1: any */
    /* written by operations (mark down, revive) and the prober alike */
    _Atomic unsigned long long next_probe_ns;
    _Atomic unsigned probe_backoff_ms;
    _Atomic int probing;                      /* a probe is running (one at a time) */
    _Atomic unsigned long long last_revive_ns; /* last probe an operation asked for */
    _Atomic unsigned long long downs, ups;

    CK_SESSION_HANDLE keeper;      /* holds session copies of keys; never pooled */
    unsigned keeper_generation;    /* generation + 1 the keeper belongs to, 0: none */
};

struct p11_partition {
    struct p11_core *core;
    char *name;             /* the token label */
    p11_member *members[P11_MAX_MEMBERS];
    size_t n_members;
    _Atomic unsigned rr;    /* round robin cursor */
    pthread_mutex_t pin_lock;
    char *pin;              /* from a URI; kept for re-login after a member restarts; wiped on free */
    CK_RV pin_failure;      /* sticky: a PIN the token refused is never tried again */
};

/* Offer a PIN (from a URI) for the partition's logins.  A PIN equal to one
 * the token already refused is not tried again. */
p11_status p11_partition_offer_pin(p11_partition *part, const char *pin);

/* The member an operation should run on: the highest-priority pool that has
 * a live member, round robin within it, skipping those in `tried`. */
p11_member *p11_partition_pick_member(p11_partition *part, unsigned tried_mask);
void p11_member_mark_down(p11_member *m, CK_RV rv);
/* The member that served (or last failed) the calling thread's last
 * p11_partition_run, NULL when none was tried. */
p11_member *p11_partition_served(void);
void p11_member_mark_up(p11_member *m);
void p11_member_free(p11_member *m);
void p11_member_fill(p11_member *m, CK_SLOT_ID slot, const CK_SLOT_INFO *si,
                     const CK_TOKEN_INFO *ti);

/* ---- members coming and going (probe.c) ---- */
/* Initialize a declared member and find its token, under its deadline; a
 * member that does not answer starts down and is probed in the background. */
int p11_member_start(p11_member *m);
void p11_member_schedule_probe(p11_member *m);
/* An operation found no live member: is this member, which is down, back?
 * Probes it now (at most every P11_REVIVE_INTERVAL_MS, or waits for a probe
 * already running) and returns 1 if it is up. */
int p11_member_try_revive(p11_member *m);
void p11_prober_wake(struct p11_core *core);
void p11_prober_stop(struct p11_core *core);
void p11_partition_free(p11_partition *part);


#define P11_RUN_IDEMPOTENT 1u /* may be re-run on another member after a fault */
#define P11_RUN_NEEDS_LOGIN 2u
/* Run op on a live member of part; on a member fault, mark it down and,
 * when idempotent, go on with the next member.  `what` names the operation
 * in messages.  On failure the thread error is set from the last code. */
p11_status p11_partition_run(p11_partition *part, unsigned flags, const char *what,
                             const p11_op_class *cls, void *arg);
/* Run op on this one member, whatever the others do (no failover): for
 * proofs that every member works.  A member known to be down is not
 * called.  Messages name the member. */
p11_status p11_member_run(p11_member *m, unsigned flags, const char *what,
                          const p11_op_class *cls, void *arg);
/* One attempt on one member: borrow a session (logged in when asked), run,
 * give the session back, or close it when the member failed.  *fault says
 * whether the member (not the caller) failed. */
CK_RV p11_member_call(p11_member *m, int login, const p11_op_class *cls, void *arg, int *fault);

/* ---- the gate (gate.c) ---- */
void p11_gate_init(p11_gate *g);
/* Keep the code of the library containing the core mapped until the
 * process ends (called before any thread of ours starts). */
void p11_pin_code_in_memory(void);
/* p11_member_call on one of the member's workers, waiting at most the
 * member's timeout; *abandoned when it did not answer in time (then the
 * worker finishes the call and releases its copy alone). */
CK_RV p11_gate_run(p11_member *m, int login, const p11_op_class *cls, void *arg, int *fault,
                   int *abandoned);
/* Stop the workers; 0 when some cannot stop (a call still hangs), and then
 * the member must not be freed. */
int p11_gate_shutdown(p11_gate *g);
/* Calls abandoned at their deadline that have not returned yet. */
unsigned p11_gate_stuck(p11_member *m);

/* ---- sessions and login (session.c) ---- */
/* A session of the member (from the pool, or newly opened), logged in when
 * login is set and the partition has a PIN. */
CK_RV p11_session_get(p11_member *m, int login, CK_SESSION_HANDLE *s);
void p11_session_put(p11_member *m, CK_SESSION_HANDLE s);
/* Close a session that may be broken (it is not returned to the pool). */
void p11_session_discard(p11_member *m, CK_SESSION_HANDLE s);
/* Drop every pooled session (after a fault, fork or re-init). */
void p11_session_pool_reset(p11_member *m, int close_them);
/* Log the member in with the partition PIN; sticky failure on a wrong PIN. */
CK_RV p11_member_login(p11_member *m, CK_SESSION_HANDLE s);
/* Context-specific login for CKA_ALWAYS_AUTHENTICATE keys. */
CK_RV p11_context_login(p11_member *m, CK_SESSION_HANDLE s);
/* The member's keeper session (opened once per generation), which owns
 * session copies of keys; CK_INVALID_HANDLE when it cannot be opened. */
CK_SESSION_HANDLE p11_member_keeper(p11_member *m);
/* Should keys of this member be used through session copies? */
int p11_member_copies_keys(p11_member *m);
/* Read the member's mechanism list (called with m->lock held). */
void p11_member_load_mechanisms(p11_member *m);
/* Mechanism cache. */
int p11_member_has_mechanism(p11_member *m, CK_MECHANISM_TYPE mech, CK_FLAGS purpose);

/* ---- objects (object.c) ---- */
/* Read an object's attributes into info (public material only). */
CK_RV p11_object_read(p11_member *m, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                      p11_object_info *info);
/* Search on one member; handles malloc'd. */
CK_RV p11_object_search(p11_member *m, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl,
                        CK_ULONG n, CK_OBJECT_HANDLE **handles, size_t *count);
/* The URI naming an object: token, object label, id and type. */
char *p11_object_uri(const char *partition, const p11_object_info *info);
/* Does the partition (its member m) match the token/slot/library attributes of uri? */
int p11_member_matches_uri(const p11_member *m, const p11_uri *uri);

/* ---- the core (core.c) ---- */
struct p11_core {
    pthread_mutex_t lock;
    /* configuration */
    char *module_path;
    char *token_pin_spec;
    char *init_args;
    int quirk_no_deinit;
    char *topology_file;
    char *audit_log;
    char *audit_key;
    int audit_fail_open;
    struct p11_audit *audit;     /* the open log (audit.c), NULL without one */
    int session_key_cache; /* -1 auto, 0 no, 1 yes */
    unsigned member_timeout_ms;

    /* state */
    int started;                 /* configuration frozen, modules loaded once */
    _Atomic unsigned long ready; /* fork generation + 1 when usable without the lock */
    p11_module *modules[P11_MAX_MEMBERS * 4];
    size_t n_modules;
    int from_topology;           /* partitions declared, not discovered */

    /* the prober (probe.c) */
    pthread_mutex_t probe_lock;
    pthread_cond_t probe_cond;
    pthread_t prober;
    unsigned long prober_gen;    /* fork generation + 1 while running */
    _Atomic int probe_stop; /* read by the prober outside probe_lock */
    p11_partition **parts;
    size_t n_parts;
};

/* Make sure the core is started in this process generation (after fork:
 * re-initialized).  Fast when nothing changed. */
p11_status p11_core_ensure(p11_core *core);
/* Rediscover tokens (a token may have appeared since start). */
p11_status p11_core_rescan(p11_core *core);
/* Make sure the module at path is loaded too (a URI's module-path). */
p11_status p11_core_use_module(p11_core *core, const char *path, p11_module **out);
/* The partitions whose members match the URI, into parts (at most max). */
size_t p11_core_match_partitions(p11_core *core, const p11_uri *uri, p11_partition **parts,
                                 size_t max);
/* The current process generation (bumped in every forked child). */
unsigned long p11_fork_generation(void);
/* Has the process begun exiting (then no PKCS#11 call is made any more)? */
int p11_process_exiting(void);
/* Note a module we initialized, so its finalization happens before its own
 * exit-time destructors run. */
void p11_exit_guard_register(p11_module *mod);
void p11_exit_guard_forget(p11_module *mod);

/* ---- helpers ---- */
char *p11_strdup(const char *s);
/* Copy a space-padded PKCS#11 field into a NUL-terminated, trimmed string. */
void p11_field_copy(char *dst, size_t dst_size, const CK_UTF8CHAR *src, size_t src_len);
unsigned long long p11_now_ns(void);
/* pthread_create for the core's own threads (gate workers, prober, audit
 * writer): they start with every signal blocked (see util.c). */
int p11_thread_start(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);

#endif
