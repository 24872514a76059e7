"""What a horizontal job leaves behind: each client's model part and the aggregator's summary.

A :class:`ClientModel` is a client's private result: the pooled :class:`~algorithms.horizontal.
preprocessing.FeatureSpace`, the local model's kind and shape, the global weights, and where asked for the
personalised weights (fine-tuned, or the FedPer head) and a local-only baseline. It scores raw rows
locally (``predict_proba``), so federated prediction needs no messages at all.

The :class:`AggregatorSummary` is the aggregator's: the final global weights, the feature space, and per
round who was sampled, who contributed, who was missing, refused or dropped late, and the aggregated
training metrics.

What it reveals to whom: a client model stays with its client; the global weights inside it are known to
every participant and the aggregator. The summary stays with the aggregator (and its reports).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from algorithms.horizontal.nets import Net, make_net
from algorithms.horizontal.preprocessing import FeatureSpace


@dataclass
class ClientModel:
    """A client's part of a horizontal model (see the module docstring)."""

    model: str
    hidden: tuple[int, ...]
    space: FeatureSpace
    global_weights: np.ndarray
    personalised_weights: np.ndarray | None = None
    local_weights: np.ndarray | None = None
    rounds: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def net(self) -> Net:
        return make_net(self.model, self.space.n_outputs, self.hidden)

    def predict_proba(self, X: np.ndarray, which: str = "global") -> np.ndarray:
        """Probability of class 1 for raw rows ``X`` with the ``global``, ``personalised`` or ``local`` model."""
        w = {"global": self.global_weights, "personalised": self.personalised_weights,
             "local": self.local_weights}[which]
        if w is None:
            raise ValueError(f"this client model has no {which} weights")
        return self.net.predict_proba(w, self.space.transform(X))

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "hidden": list(self.hidden), "space": self.space.to_dict(),
                "global_weights": self.global_weights.tolist(),
                "personalised_weights": None if self.personalised_weights is None
                else self.personalised_weights.tolist(),
                "local_weights": None if self.local_weights is None else self.local_weights.tolist(),
                "rounds": self.rounds, "notes": list(self.notes)}

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> ClientModel:
        def vec(v: Any) -> np.ndarray | None:
            return None if v is None else np.asarray(v, dtype=np.float64)

        return ClientModel(str(d["model"]), tuple(int(h) for h in d["hidden"]), FeatureSpace.from_dict(d["space"]),
                           np.asarray(d["global_weights"], dtype=np.float64), vec(d.get("personalised_weights")),
                           vec(d.get("local_weights")), int(d.get("rounds", 0)), list(d.get("notes", [])))


@dataclass
class RoundRecord:
    """One closed round as the aggregator saw it."""

    round: int
    attempts: int
    sampled: list[str]
    contributors: list[str]
    missing: list[str]
    refused: dict[str, str]
    metrics: dict[str, float]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"round": self.round, "attempts": self.attempts, "sampled": list(self.sampled),
                "contributors": list(self.contributors), "missing": list(self.missing),
                "refused": dict(self.refused), "metrics": dict(self.metrics), "seconds": self.seconds}

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> RoundRecord:
        return RoundRecord(int(d["round"]), int(d["attempts"]), list(d["sampled"]), list(d["contributors"]),
                           list(d["missing"]), dict(d["refused"]), {k: float(v) for k, v in d["metrics"].items()},
                           float(d["seconds"]))


@dataclass
class AggregatorSummary:
    """The aggregator's result of a horizontal job."""

    strategy: str
    weights: np.ndarray
    space: FeatureSpace
    history: list[RoundRecord]
    events: list[str]
    clients: dict[str, dict[str, Any]]

    @property
    def losses(self) -> list[float]:
        return [r.metrics.get("train_loss", float("nan")) for r in self.history]

    def to_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "weights": self.weights.tolist(), "space": self.space.to_dict(),
                "history": [r.to_dict() for r in self.history], "events": list(self.events),
                "clients": {k: dict(v) for k, v in self.clients.items()}}


__all__ = ["AggregatorSummary", "ClientModel", "RoundRecord"]
