"""Weight of evidence and information value from per-bin event / non-event counts.

With events ``e_i`` (label 1, e.g. default) and non-events ``g_i`` in bin ``i`` and totals ``E``, ``G``::

    WOE_i = ln( (e_i / E) / (g_i / G) )          (positive = riskier than average; toad's sign)
    IV_i  = (e_i / E − g_i / G) · WOE_i,  IV = Σ_i IV_i

A bin with no event or no non-event has an infinite WOE; as in FATE (``adjustment_factor = 0.5``) both of
its counts are then replaced by ``count + 0.5`` before the rates are formed (``adjustment``; the totals are
left unchanged). :func:`woe_table` gives the per-bin table the reports and scorecards use.

What it reveals to whom: nothing by itself; it runs where the counts are (the label holder).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_ADJUSTMENT = 0.5


@dataclass(frozen=True)
class WoeTable:
    """Per-bin counts, WOE and IV of one characteristic (bins in the characteristic's own order)."""

    events: np.ndarray
    totals: np.ndarray
    woe: np.ndarray
    iv_bins: np.ndarray

    @property
    def non_events(self) -> np.ndarray:
        return self.totals - self.events

    @property
    def iv(self) -> float:
        return float(self.iv_bins.sum())

    @property
    def event_rate(self) -> np.ndarray:
        return self.events / np.maximum(self.totals, 1)

    def to_dict(self) -> dict[str, Any]:
        return {"events": self.events.astype(np.int64).tolist(), "totals": self.totals.astype(np.int64).tolist(),
                "woe": self.woe.tolist(), "iv_bins": self.iv_bins.tolist(), "iv": self.iv}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> WoeTable:
        return WoeTable(np.asarray(d["events"], dtype=np.float64), np.asarray(d["totals"], dtype=np.float64),
                        np.asarray(d["woe"], dtype=np.float64), np.asarray(d["iv_bins"], dtype=np.float64))


def woe_table(events: np.ndarray, totals: np.ndarray, adjustment: float = DEFAULT_ADJUSTMENT) -> WoeTable:
    """WOE and IV per bin from event counts and bin sizes (see the module docstring)."""
    e = np.asarray(events, dtype=np.float64)
    n = np.asarray(totals, dtype=np.float64)
    if e.shape != n.shape or e.ndim != 1:
        raise ValueError("events and totals must be 1-d arrays of the same length")
    if np.any(e < 0) or np.any(e > n):
        raise ValueError("event counts must lie between 0 and the bin size")
    g = n - e
    big_e, big_g = e.sum(), g.sum()
    if big_e == 0 or big_g == 0:
        raise ValueError("WOE needs both events and non-events among the rows")
    empty = (e == 0) | (g == 0)
    ea = np.where(empty, e + adjustment, e)
    ga = np.where(empty, g + adjustment, g)
    de, dg = ea / big_e, ga / big_g
    woe = np.log(de / dg)
    return WoeTable(e, n, woe, (de - dg) * woe)


def plain_woe(bins: np.ndarray, y: np.ndarray, n_bins: int, adjustment: float = DEFAULT_ADJUSTMENT) -> WoeTable:
    """The plaintext computation on one column of bin indices (the reference the encrypted run must equal)."""
    b = np.asarray(bins, dtype=np.int64)
    y = np.asarray(y, dtype=np.float64)
    return woe_table(np.bincount(b, weights=y, minlength=n_bins), np.bincount(b, minlength=n_bins), adjustment)
