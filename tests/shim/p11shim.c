/*
 * p11shim: a PKCS#11 module that forwards every call to a real module (the
 * SoftHSM token of the test), counts calls, and injects faults.  Tests use
 * it to see what the core sends to the token and to provoke return codes a
 * real token gives rarely (a device error, an invalidated handle).
 *
 * Environment (read at C_GetFunctionList):
 *   P11SHIM_TARGET  the real module (default: SoftHSM2)
 *   P11SHIM_LOG     a file; every call's function name is appended as a line
 *   P11SHIM_FAIL    "C_Sign=0x30*2,C_Login=0xa0": make the next 2 C_Sign calls
 *                   return 0x30 (CKR_DEVICE_ERROR), every C_Login 0xa0 (*N absent: always)
 * In-process tests may also call p11shim_fail(), p11shim_delay() and p11shim_calls()
 * via dlsym.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#define SHIM_EXPORT __attribute__((visibility("default")))

enum { F_Login, F_OpenSession, F_FindObjectsInit, F_SignInit, F_Sign, F_DecryptInit, F_Decrypt,
       F_GenerateKeyPair, F_Initialize, F_Finalize, F_GetSlotList, F_CopyObject, F_GetMechanismList, F_COUNT };
static const char *const names[F_COUNT] = {
    "C_Login", "C_OpenSession", "C_FindObjectsInit", "C_SignInit", "C_Sign", "C_DecryptInit",
    "C_Decrypt", "C_GenerateKeyPair", "C_Initialize", "C_Finalize", "C_GetSlotList",
    "C_CopyObject", "C_GetMechanismList"};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static CK_FUNCTION_LIST shim, *real;
static unsigned long calls[F_COUNT];
static CK_RV fail_rv[F_COUNT];
static long fail_left[F_COUNT]; /* -1: always */
static unsigned delay_ms[F_COUNT];
static FILE *log_file;

static int index_of(const char *fn)
{
    int i;
    for (i = 0; i < F_COUNT; i++)
        if (strcmp(names[i], fn) == 0)
            return i;
    return -1;
}

SHIM_EXPORT void p11shim_fail(const char *fn, CK_RV rv, long times)
{
    int i = index_of(fn);
    if (i < 0)
        return;
    pthread_mutex_lock(&lock);
    fail_rv[i] = rv;
    fail_left[i] = times;
    pthread_mutex_unlock(&lock);
}

/* Make every later call of fn take ms longer (0: no delay), as a slow or
 * distant HSM does: widens the windows that races need. */
SHIM_EXPORT void p11shim_delay(const char *fn, unsigned ms)
{
    int i = index_of(fn);
    if (i < 0)
        return;
    pthread_mutex_lock(&lock);
    delay_ms[i] = ms;
    pthread_mutex_unlock(&lock);
}

SHIM_EXPORT unsigned long p11shim_calls(const char *fn)
{
    int i = index_of(fn);
    unsigned long n;
    if (i < 0)
        return 0;
    pthread_mutex_lock(&lock);
    n = calls[i];
    pthread_mutex_unlock(&lock);
    return n;
}

/* Count the call; return the injected code, or CKR_OK to forward. */
static CK_RV enter(int i)
{
    CK_RV rv = CKR_OK;
    unsigned delay;

    pthread_mutex_lock(&lock);
    calls[i]++;
    if (log_file) {
        fprintf(log_file, "%s\n", names[i]);
        fflush(log_file);
    }
    if (fail_left[i] != 0) {
        rv = fail_rv[i];
        if (fail_left[i] > 0)
            fail_left[i]--;
    }
    delay = delay_ms[i];
    pthread_mutex_unlock(&lock);
    if (delay)
        usleep(delay * 1000u);
    return rv;
}

