"""host.run_blocking (stacklab/api/blocking.py): ordinary blocking code — ``socket`` itself and
unmodified stdlib and PyPI clients — on the simulated network, in virtual time, deterministic."""

from __future__ import annotations

import asyncio
import email.policy
import errno
import ftplib
import functools
import hashlib
import http.client
import http.server
import os
import select
import selectors
import smtplib
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Coroutine
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests

from stacklab import Network
from stacklab.api.blocking import SIM_EPOCH, BlockingCallError
from stacklab.apps.common import pattern_bytes, sha256_hex
from stacklab.apps.ftp import serve_ftp
from stacklab.apps.http import serve_http
from stacklab.apps.smtp import serve_smtp
from stacklab.stack.host import Host as SansIoHost

LOSSY = dict(delay="5ms", loss=0.03, mtu=576)


def simulate(scenario: Callable[[Any, Any], Coroutine[Any, Any, Any]], *, seed: int = 3,
             link: dict[str, Any] | None = None, pcaps: Path | None = None) -> Any:
    """Run ``scenario(a, b)`` on two hosts joined by one link; with ``pcaps``, capture there."""
    net = Network(seed=seed)
    try:
        a, b = net.add_host("a"), net.add_host("b")
        net.connect("a", "b", **(link or dict(delay="2ms")))
        net.autoconfigure()
        if pcaps is not None:
            net.capture(pcaps)
        result = net.run(scenario(a, b), until=600)
        if link and link.get("loss"):
            drops = sum(c.get("drop.loss", 0) for d in net.counters()["links"].values()
                        for c in d.values())
            assert drops > 0, "the loss did not happen: the test proves nothing"
        return result
    finally:
        net.close()


def pcap_digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.glob("*.pcap"))}


# -- socket itself ------------------------------------------------------------------------------

def test_socket_round_trip_accept_makefile_and_eof() -> None:
    def serve(srv: socket.socket) -> tuple[bytes, Any]:
        conn, peer = srv.accept()
        with conn:
            line = conn.makefile("rb").readline()
            conn.sendall(line.upper() * 1000)
        return line, peer

    def client(port: int) -> tuple[bytes, Any]:
        with socket.create_connection(("a", port), timeout=5) as c:
            assert isinstance(c, socket.socket)
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            assert c.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
            assert c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
            c.sendall(b"hello stacklab\n")
            data = bytearray()
            while chunk := c.recv(65536):
                data += chunk
            return bytes(data), c.getsockname()

    async def scenario(a: Any, b: Any) -> None:
        srv = await a.run_blocking(socket.create_server, ("", 0))
        port = srv.getsockname()[1]
        (line, peer), (data, local) = await asyncio.gather(a.run_blocking(serve, srv),
                                                           b.run_blocking(client, port))
        assert line == b"hello stacklab\n"
        assert data == b"HELLO STACKLAB\n" * 1000
        assert peer == local and peer[0] == b.address(4)
    simulate(scenario, link=LOSSY)


def test_one_socket_sending_and_receiving_at_once_from_two_greenlets() -> None:
    """A sender held by flow control and a reader waiting on the same connection: each is
    woken by its own change (an echo of 2 MB, more than the buffers both ways hold)."""
    data = pattern_bytes(9, 2_000_000)

    def echo(srv: socket.socket) -> None:
        conn, _ = srv.accept()
        with conn:
            while chunk := conn.recv(65536):
                conn.sendall(chunk)

    def read_all(c: socket.socket) -> bytes:
        got = bytearray()
        while len(got) < len(data) and (chunk := c.recv(65536)):
            got += chunk
        return bytes(got)

    async def scenario(a: Any, b: Any) -> bytes:
        srv = await a.run_blocking(socket.create_server, ("", 0))
        served = asyncio.ensure_future(a.run_blocking(echo, srv))
        c = await b.run_blocking(socket.create_connection, ("a", srv.getsockname()[1]))
        _, got = await asyncio.gather(b.run_blocking(c.sendall, data),
                                      b.run_blocking(read_all, c))
        c.close()
        await served
        return got  # type: ignore[no-any-return]
    assert simulate(scenario, link=dict(delay="1ms", rate="100Mbit")) == data


