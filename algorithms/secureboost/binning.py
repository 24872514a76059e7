"""Quantile binning of one party's features (done locally; bins never leave the party).

Cut points are the distinct values when a column has at most ``max_bin`` of them, otherwise the
``k/max_bin`` quantiles (``method="lower"``, so cuts are data values). Bin ``b`` holds
``cuts[b-1] < x <= cuts[b]``, hence "bin <= b" is exactly "x <= cuts[b]"; NaN gets bin -1 (missing).

What it reveals: nothing; cut points stay with their owner (a host's thresholds live only in its
private split lookup table).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALL_LEFT = float(np.finfo(np.float64).max)  # threshold of "every non-missing value goes left"


@dataclass(frozen=True)
class FeatureBins:
    cuts: tuple[np.ndarray, ...]

    @staticmethod
    def fit(X: np.ndarray, max_bin: int) -> FeatureBins:
        cuts = []
        for j in range(X.shape[1]):
            col = X[:, j]
            col = col[~np.isnan(col)]
            uniq = np.unique(col)
            if uniq.size <= max_bin:
                c = uniq[:-1]
            else:
                q = np.quantile(col, np.arange(1, max_bin) / max_bin, method="lower")
                c = np.unique(q)
                c = c[c < uniq[-1]]
            cuts.append(np.asarray(c, dtype=np.float64))
        return FeatureBins(tuple(cuts))

    @property
    def n_bins(self) -> list[int]:
        return [len(c) + 1 for c in self.cuts]

    @property
    def max_bins(self) -> int:
        return max(self.n_bins, default=1)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Bin index per value (int16), -1 for NaN."""
        out = np.empty(X.shape, dtype=np.int16)
        for j, c in enumerate(self.cuts):
            col = X[:, j]
            b = np.searchsorted(c, col, side="left").astype(np.int16)
            b[np.isnan(col)] = -1
            out[:, j] = b
        return out

    def threshold(self, feature: int, bin_index: int) -> float:
        """Raw-value threshold of "bin <= bin_index" (values <= threshold go left)."""
        c = self.cuts[feature]
        return float(c[bin_index]) if bin_index < len(c) else ALL_LEFT
