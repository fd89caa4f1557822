"""stacklab: a complete TCP/IP stack in Python, on a deterministic simulated network or a TAP device."""

__version__ = "0.1.0"
