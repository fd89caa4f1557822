"""What a user sees from the command line (the newcomer audit, D1–D31): pure JSON, one line and
a documented exit status for every bad input, checks before the run, readable summaries."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stacklab.cli.main import EXIT_STATUSES, main

ROOT = Path(__file__).resolve().parents[2]
EX = ROOT / "examples"


def stacklab(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "stacklab", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


def one_line_error(p: subprocess.CompletedProcess[str], status: int, *words: str) -> None:
    assert p.returncode == status, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_d1_json_stays_json_with_stats_and_diagram():
    p = stacklab("run", str(EX / "lossy-tcp.toml"), "--json", "--stats", "--diagram",
                 "client,server")
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)  # the whole of stdout is one JSON document
    conn = next(c for c in data["stats"]["connections"] if c["node"] == "client")
    assert conn["retransmits"] > 0 and conn["mss"] == 1448
    assert data["diagram"]["lifelines"] == ["client", "r1", "server"]
    assert any(r.get("dropped") for r in data["diagram"]["rows"])


def test_d3_binary_and_unreadable_scenarios(tmp_path):
    garbage = tmp_path / "x.toml"
    garbage.write_bytes(bytes(range(128, 256)) * 8)
    one_line_error(stacklab("run", str(garbage)), 2, "x.toml", "not a TOML text file")
    one_line_error(stacklab("run", str(tmp_path)), 2, "is a directory")


def test_d4_d15_unusable_output_paths_before_anything_runs(tmp_path):
    f = tmp_path / "file"
    f.write_text("")
    one_line_error(stacklab("tour", "--pcap", str(f), "tcp-handshake"), 2, "--pcap", "not a dir")
    p = stacklab("tour", "--html", str(f), "tcp-handshake")
    one_line_error(p, 2, "--html", "not a directory")
    assert p.stdout == ""  # refused before the step ran
    p = stacklab("run", str(EX / "ping.toml"), "--pcap", str(f))
    one_line_error(p, 2, f"--pcap {f}: not a directory")
    assert p.stdout == ""
    p = stacklab("run", str(EX / "ping.toml"), "--diagram", "a,b", "--svg",
                 str(tmp_path / "no" / "x.svg"))
    one_line_error(p, 2, "--svg", "no such directory")
    assert p.stdout == ""  # before the run, not after the summary


def test_d9_diagram_nodes_checked_before_the_run():
    p = stacklab("run", str(EX / "ping.toml"), "--diagram", "a,zz")
    one_line_error(p, 2, "no node named 'zz'", "a, r, b")
    assert p.stdout == ""


@pytest.mark.parametrize("args", [("tour", "--list"), ("run", "--list"), ("tour", "udp"),
                                  ("run", str(EX / "ping.toml"), "--stats")])
def test_d5_broken_pipe_is_quiet_and_exits_0(args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "stacklab", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # as `| head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert err == ""


def _ctrl_c_reaches_it() -> None:
    # a shell's background job (a CI runner, `make test &`) inherits SIGINT ignored, and a
    # Python started so ignores Ctrl-C for good: give the child the terminal's default
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_d6_ctrl_c_is_one_line_and_130(tmp_path, monkeypatch):
    # a server's connection handler is running when Ctrl-C lands (the case that printed
    # "Unhandled exception in client_connected_cb" and a traceback)
    scn = tmp_path / "big.toml"
    scn.write_text('duration = "1h"\n[[node]]\nname = "a"\nkind = "host"\n'
                   '[[node]]\nname = "b"\nkind = "host"\n[[link]]\nends = ["a", "b"]\n'
                   'rate = "1Gbit"\n[[app]]\nnode = "b"\nkind = "tcp-sink"\n'
                   '[[app]]\nnode = "a"\nkind = "tcp-send"\nto = "b"\nbytes = "100MB"\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-m", "stacklab", "run", str(scn),
                                 "--trace-file", "/dev/stdout"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=_ctrl_c_reaches_it)
        assert proc.stdout is not None
        proc.stdout.readline()  # the simulation runs: its trace has begun
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert err.strip() == "stacklab run: interrupted", err


def test_d28_usage_errors(capsys):
    assert main([]) == 2  # no command: the help, on stderr, status 2
    assert "exit status" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["run", str(EX / "ping.toml"), "--bogus"])
    assert exc.value.code == 2
    assert "usage: stacklab run" in capsys.readouterr().err  # run's usage, not stacklab's
    assert set(EXIT_STATUSES) == {0, 1, 2, 3, 130}


def test_d28_tour_accepts_the_numbers_list_shows():
    listed = stacklab("tour", "--list").stdout.splitlines()
    third = listed[3].split()[1]
    p = stacklab("tour", "3")
    assert p.returncode == 0 and p.stdout == stacklab("tour", third).stdout


def test_d2_a_long_idle_scenario_finishes(tmp_path):
    # past 2**24 s virtual the loop used to spin forever; a year with a ping at each end
    scn = tmp_path / "year.toml"
    scn.write_text('duration = "8760h"\n[[node]]\nname = "a"\nkind = "host"\n'
                   '[[node]]\nname = "b"\nkind = "host"\n[[link]]\nends = ["a", "b"]\n'
                   '[[app]]\nnode = "a"\nkind = "ping"\nto = "b"\ncount = 2\n'
                   '[[app]]\nnode = "a"\nkind = "ping"\nto = "b"\ncount = 2\nstart = "8759h"\n')
    p = stacklab("run", str(scn), "--json")
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert [a["received"] for a in data["apps"]] == [2, 2]
    assert data["time"] == pytest.approx(8760 * 3600)


def test_d2_duration_is_bounded(tmp_path):
    scn = tmp_path / "d.toml"
    scn.write_text('duration = "100000h"\n[[node]]\nname = "a"\nkind = "host"\n')
    one_line_error(stacklab("run", str(scn)), 2, "'duration'", "10 years")


@pytest.mark.parametrize(("extra", "words"), [
    ('[[app]]\nnode = "a"\nkind = "ping"\nto = "zz"\n', ("'to'", "no node named 'zz'")),
    ('[[app]]\nnode = "a"\nkind = "ping"\nto = "b"\nstart = "100s"\n', ("'start'", "not before")),
])
def test_d27_checked_at_load(tmp_path, extra, words):
    scn = tmp_path / "s.toml"
    scn.write_text('[[node]]\nname = "a"\nkind = "host"\n[[node]]\nname = "b"\nkind = "host"\n'
                   '[[link]]\nends = ["a", "b"]\n' + extra)
    one_line_error(stacklab("run", str(scn)), 2, *words)


def test_tcp_send_size_is_bounded(tmp_path):
    scn = tmp_path / "s.toml"
    scn.write_text('[[node]]\nname = "a"\nkind = "host"\n[[node]]\nname = "b"\nkind = "host"\n'
                   '[[link]]\nends = ["a", "b"]\n[[app]]\nnode = "a"\nkind = "tcp-send"\n'
                   'to = "b"\nbytes = "2GB"\n')
    one_line_error(stacklab("run", str(scn)), 2, "'bytes'", "at most")


def test_d27_a_delay_longer_than_the_run(tmp_path):
    scn = tmp_path / "s.toml"
    scn.write_text('[[node]]\nname = "a"\nkind = "host"\n[[node]]\nname = "b"\nkind = "host"\n'
                   '[[link]]\nends = ["a", "b"]\ndelay = "100000000s"\n')
    one_line_error(stacklab("run", str(scn)), 2, "'delay'", "no frame would ever arrive")


def test_d18_summary_shows_ping_rtts_and_loss_in_percent(capsys):
    assert main(["run", str(EX / "ping.toml")]) == 0
    out = capsys.readouterr().out
    assert "rtt min/avg/max/mdev = " in out
    assert "loss=20%" in out and "loss=0.2" not in out


def test_d18_a_stuck_transfer_says_how_far_it_got(capsys):
    assert main(["run", str(EX / "pmtud-blackhole.toml")]) == 1
    fail = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("  FAIL"))
    assert "acked=" in fail and "retransmits=" in fail


def test_d12_stats_columns_never_run_together(capsys):
    assert main(["run", str(EX / "congestion.toml"), "--stats"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("TCP connections:"):out.index("\nnodes:", out.index("TCP conn"))]
    rows = [ln for ln in table.splitlines() if ln.startswith("  ") and not ln.startswith("  (")]
    head, *figures = rows
    assert len(figures) == 4
    for row in figures:  # as many cells as heads ("segs o/i" is one head of two words)
        assert len(row.split()) == len(head.split()) - 1, row


def test_d20_cwnd_samples_are_in_virtual_time():
    p = stacklab("run", str(EX / "lossy-tcp.toml"), "--json")
    data = json.loads(p.stdout)
    send = next(a for a in data["apps"] if a["kind"] == "tcp-send")
    # the app starts at 1 s: its first sample is at or after 1 s, as in the trace and pcaps
    assert send["cwnd"][0][0] >= 1.0


def test_d24_capture_as_sent(tmp_path):
    assert main(["run", str(EX / "ping.toml"), "--pcap", str(tmp_path),
                 "--pcap-point", "both"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "r-b.pcap" in names and "r-b.tx.pcap" in names
    # the lost frame is in the capture as sent, not in the one as delivered
    assert (tmp_path / "r-b.tx.pcap").stat().st_size > (tmp_path / "r-b.pcap").stat().st_size


def test_d26_progress_only_on_a_terminal(tmp_path):
    # not a tty (as here): nothing but the summary; the progress line needs stderr on a tty
    p = stacklab("run", str(EX / "congestion.toml"))
    assert p.returncode == 0 and p.stderr == ""


def test_d26_progress_line_on_a_tty(tmp_path):
    import pty

    scn = tmp_path / "long.toml"
    scn.write_text('duration = "1h"\n[[node]]\nname = "a"\nkind = "host"\n'
                   '[[node]]\nname = "b"\nkind = "host"\n[[link]]\nends = ["a", "b"]\n'
                   'rate = "1Gbit"\n[[app]]\nnode = "b"\nkind = "tcp-sink"\n'
                   '[[app]]\nnode = "a"\nkind = "tcp-send"\nto = "b"\nbytes = "30MB"\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    results = {}
    for quiet in (False, True):
        master, slave = pty.openpty()
        args = [sys.executable, "-m", "stacklab", "run", str(scn)] + (["-q"] if quiet else [])
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        proc.wait(timeout=120)
        os.close(master)
        results[quiet] = b"".join(chunks).decode()
    assert "s virtual" in results[False] and "frames" in results[False]
    assert results[True] == ""


def test_d14_d23_d24_example_recipes():
    for f in sorted(EX.glob("*.toml")):
        text = f.read_text()
        for line in (ln for ln in text.splitlines() if "tshark" in ln):
            assert f"--pcap out/{f.stem}/" in line, line  # one directory per example (D24)
            if "port = 80" in text:  # raw bytes to port 80 are not HTTP (D23)
                assert "-d tcp.port==80,data" in line or "&&" not in line, line
        if f.stem == "pmtud-blackhole":  # it exits 1 on purpose: `&&` would skip tshark (D14)
            assert "&& tshark" not in text


def test_d29_the_licence_is_an_spdx_string():
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # a { text = ... } table makes setuptools warn on every install (`make demo`)
    assert meta["license"] == "MIT"


def test_an_output_failing_mid_run_is_one_line():
    # /dev/full accepts the open and fails the writes: ENOSPC once the trace is flushed
    p = stacklab("run", str(EX / "ping.toml"), "--trace-file", "/dev/full")
    one_line_error(p, 2, "No space left on device")


def test_d6_an_interrupt_that_is_swallowed_still_ends_the_run():
    # Ctrl-C landing where Python swallows the KeyboardInterrupt (a finalizer, a callback):
    # the run must end anyway, a grace period later
    code = ("import signal, time\nfrom stacklab.cli import main as m\nm.INTERRUPT_GRACE = 0.5\n"
            "signal.signal(signal.SIGINT, m._on_sigint)\nready = False\n"
            "while True:\n    try:\n        if not ready:\n            ready = True\n"
            "            print('ready', flush=True)\n"  # inside the try: the swallowing part
            "        time.sleep(0.05)\n    except KeyboardInterrupt:\n        pass\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_ctrl_c_reaches_it)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and err == "stacklab: interrupted\n", (proc.returncode, err)
