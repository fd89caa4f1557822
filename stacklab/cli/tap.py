"""`stacklab tap`: run a stacklab host (or router) on real Linux TAP devices.

Host mode, one device::

    stacklab tap --dev tap0 --ipv4 10.0.0.2/24 [--ipv6 fd00::2/64] [--gw 10.0.0.1] [--mtu 1500]
                 [--serve echo:7,discard:9,chargen:19,daytime:13,udp-echo:7] [--pcap FILE]

Application servers (stacklab.apps) on the same host::

    stacklab tap --dev tap0 --ipv4 10.0.0.2/24 --up --root /srv/lab \
                 --serve http:80,smtp:25,ftp:21,ssh:22 --ssh-authorized-keys ~/.ssh/id_ed25519.pub

``--root DIR``: HTTP serves the files under DIR, anonymous FTP reads and writes files under DIR
(nothing outside it is reachable), SMTP stores each accepted message as DIR/mail/NNNNNN.eml.
Without ``--root``, HTTP and FTP serve a deterministic body at any path and SMTP keeps mail in
memory. SSH (a small command set: echo, cat, sha256sum, exit N...) logs in user ``--ssh-user``
(default stacklab) by ``--ssh-password`` and/or a key in ``--ssh-authorized-keys FILE``; one of
the two is required. The secure forms, TLS from the first byte: ``https`` (HTTP over TLS,
RFC 9110 §4.2.2, on 443), ``ftps`` (implicit FTPS on 990, as curl's ``ftps://``) and ``smtps``
(submission over TLS, RFC 8314 §3, on 465); their certificate, for the name ``stacklab`` and
the device's addresses, is signed by the lab CA of :mod:`stacklab.apps.tlsca`
(``TinyCa("tap")``, the same every run: a lab's, not a secret), whose root is written to
``--ca-out FILE`` (default: a new file in the temporary directory) and named on stderr, for
``curl --cacert FILE``. Each application service serves at most ``--max-clients N`` (default
64) clients at once and refuses the others. Every service, TCP and UDP, listens on both
families (as a Linux socket on ``::`` without IPV6_V6ONLY).

Router mode, two or more devices, addresses (and optionally the MTU) per device::

    stacklab tap --router --dev tapA=10.0.1.1/24,fd00:1::1/64 --dev tapB=10.0.2.1/24,mtu=1280

The kernel side of each device is an ordinary interface the user configures (``ip addr add``...);
``--up`` brings it up, ``--netns NS`` opens the devices inside a named network namespace. Runs until
Ctrl-C or SIGTERM, logging one line per connection to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import ipaddress
import os
import random
import ssl
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stacklab.apps.common import ServerLimits

if TYPE_CHECKING:
    from stacklab.api.host import Host

SERVICES_TLS = ("https", "ftps", "smtps")      # TLS from the first byte, a lab CA's certificate
SERVICES_TCP = ("echo", "discard", "chargen", "daytime", "http", "smtp", "ftp", "ssh",
                *SERVICES_TLS)
SERVICES_APPS = ("http", "smtp", "ftp", "ssh", *SERVICES_TLS)  # run by stacklab.apps servers
SERVICES_ROOT = ("http", "smtp", "ftp", *SERVICES_TLS)         # use --root
TAP_CA = "tap"                                  # the TinyCa's name (its root is --ca-out)
MAIL_DIR = "mail"                               # SMTP stores into ROOT/mail
SERVICES_UDP = ("udp-echo", "udp-discard")
MAX_CLIENTS_LIMIT = 1_000_000


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "tap", help="run a host or router on real TAP devices (Linux, root)",
        description="Run a stacklab host (or, with --router, a router) on Linux TAP devices.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=("examples:\n"
                "  stacklab tap --dev tap0 --ipv4 10.0.0.2/24 --serve echo:7,discard:9\n"
                "  stacklab tap --dev tap0 --ipv4 10.0.0.2/24 --root DIR "
                "--serve http:80,smtp:25,ftp:21,ssh:22 --ssh-password secret\n"
                "  stacklab tap --router --dev tapA=10.0.1.1/24 --dev tapB=10.0.2.1/24,mtu=1280"))
    p.add_argument("--dev", action="append", default=[], metavar="NAME[=ADDR/LEN,...]",
                   help="TAP device (created if missing); in router mode, repeat it and give "
                        "addresses per device: NAME=ADDR/LEN[,ADDR/LEN...][,mtu=N]")
    p.add_argument("--ipv4", action="append", default=[], metavar="ADDR/LEN",
                   help="IPv4 address of the stack on the device (host mode)")
    p.add_argument("--ipv6", action="append", default=[], metavar="ADDR/LEN",
                   help="IPv6 address of the stack on the device (host mode)")
    p.add_argument("--gw", action="append", default=[], metavar="ADDR",
                   help="default gateway (IPv4 or IPv6; repeat for both)")
    p.add_argument("--mtu", type=int, help="MTU of the stack's interfaces (default 1500)")
    p.add_argument("--mac", help="the stack's MAC address (default: derived from the device name)")
    p.add_argument("--serve", default="", metavar="SVC:PORT,...",
                   help=f"services: {', '.join(SERVICES_TCP + SERVICES_UDP)}")
    p.add_argument("--root", metavar="DIR",
                   help="files for the application servers: HTTP serves DIR, FTP serves and "
                        f"stores in DIR, SMTP stores mail in DIR/{MAIL_DIR}/ (one .eml each)")
    p.add_argument("--ssh-user", metavar="NAME", default="stacklab",
                   help="the user the ssh service logs in (default stacklab; '*' = any name)")
    p.add_argument("--ssh-password", metavar="PASSWORD",
                   help="password of --ssh-user for the ssh service")
    p.add_argument("--ssh-authorized-keys", metavar="FILE",
                   help="OpenSSH authorized_keys file: keys that may log in to the ssh service")
    p.add_argument("--ca-out", metavar="FILE",
                   help="write the lab CA's root certificate (PEM) of the https, ftps and smtps "
                        "services to FILE, for curl --cacert (default: a new temporary file)")
    p.add_argument("--max-clients", type=int, metavar="N",
                   help="concurrent clients each application service (http, smtp, ftp, ssh) "
                        f"serves; beyond them it refuses (default {ServerLimits.max_clients})")
    p.add_argument("--router", action="store_true", help="run a router between the devices")
    p.add_argument("--pcap", metavar="FILE", help="capture every frame in and out to FILE")
    p.add_argument("--netns", metavar="NS", help="open the devices in network namespace NS")
    p.add_argument("--up", action="store_true", help="bring the kernel side of the devices up")
    p.add_argument("--seed", type=int, help="seed of the stack's random numbers (ISNs, ports)")
    p.add_argument("--quiet", action="store_true", help="no connection log")
    p.set_defaults(func=run)


# -- parsing ------------------------------------------------------------------------------------
@dataclass
class DeviceSpec:
    name: str
    addresses: list[str] = field(default_factory=list)  # "addr/len", either family
    mtu: int | None = None


@dataclass
class ServiceSpec:
    kind: str
    port: int


def _error(msg: str) -> Exception:
    from stacklab.cli.main import CliError

    return CliError(msg)


def parse_interface(text: str, family: int | None = None) -> str:
    """Validate ``ADDR/LEN``; returns it normalised (address kept, not masked)."""
    if "/" not in text:
        raise _error(f"bad address {text!r}: expected ADDR/LEN, e.g. 10.0.0.2/24")
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError as exc:
        raise _error(f"bad address {text!r}: {exc}") from None
    if family is not None and iface.version != family:
        raise _error(f"bad address {text!r}: not an IPv{family} address")
    if iface.network.prefixlen == iface.max_prefixlen and iface.version == 4:
        raise _error(f"bad address {text!r}: a /32 leaves no neighbours on the link")
    if iface.ip.is_multicast or iface.ip.is_unspecified:
        raise _error(f"bad address {text!r}: not a unicast address")
    return str(iface)


def parse_gateway(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise _error(f"bad gateway {text!r}: not an IPv4 or IPv6 address") from None


def parse_mtu(text: str | int) -> int:
    try:
        mtu = int(text)
    except ValueError:
        raise _error(f"bad MTU {text!r}: not a number") from None
    if not 576 <= mtu <= 65535:
        raise _error(f"bad MTU {mtu}: must be between 576 and 65535")
    return mtu


def parse_device(text: str, *, router: bool) -> DeviceSpec:
    from stacklab.device.tap import TapError, check_ifname

    name, sep, rest = text.partition("=")
    try:
        check_ifname(name)
    except TapError as exc:
        raise _error(str(exc)) from None
    spec = DeviceSpec(name)
    if sep and not router:
        raise _error(f"--dev {text!r}: per-device addresses are for --router; "
                     "use --ipv4/--ipv6 in host mode")
    for item in filter(None, rest.split(",")):
        if item.startswith("mtu="):
            spec.mtu = parse_mtu(item[4:])
        else:
            spec.addresses.append(parse_interface(item))
    return spec


def parse_services(text: str) -> list[ServiceSpec]:
    out: list[ServiceSpec] = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        kind, sep, port_text = item.partition(":")
        if kind not in SERVICES_TCP + SERVICES_UDP:
            raise _error(f"bad service {item!r}: unknown service {kind!r} "
                         f"(known: {', '.join(SERVICES_TCP + SERVICES_UDP)})")
        if not sep:
            raise _error(f"bad service {item!r}: expected SERVICE:PORT, e.g. echo:7")
        try:
            port = int(port_text)
        except ValueError:
            raise _error(f"bad service {item!r}: port {port_text!r} is not a number") from None
        if not 1 <= port <= 65535:
            raise _error(f"bad service {item!r}: port {port} out of range 1-65535")
        udp = kind in SERVICES_UDP
        if any(s.port == port and (s.kind in SERVICES_UDP) == udp for s in out):
            raise _error(f"bad service {item!r}: {'UDP' if udp else 'TCP'} port {port} "
                         "is already served")
        out.append(ServiceSpec(kind, port))
    return out


def stack_mac(devname: str, salt: str = "") -> bytes:
    """A stable, locally administered unicast MAC for the stack's side of a device."""
    h = hashlib.sha256(f"stacklab:{devname}:{salt}".encode()).digest()
    return bytes([0x02, 0x5A]) + h[:4]


