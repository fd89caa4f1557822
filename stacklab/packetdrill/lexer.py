"""Tokens of the packetdrill language, each with its line and column (1-based).

Kinds: ``num`` (decimal, hex or a float such as ``.01``), ``ident``, ``str`` (``"..."``),
``option`` (a header line ``--name=value``), ``command`` (a backtick shell command), ``code``
(a ``%{ ... }%`` Python snippet), ``ellipsis`` (``...``) and ``punct`` (one of ``<>+-~*=,[]{}():|.``
and ``/``). Comments (``//`` to the end of the line, ``/* ... */``) are skipped. Characters the
language does not use become ``other`` tokens: the parser reports them where they matter (an
errno's explanation in parentheses may contain anything).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stacklab.errors import StacklabError


class ScriptError(StacklabError):
    """A syntax or semantic error in a script: ``path:line:col: message`` on one line."""

    def __init__(self, path: str, line: int, column: int, message: str) -> None:
        super().__init__(f"{path}:{line}:{column}: {message}")
        self.path = path
        self.line = line
        self.column = column
        self.message = message


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str
    line: int
    column: int
    offset: int  # into the source text
    end: int


_NUM = re.compile(r"0[xX][0-9a-fA-F]+|\d*\.\d+(?:[eE][-+]?\d+)?|\d+")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PUNCT = set("<>+-~*=,[]{}():|./")


def _advance(source: str, i: int, j: int, line: int, line_start: int) -> tuple[int, int]:
    """Line number and line start after skipping ``source[i:j]`` (which may span lines)."""
    k = source.count("\n", i, j)
    if k:
        return line + k, source.rfind("\n", i, j) + 1
    return line, line_start


def tokenize(source: str, path: str = "<script>") -> list[Token]:
    out: list[Token] = []
    i = 0
    n = len(source)
    line = 1
    line_start = 0

    def err(msg: str, at: int) -> ScriptError:
        ln = source.count("\n", 0, at) + 1
        col = at - (source.rfind("\n", 0, at) + 1) + 1
        return ScriptError(path, ln, col, msg)

    def add(kind: str, text: str, start: int, end: int) -> None:
        out.append(Token(kind, text, line, start - line_start + 1, start, end))

    while i < n:
        c = source[i]
        if c == "\n":
            line += 1
            line_start = i + 1
            i += 1
            continue
        if c in " \t\r\f\v":
            i += 1
            continue
        if source.startswith("//", i):
            j = source.find("\n", i)
            i = n if j < 0 else j
            continue
        if source.startswith("/*", i):
            j = source.find("*/", i + 2)
            if j < 0:
                raise err("unterminated /* comment", i)
            line, line_start = _advance(source, i, j, line, line_start)
            i = j + 2
            continue
        if source.startswith("--", i) and source[line_start:i].strip() == "":
            j = i
            while j < n and not source[j].isspace() and not source.startswith("//", j):
                j += 1
            add("option", source[i + 2:j], i, j)
            i = j
            continue
        if c == "`":
            j = source.find("`", i + 1)
            if j < 0:
                raise err("unterminated ` command", i)
            add("command", source[i + 1:j], i, j + 1)
            line, line_start = _advance(source, i, j, line, line_start)
            i = j + 1
            continue
        if source.startswith("%{", i):
            j = source.find("}%", i + 2)
            if j < 0:
                raise err("unterminated %{ code block (no }%)", i)
            add("code", source[i + 2:j], i, j + 2)
            line, line_start = _advance(source, i, j, line, line_start)
            i = j + 2
            continue
        if c == '"':
            j = i + 1
            while j < n and source[j] != '"':
                if source[j] == "\n":
                    raise err("unterminated string", i)
                j += 2 if source[j] == "\\" else 1
            if j >= n:
                raise err("unterminated string", i)
            add("str", source[i + 1:j].encode().decode("unicode_escape"), i, j + 1)
            i = j + 1
            continue
        if source.startswith("...", i):
            add("ellipsis", "...", i, i + 3)
            i += 3
            continue
        m = _NUM.match(source, i)
        if m is not None:
            add("num", m.group(), i, m.end())
            i = m.end()
            continue
        m = _IDENT.match(source, i)
        if m is not None:
            add("ident", m.group(), i, m.end())
            i = m.end()
            continue
        add("punct" if c in _PUNCT else "other", c, i, i + 1)
        i += 1
    return out
