"""The TAP device alone, with hand-made frames: what Linux sends, and what it accepts from us."""

from __future__ import annotations

import asyncio
import struct
import time

import pytest

from stacklab.device.tap import TapDevice, TapError
from stacklab.wire.addr import ip_bytes, mac_str
from stacklab.wire.arp import ARP_REPLY, ARP_REQUEST, ArpView, build_arp
from stacklab.wire.checksum import internet_checksum
from stacklab.wire.ethernet import ETH_P_ARP, ETH_P_IPV4, EthernetView, build_ethernet

from .linux import Netns, open_tap

OUR_MAC = bytes.fromhex("02005ac00002")
OUR_IP = "10.211.0.2"


def read_until(tap: TapDevice, pred, timeout: float = 3.0) -> EthernetView:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = tap.read_frame()
        if frame is None:
            time.sleep(0.005)
            continue
        eth = EthernetView(frame)
        if pred(eth):
            return eth
    raise AssertionError(f"no matching frame within {timeout} s")


def is_arp_request_for(ip: str):
    def pred(eth: EthernetView) -> bool:
        if eth.ethertype != ETH_P_ARP:
            return False
        arp = ArpView(eth.payload)
        return arp.op == ARP_REQUEST and arp.tpa == ip_bytes(ip)
    return pred


def echo_reply_for(request: EthernetView) -> bytes:
    """Turn an ICMP echo request frame into the reply, by hand (no stack involved)."""
    ip = bytearray(request.payload)
    ihl = (ip[0] & 0x0F) * 4
    src, dst = bytes(ip[12:16]), bytes(ip[16:20])
    ip[12:16], ip[16:20] = dst, src
    ip[8] = 64
    ip[10:12] = b"\0\0"
    ip[10:12] = struct.pack("!H", internet_checksum(bytes(ip[:ihl])))
    icmp = ip[ihl:]
    icmp[0] = 0
    icmp[2:4] = b"\0\0"
    icmp[2:4] = struct.pack("!H", internet_checksum(bytes(icmp)))
    ip[ihl:] = icmp
    return bytes(build_ethernet(request.src, OUR_MAC, ETH_P_IPV4, bytes(ip)))


def test_linux_ping_sends_arp_request_and_accepts_hand_made_replies(netns: Netns) -> None:
    tap = open_tap(netns)
    linux_mac = tap.kernel_mac()
    ping = netns.popen("ping", "-c", "1", "-W", "3", OUR_IP)
    eth = read_until(tap, is_arp_request_for(OUR_IP))
    arp = ArpView(eth.payload)
    assert eth.dst == b"\xff" * 6 and eth.src == linux_mac
    assert arp.sha == linux_mac and arp.spa == ip_bytes("10.211.0.1")

    reply = build_arp(ARP_REPLY, OUR_MAC, ip_bytes(OUR_IP), linux_mac, ip_bytes("10.211.0.1"))
    assert tap.write_frame(bytes(build_ethernet(linux_mac, OUR_MAC, ETH_P_ARP, bytes(reply))))

    def is_echo_request(e: EthernetView) -> bool:
        return e.ethertype == ETH_P_IPV4 and e.payload[9] == 1 and e.payload[20] == 8
    request = read_until(tap, is_echo_request)
    assert request.dst == OUR_MAC  # Linux used the MAC it learnt from our ARP reply
    assert tap.write_frame(echo_reply_for(request))
    out, err = ping.communicate(timeout=5)
    assert ping.returncode == 0, out.decode() + err.decode()
    assert b"1 received" in out
    assert mac_str(OUR_MAC) in netns.neigh(OUR_IP)
    assert tap.counters["tx.frames"] == 2


