#!/usr/bin/env bash
# Bad inputs to the primus provider, each with its own clear error through the
# real openssl binary: no such key, wrong object kind, a URI matching several
# keys, a mechanism the token lacks, a wrong PIN, a malformed URI, a missing
# PKCS#11 module, a bad configuration value.  The PIN never appears in output.
source "$(dirname "${BASH_SOURCE[0]}")/provider_lib.sh"

PIN=pin-Err-8024
token_setup "$WORK/hsm"
token_create ERRTOK "$PIN"
token_keygen ERRTOK rsa:2048 01 rsa "$PIN"
token_keygen ERRTOK EC:prime256v1 02 ec "$PIN"
token_keygen ERRTOK EC:prime256v1 03 dup "$PIN"
token_keygen ERRTOK EC:prime256v1 04 dup "$PIN"
token_pin_file "$WORK/pin" "$PIN"
prov_conf "$CONF" "pkcs11-module-path = $PRIMUS_SOFTHSM_MODULE" \
    "pkcs11-module-token-pin = file:$WORK/pin"
echo "some data" >"$WORK/data"

no_pin_in_output() {
    expect_no_out "$PIN"
    expect_no_err "$PIN"
}

# Sanity: the key works, so the failures below are the inputs' fault.
ossl_ok "sign with the RSA key" dgst -sha256 -sign "pkcs11:token=ERRTOK;object=rsa" \
    -out "$WORK/ok.sig" "$WORK/data"

# ---- no such key -------------------------------------------------------------
run ossl pkey -in "pkcs11:token=ERRTOK;object=nosuchkey" -pubout
expect_status 1
expect_err "no object in the HSM matches the URI"
expect_err "no private key matches pkcs11:token=ERRTOK;object=nosuchkey"
no_pin_in_output

run ossl pkey -in "pkcs11:token=NOSUCHTOKEN;object=rsa" -pubout
expect_status 1
expect_err "primus:"
no_pin_in_output

# ---- wrong kind / wrong type ---------------------------------------------------
run ossl dgst -sha256 -sign "pkcs11:token=ERRTOK;object=rsa;type=public" "$WORK/data"
expect_status 1
expect_err "names objects of type=public but a private key is needed here; use type=private, or read it as a public key (openssl pkey/pkeyutl: -pubin)"
run ossl pkey -in "pkcs11:token=ERRTOK;object=rsa;type=public" -pubout
expect_status 1
expect_err "or read it as a public key (openssl pkey/pkeyutl: -pubin)"
run ossl pkey -pubin -in "pkcs11:token=ERRTOK;object=rsa;type=public" -pubout
expect_status 0
expect_out "BEGIN PUBLIC KEY"

run ossl pkey -in "pkcs11:token=ERRTOK;object=rsa;type=cert"
expect_status 1
expect_err "names objects of type=cert but a private key is needed here"

run ossl x509 -in "pkcs11:token=ERRTOK;object=rsa" -noout
expect_status 1
expect_err "no certificate matches pkcs11:token=ERRTOK;object=rsa"

run ossl pkey -in "pkcs11:token=ERRTOK;object=rsa;type=secret-key"
expect_status 1
expect_err "type=secret-key"

# An EC key cannot decrypt; an RSA key cannot make ECDSA signatures.
run ossl pkeyutl -decrypt -inkey "pkcs11:token=ERRTOK;object=ec" -in "$WORK/data"
expect_status 1
expect_err "operation not supported for this keytype"

run ossl pkeyutl -derive -inkey "pkcs11:token=ERRTOK;object=rsa" \
    -peerkey "pkcs11:token=ERRTOK;object=ec;type=public"
expect_status 1
[ -n "$ERR" ] && pass || fail "deriving with an RSA key must explain itself"

# ---- a URI matching several keys -------------------------------------------------
run ossl pkey -in "pkcs11:token=ERRTOK;object=dup" -pubout
expect_status 1
expect_err "the URI matches several objects where one is needed"
expect_err "pkcs11:token=ERRTOK;object=dup matches 2 private keys"
expect_err "id=%03"
expect_err "id=%04"
# ... and each of them can be named
ossl_ok "name one of the duplicates by id" pkey -in "pkcs11:token=ERRTOK;object=dup;id=%04" -pubout

# ---- a mechanism the token lacks -----------------------------------------------
printf '%032d' 0 >"$WORK/hash32"
run ossl pkeyutl -sign -inkey "pkcs11:token=ERRTOK;object=rsa" -in "$WORK/hash32" \
    -pkeyopt rsa_padding_mode:x931 -pkeyopt digest:sha256
expect_status 1
expect_err "the token does not offer the mechanism this operation needs"
expect_err "does not offer CKM_RSA_X9_31"

# PSS with an MGF1 digest other than the hash: SoftHSM refuses the parameters
run ossl dgst -sha256 -sign "pkcs11:token=ERRTOK;object=rsa" -sigopt rsa_padding_mode:pss \
    -sigopt rsa_mgf1_md:sha1 "$WORK/data"
expect_status 1
expect_err "CKM_RSA_PKCS_PSS, SHA2-256, MGF1 SHA1"
expect_err "CKR_ARGUMENTS_BAD"

# OAEP with SHA-256: SoftHSM 2.6 does SHA-1 only
plain pkey -in <(ossl pkey -in "pkcs11:token=ERRTOK;object=rsa" -pubout) -pubin \
    -out "$WORK/rsa.pub" 2>/dev/null
