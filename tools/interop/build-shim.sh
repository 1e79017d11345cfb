#!/usr/bin/env bash
# Builds the user-space AF_ALG shim (afalg-shim.c) and its vector test into .cache/interop/ when they are
# missing or older than their sources, then (with --check) runs the test under the shim.
# Usage: tools/interop/build-shim.sh [--check] [--force]
# Prints the path of the shared library on its last line.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${BLEWIRE_INTEROP_CACHE:-$repo/.cache/interop}"
lib="$cache/libafalg-shim.so"
test_bin="$cache/afalg-shim-test"
check=0
force=0
for arg in "$@"; do
  case "$arg" in
    --check) check=1 ;;
    --force) force=1 ;;
    *) echo "build-shim.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

die() { echo "build-shim.sh: $*" >&2; exit 1; }
command -v gcc >/dev/null || die "gcc is missing (run tools/interop/setup.sh)"
[ -f /usr/include/openssl/evp.h ] || die "OpenSSL headers are missing: libssl-dev (run tools/interop/setup.sh)"
mkdir -p "$cache"

# Rebuild when the output is missing or any input is newer.
stale() { local out="$1"; shift; [ "$force" = 1 ] || [ ! -e "$out" ] || [ -n "$(find "$@" -newer "$out" 2>/dev/null)" ]; }

if stale "$lib" "$here/afalg-shim.c"; then
  gcc -Wall -Wextra -shared -fPIC -O2 -o "$lib.tmp" "$here/afalg-shim.c" -ldl -lcrypto \
    || die "compiling afalg-shim.c failed"
  mv -f "$lib.tmp" "$lib"
  echo "built $lib" >&2
fi
if stale "$test_bin" "$here/afalg-shim-test.c"; then
  gcc -Wall -Wextra -O2 -o "$test_bin.tmp" "$here/afalg-shim-test.c" || die "compiling afalg-shim-test.c failed"
  mv -f "$test_bin.tmp" "$test_bin"
  echo "built $test_bin" >&2
fi
if [ "$check" = 1 ]; then
  LD_PRELOAD="$lib" "$test_bin" >&2 || die "the AF_ALG shim failed its vector test (output above)"
fi
echo "$lib"
