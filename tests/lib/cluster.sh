# A simulated Primus HSM cluster for tests: N real, separate node processes.  Source this file.
#
# Every node is `p11-kit server` exporting one SoftHSM2 token from its own token directory.
# All nodes hold a token with the SAME label (the partition) but their own serial, and the SAME
# key material (made once in software, imported into every node):
#     rsa-key   id 01  RSA-2048        ec-key  id 02  EC P-256        ec384-key  id 03  EC P-384
# A client reaches node K through p11-kit-client.so with
# P11_KIT_SERVER_ADDRESS=unix:path=$(cluster_socket K) set when it calls C_GetFunctionList.
#
#   cluster_setup DIR N LABEL PIN   make and start N (1..5) nodes under DIR (absolute or relative)
#   cluster_socket K                print node K's socket path
#   cluster_address K               print node K's P11_KIT_SERVER_ADDRESS value
#   cluster_kill K                  SIGKILL node K's process group, wait until it is gone (a node
#                                   already down: success)
#   cluster_stop K / cluster_cont K SIGSTOP / SIGCONT node K's process group (waits for the state)
#   cluster_restart K               start node K again (same token, same socket), wait until it serves
#   cluster_topology FILE [TIMEOUT_MS]  write a topology JSON for the running cluster
#   cluster_leftovers               print PIDs of live processes that still refer to DIR
#   cluster_teardown                kill every node (and its per-connection children); remove sockets.
#                                   Idempotent; meant for `trap cluster_teardown EXIT`.
#
# Layout: DIR/nodeK/{tokens/,softhsm2.conf,log}, DIR/nodeK.sock, DIR/nodeK.pgid,
#         DIR/ref/{rsa,ec,ec384}.pub.pem (reference public keys), DIR/keys/*.key.pem (mode 600),
#         DIR/pin (mode 600, no newline), DIR/cluster.env (state, so subshells and child scripts
#         can call the functions after `CLUSTER_DIR=DIR` is exported -- cluster_setup exports it).
#
# Process model: each node is started as `setsid ... &` and disowned, so it is its own session and
# process group (PGID recorded in DIR/nodeK.pgid), does not die with the caller's subshell or
# terminal signals, and holds none of the caller's pipes.  p11-kit server forks+execs a
# `p11-kit-remote` child per client connection in the same group; every signal here goes to the
# whole group.  Note the process names: `p11-kit server` re-execs itself as /usr/libexec/p11-kit/
# p11-kit-server with argv "server -f -n ...", so `pgrep -f 'p11-kit server'` never matches; use
# cluster_leftovers (or `pgrep p11-kit-` plus a check on the PGID) instead.
#
# Tunables (environment): PRIMUS_SOFTHSM_MODULE, CLUSTER_CLIENT_MODULE, CLUSTER_SO_PIN,
# CLUSTER_START_TIMEOUT (seconds, default 15), CLUSTER_QUIET=1 (no progress lines on stderr).

: "${PRIMUS_SOFTHSM_MODULE:=/usr/lib/softhsm/libsofthsm2.so}"
: "${CLUSTER_CLIENT_MODULE:=/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so}"
: "${CLUSTER_SO_PIN:=12345678}"
: "${CLUSTER_START_TIMEOUT:=15}"
export PRIMUS_SOFTHSM_MODULE CLUSTER_CLIENT_MODULE

_cluster_err() { echo "cluster: $*" >&2; }
_cluster_say() { [ "${CLUSTER_QUIET:-0}" = 1 ] || echo "cluster: $*" >&2; }
_cluster_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Load DIR/cluster.env (N, LABEL, PIN) into the current shell if needed.
_cluster_load() {
    if [ -z "${CLUSTER_DIR:-}" ] || [ ! -f "$CLUSTER_DIR/cluster.env" ]; then
        _cluster_err "no cluster (CLUSTER_DIR unset or not set up)"
        return 1
    fi
    # shellcheck disable=SC1091
    . "$CLUSTER_DIR/cluster.env"
}

_cluster_check_k() {
    _cluster_load || return 1
    case "$1" in
        '' | *[!0-9]*) _cluster_err "bad node number '$1'"; return 1 ;;
    esac
    if [ "$1" -lt 1 ] || [ "$1" -gt "$CLUSTER_N" ]; then
        _cluster_err "no node $1 (cluster has $CLUSTER_N)"
        return 1
    fi
}