@dataclass
class AppOptions:
    """What the application services (http, smtp, ftp, ssh) need beside their port."""

    root: str | None = None
    ssh_user: str | None = "stacklab"       # None: any user name
    ssh_password: str | None = None
    ssh_authorized_keys: str | None = None  # the file's text
    max_clients: int | None = None          # None: ServerLimits' default
    ca_out: str | None = None               # where the TLS services' root goes (None: a temp)
    tls_ips: list[str] = field(default_factory=list)  # the certificate's addresses


@dataclass
class TapConfig:
    router: bool
    devices: list[DeviceSpec]
    gateways: list[str]
    services: list[ServiceSpec]
    mac: bytes | None
    mtu: int | None
    apps: AppOptions = field(default_factory=AppOptions)


def parse_app_options(args: argparse.Namespace, services: list[ServiceSpec]) -> AppOptions:
    kinds = {s.kind for s in services}
    opts = AppOptions()
    root = getattr(args, "root", None)
    if root is not None:
        if not kinds & set(SERVICES_ROOT):
            raise _error("--root is for the http, smtp and ftp services (and https, ftps, "
                         "smtps); none is served")
        if not os.path.isdir(root):
            raise _error(f"bad --root {root!r}: not a directory")
        if not os.access(root, os.R_OK | os.X_OK):
            raise _error(f"bad --root {root!r}: not readable")
        if kinds & {"smtp", "ftp"} and not os.access(root, os.W_OK):
            raise _error(f"bad --root {root!r}: not writable (smtp and ftp store files in it)")
        opts.root = os.path.abspath(root)
    ca_out = getattr(args, "ca_out", None)
    if ca_out is not None:
        if not kinds & set(SERVICES_TLS):
            raise _error("--ca-out is for the https, ftps and smtps services; none is served")
        folder = os.path.dirname(os.path.abspath(ca_out))
        if os.path.isdir(ca_out) or not os.path.isdir(folder):
            raise _error(f"bad --ca-out {ca_out!r}: not a file in an existing directory")
        opts.ca_out = ca_out
    max_clients = getattr(args, "max_clients", None)
    if max_clients is not None:
        if not kinds & set(SERVICES_APPS):
            raise _error("--max-clients is for the http, smtp, ftp and ssh services (and "
                         "https, ftps, smtps); none is served")
        if not 1 <= max_clients <= MAX_CLIENTS_LIMIT:
            raise _error(f"bad --max-clients {max_clients}: 1..{MAX_CLIENTS_LIMIT}")
        opts.max_clients = max_clients
    user = getattr(args, "ssh_user", "stacklab")
    password = getattr(args, "ssh_password", None)
    keys_file = getattr(args, "ssh_authorized_keys", None)
    ssh_given = password is not None or keys_file is not None or user != "stacklab"
    if "ssh" not in kinds:
        if ssh_given:
            raise _error("--ssh-user/--ssh-password/--ssh-authorized-keys are for the ssh "
                         "service: add ssh:PORT to --serve")
        return opts
    if not user or any(c.isspace() or c == ":" for c in user):
        raise _error(f"bad --ssh-user {user!r}: expected a user name (or '*' for any)")
    opts.ssh_user = None if user == "*" else user
    if password is not None:
        if not password:
            raise _error("bad --ssh-password: empty")
        opts.ssh_password = password
    if keys_file is not None:
        try:
            with open(keys_file, encoding="utf-8") as f:
                text = f.read(1 << 20)
        except OSError as exc:
            raise _error(f"cannot read --ssh-authorized-keys {keys_file!r}: "
                         f"{exc.strerror}") from None
        except UnicodeDecodeError:
            raise _error(f"bad --ssh-authorized-keys {keys_file!r}: not a text file") from None
        if not any(ln.strip() and not ln.lstrip().startswith("#")
                   for ln in text.splitlines()):
            raise _error(f"bad --ssh-authorized-keys {keys_file!r}: no key in it")
        import asyncssh

        try:
            asyncssh.import_authorized_keys(text)
        except (ValueError, asyncssh.KeyImportError) as exc:
            raise _error(f"bad --ssh-authorized-keys {keys_file!r}: {exc}") from None
        opts.ssh_authorized_keys = text
    if opts.ssh_password is None and opts.ssh_authorized_keys is None:
        raise _error("the ssh service needs --ssh-password PASSWORD and/or "
                     "--ssh-authorized-keys FILE (nobody could log in)")
    return opts


