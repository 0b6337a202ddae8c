/* Small helpers shared by the rooms of p11core. */
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "internal.h"

char *p11_strdup(const char *s)
{
    size_t n;
    char *d;

    if (s == NULL)
        return NULL;
    n = strlen(s) + 1;
    d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

void p11_field_copy(char *dst, size_t dst_size, const CK_UTF8CHAR *src, size_t src_len)
{
    size_t n = src_len < dst_size - 1 ? src_len : dst_size - 1;

    memcpy(dst, src, n);
    /* PKCS#11 pads fixed fields with blanks; some modules pad with NULs. */
    while (n > 0 && (dst[n - 1] == ' ' || dst[n - 1] == '\0'))
        n--;
    dst[n] = '\0';
}

unsigned long long p11_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

/*
 * The application's signals are the application's: a thread of ours that
 * could take one would steal it from the thread that waits for it.  An
 * nginx master loads keys (so our threads start) before it blocks its
 * signals and waits in sigsuspend; a SIGCHLD or SIGQUIT the kernel then
 * hands to one of our threads runs nginx's handler there, sigsuspend never
 * returns, and the master never stops.  Blocking all of them also keeps
 * SIGPIPE off the gate workers (p11-kit's client writes to dead sockets
 * without MSG_NOSIGNAL).  The new thread inherits the mask at creation.
 */
int p11_thread_start(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    int rc;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(t, attr, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}
