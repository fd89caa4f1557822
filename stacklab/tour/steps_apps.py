"""The tour's application chapter: HTTP, SSH, FTP and SMTP between a client and a server, with
the data segments labelled by what they carry."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from stacklab.trace.diagram import Arrow, Row
from stacklab.trace.stats import connection_stats

from .lab import Lab, addr, cut, lab_step, tcp_view
from .registry import StepResult

_LINES = ["client", "server"]  # every app step runs between these two hosts (Lab.pair)


def _text_of(payload: bytes) -> str:
    """The first line of a payload when it is text; ``<N bytes of binary>`` otherwise."""
    line = payload[:120].split(b"\n")[0].rstrip(b"\r")
    if len(line) >= 3 and all(32 <= ch < 127 for ch in line):
        return line.decode("ascii")
    return f"<{len(payload)} bytes, binary>"


def _app_rows(lab: Lab, start: float) -> list[Row]:
    """TCP rows between client and server from ``start`` on, data segments labelled with what
    they carry, bare ACKs left out."""
    payloads: dict[str, list[bytes]] = {}
    for _, d, f in lab.frames:
        v = tcp_view(f)
        if v is None:
            continue
        payloads.setdefault(d, []).append(bytes(v.payload) if v.payload_len else b"")
    index: dict[str, int] = {}
    rows: list[Row] = []
    for r in lab.rows(_LINES, kinds={"tcp"}):
        if isinstance(r, Arrow):
            key = f"{r.src}>{r.dst}"
            i = index.get(key, 0)
            index[key] = i + 1
            data = payloads.get(key, [])[i] if i < len(payloads.get(key, [])) else b""
            if r.time < start:
                continue
            if data:
                r = Arrow(r.t_send, r.t_recv, r.src, r.dst, f"len {len(data)}: {_text_of(data)}")
            elif "[S" not in r.label and "F" not in r.label.split("]")[0]:
                continue  # bare ACKs
        elif r.time < start:
            continue
        rows.append(r)
    return rows


def _wire_text(lab: Lab, direction: str) -> bytes:
    """Every TCP payload byte sent in ``direction``, in the order sent."""
    return b"".join(bytes(v.payload) for _, d, f in lab.frames
                    if d == direction and (v := tcp_view(f)) is not None and v.payload_len)


def _diagram(lab: Lab, res: StepResult, limit: int, title: str) -> None:
    lab.diagram(res, cut(_app_rows(lab, 1.0), limit), _LINES, title)


@lab_step("http")
def http_step(lab: Lab, res: StepResult) -> None:
    from stacklab.apps.http import http_get, serve_http

    c, s = lab.pair(delay="5ms")
    out: dict[str, Any] = {}

    async def main() -> None:
        server = await serve_http(s, 80, bytes=3000)
        await asyncio.sleep(1.0)
        out["r"] = await http_get(c, addr(s), "/hello.txt", 80)
        await server.close()

    lab.run(main(), until=30)
    r = out["r"]
    up = _wire_text(lab, "client>server")
    down = _wire_text(lab, "server>client")
    req_lines = up.split(b"\r\n\r\n")[0].decode().split("\r\n")
    res.show("request line", req_lines[0])
    res.show("request headers", [h.split(":")[0] for h in req_lines[1:]])
    res.show("status line", down.split(b"\r\n")[0].decode())
    res.keep("status", r.status)
    res.show("response body", len(r.body), f"{len(r.body)} bytes, sha256 {r.sha256[:16]}...")
    res.show("body readable on the wire", r.body[:64] in down)
    _diagram(lab, res, 24, "HTTP/1.1 GET")


@lab_step("ssh")
def ssh_step(lab: Lab, res: StepResult) -> None:
    from stacklab.apps.ssh import serve_ssh, ssh_exec

    c, s = lab.pair(delay="5ms")
    out: dict[str, Any] = {}
    secret = "echo the-secret-word-is-swordfish"

    async def main() -> None:
        server = await serve_ssh(s, 22)
        await asyncio.sleep(1.0)
        out["r"] = await ssh_exec(c, addr(s), 22, secret, host_key=server.host_public_key)
        await server.close()

    lab.run(main(), until=60)
    r = out["r"]
    up = _wire_text(lab, "client>server")
    down = _wire_text(lab, "server>client")
    banners = [x.split(b"\r\n")[0].decode() for x in (up, down)]
    res.show("client banner (clear text)", banners[0])
    res.show("server banner (clear text)", banners[1])
    res.show("command's output", r.stdout.decode().strip())
    res.keep("exit status", r.exit_status)
    res.show("output visible on the wire", b"swordfish" in up + down)
    res.show("bytes on the wire after the banners",
             len(up) + len(down) - sum(len(b) + 2 for b in banners))
    _diagram(lab, res, 20, "SSH: all ciphertext")


@lab_step("ftp")
def ftp_step(lab: Lab, res: StepResult) -> None:
    from stacklab.apps.ftp import ftp_get, serve_ftp

    c, s = lab.pair(delay="5ms")
    out: dict[str, Any] = {}

    async def main() -> None:
        server = await serve_ftp(s, 21, bytes=5000)
        await asyncio.sleep(1.0)
        out["r"] = await ftp_get(c, addr(s), 21, "/file.bin", mode="passive")
        await server.close()

    lab.run(main(), until=60)
    r = out["r"]
    conns = [x for x in connection_stats(lab.net.nodes, lab.events) if x.node == "client"]
    control = [x for x in conns if x.remote.endswith(":21")]
    data_c = [x for x in conns if not x.remote.endswith(":21")]
    up = _wire_text(lab, "client>server").decode("latin-1")
    res.show("connections", len(conns))
    res.show("control", f"{control[0].local} > {control[0].remote}" if control else None)
    res.show("data (passive)", f"{data_c[0].local} > {data_c[0].remote}" if data_c else None)
    res.show("commands sent", [ln.split(" ")[0] for ln in up.split("\r\n") if ln[:4].isalpha()])
    res.show("file", r.bytes, f"{r.bytes} bytes, sha256 {r.sha256[:16]}...")
    res.show("bytes on the data connection", data_c[0].bytes_received if data_c else None)
    _diagram(lab, res, 30, "FTP: control and data")


@lab_step("smtp")
def smtp_step(lab: Lab, res: StepResult) -> None:
    from stacklab.apps.smtp import make_message, send_mail, serve_smtp

    c, s = lab.pair(delay="5ms")
    out: dict[str, Any] = {}
    message = make_message("alice@client.stacklab", "bob@server.stacklab", 600)

    async def main() -> None:
        server = await serve_smtp(s, 25)
        await asyncio.sleep(1.0)
        out["r"] = await send_mail(c, addr(s), 25, "alice@client.stacklab",
                                   "bob@server.stacklab", message)
        out["stored"] = server.last_sha256
        await server.close()

    lab.run(main(), until=60)
    r = out["r"]
    up = _wire_text(lab, "client>server").decode("latin-1")
    down = _wire_text(lab, "server>client").decode("latin-1")
    stored_ok = out["stored"] == hashlib.sha256(message).hexdigest()
    res.show("client commands",
             [ln.split(":")[0].split(" ")[0] if not ln.startswith(("MAIL", "RCPT"))
              else " ".join(ln.split(" ")[:2]).split(":")[0]
              for ln in up.split("\r\n") if ln[:4].isupper() and ln[:4].isalpha()])
    res.show("server replies",
             [ln[:3] for ln in down.split("\r\n") if ln[:3].isdigit() and ln[3:4] == " "])
    res.show("message", stored_ok, f"{len(message)} bytes; stored copy sha256 matches: "
             f"{'yes' if stored_ok else 'NO'}", key="stored intact")
    res.show("final reply", f"{r.code} {r.reply}"[:50])
    _diagram(lab, res, 30, "SMTP: one message")
