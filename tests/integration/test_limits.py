# SPDX-License-Identifier: Apache-2.0
"""Connection limits: per client address, idle timeout, and slow clients that must not hold up
anyone else. Raw sockets, so the tests see exactly what the server does with a connection."""
import socket
import time

from conftest import expect

REQ = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.settimeout(10)
    return s


def answered(s):
    """Send one keep-alive request; True when a 200 comes back, False when the server closed."""
    try:
        s.sendall(REQ)
        data = s.recv(4096)
    except (ConnectionResetError, BrokenPipeError, socket.timeout):
        return False
    return data.startswith(b"HTTP/1.1 200")


def closed_by_server(s, deadline=20.0):
    end = time.monotonic() + deadline
    s.settimeout(1)
    while time.monotonic() < end:
        try:
            if s.recv(1) == b"":
                return True
        except socket.timeout:
            continue
        except ConnectionResetError:
            return True
    return False


def test_connections_per_client_address(start_server):
    srv = start_server(args=["--max-connections-per-ip", "4"])
    # the harness's own keep-alive client may still hold one of the four slots
    socks = [connect(srv.port) for _ in range(6)]
    served = [s for s in socks if answered(s)]
    refused = [s for s in socks if s not in served]
    assert 3 <= len(served) <= 4, f"{len(served)} of 6 connections served with a limit of 4"
    assert all(closed_by_server(s) for s in refused)
    served[0].close()
    # a freed slot is usable again, once the server has seen the close
    end = time.monotonic() + 20
    ok = False
    while not ok and time.monotonic() < end:
        d = connect(srv.port)
        ok = answered(d)
        d.close()
        if not ok:
            time.sleep(0.2)
    assert ok, "a slot freed by a closed connection never became usable"
    for s in socks:
        s.close()


def test_idle_keepalive_connections_are_closed(start_server):
    """Guarantee (README --idle-timeout): keep-alive works -- one connection serves request after
    request -- and a connection left idle is closed by the server after --idle-timeout. (Were
    keep-alive broken, a server closing every connection would pass the second half alone.)"""
    srv = start_server(args=["--idle-timeout", "2s"])
    s = connect(srv.port)
    for i in range(3):
        assert answered(s), f"request {i + 1} on one keep-alive connection was not answered"
    assert closed_by_server(s), "an idle keep-alive connection outlived --idle-timeout"
    s.close()


def test_slow_clients_do_not_block_others(start_server):
    srv = start_server(args=["--threads", "1", "--idle-timeout", "30s"])
    slow = []
    for _ in range(20):            # slowloris: headers that never end, body that never comes
        s = connect(srv.port)
        s.sendall(b"POST /v1/keyrings HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n")
        slow.append(s)
    for _ in range(20):
        expect(srv.client().get("/healthz", timeout=10), 200)
    kr = expect(srv.admin.post("/v1/keyrings", {"name": "after-slowloris"}), 201)
    assert kr["latest_version"] == 1
    for s in slow:
        s.close()
