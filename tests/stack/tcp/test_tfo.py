"""TCP Fast Open (RFC 7413, stack/tcp/tfo.py): cookies, the option on the wire, the sysctl, and
both ends on the simulator through the asyncio API (the SYNs read back from the pcap)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from stacklab.device.pcap import read_pcap
from stacklab.net.network import Network
from stacklab.stack.sysctl import BadSysctlValue
from stacklab.stack.tcp.tfo import parse_key, show_key, siphash24
from stacklab.wire.addr import ip_bytes
from stacklab.wire.ethernet import EthernetView
from stacklab.wire.ipv4 import IPv4View
from stacklab.wire.tcp import SYN, FastOpenOpt, TcpSegment, TcpView, encode_options

LINUX_KEY = "a0bf63f7-ed803d81-cd641d30-cebc4a90"


def test_cookie_is_linux_siphash_of_client_then_server_address() -> None:
    # Linux gives 10.248.0.2 the cookie 00abaaabe8e954c2 from 192.168.0.2 under this key
    # (the value upstream packetdrill's fastopen/server/simple1.pkt expects)
    key = parse_key(LINUX_KEY)
    assert key.hex() == "f763bfa0813d80ed301d64cd904abcce"  # each word little-endian
    assert show_key(key) == LINUX_KEY
    data = bytes([10, 248, 0, 2, 192, 168, 0, 2])
    assert siphash24(key, data).to_bytes(8, "little").hex() == "00abaaabe8e954c2"
    assert siphash24(bytes(16), data).to_bytes(8, "little").hex() == "93b7aa4f550f8a1a"


def test_option_kinds_34_and_254_round_trip() -> None:
    for opt, raw in ((FastOpenOpt(bytes.fromhex("abcd1234")), "2206abcd1234"),
                     (FastOpenOpt(b""), "2202"),
                     (FastOpenOpt(bytes(8), exp=True), "fe0cf989" + "00" * 8),
                     (FastOpenOpt(b"", exp=True), "fe04f989")):
        assert opt.encode().hex() == raw
        seg = TcpSegment(1, 2, 3, 0, SYN, 100, options=[opt])
        v = TcpView(seg.build(bytes(4), bytes(4)))
        assert v.fastopen() == opt
        assert v.options()[0] == opt
    # Linux's layout: the SYN's options, then the option padded with nop,nop to a word
    b = encode_options(mss=1460, sack_permitted=True, timestamps=(1, 0), wscale=7,
                       fastopen=FastOpenOpt(bytes(8)))
    assert b[20:].hex() == "220a" + "00" * 8 + "0101"
    assert TcpView(TcpSegment(1, 2, 3, 0, SYN, 100).build(bytes(4), bytes(4))).fastopen() is None


def test_sysctl_rows() -> None:
    net = Network(seed=1)
    h = net.add_host("h")
    assert h.sysctl["net.ipv4.tcp_fastopen"] == "1"  # Linux's default: the client
    h.sysctl["net.ipv4.tcp_fastopen"] = "0x603"
    assert h.tcp.tfo.mode == 0x603
    h.sysctl["net.ipv4.tcp_fastopen_key"] = LINUX_KEY
    assert h.sysctl["net.ipv4.tcp_fastopen_key"] == LINUX_KEY
    with pytest.raises(BadSysctlValue):
        h.sysctl["net.ipv4.tcp_fastopen_key"] = "12-34"


def test_default_key_comes_from_the_seed_when_first_needed() -> None:
    keys = []
    for seed in (7, 7, 8):
        h = Network(seed=seed).add_host("h")
        assert h.sysctl["net.ipv4.tcp_fastopen_key"] == "random, drawn at first use"
        state = h.rng.getstate()
        keys.append(h.tcp.tfo.cookie(bytes(4), bytes(4)))  # the first cookie draws the key
        assert h.rng.getstate() != state
        assert h.sysctl["net.ipv4.tcp_fastopen_key"] == show_key(h.tcp.tfo.key)
    assert keys[0] == keys[1] != keys[2]


def _syns(pcap_dir: Path) -> list[tuple[bool, bytes, FastOpenOpt | None]]:
    """(SYN-ACK?, payload, Fast Open option) of every SYN in the captures (each once: the
    first capture file that has it, the link's a -> b end)."""
    out = []
    for path in sorted(pcap_dir.glob("*.pcap"))[:1]:
        for rec in read_pcap(str(path))[1]:
            eth = EthernetView(rec.data)
            if eth.ethertype != 0x0800:
                continue
            ip = IPv4View(eth.payload)
            if ip.proto != 6:
                continue
            v = TcpView(ip.payload)
            if v.flags & SYN:
                out.append((bool(v.flags & 0x10), bytes(v.payload), v.fastopen()))
    return out


def _ips(net: Network) -> tuple[bytes, bytes]:
    a, b = net.nodes["a"], net.nodes["b"]
    return ip_bytes(a.address(4) or ""), ip_bytes(b.address(4) or "")


def _exchange(tmp_path: Path, server_mode: str, requests: int = 2, qlen: int = 8,
              key: str | None = None) -> tuple[list[bytes], Network]:
    net = Network(seed=3)
    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b, delay="5ms")
    net.autoconfigure()
    net.capture(str(tmp_path))
    b.sysctl["net.ipv4.tcp_fastopen"] = server_mode
    if key is not None:
        b.sysctl["net.ipv4.tcp_fastopen_key"] = key
    got: list[bytes] = []

    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        data = await r.readexactly(5)
        got.append(data)
        w.write(b"re:" + data)
        await w.drain()
        w.close()

    async def main() -> None:
        await b.start_server(handler, 80, fastopen=qlen)
        for i in range(requests):
            r, w = await a.open_connection("b", 80, fastopen=True)
            w.write(b"GET %d" % i)
            assert await r.read() == b"re:GET %d" % i
            w.close()
            await asyncio.sleep(1)

    net.run(main(), until="30s")
    return got, net


