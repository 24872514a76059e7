"""Enumeration of split candidates of one node, shared by guest, hosts and the plaintext twin.

For each feature, with the node's non-empty bins ``b1 < … < bk`` and ``m`` missing rows:

* ``(f, bi, missing right)`` for ``i < k``: values ``<= cut[bi]`` go left;
* if ``m > 0``: ``(f, bi, missing left)`` for ``i < k`` and ``(f, bk, missing right)`` (present vs missing).

Every candidate sends at least one training row each way. Candidates that induce the same row
partition as an earlier one (possibly with sides swapped) are dropped, detected by 52-bit row-hash
sums; so ties between identical partitions are always broken the same way (lowest feature, bin),
whatever order candidates are later shuffled into.

What it reveals: nothing; a party enumerates its own candidates locally.
"""

from __future__ import annotations

import numpy as np

from algorithms.secureboost.histogram import COUNT, HASH1, HASH2, PlainHistogram

Candidate = tuple[int, int, bool]  # (feature, bin, missing_left)


def enumerate_candidates(hist: PlainHistogram, n_bins: list[int]) -> list[Candidate]:
    cum, miss, tot = hist.cumulative(), hist.missing(), hist.totals
    seen: set[tuple[float, float]] = set()
    out: list[Candidate] = []
    for f, nb in enumerate(n_bins):
        nonempty = np.flatnonzero(hist.sums[COUNT, f, :nb] > 0).tolist()
        options = [(b, False) for b in nonempty[:-1]]
        if miss[COUNT, f] > 0:
            options += [(b, True) for b in nonempty[:-1]]
            if nonempty:
                options.append((nonempty[-1], False))
        for b, missing_left in options:
            left = (cum[HASH1, f, b] + (miss[HASH1, f] if missing_left else 0.0),
                    cum[HASH2, f, b] + (miss[HASH2, f] if missing_left else 0.0))
            right = (tot[HASH1] - left[0], tot[HASH2] - left[1])
            key = min(left, right)
            if key in seen:
                continue
            seen.add(key)
            out.append((f, int(b), missing_left))
    return out
