/* The audit log's integrity: how one record line is chained to the one
 * before it and authenticated.  The writer (audit.c) and the verifier
 * (primusctl audit verify) both use these functions, so the two can never
 * disagree about what a record's hash or MAC covers.
 *
 * SHA-256 and HMAC come from libcrypto (not from the provider API: p11core
 * still knows nothing of OpenSSL providers).
 *
 * A line is the compact JSON object of one record.  Its MAC covers the
 * line without its "mac" member (the body); the line's hash, which the
 * next record of the stream carries as "prev", covers the whole line,
 * MAC included. */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/hmac.h>

#include "internal.h"

#define MAC_MEMBER ",\"mac\":\""
#define MAC_MEMBER_LEN (sizeof(MAC_MEMBER) - 1)
#define HEX_LEN 64

static void to_hex(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

int p11_audit_line_hash(const char *line, size_t len, char out[P11_AUDIT_HEX_SIZE])
{
    unsigned char md[32];
    unsigned int md_len = 0;

    if (!EVP_Digest(line, len, md, &md_len, EVP_sha256(), NULL) || md_len != sizeof(md))
        return 0;
    to_hex(md, sizeof(md), out);
    return 1;
}

int p11_audit_body_mac(const unsigned char *key, size_t key_len, const char *body, size_t len,
                       char out[P11_AUDIT_HEX_SIZE])
{
    unsigned char md[32];
    unsigned int md_len = 0;

    if (HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)body, len, md, &md_len) ==
            NULL ||
        md_len != sizeof(md))
        return 0;
    to_hex(md, sizeof(md), out);
    return 1;
}

/* The writer's SHA-256 and HMAC, fetched and keyed once per log rather
 * than per record (an implicit fetch costs as much as hashing a record).
 * Owned by the log and freed with it: nothing fetched outlives it (a
 * provider may be unloaded long before the process ends). */
struct p11_audit_mac {
    EVP_MD *sha256;
    EVP_MAC *hmac;
    EVP_MAC_CTX *ctx; /* NULL without a key */
};

p11_audit_mac *p11_audit_mac_new(const unsigned char *key, size_t key_len)
{
    p11_audit_mac *m = calloc(1, sizeof(*m));
    OSSL_PARAM params[2];

    if (m == NULL || (m->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
        goto fail;
    if (key == NULL)
        return m;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if ((m->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
        (m->ctx = EVP_MAC_CTX_new(m->hmac)) == NULL || !EVP_MAC_init(m->ctx, key, key_len, params))
        goto fail;
    return m;
fail:
    p11_audit_mac_free(m);
    return NULL;
}

int p11_audit_mac_hash_line(p11_audit_mac *m, const char *line, size_t len,
                            char out[P11_AUDIT_HEX_SIZE])
{
    unsigned char md[32];
    unsigned int md_len = 0;

    if (!EVP_Digest(line, len, md, &md_len, m->sha256, NULL) || md_len != sizeof(md))
        return 0;
    to_hex(md, sizeof(md), out);
    return 1;
}

int p11_audit_mac_body(p11_audit_mac *m, const char *body, size_t len,
                       char out[P11_AUDIT_HEX_SIZE])
{
    unsigned char md[32];
    size_t md_len = 0;

    /* init without a key starts a new MAC with the key already set */
    if (m->ctx == NULL || !EVP_MAC_init(m->ctx, NULL, 0, NULL) ||
        !EVP_MAC_update(m->ctx, (const unsigned char *)body, len) ||
        !EVP_MAC_final(m->ctx, md, &md_len, sizeof(md)) || md_len != sizeof(md))
        return 0;
    to_hex(md, sizeof(md), out);
    return 1;
}

void p11_audit_mac_free(p11_audit_mac *m)
{
    if (m) {
        EVP_MAC_CTX_free(m->ctx);
        EVP_MAC_free(m->hmac);
        EVP_MD_free(m->sha256);
        free(m);
    }
}

char *p11_audit_append_mac(const char *body, size_t len, const char mac[P11_AUDIT_HEX_SIZE],
                           size_t *out_len)
{
    /* body ends with '}': the mac member goes just before it. */
    size_t n = len - 1 + MAC_MEMBER_LEN + HEX_LEN + 2;
    char *line;

    if (len < 2 || body[len - 1] != '}' || (line = malloc(n + 1)) == NULL)
        return NULL;
    memcpy(line, body, len - 1);
    memcpy(line + len - 1, MAC_MEMBER, MAC_MEMBER_LEN);
    memcpy(line + len - 1 + MAC_MEMBER_LEN, mac, HEX_LEN);
    memcpy(line + n - 2, "\"}", 2);
    line[n] = '\0';
    *out_len = n;
    return line;
}

int p11_audit_split_mac(const char *line, size_t len, size_t *body_end,
                        char mac[P11_AUDIT_HEX_SIZE])
{
    size_t tail = MAC_MEMBER_LEN + HEX_LEN + 2;
    const char *m;

    if (len < tail + 1)
        return 0;
    m = line + len - tail;
    if (memcmp(m, MAC_MEMBER, MAC_MEMBER_LEN) != 0 || memcmp(line + len - 2, "\"}", 2) != 0)
        return 0;
    for (size_t i = 0; i < HEX_LEN; i++) {
        char c = m[MAC_MEMBER_LEN + i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    memcpy(mac, m + MAC_MEMBER_LEN, HEX_LEN);
    mac[HEX_LEN] = '\0';
    /* The body is line[0 .. body_end) followed by '}'. */
    *body_end = len - tail;
    return 1;
}

int p11_audit_mac_matches(const unsigned char *key, size_t key_len, const char *line, size_t len)
{
    char got[P11_AUDIT_HEX_SIZE], want[P11_AUDIT_HEX_SIZE];
    size_t body_end;
    char *body;
    int ok;

    if (!p11_audit_split_mac(line, len, &body_end, got) || (body = malloc(body_end + 2)) == NULL)
        return 0;
    memcpy(body, line, body_end);
    body[body_end] = '}';
    body[body_end + 1] = '\0';
    ok = p11_audit_body_mac(key, key_len, body, body_end + 1, want) &&
         CRYPTO_memcmp(got, want, HEX_LEN) == 0;
    free(body);
    return ok;
}

p11_status p11_audit_key_load(const char *path, unsigned char **key, size_t *key_len)
{
    p11_status st = p11_secret_file_read(path, "audit key file",
                                         "at least 16 random bytes (head -c 32 /dev/urandom)",
                                         4096, 0, P11_ERR_CONFIG, key, key_len);
    if (st != P11_OK)
        return st;
    if (*key_len < 16) {
        p11_audit_key_free(*key, *key_len);
        *key = NULL;
        return p11_error_set(P11_ERR_CONFIG, CKR_OK,
                             "audit key file %s holds only %zu bytes; an HMAC key needs at least "
                             "16: head -c 32 /dev/urandom > %s",
                             path, *key_len, path);
    }
    return P11_OK;
}

void p11_audit_key_free(unsigned char *key, size_t key_len)
{
    if (key) {
        p11_wipe(key, key_len);
        free(key);
    }
}
