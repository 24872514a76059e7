"""Federated distillation, silo side: train your own model family, share soft labels, distil the consensus.

Per job the client

1. splits its training rows into a fit part and a validation part (seeded hash of the row ids),
2. trains its family on its own labelled rows alone (the *local-only* model) and scores it on validation,
3. (synthetic reference only) sends the count, sum and sum of squares of each feature,
4. receives the reference rows, and then in every round sends its current model's probabilities on them
   with its validation AUC and row count, receives the consensus, fits a model on its own rows plus the
   reference rows with the consensus as soft labels (afresh, or with ``warm_start`` fine-tuning its current
   model where the family can), and keeps it only if its validation AUC does not get worse
   (*accept-if-better*),
5. sends a summary (validation AUC before and after, which rounds were accepted).

A newcomer (``params.newcomers``) receives the consensus and fine-tunes on it, but sends no soft labels.

What it reveals to whom: the aggregator receives, per round, this silo's probabilities on the reference rows
(its model's outputs on rows every silo may see: no row of its own, but the outputs are a function of its
training data, so a reference row that is also one of its customers is exposed to membership inference),
its validation AUC and row count; in synthetic mode also per-feature counts, sums and sums of squares; at the
end its summary AUCs. The silo receives the reference rows and the consensus (a weighted average of all
contributors' probabilities). Labels, rows and model parameters never leave the silo.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from algorithms.api import PartyData, RoleContext
from algorithms.distillation.families import ModelFamily, make_family
from algorithms.distillation.params import DistillationParams
from federation.channel import Channel


class DistillationError(RuntimeError):
    """A distillation step cannot proceed (mismatched columns, too few silos, ...)."""


def tag(ctx: RoleContext, name: str) -> str:
    return f"{ctx.namespace}distill.{name}"


def validation_mask(ids: np.ndarray, seed: int, fraction: float) -> np.ndarray:
    """True for the rows held out for accept-if-better: SHA-256(seed, id) below ``fraction``."""
    prefix = f"distill-validation/{seed}/".encode()
    u = np.array([int.from_bytes(hashlib.sha256(prefix + str(i).encode()).digest()[:8], "big") / 2.0**64
                  for i in ids])
    return u < fraction


def quality(y: np.ndarray, p: np.ndarray) -> float:
    """Validation AUC, or NaN when the validation rows hold one class only."""
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


def not_worse(new: float, old: float) -> bool:
    return bool(np.isnan(old) or (not np.isnan(new) and new >= old))


@dataclass
class ClientSummary:
    """What a client reports at the end of training (validation AUCs, accepted rounds)."""

    family: str
    local_auc: float
    final_auc: float
    accepted: list[bool] = field(default_factory=list)
    validation_rows: int = 0
    train_rows: int = 0
    one_class: bool = False
    newcomer: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class DistillationClient:
    """Silo role. ``run(channel)`` returns the model part: the accepted model, the local-only model, summary."""

    def __init__(self, ctx: RoleContext, data: PartyData) -> None:
        if data.y is None:
            raise DistillationError(f"{ctx.party_id}: distillation needs this silo's labels")
        self.ctx, self.data = ctx, data
        self.params: DistillationParams = ctx.params  # type: ignore[assignment]
        self.family = self.params.family_of(ctx.party_id)
        self.newcomer = ctx.party_id in self.params.newcomers

    def _reference(self, msg: dict[str, Any]) -> np.ndarray:
        columns, X = list(msg["columns"]), np.asarray(msg["X"], dtype=np.float64)
        names = list(self.data.feature_names)
        if columns == names:
            return X
        transform = self.ctx.extra.get("transform")
        if transform is not None:  # raw reference columns → this silo's own preprocessing
            return np.asarray(transform(columns, X), dtype=np.float64)
        missing, extra = sorted(set(names) - set(columns)), sorted(set(columns) - set(names))
        raise DistillationError(f"{self.ctx.party_id}: the reference rows' columns differ from this silo's "
                                f"(missing {missing}, unexpected {extra})")

    def run(self, channel: Channel) -> dict[str, Any]:
        ctx, p, d = self.ctx, self.params, self.data
        arbiter = ctx.parties.arbiter
        y = np.asarray(d.y, dtype=np.int64)
        val = validation_mask(d.ids, p.seed, p.validation_fraction)
        if val.all() or not val.any():
            val = np.arange(d.n_rows) % 5 == 0  # tiny silo: every fifth row
        X_fit, y_fit, X_val, y_val = d.X[~val], y[~val], d.X[val], y[val]
        seed = p.seed + int(hashlib.sha256(ctx.party_id.encode()).hexdigest()[:6], 16)

        local = make_family(self.family, seed).fit(X_fit, y_fit)
        local_auc = quality(y_val, local.predict_proba(X_val))
        current, current_auc, accepted, start = local, local_auc, [], 0
        saved = ctx.checkpoint.latest() if ctx.checkpoint is not None else None
        if saved is not None:
            step, state = saved
            current, current_auc = ModelFamily.from_dict(state["current"]), float(state["current_auc"])
            accepted, start = list(state["accepted"]), step + 1

        if p.reference == "synthetic":
            channel.send(arbiter, tag(ctx, "stats"), {
                "columns": list(d.feature_names), "count": d.n_rows, "sum": d.X.sum(axis=0),
                "sumsq": (d.X ** 2).sum(axis=0)})
        X_ref = self._reference(channel.recv(arbiter, tag(ctx, "reference"), timeout=p.round_timeout * 2))

        for r in range(start, p.rounds):
            if not self.newcomer:
                channel.send(arbiter, tag(ctx, f"r{r}.soft"), {
                    "soft": current.predict_proba(X_ref), "quality": current_auc, "rows": len(y_fit)})
            consensus = np.asarray(channel.recv(arbiter, tag(ctx, f"r{r}.consensus"),
                                                timeout=p.round_timeout * 2)["consensus"], dtype=np.float64)
            candidate = make_family(self.family, seed + r + 1).fit(X_fit, y_fit, X_ref, consensus, p.soft_weight,
                                                                   init=current if p.warm_start else None)
            cand_auc = quality(y_val, candidate.predict_proba(X_val))
            keep = not_worse(cand_auc, current_auc)
            accepted.append(keep)
            if keep:
                current, current_auc = candidate, cand_auc
            if ctx.checkpoint is not None:
                ctx.checkpoint.save(r, {"current": current.to_dict(), "current_auc": current_auc,
                                        "accepted": accepted})

        summary = ClientSummary(self.family, local_auc, current_auc, accepted, int(val.sum()), len(y_fit),
                                one_class=len(np.unique(y)) < 2, newcomer=self.newcomer)
        channel.send(arbiter, tag(ctx, "summary"), summary.to_dict())
        return {"family": self.family, "model": current.to_dict(), "local_model": local.to_dict(),
                "summary": summary.to_dict()}
