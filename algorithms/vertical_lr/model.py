"""Results of vertical logistic regression: each party's own part of the model, JSON-able (no pickle).

* :class:`GuestModel` — the guest's feature weights, intercept, feature names and loss history;
* :class:`HostModel` — one host's feature weights and feature names;
* :class:`ArbiterSummary` — what the arbiter saw: number of epochs, the epoch losses, the convergence flag,
  the step scale of every epoch and the epochs that were undone (automatic step reduction).

What it reveals: nothing by itself; each object stays with its party. No object holds another party's
weights (the in-process simulation gathers them only for inspection).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class GuestModel:
    """The label holder's part: ``score = X_G·weights + intercept + Σ_k host scores``."""

    weights: np.ndarray
    intercept: float
    feature_names: list[str]
    losses: list[float] = field(default_factory=list)
    epochs: int = 0
    converged: bool = False

    def partial_score(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=float) @ self.weights + self.intercept

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "vertical_lr.guest", "weights": [float(v) for v in self.weights],
                "intercept": float(self.intercept), "feature_names": list(self.feature_names),
                "losses": [float(v) for v in self.losses], "epochs": int(self.epochs),
                "converged": bool(self.converged)}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> GuestModel:
        if d.get("kind") != "vertical_lr.guest":
            raise ValueError(f"not a vertical LR guest model (kind={d.get('kind')!r})")
        return GuestModel(np.asarray(d["weights"], dtype=float), float(d["intercept"]), list(d["feature_names"]),
                          [float(v) for v in d["losses"]], int(d["epochs"]), bool(d["converged"]))


@dataclass
class HostModel:
    """A feature holder's part: ``score_k = X_k·weights``."""

    weights: np.ndarray
    feature_names: list[str]

    def partial_score(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=float) @ self.weights

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "vertical_lr.host", "weights": [float(v) for v in self.weights],
                "feature_names": list(self.feature_names)}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> HostModel:
        if d.get("kind") != "vertical_lr.host":
            raise ValueError(f"not a vertical LR host model (kind={d.get('kind')!r})")
        return HostModel(np.asarray(d["weights"], dtype=float), list(d["feature_names"]))


@dataclass
class ArbiterSummary:
    """The coordinator's view of a training run (aggregate scalars only).

    ``step_scales[e]``: the step scale epoch ``e`` ran with (1.0 until the first reduction); ``rejected``: the
    epochs whose loss rose and which every party undid (:mod:`algorithms.vertical_lr.step_control`).
    """

    epochs: int
    losses: list[float]
    converged: bool
    weight_diffs: list[float] = field(default_factory=list)
    step_scales: list[float] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "vertical_lr.arbiter", "epochs": int(self.epochs), "losses": [float(v) for v in self.losses],
                "converged": bool(self.converged), "weight_diffs": [float(v) for v in self.weight_diffs],
                "step_scales": [float(v) for v in self.step_scales], "rejected": [int(v) for v in self.rejected]}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> ArbiterSummary:
        if d.get("kind") != "vertical_lr.arbiter":
            raise ValueError(f"not a vertical LR arbiter summary (kind={d.get('kind')!r})")
        return ArbiterSummary(int(d["epochs"]), [float(v) for v in d["losses"]], bool(d["converged"]),
                              [float(v) for v in d.get("weight_diffs", [])],
                              [float(v) for v in d.get("step_scales", [])], [int(v) for v in d.get("rejected", [])])
