"""Fixed-point quantisation of clipped real vectors into the ring Z_{2^k} used by secure aggregation.

A client's update ``x`` (already clipped by the caller, or clipped here) is mapped coordinate-wise to an
integer in ``[0, 2^b - 1]`` with ``b = k - ceil(log2(n_max))`` bits, so that the sum of up to ``n_max``
clients' integers never wraps modulo ``2^k``::

    clip:      x_i ← min(max(x_i, -c), c)                           (c = ``clip``)
    encode:    q_i = round((x_i + c) · s),  s = (2^b - 1) / (2c)    (deterministic rounding to nearest)
    sum:       Q_i = Σ_u q_{u,i}  mod 2^k   (exact: Σ ≤ n_max (2^b - 1) < 2^k)
    decode:    Σ_u x_{u,i} ≈ Q_i / s - m · c                        (m = number of summed clients)

Error bound (stated and tested): each client's coordinate is off by at most ``1/(2s) = c / (2 (2^b - 1))``
(rounding), so a decoded sum of ``m`` clients is within ``m · c / (2 (2^b - 1))`` of the sum of the
clipped inputs, per coordinate. With ``k = 32``, 10 clients and ``c = 1`` that is ≤ 4.7e-8 per client.
Values outside ``[-c, c]`` are clipped (the caller chooses ``c`` from its clipping norm; an L2 clip at
``C`` implies every coordinate is in ``[-C, C]``).

What it reveals to whom: nothing by itself; the quantised vector is masked before it leaves the client
(see :mod:`algorithms.secagg.protocol`). The parameters (``k``, ``c``, ``n_max``) are public.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAX_BITS = 48


class QuantisationError(ValueError):
    """A vector that cannot be quantised (NaN/inf), or parameters out of range."""


@dataclass(frozen=True)
class Quantiser:
    """Maps real vectors in ``[-clip, clip]^d`` to ``Z_{2^bits}`` and sums of up to ``max_clients`` back."""

    clip: float
    max_clients: int
    bits: int = 32

    def __post_init__(self) -> None:
        if not (8 <= self.bits <= MAX_BITS):  # above 48 bits float64 could no longer decode sums exactly
            raise QuantisationError(f"bits must be in [8, {MAX_BITS}], got {self.bits}")
        if not (math.isfinite(self.clip) and self.clip > 0):
            raise QuantisationError(f"clip must be a positive finite number, got {self.clip}")
        if self.max_clients < 1:
            raise QuantisationError(f"max_clients must be >= 1, got {self.max_clients}")
        if self.value_bits < 2:
            raise QuantisationError(f"{self.bits} bits leave no room for {self.max_clients} clients")

    @property
    def modulus(self) -> int:
        return 1 << self.bits

    @property
    def mask(self) -> np.uint64:
        return np.uint64(self.modulus - 1)

    @property
    def value_bits(self) -> int:
        """Bits per client value: ``bits - ceil(log2(max_clients))`` (the sum of all clients cannot wrap)."""
        return self.bits - max(0, math.ceil(math.log2(self.max_clients)))

    @property
    def scale(self) -> float:
        return ((1 << self.value_bits) - 1) / (2.0 * self.clip)

    @property
    def wire_dtype(self) -> np.dtype:
        """The smallest unsigned dtype holding a ring element (what masked vectors are sent as)."""
        for dtype in (np.uint8, np.uint16, np.uint32):
            if self.bits <= np.iinfo(dtype).bits:
                return np.dtype(dtype)
        return np.dtype(np.uint64)

    def error_bound(self, n_summed: int = 1) -> float:
        """Largest per-coordinate difference between a decoded sum of ``n_summed`` clients and the true sum
        of their clipped inputs."""
        return n_summed * 0.5 / self.scale

    def encode(self, x: np.ndarray) -> np.ndarray:
        """``x`` clipped to ``[-clip, clip]`` as ring elements (uint64 holding values < 2^value_bits)."""
        x = np.asarray(x, dtype=np.float64).ravel()
        if not np.all(np.isfinite(x)):
            bad = int(np.flatnonzero(~np.isfinite(x))[0])
            raise QuantisationError(f"cannot quantise a non-finite value (coordinate {bad} is {x[bad]})")
        q = np.rint((np.clip(x, -self.clip, self.clip) + self.clip) * self.scale)
        return np.minimum(q, (1 << self.value_bits) - 1).astype(np.uint64)

    def decode_sum(self, total: np.ndarray, n_summed: int) -> np.ndarray:
        """The real sum of ``n_summed`` clients' vectors from their ring sum (each < 2^value_bits)."""
        if not (1 <= n_summed <= self.max_clients):
            raise QuantisationError(f"a sum of {n_summed} clients, but the range was set for {self.max_clients}")
        total = np.asarray(total, dtype=np.uint64) & self.mask
        return total.astype(np.float64) / self.scale - n_summed * self.clip
