#!/usr/bin/env bash
# Installs every Debian package that recstream's build, tests and benchmarks need.
# Idempotent: packages already present are skipped by apt. Works as root or through sudo.
set -euo pipefail

PKGS=(
    # build
    # (clang 19 for the sanitized test build: its AddressSanitizer locks its allocator around
    # fork, which the forked checkpoints need; clang 14's can deadlock the child)
    build-essential cmake pkg-config clang-19 libclang-rt-19-dev clang-format
    # libraries
    libmicrohttpd-dev libgnutls28-dev libcjson-dev libsodium-dev nettle-dev libzstd-dev libxxhash-dev
    librdkafka-dev libhiredis-dev liburcu-dev libpcre2-dev
    # tests
    libcmocka-dev curl python3 redis-server kcat json-schema-test-suite openssl
    # benchmarks
    wrk nginx-light
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-deps: need root or sudo to install packages" >&2
        exit 1
    fi
fi

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-deps: all ${#PKGS[@]} packages present"
    exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# nginx-light's postinst tries to start nginx; a policy-rc.d keeps services from starting.
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
# Benchmarks and tests start their own nginx/redis on private ports; stop the distro units.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now nginx redis-server >/dev/null 2>&1 || true
fi
echo "install-deps: done"
