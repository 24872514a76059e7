"""Provisioning of the federation's private PKI and loading of each party's mutual-TLS material.

:func:`provision` creates a private root CA and, for every party, an EC P-256 key and a certificate
signed by that CA whose common name is the party id. Each party certificate carries subject
alternative names for its own host names / IP addresses (plus any shared ones, e.g. loopback) *and* a
DNS name equal to the party id: a
client pins the server it calls to the intended party by using the party id as the TLS target name,
so an address mix-up (or a party answering on another's port) fails the handshake.

Files written to ``out_dir`` (keys mode 0600)::

    ca.pem            root certificate, distributed to every party
    ca-key.pem        CA private key: keep offline, only needed to issue more certificates
    <party>.pem       party certificate
    <party>-key.pem   party private key, given to that party only

:class:`TlsConfig` holds one party's PEM material and builds the gRPC server / channel credentials
(client certificates are always required; there is no insecure mode).

What it reveals: a certificate discloses its party id and the host names in its SANs to every peer
it connects to; private keys never leave the party's directory.

Example::

    from federation.certs import provision, TlsConfig
    provision("certs", parties=["bank", "insurer", "arbiter"], hosts=["localhost", "127.0.0.1"],
              party_hosts={"bank": ["bank.internal"], "insurer": ["insurer.internal"]})
    tls = TlsConfig.from_dir("certs", "bank")   # what the bank's node loads
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PARTY_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
DEFAULT_DAYS = 365


class CertificateError(ValueError):
    """Invalid party id, missing or inconsistent TLS files."""


def check_party_id(party_id: str) -> str:
    """Party ids double as certificate CN and DNS SAN: lower-case letters, digits and '-'."""
    if not isinstance(party_id, str) or not PARTY_ID_PATTERN.match(party_id):
        raise CertificateError(
            f"invalid party id {party_id!r}: use 1-63 lower-case letters, digits or '-', starting alphanumeric")
    return party_id


@dataclass(frozen=True)
class CertificateAuthority:
    """The federation's root: its key signs every party certificate."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @staticmethod
    def create(name: str = "fedrisk federation CA", days: int = 10 * DEFAULT_DAYS) -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder()
                .subject_name(subject).issuer_name(subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=days))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False, key_agreement=False,
                                             key_cert_sign=True, crl_sign=True, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        return CertificateAuthority(key, cert)

    @staticmethod
    def load(cert_pem: bytes, key_pem: bytes) -> CertificateAuthority:
        key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CertificateError("the CA key must be an EC key")
        return CertificateAuthority(key, x509.load_pem_x509_certificate(cert_pem))

    def issue(self, party_id: str, hosts: Sequence[str] = ("localhost", "127.0.0.1"), days: int = DEFAULT_DAYS,
              not_before: dt.datetime | None = None) -> tuple[bytes, bytes]:
        """A new key and certificate for ``party_id`` (CN = party id); returns ``(cert_pem, key_pem)``.

        ``not_before`` (UTC) back-dates the validity window; tests use it to mint expired certificates.
        """
        check_party_id(party_id)
        key = ec.generate_private_key(ec.SECP256R1())
        start = not_before or (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
        names: list[x509.GeneralName] = [x509.DNSName(party_id)]
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                if host != party_id:
                    names.append(x509.DNSName(host))
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, party_id)]))
                .issuer_name(self.cert.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(start)
                .not_valid_after(start + dt.timedelta(days=days))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.SubjectAlternativeName(names), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                               critical=False)
                .sign(self.key, hashes.SHA256()))
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        return cert.public_bytes(serialization.Encoding.PEM), key_pem

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())


def _write(path: Path, data: bytes, private: bool) -> None:
    if private:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(path, 0o600)
    else:
        path.write_bytes(data)


