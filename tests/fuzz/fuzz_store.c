/*
 * libFuzzer target for the pkcs11: store loader (provider/store.c), reached
 * through OSSL_STORE the way `openssl storeutl`, `openssl pkey -in URI` and
 * servers reach it, in a library context with the default provider and the
 * instrumented primus.so, against two real SoftHSM2 tokens (fuzz_env.h lists
 * what is on them: keys of each type, an ambiguous label, certificates, a
 * secret key, a data object, a second token sharing a label).
 *
 * Input: the URI, optionally followed by a NUL and option bytes:
 *   URI      the bytes before the first NUL; "pkcs11:" is put in front
 *            unless they start with it (in any case), so that the input is
 *            never taken for a file name by OpenSSL's file loader, which
 *            OSSL_STORE_open tries first
 *   opt[0]   bits 0-2  OSSL_STORE_expect: 0 nothing, 1 PKEY, 2 PUBKEY,
 *                      3 CERT, 4 PARAMS, 5 CRL, 6 NAME, 7 nothing
 *            bits 3-4  passphrase prompt: 0 none, 1 answers token "fuzz"'s
 *                      PIN, 2 token "fuzz2"'s, 3 a wrong PIN
 *            bits 5-6  OSSL_STORE_find: 0 none, 1 by alias (the bytes after
 *                      opt[0], up to a NUL), 2 by subject (CN=fuzz-ec: two
 *                      certificates), 3 by issuer and serial of the first
 * Plain URIs (no NUL) list everything they match, as storeutl does.
 *
 * Module errors, no match, ambiguous URIs, wrong PINs and bad URIs must come
 * back as errors; crashes, sanitizer reports, leaks and broken invariants
 * (abort) are the findings:
 *   - the load loop ends (eof), within a bound far above what the tokens hold;
 *   - when one kind of object is expected, at most one object comes back, of
 *     that kind (the loader's promise: several matches are an error);
 *   - a key that comes back has a size and, being an HSM key, a public half
 *     that can be exported.
 * State carries over between inputs (logins, a refused PIN), as in a real
 * process; libFuzzer's crash input alone may then not reproduce a finding,
 * so a finding's regression input must be checked to reproduce on its own.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/ui.h>
#include <openssl/x509.h>

#include "fuzz_env.h"

#define SCHEME "pkcs11:"
#define MAX_OBJECTS 1000 /* the tokens hold about twenty objects */

static OSSL_LIB_CTX *libctx;
static UI_METHOD *pin_ui;
static X509_NAME *cert_subject;
static ASN1_INTEGER *cert_serial;

/* UI reader (via UI_UTIL_wrap_read_pem_callback): answers the PIN that
 * OSSL_STORE_open_ex's ui_data points at. */
static int pem_pin_cb(char *buf, int size, int rwflag, void *u)
{
    const char *pin = u;
    int len;

    (void)rwflag;
    if (pin == NULL)
        return -1;
    len = (int)strlen(pin);
    if (len > size)
        return -1;
    memcpy(buf, pin, (size_t)len);
    return len;
}

static void use_key(EVP_PKEY *pkey)
{
    unsigned char *der = NULL;
    int len;

    FUZZ_CHECK(pkey != NULL, "a key object without a key");
    FUZZ_CHECK(EVP_PKEY_get_bits(pkey) > 0, "a stored key without a size");
    len = i2d_PUBKEY(pkey, &der);
    FUZZ_CHECK(len > 0, "the public half of a stored key cannot be exported");
    OPENSSL_free(der);
}

static void use_info(OSSL_STORE_INFO *info)
{
    switch (OSSL_STORE_INFO_get_type(info)) {
    case OSSL_STORE_INFO_PKEY:
        use_key(OSSL_STORE_INFO_get0_PKEY(info));
        break;
    case OSSL_STORE_INFO_PUBKEY:
        use_key(OSSL_STORE_INFO_get0_PUBKEY(info));
        break;
    case OSSL_STORE_INFO_CERT: {
        X509 *x = OSSL_STORE_INFO_get0_CERT(info);

        FUZZ_CHECK(x != NULL && X509_get_subject_name(x) != NULL, "a certificate without one");
        break;
    }
    default:
        break;
    }
}

/* The search asked for by bits 5-6 of opt[0] (NULL: none).  An alias is
 * the rest of the input, up to a NUL, in *alias (to be freed after the
 * search: OSSL_STORE_SEARCH_by_alias keeps the pointer, not a copy). */
static OSSL_STORE_SEARCH *make_search(unsigned mode, const uint8_t *rest, size_t rest_len,
                                      char **alias)
{
    switch (mode) {
    case 1:
        *alias = malloc(rest_len + 1);
        FUZZ_CHECK(*alias != NULL, "malloc");
        if (rest_len > 0)
            memcpy(*alias, rest, rest_len);
        (*alias)[rest_len] = '\0';
        return OSSL_STORE_SEARCH_by_alias(*alias);
    case 2:
        return OSSL_STORE_SEARCH_by_name(cert_subject);
    case 3:
        return OSSL_STORE_SEARCH_by_issuer_serial(cert_subject, cert_serial);
    default:
        return NULL;
    }
}

