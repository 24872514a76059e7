"""Server-side optimisers for federated averaging (Reddi et al., "Adaptive Federated Optimization", ICLR 2021).

The averaged client update ``Δ`` (as in FedAvg) is treated as a pseudo-gradient: ``m ← β₁m + (1−β₁)Δ``, a
second-moment estimate ``v`` (FedAdam and FedYogi differ only there: :meth:`FedOpt.second_moment`), and
``w ← w + η·m/(√v + τ)``. ``m`` and ``v`` are server state, checkpointed with the global model.

What it reveals to whom: the same as FedAvg (:mod:`algorithms.horizontal.fedavg`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from algorithms.api import ParamsError
from algorithms.horizontal.params import HorizontalParams
from algorithms.horizontal.strategy import Strategy, Vectors


@dataclass(frozen=True)
class FedOptParams(HorizontalParams):
    """:class:`HorizontalParams` plus the server step ``server_lr`` (η), ``beta1``, ``beta2`` and ``tau``."""

    server_lr: float = 0.05
    beta1: float = 0.9
    beta2: float = 0.99
    tau: float = 1e-3

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("server_lr", "tau"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ParamsError(f"{name} must be positive, not {value!r}")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ParamsError(f"{name} must be in [0, 1), not {value!r}")


class FedOpt(Strategy):
    """FedAvg with an adaptive server step; subclasses define the second moment."""

    name = "fedopt"

    def init_state(self, size: int) -> Vectors:
        return {"m": np.zeros(size), "v": np.zeros(size)}

    def second_moment(self, v: np.ndarray, delta: np.ndarray, beta2: float) -> np.ndarray:
        raise NotImplementedError

    def server_step(self, weights: np.ndarray, delta: np.ndarray, state: Vectors) -> np.ndarray:
        p = self.params
        assert isinstance(p, FedOptParams)
        state["m"] = p.beta1 * state["m"] + (1 - p.beta1) * delta
        state["v"] = self.second_moment(state["v"], delta, p.beta2)
        return weights + p.server_lr * state["m"] / (np.sqrt(state["v"]) + p.tau)


__all__ = ["FedOpt", "FedOptParams"]
