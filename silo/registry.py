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


def epochs(spec: Any) -> int:
    if spec.algorithm == "vertical_lr":
        from algorithms.vertical_lr.params import VerticalLRParams

        return int(spec.params.get("max_epochs", VerticalLRParams().max_epochs))
    return int(spec.params.get("n_trees", spec.params.get("max_epochs", 0)))


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
def run_psi(spec: Any, role: str, ids: list[str], channel: Channel) -> tuple[list[str], np.ndarray]:
    """Align with the peers; returns the intersection ids (canonical order) and their local row positions."""
    from algorithms.psi import PsiGuest, PsiHost

    context = f"{spec.job_id}/{spec.salt}"
    cls = PsiGuest if role == "guest" else PsiHost
    result = cls(ids, spec.parties, context=context, min_intersection=spec.min_intersection).run(channel)
    return list(result.ids), np.asarray(result.positions, dtype=np.int64)


# -------------------------------------------------------------------------------------------- training
def _training_params(spec: Any) -> dict[str, Any]:
    return dict(spec.params)


def build_role(spec: Any, role: str, X: np.ndarray | None, y: np.ndarray | None, checkpoint: Checkpoint | None,
               feature_names: list[str] | None = None) -> Any:
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
        import algorithms.secureboost as sb

        params = sb.SecureBoostParams.from_dict(dict(_training_params(spec), **({"seed": spec.seed}
                                                 if "seed" not in spec.params else {})))
        if role == "arbiter":
            return sb.SecureBoostArbiter(spec.parties, params, checkpoint=checkpoint)
        if role == "guest":
            return sb.SecureBoostGuest(X, y, spec.parties, params, checkpoint=checkpoint)
        return sb.SecureBoostHost(X, spec.parties, params, checkpoint=checkpoint)
    raise ValueError(f"unknown algorithm {spec.algorithm!r}")


def run_training(spec: Any, role: str, party_id: str, X: np.ndarray | None, y: np.ndarray | None,
                 channel: Channel, checkpoint: Checkpoint | None, feature_names: list[str] | None = None) -> Any:
    """Build and run the party's role; return its model part as JSON types."""
    return jsonable(build_role(spec, role, X, y, checkpoint, feature_names).run(channel))


# ------------------------------------------------------------------------------------------- prediction
def run_prediction(spec: Any, role: str, party_id: str, model: dict[str, Any], X: np.ndarray, channel: Channel,
                   prefix: str) -> np.ndarray | None:
    """Federated scores of the rows ``X`` (same rows, same order on every silo); the guest gets them."""
    if spec.algorithm == "vertical_lr":
        from algorithms.vertical_lr.model import GuestModel, HostModel
        from algorithms.vertical_lr.predict import VerticalLRGuestPredictor, VerticalLRHostPredictor

        if role == "host":
            VerticalLRHostPredictor(HostModel.from_dict(model), X, parties=spec.parties, name=prefix).run(channel)
            return None
        return VerticalLRGuestPredictor(GuestModel.from_dict(model), X, parties=spec.parties, name=prefix).run(channel)
    if spec.algorithm == "secureboost":
        import algorithms.secureboost as sb

        return sb.federated_predict(role, model, X, spec.parties, channel, prefix)  # type: ignore[attr-defined]
    raise ValueError(f"unknown algorithm {spec.algorithm!r}")


def evaluate_scores_at_guest(labels: np.ndarray, scores: np.ndarray, train_scores: np.ndarray | None = None,
                             baseline_scores: np.ndarray | None = None) -> dict[str, Any]:
    """Aggregate metrics only (silo/evaluation.py when present; AUC and KS from scikit-learn otherwise)."""
    try:
        from silo.evaluation import evaluate_at_guest
    except ImportError:
        from sklearn.metrics import roc_auc_score, roc_curve

        fpr, tpr, _ = roc_curve(labels, scores)
        return {"auc": float(roc_auc_score(labels, scores)), "ks": float(np.max(tpr - fpr)), "n": len(labels),
                "n_bad": int(np.sum(labels))}
    return evaluate_at_guest(labels, scores, train_scores=train_scores, baseline_scores=baseline_scores)
