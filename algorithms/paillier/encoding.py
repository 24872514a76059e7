"""Fixed-point encoding of real numbers as signed integers for Paillier plaintexts.

A value ``x`` is carried as the integer ``round(x * 2**frac_bits)``; negative integers live in the
upper half of ``Z_n``. Every ciphertext vector records its ``frac_bits`` and an analytic ``bound`` on
the magnitude of its plaintext integers, so homomorphic sums are checked for overflow *before* they
are computed (see :class:`EncodingOverflowError`). NaN and infinity are refused.

What it reveals: nothing; this is local arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


class EncodingOverflowError(OverflowError):
    """A value or a homomorphic result would not fit the signed plaintext range of the key."""


class NonFiniteValueError(ValueError):
    """NaN or infinity where a finite number is required."""


def check_finite(values: np.ndarray, what: str = "values") -> None:
    """Raise :class:`NonFiniteValueError` naming the first offending position."""
    arr = np.asarray(values, dtype=float)
    bad = ~np.isfinite(arr)
    if bad.any():
        pos = tuple(int(i) for i in np.argwhere(bad)[0])
        raise NonFiniteValueError(f"{what} contain NaN or infinity (first at position {pos})")


def encode(values: np.ndarray | Sequence[float], frac_bits: int) -> tuple[list[int], int]:
    """Encode reals as signed integers at ``2**frac_bits``; returns the integers and their max magnitude."""
    arr = np.asarray(values, dtype=float).ravel()
    check_finite(arr)
    with np.errstate(over="ignore"):
        scaled = np.rint(np.ldexp(arr, frac_bits))
    if not np.isfinite(scaled).all():
        pos = int(np.argmax(~np.isfinite(scaled)))
        raise EncodingOverflowError(f"value {arr[pos]!r} at position {pos} does not fit fixed point at 2^{frac_bits}")
    ints = [int(v) for v in scaled.tolist()]
    bound = max((abs(v) for v in ints), default=0)
    return ints, bound


def decode(ints: Iterable[int], frac_bits: int) -> np.ndarray:
    """Turn signed fixed-point integers back into floats (exact rounding for big integers)."""
    scale = 1 << frac_bits if frac_bits >= 0 else None
    if scale is None:
        return np.array([float(v * (1 << -frac_bits)) for v in ints], dtype=float)
    return np.array([v / scale for v in ints], dtype=float)


def to_residue(value: int, n: int) -> int:
    """Signed integer → element of ``Z_n`` (negative values wrap to the upper half)."""
    return value % n


def from_residue(residue: int, n: int) -> int:
    """Element of ``Z_n`` → signed integer in ``(-n/2, n/2)``."""
    residue = int(residue)
    return residue - n if residue > n // 2 else residue


def check_bound(bound: int, max_signed: int, operation: str) -> None:
    """Raise unless a plaintext of magnitude ``bound`` fits the signed range."""
    if bound > max_signed:
        raise EncodingOverflowError(
            f"{operation} could reach |plaintext| = 2^{bound.bit_length()} but the key only holds "
            f"2^{max_signed.bit_length()}: refusing instead of wrapping around"
        )
