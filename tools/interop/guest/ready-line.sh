# Sourced by boot.sh (bash). ready_line FILE: the guest's first BLEWIRE-GUEST-READY console line, once
# it is whole, without its line end; nothing while there is none.
#
# qemu appends the guest's serial output to the console log as the guest's UART sends it, so the
# file's last line may be half written when we look. A READY line read that way once gave the host
# name=Bl for "BlueZ 5.66" (a loaded host, TCG): boot.sh took it, and every test comparing the GAP
# name failed. Only the lines before the file's last newline are read.
ready_line() {
  local file=$1 whole line
  whole=$(wc -l <"$file" 2>/dev/null) || return 0
  line=$(head -n "$whole" "$file" | grep -a -m1 '^BLEWIRE-GUEST-READY' || true)
  printf '%s' "${line%$'\r'}"
}
