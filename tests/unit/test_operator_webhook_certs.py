"""Webhook TLS: the CA signs a serving cert for the Service's names, renewal happens
before expiry or when a name is missing, and the files on disk are reused while good."""

from __future__ import annotations

import datetime
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from jaring.operator import certs

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
NAMES = (*certs.service_hostnames("jaring-operator", "jaring-system"), "127.0.0.1")


def test_service_hostnames() -> None:
    assert certs.service_hostnames("svc", "ns") == (
        "svc",
        "svc.ns",
        "svc.ns.svc",
        "svc.ns.svc.cluster.local",
    )


def test_serving_cert_is_signed_by_the_ca_for_every_name() -> None:
    bundle = certs.issue(NAMES, now=NOW)
    ca = x509.load_pem_x509_certificate(bundle.ca_pem)
    cert = x509.load_pem_x509_certificate(bundle.cert_pem)
    cert.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == list(NAMES[:-1])
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert cert.not_valid_after_utc == NOW + datetime.timedelta(days=365)
    assert cert.not_valid_before_utc < NOW  # clock skew tolerated


def test_issue_needs_a_name() -> None:
    with pytest.raises(ValueError, match="at least one hostname"):
        certs.issue((), now=NOW)


def test_renewal_rules() -> None:
    bundle = certs.issue(NAMES, now=NOW)
    assert not certs.needs_renewal(bundle.cert_pem, hostnames=NAMES, now=NOW)
    later = NOW + datetime.timedelta(days=336)
    assert certs.needs_renewal(bundle.cert_pem, hostnames=NAMES, now=later)
    assert certs.needs_renewal(bundle.cert_pem, hostnames=(*NAMES, "new.name"), now=NOW)
    assert certs.needs_renewal(b"garbage", hostnames=NAMES, now=NOW)


def test_ensure_reuses_good_files_and_replaces_bad_ones(tmp_path: Path) -> None:
    files = certs.Files.under(tmp_path / "certs")
    first, renewed = certs.ensure(files, hostnames=NAMES, now=NOW)
    assert renewed
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    again, renewed = certs.ensure(files, hostnames=NAMES, now=NOW)
    assert (again, renewed) == (first, False)
    files.cert.write_bytes(b"corrupt")
    third, renewed = certs.ensure(files, hostnames=NAMES, now=NOW)
    assert renewed and third != first
    assert sorted(p.name for p in files.ca.parent.iterdir()) == ["ca.crt", "tls.crt", "tls.key"]


def test_a_tls_client_trusting_the_ca_accepts_the_server_cert(tmp_path: Path) -> None:
    files = certs.Files.under(tmp_path)
    certs.ensure(files, hostnames=NAMES, now=datetime.datetime.now(datetime.UTC))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(files.cert, files.key)  # the key matches the cert
    client = ssl.create_default_context(cafile=str(files.ca))
    assert client.get_ca_certs()[0]["subject"] == ((("commonName", "jaring-operator webhook CA"),),)
