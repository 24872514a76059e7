"""Plaintext × ciphertext products: matrix products by bucket multi-exponentiation, elementwise products.

For a quantised plaintext matrix ``Q`` (integers, ``n_rows × n_cols``) and ciphertexts ``[[d_i]]`` the
product ``[[Σ_i Q_ij · d_i]] = Π_i [[d_i]]^{Q_ij}`` is computed per column with Pippenger's bucket
method: the exponents are cut into ``w``-bit digits; per digit position every ciphertext is multiplied
into the bucket of its digit (one modular multiplication), and the buckets are folded with a running
product (``2·2^w`` multiplications). For 16-bit exponents and ``w = 8`` that is about two modular
multiplications per term instead of one full ``powmod`` with a float exponent as in ``phe``.
Negative exponents are handled with one modular inverse per column. A column with few distinct values
(categorical or integer-coded features, the intercept's ones) is instead grouped by value: one
multiplication per term into its value's group, then the groups are folded in descending value order
with a running product raised to the gaps between consecutive values (``Π_j R_j^{v_j − v_{j+1}}``, a
short C-level ``powmod`` each); each column takes whichever of the two the cost model says is cheaper.
:func:`elementwise_product` scales
each ciphertext by its own integer (one ``powmod`` per element, spread over an executor).

What it reveals: nothing; the result is a ciphertext under the same key.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass

import gmpy2
import numpy as np
from gmpy2 import mpz

from algorithms.paillier import opcount
from algorithms.paillier.encoding import check_bound, check_finite
from algorithms.paillier.parallel import chunk_slices, parallel_map, workers
from algorithms.paillier.vector import CiphertextVector

BUCKET_BITS = 8
_MIN_PARALLEL_TERMS = 1024  # below this the pickling costs more than it spares the caller's thread
_MIN_PARALLEL_ROWS = 256


@dataclass(frozen=True)
class QuantisedMatrix:
    """Integer matrix ``values`` standing for ``values / 2**frac_bits``."""

    values: np.ndarray  # int64, shape (n_rows, n_cols)
    frac_bits: int

    @staticmethod
    def from_float(x: np.ndarray, bits: int = 16) -> QuantisedMatrix:
        """Quantise so the largest magnitude uses at most ``bits`` bits (sign excluded)."""
        x = np.asarray(x, dtype=float)
        if x.ndim == 1:
            x = x[:, None]
        check_finite(x, "features")
        peak = float(np.max(np.abs(x))) if x.size else 0.0
        frac_bits = bits - 1 - (int(np.ceil(np.log2(peak))) if peak > 0 else 0)
        return QuantisedMatrix(np.rint(np.ldexp(x, frac_bits)).astype(np.int64), frac_bits)

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape  # type: ignore[return-value]

    def take(self, rows: np.ndarray) -> QuantisedMatrix:
        return QuantisedMatrix(self.values[rows], self.frac_bits)

    def to_float(self) -> np.ndarray:
        return np.ldexp(self.values.astype(float), -self.frac_bits)


def _bucket_power(pairs: list[tuple[mpz, int]], nsq: mpz, window: int) -> mpz:
    """Π c^e over (c, e) with e > 0, by the bucket method."""
    if not pairs:
        return mpz(1)
    top = max(e for _, e in pairs).bit_length()
    mask, size = (1 << window) - 1, 1 << window
    acc: mpz | None = None
    for pos in range((top + window - 1) // window - 1, -1, -1):
        if acc is not None:
            acc = gmpy2.powmod(acc, size, nsq)
        shift = pos * window
        buckets: list[mpz | None] = [None] * size
        for c, e in pairs:
            d = (e >> shift) & mask
            if d:
                b = buckets[d]
                buckets[d] = c if b is None else b * c % nsq
        running: mpz | None = None
        total: mpz | None = None
        for d in range(size - 1, 0, -1):
            b = buckets[d]
            if b is not None:
                running = b if running is None else running * b % nsq
            if running is not None:
                total = running if total is None else total * running % nsq
        if total is not None:
            acc = total if acc is None else acc * total % nsq
    return mpz(1) if acc is None else acc


def _distinct_power(pairs: list[tuple[mpz, int]], nsq: mpz) -> mpz:
    """Π c^e over (c, e) with e > 0, grouping equal exponents (cheap when few values are distinct)."""
    groups: dict[int, mpz] = {}
    for c, e in pairs:
        g = groups.get(e)
        groups[e] = c if g is None else g * c % nsq
    values = sorted(groups, reverse=True)
    running: mpz | None = None
    total: mpz | None = None
    for i, v in enumerate(values):
        b = groups[v]
        running = b if running is None else running * b % nsq
        gap = v - (values[i + 1] if i + 1 < len(values) else 0)
        term = running if gap == 1 else gmpy2.powmod(running, gap, nsq)
        total = term if total is None else total * term % nsq
    return mpz(1) if total is None else total


def _bucket_cost(magnitudes: np.ndarray, window: int) -> float:
    """Modular multiplications of :func:`_bucket_power`: non-zero digits, folds up to the top digit, squarings."""
    top = int(magnitudes.max()).bit_length()
    cost = 0.0
    for pos in range(-(-top // window)):
        digits = (magnitudes >> (pos * window)) & ((1 << window) - 1)
        cost += np.count_nonzero(digits) + 2 * int(digits.max()) + window
    return cost


def _grouped_cost(magnitudes: np.ndarray) -> float:
    """Modular multiplications of :func:`_distinct_power` (a gap's powmod costs about its bit length + 20 %)."""
    distinct = np.unique(magnitudes)
    gaps = np.diff(distinct, prepend=0).astype(np.float64)
    return magnitudes.size + 2 * distinct.size + float(np.sum(np.ceil(np.log2(gaps + 1)))) * 1.2


def _plan(magnitudes: np.ndarray, window: int | None) -> int:
    """0 = group by value, else the bucket width to use (``window`` if given, else the cheapest)."""
    if magnitudes.size == 0:
        return window or BUCKET_BITS
    widths = [window] if window is not None else list(range(2, 10))
    costs = {w: _bucket_cost(magnitudes, w) for w in widths}
    best = min(costs, key=costs.__getitem__)
    return 0 if _grouped_cost(magnitudes) < costs[best] else best


def _grouping_pays(magnitudes: np.ndarray, window: int) -> bool:
    return _plan(magnitudes, window) == 0


def _power_product(pairs: list[tuple[mpz, int]], magnitudes: np.ndarray, nsq: mpz, window: int | None) -> mpz:
    plan = _plan(magnitudes, window)
    if plan == 0:
        return _distinct_power(pairs, nsq)
    return _bucket_power(pairs, nsq, plan)


def _columns_product(nsq_int: int, ciphertexts: list[mpz], exponents: np.ndarray, window: int | None
                     ) -> list[mpz]:
    gmpy2.get_context().allow_release_gil = True
    nsq = mpz(nsq_int)
    out = []
    for j in range(exponents.shape[1]):
        column = exponents[:, j]
        col = column.tolist()
        pos = [(c, e) for c, e in zip(ciphertexts, col, strict=True) if e > 0]
        neg = [(c, -e) for c, e in zip(ciphertexts, col, strict=True) if e < 0]
        result = _power_product(pos, column[column > 0], nsq, window)
        if neg:
            result = result * gmpy2.invert(_power_product(neg, -column[column < 0], nsq, window), nsq) % nsq
        out.append(result)
    return out


def best_window(rows: int, exponent_bits: int) -> int:
    """Bucket width minimising ``⌈bits/w⌉·(rows + 2^(w+1))`` modular multiplications per column."""
    return min(range(2, 9), key=lambda w: -(-max(exponent_bits, 1) // w) * (rows + (2 << w)))


def matmul_transpose(vector: CiphertextVector, matrix: QuantisedMatrix, executor: Executor | None = None,
                     window: int | None = None) -> CiphertextVector:
    """``[[Qᵀ d]]``: one ciphertext per column of ``matrix`` (rows aligned with ``vector``).

    On an executor the columns are shared out among the workers (every worker sees all rows, so each
    column pays its bucket fold once); a matrix with fewer columns than workers is split by rows instead
    and the partial products are multiplied. ``window``: the bucket width, ``None`` = the cheapest for
    each column by a cost model over its actual digits (or grouping by value where that is cheaper).
    """
    n_rows, n_cols = matrix.shape
    if n_rows != len(vector):
        raise ValueError(f"matrix has {n_rows} rows but the vector {len(vector)} ciphertexts")
    if vector.bound is None:
        raise ValueError("cannot multiply a masked vector")
    col_l1 = int(np.max(np.abs(matrix.values).sum(axis=0))) if n_rows else 0
    bound = vector.bound * col_l1
    check_bound(bound, vector.public_key.max_signed, "plaintext-matrix product")
    opcount.count("multiexp_term", n_rows * n_cols)
    nsq = vector.public_key.nsquare
    executor = executor if n_rows * n_cols >= _MIN_PARALLEL_TERMS else None
    if executor is not None and n_cols >= workers(executor):
        groups = chunk_slices(n_cols, workers(executor))
        calls = [(int(nsq), vector.ciphertexts, matrix.values[:, g], window) for g in groups]
        columns = parallel_map(_columns_product, calls, executor)
        return CiphertextVector(vector.public_key, [c for part in columns for c in part],
                                vector.frac_bits + matrix.frac_bits, bound)
    parts = chunk_slices(n_rows, workers(executor), min_chunk=64)
    calls = [(int(nsq), vector.ciphertexts[s], matrix.values[s], window) for s in parts]
    partials = parallel_map(_columns_product, calls, executor)
    result = partials[0]
    for other in partials[1:]:
        result = [a * b % nsq for a, b in zip(result, other, strict=True)]
    return CiphertextVector(vector.public_key, result, vector.frac_bits + matrix.frac_bits, bound)


def _powmod_chunk(nsq_int: int, ciphertexts: list[mpz], exponents: list[int]) -> list[mpz]:
    """``c_i^{e_i} mod n²`` for non-negative exponents (module level: runs in the pool's workers)."""
    gmpy2.get_context().allow_release_gil = True
    nsq = mpz(nsq_int)
    return [gmpy2.powmod(c, e, nsq) for c, e in zip(ciphertexts, exponents, strict=True)]


def elementwise_product(vector: CiphertextVector, factors: np.ndarray, frac_bits: int,
                        executor: Executor | None = None) -> CiphertextVector:
    """``[[f_i·v_i]]`` for signed integers ``factors`` standing for ``factors / 2**frac_bits``.

    One ``powmod`` per element (negative factors: one inverse more), over ``executor`` in chunks. The
    result is at scale ``vector.frac_bits + frac_bits``. It is NOT re-randomised (a factor of 1 returns the
    very ciphertext, 0 the trivial encryption ``1``): re-randomise before sending it to anyone, in
    particular to whoever encrypted ``vector``.
    """
    ints = [int(f) for f in np.asarray(factors).ravel().tolist()]
    if len(ints) != len(vector):
        raise ValueError(f"{len(ints)} factors for {len(vector)} ciphertexts")
    if vector.bound is None:
        raise ValueError("cannot multiply a masked vector")
    bound = vector.bound * max((abs(f) for f in ints), default=0)
    check_bound(bound, vector.public_key.max_signed, "elementwise product")
    opcount.count("elementwise_powmod", len(ints))
    nsq = vector.public_key.nsquare
    cts = [c if f >= 0 else gmpy2.invert(c, nsq) for c, f in zip(vector.ciphertexts, ints, strict=True)]
    exps = [abs(f) for f in ints]
    pool = executor if len(ints) >= _MIN_PARALLEL_ROWS else None
    # a few chunks per worker, so the pool interleaves them with other parties' tasks
    parts = chunk_slices(len(ints), 4 * workers(pool), min_chunk=64)
    pieces = parallel_map(_powmod_chunk, [(int(nsq), cts[s], exps[s]) for s in parts], pool)
    return CiphertextVector(vector.public_key, [c for piece in pieces for c in piece],
                            vector.frac_bits + frac_bits, bound)
