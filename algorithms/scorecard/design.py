"""Design matrices of the scorecard's logistic regression, built by each party from its own bins.

* the bank codes its characteristics by their WOE (one column each, the WOE of the row's bin);
* a host codes its characteristics as bin indicators (one column per bin except a reference bin, the most
  populated one), so no WOE value ever has to reach it.

What it reveals to whom: nothing; each party codes its own rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from algorithms.binning.bins import CharacteristicBins


def woe_design(B: np.ndarray, woes: Sequence[np.ndarray]) -> np.ndarray:
    """Column ``j`` = ``woes[j][B[:, j]]``."""
    if B.shape[1] != len(woes):
        raise ValueError(f"{B.shape[1]} binned columns but {len(woes)} WOE tables")
    if not woes:
        return np.zeros((B.shape[0], 0))
    return np.column_stack([np.asarray(w, dtype=np.float64)[B[:, j]] for j, w in enumerate(woes)])


def reference_bins(bins: CharacteristicBins, B: np.ndarray) -> list[int]:
    """The most populated bin of every characteristic (its indicator is left out)."""
    return [int(np.argmax(np.bincount(B[:, j], minlength=f.n_bins))) for j, f in enumerate(bins.features)]


def indicator_columns(bins: CharacteristicBins, reference: Sequence[int]) -> list[tuple[int, int, str]]:
    """``(characteristic, bin, column name)`` of every indicator column."""
    return [(j, b, f"{f.name}[{label}]") for j, f in enumerate(bins.features)
            for b, label in enumerate(f.labels()) if b != reference[j]]


def indicator_design(B: np.ndarray, columns: Sequence[tuple[int, int, str]]) -> np.ndarray:
    if not columns:
        return np.zeros((B.shape[0], 0))
    return np.column_stack([(B[:, j] == b).astype(np.float64) for j, b, _ in columns])


def indicator_theta(bins: CharacteristicBins, columns: Sequence[tuple[int, int, str]], weights: np.ndarray
                    ) -> list[np.ndarray]:
    """Per characteristic, the coefficient of each bin (0 at its reference bin)."""
    theta = [np.zeros(f.n_bins) for f in bins.features]
    for (j, b, _), w in zip(columns, np.asarray(weights, dtype=np.float64), strict=True):
        theta[j][b] = w
    return theta
