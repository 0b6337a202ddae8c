#!/usr/bin/env bash
# profile.sh: instructions per signature of each signbench contender,
# counted by valgrind's callgrind (exact and independent of other load on
# the machine, unlike the wall-clock tables), and where the provider's
# instructions go.
#
#   bench/profile.sh [--algs "p256 rsa2048 ..."] [--seconds S] [--keep DIR] [--audit]
#
# For each algorithm: one signbench run under callgrind, one thread,
# contenders raw-token, raw-session, provider, libp11 (each has its own
# sign_* function in signbench.c).  Per signature = the function's
# inclusive instructions over its calls; only the measuring threads are
# counted (their 3 warm-up signatures included).
# The provider is broken down into: the token's work (C_SignInit + C_Sign
# as the core calls them), the rest of the core (p11_key_sign), the
# provider's signature code around it (hashing, DER encoding), and
# OpenSSL's EVP layer (EVP_DigestSignInit_ex and the rest of EVP_DigestSign).
# --audit (default algorithm p256): provider vs provider+audit instead: per
# signature in the signing thread, plus the audit writer thread's
# instructions per record (writer_main: every record it formatted, chained,
# MACed and wrote), and where the writer's go.
# PRIMUS_BUILD selects the build tree (default: build/ of this checkout).
set -uo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${PRIMUS_BUILD:-$SRC/build}
ALGS="rsa2048 rsa2048-pss rsa3072 rsa3072-pss p256 p384"
ALGS_SET=0
SECS=1
KEEP=
AUDIT=0
while [ $# -gt 0 ]; do
    case $1 in
    --algs) ALGS=$2; ALGS_SET=1; shift ;;
    --audit) AUDIT=1 ;;
    --seconds) SECS=$2; shift ;;
    --keep) KEEP=$2; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "profile: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
command -v valgrind >/dev/null || { echo "profile: valgrind is not installed" >&2; exit 1; }
SB=$BUILD/bench/signbench
[ -x "$SB" ] || { echo "profile: $SB is missing: build the signbench target" >&2; exit 1; }
OUT=${KEEP:-$(mktemp -d "${TMPDIR:-/tmp}/primus-profile.XXXXXX")}
mkdir -p "$OUT"
[ -z "$KEEP" ] && trap 'rm -rf "$OUT"' EXIT

if [ "$AUDIT" = 1 ]; then
    [ "$ALGS_SET" = 1 ] || ALGS=p256
    echo "Instructions per signature with the audit log off and on (thousands), callgrind, 1 thread"
    printf '%-12s %10s %10s %10s %10s %7s\n' alg provider "+audit" "writer/rec" "on total" "on/off"
    status=0
    for alg in $ALGS; do
        cg=$OUT/callgrind.audit.$alg
        # the signing threads and the audit writer thread only
        if ! valgrind --tool=callgrind --callgrind-out-file="$cg" --toggle-collect=run_thread_main \
            --toggle-collect=writer_main "$SB" --algs "$alg" --threads 1 \
            --contenders provider,provider+audit --seconds "$SECS" --rounds 1 \
            >"$OUT/audit.$alg.log" 2>&1; then
            echo "profile: signbench --audit under callgrind failed for $alg:" >&2
            grep -v '^==' "$OUT/audit.$alg.log" | tail -5 >&2
            status=1
            continue
        fi
        callgrind_annotate --inclusive=yes --tree=both --threshold=100 "$cg" >"$cg.txt" 2>/dev/null
        python3 - "$cg.txt" "$alg" <<'PY'
import re, sys
line_re = re.compile(r"^\s*([\d,]+)\s+\([^)]*\)\s+([<>*])\s+(.*?)(?: \(([\d,]+)x\))? \[")
blocks = {}
for chunk in open(sys.argv[1]).read().split("\n\n"):
    b = {"incl": 0, "callees": {}}
    name = None
    for l in chunk.split("\n"):
        m = line_re.match(l)
        if not m:
            continue
        cost = int(m.group(1).replace(",", ""))
        fn = m.group(3).split(":", 1)[-1]
        calls = int(m.group(4).replace(",", "")) if m.group(4) else 0
        if m.group(2) == "*":
            name, b["incl"] = fn, cost
        elif m.group(2) == ">":
            b["callees"][fn] = (cost, calls)
    if name:
        blocks[name] = b

def block(fn):
    return blocks.get(fn, {"incl": 0, "callees": {}})

# per signature: the sign_* function over its calls from the measuring
# thread (its 3 warm-up signatures included); the writer: writer_main over
# the records it chained (one p11_audit_line_hash per record)
off_c, off_n = block("run_thread_main")["callees"].get("sign_provider", (0, 0))
on_c, on_n = block("run_thread_main")["callees"].get("sign_provider_audit", (0, 0))
recs = block("write_batch")["callees"].get("p11_audit_line_hash", (0, 0))[1]
writer = block("writer_main")["incl"]
if not (off_n and on_n and recs):
    print("%-12s  (missing data: %d, %d signatures, %d records)" % (sys.argv[2], off_n, on_n, recs))
    sys.exit(0)
