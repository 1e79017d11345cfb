#!/usr/bin/env bash
# One command that makes a Debian machine ready for blewire's interop tier (npm run test:interop):
# installs the Debian packages below, builds the user-space AF_ALG shim for btvirt and checks it with its
# vector test, and checks that btvirt answers HCI Reset through it. Idempotent: when every package is
# already installed it neither updates nor installs anything. Run as root on a fresh Debian 12 machine:
#
#   sudo tools/interop/setup.sh            (or as root: tools/interop/setup.sh)
#   tools/interop/setup.sh --no-guest      (skip building the BlueZ guest image; btvirt/tshark only)
#
# Exits non-zero with a message naming what is missing when something cannot be installed or checked.
set -euo pipefail

# ----------------------------------------------------------------------------------------------------
# INTEROP_PACKAGES: every Debian package the interop tier needs, one per line with its reason.
# Owners of other interop parts (e.g. tools/interop/guest/) add their packages here, in a small commit.
INTEROP_PACKAGES=(
  tshark             # Wireshark's dissectors, the decoder oracle for captures
  bluez-test-tools   # btvirt, BlueZ's controller emulator
  libssl-dev         # OpenSSL headers and libcrypto for the AF_ALG shim
  gcc                # builds the AF_ALG shim
  libc6-dev          # C headers for the shim
  make
  coreutils          # stdbuf (btvirt's stdout is block-buffered)
  util-linux         # unshare (private /tmp per btvirt instance)
  qemu-system-x86    # the BlueZ guest (tools/interop/guest/)
  debootstrap        # builds the guest root file system
  cpio               # packs the guest initramfs
  kmod               # depmod for the guest's kernel modules
  mosquitto          # the MQTT broker the gateway tests publish to (started by the tests, never as a service)
  mosquitto-clients  # mosquitto_sub / mosquitto_pub: an MQTT client we did not write, for the gateway tests
  openssl            # makes the throw-away CA, broker and client certificates of the mqtts:// gateway test at test time
  chromium           # a real browser running unchanged Web Bluetooth pages over the bridge (web-bluetooth-chromium)
  systemd            # systemd-analyze verify / security --offline on the gateway unit (gateway-systemd)
)
# ----------------------------------------------------------------------------------------------------

build_guest=1
for arg in "$@"; do
  case "$arg" in
    --no-guest) build_guest=0 ;;
    *) echo "usage: $0 [--no-guest]" >&2; exit 2 ;;
  esac
done

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
die() { echo "setup.sh: ERROR: $*" >&2; exit 1; }
say() { echo "setup.sh: $*"; }

[ -r /etc/debian_version ] || die "this script needs Debian (apt-get, dpkg); /etc/debian_version is missing"
command -v dpkg-query >/dev/null || die "dpkg-query is missing; is this Debian?"

missing=()
for pkg in "${INTEROP_PACKAGES[@]}"; do
  if [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)" != installed ]; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  say "missing packages: ${missing[*]}"
  [ "$(id -u)" = 0 ] || die "installing ${missing[*]} needs root: run this script as root (or with sudo)"
  command -v apt-get >/dev/null || die "apt-get is missing"
  # tshark asks whether non-root users may capture; answer no, without a prompt.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections \
    || die "debconf-set-selections failed"
  export DEBIAN_FRONTEND=noninteractive
  say "apt-get update"
  apt-get update -q || die "apt-get update failed (no network or no Debian mirror configured?)"
  say "apt-get install ${missing[*]}"
  apt-get install -y -q "${missing[@]}" || die "apt-get install ${missing[*]} failed"
  for pkg in "${missing[@]}"; do
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)" = installed ] \
      || die "package $pkg is still not installed after apt-get install"
  done
else
  say "all ${#INTEROP_PACKAGES[@]} Debian packages already installed"
fi

# The gateway tests start their own broker on a free port; Debian's package enables a system-wide one
# on port 1883, which nothing here needs: stop and disable it where systemd runs it.
if command -v systemctl >/dev/null && systemctl is-active --quiet mosquitto 2>/dev/null; then
  say "stopping and disabling the mosquitto system service (the tests start their own broker)"
  systemctl disable --now mosquitto >/dev/null 2>&1 || say "could not stop the mosquitto service (harmless: the tests use free ports)"
fi

# The tools themselves, not only their packages.
for tool in tshark btvirt gcc stdbuf unshare node mosquitto mosquitto_sub; do
  command -v "$tool" >/dev/null || die "$tool is not on PATH after installing the packages"
done
say "$(tshark --version 2>/dev/null | head -n 1)"
say "btvirt $(dpkg-query -W -f='${Version}' bluez-test-tools)"

mkdir -p "$repo/.cache/interop"
# The shim: build (only when stale) and prove it with FIPS-197, Core LE Encrypt and RFC 4493 vectors.
lib="$("$here/build-shim.sh" --check 2>"$repo/.cache/interop/shim-check.log" | tail -n 1)" || {
  cat "$repo/.cache/interop/shim-check.log" >&2 2>/dev/null || true
  die "the AF_ALG shim did not build or failed its vector test"
}
say "AF_ALG shim ok: $lib ($(grep -c '^ok' "$repo/.cache/interop/shim-check.log") vector checks passed)"

# End to end: btvirt with the shim must answer HCI Reset on both sockets; stopped by PID right after.
check_dir="$repo/.cache/interop/setup-check"
"$here/btvirt.sh" start --dir "$check_dir" >/dev/null || die "btvirt did not start with the shim (see above)"
"$here/btvirt.sh" stop --dir "$check_dir" >/dev/null
say "btvirt answers HCI Reset on its LE and BR/EDR+LE sockets through the shim"

# The BlueZ guest image (owned by tools/interop/guest/; cached, so a re-run returns at once).
if [ "$build_guest" = 1 ] && [ -f "$here/guest/build.sh" ]; then
  say "building the BlueZ guest image (tools/interop/guest/build.sh; about a minute when not cached)"
  bash "$here/guest/build.sh" --quiet >/dev/null || die "tools/interop/guest/build.sh failed (output above)"
  say "BlueZ guest image ready"
  # The second image: Debian trixie's userland (BlueZ >= 5.73, whose GATT server checks and applies ATT
  # Signed Write Commands) on the same kernel, for test/interop/signed-write-bluez-new.test.ts.
  say "building the second BlueZ guest image, Debian trixie (BLEWIRE_GUEST_SUITE=trixie; about a minute when not cached)"
  BLEWIRE_GUEST_SUITE=trixie bash "$here/guest/build.sh" --quiet >/dev/null \
    || die "tools/interop/guest/build.sh (BLEWIRE_GUEST_SUITE=trixie) failed (output above)"
  say "BlueZ trixie guest image ready"
fi
say "ready: npm run test:interop"
