"""Federated distillation, arbiter side: hand out the reference rows, average soft labels into a consensus.

The aggregator sends every silo the reference rows (supplied by the arbiter, or sampled from the silos'
pooled feature means and variances in synthetic mode), then per round collects each contributing silo's
probabilities on them, weighs them (:mod:`algorithms.distillation.consensus`) and sends the consensus back to
every silo (with ``leave_one_out`` each contributor gets the consensus of the *other* contributors: a silo
learns nothing from its own soft labels; newcomers and a lone contributor get the consensus of all). A round
closes when every live silo answered or ``round_timeout`` passed; silos that did not answer are dropped
from the job (the consensus is of the others) and at least ``min_clients`` answers are needed, else the job
fails naming the silos that are missing. Each round's consensus is checkpointed.

What it reveals to whom: the aggregator learns each contributor's probabilities on the reference rows, its
validation AUC and training-row count per round, and its end-of-job summary (validation AUC before and
after, accepted rounds); in synthetic mode each silo's per-feature count, sum and sum of squares. Every
silo learns the reference rows and the consensus (with ``leave_one_out``: a contributor, the consensus of the
others, which with two contributors is the other silo's probabilities themselves).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from algorithms.api import RoleContext
from algorithms.distillation.client import DistillationError, tag
from algorithms.distillation.consensus import consensus_for, silo_weight
from algorithms.distillation.params import DistillationParams
from federation.channel import Channel, ChannelError


class DistillationAggregator:
    """Arbiter role. ``run(channel)`` returns the per-silo summaries and the round history."""

    def __init__(self, ctx: RoleContext, reference: tuple[list[str], np.ndarray] | None = None) -> None:
        self.ctx = ctx
        self.params: DistillationParams = ctx.params  # type: ignore[assignment]
        if self.params.reference == "arbiter" and reference is None:
            raise DistillationError("reference = 'arbiter' needs reference rows at the arbiter (reference_path)")
        self.reference = reference

    def _collect(self, channel: Channel, senders: list[str], name: str) -> dict[str, dict[str, Any]]:
        """Each sender's message ``name`` that arrives before the round deadline."""
        until = time.monotonic() + self.params.round_timeout
        got: dict[str, dict[str, Any]] = {}
        for s in senders:
            try:
                got[s] = channel.recv(s, tag(self.ctx, name), timeout=max(until - time.monotonic(), 0.05))
            except ChannelError:
                continue
        return got

    def _send(self, channel: Channel, receivers: list[str], name: str, payload: dict[str, Any]) -> list[str]:
        """Send to each receiver; returns the ones that could not be reached."""
        lost = []
        for r in receivers:
            try:
                channel.send(r, tag(self.ctx, name), payload)
            except ChannelError:
                lost.append(r)
        return lost

    def _synthetic(self, stats: dict[str, dict[str, Any]]) -> tuple[list[str], np.ndarray]:
        columns = {tuple(s["columns"]) for s in stats.values()}
        if len(columns) != 1:
            raise DistillationError(f"the silos' feature columns differ: {sorted(columns)}")
        n = sum(float(s["count"]) for s in stats.values())
        total = sum(np.asarray(s["sum"], float) for s in stats.values())
        sq = sum(np.asarray(s["sumsq"], float) for s in stats.values())
        mean = total / n
        std = np.sqrt(np.maximum(sq / n - mean ** 2, 0.0))
        rng = np.random.default_rng(self.params.seed)
        return list(next(iter(columns))), mean + std * rng.standard_normal((self.params.n_synthetic, len(mean)))

    def run(self, channel: Channel) -> dict[str, Any]:
        p, ctx = self.params, self.ctx
        live = list(ctx.parties.clients)
        history: list[dict[str, Any]] = []
        start = 0
        saved = ctx.checkpoint.latest() if ctx.checkpoint is not None else None
        if saved is not None:
            start, history, live = saved[0] + 1, list(saved[1]["history"]), list(saved[1]["live"])

        if p.reference == "synthetic":
            stats = self._collect(channel, live, "stats")
            live = [c for c in live if c in stats]
            columns, X_ref = self._synthetic(stats)
        else:
            assert self.reference is not None
            columns, X_ref = self.reference
        lost = self._send(channel, live, "reference", {"columns": columns, "X": X_ref})
        live = [c for c in live if c not in lost]

        for r in range(start, p.rounds):
            contributors = [c for c in live if c not in p.newcomers]
            answers = self._collect(channel, contributors, f"r{r}.soft")
            missing = sorted(set(contributors) - set(answers))
            if len(answers) < p.min_clients:
                raise DistillationError(f"round {r}: {len(answers)} of {len(contributors)} silos sent soft labels, "
                                        f"at least {p.min_clients} needed; missing: {missing}")
            weights = {k: silo_weight(p.weighting, float(a["quality"]), int(a["rows"])) for k, a in answers.items()}
            soft = {k: np.asarray(a["soft"]) for k, a in answers.items()}
            live = [c for c in live if c not in missing]
            lost = []
            for c in live:  # leave_one_out: a contributor receives the consensus of the other contributors
                consensus = consensus_for(c, soft, weights, p.temperature, p.leave_one_out)
                lost += self._send(channel, [c], f"r{r}.consensus", {"consensus": consensus})
            live = [c for c in live if c not in lost]
            history.append({"round": r, "contributors": sorted(answers), "dropped": missing,
                            "weights": {k: round(w, 6) for k, w in weights.items()}})
            if ctx.checkpoint is not None:
                ctx.checkpoint.save(r, {"history": history, "live": live})

        summaries = self._collect(channel, live, "summary")
        return {"silos": summaries, "history": history, "reference_rows": len(X_ref),
                "reference_source": p.reference}
