"""Scenario app kinds for the application layer (issue 9 §6): the servers and clients of
:mod:`stacklab.apps`, listed in :data:`APP_KINDS` for :mod:`stacklab.scenario.registry`.

Servers (daemons: they run until the scenario ends; ``result()`` reports ``sha256`` of what
they served or stored last):

* ``http-server``: ``port`` (80), ``root`` (a directory; without it any path answers a
  deterministic body of ``bytes`` bytes, default 1024)
* ``smtp-server``: ``port`` (25), ``root`` (mailbox directory; in memory without it)
* ``ftp-server``: ``port`` (21), ``root`` or ``bytes`` as for HTTP; ``user``/``password`` add
  a login beside anonymous
* ``ssh-server``: ``port`` (22), ``user`` ("stacklab"), ``password`` ("stacklab"), ``root``
  (a directory: SFTP and SCP confined to it)

Clients (report ``ok``, ``bytes`` and ``sha256`` of the body/message/file/output they got or
sent; ``start`` delays them, in virtual seconds):

* ``http-get``: ``to``, ``port`` (80), ``path`` ("/")
* ``smtp-send``: ``to``, ``port`` (25), ``from``, ``rcpt``, ``bytes`` (body size, 1000)
* ``ftp-get`` / ``ftp-put``: ``to``, ``port`` (21), ``path``, ``bytes`` (put only),
  ``mode`` = "passive" | "active", ``user``/``password`` (anonymous by default)
* ``ssh-exec``: ``to``, ``port`` (22), ``command``, ``user``, ``password``
"""

from __future__ import annotations

import asyncio
from typing import Any

from stacklab.apps.common import pattern_bytes
from stacklab.net.units import ParamError, parse_size, parse_text

from . import params as p
from .lan_kinds import LAN_KINDS
from .params import Param

__all__ = ["APP_KINDS"]


def _text(params: dict[str, Any], key: str, default: str | None = None) -> str:
    return parse_text(params.get(key, default), key)


def _size(params: dict[str, Any], default: int) -> int:
    return parse_size(params.get("bytes", default), "bytes")


def _mode(params: dict[str, Any]) -> str:
    mode = params.get("mode", "passive")
    if mode not in ("passive", "active"):
        raise ParamError("mode", f'expected "passive" or "active", got {mode!r}')
    return str(mode)


ROOT = Param("serve the files of this directory (default: virtual files)", "text")
MODE = Param("data connection: \"passive\" or \"active\"", "text", "passive")
USER = Param("the login", "text", "anonymous")
PASSWORD = Param("its password (default for anonymous: stacklab@NODE)", "text")


# -- servers -----------------------------------------------------------------------------------
class _ServerApp:
    daemon = True
    default_port = 0

    def __init__(self, net: Any, node: Any, params: dict[str, Any]) -> None:
        self.node = node
        self.port = p.port(params, self.default_port)
        self.root = params.get("root")
        if self.root is not None and not isinstance(self.root, str):
            raise ParamError("root", f"expected a directory path, got {self.root!r}")
        self.server: Any = None

    async def start(self) -> Any:
        raise NotImplementedError

    async def run(self) -> dict[str, Any]:
        self.server = await self.start()
        try:
            await asyncio.Event().wait()  # serve until the scenario ends (we are cancelled)
        finally:
            await self.server.close()
        return self.result()

    def result(self) -> dict[str, Any]:
        server = self.server
        if server is None:
            return {"ok": False, "error": "not started"}
        out: dict[str, Any] = {"ok": server.errors.get("internal", 0) == 0, "port": server.port,
                               "sha256": server.last_sha256,
                               "clients": server.gate.accepted, "refused": server.gate.refused}
        if server.errors:
            out["errors"] = dict(sorted(server.errors.items()))
        return out


class HttpServerApp(_ServerApp):
    """http-server: HTTP/1.1 on ``port``, files from ``root`` or a body of ``bytes`` bytes."""

    params = {"port": p.port_param(80), "root": ROOT,
              "bytes": Param("without root: the size of the body any path answers", "size", 1024)}
    default_port = 80

    def __init__(self, net: Any, node: Any, params: dict[str, Any]) -> None:
        super().__init__(net, node, params)
        self.bytes = _size(params, 1024)

    async def start(self) -> Any:
        from stacklab.apps.http import serve_http
        return await serve_http(self.node, self.port, root=self.root, bytes=self.bytes)

    def result(self) -> dict[str, Any]:
        out = super().result()
        if self.server is not None:
            out["requests"] = self.server.requests
        return out


