"""IV-based selection of characteristics across every party of a vertical job.

The bank holds the IV of every characteristic (its own by name, a host's under the host's anonymous token
unless the host shares its names), keeps those whose IV reaches ``threshold`` and, with ``top_k > 0``, only
the ``top_k`` largest among them across all parties (ties broken by party and key, so the choice is
deterministic).

What it reveals to whom: it runs at the bank on what the bank already holds; each host is told which of
its own tokens were kept (see :mod:`algorithms.binning.protocol`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    party: str
    key: str
    iv: float


def select(candidates: Sequence[Candidate], threshold: float = 0.0, top_k: int = 0) -> set[tuple[str, str]]:
    """``(party, key)`` of the kept characteristics."""
    passing = [c for c in candidates if c.iv >= threshold]
    passing.sort(key=lambda c: (-c.iv, c.party, c.key))
    if top_k > 0:
        passing = passing[:top_k]
    return {(c.party, c.key) for c in passing}
