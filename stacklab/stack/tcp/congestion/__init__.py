"""Congestion control algorithms, pluggable by name: ``create_congestion("reno", mss)``."""

from .base import (
    CongestionController,
    available_congestion,
    create_congestion,
    register_congestion,
)
from .reno import Reno

__all__ = ["CongestionController", "Reno", "available_congestion", "create_congestion",
           "register_congestion"]
