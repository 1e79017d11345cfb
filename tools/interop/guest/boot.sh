#!/bin/bash
# Boots the BlueZ guest (tools/interop/guest/build.sh) under qemu/TCG and manages it by PID.
#
#   boot.sh start [--dir DIR] [--timeout S] [--extra-cpio FILE] [--append ARGS] [--mem MB] [--smp N]
#       Boots in the background. DIR (default: a fresh /tmp/blewire-guest.XXXXXX) receives
#         h4.sock      the bridged H4 stream (qemu socket server; guest ttyS1 -> btvirt via h4-relay.py)
#         ctl.sock     the control line (qemu socket server; guest ttyS3 -> guest-ctl.py: run programs)
#         console.log  the guest console (ttyS0)
#         output.bin   the guest's ttyS2 (run mode: the guest command's stdout)
#         qemu.pid     qemu's PID
#       Waits for the guest's READY marker and prints KEY=VALUE lines on stdout (also kept in DIR/guest.env;
#       BLEWIRE_GUEST_DIR=DIR makes the vitest helper attach to this guest instead of booting its own):
#         GUEST_RUN_DIR, H4_SOCKET, CTL_SOCKET, CONSOLE_LOG, OUTPUT_FILE, QEMU_PID, PERIPHERAL, PERIPHERAL_NAME, READY_SECONDS
#       On a time-out or a failure marker it prints the console log on stderr, kills qemu and exits 1.
#   boot.sh stop --dir DIR
#       Kills qemu by the PID in DIR/qemu.pid (TERM, then KILL) and removes the socket and DIR.
#   boot.sh run [--files DIR] [--timeout S] [--run-timeout S] [--keep] [--verbose] -- COMMAND...
#       Run mode: packs DIR (mapped to the guest's /) and COMMAND (a /bin/sh command line, the words joined
#       by spaces, written to /blewire-run/run.sh and run from /blewire-run) into a second initramfs
#       appended to the base one, boots, waits for the guest to power off (at most --run-timeout s after
#       READY, default 600), prints the command's stdout (guest ttyS2) on stdout, the console on stderr
#       with --verbose, and exits with the command's exit code. --keep leaves DIR (console.log) behind.
#
# Environment: BLEWIRE_GUEST_READY_TIMEOUT (s, default 360: TCG on a loaded 2-core machine can need more than 120), BLEWIRE_QEMU (default qemu-system-x86_64).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=ready-line.sh
. "$HERE/ready-line.sh"
QEMU="${BLEWIRE_QEMU:-qemu-system-x86_64}"

die() { echo "[guest-boot] error: $*" >&2; exit 1; }

kill_pid() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

stop_dir() {
  local dir=$1
  [ -d "$dir" ] || return 0
  if [ -f "$dir/qemu.pid" ]; then
    kill_pid "$(cat "$dir/qemu.pid")"
  fi
  rm -f "$dir/h4.sock" "$dir/ctl.sock"
  case "$dir" in
    /tmp/blewire-guest.*) rm -rf "$dir" ;;
    *) rm -f "$dir/qemu.pid" "$dir/initrd.cpio" "$dir/extra.cpio" ;;
  esac
}

# Prints the console log (or its tail) on stderr.
show_console() {
  local dir=$1
  echo "[guest-boot] ----- guest console ($dir/console.log)" >&2
  tail -n 80 "$dir/console.log" >&2 2>/dev/null || true
  echo "[guest-boot] ----- end of console" >&2
}

# start_guest DIR TIMEOUT EXTRA_CPIO APPEND MEM SMP: boots and waits for READY; sets READY_LINE.
start_guest() {
  local dir=$1 timeout=$2 extra=$3 append=$4 mem=$5 smp=$6
  local env kernel initrd
  env="$("$HERE/build.sh" --quiet)" || die "guest build failed"
  kernel="$(sed -n 's/^GUEST_KERNEL=//p' <<<"$env")"
  initrd="$(sed -n 's/^GUEST_INITRD=//p' <<<"$env")"
  if [ -n "$extra" ]; then
    # Linux unpacks concatenated newc archives in order; later files win.
    cat "$initrd" "$extra" >"$dir/initrd.cpio"
    initrd="$dir/initrd.cpio"
  fi
  : >"$dir/console.log"
  : >"$dir/output.bin"
  rm -f "$dir/h4.sock" "$dir/ctl.sock"
  local t0
  t0=$(date +%s.%N)
  # -nodefaults: no VGA/network/monitor; the four serial ports are, in order, ttyS0 console, ttyS1 the H4
  # bridge, ttyS2 the run-mode output, ttyS3 the control line (guest-ctl.py, bridge mode). TCG because the machine's KVM cannot run a stock kernel.
  setsid "$QEMU" -nodefaults -no-user-config -accel tcg,thread=multi -cpu max -m "$mem" -smp "$smp" \
    -kernel "$kernel" -initrd "$initrd" \
    -append "console=ttyS0 rdinit=/blewire-init.sh panic=-1 quiet loglevel=4 $append" \
    -display none -no-reboot -nic none -monitor none \
    -chardev file,id=con,path="$dir/console.log" -serial chardev:con \
    -chardev socket,id=h4,path="$dir/h4.sock",server=on,wait=off -serial chardev:h4 \
    -chardev file,id=out,path="$dir/output.bin" -serial chardev:out \
    -chardev socket,id=ctl,path="$dir/ctl.sock",server=on,wait=off -serial chardev:ctl \
    </dev/null >"$dir/qemu.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/qemu.pid"
  local deadline=$(( $(date +%s) + timeout ))
  READY_LINE=""
  while :; do
    READY_LINE="$(ready_line "$dir/console.log")"
    [ -n "$READY_LINE" ] && break
    if grep -a -q '^BLEWIRE-GUEST-FAILED' "$dir/console.log" 2>/dev/null; then
      sleep 1
      show_console "$dir"
      stop_dir "$dir"
      die "guest reported a failure"
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      show_console "$dir"
      cat "$dir/qemu.log" >&2 || true
      stop_dir "$dir"
      die "qemu exited before READY"
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      show_console "$dir"
      stop_dir "$dir"
      die "guest not READY after ${timeout} s"
    fi
    sleep 0.2
  done
  READY_SECONDS=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
}

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$READY_LINE"; }