def test_timeouts_nonblocking_and_virtual_time() -> None:
    def client(port: int) -> list[Any]:
        t0, w0 = time.monotonic(), time.time()
        c = socket.create_connection(("a", port), timeout=5)
        c.settimeout(0.25)
        with pytest.raises(socket.timeout, match="^timed out$"):
            c.recv(10)
        c.setblocking(False)
        with pytest.raises(BlockingIOError):
            c.recv(10)
        c.settimeout(None)
        time.sleep(1)
        out = [c.recv(10), time.monotonic() - t0, time.time() - w0, w0 - SIM_EPOCH]
        c.close()
        return out

    def server(srv: socket.socket) -> None:
        conn, _ = srv.accept()
        time.sleep(2)
        conn.sendall(b"x")
        conn.close()

    async def scenario(a: Any, b: Any) -> list[Any]:
        srv = await a.run_blocking(socket.create_server, ("", 0))
        got, _ = await asyncio.gather(b.run_blocking(client, srv.getsockname()[1]),
                                      a.run_blocking(server, srv))
        return got

    data, elapsed, wall, start = simulate(scenario)
    assert data == b"x"  # the timed-out reads lost nothing
    # the server accepts at 8 ms (address resolution, then the handshake on a 2 ms link),
    # sleeps 2 s, its byte takes 2 ms: the client's clock saw exactly that, in virtual time
    assert elapsed == pytest.approx(2.010, abs=1e-9)
    assert wall == pytest.approx(elapsed)
    assert 0 <= start < 1  # time.time() is SIM_EPOCH + the virtual clock


def test_refused_unknown_name_and_closed_socket() -> None:
    def client() -> None:
        with pytest.raises(ConnectionRefusedError, match=r"^\[Errno 111\] Connection refused"):
            socket.create_connection(("a", 9), timeout=5)
        with socket.socket() as s:
            assert s.connect_ex(("a", 9)) == errno.ECONNREFUSED
        with pytest.raises(socket.gaierror):
            socket.create_connection(("nowhere", 80))
        s = socket.socket()
        s.close()
        with pytest.raises(OSError, match="Bad file descriptor"):
            s.connect(("a", 1))
        assert socket.gethostname() == "b" and socket.getfqdn() == "b"
        assert socket.gethostbyname("a") == socket.getaddrinfo("a", 80)[0][4][0]

    async def scenario(a: Any, b: Any) -> None:
        await b.run_blocking(client)
    simulate(scenario)


def test_udp_sendto_recvfrom_and_refused() -> None:
    def udp() -> None:
        me = socket.gethostbyname(socket.gethostname())
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        a.bind((me, 0))
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b.settimeout(5)
        a.settimeout(5)
        b.sendto(b"ping", a.getsockname())
        data, addr = a.recvfrom(100)
        assert data == b"ping"
        a.sendto(b"pong", addr)
        assert b.recvfrom(2) == (b"po", a.getsockname())  # truncated to bufsize
        a.settimeout(0.2)
        with pytest.raises(TimeoutError, match="^timed out$"):
            a.recvfrom(100)
        gone = a.getsockname()
        a.close()
        b.connect(gone)
        b.send(b"anyone?")
        with pytest.raises(ConnectionRefusedError):
            b.recv(100)
        b.close()

    async def scenario(a: Any, b: Any) -> None:
        await b.run_blocking(udp)
    simulate(scenario)


