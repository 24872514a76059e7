"""Per-(node, feature, bin) histograms: exact plaintext ones and encrypted ones on raw ciphertexts.

* :class:`PlainHistogram` sums integer channels (fixed-point G and H split into 27-bit halves, row
  counts, row hashes) with ``numpy.bincount``; every partial sum stays below 2^53, so float64 sums
  are exact integers. The guest uses it on its own features, hosts use it for bin counts, and the
  plaintext twin uses it in place of encryption, which is why the twin is bit-identical.
* :class:`EncryptedHistogram` holds one ciphertext per (feature, bin): the product (= plaintext sum)
  of the packed (g, h) ciphertexts of the node's rows in that bin, built with raw ``a·b mod n²`` in
  worker processes (rows split across processes, partial histograms multiplied), two features at a
  time through a joint (bin, bin) table, which almost halves the multiplications. A sibling is
  ``parent · smaller⁻¹`` (histogram subtraction); cumulative sums are running products.

What it reveals: nothing; histograms are local. Encrypted ones are only ever sent packed and
re-randomised (see :mod:`algorithms.secureboost.host`).
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass

import gmpy2
import numpy as np
from gmpy2 import mpz

from algorithms.paillier import opcount, parallel_map
from algorithms.paillier.parallel import chunk_slices, workers
from algorithms.secureboost.packing import HI_BITS, SplitSums

# channel layout of plaintext histograms
COUNT, HASH1, HASH2, G_HI, G_LO, H_HI, H_LO = range(7)
SHAPE_CHANNELS = 3
ROW_HASH_BITS = 26


def row_hashes(n: int, seed: int = 0x5B005) -> np.ndarray:
    """Two random 26-bit integers per row (float64, exact); sums over a row set identify it w.h.p."""
    return np.random.default_rng(seed).integers(0, 1 << ROW_HASH_BITS, size=(n, 2)).astype(np.float64)


def shape_channels(n: int) -> np.ndarray:
    """Count and hash channels of ``n`` rows (what a host may compute in clear)."""
    return np.column_stack([np.ones(n), row_hashes(n)])


def gradient_channels(g_int: np.ndarray, h_int: np.ndarray) -> np.ndarray:
    lo = (1 << HI_BITS) - 1
    return np.column_stack([g_int >> HI_BITS, g_int & lo, h_int >> HI_BITS, h_int & lo]).astype(np.float64)


@dataclass
class PlainHistogram:
    """``sums[channel, feature, bin]`` over non-missing values and ``totals[channel]`` over all rows."""

    sums: np.ndarray
    totals: np.ndarray

    @staticmethod
    def build(bins: np.ndarray, values: np.ndarray, n_bins: int) -> PlainHistogram:
        rows, n_features = bins.shape
        keys = bins.astype(np.int64) + np.arange(n_features, dtype=np.int64) * n_bins
        valid = bins >= 0
        flat = keys[valid]
        row_of = np.broadcast_to(np.arange(rows)[:, None], bins.shape)[valid]
        sums = np.stack([np.bincount(flat, weights=values[row_of, c], minlength=n_features * n_bins)
                         for c in range(values.shape[1])]).reshape(values.shape[1], n_features, n_bins)
        return PlainHistogram(sums, values.sum(axis=0))

    def __sub__(self, other: PlainHistogram) -> PlainHistogram:
        return PlainHistogram(self.sums - other.sums, self.totals - other.totals)

    def cumulative(self) -> np.ndarray:
        return np.cumsum(self.sums, axis=2)

    def missing(self) -> np.ndarray:
        """``[channel, feature]`` sums over the rows whose value is missing."""
        return self.totals[:, None] - self.sums.sum(axis=2)

    def left_sums(self, candidates: list[tuple[int, int, bool]]) -> list[SplitSums]:
        """Exact (ΣG, ΣH, count) of the rows sent left by each candidate (gradient channels needed)."""
        cum, miss = self.cumulative(), self.missing()
        out = []
        for f, b, missing_left in candidates:
            v = cum[:, f, b] + (miss[:, f] if missing_left else 0.0)
            out.append(((int(v[G_HI]) << HI_BITS) + int(v[G_LO]), (int(v[H_HI]) << HI_BITS) + int(v[H_LO]),
                        int(v[COUNT])))
        return out

    def total_sums(self) -> SplitSums:
        t = self.totals
        return ((int(t[G_HI]) << HI_BITS) + int(t[G_LO]), (int(t[H_HI]) << HI_BITS) + int(t[H_LO]), int(t[COUNT]))


# ---------------------------------------------------------------- encrypted

def accumulate_pairs(nsquare: int, ciphertexts: list[mpz], joint: np.ndarray, n_bins: int, n_features: int,
                     with_total: bool) -> tuple[list[mpz | None], mpz | None, int]:
    """Worker: two features at a time. Each row's ciphertext is multiplied into ONE joint (bin_a, bin_b)
    cell of its feature pair (index 0 = missing); the per-feature bins are then products of the joint
    cells of a row / column. Cost ``rows·⌈F/2⌉ + 2·(non-empty joint cells)`` instead of ``rows·F``.
    Returns the flat ``feature·n_bins + bin`` cells, the node total (if asked) and the mulmod count."""
    nsq = mpz(nsquare)
    side = n_bins + 1
    block = side * side
    n_pairs = joint.shape[1]
    table: list[mpz | None] = [None] * (n_pairs * block)
    ops = 0
    for c, row in zip(ciphertexts, joint.tolist(), strict=True):
        for k in row:
            acc = table[k]
            if acc is None:
                table[k] = c
            else:
                table[k] = acc * c % nsq
                ops += 1
    cells: list[mpz | None] = [None] * (n_features * n_bins)
    for p in range(n_pairs):
        a, b = 2 * p, 2 * p + 1
        for i in range(side):
            base = p * block + i * side
            for j in range(side):
                v = table[base + j]
                if v is None:
                    continue
                if i > 0:
                    k = a * n_bins + i - 1
                    cells[k] = v if cells[k] is None else cells[k] * v % nsq
                    ops += 1
                if j > 0 and b < n_features:
                    k = b * n_bins + j - 1
                    cells[k] = v if cells[k] is None else cells[k] * v % nsq
                    ops += 1
    total = None
    if with_total:
        for v in table[:block]:
            if v is not None:
                total = v if total is None else total * v % nsq
                ops += 1
    return cells, total, ops


def joint_keys(bins: np.ndarray, n_bins: int) -> np.ndarray:
    """Joint (pair) cell index of every row for each feature pair (an odd last feature pairs with 'missing')."""
    rows, n_features = bins.shape
    n_pairs = (n_features + 1) // 2
    side = n_bins + 1
    padded = np.full((rows, 2 * n_pairs), -1, dtype=np.int32)
    padded[:, :n_features] = bins
    first, second = padded[:, 0::2] + 1, padded[:, 1::2] + 1
    return (first * side + second + np.arange(n_pairs, dtype=np.int32) * side * side).astype(np.int32)


def _mul(a: mpz | None, b: mpz | None, nsq: mpz) -> mpz | None:
    if a is None:
        return b
    if b is None:
        return a
    return a * b % nsq


def _div(a: mpz | None, b: mpz | None, nsq: mpz) -> mpz | None:
    if b is None:
        return a
    if a is None:
        raise ValueError("histogram subtraction: child bin has rows its parent lacks")
    return a * gmpy2.invert(b, nsq) % nsq


@dataclass
class EncryptedHistogram:
    """One ciphertext (or ``None`` = no rows) per (feature, bin), flat ``feature·n_bins + bin``."""

    cells: list[mpz | None]
    n_bins: int
    total: mpz | None = None

    def subtract(self, child: EncryptedHistogram, nsq: mpz) -> EncryptedHistogram:
        """``self − child`` (the sibling of ``child`` when ``self`` is their parent)."""
        opcount.count("sbt_histogram_inversion", sum(c is not None for c in child.cells))
        cells = [_div(a, b, nsq) for a, b in zip(self.cells, child.cells, strict=True)]
        total = None
        if self.total is not None and child.total is not None:
            total = _div(self.total, child.total, nsq)
        return EncryptedHistogram(cells, self.n_bins, total)

    def left_sums(self, candidates: list[tuple[int, int, bool]], nsq: mpz) -> list[mpz]:
        """Ciphertext of the left-going rows' packed sums for each candidate."""
        cum: dict[int, list[mpz | None]] = {}
        missing: dict[int, mpz | None] = {}
        out = []
        for f, b, missing_left in candidates:
            if f not in cum:
                run, acc = [], None
                for cell in self.cells[f * self.n_bins:(f + 1) * self.n_bins]:
                    acc = _mul(acc, cell, nsq)
                    run.append(acc)
                cum[f] = run
            left = cum[f][b]
            if missing_left:
                if f not in missing:
                    if self.total is None:
                        raise ValueError("node total needed for a missing-left candidate")
                    missing[f] = _div(self.total, cum[f][-1], nsq)
                left = _mul(left, missing[f], nsq)
            if left is None:
                raise ValueError("candidate with no rows on the left")
            out.append(left)
        return out


