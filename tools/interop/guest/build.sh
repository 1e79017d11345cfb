#!/bin/bash
# Builds the BlueZ guest used by the interop suite: a Debian bookworm rootfs (debootstrap minbase + BlueZ)
# plus the Debian kernel, packed as one uncompressed newc cpio initramfs. No disk image, no loop mounts.
#
# Output (printed on stdout as KEY=VALUE lines, also written to <out>/guest.env):
#   GUEST_DIR     the cache directory holding vmlinuz, initrd.cpio, guest.env
#   GUEST_KERNEL  <dir>/vmlinuz
#   GUEST_INITRD  <dir>/initrd.cpio
#   GUEST_KVER    the kernel release, e.g. 6.1.0-56-amd64
#
# Cached under <repo>/.cache/guest/<hash>/, where the hash covers this script, init.sh, h4-relay.py, guest-ctl.py, the
# package list, the kernel package name and the host node binary. A build with an unchanged hash returns at
# once. Needs root (debootstrap), debootstrap, apt-get, dpkg, cpio, depmod (kmod).
#
# Usage: tools/interop/guest/build.sh [--force] [--quiet]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
# BLEWIRE_GUEST_SUITE picks the guest's Debian release (default bookworm, BlueZ 5.66). The second image,
# trixie (BlueZ >= 5.73: ATT Signed Write Command support), is cached apart in .cache/guest-trixie so that
# the clean-up of older builds below never removes the other image. Same kernel (the host's
# linux-image-amd64), same init, relay and control line.
SUITE="${BLEWIRE_GUEST_SUITE:-bookworm}"
case "$SUITE" in
  bookworm) CACHE_ROOT="${BLEWIRE_GUEST_CACHE:-$REPO/.cache/guest}" ;;
  *) CACHE_ROOT="${BLEWIRE_GUEST_CACHE:-$REPO/.cache/guest-$SUITE}" ;;
esac
# Everything bluetoothd, btvirt and the python examples need; nothing more (the cpio is loaded into RAM).
GUEST_PACKAGES="bluez,bluez-test-tools,bluez-test-scripts,python3-dbus,python3-gi,dbus,kmod,procps"
# Kernel module subtrees the guest needs: the Bluetooth core and vhci driver, AF_ALG + AES/CMAC for btvirt's
# LE crypto, rfkill (bluetooth depends on it) and the lib helpers (crc, ecdh) they pull in.
MODULE_DIRS="net/bluetooth drivers/bluetooth/hci_vhci.ko crypto lib arch/x86/crypto net/rfkill"

FORCE=0
QUIET=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    --quiet) QUIET=1 ;;
    *) echo "usage: $0 [--force] [--quiet]" >&2; exit 2 ;;
  esac
done

log() { [ "$QUIET" = 1 ] || echo "[guest-build] $*" >&2; }
die() { echo "[guest-build] error: $*" >&2; exit 1; }

for tool in debootstrap apt-get apt-cache dpkg cpio depmod sha256sum flock; do
  command -v "$tool" >/dev/null || die "missing $tool (run tools/interop/setup.sh)"
done
[ "$(id -u)" = 0 ] || die "debootstrap needs root"
NODE_BIN="$(command -v node)" || die "node not found on PATH"
NODE_BIN="$(readlink -f "$NODE_BIN")"

