/* One PKCS#11 library: dlopen, the function list (C_GetInterface for
 * PKCS#11 3.0 modules, C_GetFunctionList otherwise), C_Initialize with OS
 * locking, re-initialization in a forked child, and searches that never see
 * a copy being made.
 *
 * Nothing here is locked across modules while a module is called: a member
 * whose C_Initialize hangs (an HSM that stopped answering, a connect to a
 * host that is gone) must not keep any other member from coming back, nor a
 * worker forked meanwhile from starting at all. */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <pthread.h>

#include "internal.h"

/* PKCS#11 3.0 interface discovery; p11-kit 0.24's header predates it. */
typedef struct p11_ck_interface {
    CK_UTF8CHAR *name;
    void *function_list;
    CK_FLAGS flags;
} p11_ck_interface;
typedef CK_RV (*p11_get_interface_fn)(CK_UTF8CHAR *name, CK_VERSION *version,
                                      p11_ck_interface **iface, CK_FLAGS flags);

/* ---- searches and copies ----
 * SoftHSM's C_CopyObject puts the new object into the process's session
 * objects first, copies every attribute of the original into it (CKA_TOKEN
 * = TRUE included), and applies the caller's template (CKA_TOKEN = FALSE)
 * last.  A C_FindObjectsInit in another thread meanwhile takes the half-made
 * session copy of a token key for a second token object with the key's
 * class, id and label: the key is "not unique" and that operation fails.
 * (Seen as a few failed TLS handshakes whenever the 8 threads of a new
 * Apache event child used a key for the first time together: one thread
 * made its session copy of the key while the others searched for it.)
 * The core therefore uses each module through a copy of its function list
 * in which a search start (where SoftHSM takes its snapshot of matching
 * objects) and a copy exclude each other: searches share a lock, copies
 * take it alone.  Neither call is on a warm signing path, so the lock costs
 * nothing there.  Instances that share one function list (the same library
 * loaded for two members) share the lock. */
#define P11_MAX_GUARDS 16

typedef struct search_guard {
    CK_FUNCTION_LIST list; /* what the core calls: `real` but for the two below */
    CK_FUNCTION_LIST *real;
    pthread_rwlock_t lock;
    /* C_Initialize and C_Finalize of this instance, one at a time: per
     * instance, since they are the calls that hang when an HSM is gone */
    pthread_mutex_t init_lock;
    int users;
} search_guard;

static pthread_mutex_t guards_lock = PTHREAD_MUTEX_INITIALIZER;
static search_guard guards[P11_MAX_GUARDS];

static CK_RV guarded_find_init(search_guard *g, CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR tmpl,
                               CK_ULONG n)
{
    CK_RV rv;

    pthread_rwlock_rdlock(&g->lock);
    rv = g->real->C_FindObjectsInit(s, tmpl, n);
    pthread_rwlock_unlock(&g->lock);
    return rv;
}

static CK_RV guarded_copy(search_guard *g, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj,
                          CK_ATTRIBUTE_PTR tmpl, CK_ULONG n, CK_OBJECT_HANDLE_PTR out)
{
    CK_RV rv;

    pthread_rwlock_wrlock(&g->lock);
    rv = g->real->C_CopyObject(s, obj, tmpl, n, out);
    pthread_rwlock_unlock(&g->lock);
    return rv;
}

/* A function list entry knows its guard by its slot only. */
#define GUARD_ENTRIES(k)                                                                    \
    static CK_RV find_init_##k(CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR t, CK_ULONG n)         \
    {                                                                                       \
        return guarded_find_init(&guards[k], s, t, n);                                      \
    }                                                                                       \
    static CK_RV copy_##k(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t,      \
                          CK_ULONG n, CK_OBJECT_HANDLE_PTR out)                             \
    {                                                                                       \
        return guarded_copy(&guards[k], s, o, t, n, out);                                   \
    }
GUARD_ENTRIES(0) GUARD_ENTRIES(1) GUARD_ENTRIES(2) GUARD_ENTRIES(3)
GUARD_ENTRIES(4) GUARD_ENTRIES(5) GUARD_ENTRIES(6) GUARD_ENTRIES(7)
GUARD_ENTRIES(8) GUARD_ENTRIES(9) GUARD_ENTRIES(10) GUARD_ENTRIES(11)
GUARD_ENTRIES(12) GUARD_ENTRIES(13) GUARD_ENTRIES(14) GUARD_ENTRIES(15)

