"""Algorithms the services can run, and how a job spec becomes protocol roles.

For each algorithm name (``vertical_lr``; ``secureboost`` when available) this module builds the role
of a party from the job spec (parameters, parties, seed), the party's preprocessed matrix and labels
and its checkpoint, runs it on a channel, and turns the result into a codec/JSON-able model part. It
also runs PSI (:mod:`algorithms.psi`) and federated scoring for evaluation.

Federated scoring of vertical LR uses :mod:`algorithms.vertical_lr.predict`: each host sends ``X_h·w_h``
of the rows to score to the guest, which adds its own part and applies the sigmoid (hosts' partial
scores are revealed to the guest, nothing to the arbiter).

What it reveals to whom: PSI and training reveal what their modules document; scoring reveals each
host's partial scores of the scored rows to the guest.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from algorithms.base import Checkpoint
from federation.channel import Channel

ALGORITHMS = {"vertical_lr": "algorithms.vertical_lr", "secureboost": "algorithms.secureboost"}


def available(name: str) -> bool:
    try:
        module = importlib.import_module(ALGORITHMS[name])
    except (ImportError, KeyError):
        return False
    return hasattr(module, "__all__") or True


def check_algorithm(name: str) -> None:
    """Raise ``ValueError`` naming the known algorithms if ``name`` is not one of them (or not installed)."""
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; known: {', '.join(sorted(ALGORITHMS))}")
    if not available(name):
        raise ValueError(f"algorithm {name!r} is not available in this installation")


def check_params(name: str, params: dict[str, Any]) -> None:
    """Validate the algorithm's parameters early (before any job is created)."""
    check_algorithm(name)
    if name == "vertical_lr":
        from algorithms.vertical_lr.params import VerticalLRParams

        VerticalLRParams.from_dict(_lr_params(params, seed=0))
    elif name == "secureboost":
        from algorithms.secureboost import BoostParams

        BoostParams.from_dict(_lr_params(params, seed=0))


def epochs(spec: Any) -> int:
    if spec.algorithm == "vertical_lr":
        from algorithms.vertical_lr.params import VerticalLRParams

        return int(spec.params.get("max_epochs", VerticalLRParams().max_epochs))
    from algorithms.secureboost import BoostParams

    return int(spec.params.get("n_estimators", BoostParams().n_estimators))


def _lr_params(params: dict[str, Any], seed: int) -> dict[str, Any]:
    out = dict(params)
    out.setdefault("seed", seed)
    return out


def jsonable(value: Any) -> Any:
    """A role result as plain JSON types (``to_dict()`` if it has one; numpy → lists)."""
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


# ------------------------------------------------------------------------------------------------- PSI
def run_psi(spec: Any, role: str, ids: list[str], channel: Channel,
            local_floor: int = 100) -> tuple[list[str], np.ndarray]:
    """Align with the peers; returns the intersection ids (canonical order) and their local row positions."""
    from algorithms.psi import PsiGuest, PsiHost

    context = f"{spec.job_id}/{spec.salt}"
    cls = PsiGuest if role == "guest" else PsiHost
    result = cls(ids, spec.parties, context=context, min_intersection=spec.min_intersection,
                 local_floor=local_floor).run(channel)
    return list(result.ids), np.asarray(result.positions, dtype=np.int64)


# -------------------------------------------------------------------------------------------- training
def _training_params(spec: Any) -> dict[str, Any]:
    return dict(spec.params)


def uses_arbiter(spec: Any) -> bool:
    """Whether the algorithm has an arbiter role (vertical LR: key holder; SecureBoost: none, the guest
    holds its own key)."""
    return spec.algorithm == "vertical_lr"


def _frame(ids: np.ndarray | None, X: np.ndarray, names: list[str] | None, y: np.ndarray | None) -> Any:
    import pandas as pd

    cols = names or [f"f{i}" for i in range(X.shape[1])]
    frame = pd.DataFrame(X, columns=cols)
    frame.insert(0, "id", np.asarray(ids if ids is not None else np.arange(len(X))).astype(str))
    if y is not None:
        frame.insert(1, "y", np.asarray(y, dtype=np.int64))
    return frame