# The Debian mirror comes from this machine's own apt configuration (deb822 .sources or one-line .list),
# never from a host name written here: first URI whose suites include $SUITE itself. A suite this machine
# does not use (trixie on a Debian 12 host) is served by the same archive as the host's own release:
# fall back to the URI of the host's codename (checked: debootstrap verifies the suite's Release file).
find_mirror() {
  local SUITE="${1:-$SUITE}"
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$SUITE" '
      function flush() { if (uri != "" && types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ")) { print uri; found = 1; exit } uri = ""; suites = ""; types = "" }
      /^[[:space:]]*$/ { flush(); next }
      /^#/ { next }
      /^URIs:/ { sub(/^URIs:[[:space:]]*/, ""); split($0, a, /[[:space:]]+/); uri = a[1] }
      /^Suites:/ { sub(/^Suites:[[:space:]]*/, ""); suites = $0 }
      /^Types:/ { sub(/^Types:[[:space:]]*/, ""); types = $0 }
      END { if (!found) flush() }' "$f" | head -n1
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v suite="$SUITE" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i+1) == suite) { print $i; exit } }' "$f"
  done
}
MIRROR="${BLEWIRE_DEBIAN_MIRROR:-$(find_mirror | head -n1)}"
if [ -z "$MIRROR" ] && [ -r /etc/os-release ]; then
  HOST_SUITE="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
  [ -z "$HOST_SUITE" ] || [ "$HOST_SUITE" = "$SUITE" ] || MIRROR="$(find_mirror "$HOST_SUITE" | head -n1)"
fi
[ -n "$MIRROR" ] || die "no Debian $SUITE mirror found in /etc/apt sources"

# The kernel: whatever linux-image-amd64 points at in the local apt lists.
kernel_package() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }'; }
KPKG="$(kernel_package)"
if [ -z "$KPKG" ]; then
  log "apt lists have no linux-image-amd64; running apt-get update"
  apt-get update -qq >&2
  KPKG="$(kernel_package)"
fi
[ -n "$KPKG" ] || die "cannot resolve linux-image-amd64 to a kernel package"
KVER="${KPKG#linux-image-}"

HASH="$( {
  cat "$HERE/build.sh" "$HERE/init.sh" "$HERE/h4-relay.py" "$HERE/guest-ctl.py"
  echo "$SUITE $GUEST_PACKAGES $MODULE_DIRS $KPKG"
  # node is ~95 MB: identify it by version, size and mtime rather than hashing it on every cached call.
  echo "$NODE_BIN $("$NODE_BIN" --version) $(stat -c '%s %Y' "$NODE_BIN")"
} | sha256sum | cut -c1-16)"
OUT="$CACHE_ROOT/$HASH"

emit() {
  cat "$OUT/guest.env"
}

if [ "$FORCE" = 0 ] && [ -f "$OUT/guest.env" ] && [ -f "$OUT/initrd.cpio" ] && [ -f "$OUT/vmlinuz" ]; then
  log "cached: $OUT"
  emit
  exit 0
fi

# One build at a time per cache (other engineers, parallel test runs); a waiter re-checks the cache first.
mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.lock"
if ! flock -n 9; then
  log "another build holds $CACHE_ROOT/.lock; waiting"
  flock 9
fi
if [ "$FORCE" = 0 ] && [ -f "$OUT/guest.env" ] && [ -f "$OUT/initrd.cpio" ] && [ -f "$OUT/vmlinuz" ]; then
  log "cached: $OUT (built while we waited)"
  emit
  exit 0
fi

START=$(date +%s)
WORK="$(mktemp -d "$CACHE_ROOT/build.XXXXXX")"
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
ROOT="$WORK/rootfs"

