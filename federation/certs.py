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

A certificate that lists non-loopback IP addresses **binds its party to them**: a server refuses a
client whose source address is not among its certificate's IP SANs (:func:`address_mismatch`, checked by
the data plane and the control plane), so a stolen key cannot be used from another host and a
mis-addressed party is refused. Certificates with DNS names only (Kubernetes, compose, where addresses
change) or only loopback addresses are not bound. :func:`provision` leaves a host name that equals
another party's id out of a certificate, which would otherwise let that party answer as the other.

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
import functools
import ipaddress
import os
import re
import urllib.parse
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


def peer_common_name(auth_context: Mapping[str, Sequence[bytes]]) -> str | None:
    """The peer certificate's common name if its subject holds exactly one CN, else ``None``.

    gRPC's ``x509_common_name`` property reports a single CN even when the subject has several (the first
    one), so the certificate itself is read: a subject with two CNs (say ``arbiter`` and ``insurer``) must
    not pass as either.
    """
    pems = auth_context.get("x509_pem_cert") or []
    if len(pems) != 1:
        return None
    return _single_common_name(bytes(pems[0]))


@functools.lru_cache(maxsize=256)
def _single_common_name(pem: bytes) -> str | None:
    try:
        names = x509.load_pem_x509_certificate(pem).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        return None
    if len(names) != 1:
        return None
    value = names[0].value
    return value.decode() if isinstance(value, bytes) else str(value)


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
    name equal to ANOTHER party's id never enters a certificate: in the shared ``hosts`` (e.g. compose or
    Kubernetes service names, which equal the party ids) each party keeps only its own id; given explicitly
    for a party in ``party_hosts`` it is refused, since that party could then answer for the other.
    """
    party_hosts = dict(party_hosts or {})
    unknown = sorted(set(party_hosts) - set(parties))
    if unknown:
        raise CertificateError(f"host names given for {unknown}, which are not among the parties {list(parties)}")
    out: dict[str, list[str]] = {}
    for party in parties:
        shared = [h for h in hosts if h == party or h not in parties]  # never another party's id
        names = list(dict.fromkeys([*party_hosts.get(party, ()), *shared]))
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


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@functools.lru_cache(maxsize=256)
def bound_addresses(cert_pem: bytes) -> frozenset[IPAddress]:
    """The non-loopback IP SANs of a certificate: the addresses its party may connect from."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return frozenset()
    return frozenset(ip for ip in san.get_values_for_type(x509.IPAddress)
                     if isinstance(ip, IPAddress) and not ip.is_loopback)


def peer_ip(peer: str) -> IPAddress | None:
    """The IP address of a gRPC peer string (``ipv4:10.0.0.2:5000``, ``ipv6:[::1]:5000``, URL-quoted too)."""
    kind, _, rest = urllib.parse.unquote(peer).partition(":")
    if kind not in ("ipv4", "ipv6"):
        return None
    host = rest.rsplit(":", 1)[0].strip("[]")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def address_mismatch(peer: str, cert_pem: bytes | None) -> str | None:
    """Why a caller at ``peer`` presenting ``cert_pem`` must be refused, or None if it may connect.

    Only certificates with non-loopback IP SANs are bound; connections over loopback are always allowed
    (same host or same network namespace).
    """
    if not cert_pem:
        return None
    allowed = bound_addresses(cert_pem)
    if not allowed:
        return None
    ip = peer_ip(peer)
    if ip is None or ip.is_loopback or ip in allowed:
        return None
    listed = ", ".join(sorted(str(a) for a in allowed))
    return f"connection from {ip}, which is not an address in the caller's certificate ({listed})"
