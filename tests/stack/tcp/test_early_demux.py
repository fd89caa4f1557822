"""The IPv4 layer's early demux (Ipv4.early, Linux's tcp_v4_early_demux): a frame of a flow the
TCP layer took before goes straight to its ESTABLISHED connection, and gives exactly what the
general path (admission, then the TCP demux) gives, also once what that path decides changed:
the address gone, the TCP layer replaced by a crash, the connection no longer ESTABLISHED."""

from __future__ import annotations

import gc

from stacklab.stack.host import Host
from stacklab.stack.tcp.tcb import Tcb
from stacklab.wire.ethernet import ETH_P_IPV4, build_ethernet
from stacklab.wire.ipv4 import build_ipv4
from stacklab.wire.tcp import build_tcp

from .hostframes import ACK, H4, ISN, MAC_H, MAC_P, P4, established, frame, sent

FIN = 0x01
KEY = frame(0, 0, 0)[26:38]  # the peer's flow: source, destination, ports


def _data(h: Host, seq_off: int, our: int, payload: bytes, now: float, kind: str = "") -> None:
    f = frame(ISN + 1 + seq_off, our, ACK, payload)
    h.receive_frame(0, memoryview(f) if kind == "mv" else bytearray(f) if kind == "ba" else f, now)


def _six_segments(early: bool) -> tuple[list[bytes], dict[str, int], Host]:
    h, tcb, our = established()
    if not early:
        h.ipv4._early_rx = None  # remembered, never used: the general path every time
    for i in range(6):  # the last two as a TAP device hands them over, and a bytearray
        _data(h, 100 * i, our, bytes([i]) * 100, 0.02 + i * 0.001, {4: "mv", 5: "ba"}.get(i, ""))
    assert tcb.read() == b"".join(bytes([i]) * 100 for i in range(6))
    return [bytes(f) for _, f in h.frames_to_send()], dict(h.counters), h


def test_segments_of_a_known_flow_take_the_early_path_with_the_same_result() -> None:
    frames, counters, h = _six_segments(True)
    assert KEY in h.ipv4.early
    assert (frames, counters) == _six_segments(False)[:2]
    acks = [int.from_bytes(f[42:46], "big") for f in frames]
    assert acks == [ISN + 1 + 100 * i for i in range(1, 7)]  # quick-ACK mode: each one
    assert counters["ipv4.rx.delivered"] == counters["tcp.rx.segments"] == 8


def test_a_removed_address_drops_a_known_flows_frames() -> None:
    h, tcb, our = established()
    _data(h, 0, our, b"a" * 10, 0.02)
    assert KEY in h.ipv4.early
    h.remove_address(0, "10.0.0.1/24")
    _data(h, 10, our, b"b" * 10, 0.03)
    assert h.counters["drop.ipv4.not_for_us"] == 1
    assert tcb.read() == b"a" * 10


def test_a_crash_forgets_the_flows_of_the_old_tcp_layer() -> None:
    h, tcb, our = established()
    _data(h, 0, our, b"a" * 10, 0.02)
    sent(h)
    h.reset_transports()  # what a crash leaves: no connection
    _data(h, 10, our, b"b" * 10, 0.03)
    assert tcb.read() == b"a" * 10
    assert h.counters["tcp.no_port"] == 1
    (rst,) = [tcp for _, tcp in sent(h)]
    assert rst.flags & 0x04


def test_a_new_syn_in_time_wait_reopens_through_the_listener() -> None:
    h, tcb, our = established()
    _data(h, 0, our, b"a" * 10, 0.02)
    assert KEY in h.ipv4.early
    tcb.close(0.03)  # our FIN first: we end in TIME-WAIT
    h.tcp.kick(tcb)
    h.tcp.poll(0.03)
    h.receive_frame(0, frame(ISN + 11, our + 1, ACK | FIN), 0.04)
    assert tcb.state.name == "TIME_WAIT"
    sent(h)
    h.receive_frame(0, frame(ISN + 100_000, 0, 0x02, opts=bytes([2, 4, 5, 0xB4])), 0.05)
    (synack,) = [tcp for _, tcp in sent(h)]  # RFC 6191: a new connection, not TIME-WAIT's ACK
    assert synack.flags & 0x12 == 0x12 and synack.ack == ISN + 100_001


def test_a_finished_connection_is_not_kept_alive_by_the_early_demux() -> None:
    h, tcb, our = established()
    _data(h, 0, our, b"a" * 10, 0.02)
    assert KEY in h.ipv4.early
    h.receive_frame(0, frame(ISN + 11, our, 0x04), 0.03)  # the peer's RST: CLOSED, forgotten
    assert not h.tcp.conns
    h.tcp.events.clear()  # (what an application's drain would have taken)
    assert h.tcp.get_timer() is None  # (its timer's stale entry dropped)
    # freed, its buffers with it (a 1,000-connection soak's memory); by identity among the
    # live objects, not a weak reference: the compiled tier's Tcb takes none (mypyc)
    ident = id(tcb)
    del tcb
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, Tcb) and id(o) == ident]