def test_socketpair_makefile_survives_close_and_reset_on_unread_close() -> None:
    def pair() -> None:
        x, y = socket.socketpair()
        y.sendall(b"line one\nline two\n")
        y.close()
        f = x.makefile("rb")
        x.close()  # as http.client does before reading the body
        assert f.read() == b"line one\nline two\n"
        f.close()
        with pytest.raises(OSError, match="Bad file descriptor"):
            x.recv(1)
        # closing with unread data resets the connection (RFC 2525 §2.17), as Linux does
        x, y = socket.socketpair()
        y.sendall(b"unread")
        time.sleep(0.01)
        x.close()
        with pytest.raises(ConnectionResetError) as reset:
            for _ in range(3):
                y.sendall(b"more")
                time.sleep(0.01)
        assert reset.value.errno == errno.ECONNRESET

    async def scenario(a: Any, b: Any) -> None:
        await b.run_blocking(pair)
    simulate(scenario)


def test_select_poll_and_selectors_wait_in_virtual_time() -> None:
    def waits() -> list[Any]:
        x, y = socket.socketpair()
        t0 = time.monotonic()
        assert select.select([x], [], [], 0) == ([], [], [])
        assert select.select([x], [], [], 0.5) == ([], [], [])
        waited = time.monotonic() - t0
        assert select.select([], [x], [], None) == ([], [x], [])
        y.sendall(b"ready")
        r, _, _ = select.select([x.fileno()], [], [], 5)
        p = select.poll()
        p.register(x, select.POLLIN)
        polled = p.poll(1000)
        with selectors.DefaultSelector() as sel:
            sel.register(x, selectors.EVENT_READ, data="x")
            events = [(key.data, ev) for key, ev in sel.select(timeout=1)]
        return [waited, r, polled, events, x.fileno(), x.recv(10)]

    async def scenario(a: Any, b: Any) -> list[Any]:
        return await b.run_blocking(waits)
    waited, r, polled, events, fd, data = simulate(scenario)
    assert waited == 0.5
    assert r == [fd] and polled == [(fd, select.POLLIN)] and events == [("x", 1)]
    assert data == b"ready"


# -- the libraries, unchanged, against stacklab's own servers -----------------------------------

BODY = 150_000
UPLOAD = pattern_bytes(7, 60_000)


def http_client_fetch(addr: str) -> list[str]:
    conn = http.client.HTTPConnection(addr, 80, timeout=30)
    conn.request("GET", "/one")
    first = conn.getresponse().read()
    conn.request("POST", "/up", body=UPLOAD)  # the same connection, kept alive
    posted = conn.getresponse().read().decode()
    conn.close()
    return [sha256_hex(first), posted]


def urllib_fetch(addr: str) -> list[str]:
    with urllib.request.urlopen(f"http://{addr}/one", timeout=30) as r:
        first = r.read()
    req = urllib.request.Request(f"http://{addr}/up", data=UPLOAD, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        posted = r.read().decode()
    return [sha256_hex(first), posted]


def requests_fetch(addr: str) -> list[str]:
    with requests.Session() as s:
        first = s.get(f"http://{addr}/one", timeout=30)
        first.raise_for_status()
        posted = s.post(f"http://{addr}/up", data=UPLOAD, timeout=30).text
    return [sha256_hex(first.content), posted]


def httpx_fetch(addr: str) -> list[str]:
    with httpx.Client(base_url=f"http://{addr}", timeout=30) as c:
        first = c.get("/one")
        first.raise_for_status()
        posted = c.post("/up", content=UPLOAD).text
    return [sha256_hex(first.content), posted]


HTTP_CLIENTS = {"http.client": http_client_fetch, "urllib.request": urllib_fetch,
                "requests": requests_fetch, "httpx": httpx_fetch}


def run_http(fetch: Callable[[str], list[str]], pcaps: Path, seed: int = 5) -> list[str]:
    async def scenario(a: Any, b: Any) -> list[str]:
        server = await serve_http(a, 80, bytes=BODY)
        try:
            return await b.run_blocking(fetch, "a")
        finally:
            await server.close()
    return simulate(scenario, seed=seed, link=LOSSY, pcaps=pcaps)  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", list(HTTP_CLIENTS))
def test_http_clients_unchanged_under_loss_and_deterministic(name: str, tmp_path: Path) -> None:
    first = run_http(HTTP_CLIENTS[name], tmp_path / "1")
    assert first[0] == sha256_hex(pattern_bytes(0, BODY))
    assert f"received {len(UPLOAD)} bytes sha256 {sha256_hex(UPLOAD)}" in first[1]
    second = run_http(HTTP_CLIENTS[name], tmp_path / "2")
    assert second == first
    assert pcap_digests(tmp_path / "1") == pcap_digests(tmp_path / "2") != {}


_CROSS_PROCESS = """
import hashlib, pathlib, sys
from tests.api.test_blocking import requests_fetch, run_http
run_http(requests_fetch, pathlib.Path(sys.argv[1]))
for p in sorted(pathlib.Path(sys.argv[1]).glob("*.pcap")):
    print(p.name, hashlib.sha256(p.read_bytes()).hexdigest())
"""


def test_requests_pcaps_identical_across_processes(tmp_path: Path) -> None:
    """Whatever the hash seed and memory layout: the same bytes in another process."""
    root = Path(__file__).resolve().parents[2]
    outputs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(root)}
        r = subprocess.run([sys.executable, "-c", _CROSS_PROCESS, str(tmp_path / hash_seed)],
                           capture_output=True, text=True, timeout=120, env=env, cwd=root)
        assert r.returncode == 0, r.stderr
        outputs.append(r.stdout)
    assert outputs[0] == outputs[1] and ".pcap" in outputs[0]