#define SHIM(name, params, args)                         \
    static CK_RV shim_##name params                      \
    {                                                    \
        CK_RV rv = enter(F_##name);                      \
        return rv != CKR_OK ? rv : real->C_##name args;  \
    }

SHIM(Initialize, (void *a), (a))
SHIM(Finalize, (void *a), (a))
SHIM(GetSlotList, (CK_BBOOL p, CK_SLOT_ID *l, CK_ULONG *n), (p, l, n))
SHIM(Login, (CK_SESSION_HANDLE s, CK_USER_TYPE u, CK_UTF8CHAR *p, CK_ULONG l), (s, u, p, l))
SHIM(OpenSession, (CK_SLOT_ID id, CK_FLAGS f, void *a, CK_NOTIFY n, CK_SESSION_HANDLE *s),
     (id, f, a, n, s))
SHIM(FindObjectsInit, (CK_SESSION_HANDLE s, CK_ATTRIBUTE *t, CK_ULONG n), (s, t, n))
SHIM(SignInit, (CK_SESSION_HANDLE s, CK_MECHANISM *m, CK_OBJECT_HANDLE k), (s, m, k))
SHIM(Sign, (CK_SESSION_HANDLE s, CK_BYTE *d, CK_ULONG dl, CK_BYTE *o, CK_ULONG *ol),
     (s, d, dl, o, ol))
SHIM(DecryptInit, (CK_SESSION_HANDLE s, CK_MECHANISM *m, CK_OBJECT_HANDLE k), (s, m, k))
SHIM(Decrypt, (CK_SESSION_HANDLE s, CK_BYTE *d, CK_ULONG dl, CK_BYTE *o, CK_ULONG *ol),
     (s, d, dl, o, ol))
SHIM(CopyObject, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE *t, CK_ULONG n,
                  CK_OBJECT_HANDLE *c), (s, o, t, n, c))
SHIM(GetMechanismList, (CK_SLOT_ID id, CK_MECHANISM_TYPE *l, CK_ULONG *n), (id, l, n))
SHIM(GenerateKeyPair, (CK_SESSION_HANDLE s, CK_MECHANISM *m, CK_ATTRIBUTE *pt, CK_ULONG pn,
                       CK_ATTRIBUTE *kt, CK_ULONG kn, CK_OBJECT_HANDLE *ph, CK_OBJECT_HANDLE *kh),
     (s, m, pt, pn, kt, kn, ph, kh))

static void parse_fail_spec(const char *spec)
{
    char *copy = strdup(spec), *save = NULL, *item;

    for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '='), *star;
        long times = -1;
        if (eq == NULL)
            continue;
        *eq = '\0';
        star = strchr(eq + 1, '*');
        if (star)
            times = strtol(star + 1, NULL, 10);
        p11shim_fail(item, strtoul(eq + 1, NULL, 0), times);
    }
    free(copy);
}

SHIM_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST **list)
{
    const char *target = getenv("P11SHIM_TARGET");
    CK_C_GetFunctionList get;
    void *dl;

    if (real == NULL) {
        dl = dlopen(target ? target : "/usr/lib/softhsm/libsofthsm2.so", RTLD_NOW | RTLD_LOCAL);
        if (dl == NULL || (get = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList")) == NULL ||
            get(&real) != CKR_OK)
            return CKR_GENERAL_ERROR;
        shim = *real;
        shim.C_Initialize = shim_Initialize;
        shim.C_Finalize = shim_Finalize;
        shim.C_GetSlotList = shim_GetSlotList;
        shim.C_Login = shim_Login;
        shim.C_OpenSession = shim_OpenSession;
        shim.C_FindObjectsInit = shim_FindObjectsInit;
        shim.C_SignInit = shim_SignInit;
        shim.C_Sign = shim_Sign;
        shim.C_DecryptInit = shim_DecryptInit;
        shim.C_Decrypt = shim_Decrypt;
        shim.C_GenerateKeyPair = shim_GenerateKeyPair;
        shim.C_CopyObject = shim_CopyObject;
        shim.C_GetMechanismList = shim_GetMechanismList;
        if (getenv("P11SHIM_LOG"))
            log_file = fopen(getenv("P11SHIM_LOG"), "a");
        if (getenv("P11SHIM_FAIL"))
            parse_fail_spec(getenv("P11SHIM_FAIL"));
    }
    *list = &shim;
    return CKR_OK;
}