#define GUARD_SLOT(k) {find_init_##k, copy_##k}
static const struct {
    CK_C_FindObjectsInit find_init;
    CK_C_CopyObject copy;
} guard_entries[P11_MAX_GUARDS] = {
    GUARD_SLOT(0),  GUARD_SLOT(1),  GUARD_SLOT(2),  GUARD_SLOT(3),
    GUARD_SLOT(4),  GUARD_SLOT(5),  GUARD_SLOT(6),  GUARD_SLOT(7),
    GUARD_SLOT(8),  GUARD_SLOT(9),  GUARD_SLOT(10), GUARD_SLOT(11),
    GUARD_SLOT(12), GUARD_SLOT(13), GUARD_SLOT(14), GUARD_SLOT(15),
};

/* The guarded list for `real` (shared by the instances that have it), or
 * `real` itself when every slot is taken (more modules than the registry
 * holds: cannot happen). */
static CK_FUNCTION_LIST *guard_acquire(CK_FUNCTION_LIST *real)
{
    search_guard *g = NULL;
    size_t i;

    pthread_mutex_lock(&guards_lock);
    for (i = 0; i < P11_MAX_GUARDS && g == NULL; i++)
        if (guards[i].users > 0 && guards[i].real == real)
            g = &guards[i];
    for (i = 0; i < P11_MAX_GUARDS && g == NULL; i++)
        if (guards[i].users == 0) {
            g = &guards[i];
            g->real = real;
            g->list = *real; /* the 2.x layout: the core calls nothing newer */
            g->list.C_FindObjectsInit = guard_entries[i].find_init;
            g->list.C_CopyObject = guard_entries[i].copy;
            pthread_rwlock_init(&g->lock, NULL);
            pthread_mutex_init(&g->init_lock, NULL);
        }
    if (g)
        g->users++;
    pthread_mutex_unlock(&guards_lock);
    return g ? &g->list : real;
}

static search_guard *guard_of(CK_FUNCTION_LIST *fl)
{
    size_t i;

    for (i = 0; i < P11_MAX_GUARDS; i++)
        if (fl == &guards[i].list)
            return &guards[i];
    return NULL;
}

static void guard_release(CK_FUNCTION_LIST *fl)
{
    search_guard *g = guard_of(fl);

    pthread_mutex_lock(&guards_lock);
    if (g && --g->users == 0) {
        pthread_rwlock_destroy(&g->lock);
        pthread_mutex_destroy(&g->init_lock);
    }
    pthread_mutex_unlock(&guards_lock);
}

/* Used only where no guard could be had (cannot happen: as many guards as
 * registry entries). */
static pthread_mutex_t unguarded_init_lock = PTHREAD_MUTEX_INITIALIZER;

static pthread_mutex_t *instance_init_lock(const p11_module *mod)
{
    search_guard *g = guard_of(mod->fl);
    return g ? &g->init_lock : &unguarded_init_lock;
}

static p11_status module_not_found(const char *path)
{
    return p11_error_set(P11_ERR_MODULE, CKR_OK,
                         "PKCS#11 module %s does not exist; install the HSM client library or "
                         "point pkcs11-module-path (or %s) at the module",
                         path, PRIMUS_MODULE_ENV);
}

/* ---- a module's own environment ----
 * p11-kit's client binds each function list to the server address in the
 * environment at C_GetFunctionList time, and modules read their
 * configuration from it at C_Initialize.  A member's environment is set
 * around those calls only, under one lock (setenv is not thread-safe, and
 * these calls are rare: load and re-initialization), and not around the
 * C_Initialize of an instance that took it at load (p11_module_load). */
static pthread_mutex_t env_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct saved_env {
    char *name;
    char *old; /* NULL: was unset */
} saved_env;

static size_t env_apply(char *const *env, saved_env *saved, size_t max)
{
    size_t n = 0;

    for (; env && *env && n < max; env++) {
        const char *eq = strchr(*env, '=');
        const char *old;
        if (eq == NULL)
            continue;
        saved[n].name = strndup(*env, (size_t)(eq - *env));
        if (saved[n].name == NULL)
            continue;
        old = getenv(saved[n].name);
        saved[n].old = old ? p11_strdup(old) : NULL;
        setenv(saved[n].name, eq + 1, 1);
        n++;
    }
    return n;
}

