#!/usr/bin/env bash
# Configure and build primus-provider.
#
#   bash scripts/build.sh [BUILD_DIR] [extra cmake args...]
#
# BUILD_DIR defaults to "build"; a relative BUILD_DIR is taken relative to
# the repository root, whatever the current directory.  Warnings are errors
# (-DPRIMUS_WERROR=ON; pass -DPRIMUS_WERROR=OFF to override).  Examples:
#
#   bash scripts/build.sh
#   bash scripts/build.sh build-asan -DSANITIZE=address,undefined
#   bash scripts/build.sh -DCMAKE_BUILD_TYPE=Debug      (dir "build")
#
# Environment: PRIMUS_JOBS (default 2) parallel compile jobs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BUILD_DIR=build
if (($#)) && [[ "$1" != -* ]]; then
    BUILD_DIR=$1
    shift
fi
JOBS=${PRIMUS_JOBS:-2}

echo "build: configuring $BUILD_DIR ${*:-}"
mkdir -p "$BUILD_DIR"
cmake -S "$ROOT" -B "$BUILD_DIR" -DPRIMUS_WERROR=ON "$@" >"$BUILD_DIR/configure.log" 2>&1 || {
    cat "$BUILD_DIR/configure.log" >&2
    echo "build: cmake configure failed" >&2
    exit 1
}
echo "build: compiling in $BUILD_DIR with $JOBS jobs"
cmake --build "$BUILD_DIR" --parallel "$JOBS"
echo "build: done ($BUILD_DIR)"
