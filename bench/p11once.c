/*
 * p11once: the least a process can do to sign once with a key in a
 * PKCS#11 token, for startup.sh: dlopen the module, C_Initialize, find the
 * token by label, open a session, C_Login, find the private key by label,
 * hash the file in software (SHA-256, OpenSSL), C_SignInit + C_Sign,
 * C_Finalize.  Its wall time minus that of `p11once --nop` (same binary,
 * same libraries, exits at once) is the floor any PKCS#11 client pays per
 * process on this token, whatever the provider does.
 *
 *   p11once --module SO --token LABEL --object LABEL --pin-file F --ec|--rsa FILE [--timing]
 *   p11once --nop
 * --timing prints the wall time of each step to stderr.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <p11-kit/pkcs11.h>

#include <openssl/evp.h>

static int timing;
static struct timespec t_last;

static void step(const char *what)
{
    struct timespec t;

    if (!timing)
        return;
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (what)
        fprintf(stderr, "%-28s %8.3f ms\n", what,
                (t.tv_sec - t_last.tv_sec) * 1e3 + (t.tv_nsec - t_last.tv_nsec) / 1e6);
    t_last = t;
}

static __attribute__((noreturn)) void die(const char *what, CK_RV rv)
{
    fprintf(stderr, "p11once: %s failed (0x%lx)\n", what, (unsigned long)rv);
    exit(1);
}

int main(int argc, char **argv)
{
    static const unsigned char di_sha256[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                              0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                              0x01, 0x05, 0x00, 0x04, 0x20};
    const char *module = NULL, *token = NULL, *object = NULL, *pin_file = NULL, *file = NULL;
    int rsa = 0, i;
    CK_FUNCTION_LIST *fl;
    CK_C_GetFunctionList gfl;
    CK_C_INITIALIZE_ARGS args;
    CK_SLOT_ID slots[64], slot = 0;
    CK_ULONG n = 64, k, found = 0, siglen;
    CK_TOKEN_INFO ti;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE key;
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    CK_ATTRIBUTE tmpl[2];
    unsigned char in[64], sig[1024], buf[65536], label[32];
    unsigned int hlen;
    char pin[256];
    size_t len, plen;
    EVP_MD_CTX *md;
    FILE *f;
    void *h;
    CK_RV rv;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--nop") == 0)
            return 0;
        if (strcmp(argv[i], "--timing") == 0) {
            timing = 1;
            continue;
        }
        if (i + 1 >= argc)
            break;
        if (strcmp(argv[i], "--module") == 0) module = argv[++i];
        else if (strcmp(argv[i], "--token") == 0) token = argv[++i];
        else if (strcmp(argv[i], "--object") == 0) object = argv[++i];
        else if (strcmp(argv[i], "--pin-file") == 0) pin_file = argv[++i];
        else if (strcmp(argv[i], "--rsa") == 0) rsa = 1, file = argv[++i];
        else if (strcmp(argv[i], "--ec") == 0) rsa = 0, file = argv[++i];
    }
    if (!module || !token || !object || !pin_file || !file) {
        fprintf(stderr, "usage: p11once --module SO --token LABEL --object LABEL --pin-file F "
                        "--ec|--rsa FILE | --nop\n");
        return 2;
    }
    step(NULL);
    f = fopen(pin_file, "r");
    if (f == NULL || (plen = fread(pin, 1, sizeof(pin) - 1, f)) == 0)
        die("reading the pin file", 0);
    fclose(f);
    while (plen && (pin[plen - 1] == '\n' || pin[plen - 1] == '\r'))
        plen--;

    /* hash the file in software */
    md = EVP_MD_CTX_new();
    f = fopen(file, "rb");
    if (md == NULL || f == NULL || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
        die("hashing", 0);
    while ((len = fread(buf, 1, sizeof(buf), f)) > 0)
        EVP_DigestUpdate(md, buf, len);
    fclose(f);
    len = rsa ? sizeof(di_sha256) : 0;
    memcpy(in, di_sha256, len);
    EVP_DigestFinal_ex(md, in + len, &hlen);
    EVP_MD_CTX_free(md);
    len += hlen;
    step("read PIN, hash the file");

    h = dlopen(module, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL || (gfl = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList")) == NULL)
        die("loading the module", 0);
    step("dlopen module");
    if ((rv = gfl(&fl)) != CKR_OK)
        die("C_GetFunctionList", rv);
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    if ((rv = fl->C_Initialize(&args)) != CKR_OK)
        die("C_Initialize", rv);
    step("C_Initialize");
    if ((rv = fl->C_GetSlotList(CK_TRUE, slots, &n)) != CKR_OK)
        die("C_GetSlotList", rv);
    memset(label, ' ', 32);
    memcpy(label, token, strlen(token) < 32 ? strlen(token) : 32);
    for (k = 0; k < n && !found; k++)
        if (fl->C_GetTokenInfo(slots[k], &ti) == CKR_OK && memcmp(ti.label, label, 32) == 0)
            slot = slots[k], found = 1;
    if (!found)
        die("finding the token", 0);
    step("C_GetSlotList/TokenInfo");
    if ((rv = fl->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s)) != CKR_OK)
        die("C_OpenSession", rv);
    step("C_OpenSession");
    if ((rv = fl->C_Login(s, CKU_USER, (CK_UTF8CHAR *)pin, plen)) != CKR_OK)
        die("C_Login", rv);
    step("C_Login");
    tmpl[0] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
    tmpl[1] = (CK_ATTRIBUTE){CKA_LABEL, (void *)object, strlen(object)};
    found = 0;
    if ((rv = fl->C_FindObjectsInit(s, tmpl, 2)) != CKR_OK
        || (rv = fl->C_FindObjects(s, &key, 1, &found)) != CKR_OK
        || (rv = fl->C_FindObjectsFinal(s)) != CKR_OK || found != 1)
        die("finding the key", rv);
    step("C_FindObjects");
    if (rsa)
        mech.mechanism = CKM_RSA_PKCS;
    siglen = sizeof(sig);
    if ((rv = fl->C_SignInit(s, &mech, key)) != CKR_OK
        || (rv = fl->C_Sign(s, in, len, sig, &siglen)) != CKR_OK)
        die("signing", rv);
    step("C_SignInit + C_Sign");
    fl->C_CloseSession(s);
    fl->C_Finalize(NULL);
    step("C_CloseSession + C_Finalize");
    return 0;
}
