#!/usr/bin/env bash
# Every row of tests/integration/bad_input.table, run for real: the real
# primusctl, the real openssl binary with the provider loaded through an
# openssl.cnf, on a real SoftHSM token (and the fault-injecting shim over it
# where a row asks for a code SoftHSM does not give).  Each row's message
# fragments and exit status are checked, and no PIN may appear in any
# output.  First, README's section "Bad input: what you see" must be what
# scripts/bad-input-table.sh makes of the table.
#
# BADINPUT_ONLY=ID runs the rows with that id only; BADINPUT_SHOW=1 prints
# each row's output.
set -uo pipefail
: "${PRIMUS_SRC:?set PRIMUS_SRC to the source tree}"
: "${PRIMUS_BUILD:?set PRIMUS_BUILD to the build tree}"

# No controlling terminal: OpenSSL asks for a missing PIN on /dev/tty, and
# a test must not wait for someone to type it.
if [ -z "${BADINPUT_DETACHED:-}" ] && (exec </dev/tty) 2>/dev/null; then
    BADINPUT_DETACHED=1 exec setsid -w bash "$0" "$@"
fi

source "$PRIMUS_SRC/tests/lib/token.sh"
source "$PRIMUS_SRC/tests/lib/openssl_conf.sh"
source "$PRIMUS_SRC/tests/lib/assert.sh"

