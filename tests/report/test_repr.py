"""Jupyter: a Network, its connections and a capture render themselves (``_repr_svg_`` /
``_repr_html_``) as the topology, a sequence diagram with plots, and a packet table."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from stacklab.net.network import Network
from stacklab.trace.events import Tracer

SVG = "{http://www.w3.org/2000/svg}"


def _net(tmp_path, tracer=True):
    net = Network(seed=1, tracer=Tracer() if tracer else None)
    a, r, b = net.add_host("a"), net.add_router("r"), net.add_host("b")
    net.connect(a, r, delay="5ms", rate="10Mbit")
    net.connect(r, b, loss=0.05)
    net.autoconfigure()
    cap = net.capture(tmp_path)

    async def main():
        async def sink(reader, writer):
            await reader.read()
            writer.close()

        await b.start_server(sink, port=80)
        _reader, writer = await a.open_connection("b", 80)
        writer.write(b"x" * 60000)
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    net.run(main(), until=30)
    return net, cap


def test_network_draws_its_topology(tmp_path):
    net, _cap = _net(tmp_path)
    svg = ET.fromstring(net._repr_svg_())
    nodes = [n.get("data-node") for n in svg.iter() if n.get("class") == "node"]
    links = [n.get("data-link") for n in svg.iter() if n.get("class") == "link"]
    assert nodes == ["a", "r", "b"] and links == ["a-r", "r-b"]
    texts = " ".join(t.text or "" for t in svg.iter(SVG + "text"))
    assert "5ms 10Mbit" in texts and "loss 5%" in texts and "10.0.1.1" in texts
    page = net._repr_html_()
    assert page.count("<svg") == 1
    sent = net.link("a-r").ab.counters["tx.frames"]
    assert f"<td>a-r</td><td>up</td><td>5ms 10Mbit</td><td>a&gt;r</td><td class='num'>{sent}</td>" \
        in page and sent > 40
    net.link("r-b").set_up(False)
    assert 'stroke-dasharray' in net._repr_svg_() and "(down)" in net._repr_svg_()
    net.close()


def test_capture_is_a_packet_table(tmp_path):
    net, cap = _net(tmp_path)
    packets = cap.packets()
    assert {p.where for p in packets} == {"a-r", "r-b"}
    table = cap._repr_html_()
    assert table.count("<tr>") == len(packets) + 1 > 50
    assert "Flags [S]" in table and "ARP, Request who-has" in table
    net.close()


def test_connection_draws_its_diagram_along_the_path_and_its_plots(tmp_path):
    net, _cap = _net(tmp_path)
    client = next(c for c in net.connections() if c.stats.node == "a")
    assert client.lifelines == ["a", "r", "b"]  # not neighbours: the diagram follows the path
    svg = ET.fromstring(client._repr_svg_())
    labels = [t.text for t in svg.iter(SVG + "text")]
    assert any(t and t.startswith("[S] seq 0") for t in labels)
    assert "ESTABLISHED" in labels and not any(t and "ARP" in t for t in labels)
    page = client._repr_html_()
    assert page.count("class=\"plot\"") == 3  # cwnd, RTT, time-sequence
    points = [int(n) for n in re.findall(r'data-label="sent" data-points="(\d+)"', page)]
    assert points and points[0] >= 40  # 60000 bytes in 1460-byte segments
    net.close()


def test_without_a_tracer_a_connection_says_what_is_missing(tmp_path):
    net, _cap = _net(tmp_path, tracer=False)
    conn = net.connections()[0]
    assert "Network(tracer=Tracer())" in conn._repr_html_()
    net.close()