def parse_args(args: argparse.Namespace) -> TapConfig:
    router = bool(args.router)
    if not args.dev:
        raise _error("no device: give --dev NAME (a TAP device, created if it does not exist)")
    devices = [parse_device(d, router=router) for d in args.dev]
    names = [d.name for d in devices]
    if len(set(names)) != len(names):
        raise _error(f"device given twice: {names}")
    mtu = parse_mtu(args.mtu) if args.mtu is not None else None
    if router:
        if len(devices) < 2:
            raise _error("--router needs at least two devices: --dev A=ADDR/LEN --dev B=ADDR/LEN")
        if args.ipv4 or args.ipv6:
            raise _error("--router takes addresses per device (--dev NAME=ADDR/LEN), "
                         "not --ipv4/--ipv6")
        for d in devices:
            if not d.addresses:
                raise _error(f"router device {d.name!r} has no address: --dev {d.name}=ADDR/LEN")
            if d.mtu is None:
                d.mtu = mtu
    else:
        if len(devices) != 1:
            raise _error("host mode takes one --dev; use --router for several devices")
        d = devices[0]
        d.addresses = ([parse_interface(a, 4) for a in args.ipv4]
                       + [parse_interface(a, 6) for a in args.ipv6])
        if not d.addresses:
            raise _error("no address: give --ipv4 ADDR/LEN and/or --ipv6 ADDR/LEN")
        d.mtu = mtu
    gateways = [parse_gateway(g) for g in args.gw]
    services = parse_services(args.serve)
    if router and services:
        raise _error("--serve is for host mode (a router serves nothing)")
    apps = parse_app_options(args, services)
    apps.tls_ips = [str(ipaddress.ip_interface(a).ip) for d in devices for a in d.addresses]
    mac = None
    if args.mac:
        from stacklab.wire.addr import mac_bytes

        try:
            mac = mac_bytes(args.mac)
        except ValueError as exc:
            raise _error(f"bad MAC {args.mac!r}: {exc}") from None
    return TapConfig(router, devices, gateways, services, mac, mtu, apps)


