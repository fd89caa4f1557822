"""Flows sharing a bottleneck: per-flow samples on virtual time, and Jain's fairness index.

A ``tcp-send`` with ``sample = "100ms"`` runs a :class:`FlowSampler` beside its transfer: every
interval it reads the connection's ``tcp_info`` (bytes acknowledged, cwnd, SRTT), and its result
gets ``flow`` figures (goodput, retransmissions, mean and max cwnd, mean SRTT) and the samples.
:func:`fairness_summary` turns the sampled flows of a run into the summary's ``fairness``
section: one row per flow, Jain's index over their goodput while all of them were sending, and
the index over time.

Jain's fairness index (Jain, Chiu, Hawe 1984) of rates x1..xn is (Σx)² / (n·Σx²): 1 when all
flows get the same rate, 1/n when one flow takes everything.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["FlowSampler", "fairness_summary", "jain_index"]

MAX_SAMPLES = 100_000  # a sampler's loop bound (at 10 ms, over 16 minutes of virtual time)
SHOWN_SAMPLES = 400  # samples kept in the JSON per flow (thinned evenly)
FAIRNESS_POINTS = 50  # at most, points of the fairness index over time
FAIRNESS_BIN = 0.25  # at least, seconds per point: several round trips of a typical path (a
# shorter bin measures how bursty each window is, not the flows' shares)


def jain_index(rates: Sequence[float]) -> float | None:
    """Jain's fairness index of ``rates``; None without a positive rate (nothing to share)."""
    square_sum = sum(x * x for x in rates)
    if not rates or square_sum <= 0:
        return None
    return sum(rates) ** 2 / (len(rates) * square_sum)


Sample = tuple[float, int, int, float | None]  # (t, bytes acknowledged, cwnd, srtt)


class FlowSampler:
    """Samples a connection every ``interval`` seconds of virtual time, from ``start()`` until
    ``stop()`` (which takes a last sample)."""

    def __init__(self, now: Callable[[], float], info: Callable[[], dict[str, Any]],
                 interval: float) -> None:
        self.now = now
        self.info = info
        self.interval = interval
        self.samples: list[Sample] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.take()

    async def _run(self) -> None:
        for _ in range(MAX_SAMPLES):
            self.take()
            await asyncio.sleep(self.interval)

    def take(self) -> None:
        info = self.info()
        self.samples.append((self.now(), int(info["bytes_acked"]), int(info["cwnd"]),
                             info["srtt"]))

    def figures(self, retransmits: int, cwnd_log: Sequence[tuple[float, int, int]] = ()
                ) -> dict[str, Any]:
        """The ``flow`` figures of a tcp-send result: goodput (bytes acknowledged per second
        between the first and the last sample), mean cwnd and mean SRTT over the samples (a
        time average: they are evenly spaced), max cwnd (of the samples and every cwnd change
        the connection logged), and the samples [t, acked, cwnd, srtt] thinned to a few
        hundred."""
        s = self.samples
        span = s[-1][0] - s[0][0] if len(s) > 1 else 0.0
        rtts = [r for *_, r in s if r is not None]
        cwnds = [c for _, _, c, _ in s]
        step = max(1, -(-len(s) // SHOWN_SAMPLES))
        shown = s[::step] if s[-1] in s[::step] else [*s[::step], s[-1]]
        return {
            "goodput_bps": round(8 * (s[-1][1] - s[0][1]) / span) if span > 0 else None,
            "retransmits": retransmits,
            "cwnd_mean": round(sum(cwnds) / len(cwnds)),
            "cwnd_max": max(cwnds + [c for _, c, _ in cwnd_log]),
            "rtt_mean_ms": round(1e3 * sum(rtts) / len(rtts), 3) if rtts else None,
            "samples": [[round(t, 6), acked, cwnd, None if r is None else round(r, 6)]
                        for t, acked, cwnd, r in shown],
        }


def _acked_at(samples: Sequence[Sequence[Any]], t: float) -> float:
    """Bytes acknowledged at time ``t``, interpolated between the samples around it."""
    times = [x[0] for x in samples]
    i = bisect_right(times, t)
    if i == 0:
        return float(samples[0][1])
    if i == len(samples):
        return float(samples[-1][1])
    (t0, a0), (t1, a1) = samples[i - 1][:2], samples[i][:2]
    return a0 + (a1 - a0) * (t - t0) / (t1 - t0) if t1 > t0 else float(a1)


def fairness_summary(apps: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The summary's ``fairness`` section over the apps that sampled a flow ({} if none):
    ``flows`` (node, congestion and the ``flow`` figures but the samples), ``window`` (the time
    all of them were sending), ``goodput_bps`` in that window per flow, ``jain`` (over those) and
    ``jain_series`` ([t, index] over the window, per bin of at least FAIRNESS_BIN)."""
    sampled = [a for a in apps if isinstance(a.get("flow"), dict) and a["flow"].get("samples")]
    if not sampled:
        return {}
    rows = [{"node": a["node"], "congestion": a.get("congestion"),
             **{k: v for k, v in a["flow"].items() if k != "samples"}} for a in sampled]
    series = [a["flow"]["samples"] for a in sampled]
    lo = max(s[0][0] for s in series)
    hi = min(s[-1][0] for s in series)
    out: dict[str, Any] = {"flows": rows, "window": None, "goodput_bps": None, "jain": None,
                           "jain_series": []}
    if hi <= lo:
        return {"fairness": out}
    rates = [8 * (_acked_at(s, hi) - _acked_at(s, lo)) / (hi - lo) for s in series]
    out.update(window=[round(lo, 6), round(hi, 6)], goodput_bps=[round(r) for r in rates],
               jain=_rounded(jain_index(rates)))
    points = max(1, min(FAIRNESS_POINTS, int((hi - lo) / FAIRNESS_BIN)))
    width = (hi - lo) / points
    for k in range(points):
        a, b = lo + k * width, lo + (k + 1) * width
        index = jain_index([_acked_at(s, b) - _acked_at(s, a) for s in series])
        if index is not None:
            out["jain_series"].append([round(b, 6), _rounded(index)])
    return {"fairness": out}


def _rounded(x: float | None) -> float | None:
    return None if x is None else round(x, 4)