def test_first_connect_asks_for_a_cookie_second_carries_data_in_syn(tmp_path: Path) -> None:
    got, net = _exchange(tmp_path, "3", key=LINUX_KEY)
    assert got == [b"GET 0", b"GET 1"]
    syns = [s for s in _syns(tmp_path) if not s[0]]
    synacks = [s for s in _syns(tmp_path) if s[0]]
    assert syns[0] == (False, b"", FastOpenOpt(b""))  # a cookie request, no data
    a_ip, b_ip = _ips(net)
    cookie = net.nodes["b"].tcp.tfo.cookie(a_ip, b_ip)
    assert synacks[0][2] == FastOpenOpt(cookie)
    assert syns[1] == (False, b"GET 1", FastOpenOpt(cookie))  # the request in the SYN
    assert synacks[1][2] is None  # no cookie once the data was accepted
    assert net.nodes["a"].tcp.tfo.cache[b_ip].cookie == cookie


def test_server_without_the_bit_falls_back_and_the_data_is_resent(tmp_path: Path) -> None:
    # a first exchange caches a cookie, then the server's key changes: the cookie is invalid,
    # the SYN-ACK acknowledges only the SYN (with the new cookie), the client resends the data
    got, net = _exchange(tmp_path, "3", requests=1, key=LINUX_KEY)
    assert got == [b"GET 0"]
    b = net.nodes["b"]
    a = net.nodes["a"]
    b.sysctl["net.ipv4.tcp_fastopen_key"] = "00000000-00000000-00000000-00000001"
    got2: list[bytes] = []

    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        got2.append(await r.readexactly(5))
        w.close()

    async def main() -> None:
        await b.start_server(handler, 81, fastopen=8)
        r, w = await a.open_connection("b", 81, fastopen=True)
        w.write(b"again")
        assert await r.read() == b""
        w.close()
        await asyncio.sleep(1)

    net.run(main(), until="60s")
    assert got2 == [b"again"]
    syn_acks = [s for s in _syns(tmp_path) if s[0]]
    a_ip, b_ip = _ips(net)
    new_cookie = b.tcp.tfo.cookie(a_ip, b_ip)
    assert syn_acks[-1][2] == FastOpenOpt(new_cookie)
    syns = [s for s in _syns(tmp_path) if not s[0]]
    assert syns[-1][1] == b"again"  # sent in the SYN, not acknowledged: resent after it
    assert a.tcp.tfo.cache[b_ip].cookie == new_cookie


def test_tfo_off_on_the_server_is_a_plain_handshake(tmp_path: Path) -> None:
    got, _ = _exchange(tmp_path, "1")
    assert got == [b"GET 0", b"GET 1"]
    syns = _syns(tmp_path)
    assert all(payload == b"" for _, payload, _ in syns)
    assert [fo for synack, _, fo in syns if synack] == [None, None]
    # the kind-34 request went unanswered: the next one tries kind 254, as Linux (try_exp)
    assert [fo for synack, _, fo in syns if not synack] == [FastOpenOpt(b""),
                                                             FastOpenOpt(b"", exp=True)]