# -- building the node ---------------------------------------------------------------------------
def build_node(cfg: TapConfig, *, seed: int, tracer: Any = None) -> Host:
    """The API Host or Router described by ``cfg``, its ports in ``cfg.devices`` order
    (:class:`~stacklab.api.realtime.RealtimeStack` attaches its driver)."""
    from stacklab.api.host import Host, Router

    rng = random.Random(seed)
    node = (Router("router", rng=rng, tracer=tracer) if cfg.router
            else Host("stacklab", rng=rng, tracer=tracer))
    for i, d in enumerate(cfg.devices):
        mac = cfg.mac if (cfg.mac is not None and i == 0) else stack_mac(d.name, str(i))
        port = node.add_interface(d.name, mac, d.mtu or 1500)
        for addr in d.addresses:
            node.add_address(port.index, addr)
    for gw in cfg.gateways:
        default = "0.0.0.0/0" if ipaddress.ip_address(gw).version == 4 else "::/0"
        node.add_route(default, via=gw)
    return node


# -- services ---------------------------------------------------------------------------------
class ConnLog:
    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def line(self, text: str) -> None:
        if not self.quiet:
            stamp = time.strftime("%H:%M:%S")
            print(f"{stamp} {text}", file=sys.stderr, flush=True)


def _peer(writer: Any) -> str:
    """``host:port`` of a stream's peer (or of a peername tuple itself)."""
    peer = writer if isinstance(writer, tuple) else writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = peer[0]
        return f"[{host}]:{peer[1]}" if ":" in str(host) else f"{host}:{peer[1]}"
    return str(peer)


