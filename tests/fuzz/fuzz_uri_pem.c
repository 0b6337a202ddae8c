/*
 * libFuzzer target for the URI key file decoder (provider/decoder.c: the
 * "PKCS#11 PROVIDER URI" PEM block and the DER inside it), reached through
 * OpenSSL the way applications reach it: OSSL_DECODER in a library context
 * where the default provider and the instrumented primus.so are loaded, with
 * real keys behind the URIs (fuzz_env.c makes the tokens).
 *
 * Each input is decoded three times:
 *   1. as a PEM file (input type PEM, what PEM_read_bio_PrivateKey_ex and
 *      servers' key file loading use), for a private key;
 *   2. as the body of a "PKCS#11 PROVIDER URI" PEM block (base64-encoded
 *      here), for a public key.  libFuzzer's mutations rarely keep base64
 *      intact, so this is what lets them reach the DER and the URI inside;
 *   3. as a bare DER key file (-inform DER), for any kind of key (selection
 *      0), through primus's DER decoder alone (PKCS11-URI, input=der),
 *      picked by name: the way `-inform DER` would go, trying each of the
 *      40-odd DER decoders of both providers, costs five times as much per
 *      input in OpenSSL 3.0 (neither an input structure nor a property query
 *      narrows the set), and the other decoders do not see our files.  A
 *      construct callback takes what our decoder hands on (a key reference,
 *      not a key): passes 1 and 2 already turn such references into keys.
 * The decoder contexts are made once and reused: making one costs OpenSSL
 * 3.0 about 2.5 ms (it collects every decoder and key manager), 30 times
 * what decoding a typical input costs.  Reuse is sound: each
 * OSSL_DECODER_from_data runs the same chain afresh and clears its cached
 * passphrase at the end, and the context's only other state is where the
 * key goes.
 * A key that comes out is used the way an application uses one: its size,
 * its public half exported, and an HSM private key written out again as a
 * URI file, which must decode to the same key (files carry over).
 *
 * Crashes, sanitizer reports, leaks and broken invariants (abort) are the
 * findings; a refused input is not one.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include "fuzz_env.h"

#define URI_PEM_LABEL "PKCS#11 PROVIDER URI"
#define URI_PEM_BEGIN "-----BEGIN " URI_PEM_LABEL "-----"

static OSSL_LIB_CTX *libctx;

/* The PIN for the token the provider names in its prompt ("PKCS#11 token
 * "fuzz2" user PIN"); token "fuzz"'s otherwise. */
static int pin_cb(char *pass, size_t pass_size, size_t *pass_len, const OSSL_PARAM params[],
                  void *arg)
{
    const OSSL_PARAM *p = params != NULL ? OSSL_PARAM_locate_const(params,
                                                                   OSSL_PASSPHRASE_PARAM_INFO)
                                         : NULL;
    const char *info = NULL, *pin = FUZZ_PIN_A;

    (void)arg;
    if (p != NULL && OSSL_PARAM_get_utf8_string_ptr(p, &info) && info != NULL
        && strstr(info, "\"" FUZZ_TOKEN_B "\"") != NULL)
        pin = FUZZ_PIN_B;
    if (strlen(pin) > pass_size)
        return 0;
    memcpy(pass, pin, strlen(pin));
    *pass_len = strlen(pin);
    return 1;
}

/* A decoder context made once (see the top) and where its key goes. */
typedef struct decoder {
    OSSL_DECODER_CTX *ctx;
    EVP_PKEY *out;
} decoder;

static decoder for_private, for_public;
static OSSL_DECODER_CTX *from_der; /* primus's DER decoders only (pass 3) */
static size_t der_keys;              /* keys pass 3 was handed */

static void decoder_init(decoder *d, int selection)
{
    d->out = NULL;
    d->ctx = OSSL_DECODER_CTX_new_for_pkey(&d->out, "PEM", NULL, NULL, selection, libctx, NULL);
    FUZZ_CHECK(d->ctx != NULL, "no decoder context");
    FUZZ_CHECK(OSSL_DECODER_CTX_set_passphrase_cb(d->ctx, pin_cb, NULL), "passphrase cb");
}

/* Pass 3's construct callback: what the decoder hands on must be a key by
 * reference, of a type the provider has. */
