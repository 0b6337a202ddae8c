# Shared by the examples' run.sh scripts.  Source it; nothing here is needed
# in a real deployment (there the key already lives in the HSM and the
# certificate comes from your CA).
#
# What it does for an example:
#   ex_begin NAME        make a private work directory (removed at exit unless
#                        KEEP=1), stop every server started with ex_bg at exit
#   ex_keys              a throwaway SoftHSM2 token with an RSA-2048 and an EC P-256
#                        key, made with pkcs11-tool -- or existing keys (below)
#   ex_openssl_conf      write $WORK/openssl.cnf from the sample conf/openssl-primus.cnf
#                        and export OPENSSL_CONF
#   ex_ca, ex_cert NAME KEY_URI server|client
#                        a software test CA that certifies the public half of an
#                        HSM key (the CSR is signed in the HSM through the provider)
#   ex_uri_pem URI FILE  the key file that holds only the URI (primusctl uri-pem)
#   ex_pubkey_matches CERT URI   the certificate's public key is the HSM key's
#   ex_free_port, ex_wait_port PORT, ex_bg CMD..., ex_stop PID
#
# Environment (all optional):
#   PRIMUS_BUILD     build tree (default: <repo>/build) holding provider/primus.so
#                    and tools/primusctl; or set PRIMUS_PROVIDER and PRIMUSCTL
#   PRIMUS_MODULE    PKCS#11 module (default: SoftHSM2)
#   RSA_KEY_URI, EC_KEY_URI, PIN_FILE
#                    use existing keys instead of a throwaway token (PIN_FILE: a file
#                    holding the token PIN; with SoftHSM also set SOFTHSM2_CONF)
#   PYTHON           the Python 3 to use (default /usr/bin/python3)
#   WORKER_USER      user of forked server workers when run as root (default www-data)
#   KEEP=1           keep the work directory;  STAY=1  leave the server running until
#                    you press Enter
set -euo pipefail