def tcp_service(kind: str, port: int, log: ConnLog) -> Any:
    http: Any = None
    if kind == "http":
        from stacklab.apps.http import HttpServer

        http = HttpServer()

    async def handler(reader: Any, writer: Any) -> None:
        peer = _peer(writer)
        started = time.monotonic()
        rx = tx = 0
        outcome = "closed"
        try:
            if kind == "echo":
                while data := await reader.read(65536):
                    rx += len(data)
                    writer.write(data)
                    tx += len(data)
                    await writer.drain()
            elif kind == "discard":
                while data := await reader.read(65536):
                    rx += len(data)
            elif kind == "daytime":
                msg = time.strftime("%A, %B %d, %Y %H:%M:%S-%Z\r\n").encode()
                writer.write(msg)
                tx += len(msg)
                await writer.drain()
            elif kind == "chargen":
                chars = bytes(range(33, 127))
                line_no = 0
                while True:
                    start = line_no % len(chars)
                    line = (chars * 2)[start:start + 72] + b"\r\n"
                    writer.write(line * 64)
                    tx += len(line) * 64
                    line_no += 1
                    await writer.drain()
            elif kind == "http":
                await http.handle(reader, writer)
                rx, tx = -1, -1  # the HTTP server does its own I/O; see its counters
        except (ConnectionError, OSError) as exc:
            outcome = f"error: {exc}"
        finally:
            try:
                writer.close()
            except Exception:
                pass
            counts = f" rx={rx} tx={tx}" if rx >= 0 else ""
            log.line(f"tcp {kind}:{port} {peer} {outcome}{counts} "
                     f"{time.monotonic() - started:.3f}s")
    return handler


def write_ca(opts: AppOptions) -> str:
    """Write the TLS services' root certificate to ``--ca-out`` (or a new temporary file);
    its path."""
    import tempfile

    from stacklab.apps.tlsca import scenario_ca

    pem = scenario_ca(TAP_CA).cert_pem
    if opts.ca_out is not None:
        try:
            with open(opts.ca_out, "wb") as f:
                f.write(pem)
        except OSError as exc:
            raise _error(f"cannot write --ca-out {opts.ca_out!r}: {exc.strerror}") from None
        return opts.ca_out
    fd, path = tempfile.mkstemp(prefix="stacklab-tap-ca-", suffix=".pem")
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return path


def server_tls(opts: AppOptions) -> ssl.SSLContext:
    """The TLS services' server context: a certificate for ``stacklab`` and the addresses."""
    from stacklab.apps.tlsca import scenario_ca

    return scenario_ca(TAP_CA).issue("stacklab", ips=opts.tls_ips).server_context()


