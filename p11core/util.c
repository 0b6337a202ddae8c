/* Small helpers shared by the rooms of p11core. */
#include <stdlib.h>
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
