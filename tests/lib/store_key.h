/* For test programs: the first private key OSSL_STORE finds for a URI, in
 * libctx (NULL: the default context); NULL when there is none (the reason is
 * on OpenSSL's error queue). */
#ifndef PRIMUS_TESTS_STORE_KEY_H
#define PRIMUS_TESTS_STORE_KEY_H

#include <openssl/evp.h>
#include <openssl/store.h>

static inline EVP_PKEY *test_store_load_private_key(OSSL_LIB_CTX *libctx, const char *uri)
{
    OSSL_STORE_CTX *store = OSSL_STORE_open_ex(uri, libctx, NULL, NULL, NULL, NULL, NULL, NULL);
    EVP_PKEY *found = NULL;

    if (store == NULL)
        return NULL;
    if (OSSL_STORE_expect(store, OSSL_STORE_INFO_PKEY) != 1) {
        OSSL_STORE_close(store);
        return NULL;
    }
    while (found == NULL && !OSSL_STORE_eof(store)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(store);

        if (info != NULL && OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            found = OSSL_STORE_INFO_get1_PKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(store);
    return found;
}

#endif
