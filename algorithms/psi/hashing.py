"""Hash ids to Curve25519 as a random oracle, x-only: RFC 9380 ``hash_to_field`` + try-and-increment.

Each normalised id is expanded with RFC 9380's ``expand_message_xmd`` (SHA-512) under a domain-separation
tag that binds the protocol version and the job's ``context`` into two field elements ``u0, u1`` (48 bytes
each reduced mod p: statistically uniform, bias 2^-128). The hash is the first of them that is the
Montgomery u-coordinate of a point of Curve25519 (``u^3 + A u^2 + u`` a non-zero square, one Jacobi symbol;
u = 0, ±1, the points of order 2 and 4, excluded); if neither is (probability 1/4), two more are drawn
under the tag extended with the round number, and so on. This is the input X25519 takes.

Why this is a random oracle into the group: a uniform field element conditioned on being a curve
coordinate is uniform over the curve's coordinates, so the hash is uniform over the points of the curve
up to sign, and x-only Diffie-Hellman never sees the sign (``k·P`` and ``k·(-P)`` share their u). After a
clamped scalar (a multiple of the cofactor 8) multiplies it, the value is uniform in the prime-order
subgroup, which is what the DDH argument of ECDH PSI needs (random-oracle model). A single Elligator 2 map
would not do: it reaches about half the points, non-uniformly; RFC 9380's ``_RO_`` suites therefore add
two maps, which costs two field square roots and a point addition (33 CPU-µs per id here, in gmpy2,
against 6.5 µs for this construction; X25519 itself costs ~32 µs). Try-and-increment is uniform by
rejection sampling and needs no square root because X25519 works on u alone. Rejecting a candidate point on
the twist matters: the twist is a different group, and which group a blinded point lies in survives the
blinding, so a peer could test candidate ids against that bit; every hash here lies on the curve.

Timing: the number of candidates (1, 2, rarely more) depends on the id's hash, so this is not constant
time, which is why RFC 9380 does not standardise it. It runs only on the party's own ids, in chunks of
tens of thousands, and a peer observes nothing but when a whole chunk of blinded points arrives (so at most the
total number of candidates tried for the chunk, ~1.33 per id, a number that depends on the ids only through
this job's hash). The secret scalars are only ever
used by libsodium's constant-time X25519 (:mod:`.blinding`).

What it reveals to whom: nothing; this is local computation (no output leaves the party unblinded).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import gmpy2

P = gmpy2.mpz(2**255 - 19)
A = gmpy2.mpz(486662)
_L = 48  # bytes per field element: ceil((255 + 128) / 8), security level k = 128
SUITE = b"curve25519-u_XMD:SHA-512_TAI_"  # hash_to_field of RFC 9380, then try-and-increment (x-only)
PROTOCOL = b"FEDRISK-PSI-V3-"
MAX_ROUNDS = 63  # extra rounds of two candidates before giving up (never reached: 4^-64)


class HashToCurveError(ValueError):
    """No candidate of an id was a usable curve point (probability 4^-64 per id)."""


def domain_tag(context: str) -> bytes:
    """The RFC 9380 DST of a job: protocol, suite and a digest of ``context`` (so any length fits in 255 bytes)."""
    return PROTOCOL + SUITE + b"-" + hashlib.sha512(context.encode("utf-8")).hexdigest()[:64].encode("ascii")


def expand_message_xmd(msg: bytes, dst: bytes, length: int) -> bytes:
    """RFC 9380 section 5.3.1 with SHA-512 (one message; :func:`hash_to_field` inlines it for speed)."""
    if len(dst) > 255 or length > 255 * 64:
        raise ValueError("expand_message_xmd: DST longer than 255 bytes or output too long")
    dst_prime = dst + bytes([len(dst)])
    b0 = hashlib.sha512(bytes(128) + msg + length.to_bytes(2, "big") + b"\x00" + dst_prime).digest()
    blocks = [hashlib.sha512(b0 + b"\x01" + dst_prime).digest()]
    while 64 * len(blocks) < length:
        mixed = bytes(x ^ y for x, y in zip(b0, blocks[-1], strict=True))
        blocks.append(hashlib.sha512(mixed + bytes([len(blocks) + 1]) + dst_prime).digest())
    return b"".join(blocks)[:length]


def hash_to_field(messages: Sequence[bytes], dst: bytes) -> list[tuple[int, int]]:
    """``(u0, u1)`` of every message: expand_message_xmd(msg, dst, 96) cut into two 48-byte big-endian integers
    reduced mod p (RFC 9380 section 5.2, count = 2)."""
    dst_prime = dst + bytes([len(dst)])
    tail = (2 * _L).to_bytes(2, "big") + b"\x00" + dst_prime
    head = hashlib.sha512(bytes(128))
    one, two = b"\x01" + dst_prime, b"\x02" + dst_prime
    p = int(P)
    out: list[tuple[int, int]] = []
    for msg in messages:
        h = head.copy()
        h.update(msg + tail)
        b0 = h.digest()
        b1 = hashlib.sha512(b0 + one).digest()
        mixed = (int.from_bytes(b0, "little") ^ int.from_bytes(b1, "little")).to_bytes(64, "little")
        b2 = hashlib.sha512(mixed + two).digest()
        uniform = b1 + b2
        out.append((int.from_bytes(uniform[:_L], "big") % p, int.from_bytes(uniform[_L:2 * _L], "big") % p))
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


def hash_to_u(messages: Sequence[bytes], dst: bytes) -> bytes:
    """The Montgomery u-coordinates (32 bytes little-endian each, concatenated) of the RO hashes of
    ``messages`` under ``dst``: the first usable of the two field elements of :func:`hash_to_field`, and, with
    probability 1/4 per round, two more under ``dst`` extended with the round number."""
    out = bytearray()
    for msg, (u0, u1) in zip(messages, hash_to_field(messages, dst), strict=True):
        u = _usable(u0)
        if u is None:
            u = _usable(u1)
        round_ = 1
        while u is None:
            if round_ > MAX_ROUNDS:  # pragma: no cover - probability 4^-64
                raise HashToCurveError("an id found no curve point in 128 candidates")
            v0, v1 = hash_to_field([msg], dst + b"-R" + bytes([round_]))[0]
            u = _usable(v0)
            if u is None:
                u = _usable(v1)
            round_ += 1
        out += int(u).to_bytes(32, "little")
    return bytes(out)


def hash_ids(ids: Sequence[str], context: str) -> bytes:
    """:func:`hash_to_u` of normalised ids (UTF-8) under the job's ``context``."""
    return hash_to_u([i.encode("utf-8") for i in ids], domain_tag(context))
