import xml.etree.ElementTree as ET

from stacklab.trace.diagram import Arrow, Note, from_trace, render_svg, render_text
from stacklab.trace.events import Tracer

LIFELINES = ["client", "server"]


def _handshake_trace() -> Tracer:
    tr = Tracer()
    tr.emit(0.0, "client", "tcp", "state", old="CLOSED", new="SYN-SENT", cause="connect")
    tr.emit(0.005, "server", "link", "deliver", src="client", dst="server", sent=0.0,
            label="[S] seq 0")
    tr.emit(0.005, "server", "tcp", "state", old="LISTEN", new="SYN-RECEIVED", cause="SYN")
    tr.emit(0.010, "client", "link", "deliver", src="server", dst="client", sent=0.005,
            label="[S.] seq 0 ack 1")
    tr.emit(0.010, "client", "tcp", "state", old="SYN-SENT", new="ESTABLISHED", cause="SYN-ACK")
    tr.emit(0.012, "r9", "link", "deliver", src="r9", dst="x", sent=0.011, label="elsewhere")
    tr.emit(0.013, "client", "link", "drop", src="client", dst="server", label="[.] ack 1")
    return tr


def test_rows_from_trace_keep_order_and_filter_other_nodes():
    rows = from_trace(_handshake_trace().events, LIFELINES)
    kinds = [(type(r).__name__, getattr(r, "label", getattr(r, "text", ""))) for r in rows]
    assert kinds == [
        ("Note", "SYN-SENT"), ("Arrow", "[S] seq 0"), ("Note", "SYN-RECEIVED"),
        ("Arrow", "[S.] seq 0 ack 1"), ("Note", "ESTABLISHED"), ("Arrow", "[.] ack 1"),
    ]
    assert rows[-1].dropped and rows[-1].t_recv is None
    assert rows[1].t_send == 0.0 and rows[1].t_recv == 0.005


def test_text_diagram_fits_80_columns_and_points_the_right_way():
    rows = from_trace(_handshake_trace().events, LIFELINES)
    text = render_text(rows, LIFELINES, width=80)
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines)
    syn = next(line for line in lines if "[S] seq 0" in line)
    synack = next(line for line in lines if "[S.] seq 0 ack 1" in line)
    assert syn.rstrip().endswith(">|") and "|<" in synack
    drop = next(line for line in lines if "X" in line and "0.013" in line)
    assert ">" not in drop
    assert lines[0].split() == ["client", "server"]


def test_svg_is_well_formed_and_has_one_line_per_arrow():
    rows = [Note(0, "a", "SYN-SENT"), Arrow(0, 0.1, "a", "b", "SYN <&>"),
            Arrow(0.2, None, "b", "a", "lost", dropped=True)]
    svg = render_svg(rows, ["a", "b"], title="t")
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    texts = [t.text for t in root.iter(ns + "text")]
    assert "SYN <&>" in texts and "SYN-SENT" in texts and "lost" in texts
    arrows = [ln for ln in root.iter(ns + "line") if ln.get("marker-end")]
    assert len(arrows) == 1
