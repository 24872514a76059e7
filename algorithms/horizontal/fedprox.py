"""FedProx (Li et al., MLSys 2020): FedAvg whose clients add the proximal term ``μ/2·‖w − w_global‖²``.

Only the local objective changes (``local_gradient_term`` adds ``μ·(w − w_global)`` to every local
gradient), which keeps heterogeneous clients from drifting far from the global model; ``proximal_mu = 0``
is FedAvg exactly.

What it reveals to whom: the same as FedAvg (:mod:`algorithms.horizontal.fedavg`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from algorithms.api import ParamsError
from algorithms.horizontal.local import ExtraGradient
from algorithms.horizontal.params import HorizontalParams
from algorithms.horizontal.plugin import HorizontalAlgorithm
from algorithms.horizontal.strategy import Strategy


@dataclass(frozen=True)
class FedProxParams(HorizontalParams):
    """:class:`HorizontalParams` plus ``proximal_mu`` (μ ≥ 0)."""

    proximal_mu: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (math.isfinite(self.proximal_mu) and self.proximal_mu >= 0):
            raise ParamsError(f"proximal_mu must be >= 0, not {self.proximal_mu!r}")


class FedProx(Strategy):
    """FedAvg with a proximal local objective."""

    name = "fedprox"

    def local_gradient_term(self, global_weights: np.ndarray, extras: Mapping[str, np.ndarray],
                            state: Mapping[str, np.ndarray]) -> ExtraGradient | None:
        mu = float(getattr(self.params, "proximal_mu", 0.0))
        if mu == 0.0:
            return None
        anchor = global_weights.copy()
        return lambda w: mu * (w - anchor)


class FedProxPlugin(HorizontalAlgorithm):
    name = "fedprox"
    strategy_class = FedProx
    params_class = FedProxParams


__all__ = ["FedProx", "FedProxParams", "FedProxPlugin"]