cmd=${1:-}
[ -n "$cmd" ] && shift || true
DIR=""
TIMEOUT="${BLEWIRE_GUEST_READY_TIMEOUT:-360}"
EXTRA=""
APPEND=""
MEM=1024
SMP=2
FILES=""
RUN_TIMEOUT=600
KEEP=0
VERBOSE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) DIR=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --extra-cpio) EXTRA=$2; shift 2 ;;
    --append) APPEND=$2; shift 2 ;;
    --mem) MEM=$2; shift 2 ;;
    --smp) SMP=$2; shift 2 ;;
    --files) FILES=$2; shift 2 ;;
    --run-timeout) RUN_TIMEOUT=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --verbose) VERBOSE=1; shift ;;
    --) shift; break ;;
    *) die "unknown option $1" ;;
  esac
done

case "$cmd" in
  start)
    if [ -z "$DIR" ]; then DIR="$(mktemp -d /tmp/blewire-guest.XXXXXX)"; else mkdir -p "$DIR"; fi
    start_guest "$DIR" "$TIMEOUT" "$EXTRA" "$APPEND" "$MEM" "$SMP"
    cat <<EOF | tee "$DIR/guest.env"
GUEST_RUN_DIR=$DIR
H4_SOCKET=$DIR/h4.sock
CTL_SOCKET=$DIR/ctl.sock
CONSOLE_LOG=$DIR/console.log
OUTPUT_FILE=$DIR/output.bin
QEMU_PID=$(cat "$DIR/qemu.pid")
PERIPHERAL=$(field peripheral)
PERIPHERAL_NAME=$(field name | tr _ ' ')
READY_SECONDS=$READY_SECONDS
EOF
    ;;
  stop)
    [ -n "$DIR" ] || die "stop needs --dir"
    stop_dir "$DIR"
    ;;
  run)
    [ $# -gt 0 ] || die "run needs -- COMMAND"
    if [ -z "$DIR" ]; then DIR="$(mktemp -d /tmp/blewire-guest.XXXXXX)"; else mkdir -p "$DIR"; fi
    trap '[ "$KEEP" = 1 ] || stop_dir "$DIR"' EXIT
    stage="$DIR/stage"
    rm -rf "$stage"
    mkdir -p "$stage/blewire-run"
    [ -z "$FILES" ] || cp -a "$FILES/." "$stage/"
    mkdir -p "$stage/blewire-run"
    { echo "#!/bin/sh"; echo "$*"; } >"$stage/blewire-run/run.sh"
    chmod 0755 "$stage/blewire-run/run.sh"
    ( cd "$stage" && find . -print0 | cpio --null -o -H newc --quiet ) >"$DIR/extra.cpio"
    rm -rf "$stage"
    start_guest "$DIR" "$TIMEOUT" "$DIR/extra.cpio" "$APPEND" "$MEM" "$SMP"
    echo "[guest-boot] READY after ${READY_SECONDS} s; running the command" >&2
    pid=$(cat "$DIR/qemu.pid")
    # The guest powers off after printing the exit marker; qemu then exits (-no-reboot).
    end=$(( $(date +%s) + RUN_TIMEOUT ))
    while kill -0 "$pid" 2>/dev/null; do
      if [ "$(date +%s)" -ge "$end" ]; then
        show_console "$DIR"
        die "the guest command did not finish within ${RUN_TIMEOUT} s"
      fi
      sleep 0.2
    done
    [ "$VERBOSE" = 0 ] || show_console "$DIR"
    cat "$DIR/output.bin"
    code="$(sed -n 's/^BLEWIRE-RUN-EXIT \([0-9]*\).*/\1/p' "$DIR/console.log" | head -n1)"
    if [ -z "$code" ]; then
      show_console "$DIR"
      die "the guest stopped without reporting the command's exit code"
    fi
    exit "$code"
    ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2
    exit 2
    ;;
esac
