# shellcheck shell=bash
# Shared by tlsbench.sh and startup.sh.  Source it after setting SRC.
#
#   bench_init NAME       temp dir $WORK (removed at exit, servers killed),
#                         throwaway SoftHSM token $TOKEN with pin file, and
#                         $CONF: an openssl.cnf loading default + primus
#   bench_key ALG ID      ALG (rsa2048, p256) made in software as $WORK/ALG.key,
#                         imported into the token (private and public half)
#                         as object ALG with CKA_ID ID, a self-signed
#                         $WORK/ALG.crt, and $WORK/ALG.uri.pem (primusctl uri-pem)
#   bench_uri ALG         the key's pkcs11: URI
#   plain ARGS...         openssl with OpenSSL's defaults and no provider config
#   bench_start NAME ENV... -- CMD...   CMD in its own process group, killed at exit
# PRIMUS_BUILD selects the build tree (default: build/ of this checkout).
set -uo pipefail

BUILD=${PRIMUS_BUILD:-$SRC/build}
PROV_SO=$BUILD/provider/primus.so
PRIMUSCTL=$BUILD/tools/primusctl
source "$SRC/tests/lib/token.sh"

bench_init() {
    local f
    for f in "$PROV_SO" "$PRIMUSCTL"; do
        [ -f "$f" ] || { echo "$1: $f is missing: build the primus and primusctl targets" >&2; exit 1; }
    done
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/primus-$1.XXXXXX")
    BENCH_GROUPS=()
    trap _bench_cleanup EXIT
    trap 'exit 130' INT TERM
    PIN=24681357
    TOKEN=$1
    token_setup "$WORK/hsm"
    token_create "$TOKEN" "$PIN"
    token_pin_file "$WORK/pin" "$PIN"
    CONF=$WORK/openssl.cnf
    cat >"$CONF" <<EOF
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
default = default_sect
primus = primus_sect
[default_sect]
activate = 1
[primus_sect]
module = $PROV_SO
pkcs11-module-path = $PRIMUS_SOFTHSM_MODULE
pkcs11-module-token-pin = file:$WORK/pin
activate = 1
EOF
    mkfifo "$WORK/stdin.fifo" # servers that read stdin: a FIFO opened read-write never ends
}

_bench_cleanup() {
    local g
    for g in "${BENCH_GROUPS[@]}"; do
        kill -TERM -- "-$g" 2>/dev/null
    done
    [ ${#BENCH_GROUPS[@]} -gt 0 ] && sleep 0.3
    for g in "${BENCH_GROUPS[@]}"; do
        kill -KILL -- "-$g" 2>/dev/null
    done
    rm -rf "$WORK"
}

plain() { OPENSSL_CONF=/dev/null openssl "$@"; }

bench_uri() { echo "pkcs11:token=$TOKEN;object=$1;type=private"; }

bench_key() {
    local alg=$1 id=$2 tool
    tool=(pkcs11-tool --module "$PRIMUS_SOFTHSM_MODULE" --token-label "$TOKEN" --login --pin "$PIN")
    case $alg in
    rsa2048) plain genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/$alg.key" 2>/dev/null ;;
    rsa3072) plain genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "$WORK/$alg.key" 2>/dev/null ;;
    p256) plain genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/$alg.key" ;;
    p384) plain genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$WORK/$alg.key" ;;
    *) echo "unknown algorithm $alg (rsa2048, rsa3072, p256, p384)" >&2; exit 2 ;;
    esac || exit 1
    plain pkey -in "$WORK/$alg.key" -outform DER -out "$WORK/$alg.der" &&
        plain pkey -in "$WORK/$alg.key" -pubout -outform DER -out "$WORK/$alg.pub.der" &&
        "${tool[@]}" --write-object "$WORK/$alg.der" --type privkey --id "$id" --label "$alg" \
            --usage-sign >/dev/null &&
        "${tool[@]}" --write-object "$WORK/$alg.pub.der" --type pubkey --id "$id" --label "$alg" \
            >/dev/null || { echo "importing $alg into the token failed" >&2; exit 1; }
    rm -f "$WORK/$alg.der"
    plain req -x509 -new -key "$WORK/$alg.key" -subj "/CN=primus bench $alg" -days 2 \
        -out "$WORK/$alg.crt" || exit 1
    "$PRIMUSCTL" uri-pem "$(bench_uri "$alg")" -out "$WORK/$alg.uri.pem" ||
        { echo "primusctl uri-pem failed" >&2; exit 1; }
}

bench_start() {
    local name=$1 envs=()
    shift
    while [ "$1" != -- ]; do
        envs+=("$1")
        shift
    done
    shift
    env "${envs[@]}" setsid "$@" >"$WORK/${name//\//_}.log" 2>&1 0<>"$WORK/stdin.fifo" &
    BENCH_GROUPS+=("$!")
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
    local hex
    hex=$(printf '%04X' "$1")
    for _ in $(seq 1 200); do
        grep -q "^ *[0-9]*: 0100007F:$hex 00000000:0000 0A" /proc/net/tcp 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# median of the numbers on stdin, one a line
median() {
    sort -g | awk '{v[NR]=$1} END {if (NR==0) {print "nan"; exit} if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'
}
