"""Out-of-time validation statistics: characteristic stability (CSI) and bootstrap confidence intervals.

* :func:`characteristic_stability` — per column, the population stability index of a new sample against
  the training sample (:func:`algorithms.metrics.population_stability_index`, training deciles as bins), i.e. the CSI of
  each characteristic. Each party computes it on its own columns.
* :func:`bootstrap_intervals` — percentile bootstrap confidence intervals of AUC and KS: ``resamples``
  samples of the rows drawn with replacement (seeded), the statistic on each, the ``(1−level)/2`` and
  ``(1+level)/2`` quantiles. AUC is computed from ranks (Mann–Whitney, ties averaged) and KS as the largest
  gap of the cumulative bad and good shares over distinct scores, both exactly as scikit-learn's.

What it reveals to whom: nothing by itself; it runs where the data is (CSI at each party on its own columns,
intervals at the label holder) and returns aggregates only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata

from algorithms.metrics import population_stability_index


def characteristic_stability(X_train: np.ndarray, X_new: np.ndarray, names: Sequence[str], n_bins: int = 10
                             ) -> dict[str, float]:
    """CSI of every column of ``X_new`` against ``X_train`` (same columns, same order)."""
    X_train, X_new = np.asarray(X_train, dtype=np.float64), np.asarray(X_new, dtype=np.float64)
    if X_train.shape[1] != X_new.shape[1] or X_train.shape[1] != len(names):
        raise ValueError(f"stability needs the same {len(names)} columns in both samples")
    out = {}
    for j, name in enumerate(names):
        a, b = X_train[:, j], X_new[:, j]
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        out[str(name)] = float(population_stability_index(a, b, n_bins).value) if a.size and b.size else float("nan")
    return out


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    pos = y == 1
    n1, n0 = int(pos.sum()), int((~pos).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _ks(y: np.ndarray, s: np.ndarray) -> float:
    n1, n0 = int((y == 1).sum()), int((y == 0).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    order = np.argsort(-s, kind="stable")
    ys, ss = y[order], s[order]
    last = np.r_[ss[1:] != ss[:-1], True]  # the last row of each run of tied scores
    tpr = np.cumsum(ys == 1)[last] / n1
    fpr = np.cumsum(ys == 0)[last] / n0
    return float(np.max(np.abs(tpr - fpr)))


def bootstrap_intervals(y_true: Any, scores: Any, resamples: int = 500, level: float = 0.95, seed: int = 0
                        ) -> dict[str, Any]:
    """``{"auc": [lo, hi], "ks": [lo, hi], "level", "resamples"}`` (see the module docstring)."""
    y = np.asarray(y_true).astype(np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape or y.size < 2:
        raise ValueError("bootstrap needs labels and scores of the same length (at least 2 rows)")
    if not 0 < level < 1 or resamples < 10:
        raise ValueError("level must be in (0, 1) and resamples >= 10")
    rng = np.random.default_rng(seed)
    aucs, kss = np.empty(resamples), np.empty(resamples)
    for b in range(resamples):
        idx = rng.integers(0, y.size, y.size)
        aucs[b], kss[b] = _auc(y[idx], s[idx]), _ks(y[idx], s[idx])
    q = [(1 - level) / 2, (1 + level) / 2]
    return {"auc": [float(v) for v in np.nanquantile(aucs, q)], "ks": [float(v) for v in np.nanquantile(kss, q)],
            "level": float(level), "resamples": int(resamples)}
