/*
 * key_sizes URI PEMFILE: the sizes OpenSSL caches for a key loaded through
 * the provider (a private HSM key: answered from the token's attributes,
 * without building its public half) must equal those of the same public key
 * read from PEMFILE by the default provider: bits, security bits (TLS
 * security levels compare them) and maximum signature size (callers size
 * their buffers by it).  Prints both and exits 1 when they differ.
 */
#include <stdio.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/store.h>

#include "../lib/store_key.h"

int main(int argc, char **argv)
{
    EVP_PKEY *hsm, *ref;
    BIO *in;
    int same;

    if (argc != 3) {
        fprintf(stderr, "usage: key_sizes URI PEMFILE\n");
        return 2;
    }
    hsm = test_store_load_private_key(NULL, argv[1]);
    in = BIO_new_file(argv[2], "r");
    ref = in != NULL ? PEM_read_bio_PUBKEY(in, NULL, NULL, NULL) : NULL;
    BIO_free(in);
    if (hsm == NULL || ref == NULL) {
        ERR_print_errors_fp(stderr);
        fprintf(stderr, "key_sizes: cannot load %s\n", hsm == NULL ? argv[1] : argv[2]);
        return 1;
    }
    printf("hsm bits %d security-bits %d size %d\n", EVP_PKEY_get_bits(hsm),
           EVP_PKEY_get_security_bits(hsm), EVP_PKEY_get_size(hsm));
    printf("ref bits %d security-bits %d size %d\n", EVP_PKEY_get_bits(ref),
           EVP_PKEY_get_security_bits(ref), EVP_PKEY_get_size(ref));
    same = EVP_PKEY_get_bits(hsm) == EVP_PKEY_get_bits(ref)
           && EVP_PKEY_get_security_bits(hsm) == EVP_PKEY_get_security_bits(ref)
           && EVP_PKEY_get_size(hsm) == EVP_PKEY_get_size(ref);
    EVP_PKEY_free(hsm);
    EVP_PKEY_free(ref);
    return same ? 0 : 1;
}