def test_asyncio_reader_drains_frames(netns: Netns) -> None:
    tap = open_tap(netns)
    seen: list[bytes] = []
    batches: list[int] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        tap.attach(loop, lambda f, _valid, _gso: seen.append(bytes(f)),
                   lambda: batches.append(len(seen)))
        # Linux retries ARP every second; -c 2 -i 0.2 gives at least a couple of requests.
        proc = await asyncio.create_subprocess_exec(*netns.cmd(
            "ping", "-c", "3", "-i", "0.2", "-W", "1", OUR_IP),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        await asyncio.wait_for(proc.wait(), 10)
        tap.detach()

    asyncio.run(main())
    arps = [f for f in seen if is_arp_request_for(OUR_IP)(EthernetView(f))]
    assert arps, f"no ARP request among {len(seen)} frames"
    assert batches and batches[-1] == len(seen)


def test_send_accounts_for_every_frame_in_a_burst(netns: Netns) -> None:
    tap = open_tap(netns)
    linux_mac = tap.kernel_mac()
    frame = bytes(build_ethernet(linux_mac, OUR_MAC, 0x88B5, b"\0" * 1000))  # local experimental
    n = 3000

    async def main() -> None:
        tap.attach(asyncio.get_running_loop(), lambda f, _valid, _gso: None)
        for _ in range(n):
            tap.send(frame)
        wait_until = asyncio.get_running_loop().time() + 5
        while tap._txq and asyncio.get_running_loop().time() < wait_until:
            await asyncio.sleep(0.01)
        tap.detach()

    asyncio.run(main())
    c = tap.counters
    assert not tap._txq
    assert c["tx.frames"] + c["tx.dropped"] + c["tx.errors"] == n
    assert c["tx.frames"] > 0


BURST = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[1])):
    s.sendto(b"x" * 100, (sys.argv[2], 9))
"""


def test_a_burst_the_stack_reads_late_waits_in_the_device(netns: Netns) -> None:
    """The kernel holds RX_QUEUE_FRAMES frames for a reader that is busy (the stack's loop in
    a burst of ACK processing) instead of its 1000 (txqueuelen, beyond which tun drops): 3000
    datagrams sent while nobody reads all arrive, and with the kernel's queue a part is lost."""
    from stacklab.device.tap import RX_QUEUE_FRAMES

    n = 3000
    for dev, rx_queue, want in (("tap0", RX_QUEUE_FRAMES, RX_QUEUE_FRAMES),
                                ("tap1", None, 1000)):
        tap = TapDevice.open(dev, netns=netns.name, up=True, rx_queue=rx_queue)
        netns.on_cleanup(tap.close)
        assert tap.rx_queue() == want
        net = "10.211.0" if dev == "tap0" else "10.211.1"
        netns.run("ip", "addr", "add", f"{net}.1/24", "dev", dev)
        netns.run("ip", "neigh", "replace", f"{net}.2", "lladdr", mac_str(OUR_MAC), "dev", dev,
                  "nud", "permanent")
        netns.run("python3", "-c", BURST, str(n), f"{net}.2", timeout=30)
        got = 0
        for _ in range(2 * n):  # the queue, read at last (bounded: a frame per iteration)
            frame = tap.read_frame()
            if frame is None:
                break
            eth = EthernetView(frame)
            got += eth.ethertype == ETH_P_IPV4 and eth.payload[9] == 17  # UDP
        if rx_queue is not None:
            assert got == n
        else:
            assert 0 < got < n


def test_clear_errors(netns: Netns) -> None:
    tap = open_tap(netns)
    with pytest.raises(TapError, match="busy"):
        TapDevice.open("tap0", netns=netns.name)
    with pytest.raises(TapError, match="not a TAP device"):
        TapDevice.open("lo", netns=netns.name)
    with pytest.raises(TapError, match="bad device name"):
        TapDevice.open("name with spaces")
    with pytest.raises(TapError, match="bad device name"):
        TapDevice.open("x" * 16)
    with pytest.raises(TapError, match="no network namespace"):
        TapDevice.open("tap1", netns="stacklab-no-such-netns")
    tap.close()
    assert "tap0" not in netns.run("ip", "link").stdout  # a non-persistent device goes away
