"""Sequence diagrams tell the truth (audit D7, D8, D9): causal order at equal times, corrupted
frames drawn as such where they were sent, paths between non-neighbours, a row limit."""

from __future__ import annotations

from pathlib import Path

from stacklab.net.network import Network
from stacklab.scenario.runner import load_scenario, run_scenario
from stacklab.tour import runner
from stacklab.trace.diagram import Arrow, follow_path, from_trace, limit_rows, render_text
from stacklab.trace.events import Tracer

EX = Path(__file__).resolve().parents[2] / "examples"


def test_d7_the_lost_datagram_is_drawn_where_it_was_sent():
    result = runner.run_step("udp", runner.StepContext())
    arrows = [ln for ln in result.diagram.splitlines() if "UDP" in ln]
    assert [("X" in ln, "len 6" in ln) for ln in arrows] == [
        (False, False), (True, True), (False, False)]  # first, second (lost), third
    assert ("b received", "first, third") in result.table()  # the table beside it agrees


def test_d8_corrupted_frames_are_marked_at_their_send_time():
    tracer = Tracer()
    with Network(seed=3, tracer=tracer) as net:
        net.add_host("a")
        net.add_host("b")
        net.connect("a", "b", delay="10ms", corrupt=1.0)
        net.autoconfigure()

        async def main():
            sock = net.node("a").udp_socket()
            sock.connect(("b", 9))
            await sock.send(b"hello")

        net.run(main())
        net.run(until=1.0)
    rows = [r for r in from_trace(tracer.events, ["a", "b"]) if isinstance(r, Arrow)]
    udp = [r for r in rows if "UDP" in r.label]
    assert udp and all(r.corrupted for r in udp)
    sent = next(ev.time for ev in tracer.events if ev.event == "tx"
                and "UDP" in str(ev.details.get("summary")))
    assert udp[0].t_send == sent and udp[0].t_recv is not None and udp[0].t_recv > sent
    text = render_text(udp, ["a", "b"])
    assert "(corrupted)" in text and "~~~" in text


def test_d9_a_diagram_between_non_neighbours_follows_the_path():
    scn = load_scenario(EX / "switched-lan.toml")
    links = [tuple(link["ends"]) for link in scn.links]
    lifelines, note = follow_path(["h1", "h2"], links)
    assert lifelines[0] == "h1" and lifelines[-1] == "h2" and len(lifelines) > 2
    assert "not all neighbours" in note
    tracer = Tracer()
    run_scenario(scn, tracer=tracer)
    rows = from_trace(tracer.events, lifelines)
    assert any(isinstance(r, Arrow) and r.src == "h1" for r in rows)
    assert follow_path(["a", "b"], [("a", "b")]) == (["a", "b"], "")


def test_d9_unconnected_nodes_are_named():
    try:
        follow_path(["a", "c"], [("a", "b")])
    except ValueError as exc:
        assert "a and c are not connected" in str(exc)
    else:
        raise AssertionError("no error")


def test_d9_row_limit_with_a_note():
    rows = [Arrow(float(i), float(i) + 1, "a", "b", f"f{i}") for i in range(10)]
    shown, note = limit_rows(rows, 4)
    assert len(shown) == 4 and "6 more rows" in note and "--limit 0" in note
    assert limit_rows(rows, 0) == (rows, "")


def test_echo_labels_carry_the_ttl():  # audit D30: the routing-ttl step is about the TTL
    result = runner.run_step("routing-ttl", runner.StepContext())
    assert "ttl 1" in result.svg and "ttl 64" in result.svg


def test_d30_a_syn_is_not_drawn_as_putting_the_server_into_listen():
    result = runner.run_step("tcp-handshake", runner.StepContext())
    assert "[LISTEN]" not in result.diagram and "[SYN-RECEIVED]" in result.diagram
