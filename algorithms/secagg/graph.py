"""The SecAgg+ communication graph: who masks with and holds shares for whom.

Bonawitz et al.'s SecAgg uses the complete graph (every pair of clients shares a mask, every client holds
a share of every other's secrets): O(n) work and messages per client. Bell et al.'s SecAgg+ replaces it by
a sparse graph of degree O(log n), which keeps the sum private as long as no neighbourhood is mostly
corrupt or dropped. Here:

* ``n <= complete_max`` (default 16, every cross-silo federation in practice): the complete graph;
* larger: a circulant graph (each client linked to the ``degree/2`` clients on either side) over a
  pseudo-random ordering of the clients, ``degree`` the even number ``>= 3·log2(n)``. The ordering is
  ``SHA-256(context ‖ party id)``, so every client computes the same graph itself from the public job
  context: the aggregator cannot hand different clients different neighbourhoods.

A client's shareholders are its neighbours plus itself; its threshold is ``ceil(fraction · (degree + 1))``
(at least 2).

What it reveals to whom: nothing; the graph is a public function of the context and the client ids.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

DEFAULT_COMPLETE_MAX = 16


def default_degree(n: int) -> int:
    """The SecAgg+ degree for ``n`` clients: the even number >= 3·log2(n), at most n − 1 (then: complete)."""
    k = math.ceil(3 * math.log2(max(n, 2)))
    return min(n - 1, k + (k % 2))


def neighbourhoods(clients: Sequence[str], context: bytes, complete_max: int = DEFAULT_COMPLETE_MAX,
                   degree: int | None = None) -> dict[str, frozenset[str]]:
    """Each client's neighbours (itself excluded); symmetric."""
    ids = sorted(set(clients))
    n = len(ids)
    if n != len(clients):
        raise ValueError("duplicate client ids")
    k = default_degree(n) if degree is None else degree
    if n <= complete_max or k >= n - 1:  # small federations, or a degree that reaches everyone
        return {c: frozenset(ids) - {c} for c in ids}
    if k < 2 or k % 2:
        raise ValueError(f"the neighbourhood degree must be even and in [2, {n - 1}], got {k}")
    order = sorted(ids, key=lambda c: hashlib.sha256(context + b"|" + c.encode()).digest())
    out: dict[str, set[str]] = {c: set() for c in ids}
    for i, c in enumerate(order):
        for j in range(1, k // 2 + 1):
            other = order[(i + j) % n]
            out[c].add(other)
            out[other].add(c)
    return {c: frozenset(v) for c, v in out.items()}


def threshold(neighbours: int, fraction: float) -> int:
    """Shares needed to rebuild a secret shared among ``neighbours`` + 1 holders."""
    return min(neighbours + 1, max(2, math.ceil(fraction * (neighbours + 1))))
