"""TLS record names for diagrams (stacklab.wire.tls.describe)."""

from __future__ import annotations

from stacklab.wire.tls import describe


def record(ctype: int, body: bytes, version: bytes = b"\x03\x03") -> bytes:
    return bytes([ctype]) + version + len(body).to_bytes(2, "big") + body


def handshake(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def test_names_a_flight_and_counts_repeats() -> None:
    hello = record(22, handshake(1, b"x" * 40), b"\x03\x01")
    assert describe(hello) == "TLS ClientHello"
    flight = (record(22, handshake(2, b"y" * 80)) + record(20, b"\x01")
              + record(23, b"z" * 30) + record(23, b"w" * 900))
    assert describe(flight) == "TLS ServerHello, CCS, AppData x2"
    tls12 = record(22, handshake(11, b"c" * 300) + handshake(14, b""))
    assert describe(tls12) == "TLS Certificate"
    # TLS 1.2's Finished after CCS: ciphertext whose "header" does not fit the record
    assert describe(record(20, b"\x01") + record(22, b"\x14\xff\xff\xff" + b"e" * 36)) == (
        "TLS CCS, encrypted handshake")
    assert describe(record(21, b"\x02\x28")) == "TLS Alert"


def test_a_record_cut_by_the_segment_end_is_still_named() -> None:
    assert describe(record(22, handshake(1, b"x" * 3000))[:1448]) == "TLS ClientHello"


def test_not_tls() -> None:
    assert describe(b"GET / HTTP/1.1\r\n\r\n") is None
    assert describe(b"\x16\x03") is None                        # too short for a header
    assert describe(b"\x16\x02\x00\x00\x05hello") is None       # SSL 2 version byte
    assert describe(b"\x17\x03\x03\xff\xff" + b"x" * 10) is None  # longer than any record
    assert describe(b"") is None
