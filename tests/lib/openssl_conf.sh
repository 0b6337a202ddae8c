# OpenSSL configuration for the primus provider, shared by the demo, the
# tests, the examples and the benchmarks.  Source this file.
#
#   primus_openssl_conf FILE PROVIDER_SO [LINE...]
#       writes an openssl.cnf that activates the default provider and primus
#       (module PROVIDER_SO); each LINE ("key = value") goes into primus's
#       section, e.g. "pkcs11-module-token-pin = file:/path/pin".
#   free_port   prints a free TCP port on 127.0.0.1

primus_openssl_conf() {
    local file=$1 module=$2 line
    shift 2
    {
        echo "openssl_conf = openssl_init"
        echo "[openssl_init]"
        echo "providers = provider_sect"
        echo "[provider_sect]"
        echo "default = default_sect"
        echo "primus = primus_sect"
        echo "[default_sect]"
        echo "activate = 1"
        echo "[primus_sect]"
        echo "module = $module"
        for line in "$@"; do
            echo "$line"
        done
        echo "activate = 1"
    } >"$file"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# with_sanitizer_runtime CMD...: run an uninstrumented program (openssl,
# curl, a server) that loads the sanitizer-built provider: the ASan runtime
# must be loaded first.  Leak checking is left to our own instrumented
# binaries (the programs keep process-lifetime allocations).
# A program under test (openssl, ...) also goes through $PRIMUS_TEST_WRAPPER
# when that is set (tests/lib/wrapper.sh).
with_sanitizer_runtime() {
    if [ -n "${PRIMUS_ASAN_RUNTIME:-}" ]; then
        primus_wrap env "LD_PRELOAD=$PRIMUS_ASAN_RUNTIME" \
            "ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1}:detect_leaks=0" "$@"
    else
        primus_wrap "$@"
    fi
}

# shellcheck source=tests/lib/wrapper.sh
source "$(dirname "${BASH_SOURCE[0]}")/wrapper.sh"
