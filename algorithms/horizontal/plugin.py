"""The plug-in base of every horizontal (FedAvg-family) algorithm: roles, parameters, disclosures.

A variant module (``fedavg.py``, ``fedprox.py``, …) defines its :class:`~algorithms.horizontal.strategy.
Strategy` and a subclass of :class:`HorizontalAlgorithm` naming it; one catalogue line makes it a job
algorithm. Silo role ``client`` (two or more, each holding rows and labels); the arbiter is the
``aggregator``; stages ``train → evaluate`` (no alignment). Scoring is local: every client holds the global
model, so the predictor role sends nothing.

What it reveals to whom: see :attr:`HorizontalAlgorithm.disclosures` (one entry per message tag).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from algorithms.api import Algorithm, AlgorithmParams, Disclosure, ParamsError, PartyData, Role, RoleContext, RoleSpec
from algorithms.base import Parties, Payload
from algorithms.dp.strategy import with_privacy
from algorithms.horizontal.aggregator import CollectorFactory, HorizontalAggregator
from algorithms.horizontal.client import HorizontalClient
from algorithms.horizontal.collector import UpdateSender
from algorithms.horizontal.model import ClientModel
from algorithms.horizontal.params import HorizontalParams
from algorithms.horizontal.pooled import pooled_report
from algorithms.horizontal.strategy import Strategy
from algorithms.secagg.horizontal import SECAGG_DISCLOSURES, secure_collector, secure_sender
from federation.channel import Channel

_CLIENT = "client"
_AGG = "arbiter"

DISCLOSURES: tuple[Disclosure, ...] = (
    Disclosure(_AGG, _CLIENT, "*join.*", "public",
               "the client's feature names and schema digest, its row count and notes (zero rows, one class)"),
    Disclosure(_AGG, _CLIENT, "*prep.[0-9]*", "aggregate",
               "the client's row count, per numeric column the sum and sum of squares, per categorical column "
               "the set of category codes it holds"),
    Disclosure(_AGG, _CLIENT, "*upd.*", "aggregate",
               "per round the client's contribution: its model update weighted by its example count (an "
               "aggregate of its rows' gradients), the example count, its summed training loss, plus what the "
               "strategy adds (SCAFFOLD: the change of its control variate; FedNova: its local step count)"),
    Disclosure(_AGG, _CLIENT, "*leave.*", "public", "that the client leaves the job, and after which round"),
    Disclosure(_AGG, _CLIENT, "*eval", "aggregate",
               "in-process evaluation (FederatedClassifier.evaluate): the client's hold-out row count, positives, "
               "AUC / log loss / Brier of its global, personalised and local-only models, and the class-wise "
               "histogram of its global-model scores on 100 bins"),
    Disclosure(_CLIENT, _AGG, "*welcome.*", "public",
               "the next round, the pooled feature space once fixed, the last round whose update was accepted"),
    Disclosure(_CLIENT, _AGG, "*prep.global.*", "aggregate",
               "the pooled feature means, standard deviations and category union of the starting cohort"),
    Disclosure(_CLIENT, _AGG, "*ins.*", "aggregate",
               "the global model (an aggregate of the contributing clients' updates) and the strategy's "
               "server extras (SCAFFOLD: the server control variate), or wait / rejoin / finish / abort"),
    *SECAGG_DISCLOSURES,
)


class HorizontalScorer:
    """Scores the client's rows with its global model; no messages (``run`` returns P(class 1))."""

    def __init__(self, model: ClientModel, data: PartyData) -> None:
        self.model = model
        self.data = data

    def run(self, channel: Channel) -> np.ndarray:
        return self.model.predict_proba(self.data.X)


class _Idle:
    """The arbiter takes no part in horizontal scoring."""

    def run(self, channel: Channel) -> None:
        return None


