"""A recursive-descent parser of packetdrill scripts into :mod:`.syntax` (google/packetdrill's
language as its ``gtests/net/tcp`` scripts use it). Errors raise :class:`ScriptError` with the
line and column of the token at fault: ``script.pkt:12:9: expected ':' in a sequence range``.
"""

from __future__ import annotations

from pathlib import Path

from .lexer import ScriptError, Token, tokenize
from .syntax import (
    Action,
    Array,
    BitOr,
    Call,
    Code,
    Command,
    Ellipsis_,
    Event,
    Expr,
    Field,
    IcmpPacket,
    Int,
    Packet,
    Script,
    Str,
    Struct,
    Sym,
    Syscall,
    TcpOption,
    TcpPacket,
    TimeSpec,
    UdpPacket,
)

_FLAG_LETTERS = set("SFPRUEWCAN")  # SYN FIN PSH RST URG ECE CWR (C: CWR too) AE NS
_ECN_WORDS = {"noecn", "ect0", "ect1", "ce", "ect01", "ecn"}


def _shown(t: Token) -> str:
    """A token as an error message quotes it: on one line, not too long."""
    if t.kind == "command":
        return "a `command`"
    if t.kind == "code":
        return "a %{ }% block"
    text = t.text if len(t.text) <= 24 else t.text[:21] + "..."
    return "'" + text.replace("\n", " ") + "'"


def parse_file(path: str | Path) -> Script:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise ScriptError(str(p), 0, 0, f"cannot read the script: {e.strerror}") from None
    return parse(text, str(p))


def parse(source: str, path: str = "<script>") -> Script:
    return _Parser(source, path).script()


