"""Mask expansion and key derivation for secure aggregation: X25519 → HKDF-SHA256 → ChaCha20 keystream.

* :func:`agree` — X25519 shared secret of two parties, turned by HKDF-SHA256 into a 32-byte key bound to
  the protocol ``context`` (job, namespace, round), a ``purpose`` label and the two party ids (sorted, so
  both sides derive the same key).
* :func:`expand` — a 32-byte seed expanded into ``length`` uniform elements of ``Z_{2^bits}`` with the
  ChaCha20 stream cipher (RFC 7539 keystream, zero nonce: every seed is used for exactly one stream).
  ``2^bits`` divides ``2^64``, so masking 64-bit keystream words to ``bits`` bits keeps them uniform.

Never numpy's or Python's RNG, never a seed folded to 32 bits: the keystream is a PRF of the full 256-bit
seed, so masks are computationally indistinguishable from uniform to anyone without the seed.

What it reveals to whom: nothing; seeds and keys stay in the party that derived them (or are Shamir-shared,
see :mod:`algorithms.secagg.shamir`).
"""

from __future__ import annotations

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SEED_BYTES = 32
DOMAIN = b"fedrisk/secagg/v1"
_ZERO_NONCE = bytes(16)


def derive(secret: bytes, context: bytes, purpose: str, *parties: str) -> bytes:
    """HKDF-SHA256 of ``secret`` into 32 bytes, salted by ``context`` and labelled by purpose and party ids."""
    info = b"|".join([DOMAIN, purpose.encode(), *(p.encode() for p in parties)])
    return HKDF(algorithm=hashes.SHA256(), length=SEED_BYTES, salt=context, info=info).derive(secret)


def agree(own: X25519PrivateKey, peer_public: bytes, context: bytes, purpose: str, me: str, peer: str) -> bytes:
    """The key ``me`` and ``peer`` both derive from their X25519 keys for ``purpose`` in ``context``."""
    shared = own.exchange(X25519PublicKey.from_public_bytes(peer_public))
    a, b = sorted((me, peer))
    return derive(shared, context, purpose, a, b)


def expand(seed: bytes, length: int, bits: int) -> np.ndarray:
    """``length`` elements of ``Z_{2^bits}`` (as uint64) from the ChaCha20 keystream under ``seed``."""
    if len(seed) != SEED_BYTES:
        raise ValueError(f"a mask seed has {SEED_BYTES} bytes, got {len(seed)}")
    encryptor = Cipher(algorithms.ChaCha20(seed, _ZERO_NONCE), mode=None).encryptor()
    words = np.frombuffer(encryptor.update(bytes(8 * length)), dtype="<u8").astype(np.uint64)
    if bits < 64:
        words &= np.uint64((1 << bits) - 1)
    return words
