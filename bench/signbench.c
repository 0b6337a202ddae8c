/*
 * signbench: signatures per second on one SoftHSM token and key, in one
 * process, for four contenders measured side by side:
 *
 *   raw-token    the raw PKCS#11 ceiling on the token object: the SoftHSM
 *                module dlopen'ed directly, one logged-in session per
 *                thread, hash in software (OpenSSL), C_SignInit + C_Sign
 *   raw-session  the same on a session copy of the key (C_CopyObject with
 *                CKA_TOKEN=false), one copy per thread's session
 *   provider     the primus provider: OSSL_STORE_open("pkcs11:...") in its
 *                own library context (primus + default, from an openssl.cnf
 *                written to the temp dir), then per signature
 *                EVP_DigestSignInit_ex + EVP_DigestSign on one EVP_MD_CTX
 *                per thread (re-initialized per signature, as applications do)
 *   libp11       libp11's engine on the same key (libp11_engine.c)
 *
 * --audit adds "provider+audit": the provider contender again, in a second
 * library context whose openssl.cnf also sets primus-audit-log (a file in
 * the temp dir) and primus-audit-key (a 32-byte 0600 key file there).  It
 * is interleaved like every contender; the tables give provider+audit /
 * provider per row, and an "Audit on/off" table adds the CPU time of the
 * whole process (the audit writer thread included).  At the end the log is
 * read back: it must hold exactly one "sign" record per signature the
 * contender made (warm-up and verification included), else the run fails.
 *
 * "ceiling" is the faster of raw-token and raw-session.  Contenders are
 * interleaved (their order rotates every round) and each measurement is
 * repeated; the table shows medians.  Before measuring, one signature of
 * each contender is verified with the default provider in a separate
 * library context, with the public key read from the token's public object
 * by raw PKCS#11 (so the check does not go through the code under test).
 *
 * The token is a throwaway: SOFTHSM2_CONF points into a temp dir that is
 * removed at the end; keys are made with C_GenerateKeyPair.
 *
 * --rss: resident size (VmRSS) after 10,000 and 200,000 signatures of one
 * contender (provider by default) with P-256, in this process.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/store.h>

#include "signbench.h"

#define TOKEN_LABEL "primus-bench"
#define USER_PIN "24681357"
#define SO_PIN "13572468"
#define MAX_THREADS 64
#define MAX_ROUNDS 101
#define SIG_MAX 1024

/* ---- options --------------------------------------------------------------- */
static struct {
    double seconds;
    int rounds;
    int threads[16];
    int n_threads;
    const char *algs;
    const char *module;
    const char *provider;
    const char *engine;
    const char *json;
    const char *extra_conf[16];
    int n_extra_conf;
    int rss, rss_only, rss_threads;
    long rss_count;
    const char *rss_contender;
    int keep, verbose, no_libp11, extra, audit;
    int only_set, only[16];     /* --contenders LIST */
} opt = {
    .seconds = 2.0,
    .rounds = 5,
    .algs = "rsa2048,rsa2048-pss,rsa3072,rsa3072-pss,p256,p384",
    .rss_threads = 1,
    .rss_count = 200000,
    .rss_contender = "provider",
};

static __attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "signbench: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- PKCS#11, raw ------------------------------------------------------------ */
static CK_FUNCTION_LIST *fl;
static void *module_handle;
static CK_SLOT_ID slot;
static CK_SESSION_HANDLE admin; /* kept open: the login lasts while a session is open */

static const char *rv_text(CK_RV rv)
{
    static __thread char buf[32];
    switch (rv) {
    case CKR_OK: return "CKR_OK";
    case CKR_ARGUMENTS_BAD: return "CKR_ARGUMENTS_BAD";
    case CKR_GENERAL_ERROR: return "CKR_GENERAL_ERROR";
    case CKR_FUNCTION_FAILED: return "CKR_FUNCTION_FAILED";
    case CKR_KEY_HANDLE_INVALID: return "CKR_KEY_HANDLE_INVALID";
    case CKR_MECHANISM_INVALID: return "CKR_MECHANISM_INVALID";
    case CKR_MECHANISM_PARAM_INVALID: return "CKR_MECHANISM_PARAM_INVALID";
    case CKR_OBJECT_HANDLE_INVALID: return "CKR_OBJECT_HANDLE_INVALID";
    case CKR_OPERATION_ACTIVE: return "CKR_OPERATION_ACTIVE";
    case CKR_SESSION_HANDLE_INVALID: return "CKR_SESSION_HANDLE_INVALID";
    case CKR_USER_NOT_LOGGED_IN: return "CKR_USER_NOT_LOGGED_IN";
    case CKR_BUFFER_TOO_SMALL: return "CKR_BUFFER_TOO_SMALL";
    case CKR_CRYPTOKI_NOT_INITIALIZED: return "CKR_CRYPTOKI_NOT_INITIALIZED";
    case CKR_TEMPLATE_INCONSISTENT: return "CKR_TEMPLATE_INCONSISTENT";
    case CKR_ATTRIBUTE_VALUE_INVALID: return "CKR_ATTRIBUTE_VALUE_INVALID";
    default:
        snprintf(buf, sizeof(buf), "CKR_0x%08lx", (unsigned long)rv);
        return buf;
    }
}

#define CK(call)                                                                    \
    do {                                                                            \
        CK_RV rv_ = (call);                                                         \
        if (rv_ != CKR_OK)                                                          \
            die("%s failed: %s (%s:%d)", #call, rv_text(rv_), __FILE__, __LINE__); \
    } while (0)

static void pad_label(unsigned char out[32], const char *label)
{
    size_t n = strlen(label);
    memset(out, ' ', 32);
    memcpy(out, label, n > 32 ? 32 : n);
}

static void token_init(void)
{
    CK_C_GetFunctionList gfl;
    CK_C_INITIALIZE_ARGS args;
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64, i;
    CK_TOKEN_INFO ti;
    unsigned char label[32];
    int found = 0;

    module_handle = dlopen(opt.module, RTLD_NOW | RTLD_LOCAL);
    if (module_handle == NULL)
        die("cannot load %s: %s", opt.module, dlerror());
    gfl = (CK_C_GetFunctionList)dlsym(module_handle, "C_GetFunctionList");
    if (gfl == NULL)
        die("%s has no C_GetFunctionList", opt.module);
    CK(gfl(&fl));
    /* The first C_Initialize decides SoftHSM's locking for the whole process:
     * make it thread-safe (the provider and libp11 then see
     * CKR_CRYPTOKI_ALREADY_INITIALIZED and share the instance). */
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    CK(fl->C_Initialize(&args));
    CK(fl->C_GetSlotList(CK_FALSE, slots, &n));
    for (i = 0; i < n && !found; i++)
        if (fl->C_GetTokenInfo(slots[i], &ti) == CKR_OK && !(ti.flags & CKF_TOKEN_INITIALIZED)) {
            slot = slots[i];
            found = 1;
        }
    if (!found)
        die("no free SoftHSM slot");
    pad_label(label, TOKEN_LABEL);
    CK(fl->C_InitToken(slot, (CK_UTF8CHAR *)SO_PIN, strlen(SO_PIN), label));
    /* SoftHSM gives an initialized token a new slot id: find it by label */
    n = 64;
    found = 0;
    CK(fl->C_GetSlotList(CK_TRUE, slots, &n));
    for (i = 0; i < n && !found; i++)
        if (fl->C_GetTokenInfo(slots[i], &ti) == CKR_OK && memcmp(ti.label, label, 32) == 0) {
            slot = slots[i];
            found = 1;
        }
    if (!found)
        die("the new token is not listed");
    CK(fl->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &admin));
    CK(fl->C_Login(admin, CKU_SO, (CK_UTF8CHAR *)SO_PIN, strlen(SO_PIN)));
    CK(fl->C_InitPIN(admin, (CK_UTF8CHAR *)USER_PIN, strlen(USER_PIN)));
    CK(fl->C_Logout(admin));
    CK(fl->C_Login(admin, CKU_USER, (CK_UTF8CHAR *)USER_PIN, strlen(USER_PIN)));
}

/* ---- keys and algorithms ------------------------------------------------------ */
typedef struct bench_key {
    const char *label;
    unsigned char id;
    CK_KEY_TYPE type;
    CK_ULONG bits;
    const unsigned char *ec_oid;
    size_t ec_oid_len;
    const char *group;         /* OpenSSL group name for EC */
    int made;
    CK_OBJECT_HANDLE priv, pub;
    EVP_PKEY *verify_pkey;     /* public half, default provider, verify libctx */
    EVP_PKEY *prov_pkey;       /* through the primus provider */
    EVP_PKEY *aud_pkey;        /* --audit: the same, in actx (audit log on) */
    EVP_PKEY *eng_pkey;        /* through libp11 */
    CK_OBJECT_HANDLE shared;   /* --extra: session copy held by the admin session */
    EVP_PKEY *sw_pkey;         /* --extra: a software key of the same size */
    EVP_PKEY *swp_pkey;        /* --extra: the same, decoded from PEM in pctx */
    char uri[160];
} bench_key;

