"""Unmodified asyncio programs on a simulated host: ``task = host.spawn(coro)``.

The seam is one context variable and the event loop's own network methods:

* :func:`spawn` runs a coroutine as an ``asyncio.Task`` whose context names the host
  (:data:`stacklab.api.driver.running_host`, which the driver also sets around its node's
  callbacks); every task it creates inherits that context, as asyncio copies it;
* :class:`HostNetwork` is a mixin for an event loop (the simulator's
  :class:`~stacklab.net.loop.VirtualTimeLoop` uses it) whose ``create_connection``,
  ``create_server``, ``create_datagram_endpoint``, ``getaddrinfo``/``getnameinfo`` and
  ``sock_connect``/``sock_recv``/``sock_sendall`` act on the stack of the host the calling
  task runs on. So ``asyncio.open_connection``/``start_server`` and the libraries built on the
  loop (aiohttp, httpx, websockets, asyncssh, aiosmtplib...) reach the simulated network
  without a patch: asyncio looks those methods up on the running loop.

A call made outside any host raises :class:`OutsideHostError` (there is no kernel network in a
simulation); Unix sockets, kernel file descriptors and TLS are refused with
:class:`NotSimulated`. Names resolve through the host's
:meth:`~stacklab.api.driver.DrivenHost.lookup`, the one place a resolver plugs in.

A kernel socket a library made itself (aiohappyeyeballs does, then hands it to
``sock_connect`` and ``create_connection(sock=)``) is only a key here: ``sock_connect`` opens the
connection on the host and parks it under that socket, and ``create_connection(sock=sock)``
hands it to the protocol (the kernel socket is closed then: the transport owns the connection).
"""

from __future__ import annotations

import asyncio
import contextvars
import ipaddress
import socket
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from stacklab.errors import StacklabError

from . import streams, udp
from .driver import DrivenHost, running_host

_T = TypeVar("_T")

__all__ = ["HostNetwork", "NotSimulated", "OutsideHostError", "current_host", "spawn", "track"]



class OutsideHostError(StacklabError, RuntimeError):
    """A network call in a simulated run made by code that runs on no host."""


class NotSimulated(StacklabError, OSError):
    """A network call the simulated hosts do not offer (Unix sockets, TLS, kernel sockets)."""


def current_host() -> DrivenHost | None:
    """The host the calling task runs on, or None."""
    return running_host.get()


def _host(call: str) -> DrivenHost:
    host = running_host.get()
    if host is None:
        raise OutsideHostError(
            f"{call} outside any host: in a simulation there is no kernel network; run the code "
            "on a host with host.spawn(coro) so its network calls go through that host's stack")
    return host


def spawn(host: DrivenHost, coro: Coroutine[Any, Any, _T], *, name: str | None = None
          ) -> asyncio.Task[_T]:
    """Run ``coro`` on ``host``: it and every task it creates use that host's stack."""
    context = contextvars.copy_context()
    context.run(running_host.set, host)
    task = host.loop.create_task(coro, name=name, context=context)
    track(host, task)
    return task


def track(host: DrivenHost, task: asyncio.Task[Any]) -> None:
    """``task`` is one of ``host``'s programs: a crash of the host cancels it."""
    if task not in host.programs:
        host.programs[task] = None
        task.add_done_callback(lambda t: host.programs.pop(t, None))


def _port(port: Any) -> int:
    if port is None:
        return 0
    if isinstance(port, bytes):
        port = port.decode()
    try:
        return int(port)
    except ValueError:
        raise socket.gaierror(socket.EAI_SERVICE, f"unknown service {port!r} (give a port "
                              "number: a simulated host has no /etc/services)") from None


_FAMILIES: dict[int, int] = {socket.AF_INET: 4, socket.AF_INET6: 6}


def _family(family: int) -> int | None:
    return _FAMILIES.get(family)


class _Parked(asyncio.Protocol):
    """The protocol of a connection that has no protocol of its own yet: made by
    ``sock_connect`` for a kernel socket, or while ``create_connection`` tries addresses. It
    keeps reading paused until bytes are asked for (``sock_recv``) or it is handed over."""

    def __init__(self) -> None:
        self.transport: streams.TcpTransport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.lost: list[Exception | None] = []
        self._waiter: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, streams.TcpTransport)
        self.transport = transport
        transport.pause_reading()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.transport is not None:
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.append(exc)
        self._wake()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def recv(self, n: int) -> bytes:
        while not self.buffer and not self.eof and not self.lost:
            assert self.transport is not None
            self._waiter = asyncio.get_running_loop().create_future()
            self.transport.resume_reading()
            await self._waiter
        if not self.buffer and self.lost and self.lost[0] is not None:
            raise self.lost[0]
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    async def sendall(self, data: bytes) -> None:
        if self.lost:
            raise self.lost[0] or BrokenPipeError("connection closed")
        assert self.transport is not None
        self.transport.write(data)
        if self._writable is not None:
            await self._writable

    def hand_over(self, protocol: asyncio.BaseProtocol) -> None:
        """Give the connection to ``protocol``, with what arrived meanwhile."""
        transport = self.transport
        assert transport is not None
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if isinstance(protocol, asyncio.Protocol):
            if self.buffer:
                protocol.data_received(bytes(self.buffer))
                self.buffer.clear()
            if self.eof and not protocol.eof_received():
                transport.close()
        if self.lost:
            asyncio.get_running_loop().call_soon(protocol.connection_lost, self.lost[0])
        else:
            transport.resume_reading()


