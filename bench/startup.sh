#!/usr/bin/env bash
# startup.sh: wall time of one whole `openssl dgst -sha256 -sign KEY`
# process with the key in the HSM (pkcs11: URI through the primus provider)
# against the same key in a PEM file, measured with hyperfine.
#
#   HSM       OPENSSL_CONF loads primus; -sign pkcs11:token=...;object=ALG
#   PEM       OpenSSL's defaults (OPENSSL_CONF=/dev/null); -sign ALG.key
#   PEM+prov  primus loaded but unused; -sign ALG.key (what loading the
#             provider costs by itself)
#   raw       bench/p11once: the least any PKCS#11 client does per process
#             (dlopen, C_Initialize, C_Login, find, sign, C_Finalize)
#   nop       `p11once --nop`: the same binary exiting at once
# raw - nop is the token's floor per process: what a process pays to sign
# once with this SoftHSM token, whoever drives it.
# The same key material in all three (made in software, imported into a
# throwaway SoftHSM token).  Each HSM signature is verified once with the
# public key in software before timing.
#
#   bench/startup.sh [--quick] [--runs N] [--warmup N] [--algs "rsa2048 p256"] [--json-dir DIR]
# PRIMUS_BUILD selects the build tree (default: build/ of this checkout).
set -uo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=30
WARMUP=3
ALGS="rsa2048 p256"
JSON_DIR=
while [ $# -gt 0 ]; do
    case $1 in
    --quick) RUNS=10 WARMUP=2 ;;
    --runs) RUNS=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --algs) ALGS=$2; shift ;;
    --json-dir) JSON_DIR=$2; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "startup: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
command -v hyperfine >/dev/null || { echo "startup: hyperfine is not installed" >&2; exit 1; }

source "$SRC/bench/lib.sh"
P11ONCE=$BUILD/bench/p11once
[ -x "$P11ONCE" ] || { echo "startup: $P11ONCE is missing: build the p11once target" >&2; exit 1; }
bench_init startup
cd "$WORK" || exit 1
head -c 4096 /dev/urandom >msg
kid=1
for alg in $ALGS; do
    bench_key "$alg" "0$kid"
    kid=$((kid + 1))
done

status=0
printf '\nWall time of one `openssl dgst -sha256 -sign` process, hyperfine --warmup %s --runs %s\n' \
    "$WARMUP" "$RUNS"
printf '(nproc %s, load %s)\n' "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %8s %8s %8s %8s %8s %9s %9s %7s %10s %10s\n' alg HSM PEM PEM+prov raw nop HSM-PEM raw-nop target \
    "cpu H-P" "cpu r-n"
for alg in $ALGS; do
    hsm=(env "OPENSSL_CONF=$CONF" openssl dgst -sha256 -sign "$(bench_uri "$alg")" -out /dev/null msg)
    pem=(env OPENSSL_CONF=/dev/null openssl dgst -sha256 -sign "$alg.key" -out /dev/null msg)
    pemprov=(env "OPENSSL_CONF=$CONF" openssl dgst -sha256 -sign "$alg.key" -out /dev/null msg)
    case $alg in rsa*) kind=--rsa ;; *) kind=--ec ;; esac
    raw=("$P11ONCE" --module "$PRIMUS_SOFTHSM_MODULE" --token "$TOKEN" --object "$alg" \
        --pin-file "$WORK/pin" "$kind" msg)
    nop=("$P11ONCE" --nop)
    # one checked run of each: exit status 0 and a signature the public key verifies
    env "OPENSSL_CONF=$CONF" openssl dgst -sha256 -sign "$(bench_uri "$alg")" -out "$alg.sig" msg \
        2>"$alg.err" || { echo "startup: HSM dgst -sign failed: $(cat "$alg.err")" >&2; status=1; continue; }
    plain pkey -in "$alg.key" -pubout -out "$alg.pub"
    plain dgst -sha256 -verify "$alg.pub" -signature "$alg.sig" msg >/dev/null ||
        { echo "startup: the HSM signature does not verify" >&2; status=1; continue; }
    "${pem[@]}" || { echo "startup: PEM dgst -sign failed" >&2; status=1; continue; }
    "${pemprov[@]}" || { echo "startup: PEM dgst -sign with primus loaded failed" >&2; status=1; continue; }
    "${raw[@]}" || { echo "startup: p11once failed" >&2; status=1; continue; }
    q() { printf '%q ' "$@"; }
    hyperfine -N --style none --warmup "$WARMUP" --runs "$RUNS" --export-json "$alg.json" \
        -n HSM "$(q "${hsm[@]}")" -n PEM "$(q "${pem[@]}")" -n PEM+prov "$(q "${pemprov[@]}")" \
        -n raw "$(q "${raw[@]}")" -n nop "$(q "${nop[@]}")" \
        >"$alg.hyperfine.txt" 2>&1 || { echo "startup: hyperfine failed:" >&2; cat "$alg.hyperfine.txt" >&2; status=1; continue; }
    [ -n "$JSON_DIR" ] && cp "$alg.json" "$JSON_DIR/startup-$alg.json"
    python3 - "$alg.json" "$alg" <<'EOF'
import json, statistics, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
med = {k: statistics.median(v["times"]) * 1000 for k, v in r.items()}
d = med["HSM"] - med["PEM"]
# CPU time (user + system, mean) depends less on other load than wall time
cpu = {k: (v["user"] + v["system"]) * 1000 for k, v in r.items()}
print("%-8s %8.2f %8.2f %8.2f %8.2f %8.2f %+9.2f %+9.2f %7s %+10.2f %+10.2f" % (sys.argv[2], med["HSM"], med["PEM"],
      med["PEM+prov"], med["raw"], med["nop"], d, med["raw"] - med["nop"], "MET" if d <= 2.0 else "MISSED",
      cpu["HSM"] - cpu["PEM"], cpu["raw"] - cpu["nop"]))
EOF
done
echo "(milliseconds, medians of the runs; target: HSM at most 2 ms slower than PEM;"
echo " cpu H-P, cpu r-n: the same differences in CPU time, user + system, means)"
exit $status
