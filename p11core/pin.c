/* PIN sources.  A PIN lives in memory only as long as needed and is wiped
 * with a write the compiler may not drop; it is never logged. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define P11_PIN_MAX 256

void p11_wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

void p11_pin_free(char *pin)
{
    if (pin) {
        p11_wipe(pin, strlen(pin));
        free(pin);
    }
}

static p11_status pin_read_file(const char *path, char **pin)
{
    struct stat st;
    char buf[P11_PIN_MAX + 2];
    ssize_t n;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ELOOP)
        fd = open(path, O_RDONLY | O_CLOEXEC); /* a symlink is fine; its target is checked below */
    if (fd < 0)
        return p11_error_set(P11_ERR_PIN, CKR_OK,
                             "cannot read pin file %s: %s; create it with the PIN as its only "
                             "content and mode 0600",
                             path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return p11_error_set(P11_ERR_PIN, CKR_OK, "pin file %s is not a regular file", path);
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        close(fd);
        return p11_error_set(P11_ERR_PIN, CKR_OK,
                             "pin file %s is readable by other users (mode %03o); refusing to use "
                             "it: run chmod 600 %s",
                             path, (unsigned)(st.st_mode & 0777), path);
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 0)
        return p11_error_set(P11_ERR_PIN, CKR_OK, "cannot read pin file %s: %s", path,
                             strerror(errno));
    if (n > P11_PIN_MAX) {
        p11_wipe(buf, sizeof(buf));
        return p11_error_set(P11_ERR_PIN, CKR_OK, "pin file %s is longer than %d bytes; it must "
                             "hold only the PIN", path, P11_PIN_MAX);
    }
    /* One trailing newline (as editors and echo write it) is not part of the PIN. */
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    if (n == 0)
        return p11_error_set(P11_ERR_PIN, CKR_OK,
                             "pin file %s is empty; write the partition's PIN into it", path);
    *pin = p11_strdup(buf);
    p11_wipe(buf, sizeof(buf));
    return *pin ? P11_OK : p11_error_set(P11_ERR_MEMORY, CKR_HOST_MEMORY, "out of memory");
}

p11_status p11_pin_resolve(const char *spec, char **pin)
{
    *pin = NULL;
    if (spec == NULL)
        return P11_OK;
    if (strncmp(spec, "file:", 5) == 0) {
        const char *path = spec + 5;
        /* file:///abs/path and file:/abs/path both name a local file. */
        if (strncmp(path, "//", 2) == 0)
            path += 2;
        if (*path == '\0')
            return p11_error_set(P11_ERR_PIN, CKR_OK, "pin source \"file:\" names no file");
        return pin_read_file(path, pin);
    }
    if (spec[0] == '/')
        return pin_read_file(spec, pin);
    if (spec[0] == '\0')
        return p11_error_set(P11_ERR_PIN, CKR_OK,
                             "the configured PIN is empty; give the partition's PIN or a "
                             "file:/path holding it");
    *pin = p11_strdup(spec);
    return *pin ? P11_OK : p11_error_set(P11_ERR_MEMORY, CKR_HOST_MEMORY, "out of memory");
}

p11_status p11_pin_from_uri(const p11_uri *uri, char **pin)
{
    const char *v;
    size_t len;

    *pin = NULL;
    if (uri == NULL)
        return P11_OK;
    v = p11_uri_get(uri, P11_URI_PIN_VALUE, &len);
    if (v) {
        if (len == 0)
            return p11_error_set(P11_ERR_PIN, CKR_OK,
                                 "the URI's pin-value is empty; give the PIN or use pin-source");
        *pin = p11_strdup(v);
        return *pin ? P11_OK : p11_error_set(P11_ERR_MEMORY, CKR_HOST_MEMORY, "out of memory");
    }
    v = p11_uri_get(uri, P11_URI_PIN_SOURCE, &len);
    if (v) {
        if (strncmp(v, "file:", 5) != 0 && v[0] != '/')
            return p11_error_set(P11_ERR_PIN, CKR_OK,
                                 "pin-source \"%s\" is not supported; use file:/path/to/pinfile",
                                 v);
        return p11_pin_resolve(v, pin);
    }
    return P11_OK;
}
