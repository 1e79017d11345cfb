#!/usr/bin/python3
"""Guest side of the control line: lets the host run and talk to programs in the guest over a serial line
(qemu's host socket <run>/ctl.sock, guest ttyS3), one JSON object per line each way (ASCII only).

Host -> guest, each with a numeric "id" that the answer repeats:
  {"id":1,"op":"run","argv":[...],"timeout":30}      run to completion; answer {"id":1,"code":N,"stdout":..,"stderr":..}
                                                       (code -9 and "timedOut":true after the time-out)
  {"id":2,"op":"spawn","name":"agent","argv":[...]}  start a long-lived program; answer {"id":2,"pid":N};
                                                       then events {"ev":"out","name":..,"stream":"stdout"|"stderr",
                                                       "data":..} as it writes and {"ev":"exit","name":..,"code":N}
  {"id":3,"op":"write","name":"agent","data":"123456\\n"}   to its stdin; answer {"id":3,"ok":true}
  {"id":4,"op":"kill","name":"agent"}                SIGTERM (SIGKILL after 3 s); answer {"id":4,"ok":true}
  {"id":5,"op":"ping"}                               answer {"id":5,"pong":true}
An error answers {"id":N,"error":"..."}. Lines that are not JSON (a host that connected mid-line) are
ignored. Output is streamed as it arrives, not by lines: a prompt without a newline ("Enter passkey: ")
reaches the host at once. Bounds: at most 16 programs at a time, 1 MiB of output kept per "run".

Usage: guest-ctl.py SERIAL_DEVICE
"""
import json
import os
import select
import signal
import subprocess
import sys
import termios
import time
import tty

MAX_PROCS = 16
MAX_RUN_OUTPUT = 1 << 20
READ_CHUNK = 4096


def log(msg):
    sys.stderr.write("guest-ctl: %s\n" % msg)
    sys.stderr.flush()


class Proc:
    def __init__(self, name, popen, req_id, run, deadline):
        self.name = name
        self.popen = popen
        self.req_id = req_id    # "run": the request to answer at exit
        self.run = run
        self.deadline = deadline
        self.out = {"stdout": bytearray(), "stderr": bytearray()}
        self.open = {"stdout": popen.stdout, "stderr": popen.stderr}
        self.timed_out = False
        self.kill_at = None
        self.exited_at = None


class Control:
    def __init__(self, dev):
        self.fd = os.open(dev, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        attrs = termios.tcgetattr(self.fd)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(self.fd, termios.TCSANOW, attrs)
        self.rx = bytearray()
        self.procs = {}
        self.anon = 0

    def send(self, obj):
        data = (json.dumps(obj, ensure_ascii=True) + "\n").encode("ascii")
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]

    def start(self, name, argv, req_id, run, timeout, cwd):
        if len(self.procs) >= MAX_PROCS:
            raise RuntimeError("too many programs")
        if name in self.procs:
            raise RuntimeError("a program named %s is running" % name)
        popen = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 cwd=cwd or "/", bufsize=0, start_new_session=True)
        deadline = time.monotonic() + timeout if timeout else None
        p = Proc(name, popen, req_id, run, deadline)
        self.procs[name] = p
        return p

    def handle(self, req):
        rid = req.get("id")
        op = req.get("op")
        try:
            if op == "ping":
                self.send({"id": rid, "pong": True})
            elif op == "run":
                self.anon += 1
                self.start("run-%d" % self.anon, [str(a) for a in req["argv"]], rid, True,
                           float(req.get("timeout", 60)), req.get("cwd"))
            elif op == "spawn":
                p = self.start(str(req["name"]), [str(a) for a in req["argv"]], rid, False, None, req.get("cwd"))
                self.send({"id": rid, "pid": p.popen.pid})
            elif op == "write":
                p = self.procs[str(req["name"])]
                p.popen.stdin.write(str(req["data"]).encode("utf-8"))
                p.popen.stdin.flush()
                self.send({"id": rid, "ok": True})
            elif op == "kill":
                p = self.procs.get(str(req["name"]))
                if p is not None:
                    self.signal(p, signal.SIGTERM)
                    p.kill_at = time.monotonic() + 3
                self.send({"id": rid, "ok": True})
            else:
                raise RuntimeError("unknown op %r" % op)
        except Exception as e:  # every failure is an answer, never the end of the control line
            self.send({"id": rid, "error": "%s: %s" % (type(e).__name__, e)})

    def signal(self, p, sig):
        try:
            os.killpg(p.popen.pid, sig)
        except ProcessLookupError:
            pass

    def on_serial(self):
        data = os.read(self.fd, READ_CHUNK)
        self.rx += data
        while True:
            nl = self.rx.find(b"\n")
            if nl < 0:
                break
            line = bytes(self.rx[:nl]).strip()
            del self.rx[:nl + 1]
            if not line:
                continue
            try:
                req = json.loads(line.decode("ascii"))
            except (ValueError, UnicodeDecodeError):
                log("ignored a line that is not JSON (%d bytes)" % len(line))
                continue
            if isinstance(req, dict):
                self.handle(req)
        if len(self.rx) > 1 << 16:
            del self.rx[:]

    def on_output(self, p, stream):
        data = os.read(p.open[stream].fileno(), READ_CHUNK)
        if not data:
            p.open[stream] = None
            return
        if p.run:
            if len(p.out[stream]) < MAX_RUN_OUTPUT:
                p.out[stream] += data
        else:
            self.send({"ev": "out", "name": p.name, "stream": stream, "data": data.decode("utf-8", "replace")})

    def reap(self):
        now = time.monotonic()
        for name in list(self.procs):
            p = self.procs[name]
            if p.deadline is not None and now > p.deadline and not p.timed_out:
                p.timed_out = True
                self.signal(p, signal.SIGKILL)
            if p.kill_at is not None and now > p.kill_at:
                self.signal(p, signal.SIGKILL)
                p.kill_at = None
            code = p.popen.poll()
            if code is None:
                continue
            # Exited: wait for its pipes to drain, unless something it left behind holds them (2 s grace).
            if p.open["stdout"] is not None or p.open["stderr"] is not None:
                if p.exited_at is None:
                    p.exited_at = now
                if now - p.exited_at < 2 and not p.timed_out:
                    continue
            del self.procs[name]
            for f in (p.popen.stdin, p.popen.stdout, p.popen.stderr):
                try:
                    f.close()
                except OSError:
                    pass
            if p.run:
                answer = {"id": p.req_id, "code": code, "stdout": p.out["stdout"].decode("utf-8", "replace"),
                          "stderr": p.out["stderr"].decode("utf-8", "replace")}
                if p.timed_out:
                    answer["timedOut"] = True
                self.send(answer)
            else:
                self.send({"ev": "exit", "name": p.name, "code": code})

    def loop(self):
        log("listening")
        while True:
            fds = {self.fd: None}
            for p in self.procs.values():
                for stream, f in p.open.items():
                    if f is not None:
                        fds[f.fileno()] = (p, stream)
            ready, _, _ = select.select(list(fds), [], [], 0.2)
            for fd in ready:
                if fd == self.fd:
                    self.on_serial()
                else:
                    p, stream = fds[fd]
                    self.on_output(p, stream)
            self.reap()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        sys.exit(2)
    Control(sys.argv[1]).loop()
