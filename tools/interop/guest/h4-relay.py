#!/usr/bin/python3
"""Guest side of the H4 bridge: joins a serial line (qemu's host socket, guest ttyS1) to btvirt's
socket server (/tmp/bt-server-le, one fresh emulated controller per connection).

Both directions are re-framed into whole H4 packets before they are written: btvirt's socket reader
mis-frames when one of its 4096-byte reads ends inside an H4 header, so we never hand it a partial packet
in one write, and the host side gets packets in one piece too. Bytes that cannot start a packet (an unknown
indicator, e.g. garbage left by a host that closed mid-packet) are dropped one at a time until a known
indicator appears, and each drop is counted on stderr.

Usage: h4-relay.py SERIAL_DEVICE UNIX_SOCKET
"""
import os
import select
import socket
import sys
import termios
import time
import tty

# H4 indicator -> (header length after the indicator, function giving the payload length from the header).
# Core Vol 4, Part A, 2 (indicators); Part E, 5.4 (header layouts); ISO: Part E, 5.4.5 (14-bit length).
HEADERS = {
    0x01: (3, lambda h: h[2]),                             # command: opcode(2) len(1)
    0x02: (4, lambda h: h[2] | (h[3] << 8)),               # ACL: handle+flags(2) len(2)
    0x03: (3, lambda h: h[2]),                             # SCO: handle+flags(2) len(1)
    0x04: (2, lambda h: h[1]),                             # event: code(1) len(1)
    0x05: (4, lambda h: h[2] | ((h[3] & 0x3F) << 8)),      # ISO: handle+flags(2) len(14 bits)
}


class Framer:
    def __init__(self, name):
        self.name = name
        self.buf = bytearray()
        self.dropped = 0

    def feed(self, data):
        """Appends bytes and returns the whole packets now complete."""
        self.buf += data
        out = []
        while self.buf:
            spec = HEADERS.get(self.buf[0])
            if spec is None:
                del self.buf[0]
                self.dropped += 1
                log("%s: dropped a byte that starts no H4 packet (%d so far)" % (self.name, self.dropped))
                continue
            hlen, plen = spec
            if len(self.buf) < 1 + hlen:
                break
            total = 1 + hlen + plen(self.buf[1:1 + hlen])
            if len(self.buf) < total:
                break
            out.append(bytes(self.buf[:total]))
            del self.buf[:total]
        return out


def log(msg):
    sys.stderr.write("h4-relay: %s\n" % msg)
    sys.stderr.flush()


def write_all(fd, data):
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        view = view[n:]


def open_serial(path):
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    # Raw 8N1, no echo, no CR/LF translation, no software or hardware flow control, ignore modem lines:
    # the line carries binary H4, and an echo would reflect every host packet back to the host.
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[0] &= ~(termios.IXON | termios.IXOFF | termios.IXANY | termios.ICRNL | termios.INLCR | termios.IGNCR)
    attrs[1] &= ~termios.OPOST
    attrs[2] &= ~termios.CRTSCTS
    attrs[2] |= termios.CLOCAL | termios.CREAD
    attrs[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    attrs[4] = termios.B3000000
    attrs[5] = termios.B3000000
    attrs[6][termios.VMIN] = 1
    attrs[6][termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
    termios.tcflush(fd, termios.TCIOFLUSH)
    return fd


def connect_unix(path, deadline_s=30.0):
    end = time.monotonic() + deadline_s
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


def main():
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    serial_fd = open_serial(sys.argv[1])
    sock = connect_unix(sys.argv[2])
    sock_fd = sock.fileno()
    to_ctrl = Framer("serial->btvirt")
    to_host = Framer("btvirt->serial")
    log("relaying %s <-> %s" % (sys.argv[1], sys.argv[2]))
    while True:
        ready, _, _ = select.select([serial_fd, sock_fd], [], [])
        if serial_fd in ready:
            data = os.read(serial_fd, 65536)
            for pkt in to_ctrl.feed(data):
                sock.sendall(pkt)
        if sock_fd in ready:
            data = sock.recv(65536)
            if not data:
                log("btvirt closed the controller socket")
                return 1
            for pkt in to_host.feed(data):
                write_all(serial_fd, pkt)


if __name__ == "__main__":
    sys.exit(main())