async def start_app_service(node: Any, svc: ServiceSpec, opts: AppOptions,
                            log: ConnLog) -> Any:
    """An application server of :mod:`stacklab.apps` on ``node``, logging each connection."""
    root = opts.root
    limits = ServerLimits() if opts.max_clients is None else ServerLimits(
        max_clients=opts.max_clients)
    tls = server_tls(opts) if svc.kind in SERVICES_TLS else None
    server: Any
    if svc.kind == "ssh":
        from stacklab.apps.ssh import SshServer

        server = SshServer(user=opts.ssh_user, password=opts.ssh_password,
                           authorized_keys=opts.ssh_authorized_keys, limits=limits)

        def ssh_closed(peername: Any, outcome: str, seconds: float) -> None:
            log.line(f"tcp ssh:{svc.port} {_peer(peername)} {outcome} {seconds:.3f}s")

        server.on_close = ssh_closed
        await server.start(node, svc.port)
        log.line(f"ssh:{svc.port} host key {server.host_key.get_fingerprint()}")
        return server
    if svc.kind in ("http", "https"):
        from stacklab.apps.http import HttpServer

        server = HttpServer(root=root, limits=limits, tls=tls)
    elif svc.kind in ("smtp", "smtps"):
        from stacklab.apps.smtp import Mailbox, SmtpServer

        server = SmtpServer(Mailbox(os.path.join(root, MAIL_DIR) if root else None),
                            limits=limits, tls=tls, tls_mode="implicit" if tls else "starttls")
    else:
        from stacklab.apps.ftp import FtpServer

        server = FtpServer(root=root, limits=limits, tls=tls,
                           tls_mode="implicit" if tls else "explicit")

    def on_close(writer: Any, outcome: str, seconds: float) -> None:
        extra = ""
        if svc.kind in ("smtp", "smtps") and server.mailbox.messages:
            last = server.mailbox.messages[-1]
            extra = f" messages={len(server.mailbox.messages)}"
            if last.path is not None:
                extra += f" last={last.path}"
        log.line(f"tcp {svc.kind}:{svc.port} {_peer(writer)} {outcome}{extra} {seconds:.3f}s")

    server.on_close = on_close
    await server.start(node, svc.port)
    return server


async def start_services(node: Any, services: list[ServiceSpec], log: ConnLog,
                         apps: AppOptions | None = None) -> list[Any]:
    started = []
    for svc in services:
        if svc.kind in SERVICES_APPS:
            started.append(await start_app_service(node, svc, apps or AppOptions(), log))
        elif svc.kind in SERVICES_TCP:
            server = await node.start_server(tcp_service(svc.kind, svc.port, log), port=svc.port)
            started.append(server)
        else:
            started.append(await start_udp_service(node, svc, log))
    return started


async def start_udp_service(node: Any, svc: ServiceSpec, log: ConnLog) -> Any:
    class Proto(asyncio.DatagramProtocol):
        transport: Any = None

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: Any) -> None:
            log.line(f"udp {svc.kind}:{svc.port} {addr[0]}:{addr[1]} datagram of {len(data)} bytes")
            if svc.kind == "udp-echo":
                self.transport.sendto(data, addr)

    # "::": both families, as a Linux socket on :: without IPV6_V6ONLY (the TCP services too)
    transport, _ = await node.create_datagram_endpoint(Proto, local_addr=("::", svc.port))
    return transport


# -- running ------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> int:
    from stacklab.api.realtime import RealtimeStack
    from stacklab.device.tap import TapDevice, TapError

    cfg = parse_args(args)
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    try:
        node = build_node(cfg, seed=seed)
    except (ValueError, TypeError) as exc:
        raise _error(f"cannot set up the stack: {exc}") from None
    devices: list[TapDevice] = []
    pcap = None
    try:
        for d in cfg.devices:
            try:
                devices.append(TapDevice.open(d.name, netns=args.netns, up=args.up, mtu=None))
            except TapError as exc:
                raise _error(str(exc)) from None
        capture = None
        if args.pcap:
            from stacklab.device.pcap import PcapWriter

            try:
                pcap = PcapWriter(args.pcap)
            except OSError as exc:
                raise _error(f"cannot write pcap {args.pcap!r}: {exc.strerror}") from None
            writer = pcap

            def capture(ifindex: int, direction: str, t: float, frame: bytes) -> None:
                writer.write(frame, t)

        if any(s.kind in SERVICES_TLS for s in cfg.services):
            path = write_ca(cfg.apps)  # told even with --quiet: the clients need it
            print(f"TLS services' CA certificate: {path} (curl --cacert {path} ...)",
                  file=sys.stderr, flush=True)
        stack = RealtimeStack(node, devices, capture=capture)
        log = ConnLog(args.quiet)

        async def main() -> None:
            await start_services(node, cfg.services, log, cfg.apps)
            what = "router" if cfg.router else "host"
            for d in cfg.devices:
                log.line(f"{what} on {d.name}: {', '.join(d.addresses)}"
                         f" mtu {d.mtu or 1500}")
            if cfg.services:
                log.line("serving " + ", ".join(f"{s.kind}:{s.port}" for s in cfg.services))
            log.line("ready (Ctrl-C to stop)")
            await asyncio.Event().wait()

        stack.run(main)
        log.line("stopped")
    finally:
        for dev in devices:
            dev.close()
        if pcap is not None:
            pcap.close()
    return 0
