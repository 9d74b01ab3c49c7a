# SPDX-License-Identifier: Apache-2.0
"""HTTP/1.1 over a plain socket, byte for byte: for requests that client libraries would
normalise or refuse to send (non-canonical paths, odd methods, repeated headers, slow chunked
bodies)."""
import socket
import time


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers          # list of (lowercase name, value)
        self.body = body

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None


def build(method, target, headers=(), body=b""):
    """The request bytes. method and target may be bytes (sent as given) or str."""
    m = method if isinstance(method, bytes) else method.encode()
    t = target if isinstance(target, bytes) else target.encode()
    lines = [m + b" " + t + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    for k, v in headers:
        lines.append((k if isinstance(k, bytes) else k.encode()) + b": " +
                     (v if isinstance(v, bytes) else v.encode()))
    if body:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def read_response(sock, deadline):
    data = b""
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return parse(data)


def parse(data):
    """A Response, or None when no status line arrived."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep or not head.startswith(b"HTTP/1."):
        return None
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers.append((k.strip().lower().decode("latin-1"), v.strip().decode("latin-1")))
    return Response(status, headers, body)


def request(port, raw, timeout=20.0):
    """Send raw request bytes on a new connection (Connection: close) and read the answer."""
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.settimeout(1.0)
        s.sendall(raw)
        return read_response(s, deadline)


def start_in_flight(port, raw, timeout=30.0):
    """A request the server has begun (its headers read, its handler called) and whose body is
    still arriving: sent with "Expect: 100-continue", the "100 Continue" read back, then all but
    the last 5 body bytes. Returns (socket, the rest to send)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep and len(body) > 5, "a request with a body"
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.settimeout(timeout)
    s.sendall(head + b"\r\nExpect: 100-continue\r\n\r\n")
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = s.recv(4096)
        if not chunk:
            raise AssertionError(f"connection closed before 100 Continue: {got!r}")
        got += chunk
    assert got.startswith(b"HTTP/1.1 100"), got
    s.sendall(body[:-5])
    s.settimeout(1.0)
    return s, body[-5:]
