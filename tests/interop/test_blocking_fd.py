"""The blocking facade over TAP against Linux peers (issue 18 item 7): its sockets have real
descriptors, so select, selectors and asyncio wait on them, and ``use_sockets(net)`` runs stdlib and
PyPI clients unchanged on stacklab's TCP — http.client with no connect override."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import os
import select
import selectors
import threading
from pathlib import Path

import requests

from stacklab.api.blocking import use_sockets
from stacklab.api.sockets import StackSocket

from .linux import Netns
from .stackhost import LINUX4, STACK4, StackOnTap

MB = 1 << 20


def test_http_client_and_requests_unchanged_to_linux_http_server(
        netns: Netns, host_on_tap: StackOnTap, tmp_path: Path) -> None:
    body = os.urandom(MB)
    (tmp_path / "blob").write_bytes(body)
    netns.popen("python3", "-m", "http.server", "--bind", LINUX4, "--directory", str(tmp_path),
                "8080")
    netns.wait_listening(8080)
    with use_sockets(host_on_tap.net):
        conn = http.client.HTTPConnection(LINUX4, 8080, timeout=20)
        conn.request("GET", "/blob")
        assert isinstance(conn.sock, StackSocket)  # the stack's socket, by the stdlib's connect
        resp = conn.getresponse()
        assert resp.status == 200
        assert hashlib.sha256(resp.read()).digest() == hashlib.sha256(body).digest()
        conn.close()
        with requests.Session() as session:
            session.trust_env = False  # no proxy from the environment: straight to the peer
            got = session.get(f"http://{LINUX4}:8080/blob", timeout=20)
        assert got.status_code == 200 and got.content == body


def test_select_selectors_and_asyncio_wait_on_stack_sockets(netns: Netns,
                                                            host_on_tap: StackOnTap) -> None:
    net = host_on_tap.net
    # a Linux server that answers half a second after the connection
    netns.popen("socat", f"TCP4-LISTEN:5006,bind={LINUX4},reuseaddr",
                "SYSTEM:sleep 0.5; echo hello")
    netns.wait_listening(5006)
    with net.create_connection((LINUX4, 5006), timeout=10) as c:
        assert select.select([c], [], [], 0) == ([], [], [])
        assert select.select([c], [], [], 10) == ([c], [], [])
        assert c.recv(100) == b"hello\n"
        assert select.select([c], [], [], 10) == ([c], [], [])  # then Linux's FIN
        assert c.recv(100) == b""

    # a stacklab listener that Linux connects to: selectors for the accept, asyncio for data
    with net.create_server((STACK4, 0)) as srv:
        port = srv.getsockname()[1]
        netns.popen("sh", "-c", f"sleep 0.3; echo from-linux | socat -t 2 - TCP4:{STACK4}:{port}")
        with selectors.DefaultSelector() as sel:
            sel.register(srv, selectors.EVENT_READ)
            assert [ev for _, ev in sel.select(10)] == [selectors.EVENT_READ]
        conn, peer = srv.accept()
        assert peer[0] == LINUX4

        async def read_when_ready() -> bytes:
            loop = asyncio.get_running_loop()
            data = bytearray()
            for _ in range(10):  # bounded: the line, then EOF
                ready = loop.create_future()
                loop.add_reader(conn.fileno(), ready.set_result, None)
                try:
                    await asyncio.wait_for(ready, 10)
                finally:
                    loop.remove_reader(conn.fileno())
                chunk = conn.recv(100)
                if not chunk:
                    break
                data += chunk
            return bytes(data)
        with conn:
            assert asyncio.run(read_when_ready()) == b"from-linux\n"


def test_send_and_receive_at_once_from_two_threads_through_a_linux_echo(
        netns: Netns, host_on_tap: StackOnTap) -> None:
    """A sender held by flow control and a reader on the same socket, as test_tcp_interop's
    echo does: both wake (4 MiB through socat's PIPE)."""
    netns.popen("socat", f"TCP4-LISTEN:5007,bind={LINUX4},reuseaddr", "PIPE")
    netns.wait_listening(5007)
    data = os.urandom(4 * MB)
    got = bytearray()
    with host_on_tap.net.create_connection((LINUX4, 5007), timeout=30) as s:
        t = threading.Thread(target=s.sendall, args=(data,))
        t.start()
        while len(got) < len(data):
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            got += chunk
        t.join(30)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
