"""`--set` keys and values: ranges, the grid, and the scenario fields the keys address."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from stacklab.sweep.grid import Param, SweepError, apply, check, grid, parse_set

ROOT = Path(__file__).resolve().parents[2]
LOSSY = ROOT / "examples" / "lossy-tcp.toml"
CONGESTION = ROOT / "examples" / "congestion.toml"


def data_of(path: Path) -> dict:
    return tomllib.loads(path.read_text())


def test_values_become_numbers_booleans_or_text() -> None:
    assert parse_set("link.a-b.loss=0,0.01,0.05").values == (0, 0.01, 0.05)
    assert parse_set("link.a-b.delay=5ms, 10ms").values == ("5ms", "10ms")
    assert parse_set("app.a.nodelay=true,false").values == (True, False)
    assert parse_set("app.a.congestion=cubic,reno").values == ("cubic", "reno")


def test_a_range_includes_its_stop_and_reads_as_written() -> None:
    loss = parse_set("link.a-b.loss=0:0.1:0.01").values
    assert loss == (0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1)
    assert parse_set("app.a.bytes=1000:5000:2000").values == (1000, 3000, 5000)
    assert parse_set("link.a-b.delay=10ms:30ms:10ms").values == ("10ms", "20ms", "30ms")


@pytest.mark.parametrize("option, message", [
    ("link.a-b.loss", "write KEY=V1,V2"),
    ("link.a-b.loss=0:1", "START:STOP:STEP"),
    ("link.a-b.loss=1:0:0.1", "STOP >= START"),
    ("link.a-b.delay=1ms:5s:1ms", "the same unit"),
    ("link.a-b.loss=0,0", "given twice"),
    ("link.a-b.loss=0,,1", "empty value"),
])
def test_bad_options_say_why_in_one_line(option: str, message: str) -> None:
    with pytest.raises(SweepError, match=message) as exc:
        parse_set(option)
    assert "\n" not in str(exc.value)


def test_the_grid_is_the_cartesian_product_and_zip_pairs_the_lists() -> None:
    a, b = Param("a", (1, 2, 3)), Param("b", ("x", "y", "z"))
    assert grid([a, b]) == [(1, "x"), (1, "y"), (1, "z"), (2, "x"), (2, "y"), (2, "z"),
                            (3, "x"), (3, "y"), (3, "z")]
    assert grid([a, b], zipped=True) == [(1, "x"), (2, "y"), (3, "z")]
    with pytest.raises(SweepError, match="a has 3, c has 2"):
        grid([a, Param("c", (1, 2))], zipped=True)
    with pytest.raises(SweepError, match="set twice"):
        grid([a, a])


def test_keys_address_links_apps_nodes_and_the_duration() -> None:
    data = data_of(LOSSY)
    keys = ["link.server-r1.loss", "link.client-r1.forward.delay", "app.client.congestion",
            "app.server:tcp-sink.port", "node.client.sysctl.net.ipv4.tcp_ecn",
            "node.r1.pmtu_expires", "duration"]
    out = apply(data, keys, (0.1, "7ms", "cubic", 6000, 1, "5min", "20s"))
    assert out["link"][1]["loss"] == 0.1  # the link's ends are r1, server: either order
    assert out["link"][0]["forward"] == {"delay": "7ms"}
    assert out["app"][1]["congestion"] == "cubic"
    assert out["app"][0]["port"] == 6000
    assert out["node"][0]["sysctl"] == {"net.ipv4.tcp_ecn": 1}
    assert out["node"][1]["pmtu_expires"] == "5min"
    assert out["duration"] == "20s"
    assert data == data_of(LOSSY), "the file's scenario is not changed"
    # node names with '-' in them (reno-client-reno-router), and links named by their name
    cong = data_of(CONGESTION)
    out = apply(cong, ["link.reno-router-reno-server.queue"], (10,))
    assert out["link"][1]["queue"] == 10


@pytest.mark.parametrize("key, message", [
    ("link.client-server.loss", "no link 'client-server' (links: client-r1, r1-server)"),
    ("link.client-r1.los", "'los' is not a link parameter"),
    ("node.nobody.plpmtud", "no node 'nobody' (nodes: client, r1, server)"),
    ("node.client.colour", "'colour' is not a node option"),
    ("app.r1.bytes", "no app 'r1' (apps: server:tcp-sink, client:tcp-send)"),
    ("app.client.byte", "'byte' is not a parameter of a 'tcp-send' app"),
    ("wire.client.loss", "keys are link.A-B.PARAM"),
])
def test_a_key_that_addresses_nothing_is_named(key: str, message: str) -> None:
    with pytest.raises(SweepError) as exc:
        apply(data_of(LOSSY), [key], (1,))
    assert str(exc.value).startswith(f"--set {key}: ")
    assert message in str(exc.value)


def test_bad_values_are_found_before_any_run_with_the_scenarios_own_message() -> None:
    with pytest.raises(SweepError) as exc:
        check(data_of(LOSSY), str(LOSSY), [Param("link.r1-server.loss", (0, 1.5))])
    msg = str(exc.value)
    assert msg.startswith("--set link.r1-server.loss=1.5: ")
    assert "[[link]] #2 (r1-server): key 'loss'" in msg and "\n" not in msg


def test_the_cli_prints_a_bad_key_on_one_line_and_exits_2(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "stacklab", "sweep", str(LOSSY),
                        "--set", "link.a-r.loss=0,0.01", "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "stacklab sweep: error: --set link.a-r.loss: no link 'a-r' (links: client-r1, r1-server)"]
    assert not (tmp_path / "o").exists()
