from stacklab.stack.pmtu import PathMtuCache, plateau_below
from stacklab.wire.addr import ip_bytes

V4 = ip_bytes("10.0.3.2")
V6 = ip_bytes("fd00:0:0:3::2")


def test_starts_at_link_mtu_and_only_goes_down():
    c = PathMtuCache()
    assert c.get(V4, 1500, 0.0) == 1500
    assert c.report(V4, 1400, 1.0, 1500) == 1400
    assert c.get(V4, 1500, 2.0) == 1400
    assert c.report(V4, 1450, 3.0, 1500) is None  # higher: ignored
    assert c.report(V4, 1300, 4.0, 1500) == 1300
    assert c.get(V4, 1500, 5.0) == 1300
    # a smaller outgoing link still wins
    assert c.get(V4, 1280, 5.0) == 1280


def test_entries_age_out_after_ten_minutes():
    c = PathMtuCache()
    c.report(V4, 1400, 100.0, 1500)
    assert c.get_timer() == 700.0
    assert c.format(103.0) == "10.0.3.2 mtu 1400 expires 597s"
    assert c.get(V4, 1500, 699.9) == 1400
    c.handle_timer(700.0)
    assert c.get(V4, 1500, 700.0) == 1500
    assert len(c) == 0 and c.counters["pmtu.expired"] == 1


def test_floors_v4_552_and_v6_1280():
    c = PathMtuCache()
    assert c.report(V4, 68, 0.0, 1500) == 552
    assert c.report(V6, 1000, 0.0, 1500) == 1280
    assert c.counters["pmtu.clamped"] == 2
    assert c.report(V6, 1200, 1.0, 1500) is None  # already at the floor


def test_mtu_zero_uses_rfc1191_plateaus():
    assert plateau_below(1500) == 1492
    assert plateau_below(1492) == 1006
    assert plateau_below(4000) == 2002
    c = PathMtuCache()
    assert c.report(V4, 0, 0.0, 1500, original_length=1500) == 1492
    assert c.report(V4, 0, 0.0, 1500, original_length=1492) == 1006