log "debootstrap $SUITE (minbase + $GUEST_PACKAGES) from $MIRROR"
debootstrap --variant=minbase --include="$GUEST_PACKAGES" "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
  || { tail -n 30 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
log "debootstrap done after $(( $(date +%s) - START )) s"

log "kernel $KPKG"
mkdir -p "$WORK/kpkg" "$WORK/kernel"
# The sandbox user _apt cannot write into our temporary directory; this one download runs as root.
apt_download() { ( cd "$WORK/kpkg" && apt-get -q -o APT::Sandbox::User=root download "$KPKG" ) >>"$WORK/apt.log" 2>&1; }
apt_download || {
  log "apt-get download failed; refreshing apt lists once"
  apt-get update -qq >>"$WORK/apt.log" 2>&1
  apt_download || { cat "$WORK/apt.log" >&2; die "apt-get download $KPKG failed"; }
}
dpkg -x "$WORK"/kpkg/*.deb "$WORK/kernel"
KSRC="$WORK/kernel/lib/modules/$KVER"
[ -d "$KSRC" ] || die "kernel package has no /lib/modules/$KVER"
KDST="$ROOT/lib/modules/$KVER"
mkdir -p "$KDST/kernel"
for sub in $MODULE_DIRS; do
  [ -e "$KSRC/kernel/$sub" ] || die "kernel has no $sub"
  mkdir -p "$KDST/kernel/$(dirname "$sub")"
  cp -a "$KSRC/kernel/$sub" "$KDST/kernel/$(dirname "$sub")/"
done
cp -a "$KSRC"/modules.order "$KSRC"/modules.builtin* "$KDST/" 2>/dev/null || true
depmod -b "$ROOT" "$KVER"
cp "$WORK/kernel/boot/vmlinuz-$KVER" "$WORK/vmlinuz"

log "node $("$NODE_BIN" --version), init, relay"
install -m 0755 "$NODE_BIN" "$ROOT/usr/local/bin/node"
install -m 0755 "$HERE/init.sh" "$ROOT/blewire-init.sh"
install -m 0755 "$HERE/h4-relay.py" "$ROOT/usr/local/bin/h4-relay.py"
install -m 0755 "$HERE/guest-ctl.py" "$ROOT/usr/local/bin/guest-ctl.py"
# The example scripts live under /usr/share/doc, which we prune: keep a copy in a stable place.
mkdir -p "$ROOT/opt/bluez-examples"
cp -a "$ROOT/usr/share/doc/bluez-test-scripts/examples/." "$ROOT/opt/bluez-examples/"
for f in "$ROOT"/opt/bluez-examples/*.gz; do [ -e "$f" ] && gunzip -f "$f"; done
chmod 0755 "$ROOT"/opt/bluez-examples/example-* 2>/dev/null || true
# Every byte of the cpio is loaded into guest RAM and unpacked under TCG: drop what nothing at run time reads.
rm -rf "$ROOT"/usr/share/doc "$ROOT"/usr/share/man "$ROOT"/usr/share/info "$ROOT"/usr/share/locale \
  "$ROOT"/usr/share/i18n "$ROOT"/usr/share/zoneinfo "$ROOT"/var/cache/apt/* "$ROOT"/var/lib/apt/lists/* \
  "$ROOT"/usr/share/lintian "$ROOT"/usr/share/bash-completion "$ROOT"/var/log/* "$ROOT"/usr/share/perl* \
  "$ROOT"/usr/lib/x86_64-linux-gnu/perl* "$ROOT"/usr/share/common-licenses
find "$ROOT/usr/lib/python3" -name '__pycache__' -prune -exec rm -rf {} + 2>/dev/null || true
echo "blewire-guest" >"$ROOT/etc/hostname"
[ -x "$ROOT/usr/local/bin/node" ] && env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot "$ROOT" /usr/local/bin/node -e 'process.exit(0)' \
  || die "host node does not run in the guest rootfs (glibc/libstdc++ mismatch?)"

log "cpio"
( cd "$ROOT" && find . -print0 | cpio --null -o -H newc --quiet ) >"$WORK/initrd.cpio"

cat >"$WORK/guest.env" <<EOF
GUEST_DIR=$OUT
GUEST_KERNEL=$OUT/vmlinuz
GUEST_INITRD=$OUT/initrd.cpio
GUEST_KVER=$KVER
EOF
rm -rf "$OUT"
mkdir -p "$OUT"
mv "$WORK/vmlinuz" "$WORK/initrd.cpio" "$WORK/guest.env" "$OUT/"
# Older builds are dead weight (hundreds of MB each).
for d in "$CACHE_ROOT"/*/; do
  d="${d%/}"
  [ "$d" = "$OUT" ] || [ "$d" = "$WORK" ] || case "$(basename "$d")" in build.*) ;; *) rm -rf "$d" ;; esac
done
log "built $OUT ($(du -m "$OUT/initrd.cpio" | cut -f1) MB initrd) in $(( $(date +%s) - START )) s"
emit
