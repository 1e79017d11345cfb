#!/usr/bin/env bash
# Starts, stops and reports BlueZ's controller emulator `btvirt -s` for blewire's interop tests.
#
#   tools/interop/btvirt.sh start  [--dir DIR] [--shared-tmp] [-- EXTRA_BTVIRT_ARGS...]
#   tools/interop/btvirt.sh status [--dir DIR]
#   tools/interop/btvirt.sh stop   [--dir DIR]
#
# DIR (default .cache/interop/btvirt, or $BTVIRT_DIR) holds the state of one instance: `pid`, `btvirt.log`
# and `tmp/`. btvirt's socket paths are fixed (/tmp/bt-server-le, /tmp/bt-server-bredrle, ...), so by
# default btvirt runs in a private mount namespace where DIR/tmp is bind-mounted on /tmp: its sockets then
# appear as DIR/tmp/bt-server-le etc., and any number of instances can run side by side. --shared-tmp
# runs it in the real /tmp instead (refused if another btvirt answers there).
#
# btvirt needs AF_ALG for every LE controller; the user-space shim (afalg-shim.c, built by build-shim.sh)
# is preloaded. stdout is line-buffered (stdbuf -oL) into DIR/btvirt.log. btvirt leaves its sockets behind
# on exit, so stale ones are removed before start and after stop. `start` returns once both the LE and the
# BR/EDR+LE socket answer an HCI Reset with a Command Complete (which proves the shim works), and prints
# key=value lines: pid, le_socket, bredrle_socket, log, dir. `stop` kills by the recorded PID only.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
START_TIMEOUT_S="${BTVIRT_START_TIMEOUT_S:-10}"
SOCKET_NAMES=(bt-server-le bt-server-bredrle bt-server-bredr bt-server-amp bt-server-mon)

die() { echo "btvirt.sh: $*" >&2; exit 1; }
usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

cmd="${1:-}"
[ -n "$cmd" ] || usage
shift
dir="${BTVIRT_DIR:-$repo/.cache/interop/btvirt}"
shared_tmp=0
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) [ $# -ge 2 ] || usage; dir="$2"; shift 2 ;;
    --shared-tmp) shared_tmp=1; shift ;;
    --) shift; extra=("$@"); break ;;
    *) usage ;;
  esac
done
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
pid_file="$dir/pid"
log_file="$dir/btvirt.log"
mode_file="$dir/mode"

sock_dir() {
  if [ -f "$mode_file" ] && [ "$(cat "$mode_file")" = shared ]; then echo /tmp; else echo "$dir/tmp"; fi
}

# The PID from the pid file if that process is alive and is btvirt (a reused PID is not ours to kill).
live_pid() {
  local pid
  [ -f "$pid_file" ] || return 1
  pid="$(cat "$pid_file")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = btvirt ] || return 1
  # A zombie is already dead; only its parent can reap it.
  [ "$(awk '/^State:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)" != Z ] || return 1
  echo "$pid"
}

remove_sockets() {
  local d="$1" name
  for name in "${SOCKET_NAMES[@]}"; do
    [ -S "$d/$name" ] && rm -f "$d/$name"
  done
  return 0
}

