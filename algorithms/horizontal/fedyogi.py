"""FedYogi (Reddi et al., ICLR 2021): ``v ← v − (1−β₂)·Δ²·sign(v − Δ²)`` on the averaged update.

The additive second moment grows more slowly than Adam's when updates shrink.

What it reveals to whom: the same as FedAvg (:mod:`algorithms.horizontal.fedavg`).
"""

from __future__ import annotations

import numpy as np

from algorithms.horizontal.fedopt import FedOpt, FedOptParams
from algorithms.horizontal.plugin import HorizontalAlgorithm


class FedYogi(FedOpt):
    name = "fedyogi"

    def second_moment(self, v: np.ndarray, delta: np.ndarray, beta2: float) -> np.ndarray:
        d2 = delta * delta
        return v - (1 - beta2) * d2 * np.sign(v - d2)


class FedYogiPlugin(HorizontalAlgorithm):
    name = "fedyogi"
    strategy_class = FedYogi
    params_class = FedOptParams


__all__ = ["FedYogi", "FedYogiPlugin"]
