"""Vectors of raw Paillier ciphertexts (``gmpy2.mpz``) with their key, scale and overflow bound.

A :class:`CiphertextVector` holds ciphertexts under one public key together with

* ``frac_bits`` — the fixed-point scale of the plaintexts (value = integer / 2**frac_bits);
* ``bound`` — an analytic upper bound on the magnitude of every plaintext integer, or ``None`` for a
  *masked* vector whose plaintexts are uniform in ``Z_n`` (only its owner can unmask it).

Homomorphic operations (add, add plaintext, rescale, sum, products with quantised plaintext matrices)
update the bound and refuse to run if the result could leave the signed plaintext range. The byte
form is fixed width (``2·|n|`` bytes per ciphertext) behind a header with the key fingerprint and the
modulus; decoding rejects ciphertexts outside ``(0, n²)`` or not coprime with ``n``.

Raw ciphertexts are ordinary Paillier ciphertexts with ``g = n + 1``: ``phe.EncryptedNumber(pub, c, e)``
decrypts them and vice versa.

What it reveals: the key fingerprint, the length, the scale and the bound travel in clear; the
plaintexts are protected by Paillier (IND-CPA) as long as the sender re-randomises what it derived
from a peer's ciphertexts (see :meth:`algorithms.paillier.encryptor.Encryptor.rerandomize`).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import gmpy2
import numpy as np
from gmpy2 import mpz

from algorithms.paillier.encoding import EncodingOverflowError, check_bound
from algorithms.paillier.keys import PublicKey
from federation import codec

_MAGIC = b"FRCV"
_VERSION = 1


class InvalidCiphertextError(ValueError):
    """Bytes that are not a valid ciphertext vector under the stated key."""


class CiphertextVector:
    """Ciphertexts under one key, with fixed-point scale and overflow bound."""

    __slots__ = ("bound", "ciphertexts", "frac_bits", "public_key")

    def __init__(self, public_key: PublicKey, ciphertexts: list[mpz], frac_bits: int, bound: int | None) -> None:
        self.public_key = public_key
        self.ciphertexts = ciphertexts
        self.frac_bits = frac_bits
        self.bound = bound
        if bound is not None:
            check_bound(bound, public_key.max_signed, "this ciphertext vector")

    # ----------------------------------------------------------------- basics
    def __len__(self) -> int:
        return len(self.ciphertexts)

    def __repr__(self) -> str:
        state = "masked" if self.masked else f"|m|<=2^{(self.bound or 0).bit_length()}"
        return (f"CiphertextVector(len={len(self)}, key={self.public_key.fingerprint[:8]}, "
                f"frac_bits={self.frac_bits}, {state})")

    @property
    def masked(self) -> bool:
        return self.bound is None

    def under(self, key: PublicKey) -> CiphertextVector:
        """Return self if encrypted under ``key``; raise :class:`WrongKeyError` otherwise."""
        key.require(self.public_key)
        return self

    def _like(self, ciphertexts: list[mpz], frac_bits: int | None = None, bound: int | None = -1
              ) -> CiphertextVector:
        return CiphertextVector(self.public_key, ciphertexts,
                                self.frac_bits if frac_bits is None else frac_bits,
                                self.bound if bound == -1 else bound)

    def _bounded(self, operation: str) -> int:
        if self.bound is None:
            raise EncodingOverflowError(f"{operation} on a masked vector: unmask it first")
        return self.bound

    def take(self, indices: Sequence[int] | np.ndarray) -> CiphertextVector:
        """Select elements by position."""
        cts = self.ciphertexts
        return self._like([cts[int(i)] for i in indices])

    @staticmethod
    def concat(parts: Sequence[CiphertextVector]) -> CiphertextVector:
        first = parts[0]
        for p in parts[1:]:
            first.public_key.require(p.public_key)
            if p.frac_bits != first.frac_bits:
                raise ValueError("cannot concatenate vectors with different scales")
        bounds = [p.bound for p in parts]
        bound = None if any(b is None for b in bounds) else max(bounds)  # type: ignore[type-var]
        return CiphertextVector(first.public_key, [c for p in parts for c in p.ciphertexts],
                                first.frac_bits, bound)

    # -------------------------------------------------------- homomorphic ops
    def __add__(self, other: CiphertextVector) -> CiphertextVector:
        """Elementwise sum of plaintexts (same key, scale and length)."""
        self.public_key.require(other.public_key)
        if other.frac_bits != self.frac_bits:
            raise ValueError(f"scales differ ({self.frac_bits} vs {other.frac_bits} fractional bits): rescale first")
        if len(other) != len(self):
            raise ValueError(f"lengths differ ({len(self)} vs {len(other)})")
        bound = self._bounded("addition") + other._bounded("addition")
        check_bound(bound, self.public_key.max_signed, "ciphertext addition")
        nsq = self.public_key.nsquare
        return self._like([a * b % nsq for a, b in zip(self.ciphertexts, other.ciphertexts, strict=True)],
                          bound=bound)

    def add_encoded(self, plaintexts: Sequence[int], plain_bound: int) -> CiphertextVector:
        """Add signed plaintext integers already at this vector's scale (``g^m = 1 + m·n``, no modexp).

        The result is NOT re-randomised: whoever encrypted ``self`` could strip it and read the
        plaintexts. Re-randomise before sending it back to them.
        """
        if len(plaintexts) != len(self):
            raise ValueError(f"lengths differ ({len(self)} vs {len(plaintexts)})")
        bound = self._bounded("plaintext addition") + plain_bound
        check_bound(bound, self.public_key.max_signed, "plaintext addition")
        return self._add_residues(plaintexts, bound)

    def add_mask(self, masks: Sequence[int]) -> CiphertextVector:
        """Add uniform masks from ``Z_n``; the result is a masked vector (bound ``None``)."""
        if len(masks) != len(self):
            raise ValueError(f"lengths differ ({len(self)} vs {len(masks)})")
        return self._add_residues(masks, None)

    def _add_residues(self, values: Sequence[int], bound: int | None) -> CiphertextVector:
        n, nsq = self.public_key.n, self.public_key.nsquare
        out = [c * ((int(m) % n) * n + 1) % nsq for c, m in zip(self.ciphertexts, values, strict=True)]
        return self._like(out, bound=bound)

    def rescale(self, frac_bits: int) -> CiphertextVector:
        """Move to a finer scale (multiply plaintexts by ``2**(frac_bits - self.frac_bits)``)."""
        shift = frac_bits - self.frac_bits
        if shift < 0:
            raise ValueError("cannot move to a coarser scale homomorphically")
        if shift == 0:
            return self
        bound = self._bounded("rescaling") << shift
        check_bound(bound, self.public_key.max_signed, "rescaling")
        e, nsq = mpz(1) << shift, self.public_key.nsquare
        return self._like([gmpy2.powmod(c, e, nsq) for c in self.ciphertexts], frac_bits=frac_bits, bound=bound)

    def scaled_down(self, bits: int) -> CiphertextVector:
        """Reinterpret the plaintexts as divided by ``2**bits`` (exact: only the scale changes)."""
        return self._like(self.ciphertexts, frac_bits=self.frac_bits + bits)

    def sum(self) -> CiphertextVector:
        """One-element vector holding the sum of all plaintexts."""
        bound = self._bounded("summation") * max(len(self), 1)
        check_bound(bound, self.public_key.max_signed, "summation")
        nsq, acc = self.public_key.nsquare, mpz(1)
        for c in self.ciphertexts:
            acc = acc * c % nsq
        return self._like([acc], bound=bound)

    def negate(self) -> CiphertextVector:
        nsq = self.public_key.nsquare
        return self._like([gmpy2.invert(c, nsq) for c in self.ciphertexts])

    # ---------------------------------------------------------- serialisation
    def to_bytes(self) -> bytes:
        key = self.public_key
        width = 2 * key.byte_length
        bound = b"" if self.bound is None else self.bound.to_bytes((self.bound.bit_length() + 8) // 8, "big")
        header = (_MAGIC + struct.pack(">BiIHH", _VERSION, self.frac_bits, len(self), len(bound), key.byte_length)
                  + bytes.fromhex(key.fingerprint) + key.to_bytes() + bound)
        body = b"".join(c.to_bytes(width, "big") for c in self.ciphertexts)
        return header + body

    @staticmethod
    def from_bytes(data: bytes) -> CiphertextVector:
        """Parse and validate; raises :class:`InvalidCiphertextError` on anything malformed."""
        fixed = 4 + struct.calcsize(">BiIHH")
        if len(data) < fixed or data[:4] != _MAGIC:
            raise InvalidCiphertextError("not a ciphertext vector")
        version, frac_bits, count, bound_len, key_len = struct.unpack(">BiIHH", data[4:fixed])
        if version != _VERSION:
            raise InvalidCiphertextError(f"unsupported ciphertext vector version {version}")
        pos = fixed
        fingerprint = data[pos:pos + 16].hex()
        pos += 16
        key = PublicKey.from_bytes(data[pos:pos + key_len])
        pos += key_len
        if key.fingerprint != fingerprint:
            raise InvalidCiphertextError("key fingerprint does not match the modulus")
        bound = int.from_bytes(data[pos:pos + bound_len], "big") if bound_len else None
        pos += bound_len
        width = 2 * key_len
        if len(data) - pos != count * width:
            raise InvalidCiphertextError(f"expected {count} ciphertexts of {width} bytes")
        cts = [mpz(int.from_bytes(data[i:i + width], "big")) for i in range(pos, len(data), width)]
        validate_ciphertexts(key, cts)
        return CiphertextVector(key, cts, frac_bits, bound)


def validate_ciphertexts(key: PublicKey, ciphertexts: Sequence[mpz]) -> None:
    """Reject ciphertexts outside ``(0, n²)`` or sharing a factor with ``n``.

    Coprimality is checked for the whole vector at once: ``gcd(Π c_i mod n, n) = 1`` iff every ``c_i``
    is coprime with ``n`` (``n = p·q`` with ``p, q`` prime).
    """
    n, nsq = key.n, key.nsquare
    product = mpz(1)
    for i, c in enumerate(ciphertexts):
        if not 0 < c < nsq:
            raise InvalidCiphertextError(f"ciphertext {i} is outside (0, n^2)")
        product = product * c % n
    if gmpy2.gcd(product, n) != 1:
        raise InvalidCiphertextError("a ciphertext is not coprime with n")


# The transport carries ciphertext vectors as codec extension 3 and announces their key in the envelope.
codec.register_extension(3, CiphertextVector, CiphertextVector.to_bytes, CiphertextVector.from_bytes,
                         fingerprint=lambda v: v.public_key.fingerprint)
