"""The client role of a horizontal job: join, federated preprocessing, local rounds, personalisation.

A client holds rows with the job's columns and labels. It joins the aggregator (feature names, schema
digest, row count, notes such as "one class only"), sends its feature statistics if the pooled feature
space is not fixed yet, then follows the aggregator's instructions: ``fit`` (train locally from the global
model per its strategy and send the summable contribution), ``wait`` (not sampled this round), ``rejoin``
(it missed a round: join again under a new incarnation), ``finish`` (final global model) or ``abort``.
After ``finish`` it personalises locally (fine-tuning, FedPer head) and trains a local-only baseline if
asked. Its private strategy state (SCAFFOLD's control variate, the FedPer head) only moves forward when the
aggregator confirms the update it came from was aggregated, so dropped updates leave no trace; the state is
checkpointed every round, and a restarted client rejoins and continues.

What it reveals to whom: to the aggregator its feature names, row count, notes, feature statistics
(:mod:`algorithms.horizontal.preprocessing`) and per round its contribution (:mod:`algorithms.horizontal.
strategy`: its weighted model update, example count and summed loss, plus what the strategy adds). It
learns the global model of every round it is sent and the pooled feature space.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from algorithms.api import PartyData, RoleContext
from algorithms.horizontal import protocol as tags
from algorithms.horizontal.collector import PlainSender, UpdateSender
from algorithms.horizontal.local import LocalRun, train_local
from algorithms.horizontal.model import ClientModel
from algorithms.horizontal.nets import make_net
from algorithms.horizontal.params import FederationError, HorizontalParams
from algorithms.horizontal.preprocessing import FeatureSpace, local_stats
from algorithms.horizontal.strategy import ClientFit, Strategy, Vectors
from federation.channel import Channel, ChannelError

log = logging.getLogger(__name__)

HEAD = "_head"


def client_seed(party_id: str) -> int:
    """A stable per-client number for seeding local shuffles (independent of who else is in the job)."""
    return int.from_bytes(hashlib.sha256(party_id.encode()).digest()[:4], "big")


def data_notes(data: PartyData, min_rows: int = 1) -> list[str]:
    """What the report should say about a client's training rows (zero or too few rows, one class only)."""
    if data.n_rows == 0:
        return ["zero rows: the client contributes nothing"]
    if data.n_rows < min_rows:
        return [f"only {data.n_rows} rows (< min_client_rows = {min_rows}): the client contributes nothing, "
                "since its update would reveal its rows"]
    classes = np.unique(np.asarray(data.y))
    if len(classes) < 2:
        return [f"one class only (every label is {int(classes[0])})"]
    return []


def check_client_data(party_id: str, data: PartyData) -> None:
    if data.y is None:
        raise ValueError(f"client {party_id!r}: a horizontal client needs labels")
    if not np.isfinite(data.X).all():
        row, col = np.argwhere(~np.isfinite(data.X))[0]
        raise ValueError(f"client {party_id!r}: non-finite value in column {data.feature_names[col]!r}, row {row}")
    if not np.isin(np.asarray(data.y), (0, 1)).all():
        raise ValueError(f"client {party_id!r}: labels must be 0 or 1")