TABLE=$PRIMUS_SRC/tests/integration/bad_input.table
CTL=$PRIMUS_BUILD/tools/primusctl
SHIM=$PRIMUS_BUILD/tests/p11shim.so
PROV_SO=$PRIMUS_BUILD/provider/primus.so
OPENSSL_REAL=$(command -v openssl)
for f in "$CTL" "$SHIM" "$PROV_SO"; do
    [ -e "$f" ] || { echo "$f is missing: build first" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/primus-badinput.XXXXXX")
trap 'rm -rf "$WORK" "${ASSERT_TMP:-}"' EXIT

# ---- README and table agree ---------------------------------------------------------
generated=$(bash "$PRIMUS_SRC/scripts/bad-input-table.sh" "$TABLE") || fail "scripts/bad-input-table.sh failed"
in_readme=$(awk '/^## Bad input: what you see$/ { on = 1; print; next }
                 on && /^## / { exit }
                 on { print }' "$PRIMUS_SRC/README.md")
if [ "$in_readme" != "$generated" ]; then
    LAST_CMD="bash scripts/bad-input-table.sh"
    OUT=$(diff <(echo "$in_readme") <(echo "$generated") | head -40)
    ERR=
    fail "README.md's section \"Bad input: what you see\" differs from tests/integration/bad_input.table:
  regenerate it with: bash scripts/bad-input-table.sh, and paste the output over that
  section of README.md (from its heading to the next \"## \" heading)"
fi
pass

# ---- the token and the files the rows name ------------------------------------------
USER_PIN=good7391pin
WRONG_PIN=wrong5820pin
token_setup "$WORK/hsm"
token_create BADIN "$USER_PIN"
token_keygen BADIN rsa:2048 01 rsa "$USER_PIN"
token_keygen BADIN EC:prime256v1 02 ec "$USER_PIN"
token_keygen BADIN EC:prime256v1 03 dup "$USER_PIN"
token_keygen BADIN EC:prime256v1 04 dup "$USER_PIN"
export PRIMUS_PKCS11_MODULE=$PRIMUS_SOFTHSM_MODULE
export P11SHIM_TARGET=$PRIMUS_SOFTHSM_MODULE

token_pin_file "$WORK/user.pin" "$USER_PIN"
token_pin_file "$WORK/wrong.pin" "$WRONG_PIN"
token_pin_file "$WORK/empty.pin" ""
token_pin_file "$WORK/open.pin" "$USER_PIN"
chmod 644 "$WORK/open.pin"
echo "not an ELF file" >"$WORK/not-a-library.so"
touch "$WORK/a-file"
echo "some data" >"$WORK/data"
printf '%032d' 0 >"$WORK/hash32"
mkdir -p "$WORK/empty-hsm/tokens" "$WORK/conf" "$WORK/shim"
cat >"$WORK/empty-hsm.conf" <<EOF
directories.tokendir = $WORK/empty-hsm/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
printf 'this is { not json' >"$WORK/not-json.json"
cat >"$WORK/typo.json" <<EOF
{
  "partitions": [
    { "name": "BADIN",
      "members": [
        { "name": "m1", "module": "$PRIMUS_SOFTHSM_MODULE",
          "priorty": 0 }
      ]
    }
  ]
}
EOF
# URI key files (pkcs11-provider's format), also ones primusctl uri-pem would never write
python3 - "$WORK" <<'PY'
import base64, sys

def tlv(tag, body):
    n = len(body)
    head = bytes([n]) if n < 128 else bytes([0x82, n >> 8, n & 255])
    return bytes([tag]) + head + body

for name, uri in [("nul-uri.pem", b"pkcs11:token=BADIN;object=r\0sa"),
                  ("empty-uri.pem", b""),
                  ("bad-uri.pem", b"pkcs11:token=BADIN;object=r%zz"),
                  ("nokey-uri.pem", b"pkcs11:token=BADIN;object=nosuch")]:
    der = tlv(0x30, tlv(0x1a, b"PKCS#11 Provider URI v1.0") + tlv(0x0c, uri))
    with open(sys.argv[1] + "/" + name, "w") as f:
        f.write("-----BEGIN PKCS#11 PROVIDER URI-----\n" + base64.encodebytes(der).decode()
                + "-----END PKCS#11 PROVIDER URI-----\n")
PY
NON_PKCS11_LIB=
for f in /usr/lib/*/libjansson.so.4 /lib/*/libjansson.so.4 /usr/lib/libjansson.so.4; do
    [ -e "$f" ] && { NON_PKCS11_LIB=$f; break; }
done
[ -n "$NON_PKCS11_LIB" ] || { echo "libjansson.so.4 not found" >&2; exit 1; }

# Sanity: with the right inputs both surfaces work, so each failure below is its input's.
run "$CTL" --pin-source "file:$WORK/user.pin" check "pkcs11:token=BADIN;object=rsa"
expect_status 0
primus_openssl_conf "$WORK/conf/good.cnf" "$PROV_SO" "pkcs11-module-path = $PRIMUS_SOFTHSM_MODULE" \
    "pkcs11-module-token-pin = file:$WORK/user.pin"
run with_sanitizer_runtime env OPENSSL_CONF="$WORK/conf/good.cnf" "$OPENSSL_REAL" pkey \
    -in "pkcs11:token=BADIN;object=rsa" -pubout
expect_status 0

# ---- how rows run ----------------------------------------------------------------------
# The command of a row is bash; these two functions stand for the programs.
ROW_CONF=/dev/null
primusctl() { primus_wrap "$CTL" "$@"; }
openssl() { OPENSSL_CONF=$ROW_CONF with_sanitizer_runtime "$OPENSSL_REAL" "$@"; }

# subst TEXT: TEXT with the placeholders replaced, in $SUBST (no subshell:
# forks are what makes a hundred rows slow on a busy machine)
subst() {
    local s=$1 n pad
    s=${s//\{WORK\}/$WORK}
    s=${s//\{SOFTHSM\}/$PRIMUS_SOFTHSM_MODULE}
    s=${s//\{SHIM\}/$SHIM}
    s=${s//\{NON_PKCS11_LIB\}/$NON_PKCS11_LIB}
    s=${s//\{WRONG_PIN\}/$WRONG_PIN}
    while [[ $s =~ \{LONG:([0-9]+)\} ]]; do
        n=${BASH_REMATCH[1]}
        printf -v pad '%*s' "$n" ''
        s=${s/"{LONG:$n}"/${pad// /a}}
    done
    SUBST=$s
}

# split TEXT SEP: the parts of TEXT between the SEPs, in the array PARTS
split() {
    local rest=$1
    PARTS=()
    while [[ $rest == *"$2"* ]]; do
        PARTS+=("${rest%%"$2"*}")
        rest=${rest#*"$2"}
    done
    PARTS+=("$rest")
}

# row_conf ID CONFIG: the openssl.cnf of a row, in $ROW_CONF
row_conf() {
    local -a keys=(pkcs11-module-path pkcs11-module-token-pin)
    local -A val=([pkcs11-module-path]=$PRIMUS_SOFTHSM_MODULE
                  [pkcs11-module-token-pin]="file:$WORK/user.pin")
    local item key lines=() k
    if [ "$2" != "-" ]; then
        subst "$2"
        split "$SUBST" " ; "
        for item in "${PARTS[@]}"; do
            if [[ $item == -* ]]; then
                unset "val[${item#-}]"
                continue
            fi
            key=${item%%=*}
            key=${key%"${key##*[![:space:]]}"}
            [ -n "${val[$key]+set}" ] || keys+=("$key")
            val[$key]=${item#*=}
            val[$key]=${val[$key]# }
        done
    fi
    for k in "${keys[@]}"; do
        [ -n "${val[$k]+set}" ] && lines+=("$k = ${val[$k]}")
    done
    ROW_CONF=$WORK/conf/$1.cnf
    primus_openssl_conf "$ROW_CONF" "$PROV_SO" "${lines[@]}"
}

# check_row EXPECT STATUS: what does not hold, in the array PROBLEMS
check_row() {
    local all=$OUT$'\n'$ERR frag fn n got
    PROBLEMS=()
    [ "$STATUS" -eq "$2" ] || PROBLEMS+=("exit status $STATUS, expected $2")
    split "$1" " && "
    for frag in "${PARTS[@]}"; do
        subst "$frag"
        frag=$SUBST
        if [[ $frag =~ ^calls:(C_[A-Za-z]+)=([0-9]+)$ ]]; then
            fn=${BASH_REMATCH[1]}
            n=${BASH_REMATCH[2]}
            got=0
            [ -f "$P11SHIM_LOG" ] && got=$(grep -cx "$fn" "$P11SHIM_LOG")
            [ "$got" -eq "$n" ] || PROBLEMS+=("$fn reached the token $got times, expected $n")
        elif [[ $frag == !* ]]; then
            [[ $all != *"${frag#!}"* ]] || PROBLEMS+=("the output contains: ${frag#!}")
        else
            [[ $all == *"$frag"* ]] || PROBLEMS+=("the output lacks: $frag")
        fi
    done
    # never a PIN, never a sanitizer report
    for frag in "$USER_PIN" "$WRONG_PIN" "ERROR: AddressSanitizer" "runtime error:" "LeakSanitizer"; do
        [[ $all != *"$frag"* ]] || PROBLEMS+=("the output contains \"$frag\"")
    done
}

# The audit log is implemented once primusctl offers it and README no longer
# calls it planned ("- **Audit log** (planned, ...").
audit_ready() {
    "$CTL" --help 2>&1 | grep -q -- --audit-log &&
        ! grep -q '^- \*\*Audit log\*\* (planned' "$PRIMUS_SRC/README.md"
}

rows=0 skipped=0 xfailed=0
failures=()
while IFS=$'\t' read -r id surface command config expect status mark note; do
    [[ -z "$id" || $id == \#* ]] && continue
    [ -n "${BADINPUT_ONLY:-}" ] && [ "$id" != "$BADINPUT_ONLY" ] && continue
    rows=$((rows + 1))
    label="$id ($surface)"
    if [ "$mark" = audit ] && ! audit_ready; then
        echo "SKIP $label: the audit log is not implemented yet"
        skipped=$((skipped + 1))
        continue
    fi
    case $surface in
        primusctl) ROW_CONF=/dev/null ;;
        openssl) row_conf "$id-$rows" "$config" ;;
        *) fail "row $label: surface must be primusctl or openssl" ;;
    esac
    export P11SHIM_LOG=$WORK/shim/$rows.log
    subst "$command"
    cmd=$SUBST
    run eval "$cmd" </dev/null
    LAST_CMD=$command
    if [ -n "${BADINPUT_SHOW:-}" ]; then
        printf '%s\n  exit %s\n%s\n%s\n' "$label: $cmd" "$STATUS" "$OUT" "$ERR" | head -c 4000
    fi
    check_row "$expect" "$status"
    if [ "$mark" = xfail ]; then
        if [ "${#PROBLEMS[@]}" -gt 0 ]; then
            echo "XFAIL $label: $note"
            xfailed=$((xfailed + 1))
        else
            failures+=("$label: passes now; remove its \"xfail\" mark in $TABLE and regenerate README's table")
            echo "XPASS $label"
        fi
    elif [ "${#PROBLEMS[@]}" -gt 0 ]; then
        failures+=("$label: $cmd
$(printf '    %s\n' "${PROBLEMS[@]}")
    exit status: $STATUS
    stdout: $(head -c 1500 <<<"$OUT")
    stderr: $(head -c 1500 <<<"$ERR")")
        echo "FAIL $label"
    else
        echo "ok   $label"
        pass
    fi
done <"$TABLE"

[ "$rows" -gt 0 ] || fail "no row of $TABLE ran"
echo "$rows rows: $((rows - ${#failures[@]} - skipped - xfailed)) ok, ${#failures[@]} failed, $xfailed known bugs (xfail), $skipped skipped"
if [ "${#failures[@]}" -gt 0 ]; then
    LAST_CMD="rows of $TABLE"
    OUT=
    ERR=
    printf '%s\n\n' "${failures[@]}" >&2
    fail "${#failures[@]} rows of the bad-input table do not hold"
fi
finish