class HostNetwork:
    """The network methods of an event loop that runs simulated hosts (see the module
    docstring). Mixed into the loop class before ``asyncio.BaseEventLoop``."""

    _parked: weakref.WeakKeyDictionary[socket.socket, _Parked]

    def _parked_table(self) -> weakref.WeakKeyDictionary[socket.socket, _Parked]:
        table = self.__dict__.get("_parked")
        if table is None:
            table = self._parked = weakref.WeakKeyDictionary()
        return table

    # -- names ----------------------------------------------------------------------------------
    async def getaddrinfo(self, host: bytes | str | None, port: bytes | str | int | None, *,
                          family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
                          ) -> list[tuple[Any, ...]]:
        on = _host("loop.getaddrinfo()")
        if isinstance(host, bytes):
            host = host.decode()
        number = _port(port)
        if host is None or host == "":
            if not flags & socket.AI_PASSIVE:
                raise socket.gaierror(socket.EAI_NONAME, "no host name given (and no AI_PASSIVE)")
            addrs = {None: ["0.0.0.0", "::"], 4: ["0.0.0.0"], 6: ["::"]}[_family(family)]
        else:
            addrs = await on.lookup(host, _family(family))
        types = [type] if type else [socket.SOCK_STREAM, socket.SOCK_DGRAM]
        out: list[tuple[Any, ...]] = []
        for i, addr in enumerate(addrs):
            v6 = ipaddress.ip_address(addr).version == 6
            fam = socket.AF_INET6 if v6 else socket.AF_INET
            sockaddr = (addr, number, 0, 0) if v6 else (addr, number)
            canon = host if flags & socket.AI_CANONNAME and i == 0 and host else ""
            for kind in types:
                protocol = proto or (socket.IPPROTO_TCP if kind == socket.SOCK_STREAM
                                     else socket.IPPROTO_UDP)
                out.append((fam, kind, protocol, canon, sockaddr))
        return out

    async def getnameinfo(self, sockaddr: tuple[Any, ...], flags: int = 0) -> tuple[str, str]:
        on = _host("loop.getnameinfo()")
        addr, port = str(sockaddr[0]), str(sockaddr[1])
        if flags & socket.NI_NUMERICHOST:
            return addr, port
        for name, addrs in on.hosts.items():
            if addr in addrs:
                return name, port
        if flags & socket.NI_NAMEREQD:
            raise socket.gaierror(socket.EAI_NONAME, f"no name for {addr}")
        return addr, port

    # -- TCP ------------------------------------------------------------------------------------
    async def _connect(self, on: DrivenHost, infos: list[tuple[Any, ...]],
                       local_addr: tuple[str, int] | None) -> streams.TcpTransport:
        """The first address of ``infos`` that accepts, parked (as asyncio tries them)."""
        async def attempt(addr: str, port: int) -> streams.TcpTransport:
            parked = _Parked()
            transport, _ = await streams.create_connection(on, lambda: parked, addr, port,
                                                           local_addr=local_addr)
            return transport

        errors: list[OSError] = []
        for info in infos:
            try:
                return await attempt(info[4][0], info[4][1])
            except OSError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise OSError(f"Multiple exceptions: {', '.join(str(e) for e in errors)}")

    async def create_connection(self, protocol_factory: Callable[[], asyncio.BaseProtocol],
                                host: str | None = None, port: int | None = None, *,
                                ssl: Any = None, family: int = 0, proto: int = 0, flags: int = 0,
                                sock: socket.socket | None = None,
                                local_addr: tuple[str, int] | None = None,
                                **_happy_eyeballs_and_tls: Any
                                ) -> tuple[asyncio.Transport, asyncio.BaseProtocol]:
        on = _host("loop.create_connection()")
        if ssl:
            raise NotSimulated("TLS (ssl=) is not offered on simulated hosts: its handshake "
                               "draws from OpenSSL's random source, which no seed controls")
        if sock is not None:
            parked = self._parked_table().pop(sock, None)
            if parked is None or parked.transport is None:
                raise NotSimulated(f"create_connection(sock={sock!r}): only a socket connected "
                                   "by loop.sock_connect() on this host can be handed over")
            sock.close()  # a key only: the connection is the host's (see the module docstring)
            transport = parked.transport
        else:
            if host is None:
                raise ValueError("host and port was not specified and no sock specified")
            infos = await self.getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM,
                                           proto=proto, flags=flags)
            transport = await self._connect(on, infos, local_addr)
            new = transport.get_protocol()
            assert isinstance(new, _Parked)
            parked = new
        protocol = protocol_factory()
        parked.hand_over(protocol)
        return transport, protocol

    async def create_server(self, protocol_factory: Callable[[], asyncio.BaseProtocol],
                            host: str | list[str] | None = None, port: int | None = None, *,
                            family: int = 0, flags: int = socket.AI_PASSIVE,
                            sock: socket.socket | None = None, backlog: int = 100,
                            ssl: Any = None, **_reuse_and_tls: Any) -> streams.TcpServer:
        on = _host("loop.create_server()")
        if ssl:
            raise NotSimulated("TLS (ssl=) is not offered on simulated hosts: its handshake "
                               "draws from OpenSSL's random source, which no seed controls")
        if sock is not None:
            raise NotSimulated("create_server(sock=): a kernel socket cannot listen on a "
                               "simulated host; give host and port")
        if isinstance(host, list | tuple):
            host = host[0] if host else None
        bind: str | None = host or None
        if bind is not None and bind not in ("0.0.0.0", "::"):
            bind = (await on.lookup(bind, _family(family)))[0]
        elif bind is None and _family(family) == 4:
            bind = "0.0.0.0"
        return await streams.create_server(on, protocol_factory, bind, _port(port),
                                           backlog=backlog, v6only=_family(family) == 6)

    # -- UDP ------------------------------------------------------------------------------------
    async def create_datagram_endpoint(self, protocol_factory: Callable[[], Any],
                                       local_addr: tuple[str, int] | None = None,
                                       remote_addr: tuple[str, int] | None = None, *,
                                       family: int = 0, **_options: Any) -> tuple[Any, Any]:
        on = _host("loop.create_datagram_endpoint()")
        return await udp.create_datagram_endpoint(
            on, protocol_factory, local_addr=local_addr, remote_addr=remote_addr,
            family=_family(family) or 0)

    # -- sockets --------------------------------------------------------------------------------
    async def sock_connect(self, sock: socket.socket, address: tuple[Any, ...]) -> None:
        on = _host("loop.sock_connect()")
        if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
            raise NotSimulated(f"sock_connect() on {sock!r}: simulated hosts connect TCP "
                               "sockets only")
        infos = await self.getaddrinfo(address[0], address[1], family=sock.family,
                                       type=socket.SOCK_STREAM)
        transport = await self._connect(on, infos[:1], None)
        parked = transport.get_protocol()
        assert isinstance(parked, _Parked)
        self._parked_table()[sock] = parked

    def _parked_of(self, sock: socket.socket, call: str) -> _Parked:
        _host(f"loop.{call}()")
        parked = self._parked_table().get(sock)
        if parked is None:
            raise NotSimulated(f"loop.{call}() on {sock!r}: only a socket connected by "
                               "loop.sock_connect() on this host is simulated")
        return parked

    async def sock_recv(self, sock: socket.socket, nbytes: int) -> bytes:
        return await self._parked_of(sock, "sock_recv").recv(nbytes)

    async def sock_recv_into(self, sock: socket.socket, buf: Any) -> int:
        view = memoryview(buf).cast("B")
        data = await self._parked_of(sock, "sock_recv_into").recv(len(view))
        view[:len(data)] = data
        return len(data)

    async def sock_sendall(self, sock: socket.socket, data: Any) -> None:
        await self._parked_of(sock, "sock_sendall").sendall(bytes(data))

    async def sock_accept(self, sock: socket.socket) -> tuple[socket.socket, Any]:
        _host("loop.sock_accept()")
        raise NotSimulated("loop.sock_accept() on a kernel socket: a kernel socket cannot listen "
                           "on a simulated host; use loop.create_server() or "
                           "asyncio.start_server()")

    # -- refused --------------------------------------------------------------------------------
    async def create_unix_connection(self, *args: Any, **kwargs: Any) -> Any:
        _host("loop.create_unix_connection()")
        raise NotSimulated("Unix sockets are not simulated: a simulated host has TCP and UDP")

    async def create_unix_server(self, *args: Any, **kwargs: Any) -> Any:
        _host("loop.create_unix_server()")
        raise NotSimulated("Unix sockets are not simulated: a simulated host has TCP and UDP")

    async def connect_accepted_socket(self, *args: Any, **kwargs: Any) -> Any:
        _host("loop.connect_accepted_socket()")
        raise NotSimulated("connect_accepted_socket(): kernel sockets are not simulated")