# RFC 3986 percent-encoding of everything outside the unreserved set (for the token= attribute).
_cluster_pct() {
    local LC_ALL=C s=$1 out='' c i
    for ((i = 0; i < ${#s}; i++)); do
        c=${s:i:1}
        case "$c" in
            [A-Za-z0-9._~-]) out+=$c ;;
            *) out+=$(printf '%%%02X' "'$c") ;;
        esac
    done
    printf '%s' "$out"
}

_cluster_json_str() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    printf '"%s"' "$s"
}

# States ("R", "S", "T", ...) of the live (non-zombie) processes in process group $1, one a line.
_cluster_group_states() {
    ps -e -o pgid=,stat= 2>/dev/null | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { print $2 }'
}

_cluster_pgid() {
    local f=$CLUSTER_DIR/node$1.pgid
    if [ -s "$f" ]; then cat "$f"; fi
}

# Wait (bounded, ms) until `cmd` succeeds.
_cluster_poll() {
    local limit=$1 start
    shift
    start=$(_cluster_ms)
    until "$@"; do
        [ $(( $(_cluster_ms) - start )) -ge "$limit" ] && return 1
        sleep 0.01
    done
}

_cluster_group_gone() { [ -z "$(_cluster_group_states "$1")" ]; }
_cluster_group_stopped() {
    local st
    st=$(_cluster_group_states "$1")
    [ -n "$st" ] && ! grep -qv '^T' <<<"$st"
}
_cluster_group_running() {
    local st
    st=$(_cluster_group_states "$1")
    [ -n "$st" ] && ! grep -q '^T' <<<"$st"
}

# Does node K serve the partition token through the client module?
_cluster_serves() {
    local k=$1 sock=$CLUSTER_DIR/node$1.sock
    [ -S "$sock" ] || return 1
    P11_KIT_SERVER_ADDRESS="unix:path=$sock" timeout 5 \
        pkcs11-tool --module "$CLUSTER_CLIENT_MODULE" -L >"$CLUSTER_DIR/node$k/probe.out" 2>&1
    grep -qF "token label        : $CLUSTER_LABEL" "$CLUSTER_DIR/node$k/probe.out"
}

# Start node K in the background (no waiting).
_cluster_spawn() {
    local k=$1 d=$CLUSTER_DIR/node$1 sock=$CLUSTER_DIR/node$1.sock
    rm -f "$sock" "$CLUSTER_DIR/node$k.pgid"
    { [ -s "$d/log" ] && echo; echo "--- start $(date '+%H:%M:%S.%N')"; } >>"$d/log"
    # The inner shell records its own PID, which is the session and group leader whatever
    # setsid had to do (it forks when the caller is a group leader, e.g. under `set -m`).
    SOFTHSM2_CONF="$d/softhsm2.conf" setsid bash -c 'echo $$ > "$1.tmp" && mv "$1.tmp" "$1"; shift; exec "$@"' \
        cluster-node "$CLUSTER_DIR/node$k.pgid" \
        p11-kit server -f -n "$sock" --provider "$PRIMUS_SOFTHSM_MODULE" \
        "pkcs11:token=$(_cluster_pct "$CLUSTER_LABEL")" \
        </dev/null >>"$d/log" 2>&1 &
    disown $! 2>/dev/null || true
}

# Wait until node K has recorded its PGID and serves its token; on failure show its log.
_cluster_await() {
    local k=$1 start pgid limit=$((CLUSTER_START_TIMEOUT * 1000))
    start=$(_cluster_ms)
    while :; do
        pgid=$(_cluster_pgid "$k")
        if [ -n "$pgid" ]; then
            if _cluster_serves "$k"; then
                return 0
            fi
            if _cluster_group_gone "$pgid"; then
                _cluster_err "node $k (pgid $pgid) exited during start-up; its log:"
                sed 's/^/    /' "$CLUSTER_DIR/node$k/log" >&2
                return 1
            fi
        fi
        if [ $(( $(_cluster_ms) - start )) -ge "$limit" ]; then
            _cluster_err "node $k did not serve token '$CLUSTER_LABEL' on $CLUSTER_DIR/node$k.sock within ${CLUSTER_START_TIMEOUT}s; last probe (pkcs11-tool -L through the client module):"
            sed 's/^/    /' "$CLUSTER_DIR/node$k/probe.out" >&2 2>/dev/null
            _cluster_err "node $k log:"
            sed 's/^/    /' "$CLUSTER_DIR/node$k/log" >&2
            return 1
        fi
        sleep 0.02
    done
}

