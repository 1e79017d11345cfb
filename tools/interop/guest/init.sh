#!/bin/sh
# PID 1 of the BlueZ guest (rdinit=/blewire-init.sh). There is no init system in a minbase rootfs: this
# script mounts the pseudo file systems, loads the Bluetooth and crypto modules, starts D-Bus, btvirt,
# bluetoothd and BlueZ's example GATT server and advertisement, then either
#   - bridge mode (default): runs the H4 relay between ttyS1 (qemu's host socket) and btvirt's socket
#     server and the control line on ttyS3 (guest-ctl.py: the host runs programs here), prints the
#     READY marker and waits until the host kills qemu; or
#   - run mode (an extra initramfs carried /blewire-run/run.sh): prints READY, runs that script with its
#     stdout on ttyS2 (a host file) and stderr on the console, prints its exit code and powers off.
#
# Console markers (one line each, parsed by the host helper):
#   BLEWIRE-GUEST-READY peripheral=<BD_ADDR of BlueZ's adapter> name=<its GAP name> controllers=<N>
#   BLEWIRE-GUEST-FAILED <reason>          (followed by the relevant logs, then power-off)
#   BLEWIRE-RUN-EXIT <code>                (run mode only)
# Kernel command line options: blewire.controllers=N (btvirt local controllers, default 1 in bridge mode,
# 2 in run mode so the guest command gets a free hci1), blewire.debug=1 (bluetoothd -d).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 PYTHONUNBUFFERED=1

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm /run /tmp
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
exec </dev/console >/dev/console 2>&1

T0=$(cut -d' ' -f1 /proc/uptime)
say() { echo "blewire-guest: [$(cut -d' ' -f1 /proc/uptime)] $*"; }

poweroff_now() {
  sync
  echo o >/proc/sysrq-trigger
  sleep 60
}

