/* The core's configuration: the same key names as pkcs11-provider where
 * they mean the same, so that existing openssl.cnf sections carry over. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

p11_core *p11_core_new(void)
{
    p11_core *core = calloc(1, sizeof(*core));

    if (core == NULL)
        return NULL;
    pthread_condattr_t ca;

    pthread_mutex_init(&core->lock, NULL);
    pthread_mutex_init(&core->probe_lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&core->probe_cond, &ca);
    pthread_condattr_destroy(&ca);
    core->session_key_cache = -1;
    core->member_timeout_ms = 1000;
    return core;
}

static p11_status set_string(char **slot, const char *value)
{
    char *copy = p11_strdup(value);

    if (value && copy == NULL)
        return p11_error_set(P11_ERR_MEMORY, CKR_HOST_MEMORY, "out of memory");
    free(*slot);
    *slot = copy;
    return P11_OK;
}

static p11_status set_quirks(p11_core *core, const char *value)
{
    char *copy = p11_strdup(value), *save = NULL, *word;
    p11_status st = P11_OK;

    if (copy == NULL)
        return p11_error_set(P11_ERR_MEMORY, CKR_HOST_MEMORY, "out of memory");
    core->quirk_no_deinit = 0;
    for (word = strtok_r(copy, " \t,", &save); word; word = strtok_r(NULL, " \t,", &save)) {
        if (strcmp(word, "no-deinit") == 0)
            core->quirk_no_deinit = 1;
        /* pkcs11-provider quirks that our core makes unnecessary are accepted
         * so that its configurations load unchanged. */
        else if (strcmp(word, "no-operation-state") == 0 || strcmp(word, "no-allowed-mechanisms") == 0 ||
                 strcmp(word, "no-session-callbacks") == 0)
            ;
        else {
            st = p11_error_set(P11_ERR_CONFIG, CKR_OK,
                               "pkcs11-module-quirks: unknown quirk \"%s\"; known: no-deinit", word);
            break;
        }
    }
    free(copy);
    return st;
}

static p11_status parse_choice(const char *key, const char *value, int *out)
{
    if (strcmp(value, "auto") == 0)
        *out = -1;
    else if (strcmp(value, "yes") == 0 || strcmp(value, "1") == 0 || strcmp(value, "true") == 0)
        *out = 1;
    else if (strcmp(value, "no") == 0 || strcmp(value, "0") == 0 || strcmp(value, "false") == 0)
        *out = 0;
    else
        return p11_error_set(P11_ERR_CONFIG, CKR_OK,
                             "%s: \"%s\" is not a valid value; use auto, yes or no", key, value);
    return P11_OK;
}

p11_status p11_core_set(p11_core *core, const char *key, const char *value)
{
    if (key == NULL || value == NULL)
        return p11_error_set(P11_ERR_CONFIG, CKR_OK, "configuration key or value missing");
    if (core->started && strcmp(key, "pkcs11-module-token-pin") != 0)
        return p11_error_set(P11_ERR_CONFIG, CKR_OK,
                             "%s cannot be changed after the HSM was first used", key);

    if (strcmp(key, "pkcs11-module-path") == 0) {
        if (value[0] == '\0')
            return p11_error_set(P11_ERR_CONFIG, CKR_OK, "pkcs11-module-path is empty");
        return set_string(&core->module_path, value);
    }
    if (strcmp(key, "pkcs11-module-token-pin") == 0) {
        if (core->token_pin_spec) {
            p11_wipe(core->token_pin_spec, strlen(core->token_pin_spec));
        }
        return set_string(&core->token_pin_spec, value);
    }
    if (strcmp(key, "pkcs11-module-init-args") == 0)
        return set_string(&core->init_args, value[0] ? value : NULL);
    if (strcmp(key, "pkcs11-module-quirks") == 0)
        return set_quirks(core, value);
    if (strcmp(key, "primus-topology") == 0)
        return set_string(&core->topology_file, value[0] ? value : NULL);
    if (strcmp(key, "primus-audit-log") == 0)
        return set_string(&core->audit_log, value[0] ? value : NULL);
    if (strcmp(key, "primus-audit-key") == 0)
        return set_string(&core->audit_key, value[0] ? value : NULL);
    if (strcmp(key, "primus-audit-policy") == 0) {
        if (strcmp(value, "fail-closed") == 0)
            core->audit_fail_open = 0;
        else if (strcmp(value, "fail-open") == 0)
            core->audit_fail_open = 1;
        else
            return p11_error_set(P11_ERR_CONFIG, CKR_OK,
                                 "primus-audit-policy: \"%s\" is not a valid value; use "
                                 "fail-closed or fail-open",
                                 value);
        return P11_OK;
    }
    if (strcmp(key, "primus-session-key-cache") == 0)
        return parse_choice(key, value, &core->session_key_cache);
    if (strcmp(key, "primus-member-timeout-ms") == 0) {
        char *end;
        unsigned long ms;
        errno = 0;
        ms = strtoul(value, &end, 10);
        if (errno || *end || end == value || ms == 0 || ms > 600000)
            return p11_error_set(P11_ERR_CONFIG, CKR_OK,
                                 "primus-member-timeout-ms: \"%s\" is not a number of "
                                 "milliseconds between 1 and 600000",
                                 value);
        core->member_timeout_ms = (unsigned)ms;
        return P11_OK;
    }
    return p11_error_set(P11_ERR_CONFIG, CKR_OK, "unknown configuration key \"%s\"", key);
}
