#!/usr/bin/env bash
# Install the Debian 12 packages primus-provider needs to build, test and run
# its demo -- only those that are missing.  Safe to run again: when
# everything is there it changes nothing and does not touch the network.
#
#   bash scripts/install-deps.sh
#
# Runs apt-get as root, through sudo when not root.  nginx and apache2 are
# needed as test servers only: if this script installs them, it keeps their
# services from being started (policy-rc.d) and, on a systemd machine,
# disables them again, so that nothing is left listening on port 80.
#
# Environment: PRIMUS_SKIP_DEPS=1 skips everything (prebuilt CI images).
set -euo pipefail

PACKAGES=(
    build-essential cmake pkg-config
    libssl-dev libp11-kit-dev p11-kit libjansson-dev libcmocka-dev
    softhsm2 opensc libengine-pkcs11-openssl libp11-dev
    nginx apache2 curl python3
    valgrind clang
)
# Packages whose postinst would start a service we only want as a test server.
SERVICES=(nginx apache2)

say() { printf 'install-deps: %s\n' "$*"; }
die() { printf 'install-deps: error: %s\n' "$*" >&2; exit 1; }

if [[ "${PRIMUS_SKIP_DEPS:-0}" == 1 ]]; then
    say "PRIMUS_SKIP_DEPS=1: not checking packages"
    exit 0
fi

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    say "not a Debian system (no dpkg-query/apt-get): install the equivalents of these yourself:"
    say "  ${PACKAGES[*]}"
    exit 0
fi
if [[ -r /etc/os-release ]]; then
    # shellcheck disable=SC1091
    . /etc/os-release
    if [[ "${ID:-}" != debian || "${VERSION_ID:-}" != 12 ]]; then
        say "note: made for Debian 12, this is ${PRETTY_NAME:-unknown}; trying anyway"
    fi
fi

installed() {
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == installed ]]
}

missing=()
for p in "${PACKAGES[@]}"; do
    installed "$p" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
    say "all ${#PACKAGES[@]} packages present"
    exit 0
fi

SUDO=()
if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 ||
        die "missing packages and not root (no sudo): as root run: apt-get install ${missing[*]}"
    SUDO=(sudo)
    # Fail now rather than hang on a password prompt in CI.
    if [[ ! -t 0 ]] && ! sudo -n true 2>/dev/null; then
        die "sudo needs a password and there is no terminal: as root run: apt-get install ${missing[*]}"
    fi
fi

# Services among the packages about to be installed.
new_services=()
for s in "${SERVICES[@]}"; do
    for m in "${missing[@]}"; do
        [[ "$m" == "$s" ]] && new_services+=("$s")
    done
done

# policy-rc.d exit 101 = "do not start services" for invoke-rc.d and
# deb-systemd-invoke.  Install one only for the duration of apt-get, and
# only if the machine has none (containers usually have one already).
POLICY=/usr/sbin/policy-rc.d
own_policy=0
remove_policy() {
    if ((own_policy)); then
        "${SUDO[@]}" rm -f "$POLICY" || true
    fi
}
trap remove_policy EXIT
if ((${#new_services[@]})) && [[ ! -e "$POLICY" ]]; then
    printf '#!/bin/sh\n# temporary, from primus-provider scripts/install-deps.sh\nexit 101\n' |
        "${SUDO[@]}" tee "$POLICY" >/dev/null
    "${SUDO[@]}" chmod 755 "$POLICY"
    own_policy=1
fi

LOG=$(mktemp "${TMPDIR:-/tmp}/primus-install-deps.XXXXXX")
apt() {
    if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y \
        -o DPkg::Lock::Timeout=300 \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "$@" >>"$LOG" 2>&1; then
        tail -n 30 "$LOG" >&2
        die "apt-get $1 failed (full log: $LOG)"
    fi
}

say "installing: ${missing[*]}"
say "apt-get update"
apt update
apt install --no-install-recommends "${missing[@]}"

remove_policy
own_policy=0

# On a machine run by systemd, postinst enables the services (and starts
# them if no policy-rc.d stopped it): stop and disable what we installed.
if ((${#new_services[@]})) && [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
    for s in "${new_services[@]}"; do
        "${SUDO[@]}" systemctl disable --now "$s" >>"$LOG" 2>&1 || true
    done
    say "stopped and disabled services: ${new_services[*]} (tests start their own instances)"
fi

still=()
for p in "${missing[@]}"; do
    installed "$p" || still+=("$p")
done
((${#still[@]} == 0)) || die "still missing after install: ${still[*]} (log: $LOG)"
rm -f "$LOG"
say "installed ${#missing[@]} package(s)"
