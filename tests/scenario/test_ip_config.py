"""Scenario files set what autoconfiguration guesses: addresses per interface, routes, static
neighbours, per-interface MTU (autoconfigure stays the default)."""

from __future__ import annotations

import pytest

from stacklab.scenario.runner import ScenarioError, build_network, load_scenario, run_scenario

NODES = '[[node]]\nname = "a"\nkind = "host"\n[[node]]\nname = "r"\nkind = "router"\n' \
        '[[node]]\nname = "b"\nkind = "host"\n'


def write(tmp_path, text):
    f = tmp_path / "s.toml"
    f.write_text(text)
    return f


def test_everything_by_hand_without_autoconfigure(tmp_path):
    f = write(tmp_path, 'autoconfigure = false\nduration = "5s"\n' + NODES.replace(
        'name = "a"\nkind = "host"\n',
        'name = "a"\nkind = "host"\nroutes = [{ to = "default", via = "192.0.2.1" }]\n'
        'neighbors = [{ address = "192.0.2.1", mac = "02:00:00:02:00:00" }]\n').replace(
        'name = "b"\nkind = "host"\n',
        'name = "b"\nkind = "host"\nroutes = [{ to = "192.0.2.0/24", via = "198.51.100.1" }]\n')
        + '[[link]]\nends = ["a", "r"]\naddresses = { a = "192.0.2.10/24", r = "192.0.2.1/24" }\n'
        'if_mtu = { a = 1400 }\n'
        '[[link]]\nends = ["r", "b"]\n'
        'addresses = { r = "198.51.100.1/24", b = ["198.51.100.20/24", "2001:db8::20/64"] }\n'
        '[[app]]\nnode = "a"\nkind = "ping"\nto = "b"\ncount = 2\ninterval = "100ms"\n')
    scn = load_scenario(f)
    net = build_network(scn)
    try:
        a, b = net.node("a"), net.node("b")
        assert a.addresses(4) == ["192.0.2.10"]
        assert "2001:db8::20" in b.addresses(6)
        assert a.interfaces[0].mtu == 1400  # the interface's, the link's stays 1500
        assert "default via 192.0.2.1" in str(a.routes)
        assert "192.0.2.1" in str(a.neighbors) and "PERMANENT" in str(a.neighbors)
    finally:
        net.close()
    summary = run_scenario(f)
    ping = summary["apps"][0]
    assert ping["ok"] and ping["address"] == "198.51.100.20" and ping["received"] == 2


def test_added_beside_autoconfigure(tmp_path):
    f = write(tmp_path, NODES + '[[link]]\nends = ["a", "r"]\n'
              'addresses = { a = "192.0.2.10/24" }\n[[link]]\nends = ["r", "b"]\n')
    net = build_network(load_scenario(f))
    try:
        assert net.node("a").addresses(4) == ["10.0.1.1", "192.0.2.10"]
    finally:
        net.close()


@pytest.mark.parametrize(("extra", "words"), [
    ('addresses = { c = "10.9.0.1/24" }', "'c' is not an end"),
    ('addresses = { a = "10.9.0.1" }', "with its prefix length"),
    ('addresses = { a = "10.9.0.300/24" }', "addresses"),
    ('if_mtu = { a = 20 }', "between 68 and 65535"),
])
def test_bad_link_settings_name_the_key(tmp_path, extra, words):
    f = write(tmp_path, NODES + f'[[link]]\nends = ["a", "r"]\n{extra}\n')
    with pytest.raises(ScenarioError, match=words):
        load_scenario(f)


@pytest.mark.parametrize(("extra", "words"), [
    ('routes = [{ to = "10.9.0.0/16" }]', "to = PREFIX, via = GATEWAY"),
    ('routes = [{ to = "10.9.0.0/16", via = "fd00::1" }]', "families differ"),
    ('neighbors = [{ address = "10.0.1.2", mac = "zz" }]', "a MAC address"),
])
def test_bad_node_settings_name_the_key(tmp_path, extra, words):
    f = write(tmp_path, NODES.replace('kind = "host"\n', f'kind = "host"\n{extra}\n', 1))
    with pytest.raises(ScenarioError, match=words):
        load_scenario(f)
