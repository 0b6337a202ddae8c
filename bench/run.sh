#!/usr/bin/env bash
# run.sh: every benchmark in one go (about 15 minutes; --quick: under 2).
#
#   bench/run.sh [--quick] [--no-build]
#
# Builds primus, primusctl, signbench, tlsclient and p11once (Release) in
# $PRIMUS_BUILD (default: build/ of this checkout) unless --no-build, then
# runs signbench (throughput tables with the audit log off and on, memory),
# tlsbench.sh, startup.sh and (not with --quick) profile.sh (instructions
# per signature, callgrind).
# Everything printed is also written to $PRIMUS_BENCH_OUT (default:
# $PRIMUS_BUILD/bench/results-DATE/), with the raw data (JSON, CSV).
# Exit status: 0 when every benchmark ran and every check passed (targets
# missed are reported, not failures).
set -uo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${PRIMUS_BUILD:-$SRC/build}
export PRIMUS_BUILD=$BUILD
QUICK=0
DO_BUILD=1
for a in "$@"; do
    case $a in
    --quick) QUICK=1 ;;
    --no-build) DO_BUILD=0 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $a" >&2; exit 2 ;;
    esac
done

if [ "$DO_BUILD" = 1 ]; then
    # configure first, always: a build that regenerates its Makefiles on the
    # way does not know targets added since the last configure
    if [ ! -f "$BUILD/CMakeCache.txt" ]; then
        cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >"$BUILD.configure.log" 2>&1
    else
        cmake -S "$SRC" -B "$BUILD" >"$BUILD.configure.log" 2>&1
    fi || { tail -30 "$BUILD.configure.log" >&2; exit 1; }
    rm -f "$BUILD.configure.log"
    cmake --build "$BUILD" -j"${PRIMUS_JOBS:-2}" --target primus primusctl signbench tlsclient p11once \
        >"$BUILD/bench-build.log" 2>&1 || { tail -30 "$BUILD/bench-build.log" >&2; exit 1; }
fi
OUT=${PRIMUS_BENCH_OUT:-$BUILD/bench/results-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
exec > >(tee "$OUT/summary.txt") 2>&1

build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null)
echo "== machine"
echo "date:      $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "nproc:     $(nproc)"
echo "cpu:       $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
echo "kernel:    $(uname -r)"
echo "openssl:   $(openssl version)"
echo "softhsm:   $(dpkg-query -W -f '${Version}' softhsm2 2>/dev/null || echo '?')"
echo "libp11:    $(dpkg-query -W -f '${Version}' libengine-pkcs11-openssl 2>/dev/null || echo '?')"
echo "nginx:     $(nginx -v 2>&1 | sed 's/.*\///')"
echo "build:     $BUILD (${build_type:-?})"
echo "commit:    $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null)$(git -C "$SRC" status --porcelain 2>/dev/null | grep -q . && echo ' + uncommitted changes')"
echo "load:      $(cut -d' ' -f1-3 /proc/loadavg)"
echo "results:   $OUT"

status=0
step() {
    local name=$1
    shift
    echo
    echo "== $name"
    echo "\$ $*"
    local t0=$SECONDS
    "$@" || { echo "!! $name exited with $?"; status=1; }
    echo "($((SECONDS - t0)) s)"
}

if [ "$QUICK" = 1 ]; then
    step signbench "$BUILD/bench/signbench" --quick --audit --json "$OUT/signbench.json"
    step memory "$BUILD/bench/signbench" --rss-only --rss-count 20000
    step tlsbench bash "$SRC/bench/tlsbench.sh" --quick --csv "$OUT/tlsbench.csv"
    step startup bash "$SRC/bench/startup.sh" --quick --json-dir "$OUT"
else
    step signbench "$BUILD/bench/signbench" --seconds 0.6 --rounds 11 --threads 1,2,4 --audit \
        --json "$OUT/signbench.json"
    step memory "$BUILD/bench/signbench" --rss-only --rss-count 200000
    step tlsbench bash "$SRC/bench/tlsbench.sh" --seconds 2 --rounds 5 --csv "$OUT/tlsbench.csv"
    step startup bash "$SRC/bench/startup.sh" --runs 30 --warmup 3 --json-dir "$OUT"
    if command -v valgrind >/dev/null; then
        step profile bash "$SRC/bench/profile.sh" --seconds 1
    fi
fi
echo
echo "== done: $( [ $status = 0 ] && echo 'all benchmarks ran' || echo 'SOME BENCHMARKS FAILED' ); results in $OUT"
exit $status
