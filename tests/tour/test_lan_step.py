"""The LAN chapter of the tour (stacklab/tour/steps_lan.py): it runs, says what it measured,
and fits 80 columns in both languages."""

from __future__ import annotations

from rich.cells import cell_len

from stacklab.tour import runner, steps_lan  # noqa: F401  (registers the step)


def test_lan_step_boots_with_dhcp_and_resolves_www():
    res = runner.run_step("lan-dhcp-dns", runner.StepContext())
    assert res["history"] == ["DISCOVER", "OFFER", "REQUEST", "ACK"]
    assert res["address"] == "10.0.1.100/24" and res["probes"] == 3
    assert res["router_dns"] == ("10.0.1.2", "10.0.1.2") and res["domain"] == "lab.example"
    assert res["www"] == ["10.0.2.2"] and res["ping_ok"] is True
    # four messages, then RFC 5227: 0-1 s, three probes 1-2 s apart, 2 s ANNOUNCE_WAIT
    assert 4.0 <= res["t_bound"] < 7.05
    for want in ("DHCP DISCOVER", "DHCP OFFER 10.0.1.100", "ARP probe", "DNS query",
                 "www.lab.example. A", "DNS answer 10.0.2.2", "ICMP echo reply"):
        assert want in res.diagram, want
    for lang in ("en", "ko"):
        text = runner.render_step("lan-dhcp-dns", res, lang, 1, 1)
        wide = [line for line in text.splitlines() if cell_len(line) > 80]
        assert not wide, wide