class _Parser:
    def __init__(self, source: str, path: str) -> None:
        self.src = source
        self.path = path
        self.toks = tokenize(source, path)
        self.i = 0

    # -- token helpers ---------------------------------------------------------------------------
    def peek(self, k: int = 0) -> Token | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def next(self, what: str) -> Token:
        t = self.peek()
        if t is None:
            raise self.error(f"unexpected end of script, expected {what}")
        self.i += 1
        return t

    def error(self, msg: str, tok: Token | None = None) -> ScriptError:
        t = tok or self.peek()
        if t is None:
            lines = self.src.splitlines() or [""]
            return ScriptError(self.path, len(lines), len(lines[-1]) + 1, msg)
        return ScriptError(self.path, t.line, t.column, msg)

    def at(self, kind: str, text: str | None = None, k: int = 0) -> bool:
        t = self.peek(k)
        return t is not None and t.kind == kind and (text is None or t.text == text)

    def at_word(self, text: str) -> bool:
        return self.at("ident", text)

    def expect(self, kind: str, text: str | None = None, what: str | None = None) -> Token:
        t = self.peek()
        if t is None or t.kind != kind or (text is not None and t.text != text):
            want = what or (f"'{text}'" if text else kind)
            got = "end of script" if t is None else _shown(t)
            raise self.error(f"expected {want}, got {got}", t)
        self.i += 1
        return t

    def integer(self, what: str, lo: int | None = None, hi: int | None = None) -> int:
        """An integer token (``-`` allowed), within ``lo..hi`` when given."""
        first = self.peek()
        v = self._integer(what)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise self.error(f"{what} {v} is out of range ({lo}..{hi})", first)
        return v

    def _integer(self, what: str) -> int:
        neg = False
        if self.at("punct", "-"):
            self.i += 1
            neg = True
        t = self.expect("num", what=what)
        if "." in t.text or "e" in t.text.lower() and not t.text.lower().startswith("0x"):
            raise self.error(f"expected an integer for {what}, got {_shown(t)}", t)
        v = int(t.text, 0) if not t.text.startswith("0") or t.text.lower().startswith(
            "0x") else int(t.text, 10)
        return -v if neg else v

    # -- script ----------------------------------------------------------------------------------
    def script(self) -> Script:
        sc = Script(self.path)
        while self.peek() is not None:
            t = self.peek()
            assert t is not None
            if t.kind == "option":
                name, _, value = t.text.partition("=")
                sc.options[name] = value
                self.i += 1
                continue
            if t.kind in ("command", "code"):
                # a command without a time (the usual `../common/defaults.sh` first, a restore
                # script last): it runs when reached
                self.i += 1
                act: Action = Command(t.text) if t.kind == "command" else Code(t.text)
                sc.events.append(Event(t.line, t.column, TimeSpec("relative", 0.0), act))
                continue
            sc.events.append(self.event())
        return sc

    def event(self) -> Event:
        start = self.peek()
        assert start is not None
        time = self.time_spec()
        t = self.peek()
        if t is None:
            raise self.error("expected a packet, a system call, a command or code after the time")
        action: Action
        if t.kind == "punct" and t.text in "<>":
            action = self.packet()
        elif t.kind == "command":
            self.i += 1
            action = Command(t.text)
        elif t.kind == "code":
            self.i += 1
            action = Code(t.text)
        elif t.kind == "ellipsis" or t.kind == "ident":
            action = self.syscall()
        else:
            raise self.error(f"expected '<', '>', a system call, a command or code, got "
                             f"{_shown(t)}", t)
        if time.kind in ("any", "absolute_range", "relative_range") and not (
                isinstance(action, Packet) and action.direction == ">"):
            raise ScriptError(self.path, start.line, start.column,
                              f"event time {'*' if time.kind == 'any' else 'range'} can only be "
                              "used with outbound packets")
        return Event(start.line, start.column, time, action)

    def number(self, what: str) -> float:
        t = self.expect("num", what=what)
        return float(int(t.text, 16)) if t.text.lower().startswith("0x") else float(t.text)

    def time_spec(self) -> TimeSpec:
        t = self.peek()
        assert t is not None
        if t.kind == "punct" and t.text == "*":
            self.i += 1
            return TimeSpec("any")
        if t.kind == "punct" and t.text == "+":
            self.i += 1
            start = self.number("a time after '+'")
            if self.at("punct", "~"):
                self.i += 1
                self.expect("punct", "+", "'+' (a relative range is +a~+b)")
                end = self.number("the end of the time range")
                if end < start:
                    raise self.error("time range is backwards", t)
                return TimeSpec("relative_range", start, end)
            return TimeSpec("relative", start)
        if t.kind == "num":
            start = self.number("a time")
            if self.at("punct", "~"):
                self.i += 1
                end = self.number("the end of the time range")
                if end < start:
                    raise self.error("time range is backwards", t)
                return TimeSpec("absolute_range", start, end)
            return TimeSpec("absolute", start)
        if t.kind == "punct" and t.text == "-":
            raise self.error("negative time", t)
        raise self.error(f"expected an event time (0.1, +0.1, *), got {_shown(t)}", t)

    # -- packets ---------------------------------------------------------------------------------
    def packet(self) -> Packet:
        direction = self.next("'<' or '>'").text
        ecn, ttl, tos = self.ip_info()
        t = self.peek()
        if t is None:
            raise self.error("expected the packet after its direction")
        if t.kind == "ident" and t.text == "udp":
            self.i += 1
            ports = self.port_info()
            self.expect("punct", "(", "'(' and the UDP payload length")
            n = self.integer("the UDP payload length", 0, 65507)
            self.expect("punct", ")")
            return Packet(direction, UdpPacket(n, ports), ecn, ttl, tos)
        if t.kind == "ident" and t.text == "icmp":
            self.i += 1
            return Packet(direction, self.icmp(), ecn, ttl, tos)
        if t.kind == "ident" and t.text in ("ipv4", "ipv6", "gre", "mpls"):
            raise self.error(f"packet prefix '{t.text}' (explicit addresses or encapsulation) "
                             "is not supported", t)
        ports = self.port_info()
        flags = self.flags()
        seq, end, length = self.seq_range()
        ack = window = None
        urgent = 0
        if self.at_word("ack"):
            self.i += 1
            ack = self.integer("the ack number", 0, 0xFFFFFFFF)
        if self.at_word("win"):
            self.i += 1
            window = self.integer("the window", 0, 0xFFFF)
        if self.at_word("urg"):
            self.i += 1
            urgent = self.integer("the urgent pointer", 0, 0xFFFF)
        options: tuple[TcpOption, ...] | None = ()
        if self.at("punct", "<"):
            options = self.tcp_options()
        return Packet(direction, TcpPacket(flags, seq, end, length, ack, window, urgent, options,
                                           ports), ecn, ttl, tos)

    def ip_info(self) -> tuple[str | None, int | None, int | None]:
        ecn: str | None = None
        ttl: int | None = None
        tos: int | None = None
        if self.at("punct", "[") or self.at("punct", "("):
            nxt = self.peek(1)
            if nxt is not None and nxt.kind == "ident" and (nxt.text in _ECN_WORDS
                                                            or nxt.text in ("ttl", "tos")):
                close = "]" if self.next("'['").text == "[" else ")"
                while not self.at("punct", close):
                    w = self.next(f"'{close}'")
                    if w.kind == "ident" and w.text in _ECN_WORDS:
                        ecn = w.text
                    elif w.kind == "ident" and w.text == "ttl":
                        ttl = self.integer("the TTL", 0, 255)
                    elif w.kind == "ident" and w.text == "tos":
                        tos = self.integer("the TOS", 0, 255)
                    elif not (w.kind == "punct" and w.text == ","):
                        raise self.error(f"unexpected {_shown(w)} in the IP info", w)
                self.i += 1
        return ecn, ttl, tos

    def port_info(self) -> tuple[int, int] | None:
        if self.at("num") and self.at("punct", ">", 1) and self.at("num", None, 2):
            a = self.integer("a port", 0, 0xFFFF)
            self.i += 1
            return a, self.integer("a port", 0, 0xFFFF)
        return None

    def flags(self) -> str:
        t = self.peek()
        if t is None:
            raise self.error("expected TCP flags")
        if t.kind == "punct" and t.text == ".":
            self.i += 1
            return "."
        if t.kind == "punct" and t.text == "-":
            self.i += 1
            return ""
        if t.kind == "ident" and set(t.text) <= _FLAG_LETTERS:
            self.i += 1
            nxt = self.peek()
            if nxt is not None and nxt.kind == "punct" and nxt.text == "." and nxt.offset == t.end:
                self.i += 1
                return t.text + "."
            return t.text
        raise self.error(f"expected TCP flags (S F P R . E W U), got {_shown(t)}", t)

    def seq_range(self) -> tuple[int, int, int]:
        first = self.peek()
        start = self.integer("the start sequence number (a:b(n))", 0, 0xFFFFFFFF)
        self.expect("punct", ":", "':' in the sequence range a:b(n)")
        end = self.integer("the end sequence number (a:b(n))", 0, 0xFFFFFFFF)
        self.expect("punct", "(", "'(' and the payload length in a:b(n)")
        n = self.integer("the payload length", 0, 65495)
        self.expect("punct", ")", "')' after the payload length")
        if (end - start) & 0xFFFFFFFF != n & 0xFFFFFFFF:
            raise self.error(f"inconsistent TCP sequence numbers: {start}:{end} is "
                             f"{(end - start) & 0xFFFFFFFF} bytes, not {n}", first)
        return start, end, n

    def tcp_options(self) -> tuple[TcpOption, ...] | None:
        self.expect("punct", "<")
        if self.at("ellipsis"):
            self.i += 1
            self.expect("punct", ">", "'>' after '<...'")
            return None
        opts: list[TcpOption] = []
        while True:
            opts.append(self.tcp_option())
            if self.at("punct", ","):
                self.i += 1
                continue
            self.expect("punct", ">", "',' or '>' in the TCP options")
            return tuple(opts)

    def tcp_option(self) -> TcpOption:
        t = self.expect("ident", what="a TCP option (nop, mss, wscale, sackOK, sack, TS, FO, eol)")
        k = t.text
        if k in ("nop", "eol", "sackOK"):
            return TcpOption(k)
        if k in ("mss", "wscale"):
            top = 0xFFFF if k == "mss" else 0xFF
            return TcpOption(k, value=self.integer(f"the {k} value", 0, top))
        if k == "sack":
            blocks = []
            while self.at("num"):
                a = self.integer("a SACK block start", 0, 0xFFFFFFFF)
                self.expect("punct", ":", "':' in a SACK block a:b")
                blocks.append((a, self.integer("a SACK block end", 0, 0xFFFFFFFF)))
            return TcpOption("sack", blocks=tuple(blocks))
        if k == "TS":
            if not self.at_word("val"):
                raise self.error("expected 'val' after TS")
            self.i += 1
            val = self.integer("the TS val", 0, 0xFFFFFFFF)
            if not self.at_word("ecr"):
                raise self.error("expected 'ecr' after the TS val")
            self.i += 1
            return TcpOption("TS", ts=(val, self.integer("the TS ecr", 0, 0xFFFFFFFF)))
        if k in ("FO", "FOEXP", "md5"):
            cookie = ""
            end = t.end
            while True:  # a hex blob lexes as numbers and words glued together
                nxt = self.peek()
                if nxt is None or nxt.offset != end + (1 if not cookie else 0) or \
                        nxt.kind not in ("num", "ident"):
                    if nxt is not None and cookie and nxt.offset == end and \
                            nxt.kind in ("num", "ident"):
                        pass
                    else:
                        break
                cookie += nxt.text
                end = nxt.end
                self.i += 1
            return TcpOption(k, cookie=cookie)
        raise self.error(f"unknown TCP option '{k}'", t)

    def icmp(self) -> IcmpPacket:
        typ = self.expect("ident", what="an ICMP type (unreachable, time_exceeded, ...)").text
        code = None
        if self.at("ident") and not self.at_word("mtu") and not self.at_word("id"):
            code = self.next("an ICMP code").text
        mtu = None
        if self.at_word("mtu"):
            self.i += 1
            mtu = self.integer("the MTU", 0, 0xFFFFFFFF)
        if self.at_word("id"):
            self.i += 1
            self.integer("the echo id", 0, 0xFFFF)
        proto = None
        quoted = None
        if self.at("punct", "["):
            self.i += 1
            if self.at_word("udp"):
                self.i += 1
                self.expect("punct", "(")
                quoted = (0, 0, self.integer("the UDP length", 0, 65507))
                self.expect("punct", ")")
                proto = "udp"
            else:
                quoted = self.seq_range()
                proto = "tcp"
            self.expect("punct", "]", "']' after the quoted packet")
        return IcmpPacket(typ, code, mtu, proto, quoted)

    # -- system calls ----------------------------------------------------------------------------
    def syscall(self) -> Syscall:
        end = None
        if self.at("ellipsis"):
            self.i += 1
            end = self.number("the end time of the blocking call (...N)")
        name = self.expect("ident", what="a system call name").text
        self.expect("punct", "(", f"'(' after {name}")
        args = self.expr_list(")")
        self.expect("punct", "=", f"'=' and the result of {name}()")
        result = self.expr()
        err = note = None
        if self.at("ident") and self.peek() is not None:
            tok = self.peek()
            assert tok is not None
            if tok.text.startswith("E") and tok.text.isupper():
                err = tok.text
                self.i += 1
        if self.at("punct", "("):
            note = self.paren_text()
        return Syscall(name, tuple(args), result, err, note, end)

    def paren_text(self) -> str:
        """``(Operation now in progress)``: the raw text up to the matching parenthesis."""
        open_tok = self.next("'('")
        depth = 1
        j = open_tok.end
        while j < len(self.src) and depth:
            if self.src[j] == "(":
                depth += 1
            elif self.src[j] == ")":
                depth -= 1
            elif self.src[j] == "\n":
                break
            j += 1
        if depth:
            raise self.error("unterminated '(' after the errno", open_tok)
        while self.peek() is not None and self.toks[self.i].offset < j:
            self.i += 1
        return self.src[open_tok.end:j - 1]

    def expr_list(self, close: str) -> list[Expr]:
        items: list[Expr] = []
        if self.at("punct", close):
            self.i += 1
            return items
        while True:
            items.append(self.expr())
            if self.at("punct", ","):
                self.i += 1
                continue
            self.expect("punct", close, f"',' or '{close}'")
            return items

    def expr(self) -> Expr:
        terms = [self.term()]
        while self.at("punct", "|"):
            self.i += 1
            terms.append(self.term())
        return terms[0] if len(terms) == 1 else BitOr(tuple(terms))

    def term(self) -> Expr:
        t = self.peek()
        if t is None:
            raise self.error("expected an expression")
        if t.kind == "ellipsis":
            self.i += 1
            return Ellipsis_()
        if t.kind == "num" or (t.kind == "punct" and t.text == "-"):
            return Int(self.integer("a number"))
        if t.kind == "str":
            self.i += 1
            return Str(t.text)
        if t.kind == "ident":
            self.i += 1
            if self.at("punct", "(") and self.peek() is not None and \
                    self.toks[self.i].offset == t.end:
                self.i += 1
                return Call(t.text, tuple(self.expr_list(")")))
            return Sym(t.text)
        if t.kind == "punct" and t.text == "[":
            self.i += 1
            return Array(tuple(self.expr_list("]")))
        if t.kind == "punct" and t.text == "{":
            self.i += 1
            return self.struct()
        raise self.error(f"expected an expression, got {_shown(t)}", t)

    def struct(self) -> Struct:
        fields: list[Field] = []
        while not self.at("punct", "}"):
            if self.at("ellipsis"):  # {...}
                self.i += 1
            elif not (self.at("ident") and (self.at("punct", "=", 1) or self.at("punct", "(", 1))):
                fields.append(Field("", self.expr()))  # a positional member: {..., 1000}
            else:
                name = self.expect("ident", what="a struct field name").text
                arg = None
                if self.at("punct", "("):
                    self.i += 1
                    arg = self.expr()
                    self.expect("punct", ")")
                self.expect("punct", "=", f"'=' after the field {name}")
                fields.append(Field(name, self.expr(), arg))
            if self.at("punct", ","):
                self.i += 1
            elif not self.at("punct", "}"):
                raise self.error("expected ',' or '}' in the struct")
        self.i += 1
        return Struct(tuple(fields))
