"""The TAP CLI's application services (stacklab.cli.tap), run on the simulator: the 64-client
limit can be raised with ``--max-clients N`` (issue 20 item 13)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from stacklab.cli.main import CliError, build_parser
from stacklab.cli.tap import ConnLog, parse_app_options, parse_services, start_services
from stacklab.net.network import Network


def _options(argv: list[str]) -> Any:
    args = build_parser().parse_args(["tap", "--dev", "tap0", *argv])
    return parse_app_options(args, parse_services(args.serve))


def _concurrent_gets(max_clients: int | None, clients: int) -> list[bytes]:
    opts = _options(["--serve", "http:80"] + (
        [] if max_clients is None else ["--max-clients", str(max_clients)]))
    with Network(seed=6) as net:
        a, b = net.add_host("a"), net.add_host("b")
        net.connect(a, b, delay="1ms")
        net.autoconfigure()

        async def get(opened: asyncio.Event) -> bytes:
            reader, writer = await a.open_connection("b", 80)
            await opened.wait()  # every connection is up before any request is served
            writer.write(b"GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
            status = (await reader.readline()).split(b" ")[1]
            writer.close()
            return status

        async def main() -> list[bytes]:
            await start_services(b, parse_services("http:80"), ConnLog(quiet=True), opts)
            opened = asyncio.Event()
            tasks = [asyncio.ensure_future(get(opened)) for _ in range(clients)]
            await asyncio.sleep(1)
            opened.set()
            return list(await asyncio.gather(*tasks))

        return net.run(main(), until=60)


def test_max_clients_raises_the_limit_of_the_application_services() -> None:
    assert _concurrent_gets(None, 100).count(b"503") == 100 - 64  # the default
    assert _concurrent_gets(200, 200) == [b"200"] * 200


@pytest.mark.parametrize("argv,message", [
    (["--serve", "http:80", "--max-clients", "0"], "bad --max-clients 0"),
    (["--serve", "echo:7", "--max-clients", "10"], "--max-clients is for the http"),
])
def test_bad_max_clients_are_named(argv: list[str], message: str) -> None:
    with pytest.raises(CliError, match=message):
        _options(argv)