def smtplib_send(addr: str, message: EmailMessage) -> dict[str, Any]:
    with smtplib.SMTP(addr, 25, timeout=30) as smtp:
        smtp.ehlo()
        return smtp.send_message(message)


def make_email() -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "alice@b", "bob@a", "blocking"
    msg.set_content(pattern_bytes(3, 40_000).hex())
    return msg


def received_body(raw: bytes) -> str:
    parsed = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    return str(parsed.get_content()).replace("\r\n", "\n")  # the wire's line ends


def run_smtp(pcaps: Path, root: Path) -> str:
    async def scenario(a: Any, b: Any) -> str:
        server = await serve_smtp(a, 25, root=root)
        try:
            refused = await b.run_blocking(smtplib_send, "a", make_email())
            assert refused == {}
            return str(server.last_sha256)
        finally:
            await server.close()
    return simulate(scenario, link=LOSSY, pcaps=pcaps)  # type: ignore[no-any-return]


def test_smtplib_unchanged_under_loss_and_deterministic(tmp_path: Path) -> None:
    digest = run_smtp(tmp_path / "1", tmp_path / "box1")
    stored = (tmp_path / "box1" / "000001.eml").read_bytes()
    assert sha256_hex(stored) == digest
    assert received_body(stored) == make_email().get_content()
    assert run_smtp(tmp_path / "2", tmp_path / "box2") == digest
    assert pcap_digests(tmp_path / "1") == pcap_digests(tmp_path / "2")


def test_smtplib_against_aiosmtpd(tmp_path: Path) -> None:
    from aiosmtpd.handlers import Sink
    from aiosmtpd.smtp import SMTP as AioSmtp

    class Keep(Sink):
        def __init__(self) -> None:
            self.got: list[bytes] = []

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            self.got.append(envelope.original_content)
            return "250 OK"

    handler = Keep()

    async def scenario(a: Any, b: Any) -> None:
        server = await a.create_server(lambda: AioSmtp(handler, hostname="a"), None, 25)
        try:
            assert await b.run_blocking(smtplib_send, "a", make_email()) == {}
        finally:
            server.close()
    simulate(scenario, link=LOSSY)
    assert len(handler.got) == 1
    assert received_body(handler.got[0]) == make_email().get_content()


FTP_DATA = pattern_bytes(11, 120_000)


