#!/usr/bin/env bash
# primusctl against a real SoftHSM token: list, uri parse round trip, check,
# and every bad input with its own message and exit status.
set -uo pipefail
source "$PRIMUS_SRC/tests/lib/token.sh"
source "$PRIMUS_SRC/tests/lib/assert.sh"

CTL="$PRIMUS_BUILD/tools/primusctl"
SHIM="$PRIMUS_BUILD/tests/p11shim.so"
work=$(mktemp -d /tmp/primusctl-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
token_setup "$work/hsm"
token_create PART1 pw-Part-4711
token_keygen PART1 rsa:2048 a1 tls-rsa pw-Part-4711
token_keygen PART1 EC:prime256v1 b2 tls-ec pw-Part-4711
token_pin_file "$work/pin" pw-Part-4711
export PRIMUS_PKCS11_MODULE="$PRIMUS_SOFTHSM_MODULE"

# list: the token is a partition, its keys are URIs
run "$CTL" --pin-source "file:$work/pin" list
expect_status 0
expect_out 'partition "PART1" (up, 1 member)'
expect_out 'pkcs11:token=PART1;object=tls-rsa;type=private;id=%A1'
expect_out 'pkcs11:token=PART1;object=tls-ec;type=public;id=%B2'
expect_no_out pw-Part-4711

# every listed URI round-trips through `primusctl uri parse`
n=0
while read -r uri; do
    run "$CTL" uri parse "$uri"
    expect_status 0
    [ "$(head -n1 <<<"$OUT")" = "$uri" ] || fail "uri parse changed $uri into $(head -n1 <<<"$OUT")"
    n=$((n + 1))
done < <(primus_wrap "$CTL" --pin-source "file:$work/pin" list | grep -o 'pkcs11:[^ ]*')
[ "$n" -eq 4 ] || fail "expected 4 URIs in the listing, got $n"

# --json is one valid document with the partition and its objects
run "$CTL" --pin-source "file:$work/pin" --json list
expect_status 0
python3 - "$OUT" <<'PY' || fail "list --json is not what it should be"
import json, sys
doc = json.loads(sys.argv[1])
part = doc["partitions"][0]
assert part["name"] == "PART1" and part["state"] == "up"
uris = {o["uri"] for o in part["objects"]}
assert "pkcs11:token=PART1;object=tls-ec;type=private;id=%B2" in uris, uris
PY

# key sizes come from the curve's OID: brainpool curves (which Primus HSMs
# offer) and secp256k1 as well as the NIST ones
token_create CURVES pw-Curv-5150
token_keygen CURVES EC:brainpoolP256r1 c1 bp256 pw-Curv-5150
token_keygen CURVES EC:brainpoolP384r1 c2 bp384 pw-Curv-5150
token_keygen CURVES EC:secp256k1 c3 k256 pw-Curv-5150
run "$CTL" list
expect_status 0
expect_out '  public key  EC     256  pkcs11:token=CURVES;object=bp256;type=public;id=%C1'
expect_out '  public key  EC     384  pkcs11:token=CURVES;object=bp384;type=public;id=%C2'
expect_out '  public key  EC     256  pkcs11:token=CURVES;object=k256;type=public;id=%C3'

# check: sign in the HSM, verify in software
for key in tls-rsa tls-ec; do
    run "$CTL" --pin-source "file:$work/pin" check "pkcs11:token=PART1;object=$key;type=private"
    expect_status 0
    expect_out 'sign+verify'
    expect_out ': pass'
done
run "$CTL" check "pkcs11:token=PART1;object=tls-ec;type=private?pin-source=file:$work/pin"
expect_status 0

# uri-pem: the key file that holds only a URI (pkcs11-provider's format)
run "$CTL" uri-pem "pkcs11:token=PART1;object=tls-ec;type=private" -out "$work/key.uri.pem"
expect_status 0
run openssl asn1parse -in "$work/key.uri.pem"
expect_out "VISIBLESTRING     :PKCS#11 Provider URI v1.0"
expect_out "UTF8STRING        :pkcs11:token=PART1;object=tls-ec;type=private"
grep -q -- "-----BEGIN PKCS#11 PROVIDER URI-----" "$work/key.uri.pem" && pass || fail "wrong PEM label"
run "$CTL" uri-pem "pkcs11:token=PART1;object=tls-ec?pin-value=pw-Part-4711"
expect_status 1
expect_err "must not hold a PIN"
expect_no_out pw-Part-4711

# ---- bad inputs ----
run "$CTL" --module /nonexistent/libprimusP11.so list
expect_status 3
expect_err 'PKCS#11 module /nonexistent/libprimusP11.so does not exist'

run "$CTL" --module /etc/hostname list
expect_status 3
expect_err 'is not a loadable shared library'

run "$CTL" --module "$(ls /usr/lib/x86_64-linux-gnu/libjansson.so.* | head -n1)" list
expect_status 3
expect_err 'not a PKCS#11 module'

primus_wrap env -u PRIMUS_PKCS11_MODULE "$CTL" list >/dev/null 2>"$work/err"
[ $? -eq 3 ] || fail "default module: wrong exit status"
grep -q '/usr/local/primus/lib/libprimusP11.so does not exist' "$work/err" || fail "default module not named: $(cat "$work/err")"

run "$CTL" --pin-source "file:$work/pin" check "pkcs11:token=NOSUCH;object=tls-ec"
expect_status 4
expect_err 'no token labelled "NOSUCH" is present'

run "$CTL" --pin-source "file:$work/pin" check "pkcs11:token=PART1;object=missing"
expect_status 4
expect_err 'no object matches pkcs11:token=PART1;object=missing'

run "$CTL" --pin-source "file:$work/pin" check "pkcs11:token=PART1;type=private"
expect_status 1
expect_err 'matches 2 objects'

run "$CTL" uri parse "pkcs11:token=PART1;type=privat"
expect_status 1
expect_err 'invalid pkcs11 URI'
expect_err 'type'

run "$CTL" check "pkcs12:token=PART1"
expect_status 1
expect_err 'invalid pkcs11 URI'

# wrong PIN: a clear message, and exactly one C_Login reaches the token
token_pin_file "$work/badpin" 1111
log="$work/shim.log"
P11SHIM_LOG="$log" run "$CTL" --module "$SHIM" --pin-source "file:$work/badpin" check "pkcs11:token=PART1;object=tls-ec;type=private"
expect_status 3
expect_err 'CKR_PIN_INCORRECT'
expect_err 'not retried'
expect_no_err 1111
[ "$(grep -c '^C_Login$' "$log")" -eq 1 ] || fail "the wrong PIN reached the token $(grep -c '^C_Login$' "$log") times"

run "$CTL" check "pkcs11:token=PART1;object=tls-ec;type=private"
expect_status 3
expect_err 'no PIN is configured'

chmod 644 "$work/pin"
run "$CTL" --pin-source "file:$work/pin" check "pkcs11:token=PART1;object=tls-ec;type=private"
expect_status 3
expect_err 'readable by other users'
chmod 600 "$work/pin"

run "$CTL" --pin-source "file:$work/nopin" check "pkcs11:token=PART1;object=tls-ec;type=private"
expect_status 3
expect_err 'cannot read pin file'

run "$CTL" frobnicate
expect_status 2
expect_err 'unknown command'

finish
