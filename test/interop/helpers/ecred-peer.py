#!/usr/bin/env python3
"""Runs INSIDE the BlueZ guest (started by coc-bluez.test.ts over the control line): the Linux kernel's
L2CAP sockets in Enhanced Credit Based Flow Control Mode (Core Vol 3, Part A, 4.25-4.26; BT_MODE
EXT_FLOWCTL), which BlueZ 5.66's l2test cannot open on LE (its -X path reads the BR/EDR socket options).

Python 3.11's socket module has no address type in its L2CAP addresses, so bind() and connect() go
through libc with a struct sockaddr_l2 (family, PSM, bdaddr, CID, bdaddr type; lib/l2cap.h); the rest
is the socket module. The kernel does the protocol: this script only opens, reads and writes.

  ecred-peer.py listen PSM IMTU            accept channels; print "accepted N", "sdu N HEX", "closed N"
  ecred-peer.py connect ADDR PSM IMTU K S  open one channel to ADDR (LE random), send K SDUs of S octets
                                           (octet i of SDU k: (i * 7 + k) & 0xff), print "sent", then
                                           "sdu 0 HEX" for what comes back, "closed 0" at its end
Every line is flushed at once.
"""
import ctypes
import os
import select
import socket
import struct
import sys

AF_BLUETOOTH = 31
BTPROTO_L2CAP = 0
SOL_BLUETOOTH = 274
BT_MODE = 15
BT_RCVMTU = 13
BT_MODE_EXT_FLOWCTL = 0x04
BDADDR_LE_PUBLIC = 1
BDADDR_LE_RANDOM = 2

libc = ctypes.CDLL(None, use_errno=True)


def sockaddr(bdaddr, psm, addr_type):
    octets = bytes(int(x, 16) for x in reversed(bdaddr.split(':')))
    return struct.pack('<HH6sHBx', AF_BLUETOOTH, psm, octets, 0, addr_type)


def libc_call(fn, sock, addr):
    buf = ctypes.create_string_buffer(addr, len(addr))
    if fn(sock.fileno(), buf, len(addr)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def out(*words):
    print(*words, flush=True)


def channel_socket(psm, imtu):
    s = socket.socket(AF_BLUETOOTH, socket.SOCK_SEQPACKET, BTPROTO_L2CAP)
    libc_call(libc.bind, s, sockaddr('00:00:00:00:00:00', psm, BDADDR_LE_PUBLIC))
    s.setsockopt(SOL_BLUETOOTH, BT_MODE, bytes([BT_MODE_EXT_FLOWCTL]))
    s.setsockopt(SOL_BLUETOOTH, BT_RCVMTU, struct.pack('<H', imtu))
    return s


def listen(psm, imtu):
    server = channel_socket(psm, imtu)
    server.listen(5)
    out('listening', psm)
    channels = {}
    while True:
        ready, _, _ = select.select([server] + list(channels), [], [])
        for s in ready:
            if s is server:
                c, _ = server.accept()
                channels[c] = len(channels)
                out('accepted', channels[c])
                continue
            try:
                data = s.recv(65535)
            except OSError as e:
                data = b''
                out('error', channels[s], e.errno)
            if data:
                out('sdu', channels[s], data.hex())
            else:
                out('closed', channels.pop(s))
                s.close()


def connect(addr, psm, imtu, count, size):
    s = channel_socket(0, imtu)
    libc_call(libc.connect, s, sockaddr(addr, psm, BDADDR_LE_RANDOM))
    out('connected')
    for k in range(count):
        s.send(bytes((i * 7 + k) & 0xff for i in range(size)))
    out('sent', count)
    while True:
        data = s.recv(65535)
        if not data:
            break
        out('sdu', 0, data.hex())
    out('closed', 0)


if __name__ == '__main__':
    if sys.argv[1] == 'listen':
        listen(int(sys.argv[2], 0), int(sys.argv[3]))
    elif sys.argv[1] == 'connect':
        connect(sys.argv[2], int(sys.argv[3], 0), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
    else:
        sys.exit('usage: ecred-peer.py listen PSM IMTU | connect ADDR PSM IMTU COUNT SIZE')
