"""The LAN vocabulary of scenario files: clear errors naming the table and key, lease
exhaustion and unknown zones reported in the summary, not as crashes."""

from __future__ import annotations

from pathlib import Path

import pytest

from stacklab.scenario.runner import ScenarioError, run_scenario

BASE = """
seed = 2
duration = "20s"

[[node]]
name = "lan"
kind = "switch"

[[node]]
name = "srv"
kind = "host"
{srv}

[[node]]
name = "a"
kind = "host"
addressing = "dhcp"

[[node]]
name = "b"
kind = "host"
addressing = "dhcp"
dns = "10.0.1.1"
search = ["lab.example"]

[[link]]
ends = ["srv", "lan"]

[[link]]
ends = ["a", "lan"]

[[link]]
ends = ["b", "lan"]

{apps}
"""

SERVER = """
[[app]]
node = "srv"
kind = "dhcp-server"
{pool}

[[app]]
node = "srv"
kind = "dns-server"
zones = {{ "lab.example" = {{ www = "10.0.1.80" }} }}
"""


def _write(tmp_path: Path, srv: str = "", apps: str = "") -> Path:
    p = tmp_path / "lan.toml"
    p.write_text(BASE.format(srv=srv, apps=apps))
    return p


def test_lease_exhaustion_and_unknown_zones_are_reported(tmp_path: Path):
    # the lookups run on srv itself, asking its own server (10.0.1.1, over lo)
    lookups = """
[[app]]
node = "srv"
kind = "dns-lookup"
name = "www"
expect = "10.0.1.80"
start = "5s"

[[app]]
node = "srv"
kind = "dns-lookup"
name = "www.elsewhere.test."
start = "6s"
"""
    out = run_scenario(_write(tmp_path, 'dns = "10.0.1.1"\nsearch = "lab.example"', SERVER.format(
        pool='pool = "10.0.1.100-10.0.1.100"') + lookups))
    server, dns_server, ok, refused = out["apps"]
    assert server["ok"] and server["pool_exhausted"] >= 1  # one address, two clients
    assert len(server["leases"]) == 1
    states = sorted(out["nodes"][n]["dhcp"][0]["state"] for n in ("a", "b"))
    assert states == ["BOUND", "SELECTING"]
    assert dns_server["errors"] == {"refused": 2}  # A and AAAA for the other zone
    assert refused["ok"] is False and "Temporary failure" in refused["error"]
    assert ok["ok"] and ok["addresses"] == ["10.0.1.80"]
    assert out["nodes"]["srv"]["counters"]["lo.tx.packets"] >= 4


@pytest.mark.parametrize(("apps", "srv", "key"), [
    (SERVER.format(pool='pool = "10.0.1.100"'), "", "pool"),
    (SERVER.format(pool='pool = "10.0.9.100-10.0.9.110"'), "", "pool"),
    (SERVER.format(pool='pool = "10.0.1.100-10.0.1.99"'), "", "pool"),
    (SERVER.format(pool="dns = \"nameserver\""), "", "dns"),
    ('[[app]]\nnode = "srv"\nkind = "dns-server"\nzones = { "lab.example" = { www = "MX x y z" } }',
     "", "zones"),
    ('[[app]]\nnode = "srv"\nkind = "dns-resolver"', "", "upstream"),
    ("", 'addressing = "bootp"', "addressing"),
    ("", 'search = [""]', "search"),
    ("", 'dhcp6 = "yes"', "dhcp6"),
    ('[[app]]\nnode = "srv"\nkind = "dhcp-relay"\nservers = "10.0.1.1"', "", "servers"),
    ('[[app]]\nnode = "srv"\nkind = "dhcp6-server"\npool = "fd00::9-fd00::1"', "", "pool"),
])
def test_bad_lan_settings_name_their_key(tmp_path: Path, apps: str, srv: str, key: str):
    with pytest.raises(ScenarioError) as e:
        run_scenario(_write(tmp_path, srv, apps))
    assert f"key '{key}'" in str(e.value), str(e.value)
