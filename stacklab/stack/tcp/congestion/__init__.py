"""Congestion control algorithms, pluggable by name: ``create_congestion("cubic", mss)``."""

from .base import (
    CongestionController,
    available_congestion,
    create_congestion,
    register_congestion,
)
from .bbr import Bbr
from .cubic import Cubic
from .reno import NewReno, Reno

for _cls in (Cubic, Reno, NewReno, Bbr):
    register_congestion(_cls)

__all__ = ["Bbr", "CongestionController", "Cubic", "NewReno", "Reno", "available_congestion",
           "create_congestion", "register_congestion"]
