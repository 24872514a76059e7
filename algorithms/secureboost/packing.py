"""Fixed-point packing of a row's (g, h) into one Paillier plaintext, and cipher compression of sums.

Per row the guest encrypts ONE plaintext

    m = G << (h_bits + count_bits)  |  H << count_bits  |  1
    G = round((g + 1) · 2^P)  (g = p − y ∈ (−1, 1) shifted non-negative),   H = round(h · 2^P)  (h ≤ ¼)

so that a homomorphic product of row ciphertexts (a histogram bin) decrypts to the three sums
(Σ G, Σ H, row count) side by side. The slot widths are sized for the sum over all ``n_rows`` training
rows (``g_bits = bitlen(n·2^(P+1))``, ``h_bits = bitlen(n·2^(P−2))``, ``count_bits = bitlen(n)``), so
no sum the protocol can form overflows into the next slot; :meth:`PackingLayout.plan` refuses a data
set for which even one such triple would not fit the key (:class:`PackingOverflowError`).

A host then compresses ``slots = ⌊(|n| − 2) / width⌋`` bin sums into one ciphertext by Horner's rule on
ciphertexts, ``acc ← acc^(2^width) · c`` (shift-and-add under encryption), cutting the guest's
decryptions by that factor. The packed value stays below ``2^(|n|−2) < n/2``.

The true gradient sum of a set is recovered exactly as ``(ΣG − count·2^P) / 2^P``.

What it reveals: nothing by itself (local arithmetic); the layout (bit widths) is public.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import gmpy2
import numpy as np
from gmpy2 import mpz

G_OFFSET = 1.0  # logistic loss: g = p − y ∈ (−1, 1)
HI_BITS = 27    # exact plaintext sums: integers < 2^53 are split into 26/27-bit halves


class PackingOverflowError(ValueError):
    """The packed (g, h) sums of this many rows could not be held by the Paillier plaintext space."""


SplitSums = tuple[int, int, int]  # (Σ G, Σ H, count) of the rows going left, in fixed point


@dataclass(frozen=True)
class PackingLayout:
    n_rows: int
    precision_bits: int
    key_bits: int
    g_bits: int
    h_bits: int
    count_bits: int
    slots: int

    @staticmethod
    def plan(n_rows: int, precision_bits: int, key_bits: int) -> PackingLayout:
        """Bit widths for sums over up to ``n_rows`` rows; raises :class:`PackingOverflowError` if impossible."""
        if n_rows < 1:
            raise ValueError("need at least one training row")
        scale = 1 << precision_bits
        g_bits = (n_rows * 2 * scale).bit_length()
        h_bits = (n_rows * (scale >> 2)).bit_length()
        count_bits = n_rows.bit_length()
        width = g_bits + h_bits + count_bits
        usable = key_bits - 2
        if width > usable:
            raise PackingOverflowError(
                f"{n_rows} rows at 2^-{precision_bits} precision need {width} plaintext bits per packed "
                f"(g, h, count) sum but a {key_bits}-bit Paillier key holds {usable}: refusing a data set this large "
                "(lower precision_bits or use a larger key)")
        return PackingLayout(n_rows, precision_bits, key_bits, g_bits, h_bits, count_bits, usable // width)

    @property
    def width(self) -> int:
        return self.g_bits + self.h_bits + self.count_bits

    @property
    def row_bound(self) -> int:
        """Upper bound of one row's packed plaintext."""
        return (1 << self.width) - 1

    @property
    def packed_bound(self) -> int:
        """Upper bound of a compressed ciphertext's plaintext."""
        return (1 << (self.slots * self.width)) - 1

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    # --------------------------------------------------------------- encoding
    def quantise(self, g: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fixed-point ``G = round((g+1)·2^P)``, ``H = round(h·2^P)`` as int64 (exact, < 2^53)."""
        g = np.asarray(g, dtype=np.float64)
        h = np.asarray(h, dtype=np.float64)
        if not (np.all(np.isfinite(g)) and np.all(np.isfinite(h))):
            raise ValueError("gradients or hessians are not finite")
        if g.min(initial=0.0) < -G_OFFSET or g.max(initial=0.0) > G_OFFSET or h.min(initial=0.0) < 0 \
                or h.max(initial=0.0) > 0.25:
            raise ValueError("logistic gradients must lie in [-1, 1] and hessians in [0, 1/4]")
        g_int = np.rint(np.ldexp(g + G_OFFSET, self.precision_bits)).astype(np.int64)
        h_int = np.rint(np.ldexp(h, self.precision_bits)).astype(np.int64)
        return g_int, h_int

    def encode_rows(self, g_int: np.ndarray, h_int: np.ndarray) -> list[int]:
        """One packed plaintext per row."""
        if len(g_int) > self.n_rows:
            raise PackingOverflowError(f"{len(g_int)} rows exceed the {self.n_rows} this layout was sized for")
        gs, hs = self.h_bits + self.count_bits, self.count_bits
        return [(a << gs) | (b << hs) | 1 for a, b in zip(g_int.tolist(), h_int.tolist(), strict=True)]

    def unpack(self, values: list[int], total: int) -> list[SplitSums]:
        """Split decrypted compressed plaintexts back into ``total`` (ΣG, ΣH, count) triples, in order."""
        expected = -(-total // self.slots) if total else 0
        if len(values) != expected:
            raise ValueError(f"expected {expected} packed ciphertexts for {total} sums, got {len(values)}")
        mask = (1 << self.width) - 1
        hmask, cmask = (1 << self.h_bits) - 1, (1 << self.count_bits) - 1
        gs, hs = self.h_bits + self.count_bits, self.count_bits
        out: list[SplitSums] = []
        for i, v in enumerate(values):
            if int(v) >> (self.slots * self.width):
                raise ValueError("a packed plaintext exceeds its layout (corrupt or overflowed)")
            k = min(self.slots, total - i * self.slots)
            for j in range(k):
                s = (int(v) >> ((k - 1 - j) * self.width)) & mask
                out.append((s >> gs, (s >> hs) & hmask, s & cmask))
        return out

    def to_stats(self, sums: SplitSums) -> tuple[float, float]:
        """True (Σg, Σh) of a triple, exactly rounded to float."""
        g_sum, h_sum, count = sums
        scale = 1 << self.precision_bits
        return (g_sum - count * scale) / scale, h_sum / scale


def compress(nsquare: int, width: int, groups: list[list[mpz]]) -> list[mpz]:
    """Worker: Horner-pack each group of ciphertexts, first element in the highest slot."""
    gmpy2.get_context().allow_release_gil = True
    nsq = mpz(nsquare)
    shift = mpz(1) << width
    out = []
    for group in groups:
        acc = group[0]
        for c in group[1:]:
            acc = gmpy2.powmod(acc, shift, nsq) * c % nsq
        out.append(acc)
    return out