# Import one PEM key pair (private + public, same id and label) into the token of node K.
_cluster_import() {
    local k=$1 priv=$2 pub=$3 id=$4 label=$5 out spec
    for spec in "privkey:$priv" "pubkey:$pub"; do
        if ! out=$(SOFTHSM2_CONF="$CLUSTER_DIR/node$k/softhsm2.conf" pkcs11-tool \
                --module "$PRIMUS_SOFTHSM_MODULE" --token-label "$CLUSTER_LABEL" \
                --login --pin "$CLUSTER_PIN" --write-object "${spec#*:}" --type "${spec%%:*}" \
                --id "$id" --label "$label" 2>&1); then
            _cluster_err "node $k: importing ${spec%%:*} $label (id $id) failed:"
            echo "$out" | sed 's/^/    /' >&2
            return 1
        fi
    done
}

# Check that node K's token holds exactly the expected private and public objects.
_cluster_verify_objects() {
    local k=$1 out want
    out=$(SOFTHSM2_CONF="$CLUSTER_DIR/node$k/softhsm2.conf" pkcs11-tool \
        --module "$PRIMUS_SOFTHSM_MODULE" --token-label "$CLUSTER_LABEL" \
        --login --pin "$CLUSTER_PIN" --list-objects 2>&1) || {
        _cluster_err "node $k: listing objects failed: $out"
        return 1
    }
    # Turn "X Key Object; ..." + "label: L" + "ID: I" into lines "X L I".
    out=$(awk '/Key Object;/ { kind = $1 } /^ *label:/ { label = $2 } /^ *ID:/ { print kind, label, $2 }' <<<"$out" | sort)
    want=$(printf '%s\n' "Private ec-key 02" "Private ec384-key 03" "Private rsa-key 01" \
        "Public ec-key 02" "Public ec384-key 03" "Public rsa-key 01" | sort)
    if [ "$out" != "$want" ]; then
        _cluster_err "node $k: token objects are not the expected six; found:"
        echo "$out" | sed 's/^/    /' >&2
        return 1
    fi
}

# Token directory, conf, token and imported keys of node K (run in the background by setup).
_cluster_prepare_node() {
    local k=$1 d=$CLUSTER_DIR/node$1
    cat >"$d/softhsm2.conf" <<CONF
directories.tokendir = $d/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
    : >"$d/log"
    if ! SOFTHSM2_CONF="$d/softhsm2.conf" softhsm2-util --init-token --free \
            --label "$CLUSTER_LABEL" --pin "$CLUSTER_PIN" --so-pin "$CLUSTER_SO_PIN" >"$d/init.out" 2>&1; then
        _cluster_err "node $k: softhsm2-util --init-token failed: $(cat "$d/init.out")"
        return 1
    fi
    _cluster_import "$k" "$CLUSTER_DIR/keys/rsa.key.pem" "$CLUSTER_DIR/ref/rsa.pub.pem" 01 rsa-key &&
    _cluster_import "$k" "$CLUSTER_DIR/keys/ec.key.pem" "$CLUSTER_DIR/ref/ec.pub.pem" 02 ec-key &&
    _cluster_import "$k" "$CLUSTER_DIR/keys/ec384.key.pem" "$CLUSTER_DIR/ref/ec384.pub.pem" 03 ec384-key &&
    _cluster_verify_objects "$k"
}