def ftplib_session(addr: str, passive: bool) -> list[Any]:
    with ftplib.FTP(addr, timeout=30) as ftp:
        ftp.login()
        ftp.set_pasv(passive)
        ftp.storbinary("STOR up.bin", __import__("io").BytesIO(FTP_DATA))
        got = bytearray()
        ftp.retrbinary("RETR up.bin", got.extend)
        names = ftp.nlst()
        return [sha256_hex(got), names]


def run_ftp(tree: Path, passive: bool, pcaps: Path) -> list[Any]:
    async def scenario(a: Any, b: Any) -> list[Any]:
        server = await serve_ftp(a, 21, root=tree)
        try:
            return await b.run_blocking(ftplib_session, "a", passive)
        finally:
            await server.close()
    return simulate(scenario, link=LOSSY, pcaps=pcaps)  # type: ignore[no-any-return]


@pytest.mark.parametrize("passive", [True, False], ids=["passive", "active"])
def test_ftplib_unchanged_under_loss_and_deterministic(tmp_path: Path, passive: bool) -> None:
    for run in ("1", "2"):
        tree = tmp_path / f"root{run}"
        tree.mkdir()
        digest, names = run_ftp(tree, passive, tmp_path / run)
        assert digest == sha256_hex(FTP_DATA) == sha256_hex((tree / "up.bin").read_bytes())
        assert "up.bin" in names
    assert pcap_digests(tmp_path / "1") == pcap_digests(tmp_path / "2")


def test_http_server_serves_requests_in_blocking_code(tmp_path: Path) -> None:
    """The stdlib's blocking server too (socketserver's selector, makefile, the Date header
    from time.time): a directory served by http.server, fetched by requests, twice the same."""
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "blob").write_bytes(pattern_bytes(2, 80_000))

    def serve(n: int) -> None:
        handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                    directory=str(tmp_path / "www"))
        with http.server.HTTPServer(("", 8000), handler) as server:
            for _ in range(n):
                server.handle_request()

    def fetch() -> list[Any]:
        with requests.Session() as s:
            got = [s.get("http://a:8000/blob", timeout=10) for _ in range(2)]
        return [(r.status_code, sha256_hex(r.content), r.headers["Date"]) for r in got]

    def run(pcaps: Path) -> list[Any]:
        async def scenario(a: Any, b: Any) -> list[Any]:
            served = asyncio.ensure_future(a.run_blocking(serve, 2))
            await asyncio.sleep(0.001)
            got = await b.run_blocking(fetch)
            await served
            return got
        return simulate(scenario, link=LOSSY, pcaps=pcaps)  # type: ignore[no-any-return]

    first = run(tmp_path / "1")
    digest = sha256_hex(pattern_bytes(2, 80_000))
    assert [(status, sha) for status, sha, _ in first] == [(200, digest)] * 2
    assert first[0][2] == "Thu, 01 Jan 2026 00:00:00 GMT"  # SIM_EPOCH + the virtual clock
    assert run(tmp_path / "2") == first
    assert pcap_digests(tmp_path / "1") == pcap_digests(tmp_path / "2")


# -- partitions (net.partition / net.heal come from the faults work, branch spawn) ---------------

@pytest.mark.skipif(not hasattr(Network, "partition"), reason="net.partition() not merged yet")
def test_requests_retries_through_a_partition_that_heals() -> None:
    def fetch() -> tuple[int, int]:
        failures = 0
        for _ in range(20):
            try:
                r = requests.get("http://a/one", timeout=2)
                return failures, len(r.content)
            except requests.exceptions.RequestException:
                failures += 1
                time.sleep(1)
        return failures, 0

    net = Network(seed=3)
    try:
        a, b = net.add_host("a"), net.add_host("b")
        net.connect("a", "b", delay="2ms")
        net.autoconfigure()

        async def scenario() -> tuple[int, int]:
            server = await serve_http(a, 80, bytes=BODY)
            net.partition(["a"], ["b"])  # type: ignore[attr-defined]
            asyncio.get_running_loop().call_later(5, net.heal)  # type: ignore[attr-defined]
            try:
                return await b.run_blocking(fetch)
            finally:
                await server.close()
        failures, size = net.run(scenario(), until=600)  # type: ignore[misc]
    finally:
        net.close()
    assert failures >= 1 and size == BODY