static const unsigned char oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const unsigned char oid_p384[] = {0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};

static bench_key keys[] = {
    {.label = "rsa2048", .id = 1, .type = CKK_RSA, .bits = 2048},
    {.label = "rsa3072", .id = 2, .type = CKK_RSA, .bits = 3072},
    {.label = "p256", .id = 3, .type = CKK_EC, .bits = 256, .ec_oid = oid_p256,
     .ec_oid_len = sizeof(oid_p256), .group = "prime256v1"},
    {.label = "p384", .id = 4, .type = CKK_EC, .bits = 384, .ec_oid = oid_p384,
     .ec_oid_len = sizeof(oid_p384), .group = "secp384r1"},
};
#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

typedef struct alg_def {
    const char *name;
    const char *key;
    int pss;
    const char *md;            /* OpenSSL digest name */
    int selected;
    bench_key *k;
    EVP_MD *md_fetched;        /* verify libctx: raw contenders hash with it */
    size_t md_len;
} alg_def;

static alg_def algs[] = {
    {.name = "rsa2048", .key = "rsa2048", .md = "SHA256"},
    {.name = "rsa2048-pss", .key = "rsa2048", .pss = 1, .md = "SHA256"},
    {.name = "rsa3072", .key = "rsa3072", .md = "SHA256"},
    {.name = "rsa3072-pss", .key = "rsa3072", .pss = 1, .md = "SHA256"},
    {.name = "p256", .key = "p256", .md = "SHA256"},
    {.name = "p384", .key = "p384", .md = "SHA384"},
};
#define N_ALGS (sizeof(algs) / sizeof(algs[0]))

static OSSL_LIB_CTX *vctx;    /* default provider only: hashing for raw, verification */
static OSSL_LIB_CTX *pctx;    /* primus + default */
static OSSL_LIB_CTX *actx;    /* --audit: the same, with primus-audit-log and -key */
static bench_engine *engine;
static char engine_error[512];
static char tmpdir[PATH_MAX];

static void key_generate(bench_key *k)
{
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_BYTE exp[] = {1, 0, 1};
    CK_ULONG bits = k->bits;
    CK_MECHANISM mech = {k->type == CKK_RSA ? CKM_RSA_PKCS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN,
                         NULL, 0};
    CK_ATTRIBUTE pub[8] = {
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_VERIFY, &yes, sizeof(yes)},
        {CKA_ID, &k->id, 1},
        {CKA_LABEL, (void *)k->label, strlen(k->label)},
    };
    CK_ATTRIBUTE priv[] = {
        {CKA_TOKEN, &yes, sizeof(yes)},
        {CKA_PRIVATE, &yes, sizeof(yes)},
        {CKA_SENSITIVE, &yes, sizeof(yes)},
        {CKA_EXTRACTABLE, &no, sizeof(no)},
        {CKA_SIGN, &yes, sizeof(yes)},
        {CKA_ID, &k->id, 1},
        {CKA_LABEL, (void *)k->label, strlen(k->label)},
    };
    CK_ULONG npub = 4;

    if (k->type == CKK_RSA) {
        pub[npub++] = (CK_ATTRIBUTE){CKA_MODULUS_BITS, &bits, sizeof(bits)};
        pub[npub++] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, exp, sizeof(exp)};
    } else {
        pub[npub++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)k->ec_oid, k->ec_oid_len};
    }
    CK(fl->C_GenerateKeyPair(admin, &mech, pub, npub, priv, sizeof(priv) / sizeof(priv[0]),
                             &k->pub, &k->priv));
    snprintf(k->uri, sizeof(k->uri), "pkcs11:token=%s;object=%s;type=private", TOKEN_LABEL,
             k->label);
    k->made = 1;
}

static unsigned char *get_attr(CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, CK_ULONG *len)
{
    CK_ATTRIBUTE a = {type, NULL, 0};
    CK(fl->C_GetAttributeValue(admin, h, &a, 1));
    a.pValue = malloc(a.ulValueLen ? a.ulValueLen : 1);
    CK(fl->C_GetAttributeValue(admin, h, &a, 1));
    *len = a.ulValueLen;
    return a.pValue;
}

/* The public half, from the token's public object, as a default-provider key. */
static void key_read_public(bench_key *k)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params;
    EVP_PKEY_CTX *ctx;
    CK_ULONG l1, l2;
    unsigned char *a1, *a2;
    BIGNUM *n = NULL, *e = NULL;

    if (k->type == CKK_RSA) {
        a1 = get_attr(k->pub, CKA_MODULUS, &l1);
        a2 = get_attr(k->pub, CKA_PUBLIC_EXPONENT, &l2);
        n = BN_bin2bn(a1, (int)l1, NULL);
        e = BN_bin2bn(a2, (int)l2, NULL);
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n);
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e);
    } else {
        a1 = get_attr(k->pub, CKA_EC_PARAMS, &l1);
        a2 = get_attr(k->pub, CKA_EC_POINT, &l2);
        if (l1 != k->ec_oid_len || memcmp(a1, k->ec_oid, l1) != 0)
            die("%s: CKA_EC_PARAMS is not the curve asked for", k->label);
        /* CKA_EC_POINT is a DER OCTET STRING around the point */
        size_t off = 0, plen = l2;
        if (l2 > 2 && a2[0] == 0x04) {
            if (a2[1] < 0x80) {
                off = 2;
                plen = a2[1];
            } else if (a2[1] == 0x81) {
                off = 3;
                plen = a2[2];
            }
            if (off + plen != l2) /* was not wrapped after all */
                off = 0, plen = l2;
        }
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, k->group, 0);
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, a2 + off, plen);
    }
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(vctx, k->type == CKK_RSA ? "RSA" : "EC", NULL);
    if (ctx == NULL || params == NULL || EVP_PKEY_fromdata_init(ctx) <= 0
        || EVP_PKEY_fromdata(ctx, &k->verify_pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        die("%s: cannot build the public key from the token's public object", k->label);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    free(a1);
    free(a2);
}

static void ossl_die(const char *what)
{
    unsigned long code;
    char buf[512];

    fprintf(stderr, "signbench: %s\n", what);
    while ((code = ERR_get_error()) != 0) {
        ERR_error_string_n(code, buf, sizeof(buf));
        fprintf(stderr, "  %s\n", buf);
    }
    exit(1);
}

static void ossl_errors(FILE *f)
{
    unsigned long code;
    const char *data;
    int flags;
    char buf[512];

    while ((code = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        ERR_error_string_n(code, buf, sizeof(buf));
        fprintf(f, "  %s%s%s\n", buf, (flags & ERR_TXT_STRING) ? ": " : "",
                (flags & ERR_TXT_STRING) ? data : "");
    }
}

/* ---- the provider's library contexts ----------------------------------------- */
static char audit_log[PATH_MAX + 32];

static void write_pin_file(void)
{
    char pinfile[PATH_MAX + 32];
    FILE *f;

    snprintf(pinfile, sizeof(pinfile), "%s/pin", tmpdir);
    f = fopen(pinfile, "w");
    if (f == NULL || fputs(USER_PIN, f) < 0 || fclose(f) != 0)
        die("cannot write %s", pinfile);
    chmod(pinfile, 0600);
}

/* A 32-byte random HMAC key, mode 0600, as docs/AUDIT.md asks. */
static void write_audit_key(const char *path)
{
    unsigned char key[32];
    int fd;

    if (getentropy(key, sizeof(key)) != 0)
        die("getentropy: %s", strerror(errno));
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, key, sizeof(key)) != (ssize_t)sizeof(key) || close(fd) != 0)
        die("cannot write %s: %s", path, strerror(errno));
}

/* A library context with primus + default from NAME.cnf in the temp dir:
 * the primus section holds the module, the PIN file, every --provider-conf
 * line and then the lines in more[] (NULL-terminated). */
