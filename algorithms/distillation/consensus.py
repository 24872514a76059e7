"""Turning the silos' soft labels on the reference rows into one consensus.

``consensus = Σ_k w_k·p_k / Σ_k w_k`` over the silos that answered the round, with weights from each
silo's own held-out quality (``"quality"``: ``max(AUC − 0.5, floor)``, so a silo no better than chance
barely counts), its row count (``"count"``) or equal (``"uniform"``). Optional entropy reduction as in
DS-FL (Itahara et al., arXiv 2008.06180): the averaged probability is sharpened with temperature ``T < 1``,
``c^(1/T) / (c^(1/T) + (1 − c)^(1/T))``, which lowers the consensus' entropy where silos disagree mildly
and so stops the averaged labels drifting towards 0.5 with non-IID silos. With ``leave_one_out`` a
contributor receives the consensus of the *other* contributors (:func:`consensus_for`).

What it reveals to whom: the function runs at the aggregator on what the silos sent it (declared in
:mod:`algorithms.distillation.plugin`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np

Weighting = Literal["quality", "count", "uniform"]
QUALITY_FLOOR = 0.01


def silo_weight(weighting: Weighting, quality: float, rows: int) -> float:
    """The weight of one silo's soft labels."""
    if weighting == "uniform":
        return 1.0
    if weighting == "count":
        return float(max(rows, 0))
    return float(max(quality - 0.5, QUALITY_FLOOR)) if np.isfinite(quality) else QUALITY_FLOOR


def sharpen(p: np.ndarray, temperature: float) -> np.ndarray:
    """DS-FL's entropy reduction of binary probabilities (``temperature`` in (0, 1]; 1 = unchanged)."""
    if not 0.0 < temperature <= 1.0:
        raise ValueError(f"temperature must be in (0, 1], not {temperature}")
    p = np.clip(np.asarray(p, float), 1e-12, 1 - 1e-12)
    a, b = p ** (1.0 / temperature), (1.0 - p) ** (1.0 / temperature)
    return a / (a + b)


def aggregate_soft_labels(soft: Mapping[str, np.ndarray], weights: Mapping[str, float],
                          temperature: float | None = None) -> np.ndarray:
    """Weighted mean of the silos' probabilities (optionally sharpened)."""
    if not soft:
        raise ValueError("no soft labels to aggregate")
    lengths = {k: len(v) for k, v in soft.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"soft labels of different lengths: {lengths}")
    total = sum(weights[k] for k in soft)
    if total <= 0:
        raise ValueError("the silos' weights sum to zero")
    mean = sum(weights[k] * np.asarray(v, float) for k, v in soft.items()) / total
    return mean if temperature is None else sharpen(mean, temperature)


def consensus_for(receiver: str, soft: Mapping[str, np.ndarray], weights: Mapping[str, float],
                  temperature: float | None = None, leave_one_out: bool = False) -> np.ndarray:
    """The consensus one silo receives: of all contributors, or (``leave_one_out``) of all but itself.

    A newcomer (not among ``soft``) and a lone contributor always receive the consensus of all.
    """
    others = {k: v for k, v in soft.items() if k != receiver}
    if leave_one_out and receiver in soft and others:
        return aggregate_soft_labels(others, weights, temperature)
    return aggregate_soft_labels(soft, weights, temperature)
