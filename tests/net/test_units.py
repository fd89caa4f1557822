"""Unit parsing for the Python API and scenario files."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stacklab.net.units import (
    ParamError,
    parse_duration,
    parse_probability,
    parse_rate,
    parse_size,
)


@pytest.mark.parametrize("text, seconds", [
    ("5ms", 0.005), ("1.5s", 1.5), ("250us", 250e-6), ("250µs", 250e-6), ("10ns", 1e-8),
    ("2min", 120.0), ("1h", 3600.0), ("0", 0.0), ("3", 3.0), (0.25, 0.25), (2, 2.0),
    (" 7 ms ", 0.007), ("1e-3s", 0.001),
])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text, bps", [
    ("100Mbit", 100e6), ("1Gbit", 1e9), ("64kbit", 64e3), ("10Mbps", 10e6), ("1.5Gbit", 1.5e9),
    ("9600bit", 9600.0), (1e6, 1e6),
])
def test_rates(text, bps):
    assert parse_rate(text) == pytest.approx(bps)


def test_sizes_and_probabilities():
    assert parse_size("64KB") == 64_000 and parse_size("1MiB") == 1 << 20
    assert parse_size(1500) == 1500
    assert parse_probability("1%", "loss") == pytest.approx(0.01)
    assert parse_probability(0.3, "loss") == 0.3


@pytest.mark.parametrize("call, match", [
    (lambda: parse_duration("5 parsecs", "delay"), r"delay: unknown duration unit 'parsecs'"),
    (lambda: parse_duration("soon", "delay"), r"delay: expected a duration like '5ms'"),
    (lambda: parse_duration(True, "delay"), r"delay: expected a duration"),
    (lambda: parse_duration("-5ms", "delay"), r"delay: a duration cannot be negative"),  # D27
    (lambda: parse_size("-1KB", "size"), r"size: a size must be a whole number of bytes >= 0"),
    (lambda: parse_duration(float("nan"), "delay"), r"delay: expected a duration"),
    (lambda: parse_rate(float("inf"), "rate"), r"rate: expected a rate"),
    (lambda: parse_rate("100", "rate"), r"rate: a rate needs a unit"),
    (lambda: parse_rate("100Mbyte", "rate"), r"rate: unknown rate unit 'Mbyte'"),
    (lambda: parse_rate("0Mbit", "rate"), r"rate: a rate must be positive"),
    (lambda: parse_size("1.5B", "size"), r"size: a size must be a whole number"),
    (lambda: parse_probability(1.2, "loss"), r"loss: a probability must be between 0 and 1"),
    (lambda: parse_probability("lots", "loss"), r"loss: expected a probability"),
])
def test_errors_name_the_key_and_the_problem(call, match):
    with pytest.raises(ParamError, match=match):
        call()


@given(st.integers(min_value=0, max_value=10**9))
def test_milliseconds_round_trip(ms):
    assert parse_duration(f"{ms}ms") == pytest.approx(ms / 1000)


@given(st.text(max_size=12))
def test_garbage_gives_param_error_only(text):
    for parse in (parse_duration, parse_rate, parse_size):
        try:
            parse(text, "k")
        except ParamError as exc:
            assert exc.key == "k"


def test_scalar_parameters_name_the_key_when_wrong():
    from stacklab.net.units import ParamError, parse_bool, parse_family, parse_int, parse_text

    assert parse_int(7, "port", 1, 65535) == 7
    assert parse_bool(True, "df") is True and parse_family(6) == 6
    assert parse_text("b", "to") == "b"
    for call, key in ((lambda: parse_int(0, "port", 1, 65535), "port"),
                      (lambda: parse_int(True, "count", 0, 9), "count"),
                      (lambda: parse_bool("yes", "df"), "df"),
                      (lambda: parse_family(5), "family"),
                      (lambda: parse_text("", "command"), "command"),
                      (lambda: parse_text(None, "to"), "to")):
        with pytest.raises(ParamError) as info:
            call()
        assert info.value.key == key