static OSSL_LIB_CTX *provider_setup(const char *name, const char *const *more)
{
    char conf[PATH_MAX + 32];
    OSSL_LIB_CTX *ctx;
    FILE *f;
    int i;

    snprintf(conf, sizeof(conf), "%s/%s.cnf", tmpdir, name);
    f = fopen(conf, "w");
    if (f == NULL)
        die("cannot write %s", conf);
    fprintf(f,
            "openssl_conf = openssl_init\n"
            "[openssl_init]\nproviders = provider_sect\n"
            "[provider_sect]\ndefault = default_sect\nprimus = primus_sect\n"
            "[default_sect]\nactivate = 1\n"
            "[primus_sect]\nmodule = %s\npkcs11-module-path = %s\n"
            "pkcs11-module-token-pin = file:%s/pin\n",
            opt.provider, opt.module, tmpdir);
    for (i = 0; i < opt.n_extra_conf; i++)
        fprintf(f, "%s\n", opt.extra_conf[i]);
    for (i = 0; more && more[i]; i++)
        fprintf(f, "%s\n", more[i]);
    fprintf(f, "activate = 1\n");
    if (fclose(f) != 0)
        die("cannot write %s", conf);
    ctx = OSSL_LIB_CTX_new();
    if (ctx == NULL || !OSSL_LIB_CTX_load_config(ctx, conf))
        ossl_die("loading the provider configuration failed");
    if (!OSSL_PROVIDER_available(ctx, "primus"))
        ossl_die("the primus provider is not available after loading the configuration");
    return ctx;
}

/* --audit: the provider's context again, with the audit log on. */
static OSSL_LIB_CTX *provider_audit_setup(void)
{
    char key[PATH_MAX + 32], log_line[PATH_MAX + 64], key_line[PATH_MAX + 64];
    const char *more[] = {log_line, key_line, NULL};

    snprintf(audit_log, sizeof(audit_log), "%s/audit.jsonl", tmpdir);
    snprintf(key, sizeof(key), "%s/audit.key", tmpdir);
    write_audit_key(key);
    snprintf(log_line, sizeof(log_line), "primus-audit-log = %s", audit_log);
    snprintf(key_line, sizeof(key_line), "primus-audit-key = %s", key);
    return provider_setup("openssl-audit", more);
}

static EVP_PKEY *provider_load_key(OSSL_LIB_CTX *ctx, const char *uri)
{
    OSSL_STORE_CTX *store = OSSL_STORE_open_ex(uri, ctx, NULL, NULL, NULL, NULL, NULL, NULL);
    OSSL_STORE_INFO *info;
    EVP_PKEY *pkey = NULL;

    if (store == NULL)
        return NULL;
    while (pkey == NULL && !OSSL_STORE_eof(store)) {
        info = OSSL_STORE_load(store);
        if (info == NULL)
            continue;
        if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            pkey = OSSL_STORE_INFO_get1_PKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(store);
    return pkey;
}

/* ---- contenders ----------------------------------------------------------------- */
enum { C_RAW_TOKEN, C_RAW_SESSION, C_PROVIDER, C_LIBP11, C_RAW_SHARED, C_SOFTWARE, C_SW_PROV,
       C_PROV_AUDIT, N_CONT };
static const char *const cont_names[N_CONT] = {"raw-token", "raw-session", "provider", "libp11",
                                               "raw-shared", "software", "sw+primus",
                                               "provider+audit"};
/* --extra adds raw-shared (one session copy of the key, made in the admin
 * session and used by every thread, as a session-key cache shared by a
 * session pool would), software (the default provider with a key of the
 * same size in memory: what a PEM key costs) and sw+primus (the same
 * software key read from PEM in the provider's library context, where
 * primus is loaded beside the default provider: what merely loading the
 * provider costs a program that signs with a PEM key).  --audit adds
 * provider+audit (see the top of this file). */
static int cont_enabled(int c)
{
    if (opt.only_set && !opt.only[c])
        return 0;
    if (c == C_LIBP11)
        return !opt.no_libp11;
    if (c == C_PROV_AUDIT)
        return opt.audit;
    if (c >= C_RAW_SHARED)
        return opt.extra;
    return 1;
}

/* The library context and key an EVP contender signs with (NULL: none). */
static OSSL_LIB_CTX *cont_libctx(int c)
{
    return c == C_SOFTWARE ? vctx : c == C_PROV_AUDIT ? actx : pctx;
}

static EVP_PKEY *cont_pkey(int c, const bench_key *k)
{
    switch (c) {
    case C_PROVIDER: return k->prov_pkey;
    case C_PROV_AUDIT: return k->aud_pkey;
    case C_LIBP11: return k->eng_pkey;
    case C_SOFTWARE: return k->sw_pkey;
    case C_SW_PROV: return k->swp_pkey;
    default: return NULL;
    }
}

/* Successful signatures per contender, summed by worker_done (always called
 * on the main thread): --audit checks the log against it. */
static long signatures_made[N_CONT];

/* What is signed: the size of a TLS 1.3 CertificateVerify input. */
static unsigned char message[130];

typedef struct worker {
    int cont;
    alg_def *a;
    CK_SESSION_HANDLE s;
    CK_OBJECT_HANDLE h, copy;
    EVP_MD_CTX *mctx;
    long signed_ok;            /* successful signatures, warm-up included */
    unsigned char sig[SIG_MAX];
    size_t siglen;
    char err[512];
} worker;

static const unsigned char digestinfo_sha256[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                                  0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                                  0x01, 0x05, 0x00, 0x04, 0x20};
static const unsigned char digestinfo_sha384[] = {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60,
                                                  0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                                                  0x02, 0x05, 0x00, 0x04, 0x30};

static int worker_init(worker *w, int cont, alg_def *a)
{
    memset(w, 0, sizeof(*w));
    w->cont = cont;
    w->a = a;
    switch (cont) {
    case C_RAW_TOKEN:
    case C_RAW_SESSION:
    case C_RAW_SHARED: {
        CK_RV rv = fl->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &w->s);
        if (rv != CKR_OK) {
            snprintf(w->err, sizeof(w->err), "C_OpenSession: %s", rv_text(rv));
            return 0;
        }
        w->h = cont == C_RAW_SHARED ? a->k->shared : a->k->priv;
        if (cont == C_RAW_SESSION) {
            CK_BBOOL no = CK_FALSE;
            CK_ATTRIBUTE t[] = {{CKA_TOKEN, &no, sizeof(no)}};
            rv = fl->C_CopyObject(w->s, a->k->priv, t, 1, &w->copy);
            if (rv != CKR_OK) {
                snprintf(w->err, sizeof(w->err), "C_CopyObject(CKA_TOKEN=false): %s", rv_text(rv));
                return 0;
            }
            w->h = w->copy;
        }
        return 1;
    }
    case C_PROVIDER:
    case C_PROV_AUDIT:
    case C_LIBP11:
    case C_SOFTWARE:
    case C_SW_PROV:
        if (cont_pkey(cont, a->k) == NULL) {
            snprintf(w->err, sizeof(w->err), "no key");
            return 0;
        }
        w->mctx = EVP_MD_CTX_new();
        return w->mctx != NULL;
    }
    return 0;
}

static void worker_done(worker *w)
{
    signatures_made[w->cont] += w->signed_ok;
    if (w->copy)
        fl->C_DestroyObject(w->s, w->copy);
    if (w->s)
        fl->C_CloseSession(w->s);
    EVP_MD_CTX_free(w->mctx);
    memset(w, 0, sizeof(*w));
}

static int raw_sign(worker *w)
{
    alg_def *a = w->a;
    unsigned char in[128], *hash;
    unsigned int hlen = 0;
    size_t prefix = 0;
    CK_RSA_PKCS_PSS_PARAMS pss;
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    CK_ULONG len = sizeof(w->sig);
    CK_RV rv;

    if (a->k->type == CKK_RSA && !a->pss) {
        const unsigned char *di = a->md_len == 32 ? digestinfo_sha256 : digestinfo_sha384;
        prefix = sizeof(digestinfo_sha256);
        memcpy(in, di, prefix);
        mech.mechanism = CKM_RSA_PKCS;
    } else if (a->pss) {
        pss.hashAlg = a->md_len == 32 ? CKM_SHA256 : CKM_SHA384;
        pss.mgf = a->md_len == 32 ? CKG_MGF1_SHA256 : CKG_MGF1_SHA384;
        pss.sLen = a->md_len;
        mech.mechanism = CKM_RSA_PKCS_PSS;
        mech.pParameter = &pss;
        mech.ulParameterLen = sizeof(pss);
    }
    hash = in + prefix;
    if (!EVP_Digest(message, sizeof(message), hash, &hlen, a->md_fetched, NULL)) {
        snprintf(w->err, sizeof(w->err), "EVP_Digest failed");
        return 0;
    }
    rv = fl->C_SignInit(w->s, &mech, w->h);
    if (rv == CKR_OK)
        rv = fl->C_Sign(w->s, in, prefix + hlen, w->sig, &len);
    if (rv != CKR_OK) {
        snprintf(w->err, sizeof(w->err), "C_SignInit/C_Sign: %s", rv_text(rv));
        return 0;
    }
    w->siglen = len;
    return 1;
}

