"""TLS records as a diagram sees them (RFC 8446 §5.1, RFC 5246 §6.2): names, not decryption.

:func:`describe` names the records that start at the beginning of a TCP segment's payload:
``TLS ClientHello``, ``TLS ServerHello, CCS, AppData x4``... A handshake record is named by its
first message's type while the handshake is in the clear; one whose header does not fit its
record (TLS 1.2's Finished after ChangeCipherSpec) is ``encrypted handshake``. TLS 1.3
encrypts everything after ServerHello as application data (RFC 8446 §5.2: the outer content
type is 23), so a 1.3 diagram shows ClientHello, ServerHello and then AppData. A record cut by
the segment's end is still named (its header is there); a segment that does not start with a
record header (the middle of a long record, or not TLS at all) gives ``None``.
"""

from __future__ import annotations

CHANGE_CIPHER_SPEC = 20
ALERT = 21
HANDSHAKE = 22
APPLICATION_DATA = 23
MAX_RECORD = (1 << 14) + 2048  # TLSCiphertext.length bound (RFC 8446 §5.2)

HANDSHAKE_NAMES = {
    0: "HelloRequest", 1: "ClientHello", 2: "ServerHello", 4: "NewSessionTicket",
    8: "EncryptedExtensions", 11: "Certificate", 12: "ServerKeyExchange",
    13: "CertificateRequest", 14: "ServerHelloDone", 15: "CertificateVerify",
    16: "ClientKeyExchange", 20: "Finished",
}
_SHORT = {CHANGE_CIPHER_SPEC: "CCS", ALERT: "Alert", APPLICATION_DATA: "AppData"}


def _record_name(ctype: int, body: bytes | memoryview, length: int) -> str:
    if ctype != HANDSHAKE:
        return _SHORT[ctype]
    if len(body) < 4:
        return "Handshake"
    msg_len = int.from_bytes(body[1:4], "big")
    name = HANDSHAKE_NAMES.get(body[0])
    if name is None or msg_len + 4 > length:
        return "encrypted handshake"
    return name


def describe(payload: bytes | memoryview) -> str | None:
    """``"TLS " + the names of the records`` the segment starts with, or None (see above)."""
    names: list[str] = []
    pos = 0
    n = len(payload)
    while pos + 5 <= n:
        ctype = payload[pos]
        length = int.from_bytes(payload[pos + 3:pos + 5], "big")
        if (ctype not in (CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA)
                or payload[pos + 1] != 3 or payload[pos + 2] > 4 or length > MAX_RECORD):
            break
        name = _record_name(ctype, payload[pos + 5:pos + 5 + length], length)
        if names and names[-1].split(" x")[0] == name:
            count = int(names[-1].partition(" x")[2] or 1) + 1
            names[-1] = f"{name} x{count}"
        else:
            names.append(name)
        pos += 5 + length
    if not names:
        return None
    return "TLS " + ", ".join(names)
