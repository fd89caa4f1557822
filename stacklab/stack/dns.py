"""A host's resolver configuration (its /etc/resolv.conf): name servers and search domains.

Several sources fill it: the scenario (``"static"``), each interface's DHCPv4 client
(``"dhcp:eth0"``), router advertisements' RDNSS/DNSSL options (RFC 8106, ``"ra:eth0"``). The
resolver (:mod:`stacklab.api.dns`) reads the merged view: static first, then the others in
the order they were learned, duplicates dropped — as resolvconf/systemd-resolved merge per-link
servers. ``gen`` changes with every update.
"""

from __future__ import annotations

__all__ = ["ResolverConfig"]


class ResolverConfig:
    def __init__(self) -> None:
        self._sources: dict[str, tuple[list[str], list[str]]] = {}
        self.gen = 0

    def learn(self, source: str, nameservers: list[str], search: list[str]) -> None:
        """``source`` now says these servers and search domains (replacing what it said)."""
        self._sources[source] = (list(nameservers), list(search))
        if source == "static":  # static first, whatever the order of calls
            self._sources = {"static": self._sources.pop("static"), **self._sources}
        self.gen += 1

    def forget(self, source: str) -> None:
        if self._sources.pop(source, None) is not None:
            self.gen += 1

    def _merged(self, index: int) -> list[str]:
        out: list[str] = []
        for entry in self._sources.values():
            out += [x for x in entry[index] if x not in out]
        return out

    @property
    def nameservers(self) -> list[str]:
        return self._merged(0)

    @property
    def search(self) -> list[str]:
        return self._merged(1)
