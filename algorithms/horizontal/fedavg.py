"""FedAvg (McMahan et al., AISTATS 2017): the global model moves by the example-weighted mean of the updates.

Client ``i`` trains from the global ``w`` for the job's local epochs and contributes ``nᵢ·(wᵢ − w)`` and
``nᵢ``; the aggregator sets ``w ← w + Σ nᵢ(wᵢ − w) / Σ nᵢ`` over the round's accepted updates. Sampling:
``fraction_fit`` / ``min_fit_clients``, seeded by ``(seed, round, attempt)``.

What it reveals to whom: to the aggregator (plain collector) each accepted client's weighted update
``nᵢ·(wᵢ − w)``, ``nᵢ`` and its summed training loss; to every client the global model.
"""

from __future__ import annotations

from algorithms.horizontal.plugin import HorizontalAlgorithm
from algorithms.horizontal.strategy import Strategy


class FedAvg(Strategy):
    """Federated averaging weighted by example counts (the base :class:`Strategy` as it stands)."""

    name = "fedavg"


class FedAvgPlugin(HorizontalAlgorithm):
    name = "fedavg"
    strategy_class = FedAvg


__all__ = ["FedAvg", "FedAvgPlugin"]
