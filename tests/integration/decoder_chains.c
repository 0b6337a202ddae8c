/*
 * What the provider's decoders cost applications that never use them, and
 * the direct public-key API on URI key files.  Run by provider_openssl.sh
 * with and without the provider configured (OPENSSL_CONF).
 *
 *   decoder_chains spki
 *       For the public key of a certificate of each key type (the chain
 *       OpenSSL 3.0 builds for every certificate it reads), prints
 *       "<keytype> <number of decoders in the chain>".
 *   decoder_chains pubkey FILE
 *       PEM_read_bio_PUBKEY on FILE; prints "bits <n>" or fails (exit 1).
 *   decoder_chains privkey FILE
 *       PEM_read_bio_PrivateKey on FILE, as servers read key files; prints
 *       "bits <n>", or OpenSSL's errors on stdout and exit 1.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

static int spki_chains(void)
{
    /* the names x509 decoding passes: the algorithm OID's short name */
    static const char *const keytypes[] = {"rsaEncryption", "id-ecPublicKey", "ED25519"};
    size_t i;

    for (i = 0; i < sizeof(keytypes) / sizeof(keytypes[0]); i++) {
        EVP_PKEY *pkey = NULL;
        OSSL_DECODER_CTX *ctx = OSSL_DECODER_CTX_new_for_pkey(
            &pkey, "DER", "SubjectPublicKeyInfo", keytypes[i], EVP_PKEY_PUBLIC_KEY, NULL, NULL);

        if (ctx == NULL) {
            ERR_print_errors_fp(stderr);
            return 1;
        }
        printf("%s %d\n", keytypes[i], OSSL_DECODER_CTX_get_num_decoders(ctx));
        OSSL_DECODER_CTX_free(ctx);
    }
    return 0;
}

static int read_key(const char *path, int private)
{
    BIO *in = BIO_new_file(path, "r");
    EVP_PKEY *pkey = NULL;

    if (in != NULL)
        pkey = private ? PEM_read_bio_PrivateKey(in, NULL, NULL, NULL)
                       : PEM_read_bio_PUBKEY(in, NULL, NULL, NULL);
    BIO_free(in);
    if (pkey == NULL) {
        ERR_print_errors_fp(stdout);
        return 1;
    }
    printf("bits %d\n", EVP_PKEY_get_bits(pkey));
    EVP_PKEY_free(pkey);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "spki") == 0)
        return spki_chains();
    if (argc == 3 && (strcmp(argv[1], "pubkey") == 0 || strcmp(argv[1], "privkey") == 0))
        return read_key(argv[2], strcmp(argv[1], "privkey") == 0);
    fprintf(stderr, "usage: decoder_chains spki | pubkey FILE | privkey FILE\n");
    return 2;
}
