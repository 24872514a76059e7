"""Counters of the expensive Paillier operations performed in this process.

Benchmarks and tests read :data:`OPS` to report how many modular exponentiations (and their cheaper
fixed-base or multi-exponentiation replacements) a protocol run cost.

What it reveals: nothing; counters stay local.
"""

from __future__ import annotations

import threading
from collections import Counter

OPS: Counter[str] = Counter()
_lock = threading.Lock()


def count(kind: str, amount: int = 1) -> None:
    with _lock:
        OPS[kind] += amount


def snapshot() -> dict[str, int]:
    with _lock:
        return dict(OPS)


def reset() -> None:
    with _lock:
        OPS.clear()
