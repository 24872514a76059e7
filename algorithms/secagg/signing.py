"""Signing and verifying protocol messages with the parties' certificate keys (no transport code).

Secure aggregation signs each party's key advertisement (and its view of the surviving set) so that the
aggregator, which relays every message, can neither substitute its own keys for a client's nor replay an
advertisement from another round or job: the signed bytes name the protocol context (job, namespace,
round), the message kind and the party id.

The protocol takes a :class:`Signer` (its own key) and a :class:`Verifier` (the others' public keys) as
objects; the silo builds them from the PEM files of :mod:`federation.certs` (EC P-256 keys, ECDSA with
SHA-256) and passes them through ``RoleContext.extra`` or a role's constructor.
:class:`CertificateVerifier` checks each peer certificate against the federation CA and its common name
against the party id before using its key.

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

    def sign(self, message: bytes) -> bytes: ...


class Verifier(Protocol):
    """Checks that ``signature`` on ``message`` was made by ``party_id``'s key (raises :class:`SignatureError`)."""

    def verify(self, party_id: str, message: bytes, signature: bytes) -> None: ...


class EcSigner:
    """ECDSA-SHA256 with an EC private key (the party's certificate key)."""

    def __init__(self, party_id: str, key: ec.EllipticCurvePrivateKey) -> None:
        self.party_id = party_id
        self._key = key

    @staticmethod
    def from_pem(party_id: str, key_pem: bytes) -> EcSigner:
        key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise SignatureError(f"{party_id}: the certificate key is not an EC key")
        return EcSigner(party_id, key)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message, ec.ECDSA(hashes.SHA256()))


class KeyVerifier:
    """Verifies against a fixed map party id → EC public key."""

    def __init__(self, keys: Mapping[str, ec.EllipticCurvePublicKey]) -> None:
        self._keys = dict(keys)

    def verify(self, party_id: str, message: bytes, signature: bytes) -> None:
        key = self._keys.get(party_id)
        if key is None:
            raise SignatureError(f"no verification key for party {party_id!r}")
        try:
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise SignatureError(f"invalid signature from {party_id!r}") from None


class CertificateVerifier(KeyVerifier):
    """Verifies against the parties' certificates, each checked against the federation CA and its CN."""

    def __init__(self, ca_pem: bytes, certificates: Mapping[str, bytes]) -> None:
        ca = x509.load_pem_x509_certificate(ca_pem)
        keys: dict[str, ec.EllipticCurvePublicKey] = {}
        for party_id, pem in certificates.items():
            cert = x509.load_pem_x509_certificate(pem)
            try:
                cert.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature):
                raise SignatureError(f"the certificate of {party_id!r} is not issued by the federation CA") from None
            names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
            if names != [party_id]:
                raise SignatureError(f"the certificate given for {party_id!r} names {names}")
            key = cert.public_key()
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise SignatureError(f"the certificate of {party_id!r} has no EC key")
            keys[party_id] = key
        super().__init__(keys)
