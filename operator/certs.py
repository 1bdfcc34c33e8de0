"""Webhook TLS: a self-signed CA and a serving certificate it signs, with `cryptography`.

Called by `webhook.py` at operator start (and when the serving cert nears expiry); the CA
goes into the webhook configurations' `caBundle`. The clock is a parameter for tests.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True, kw_only=True)
class Bundle:
    """PEM bytes: the CA certificate, the serving certificate and its private key."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes


def service_hostnames(service: str, namespace: str) -> tuple[str, ...]:
    """The names the API server may use to reach a Service (clientConfig.service)."""
    return (
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    )


def _san(names: Sequence[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def issue(hostnames: Sequence[str], *, now: datetime.datetime, days: int = 365) -> Bundle:
    """A fresh CA (valid 10x longer) and a serving cert for `hostnames` (first = CN)."""
    if not hostnames:
        raise ValueError("a serving certificate needs at least one hostname")
    start = now - datetime.timedelta(minutes=5)  # tolerate clock skew between nodes
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jaring-operator webhook CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + datetime.timedelta(days=days * 10))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(_san(hostnames), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return Bundle(
        ca_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def needs_renewal(
    cert_pem: bytes,
    *,
    hostnames: Sequence[str],
    now: datetime.datetime,
    margin: datetime.timedelta = datetime.timedelta(days=30),
) -> bool:
    """True when the cert is unreadable, expires within `margin`, or misses a hostname."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return True
    covered = {str(n) for n in sans.get_values_for_type(x509.DNSName)} | {
        str(ip) for ip in sans.get_values_for_type(x509.IPAddress)
    }
    return cert.not_valid_after_utc - margin <= now or not set(hostnames) <= covered


@dataclass(frozen=True, kw_only=True)
class Files:
    """Where the serving cert and key live for the HTTPS server."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def under(cls, directory: Path) -> Files:
        return cls(ca=directory / "ca.crt", cert=directory / "tls.crt", key=directory / "tls.key")

    def read(self) -> Bundle | None:
        try:
            return Bundle(
                ca_pem=self.ca.read_bytes(),
                cert_pem=self.cert.read_bytes(),
                key_pem=self.key.read_bytes(),
            )
        except FileNotFoundError:
            return None

    def write(self, bundle: Bundle) -> None:
        """Each file replaced atomically; the key is readable by the owner only."""
        for path, data, mode in (
            (self.ca, bundle.ca_pem, 0o644),
            (self.key, bundle.key_pem, 0o600),
            (self.cert, bundle.cert_pem, 0o644),
        ):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(data)
            tmp.chmod(mode)
            tmp.replace(path)


def ensure(
    files: Files, *, hostnames: Sequence[str], now: datetime.datetime
) -> tuple[Bundle, bool]:
    """The bundle on disk if still good, else a new one written there; (bundle, renewed)."""
    current = files.read()
    if current is not None and not needs_renewal(current.cert_pem, hostnames=hostnames, now=now):
        return current, False
    bundle = issue(hostnames, now=now)
    files.write(bundle)
    return bundle, True
