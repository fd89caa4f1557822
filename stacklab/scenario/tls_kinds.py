"""Scenario app kinds for the secure forms of the applications (issue 21 §9), listed in
:data:`TLS_APP_KINDS` for :mod:`stacklab.scenario.registry`.

Certificates come from the scenario's tiny CA (:func:`stacklab.apps.tlsca.scenario_ca`):
``ca`` names it (default "scenario"; servers and clients naming the same CA trust each other,
``ca = "other"`` on a server makes a certificate its clients will not trust). A server's
certificate names its node and the addresses the node has when the server starts; a client
checks the certificate against ``server_name`` (default ``to``). A failed check ends the
client with ``ok: false`` and OpenSSL's reason (``Hostname mismatch``, ``unable to get local
issuer certificate``).

* ``https-server``: as ``http-server``, port 443
* ``https-get``: as ``http-get``, port 443
* ``ftps-server``: as ``ftp-server``; ``tls`` = "explicit" (AUTH TLS, port 21, the default)
  or "implicit" (port 990)
* ``ftps-get`` / ``ftps-put``: as ``ftp-get``/``ftp-put``, ``tls`` as the server's; data
  connections always private (PROT P)
* ``smtps-server``: as ``smtp-server``; ``tls`` = "starttls" (port 25, the default; plaintext
  mail refused) or "implicit" (port 465)
* ``smtps-send``: as ``smtp-send``, ``tls`` as the server's
* ``sftp-get`` / ``sftp-put``: ``to``, ``port`` (22), ``path``, ``bytes`` (put only, 100000),
  ``user``/``password`` ("stacklab"), against an ``ssh-server`` with a ``root``
* ``ssh-forward`` (a daemon): ``ssh -L listen:dest:dest_port`` through the SSH server ``to``
  (``port`` 22, ``user``/``password``): the node listens on ``listen`` and every connection
  rides the SSH connection to ``dest`` (default ``to``) : ``dest_port`` as the server sees it
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from stacklab.apps.common import pattern_bytes, sha256_hex
from stacklab.net.units import ParamError, parse_int

from . import params as p
from .app_kinds import (
    FtpGetApp,
    FtpPutApp,
    FtpServerApp,
    HttpGetApp,
    HttpServerApp,
    SmtpSendApp,
    SmtpServerApp,
    _ClientApp,
    _size,
    _text,
)
from .params import Param

__all__ = ["TLS_APP_KINDS"]


# the reference entries of the keys these kinds add (docs/scenarios.md)
CA = Param("the scenario CA that signs the server's certificate and the client trusts", "text",
           "scenario")
SERVER_NAME = Param("the name the client checks in the server's certificate (default: `to`)",
                    "text")
FTP_TLS = Param("\"explicit\" (AUTH TLS on the control connection) or \"implicit\" (TLS from "
                "the first byte, port 990)", "text", "explicit")
SMTP_TLS = Param("\"starttls\" (RFC 3207) or \"implicit\" (TLS from the first byte, port 465)",
                 "text", "starttls")
SSH_PORT = p.port_param(22)
USER = Param("the SSH login", "text", "stacklab")
PASSWORD = Param("its password", "text", "stacklab")
PATH = Param("the file, relative to the server's root", "text", required=True)


def _ca(params: dict[str, Any]) -> str:
    return _text(params, "ca", "scenario")


def _tls_mode(params: dict[str, Any], modes: tuple[str, str]) -> str:
    mode = params.get("tls", modes[0])
    if mode not in modes:
        raise ParamError("tls", f'expected "{modes[0]}" or "{modes[1]}", got {mode!r}')
    return str(mode)


def _server_context(node: Any, ca: str) -> ssl.SSLContext:
    from stacklab.apps.tlsca import scenario_ca
    return scenario_ca(ca).issue(node.name, ips=node.addresses()).server_context()


class _TlsClient:
    """What every secure client adds: the CA it trusts and the name it checks."""

    def _tls_init(self, params: dict[str, Any], to: str) -> None:
        self.ca = _ca(params)
        self.server_name = _text(params, "server_name", to)

    def client_context(self) -> ssl.SSLContext:
        from stacklab.apps.tlsca import scenario_ca
        return scenario_ca(self.ca).client_context()


# -- HTTPS -------------------------------------------------------------------------------------
class HttpsServerApp(HttpServerApp):
    """https-server: HTTPS on ``port`` (443), certificate from the scenario CA ``ca``."""

    params = {**HttpServerApp.params, "ca": CA}
    default_port = 443

    def __init__(self, net: Any, node: Any, params: dict[str, Any]) -> None:
        super().__init__(net, node, params)
        self.ca = _ca(params)

    async def start(self) -> Any:
        from stacklab.apps.http import serve_http
        return await serve_http(self.node, self.port, root=self.root, bytes=self.bytes,
                                tls=_server_context(self.node, self.ca))


class HttpsGetApp(HttpGetApp, _TlsClient):
    """https-get: GET ``path`` over TLS, the certificate checked against ``server_name``."""

    params = {**HttpGetApp.params, "ca": CA, "server_name": SERVER_NAME}
    default_port = 443

    def __init__(self, net: Any, node: Any, params: dict[str, Any]) -> None:
        super().__init__(net, node, params)
        self._tls_init(params, self.to)

    async def go(self) -> dict[str, Any]:
        from stacklab.apps.http import http_get
        result = await http_get(self.node, self.to, self.path, port=self.port,
                                tls=self.client_context(), server_hostname=self.server_name)
        return {"ok": result.ok, "status": result.status, "bytes": len(result.body),
                "sha256": result.sha256}


# -- FTPS --------------------------------------------------------------------------------------
_FTP_MODES = ("explicit", "implicit")


class FtpsServerApp(FtpServerApp):
    """ftps-server: FTP over TLS, ``tls`` = explicit (AUTH TLS, 21) or implicit (990)."""

    params = {**FtpServerApp.params, "ca": CA, "tls": FTP_TLS}

    def __init__(self, net: Any, node: Any, params: dict[str, Any]) -> None:
        self.tls_mode = _tls_mode(params, _FTP_MODES)
        self.default_port = 990 if self.tls_mode == "implicit" else 21
        super().__init__(net, node, params)
        self.ca = _ca(params)

    async def start(self) -> Any:
        from stacklab.apps.ftp import serve_ftp
        return await serve_ftp(self.node, self.port, root=self.root, bytes=self.bytes,
                               users=self.users, tls=_server_context(self.node, self.ca),
                               tls_mode=self.tls_mode, require_tls=True)


class _FtpsClient(_TlsClient):
    def _ftps_init(self, params: dict[str, Any], to: str) -> None:
        self.tls_mode = _tls_mode(params, _FTP_MODES)
        self._tls_init(params, to)

    def tls_args(self) -> dict[str, Any]:
        return {"tls": self.client_context(), "tls_mode": self.tls_mode,
                "server_hostname": self.server_name}


class FtpsGetApp(FtpGetApp, _FtpsClient):
    """ftps-get: RETR ``path`` over FTPS (``tls`` explicit|implicit, private data)."""

    params = {**FtpGetApp.params, "ca": CA, "tls": FTP_TLS, "server_name": SERVER_NAME}

    def __init__(self, net: Any, node: Any, params: dict[str, Any]) -> None:
        mode = _tls_mode(params, _FTP_MODES)
        self.default_port = 990 if mode == "implicit" else 21
        super().__init__(net, node, params)
        self._ftps_init(params, self.to)

    async def go(self) -> dict[str, Any]:
        from stacklab.apps.ftp import ftp_get
        result = await ftp_get(self.node, self.to, self.port, self.path, mode=self.mode,
                               user=self.user, password=self.password, **self.tls_args())
        return {"ok": True, "bytes": result.bytes, "sha256": result.sha256, "mode": self.mode,
                "tls": self.tls_mode}


class FtpsPutApp(FtpPutApp, _FtpsClient):
    """ftps-put: STOR ``bytes`` deterministic bytes as ``path`` over FTPS."""

    params = {**FtpPutApp.params, "ca": CA, "tls": FTP_TLS, "server_name": SERVER_NAME}

    def __init__(self, net: Any, node: Any, params: dict[str, Any]) -> None:
        mode = _tls_mode(params, _FTP_MODES)
        self.default_port = 990 if mode == "implicit" else 21
        super().__init__(net, node, params)
        self._ftps_init(params, self.to)

    async def go(self) -> dict[str, Any]:
        from stacklab.apps.ftp import ftp_put
        data = pattern_bytes(0, self.bytes)
        result = await ftp_put(self.node, self.to, self.port, self.path, data, mode=self.mode,
                               user=self.user, password=self.password, **self.tls_args())
        return {"ok": True, "bytes": result.bytes, "sha256": result.sha256, "mode": self.mode,
                "tls": self.tls_mode}


# -- SMTP --------------------------------------------------------------------------------------
_SMTP_MODES = ("starttls", "implicit")


class SmtpsServerApp(SmtpServerApp):
    """smtps-server: SMTP with STARTTLS required (25) or implicit TLS (465)."""

    params = {**SmtpServerApp.params, "ca": CA, "tls": SMTP_TLS}

    def __init__(self, net: Any, node: Any, params: dict[str, Any]) -> None:
        self.tls_mode = _tls_mode(params, _SMTP_MODES)
        self.default_port = 465 if self.tls_mode == "implicit" else 25
        super().__init__(net, node, params)
        self.ca = _ca(params)

    async def start(self) -> Any:
        from stacklab.apps.smtp import serve_smtp
        return await serve_smtp(self.node, self.port, root=self.root,
                                tls=_server_context(self.node, self.ca),
                                tls_mode=self.tls_mode, require_tls=True)


class SmtpsSendApp(SmtpSendApp, _TlsClient):
    """smtps-send: send a message over STARTTLS or implicit TLS, never in the clear."""

    params = {**SmtpSendApp.params, "ca": CA, "tls": SMTP_TLS, "server_name": SERVER_NAME}

    def __init__(self, net: Any, node: Any, params: dict[str, Any]) -> None:
        self.tls_mode = _tls_mode(params, _SMTP_MODES)
        self.default_port = 465 if self.tls_mode == "implicit" else 25
        super().__init__(net, node, params)
        self._tls_init(params, self.to)

    async def go(self) -> dict[str, Any]:
        from stacklab.apps.smtp import SmtpError, make_message, send_mail
        message = make_message(self.mail_from, self.rcpt[0], self.bytes)
        try:
            result = await send_mail(self.node, self.to, self.port, self.mail_from, self.rcpt,
                                     message, helo=self.node.name, tls=self.client_context(),
                                     tls_mode=self.tls_mode, server_hostname=self.server_name)
        except SmtpError as exc:
            return {"ok": False, "error": str(exc), "code": exc.code}
        return {"ok": result.ok, "code": result.code, "bytes": result.bytes,
                "sha256": result.sha256, "tls": self.tls_mode}


# -- SFTP --------------------------------------------------------------------------------------
class _SftpApp(_ClientApp):
    default_port = 22

    def __init__(self, net: Any, node: Any, params: dict[str, Any]) -> None:
        super().__init__(net, node, params)
        self.path = _text(params, "path")
        self.user = _text(params, "user", "stacklab")
        self.password = _text(params, "password", "stacklab")

    async def go(self) -> dict[str, Any]:
        from stacklab.apps.ssh import ssh_connect
        conn = await ssh_connect(self.node, self.to, self.port, username=self.user,
                                 password=self.password)
        try:
            return await self.transfer(conn)
        finally:
            conn.close()

    async def transfer(self, conn: Any) -> dict[str, Any]:
        raise NotImplementedError


class SftpGetApp(_SftpApp):
    """sftp-get: read ``path`` over SFTP; reports bytes, sha256."""

    params = {"to": p.TO, "port": SSH_PORT, "path": PATH, "user": USER, "password": PASSWORD,
              "start": p.START}

    async def transfer(self, conn: Any) -> dict[str, Any]:
        from stacklab.apps.ssh import sftp_get
        data = await sftp_get(conn, self.path)
        return {"ok": True, "bytes": len(data), "sha256": sha256_hex(data)}


class SftpPutApp(_SftpApp):
    """sftp-put: write ``bytes`` deterministic bytes as ``path`` over SFTP."""

    params = {"to": p.TO, "port": SSH_PORT, "path": PATH,
              "bytes": Param("how many bytes to write", "size", 100_000), "user": USER,
              "password": PASSWORD, "start": p.START}

    def __init__(self, net: Any, node: Any, params: dict[str, Any]) -> None:
        super().__init__(net, node, params)
        self.bytes = _size(params, 100_000)

    async def transfer(self, conn: Any) -> dict[str, Any]:
        from stacklab.apps.ssh import sftp_put
        data = pattern_bytes(0, self.bytes)
        await sftp_put(conn, self.path, data)
        return {"ok": True, "bytes": len(data), "sha256": sha256_hex(data)}


class SshForwardApp(_ClientApp):
    """ssh-forward: ssh -L ``listen``:``dest``:``dest_port`` through the SSH server ``to``."""

    params = {"to": p.TO, "port": SSH_PORT,
              "listen": Param("the local port to listen on (ssh -L)", "port", required=True),
              "dest": Param("where the server connects (default: `to`)", "node"),
              "dest_port": Param("the port it connects to", "port", required=True),
              "user": USER, "password": PASSWORD, "start": p.START}
    default_port = 22
    daemon = True

    def __init__(self, net: Any, node: Any, params: dict[str, Any]) -> None:
        super().__init__(net, node, params)
        if "listen" not in params or "dest_port" not in params:
            raise ParamError("listen" if "listen" not in params else "dest_port",
                             "missing: ssh-forward needs listen and dest_port")
        self.listen = parse_int(params["listen"], "listen", 1, 65535)
        self.dest = _text(params, "dest", self.to)
        self.dest_port = parse_int(params["dest_port"], "dest_port", 1, 65535)
        self.user = _text(params, "user", "stacklab")
        self.password = _text(params, "password", "stacklab")
        self.forward: Any = None

    async def go(self) -> dict[str, Any]:
        from stacklab.apps.ssh import LocalForward, ssh_connect
        conn = await ssh_connect(self.node, self.to, self.port, username=self.user,
                                 password=self.password)
        try:
            self.forward = await LocalForward(conn, self.dest, self.dest_port).start(
                self.node, self.listen)
            await asyncio.Event().wait()  # forward until the scenario ends (we are cancelled)
        finally:
            if self.forward is not None:
                await self.forward.close()
            conn.close()
        return self.result()

    def result(self) -> dict[str, Any]:
        if self.forward is None:
            return {"ok": False, "error": "not started"}
        return {"ok": True, "port": self.forward.port,
                "dest": f"{self.dest}:{self.dest_port}",
                "connections": self.forward.connections}


TLS_APP_KINDS: dict[str, type] = {
    "https-server": HttpsServerApp,
    "https-get": HttpsGetApp,
    "ftps-server": FtpsServerApp,
    "ftps-get": FtpsGetApp,
    "ftps-put": FtpsPutApp,
    "smtps-server": SmtpsServerApp,
    "smtps-send": SmtpsSendApp,
    "sftp-get": SftpGetApp,
    "sftp-put": SftpPutApp,
    "ssh-forward": SshForwardApp,
}
