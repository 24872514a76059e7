"""Test helper: certificates the project's own tooling would never issue (for refusal tests)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from federation.certs import CertificateAuthority, TlsConfig


def tls_with_common_names(certs: Path, names: list[str]) -> TlsConfig:
    """A TLS identity signed by the CA in ``certs`` (``ca.pem``, ``ca-key.pem``) whose subject carries one CN per
    entry of ``names``, in that order."""
    ca = CertificateAuthority.load((certs / "ca.pem").read_bytes(), (certs / "ca-key.pem").read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, n) for n in names]))
            .issuer_name(ca.cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca.key, hashes.SHA256()))
    return TlsConfig((certs / "ca.pem").read_bytes(), cert.public_bytes(serialization.Encoding.PEM),
                     key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