fail() {
  echo "BLEWIRE-GUEST-FAILED $*"
  for f in /tmp/*.log; do
    [ -f "$f" ] || continue
    echo "----- $f"
    tail -n 40 "$f"
  done
  poweroff_now
}

uptime_s() { cut -d. -f1 /proc/uptime; }

# try_wait SECONDS COMMAND...: polls COMMAND until it succeeds (0) or SECONDS of guest uptime pass (1).
# Deadlines are in uptime seconds, not iterations: under TCG on a busy host one poll (a process spawn)
# can take a second or more.
try_wait() {
  end=$(( $(uptime_s) + $1 )); shift
  while ! "$@" >/dev/null 2>&1; do
    [ "$(uptime_s)" -ge "$end" ] && return 1
    sleep 0.2
  done
  return 0
}

# wait_for SECONDS DESCRIPTION COMMAND...: like try_wait, but a time-out is fatal.
wait_for() {
  limit=$1; what=$2; shift 2
  try_wait "$limit" "$@" || fail "timed out after ${limit} s waiting for $what"
}

MODE=bridge
[ -x /blewire-run/run.sh ] && MODE=run
CONTROLLERS=1
[ "$MODE" = run ] && CONTROLLERS=2
DEBUG=
for opt in $(cat /proc/cmdline); do
  case "$opt" in
    blewire.controllers=*) CONTROLLERS=${opt#*=} ;;
    blewire.debug=1) DEBUG=-d ;;
  esac
done
say "init started at ${T0} s uptime, mode=$MODE controllers=$CONTROLLERS"

hostname blewire-guest
ip link set lo up 2>/dev/null || true

# btvirt's LE controllers need AF_ALG with ecb(aes) and cmac(aes); the Debian kernel has them as modules.
modprobe -a bluetooth hci_vhci af_alg algif_skcipher algif_hash ecb cmac aes_generic 2>/tmp/modprobe.log \
  || fail "modprobe: $(cat /tmp/modprobe.log)"
# Loaded up front so that the kernel's first HCI/SMP setup does not wait on on-demand modprobe calls
# (each is a slow process spawn under TCG); absent ones are fine.
modprobe -a ecdh_generic ecc aesni_intel crypto_simd cryptd sha256_generic 2>/dev/null || true

# D-Bus (system bus) for bluetoothd and the python examples.
mkdir -p /run/dbus /var/lib/dbus
[ -s /etc/machine-id ] || dbus-uuidgen >/etc/machine-id
cp /etc/machine-id /var/lib/dbus/machine-id
dbus-daemon --system --fork || fail "dbus-daemon did not start"

# btvirt: -L = LE-only controllers (Core 4.x commands: with the default 5.x type the kernel advertises with
# extended commands and legacy scanners get empty advertising data), -l N local vhci controllers for the
# kernel (hci0 is BlueZ's peripheral), -s the socket servers the host bridge connects to.
start_btvirt() {
  cd /tmp
  stdbuf -oL -eL btvirt -s -L -l"$CONTROLLERS" >>/tmp/btvirt.log 2>&1 &
  BTVIRT_PID=$!
  wait_for 60 "btvirt socket" test -S /tmp/bt-server-le
  wait_for 60 "hci0" test -e /sys/class/bluetooth/hci0
}
bluez_powered() {
  dbus-send --system --print-reply --dest=org.bluez "/org/bluez/hci$1" \
    org.freedesktop.DBus.Properties.Get string:org.bluez.Adapter1 string:Powered | grep -q 'boolean true'
}
all_powered() {
  i=0
  while [ "$i" -lt "$CONTROLLERS" ]; do
    bluez_powered "$i" || return 1
    i=$((i + 1))
  done
}

start_btvirt
say "btvirt up"
/usr/libexec/bluetooth/bluetoothd -n $DEBUG >/tmp/bluetoothd.log 2>&1 &
# On a busy host the kernel's first HCI Reset to a vhci controller can time out (-110, 10 s) while btvirt
# is still starting; the controller is then left unpowered. Ask again, then recreate the controllers.
attempt=1
while ! try_wait 60 all_powered; do
  [ "$attempt" -ge 3 ] && fail "bluetoothd did not power the controllers after $attempt attempts"
  say "controllers not powered (attempt $attempt); retrying"
  i=0
  while [ "$i" -lt "$CONTROLLERS" ]; do btmgmt --index "$i" power on >>/tmp/btmgmt.log 2>&1; i=$((i + 1)); done
  if ! try_wait 30 all_powered; then
    kill "$BTVIRT_PID" 2>/dev/null
    try_wait 30 sh -c '! test -e /sys/class/bluetooth/hci0'
    rm -f /tmp/bt-server-le /tmp/bt-server-bredrle /tmp/bt-server-amp /tmp/bt-server-bredr
    start_btvirt
  fi
  attempt=$((attempt + 1))
done
say "bluetoothd has powered $CONTROLLERS controller(s)"

# In run mode the guest command gets hci1: bluetoothd powers every free adapter, and binding a user channel
# to a powered adapter fails with EBUSY, so hand it over powered off.
if [ "$MODE" = run ] && [ "$CONTROLLERS" -ge 2 ]; then
  i=1
  while [ "$i" -lt "$CONTROLLERS" ]; do
    btmgmt --index "$i" power off >>/tmp/btmgmt.log 2>&1 || fail "btmgmt --index $i power off"
    i=$((i + 1))
  done
fi

cd /opt/bluez-examples
# Independent registrations; started together because python's start-up is most of their cost under TCG.
python3 ./example-gatt-server >/tmp/gatt-server.log 2>&1 &
python3 ./example-advertisement >/tmp/advertisement.log 2>&1 &
wait_for 120 "example-gatt-server" grep -q 'GATT application registered' /tmp/gatt-server.log
say "GATT application registered"
wait_for 120 "example-advertisement" grep -q 'Advertisement registered' /tmp/advertisement.log
cd /tmp

PERIPHERAL=$(btmgmt --index 0 info 2>/dev/null | awk '/^[[:space:]]*addr / { print $2; exit }')
NAME=$(btmgmt --index 0 info 2>/dev/null | awk '/^[[:space:]]*name / { sub(/^[[:space:]]*name /, ""); gsub(/ /, "_"); print; exit }')

if [ "$MODE" = bridge ]; then
  h4-relay.py /dev/ttyS1 /tmp/bt-server-le >/tmp/h4-relay.log 2>&1 &
  wait_for 60 "h4 relay" grep -q relaying /tmp/h4-relay.log
  # The control line (ttyS3, the host's ctl.sock): the host runs btmgmt, agents, bluetoothctl here.
  if [ -e /dev/ttyS3 ]; then
    guest-ctl.py /dev/ttyS3 >/tmp/guest-ctl.log 2>&1 &
    wait_for 60 "control line" grep -q listening /tmp/guest-ctl.log
  fi
  say "services up"
  echo "BLEWIRE-GUEST-READY peripheral=$PERIPHERAL name=$NAME controllers=$CONTROLLERS"
  # Stay alive (PID 1 must not exit); report daemons that die so the host sees it in the console log.
  while sleep 30; do
    for p in btvirt bluetoothd h4-relay.py guest-ctl.py; do
      pgrep -f "$p" >/dev/null || say "WARNING: $p is not running"
    done
  done
fi

# Run mode. ttyS2 is a host file: raw so that \n is not turned into \r\n.
stty -F /dev/ttyS2 raw -echo 2>/dev/null
say "services up"
echo "BLEWIRE-GUEST-READY peripheral=$PERIPHERAL name=$NAME controllers=$CONTROLLERS"
cd /blewire-run
BLEWIRE_PERIPHERAL=$PERIPHERAL BLEWIRE_HCI_INDEX=1 sh /blewire-run/run.sh >/dev/ttyS2
code=$?
echo "BLEWIRE-RUN-EXIT $code"
poweroff_now
