# shellcheck shell=bash
# Helpers for the audit log tests (audit_verify.sh, audit_provider.sh).
# Source after tests/lib/assert.sh, from inside the test's work directory.
#
#   FORGE ...                 tests/integration/audit_forge.py
#   where LOG LINE            "STREAM SEQ" of a line
#   find_line LOG STREAM# SEQ the line of record SEQ of the STREAM#-th stream
#   nlines LOG
#   expect_broken LOG LINE STREAM SEQ REASON [VERIFY OPTIONS...]
#                             verify stops at LINE naming STREAM and SEQ, with
#                             REASON, exit 1
#   expect_intact LOG [VERIFY OPTIONS...]
#                             exit 0, and the --json summary agrees with what
#                             the forge computes from the same file
#   tamper_suite LOG KEY OTHER_KEY [--allow-open]
#                             every kind of tampering with a keyed log (with
#                             at least one ended stream of 8 records or more)
#                             is caught at the right record with its reason;
#                             --allow-open: the log has open streams
#   keyless_suite LOG KEY     the same for a log written without a key

CTL="$PRIMUS_BUILD/tools/primusctl"
# The interpreter itself, not a version-manager shim (which can cost a
# second per call, and the forge is called often).
PY=$(python3 -c 'import sys; print(sys.executable)')
FORGE="$PY $PRIMUS_SRC/tests/integration/audit_forge.py"

where() { $FORGE where "$1" "$2"; }
find_line() { $FORGE find "$1" "$2" "$3"; }
nlines() { wc -l <"$1" | tr -d ' '; }

expect_broken() {
    local log=$1 line=$2 stream=$3 seq=$4 reason=$5
    shift 5
    run "$CTL" audit verify "$log" "$@"
    expect_status 1
    expect_out "$log:$line: stream $stream seq $seq: "
    expect_out "$reason"
    [ "$(wc -l <<<"$OUT")" -eq 1 ] && pass || fail "a broken log gives one line"
}

expect_intact() {
    local log=$1
    shift
    run "$CTL" audit verify "$log" "$@"
    expect_status 0
    expect_out "$log: intact"
    run "$CTL" --json audit verify "$log" "$@"
    expect_status 0
    $FORGE expect "$log" >expect.json
    "$PY" - expect.json "$OUT" <<'PY' || fail "the summary of $log is wrong"
import json, sys
want = json.load(open(sys.argv[1]))
got = json.loads(sys.argv[2])
assert got["intact"] is True
for k in ("records", "streams", "events", "results", "keys", "first_time", "last_time"):
    assert got[k] == want[k], (k, got[k], want[k])
assert got["mac"]["records_with_mac"] == want["records_with_mac"]
assert [p["stream"] for p in got["processes"]] == want["stream_ids"]
assert sum(p["records"] for p in got["processes"]) == want["records"]
PY
    pass
}

