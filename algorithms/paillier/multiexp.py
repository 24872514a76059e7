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
Several such columns (e.g. categorical features and the intercept) are grouped *jointly* where that pays
(:func:`plan_units`): one multiplication per row into the cell of its tuple of values, then each column
merges the cells holding the same value — one pass over the rows for the whole set instead of one per
column. On an executor the units are shared out by estimated cost.
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
from algorithms.paillier.parallel import Packed, chunk_slices, parallel_map, remote, unpacked, workers
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
    return _fold_groups(groups, nsq)


def _fold_groups(groups: dict[int, mpz], nsq: mpz) -> mpz:
    """Π R_v^v over positive values v: running product in descending order raised to the gaps."""
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


def _joint_product(ciphertexts: list[mpz], exponents: np.ndarray, nsq: mpz) -> list[mpz]:
    """``Π_i c_i^{E_ij}`` for every column of ``exponents``, grouping the rows by their joint values.

    One multiplication per row into the cell of its value tuple, then per column the cells holding the
    same value are multiplied into that value's group (cells − distinct values), and the groups folded as
    in :func:`_distinct_power` (negative values separately, one inverse).
    """
    nonzero = np.flatnonzero(np.any(exponents != 0, axis=1))
    if nonzero.size == 0:
        return [mpz(1)] * exponents.shape[1]
    keys, inverse = np.unique(exponents[nonzero], axis=0, return_inverse=True)
    cells: list[mpz | None] = [None] * len(keys)
    for r, cell in zip(nonzero.tolist(), inverse.ravel().tolist(), strict=True):
        x, c = cells[cell], ciphertexts[r]
        cells[cell] = c if x is None else x * c % nsq
    out = []
    for column in keys.T.tolist():
        pos: dict[int, mpz] = {}
        neg: dict[int, mpz] = {}
        for value, product in zip(column, cells, strict=True):
            if value:
                side, key = (pos, value) if value > 0 else (neg, -value)
                g = side.get(key)
                side[key] = product if g is None else g * product % nsq  # type: ignore[operator]
        result = _fold_groups(pos, nsq)
        if neg:
            result = result * gmpy2.invert(_fold_groups(neg, nsq), nsq) % nsq
        out.append(result)
    return out


