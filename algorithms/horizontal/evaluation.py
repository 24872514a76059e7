"""Federated evaluation of a horizontal model: each client scores its own hold-out; only aggregates move.

A client computes, on its held-out rows, the row count, the number of positives and per model it has
(``global``, ``personalised``, ``local`` only) the AUC, log loss and Brier score, plus the class-wise
histogram of the global model's scores on ``bins`` equal-width bins of [0, 1]. The aggregator combines
them (:func:`combine_metrics`): per-silo table, row-weighted overall means, the global model's pooled ROC
curve and AUC from the summed histograms (exact up to ties within a bin), and per silo the federation gain
``AUC(global) − AUC(local only)`` and ``AUC(personalised) − AUC(global)``.

What it reveals to whom: to the aggregator per client the hold-out row count and number of positives, the
metrics above, and how many of its positive and of its negative hold-out rows fall into each score bin
(the score distribution by class at the bin resolution, without ids). Nothing per row.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from algorithms.api import PartyData, RoleContext
from algorithms.horizontal.model import ClientModel
from algorithms.horizontal.params import FederationError
from algorithms.metrics import auc as _auc
from federation.channel import Channel, ChannelTimeout

MODELS = ("global", "personalised", "local")
BINS = 100


def _metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float | None]:
    if len(y) == 0:
        return {"auc": None, "log_loss": None, "brier": None}
    q = np.clip(p, 1e-12, 1 - 1e-12)
    ll = float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))
    auc = float(_auc(y, p)) if 0 < y.sum() < len(y) else None
    return {"auc": auc, "log_loss": ll, "brier": float(np.mean((p - y) ** 2))}


def silo_metrics(model: ClientModel, data: PartyData, bins: int = BINS) -> dict[str, Any]:
    """One client's aggregate evaluation of its hold-out rows (see the module docstring)."""
    if data.y is None:
        raise ValueError("evaluation needs the client's labels")
    y = np.asarray(data.y, dtype=np.float64)
    out: dict[str, Any] = {"rows": len(y), "positives": int(y.sum()), "notes": list(model.notes), "models": {}}
    edges = np.linspace(0.0, 1.0, bins + 1)
    for which in MODELS:
        try:
            p = model.predict_proba(data.X, which)
        except ValueError:
            continue
        out["models"][which] = _metrics(y, p)
        if which == "global":
            idx = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
            out["hist_pos"] = np.bincount(idx[y == 1], minlength=bins).astype(np.int64)
            out["hist_neg"] = np.bincount(idx[y == 0], minlength=bins).astype(np.int64)
    if len(y) and (y.sum() == 0 or y.sum() == len(y)):
        out["notes"].append("hold-out has one class only: no AUC")
    return out


def histogram_roc(pos: np.ndarray, neg: np.ndarray) -> tuple[float | None, list[float], list[float]]:
    """AUC and ROC points (false- and true-positive rates, thresholds from high to low) from class histograms."""
    pos, neg = np.asarray(pos, dtype=np.float64)[::-1], np.asarray(neg, dtype=np.float64)[::-1]
    P, N = pos.sum(), neg.sum()
    if P == 0 or N == 0:
        return None, [], []
    tpr = np.concatenate([[0.0], np.cumsum(pos) / P])
    fpr = np.concatenate([[0.0], np.cumsum(neg) / N])
    auc = float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2))
    return auc, fpr.tolist(), tpr.tolist()


def combine_metrics(per_silo: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Per-silo table, weighted overall metrics, pooled ROC of the global model, gains (aggregates only)."""
    overall: dict[str, dict[str, float | None]] = {}
    for which in MODELS:
        row: dict[str, float | None] = {}
        for metric in ("auc", "log_loss", "brier"):
            pairs = [(s["rows"], s["models"][which][metric]) for s in per_silo.values()
                     if which in s["models"] and s["models"][which][metric] is not None]
            w = sum(n for n, _ in pairs)
            row[metric] = sum(n * v for n, v in pairs) / w if w else None
        if any(which in s["models"] for s in per_silo.values()):
            overall[which] = row
    bins = max((len(s.get("hist_pos", ())) for s in per_silo.values()), default=BINS)
    pos = np.sum([np.asarray(s["hist_pos"]) for s in per_silo.values() if "hist_pos" in s], axis=0) \
        if per_silo else np.zeros(bins)
    neg = np.sum([np.asarray(s["hist_neg"]) for s in per_silo.values() if "hist_neg" in s], axis=0) \
        if per_silo else np.zeros(bins)
    pooled_auc, fpr, tpr = histogram_roc(pos, neg)
    silos: dict[str, dict[str, Any]] = {}
    for name, s in sorted(per_silo.items()):
        models = s["models"]
        g = models.get("global", {}).get("auc")
        loc = models.get("local", {}).get("auc")
        per = models.get("personalised", {}).get("auc")
        silos[name] = {"rows": s["rows"], "positives": s["positives"], "notes": list(s.get("notes", [])),
                       "models": {k: dict(v) for k, v in models.items()},
                       "gain_over_local": None if g is None or loc is None else g - loc,
                       "personalisation_gain": None if g is None or per is None else per - g}
    return {"rows": sum(s["rows"] for s in per_silo.values()),
            "positives": sum(s["positives"] for s in per_silo.values()),
            "overall": overall, "pooled_global_auc": pooled_auc, "roc": {"fpr": fpr, "tpr": tpr},
            "silos": silos}


class EvaluationClient:
    """Sends the client's :func:`silo_metrics` to the aggregator under ``{namespace}eval``."""

    def __init__(self, ctx: RoleContext, model: ClientModel, data: PartyData) -> None:
        self.ctx, self.model, self.data = ctx, model, data

    def run(self, channel: Channel) -> dict[str, Any]:
        result = silo_metrics(self.model, self.data)
        channel.send(self.ctx.parties.arbiter, f"{self.ctx.namespace}eval", result)
        return result


class EvaluationAggregator:
    """Collects every client's metrics (until ``timeout``) and combines them; names who did not answer."""

    def __init__(self, ctx: RoleContext, timeout: float = 120.0) -> None:
        self.ctx, self.timeout = ctx, timeout

    def run(self, channel: Channel) -> dict[str, Any]:
        pending = set(self.ctx.parties.clients)
        got: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + self.timeout
        while pending and time.monotonic() < deadline:
            for c in sorted(pending):
                try:
                    got[c] = channel.recv(c, f"{self.ctx.namespace}eval", timeout=0)
                    pending.discard(c)
                except ChannelTimeout:
                    pass
            if pending:
                time.sleep(0.005)
        if not got:
            raise FederationError(f"no client sent evaluation metrics within {self.timeout:g} s")
        result = combine_metrics(got)
        result["missing"] = sorted(pending)
        return result


__all__ = ["EvaluationAggregator", "EvaluationClient", "combine_metrics", "histogram_roc", "silo_metrics"]