tamper_suite() {
    local log=$1 key=$2 other=$3 s S L4 L5 L6 L7 N SE q line open=()
    [ "${4:-}" = --allow-open ] && open=(--allow-open)
    s=$($FORGE pick "$log" 8)
    S=$(where "$log" "$(find_line "$log" "$s" 1)" | cut -d' ' -f1)
    L4=$(find_line "$log" "$s" 4)
    L5=$(find_line "$log" "$s" 5)
    L6=$(find_line "$log" "$s" 6)
    L7=$(find_line "$log" "$s" 7)
    N=$(nlines "$log")

    # edit a field: the next record's prev breaks; with the key, the MAC of
    # the edited record itself
    $FORGE tamper "$log" t.log edit "$L5" result '"CKR_PIN_INCORRECT"'
    expect_broken t.log "$L6" "$S" 6 "prev does not match the hash of line $L5 (seq 5), the stream's previous record: a record was edited, inserted or removed before this one" "${open[@]}"
    expect_broken t.log "$L5" "$S" 5 "the mac is wrong for this key: the record was edited" --key "$key" "${open[@]}"
    $FORGE tamper "$log" t.log edit "$L4" time '"2020-01-01T00:00:00.000000Z"'
    expect_broken t.log "$L5" "$S" 5 "prev does not match the hash of line $L4 (seq 4)" "${open[@]}"

    # delete records: a gap in seq
    $FORGE tamper "$log" t.log delete "$L5"
    expect_broken t.log $((L6 - 1)) "$S" 6 "seq 6 follows seq 4 (line $L4): record 5 is missing here: it was deleted" --key "$key" "${open[@]}"
    $FORGE tamper t.log t2.log delete $((L6 - 1))
    expect_broken t2.log $((L7 - 2)) "$S" 7 "records 5..6 are missing here" "${open[@]}"
    # ... the head of a stream
    $FORGE tamper "$log" t.log delete "$(find_line "$log" "$s" 1)"
    expect_broken t.log $(($(find_line "$log" "$s" 2) - 1)) "$S" 2 "the stream's first record in the file has seq 2: its records 1..1 are missing" "${open[@]}"

    # insert records: a copy (seq repeats, or goes back), a forged next
    # record (the following one's seq repeats; its MAC, made with another
    # key, is wrong), a forged record without a MAC, junk lines
    $FORGE tamper "$log" t.log duplicate "$L5" $((L5 + 1))
    expect_broken t.log $((L5 + 1)) "$S" 5 "seq 5 appears twice (first on line $L5): a record was duplicated or inserted" --key "$key" "${open[@]}"
    $FORGE tamper "$log" t.log duplicate "$L5" "$L7"
    expect_broken t.log "$L7" "$S" 5 "seq 5 comes after seq 6 (line $L6): records were reordered, or a record was inserted" "${open[@]}"
    $FORGE tamper "$log" t.log insert-after "$L5" "$other"
    expect_broken t.log $((L5 + 1)) "$S" 6 "the mac is wrong for this key" --key "$key" "${open[@]}"
    expect_broken t.log $((L6 + 1)) "$S" 6 "seq 6 appears twice (first on line $((L5 + 1)))" "${open[@]}"
    $FORGE tamper "$log" t.log insert-after "$L5"
    expect_broken t.log $((L5 + 1)) "$S" 6 "no mac, but the stream's earlier records (line $L5) have one" "${open[@]}"
    expect_broken t.log $((L5 + 1)) "$S" 6 "no mac, but a key was given" --key "$key" "${open[@]}"
    { head -n $((L5 - 1)) "$log"; echo 'hello {"stream":"'"$S"'"'; tail -n +"$L5" "$log"; } >t.log
    run "$CTL" audit verify t.log --key "$key"
    expect_status 1
    expect_out "t.log:$L5: stream $S seq ?: not a complete JSON object"
    { head -n 3 "$log"; echo; tail -n +4 "$log"; } >t.log
    run "$CTL" audit verify t.log --key "$key"
    expect_status 1
    expect_out "t.log:4: empty line: not a record"

    # swap records of a stream: seq out of order
    $FORGE tamper "$log" t.log swap "$L5" "$L6"
    expect_broken t.log "$L5" "$S" 6 "seq 6 follows seq 4 (line $L4): record 5 is missing here: it was deleted, or records were reordered" --key "$key" "${open[@]}"
    $FORGE tamper "$log" t.log swap "$L5" "$L7"
    expect_broken t.log "$L5" "$S" 7 "seq 7 follows seq 4 (line $L4): records 5..6 are missing here" "${open[@]}"

    # truncation at a line boundary: streams without stream-end
    $FORGE tamper "$log" t.log truncate-lines $((N - 3))
    run "$CTL" audit verify t.log --key "$key"
    expect_status 1
    expect_out "the stream has no stream-end after this record, its last: the log was cut off after it"
    line=$(grep -o '^t.log:[0-9]*' <<<"$OUT" | cut -d: -f2)
    [ -n "$line" ] && pass || fail "no line named"
    expect_out "t.log:$line: stream $(where t.log "$line" | sed 's/ / seq /'): "
    run "$CTL" audit verify t.log --key "$key" --allow-open
    expect_status 0

    # truncation inside a line: a cut-off last line (also one cut just
    # before its newline)
    read -r SE q < <(where "$log" "$N")
    $FORGE tamper "$log" t.log truncate-bytes 30
    expect_broken t.log "$N" "$SE" "$q" "the last line is cut off" --key "$key" --allow-open
    expect_out "the log was truncated in the middle of this record"
    $FORGE tamper "$log" t.log truncate-bytes 200
    run "$CTL" audit verify t.log --allow-open
    expect_status 1
    expect_out "t.log:$N: "
    expect_out "the last line is cut off"
    $FORGE tamper "$log" t.log drop-newline
    expect_broken t.log "$N" "$SE" "$q" "the last line is cut off" --key "$key" "${open[@]}"

    # edit and recompute the chain: only the MAC shows it
    $FORGE tamper "$log" t.log rechain "$L5" result '"CKR_PIN_INCORRECT"'
    run "$CTL" audit verify t.log "${open[@]}"
    expect_status 0
    expect_out "authenticity was NOT checked"
    expect_broken t.log "$L5" "$S" 5 "the mac is wrong for this key: the record was edited (the chain may have been recomputed to hide it)" --key "$key" "${open[@]}"
    # ... also when the forger has a key, just not the log's
    $FORGE tamper "$log" t.log rechain "$L5" pid 1 "$other"
    expect_broken t.log "$L5" "$S" 5 "the mac is wrong for this key" --key "$key" "${open[@]}"

    # the stream-end's count is covered too
    q=$(grep -c "\"stream\":\"$S\"" "$log")
    SE=$(find_line "$log" "$s" "$q")
    $FORGE tamper "$log" t.log edit "$SE" records 99999
    expect_broken t.log "$SE" "$S" "$q" "stream-end counts 99999 records but the stream has $q" "${open[@]}"

    # the wrong key
    expect_broken "$log" 1 "$(where "$log" 1 | cut -d' ' -f1)" 1 \
        "or the key is not the one this log was written with (no record has matched it so far)" \
        --key "$other" "${open[@]}"

    # a stripped MAC
    $FORGE tamper "$log" t.log strip-mac "$L5"
    expect_broken t.log "$L5" "$S" 5 "no mac, but a key was given: the record was written without the audit key, or its mac was stripped" --key "$key" "${open[@]}"
    expect_broken t.log "$L5" "$S" 5 "no mac, but the stream's earlier records" "${open[@]}"
}

keyless_suite() {
    local log=$1 key=$2 s S L4 L5
    s=$($FORGE pick "$log" 6)
    S=$(where "$log" "$(find_line "$log" "$s" 1)" | cut -d' ' -f1)
    L4=$(find_line "$log" "$s" 4)
    L5=$(find_line "$log" "$s" 5)
    run "$CTL" audit verify "$log"
    expect_status 0
    expect_out "mac        none"
    # no MAC where a key says there must be one
    expect_broken "$log" 1 "$(where "$log" 1 | cut -d' ' -f1)" 1 "no mac, but a key was given" --key "$key"
    # an edit shows in the chain
    $FORGE tamper "$log" t.log edit "$L4" result '"CKR_GENERAL_ERROR"'
    expect_broken t.log "$L5" "$S" 5 "prev does not match the hash of line $L4 (seq 4)"
    # ... but an edit with the chain recomputed does not: that is what the
    # key is for
    $FORGE tamper "$log" t.log rechain "$L4" result '"CKR_GENERAL_ERROR"'
    run "$CTL" audit verify t.log
    expect_status 0
}