static int provider_sign(worker *w)
{
    alg_def *a = w->a;
    OSSL_PARAM params[4], *p = params;
    size_t len = sizeof(w->sig);

    if (a->pss) {
        *p++ = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE,
                                                OSSL_PKEY_RSA_PAD_MODE_PSS, 0);
        *p++ = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN,
                                                OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST, 0);
        *p++ = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST,
                                                (char *)a->md, 0);
    }
    *p = OSSL_PARAM_construct_end();
    if (EVP_DigestSignInit_ex(w->mctx, NULL, a->md, cont_libctx(w->cont), NULL,
                              cont_pkey(w->cont, a->k), a->pss ? params : NULL) != 1
        || EVP_DigestSign(w->mctx, w->sig, &len, message, sizeof(message)) != 1) {
        unsigned long code = ERR_peek_last_error();
        char buf[256] = "";
        if (code)
            ERR_error_string_n(code, buf, sizeof(buf));
        snprintf(w->err, sizeof(w->err), "EVP_DigestSignInit_ex/EVP_DigestSign: %s", buf);
        ERR_clear_error();
        return 0;
    }
    w->siglen = len;
    return 1;
}

static int libp11_sign(worker *w)
{
    size_t len = sizeof(w->sig);

    if (!bench_engine_sign(w->mctx, w->a->k->eng_pkey, w->a->md, w->a->pss, message,
                           sizeof(message), w->sig, &len)) {
        unsigned long code = ERR_peek_last_error();
        char buf[256] = "";
        if (code)
            ERR_error_string_n(code, buf, sizeof(buf));
        snprintf(w->err, sizeof(w->err), "engine EVP_DigestSign: %s", buf);
        ERR_clear_error();
        return 0;
    }
    w->siglen = len;
    return 1;
}

/* One function per contender, never inlined, so that a profile (profile.sh
 * runs callgrind) tells the contenders apart by name.  The volatile store
 * makes the bodies differ: identical functions would be folded into one. */
#define NOINLINE __attribute__((noinline))
static volatile int last_contender;
static NOINLINE int sign_raw_token(worker *w) { last_contender = 0; return raw_sign(w); }
static NOINLINE int sign_raw_session(worker *w) { last_contender = 1; return raw_sign(w); }
static NOINLINE int sign_raw_shared(worker *w) { last_contender = 2; return raw_sign(w); }
static NOINLINE int sign_provider(worker *w) { last_contender = 3; return provider_sign(w); }
static NOINLINE int sign_software(worker *w) { last_contender = 4; return provider_sign(w); }
static NOINLINE int sign_libp11(worker *w) { last_contender = 5; return libp11_sign(w); }
static NOINLINE int sign_sw_prov(worker *w) { last_contender = 6; return provider_sign(w); }
static NOINLINE int sign_provider_audit(worker *w) { last_contender = 7; return provider_sign(w); }

static int worker_sign(worker *w)
{
    int ok;

    switch (w->cont) {
    case C_RAW_TOKEN: ok = sign_raw_token(w); break;
    case C_RAW_SESSION: ok = sign_raw_session(w); break;
    case C_RAW_SHARED: ok = sign_raw_shared(w); break;
    case C_PROVIDER: ok = sign_provider(w); break;
    case C_PROV_AUDIT: ok = sign_provider_audit(w); break;
    case C_SOFTWARE: ok = sign_software(w); break;
    case C_SW_PROV: ok = sign_sw_prov(w); break;
    default: ok = sign_libp11(w); break;
    }
    w->signed_ok += ok;
    return ok;
}

/* Verify w's last signature with the default provider (verify libctx). */
static int worker_verify(worker *w)
{
    alg_def *a = w->a;
    unsigned char der[SIG_MAX];
    const unsigned char *sig = w->sig;
    size_t siglen = w->siglen;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    EVP_PKEY_CTX *vp = NULL;
    int ok;

    if ((w->cont == C_RAW_TOKEN || w->cont == C_RAW_SESSION || w->cont == C_RAW_SHARED)
        && a->k->type == CKK_EC) {
        /* CKM_ECDSA gives r||s; OpenSSL verifies DER */
        ECDSA_SIG *es = ECDSA_SIG_new();
        unsigned char *p = der;
        size_t half = w->siglen / 2;
        int l;
        ECDSA_SIG_set0(es, BN_bin2bn(w->sig, (int)half, NULL),
                       BN_bin2bn(w->sig + half, (int)half, NULL));
        l = i2d_ECDSA_SIG(es, &p);
        ECDSA_SIG_free(es);
        if (l <= 0)
            return 0;
        sig = der;
        siglen = (size_t)l;
    }
    ok = EVP_DigestVerifyInit_ex(m, &vp, a->md, vctx, NULL,
                                 w->cont == C_SOFTWARE || w->cont == C_SW_PROV ? a->k->sw_pkey
                                                                               : a->k->verify_pkey,
                                 NULL) == 1;
    if (ok && a->pss)
        ok = EVP_PKEY_CTX_set_rsa_padding(vp, RSA_PKCS1_PSS_PADDING) > 0
             && EVP_PKEY_CTX_set_rsa_pss_saltlen(vp, RSA_PSS_SALTLEN_DIGEST) > 0;
    ok = ok && EVP_DigestVerify(m, sig, siglen, message, sizeof(message)) == 1;
    EVP_MD_CTX_free(m);
    ERR_clear_error();
    return ok;
}

static double thread_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double process_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- the runner ---------------------------------------------------------------- */
typedef struct runner {
    pthread_barrier_t start;
    atomic_int stop;
    int cont;
    alg_def *a;
} runner;

typedef struct run_thread {
    pthread_t t;
    runner *r;
    worker w;
    long ops;
    double end, cpu;
    int failed;
} run_thread;

static void *run_thread_main(void *arg)
{
    run_thread *rt = arg;
    int i, ok = worker_init(&rt->w, rt->r->cont, rt->r->a);

    /* warm-up: the first operations log in, fill pools, resolve handles */
    for (i = 0; ok && i < 3; i++)
        ok = worker_sign(&rt->w);
    rt->failed = !ok;
    double c0;

    pthread_barrier_wait(&rt->r->start);
    c0 = thread_cpu_now();
    while (ok && !atomic_load_explicit(&rt->r->stop, memory_order_relaxed)) {
        if (!worker_sign(&rt->w)) {
            rt->failed = 1;
            break;
        }
        rt->ops++;
    }
    rt->end = now();
    rt->cpu = thread_cpu_now() - c0;
    return NULL;
}

/* ops/s of contender cont with n threads for opt.seconds, and the CPU time
 * its threads spent per operation (µs) in *cpu_us; -1 on failure.  CPU time
 * per operation hardly depends on what else the machine runs: it is the
 * robust measure of per-signature overhead, ops/s the measure of scaling.
 * *proc_us: the CPU time of the whole process over the same window per
 * operation, i.e. with the work of threads the contender starts behind the
 * scenes (the audit log's writer). */
