"""Paillier key pairs, their fingerprints and the key-size policy.

Keys are plain values: ``PublicKey`` is ``n`` (with ``g = n + 1``) and ``PrivateKey`` is the factors
``p, q`` plus the constants CRT decryption needs. Both convert to and from ``phe`` objects, so
ciphertexts stay interoperable with python-paillier.

:func:`generate_keypair` follows the key generation of H. Ma, S. Han, H. Lei, "Optimized Paillier's
Cryptosystem with Fast Encryption and Decryption", ACSAC 2021, pp. 106-118 (doi:10.1145/3485832.3485842):
``p = 2·p₀·p₁ + 1``, ``q = 2·q₀·q₁ + 1`` with ``p₀, q₀`` primes of ℓ/2 bits and ``p₁, q₁`` primes filling the
rest (ℓ = 448 for a 2048-bit ``n``, the paper's 112-bit security level; 512 for 3072 bits). The public key
then also carries ``hs = (−y^{2·p₁·q₁})^n mod n²``, an n-th power whose order divides ``2·p₀·q₀``; an
encryptor uses it with ℓ-bit random exponents (:mod:`algorithms.paillier.encryptor`) and the key holder
decrypts with the ℓ/2-bit exponents ``2p₀``, ``2q₀`` instead of ``p − 1``, ``q − 1``. This is the only place
where fedrisk uses exponents shorter than DJN's ⌈|n|/2⌉ bits: the security argument is the paper's and
holds only for keys generated under these conditions, so keys from elsewhere (``phe``, ``from_factors``)
carry no ``hs`` and keep the full DJN exponent. Such keys are still ordinary Paillier keys: ``phe``
decrypts every ciphertext and its own ciphertexts (``r^n`` randomness) decrypt here (see
:mod:`algorithms.paillier.decryptor`).

What it reveals: a public key (``n``, and ``hs`` where present) and its fingerprint (SHA-256 of ``n``) are
public; ``p, q`` and ``p₀, q₀`` never leave the key holder.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import struct
from dataclasses import dataclass, field, replace

import gmpy2
import phe
from gmpy2 import mpz

MIN_KEY_BITS = 2048
#: ℓ (bits of the secret subgroup order ``p₀·q₀``, and of encryption exponents) per modulus size (Ma et al.).
SUBGROUP_BITS = {2048: 448, 3072: 512, 4096: 512, 7680: 768}
_WIRE_MAGIC = b"FRPK"


class KeyTooSmallError(ValueError):
    """A Paillier modulus shorter than :data:`MIN_KEY_BITS`."""


class WrongKeyError(ValueError):
    """A ciphertext vector under a different public key than the one expected."""


def _check_bits(bits: int) -> None:
    if bits < MIN_KEY_BITS:
        raise KeyTooSmallError(
            f"Paillier key of {bits} bits refused: fedrisk requires at least {MIN_KEY_BITS}-bit moduli"
        )


@dataclass(frozen=True, eq=False)
class PublicKey:
    """A Paillier public key ``n`` (generator ``g = n + 1``)."""

    n: mpz
    nsquare: mpz = field(repr=False)
    fingerprint: str
    #: Ma et al.'s public obfuscation base (order dividing 2·p₀·q₀), or ``None`` for an ordinary key.
    hs: mpz | None = field(default=None, repr=False)
    #: Bits of the random exponents used with ``hs`` (ℓ).
    exponent_bits: int = 0

    @staticmethod
    @functools.lru_cache(maxsize=64)
    def from_n(n: int) -> PublicKey:
        n = mpz(n)
        _check_bits(int(n.bit_length()))
        digest = hashlib.sha256(int(n).to_bytes((n.bit_length() + 7) // 8, "big")).hexdigest()
        return PublicKey(n=n, nsquare=n * n, fingerprint=digest[:32])

    @property
    def bits(self) -> int:
        return int(self.n.bit_length())

    @property
    def byte_length(self) -> int:
        return (self.bits + 7) // 8

    @property
    def max_signed(self) -> int:
        """Largest magnitude a signed plaintext may reach without wrapping around ``n``."""
        return int(self.n // 2) - 1

    def to_bytes(self) -> bytes:
        """``n`` only (the form inside ciphertext vectors)."""
        return int(self.n).to_bytes(self.byte_length, "big")

    @staticmethod
    def from_bytes(data: bytes) -> PublicKey:
        return PublicKey.from_n(int.from_bytes(data, "big"))

    def with_obfuscation_base(self, hs: int, exponent_bits: int) -> PublicKey:
        """This key with a published ``hs`` (refuses values that are not units of ``Z_{n²}`` or trivial)."""
        hs = mpz(hs)
        # hs ≡ 1 (mod n) would make hs^α = 1 + k·α·n: a plaintext offset, not randomness (e.g. hs = g^k)
        if (not 1 < hs < self.nsquare or gmpy2.gcd(hs, self.n) != 1 or hs % self.n == 1
                or not 0 < exponent_bits <= self.bits):
            raise ValueError("invalid obfuscation base in the public key")
        return replace(self, hs=hs, exponent_bits=int(exponent_bits))

    def to_wire(self) -> bytes:
        """``n`` and, where present, ``hs`` and ℓ: what a key holder sends to the encrypting parties."""
        if self.hs is None:
            return self.to_bytes()
        width = 2 * self.byte_length
        return (_WIRE_MAGIC + struct.pack(">HH", self.byte_length, self.exponent_bits) + self.to_bytes()
                + int(self.hs).to_bytes(width, "big"))

    @staticmethod
    def from_wire(data: bytes) -> PublicKey:
        """Inverse of :meth:`to_wire` (also accepts the plain ``n`` of :meth:`to_bytes`)."""
        if not data.startswith(_WIRE_MAGIC):
            return PublicKey.from_bytes(data)
        size, exponent_bits = struct.unpack(">HH", data[4:8])
        if len(data) != 8 + 3 * size:
            raise ValueError("malformed public key")
        key = PublicKey.from_bytes(data[8:8 + size])
        return key.with_obfuscation_base(int.from_bytes(data[8 + size:], "big"), exponent_bits)

    def to_phe(self) -> phe.PaillierPublicKey:
        return phe.PaillierPublicKey(int(self.n))

    @staticmethod
    def from_phe(key: phe.PaillierPublicKey) -> PublicKey:
        return PublicKey.from_n(key.n)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and self.n == other.n

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def require(self, other: PublicKey) -> None:
        """Raise :class:`WrongKeyError` unless ``other`` is this key."""
        if other.fingerprint != self.fingerprint:
            raise WrongKeyError(
                f"ciphertexts under key {other.fingerprint[:12]}… refused: expected key {self.fingerprint[:12]}…"
            )


@dataclass(frozen=True, eq=False)
class PrivateKey:
    """The factors of ``n`` and the precomputed CRT constants used for decryption."""

    public_key: PublicKey
    p: mpz = field(repr=False)
    q: mpz = field(repr=False)
    psquare: mpz = field(repr=False)
    qsquare: mpz = field(repr=False)
    p_inverse: mpz = field(repr=False)
    hp: mpz = field(repr=False)
    hq: mpz = field(repr=False)
    #: Ma et al.: ``2p₀``, ``2q₀`` (the orders of ``hs`` mod p², q²) and their ``h`` constants; 0 if absent.
    p_order: mpz = field(default=mpz(0), repr=False)
    q_order: mpz = field(default=mpz(0), repr=False)
    hp_short: mpz = field(default=mpz(0), repr=False)
    hq_short: mpz = field(default=mpz(0), repr=False)

    @staticmethod
    def from_factors(public_key: PublicKey, p: int, q: int, p_order: int = 0, q_order: int = 0) -> PrivateKey:
        """From the factors; ``p_order``/``q_order`` (``2p₀``, ``2q₀`` of Ma et al.) enable short decryption."""
        if p > q:
            p, q, p_order, q_order = q, p, q_order, p_order
        p, q = mpz(p), mpz(q)
        if p * q != public_key.n or p == q:
            raise ValueError("p and q do not factor the public key")
        if (p_order or q_order) and ((p - 1) % p_order or (q - 1) % q_order):
            raise ValueError("the subgroup orders do not divide p - 1 and q - 1")
        n = public_key.n
        psquare, qsquare = p * p, q * q

        def h(prime: mpz, prime_sq: mpz, exponent: mpz) -> mpz:
            # h = L_p(g^e mod p^2)^-1 mod p with g = n + 1 (e = p - 1, or the order of hs mod p^2)
            return gmpy2.invert((gmpy2.powmod(n + 1, exponent, prime_sq) - 1) // prime, prime)

        short = (mpz(p_order), mpz(q_order), h(p, psquare, mpz(p_order)), h(q, qsquare, mpz(q_order))) \
            if p_order else (mpz(0),) * 4
        return PrivateKey(public_key, p, q, psquare, qsquare, gmpy2.invert(p, q), h(p, psquare, p - 1),
                          h(q, qsquare, q - 1), *short)

    def to_phe(self) -> phe.PaillierPrivateKey:
        return phe.PaillierPrivateKey(self.public_key.to_phe(), int(self.p), int(self.q))

    @staticmethod
    def from_phe(key: phe.PaillierPrivateKey) -> PrivateKey:
        return PrivateKey.from_factors(PublicKey.from_phe(key.public_key), key.p, key.q)

    def to_bytes(self) -> bytes:
        """Serialise ``p``, ``q`` (and ``2p₀``, ``2q₀``): for the key holder's own store only, never sent."""
        size = (self.public_key.bits // 2 + 8) // 8 + 1
        parts = (self.p, self.q) if not self.p_order else (self.p, self.q, self.p_order, self.q_order)
        return b"".join(int(v).to_bytes(size, "big") for v in parts)

    @staticmethod
    def from_bytes(public_key: PublicKey, data: bytes) -> PrivateKey:
        size = (public_key.bits // 2 + 8) // 8 + 1
        values = [int.from_bytes(data[i:i + size], "big") for i in range(0, len(data), size)]
        if len(values) not in (2, 4) or len(data) % size:  # pragma: no cover - legacy even split
            half = len(data) // 2
            values = [int.from_bytes(data[:half], "big"), int.from_bytes(data[half:], "big")]
        return PrivateKey.from_factors(public_key, *values)


def _random_prime(bits: int) -> mpz:
    """A random prime of exactly ``bits`` bits (top two bits set, so products keep their length)."""
    return gmpy2.next_prime(mpz(secrets.randbits(bits - 2)) | (mpz(3) << (bits - 2)))


def _special_prime(subgroup_bits: int, bits: int) -> tuple[mpz, mpz]:
    """A prime ``P = 2·p₀·p₁ + 1`` of ``bits`` bits with ``p₀`` a prime of ``subgroup_bits`` bits; returns (P, 2p₀)."""
    cofactor = _random_prime(bits - subgroup_bits - 1)
    while True:
        small = _random_prime(subgroup_bits)
        prime = 2 * small * cofactor + 1
        if prime.bit_length() == bits and gmpy2.is_prime(prime, 40):
            return prime, 2 * small


def generate_keypair(bits: int = MIN_KEY_BITS) -> tuple[PublicKey, PrivateKey]:
    """A key pair under Ma et al.'s key-generation conditions (see the module docstring).

    Refuses moduli below :data:`MIN_KEY_BITS`. Sizes without a published ℓ get an ordinary key from ``phe``.
    """
    _check_bits(bits)
    ell = SUBGROUP_BITS.get(bits)
    if ell is None:
        public, private = phe.generate_paillier_keypair(n_length=bits)
        pub = PublicKey.from_phe(public)
        return pub, PrivateKey.from_factors(pub, private.p, private.q)
    while True:
        (p, p_order), (q, q_order) = _special_prime(ell // 2, bits // 2), _special_prime(ell // 2, bits // 2)
        n = p * q
        if p != q and n.bit_length() == bits and gmpy2.gcd(n, (p - 1) * (q - 1)) == 1:
            break
    # y^(2·p₁·q₁) has order dividing p₀·q₀; its negation and n-th power give hs (order dividing 2·p₀·q₀)
    cofactors = ((p - 1) // p_order) * ((q - 1) // q_order)
    y = mpz(secrets.randbelow(int(n) - 2) + 2)
    h = (-gmpy2.powmod(y, 2 * cofactors, n)) % n
    plain = PublicKey.from_n(int(n))
    pub = plain.with_obfuscation_base(gmpy2.powmod(h, n, plain.nsquare), ell)
    return pub, PrivateKey.from_factors(pub, int(p), int(q), int(p_order), int(q_order))