static void env_restore(saved_env *saved, size_t n)
{
    while (n-- > 0) {
        if (saved[n].old)
            setenv(saved[n].name, saved[n].old, 1);
        else
            unsetenv(saved[n].name);
        free(saved[n].name);
        free(saved[n].old);
    }
}

static char *env_key(char *const *env)
{
    size_t len = 1;
    char *const *e;
    char *key;

    for (e = env; e && *e; e++)
        len += strlen(*e) + 1;
    key = malloc(len);
    if (key == NULL)
        return NULL;
    key[0] = '\0';
    for (e = env; e && *e; e++) {
        strcat(key, *e);
        strcat(key, "\n");
    }
    return key;
}

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static p11_module *registry[16];
static size_t n_registry;

static p11_status module_open(const char *path, const char *init_args, char *const *env,
                              p11_module **out);
static p11_status module_bind(const char *path, const char *init_args, p11_module **out);

static int same_text(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

p11_status p11_module_load(const char *path, const char *init_args, char *const *env,
                           p11_module **out)
{
    p11_status st = P11_OK;
    char *key = env_key(env);
    size_t i;

    if (key == NULL)
        return p11_error_set(P11_ERR_MEMORY, CKR_HOST_MEMORY, "out of memory");
    pthread_mutex_lock(&registry_lock);
    for (i = 0; i < n_registry; i++)
        if (strcmp(registry[i]->path, path) == 0 && strcmp(registry[i]->env_key, key) == 0 &&
            same_text(registry[i]->init_args, init_args)) {
            registry[i]->refs++;
            *out = registry[i];
            pthread_mutex_unlock(&registry_lock);
            free(key);
            return P11_OK;
        }
    if (n_registry == sizeof(registry) / sizeof(registry[0]))
        st = p11_error_set(P11_ERR_CONFIG, CKR_OK, "too many PKCS#11 modules in one process");
    else if ((st = module_open(path, init_args, env, out)) == P11_OK) {
        (*out)->env_key = key;
        key = NULL;
        /* The same library with another environment, and another function
         * list: it makes an instance per C_GetFunctionList (p11-kit's
         * client, bound there to its server address), so its environment
         * was taken at load. */
        for (i = 0; i < n_registry; i++)
            if (strcmp(registry[i]->path, path) == 0 && registry[i]->fl != (*out)->fl) {
                atomic_store(&registry[i]->env_taken_at_load, 1);
                atomic_store(&(*out)->env_taken_at_load, 1);
            }
        registry[n_registry++] = *out;
    }
    pthread_mutex_unlock(&registry_lock);
    free(key);
    return st;
}

static p11_status module_open(const char *path, const char *init_args, char *const *env,
                              p11_module **out)
{
    saved_env saved[16];
    size_t n_saved;
    p11_status st;
    char **env_copy = NULL;
    size_t n_env = 0, i;

    for (; env && env[n_env]; n_env++)
        ;
    if (n_env) {
        env_copy = calloc(n_env + 1, sizeof(*env_copy));
        if (env_copy == NULL)
            return p11_error_set(P11_ERR_MEMORY, CKR_HOST_MEMORY, "out of memory");
        for (i = 0; i < n_env; i++)
            if ((env_copy[i] = p11_strdup(env[i])) == NULL) {
                while (i-- > 0)
                    free(env_copy[i]);
                free(env_copy);
                return p11_error_set(P11_ERR_MEMORY, CKR_HOST_MEMORY, "out of memory");
            }
    }
    pthread_mutex_lock(&env_lock);
    n_saved = env_apply(env, saved, 16);
    st = module_bind(path, init_args, out);
    env_restore(saved, n_saved);
    pthread_mutex_unlock(&env_lock);
    if (st == P11_OK)
        (*out)->env = env_copy;
    else if (env_copy) {
        for (i = 0; i < n_env; i++)
            free(env_copy[i]);
        free(env_copy);
    }
    return st;
}

static p11_status module_bind(const char *path, const char *init_args, p11_module **out)
{
    struct stat st;
    p11_module *mod;
    void *dl;
    CK_C_GetFunctionList get_list;
    p11_get_interface_fn get_interface;
    CK_FUNCTION_LIST *fl = NULL;
    CK_RV rv;

    *out = NULL;
    if (stat(path, &st) != 0)
        return module_not_found(path);
    if (!S_ISREG(st.st_mode))
        return p11_error_set(P11_ERR_MODULE, CKR_OK,
                             "PKCS#11 module %s is not a file; point pkcs11-module-path at the "
                             "module's .so",
                             path);
    dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL)
        return p11_error_set(P11_ERR_MODULE, CKR_OK,
                             "%s is not a loadable shared library (%s); point "
                             "pkcs11-module-path at the HSM's PKCS#11 module",
                             path, dlerror());

    get_interface = (p11_get_interface_fn)dlsym(dl, "C_GetInterface");
    if (get_interface) {
        p11_ck_interface *iface = NULL;
        CK_VERSION v3 = {3, 0};
        rv = get_interface((CK_UTF8CHAR *)"PKCS 11", &v3, &iface, 0);
        if (rv != CKR_OK || iface == NULL)
            rv = get_interface((CK_UTF8CHAR *)"PKCS 11", NULL, &iface, 0);
        if (rv == CKR_OK && iface && iface->function_list)
            fl = iface->function_list; /* a 3.0 list starts with the 2.x layout */
    }
    if (fl == NULL) {
        get_list = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
        if (get_list == NULL) {
            dlclose(dl);
            return p11_error_set(P11_ERR_MODULE, CKR_OK,
                                 "%s is a shared library but not a PKCS#11 module (it has no "
                                 "C_GetFunctionList); point pkcs11-module-path at the HSM's "
                                 "PKCS#11 module",
                                 path);
        }
        rv = get_list(&fl);
        if (rv != CKR_OK || fl == NULL) {
            dlclose(dl);
            return p11_error_set_rv(P11_ERR_MODULE, rv, "C_GetFunctionList of %s failed", path);
        }
    }
    mod = calloc(1, sizeof(*mod));
    if (mod == NULL || (mod->path = p11_strdup(path)) == NULL ||
        (init_args && (mod->init_args = p11_strdup(init_args)) == NULL)) {
        if (mod)
            free(mod->path);
        free(mod);
        dlclose(dl);
        return p11_error_set(P11_ERR_MEMORY, CKR_HOST_MEMORY, "out of memory");
    }
    mod->dl = dl;
    mod->fl = guard_acquire(fl);
    mod->refs = 1;
    *out = mod;
    return P11_OK;
}

