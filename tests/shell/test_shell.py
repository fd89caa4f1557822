"""``stacklab shell`` driven by a piped script: every command, its output, bad commands that
print one line and let the shell go on; tab completion; the one-shot verbs."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from stacklab.cli.shell import Shell, open_network

ROOT = Path(__file__).resolve().parents[2]


def stacklab(*args: str, stdin: str = "", home: Path | None = None
             ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if home is not None:
        env["HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "stacklab", *args], cwd=ROOT, env=env,
                          input=stdin, capture_output=True, text=True, timeout=120)


def transcript(out: str) -> dict[str, str]:
    """command -> what it printed (the shell echoes each command after its prompt)."""
    parts = re.split(r"^stacklab> (.*)$", out, flags=re.M)
    return {cmd: text.strip("\n") for cmd, text in zip(parts[1::2], parts[2::2], strict=True)}


SCRIPT = """\
add host a
add router r
add host b
add link a r delay 5ms rate 10Mbit
add link r b delay 20ms
nodes
a ip addr
a ip route
b start http-server
tcpdump r-b
a ping b -c 2
capture off
a ip neigh
a traceroute b
a curl http://b/
a ss
link a-r set loss 5% delay 20ms
link r-b down
a ping b -c 1
link r-b up
links
run 5s
time
diagram a r
add host c
bogus
a flyto b
link zz down
run soon
a ping
save {tmp}/net.toml
save {tmp}/net.svg
save {tmp}/net.html
help
help ping
quit
a ping b -c 9
"""


def test_every_command_from_a_piped_script(tmp_path):
    p = stacklab("shell", stdin=SCRIPT.format(tmp=tmp_path), home=tmp_path)
    assert p.returncode == 1, p.stderr  # some commands failed (on purpose)
    assert p.stderr == ""
    out = transcript(p.stdout)
    assert out["nodes"].splitlines() == ["a          host    10.0.1.1",
                                         "r          router  10.0.1.2 10.0.2.1",
                                         "b          host    10.0.2.2"]
    assert "inet 10.0.1.1/24" in out["a ip addr"] and "link/ether 02:00:00:01:00:00" in \
        out["a ip addr"] and "inet6 fd00:0:0:1::1/64 scope global" in out["a ip addr"]
    assert "10.0.2.0/24 via 10.0.1.2" in out["a ip route"]
    assert out["b start http-server"] == "started http-server on b"
    ping = out["a ping b -c 2"]
    assert "2 packets transmitted, 2 received, 0% packet loss" in ping
    # tcpdump's live lines, interleaved with ping's as virtual time runs
    lines = ping.splitlines()
    request = next(i for i, ln in enumerate(lines) if "r > b: 10.0.1.1 > 10.0.2.2: ICMP echo "
                   "request, id" in ln and "seq 1," in ln)
    reply = next(i for i, ln in enumerate(lines) if "icmp_seq=1 ttl=63" in ln)
    assert request < reply
    assert out["capture off"] == "capture off"
    assert re.search(r"10\.0\.1\.2 dev eth0 lladdr 02:00:00:02:00:00 (REACHABLE|STALE)",
                     out["a ip neigh"])
    assert re.search(r"^ 1  10\.0\.1\.2 .*\n 2  10\.0\.2\.2 ", out["a traceroute b"], re.M)
    assert out["a curl http://b/"].startswith("HTTP 200, 1024 bytes, sha256 ")
    assert "10.0.1.1:" in out["a ss"] and "10.0.2.2:80" in out["a ss"]
    assert out["link a-r set loss 5% delay 20ms"] == "a-r up: 20ms 10Mbit loss 5%"
    assert out["link r-b down"] == "r-b down: 20ms"
    assert "1 packets transmitted, 0 received, 100% packet loss" in out["a ping b -c 1"]
    assert out["links"].splitlines() == ["a-r up: 20ms 10Mbit loss 5%", "r-b up: 20ms"]
    t = float(out["run 5s"].split()[2])
    assert out["time"] == out["run 5s"] and 8 < t < 9
    diagram = out["diagram a r"]
    assert "ICMP echo request seq 1" in diagram and "[S] seq 0" in diagram
    assert "[ESTABLISHED]" in diagram
    # bad commands: one line each, naming the problem; the shell went on
    assert out["add host c"].startswith("error: the network is in use")
    assert out["bogus"] == "error: unknown command 'bogus' (`help` lists them; nodes: a, r, b)"
    assert out["a flyto b"].startswith("error: unknown node command 'flyto' (known: ping,")
    assert out["link zz down"] == "error: unknown link 'zz' (known: a-r, r-b)"
    assert out["run soon"].startswith("error: ") and "soon" in out["run soon"]
    assert out["a ping"] == "error: ping: the following arguments are required: DEST"
    assert all(len(v.splitlines()) == 1 for k, v in out.items() if v.startswith("error:"))
    # save: a scenario that loads again, the topology, the report
    saved = tomllib.loads((tmp_path / "net.toml").read_text())
    assert [n["name"] for n in saved["node"]] == ["a", "r", "b"]
    assert saved["link"][0] == {"ends": ["a", "r"], "delay": "20ms", "rate": "10Mbit",
                                "loss": 0.05}
    assert saved["app"] == [{"node": "b", "kind": "http-server"}]
    assert stacklab("run", str(tmp_path / "net.toml")).returncode == 0
    assert (tmp_path / "net.svg").read_text().count('class="node"') == 3
    html = (tmp_path / "net.html").read_text()
    assert "Sequence diagram a / r" in html and 'class="plot"' in html
    assert "NODE ping DEST [-c COUNT]" in out["help"] and "run DURATION" in out["help"]
    assert out["help ping"].startswith("NODE ping DEST [-c COUNT]: ICMP echo")
    assert "a ping b -c 9" not in out  # nothing runs after quit
    assert not (tmp_path / ".stacklab_history").exists()  # no history from a pipe


def test_loads_a_scenario_and_starts_its_apps(tmp_path):
    p = stacklab("shell", "examples/lossy-tcp.toml",
                 stdin="run 3s\nclient ss\nserver ss\nlink r1-server\n")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "started tcp-sink on server" in p.stdout and "started tcp-send on client" in p.stdout
    out = transcript(p.stdout)
    assert "ESTABLISHED" in out["client ss"] and "LISTEN" in out["server ss"]
    assert out["link r1-server"].startswith("r1-server up: 25ms 20Mbit loss 2%")
    assert "EOF" not in p.stdout  # the script's end is not a command


def test_the_lease_in_dhcp_and_ip_addr():
    """A host with addressing = "dhcp": ``dhcp`` shows its leases, ``ip addr`` marks the
    address dynamic with the seconds left, as ip(8); a host without a client says so."""
    p = stacklab("shell", "examples/lan-dhcp-dns.toml",
                 stdin="run 12s\nphone dhcp\nlaptop ip addr\nrun 100s\nlaptop ip addr\n"
                       "ns dhcp\n")
    assert p.returncode == 0, p.stdout + p.stderr
    parts = re.split(r"^stacklab> (.*)$", p.stdout, flags=re.M)
    outs = [text.strip("\n") for text in parts[2::2]]
    _, dhcp, addr1, _, addr2, none = outs
    v4, v4_opts, v6, v6_opts = dhcp.splitlines()
    assert re.fullmatch(r"eth0 DHCPv4: BOUND 10\.0\.1\.10[01]/24 from 10\.0\.1\.1, lease 600 s,"
                        r" expires in 59\d\.\d+ s", v4), v4
    assert v4_opts == "    router 10.0.1.1, dns 10.0.1.1, domain lab.example, mtu -"
    assert v6.startswith("eth0 DHCPv6: BOUND fd00:0:0:1::10")
    assert v6_opts == "    dns fd00:0:0:1::1, domains lab.example"
    lft = [int(m) for m in re.findall(r"valid_lft (\d+)sec preferred_lft \1sec",
                                      addr1 + addr2)]
    assert re.search(r"^    inet 10\.0\.1\.10[01]/24 dynamic$", addr1, re.M), addr1
    assert len(lft) == 2 and 590 <= lft[0] < 600 and lft[1] == lft[0] - 100
    assert none == 'ns: no DHCP client (addressing = "dhcp" or dhcp6 = ... starts one)'


def test_bad_file_is_one_line():
    p = stacklab("shell", "no/such.toml")
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "no such file" in p.stderr


def test_completion():
    net, _ = open_network(str(ROOT / "examples" / "ping.toml"))
    sh = Shell(net, stdin=io.StringIO(), stdout=io.StringIO(), configured=True)
    assert sh.completenames("r") == ["r", "run"]
    assert sh.completedefault("tr", "a tr", 2, 4) == ["traceroute"]
    assert sh.completedefault("b", "a ping b", 7, 8) == ["b"]
    assert sh.completedefault("n", "a ip n", 5, 6) == ["neigh"]
    assert sh.completedefault("r", "link r", 5, 6) == ["r-b"]
    assert sh.completedefault("d", "link a-r d", 9, 10) == ["down"]
    net.close()


def test_one_shot_verbs():
    p = stacklab("ping", "examples/ping.toml", "a", "b", "-c", "3")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("PING b (10.0.2.2) 56(84) bytes of data.")
    assert "3 packets transmitted" in p.stdout
    p = stacklab("ss", "examples/lossy-tcp.toml", "client", "--at", "3s")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[1].startswith("ESTABLISHED")
    p = stacklab("traceroute", "examples/pmtud-v4.toml", "a", "b")
    assert p.returncode == 0 and p.stdout.splitlines()[-1].startswith(" 4  10.0.4.2 ")
    p = stacklab("ping", "examples/ping.toml", "a", "zz")
    assert p.returncode == 1 and p.stdout.count("\n") == 1 and "zz" in p.stdout


def test_terminal_tab_completion_and_history(tmp_path):
    """On a terminal (a pty here): TAB completes a verb, the command runs, the history file
    keeps it."""
    import pty
    import select
    import time

    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path), "TERM": "dumb"}
    proc = subprocess.Popen([sys.executable, "-m", "stacklab", "shell", "examples/ping.toml"],
                            cwd=ROOT, env=env, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    seen = b""

    def until(what: bytes, timeout: float = 30.0) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while what not in seen:
            left = deadline - time.monotonic()
            assert left > 0, seen.decode(errors="replace")
            if select.select([master], [], [], left)[0]:
                try:
                    seen += os.read(master, 4096)
                except OSError:  # the child closed the terminal
                    break

    try:
        until(b"stacklab> ")
        os.write(master, b"a tr\t")
        until(b"traceroute")
        os.write(master, b" b\r")
        until(b" 2  ")
        os.write(master, b"quit\r")
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        os.close(master)
    assert proc.returncode == 0
    history = (tmp_path / ".stacklab_history").read_text().splitlines()
    assert [h.split() for h in history] == [["a", "traceroute", "b"], ["quit"]]