def party_sans(parties: Sequence[str], hosts: Sequence[str] = (),
               party_hosts: Mapping[str, Sequence[str]] | None = None) -> dict[str, list[str]]:
    """Each party's host names / addresses: its own ``party_hosts[party]`` followed by the shared ``hosts``.

    A client pins the server it calls by the party id (a DNS SAN only that party's certificate has), so a
    name equal to ANOTHER party's id in a certificate is refused: that party could then answer for it.
    """
    party_hosts = dict(party_hosts or {})
    unknown = sorted(set(party_hosts) - set(parties))
    if unknown:
        raise CertificateError(f"host names given for {unknown}, which are not among the parties {list(parties)}")
    out: dict[str, list[str]] = {}
    for party in parties:
        names = list(dict.fromkeys([*party_hosts.get(party, ()), *hosts]))
        for name in names:
            if name in parties and name != party:
                raise CertificateError(f"host name {name!r} in {party}'s certificate is another party's id: "
                                       "server pinning by party id would no longer tell the two apart")
        out[party] = names
    return out


def provision(out_dir: str | os.PathLike[str], parties: Sequence[str] = ("bank", "insurer", "arbiter"),
              hosts: Sequence[str] = ("localhost", "127.0.0.1"), days: int = DEFAULT_DAYS,
              overwrite: bool = False, party_hosts: Mapping[str, Sequence[str]] | None = None) -> dict[str, Path]:
    """Create a root CA and one key + certificate per party in ``out_dir``; return the written paths.

    ``party_hosts`` maps a party to the host names / IP addresses of its own certificate only; ``hosts``
    go into every certificate (loopback names for a single-machine federation). Refuses to overwrite an
    existing ``ca.pem`` unless ``overwrite=True`` (a new CA invalidates every certificate already handed out).
    """
    for party in parties:
        check_party_id(party)
    if len(set(parties)) != len(parties):
        raise CertificateError(f"duplicate party ids in {list(parties)}")
    sans = party_sans(parties, hosts, party_hosts)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if (out / "ca.pem").exists() and not overwrite:
        raise CertificateError(f"{out / 'ca.pem'} already exists; pass overwrite=True to replace the CA")
    ca = CertificateAuthority.create(days=max(days, 10 * DEFAULT_DAYS))
    paths = {"ca": out / "ca.pem", "ca-key": out / "ca-key.pem"}
    _write(paths["ca"], ca.cert_pem, private=False)
    _write(paths["ca-key"], ca.key_pem, private=True)
    for party in parties:
        cert_pem, key_pem = ca.issue(party, sans[party], days)
        paths[party] = out / f"{party}.pem"
        paths[f"{party}-key"] = out / f"{party}-key.pem"
        _write(paths[party], cert_pem, private=False)
        _write(paths[f"{party}-key"], key_pem, private=True)
    return paths


@dataclass(frozen=True)
class TlsConfig:
    """One party's mutual-TLS material (PEM bytes): the federation root, its certificate and its key."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    @staticmethod
    def from_dir(directory: str | os.PathLike[str], party_id: str) -> TlsConfig:
        """Load ``ca.pem``, ``<party>.pem`` and ``<party>-key.pem`` from ``directory``."""
        d = Path(directory)
        files = [d / "ca.pem", d / f"{party_id}.pem", d / f"{party_id}-key.pem"]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise CertificateError(f"TLS files missing for party {party_id!r}: {', '.join(missing)}")
        return TlsConfig(*(f.read_bytes() for f in files))

    @property
    def common_name(self) -> str:
        """The party id this certificate asserts."""
        cert = x509.load_pem_x509_certificate(self.cert_pem)
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if len(names) != 1:
            raise CertificateError("a party certificate must have exactly one common name")
        return str(names[0].value)

    def server_credentials(self) -> grpc.ServerCredentials:
        """Server side: present our certificate, require a client certificate signed by the CA."""
        return grpc.ssl_server_credentials([(self.key_pem, self.cert_pem)], root_certificates=self.ca_pem,
                                           require_client_auth=True)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """Client side: verify the server against the CA, present our certificate."""
        return grpc.ssl_channel_credentials(root_certificates=self.ca_pem, private_key=self.key_pem,
                                            certificate_chain=self.cert_pem)
