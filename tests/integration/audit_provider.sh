#!/usr/bin/env bash
# Real audit logs (docs/AUDIT.md): the provider, configured with
# primus-audit-log and primus-audit-key, writes one log from several
# processes at once (openssl commands, a multi-threaded signer, a forked
# child, primusctl itself); `primusctl audit verify` finds it intact with
# the right summary, then catches every kind of tampering with it.
set -uo pipefail
source "$PRIMUS_SRC/tests/lib/token.sh"
source "$PRIMUS_SRC/tests/lib/assert.sh"
source "$PRIMUS_SRC/tests/lib/openssl_conf.sh"

LOAD="$PRIMUS_BUILD/tests/provider_signload"
PROV_SO="$PRIMUS_BUILD/provider/primus.so"
work=$(mktemp -d /tmp/audit-provider.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
source "$PRIMUS_SRC/tests/integration/audit_lib.sh"

token_setup "$work/hsm"
token_create AUD pin-Aud-1357
token_keygen AUD EC:prime256v1 01 aud-ec pin-Aud-1357
token_keygen AUD rsa:2048 02 aud-rsa pin-Aud-1357
token_pin_file "$work/pin" pin-Aud-1357
umask 077
head -c 32 /dev/urandom >key
head -c 32 /dev/urandom >other.key
umask 022
EC="pkcs11:token=AUD;object=aud-ec;type=private"
RSA="pkcs11:token=AUD;object=aud-rsa;type=private"

base=("pkcs11-module-path = $PRIMUS_SOFTHSM_MODULE" "pkcs11-module-token-pin = file:$work/pin")
primus_openssl_conf keyed.cnf "$PROV_SO" "${base[@]}" \
    "primus-audit-log = $work/audit.log" "primus-audit-key = $work/key"
primus_openssl_conf plain.cnf "$PROV_SO" "${base[@]}" "primus-audit-log = $work/plain.log"
primus_openssl_conf noaudit.cnf "$PROV_SO" "${base[@]}"

ossl() { # ossl CONF ARGS...
    local conf=$1
    shift
    OPENSSL_CONF="$work/$conf" with_sanitizer_runtime openssl "$@"
}

# reference public keys (exported without an audit log)
ossl noaudit.cnf pkey -in "$EC" -pubout -out ec.pub || fail "cannot export the EC public key"
ossl noaudit.cnf pkey -in "$RSA" -pubout -out rsa.pub || fail "cannot export the RSA public key"
[ ! -e audit.log ] && pass || fail "a configuration without primus-audit-log wrote a log"
echo "to be signed" >msg

# ---- one log, many processes at once ---------------------------------------
# Each process gets its own copy of the token: SoftHSM's file store is not
# safe for several processes logging in at once (they rewrite the token
# file), which would make this test flaky for reasons that have nothing to
# do with the log.  The log is one file for all of them.
hsm_copy() { # hsm_copy N: a private copy of the token, prints its softhsm2.conf
    local dir="$work/hsm$1"
    cp -r "$work/hsm" "$dir"
    sed -i "s|^directories.tokendir = .*|directories.tokendir = $dir/tokens|" "$dir/softhsm2.conf"
    echo "$dir/softhsm2.conf"
}
signers() { # signers N: N pairs of openssl processes, one after the other
    local i
    for i in $(seq "$1"); do
        ossl keyed.cnf dgst -sha256 -sign "$EC" -out "ec.$BASHPID.$i.sig" msg || return 1
        ossl keyed.cnf pkeyutl -sign -inkey "$RSA" -in msg -rawin -digest sha256 \
            -pkeyopt rsa_padding_mode:pss -out "rsa.$BASHPID.$i.sig" || return 1
    done
}
pids=()
SOFTHSM2_CONF=$(hsm_copy 1) "$LOAD" --conf keyed.cnf --uri "$EC" --pub ec.pub --threads 2 \
    --count 150 >load1.out 2>&1 &
pids+=($!)
# --fork: the parent loads the key and signs once, the child signs 40
# times and leaves with _exit() (no exit handlers: like a killed worker)
SOFTHSM2_CONF=$(hsm_copy 2) "$LOAD" --conf keyed.cnf --uri "$RSA" --pub rsa.pub --threads 2 \
    --count 40 --fork >load2.out 2>&1 &
pids+=($!)
for n in 3 4 5 6; do
    SOFTHSM2_CONF=$(hsm_copy $n) signers 3 >signers.$n.out 2>&1 &
    pids+=($!)
done
for p in "${pids[@]}"; do
    wait "$p" || fail "a concurrent signer failed: $(cat load*.out signers.*.out)"
done
pass
# a lookup that fails is recorded too
ossl keyed.cnf pkey -in "pkcs11:token=AUD;object=no-such-key" -pubout >/dev/null 2>&1 &&
    fail "a missing key was found"
# primusctl itself, through its --audit-* options
run "$CTL" --module "$PRIMUS_SOFTHSM_MODULE" --pin-source "file:$work/pin" \
    --audit-log "$work/audit.log" --audit-key "$work/key" --audit-policy fail-closed check "$EC"
expect_status 0
for f in ec.*.sig; do
    openssl dgst -sha256 -verify ec.pub -signature "$f" msg >/dev/null || fail "bad signature $f"
done
pass

# ---- the intact log ---------------------------------------------------------
# The forked child left with _exit(): its stream has no stream-end, as
# for a killed process, and only --allow-open accepts the log.
run "$CTL" audit verify audit.log --key key
expect_status 1
expect_out "the stream has no stream-end after this record, its last"
expect_out "(1 stream is open; --allow-open accepts that)"
expect_intact audit.log --key key --allow-open
"$PY" - "$OUT" audit.log "$EC" "$RSA" "$(ls ec.*.sig | wc -l)" "$(ls rsa.*.sig | wc -l)" <<'PY' ||
import collections, json, sys
doc, log, ec, rsa = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ec_sigs, rsa_sigs = int(sys.argv[5]), int(sys.argv[6])
procs = doc["processes"]
by_stream = {p["stream"]: p for p in procs}
# 2 signers + 1 forked child + 4 x 3 x 2 openssl + 1 failed lookup + primusctl
assert doc["streams"] == 2 + 1 + 24 + 1 + 1, doc["streams"]
assert len({p["pid"] for p in procs}) == doc["streams"], "one stream per process"
names = collections.Counter(p["process"] for p in procs)
assert names["openssl"] == 25 and names["provider_signlo"] == 3 and names["primusctl"] == 1, names
children = [p for p in procs if "parent" in p]
assert len(children) == 1, children
child = children[0]
parent = by_stream[child["parent"]["stream"]]
assert parent["process"] == "provider_signlo" and parent["ended"], parent
assert not child["ended"] and doc["open_streams"] == 1, "only the _exit()ed child is open"
# the processes really wrote at the same time: some streams interleave
spans = sorted((p["first_line"], p["last_line"]) for p in procs)
assert any(b[0] < a[1] for a, b in zip(spans, spans[1:])), spans
# every operation left its record: CKR_OK sign records per stream
signs = collections.Counter()
keys = {}
for line in open(log, "rb"):
    rec = json.loads(line)
    if rec["event"] == "sign" and rec.get("result") == "CKR_OK":
        signs[rec["stream"]] += 1
        keys[rec["stream"]] = rec["key"]
        assert rec["key"].startswith(ec if rec["mechanism"] == "CKM_ECDSA" else rsa), rec
        assert rec["partition"] == "AUD" and rec["key_id"] and rec["latency_us"] >= 0, rec
openssl = [s for s, p in by_stream.items() if p["process"] == "openssl"]
assert sum(signs[s] for s in openssl if keys.get(s, "").startswith(ec)) == ec_sigs == 12
assert sum(signs[s] for s in openssl if keys.get(s, "").startswith(rsa)) == rsa_sigs == 12
loaders = [s for s, p in by_stream.items() if p["process"] == "provider_signlo"]
assert sorted(signs[s] for s in loaders if s != child["stream"]) == [1, 150], signs
ctl = [s for s, p in by_stream.items() if p["process"] == "primusctl"][0]
assert signs[ctl] >= 1
assert doc["events"].get("lookup-failed", 0) >= 1, doc["events"]
assert doc["events"]["stream-start"] == doc["streams"] == doc["events"]["stream-end"] + 1
assert doc["mac"]["records_with_mac"] == doc["records"]
lost = 40 - signs[child["stream"]]
if lost:
    print("note: the _exit()ed child made 40 signatures; %d without a record" % lost,
          file=sys.stderr)
PY
    fail "the real log's summary is wrong"
pass
run "$CTL" audit verify audit.log --key key --allow-open
expect_out "every record's mac is right for key"
expect_out "provider_signlo"
expect_no_out pin-Aud-1357

# ---- tampering with it --------------------------------------------------------
tamper_suite audit.log key other.key --allow-open

# ---- a log written without a key ------------------------------------------
"$LOAD" --conf plain.cnf --uri "$EC" --pub ec.pub --threads 1 --count 10 >load3.out 2>&1 ||
    fail "the signer failed: $(cat load3.out)"
ossl plain.cnf dgst -sha256 -sign "$EC" -out plain.sig msg || fail "cannot sign"
expect_intact plain.log
keyless_suite plain.log key

# ---- the audit policy, through primusctl's options ----------------------------
# an audit log that cannot be written: fail-closed refuses to sign,
# fail-open signs (primusctl check still fails: it has no evidence)
run "$CTL" --module "$PRIMUS_SOFTHSM_MODULE" --pin-source "file:$work/pin" \
    --audit-log "$work/no/such/dir/audit.log" --audit-policy fail-closed check "$EC"
[ "$STATUS" -ne 0 ] && pass || fail "fail-closed signed without an audit log"
expect_no_out "sign+verify (CKM_ECDSA): pass"
run "$CTL" --module "$PRIMUS_SOFTHSM_MODULE" --pin-source "file:$work/pin" \
    --audit-log "$work/no/such/dir/audit.log" --audit-policy fail-open check "$EC"
expect_out "sign+verify (CKM_ECDSA): pass"

finish
