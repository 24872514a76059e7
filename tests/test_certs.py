"""Provisioning of the private CA and party certificates."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from federation.certs import CertificateError, TlsConfig, provision


def test_provision_writes_ca_and_party_material(tmp_path: Path) -> None:
    paths = provision(tmp_path, ["bank", "insurer"], hosts=["localhost", "127.0.0.1", "silo.example"], days=30)
    assert {p.name for p in tmp_path.iterdir()} == {"ca.pem", "ca-key.pem", "bank.pem", "bank-key.pem",
                                                      "insurer.pem", "insurer-key.pem"}
    for key in ("ca-key", "bank-key", "insurer-key"):
        assert stat.S_IMODE(paths[key].stat().st_mode) == 0o600
    ca = x509.load_pem_x509_certificate(paths["ca"].read_bytes())
    cert = x509.load_pem_x509_certificate(paths["bank"].read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "bank"
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"bank", "localhost", "silo.example"}
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert 29 <= (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= 30
    assert TlsConfig.from_dir(tmp_path, "insurer").common_name == "insurer"


def test_provision_refuses_to_replace_an_existing_ca(tmp_path: Path) -> None:
    provision(tmp_path, ["bank"])
    with pytest.raises(CertificateError, match="already exists"):
        provision(tmp_path, ["bank"])
    provision(tmp_path, ["bank"], overwrite=True)


@pytest.mark.parametrize("bad", ["Bank", "bank insurer", "", "-x", "a/b"])
def test_invalid_party_ids_are_named(tmp_path: Path, bad: str) -> None:
    with pytest.raises(CertificateError, match="invalid party id"):
        provision(tmp_path, ["bank", bad])


def test_missing_files_are_named(tmp_path: Path) -> None:
    provision(tmp_path, ["bank"])
    with pytest.raises(CertificateError, match=r"insurer-key\.pem"):
        TlsConfig.from_dir(tmp_path, "insurer")