class HorizontalAlgorithm(Algorithm):
    """Base of the FedAvg-family plug-ins; subclasses set ``name``, ``strategy_class`` and maybe ``params_class``."""

    topology = "horizontal"
    stages = ("train", "evaluate")
    roles = (RoleSpec(_CLIENT, min_parties=2, max_parties=None, holds_labels=True),)
    arbiter = "aggregator"
    params_class: ClassVar[type[AlgorithmParams]] = HorizontalParams
    metric_roles = (_CLIENT,)
    disclosures = DISCLOSURES
    preprocessing = "federated"
    survives_silo_loss = True
    strategy_class: ClassVar[type[Strategy]] = Strategy

    def steps(self, params: AlgorithmParams) -> int:
        """Checkpointed steps: 0 (joined, pooled preprocessing) and one per round."""
        assert isinstance(params, HorizontalParams)
        return params.rounds + 1

    def strategy(self, params: AlgorithmParams) -> Strategy:
        """The plug-in's strategy, wrapped by the job's differential-privacy option (``dp``)."""
        assert isinstance(params, HorizontalParams)
        return with_privacy(self.strategy_class(params))

    def collector(self, ctx: RoleContext) -> CollectorFactory | None:
        """How the aggregator sums the round's updates (``None``: in the clear, :class:`PlainCollector`).

        The seam for secure aggregation: a plug-in subclass returns a factory of a collector that delivers the
        same :class:`~algorithms.horizontal.strategy.RoundSums` from masked inputs (``ctx.extra["collector"]``
        also works, for simulations). With the job option ``secure_aggregation``: SecAgg
        (:mod:`algorithms.secagg.horizontal`)."""
        if ctx.extra.get("collector") is not None:
            return ctx.extra["collector"]
        return secure_collector if getattr(ctx.params, "secure_aggregation", False) else None

    def sender(self, ctx: RoleContext) -> UpdateSender | None:
        """How a client sends its contribution (``None``: in the clear, :class:`PlainSender`; with
        ``secure_aggregation``: SecAgg, signed with the silo's certificate key from ``ctx.extra``)."""
        if ctx.extra.get("sender") is not None:
            return ctx.extra["sender"]
        return secure_sender(ctx) if getattr(ctx.params, "secure_aggregation", False) else None

    def trainer(self, ctx: RoleContext, data: PartyData | None) -> Role:
        if ctx.role == _AGG:
            return HorizontalAggregator(ctx, self.strategy(ctx.params), collector=self.collector(ctx))
        if data is None:
            raise ValueError(f"client {ctx.party_id!r} needs its data")
        return HorizontalClient(ctx, data, self.strategy(ctx.params), sender=self.sender(ctx))

    def predictor(self, ctx: RoleContext, part: Payload, data: PartyData) -> Role:
        if ctx.role == _AGG:
            return _Idle()
        return HorizontalScorer(ClientModel.from_dict(part), data)

    def combine_metrics(self, per_party: Mapping[str, Payload]) -> Payload:
        """Pooled report of the global model over every client's hold-out, plus the per-client table."""
        return pooled_report(per_party)

    def privacy_notes(self, params: AlgorithmParams, metrics: Payload, arbiter_part: Payload | None) -> list[str]:
        """Secure aggregation and DP: what the aggregator saw, and the ε spent (client level: from the
        aggregator's round metrics; record level: each client's own ledger, from its evaluation notes)."""
        assert isinstance(params, HorizontalParams)
        notes = []
        if params.secure_aggregation:
            notes.append("Secure aggregation: the aggregator received only masked updates and learned the sum of "
                         "the surviving clients' updates (and preprocessing statistics) and who dropped.")
        if params.dp == "client":
            history = (arbiter_part or {}).get("history") or []
            last = history[-1]["metrics"] if history else {}
            notes.append(f"Client-level DP (DP-FedAvg): ε = {float(last.get('epsilon', float('nan'))):.4f} at "
                         f"δ = {params.dp_delta:g} over {len(history)} rounds, noise multiplier "
                         f"{float(last.get('noise_multiplier', float('nan'))):.4g}, update clip "
                         f"{'adaptive' if params.dp_adaptive_clip else params.dp_clip}, client sampling "
                         f"q = {params.fraction_fit:g} (Poisson assumed when < 1); accountant: dp-accounting PLD.")
        if params.dp == "record":
            notes += sorted({str(n) for n in metrics.get("notes", []) if "record-level DP" in str(n)})
        return notes

    def variant_scores(self, ctx: RoleContext, part: Payload, data: PartyData) -> Mapping[str, np.ndarray]:
        """The client's personalised and local-only models (where the job trained them) on ``data``."""
        model = ClientModel.from_dict(part)
        out: dict[str, np.ndarray] = {}
        if model.personalised_weights is not None:
            out["personalised"] = model.predict_proba(data.X, "personalised")
        if model.local_weights is not None:
            out["local"] = model.predict_proba(data.X, "local")
        return out

    def load_part(self, role: str, part: Payload) -> object:
        return part if role == _AGG else ClientModel.from_dict(part)

    demo_name = "credit-fedavg"

    def demo_params(self, dataset: str, steps: int | None = None) -> Payload:
        params: Payload = {"rounds": 10, "batch_size": 64, "learning_rate": 0.05, "round_timeout": 60.0,
                           "join_timeout": 60.0}
        if steps is not None:
            params["rounds"] = int(steps)
        return params

    def check_preflight(self, params: AlgorithmParams, features: Mapping[str, int], rows: Mapping[str, int],
                        parties: Parties | None = None) -> list[str]:
        assert isinstance(params, HorizontalParams)
        if len(rows) < params.min_fit_clients:
            raise ParamsError(f"{len(rows)} clients but min_fit_clients = {params.min_fit_clients}")
        widths = set(features.values())
        if len(widths) > 1:
            raise ParamsError("clients have different feature counts: "
                              + ", ".join(f"{k}: {v}" for k, v in sorted(features.items())))
        return [f"client {c!r} has zero rows: it contributes nothing" for c, n in sorted(rows.items()) if n == 0]


__all__ = ["DISCLOSURES", "HorizontalAlgorithm", "HorizontalScorer"]
