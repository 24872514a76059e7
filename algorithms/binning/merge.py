"""Optimal merging of fine bins on their event counts: monotonic WOE, minimum bin size, at most ``max_bins``.

Input: per fine bin (in the characteristic's order) the event count and the size, missing bin excluded.
Output: merge groups — consecutive index ranges for numeric characteristics, level groups for categorical
ones — that the bin's owner applies with :meth:`algorithms.binning.bins.FeatureBins.merge`.

Numeric characteristics: for each direction (event rate increasing / decreasing with the value) the
pool-adjacent-violators algorithm merges neighbours until the event rates, hence the WOE, are strictly
monotonic; then groups smaller than ``min_rows`` (or holding no event / no non-event) are merged into the
neighbour with the closer event rate, and while there are more than ``max_bins`` groups the adjacent pair
whose merge loses the least IV is merged (merging neighbours keeps the order monotonic). The direction with
the larger IV wins. Categorical characteristics: the levels are first ordered by event rate (so any order is
monotonic) and the same size and count rules apply.

``optbinning`` was considered: it solves the same problem as a MIP/CP over raw ``(x, y)`` and needs
OR-tools; it has no entry point for pre-aggregated counts alone, and the label holder here has nothing
else. This small greedy merge is enough for the tens of fine bins a host proposes.

What it reveals to whom: nothing by itself; it runs at the label holder on decrypted counts, and only the
groups (index ranges) go back to the bin's owner (see :mod:`algorithms.binning.protocol`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from algorithms.binning.woe import woe_table

Groups = list[list[int]]


def _pava(e: np.ndarray, n: np.ndarray, increasing: bool) -> Groups:
    """Blocks of consecutive bins whose pooled event rates are strictly monotonic."""
    blocks: list[tuple[list[int], float, float]] = []
    for i in range(len(e)):
        blocks.append(([i], float(e[i]), float(n[i])))
        while len(blocks) > 1:
            (ga, ea, na), (gb, eb, nb) = blocks[-2], blocks[-1]
            ra, rb = ea / na, eb / nb
            if (increasing and rb > ra) or (not increasing and rb < ra):
                break
            blocks[-2:] = [(ga + gb, ea + eb, na + nb)]
    return [g for g, _, _ in blocks]


def _sums(groups: Groups, e: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.array([e[g].sum() for g in groups]), np.array([n[g].sum() for g in groups])


def _iv(groups: Groups, e: np.ndarray, n: np.ndarray, adjustment: float) -> float:
    ge, gn = _sums(groups, e, n)
    return woe_table(ge, gn, adjustment).iv


def _too_small(groups: Groups, e: np.ndarray, n: np.ndarray, min_rows: int) -> int | None:
    ge, gn = _sums(groups, e, n)
    bad = [j for j in range(len(groups)) if gn[j] < min_rows or ge[j] == 0 or ge[j] == gn[j]]
    return min(bad, key=lambda j: gn[j]) if bad else None


def _merge_at(groups: Groups, j: int) -> Groups:
    """Merge group ``j`` with group ``j + 1``."""
    return [*groups[:j], groups[j] + groups[j + 1], *groups[j + 2:]]


def _constrain(groups: Groups, e: np.ndarray, n: np.ndarray, min_rows: int, max_bins: int,
               adjustment: float) -> Groups:
    while len(groups) > 1:
        j = _too_small(groups, e, n, min_rows)
        if j is None:
            break
        ge, gn = _sums(groups, e, n)
        rate = ge / gn
        if j == 0:
            groups = _merge_at(groups, 0)
        elif j == len(groups) - 1:
            groups = _merge_at(groups, j - 1)
        else:
            left = abs(rate[j] - rate[j - 1]) <= abs(rate[j + 1] - rate[j])
            groups = _merge_at(groups, j - 1 if left else j)
    while len(groups) > max(max_bins, 1):
        best = max(range(len(groups) - 1), key=lambda k: _iv(_merge_at(groups, k), e, n, adjustment))
        groups = _merge_at(groups, best)
    return groups


def optimal_groups(events: Sequence[float], totals: Sequence[float], categorical: bool = False,
                   min_rows: int = 50, max_bins: int = 8, monotonic: bool = True,
                   adjustment: float = 0.5) -> Groups:
    """Merge groups of the fine bins (see the module docstring)."""
    e = np.asarray(events, dtype=np.float64)
    n = np.asarray(totals, dtype=np.float64)
    if len(e) == 0:
        return []
    if np.any(n <= 0):
        raise ValueError("every fine bin must hold at least one row")
    if categorical:
        order = [int(i) for i in np.argsort(e / n, kind="stable")]
        local = _constrain([[i] for i in range(len(e))], e[order], n[order], min_rows, max_bins, adjustment)
        return [sorted(order[i] for i in g) for g in local]
    if not monotonic:
        return _constrain([[i] for i in range(len(e))], e, n, min_rows, max_bins, adjustment)
    candidates = [_constrain(_pava(e, n, inc), e, n, min_rows, max_bins, adjustment) for inc in (True, False)]
    return max(candidates, key=lambda g: (_iv(g, e, n, adjustment) if len(g) > 1 else -1.0))
