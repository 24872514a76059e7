"""Federated strategies as small classes with named steps; the round loop lives once, in the aggregator.

A :class:`Strategy` has aggregator-side steps

* ``configure_round(round, available)``: which live clients train this round (seeded sampling),
* ``broadcast(state)``: extra vectors sent with the global model (SCAFFOLD's server control variate),
* ``summands(size)``: the names and lengths of the vectors each client contributes — every contribution
  is *summable* (pre-weighted at the client), so the aggregator only ever needs their **sums**: the
  :class:`~algorithms.horizontal.collector.UpdateCollector` seam delivers exactly those (plain sums here;
  secure aggregation can deliver the same sums without the aggregator seeing any single update),
* ``aggregate(round, weights, sums, state, n_clients)``: the new global model from the sums,
* ``aggregate_metrics(sums)``: round metrics (weighted training loss, examples),

and client-side steps

* ``local_gradient_term(global, extras, client_state)``: an extra term of the local gradient (FedProx,
  SCAFFOLD), ``None`` for plain local training,
* ``contribution(fit)``: the summable vectors of one client's round, plus its new private state.

FedAvg implements them all; a variant overrides one or two (FedProx: ``local_gradient_term``; FedAdam /
FedYogi: ``server_step``; SCAFFOLD and FedNova: what clients contribute and how it is averaged).

What it reveals to whom: a strategy decides what a client contributes; each variant's module docstring says
what its contribution reveals (to the aggregator with the plain collector, or only their sum with secure
aggregation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from algorithms.horizontal.local import ExtraGradient, LocalRun, train_local
from algorithms.horizontal.nets import Net
from algorithms.horizontal.params import HorizontalParams

Vectors = dict[str, np.ndarray]
#: metric sums every client sends with its update
METRIC_NAMES = ("examples", "loss_sum")


@dataclass(frozen=True)
class RoundSums:
    """The sums of the contributions of one round's accepted updates, and who contributed."""

    vectors: Mapping[str, np.ndarray]
    metrics: Mapping[str, float]
    contributors: tuple[str, ...]


@dataclass(frozen=True)
class ClientFit:
    """One client's local round, as its strategy sees it when building the contribution."""

    global_weights: np.ndarray
    start: np.ndarray
    run: LocalRun
    extras: Mapping[str, np.ndarray]
    state: Mapping[str, np.ndarray]
    learning_rate: float


@dataclass
class Contribution:
    """What a client sends (summable vectors) and the private state it keeps if the update is accepted."""

    vectors: Vectors
    state: Vectors = field(default_factory=dict)


class Strategy:
    """FedAvg: ``w ← w + Σ nᵢ·Δᵢ / Σ nᵢ`` over the round's accepted updates (see the module docstring)."""

    name: ClassVar[str] = "fedavg"

    def __init__(self, params: HorizontalParams) -> None:
        self.params = params

    # ------------------------------------------------------------------ aggregator side
    def init_state(self, size: int) -> Vectors:
        """The strategy's server state (checkpointed with the global model)."""
        return {}

    def configure_round(self, rnd: int, available: Sequence[str], attempt: int = 0) -> list[str]:
        """Sample ``params.sample_size`` of the live clients, seeded by ``(seed, round, attempt)``."""
        pool = sorted(available)
        k = self.params.sample_size(len(pool))
        if k >= len(pool):
            return pool
        rng = np.random.default_rng([self.params.seed, rnd, attempt])
        return sorted(pool[i] for i in rng.choice(len(pool), size=k, replace=False))

    def broadcast(self, state: Mapping[str, np.ndarray]) -> Vectors:
        """Vectors sent to the sampled clients with the global model."""
        return {}

    def summands(self, size: int) -> dict[str, int]:
        """Names and lengths of the vectors each client contributes (checked by the collector)."""
        return {"delta": size, "weight": 1}

    def aggregate(self, rnd: int, weights: np.ndarray, sums: RoundSums, state: Vectors, n_clients: int
                  ) -> np.ndarray:
        """The next global model; may update ``state`` in place."""
        delta = self.average(sums)
        return weights if delta is None else self.server_step(weights, delta, state)

    def average(self, sums: RoundSums) -> np.ndarray | None:
        """The averaged update from the sums (``None`` when no accepted update carried any weight)."""
        total = float(sums.vectors["weight"][0])
        return None if total <= 0 else np.asarray(sums.vectors["delta"]) / total

    def server_step(self, weights: np.ndarray, delta: np.ndarray, state: Vectors) -> np.ndarray:
        """Apply the averaged update (FedAvg: add it; server optimisers override this)."""
        return weights + delta

    def aggregate_metrics(self, sums: RoundSums) -> dict[str, float]:
        n = float(sums.metrics.get("examples", 0.0))
        loss = float(sums.metrics.get("loss_sum", 0.0)) / n if n > 0 else float("nan")
        return {"examples": n, "train_loss": loss, "updates": float(len(sums.contributors))}

    # ------------------------------------------------------------------ client side
    def init_client_state(self, size: int) -> Vectors:
        """A client's private strategy state before its first round."""
        return {}

    def local_gradient_term(self, global_weights: np.ndarray, extras: Mapping[str, np.ndarray],
                            state: Mapping[str, np.ndarray]) -> ExtraGradient | None:
        return None

    def local_training(self, net: Net, start: np.ndarray, X: np.ndarray, y: np.ndarray, rng: np.random.Generator,
                       extra_grad: ExtraGradient | None) -> LocalRun:
        """The client's local training of one round (record-level DP overrides it with DP-SGD)."""
        p = self.params
        return train_local(net, start, X, y, epochs=p.local_epochs, batch_size=p.batch_size,
                           learning_rate=p.learning_rate, optimizer=p.optimizer, l2=p.l2, rng=rng,
                           extra_grad=extra_grad)

    def report_notes(self) -> list[str]:
        """Lines for the client's model notes and the report (DP: the ε spent and its assumptions)."""
        return []

    def contribution(self, fit: ClientFit) -> Contribution:
        n = float(fit.run.examples)
        return Contribution({"delta": n * (fit.run.weights - fit.global_weights), "weight": np.array([n])})


__all__ = ["METRIC_NAMES", "ClientFit", "Contribution", "RoundSums", "Strategy", "Vectors"]
