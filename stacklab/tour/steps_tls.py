"""The tour's secure-applications chapter: HTTPS between a client and a server, the TLS
handshake named on the diagram's arrows, the version and cipher noted on each lifeline, the
certificate from the scenario's tiny CA, and a client that checks the wrong name."""

from __future__ import annotations

import asyncio
from typing import Any

from stacklab.trace.diagram import Arrow, Note, Row

from .lab import Lab, addr, cut, lab_step, tcp_view
from .registry import StepResult

_LINES = ["client", "server"]

def _rows(lab: Lab, start: float) -> list[Row]:
    """TCP rows from ``start`` on without the bare ACKs, and the TLS notes."""
    rows: list[Row] = []
    for r in lab.rows(_LINES, kinds={"tcp"}, start=start):
        if isinstance(r, Arrow) and r.label.startswith("[.]") and " len " not in r.label:
            continue  # bare ACKs
        rows.append(r)
    return rows


@lab_step("tls")
def tls_step(lab: Lab, res: StepResult) -> None:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    from stacklab.apps.http import http_get, serve_http
    from stacklab.apps.tls import TlsError
    from stacklab.apps.tlsca import TinyCa

    c, s = lab.pair(delay="5ms")
    ca = TinyCa("tour")
    out: dict[str, Any] = {}

    cred = ca.issue("server", ips=[addr(s)])

    async def main() -> None:
        server = await serve_http(s, 443, bytes=3000, tls=cred.server_context())
        await asyncio.sleep(1.0)
        out["r"] = await http_get(c, "server", "/secret.txt", 443, tls=ca.client_context())
        out["ended"] = lab.net.now
        try:
            await http_get(c, addr(s), "/", 443, tls=ca.client_context(),
                           server_hostname="www.example.org")
        except TlsError as exc:
            out["wrong"] = str(exc)
        await server.close()

    lab.run(main(), until=30)
    r = out["r"]
    rows = _rows(lab, 1.0)
    first = [row for row in rows if row.time <= out["ended"]]
    records = [row.label.partition(" TLS ")[2] for row in first
               if isinstance(row, Arrow) and " TLS " in row.label]
    notes = [row for row in first if isinstance(row, Note) and row.text.startswith("TLS ")]
    on_wire = b"".join(bytes(v.payload) for _, d, f in lab.frames
                       if d == "server>client" and (v := tcp_view(f)) is not None)
    res.show("TLS records, in order", records[:4])
    res.show("negotiated", notes[0].text.removeprefix("TLS ") if notes else None)
    res.keep("notes on", [n.node for n in notes])
    cert = x509.load_pem_x509_certificate(cred.cert_pem)
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    issuer = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    res.show("certificate", (cn, issuer), f"CN={cn!s}, issued by {issuer!s}, "
             f"{type(cert.public_key()).__name__.removesuffix('PublicKey')} key")
    res.show("response", r.status, f"{r.status}, {len(r.body)} bytes, sha256 {r.sha256[:16]}...")
    res.show("body readable on the wire", r.body[:64] in on_wire)
    res.show("wrong name", out.get("wrong", "accepted?!").removeprefix("TLS "),
             key="wrong name")
    lab.diagram(res, cut(first, 22), _LINES, "HTTPS: the TLS 1.3 handshake")