class SmtpServerApp(_ServerApp):
    """smtp-server: SMTP on ``port``, one .eml per message in ``root`` (or memory)."""

    params = {"port": p.port_param(25),
              "root": Param("mailbox directory, one .eml per message (default: in memory)",
                            "text")}
    default_port = 25

    async def start(self) -> Any:
        from stacklab.apps.smtp import serve_smtp
        return await serve_smtp(self.node, self.port, root=self.root)

    def result(self) -> dict[str, Any]:
        out = super().result()
        if self.server is not None:
            out["messages"] = len(self.server.mailbox.messages)
        return out


class FtpServerApp(_ServerApp):
    """ftp-server: FTP on ``port`` (passive and active), files in ``root`` or virtual."""

    params = {"port": p.port_param(21), "root": ROOT,
              "bytes": Param("without root: the size of any file retrieved", "size", 1024),
              "user": Param("a login accepted beside anonymous", "text"),
              "password": Param("the password of `user`", "text")}
    default_port = 21

    def __init__(self, net: Any, node: Any, params: dict[str, Any]) -> None:
        super().__init__(net, node, params)
        self.bytes = _size(params, 1024)
        self.users = {}
        if "user" in params:
            self.users[_text(params, "user")] = _text(params, "password")

    async def start(self) -> Any:
        from stacklab.apps.ftp import serve_ftp
        return await serve_ftp(self.node, self.port, root=self.root, bytes=self.bytes,
                               users=self.users)


class SshServerApp(_ServerApp):
    """ssh-server: SSH on ``port`` (asyncssh), a small command set, password login."""

    params = {"port": p.port_param(22), "user": Param("the login", "text", "stacklab"),
              "password": Param("its password", "text", "stacklab"),
              "root": Param("directory SFTP and scp serve, confined to it (none: no SFTP/scp)",
                            "path", None)}
    default_port = 22

    def __init__(self, net: Any, node: Any, params: dict[str, Any]) -> None:
        super().__init__(net, node, params)
        self.user = _text(params, "user", "stacklab")
        self.password = _text(params, "password", "stacklab")

    async def start(self) -> Any:
        from stacklab.apps.ssh import serve_ssh
        return await serve_ssh(self.node, self.port, user=self.user, password=self.password,
                               hostname=self.node.name, root=self.root)

    def result(self) -> dict[str, Any]:
        server = self.server
        if server is None:
            return {"ok": False, "error": "not started"}
        out: dict[str, Any] = {"ok": True, "port": server.port, "sha256": server.last_sha256,
                               "clients": server.gate.accepted, "refused": server.gate.refused,
                               "commands": server.commands[-10:]}
        if server.errors:
            out["errors"] = dict(server.errors)
        return out


# -- clients -----------------------------------------------------------------------------------
class _ClientApp:
    default_port = 0

    def __init__(self, net: Any, node: Any, params: dict[str, Any]) -> None:
        self.node = node
        self.to = p.target(params)
        self.port = p.port(params, self.default_port)
        self.start = p.start(params)

    async def run(self) -> dict[str, Any]:
        if self.start:
            await asyncio.sleep(self.start)
        return await self.go()

    async def go(self) -> dict[str, Any]:
        raise NotImplementedError


class HttpGetApp(_ClientApp):
    """http-get: GET ``path`` from ``to``:``port``; reports status, bytes, sha256."""

    params = {"to": p.TO, "port": p.port_param(80), "start": p.START,
              "path": Param("the path to GET", "text", "/")}
    default_port = 80

    def __init__(self, net: Any, node: Any, params: dict[str, Any]) -> None:
        super().__init__(net, node, params)
        self.path = _text(params, "path", "/")

    async def go(self) -> dict[str, Any]:
        from stacklab.apps.http import http_get
        result = await http_get(self.node, self.to, self.path, port=self.port)
        return {"ok": result.ok, "status": result.status, "bytes": len(result.body),
                "sha256": result.sha256}


class SmtpSendApp(_ClientApp):
    """smtp-send: send a message with a ``bytes``-byte body from ``from`` to ``rcpt``."""

    params = {"to": p.TO, "port": p.port_param(25), "start": p.START,
              "from": Param("MAIL FROM (default: sender@NODE)", "text"),
              "rcpt": Param("RCPT TO: an address or a list (default: postmaster@TO)", "text"),
              "bytes": Param("body size", "size", 1000)}
    default_port = 25

    def __init__(self, net: Any, node: Any, params: dict[str, Any]) -> None:
        super().__init__(net, node, params)
        self.mail_from = _text(params, "from", f"sender@{node.name}")
        rcpt = params.get("rcpt", f"postmaster@{self.to}")
        self.rcpt = [rcpt] if isinstance(rcpt, str) else rcpt
        if not self.rcpt or not all(isinstance(r, str) and r for r in self.rcpt):
            raise ParamError("rcpt", "expected an address or a list of addresses")
        self.bytes = _size(params, 1000)

    async def go(self) -> dict[str, Any]:
        from stacklab.apps.smtp import SmtpError, make_message, send_mail
        message = make_message(self.mail_from, self.rcpt[0], self.bytes)
        try:
            result = await send_mail(self.node, self.to, self.port, self.mail_from, self.rcpt,
                                     message, helo=self.node.name)
        except SmtpError as exc:
            return {"ok": False, "error": str(exc), "code": exc.code}
        out = {"ok": result.ok, "code": result.code, "bytes": result.bytes,
               "sha256": result.sha256}
        if result.refused:
            out["refused"] = result.refused
        return out


