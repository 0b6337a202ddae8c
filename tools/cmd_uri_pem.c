/* primusctl uri-pem URI [-out FILE]: a PEM "key file" that holds only a
 * key's URI, for programs that accept nothing but a key file (nginx before
 * 1.29, curl before 8.12, Python ssl).  The form is the one pkcs11-provider
 * writes (label "PKCS#11 PROVIDER URI", DER SEQUENCE { VisibleString
 * description, UTF8String uri }), so files carry over in both directions.
 * It holds no secret: a URI with pin-value is refused. */
#include <string.h>

#include <openssl/pem.h>

#include "primusctl.h"

#define URI_PEM_LABEL "PKCS#11 PROVIDER URI"
#define URI_PEM_DESCRIPTION "PKCS#11 Provider URI v1.0"

/* DER tag + length header; returns its size. */
static size_t der_header(unsigned char *out, unsigned char tag, size_t len)
{
    size_t n = 0;

    out[n++] = tag;
    if (len < 0x80) {
        out[n++] = (unsigned char)len;
    } else if (len < 0x100) {
        out[n++] = 0x81;
        out[n++] = (unsigned char)len;
    } else {
        out[n++] = 0x82;
        out[n++] = (unsigned char)(len >> 8);
        out[n++] = (unsigned char)len;
    }
    return n;
}

static unsigned char *encode_uri_der(const char *uri, size_t *der_len)
{
    size_t dlen = strlen(URI_PEM_DESCRIPTION), ulen = strlen(uri);
    unsigned char hd[4], hu[4], hs[4], *der, *p;
    size_t nd = der_header(hd, 0x1a, dlen), nu = der_header(hu, 0x0c, ulen);
    size_t body = nd + dlen + nu + ulen, ns = der_header(hs, 0x30, body);

    if (ulen > 0xffff - 16)
        return NULL;
    der = OPENSSL_malloc(ns + body);
    if (der == NULL)
        return NULL;
    p = der;
    memcpy(p, hs, ns), p += ns;
    memcpy(p, hd, nd), p += nd;
    memcpy(p, URI_PEM_DESCRIPTION, dlen), p += dlen;
    memcpy(p, hu, nu), p += nu;
    memcpy(p, uri, ulen);
    *der_len = ns + body;
    return der;
}

int primusctl_uri_pem(int argc, char **argv, primusctl_opts *opts)
{
    const char *text = NULL, *out_path = NULL;
    p11_uri_error err;
    p11_uri *uri = NULL;
    unsigned char *der;
    size_t der_len;
    char *canonical;
    BIO *out;
    int i, ok;

    (void)opts;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-out") == 0 && i + 1 < argc)
            out_path = argv[++i];
        else if (text == NULL)
            text = argv[i];
        else
            text = NULL, i = argc;
    }
    if (text == NULL) {
        fprintf(stderr, "usage: primusctl uri-pem 'pkcs11:token=...;object=...' [-out FILE]\n");
        return PRIMUSCTL_USAGE;
    }
    if (p11_uri_parse(text, &uri, &err) != P11_URI_OK) {
        fprintf(stderr, "primusctl: invalid pkcs11 URI: %s\n", err.message);
        return PRIMUSCTL_FAIL;
    }
    if (p11_uri_has(uri, P11_URI_PIN_VALUE)) {
        fprintf(stderr, "primusctl: the URI carries pin-value; a key file must not hold a PIN: "
                        "use pin-source=file:/path or the provider's pkcs11-module-token-pin\n");
        p11_uri_free(uri);
        return PRIMUSCTL_FAIL;
    }
    canonical = p11_uri_format(uri, P11_URI_FORMAT_DEFAULT);
    p11_uri_free(uri);
    der = canonical ? encode_uri_der(canonical, &der_len) : NULL;
    free(canonical);
    if (der == NULL) {
        fprintf(stderr, "primusctl: cannot encode the URI\n");
        return PRIMUSCTL_FAIL;
    }
    out = out_path ? BIO_new_file(out_path, "w") : BIO_new_fp(stdout, BIO_NOCLOSE);
    if (out == NULL) {
        fprintf(stderr, "primusctl: cannot write %s\n", out_path);
        OPENSSL_free(der);
        return PRIMUSCTL_FAIL;
    }
    ok = PEM_write_bio(out, URI_PEM_LABEL, "", der, (long)der_len) > 0;
    BIO_free(out);
    OPENSSL_free(der);
    return ok ? PRIMUSCTL_OK : PRIMUSCTL_FAIL;
}