off, on, w = off_c / off_n / 1e3, on_c / on_n / 1e3, writer / recs / 1e3
print("%-12s %10.1f %10.1f %10.1f %10.1f %7.3f" % (sys.argv[2], off, on, w, on + w, (on + w) / off))
print("  %d and %d signatures, %d records; the writer per record:" % (off_n, on_n, recs))
for fn, (c, n) in sorted(block("write_batch")["callees"].items(), key=lambda kv: -kv[1][0])[:6]:
    print("    %-36s %7.1f k" % (fn, c / recs / 1e3))
print("    %-36s %7.1f k" % ("(writer_main outside write_batch)",
                             (writer - block("write_batch")["incl"]) / recs / 1e3))
PY
    done
    echo "(+audit: the signing thread's instructions per signature; writer/rec: the audit writer"
    echo " thread's per record, one record per signature; on/off = (+audit + writer/rec) / provider)"
    [ -n "$KEEP" ] && echo "callgrind files in $OUT"
    exit $status
fi

echo "Instructions per signature (thousands), callgrind, 1 thread"
printf '%-12s %10s %11s %10s %10s %10s  %s\n' alg raw-token raw-session provider libp11 \
    sess/prov "provider: token | core | provider code | EVP (init + rest)"
status=0
for alg in $ALGS; do
    cg=$OUT/callgrind.$alg
    # only what the measuring threads do (not set-up, not the first
    # signature in main that checks each contender)
    if ! valgrind --tool=callgrind --callgrind-out-file="$cg" --toggle-collect=run_thread_main \
        "$SB" --algs "$alg" --threads 1 \
        --contenders raw-token,raw-session,provider,libp11 --seconds "$SECS" --rounds 1 \
        >"$OUT/$alg.log" 2>&1; then
        echo "profile: signbench under callgrind failed for $alg:" >&2
        grep -v '^==' "$OUT/$alg.log" | tail -5 >&2
        status=1
        continue
    fi
    callgrind_annotate --inclusive=yes --tree=both --threshold=100 "$cg" >"$cg.txt" 2>/dev/null
    python3 - "$cg.txt" "$alg" <<'EOF'
import re, sys
# callgrind_annotate --tree=both: blocks separated by blank lines, each with
# "<" caller lines, one "*" line (the function, inclusive cost) and ">" callee lines
line_re = re.compile(r"^\s*([\d,]+)\s+\([^)]*\)\s+([<>*])\s+(.*?)(?: \(([\d,]+)x\))? \[")
blocks = {}
for chunk in open(sys.argv[1]).read().split("\n\n"):
    b = {"incl": 0, "callers": {}, "callees": {}}
    name = None
    for l in chunk.split("\n"):
        m = line_re.match(l)
        if not m:
            continue
        cost = int(m.group(1).replace(",", ""))
        fn = m.group(3).split(":", 1)[-1]
        calls = int(m.group(4).replace(",", "")) if m.group(4) else 0
        if m.group(2) == "*":
            name, b["incl"] = fn, cost
        elif m.group(2) == "<":
            b["callers"][fn] = (cost, calls)
        else:
            b["callees"][fn] = (cost, calls)
    if name:
        blocks[name] = b

def per_op(fn):
    # the number of calls is read one level down (the toggled function's
    # own call edge can miss its first call)
    b = blocks.get(fn)
    if not b:
        return None, 0
    inner = {"sign_raw_token": "raw_sign", "sign_raw_session": "raw_sign",
             "sign_provider": "provider_sign", "sign_libp11": "libp11_sign"}[fn]
    calls = b["callees"].get(inner, (0, 0))[1]
    return (b["incl"] / calls / 1000 if calls else None), calls

def callee(fn, sub):
    b = blocks.get(fn)
    return b["callees"].get(sub, (0, 0)) if b else (0, 0)

vals = {c: per_op("sign_" + c.replace("-", "_"))[0] for c in ("raw-token", "raw-session", "provider", "libp11")}
prov = blocks.get("provider_sign")
detail = ""
if prov and vals["provider"]:
    n = per_op("sign_provider")[1] or 1
    init = callee("provider_sign", "EVP_DigestSignInit_ex")[0] / n / 1000
    total = prov["incl"] / n / 1000
    token = (callee("key_call_on_member", "C_SignInit")[0] + callee("key_call_on_member", "C_Sign")[0]) / n / 1000
    core = blocks.get("p11_key_sign", {}).get("incl", 0) / n / 1000 - token
    provcode = blocks.get("sig_digest_sign", {}).get("incl", 0) / n / 1000 - token - core
    evp = total - token - core - provcode
    detail = "%.1f | %.1f | %.1f | %.1f (%.1f + %.1f)" % (token, core, provcode, evp, init, evp - init)
fmt = lambda v: "%10.1f" % v if v else "%10s" % "-"
ratio = vals["raw-session"] / vals["provider"] if vals["raw-session"] and vals["provider"] else 0
print("%-12s %s %s %s %s %10.3f  %s" % (sys.argv[2], fmt(vals["raw-token"]), fmt(vals["raw-session"]).rjust(11),
      fmt(vals["provider"]), fmt(vals["libp11"]), ratio, detail))
EOF
done
echo "(sess/prov: raw-session's instructions over the provider's, the CPU-work counterpart of prov/ceil)"
[ -n "$KEEP" ] && echo "callgrind files in $OUT (callgrind_annotate --inclusive=yes FILE)"
exit $status