static void load_all(const char *uri, int expect, const char *pin, unsigned search_mode,
                     const uint8_t *rest, size_t rest_len)
{
    OSSL_STORE_CTX *store;
    OSSL_STORE_SEARCH *search;
    char *alias = NULL;
    size_t loaded = 0, rounds = 0;

    store = OSSL_STORE_open_ex(uri, libctx, NULL, pin != NULL ? pin_ui : NULL, (void *)pin,
                               NULL, NULL, NULL);
    if (store == NULL)
        return; /* refused (bad URI, unusable module, ...): an error, fine */
    if (expect != 0)
        OSSL_STORE_expect(store, expect); /* may be refused: loading goes on */
    search = make_search(search_mode, rest, rest_len, &alias);
    if (search != NULL) {
        if (OSSL_STORE_supports_search(store, OSSL_STORE_SEARCH_get_type(search)))
            OSSL_STORE_find(store, search);
    }
    while (!OSSL_STORE_eof(store)) {
        OSSL_STORE_INFO *info;

        FUZZ_CHECK(++rounds <= MAX_OBJECTS, "the store does not reach its end for %s", uri);
        info = OSSL_STORE_load(store);
        if (info == NULL)
            continue; /* an error, or nothing more: eof() says which way it ends */
        loaded++;
        if (expect == OSSL_STORE_INFO_PKEY || expect == OSSL_STORE_INFO_PUBKEY
            || expect == OSSL_STORE_INFO_CERT) {
            FUZZ_CHECK(OSSL_STORE_INFO_get_type(info) == expect,
                       "asked for type %d, got %d from %s", expect,
                       OSSL_STORE_INFO_get_type(info), uri);
            FUZZ_CHECK(loaded == 1, "asked for one object of type %d, got several from %s",
                       expect, uri);
        }
        use_info(info);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(store);
    OSSL_STORE_SEARCH_free(search);
    free(alias);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    OSSL_STORE_CTX *store;
    OSSL_STORE_INFO *info;
    int n = 0;

    (void)argc;
    (void)argv;
    libctx = fuzz_env_init();
    pin_ui = UI_UTIL_wrap_read_pem_callback(pem_pin_cb, 0);
    cert_subject = X509_NAME_new();
    cert_serial = ASN1_INTEGER_new();
    FUZZ_CHECK(pin_ui != NULL && cert_subject != NULL && cert_serial != NULL
                   && X509_NAME_add_entry_by_txt(cert_subject, "CN", MBSTRING_ASC,
                                                 (const unsigned char *)FUZZ_CERT_SUBJECT, -1,
                                                 -1, 0)
                   && ASN1_INTEGER_set(cert_serial, FUZZ_CERT_SERIAL),
               "set-up");

    /* The set-up works: the token's certificates can be listed (otherwise
     * every input would only meet "no token" errors).  No login here, so
     * that the first inputs meet a token nobody has logged in to yet. */
    store = OSSL_STORE_open_ex(SCHEME "token=" FUZZ_TOKEN_A ";type=cert", libctx, NULL, NULL,
                               NULL, NULL, NULL, NULL);
    while (store != NULL && !OSSL_STORE_eof(store) && n < 10) {
        if ((info = OSSL_STORE_load(store)) != NULL) {
            n += OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_CERT;
            OSSL_STORE_INFO_free(info);
        }
    }
    OSSL_STORE_close(store);
    if (n != 3) {
        ERR_print_errors_fp(stderr);
        fprintf(stderr, "fuzz_store: the token's three certificates cannot be listed (%d)\n", n);
        exit(1);
    }
    ERR_clear_error();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int expects[8] = {
        0, OSSL_STORE_INFO_PKEY, OSSL_STORE_INFO_PUBKEY, OSSL_STORE_INFO_CERT,
        OSSL_STORE_INFO_PARAMS, OSSL_STORE_INFO_CRL, OSSL_STORE_INFO_NAME, 0,
    };
    static const char *const pins[4] = {NULL, FUZZ_PIN_A, FUZZ_PIN_B, "0000"};
    const uint8_t *nul = memchr(data, '\0', size);
    size_t uri_len = nul != NULL ? (size_t)(nul - data) : size;
    const uint8_t *opts = nul != NULL ? nul + 1 : NULL;
    size_t opts_len = nul != NULL ? size - uri_len - 1 : 0;
    unsigned opt = opts_len > 0 ? opts[0] : 0;
    int has_scheme = uri_len >= strlen(SCHEME)
                     && strncasecmp((const char *)data, SCHEME, strlen(SCHEME)) == 0;
    char *uri = malloc(strlen(SCHEME) + uri_len + 1);

    FUZZ_CHECK(uri != NULL, "malloc");
    if (has_scheme) {
        memcpy(uri, data, uri_len);
        uri[uri_len] = '\0';
    } else {
        memcpy(uri, SCHEME, strlen(SCHEME));
        memcpy(uri + strlen(SCHEME), data, uri_len);
        uri[strlen(SCHEME) + uri_len] = '\0';
    }

    load_all(uri, expects[opt & 7], pins[(opt >> 3) & 3], (opt >> 5) & 3,
             opts_len > 1 ? opts + 1 : NULL, opts_len > 1 ? opts_len - 1 : 0);
    free(uri);
    ERR_clear_error();
    return 0;
}
