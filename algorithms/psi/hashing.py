"""Hash ids to Curve25519 as a random oracle, x-only: RFC 9380 ``hash_to_field`` + try-and-increment.

Each normalised id is expanded with RFC 9380's ``expand_message_xof`` (SHAKE256, section 5.3.2) under a
domain-separation tag that binds the protocol version and the job's ``context`` into two field elements
``u0, u1`` (48 bytes each reduced mod p: statistically uniform, bias 2^-128). SHAKE256 needs one Keccak
permutation per id where ``expand_message_xmd`` with SHA-512 needs three compressions with the message
copied between them (0.8 against 7 CPU-µs per id in Python here); both are RFC 9380 expanders for 128-bit
security. The hash is the first of ``u0, u1`` that is the Montgomery u-coordinate of a point of Curve25519
(``u^3 + A u^2 + u`` a non-zero square, one Jacobi symbol; u = 0, ±1, the points of order 2 and 4,
excluded); if neither is (probability 1/4), two more are drawn under the tag extended with the round
number, and so on. This is the input X25519 takes.

Why this is a random oracle into the group: a uniform field element conditioned on being a curve
coordinate is uniform over the curve's coordinates, so the hash is uniform over the points of the curve
up to sign, and x-only Diffie-Hellman never sees the sign (``k·P`` and ``k·(-P)`` share their u). After a
clamped scalar (a multiple of the cofactor 8) multiplies it, the value is uniform in the prime-order
subgroup, which is what the DDH argument of ECDH PSI needs (random-oracle model). A single Elligator 2 map
would not do: it reaches about half the points, non-uniformly; RFC 9380's ``_RO_`` suites therefore add
two maps, which costs two field square roots and a point addition (33 CPU-µs per id here, in gmpy2,
against 5-8 µs for this construction, by CPU; X25519 itself costs 30-38 µs). Try-and-increment is uniform by
rejection sampling and needs no square root because X25519 works on u alone. Rejecting a candidate point on
the twist matters: the twist is a different group, and which group a blinded point lies in survives the
blinding, so a peer could test candidate ids against that bit; every hash here lies on the curve.

Timing: the number of candidates (1, 2, rarely more) depends on the id's hash, so this is not constant
time, which is why RFC 9380 does not standardise it. It runs only on the party's own ids, in chunks of
tens of thousands, and a peer observes nothing but when a whole chunk of blinded points arrives (so at most the
total number of candidates tried for the chunk, ~1.33 per id, a number that depends on the ids only through
this job's hash). The secret scalars are only ever
used by constant-time X25519 (libsodium's or OpenSSL's, :mod:`.blinding`).

What it reveals to whom: nothing; this is local computation (no output leaves the party unblinded).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import gmpy2

P = gmpy2.mpz(2**255 - 19)
A = gmpy2.mpz(486662)
POINT_BYTES = 32  # a Montgomery u-coordinate, little-endian
_L = 48  # bytes per field element: ceil((255 + 128) / 8), security level k = 128
SUITE = b"curve25519-u_XOF:SHAKE256_TAI_"  # hash_to_field of RFC 9380, then try-and-increment (x-only)
PROTOCOL = b"FEDRISK-PSI-V4-"
MAX_ROUNDS = 63  # extra rounds of two candidates before giving up (never reached: 4^-64)


class HashToCurveError(ValueError):
    """No candidate of an id was a usable curve point (probability 4^-64 per id)."""


def domain_tag(context: str) -> bytes:
    """The RFC 9380 DST of a job: protocol, suite and a digest of ``context`` (so any length fits in 255 bytes)."""
    return PROTOCOL + SUITE + b"-" + hashlib.sha512(context.encode("utf-8")).hexdigest()[:64].encode("ascii")


def expand_message_xof(msg: bytes, dst: bytes, length: int) -> bytes:
    """RFC 9380 section 5.3.2 with SHAKE256: ``SHAKE256(msg || I2OSP(length, 2) || DST || I2OSP(len(DST), 1))``."""
    if len(dst) > 255 or length > 0xFFFF:
        raise ValueError("expand_message_xof: DST longer than 255 bytes or output too long")
    return hashlib.shake_256(msg + length.to_bytes(2, "big") + dst + bytes([len(dst)])).digest(length)


def hash_to_field(messages: Sequence[bytes], dst: bytes) -> list[tuple[int, int]]:
    """``(u0, u1)`` of every message: expand_message_xof(msg, dst, 96) cut into two 48-byte big-endian integers
    reduced mod p (RFC 9380 section 5.2, count = 2)."""
    p = int(P)
    out: list[tuple[int, int]] = []
    for msg in messages:
        uniform = expand_message_xof(msg, dst, 2 * _L)
        out.append((int.from_bytes(uniform[:_L], "big") % p, int.from_bytes(uniform[_L:], "big") % p))
    return out


def curve_rhs(u: gmpy2.mpz) -> gmpy2.mpz:
    """``g(u) = u^3 + A u^2 + u``: ``u`` is the Montgomery coordinate of a point of Curve25519 iff ``g(u)`` is a
    square mod p (else the point is on the quadratic twist)."""
    return u * (u * (u + A) + 1) % P


def _usable(u: int) -> gmpy2.mpz | None:
    """``u`` as an mpz if it is the coordinate of a curve point of order above 4 (``g(u)`` a non-zero square
    and ``u`` not 0, 1 or -1, the points of order 2 and 4), else None."""
    m = gmpy2.mpz(u)
    if m < 2 or m == P - 1:
        return None
    return m if gmpy2.jacobi(curve_rhs(m), P) == 1 else None


def _first_usable(msg: bytes, dst: bytes) -> gmpy2.mpz:
    """The slow path of :func:`hash_to_u`: rounds 1, 2, ... after both first candidates were off the curve."""
    for round_ in range(1, MAX_ROUNDS + 1):
        for v in hash_to_field([msg], dst + b"-R" + bytes([round_]))[0]:
            u = _usable(v)
            if u is not None:
                return u
    raise HashToCurveError("an id found no curve point in 128 candidates")  # pragma: no cover - 4^-64


def hash_to_u(messages: Sequence[bytes], dst: bytes) -> bytes:
    """The Montgomery u-coordinates (32 bytes little-endian each, concatenated) of the RO hashes of
    ``messages`` under ``dst``: the first usable of the two field elements of :func:`hash_to_field`, and, with
    probability 1/4 per round, two more under ``dst`` extended with the round number.

    The loop inlines :func:`hash_to_field` and :func:`_usable` (one SHAKE256 call, then ``u1`` only when
    ``u0`` fails): it is this module's whole cost, 5-8 CPU-µs per id (by CPU)."""
    if len(dst) > 255:
        raise ValueError("expand_message_xof: DST longer than 255 bytes")
    tail = (2 * _L).to_bytes(2, "big") + dst + bytes([len(dst)])
    shake, jacobi, from_bytes = hashlib.shake_256, gmpy2.jacobi, int.from_bytes
    p, a, top = P, A, P - 1
    out = bytearray(POINT_BYTES * len(messages))
    pos = 0
    for msg in messages:
        uniform = shake(msg + tail).digest(2 * _L)
        u = from_bytes(uniform[:_L], "big") % p
        if not (1 < u < top and jacobi(u * (u * (u + a) + 1) % p, p) == 1):
            u = from_bytes(uniform[_L:], "big") % p
            if not (1 < u < top and jacobi(u * (u * (u + a) + 1) % p, p) == 1):
                u = _first_usable(msg, dst)
        out[pos:pos + POINT_BYTES] = int(u).to_bytes(POINT_BYTES, "little")
        pos += POINT_BYTES
    return bytes(out)


def hash_ids(ids: Sequence[str], context: str) -> bytes:
    """:func:`hash_to_u` of normalised ids (UTF-8) under the job's ``context``."""
    return hash_to_u([i.encode("utf-8") for i in ids], domain_tag(context))
