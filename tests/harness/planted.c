/* planted: a program with one deliberate defect, chosen by its argument, to
 * prove that the checkers CI relies on (valgrind with our flags and
 * suppressions, ASan + UBSan) turn such a defect into a failure:
 *
 *   planted clean      no defect: every checker must let it pass
 *   planted leak       a heap block whose only pointer is dropped
 *   planted overflow   a write one byte past a heap block
 *   planted ub         a signed integer overflow (UBSan only)
 *
 * volatile keeps the compiler from proving the defects away at -O1 and
 * above. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *volatile sink;

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";

    if (strcmp(what, "clean") == 0) {
        char *p = malloc(16);
        if (p == NULL)
            return 2;
        memset(p, 'x', 16);
        sink = p;
        free(p);
        return 0;
    }
    if (strcmp(what, "leak") == 0) {
        char *p = malloc(40);
        if (p == NULL)
            return 2;
        memset(p, 'x', 40);
        sink = p;
        sink = NULL; /* the last pointer to the block is gone: a definite leak */
        return 0;
    }
    if (strcmp(what, "overflow") == 0) {
        volatile size_t n = 16;
        char *p = malloc(n);
        if (p == NULL)
            return 2;
        p[n] = 'x'; /* one past the end */
        sink = p;
        free(p);
        return 0;
    }
    if (strcmp(what, "ub") == 0) {
        volatile int big = INT_MAX, one = 1;
        int sum = big + one; /* signed overflow */
        printf("%d\n", sum);
        return 0;
    }
    fprintf(stderr, "usage: planted clean|leak|overflow|ub\n");
    return 2;
}
