"""SCAFFOLD (Karimireddy et al., ICML 2020, option II): control variates correct the clients' drift.

The server keeps a control variate ``c`` and every client its own ``cᵢ`` (starting at zero). A sampled client
trains from the global ``x`` with the corrected gradient ``g(y) + c − cᵢ`` for ``K`` SGD steps of size ``η``,
then sets ``cᵢ⁺ = cᵢ − c + (x − y)/(K·η)`` and contributes ``Δyᵢ = y − x``, ``Δcᵢ = cᵢ⁺ − cᵢ`` and a count of
1. The server sets ``x ← x + η_g · ΣΔyᵢ/|S|`` and ``c ← c + ΣΔcᵢ/N`` (``N``: clients in the job). ``cᵢ⁺`` is
kept only if the update was aggregated (see :mod:`algorithms.horizontal.client`). Local SGD only.

What it reveals to whom: to the aggregator (plain collector) each accepted client's model change
``y − x`` (unweighted), the change of its control variate (which is ``(x − y)/(Kη) − c``: the same
information plus its step count) and its example count and summed loss; to every sampled client the
global model and ``c``.
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
from algorithms.horizontal.strategy import ClientFit, Contribution, RoundSums, Strategy, Vectors


@dataclass(frozen=True)
class ScaffoldParams(HorizontalParams):
    """:class:`HorizontalParams` plus the global step ``server_lr`` (η_g); local ``optimizer`` must be SGD."""

    server_lr: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.optimizer != "sgd":
            raise ParamsError("SCAFFOLD's control variates assume local SGD: set optimizer = 'sgd'")
        if not (math.isfinite(self.server_lr) and self.server_lr > 0):
            raise ParamsError(f"server_lr must be positive, not {self.server_lr!r}")


class Scaffold(Strategy):
    """Stochastic controlled averaging (see the module docstring)."""

    name = "scaffold"

    def init_state(self, size: int) -> Vectors:
        return {"c": np.zeros(size)}

    def broadcast(self, state: Mapping[str, np.ndarray]) -> Vectors:
        return {"c": np.asarray(state["c"]).copy()}

    def summands(self, size: int) -> dict[str, int]:
        return {"delta": size, "delta_c": size, "count": 1}

    def aggregate(self, rnd: int, weights: np.ndarray, sums: RoundSums, state: Vectors, n_clients: int
                  ) -> np.ndarray:
        count = float(sums.vectors["count"][0])
        if count <= 0:
            return weights
        state["c"] = np.asarray(state["c"]) + np.asarray(sums.vectors["delta_c"]) / max(n_clients, 1)
        server_lr = float(getattr(self.params, "server_lr", 1.0))
        return weights + server_lr * np.asarray(sums.vectors["delta"]) / count

    def init_client_state(self, size: int) -> Vectors:
        return {"c_i": np.zeros(size)}

    def local_gradient_term(self, global_weights: np.ndarray, extras: Mapping[str, np.ndarray],
                            state: Mapping[str, np.ndarray]) -> ExtraGradient | None:
        correction = np.asarray(extras["c"]) - np.asarray(state["c_i"])
        return lambda w: correction

    def contribution(self, fit: ClientFit) -> Contribution:
        c, c_i = np.asarray(fit.extras["c"]), np.asarray(fit.state["c_i"])
        size = len(fit.global_weights)
        if fit.run.steps == 0:
            return Contribution({"delta": np.zeros(size), "delta_c": np.zeros(size), "count": np.zeros(1)},
                                {"c_i": c_i.copy()})
        c_plus = c_i - c + (fit.start - fit.run.weights) / (fit.run.steps * fit.learning_rate)
        return Contribution({"delta": fit.run.weights - fit.global_weights, "delta_c": c_plus - c_i,
                             "count": np.ones(1)}, {"c_i": c_plus})


class ScaffoldPlugin(HorizontalAlgorithm):
    name = "scaffold"
    strategy_class = Scaffold
    params_class = ScaffoldParams


__all__ = ["Scaffold", "ScaffoldParams", "ScaffoldPlugin"]
