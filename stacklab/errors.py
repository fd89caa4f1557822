"""The package's base exception: a leaf every layer (and ``apps/``) may import."""

from __future__ import annotations


class StacklabError(Exception):
    """The base of every exception stacklab raises on purpose.

    Each subclass also keeps the standard base its callers catch (``ValueError`` for bad input,
    ``OSError`` for a refused send, ``TimeoutError`` ...), so ``except StacklabError`` catches
    everything stacklab raises and ``except ValueError`` still works where it did.
    """
