"""Initial sequence numbers per RFC 6528: ISN = M + F(localip, localport, remoteip, remoteport,
secretkey).

M is a clock ticking every 4 microseconds and F a keyed hash (keyed BLAKE2s from the stdlib). In
the simulator the key comes from the host's seeded ``random.Random``, so runs are reproducible while
ISNs stay unpredictable to anyone who does not know the seed.
"""

from __future__ import annotations

import hashlib
import random

from .seq import MASK


class IsnGenerator:
    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not 16 <= len(key) <= 32:
            raise ValueError("RFC 6528 secret key: use 16 to 32 bytes")
        self._key = key

    @classmethod
    def from_rng(cls, rng: random.Random) -> IsnGenerator:
        return cls(rng.getrandbits(128).to_bytes(16, "big"))

    def isn(self, local_ip: bytes, local_port: int, remote_ip: bytes, remote_port: int,
            now: float) -> int:
        h = hashlib.blake2s(
            local_ip + local_port.to_bytes(2, "big") + remote_ip + remote_port.to_bytes(2, "big"),
            key=self._key, digest_size=4,
        ).digest()
        m = int(now * 250_000)  # §3: a timer ticking every 4 µs
        return (m + int.from_bytes(h, "big")) & MASK