EX_HOME=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
EX_REPO=$(dirname "$EX_HOME")
: "${PRIMUS_BUILD:=$EX_REPO/build}"
: "${PRIMUS_PROVIDER:=$PRIMUS_BUILD/provider/primus.so}"
: "${PRIMUSCTL:=$PRIMUS_BUILD/tools/primusctl}"
: "${PRIMUS_MODULE:=/usr/lib/softhsm/libsofthsm2.so}"
# Python 3 (the system one starts faster than a pyenv shim); PYTHON overrides.
PY=${PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=python3
EX_PIDS=()

say() { printf '\n==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf '\nERROR: %s\n' "$*" >&2; exit 1; }
# Show a command (quoted where the shell needs it), then run it.
show() {
    local a line=''
    for a in "$@"; do
        if [[ $a =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
            line+=" $a"
        else
            line+=" '${a//\'/\'\\\'\'}'"
        fi
    done
    printf '    $%s\n' "$line"
    "$@"
}
# openssl without the provider (software CA work, reference checks).
plain_openssl() { OPENSSL_CONF=/dev/null openssl "$@"; }

ex_begin() {
    EX_NAME=$1
    [ -f "$PRIMUS_PROVIDER" ] || die "no provider at $PRIMUS_PROVIDER (build first: bash scripts/build.sh, or set PRIMUS_BUILD)"
    [ -x "$PRIMUSCTL" ] || die "no primusctl at $PRIMUSCTL"
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/primus-example-$EX_NAME.XXXXXX")
    # Forked workers may run as another user: let them reach the files.
    chmod 755 "$WORK"
    trap ex_cleanup EXIT
    trap 'exit 130' INT TERM
    say "$EX_NAME example: work directory $WORK"
}

# Stop a server started with ex_bg: SIGTERM, then SIGKILL after 10 s.
ex_stop() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

ex_cleanup() {
    local rc=$? p
    set +e
    for p in "${EX_PIDS[@]}"; do
        if kill -0 "$p" 2>/dev/null; then
            ex_stop "$p"
            # servers started under setsid lead their own process group
            kill -KILL -- "-$p" 2>/dev/null
        fi
    done
    if [ "${KEEP:-0}" = 1 ]; then
        echo "(kept $WORK)"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}

# Run CMD in the background in its own session (servers signal their whole
# process group on stop); its PID in $EX_PID, stopped at exit.
ex_bg() {
    local log=$1
    shift
    setsid "$@" >"$log" 2>&1 </dev/null &
    EX_PID=$!
    EX_PIDS+=("$EX_PID")
}

ex_free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Wait until something listens on 127.0.0.1:PORT (checked without connecting).
ex_wait_port() {
    local hex i
    hex=$(printf '%04X' "$1")
    for i in $(seq 200); do
        grep -q "^ *[0-9]*: 0100007F:$hex 00000000:0000 0A" /proc/net/tcp && return 0
        sleep 0.05
    done
    die "nothing listens on 127.0.0.1:$1"
}

ex_keys() {
    if [ -n "${RSA_KEY_URI:-}${EC_KEY_URI:-}" ]; then
        [ -n "${PIN_FILE:-}" ] || die "RSA_KEY_URI/EC_KEY_URI given: set PIN_FILE too"
        EX_OWN_TOKEN=0
        say "using existing keys: ${RSA_KEY_URI:-} ${EC_KEY_URI:-}"
        return 0
    fi
    EX_OWN_TOKEN=1
    local label=EXAMPLE pin=1234 tool
    say "throwaway SoftHSM2 token '$label' in $WORK/softhsm with an RSA and an EC key"
    mkdir -p "$WORK/softhsm/tokens"
    cat >"$WORK/softhsm/softhsm2.conf" <<CONF
directories.tokendir = $WORK/softhsm/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
    export SOFTHSM2_CONF=$WORK/softhsm/softhsm2.conf
    softhsm2-util --init-token --free --label "$label" --pin "$pin" --so-pin 12345678 >/dev/null
    tool=(pkcs11-tool --module "$PRIMUS_MODULE" --token-label "$label" --login --pin "$pin")
    show "${tool[@]}" --keypairgen --key-type rsa:2048 --id 01 --label rsa-key >/dev/null
    show "${tool[@]}" --keypairgen --key-type EC:prime256v1 --id 02 --label ec-key >/dev/null
    PIN_FILE=$WORK/pin
    (umask 077 && printf '%s' "$pin" >"$PIN_FILE")
    RSA_KEY_URI="pkcs11:token=$label;object=rsa-key;type=private"
    EC_KEY_URI="pkcs11:token=$label;object=ec-key;type=private"
    note "RSA key: $RSA_KEY_URI"
    note "EC key:  $EC_KEY_URI"
}

# Forked workers of nginx and Apache open the token again after the fork, as
# the worker user: it must be able to read the token and the PIN file.
ex_worker_user() {
    if [ "$(id -u)" != 0 ]; then
        WORKER_USER=$(id -un)
        WORKER_GROUP=$(id -gn)
        return 0
    fi
    : "${WORKER_USER:=www-data}"
    WORKER_GROUP=$(id -gn "$WORKER_USER")
    if [ "${EX_OWN_TOKEN:-0}" = 1 ]; then
        note "workers run as $WORKER_USER: giving it the throwaway token and the PIN file"
        chown -R "$WORKER_USER:$WORKER_GROUP" "$WORK/softhsm" "$PIN_FILE"
    else
        note "workers run as $WORKER_USER: it must be able to read the token and $PIN_FILE"
    fi
}

# $WORK/openssl.cnf: the sample conf/openssl-primus.cnf with this machine's paths.
ex_openssl_conf() {
    sed -e "s|^module = .*|module = $PRIMUS_PROVIDER|" \
        -e "s|^pkcs11-module-path = .*|pkcs11-module-path = $PRIMUS_MODULE|" \
        -e "s|^pkcs11-module-token-pin = .*|pkcs11-module-token-pin = file:$PIN_FILE|" \
        "$EX_REPO/conf/openssl-primus.cnf" >"$WORK/openssl.cnf"
    grep -qx "module = $PRIMUS_PROVIDER" "$WORK/openssl.cnf" &&
        grep -qx "pkcs11-module-path = $PRIMUS_MODULE" "$WORK/openssl.cnf" &&
        grep -qx "pkcs11-module-token-pin = file:$PIN_FILE" "$WORK/openssl.cnf" ||
        die "conf/openssl-primus.cnf no longer has the module/pkcs11-module-path/pkcs11-module-token-pin lines"
    export OPENSSL_CONF=$WORK/openssl.cnf
    note "OPENSSL_CONF=$OPENSSL_CONF: conf/openssl-primus.cnf with"
    grep -E '^(module|pkcs11-module-path|pkcs11-module-token-pin) = ' "$OPENSSL_CONF" | sed 's/^/      /'
}

ex_ca() {
    say "a software test CA (in real life: your CA)"
    plain_openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$WORK/ca.key" -subj "/CN=primus example CA" -days 2 -out "$WORK/ca.crt" 2>/dev/null
    cat >"$WORK/ext.cnf" <<'EOF'
[server]
subjectAltName = IP:127.0.0.1, DNS:localhost
extendedKeyUsage = serverAuth
[client]
extendedKeyUsage = clientAuth
EOF
}

# ex_cert NAME KEY_URI server|client: $WORK/NAME.crt for the HSM key.
ex_cert() {
    local name=$1 uri=$2 kind=$3
    note "certificate $name.crt: the CSR is signed with the HSM key through the provider"
    show openssl req -new -key "$uri" -subj "/CN=$name" -out "$WORK/$name.csr"
    plain_openssl x509 -req -in "$WORK/$name.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" \
        -CAcreateserial -days 2 -extfile "$WORK/ext.cnf" -extensions "$kind" \
        -out "$WORK/$name.crt" 2>/dev/null
}

ex_uri_pem() {
    show "$PRIMUSCTL" uri-pem "$1" -out "$2"
    chmod 644 "$2"
}

# The certificate's public key is the HSM key's (read through the provider).
ex_pubkey_matches() {
    local cert=$1 uri=$2
    cmp -s <(plain_openssl x509 -in "$cert" -noout -pubkey) <(openssl pkey -in "$uri" -pubout)
}

# Wait for Enter when STAY=1, so that the server can be tried by hand.
ex_stay() {
    if [ "${STAY:-0}" = 1 ]; then
        say "STAY=1: the server keeps running; $*"
        read -r -p "    press Enter to stop it " _ || true
    fi
}
