"""The tour's steps, in the seed's order. Each builds a network, runs it and reports facts."""

from __future__ import annotations