class _FtpApp(_ClientApp):
    default_port = 21

    def __init__(self, net: Any, node: Any, params: dict[str, Any]) -> None:
        super().__init__(net, node, params)
        self.path = _text(params, "path")
        self.mode = _mode(params)
        self.user = _text(params, "user", "anonymous")
        self.password = _text(params, "password", f"stacklab@{node.name}")


class FtpGetApp(_FtpApp):
    """ftp-get: RETR ``path`` (``mode`` passive|active); reports bytes, sha256."""

    params = {"to": p.TO, "port": p.port_param(21), "start": p.START,
              "path": Param("the file to RETR", "text", required=True), "mode": MODE,
              "user": USER, "password": PASSWORD}

    async def go(self) -> dict[str, Any]:
        from stacklab.apps.ftp import FtpError, ftp_get
        try:
            result = await ftp_get(self.node, self.to, self.port, self.path, mode=self.mode,
                                   user=self.user, password=self.password)
        except FtpError as exc:
            return {"ok": False, "error": str(exc), "code": exc.code}
        return {"ok": True, "bytes": result.bytes, "sha256": result.sha256, "mode": self.mode}


class FtpPutApp(_FtpApp):
    """ftp-put: STOR ``bytes`` deterministic bytes as ``path`` (``mode`` passive|active)."""

    params = {"to": p.TO, "port": p.port_param(21), "start": p.START,
              "path": Param("the name to STOR as", "text", required=True),
              "bytes": Param("how many deterministic bytes to store", "size", 100_000),
              "mode": MODE, "user": USER, "password": PASSWORD}

    def __init__(self, net: Any, node: Any, params: dict[str, Any]) -> None:
        super().__init__(net, node, params)
        self.bytes = _size(params, 100_000)

    async def go(self) -> dict[str, Any]:
        from stacklab.apps.ftp import FtpError, ftp_put
        data = pattern_bytes(0, self.bytes)
        try:
            result = await ftp_put(self.node, self.to, self.port, self.path, data,
                                   mode=self.mode, user=self.user, password=self.password)
        except FtpError as exc:
            return {"ok": False, "error": str(exc), "code": exc.code}
        return {"ok": True, "bytes": result.bytes, "sha256": result.sha256, "mode": self.mode}


class SshExecApp(_ClientApp):
    """ssh-exec: run ``command`` on ``to``; reports exit status and stdout's bytes, sha256."""

    params = {"to": p.TO, "port": p.port_param(22), "start": p.START,
              "command": Param("the command to run, e.g. \"uname -a\"", "text", required=True),
              "user": Param("the login", "text", "stacklab"),
              "password": Param("its password", "text", "stacklab")}
    default_port = 22

    def __init__(self, net: Any, node: Any, params: dict[str, Any]) -> None:
        super().__init__(net, node, params)
        self.command = _text(params, "command")
        self.user = _text(params, "user", "stacklab")
        self.password = _text(params, "password", "stacklab")

    async def go(self) -> dict[str, Any]:
        import asyncssh

        from stacklab.apps.ssh import ssh_exec
        try:
            result = await ssh_exec(self.node, self.to, self.port, self.command,
                                    username=self.user, password=self.password)
        except (asyncssh.Error, OSError) as exc:
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        out: dict[str, Any] = {"ok": result.ok, "exit_status": result.exit_status,
                               "bytes": len(result.stdout), "sha256": result.sha256}
        if len(result.stdout) <= 200:
            out["stdout"] = result.stdout.decode("utf-8", "replace")
        if result.stderr:
            out["stderr"] = result.stderr[:200].decode("utf-8", "replace")
        return out


APP_KINDS: dict[str, type] = {
    "http-server": HttpServerApp,
    "smtp-server": SmtpServerApp,
    "ftp-server": FtpServerApp,
    "ssh-server": SshServerApp,
    "http-get": HttpGetApp,
    "smtp-send": SmtpSendApp,
    "ftp-get": FtpGetApp,
    "ftp-put": FtpPutApp,
    "ssh-exec": SshExecApp,
    **LAN_KINDS,  # dhcp-server, dns-server, dns-resolver, dns-lookup (scenario/lan_kinds.py)
}