head -c 32 /dev/urandom >"$WORK/secret"
plain_ok "encrypt OAEP-SHA256" pkeyutl -encrypt -pubin -inkey "$WORK/rsa.pub" -in "$WORK/secret" \
    -out "$WORK/oaep256" -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256
run ossl pkeyutl -decrypt -inkey "pkcs11:token=ERRTOK;object=rsa" -in "$WORK/oaep256" \
    -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256
expect_status 1
expect_err "CKM_RSA_PKCS_OAEP, SHA2-256"
expect_err "SoftHSM: SHA-1 only"

# OAEP with a label: SoftHSM 2.6 cannot
plain_ok "encrypt OAEP with a label" pkeyutl -encrypt -pubin -inkey "$WORK/rsa.pub" -in "$WORK/secret" \
    -out "$WORK/oaepl" -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_label:0011223344
run ossl pkeyutl -decrypt -inkey "pkcs11:token=ERRTOK;object=rsa" -in "$WORK/oaepl" \
    -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_label:0011223344
expect_status 1
expect_err "CKM_RSA_PKCS_OAEP, SHA1, MGF1 SHA1, with a label"

# ---- a wrong PIN ------------------------------------------------------------------
WRONG=11112222
token_pin_file "$WORK/wrongpin" "$WRONG"
prov_conf "$WORK/wrongpin.cnf" "pkcs11-module-path = $PRIMUS_SOFTHSM_MODULE" \
    "pkcs11-module-token-pin = file:$WORK/wrongpin"
run with_sanitizer_runtime env OPENSSL_CONF="$WORK/wrongpin.cnf" openssl pkey \
    -in "pkcs11:token=ERRTOK;object=rsa" -pubout
expect_status 1
expect_err "the token PIN is missing or was refused"
expect_err "CKR_PIN_INCORRECT"
expect_no_err "$WRONG"
no_pin_in_output
# The good PIN still works (one wrong try does not lock the token).
ossl_ok "the right PIN after a wrong one" pkey -in "pkcs11:token=ERRTOK;object=rsa" -pubout

# A PIN file others can read is refused (p11core checks permissions).
printf '%s' "$PIN" >"$WORK/openpin"
chmod 644 "$WORK/openpin"
prov_conf "$WORK/openpin.cnf" "pkcs11-module-path = $PRIMUS_SOFTHSM_MODULE" \
    "pkcs11-module-token-pin = file:$WORK/openpin"
run with_sanitizer_runtime env OPENSSL_CONF="$WORK/openpin.cnf" openssl pkey \
    -in "pkcs11:token=ERRTOK;object=rsa" -pubout
[ "$STATUS" -ne 0 ] && pass || fail "a world-readable PIN file must be refused"
no_pin_in_output

# ---- a malformed URI ------------------------------------------------------------------
run ossl pkey -in "pkcs11:token=ERRTOK;object=%zz"
expect_status 1
expect_err "the pkcs11: URI is malformed"
expect_err "%zz"

run ossl pkey -in "pkcs11:token=ERRTOK;colour=blue"
expect_status 1
expect_err "the pkcs11: URI is malformed"
expect_err "colour"

# ---- a missing module: loading the provider does not touch it -------------------
prov_conf "$WORK/nomodule.cnf" "pkcs11-module-path = $WORK/no/such/libpkcs11.so"
run with_sanitizer_runtime env OPENSSL_CONF="$WORK/nomodule.cnf" openssl list -providers
expect_status 0
expect_out "Primus HSM PKCS#11 provider"
run with_sanitizer_runtime env OPENSSL_CONF="$WORK/nomodule.cnf" openssl pkey \
    -in "pkcs11:token=ERRTOK;object=rsa" -pubout
expect_status 1
expect_err "the PKCS#11 module could not be loaded"
expect_err "$WORK/no/such/libpkcs11.so"

# ---- bad configuration values ------------------------------------------------------
# OpenSSL drops the errors of a provider that fails to load, so the provider
# loads, says so in its status, and every HSM operation names the bad value.
prov_conf "$WORK/badrand.cnf" "pkcs11-module-path = $PRIMUS_SOFTHSM_MODULE" "primus-rand = maybe"
run with_sanitizer_runtime env OPENSSL_CONF="$WORK/badrand.cnf" openssl list -providers -verbose
expect_status 0
expect_out "status: inactive"
run with_sanitizer_runtime env OPENSSL_CONF="$WORK/badrand.cnf" openssl pkey \
    -in "pkcs11:token=ERRTOK;object=rsa" -pubout
expect_status 1
expect_err "the provider configuration is invalid"
expect_err "primus-rand = maybe"

prov_conf "$WORK/badpolicy.cnf" "pkcs11-module-path = $PRIMUS_SOFTHSM_MODULE" \
    "primus-audit-policy = sometimes"
run with_sanitizer_runtime env OPENSSL_CONF="$WORK/badpolicy.cnf" openssl pkey \
    -in "pkcs11:token=ERRTOK;object=rsa" -pubout
expect_status 1
expect_err "primus-audit-policy"

# ---- key generation: bad curve ---------------------------------------------------------
run ossl genpkey -propquery "?provider=primus" -algorithm EC -pkeyopt ec_paramgen_curve:P-999 \
    -pkeyopt "pkcs11_uri:pkcs11:token=ERRTOK;object=bad;id=%09"
expect_status 1
[ -n "$ERR" ] && pass || fail "a bad curve must be reported"

finish
