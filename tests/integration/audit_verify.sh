#!/usr/bin/env bash
# primusctl audit verify (docs/AUDIT.md): intact logs pass with the right
# summary; every way of tampering with one is caught at the right record
# with the right reason.
#
# The logs are written by audit_forge.py, an independent Python
# implementation of the format (so the C verifier and the spec are checked
# against each other).  audit_provider.sh does the same with real logs
# written by the provider.
set -uo pipefail
source "$PRIMUS_SRC/tests/lib/assert.sh"

work=$(mktemp -d /tmp/audit-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
source "$PRIMUS_SRC/tests/integration/audit_lib.sh"

umask 077
head -c 32 /dev/urandom >key
head -c 32 /dev/urandom >other.key
umask 022

# ---- intact logs ------------------------------------------------------------
# 5 interleaved streams, one a forked child; 3 without a key
$FORGE gen keyed.log --key key --streams 5 --records 40 --fork --seed 7
$FORGE gen plain.log --streams 3 --records 30 --seed 8

expect_intact keyed.log --key key
expect_out '"state": "checked"'
run "$CTL" audit verify keyed.log --key key
expect_out "records    $(nlines keyed.log) in 5 streams"
expect_out "every record's mac is right for key"
expect_out "processes (5)"
expect_out "pid 4000    nginx"
parent=$(grep -o '"parent":{"stream":"[0-9a-f]*' keyed.log | cut -d'"' -f6)
[ -n "$parent" ] && pass || fail "the forged log has no forked child"
expect_out "forked from stream $parent at seq 3"
expect_out "lost       3 records were not written"
expect_out "pkcs11:token=PART1;object=tls-ec;type=private"
# without the key the chain is checked, and the missing check is said
expect_intact keyed.log
run "$CTL" audit verify keyed.log
expect_out "no --key was given: authenticity was NOT checked"
expect_intact plain.log
# the key can come from the common option, the file from --audit-log
run "$CTL" --audit-log keyed.log --audit-key key audit verify
expect_status 0
expect_out "every record's mac is right for key"
# standard input
run bash -c "cat keyed.log | '$CTL' audit verify - --key key"
expect_status 0
expect_out "-: intact"
# an empty log is an intact log of no records
: >empty.log
run "$CTL" audit verify empty.log
expect_status 0
expect_out "records    0 in 0 streams"

# open streams: a running or killed process has no stream-end yet
$FORGE gen open.log --key key --streams 3 --records 10 --open 2 --seed 9
run "$CTL" audit verify open.log --key key
expect_status 1
expect_out "the stream has no stream-end after this record, its last"
expect_out "2 streams are open; --allow-open accepts that"
run "$CTL" audit verify open.log --key key --allow-open
expect_status 0
expect_out "(2 open: no stream-end yet)"
run "$CTL" --json audit verify open.log --key key --allow-open
expect_out '"open_streams": 2'

# ---- tampering ---------------------------------------------------------------
tamper_suite keyed.log key other.key
keyless_suite plain.log key

# a broken log with --json: the verdict as a document, the line on stderr
$FORGE tamper keyed.log t.log delete 30
read -r s q < <(where keyed.log 30)
run "$CTL" --json audit verify t.log --key key
expect_status 1
expect_err "t.log:"
"$PY" - "$OUT" "$s" <<'PY' || fail "the --json verdict is wrong"
import json, sys
doc = json.loads(sys.argv[1])
assert doc["intact"] is False and doc["file"] == "t.log" and doc["stream"] == sys.argv[2], doc
assert doc["line"] >= 30 and doc["seq"] > 1 and "missing" in doc["reason"], doc
PY
pass
printf 'junk\n' >t.log
run "$CTL" --json audit verify t.log
expect_status 1
expect_out '"stream": null'
expect_out '"seq": null'

# ---- bad invocations -------------------------------------------------------
run "$CTL" audit verify /nonexistent/audit.log
expect_status 3
expect_err "cannot read the audit log /nonexistent/audit.log: No such file or directory"
run "$CTL" audit verify "$work"
expect_status 3
expect_err "cannot read the audit log"
run "$CTL" audit verify keyed.log --key /nonexistent/key
expect_status 3
expect_err "audit key file /nonexistent/key"
cp key loose.key && chmod 644 loose.key
run "$CTL" audit verify keyed.log --key loose.key
expect_status 3
expect_err "readable by other users"
(umask 077 && printf 'short' >short.key)
run "$CTL" audit verify keyed.log --key short.key
expect_status 3
expect_err "at least 16"
run "$CTL" audit
expect_status 2
run "$CTL" audit verify
expect_status 2
expect_err "usage: primusctl audit verify FILE"
run "$CTL" audit verify keyed.log --bogus
expect_status 2
run "$CTL" audit verify keyed.log --key
expect_status 2
run "$CTL" audit verify keyed.log other.log
expect_status 2
run "$CTL" --audit-policy sometimes list
expect_status 3
expect_err "primus-audit-policy"
run "$CTL" --audit-log
expect_status 2
run "$CTL" --help
expect_out "--audit-log PATH"
expect_out "audit verify FILE"

# ---- a big log is checked in one streaming pass --------------------------------
$FORGE gen big.log --key key --streams 20 --records 1000 --seed 11
run "$CTL" audit verify big.log --key key
expect_status 0
expect_out "records    $(nlines big.log) in 20 streams"

finish