static int der_construct(OSSL_DECODER_INSTANCE *inst, const OSSL_PARAM *params, void *arg)
{
    const OSSL_PARAM *type = OSSL_PARAM_locate_const(params, OSSL_OBJECT_PARAM_TYPE);
    const OSSL_PARAM *name = OSSL_PARAM_locate_const(params, OSSL_OBJECT_PARAM_DATA_TYPE);
    const OSSL_PARAM *ref = OSSL_PARAM_locate_const(params, OSSL_OBJECT_PARAM_REFERENCE);
    const char *s = NULL;
    int object_type = 0;

    (void)inst;
    (void)arg;
    FUZZ_CHECK(type != NULL && OSSL_PARAM_get_int(type, &object_type)
                   && object_type == OSSL_OBJECT_PKEY, "not a key object");
    FUZZ_CHECK(name != NULL && OSSL_PARAM_get_utf8_string_ptr(name, &s) && s != NULL
                   && (strcmp(s, "RSA") == 0 || strcmp(s, "RSA-PSS") == 0
                       || strcmp(s, "EC") == 0 || strcmp(s, "ED25519") == 0),
               "a key of type %s", s != NULL ? s : "(none)");
    FUZZ_CHECK(ref != NULL && ref->data_type == OSSL_PARAM_OCTET_STRING && ref->data_size > 0,
               "a key without a reference");
    der_keys++;
    return 1;
}

static void der_init(void)
{
    OSSL_DECODER *dec = OSSL_DECODER_fetch(libctx, "PKCS11-URI", "provider=primus,input=der");

    from_der = OSSL_DECODER_CTX_new();
    FUZZ_CHECK(from_der != NULL, "no decoder context");
    FUZZ_CHECK(dec != NULL && OSSL_DECODER_CTX_add_decoder(from_der, dec),
               "primus has no DER decoder PKCS11-URI");
    OSSL_DECODER_free(dec);
    FUZZ_CHECK(OSSL_DECODER_CTX_set_input_type(from_der, "DER")
                   && OSSL_DECODER_CTX_set_selection(from_der, 0)
                   && OSSL_DECODER_CTX_set_construct(from_der, der_construct)
                   && OSSL_DECODER_CTX_set_passphrase_cb(from_der, pin_cb, NULL),
               "pass 3 set-up");
}

static EVP_PKEY *decode(decoder *d, const unsigned char *data, size_t len)
{
    EVP_PKEY *pkey;

    d->out = NULL;
    if (!OSSL_DECODER_from_data(d->ctx, &data, &len))
        FUZZ_CHECK(d->out == NULL, "a failed decode returned a key");
    pkey = d->out;
    d->out = NULL;
    return pkey;
}

static int is_primus_key(const EVP_PKEY *pkey)
{
    const OSSL_PROVIDER *prov = EVP_PKEY_get0_provider(pkey);

    return prov != NULL && strcmp(OSSL_PROVIDER_get0_name(prov), "primus") == 0;
}

/* The HSM private key written out again (encoder.c) must read back as the
 * same key. */
static void check_rewrite(EVP_PKEY *pkey)
{
    BIO *out = BIO_new(BIO_s_mem());
    char *text = NULL;
    long n;
    EVP_PKEY *again;

    FUZZ_CHECK(out != NULL, "BIO_new");
    if (!PEM_write_bio_PrivateKey_ex(out, pkey, NULL, NULL, 0, NULL, NULL, libctx, NULL)) {
        /* a key without a private half (a public view): nothing to write */
        BIO_free(out);
        ERR_clear_error();
        return;
    }
    n = BIO_get_mem_data(out, &text);
    FUZZ_CHECK(n > 0 && text != NULL, "empty output");
    if (!((size_t)n > strlen(URI_PEM_BEGIN)
          && memcmp(text, URI_PEM_BEGIN, strlen(URI_PEM_BEGIN)) == 0)) {
        /* a software key that the provider holds is written as PKCS#8 */
        BIO_free(out);
        return;
    }
    again = decode(&for_private, (const unsigned char *)text, (size_t)n);
    FUZZ_CHECK(again != NULL, "the URI file written for a decoded key does not decode: %.*s",
               (int)n, text);
    FUZZ_CHECK(EVP_PKEY_eq(pkey, again) == 1, "the URI file names another key: %.*s", (int)n,
               text);
    EVP_PKEY_free(again);
    BIO_free(out);
}

