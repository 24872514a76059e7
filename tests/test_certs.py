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


def _sans(path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)) | {str(a) for a in san.get_values_for_type(x509.IPAddress)}


def test_each_party_gets_its_own_san_list(tmp_path: Path) -> None:
    """`--hosts` used to put every name into every certificate: with host names equal to party ids, the insurer's
    certificate then also said "bank" and the bank's pinned server name no longer told them apart."""
    parties = ["bank", "insurer", "arbiter"]
    shared = provision(tmp_path / "shared", parties, hosts=parties)  # the old --hosts bank insurer arbiter
    for party in parties:  # a shared name equal to a party id goes into that party's certificate only
        assert _sans(shared[party]) & set(parties) == {party}
    paths = provision(tmp_path, parties, hosts=[], party_hosts={"bank": ["bank.internal", "10.0.0.5"],
                                                                 "insurer": ["insurer.internal"]})
    assert _sans(paths["bank"]) == {"bank", "bank.internal", "10.0.0.5"}
    assert _sans(paths["insurer"]) == {"insurer", "insurer.internal"}
    assert _sans(paths["arbiter"]) == {"arbiter"}
    for party in parties:  # each certificate names exactly one party: server pinning tells them apart
        assert _sans(paths[party]) & set(parties) == {party}
    with pytest.raises(CertificateError, match="not among the parties"):
        provision(tmp_path / "x", ["bank"], party_hosts={"bnak": ["b.internal"]})


def test_cli_host_flag_is_per_party(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from arbiter.cli import main

    out = tmp_path / "certs"
    assert main(["certs", "--out", str(out), "--parties", "bank", "insurer", "--hosts",
                 "--host", "bank=bank.internal,10.0.0.5", "--host", "insurer=insurer.internal"]) == 0
    assert _sans(out / "bank.pem") == {"bank", "bank.internal", "10.0.0.5"}
    assert _sans(out / "insurer.pem") == {"insurer", "insurer.internal"}
    assert main(["certs", "--out", str(tmp_path / "bad"), "--host", "bank"]) == 2
    assert "--host expects PARTY=NAME" in capsys.readouterr().err
    assert main(["certs", "--out", str(tmp_path / "bad2"), "--parties", "bank", "insurer",
                 "--host", "insurer=bank"]) == 2
    assert "another party's id" in capsys.readouterr().err
