"""SMTP server and client (stacklab.apps.smtp) over the network seam."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from stacklab.apps.common import BufferedStream, ServerLimits, sha256_hex, text_body
from stacklab.apps.smtp import (
    SmtpError,
    dot_stuff,
    make_message,
    normalize_message,
    send_mail,
    serve_smtp,
)


class Dialog:
    """A raw SMTP conversation: send a line, get (code, last reply line)."""

    def __init__(self, reader: Any, writer: Any) -> None:
        self.stream = BufferedStream(reader, timeout=5)
        self.writer = writer

    @classmethod
    async def open(cls, net: Any, addr: str, port: int) -> Dialog:
        dialog = cls(*await net.open_connection(addr, port))
        assert (await dialog.reply())[0] == 220
        return dialog

    async def reply(self) -> tuple[int, str]:
        while True:
            line = (await self.stream.readline(4096)).decode()
            if not line:
                return 0, "closed"
            if line[3] == " ":
                return int(line[:3]), line[4:].strip()

    async def send(self, line: bytes | str) -> tuple[int, str]:
        self.writer.write(line.encode() + b"\r\n" if isinstance(line, str) else line)
        await self.writer.drain()
        return await self.reply()


def test_message_roundtrip_to_directory(env: Any, tmp_path: Path) -> None:
    box = tmp_path / "mail"

    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_smtp(snet, 0, root=box)
        try:
            message = make_message("alice@a.example", "bob@b.example", 20_000)
            result = await send_mail(cnet, addr, server.port, "alice@a.example",
                                     ["bob@b.example", "carol@b.example"], message)
            assert result.ok and result.code == 250
            assert result.sha256 == sha256_hex(message) == server.last_sha256
            stored = sorted(box.glob("*.eml"))
            assert [p.name for p in stored] == ["000001.eml"]
            assert stored[0].read_bytes() == message
            envelope = server.mailbox.messages[0]
            assert envelope.mail_from == "alice@a.example"
            assert envelope.rcpt_to == ["bob@b.example", "carol@b.example"]
            second = await send_mail(cnet, addr, server.port, "", "bob@b.example", b"x\n")
            assert second.ok and (box / "000002.eml").read_bytes() == b"x\r\n"
        finally:
            await server.close()
    env.run(scenario)


def test_dot_stuffing_both_ways(env: Any) -> None:
    tricky = b".starts with dot\r\n..two dots\r\n.\r\nmiddle . dot\r\n.\r\n"

    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_smtp(snet, 0)
        try:
            result = await send_mail(cnet, addr, server.port, "a@x", "b@y", tricky)
            assert result.ok
            assert server.mailbox.messages[0].data == tricky
            # by hand: the server undoes stuffing exactly once
            d = await Dialog.open(cnet, addr, server.port)
            await d.send("HELO me")
            await d.send("MAIL FROM:<a@x>")
            await d.send("RCPT TO:<b@y>")
            assert (await d.send("DATA"))[0] == 354
            code, _ = await d.send(b"..one\r\n...two\r\nplain\r\n.\r\n")
            assert code == 250
            assert server.mailbox.messages[1].data == b".one\r\n..two\r\nplain\r\n"
            d.writer.close()
        finally:
            await server.close()
    env.run(scenario)
    assert dot_stuff(normalize_message(b".a\n.\nb")) == b"..a\r\n..\r\nb\r\n"


def test_text_body_is_exact_and_exercises_dots() -> None:
    for n in (2, 3, 77, 78, 79, 80, 1000, 12345):
        body = text_body(n)
        assert len(body) == n and body.endswith(b"\r\n")
        assert normalize_message(body) == body
    assert b"\r\n." in text_body(2000)


def test_sequence_and_syntax_errors(env: Any) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_smtp(snet, 0)
        try:
            d = await Dialog.open(cnet, addr, server.port)
            assert (await d.send("MAIL FROM:<a@x>"))[0] == 503      # before EHLO
            assert (await d.send("EHLO"))[0] == 501                 # no domain
            assert (await d.send("EHLO client.example"))[0] == 250
            assert (await d.send("RCPT TO:<b@y>"))[0] == 503        # before MAIL
            assert (await d.send("DATA"))[0] == 503
            assert (await d.send("MAIL FROM:a@x"))[0] == 501        # no brackets
            assert (await d.send("MAIL FROM:<a@x> SIZE=abc"))[0] == 501
            assert (await d.send("MAIL FROM:<a@x> FOO=1"))[0] == 555
            assert (await d.send("MAIL FROM:<a@x>"))[0] == 250
            assert (await d.send("MAIL FROM:<a@x>"))[0] == 503      # nested MAIL
            assert (await d.send("DATA"))[0] == 503                 # no RCPT yet
            assert (await d.send("RCPT TO:<>"))[0] == 501
            assert (await d.send("RCPT TO:<b@y>"))[0] == 250
            assert (await d.send("DATA now"))[0] == 501
            assert (await d.send("RSET"))[0] == 250
            assert (await d.send("DATA"))[0] == 503                 # RSET ended it
            assert (await d.send("NOOP"))[0] == 250
            assert (await d.send("VRFY bob"))[0] == 252
            assert (await d.send("XYZZY"))[0] == 500
            assert (await d.send("STARTTLS"))[0] == 502
            assert (await d.send(b"\xff\xfe\r\n"))[0] == 500
            assert (await d.send("QUIT"))[0] == 221
            assert (await d.reply())[0] == 0                        # closed after QUIT
            assert server.mailbox.messages == []
            assert server.errors.get("internal", 0) == 0
        finally:
            await server.close()
    env.run(scenario)


def test_limits_line_size_clients_and_errors(env: Any) -> None:
    limits = ServerLimits(max_line=1000, max_message=5000, max_clients=2)

    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_smtp(snet, 0, limits=limits)
        try:
            d = await Dialog.open(cnet, addr, server.port)
            assert (await d.send("EHLO x"))[0] == 250
            assert (await d.send("NOOP " + "a" * 600))[0] == 500    # command line > 512
            assert (await d.send("NOOP"))[0] == 250                 # and the session goes on
            assert (await d.send("MAIL FROM:<a@x> SIZE=5001"))[0] == 552
            # too big without SIZE: discovered during DATA, whole message discarded
            await d.send("MAIL FROM:<a@x>")
            await d.send("RCPT TO:<b@y>")
            await d.send("DATA")
            assert (await d.send(b"line\r\n" * 1000 + b".\r\n"))[0] == 552
            # a text line over the limit
            await d.send("MAIL FROM:<a@x>")
            await d.send("RCPT TO:<b@y>")
            await d.send("DATA")
            assert (await d.send(b"x" * 2000 + b"\r\n.\r\n"))[0] == 500
            assert server.mailbox.messages == []
            # a third concurrent client is turned away with 421
            other = await Dialog.open(cnet, addr, server.port)
            r, w = await cnet.open_connection(addr, server.port)
            assert (await Dialog(r, w).reply())[0] == 421
            assert server.gate.refused == 1
            other.writer.close()
            # a client that sends only garbage is cut off
            for _ in range(25):
                code, _ = await d.send("BOGUS")
                if code != 500:
                    break
            assert code == 421
            assert server.errors.get("internal", 0) == 0
        finally:
            await server.close()
    env.run(scenario)


def test_client_reports_refusal(env: Any) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_smtp(snet, 0, limits=ServerLimits(max_message=100))
        try:
            with pytest.raises(SmtpError) as info:
                await send_mail(cnet, addr, server.port, "a@x", "b@y", b"z" * 200)
            assert info.value.code == 552
        finally:
            await server.close()
    env.run(scenario)


def test_idle_client_gets_421(env: Any) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_smtp(snet, 0, limits=ServerLimits(idle_timeout=0.2))
        try:
            d = await Dialog.open(cnet, addr, server.port)
            await asyncio.sleep(0.4)
            assert (await d.reply())[0] == 421
        finally:
            await server.close()
    env.run(scenario)
