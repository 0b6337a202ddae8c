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

p11_status p11_secret_file_read(const char *path, const char *what, const char *fill_hint,
                                size_t max, int is_text, p11_status st, unsigned char **out,
                                size_t *out_len)
{
    struct stat sb;
    unsigned char *buf;
    ssize_t n;
    int fd;

    *out = NULL;
    *out_len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ELOOP)
        fd = open(path, O_RDONLY | O_CLOEXEC); /* a symlink is fine; its target is checked below */
    if (fd < 0)
        return p11_error_set(st, CKR_OK,
                             "cannot read %s %s: %s; create it with %s as its only "
                             "content and mode 0600",
                             what, path, strerror(errno), fill_hint);
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return p11_error_set(st, CKR_OK, "%s %s is not a regular file", what, path);
    }
    if (sb.st_mode & (S_IRWXG | S_IRWXO)) {
        close(fd);
        return p11_error_set(st, CKR_OK,
                             "%s %s is readable by other users (mode %03o); refusing to use "
                             "it: run chmod 600 %s",
                             what, path, (unsigned)(sb.st_mode & 0777), path);
    }
    buf = malloc(max + 2);
    if (buf == NULL) {
        close(fd);
        return p11_error_set(P11_ERR_MEMORY, CKR_HOST_MEMORY, "out of memory");
    }
    n = read(fd, buf, max + 1);
    close(fd);
    if (n < 0) {
        free(buf);
        return p11_error_set(st, CKR_OK, "cannot read %s %s: %s", what, path, strerror(errno));
    }
    if ((size_t)n > max) {
        p11_wipe(buf, max + 2);
        free(buf);
        return p11_error_set(st, CKR_OK, "%s %s is longer than %zu bytes; it must hold only %s",
                             what, path, max, fill_hint);
    }
    /* A text secret (a PIN) may end with the line break editors and echo
     * write ("\n" or "\r\n"); it is not part of it.  A binary secret (a
     * key) is the file's bytes exactly. */
    if (is_text && n > 0 && buf[n - 1] == '\n')
        n--;
    if (is_text && n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    if (n == 0) {
        free(buf);
        return p11_error_set(st, CKR_OK, "%s %s is empty; write %s into it", what, path,
                             fill_hint);
    }
    *out = buf;
    *out_len = (size_t)n;
    return P11_OK;
}

static p11_status pin_read_file(const char *path, char **pin)
{
    unsigned char *buf;
    size_t len;
    p11_status st = p11_secret_file_read(path, "pin file", "the partition's PIN", P11_PIN_MAX,
                                         1, P11_ERR_PIN, &buf, &len);

    *pin = (char *)buf;
    return st;
}

p11_status p11_pin_resolve(const char *spec, char **pin)
{
    *pin = NULL;
    if (spec == NULL)
        return P11_OK;
    if (strncmp(spec, "file:", 5) == 0) {
        const char *path = spec + 5;
        /* file:///abs/path, file://localhost/abs/path and file:/abs/path
         * all name a local file (RFC 8089); another host is refused. */
        if (strncmp(path, "//", 2) == 0) {
            const char *host = path + 2, *slash = strchr(host, '/');
            size_t host_len = slash ? (size_t)(slash - host) : strlen(host);
            if (host_len != 0 && !(host_len == 9 && strncmp(host, "localhost", 9) == 0))
                return p11_error_set(P11_ERR_PIN, CKR_OK,
                                     "pin source \"%s\" names a file on host \"%.*s\"; only "
                                     "local pin files are read: use file:/path/to/pinfile",
                                     spec, (int)host_len, host);
            path = host + host_len;
        }
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
