/* The audit log as the rooms of p11core use it (audit.c). */
#ifndef PRIMUS_P11CORE_AUDIT_H
#define PRIMUS_P11CORE_AUDIT_H

#include "internal.h"

/* What one record says; fields left 0/NULL are not written. */
typedef struct p11_audit_fields {
    const char *event;               /* "sign", "login", "member-down", ... (static) */
    const p11_member *member;        /* who served (also gives the partition) */
    const char *partition;
    const p11_object_info *key;      /* the key: its URI (never a PIN) and CKA_ID */
    const char *uri;                 /* without a key: the URI asked for (PIN omitted) */
    CK_MECHANISM_TYPE mech;
    int has_mech;
    CK_RV rv;
    int has_rv;
    unsigned long long started_ns;   /* p11_now_ns() when the operation began: latency */
    const char *detail;
} p11_audit_fields;

/* Open the configured log and start this process's stream (no-op without
 * primus-audit-log).  A bad key file is a configuration error; a log that
 * cannot be written is not: it makes p11_audit_admit refuse (fail-closed). */
p11_status p11_audit_open(p11_core *core);
/* stream-end, drain, stop the writer, release. */
void p11_audit_free(p11_core *core);
/* In a forked child (from restart_after_fork): a new stream naming the parent's. */
void p11_audit_after_fork(p11_core *core);
/* P11_OK, or P11_ERR_AUDIT (message set) when the log is failing and the
 * policy is fail-closed: call before a sensitive operation. */
p11_status p11_audit_admit(p11_core *core);
/* Queue one record (cheap; never blocks on the disk). */
void p11_audit_record(p11_core *core, const p11_audit_fields *f);

#endif
