#!/usr/bin/python3
"""Open many idle HTTP/1.1 keep-alive connections and report a process's memory.

Used by bench/run.sh for the "RSS with 1,000 idle connections" figure:

  idle_conns.py --port P --pid PID [--host 127.0.0.1] [--count 1000] [--hold 3]

Each connection sends one `GET /healthz` with `Connection: keep-alive`, reads the
whole response (headers + Content-Length body, or a chunked body), and stays open.
After all are open it holds them for --hold seconds, checks how many the server
still keeps open, then reads VmRSS / VmHWM from /proc/PID/status while the
connections are still held. Prints one line of key=value pairs on stdout:

  opened=N ok=N still_open=N vm_rss_kb=K vm_hwm_kb=K

Exit status 0 when the figures were read (even if some connections failed; the
counts say so), 1 when the process could not be read or nothing connected.
Standard library only.
"""

import argparse
import errno
import os
import resource
import socket
import sys
import time


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass


def read_response(sock, deadline):
    """Read one HTTP/1.1 response; return the status code, or raise."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before headers")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower()] = v.strip().lower()
    if b"content-length" in headers:
        need = int(headers[b"content-length"])
        while len(rest) < need:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed inside body")
            rest += chunk
    elif headers.get(b"transfer-encoding") == b"chunked":
        while not rest.endswith(b"0\r\n\r\n"):
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed inside chunked body")
            rest += chunk
    if headers.get(b"connection") == b"close":
        raise ConnectionError("server answered Connection: close")
    return status


def still_open(sock):
    """True when the peer has not closed the connection (nothing to read, no EOF)."""
    try:
        sock.setblocking(False)  # a socket timeout would make recv() wait first
        data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return len(data) > 0  # unexpected bytes, but the connection is open


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])  # kB (KiB)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--hold", type=float, default=3.0)
    ap.add_argument("--path", default="/healthz")
    ap.add_argument("--timeout", type=float, default=10.0,
                    help="per-connection connect+request budget, seconds")
    args = ap.parse_args()

    raise_nofile(args.count + 64)
    request = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: keep-alive\r\n"
               "User-Agent: difyguard-bench\r\n\r\n" % (args.path, args.host, args.port)).encode()

    socks = []
    ok = 0
    errors = {}
    for _ in range(args.count):
        deadline = time.monotonic() + args.timeout
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.settimeout(args.timeout)
            s.connect((args.host, args.port))
            socks.append(s)
            s.sendall(request)
            if read_response(s, deadline) == 200:
                ok += 1
            else:
                errors["non-200"] = errors.get("non-200", 0) + 1
        except (OSError, ValueError, IndexError) as e:
            key = type(e).__name__
            if isinstance(e, OSError) and e.errno:
                key = errno.errorcode.get(e.errno, key)
            errors[key] = errors.get(key, 0) + 1
    opened = len(socks)

    time.sleep(args.hold)
    alive = sum(1 for s in socks if still_open(s))
    try:
        mem = proc_status(args.pid)
    except OSError as e:
        print("idle_conns: cannot read /proc/%d/status: %s" % (args.pid, e), file=sys.stderr)
        return 1
    for s in socks:
        s.close()

    if errors:
        print("idle_conns: errors: %s" % ", ".join("%s=%d" % kv for kv in sorted(errors.items())),
              file=sys.stderr)
    print("opened=%d ok=%d still_open=%d vm_rss_kb=%d vm_hwm_kb=%d"
          % (opened, ok, alive, mem.get("VmRSS", -1), mem.get("VmHWM", -1)))
    return 0 if opened > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