def encrypted_histograms(ciphertexts: list[mpz], nsquare: mpz, bins: np.ndarray, n_bins: int,
                         nodes: dict[int, np.ndarray], need_total: set[int], executor: Executor | None,
                         min_chunk: int = 1024) -> dict[int, EncryptedHistogram]:
    """Histograms of several nodes (``nodes[node]`` = positions into ``ciphertexts``/``bins``), split over processes."""
    n_features = bins.shape[1]
    calls, owners = [], []
    for node, idx in nodes.items():
        keys = joint_keys(bins[idx], n_bins)
        for part in chunk_slices(len(idx), workers(executor), min_chunk):
            calls.append((int(nsquare), [ciphertexts[i] for i in idx[part]], keys[part], n_bins, n_features,
                          node in need_total))
            owners.append(node)
    results = parallel_map(accumulate_pairs, calls, executor)
    out: dict[int, EncryptedHistogram] = {}
    for node, (cells, total, ops) in zip(owners, results, strict=True):
        opcount.count("sbt_histogram_mulmod", ops)
        if node not in out:
            out[node] = EncryptedHistogram(cells, n_bins, total)
        else:
            h = out[node]
            h.cells = [_mul(a, b, nsquare) for a, b in zip(h.cells, cells, strict=True)]
            h.total = _mul(h.total, total, nsquare)
    return out


def encrypted_total(ciphertexts: list[mpz], idx: np.ndarray, nsquare: mpz) -> mpz | None:
    total = None
    for i in idx:
        total = _mul(total, ciphertexts[int(i)], nsquare)
    return total
