"""Sweeps end to end: the same table on a process pool and on a Dask LocalCluster, a killed
worker's runs retried, --resume, failed runs as rows, the page of plots, the progress bar."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from stacklab.sweep import Sweep, parse_set, run_sweep
from stacklab.sweep.table import FIGURES

ROOT = Path(__file__).resolve().parents[2]
LOSSY = str(ROOT / "examples" / "lossy-tcp.toml")
# 3 x 2 points x 4 seeds = 24 runs of 200 kB over the lossy path
SETS = ["link.r1-server.loss=0,0.02,0.05", "app.client.congestion=reno,cubic",
        "app.client.bytes=200000"]


def sweep(out: Path, *, seeds: int = 4, sets: list[str] = SETS, **kw: object) -> Sweep:
    return Sweep(LOSSY, [parse_set(s) for s in sets], seeds=seeds, out=str(out), **kw)


def table(out: Path) -> list[dict[str, str]]:
    with open(out / "results.csv", newline="") as fp:
        return list(csv.DictReader(fp))


@pytest.fixture(scope="module")
def pool_table(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("pool")
    result = run_sweep(sweep(out, workers=2))
    assert (result.runs, result.ran, result.failed) == (24, 24, 0)
    return (out / "results.csv").read_bytes()


@pytest.fixture
def cluster() -> Iterator[object]:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as c, \
            distributed.Client(c) as client:
        yield client


def test_the_table_has_a_row_per_app_and_connection_of_every_run(pool_table: bytes,
                                                                  tmp_path: Path) -> None:
    (tmp_path / "results.csv").write_bytes(pool_table)
    rows = table(tmp_path)
    assert list(rows[0]) == ["run", "seed", "link.r1-server.loss", "app.client.congestion",
                             "app.client.bytes", *FIGURES]
    runs = {(r["run"], r["seed"], r["link.r1-server.loss"], r["app.client.congestion"])
            for r in rows}
    assert len(runs) == 24
    assert {r[1] for r in runs} == {"7", "8", "9", "10"}  # the file's seed 7, then the next
    senders = [r for r in rows if r["label"] == "tcp-send on client"]
    assert len(senders) == 24 and all(r["ok"] == "true" for r in senders)
    for r in senders:
        assert int(r["goodput_bps"]) > 0 and float(r["completion_s"]) > 0
        assert r["bytes"] == "200000"
    conns = [r for r in rows if r["entity"] == "connection"]
    assert len(conns) == 48 and all(float(r["rtt_ms"]) > 50 for r in conns)  # 2 x 27 ms one way

    def mean_retransmits(loss: str) -> float:
        vals = [int(r["retransmits"]) for r in senders if r["link.r1-server.loss"] == loss]
        return sum(vals) / len(vals)

    assert mean_retransmits("0") < mean_retransmits("0.05")


def test_a_dask_localcluster_gives_the_same_table_as_the_pool(pool_table: bytes,
                                                              cluster: object,
                                                              tmp_path: Path) -> None:
    result = run_sweep(sweep(tmp_path, dask=cluster))
    assert (result.runs, result.failed) == (24, 0)
    assert (tmp_path / "results.csv").read_bytes() == pool_table


def test_one_worker_process_gives_the_same_table(pool_table: bytes, tmp_path: Path) -> None:
    run_sweep(sweep(tmp_path, workers=1))
    assert (tmp_path / "results.csv").read_bytes() == pool_table


def test_a_killed_workers_runs_are_retried_not_lost(pool_table: bytes, cluster: object,
                                                    tmp_path: Path) -> None:
    client = cluster
    killed: list[tuple[int, list[str]]] = []

    def progress(done: int, total: int) -> None:
        if done == 2 and not killed:  # mid-sweep: kill a worker busy with a run
            busy = {w: keys for w, keys in client.processing().items() if keys}  # type: ignore
            worker, keys = sorted(busy.items())[0]
            pid = client.run(os.getpid, workers=[worker])[worker]  # type: ignore
            os.kill(pid, signal.SIGKILL)
            killed.append((pid, list(keys)))

    result = run_sweep(sweep(tmp_path, dask=cluster), progress=progress)
    assert killed and killed[0][1], "a worker was killed while it ran a run"
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0][0], 0)
    assert (result.runs, result.failed) == (24, 0)
    assert not [r for r in table(tmp_path) if r["entity"] == "run"], "no run lost"
    assert (tmp_path / "results.csv").read_bytes() == pool_table


def test_resume_runs_only_what_the_table_lacks(pool_table: bytes, tmp_path: Path) -> None:
    lines = pool_table.decode().splitlines(keepends=True)
    # an interrupted sweep: the rows of the first 10 runs, the last one cut short by the crash
    kept = [ln for ln in lines[1:] if int(ln.split(",")[0]) < 10]
    (tmp_path / "results.csv").write_text(lines[0] + "".join(kept) + "11,8,0.0")
    result = run_sweep(sweep(tmp_path, workers=2, resume=True))
    assert (result.runs, result.ran) == (24, 14)
    assert (tmp_path / "results.csv").read_bytes() == pool_table
    again = run_sweep(sweep(tmp_path, workers=2, resume=True))
    assert again.ran == 0 and (tmp_path / "results.csv").read_bytes() == pool_table


def test_resume_refuses_a_table_of_other_parameters(pool_table: bytes, tmp_path: Path) -> None:
    from stacklab.sweep import SweepError

    (tmp_path / "results.csv").write_bytes(pool_table)
    with pytest.raises(SweepError, match="has the parameters link.r1-server.loss"):
        run_sweep(sweep(tmp_path, sets=["link.r1-server.delay=5ms"], resume=True))


def test_failed_runs_are_rows_with_their_error(tmp_path: Path) -> None:
    sets = ["app.client.congestion=reno,westwood", "app.client.bytes=20000"]
    result = run_sweep(sweep(tmp_path, sets=sets, seeds=2, workers=2))
    assert (result.runs, result.failed) == (4, 2)
    rows = table(tmp_path)
    bad = [r for r in rows if r["app.client.congestion"] == "westwood"]
    assert [(r["entity"], r["kind"], r["ok"]) for r in bad] == [("run", "error", "false")] * 2
    assert "congestion" in bad[0]["error"] and "westwood" in bad[0]["error"]
    good = [r for r in rows if r["app.client.congestion"] == "reno" and r["entity"] == "app"]
    assert len(good) == 4 and all(r["ok"] == "true" for r in good)
    assert "Failed runs" in (tmp_path / "results.html").read_text()


def test_the_page_has_a_figure_per_metric_with_lines_and_bands(pool_table: bytes,
                                                               tmp_path: Path) -> None:
    run_sweep(sweep(tmp_path, workers=2))
    page = (tmp_path / "results.html").read_text()
    for title in ("tcp-send on client: goodput (bit/s)", "tcp-send on client: retransmissions",
                  "tcp-send on client: completion time (s, virtual)",
                  "tcp-send on client: share of runs ok"):
        assert f">{title}</text>" in page
    assert page.count("<svg") >= 4
    # x: the loss; a line per congestion control (bytes takes one value: not a line)
    assert ">app.client.congestion=cubic</text>" in page
    assert ">app.client.congestion=reno</text>" in page
    assert "app.client.bytes=" not in page.split("<figure>", 1)[1]
    assert "fill-opacity" in page  # 4 seeds per point: confidence bands
    # one self-contained file: no script, nothing loaded from elsewhere
    assert "<script" not in page and "<link" not in page and "src=" not in page


def test_parquet_has_the_same_table(pool_table: bytes, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    run_sweep(sweep(tmp_path, workers=2))
    t = pq.read_table(tmp_path / "results.parquet").to_pylist()
    rows = table(tmp_path)
    assert len(t) == len(rows)
    assert [r["goodput_bps"] for r in t] == [int(r["goodput_bps"]) if r["goodput_bps"] else None
                                             for r in rows]
    assert [r["link.r1-server.loss"] for r in t] == [float(r["link.r1-server.loss"])
                                                     for r in rows]


def _cli(out: Path, tty: bool) -> tuple[int, str, str]:
    argv = [sys.executable, "-m", "stacklab", "sweep", LOSSY, "--set", SETS[0],
            "--set", "app.client.bytes=20000", "--seeds", "2", "--workers", "2",
            "--out", str(out)]
    if not tty:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        return r.returncode, r.stdout, r.stderr
    import pty

    master, slave = pty.openpty()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    stdout, _ = p.communicate(timeout=120)
    reader.join(10)
    os.close(master)
    return p.returncode, stdout, b"".join(chunks).decode(errors="replace")


def test_the_cli_prints_a_summary_and_a_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    code, out, err = _cli(tmp_path / "a", tty=False)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == ["link.r1-server.loss", "app.client.bytes", "app", "runs", "ok",
                                "goodput_bps", "retransmits", "rtt_ms", "completion_s"]
    assert any(ln.split()[:6] == ["0.05", "20000", "tcp-send", "on", "client", "2"]
               for ln in lines)
    assert "6 runs (6 run now, 0 already in the table), 0 failed" in out
    code, out, err = _cli(tmp_path / "b", tty=True)
    assert code == 0 and "ETA" in err and "6/6" in err
