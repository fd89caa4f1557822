"""`stacklab tour` and `stacklab run --trace/--diagram/--stats` from the command line; the SVG
and HTML reports rendered by headless Chromium (Debian's chromium)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

from rich.cells import cell_len

from stacklab.testing import require_tool

ROOT = Path(__file__).resolve().parents[2]


def stacklab(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80"}
    return subprocess.run([sys.executable, "-m", "stacklab", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


# -- PNG (stdlib only) ------------------------------------------------------------------------

def read_png(data: bytes) -> tuple[int, int, list[bytes], int]:
    """(width, height, rows of raw pixels, bytes per pixel) of an 8-bit RGB/RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6)
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, rows, bpp


def ink(rows: list[bytes], bpp: int, x0: int, x1: int, y0: int, y1: int) -> int:
    """Pixels that are not (near) white in the box."""
    n = 0
    for row in rows[y0:y1]:
        for x in range(x0, x1):
            px = row[x * bpp:x * bpp + 3]
            if min(px) < 200:
                n += 1
    return n


def chromium() -> str:
    return require_tool("chromium", "chromium-browser", package="chromium")


def screenshot(page: Path, out: Path, tmp: Path, size: str = "1000,1400") -> bytes:
    exe = chromium()
    args = [exe, "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", f"--user-data-dir={tmp / 'profile'}",
            f"--screenshot={out}", f"--window-size={size}", page.as_uri()]
    if os.geteuid() == 0:
        args.insert(2, "--no-sandbox")
    subprocess.run(args, capture_output=True, timeout=90, check=False)
    assert out.exists(), "chromium wrote no screenshot"
    return out.read_bytes()


# -- tour -------------------------------------------------------------------------------------

def test_tour_list_and_unknown_step():
    p = stacklab("tour", "--list")
    assert p.returncode == 0
    assert "tcp-handshake" in p.stdout and "time-wait" in p.stdout
    assert stacklab("tour", "no-such-step").returncode != 0


def test_tour_ko_html_and_pcap(tmp_path):
    p = stacklab("tour", "tcp-handshake", "arp", "--lang", "ko", "--html", str(tmp_path / "h"),
                 "--pcap", str(tmp_path / "p"))
    assert p.returncode == 0, p.stderr
    assert any("\uac00" <= ch <= "\ud7a3" for ch in p.stdout)
    assert all(cell_len(line) <= 80 for line in p.stdout.splitlines())
    assert "SYN-RECEIVED" in p.stdout
    html = (tmp_path / "h" / "index.html").read_text("utf-8")
    assert html.count("<svg") == 2
    pcaps = sorted(x.relative_to(tmp_path / "p").as_posix()
                   for x in (tmp_path / "p").rglob("*.pcap"))
    assert pcaps == ["arp/a-b.pcap", "tcp-handshake/client-server.pcap"]
    assert (tmp_path / "p" / "arp" / "a-b.pcap").stat().st_size > 24


def test_html_report_renders_in_chromium(tmp_path):
    chromium()
    p = stacklab("tour", "tcp-handshake", "--html", str(tmp_path))
    assert p.returncode == 0, p.stderr
    png = screenshot(tmp_path / "index.html", tmp_path / "shot.png", tmp_path)
    width, height, rows, bpp = read_png(png)
    assert (width, height) == (1000, 1400)
    # the diagram: lifelines at x ~ 130 and ~ 390 (+ page margin), arrows between them
    arrows = ink(rows, bpp, 200, 380, 150, 600)
    assert arrows > 500, f"only {arrows} dark pixels where the arrows are"
    assert ink(rows, bpp, 0, width, 1300, 1400) == 0  # the bottom of a short page is blank


def test_svg_diagram_renders_in_chromium(tmp_path):
    chromium()
    scn = ROOT / "examples" / "ping.toml"
    p = stacklab("run", str(scn), "--diagram", "a,r", "--only", "icmp",
                 "--svg", str(tmp_path / "d.svg"), "--html", str(tmp_path / "d.html"))
    assert p.returncode == 0, p.stderr
    svg = (tmp_path / "d.svg").read_text()
    assert svg.count("marker-end") >= 10  # echo requests and replies
    png = screenshot(tmp_path / "d.svg", tmp_path / "svg.png", tmp_path, "700,600")
    width, height, rows, bpp = read_png(png)
    assert (width, height) == (700, 600)
    assert ink(rows, bpp, 140, 380, 60, 600) > 500
    png = screenshot(tmp_path / "d.html", tmp_path / "html.png", tmp_path, "700,600")
    assert ink(*read_png(png)[2:], 100, 500, 100, 600) > 500


# -- run --trace / --diagram / --stats --------------------------------------------------------

def test_run_trace_lines(tmp_path):
    scn = ROOT / "examples" / "lossy-tcp.toml"
    p = stacklab("run", str(scn), "--trace", "--trace-file", str(tmp_path / "t.jsonl"))
    assert p.returncode == 0, p.stderr
    lines = [ln for ln in p.stdout.splitlines() if ln[:11].strip().replace(".", "").isdigit()]
    # piped, not a terminal: whole lines, never cut with "~" (audit D19)
    assert len(lines) > 1000 and not any(ln.endswith("~") for ln in lines)
    text = "\n".join(lines)
    for what in (" tcp    state   ", "SYN-SENT -> ESTABLISHED", " tcp    retransmit ",
                 " tcp    rto ", " tcp    cwnd ", " link   drop    loss:", " link   tx ",
                 " link   rx ", " arp    cache "):
        assert what in text, what
    events = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert len(events) == len(lines)
    tx = [e for e in events if e["layer"] == "link" and e["event"] == "tx"]
    assert any("Flags [S]" in e["summary"] for e in tx)
    assert {"time", "node", "layer", "event"} <= set(events[0])


def test_run_pmtu_events_in_trace():
    p = stacklab("run", str(ROOT / "examples" / "pmtud-v4.toml"), "--trace")
    assert p.returncode == 0, p.stderr
    assert " pmtu   pmtu    dst=10.0.4.2 mtu=1400" in p.stdout
    assert " tcp    pmtu    " in p.stdout


def test_run_diagram_and_stats():
    p = stacklab("run", str(ROOT / "examples" / "lossy-tcp.toml"), "--diagram", "client,r1",
                 "--only", "tcp", "--stats")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "sequence diagram client / r1" in out and "[S] seq 0" in out
    body = out[out.index("sequence diagram"):]
    assert all(len(ln) <= 80 for ln in body.splitlines())
    assert "TCP connections:" in out
    row = out.splitlines()[out.splitlines().index(
        next(ln for ln in out.splitlines() if ln.startswith("client 10.0.1.1:"))) + 1]
    # final state, mss, pmtu, bytes out, in, segs, retransmits: the sender resent 25 segments
    fields = row.split()
    assert fields[0] == "TIME-WAIT" and fields[1] == "1448" and fields[2] == "1500"
    assert int(fields[6]) == 25


def test_run_diagram_needs_real_nodes():
    p = stacklab("run", str(ROOT / "examples" / "ping.toml"), "--diagram", "a,zz")
    assert p.returncode != 0 and "zz" in p.stderr