def _frame_with_ip_options(seq: int, ack: int, payload: bytes, sport: int = 40000,
                           dport: int = 80) -> bytes:
    """A peer's segment in an IPv4 header with options (NOP, NOP, NOP, EOL: IHL 6, valid)."""
    seg = build_tcp(P4, H4, sport, dport, seq, ack, ACK, 65535, payload)
    return bytes(build_ethernet(MAC_H, MAC_P, ETH_P_IPV4,
                                build_ipv4(P4, H4, 6, seg, df=True, options=bytes([1, 1, 1, 0]))))


def _options_then_other_ports(early: bool) -> tuple[bytes, list[bytes], dict[str, int]]:
    h, tcb, our = established()
    if not early:
        h.ipv4._early_rx = None  # the general path every time
    sent(h)
    # a segment of the connection with IP options: bytes 34..37 of its frame are the options
    # (01 01 01 00), not the ports
    h.receive_frame(0, _frame_with_ip_options(ISN + 1, our, b"a" * 10), 0.02)
    # then a segment of another flow (port 257 to port 256, no connection) whose ports are
    # those bytes, in the connection's window
    h.receive_frame(0, frame(ISN + 11, our, ACK, b"EVIL", sport=0x0101, dport=0x0100), 0.03)
    # and the connection's own next segment, with the options again
    h.receive_frame(0, _frame_with_ip_options(ISN + 11, our, b"b" * 10), 0.04)
    return tcb.read(), [bytes(f) for _, f in h.frames_to_send()], dict(h.counters)


def test_a_header_with_ip_options_is_not_taken_as_twenty_bytes_by_the_early_demux() -> None:
    data, frames, counters = _options_then_other_ports(True)
    assert data == b"a" * 10 + b"b" * 10  # not the other flow's bytes
    assert counters["tcp.no_port"] == 1  # the other flow's segment reset as a stray one
    assert (data, frames, counters) == _options_then_other_ports(False)


def _closing_run(early: bool, we_close_first: bool) -> tuple[bytes, list[bytes], dict[str, int],
                                                             list[str], int]:
    """A connection through FIN-WAIT-1, FIN-WAIT-2 (our FIN first) or CLOSE-WAIT, LAST-ACK (the
    peer's), the peer's data and ACKs in each; the states met and the segments _admit saw."""
    h, tcb, our = established()
    if not early:
        h.ipv4._early_rx = None  # the general path every time
    admitted = []
    admit = h.ipv4._admit
    h.ipv4._admit = lambda *a: admitted.append(1) or admit(*a)  # type: ignore[method-assign]
    _data(h, 0, our, b"a" * 10, 0.02)
    tcb.send(b"x" * 50)
    h.tcp.kick(tcb)
    h.tcp.poll(0.025)
    states = []
    if we_close_first:
        tcb.close(0.03)  # FIN-WAIT-1, our 50 bytes and FIN in flight
        h.tcp.kick(tcb)
        h.tcp.poll(0.03)
        states.append(tcb.state.name)
        _data(h, 10, our, b"b" * 10, 0.04)  # data, ACKing part of ours
        _data(h, 20, our + 20, b"c" * 10, 0.05)
        states.append(tcb.state.name)
        _data(h, 30, our + 51, b"", 0.06)  # the ACK of our FIN: FIN-WAIT-2
        states.append(tcb.state.name)
        _data(h, 30, our + 51, b"d" * 10, 0.07)
        h.receive_frame(0, frame(ISN + 1 + 40, our + 51, ACK | FIN), 0.08)
    else:
        h.receive_frame(0, frame(ISN + 11, our, ACK | FIN), 0.03)  # CLOSE-WAIT
        states.append(tcb.state.name)
        _data(h, 11, our + 20, b"", 0.04)  # an ACK of part of ours
        tcb.close(0.05)  # LAST-ACK
        h.tcp.kick(tcb)
        h.tcp.poll(0.05)
        states.append(tcb.state.name)
        _data(h, 11, our + 50, b"", 0.06)  # not yet our FIN
        states.append(tcb.state.name)
        _data(h, 11, our + 51, b"", 0.07)  # our FIN: CLOSED
    states.append(tcb.state.name)
    return (tcb.read(), [bytes(f) for _, f in h.frames_to_send()], dict(h.counters), states,
            len(admitted))


def test_the_closing_states_take_the_early_path_with_the_same_result() -> None:
    for we_close_first, want in ((True, ["FIN_WAIT_1", "FIN_WAIT_1", "FIN_WAIT_2", "TIME_WAIT"]),
                                 (False, ["CLOSE_WAIT", "LAST_ACK", "LAST_ACK", "CLOSED"])):
        fast = _closing_run(True, we_close_first)
        general = _closing_run(False, we_close_first)
        assert fast[3] == want
        assert fast[:4] == general[:4]
        # the early path after the first segment (which filled the table), in every closing
        # state: the general path admits each of the peer's segments (6 and 5), the early one
        # only the first
        assert general[4] == (6 if we_close_first else 5) and fast[4] == 1