# -- bad use ------------------------------------------------------------------------------------

def test_bad_use_gets_clear_errors() -> None:
    plain = SansIoHost("x")

    async def scenario(a: Any, b: Any) -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(TypeError, match="needs a callable"):
            await b.run_blocking(42)
        from stacklab.api.blocking import run_blocking
        with pytest.raises(BlockingCallError, match="no stack"):
            await run_blocking(plain, print)

        async def on_the_loop() -> None:
            with pytest.raises(BlockingCallError, match="run_blocking"):
                socket.create_connection(("a", 80))
            with pytest.raises(BlockingCallError, match="run_blocking"):
                time.sleep(1)
            with pytest.raises(BlockingCallError, match="run_blocking"):
                select.select([], [], [], 1)
            # what does not block is the real thing outside the blocking code: the clock,
            # sockets (asyncio makes its self-pipe so), in this thread and in others
            assert time.monotonic() > 1000 * loop.time() + 1
            x, y = socket.socketpair()
            with x, y:
                assert x.family == socket.AF_UNIX and isinstance(x, socket.socket)
            elsewhere: list[Any] = []

            def in_a_thread() -> None:
                with socket.socket() as s:
                    elsewhere.append((type(s).__module__, s.fileno() < 2 ** 30,
                                      time.time() - SIM_EPOCH > 1e6))
            t = threading.Thread(target=in_a_thread)
            t.start()
            t.join()
            assert elsewhere == [("socket", True, True)]

        # while blocking code runs on this loop, the loop's own code may not block
        await asyncio.gather(b.run_blocking(lambda: time.sleep(1)), on_the_loop())
        # the exception of the blocking code is the caller's
        with pytest.raises(ZeroDivisionError):
            await b.run_blocking(lambda: 1 / 0)
    simulate(scenario)
    # and once no blocking code runs, the real modules are back
    assert socket.socket.__module__ == "socket" and time.sleep is _REAL_SLEEP
    assert select.select is _REAL_SELECT and selectors.DefaultSelector is _REAL_SELECTOR


_REAL_SLEEP, _REAL_SELECT, _REAL_SELECTOR = time.sleep, select.select, selectors.DefaultSelector


def test_cancelling_the_caller_unwinds_the_blocking_code() -> None:
    unwound: list[float] = []

    def wait_long(port: int) -> None:
        c = socket.create_connection(("a", port))
        try:
            time.sleep(3600)
        finally:
            unwound.append(time.monotonic())
            c.close()

    async def scenario(a: Any, b: Any) -> float:
        srv = await a.run_blocking(socket.create_server, ("", 0))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(b.run_blocking(wait_long, srv.getsockname()[1]), 5)
        return asyncio.get_running_loop().time()
    assert simulate(scenario) == unwound[0] == 5.0
    assert time.sleep is _REAL_SLEEP


def test_on_a_realtime_stack_time_is_real() -> None:
    """run_blocking on a host a RealtimeStack drives (TAP mode, here with no port): the same
    greenlet, but its clock is the real one."""
    from stacklab.api.host import Host
    from stacklab.api.realtime import RealtimeStack

    host = Host("rt")

    def clocks() -> tuple[float, float]:
        t0 = time.monotonic()
        time.sleep(0.05)  # the real loop's asyncio.sleep
        return time.time(), time.monotonic() - t0

    with RealtimeStack(host, []).start() as stack:
        wall, slept = stack.submit(host.run_blocking(clocks), timeout=10)
    assert abs(wall - _REAL_TIME()) < 5 and 0.05 <= slept < 2


_REAL_TIME = time.time


def test_not_driven_host() -> None:
    from stacklab.api.host import Host

    loose = Host("loose")

    async def main() -> None:
        with pytest.raises(BlockingCallError, match="not driven"):
            await loose.run_blocking(print)
    asyncio.run(main())
