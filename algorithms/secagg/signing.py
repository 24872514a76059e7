"""Signing and verifying protocol messages with the parties' certificate keys (no transport code).

Secure aggregation signs each party's key advertisement (and its view of the surviving set) so that the
aggregator, which relays every message, can neither substitute its own keys for a client's nor replay an
advertisement from another round or job: the signed bytes name the protocol context (job, namespace,
round), the message kind and the party id.

The protocol takes a :class:`Signer` (its own key, and its certificate, which travels with each signed
advertisement) and a :class:`Verifier` as objects; the silo builds them from the PEM files of
:mod:`federation.certs` (EC P-256 keys, ECDSA with SHA-256) and passes them through ``RoleContext.extra`` or a
role's constructor. :class:`CertificateVerifier` checks each peer certificate (given up front, or carried in
the advertisement) against the federation CA and its common name against the party id before using its key,
so the aggregator that relays the certificate cannot swap in one of its own.

What it reveals to whom: signatures reveal nothing beyond the signed (public) message and its signer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class SignatureError(ValueError):
    """A signature does not verify, or the signer is unknown."""


class Signer(Protocol):
    """Signs bytes with this party's private key."""

    party_id: str
    certificate: bytes  # PEM of the party's certificate (b"" where verifiers hold the keys already)

    def sign(self, message: bytes) -> bytes: ...


class Verifier(Protocol):
    """Checks that ``signature`` on ``message`` was made by ``party_id``'s key (raises :class:`SignatureError`);
    ``certificate`` is the PEM the signer sent along (verifiers with fixed keys ignore it)."""

    def verify(self, party_id: str, message: bytes, signature: bytes, certificate: bytes = b"") -> None: ...


class EcSigner:
    """ECDSA-SHA256 with an EC private key (the party's certificate key)."""

    def __init__(self, party_id: str, key: ec.EllipticCurvePrivateKey, certificate: bytes = b"") -> None:
        self.party_id = party_id
        self.certificate = certificate
        self._key = key

    @staticmethod
    def from_pem(party_id: str, key_pem: bytes, cert_pem: bytes = b"") -> EcSigner:
        key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise SignatureError(f"{party_id}: the certificate key is not an EC key")
        return EcSigner(party_id, key, cert_pem)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message, ec.ECDSA(hashes.SHA256()))


class KeyVerifier:
    """Verifies against a fixed map party id → EC public key."""

    def __init__(self, keys: Mapping[str, ec.EllipticCurvePublicKey]) -> None:
        self._keys = dict(keys)

    def key_of(self, party_id: str, certificate: bytes) -> ec.EllipticCurvePublicKey | None:
        return self._keys.get(party_id)

    def verify(self, party_id: str, message: bytes, signature: bytes, certificate: bytes = b"") -> None:
        key = self.key_of(party_id, certificate)
        if key is None:
            raise SignatureError(f"no verification key for party {party_id!r}")
        try:
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise SignatureError(f"invalid signature from {party_id!r}") from None


class CertificateVerifier(KeyVerifier):
    """Verifies with the parties' certificates, each checked against the federation CA and its CN: those given
    here, or the one a signer sends along (checked on first use, then kept)."""

    def __init__(self, ca_pem: bytes, certificates: Mapping[str, bytes] | None = None) -> None:
        self._ca = x509.load_pem_x509_certificate(ca_pem)
        super().__init__({})
        self._pinned: dict[str, bytes] = {}
        for party_id, pem in (certificates or {}).items():
            self._keys[party_id] = self._check(party_id, pem)
            self._pinned[party_id] = pem

    def _check(self, party_id: str, pem: bytes) -> ec.EllipticCurvePublicKey:
        try:
            cert = x509.load_pem_x509_certificate(pem)
        except ValueError:
            raise SignatureError(f"the certificate sent for {party_id!r} is not a PEM certificate") from None
        try:
            cert.verify_directly_issued_by(self._ca)
        except (ValueError, TypeError, InvalidSignature):
            raise SignatureError(f"the certificate of {party_id!r} is not issued by the federation CA") from None
        names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if names != [party_id]:
            raise SignatureError(f"the certificate given for {party_id!r} names {names}")
        key = cert.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise SignatureError(f"the certificate of {party_id!r} has no EC key")
        return key

    def key_of(self, party_id: str, certificate: bytes) -> ec.EllipticCurvePublicKey | None:
        if party_id in self._keys and (not certificate or certificate == self._pinned.get(party_id)):
            return self._keys[party_id]
        if not certificate:
            return None
        key = self._check(party_id, certificate)
        if party_id not in self._keys:  # first certificate seen for the party: keep it
            self._keys[party_id], self._pinned[party_id] = key, certificate
        return key
