"""IP_TOS and IP_MTU_DISCOVER through the stream API's socket face (``get_extra_info("socket")``):
set on an open connection, read back, an unknown mode refused as Linux does."""

from __future__ import annotations

import asyncio
import errno
import socket
from typing import Any

import pytest

import stacklab
from stacklab.stack.pmtudisc import IP_MTU_DISCOVER, IP_PMTUDISC_DONT


def test_stream_api_ip_tos_and_ip_mtu_discover() -> None:
    net = stacklab.Network(seed=5)
    a, b = net.add_host("a"), net.add_host("b")
    net.connect(a, b, delay="1ms")
    net.autoconfigure()
    seen: dict[str, Any] = {}

    async def sink(r: Any, w: Any) -> None:
        await r.read()

    async def main() -> None:
        await b.start_server(sink, 9)
        _, w = await a.open_connection("b", 9)
        sock, tcb = w.get_extra_info("socket"), w.get_extra_info("tcb")
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0xB9)  # the ECN bits stay TCP's
        sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT)
        with pytest.raises(OSError) as e:
            sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, 6)
        seen["bad mode"] = e.value.errno
        seen["tos"] = sock.getsockopt(socket.IPPROTO_IP, socket.IP_TOS)
        seen["mode"] = sock.getsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER)
        seen["config"] = (tcb.config.tos, tcb.config.pmtudisc)
        w.close()
        await asyncio.sleep(0.1)

    net.run(main(), until="10s")
    net.close()
    assert seen == {"bad mode": errno.EINVAL, "tos": 0xB8, "mode": IP_PMTUDISC_DONT,
                    "config": (0xB8, IP_PMTUDISC_DONT)}