static CK_RV module_call_initialize(p11_module *mod, CK_C_INITIALIZE_ARGS *args)
{
    saved_env saved[16];
    size_t n_saved;
    CK_RV rv;

    /* The environment is process-wide, so applying it means holding
     * env_lock for the whole call.  An instance that took its environment
     * at C_GetFunctionList needs none here, and must not hold that lock
     * while it may hang in a connect. */
    if (mod->env == NULL || atomic_load(&mod->env_taken_at_load))
        return mod->fl->C_Initialize(args);
    pthread_mutex_lock(&env_lock);
    n_saved = env_apply(mod->env, saved, 16);
    rv = mod->fl->C_Initialize(args);
    env_restore(saved, n_saved);
    pthread_mutex_unlock(&env_lock);
    return rv;
}

static p11_status module_initialize_locked(p11_module *mod);

p11_status p11_module_initialize(p11_module *mod)
{
    p11_status st;

    if (mod->initialized && mod->fork_gen == p11_fork_generation())
        return P11_OK;
    pthread_mutex_lock(instance_init_lock(mod));
    st = module_initialize_locked(mod);
    pthread_mutex_unlock(instance_init_lock(mod));
    return st;
}

static p11_status module_initialize_locked(p11_module *mod)
{
    CK_C_INITIALIZE_ARGS args;
    unsigned long gen = p11_fork_generation();
    int forked_child = mod->initialized; /* initialized, but by the parent */
    CK_RV rv;

    if (mod->initialized && mod->fork_gen == gen)
        return P11_OK;
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    args.pReserved = mod->init_args;
    rv = module_call_initialize(mod, &args);
    if (forked_child && rv == CKR_CRYPTOKI_ALREADY_INITIALIZED && mod->owns_init) {
        /* Modules that notice the fork (p11-kit) initialize afresh above.
         * An in-process module that does not (SoftHSM) keeps its copy of the
         * parent's state: the core never reuses the parent's sessions or
         * handles, and logs in again.  Finalizing and re-initializing it in
         * every worker made dozens of processes re-read the token store at
         * once, and some came up without the token (CKR_SLOT_ID_INVALID). */
        rv = CKR_OK;
    }
    mod->initialized = 0;
    if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        mod->owns_init = 0; /* someone else in the process owns it; never finalize it */
    } else if (rv != CKR_OK) {
        return p11_error_set_rv(P11_ERR_MODULE, rv, "C_Initialize of PKCS#11 module %s failed",
                                mod->path);
    } else {
        mod->owns_init = 1;
        /* once: a re-initialization registers no new module destructors */
        if (!mod->exit_guarded) {
            p11_exit_guard_register(mod);
            mod->exit_guarded = 1;
        }
    }
    rv = mod->fl->C_GetInfo(&mod->info);
    if (rv != CKR_OK)
        memset(&mod->info, 0, sizeof(mod->info));
    mod->initialized = 1;
    mod->fork_gen = gen;
    return P11_OK;
}

