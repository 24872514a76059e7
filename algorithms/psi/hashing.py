"""Hash ids to Curve25519 as a random oracle: RFC 9380 ``curve25519_XMD:SHA-512_ELL2_RO_``, x-only.

Each normalised id is expanded with ``expand_message_xmd`` (SHA-512) under a domain-separation tag that
binds the protocol version and the job's ``context`` into two field elements ``u0, u1``; each is mapped
to the curve with Elligator 2 and the two points are *added* (``P = map(u0) + map(u1)``). The output is
P's Montgomery u-coordinate, the input X25519 takes.

Why two maps added, not one: a single Elligator 2 map reaches only about half of the curve's points and
its output is distinguishable from uniform, so the security argument of DH-based PSI (which models the
hash as a random oracle into the group) does not apply to it. The sum of two maps of independent field
elements is indifferentiable from a random oracle (Brier et al., CRYPTO 2010; Farashahi et al., Math.
Comp. 2013), which is why RFC 9380 defines its ``_RO_`` suites this way. libsodium has this construction
(``crypto_core_ed25519_from_string_ro``, 1.0.19) but PyNaCl does not bind it, and composing PyNaCl's
``crypto_core_ed25519_from_uniform`` twice plus ``crypto_core_ed25519_add`` costs 63 µs per id here
(each call re-decompresses and re-compresses its points). This module computes the same map with gmpy2
in ~35 µs per id (one exponentiation per Elligator map, batched inversions), and is checked against the
RFC's test vectors (tests/test_psi.py).

Cofactor: RFC 9380 finishes with ``clear_cofactor`` (multiplication by 8). We skip it because every
scalar that ever multiplies these points is an X25519 scalar, which clamping makes a multiple of 8:
``k·(Q + T) = k·Q`` for any small-order ``T``, so the blinded values lie in the prime-order subgroup
and equal ``(k/8)·clear_cofactor(P)``; the hashed point itself never leaves the party.

Timing: the field arithmetic here is not constant-time, but it runs only on the party's own ids, in
chunks of tens of thousands, and a peer observes nothing but when a whole chunk of blinded points
arrives. The secret scalars are only ever used by libsodium's constant-time X25519 (:mod:`.blinding`).

What it reveals to whom: nothing; this is local computation (no output leaves the party unblinded).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import gmpy2

P = gmpy2.mpz(2**255 - 19)
A = gmpy2.mpz(486662)
_E_SQRT = (P + 3) // 8  # candidate square root exponent (p = 5 mod 8)
SQRT_M1 = gmpy2.powmod(2, (P - 1) // 4, P)  # a square root of -1
_ONE_MINUS_I = (1 - SQRT_M1) % P  # (1 - i)^2 = -2i
_ONE_PLUS_I = (1 + SQRT_M1) % P  # (1 + i)^2 = 2i
_L = 48  # bytes per field element: ceil((255 + 128) / 8), security level k = 128
SUITE = b"curve25519_XMD:SHA-512_ELL2_RO_"
PROTOCOL = b"FEDRISK-PSI-V2-"


class HashToCurveError(ValueError):
    """An id hashed to a point X25519 cannot use (probability about 2^-250 per id)."""


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


def _batch_invert(values: list[gmpy2.mpz]) -> list[gmpy2.mpz]:
    """Montgomery's trick: n modular inverses for one inversion and 3(n-1) multiplications (no value is 0)."""
    if not values:
        return []
    prefix = [values[0]]
    for v in values[1:]:
        prefix.append(prefix[-1] * v % P)
    inv = gmpy2.invert(prefix[-1], P)
    out: list[gmpy2.mpz] = [gmpy2.mpz(0)] * len(values)
    for i in range(len(values) - 1, 0, -1):
        out[i] = inv * prefix[i - 1] % P
        inv = inv * values[i] % P
    out[0] = inv
    return out


def _sgn0(x: gmpy2.mpz) -> int:
    return int(x & 1)


