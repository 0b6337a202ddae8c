/*
 * rv.h: what PKCS#11 return codes mean, for p11core's error messages and
 * its failover decisions.  Internal to p11core (the public names,
 * p11_rv_name and p11_mechanism_name, are declared in p11core.h).
 *
 * Plain C: no OpenSSL.  Every function here is thread-safe and cheap
 * (static sorted tables, binary search); none allocates.
 */
#ifndef PRIMUS_P11CORE_RV_H
#define PRIMUS_P11CORE_RV_H

#include <p11-kit/pkcs11.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A short sentence for an operator: what the code means and what to do
 * about it, e.g. for CKR_PIN_INCORRECT "the PIN is wrong; it was not
 * retried, since retries can lock the partition: correct
 * pkcs11-module-token-pin or the URI's pin-source".  Lower case, no final
 * period, so that it can follow "<what failed>: <CKR_NAME>: ".
 * "" for CKR_OK and for codes without advice (never NULL).
 */
const char *p11_rv_advice(CK_RV rv);

/*
 * 1 when the code means the member (the HSM or the connection to it)
 * failed rather than the request: the operation may be retried on another
 * member of the partition, and this member is marked down until it
 * answers again.  0 otherwise (the request itself was refused, or the
 * code says nothing about the member's health).  The reasons for each
 * code are in rv.c.
 */
int p11_rv_is_member_fault(CK_RV rv);

/*
 * 1 for the catch-all codes (CKR_GENERAL_ERROR, CKR_FUNCTION_FAILED) that
 * libraries return both for a member in trouble and for bad input (SoftHSM
 * returns CKR_GENERAL_ERROR for an RSA ciphertext with bad padding).  They
 * are not member faults by themselves: the caller should probe the member
 * with a cheap call on the same session (C_GetSessionInfo) and fail over
 * only if the probe returns a member fault; otherwise report the code.
 */
int p11_rv_needs_probe(CK_RV rv);

/*
 * Self-check of the static tables (strictly ascending, names present):
 * 0 when sound, else the 1-based index of the first bad entry plus 1000
 * for the mechanism table.  For the unit test.
 */
int p11_rv_tables_check(void);

#ifdef __cplusplus
}
#endif

#endif