# Sends HCI Reset (01 03 0c 00) on each socket and waits for its Command Complete (04 0e 04 xx 03 0c 00).
# Exit 0 when every socket answered, 1 otherwise. Node is the project's runtime, so it is always present.
probe_reset() {
  node --input-type=module -e '
    import net from "node:net";
    const deadline = Date.now() + Number(process.env.PROBE_TIMEOUT_MS);
    const once = (path) => new Promise((resolve) => {
      const s = net.createConnection(path);
      let rx = Buffer.alloc(0);
      const done = (ok) => { s.destroy(); resolve(ok); };
      s.setTimeout(Math.max(100, deadline - Date.now()), () => done(false));
      s.on("connect", () => s.write(Buffer.from([0x01, 0x03, 0x0c, 0x00])));
      s.on("data", (d) => {
        rx = Buffer.concat([rx, d]);
        if (rx.includes(Buffer.from([0x04, 0x0e, 0x04]))) {
          const i = rx.indexOf(Buffer.from([0x04, 0x0e, 0x04]));
          if (rx.length >= i + 7) done(rx[i + 4] === 0x03 && rx[i + 5] === 0x0c && rx[i + 6] === 0x00);
        }
      });
      s.on("error", () => done(false));
      s.on("close", () => resolve(false));
    });
    let ok = false;
    for (;;) {
      ok = (await Promise.all(process.argv.slice(1).map(once))).every(Boolean);
      if (ok || Date.now() >= deadline || process.env.PROBE_ONCE) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    process.exit(ok ? 0 : 1);
  ' "$@"
}

print_info() {
  local pid="$1" d
  d="$(sock_dir)"
  echo "pid=$pid"
  echo "le_socket=$d/bt-server-le"
  echo "bredrle_socket=$d/bt-server-bredrle"
  echo "log=$log_file"
  echo "dir=$dir"
}

do_start() {
  local pid lib d i
  if pid="$(live_pid)"; then
    print_info "$pid"
    return 0
  fi
  command -v btvirt >/dev/null || die "btvirt is missing: package bluez-test-tools (run tools/interop/setup.sh)"
  command -v stdbuf >/dev/null || die "stdbuf is missing (coreutils)"
  command -v node >/dev/null || die "node is missing"
  lib="$("$here/build-shim.sh" | tail -n 1)" || die "could not build the AF_ALG shim"
  rm -f "$pid_file"

  if [ "$shared_tmp" = 1 ]; then
    echo shared >"$mode_file"
    d=/tmp
    if [ -S "$d/bt-server-le" ] && PROBE_TIMEOUT_MS=300 PROBE_ONCE=1 probe_reset "$d/bt-server-le" 2>/dev/null; then
      die "another btvirt already serves $d/bt-server-le; stop it or drop --shared-tmp"
    fi
    remove_sockets "$d"
    ( cd / && exec env LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}" stdbuf -oL -eL \
        btvirt -s "${extra[@]}" >"$log_file" 2>&1 ) </dev/null &
    pid=$!
  else
    command -v unshare >/dev/null || die "unshare is missing (util-linux); use --shared-tmp"
    echo private >"$mode_file"
    d="$dir/tmp"
    mkdir -p "$d"
    remove_sockets "$d"
    # The bind mount hides whatever lies under the real /tmp (the repo or cache may live there), so the
    # shim is copied into the directory that becomes /tmp and preloaded from there.
    cp -f "$lib" "$d/afalg-shim.so"
    # unshare and sh exec into btvirt, so $! is btvirt's own PID.
    unshare --mount --propagation private -- sh -c \
      'mount --bind "$1" /tmp || exit 97; shift; cd / && exec "$@"' sh "$d" \
      env LD_PRELOAD="/tmp/afalg-shim.so${LD_PRELOAD:+:$LD_PRELOAD}" stdbuf -oL -eL btvirt -s "${extra[@]}" \
      >"$log_file" 2>&1 </dev/null &
    pid=$!
  fi
  echo "$pid" >"$pid_file"

  # Wait for the sockets to exist, then for both to answer a Reset.
  for ((i = 0; i < START_TIMEOUT_S * 20; i++)); do
    [ -S "$d/bt-server-le" ] && [ -S "$d/bt-server-bredrle" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if ! kill -0 "$pid" 2>/dev/null; then
    rm -f "$pid_file"
    die "btvirt exited during start; log $log_file: $(tail -n 5 "$log_file" 2>/dev/null | tr '\n' ' ')"
  fi
  if ! PROBE_TIMEOUT_MS=$((START_TIMEOUT_S * 1000)) probe_reset "$d/bt-server-le" "$d/bt-server-bredrle"; then
    do_stop >/dev/null 2>&1 || true
    die "btvirt did not answer HCI Reset on $d/bt-server-le and bt-server-bredrle within ${START_TIMEOUT_S}s" \
      "(is the AF_ALG shim working? try: AFALG_SHIM_DEBUG=1; log $log_file)"
  fi
  print_info "$pid"
}

do_stop() {
  local pid i
  if pid="$(live_pid)"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      live_pid >/dev/null || break
      sleep 0.05
    done
    if live_pid >/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
      echo "btvirt.sh: btvirt $pid ignored SIGTERM for 5 s; sent SIGKILL" >&2
    fi
    echo "stopped pid=$pid"
  else
    echo "not running"
  fi
  rm -f "$pid_file"
  remove_sockets "$(sock_dir)"
}

do_status() {
  local pid
  if pid="$(live_pid)"; then
    echo "running"
    print_info "$pid"
  else
    echo "not running"
    return 3
  fi
}

case "$cmd" in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  *) usage ;;
esac
