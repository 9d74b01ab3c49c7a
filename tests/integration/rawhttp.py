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
