"""Devices at the edge of the stack: the Linux TAP device (``tap.py``) and pcap files (``pcap.py``).

A leaf: it imports only ``wire`` and ``errors``, and any layer may use it."""
