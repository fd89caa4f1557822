"""The secure forms of the applications (stacklab.apps.tls, tlsca): HTTPS, SMTP STARTTLS and
implicit TLS, FTPS explicit and implicit, on the kernel's loopback and on the simulator (a clean
and a lossy small-MTU link): data integrity, certificates checked against the scenario CA, and
clear errors for a wrong name or an untrusted issuer."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest

from stacklab.apps.common import pattern_bytes, sha256_hex
from stacklab.apps.ftp import FtpClient, FtpError, ftp_get, ftp_put, serve_ftp
from stacklab.apps.http import HttpClient, http_get, serve_http
from stacklab.apps.smtp import SmtpError, make_message, send_mail, serve_smtp
from stacklab.apps.tls import TlsError, start_tls
from stacklab.apps.tlsca import TinyCa, scenario_ca

from .conftest import LoopbackEnv, raw_exchange
from .test_sim import LINKS, SimEnv

CA = scenario_ca("tests")
OTHER = TinyCa("someone else")


def names(addr: str) -> ssl.SSLContext:
    """The server context for the test server at ``addr`` (names "server" and the address)."""
    return CA.issue("server", ips=[addr]).server_context()


def _env(name: str) -> Any:
    return LoopbackEnv() if name == "loopback" else SimEnv(LINKS[name.removeprefix("sim-")])


@pytest.fixture(params=["loopback", "sim-clean", "sim-lossy-576"])
def tenv(request: pytest.FixtureRequest) -> Any:
    """For transfers big enough that the lossy link surely loses some of their frames."""
    return _env(request.param)


@pytest.fixture(params=["loopback", "sim-clean"])
def qenv(request: pytest.FixtureRequest) -> Any:
    """For short exchanges."""
    return _env(request.param)


# -- the CA ------------------------------------------------------------------------------------
def test_ca_is_deterministic_and_names_what_clients_check() -> None:
    from cryptography import x509

    again = TinyCa("tests")
    assert again.cert_pem == CA.cert_pem
    cred = CA.issue("b", ips=["10.0.0.2", "fd00::2"])
    assert cred == again.issue("b", ips=["10.0.0.2", "fd00::2"])
    cert = x509.load_pem_x509_certificate(cred.cert_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["b"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.2", "fd00::2"]
    assert cert.issuer == x509.load_pem_x509_certificate(CA.cert_pem).subject
    assert TinyCa("x").cert_pem != CA.cert_pem
    with pytest.raises(ValueError):
        CA.issue()


# -- HTTPS -------------------------------------------------------------------------------------
def test_https_body_integrity_and_keepalive(tenv: Any) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_http(snet, 0 if isinstance(tenv, LoopbackEnv) else 443,
                                  bytes=200_000, tls=names(addr))
        try:
            async with HttpClient(cnet, addr, server.port, tls=CA.client_context()) as client:
                for target in ("/a", "/b?chunked=1"):
                    response = await client.get(target)
                    body = await response.read()
                    assert response.status == 200
                    assert body == pattern_bytes(0, 200_000)
                upload = pattern_bytes(3, 150_000)
                posted = await client.request("POST", "/up", body=upload)
                assert (await posted.read()).decode().endswith(sha256_hex(upload) + "\n")
                assert client.connections_opened == 1
                tls = client._writer
                assert tls.get_extra_info("version") in ("TLSv1.3", "TLSv1.2")
                assert tls.get_extra_info("peercert")["subject"] == ((("commonName",
                                                                        "server"),),)
            assert server.errors == {}
        finally:
            await server.close()
    tenv.run(scenario)


def test_https_url_by_name_and_the_plaintext_client_gets_nothing(qenv: Any) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_http(snet, 0, bytes=1000, tls=names(addr))
        try:
            result = await http_get(cnet, None, f"https://{addr}:{server.port}/x",
                                    tls=CA.client_context())
            assert result.ok and result.body == pattern_bytes(0, 1000)
            # an http:// client on the TLS port: no HTTP answer comes back
            raw = await raw_exchange(cnet, addr, server.port, b"GET / HTTP/1.1\r\n\r\n",
                                     timeout=5.0)
            assert b"HTTP/1.1" not in raw
            await asyncio.sleep(0.5)
            assert server.errors.get("TlsError") == 1
        finally:
            await server.close()
    qenv.run(scenario)


@pytest.mark.parametrize("case", ["wrong-name", "untrusted"])
def test_https_refuses_a_wrong_name_or_an_untrusted_issuer(qenv: Any, case: str) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_http(snet, 0, tls=names(addr))
        try:
            client_ctx = OTHER.client_context() if case == "untrusted" else CA.client_context()
            hostname = "www.example.org" if case == "wrong-name" else None
            with pytest.raises(TlsError) as err:
                await http_get(cnet, addr, "/", port=server.port, tls=client_ctx,
                               server_hostname=hostname)
            expected = ("Hostname mismatch, certificate is not valid for 'www.example.org'."
                        if case == "wrong-name" else "unable to get local issuer certificate")
            assert str(err.value) == f"TLS certificate verify failed: {expected}"
            await asyncio.sleep(0.5)
            assert server.errors.get("TlsError") == 1  # the server saw the alert
            assert server.requests == 0
        finally:
            await server.close()
    qenv.run(scenario)


# -- SMTP --------------------------------------------------------------------------------------
def test_smtp_starttls_delivers_intact_and_ehlo_starts_over(tenv: Any) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_smtp(snet, 0, tls=names(addr), require_tls=True)
        try:
            message = make_message("a@x", "b@y", 120_000)
            result = await send_mail(cnet, addr, server.port, "a@x", "b@y", message,
                                     tls=CA.client_context())
            assert result.ok and server.mailbox.messages[0].sha256 == result.sha256
            # without TLS the same server refuses the transaction
            with pytest.raises(SmtpError) as err:
                await send_mail(cnet, addr, server.port, "a@x", "b@y", message)
            assert err.value.code == 530
            assert len(server.mailbox.messages) == 1
        finally:
            await server.close()
    tenv.run(scenario)


def test_smtp_starttls_is_offered_once_and_drops_injected_plaintext(env: Any) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_smtp(snet, 0, tls=names(addr))
        try:
            reader, writer = await cnet.open_connection(addr, server.port)
            await reader.readline()
            writer.write(b"EHLO c\r\n")
            ehlo = b""
            while not ehlo.endswith(b"250 HELP\r\n"):
                ehlo += await reader.read(1000)
            assert b"250-STARTTLS\r\n" in ehlo
            # the STARTTLS injection: a command pipelined in the clear after STARTTLS
            writer.write(b"STARTTLS\r\nMAIL FROM:<evil@x>\r\n")
            assert (await reader.readline()).startswith(b"220 ")
            tls = await start_tls(reader, writer, CA.client_context(), server_side=False,
                                  server_hostname=addr)
            tls.write(b"RCPT TO:<b@y>\r\n")  # would be accepted had MAIL FROM counted
            assert (await tls.read()).startswith(b"503 ")
            tls.write(b"EHLO c\r\n")
            again = b""
            while not again.endswith(b"250 HELP\r\n"):
                again += await tls.read()
            assert b"STARTTLS" not in again
            tls.write(b"STARTTLS\r\n")
            assert (await tls.read()).startswith(b"503 ")
            tls.close()
            await asyncio.sleep(0.1)
            assert server.errors.get("starttls_plaintext_dropped") == 1
        finally:
            await server.close()
    env.run(scenario)


def test_smtp_implicit_tls_and_a_client_that_insists_on_starttls(env: Any) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        implicit = await serve_smtp(snet, 0, tls=names(addr), tls_mode="implicit")
        plain = await serve_smtp(snet, 0)
        try:
            message = make_message("a@x", "b@y", 5000)
            result = await send_mail(cnet, addr, implicit.port, "a@x", "b@y", message,
                                     tls=CA.client_context(), tls_mode="implicit")
            assert result.ok and implicit.mailbox.messages[0].sha256 == result.sha256
            with pytest.raises(SmtpError, match="does not offer STARTTLS"):
                await send_mail(cnet, addr, plain.port, "a@x", "b@y", message,
                                tls=CA.client_context())
            assert plain.mailbox.messages == []
            with pytest.raises(TlsError, match="Hostname mismatch"):
                await send_mail(cnet, addr, implicit.port, "a@x", "b@y", message,
                                tls=CA.client_context(), tls_mode="implicit",
                                server_hostname="mx.example.org")
        finally:
            await implicit.close()
            await plain.close()
    env.run(scenario)


# -- FTPS --------------------------------------------------------------------------------------
@pytest.mark.parametrize("tls_mode", ["explicit", "implicit"])
@pytest.mark.parametrize("mode", ["passive", "active"])
def test_ftps_get_put_and_listing(tenv: Any, tls_mode: str, mode: str) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_ftp(snet, 0, bytes=150_000, tls=names(addr), tls_mode=tls_mode,
                                 require_tls=True)
        try:
            ctx = CA.client_context()
            got = await ftp_get(cnet, addr, server.port, "/f.bin", mode=mode, tls=ctx,
                                tls_mode=tls_mode)
            assert got.data == pattern_bytes(0, 150_000)
            upload = pattern_bytes(7, 120_000)
            put = await ftp_put(cnet, addr, server.port, "/up.bin", upload, mode=mode,
                                tls=ctx, tls_mode=tls_mode)
            assert server.last_sha256 == put.sha256 == sha256_hex(upload)
            async with FtpClient(cnet, addr, server.port, mode=mode, tls=ctx,
                                 tls_mode=tls_mode) as client:
                await client.login()
                assert client.private_data
                assert "up.bin" in await client.nlst("/")
                assert await client.retr("/up.bin") == upload
                # the data connections resumed the control connection's TLS session
                assert client.data_sessions_reused == 2
            assert server.errors == {}
        finally:
            await server.close()
    tenv.run(scenario)


def test_ftps_policy_and_command_errors(env: Any) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_ftp(snet, 0, tls=names(addr), require_tls=True)
        try:
            client = FtpClient(cnet, addr, server.port)
            await client.connect()
            assert "AUTH TLS" in (await client.command("FEAT"))[1]
            assert (await client.command("PBSZ 0"))[0] == 503    # before AUTH
            with pytest.raises(FtpError) as err:
                await client.login()
            assert err.value.code == 530                          # no cleartext login
            await client.quit()
            async with FtpClient(cnet, addr, server.port, tls=CA.client_context()) as secure:
                assert (await secure.command("AUTH TLS"))[0] == 503  # already
                assert (await secure.command("PROT P"))[0] == 503    # PBSZ first
                assert (await secure.command("PBSZ 0"))[0] == 200
                assert (await secure.command("PROT S"))[0] == 536
                assert (await secure.command("PROT C"))[0] == 534    # required private
                assert (await secure.command("PROT X"))[0] == 504
            with pytest.raises(TlsError, match="unable to get local issuer"):
                await ftp_get(cnet, addr, server.port, "/f", tls=OTHER.client_context())
        finally:
            await server.close()
    env.run(scenario)


def test_ftp_without_tls_answers_auth_502_and_the_client_leaves(qenv: Any) -> None:
    async def scenario(snet: Any, cnet: Any, addr: str) -> None:
        server = await serve_ftp(snet, 0 if isinstance(qenv, LoopbackEnv) else 21)
        try:
            with pytest.raises(FtpError) as err:
                await ftp_get(cnet, addr, server.port, "/f", tls=CA.client_context())
            assert err.value.code == 502
            for _ in range(100):  # the client said QUIT and closed: the session ends
                if server.gate.active == 0:
                    break
                await asyncio.sleep(0.05)
            assert server.gate.active == 0
        finally:
            await server.close()
    qenv.run(scenario)


# -- the handshake in the diagram --------------------------------------------------------------
def _https_run() -> list[tuple[float, str, str]]:
    from stacklab import Network
    from stacklab.trace.diagram import Arrow, Note, from_trace
    from stacklab.trace.events import Tracer

    tracer = Tracer()
    net = Network(seed=3, tracer=tracer)
    try:
        a, b = net.add_host("a"), net.add_host("b")
        net.connect("a", "b", mtu=1500, delay="2ms")
        net.autoconfigure()
        addr = a.address(4)

        async def main() -> None:
            server = await serve_http(a, 443, bytes=3000, tls=names(addr))
            await http_get(b, addr, "/", port=443, tls=CA.client_context())
            await server.close()
        net.run(main(), until=60)
    finally:
        net.close()
    return [(row.time, row.src if isinstance(row, Arrow) else row.node,
             row.label if isinstance(row, Arrow) else row.text)
            for row in from_trace(tracer.events, ["b", "a"], kinds={"tcp"})
            if isinstance(row, Arrow | Note)]


def test_the_handshake_is_named_in_the_diagram_and_the_run_is_repeatable() -> None:
    rows = _https_run()
    labels = [(node, text) for _, node, text in rows]
    hello = next(i for i, (node, text) in enumerate(labels) if text.endswith("TLS ClientHello"))
    assert labels[hello][0] == "b"
    server_hello = next(i for i, (_, text) in enumerate(labels) if "TLS ServerHello" in text)
    assert server_hello > hello and labels[server_hello][0] == "a"
    notes = [(node, text) for node, text in labels if text.startswith("TLS TLSv1.3")]
    assert [node for node, _ in notes] == ["b", "a"]  # the client knows first
    # Ed25519 certificates and fixed-size key shares: the same sizes at the same times in
    # every run, though the bytes (random hellos, keys) differ
    assert _https_run() == rows
