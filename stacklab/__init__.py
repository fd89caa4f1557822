"""stacklab: a complete TCP/IP stack in Python, on a simulated network or a TAP device."""

__version__ = "0.1.0"
__all__ = ["Network", "__version__"]  # the API guide: docs/api-guide.md


def __getattr__(name: str) -> object:
    # `stacklab.Network` without importing the simulator for every `import stacklab`.
    if name == "Network":
        from stacklab.net.network import Network

        return Network
    raise AttributeError(f"module 'stacklab' has no attribute {name!r}")


def __dir__() -> list[str]:
    # tab completion and help(stacklab) see Network although it is loaded lazily
    return sorted({*globals(), *__all__})
