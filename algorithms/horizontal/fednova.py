"""FedNova (Wang et al., NeurIPS 2020): normalised averaging with the local step counts clients upload.

With a fixed number of local epochs, clients with more rows take more local steps and pull the average
toward their own optimum (objective inconsistency). FedNova divides each client's update by its number of
local steps ``τᵢ`` before averaging and rescales by the weighted mean step count:
``w ← w + (Σ nᵢτᵢ / Σ nᵢ) · Σ nᵢ·(wᵢ − w)/τᵢ / Σ nᵢ``. Clients contribute ``nᵢ(wᵢ − w)/τᵢ``, ``nᵢτᵢ`` and
``nᵢ`` (vanilla local SGD: the normalising vector of FedNova is ``aᵢ = τᵢ``). With equal step counts it is
FedAvg.

What it reveals to whom: to the aggregator (plain collector) each accepted client's step-normalised
weighted update, its example count and its local step count (which the count and the batch size imply
anyway), and its summed loss; to every client the global model.
"""

from __future__ import annotations

import numpy as np

from algorithms.horizontal.plugin import HorizontalAlgorithm
from algorithms.horizontal.strategy import ClientFit, Contribution, RoundSums, Strategy


class FedNova(Strategy):
    """Step-normalised federated averaging."""

    name = "fednova"

    def summands(self, size: int) -> dict[str, int]:
        return {"delta": size, "weight": 1, "weighted_steps": 1}

    def average(self, sums: RoundSums) -> np.ndarray | None:
        total = float(sums.vectors["weight"][0])
        if total <= 0:
            return None
        tau_eff = float(sums.vectors["weighted_steps"][0]) / total
        return tau_eff * np.asarray(sums.vectors["delta"]) / total

    def contribution(self, fit: ClientFit) -> Contribution:
        n, tau = float(fit.run.examples), max(fit.run.steps, 1)
        return Contribution({"delta": n * (fit.run.weights - fit.global_weights) / tau, "weight": np.array([n]),
                             "weighted_steps": np.array([n * fit.run.steps])})


class FedNovaPlugin(HorizontalAlgorithm):
    name = "fednova"
    strategy_class = FedNova


__all__ = ["FedNova", "FedNovaPlugin"]