void p11_module_release(p11_module *mod, int no_deinit)
{
    size_t i;

    pthread_mutex_lock(&registry_lock);
    if (--mod->refs > 0) {
        pthread_mutex_unlock(&registry_lock);
        return;
    }
    for (i = 0; i < n_registry; i++)
        if (registry[i] == mod) {
            registry[i] = registry[--n_registry];
            break;
        }
    pthread_mutex_unlock(&registry_lock);
    if (atomic_load(&mod->left_in_use)) {
        /* A worker hangs in a call to it (and may hold its init lock): it
         * is neither finalized nor freed under that call; the next load of
         * this library makes a new instance. */
        p11_exit_guard_forget(mod);
        return;
    }
    pthread_mutex_lock(instance_init_lock(mod));
    if (!no_deinit && mod->initialized && mod->owns_init &&
        mod->fork_gen == p11_fork_generation() && !p11_process_exiting())
        mod->fl->C_Finalize(NULL);
    mod->initialized = 0;
    pthread_mutex_unlock(instance_init_lock(mod));
    p11_exit_guard_forget(mod);
    guard_release(mod->fl);
    /* The library is never dlclose()d: modules register exit-time
     * destructors and threads of their own that must not lose their code. */
    free(mod->path);
    free(mod->init_args);
    free(mod->env_key);
    if (mod->env) {
        char **e;
        for (e = mod->env; *e; e++)
            free(*e);
        free(mod->env);
    }
    free(mod);
}

p11_status p11_module_reinitialize(p11_module *mod)
{
    p11_status st;

    pthread_mutex_lock(instance_init_lock(mod));
    if (mod->initialized && mod->owns_init && mod->fork_gen == p11_fork_generation())
        mod->fl->C_Finalize(NULL);
    mod->initialized = 0;
    st = module_initialize_locked(mod);
    if (st == P11_OK && !mod->owns_init) {
        /* "Already initialized" here means an earlier C_Initialize that
         * failed (node down) left the instance half started (p11-kit):
         * finalize it too, or the member never comes back. */
        mod->fl->C_Finalize(NULL);
        mod->initialized = 0;
        st = module_initialize_locked(mod);
    }
    pthread_mutex_unlock(instance_init_lock(mod));
    return st;
}

/* In a forked child (pthread_atfork, before anything else runs there): a
 * thread of the parent that held one of these locks at the fork, say a
 * probe hung in C_Initialize, does not exist here and would hold it
 * forever. */
void p11_module_after_fork_child(void)
{
    size_t i;

    pthread_mutex_init(&env_lock, NULL);
    pthread_mutex_init(&registry_lock, NULL);
    pthread_mutex_init(&guards_lock, NULL);
    pthread_mutex_init(&unguarded_init_lock, NULL);
    for (i = 0; i < P11_MAX_GUARDS; i++)
        if (guards[i].users > 0) {
            pthread_rwlock_init(&guards[i].lock, NULL);
            pthread_mutex_init(&guards[i].init_lock, NULL);
        }
}
