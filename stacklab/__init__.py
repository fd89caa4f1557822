"""stacklab: a complete TCP/IP stack in Python, on a simulated network or a TAP device."""

__version__ = "0.1.0"
__all__ = ["Network", "__version__", "tier"]  # the API guide: docs/api-guide.md


def tier() -> str:
    """Which stacklab runs: "pure Python" (the default, what CI tests), or "compiled (mypyc, N
    modules)" for the optional tier ``make compiled`` builds in build/compiled/, whose copy of
    the package holds the extension modules beside the sources (tools/build_compiled.py)."""
    from importlib.machinery import EXTENSION_SUFFIXES
    from pathlib import Path

    n = sum(1 for p in Path(__file__).parent.rglob("*.so") if p.name.endswith(
        tuple(EXTENSION_SUFFIXES)))
    return f"compiled (mypyc, {n} modules)" if n else "pure Python"


def __getattr__(name: str) -> object:
    # `stacklab.Network` without importing the simulator for every `import stacklab`.
    if name == "Network":
        from stacklab.net.network import Network

        return Network
    raise AttributeError(f"module 'stacklab' has no attribute {name!r}")


def __dir__() -> list[str]:
    # tab completion and help(stacklab) see Network although it is loaded lazily
    return sorted({*globals(), *__all__})
