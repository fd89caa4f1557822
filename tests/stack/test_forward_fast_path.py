"""The router's forwarding fast path (``Ipv4.forward_frame``) changes nothing: the routed golden
scenarios give the same pcaps and counters with it as with every frame taken by the ordinary
receive/forward path, and it does take part of the traffic (the rest, ICMP-worthy or too big
for the next link, it leaves to that path)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stacklab.stack.ipv4 import Ipv4
from tests.golden.test_golden import snapshot


@pytest.mark.parametrize("name", ["pmtud-routers", "app-wan"])
def test_forward_fast_path_gives_the_same_frames(name: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    taken: list[bool] = []
    real = Ipv4.forward_frame

    def spy(self: Ipv4, *args: object) -> bool:
        ok = real(self, *args)  # type: ignore[arg-type]
        taken.append(ok)
        return ok

    monkeypatch.setattr(Ipv4, "forward_frame", spy)
    fast = snapshot(name, tmp_path / "fast")
    assert any(taken) and not all(taken)  # both paths forwarded frames
    monkeypatch.setattr(Ipv4, "forward_frame", lambda *args: False)
    slow = snapshot(name, tmp_path / "slow")
    assert fast == slow
