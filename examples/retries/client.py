"""Two clients of the price service: the first one anyone writes, and the one that survives.

Plain asyncio, nothing of stacklab.
"""

from __future__ import annotations

import asyncio


async def price_naive(host: str, item: str, port: int = 8000) -> str:
    """Ask once and wait for the answer. If the server dies after it read the request (it
    acknowledged the bytes, so TCP has nothing to retransmit and the connection is idle), no
    segment ever comes back: this waits forever."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(item.encode() + b"\n")
        return (await reader.readline()).decode().strip()
    finally:
        writer.close()


async def price(host: str, item: str, port: int = 8000, *, timeout: float = 1.0,
                attempts: int = 8) -> str:
    """Ask with a deadline per attempt, and retry on a new connection with exponential
    backoff (0.2 s, 0.4 s... at most 2 s) when the attempt fails or times out. A lookup is
    idempotent, so asking twice is safe."""
    for attempt in range(attempts):
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(host, port)
                try:
                    writer.write(item.encode() + b"\n")
                    answer = (await reader.readline()).decode().strip()
                finally:
                    writer.close()
            if answer:  # an empty line: the server closed before answering
                return answer
        except (OSError, TimeoutError):
            pass
        await asyncio.sleep(min(2.0, 0.2 * 2 ** attempt))
    raise ConnectionError(f"no answer from {host}:{port} after {attempts} attempts")
