"""Shamir t-of-n secret sharing of 32-byte secrets over the prime field GF(2^521 − 1).

A secret ``s`` (an integer < 2^256) is the constant term of a random polynomial of degree ``t − 1`` with
coefficients drawn by :func:`secrets.randbelow`; share ``i`` is ``(i, f(i))`` for the evaluation points
``1..n``. Any ``t`` shares give ``s`` by Lagrange interpolation at 0; any ``t − 1`` shares are uniformly
distributed and independent of ``s`` (information-theoretic). The field is the Mersenne prime
``2^521 − 1``, so a 256-bit seed fits without splitting.

Why our own (≈40 lines) and not pycryptodome's ``Crypto.Protocol.SecretSharing.Shamir``: that one shares
16-byte secrets over GF(2^128), so every 32-byte X25519 key or mask seed would have to be split in two and
shared twice, and it would add a dependency for one function.

What it reveals to whom: a single share (or any ``t − 1``) reveals nothing about the secret; ``t`` shares
reveal it. Who gets which share is decided by :mod:`algorithms.secagg.protocol`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping

PRIME = (1 << 521) - 1
SECRET_BYTES = 32
SHARE_BYTES = 66  # ceil(521 / 8)


class ShamirError(ValueError):
    """Too few or inconsistent shares, or parameters out of range."""


def split(secret: bytes, threshold: int, points: list[int]) -> dict[int, bytes]:
    """Shares ``{x: f(x)}`` of ``secret`` for each evaluation point ``x`` (distinct, in ``1..PRIME-1``)."""
    if len(secret) != SECRET_BYTES:
        raise ShamirError(f"a secret has {SECRET_BYTES} bytes, got {len(secret)}")
    if not 1 <= threshold <= len(points):
        raise ShamirError(f"threshold {threshold} for {len(points)} shares")
    if len(set(points)) != len(points) or any(not 0 < x < PRIME for x in points):
        raise ShamirError("evaluation points must be distinct and non-zero")
    coefficients = [int.from_bytes(secret, "big")] + [secrets.randbelow(PRIME) for _ in range(threshold - 1)]
    shares = {}
    for x in points:
        y = 0
        for c in reversed(coefficients):  # Horner
            y = (y * x + c) % PRIME
        shares[x] = y.to_bytes(SHARE_BYTES, "big")
    return shares


def combine(shares: Mapping[int, bytes], threshold: int) -> bytes:
    """The secret from at least ``threshold`` shares (the first ``threshold`` by point are used)."""
    if len(shares) < threshold:
        raise ShamirError(f"{len(shares)} shares, {threshold} needed")
    points = sorted(shares)[:threshold]
    ys = {x: int.from_bytes(shares[x], "big") for x in points}
    if any(y >= PRIME for y in ys.values()):
        raise ShamirError("a share is not a field element")
    secret = 0
    for xi in points:
        num, den = 1, 1
        for xj in points:
            if xj != xi:
                num = num * xj % PRIME
                den = den * (xj - xi) % PRIME
        secret = (secret + ys[xi] * num * pow(den, -1, PRIME)) % PRIME
    if secret >= 1 << (8 * SECRET_BYTES):
        raise ShamirError("the shares do not combine to a valid secret (corrupted or mixed shares)")
    return secret.to_bytes(SECRET_BYTES, "big")
