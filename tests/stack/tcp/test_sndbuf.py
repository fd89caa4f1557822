"""The send buffer as Linux accounts for it (sndbuf.py): whole skbs, each costing its payload
plus SKB_OVERHEAD against SO_SNDBUF; TCP_NOTSENT_LOWAT checked between skbs; writability when a
third of the buffer is free."""

from __future__ import annotations

from stacklab.stack.host import Host
from stacklab.stack.tcp import sndbuf
from stacklab.stack.tcp.config import TcpConfig

from .pair import Pair


def _established(cfg: TcpConfig) -> Pair:
    p = Pair(a_cfg=cfg)
    p.handshake()
    p.run()
    return p


def test_the_size_goal_is_half_the_peers_largest_window_in_whole_segments() -> None:
    p = _established(TcpConfig())
    a = p.a
    goal = sndbuf.size_goal(a)
    assert goal % a.snd_mss == 0
    assert goal <= a.max_sndwnd // 2 < goal + a.snd_mss
    assert sndbuf.size_goal(a, oob=True) == a.snd_mss  # MSG_OOB: one segment per skb


def test_a_write_fills_a_whole_skb_past_the_limit_then_takes_nothing() -> None:
    p = _established(TcpConfig(send_buffer=20000))
    a = p.a
    goal = sndbuf.size_goal(a)
    assert goal > 20000
    assert a.send(bytes(10 * goal)) == goal  # the skb started below the limit: filled whole
    assert sndbuf.wmem_queued(a) == goal + sndbuf.SKB_OVERHEAD
    assert a.send(b"x") == 0 and a.send_space == 0
    assert not sndbuf.writeable(a)
    a.output(p.now)
    p.run()  # all of it sent and acknowledged: the skb is freed
    assert sndbuf.wmem_queued(a) == 0 and sndbuf.writeable(a)


def test_a_full_skb_goes_out_at_once_and_its_unsent_rest_is_filled_again() -> None:
    p = _established(TcpConfig())
    a = p.a
    goal, mss = sndbuf.size_goal(a), a.snd_mss
    iw = a.cc.cwnd // mss * mss  # what the first skb sends at once (tcp_push_one)
    # room for two skbs after the first went out in part and was split in two
    a.sendbuf.capacity = goal + iw + 2 * sndbuf.SKB_OVERHEAD + 1
    assert a.send(bytes(10 * goal), now=p.now) == 2 * goal + iw
    assert sum(len(s.payload) for s in a.segments_to_send()) == iw
    assert sndbuf.wmem_queued(a) == 2 * goal + iw + 3 * sndbuf.SKB_OVERHEAD
    p2 = _established(TcpConfig())
    p2.a.sendbuf.capacity = a.sendbuf.capacity
    assert p2.a.send(bytes(10 * goal)) == 2 * goal  # nothing sent meanwhile: two skbs


def test_notsent_lowat_is_checked_between_whole_skbs() -> None:
    p = _established(TcpConfig(notsent_lowat=3000))
    a = p.a
    goal = sndbuf.size_goal(a)
    assert a.send_space == goal
    assert a.send(bytes(10 * goal)) == goal  # nothing waited unsent: a whole skb, > 3000
    assert a.send(b"x") == 0 and a.send_space == 0
    assert not sndbuf.writeable(a)
    a.output(p.now)
    p.run()
    assert sndbuf.notsent(a) == 0 and sndbuf.writeable(a)


def test_the_sysctl_is_the_default_and_the_socket_option_wins() -> None:
    host = Host("h")
    assert host.sysctl["net.ipv4.tcp_notsent_lowat"] == "4294967295"
    host.sysctl["net.ipv4.tcp_notsent_lowat"] = "5000"
    cfg = host.tcp.config
    assert cfg.notsent_lowat_default == 5000 and cfg.notsent_lowat == 0
    p = _established(cfg)
    a = p.a
    assert sndbuf.notsent_lowat(a) == 5000
    a.set_config(a.config.replace(notsent_lowat=1000), p.now, ("notsent_lowat",))
    assert sndbuf.notsent_lowat(a) == 1000


def test_writeable_wants_a_third_of_the_buffer_free_and_half_the_mark() -> None:
    p = _established(TcpConfig(notsent_lowat=10000))
    a = p.a
    a.send(bytes(4000))
    queued = sndbuf.wmem_queued(a)
    assert queued == 4000 + sndbuf.SKB_OVERHEAD
    a.sendbuf.capacity = queued + queued // 2  # exactly a third free
    assert sndbuf.writeable(a)
    a.sendbuf.capacity -= 1
    assert not sndbuf.writeable(a) and sndbuf.memory_free(a)
    a.sendbuf.capacity = 1 << 20
    a.send(bytes(1000))  # 5000 unsent: below the mark, not below half of it
    assert sndbuf.memory_free(a) and not sndbuf.writeable(a)


def test_autotuning_grows_the_buffer_only_for_a_writer_that_ran_short() -> None:
    p = _established(TcpConfig())
    a = p.a
    cap = a.sendbuf.capacity
    a.send(bytes(a.cc.cwnd))  # one full window: cwnd grows
    a.output(p.now)
    p.run()
    assert a.cc.cwnd > 10 * a.snd_mss  # cwnd grew, but no write found the buffer short
    assert a.sendbuf.capacity == cap
    taken = a.send(bytes(3 * cap), now=p.now)
    assert taken < 3 * cap and a.snd_nospace
    a.output(p.now)
    p.run(until=p.now + 1)  # the ACKs free the buffer while cwnd is not full: it grows
    assert a.sendbuf.capacity > cap
    assert not a.snd_nospace  # woken: writeable again


def test_bbr_provisions_three_windows_of_send_buffer_where_cubic_has_two() -> None:
    """Linux tcp_sndbuf_expand asks the congestion control how many windows to provision
    (ca_ops->sndbuf_expand): BBR's 3 (bbr_sndbuf_expand: it may slow-start even in recovery),
    2 without one. At MSS 1448 (1460 less timestamps) each segment costs 4352 bytes: an
    established CUBIC connection reads SO_SNDBUF 87040, a BBR one 130560, and the autotuning
    follows the same factor."""
    per_mss = 4096 + 256  # the power of two above the MSS + 640 header bytes, plus struct sk_buff
    for congestion, windows in (("cubic", 2), ("bbr", 3)):
        a = _established(TcpConfig(congestion=congestion)).a
        assert a.snd_mss == 1448
        assert a.sendbuf.capacity == windows * 10 * per_mss  # tcp_init_buffer_space
        a.cc.cwnd = 100 * a.snd_mss
        sndbuf.expand(a)  # a writer ran short while cwnd was not full (tcp_new_space)
        assert a.sendbuf.capacity == windows * 100 * per_mss
        a.cc.cwnd = 1000 * a.snd_mss
        sndbuf.expand(a)
        assert a.sendbuf.capacity == a.config.wmem[2]  # tcp_wmem's maximum caps it
