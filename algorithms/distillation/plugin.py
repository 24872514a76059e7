"""Federated distillation as a plug-in of :mod:`algorithms.api` (catalogue name ``distillation``).

Topology horizontal: ``train → evaluate`` (no PSI: silos hold different customers with the same columns).
Silo role ``client`` (every silo, each with its own model family); the arbiter is the aggregator of soft
labels and supplies the reference rows (``reference_path``: a CSV of unlabelled rows with the silos' feature
columns, or ``bundled:<name>`` for a bundled file, whose label column is dropped) unless
``reference = "synthetic"``. Steps are rounds. Every client evaluates on its own held-out rows and reports
aggregate metrics.

What it reveals to whom: see :attr:`Distillation.disclosures` (and the role modules).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import pandas as pd

from algorithms.api import Algorithm, AlgorithmParams, Disclosure, PartyData, Role, RoleContext, RoleSpec
from algorithms.base import Payload
from algorithms.distillation.aggregator import DistillationAggregator
from algorithms.distillation.client import DistillationClient, DistillationError
from algorithms.distillation.families import ModelFamily
from algorithms.distillation.params import DistillationParams
from algorithms.horizontal.pooled import pooled_report
from federation.channel import Channel


def load_reference(path: str, label_columns: tuple[str, ...] = ("y",)) -> tuple[list[str], np.ndarray]:
    """The arbiter's reference rows: numeric columns of a CSV (``id`` and label columns dropped)."""
    if path.startswith("bundled:"):
        from datasets import load_csv

        frame = load_csv(path.removeprefix("bundled:"))
    else:
        frame = pd.read_csv(path)
    frame = frame.drop(columns=[c for c in ("id", *label_columns) if c in frame.columns])
    bad = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise DistillationError(f"reference rows {path!r}: columns {bad} are not numeric")
    X = frame.to_numpy(np.float64)
    if not np.isfinite(X).all():
        raise DistillationError(f"reference rows {path!r}: NaN or infinite values")
    return list(frame.columns), X


class _ScoreLocally:
    """Scoring needs no peer: the client scores its own rows with its accepted model."""

    def __init__(self, part: Payload, data: PartyData) -> None:
        self.model, self.data = ModelFamily.from_dict(part["model"]), data

    def run(self, channel: Channel) -> np.ndarray:
        return self.model.predict_proba(self.data.X)


class Distillation(Algorithm):
    """Federated distillation between silos whose model families differ."""

    name = "distillation"
    topology = "horizontal"
    stages = ("train", "evaluate")
    roles = (RoleSpec("client", 1, None, holds_labels=True),)
    arbiter = "aggregator"
    params_class = DistillationParams
    metric_roles = ("client",)
    demo_name = "credit-distillation"
    disclosures: ClassVar[tuple[Disclosure, ...]] = (
        Disclosure("client", "arbiter", "distill.reference", "public",
                   "the reference rows (unlabelled rows every silo may see, or synthetic rows)"),
        Disclosure("arbiter", "client", "distill.stats", "aggregate",
                   "synthetic mode: the silo's per-feature count, sum and sum of squares"),
        Disclosure("arbiter", "client", "distill.r*.soft", "row_level",
                   "the silo's model probabilities on each reference row (no row of its own), its validation AUC "
                   "and training-row count"),
        Disclosure("client", "arbiter", "distill.r*.consensus", "aggregate",
                   "the weighted average of the contributors' probabilities on each reference row (leave_one_out: "
                   "of the other contributors, with two of them the other silo's probabilities)"),
        Disclosure("arbiter", "client", "distill.summary", "aggregate",
                   "validation AUC of the local-only and the final model, accepted rounds, row counts"),
    )

    def steps(self, params: AlgorithmParams) -> int:
        assert isinstance(params, DistillationParams)
        return params.rounds

    def trainer(self, ctx: RoleContext, data: PartyData | None) -> Role:
        params = ctx.params
        assert isinstance(params, DistillationParams)
        if ctx.role == "arbiter":
            ref = load_reference(params.reference_path) if params.reference == "arbiter" and params.reference_path \
                else None
            return DistillationAggregator(ctx, ref)
        assert data is not None
        return DistillationClient(ctx, data)

    def predictor(self, ctx: RoleContext, part: Payload, data: PartyData) -> Role:
        return _ScoreLocally(part, data)

    def combine_metrics(self, per_party: Mapping[str, Payload]) -> Payload:
        """The silos' own hold-out metrics pooled as for horizontal jobs (per-silo table, pooled curves); one
        silo's metrics as they are."""
        return pooled_report(per_party) if len(per_party) > 1 else super().combine_metrics(per_party)

    def demo_params(self, dataset: str, steps: int | None = None) -> Payload:
        params: Payload = {"rounds": 2 if steps is None else int(steps),
                           "families": {"bank-a": "gbt", "bank-b": "scorecard", "bank-c": "mlp"}}
        if dataset == "default_credit":  # unlabelled rows of the bundled test split (never an evaluation row)
            params["reference_path"] = "bundled:default_credit_homo_test"
        else:  # no public rows for this data: synthetic ones from the silos' pooled feature statistics
            params.update(reference="synthetic", n_synthetic=500)
        return params