class HorizontalClient:
    """One client's side of a horizontal job; ``run(channel)`` returns its :class:`ClientModel`.

    ``leave_after``: leave the job after contributing to this round (dynamic participation).
    """

    def __init__(self, ctx: RoleContext, data: PartyData, strategy: Strategy, sender: UpdateSender | None = None,
                 leave_after: int | None = None) -> None:
        if not isinstance(ctx.params, HorizontalParams):
            raise TypeError("HorizontalClient needs HorizontalParams")
        check_client_data(ctx.party_id, data)
        self.ctx = ctx
        self.params: HorizontalParams = ctx.params
        self.data = data
        self.strategy = strategy
        self.sender = sender or PlainSender()
        self.leave_after = leave_after
        self.aggregator = ctx.parties.arbiter
        self.ns = ctx.namespace
        p = self.params
        # the longest the aggregator may legitimately stay silent: waiting for clients, a round with its
        # retries, the end-of-job grace for dropped clients
        self.timeout = p.join_timeout + (p.round_retries + 1) * p.round_timeout + p.rejoin_grace + 30.0
        self.rounds_fitted: list[int] = []

    # ------------------------------------------------------------------ checkpoint
    def _restore(self) -> dict[str, Any]:
        saved = self.ctx.checkpoint.latest() if self.ctx.checkpoint is not None else None
        return dict(saved[1]) if saved else {}

    def _save(self, step: int, state: Mapping[str, Any]) -> None:
        if self.ctx.checkpoint is not None:
            self.ctx.checkpoint.save(step, dict(state))

    # ------------------------------------------------------------------ protocol
    def _recv(self, channel: Channel, tag: str, timeout: float | None = None) -> dict[str, Any]:
        try:
            return channel.recv(self.aggregator, tag, timeout=self.timeout if timeout is None else timeout)
        except ChannelError as exc:
            raise FederationError(f"client {self.ctx.party_id!r}: no {tag!r} from the aggregator "
                                  f"{self.aggregator!r}: {exc}") from exc

    def _send(self, channel: Channel, tag: str, payload: dict[str, Any]) -> None:
        try:
            channel.send(self.aggregator, tag, payload)
        except ChannelError as exc:
            raise FederationError(f"client {self.ctx.party_id!r}: cannot reach the aggregator "
                                  f"{self.aggregator!r}: {exc}") from exc

    def _join(self, channel: Channel, state: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        inc = int(state.get("incarnation", 0)) + 1
        state["incarnation"] = inc
        self._save(int(state.get("round", 0)), state)
        names = list(self.data.feature_names)
        self._send(channel, tags.join(self.ns, inc), {
            "features": names, "digest": tags.schema_digest(names), "rows": self.data.n_rows,
            "notes": data_notes(self.data, self.params.min_client_rows)})
        welcome = self._recv(channel, tags.welcome(self.ns, inc))
        if welcome.get("action") == "refused":
            raise FederationError(f"client {self.ctx.party_id!r} refused by the aggregator: {welcome['reason']}")
        return inc, welcome

    @staticmethod
    def _settle(state: dict[str, Any], last_accepted: int) -> None:
        """Commit the pending private state if its update was aggregated, else drop it."""
        pending = state.pop("pending", None)
        if pending is not None and int(pending["round"]) == int(last_accepted):
            state["private"] = pending["private"]

    def run(self, channel: Channel) -> ClientModel:
        p = self.params
        state = self._restore()
        inc, welcome = self._join(channel, state)
        space_d = welcome.get("space")
        if space_d is None:  # the starting cohort pools its statistics first
            stats = local_stats(self.data.X, self.data.feature_names, p.categorical)
            send_stats = getattr(self.sender, "send_stats", None)  # secure aggregation sums the statistics too
            if send_stats is not None:
                send_stats(channel, self.aggregator, tags.prep(self.ns, inc), stats)
            else:
                self._send(channel, tags.prep(self.ns, inc), stats)
            space_d = self._recv(channel, tags.prep_global(self.ns, inc))["space"]
        space = FeatureSpace.from_dict(space_d)
        self._settle(state, int(welcome.get("last_accepted", 0)))
        X = space.transform(self.data.X)
        y = np.asarray(self.data.y, dtype=np.float64)
        net = make_net(p.model, space.n_outputs, p.hidden)
        seed = client_seed(self.ctx.party_id)
        k = 0
        weights = net.init(np.random.default_rng(p.seed))
        while True:
            ins = self._recv(channel, tags.instruction(self.ns, inc, k))
            action = ins["action"]
            if "last_accepted" in ins:
                self._settle(state, int(ins["last_accepted"]))
            if action == "abort":
                self._save(int(state.get("round", 0)), state)
                raise FederationError(f"job aborted by the aggregator: {ins['reason']}")
            if action == "rejoin":
                inc, welcome = self._join(channel, state)
                self._settle(state, int(welcome.get("last_accepted", 0)))
                k = 0
                continue
            if action == "finish":
                weights = np.asarray(ins["weights"], dtype=np.float64)
                state["round"] = int(ins["round"])
                break
            if action == "fit":
                rnd = int(ins["round"])
                weights = np.asarray(ins["weights"], dtype=np.float64)
                self._fit(channel, net, X, y, weights, ins, state, tags.update(self.ns, inc, k), seed)
                self.rounds_fitted.append(rnd)
                state["round"] = rnd
                self._save(rnd, state)
                if self.leave_after is not None and rnd >= self.leave_after:
                    self._send(channel, tags.leave(self.ns, inc), {"round": rnd})
                    return self._result(net, X, y, weights, state, space, [f"left after round {rnd}"])
            k += 1
        return self._result(net, X, y, weights, state, space, [])

    def _fit(self, channel: Channel, net: Any, X: np.ndarray, y: np.ndarray, weights: np.ndarray,
             ins: Mapping[str, Any], state: dict[str, Any], tag: str, seed: int) -> None:
        p = self.params
        rnd = int(ins["round"])
        private: Vectors = {k: np.asarray(v, dtype=np.float64) for k, v in (state.get("private") or {}).items()}
        strat_state = {k: v for k, v in private.items() if k != HEAD} or self.strategy.init_client_state(net.size)
        extras = {k: np.asarray(v, dtype=np.float64) for k, v in (ins.get("extras") or {}).items()}
        start = weights.copy()
        if p.personal_head and HEAD in private:
            start[net.head()] = private[HEAD]
        extra = self.strategy.local_gradient_term(weights, extras, strat_state)
        rng = np.random.default_rng([p.seed, rnd, int(ins.get("attempt", 0)), seed])
        if len(y) < p.min_client_rows:  # nothing (safe) to contribute: a zero-weight update
            run = LocalRun(start.copy(), 0, 0.0, 0)
        else:
            run = self.strategy.local_training(net, start, X, y, rng, extra)
        contribution = self.strategy.contribution(ClientFit(weights, start, run, extras, strat_state,
                                                            p.learning_rate))
        new_private = dict(contribution.state)
        if p.personal_head:
            new_private[HEAD] = run.weights[net.head()].copy()
        state["pending"] = {"round": rnd, "private": new_private}
        metrics = {"examples": float(run.examples), "loss_sum": float(run.loss * run.examples)}
        try:
            self.sender.send(channel, self.aggregator, tag, contribution.vectors, metrics)
        except ChannelError as exc:
            raise FederationError(f"client {self.ctx.party_id!r}: cannot send its round {rnd} update to "
                                  f"{self.aggregator!r}: {exc}") from exc

    def _result(self, net: Any, X: np.ndarray, y: np.ndarray, weights: np.ndarray, state: Mapping[str, Any],
                space: FeatureSpace, notes: list[str]) -> ClientModel:
        p = self.params
        seed = client_seed(self.ctx.party_id)
        private = state.get("private") or {}
        personalised = None
        if p.personal_head or p.fine_tune_epochs > 0:
            personalised = weights.copy()
            if p.personal_head and HEAD in private:
                personalised[net.head()] = np.asarray(private[HEAD], dtype=np.float64)
            if p.fine_tune_epochs > 0 and len(y):
                personalised = train_local(net, personalised, X, y, epochs=p.fine_tune_epochs,
                                           batch_size=p.batch_size, learning_rate=p.learning_rate,
                                           optimizer=p.optimizer, l2=p.l2,
                                           rng=np.random.default_rng([p.seed, 1 << 20, seed])).weights
        local = None
        if p.baseline_epochs > 0:
            local = net.init(np.random.default_rng(p.seed))
            if len(y):
                local = train_local(net, local, X, y, epochs=p.baseline_epochs, batch_size=p.batch_size,
                                    learning_rate=p.learning_rate, optimizer=p.optimizer, l2=p.l2,
                                    rng=np.random.default_rng([p.seed, 1 << 21, seed])).weights
        return ClientModel(p.model, p.hidden, space, weights, personalised, local, int(state.get("round", 0)),
                           data_notes(self.data, p.min_client_rows) + notes + self.strategy.report_notes())


__all__ = ["HorizontalClient", "check_client_data", "client_seed", "data_notes"]
