"""`stacklab tap` argument checking: every mistake is one clear line and exit status 2."""

from __future__ import annotations

import pytest

from stacklab.cli.main import main


@pytest.mark.parametrize(("argv", "message"), [
    ([], "no device"),
    (["--dev", "tap0"], "no address"),
    (["--dev", "tap0", "--ipv4", "10.0.0.300/24"], "bad address '10.0.0.300/24'"),
    (["--dev", "tap0", "--ipv4", "10.0.0.2"], "expected ADDR/LEN"),
    (["--dev", "tap0", "--ipv4", "fd00::2/64"], "not an IPv4 address"),
    (["--dev", "tap0", "--ipv6", "10.0.0.2/24"], "not an IPv6 address"),
    (["--dev", "tap0", "--ipv4", "10.0.0.2/24", "--gw", "nope"], "bad gateway 'nope'"),
    (["--dev", "tap0", "--ipv4", "10.0.0.2/24", "--serve", "telnet:23"], "unknown service"),
    (["--dev", "tap0", "--ipv4", "10.0.0.2/24", "--serve", "echo"], "expected SERVICE:PORT"),
    (["--dev", "tap0", "--ipv4", "10.0.0.2/24", "--serve", "echo:70000"], "out of range"),
    (["--dev", "tap0", "--ipv4", "10.0.0.2/24", "--serve", "echo:7,discard:7"],
     "already served"),
    (["--dev", "tap0", "--ipv4", "10.0.0.2/24", "--mtu", "100"], "bad MTU 100"),
    (["--dev", "bad name!", "--ipv4", "10.0.0.2/24"], "bad device name"),
    (["--dev", "tap0", "--dev", "tap1", "--ipv4", "10.0.0.2/24"], "use --router"),
    (["--router", "--dev", "tapA=10.0.1.1/24"], "at least two devices"),
    (["--router", "--dev", "tapA=10.0.1.1/24", "--dev", "tapB"], "has no address"),
    (["--router", "--dev", "tapA=10.0.1.1/24", "--dev", "tapB=10.0.2.1/24,mtu=x"],
     "bad MTU 'x'"),
    (["--dev", "tap0=10.0.0.2/24"], "per-device addresses are for --router"),
])
def test_bad_arguments_are_one_clear_line(argv: list[str], message: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tap", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("stacklab tap: error: ")
    assert message in err
    assert len(err.splitlines()) == 1