static void use_key(EVP_PKEY *pkey, int want_private)
{
    unsigned char *der = NULL;
    int len;

    if (!is_primus_key(pkey))
        return; /* the default provider's own keys (PKCS#8 input) are not what is tested */
    FUZZ_CHECK(EVP_PKEY_get_bits(pkey) > 0, "a decoded key without a size");
    FUZZ_CHECK(EVP_PKEY_get_size(pkey) > 0, "a decoded key without a maximum output size");
    /* Every key in the token has its public half: exporting it must work. */
    len = i2d_PUBKEY(pkey, &der);
    FUZZ_CHECK(len > 0, "the public half of a decoded HSM key cannot be exported");
    OPENSSL_free(der);
    if (want_private)
        check_rewrite(pkey);
}

/* data, base64-encoded as the body of a URI PEM block. */
static char *wrap_pem(const uint8_t *data, size_t size, size_t *out_len)
{
    BIO *mem = BIO_new(BIO_s_mem());
    char *text = NULL, *copy = NULL;
    long n;

    FUZZ_CHECK(mem != NULL, "BIO_new");
    /* PEM_write_bio returns the body's length: 0 for an empty input */
    FUZZ_CHECK(PEM_write_bio(mem, URI_PEM_LABEL, "", data, (long)size) >= 0, "PEM_write_bio");
    n = BIO_get_mem_data(mem, &text);
    FUZZ_CHECK(n > 0 && text != NULL, "PEM_write_bio wrote nothing");
    copy = malloc((size_t)n);
    FUZZ_CHECK(copy != NULL, "malloc");
    memcpy(copy, text, (size_t)n);
    *out_len = (size_t)n;
    BIO_free(mem);
    return copy;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* DER of SEQUENCE { VisibleString desc, UTF8String uri } (encoder.c),
     * short-form lengths: the probe is small. */
    static const char desc[] = "PKCS#11 Provider URI v1.0";
    static const char uri[] = "pkcs11:token=" FUZZ_TOKEN_A ";object=ec;type=private";
    unsigned char der[128];
    size_t n = 0, pem_len;
    char *pem;
    EVP_PKEY *pkey;

    (void)argc;
    (void)argv;
    libctx = fuzz_env_init();
    decoder_init(&for_private, EVP_PKEY_KEYPAIR);
    decoder_init(&for_public, EVP_PKEY_PUBLIC_KEY);
    der_init();

    der[n++] = 0x30;
    der[n++] = (unsigned char)(2 + strlen(desc) + 2 + strlen(uri));
    der[n++] = 0x1a;
    der[n++] = (unsigned char)strlen(desc);
    memcpy(der + n, desc, strlen(desc));
    n += strlen(desc);
    der[n++] = 0x0c;
    der[n++] = (unsigned char)strlen(uri);
    memcpy(der + n, uri, strlen(uri));
    n += strlen(uri);

    /* The set-up works: a URI file naming a token key decodes to that key
     * (otherwise every input would only meet "no token" errors). */
    pem = wrap_pem(der, n, &pem_len);
    pkey = decode(&for_private, (const unsigned char *)pem, pem_len);
    free(pem);
    if (pkey == NULL) {
        ERR_print_errors_fp(stderr);
        fprintf(stderr, "fuzz_uri_pem: the probe URI file (%s) does not decode\n", uri);
        exit(1);
    }
    use_key(pkey, 1);
    EVP_PKEY_free(pkey);
    {
        const unsigned char *p = der;

        if (!OSSL_DECODER_from_data(from_der, &p, &n) || der_keys != 1) {
            ERR_print_errors_fp(stderr);
            fprintf(stderr, "fuzz_uri_pem: the probe DER file (%s) does not decode\n", uri);
            exit(1);
        }
    }
    ERR_clear_error();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    EVP_PKEY *pkey;
    char *pem;
    size_t pem_len;

    pkey = decode(&for_private, data, size);
    if (pkey != NULL)
        use_key(pkey, 1);
    EVP_PKEY_free(pkey);
    ERR_clear_error();

    pem = wrap_pem(data, size, &pem_len);
    pkey = decode(&for_public, (const unsigned char *)pem, pem_len);
    if (pkey != NULL)
        use_key(pkey, 0);
    EVP_PKEY_free(pkey);
    free(pem);
    ERR_clear_error();

    {
        const unsigned char *p = data;
        size_t left = size;

        OSSL_DECODER_from_data(from_der, &p, &left); /* advances p */
    }
    ERR_clear_error();
    return 0;
}
