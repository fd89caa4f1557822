"""A tiny certificate authority for a lab: a root and the server certificates it signs.

Built with the ``cryptography`` package, already installed as asyncssh's dependency (no
openssl command line, no new dependency). Everything is deterministic: keys are Ed25519
(RFC 8032) derived from a seed and the names, Ed25519 signatures have no random nonce, serial
numbers are hashes of the names, and validity is a fixed window (2026-01-01 to 2099-12-31).
The same seed gives byte-identical certificates in every run, and because an Ed25519
signature has one length, every TLS handshake of a simulated run has the same record sizes
(with ECDSA a DER signature is 70 to 72 bytes, run to run). Curl, OpenSSL, Python's ``ssl``
and swaks all take Ed25519 certificates (TLS 1.2 and 1.3, RFC 8422/8446).

::

    ca = TinyCa("scenario")                      # the root: ca.cert_pem for curl --cacert
    cred = ca.issue("b", ips=["10.0.0.2"])        # subjectAltName DNS:b, IP:10.0.0.2
    server_ctx = cred.server_context()            # ssl.SSLContext for a server
    client_ctx = ca.client_context()              # verifies chains to this root, and names
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import ipaddress
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["Credential", "TinyCa", "scenario_ca"]

NOT_BEFORE = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
NOT_AFTER = datetime.datetime(2099, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)


def _key(*parts: str) -> Ed25519PrivateKey:
    seed = hashlib.sha256("\0".join(("stacklab tiny CA", *parts)).encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def _serial(*parts: str) -> int:
    digest = hashlib.sha256("\0".join(("serial", *parts)).encode()).digest()
    return int.from_bytes(digest[:16], "big") >> 1 or 1  # positive, at most 20 octets (RFC 5280)


def _pem_key(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@dataclass(frozen=True)
class Credential:
    """A server's certificate (PEM, followed by nothing: the root is the client's) and key."""

    cert_pem: bytes
    key_pem: bytes
    names: tuple[str, ...]

    def server_context(self) -> ssl.SSLContext:
        """A server context presenting this certificate (TLS 1.2 and 1.3)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # ssl loads a chain from files only: a private temporary directory, gone at once
        with tempfile.TemporaryDirectory(prefix="stacklab-tls-") as tmp:
            cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
            cert.write_bytes(self.cert_pem)
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fp:
                fp.write(self.key_pem)
            context.load_cert_chain(cert, key)
        return context


class TinyCa:
    """A root certificate authority named ``name``, deterministic from ``name`` (see the
    module docstring)."""

    def __init__(self, name: str = "scenario") -> None:
        self.name = name
        self._key = _key("root", name)
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "stacklab"),
                             x509.NameAttribute(NameOID.COMMON_NAME, f"stacklab {name} CA")])
        public = self._key.public_key()
        self.subject = subject
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject).public_key(public)
            .serial_number(_serial("root", name))
            .not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self._key, None))
        self.cert_pem = self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, *names: str, ips: tuple[str, ...] | list[str] = ()) -> Credential:
        """A server certificate for DNS ``names`` and IP addresses ``ips`` (subjectAltName,
        what clients check, RFC 6125); the common name is the first name."""
        if not names and not ips:
            raise ValueError("a certificate needs a name or an address")
        key = _key("leaf", self.name, *names, *ips)
        public = key.public_key()
        alt: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
        alt += [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
        cn = names[0] if names else ips[0]
        ca_ski = self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.subject).public_key(public)
            .serial_number(_serial("leaf", self.name, *names, *ips))
            .not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                ca_ski), critical=False)
            .sign(self._key, None))
        return Credential(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key),
                          (*names, *ips))

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this root only and checks the server's name."""
        context = ssl.create_default_context(cadata=self.cert_pem.decode())
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def write(self, path: str | os.PathLike[str]) -> Path:
        """The root certificate as a PEM file (``curl --cacert``, ``swaks --tls-ca-path``)."""
        out = Path(path)
        out.write_bytes(self.cert_pem)
        return out


@functools.lru_cache(maxsize=8)
def scenario_ca(name: str = "scenario") -> TinyCa:
    """The CA called ``name``, built once per process (servers and clients of a scenario
    name the same CA and so trust each other)."""
    return TinyCa(name)
