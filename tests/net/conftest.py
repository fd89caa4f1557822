"""Fixtures for the simulator tests."""

from __future__ import annotations

import pytest

from stacklab.net.network import Network


@pytest.fixture
def net():
    n = Network(seed=7)
    yield n
    n.close()