def map_to_curve(us: Sequence[int]) -> list[tuple[gmpy2.mpz, gmpy2.mpz]]:
    """Elligator 2 (RFC 9380 section 6.7.1, Z = 2) of each field element: points ``(x, y)`` on
    ``y^2 = x^3 + A x^2 + x``. One exponentiation per element (the non-square branch reuses it, since
    g(x2) = 2u^2 g(x1)), and one batched inversion for all ``1 + 2u^2`` (never 0: -1/2 is not a square)."""
    u_mpz = [gmpy2.mpz(u) for u in us]
    t = [2 * u * u % P for u in u_mpz]
    inv_d = _batch_invert([(1 + v) % P for v in t])
    x1s = [(P - A) * d % P for d in inv_d]  # x1 = -A / (1 + 2u^2), never 0
    gx1s = [x * ((x + A) * x + 1) % P for x in x1s]  # x1^3 + A x1^2 + x1, never 0 (A^2 - 4 is not a square)
    cs = gmpy2.powmod_base_list(gx1s, _E_SQRT, P)
    out: list[tuple[gmpy2.mpz, gmpy2.mpz]] = []
    for u, tu, x1, gx1, c in zip(u_mpz, t, x1s, gx1s, cs, strict=True):
        c2 = c * c % P
        if c2 == gx1 or c2 == P - gx1:  # g(x1) is a square: x = x1, y = sqrt(g(x1)) with sgn0(y) = 1
            y = c if c2 == gx1 else c * SQRT_M1 % P
            x = x1
            if _sgn0(y) != 1:
                y = P - y
        else:  # c^2 = +-i g(x1): x = x2 = 2u^2 x1, y = u c (1 -+ i) = sqrt(2u^2 g(x1)) with sgn0(y) = 0
            y = u * c * (_ONE_MINUS_I if c2 == gx1 * SQRT_M1 % P else _ONE_PLUS_I) % P
            x = tu * x1 % P
            if _sgn0(y) != 0:
                y = P - y
        out.append((x, y))
    return out


def add_x(p1: Sequence[tuple[gmpy2.mpz, gmpy2.mpz]], p2: Sequence[tuple[gmpy2.mpz, gmpy2.mpz]]) -> list[gmpy2.mpz]:
    """The x-coordinate of ``p1[i] + p2[i]`` on the Montgomery curve (affine addition, one batched inversion)."""
    num: list[gmpy2.mpz] = []
    den: list[gmpy2.mpz] = []
    for (x1, y1), (x2, y2) in zip(p1, p2, strict=True):
        if x1 != x2:
            num.append((y2 - y1) % P)
            den.append((x2 - x1) % P)
        elif y1 == y2 and y1 != 0:  # doubling: lambda = (3x^2 + 2Ax + 1) / 2y
            num.append((3 * x1 * x1 + 2 * A * x1 + 1) % P)
            den.append(2 * y1 % P)
        else:  # P + (-P): the identity has no u-coordinate X25519 could use
            raise HashToCurveError("an id hashed to the identity point")
    lam = [n * d % P for n, d in zip(num, _batch_invert(den), strict=True)]
    return [(m * m - A - a[0] - b[0]) % P for m, a, b in zip(lam, p1, p2, strict=True)]


def hash_to_u(messages: Sequence[bytes], dst: bytes) -> bytes:
    """The Montgomery u-coordinates (32 bytes little-endian each, concatenated) of the RO hashes of
    ``messages`` under ``dst``."""
    pairs = hash_to_field(messages, dst)
    q0 = map_to_curve([u0 for u0, _ in pairs])
    q1 = map_to_curve([u1 for _, u1 in pairs])
    return b"".join(int(x).to_bytes(32, "little") for x in add_x(q0, q1))


def hash_ids(ids: Sequence[str], context: str) -> bytes:
    """:func:`hash_to_u` of normalised ids (UTF-8) under the job's ``context``."""
    return hash_to_u([i.encode("utf-8") for i in ids], domain_tag(context))