def build_role(spec: Any, role: str, X: np.ndarray | None, y: np.ndarray | None, checkpoint: Checkpoint | None,
               feature_names: list[str] | None = None, ids: np.ndarray | None = None,
               party_id: str | None = None) -> Any:
    """The protocol role object of ``role`` (guest / host / arbiter) for this job."""
    if spec.algorithm == "vertical_lr":
        from algorithms.vertical_lr.arbiter import VerticalLRArbiter
        from algorithms.vertical_lr.guest import VerticalLRGuest
        from algorithms.vertical_lr.host import VerticalLRHost
        from algorithms.vertical_lr.params import VerticalLRParams

        params = VerticalLRParams.from_dict(_lr_params(_training_params(spec), spec.seed))
        if role == "arbiter":
            return VerticalLRArbiter(parties=spec.parties, params=params, checkpoint=checkpoint)
        if role == "guest":
            return VerticalLRGuest(X, y, feature_names=feature_names, parties=spec.parties, params=params,
                                   checkpoint=checkpoint)
        return VerticalLRHost(X, feature_names=feature_names, parties=spec.parties, params=params,
                              checkpoint=checkpoint)
    if spec.algorithm == "secureboost":
        from algorithms.secureboost import BoostParams, SecureBoostGuest, SecureBoostHost

        params = BoostParams.from_dict(_lr_params(_training_params(spec), spec.seed))
        assert X is not None
        if role == "guest":
            return SecureBoostGuest(_frame(ids, X, feature_names, y), params, spec.parties, checkpoint=checkpoint)
        if role == "host":
            return SecureBoostHost(_frame(ids, X, feature_names, None), params, spec.parties, party_id or "",
                                   checkpoint=checkpoint)
        raise ValueError("secureboost has no arbiter role")
    raise ValueError(f"unknown algorithm {spec.algorithm!r}")


def run_training(spec: Any, role: str, party_id: str, X: np.ndarray | None, y: np.ndarray | None,
                 channel: Channel, checkpoint: Checkpoint | None, feature_names: list[str] | None = None,
                 ids: np.ndarray | None = None) -> Any:
    """Build and run the party's role; return its model part as JSON types."""
    return jsonable(build_role(spec, role, X, y, checkpoint, feature_names, ids, party_id).run(channel))


# ------------------------------------------------------------------------------------------- prediction
class PrefixedChannel(Channel):
    """A view of a channel whose tags all carry ``prefix`` (two scorings in one job cannot collide)."""

    def __init__(self, inner: Channel, prefix: str) -> None:
        super().__init__(inner.party_id)
        self._inner, self._prefix = inner, prefix

    def send(self, receiver: str, tag: str, payload: dict[str, Any]) -> None:
        self._inner.send(receiver, f"{self._prefix}.{tag}", payload)

    def recv(self, sender: str, tag: str, timeout: float | None = None) -> dict[str, Any]:
        return self._inner.recv(sender, f"{self._prefix}.{tag}", timeout)


def run_prediction(spec: Any, role: str, party_id: str, model: dict[str, Any], X: np.ndarray, channel: Channel,
                   prefix: str, ids: np.ndarray | None = None, feature_names: list[str] | None = None
                   ) -> np.ndarray | None:
    """Federated scores of the rows ``X`` (same rows, same order on every silo); the guest gets them."""
    if spec.algorithm == "vertical_lr":
        from algorithms.vertical_lr.model import GuestModel, HostModel
        from algorithms.vertical_lr.predict import VerticalLRGuestPredictor, VerticalLRHostPredictor

        if role == "host":
            VerticalLRHostPredictor(HostModel.from_dict(model), X, parties=spec.parties, name=prefix).run(channel)
            return None
        return VerticalLRGuestPredictor(GuestModel.from_dict(model), X, parties=spec.parties, name=prefix).run(channel)
    if spec.algorithm == "secureboost":
        from algorithms.secureboost import (
            GuestModel as BoostGuestModel,
        )
        from algorithms.secureboost import (
            HostModel as BoostHostModel,
        )
        from algorithms.secureboost import (
            SecureBoostGuestPredictor,
            SecureBoostHostPredictor,
        )

        channel = PrefixedChannel(channel, prefix)
        if role == "host":
            SecureBoostHostPredictor(BoostHostModel.from_dict(model), _frame(ids, X, feature_names, None),
                                     spec.parties).run(channel)
            return None
        return SecureBoostGuestPredictor(BoostGuestModel.from_dict(model), _frame(ids, X, feature_names, None),
                                         spec.parties).run(channel)
    raise ValueError(f"unknown algorithm {spec.algorithm!r}")


def evaluate_scores_at_guest(labels: np.ndarray, scores: np.ndarray, train_scores: np.ndarray | None = None,
                             baseline_scores: np.ndarray | None = None, threshold: float = 0.5) -> dict[str, Any]:
    """Aggregate metrics only (silo/evaluation.py when present; AUC and KS from scikit-learn otherwise)."""
    try:
        from silo.evaluation import evaluate_at_guest
    except ImportError:
        from sklearn.metrics import roc_auc_score, roc_curve

        fpr, tpr, _ = roc_curve(labels, scores)
        return {"auc": float(roc_auc_score(labels, scores)), "ks": float(np.max(tpr - fpr)), "n": len(labels),
                "n_bad": int(np.sum(labels))}
    return evaluate_at_guest(labels, scores, train_scores=train_scores, baseline_scores=baseline_scores,
                             threshold=threshold)
