"""A node's counters (``Node.counters``): what a user reads of them is a ``Counter``'s."""

from collections import Counter

import pytest

from stacklab.stack.host import Host
from stacklab.stack.node import NodeCounters


def test_counters_read_and_count_as_a_counter() -> None:
    c = Host("h").counters
    assert isinstance(c, Counter)
    assert c["never.counted"] == 0  # a missing key reads 0, and is not stored by the read
    assert "never.counted" not in c
    c["rx.frames"] += 1
    c["rx.frames"] += 2
    c["drop.tcp.bad_checksum"] += 1
    assert c["rx.frames"] == 3
    assert c.most_common(1) == [("rx.frames", 3)]
    assert dict(c + Counter({"rx.frames": 1})) == {"rx.frames": 4, "drop.tcp.bad_checksum": 1}
    del c["rx.frames"]
    assert c == Counter({"drop.tcp.bad_checksum": 1})


def test_deleting_a_missing_counter_raises_as_a_dict() -> None:
    # (dict's own item deletion, which keeps every store on the C path: NodeCounters' docstring)
    with pytest.raises(KeyError):
        del NodeCounters()["never.counted"]


def test_counter_stores_take_the_dict_slot() -> None:
    # a Python-level __delitem__ (Counter's) would make every store the generic slot's
    assert NodeCounters.__delitem__ is dict.__delitem__
    assert NodeCounters.__setitem__ is dict.__setitem__
