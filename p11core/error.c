/* The calling thread's last error: a status, the PKCS#11 code behind it,
 * and a sentence naming the cause and the fix.  Per thread, so that
 * concurrent operations never see each other's messages. */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "rv.h"

#define P11_ERROR_MAX 1536

static _Thread_local struct {
    p11_status status;
    CK_RV rv;
    char message[P11_ERROR_MAX];
} last_error;

static p11_status error_vset(p11_status st, CK_RV rv, int with_rv, const char *fmt, va_list ap)
{
    int n;

    last_error.status = st;
    last_error.rv = rv;
    n = vsnprintf(last_error.message, sizeof(last_error.message), fmt, ap);
    if (n < 0)
        n = 0;
    if (with_rv && (size_t)n < sizeof(last_error.message)) {
        const char *advice = p11_rv_advice(rv);
        snprintf(last_error.message + n, sizeof(last_error.message) - (size_t)n, " (%s%s%s)",
                 p11_rv_name(rv), advice[0] ? ": " : "", advice);
    }
    return st;
}

p11_status p11_error_set(p11_status st, CK_RV rv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vset(st, rv, 0, fmt, ap);
    va_end(ap);
    return st;
}

p11_status p11_error_set_rv(p11_status st, CK_RV rv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vset(st, rv, 1, fmt, ap);
    va_end(ap);
    return st;
}

p11_status p11_error_status(void) { return last_error.status; }
CK_RV p11_error_rv(void) { return last_error.rv; }
const char *p11_error_message(void) { return last_error.message; }

void p11_error_clear(void)
{
    last_error.status = P11_OK;
    last_error.rv = CKR_OK;
    last_error.message[0] = '\0';
}

const char *p11_status_name(p11_status st)
{
    static const char *const names[] = {
        [P11_OK] = "ok",
        [P11_ERR_CONFIG] = "configuration error",
        [P11_ERR_URI] = "malformed URI",
        [P11_ERR_MODULE] = "PKCS#11 module error",
        [P11_ERR_NO_TOKEN] = "no such token",
        [P11_ERR_PIN] = "PIN error",
        [P11_ERR_NOT_FOUND] = "no such object",
        [P11_ERR_AMBIGUOUS] = "ambiguous URI",
        [P11_ERR_MECHANISM] = "mechanism not available",
        [P11_ERR_UNAVAILABLE] = "partition unavailable",
        [P11_ERR_OPERATION] = "operation refused",
        [P11_ERR_BUFFER] = "buffer too small",
        [P11_ERR_AUDIT] = "audit log error",
        [P11_ERR_MEMORY] = "out of memory",
        [P11_ERR_INTERNAL] = "internal error",
    };
    if ((unsigned)st < sizeof(names) / sizeof(names[0]) && names[st])
        return names[st];
    return "unknown error";
}
