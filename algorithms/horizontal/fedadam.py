"""FedAdam (Reddi et al., ICLR 2021): ``v ← β₂v + (1−β₂)Δ²`` on the averaged update.

What it reveals to whom: the same as FedAvg (:mod:`algorithms.horizontal.fedavg`).
"""

from __future__ import annotations

import numpy as np

from algorithms.horizontal.fedopt import FedOpt, FedOptParams
from algorithms.horizontal.plugin import HorizontalAlgorithm


class FedAdam(FedOpt):
    name = "fedadam"

    def second_moment(self, v: np.ndarray, delta: np.ndarray, beta2: float) -> np.ndarray:
        return beta2 * v + (1 - beta2) * delta * delta


class FedAdamPlugin(HorizontalAlgorithm):
    name = "fedadam"
    strategy_class = FedAdam
    params_class = FedOptParams


__all__ = ["FedAdam", "FedAdamPlugin"]