cluster_setup() {
    if [ $# -ne 4 ]; then
        _cluster_err "usage: cluster_setup DIR N LABEL PIN"
        return 2
    fi
    local dir=$1 n=$2 label=$3 pin=$4 k t0 t1 serials tool f key
    case "$n" in
        [1-5]) ;;
        *) _cluster_err "N must be 1..5, not '$n'"; return 2 ;;
    esac
    if [ -n "${CLUSTER_DIR:-}" ] && ls "$CLUSTER_DIR"/node*.pgid >/dev/null 2>&1; then
        _cluster_err "a cluster is already running in $CLUSTER_DIR; tear it down first"
        return 1
    fi
    for tool in p11-kit pkcs11-tool softhsm2-util openssl setsid timeout; do
        command -v "$tool" >/dev/null || { _cluster_err "missing tool: $tool"; return 1; }
    done
    for f in "$PRIMUS_SOFTHSM_MODULE" "$CLUSTER_CLIENT_MODULE"; do
        [ -r "$f" ] || { _cluster_err "missing module: $f"; return 1; }
    done
    mkdir -p "$dir" || return 1
    dir=$(cd "$dir" && pwd) || return 1
    # sun_path holds 108 bytes.
    if [ $(( ${#dir} + 11 )) -ge 108 ]; then
        _cluster_err "DIR too long for a unix socket path: $dir"
        return 1
    fi
    CLUSTER_DIR=$dir CLUSTER_N=$n CLUSTER_LABEL=$label CLUSTER_PIN=$pin
    export CLUSTER_DIR
    {
        printf 'CLUSTER_N=%q\n' "$n"
        printf 'CLUSTER_LABEL=%q\n' "$label"
        printf 'CLUSTER_PIN=%q\n' "$pin"
    } >"$dir/cluster.env"
    (umask 077 && printf '%s' "$pin" >"$dir/pin") && chmod 600 "$dir/pin"

    # Keys: made once in software; the public halves are the reference.
    t0=$(_cluster_ms)
    mkdir -p "$dir/ref" "$dir/keys" && chmod 700 "$dir/keys"
    (
        umask 077
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/keys/rsa.key.pem" &&
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/keys/ec.key.pem" &&
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$dir/keys/ec384.key.pem"
    ) 2>"$dir/keys/genpkey.err" || {
        _cluster_err "openssl genpkey failed: $(cat "$dir/keys/genpkey.err")"
        return 1
    }
    for key in rsa ec ec384; do
        openssl pkey -in "$dir/keys/$key.key.pem" -pubout -out "$dir/ref/$key.pub.pem" || return 1
    done

    # Tokens: one directory and one conf per node; same label, own serial.  Nodes in parallel.
    local pids=() failed=0
    for ((k = 1; k <= n; k++)); do
        rm -rf "$dir/node$k" && mkdir -p "$dir/node$k/tokens" || return 1
        _cluster_prepare_node "$k" 2>"$dir/node$k/prepare.err" &
        pids[k]=$!
    done
    for ((k = 1; k <= n; k++)); do
        if ! wait "${pids[k]}"; then
            cat "$dir/node$k/prepare.err" >&2
            failed=1
        fi
    done
    [ "$failed" = 0 ] || return 1
    t1=$(_cluster_ms)
    serials=$(for ((k = 1; k <= n; k++)); do
        SOFTHSM2_CONF="$dir/node$k/softhsm2.conf" softhsm2-util --show-slots 2>/dev/null |
            awk '/Serial number:/ { print $3; exit }'
    done)
    if [ "$(sort -u <<<"$serials" | grep -c .)" -ne "$n" ]; then
        _cluster_err "token serials are not distinct: ${serials//$'\n'/ }"
        return 1
    fi
    _cluster_say "$n token(s) made and keys imported in $((t1 - t0)) ms"

    # Nodes: start all, then wait for each.
    for ((k = 1; k <= n; k++)); do
        _cluster_spawn "$k"
    done
    for ((k = 1; k <= n; k++)); do
        if ! _cluster_await "$k"; then
            cluster_teardown
            return 1
        fi
    done
    _cluster_say "$n node(s) serving '$label' in $(( $(_cluster_ms) - t1 )) ms"
}

cluster_socket() {
    _cluster_check_k "$1" || return 1
    printf '%s\n' "$CLUSTER_DIR/node$1.sock"
}

cluster_address() {
    _cluster_check_k "$1" || return 1
    printf 'unix:path=%s\n' "$CLUSTER_DIR/node$1.sock"
}

# Signal node K's process group with $2; wait (bounded) for predicate $3.
_cluster_signal() {
    local k=$1 sig=$2 pred=$3 pgid
    _cluster_check_k "$k" || return 1
    pgid=$(_cluster_pgid "$k")
    [ -n "$pgid" ] || { _cluster_err "node $k is not running"; return 1; }
    kill -s "$sig" -- "-$pgid" 2>/dev/null
    if ! _cluster_poll 5000 "$pred" "$pgid"; then
        _cluster_err "node $k (pgid $pgid): no effect of SIG$sig within 5 s: $(_cluster_group_states "$pgid" | tr '\n' ' ')"
        return 1
    fi
}

# Killing a node that is already down succeeds (quietly).
cluster_kill() {
    local pgid
    _cluster_check_k "$1" || return 1
    pgid=$(_cluster_pgid "$1")
    if [ -z "$pgid" ] || _cluster_group_gone "$pgid"; then
        rm -f "$CLUSTER_DIR/node$1.pgid"
        return 0
    fi
    _cluster_signal "$1" KILL _cluster_group_gone || return 1
    rm -f "$CLUSTER_DIR/node$1.pgid"
}

cluster_stop() { _cluster_signal "$1" STOP _cluster_group_stopped; }
cluster_cont() { _cluster_signal "$1" CONT _cluster_group_running; }

cluster_restart() {
    local k=$1 pgid
    _cluster_check_k "$k" || return 1
    pgid=$(_cluster_pgid "$k")
    if [ -n "$pgid" ] && ! _cluster_group_gone "$pgid"; then
        _cluster_err "node $k is still running (pgid $pgid); cluster_kill it first"
        return 1
    fi
    _cluster_spawn "$k"
    _cluster_await "$k"
}

cluster_topology() {
    local file=$1 tmo=${2:-1000} k sep=''
    _cluster_load || return 1
    if [ -z "$file" ]; then
        _cluster_err "usage: cluster_topology FILE [TIMEOUT_MS]"
        return 2
    fi
    case "$tmo" in '' | *[!0-9]*) _cluster_err "bad TIMEOUT_MS '$tmo'"; return 2 ;; esac
    {
        printf '{"partitions":[{"name":%s,"id":%s,"members":[' \
            "$(_cluster_json_str "$CLUSTER_LABEL")" "$(_cluster_json_str "$CLUSTER_LABEL")"
        for ((k = 1; k <= CLUSTER_N; k++)); do
            printf '%s\n  {"name":"node%d","module":%s,"env":{"P11_KIT_SERVER_ADDRESS":%s},"priority":0,"timeout-ms":%d}' \
                "$sep" "$k" "$(_cluster_json_str "$CLUSTER_CLIENT_MODULE")" \
                "$(_cluster_json_str "unix:path=$CLUSTER_DIR/node$k.sock")" "$tmo"
            sep=,
        done
        printf '\n]}]}\n'
    } >"$file"
}

# PIDs of live processes whose command line or environment mentions CLUSTER_DIR (every node
# process has SOFTHSM2_CONF=DIR/nodeK/softhsm2.conf in its environment, per-connection
# p11-kit-remote children included).
cluster_leftovers() {
    [ -n "${CLUSTER_DIR:-}" ] || return 0
    local p
    for p in $(pgrep '^p11-kit-'); do
        if grep -qzF -- "$CLUSTER_DIR/" "/proc/$p/environ" "/proc/$p/cmdline" 2>/dev/null; then
            echo "$p"
        fi
    done
}

cluster_teardown() {
    [ -n "${CLUSTER_DIR:-}" ] && [ -d "$CLUSTER_DIR" ] || return 0
    local f pgid rc=0 left
    for f in "$CLUSTER_DIR"/node*.pgid; do
        [ -e "$f" ] || continue
        pgid=$(cat "$f")
        if [ -n "$pgid" ]; then
            kill -s KILL -- "-$pgid" 2>/dev/null
            if ! _cluster_poll 5000 _cluster_group_gone "$pgid"; then
                _cluster_err "process group $pgid survived SIGKILL"
                rc=1
            fi
        fi
        rm -f "$f"
    done
    rm -f "$CLUSTER_DIR"/node*.sock
    left=$(cluster_leftovers)
    if [ -n "$left" ]; then
        _cluster_err "processes left behind: ${left//$'\n'/ }"
        rc=1
    fi
    return $rc
}