static double measure(int cont, alg_def *a, int n, double *cpu_us, double *proc_us, char *err,
                      size_t errlen)
{
    runner r;
    run_thread th[MAX_THREADS];
    struct timespec ts;
    double t0, p0, cpu = 0, end = 0;
    long ops = 0;
    int i, failed = 0;

    memset(&r, 0, sizeof(r));
    memset(th, 0, sizeof(th));
    r.cont = cont;
    r.a = a;
    pthread_barrier_init(&r.start, NULL, (unsigned)n + 1);
    for (i = 0; i < n; i++) {
        th[i].r = &r;
        if (pthread_create(&th[i].t, NULL, run_thread_main, &th[i]) != 0)
            die("pthread_create failed");
    }
    pthread_barrier_wait(&r.start);
    t0 = now();
    p0 = process_cpu_now();
    ts.tv_sec = (time_t)opt.seconds;
    ts.tv_nsec = (long)((opt.seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    atomic_store(&r.stop, 1);
    for (i = 0; i < n; i++) {
        pthread_join(th[i].t, NULL);
        ops += th[i].ops;
        cpu += th[i].cpu;
        if (th[i].end > end)
            end = th[i].end;
        if (th[i].failed && !failed) {
            failed = 1;
            snprintf(err, errlen, "%s", th[i].w.err);
        }
    }
    *proc_us = ops > 0 ? (process_cpu_now() - p0) * 1e6 / (double)ops : -1;
    for (i = 0; i < n; i++)
        worker_done(&th[i].w);
    pthread_barrier_destroy(&r.start);
    *cpu_us = ops > 0 ? cpu * 1e6 / (double)ops : -1;
    return failed || ops == 0 ? -1 : ops / (end - t0);
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double median(const double *v, int n)
{
    double s[MAX_ROUNDS];
    memcpy(s, v, n * sizeof(double));
    qsort(s, n, sizeof(double), cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* ---- memory ------------------------------------------------------------------- */
static long vmrss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

typedef struct rss_thread {
    pthread_t t;
    worker w;
    long count;
    int failed;
} rss_thread;

static void *rss_thread_main(void *arg)
{
    rss_thread *rt = arg;
    long i;

    for (i = 0; i < rt->count; i++)
        if (!worker_sign(&rt->w)) {
            rt->failed = 1;
            break;
        }
    return NULL;
}

/* Sign until the total reaches target, spread over the threads. */
static void rss_sign(rss_thread *th, int n, long todo)
{
    int i;

    for (i = 0; i < n; i++) {
        th[i].count = todo / n + (i < todo % n);
        pthread_create(&th[i].t, NULL, rss_thread_main, &th[i]);
    }
    for (i = 0; i < n; i++) {
        pthread_join(th[i].t, NULL);
        if (th[i].failed)
            die("--rss: %s signature failed: %s", cont_names[th[i].w.cont], th[i].w.err);
    }
}

static void rss_phase(void)
{
    static const long marks[] = {1000, 10000, 50000, 100000, 200000, 500000, 1000000};
    alg_def *a = NULL;
    rss_thread th[MAX_THREADS];
    long done = 0, at10k = -1, last = -1, target;
    int cont, i, n = opt.rss_threads;
    size_t j;
    double t0;

    for (cont = 0; cont < N_CONT; cont++)
        if (strcmp(cont_names[cont], opt.rss_contender) == 0)
            break;
    if (cont == N_CONT)
        die("--rss-contender: unknown contender %s", opt.rss_contender);
    for (j = 0; j < N_ALGS; j++)
        if (strcmp(algs[j].name, "p256") == 0)
            a = &algs[j];
    memset(th, 0, sizeof(th));
    for (i = 0; i < n; i++)
        if (!worker_init(&th[i].w, cont, a))
            die("--rss: %s: %s", cont_names[cont], th[i].w.err);
    printf("\nMemory: VmRSS of this process during %ld %s P-256 signatures (%d thread%s)\n",
           opt.rss_count, cont_names[cont], n, n == 1 ? "" : "s");
    printf("  %10s  %10s\n", "signatures", "VmRSS KiB");
    printf("  %10d  %10ld\n", 0, vmrss_kib());
    t0 = now();
    for (j = 0; j < sizeof(marks) / sizeof(marks[0]); j++) {
        target = marks[j] < opt.rss_count ? marks[j] : opt.rss_count;
        if (target <= done)
            continue;
        rss_sign(th, n, target - done);
        done = target;
        last = vmrss_kib();
        if (done == 10000)
            at10k = last;
        printf("  %10ld  %10ld\n", done, last);
        fflush(stdout);
        if (done >= opt.rss_count)
            break;
    }
    printf("  (%.1f s, %.0f signatures/s)\n", now() - t0, done / (now() - t0));
    if (at10k >= 0 && done > 10000)
        printf("RSS growth from 10,000 to %ld signatures: %+ld KiB (target: within 1024 KiB) %s\n",
               done, last - at10k, labs(last - at10k) <= 1024 ? "MET" : "MISSED");
    for (i = 0; i < n; i++)
        worker_done(&th[i].w);
}

static void print_load(const char *when)
{
    char buf[128] = "?";
    FILE *f = fopen("/proc/loadavg", "r");

    if (f) {
        if (fgets(buf, sizeof(buf), f))
            buf[strcspn(buf, "\n")] = '\0';
        fclose(f);
    }
    printf("(%s: nproc %ld, load average %s)\n", when, sysconf(_SC_NPROCESSORS_ONLN), buf);
}

/* ---- clean-up ------------------------------------------------------------------ */
static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* ---- audit on/off ---------------------------------------------------------------- */
/* One row of the tables (medians over the rounds). */
typedef struct row {
    const char *alg;
    int threads;
    double med[N_CONT], cpu[N_CONT], proc[N_CONT];
    /* --audit: provider+audit / provider, median over the rounds of the
     * ratio within each round (wall ops/s, thread CPU, process CPU) */
    double pair_wall, pair_cpu, pair_proc, spread_prov, spread_aud;
} row;

static void audit_table(const row *rows, int n_rows)
{
    int i;

    printf("\nAudit on/off: provider+audit (on) vs provider (off), medians of the rounds; "
           "paired = median\nof the on/off ratio within each round.  sig/s: on/off >= 0.95 is "
           "within 5 %%; CPU µs per\nsignature (threads that sign; process = the whole "
           "process, audit writer included):\non/off <= 1.05 is within 5 %%.\n");
    printf("%-12s %3s %8s %8s %6s %6s | %7s %7s %6s %6s | %7s %7s %6s %6s | %6s %6s %s\n",
           "alg", "thr", "off/s", "on/s", "on/off", "paired", "cpu off", "cpu on", "on/off",
           "paired", "proc off", "proc on", "on/off", "paired", "spr off", "spr on", "5%");
    for (i = 0; i < n_rows; i++) {
        const row *w = &rows[i];
        double off = w->med[C_PROVIDER], on = w->med[C_PROV_AUDIT];
        if (off <= 0 || on <= 0) {
            printf("%-12s %3d  (a contender failed)\n", w->alg, w->threads);
            continue;
        }
        printf("%-12s %3d %8.0f %8.0f %6.3f %6.3f | %7.1f %7.1f %6.3f %6.3f | %7.1f %7.1f %6.3f "
               "%6.3f | %5.0f%% %5.0f%% %s\n",
               w->alg, w->threads, off, on, on / off, w->pair_wall, w->cpu[C_PROVIDER],
               w->cpu[C_PROV_AUDIT], w->cpu[C_PROV_AUDIT] / w->cpu[C_PROVIDER], w->pair_cpu,
               w->proc[C_PROVIDER], w->proc[C_PROV_AUDIT],
               w->proc[C_PROV_AUDIT] / w->proc[C_PROVIDER], w->pair_proc, w->spread_prov * 100,
               w->spread_aud * 100, on / off >= 0.95 ? "met" : "MISSED");
    }
    fflush(stdout);
}

/* The log must hold one "sign" record per signature provider+audit made
 * (and end with stream-end: the library context was freed).  1 if so. */
static int audit_check(FILE *json)
{
    FILE *f = fopen(audit_log, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long records = 0, signs = 0, signs_ok = 0, made = signatures_made[C_PROV_AUDIT];
    int ended = 0, ok;
    struct stat st;

    if (f == NULL) {
        fprintf(stderr, "signbench: cannot read the audit log %s: %s\n", audit_log,
                strerror(errno));
        return 0;
    }
    while ((len = getline(&line, &cap, f)) > 0) {
        records++;
        if (strstr(line, "\"event\":\"sign\"")) {
            signs++;
            signs_ok += strstr(line, "\"result\":\"CKR_OK\"") != NULL;
        }
        ended = strstr(line, "\"event\":\"stream-end\"") != NULL;
    }
    free(line);
    fclose(f);
    if (stat(audit_log, &st) != 0)
        st.st_size = -1;
    ok = signs == made && signs_ok == signs && ended;
    printf("\nAudit log: %ld records, %ld \"sign\" (%ld CKR_OK) for %ld provider+audit "
           "signatures, %s: %s\n"
           "  %lld bytes (%.1f MB, %.0f bytes/record)\n",
           records, signs, signs_ok, made, ended ? "ends with stream-end" : "NO stream-end",
           ok ? "OK" : "MISMATCH", (long long)st.st_size, st.st_size / 1e6,
           records ? (double)st.st_size / records : 0.0);
    if (json)
        fprintf(json, ",\n\"audit\": {\"records\": %ld, \"sign_records\": %ld, "
                      "\"sign_records_ok\": %ld, \"signatures\": %ld, \"bytes\": %lld, "
                      "\"ok\": %s}",
                records, signs, signs_ok, made, (long long)st.st_size, ok ? "true" : "false");
    return ok;
}

/* ---- main ------------------------------------------------------------------------ */
static void usage(int code)
{
    fprintf(code ? stderr : stdout,
            "usage: signbench [options]\n"
            "  --seconds N         length of one measurement (default 2)\n"
            "  --rounds N          measurements per contender and row; medians (default 5)\n"
            "  --threads LIST      thread counts, e.g. 1,2,4 (default)\n"
            "  --algs LIST         of rsa2048,rsa2048-pss,rsa3072,rsa3072-pss,p256,p384 (default all)\n"
            "  --quick             smoke run: --seconds 0.3 --rounds 1 --threads 1,2\n"
            "  --rss               also measure VmRSS over --rss-count P-256 signatures\n"
            "  --rss-only          only that\n"
            "  --rss-count N       (default 200000)\n"
            "  --rss-threads N     (default 1)\n"
            "  --rss-contender C   provider (default), raw-token, raw-session, libp11,\n"
            "                      provider+audit\n"
            "  --provider-conf K=V extra line for the primus section (repeatable),\n"
            "                      e.g. primus-session-key-cache=yes\n"
            "  --module PATH       SoftHSM module (default $PRIMUS_SOFTHSM_MODULE or\n"
            "                      /usr/lib/softhsm/libsofthsm2.so)\n"
            "  --provider PATH     primus.so (default: ../provider/primus.so next to this binary)\n"
            "  --engine PATH       libp11 engine (default engines-3/pkcs11.so)\n"
            "  --no-libp11         leave libp11 out\n"
            "  --contenders LIST   only these (for profiling), e.g. provider,raw-session\n"
            "  --extra             also raw-shared (one session copy used by all threads) and\n"
            "                      software (default provider, key of the same size in memory)\n"
            "  --audit             also provider+audit (audit log and key on, in the temp dir);\n"
            "                      checks the log's sign records against the signatures made\n"
            "  --json FILE         every round's result as JSON\n"
            "  --verbose           print every round\n"
            "  --keep              keep the temp dir (token, openssl.cnf)\n");
    exit(code);
}

static void parse_threads(const char *list)
{
    char *copy = strdup(list), *save = NULL, *tok;

    opt.n_threads = 0;
    for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int n = atoi(tok);
        if (n < 1 || n > MAX_THREADS || opt.n_threads == 16)
            die("--threads: bad value %s", tok);
        opt.threads[opt.n_threads++] = n;
    }
    free(copy);
    if (opt.n_threads == 0)
        die("--threads: empty list");
}

static void default_paths(void)
{
    static char prov[PATH_MAX + 32];
    char exe[PATH_MAX];
    ssize_t n;

    if (opt.module == NULL)
        opt.module = getenv("PRIMUS_SOFTHSM_MODULE");
    if (opt.module == NULL)
        opt.module = "/usr/lib/softhsm/libsofthsm2.so";
    if (opt.engine == NULL)
        opt.engine = "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so";
    if (opt.provider == NULL) {
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n <= 0)
            die("cannot find the provider: give --provider");
        exe[n] = '\0';
        *strrchr(exe, '/') = '\0';
        snprintf(prov, sizeof(prov), "%s/../provider/primus.so", exe);
        opt.provider = prov;
    }
    if (access(opt.provider, R_OK) != 0)
        die("no provider at %s (build the primus target, or give --provider)", opt.provider);
}

int main(int argc, char **argv)
{
    int i, t, r, c;
    size_t j;
    char err[512];
    FILE *json = NULL;
    int json_first = 1, any_failure = 0;

    opt.threads[0] = 1, opt.threads[1] = 2, opt.threads[2] = 4, opt.n_threads = 3;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV() do { if (v == NULL) usage(2); i++; } while (0)
        if (strcmp(a, "--seconds") == 0) { NEEDV(); opt.seconds = atof(v); }
        else if (strcmp(a, "--rounds") == 0) { NEEDV(); opt.rounds = atoi(v); }
        else if (strcmp(a, "--threads") == 0) { NEEDV(); parse_threads(v); }
        else if (strcmp(a, "--algs") == 0) { NEEDV(); opt.algs = v; }
        else if (strcmp(a, "--quick") == 0) {
            opt.seconds = 0.3, opt.rounds = 1;
            parse_threads("1,2");
        }
        else if (strcmp(a, "--rss") == 0) opt.rss = 1;
        else if (strcmp(a, "--rss-only") == 0) opt.rss = opt.rss_only = 1;
        else if (strcmp(a, "--rss-count") == 0) { NEEDV(); opt.rss_count = atol(v); }
        else if (strcmp(a, "--rss-threads") == 0) { NEEDV(); opt.rss_threads = atoi(v); }
        else if (strcmp(a, "--rss-contender") == 0) { NEEDV(); opt.rss_contender = v; }
        else if (strcmp(a, "--provider-conf") == 0) {
            NEEDV();
            if (opt.n_extra_conf == 16 || strchr(v, '=') == NULL)
                usage(2);
            opt.extra_conf[opt.n_extra_conf++] = v;
        }
        else if (strcmp(a, "--module") == 0) { NEEDV(); opt.module = v; }
        else if (strcmp(a, "--provider") == 0) { NEEDV(); opt.provider = v; }
        else if (strcmp(a, "--engine") == 0) { NEEDV(); opt.engine = v; }
        else if (strcmp(a, "--no-libp11") == 0) opt.no_libp11 = 1;
        else if (strcmp(a, "--extra") == 0) opt.extra = 1;
        else if (strcmp(a, "--audit") == 0) opt.audit = 1;
        else if (strcmp(a, "--contenders") == 0) {
            char list[256], *save = NULL, *tok;
            NEEDV();
            snprintf(list, sizeof(list), "%s", v);
            for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                for (c = 0; c < N_CONT && strcmp(tok, cont_names[c]) != 0; c++)
                    ;
                if (c == N_CONT)
                    die("--contenders: unknown contender %s", tok);
                if (c == C_PROV_AUDIT)
                    opt.audit = 1;
                else if (c >= C_RAW_SHARED)
                    opt.extra = 1;
                opt.only[c] = 1;
            }
            opt.only_set = 1;
        }
        else if (strcmp(a, "--json") == 0) { NEEDV(); opt.json = v; }
        else if (strcmp(a, "--verbose") == 0) opt.verbose = 1;
        else if (strcmp(a, "--keep") == 0) opt.keep = 1;
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) usage(0);
        else usage(2);
#undef NEEDV
    }
    if (opt.seconds <= 0 || opt.rounds < 1 || opt.rounds > MAX_ROUNDS || opt.rss_threads < 1
        || opt.rss_threads > MAX_THREADS || opt.rss_count < 1)
        usage(2);
    default_paths();
    if (strcmp(opt.rss_contender, cont_names[C_PROV_AUDIT]) == 0 && (opt.rss || opt.rss_only))
        opt.audit = 1;
    if (opt.rss_only)
        opt.algs = "p256";
    else if (opt.rss && strstr(opt.algs, "p256") == NULL)
        die("--rss needs p256 among --algs");
    for (j = 0; j < N_ALGS; j++) {
        char list[512], *save = NULL, *tok;
        snprintf(list, sizeof(list), "%s", opt.algs);
        for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
            if (strcmp(tok, algs[j].name) == 0)
                algs[j].selected = 1;
    }
    {
        char list[512], *save = NULL, *tok;
        snprintf(list, sizeof(list), "%s", opt.algs);
        for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            for (j = 0; j < N_ALGS && strcmp(tok, algs[j].name) != 0; j++)
                ;
            if (j == N_ALGS)
                die("--algs: unknown algorithm %s", tok);
        }
    }

    /* The process's default library context (SoftHSM's OpenSSL, libp11)
     * must not pick up a system or user openssl.cnf that loads providers. */
    setenv("OPENSSL_CONF", "/dev/null", 1);

    snprintf(tmpdir, sizeof(tmpdir), "%s/primus-signbench.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(tmpdir) == NULL)
        die("mkdtemp: %s", strerror(errno));
    {
        char path[PATH_MAX + 32];
        FILE *f;
        snprintf(path, sizeof(path), "%s/tokens", tmpdir);
        mkdir(path, 0700);
        snprintf(path, sizeof(path), "%s/softhsm2.conf", tmpdir);
        f = fopen(path, "w");
        if (f == NULL)
            die("cannot write %s", path);
        fprintf(f, "directories.tokendir = %s/tokens\nobjectstore.backend = file\n"
                   "log.level = ERROR\nslots.removable = false\n", tmpdir);
        fclose(f);
        setenv("SOFTHSM2_CONF", path, 1);
    }
    for (i = 0; i < (int)sizeof(message); i++)
        message[i] = (unsigned char)(i < 64 ? 0x20 : 'A' + i % 26);

    vctx = OSSL_LIB_CTX_new();
    if (vctx == NULL || OSSL_PROVIDER_load(vctx, "default") == NULL)
        ossl_die("cannot make the verification library context");

    token_init();
    for (j = 0; j < N_ALGS; j++) {
        size_t k;
        if (!algs[j].selected)
            continue;
        for (k = 0; k < N_KEYS; k++)
            if (strcmp(keys[k].label, algs[j].key) == 0)
                algs[j].k = &keys[k];
        if (!algs[j].k->made) {
            key_generate(algs[j].k);
            key_read_public(algs[j].k);
        }
        algs[j].md_fetched = EVP_MD_fetch(vctx, algs[j].md, NULL);
        if (algs[j].md_fetched == NULL)
            ossl_die("EVP_MD_fetch");
        algs[j].md_len = (size_t)EVP_MD_get_size(algs[j].md_fetched);
    }

    write_pin_file();
    pctx = provider_setup("openssl", NULL);
    if (opt.audit)
        actx = provider_audit_setup();
    for (j = 0; j < N_KEYS; j++) {
        int pass;
        if (!keys[j].made)
            continue;
        for (pass = 0; pass < (opt.audit ? 2 : 1); pass++) {
            EVP_PKEY **pk = pass ? &keys[j].aud_pkey : &keys[j].prov_pkey;
            *pk = provider_load_key(pass ? actx : pctx, keys[j].uri);
            if (*pk == NULL) {
                fprintf(stderr, "signbench: %s: OSSL_STORE_open/load(\"%s\") gave no key:\n",
                        cont_names[pass ? C_PROV_AUDIT : C_PROVIDER], keys[j].uri);
                ossl_errors(stderr);
                any_failure = 1;
            }
        }
    }
    if (!opt.no_libp11) {
        engine = bench_engine_open(opt.engine, opt.module, USER_PIN, engine_error,
                                   sizeof(engine_error));
        if (engine == NULL) {
            fprintf(stderr, "signbench: libp11: %s\n", engine_error);
            any_failure = 1;
        }
        for (j = 0; engine && j < N_KEYS; j++) {
            if (!keys[j].made)
                continue;
            keys[j].eng_pkey = bench_engine_load_key(engine, keys[j].uri, engine_error,
                                                     sizeof(engine_error));
            if (keys[j].eng_pkey == NULL) {
                fprintf(stderr, "signbench: libp11: %s (%s)\n", engine_error, keys[j].uri);
                any_failure = 1;
            }
        }
    }

    if (opt.extra) {
        for (j = 0; j < N_KEYS; j++) {
            CK_BBOOL no = CK_FALSE;
            CK_ATTRIBUTE session_only[] = {{CKA_TOKEN, &no, sizeof(no)}};
            if (!keys[j].made)
                continue;
            CK(fl->C_CopyObject(admin, keys[j].priv, session_only, 1, &keys[j].shared));
            keys[j].sw_pkey = keys[j].type == CKK_RSA
                                  ? EVP_PKEY_Q_keygen(vctx, NULL, "RSA", (size_t)keys[j].bits)
                                  : EVP_PKEY_Q_keygen(vctx, NULL, "EC", keys[j].group);
            if (keys[j].sw_pkey == NULL)
                ossl_die("software key generation failed");
            {
                /* the same key through PEM, decoded where primus is loaded */
                BIO *b = BIO_new(BIO_s_mem());
                if (b == NULL || !PEM_write_bio_PrivateKey(b, keys[j].sw_pkey, NULL, NULL, 0,
                                                           NULL, NULL)
                    || (keys[j].swp_pkey = PEM_read_bio_PrivateKey_ex(b, NULL, NULL, NULL, pctx,
                                                                      NULL)) == NULL)
                    ossl_die("reading the software key from PEM in the provider's context");
                BIO_free(b);
            }
        }
    }

    print_load("start");
    /* One signature of each contender, checked by the default provider. */
    int usable[N_ALGS][N_CONT];
    printf("Verification (default provider, public key from the token's public object):\n");
    for (j = 0; j < N_ALGS; j++) {
        if (!algs[j].selected)
            continue;
        printf("  %-12s", algs[j].name);
        for (c = 0; c < N_CONT; c++) {
            worker w;
            const char *res;
            usable[j][c] = 0;
            if (!cont_enabled(c))
                continue;
            if (!worker_init(&w, c, &algs[j])) {
                res = "FAILED";
                fprintf(stderr, "signbench: %s %s: %s\n", algs[j].name, cont_names[c], w.err);
            } else if (!worker_sign(&w)) {
                res = "FAILED";
                fprintf(stderr, "signbench: %s %s: %s\n", algs[j].name, cont_names[c], w.err);
                ossl_errors(stderr);
            } else if (!worker_verify(&w)) {
                res = "BAD-SIGNATURE";
            } else {
                res = "ok";
                usable[j][c] = 1;
            }
            if (!usable[j][c])
                any_failure = 1;
            printf(" %s:%s", cont_names[c], res);
            worker_done(&w);
        }
        printf("\n");
    }
    fflush(stdout);

    if (opt.json) {
        json = fopen(opt.json, "w");
        if (json == NULL)
            die("cannot write %s", opt.json);
        fprintf(json, "{\"seconds\": %g, \"rounds\": %d, \"rows\": [", opt.seconds, opt.rounds);
    }

    /* rows kept for the CPU table printed at the end */
    static row rows[N_ALGS * 16];
    int n_rows = 0;
    int audit_on = cont_enabled(C_PROV_AUDIT);

    if (!opt.rss_only) {
        printf("\nSignatures per second (wall clock), median of %d round%s of %.2g s, contenders "
               "interleaved\n",
               opt.rounds, opt.rounds == 1 ? "" : "s", opt.seconds);
        printf("%-12s %3s %11s %11s %11s %11s %11s", "alg", "thr", "raw-token", "raw-session",
               "ceiling", "provider", "libp11");
        for (c = C_RAW_SHARED; c < N_CONT; c++)
            if (cont_enabled(c))
                printf(" %11s", cont_names[c]);
        printf(" %9s %9s", "prov/ceil", "prov/p11");
        if (audit_on)
            printf(" %9s", "aud/prov");
        printf(" %7s\n", "spread");
        for (j = 0; j < N_ALGS; j++) {
            if (!algs[j].selected)
                continue;
            for (t = 0; t < opt.n_threads; t++) {
                double v[N_CONT][MAX_ROUNDS], cu[N_CONT][MAX_ROUNDS], pu[N_CONT][MAX_ROUNDS];
                double med[N_CONT], cpu[N_CONT], proc[N_CONT], spreads[N_CONT];
                double ceil_, spread = 0;
                int n = opt.threads[t];
                for (r = 0; r < opt.rounds; r++) {
                    for (i = 0; i < N_CONT; i++) {
                        c = (i + r) % N_CONT; /* rotate the order every round */
                        v[c][r] = cu[c][r] = pu[c][r] = -1;
                        if (!usable[j][c])
                            continue;
                        v[c][r] = measure(c, &algs[j], n, &cu[c][r], &pu[c][r], err, sizeof(err));
                        if (v[c][r] < 0) {
                            fprintf(stderr, "signbench: %s %s %d threads: %s\n", algs[j].name,
                                    cont_names[c], n, err);
                            usable[j][c] = 0;
                            any_failure = 1;
                        }
                        if (opt.verbose)
                            fprintf(stderr, "  %s t=%d round %d %s: %.1f/s %.1f us/op (process %.1f)\n",
                                    algs[j].name, n, r, cont_names[c], v[c][r], cu[c][r], pu[c][r]);
                    }
                }
                for (c = 0; c < N_CONT; c++) {
                    med[c] = usable[j][c] ? median(v[c], opt.rounds) : -1;
                    cpu[c] = usable[j][c] ? median(cu[c], opt.rounds) : -1;
                    proc[c] = usable[j][c] ? median(pu[c], opt.rounds) : -1;
                }
                ceil_ = med[C_RAW_TOKEN] > med[C_RAW_SESSION] ? med[C_RAW_TOKEN]
                                                              : med[C_RAW_SESSION];
                /* spread: (max - min) / median over the rounds, the worst of
                 * the contenders in the ratios */
                {
                    int which[] = {C_RAW_TOKEN, C_RAW_SESSION, C_PROVIDER, C_LIBP11, C_PROV_AUDIT};
                    for (c = 0; c < N_CONT; c++)
                        spreads[c] = -1;
                    for (i = 0; i < 5; i++) {
                        double lo = 1e300, hi = 0;
                        c = which[i];
                        if (!usable[j][c] || med[c] <= 0)
                            continue;
                        for (r = 0; r < opt.rounds; r++) {
                            lo = v[c][r] < lo ? v[c][r] : lo;
                            hi = v[c][r] > hi ? v[c][r] : hi;
                        }
                        spreads[c] = (hi - lo) / med[c];
                        if (spreads[c] > spread)
                            spread = spreads[c];
                    }
                }
                printf("%-12s %3d", algs[j].name, n);
                for (c = 0; c < N_CONT; c++) {
                    if (c == C_PROVIDER && ceil_ > 0)
                        printf(" %11.0f", ceil_);
                    else if (c == C_PROVIDER)
                        printf(" %11s", "-");
                    if (!cont_enabled(c) && c < C_RAW_SHARED) {
                        printf(" %11s", "-");
                        continue;
                    }
                    if (!cont_enabled(c))
                        continue;
                    if (med[c] < 0)
                        printf(" %11s", "-");
                    else
                        printf(" %11.0f", med[c]);
                }
                if (med[C_PROVIDER] > 0 && ceil_ > 0)
                    printf(" %9.3f", med[C_PROVIDER] / ceil_);
                else
                    printf(" %9s", "-");
                if (med[C_PROVIDER] > 0 && med[C_LIBP11] > 0)
                    printf(" %9.3f", med[C_PROVIDER] / med[C_LIBP11]);
                else
                    printf(" %9s", "-");
                if (audit_on && med[C_PROVIDER] > 0 && med[C_PROV_AUDIT] > 0)
                    printf(" %9.3f", med[C_PROV_AUDIT] / med[C_PROVIDER]);
                else if (audit_on)
                    printf(" %9s", "-");
                printf(" %6.0f%%\n", spread * 100);
                fflush(stdout);
                rows[n_rows].alg = algs[j].name;
                rows[n_rows].threads = n;
                memcpy(rows[n_rows].med, med, sizeof(med));
                memcpy(rows[n_rows].cpu, cpu, sizeof(cpu));
                memcpy(rows[n_rows].proc, proc, sizeof(proc));
                rows[n_rows].spread_prov = spreads[C_PROVIDER];
                rows[n_rows].spread_aud = spreads[C_PROV_AUDIT];
                rows[n_rows].pair_wall = rows[n_rows].pair_cpu = rows[n_rows].pair_proc = -1;
                if (audit_on && usable[j][C_PROVIDER] && usable[j][C_PROV_AUDIT]) {
                    double pw[MAX_ROUNDS], pc[MAX_ROUNDS], pp[MAX_ROUNDS];
                    for (r = 0; r < opt.rounds; r++) {
                        pw[r] = v[C_PROV_AUDIT][r] / v[C_PROVIDER][r];
                        pc[r] = cu[C_PROV_AUDIT][r] / cu[C_PROVIDER][r];
                        pp[r] = pu[C_PROV_AUDIT][r] / pu[C_PROVIDER][r];
                    }
                    rows[n_rows].pair_wall = median(pw, opt.rounds);
                    rows[n_rows].pair_cpu = median(pc, opt.rounds);
                    rows[n_rows].pair_proc = median(pp, opt.rounds);
                }
                n_rows++;
                if (json) {
                    fprintf(json, "%s\n {\"alg\": \"%s\", \"threads\": %d", json_first ? "" : ",",
                            algs[j].name, n);
                    json_first = 0;
                    for (c = 0; c < N_CONT; c++) {
                        if (!cont_enabled(c))
                            continue;
                        fprintf(json, ", \"%s\": {\"median\": %.1f, \"cpu_us_median\": %.2f, "
                                      "\"cpu_process_us_median\": %.2f, \"rounds\": [",
                                cont_names[c], med[c], cpu[c], proc[c]);
                        for (r = 0; r < opt.rounds; r++)
                            fprintf(json, "%s%.1f", r ? ", " : "", v[c][r]);
                        fprintf(json, "], \"cpu_us\": [");
                        for (r = 0; r < opt.rounds; r++)
                            fprintf(json, "%s%.2f", r ? ", " : "", cu[c][r]);
                        fprintf(json, "], \"cpu_process_us\": [");
                        for (r = 0; r < opt.rounds; r++)
                            fprintf(json, "%s%.2f", r ? ", " : "", pu[c][r]);
                        fprintf(json, "]}");
                    }
                    fprintf(json, ", \"ceiling\": %.1f}", ceil_);
                }
            }
        }
        printf("\nCPU time per signature (µs, all threads of the contender; median of the rounds)\n"
               "This hardly depends on other load on the machine: the ratios are the per-signature\n"
               "overhead; ceiling = the cheaper of raw-token and raw-session.\n");
        printf("%-12s %3s %11s %11s %11s %11s %11s", "alg", "thr", "raw-token", "raw-session",
               "ceiling", "provider", "libp11");
        for (c = C_RAW_SHARED; c < N_CONT; c++)
            if (cont_enabled(c))
                printf(" %11s", cont_names[c]);
        printf(" %9s %9s", "ceil/prov", "p11/prov");
        if (audit_on)
            printf(" %9s", "aud/prov");
        printf("\n");
        for (i = 0; i < n_rows; i++) {
            const double *cpu = rows[i].cpu;
            double ceil_ = cpu[C_RAW_TOKEN] > 0 && (cpu[C_RAW_SESSION] <= 0
                                                     || cpu[C_RAW_TOKEN] < cpu[C_RAW_SESSION])
                               ? cpu[C_RAW_TOKEN]
                               : cpu[C_RAW_SESSION];
            printf("%-12s %3d", rows[i].alg, rows[i].threads);
            for (c = 0; c < N_CONT; c++) {
                if (!cont_enabled(c) && c >= C_RAW_SHARED)
                    continue;
                if (c == C_PROVIDER && ceil_ > 0)
                    printf(" %11.1f", ceil_);
                else if (c == C_PROVIDER)
                    printf(" %11s", "-");
                if (!cont_enabled(c) || cpu[c] <= 0)
                    printf(" %11s", "-");
                else
                    printf(" %11.1f", cpu[c]);
            }
            if (cpu[C_PROVIDER] > 0 && ceil_ > 0)
                printf(" %9.3f", ceil_ / cpu[C_PROVIDER]);
            else
                printf(" %9s", "-");
            if (cpu[C_PROVIDER] > 0 && cpu[C_LIBP11] > 0)
                printf(" %9.3f", cpu[C_LIBP11] / cpu[C_PROVIDER]);
            else
                printf(" %9s", "-");
            if (audit_on && cpu[C_PROVIDER] > 0 && cpu[C_PROV_AUDIT] > 0)
                printf(" %9.3f", cpu[C_PROV_AUDIT] / cpu[C_PROVIDER]);
            else if (audit_on)
                printf(" %9s", "-");
            printf("\n");
        }
        if (audit_on && cont_enabled(C_PROVIDER)) {
            printf("(aud/prov here: provider+audit's CPU over the provider's, threads that sign "
                   "only;\n the audit writer thread is in the process CPU of the next table)\n");
            audit_table(rows, n_rows);
        }
    }
    if (json)
        fprintf(json, "\n]");
    if (opt.rss)
        rss_phase();
    print_load("end");
    if (actx) {
        /* Freeing the context stops primus there: it writes stream-end and
         * everything still queued, so the log is complete when read. */
        for (j = 0; j < N_KEYS; j++) {
            EVP_PKEY_free(keys[j].aud_pkey);
            keys[j].aud_pkey = NULL;
        }
        OSSL_LIB_CTX_free(actx);
        actx = NULL;
        if (!audit_check(json))
            any_failure = 1;
    }
    if (json) {
        fprintf(json, "}\n");
        fclose(json);
    }

    /* Tear down: provider first (it did not initialize the module, so it
     * does not finalize it), then libp11, then our own session and module. */
    for (j = 0; j < N_KEYS; j++) {
        EVP_PKEY_free(keys[j].sw_pkey);
        EVP_PKEY_free(keys[j].swp_pkey);
        EVP_PKEY_free(keys[j].prov_pkey);
        EVP_PKEY_free(keys[j].eng_pkey);
        EVP_PKEY_free(keys[j].verify_pkey);
    }
    for (j = 0; j < N_ALGS; j++)
        EVP_MD_free(algs[j].md_fetched);
    OSSL_LIB_CTX_free(pctx);
    bench_engine_close(engine);
    fl->C_CloseSession(admin);
    fl->C_Finalize(NULL);
    OSSL_LIB_CTX_free(vctx);
    if (!opt.keep)
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    else
        fprintf(stderr, "signbench: kept %s\n", tmpdir);
    return any_failure ? 1 : 0;
}
