"""HTTP/1.1 server and client (stacklab.apps.http) over the network seam."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from stacklab.apps.common import ServerLimits, pattern_bytes, sha256_hex
from stacklab.apps.http import HttpClient, HttpReply, HttpRequest, http_get, serve_http

from .conftest import raw_exchange


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "www"
    (root / "sub").mkdir(parents=True)
    (root / "hello.txt").write_bytes(b"hello, world\n")
    (root / "big.bin").write_bytes(os.urandom(300_000))
    (root / "sub" / "a b.txt").write_bytes(b"spaced\n")
    (tmp_path / "secret.txt").write_bytes(b"top secret\n")
    (root / "escape").symlink_to(tmp_path / "secret.txt")
    return root


def test_serves_files_head_404_and_listing(env: Any, site: Path) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_http(snet, 0, root=site)
        try:
            big = await http_get(cnet, addr, "/big.bin", port=server.port)
            assert big.status == 200
            assert big.sha256 == sha256_hex((site / "big.bin").read_bytes())
            assert server.last_sha256 == big.sha256
            spaced = await http_get(cnet, addr, "/sub/a%20b.txt", port=server.port)
            assert spaced.body == b"spaced\n"
            head = await http_get(cnet, addr, "/big.bin", port=server.port, method="HEAD")
            assert head.status == 200 and head.body == b""
            assert dict(head.headers)["content-length"] == "300000"
            missing = await http_get(cnet, addr, "/nope", port=server.port)
            assert missing.status == 404
            listing = await http_get(cnet, addr, "/sub/", port=server.port)
            assert listing.status == 200 and b"a b.txt" in listing.body
            redirect = await http_get(cnet, addr, "/sub", port=server.port)
            assert redirect.status == 301 and dict(redirect.headers)["location"] == "/sub/"
        finally:
            await server.close()
    env.run(scenario)


@pytest.mark.parametrize("path", ["/../secret.txt", "/%2e%2e/secret.txt", "/sub/../../secret.txt",
                                  "/escape", "/..%2fsecret.txt", "/%00"])
def test_no_path_escape(env: Any, site: Path, path: str) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_http(snet, 0, root=site)
        try:
            result = await http_get(cnet, addr, path, port=server.port)
            assert result.status in (400, 404)
            assert b"top secret" not in result.body
        finally:
            await server.close()
    env.run(scenario)


def test_deterministic_body_content_length_and_chunked(env: Any) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_http(snet, 0, bytes=200_000)
        try:
            plain = await http_get(cnet, addr, "/any/path.bin", port=server.port)
            assert plain.body == pattern_bytes(0, 200_000)
            assert dict(plain.headers)["content-length"] == "200000"
            chunked = await http_get(cnet, addr, "/x?chunked=1", port=server.port)
            headers = dict(chunked.headers)
            assert headers.get("transfer-encoding") == "chunked"
            assert "content-length" not in headers
            assert chunked.sha256 == plain.sha256 == server.last_sha256
            sized = await http_get(cnet, addr, "/x?bytes=10", port=server.port)
            assert sized.body == pattern_bytes(0, 10)
            bad = await http_get(cnet, addr, "/x?bytes=lots", port=server.port)
            assert bad.status == 400
        finally:
            await server.close()
    env.run(scenario)


def test_keep_alive_reuses_one_connection_and_streams(env: Any) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_http(snet, 0, bytes=1_000_000)
        try:
            async with HttpClient(cnet, addr, server.port) as client:
                digests = []
                for target in ("/a", "/b?chunked=1", "/c"):
                    response = await client.get(target)
                    assert response.status == 200
                    h = hashlib.sha256()
                    chunks = 0
                    async for chunk in response.iter_body():
                        h.update(chunk)
                        chunks += 1
                    assert chunks > 1  # it streamed
                    digests.append(h.hexdigest())
                # an unread body is drained before the next request
                await client.get("/d")
                small = await client.get("/e?bytes=5")
                assert await small.read() == pattern_bytes(0, 5)
                assert client.connections_opened == 1
            assert len(set(digests)) == 1
            assert digests[0] == sha256_hex(pattern_bytes(0, 1_000_000))
        finally:
            await server.close()
    env.run(scenario)


def test_post_content_length_chunked_and_routes(env: Any) -> None:
    async def hello(request: HttpRequest) -> HttpReply:
        return HttpReply(201, b"hi " + request.body)

    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_http(snet, 0, routes={("POST", "/hello"): hello})
        try:
            async with HttpClient(cnet, addr, server.port) as client:
                body = pattern_bytes(7, 50_000)
                response = await client.request("POST", "/upload", body=body)
                text = await response.read()
                assert response.status == 200
                assert text.decode().split() == ["received", "50000", "bytes", "sha256",
                                                 sha256_hex(body)]
                assert server.last_sha256 == sha256_hex(body)
                routed = await client.request("POST", "/hello", body=b"there")
                assert routed.status == 201 and await routed.read() == b"hi there"
                put = await client.request("PUT", "/x", body=b"")
                assert put.status == 405 and put.header("allow") == "GET, HEAD, POST"
                await put.read()
            raw = (b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                   b"Connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            answer = await raw_exchange(cnet, addr, server.port, raw)
            assert answer.startswith(b"HTTP/1.1 200")
            assert sha256_hex(b"hello world").encode() in answer
        finally:
            await server.close()
    env.run(scenario)


def test_expect_100_continue(env: Any) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_http(snet, 0)
        try:
            reader, writer = await cnet.open_connection(addr, server.port)
            writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                         b"Expect: 100-continue\r\n\r\n")
            await writer.drain()
            interim = await asyncio.wait_for(reader.read(100), 5)
            assert interim.startswith(b"HTTP/1.1 100 ")
            writer.write(b"abc")
            answer = await asyncio.wait_for(reader.read(1000), 5)
            assert answer.startswith(b"HTTP/1.1 200") and sha256_hex(b"abc").encode() in answer
            writer.close()
        finally:
            await server.close()
    env.run(scenario)


def test_http10_keep_alive_as_ab_k_sends_it(env: Any) -> None:
    """``ab -k``: HTTP/1.0 requests with ``Connection: keep-alive`` share one connection while
    the answers carry a length (issue 20 item 13); a plain HTTP/1.0 request still closes."""
    ask = (b"GET /a HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: x\r\n"
           b"User-Agent: ApacheBench/2.3\r\n\r\n")

    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_http(snet, 0, bytes=1000)
        try:
            reader, writer = await cnet.open_connection(addr, server.port)
            writer.write(ask + ask)  # pipelined, as a client may
            for _ in range(2):
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                assert head.startswith(b"HTTP/1.1 200 ")
                assert b"\r\nconnection: keep-alive\r\n" in head.lower()
                assert b"\r\ncontent-length: 1000\r\n" in head.lower()
                body = await asyncio.wait_for(reader.readexactly(1000), 5)
                assert body == pattern_bytes(0, 1000)
            writer.write(b"GET /b HTTP/1.0\r\n\r\n")
            last = await asyncio.wait_for(reader.read(), 5)  # ends with the server's FIN
            assert last.startswith(b"HTTP/1.1 200 ") and b"keep-alive" not in last.lower()
            assert last.endswith(pattern_bytes(0, 1000))
            writer.close()
            assert server.requests == 3
        finally:
            await server.close()
    env.run(scenario)


BAD_REQUESTS = [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",                                  # no Host
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(200)),   # a TLS hello
]


@pytest.mark.parametrize("raw", BAD_REQUESTS)
def test_malformed_requests_get_400_and_server_lives(env: Any, raw: bytes) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_http(snet, 0, bytes=10)
        try:
            answer = await raw_exchange(cnet, addr, server.port, raw)
            assert answer.startswith(b"HTTP/1.1 400 ") or answer.startswith(b"HTTP/1.1 505 "), \
                answer[:80]
            ok = await http_get(cnet, addr, "/", port=server.port)
            assert ok.status == 200 and ok.body == pattern_bytes(0, 10)
            assert server.errors.get("internal", 0) == 0
        finally:
            await server.close()
    env.run(scenario)


def test_limits_header_body_and_clients(env: Any) -> None:
    limits = ServerLimits(max_header=2048, max_message=10_000, max_clients=2)

    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_http(snet, 0, bytes=10, limits=limits)
        try:
            huge_header = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n"
            answer = await raw_exchange(cnet, addr, server.port, huge_header)
            assert answer.startswith(b"HTTP/1.1 431 ")
            endless = b"GET /" + b"a" * 100_000
            answer = await raw_exchange(cnet, addr, server.port, endless)
            assert answer.startswith((b"HTTP/1.1 431 ", b"HTTP/1.1 414 "))
            declared = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10001\r\n\r\n"
            answer = await raw_exchange(cnet, addr, server.port, declared)
            assert answer.startswith(b"HTTP/1.1 413 ")
            chunked = (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       + (b"1000\r\n" + b"z" * 4096 + b"\r\n") * 3)
            answer = await raw_exchange(cnet, addr, server.port, chunked)
            assert answer.startswith(b"HTTP/1.1 413 ")
            # two clients hold connections open; the third is told 503
            held = [await cnet.open_connection(addr, server.port) for _ in range(2)]
            await asyncio.sleep(0.05)
            get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
            answer = await raw_exchange(cnet, addr, server.port, get)
            assert answer.startswith(b"HTTP/1.1 503 ")
            assert server.gate.refused == 1
            for _, writer in held:
                writer.close()
            await asyncio.sleep(0.05)
            ok = await http_get(cnet, addr, "/", port=server.port)
            assert ok.status == 200
            assert server.errors.get("internal", 0) == 0
        finally:
            await server.close()
    env.run(scenario)


def test_client_reconnects_when_server_closes(env: Any) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_http(snet, 0, bytes=100)
        try:
            async with HttpClient(cnet, addr, server.port) as client:
                first = await client.request("GET", "/", headers=[("Connection", "close")])
                assert await first.read() == pattern_bytes(0, 100)
                second = await client.get("/")
                assert await second.read() == pattern_bytes(0, 100)
                assert client.connections_opened == 2
        finally:
            await server.close()
    env.run(scenario)


def test_http_get_parses_urls(env: Any) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_http(snet, 0, bytes=33)
        try:
            result = await http_get(cnet, None, f"http://{addr}:{server.port}/f?bytes=3")
            assert result.ok and result.body == pattern_bytes(0, 3)
        finally:
            await server.close()
    env.run(scenario)
