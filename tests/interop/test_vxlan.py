"""Labs across machines (docs/scale-out.md): two network namespaces stand for two machines joined
by a veth (the "physical" network), a Linux VXLAN (RFC 7348) over it, and on each side a bridge
with a stacklab instance on a TAP device. Linux does the tunnelling; stacklab does nothing
special. Checked: ping, TCP and the application protocols across, and that the MTU and path MTU
discovery account for VXLAN's 50 bytes (outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .linux import Netns, open_tap, tshark_lines, tshark_problems, wait_for
from .stackhost import StackOnTap, pcap_file, start_stack
from .test_apps_servers import curl
from .test_cli_interop import StacklabProcess

VNI = 4242
UNDERLAY_MTU = 1500
VXLAN_OVERHEAD = 50
OVERLAY_MTU = UNDERLAY_MTU - VXLAN_OVERHEAD  # 1450: what Linux gives the VXLAN device
UNDER_A, UNDER_B = "10.211.90.1", "10.211.90.2"  # the two "machines" on the physical network


def two_machines(make_netns: Callable[[], Netns]) -> tuple[Netns, Netns]:
    """Namespaces a and b: a veth between them (eth0 on each), a VXLAN vx0 over it, bridged
    into br0 on each side; returned with every device up."""
    a, b = make_netns(), make_netns()
    a.run("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b.name)
    for ns, local, remote in ((a, UNDER_A, UNDER_B), (b, UNDER_B, UNDER_A)):
        ns.run("ip", "link", "set", "eth0", "mtu", str(UNDERLAY_MTU), "up")
        ns.run("ip", "addr", "add", f"{local}/24", "dev", "eth0")
        # the commands of docs/scale-out.md, with the other machine's address as the remote
        ns.run("ip", "link", "add", "vx0", "type", "vxlan", "id", str(VNI), "local", local,
               "remote", remote, "dstport", "4789", "dev", "eth0")
        ns.run("ip", "link", "add", "br0", "type", "bridge")
        ns.run("ip", "link", "set", "vx0", "master", "br0")
        ns.run("ip", "link", "set", "vx0", "up")
        ns.run("ip", "link", "set", "br0", "up")
    return a, b


def mtu_of(ns: Netns, dev: str) -> int:
    m = re.search(r"\bmtu (\d+)", ns.run("ip", "link", "show", dev).stdout)
    assert m, dev
    return int(m.group(1))


def forwarding(ns: Netns) -> None:
    ns.run("sysctl", "-qw", "net.ipv4.ip_forward=1")
    ns.run("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")


class Serving:
    """``stacklab tap`` on machine b (servers: echo, HTTP, SMTP, FTP under ``root``)."""

    def __init__(self, ns: Netns, tmp_path: Path, *args: str) -> None:
        self.root = tmp_path / "srv"
        self.root.mkdir()
        self.pcap = tmp_path / "b.pcap"
        self.proc = StacklabProcess(ns, "--dev", "tap0", "--up", "--seed", "3",
                                    "--pcap", str(self.pcap), "--root", str(self.root),
                                    "--serve", "echo:7,http:80,smtp:25,ftp:21", *args)
        self.proc.wait_line(r"ready", timeout=15)
        self.stopped = False

    def stop(self) -> list[str]:
        if not self.stopped:
            self.stopped = True
            assert self.proc.terminate() == 0, self.proc.lines
        return tshark_problems(str(self.pcap))


@pytest.fixture
def stacks() -> Iterator[list[StackOnTap | Serving]]:
    """The stacklab instances a test starts; stopped at the end, their captures checked."""
    started: list[StackOnTap | Serving] = []
    yield started
    problems = [p for s in started for p in s.stop()]
    assert not problems, "tshark flags packets in the captures:\n" + "\n".join(problems)


def echo(h: StackOnTap, dst: str, size: int) -> tuple[bytes, dict[str, object]]:
    """Send ``size`` random bytes to the echo service at ``dst``; (what came back, the
    connection's summary)."""
    data = os.urandom(size)

    async def go() -> bytes:
        reader, writer = await h.node.open_connection(dst, 7)

        async def send() -> None:  # while the echo comes back: no window stays shut
            writer.write(data)
            await writer.drain()
            writer.write_eof()  # the echo server closes after echoing everything

        sender = asyncio.ensure_future(send())
        back = await reader.read()
        await sender
        writer.close()
        await writer.wait_closed()
        return back

    back = h.run(go(), timeout=60)
    assert hashlib.sha256(back).digest() == hashlib.sha256(data).digest()
    return back, h.call(h.node.tcp_connections_summary)[-1]


def test_one_l2_segment_across_vxlan(make_netns: Callable[[], Netns], tmp_path: Path,
                                     stacks: list[StackOnTap | Serving]) -> None:
    """Both stacklab instances bridged onto the VXLAN: one subnet spans the two machines."""
    a, b = two_machines(make_netns)
    assert mtu_of(a, "vx0") == mtu_of(b, "vx0") == OVERLAY_MTU  # Linux took the 50 bytes off
    # machine a: a stacklab host on tapa, and Linux itself on the bridge (.100)
    tap = open_tap(a, "tapa", ipv4=None, ipv6=None, mtu=OVERLAY_MTU)
    a.run("ip", "link", "set", "tapa", "master", "br0")
    a.run("ip", "addr", "add", "10.211.91.100/24", "dev", "br0")
    a.run("ip", "addr", "add", "fd00:5ac:91::100/64", "dev", "br0", "nodad")
    h = start_stack([(tap, ["10.211.91.1/24", "fd00:5ac:91::1/64"])], pcap_file(tmp_path))
    stacks.append(h)
    # machine b: `stacklab tap` (a separate process) on tap0, bridged
    s = Serving(b, tmp_path, "--ipv4", "10.211.91.2/24", "--ipv6", "fd00:5ac:91::2/64",
                "--mtu", str(OVERLAY_MTU))
    stacks.append(s)
    b.run("ip", "link", "set", "tap0", "mtu", str(OVERLAY_MTU))
    b.run("ip", "link", "set", "tap0", "master", "br0")
    assert mtu_of(a, "br0") == mtu_of(b, "br0") == OVERLAY_MTU

    # ping: Linux on a to stacklab on b, both families; stacklab to stacklab
    for dst in ("10.211.91.2", "fd00:5ac:91::2"):
        r = a.run("ping", "-c", "3", "-i", "0.2", "-W", "2", dst, check=False, timeout=20)
        assert " 0% packet loss" in r.stdout, r.stdout + r.stderr
    result = h.run(h.node.ping("10.211.91.2", count=3, interval=0.2, out=None))
    assert result.received == 3, result.lines
    # the largest unfragmented packet is the overlay's MTU: 1450 = 1422 data + 8 + 20 crosses,
    # one byte more does not leave machine a
    r = a.run("ping", "-M", "do", "-s", str(OVERLAY_MTU - 28), "-c", "2", "-i", "0.2", "-W",
              "2", "10.211.91.2", check=False, timeout=20)
    assert " 0% packet loss" in r.stdout, r.stdout + r.stderr
    r = a.run("ping", "-M", "do", "-s", str(OVERLAY_MTU - 27), "-c", "1", "-W", "2",
              "10.211.91.2", check=False, timeout=20)
    assert r.returncode != 0 and f"mtu={OVERLAY_MTU}" in r.stdout + r.stderr, r

    # TCP, stacklab to stacklab: each side offers the overlay's MTU less 40 (60 on IPv6) as its
    # MSS (checked in the captures below); the segments carry 12 bytes of timestamps on top
    for dst, mss in (("10.211.91.2", OVERLAY_MTU - 40), ("fd00:5ac:91::2", OVERLAY_MTU - 60)):
        _, conn = echo(h, dst, 1 << 20)
        assert conn["mss"] == mss - 12 and conn["pmtu"] == OVERLAY_MTU, conn

    # the application protocols: Linux's curl on a, stacklab's servers on b
    body = os.urandom(300_000)
    (s.root / "page.bin").write_bytes(body)
    assert curl(a, "http://10.211.91.2/page.bin") == body
    assert curl(a, "-g", "http://[fd00:5ac:91::2]/page.bin") == body
    up = os.urandom(200_000)
    curl(a, "-T", "-", "ftp://10.211.91.2/up.bin", input=up)
    wait_for(lambda: (s.root / "up.bin").exists() and (s.root / "up.bin").read_bytes() == up,
             10, "the FTP upload on machine b")
    message = b"From: a@lab.test\r\nSubject: across VXLAN\r\n\r\n" + b"".join(
        b"line %04d %s\r\n" % (i, os.urandom(30).hex().encode()) for i in range(1000))
    curl(a, "smtp://10.211.91.2", "--mail-from", "a@lab.test", "--mail-rcpt", "b@lab.test",
         "-T", "-", input=message)
    mail = s.root / "mail" / "000001.eml"
    wait_for(mail.exists, 10, f"{mail}")
    assert mail.read_bytes() == message

    # no frame on either TAP is longer than the overlay's MTU (+ 14 bytes of Ethernet header)
    for problems, pcap in ((h.stop(), h.pcap_path), (s.stop(), str(s.pcap))):
        assert not problems, problems
        sizes = [int(n) for n in tshark_fields(pcap, "frame", "frame.len")]
        assert sizes and max(sizes) == OVERLAY_MTU + 14, (pcap, max(sizes))
        for ip, mss in (("ip", OVERLAY_MTU - 40), ("ipv6", OVERLAY_MTU - 60)):
            offered = tshark_fields(pcap, f"{ip} && tcp.flags.syn == 1", "tcp.options.mss_val")
            assert offered and set(offered) == {str(mss)}, (pcap, ip, offered)


@pytest.mark.parametrize("family", [4, 6])
def test_pmtud_finds_the_vxlan_overhead(make_netns: Callable[[], Netns], tmp_path: Path,
                                        stacks: list[StackOnTap | Serving], family: int) -> None:
    """Each machine routes between its stacklab instance (an MTU of 1500 on its TAP) and the
    VXLAN: TCP's full-size segments do not fit the tunnel, Linux answers them with Frag Needed /
    Packet Too Big for 1450, and both stacklab ends settle on a path MTU of 1450."""
    a, b = two_machines(make_netns)
    for ns in (a, b):
        forwarding(ns)
    a.run("ip", "addr", "add", "10.211.93.1/24", "dev", "br0")
    a.run("ip", "addr", "add", "fd00:5ac:93::1/64", "dev", "br0", "nodad")
    b.run("ip", "addr", "add", "10.211.93.2/24", "dev", "br0")
    b.run("ip", "addr", "add", "fd00:5ac:93::2/64", "dev", "br0", "nodad")
    a.run("ip", "route", "add", "10.211.94.0/24", "via", "10.211.93.2")
    a.run("ip", "-6", "route", "add", "fd00:5ac:94::/64", "via", "fd00:5ac:93::2")
    b.run("ip", "route", "add", "10.211.92.0/24", "via", "10.211.93.1")
    b.run("ip", "-6", "route", "add", "fd00:5ac:92::/64", "via", "fd00:5ac:93::1")
    tap = open_tap(a, "tapa", ipv4="10.211.92.1/24", ipv6="fd00:5ac:92::1/64")
    h = start_stack([(tap, ["10.211.92.2/24", "fd00:5ac:92::2/64"])], pcap_file(tmp_path),
                    gateways=["10.211.92.1", "fd00:5ac:92::1"])
    stacks.append(h)
    s = Serving(b, tmp_path, "--ipv4", "10.211.94.2/24", "--ipv6", "fd00:5ac:94::2/64",
                "--gw", "10.211.94.1", "--gw", "fd00:5ac:94::1")
    stacks.append(s)
    b.run("ip", "addr", "add", "10.211.94.1/24", "dev", "tap0")
    b.run("ip", "addr", "add", "fd00:5ac:94::1/64", "dev", "tap0", "nodad")
    assert mtu_of(a, "tapa") == mtu_of(b, "tap0") == UNDERLAY_MTU

    dst = "10.211.94.2" if family == 4 else "fd00:5ac:94::2"
    header = 40 if family == 4 else 60
    _, conn = echo(h, dst, 2 << 20)  # both ways: a's data, then b's echo of it
    # the path MTU learned, and the segment size that follows (12 bytes of timestamps less)
    assert conn["pmtu"] == OVERLAY_MTU and conn["mss"] == OVERLAY_MTU - header - 12, conn
    icmp = (f"icmp.type == 3 && icmp.code == 4 && icmp.mtu == {OVERLAY_MTU}" if family == 4
            else f"icmpv6.type == 2 && icmpv6.mtu == {OVERLAY_MTU}")
    pcaps = {"a": h.pcap_path, "b": str(s.pcap)}
    for problems in (h.stop(), s.stop()):
        assert not problems, problems
    src = {"a": "10.211.92.2", "b": "10.211.94.2"} if family == 4 else \
        {"a": "fd00:5ac:92::2", "b": "fd00:5ac:94::2"}
    ip = "ip" if family == 4 else "ipv6"

    def largest(pcap: str, sender: str) -> int:
        """The largest IP packet with TCP data that ``sender`` sent, as seen in ``pcap``."""
        lens = tshark_fields(pcaps[pcap], f"{ip}.src == {src[sender]} && tcp.len > 0",
                             "frame.len")
        return max(int(n) for n in lens) - 14

    for here, there in (("a", "b"), ("b", "a")):
        # each end heard from its own machine's Linux that the tunnel takes 1450 bytes...
        assert tshark_lines(pcaps[here], icmp), f"no Frag Needed / Packet Too Big in {here}"
        # ...after trying 1500: those never reached the other side, whose largest is 1450
        assert largest(here, here) == UNDERLAY_MTU
        assert largest(there, here) == OVERLAY_MTU


def tshark_fields(pcap: str, display_filter: str, field: str) -> list[str]:
    """The values of ``field`` in the frames of ``pcap`` that ``display_filter`` selects."""
    r = subprocess.run(["tshark", "-n", "-r", pcap, "-Y", display_filter, "-T", "fields",
                        "-e", field], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return [ln for ln in r.stdout.split() if ln]