def _bucket_cost(magnitudes: np.ndarray, window: int) -> float:
    """Modular multiplications of :func:`_bucket_power`: non-zero digits, folds up to the top digit, squarings."""
    top = int(magnitudes.max()).bit_length()
    cost = 0.0
    for pos in range(-(-top // window)):
        digits = (magnitudes >> (pos * window)) & ((1 << window) - 1)
        cost += np.count_nonzero(digits) + 2 * int(digits.max()) + window
    return cost


def _distinct(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values (``np.unique`` without its overhead, for short integer arrays)."""
    ordered = np.sort(values)
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))] if ordered.size else ordered


def _grouped_cost(magnitudes: np.ndarray) -> float:
    """Modular multiplications of :func:`_distinct_power` (a gap's powmod costs about its bit length + 20 %)."""
    distinct = _distinct(magnitudes)
    gaps = np.diff(distinct, prepend=0).astype(np.float64)
    return magnitudes.size + 2 * distinct.size + float(np.sum(np.ceil(np.log2(gaps + 1)))) * 1.2


def _plan_cost(magnitudes: np.ndarray, window: int | None) -> tuple[int, float]:
    """(plan, its multiplications): plan 0 = group by value, else the bucket width (``window`` if given)."""
    if magnitudes.size == 0:
        return window or BUCKET_BITS, 0.0
    if window is not None:
        widths = [window]
    else:  # exact digit counts only near the width the size model prefers, and for a single digit
        top, size = int(magnitudes.max()).bit_length(), int(magnitudes.size)
        guess = min(range(2, 10), key=lambda w: -(-top // w) * (size + (2 << w)))
        widths = sorted({w for w in range(guess - 2, guess + 3) if 2 <= w <= 9} | {min(max(top, 2), 9)})
    costs = {w: _bucket_cost(magnitudes, w) for w in widths}
    best = min(costs, key=costs.__getitem__)
    grouped = _grouped_cost(magnitudes)
    return (0, grouped) if grouped < costs[best] else (best, costs[best])


def _plan(magnitudes: np.ndarray, window: int | None) -> int:
    """0 = group by value, else the bucket width to use (``window`` if given, else the cheapest)."""
    return _plan_cost(magnitudes, window)[0]


def _grouping_pays(magnitudes: np.ndarray, window: int) -> bool:
    return _plan(magnitudes, window) == 0


def _power_product(pairs: list[tuple[mpz, int]], magnitudes: np.ndarray, nsq: mpz, window: int | None,
                   plan: int | None = None) -> mpz:
    plan = _plan(magnitudes, window) if plan is None else plan
    if plan == 0:
        return _distinct_power(pairs, nsq)
    return _bucket_power(pairs, nsq, plan)


def _column_plan(column: np.ndarray, window: int | None) -> tuple[tuple[int, int], float]:
    """Plans for the positive and the negative entries of one column, and their multiplications."""
    pos, pos_cost = _plan_cost(column[column > 0], window)
    neg, neg_cost = _plan_cost(-column[column < 0], window)
    return (pos, neg), pos_cost + neg_cost


def _fold_cost(column: np.ndarray) -> float:
    """Multiplications of folding one column's value groups (:func:`_grouped_cost` less the grouping)."""
    return sum(_grouped_cost(m) - m.size for m in (column[column > 0], -column[column < 0]) if m.size)


@dataclass
class _Unit:
    """Columns grouped jointly: their cost estimate and, for the planner, each row's joint-value key."""

    columns: list[int]
    cost: float
    key: np.ndarray | None = None  # int64 mixed-radix key of the row's values in these columns
    radix: int = 1
    all_zero: np.ndarray | None = None  # rows whose values are all zero here (never multiplied)


class _JointCounter:
    """Distinct joint values of column sets over the rows, from per-column value ids (int64 keys, no row sorts)."""

    def __init__(self, values: np.ndarray, columns: list[int], folds: dict[int, float]) -> None:
        self.ids: dict[int, np.ndarray] = {}
        self.distinct: dict[int, int] = {}
        self.zero: dict[int, np.ndarray] = {}
        self.folds = folds
        for j in columns:
            uniques, inverse = np.unique(values[:, j], return_inverse=True)
            self.ids[j], self.distinct[j] = inverse.astype(np.int64).ravel(), len(uniques)
            self.zero[j] = values[:, j] == 0

    def start(self, j: int, cost: float) -> _Unit:
        return _Unit([j], cost, self.ids[j], self.distinct[j], self.zero[j])

    def extend(self, unit: _Unit, j: int) -> _Unit:
        """``unit`` with column ``j`` added and the joint cost: rows + (cells − distinct) + fold per column."""
        key, radix = unit.key, unit.radix
        assert key is not None and unit.all_zero is not None
        if radix * self.distinct[j] >= 1 << 62:  # re-densify before the mixed radix overflows
            key = np.unique(key, return_inverse=True)[1].astype(np.int64).ravel()
            radix = int(key.max()) + 1
        key = key * self.distinct[j] + self.ids[j]
        all_zero = unit.all_zero & self.zero[j]
        live = key[~all_zero]
        cells = int(_distinct(live).size)
        columns = [*unit.columns, j]
        cost = live.size + sum(max(cells - self.distinct[c], 0) + self.folds[c] for c in columns)
        return _Unit(columns, float(cost), key, radix * self.distinct[j], all_zero)


def plan_units(values: np.ndarray, window: int | None = None) -> list[list[int]]:
    """Partition the columns into units evaluated together: a column with few distinct values joins the
    unit whose joint grouping (:func:`_joint_product`) saves the most multiplications, if any; every
    other column is a unit of its own. Returns the units (lists of column indices), costliest first."""
    return [cols for cols, _ in _plan_units(values, window)[0]]


def _plan_units(values: np.ndarray, window: int | None
                ) -> tuple[list[tuple[list[int], float]], dict[int, tuple[int, int]]]:
    """The units with their estimated multiplications, and every column's own plans (positive, negative)."""
    n_rows, n_cols = values.shape
    plans = {j: _column_plan(values[:, j], window) for j in range(n_cols)}
    single = {j: cost for j, (_, cost) in plans.items()}
    few = [j for j in range(n_cols) if _few_distinct(values[:, j], max(n_rows // 8, 1))]
    candidates = sorted(few, key=lambda j: _distinct(values[:, j]).size)
    counter = _JointCounter(values, candidates, {j: _fold_cost(values[:, j]) for j in candidates})
    grouped: list[_Unit] = []
    for j in candidates:
        best: _Unit | None = None
        saving, at = 0.0, -1
        for u, unit in enumerate(grouped):
            joint = counter.extend(unit, j)
            if unit.cost + single[j] - joint.cost > saving:
                best, saving, at = joint, unit.cost + single[j] - joint.cost, u
        if best is None:
            grouped.append(counter.start(j, single[j]))
        else:
            grouped[at] = best
    units = [(unit.columns, unit.cost) for unit in grouped]
    units += [([j], single[j]) for j in range(n_cols) if j not in counter.ids]
    return sorted(units, key=lambda u: -u[1]), {j: plan for j, (plan, _) in plans.items()}


def _few_distinct(column: np.ndarray, limit: int) -> bool:
    return _distinct(column).size <= limit


def _columns_product(nsq_int: int, packed: list[mpz] | Packed, exponents: np.ndarray, window: int | None,
                     units: list[list[int]] | None = None, plans: list[tuple[int, int]] | None = None
                     ) -> list[mpz]:
    """One product per column of ``exponents``; ``units`` (local column indices) are evaluated jointly,
    ``plans`` (per local column: positive and negative entries) spare recomputing the cost model."""
    gmpy2.get_context().allow_release_gil = True
    nsq = mpz(nsq_int)
    ciphertexts = unpacked(packed) if isinstance(packed, Packed) else packed
    out: list[mpz | None] = [None] * exponents.shape[1]
    for cols in units or [[j] for j in range(exponents.shape[1])]:
        if len(cols) > 1:
            for j, result in zip(cols, _joint_product(ciphertexts, exponents[:, cols], nsq), strict=True):
                out[j] = result
            continue
        j = cols[0]
        column = exponents[:, j]
        col = column.tolist()
        pos = [(c, e) for c, e in zip(ciphertexts, col, strict=True) if e > 0]
        neg = [(c, -e) for c, e in zip(ciphertexts, col, strict=True) if e < 0]
        plan = plans[j] if plans is not None else (None, None)
        result = _power_product(pos, column[column > 0], nsq, window, plan[0])
        if neg:
            result = result * gmpy2.invert(_power_product(neg, -column[column < 0], nsq, window, plan[1]), nsq) % nsq
        out[j] = result
    return out  # type: ignore[return-value]


def _share_units(units: list[list[int]], costs: list[float], parts: int) -> list[list[list[int]]]:
    """Units spread over ``parts`` workers, costliest first onto the least loaded (LPT)."""
    loads = [0.0] * parts
    shares: list[list[list[int]]] = [[] for _ in range(parts)]
    for cols, cost in sorted(zip(units, costs, strict=True), key=lambda u: -u[1]):
        k = loads.index(min(loads))
        shares[k].append(cols)
        loads[k] += cost
    return [s for s in shares if s]


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
    width = (int(nsq.bit_length()) + 7) // 8
    executor = executor if n_rows * n_cols >= _MIN_PARALLEL_TERMS else None
    planned, plans = _plan_units(matrix.values, window) if n_rows else ([], {})
    units = [cols for cols, _ in planned] or None
    if executor is not None and n_cols >= workers(executor) and units is not None:
        shares = _share_units(units, [cost for _, cost in planned], workers(executor))
        order = [[j for cols in share for j in cols] for share in shares]
        calls = []
        cts = Packed.of(vector.ciphertexts, width) if remote(executor, len(shares)) else vector.ciphertexts
        for share, cols in zip(shares, order, strict=True):
            local = {j: i for i, j in enumerate(cols)}
            calls.append((int(nsq), cts, matrix.values[:, cols], window,
                          [[local[j] for j in unit] for unit in share], [plans[j] for j in cols]))
        results: list[mpz | None] = [None] * n_cols
        for cols, part in zip(order, parallel_map(_columns_product, calls, executor), strict=True):
            for j, c in zip(cols, part, strict=True):
                results[j] = c
        return CiphertextVector(vector.public_key, results,  # type: ignore[arg-type]
                                vector.frac_bits + matrix.frac_bits, bound)
    parts = chunk_slices(n_rows, workers(executor), min_chunk=64)
    if len(parts) == 1:
        partial = _columns_product(int(nsq), vector.ciphertexts, matrix.values, window, units,
                                   [plans[j] for j in range(n_cols)] if plans else None)
        return CiphertextVector(vector.public_key, partial, vector.frac_bits + matrix.frac_bits, bound)
    calls = [(int(nsq), Packed.of(vector.ciphertexts[s], width), matrix.values[s], window) for s in parts]
    partials = parallel_map(_columns_product, calls, executor)
    result = partials[0]
    for other in partials[1:]:
        result = [a * b % nsq for a, b in zip(result, other, strict=True)]
    return CiphertextVector(vector.public_key, result, vector.frac_bits + matrix.frac_bits, bound)


def _powmod_chunk(nsq_int: int, packed: list[mpz] | Packed, exponents: list[int], pack: bool = False
                  ) -> list[mpz] | Packed:
    """``c_i^{e_i} mod n²`` for non-negative exponents (module level: runs in the pool's workers)."""
    gmpy2.get_context().allow_release_gil = True
    nsq = mpz(nsq_int)
    out = [gmpy2.powmod(c, e, nsq) for c, e in zip(unpacked(packed), exponents, strict=True)]
    return Packed.of(out, (int(nsq.bit_length()) + 7) // 8) if pack else out


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
    if remote(pool, len(parts)):
        width = (int(nsq.bit_length()) + 7) // 8
        calls = [(int(nsq), Packed.of(cts[s], width), exps[s], True) for s in parts]
    else:
        calls = [(int(nsq), cts[s], exps[s]) for s in parts]
    pieces = parallel_map(_powmod_chunk, calls, pool)
    return CiphertextVector(vector.public_key, [c for piece in pieces for c in unpacked(piece)],
                            vector.frac_bits + frac_bits, bound)
