"""A small price service: one request per line (``apple``), one answer per line (``3``).

Plain asyncio, nothing of stacklab: it runs the same on a real machine
(``asyncio.run(serve())``) and on a simulated host (``host.spawn(serve())``).
"""

from __future__ import annotations

import asyncio

PRICES = {"apple": "3", "pear": "4", "plum": "2", "fig": "7"}
WORK = 0.05  # s to look a price up (a database, say)


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        await asyncio.sleep(WORK)
        writer.write(PRICES.get(line.decode().strip(), "?").encode() + b"\n")
        await writer.drain()
    writer.close()


async def serve(port: int = 8000) -> None:
    server = await asyncio.start_server(handle, None, port)
    async with server:
        await server.serve_forever()
