"""The aggregator role of a horizontal job (the arbiter): membership, preprocessing, the round loop.

The round loop is written once here; a :class:`~algorithms.horizontal.strategy.Strategy` fills in its
steps and an :class:`~algorithms.horizontal.collector.UpdateCollector` delivers the sums of each round's
contributions. Per round: drain late updates of earlier rounds (dropped, logged), take in joins and leaves,
sample the live clients, send ``fit`` (global weights + strategy extras) to the sampled and ``wait`` to the
others, collect until every sampled client answered or the deadline (at least ``min_updates``), retry
the round with a fresh sample if too few arrived, and fail naming the missing clients after the last retry
(the job stays resumable from the previous round's checkpoint). A sampled client that missed the round is
told to ``rejoin``: it is out until it joins again, so a dead client costs one deadline, not one per round.
Every round is checkpointed (global weights, strategy state, feature space, who was last accepted, the
clients' incarnations, the history); a resumed job continues with exactly the same model.

Sends to clients go through one background sender per client, so a dead peer (whose transport retries)
never blocks the round.

What it reveals to whom: the aggregator learns each client's feature names, row count and notes; its
feature statistics (preprocessing); per round its contribution through the plain collector (weighted model
update, example count, summed training loss, plus what the strategy adds), or only their sums through a
secure collector; and the global model, which it computes. Clients learn the global model and the pooled
feature space.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from algorithms.api import RoleContext
from algorithms.horizontal import protocol as tags
from algorithms.horizontal.collector import CollectRequest, PlainCollector, UpdateCollector
from algorithms.horizontal.model import AggregatorSummary, RoundRecord
from algorithms.horizontal.nets import make_net
from algorithms.horizontal.params import FederationError, HorizontalParams
from algorithms.horizontal.preprocessing import FeatureSpace, combine
from algorithms.horizontal.strategy import Strategy
from federation.channel import Channel, ChannelTimeout

log = logging.getLogger(__name__)

CollectorFactory = Callable[[Channel, RoleContext], UpdateCollector]
#: a client that restarted this many times between two polls is still found
JOIN_WINDOW = 4


@dataclass
class _Slot:
    incarnation: int = 0
    live: bool = False
    next_k: int = 0
    features: tuple[str, ...] = ()
    rows: int = 0
    notes: tuple[str, ...] = ()
    needs_space: bool = False
    left: bool = False


class _Outbox:
    """One background sender per client: sends stay in order, a dead peer blocks only its own queue."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._last: dict[str, Future[None]] = {}

    def send(self, client: str, tag: str, payload: dict[str, Any]) -> None:
        pool = self._pools.get(client)
        if pool is None:
            pool = self._pools[client] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"to-{client}")
        self._last[client] = pool.submit(self.channel.send, client, tag, payload)

    def failed(self, client: str) -> BaseException | None:
        f = self._last.get(client)
        return f.exception() if f is not None and f.done() else None

    def flush(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for f in list(self._last.values()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            with contextlib.suppress(Exception):  # a failed send to a departed client is not the job's failure
                f.result(timeout=remaining)

    def close(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=False)


class HorizontalAggregator:
    """The arbiter's side of a horizontal job; ``run(channel)`` returns an :class:`AggregatorSummary`."""

    def __init__(self, ctx: RoleContext, strategy: Strategy, collector: CollectorFactory | None = None,
                 membership_poll: float = 0.05) -> None:
        if not isinstance(ctx.params, HorizontalParams):
            raise TypeError("HorizontalAggregator needs HorizontalParams")
        self.ctx = ctx
        self.params: HorizontalParams = ctx.params
        self.strategy = strategy
        self.collector_factory = collector or (lambda channel, ctx: PlainCollector(channel))
        self.ns = ctx.namespace
        self.clients = tuple(sorted(ctx.parties.clients))
        self.membership_poll = membership_poll
        self.slots = {c: _Slot() for c in self.clients}
        self.last_accepted: dict[str, int] = {}
        self.events: list[str] = []
        self.history: list[RoundRecord] = []
        self.outstanding: list[tuple[str, str, int]] = []  # (client, tag, round) of updates that never came
        self.space: FeatureSpace | None = None
        self.next_round = 1
        self._last_poll = 0.0
        self._reference: tuple[str, ...] | None = None

    # ------------------------------------------------------------------ bookkeeping
    def _event(self, text: str) -> None:
        log.info("%s: %s", self.ctx.job_id, text)
        self.events.append(text)

    def _checkpoint(self, rnd: int, weights: np.ndarray, sstate: Mapping[str, np.ndarray]) -> None:
        if self.ctx.checkpoint is None:
            return
        assert self.space is not None
        self.ctx.checkpoint.save(rnd, {
            "round": rnd, "weights": weights, "strategy_state": dict(sstate), "space": self.space.to_dict(),
            "last_accepted": dict(self.last_accepted),
            "incarnations": {c: s.incarnation for c, s in self.slots.items()},
            "live": [c for c, s in self.slots.items() if s.live],
            "reference": list(self._reference or ()),
            "history": [r.to_dict() for r in self.history], "events": list(self.events)})

    def _restore(self) -> tuple[np.ndarray, dict[str, np.ndarray], list[str]] | None:
        saved = self.ctx.checkpoint.latest() if self.ctx.checkpoint is not None else None
        if saved is None:
            return None
        _, st = saved
        self.space = FeatureSpace.from_dict(st["space"])
        self.last_accepted = {str(k): int(v) for k, v in st["last_accepted"].items()}
        for c, inc in st["incarnations"].items():
            if c in self.slots:
                self.slots[c].incarnation = int(inc)
        self._reference = tuple(st.get("reference") or ()) or None
        self.history = [RoundRecord.from_dict(r) for r in st["history"]]
        self.events = list(st["events"])
        self.next_round = int(st["round"]) + 1
        self._event(f"resumed after round {int(st['round'])}")
        sstate = {k: np.asarray(v, dtype=np.float64) for k, v in st["strategy_state"].items()}
        return np.asarray(st["weights"], dtype=np.float64), sstate, [str(c) for c in st["live"]]

    # ------------------------------------------------------------------ membership
    def _instruct(self, client: str, payload: dict[str, Any]) -> None:
        slot = self.slots[client]
        payload.setdefault("last_accepted", self.last_accepted.get(client, 0))
        self.outbox.send(client, tags.instruction(self.ns, slot.incarnation, slot.next_k), payload)
        slot.next_k += 1

    def _poll_membership(self, channel: Channel, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_poll < self.membership_poll:
            return
        self._last_poll = now
        for client, slot in self.slots.items():
            if slot.live:
                err = self.outbox.failed(client)
                if err is not None:
                    slot.live = False
                    self._event(f"lost contact with client {client!r}: {err}")
                    continue
                try:
                    channel.recv(client, tags.leave(self.ns, slot.incarnation), timeout=0)
                    slot.live, slot.left = False, True
                    self._event(f"client {client!r} left the job")
                    continue
                except ChannelTimeout:
                    pass
            for inc in range(slot.incarnation + 1, slot.incarnation + 1 + JOIN_WINDOW):
                try:
                    msg = channel.recv(client, tags.join(self.ns, inc), timeout=0)
                except ChannelTimeout:
                    continue
                self._admit(client, inc, msg)
                break

    def _admit(self, client: str, inc: int, msg: Mapping[str, Any]) -> None:
        slot = self.slots[client]
        slot.incarnation, slot.next_k = inc, 0
        slot.features = tuple(str(f) for f in msg.get("features", ()))
        slot.rows = int(msg.get("rows", 0))
        slot.notes = tuple(str(n) for n in msg.get("notes", ()))
        if self._reference is not None and slot.features != self._reference:
            reason = (f"silo {client!r} has another schema: {tags.schema_difference(slot.features, self._reference)}")
            self._event(f"refused client {client!r}: {reason}")
            self.outbox.send(client, tags.welcome(self.ns, inc), {"action": "refused", "reason": reason})
            return
        slot.live, slot.left = True, False
        slot.needs_space = self.space is None
        self._event(f"client {client!r} joined (incarnation {inc}, {slot.rows} rows"
                    + (f"; {'; '.join(slot.notes)}" if slot.notes else "") + f") before round {self.next_round}")
        self.outbox.send(client, tags.welcome(self.ns, inc), {
            "action": "welcome", "round": self.next_round,
            "space": None if self.space is None else self.space.to_dict(),
            "last_accepted": self.last_accepted.get(client, 0)})

    def _live(self) -> list[str]:
        return [c for c, s in self.slots.items() if s.live]

    def _wait_for(self, channel: Channel, wanted: set[str], minimum: int, timeout: float,
                  until_all: bool = True) -> None:
        """Wait for ``wanted`` to be live (or only for ``minimum`` live clients), up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            self._poll_membership(channel, force=True)
            live = set(self._live())
            if wanted <= live or (not until_all and len(live) >= minimum) or time.monotonic() >= deadline:
                break
            time.sleep(0.01)
        if len(live) < minimum:
            missing = sorted(set(self.clients) - live)
            raise FederationError(f"only {len(live)} of the required {minimum} clients are live after "
                                  f"{timeout:g} s; missing: {', '.join(missing)}")

    # ------------------------------------------------------------------ preprocessing
    def _check_schemas(self) -> None:
        live = self._live()
        counts = Counter(self.slots[c].features for c in live)
        reference, _ = max(counts.items(), key=lambda kv: (kv[1], kv[0] == self.slots[live[0]].features))
        bad = [c for c in live if self.slots[c].features != reference]
        if bad:
            details = "; ".join(f"silo {c!r}: {tags.schema_difference(self.slots[c].features, reference)}"
                                for c in bad)
            raise FederationError(f"schema mismatch between the clients ({details})")
        self._reference = reference

    def _preprocess(self, channel: Channel) -> None:
        p = self.params
        self._check_schemas()
        assert self._reference is not None
        cohort = [c for c in self._live() if self.slots[c].needs_space]
        stats, deadline = {}, time.monotonic() + p.round_timeout
        while len(stats) < len(cohort) and time.monotonic() < deadline:
            got = False
            for c in cohort:
                if c in stats:
                    continue
                try:
                    stats[c] = channel.recv(c, tags.prep(self.ns, self.slots[c].incarnation), timeout=0)
                    got = True
                except ChannelTimeout:
                    pass
            if not got:
                time.sleep(0.005)
        for c in cohort:
            if c not in stats:
                self._event(f"client {c!r} sent no feature statistics in time; it is out of the pooled statistics")
        if len(stats) < p.min_fit_clients:
            raise FederationError(f"only {len(stats)} clients sent feature statistics (need {p.min_fit_clients}); "
                                  f"missing: {', '.join(sorted(set(cohort) - set(stats)))}")
        pooled = [stats[c] for c in sorted(stats)]
        pool = getattr(self.collector_factory(channel, self.ctx), "pool_stats", None)  # secure aggregation
        if pool is not None:
            pooled = pool({c: stats[c] for c in sorted(stats)},
                          {c: tags.prep(self.ns, self.slots[c].incarnation) for c in stats},
                          time.monotonic() + p.round_timeout)
        self.space = combine(pooled, self._reference, p.categorical, p.standardize)
        self._event(f"pooled feature statistics of {len(stats)} clients ({self.space.count} rows)")
        for c, slot in self.slots.items():
            if slot.live and slot.needs_space:
                self.outbox.send(c, tags.prep_global(self.ns, slot.incarnation), {"space": self.space.to_dict()})
                slot.needs_space = False

    # ------------------------------------------------------------------ rounds
    def _drain_late(self, channel: Channel) -> None:
        still = []
        for client, tag, rnd in self.outstanding:
            try:
                channel.recv(client, tag, timeout=0)
                self._event(f"dropped a late update of client {client!r} for round {rnd}")
            except ChannelTimeout:
                still.append((client, tag, rnd))
        self.outstanding = still

    def _round(self, channel: Channel, collector: UpdateCollector, rnd: int, weights: np.ndarray,
               sstate: dict[str, np.ndarray], size: int) -> np.ndarray:
        p = self.params
        started = time.monotonic()
        shapes = self.strategy.summands(size)
        failures: list[str] = []
        for attempt in range(p.round_retries + 1):
            self._drain_late(channel)
            self._poll_membership(channel, force=True)
            if len(self._live()) < p.min_fit_clients:
                self._wait_for(channel, set(self.clients), p.min_fit_clients, p.join_timeout, until_all=False)
            live = self._live()
            sampled = self.strategy.configure_round(rnd, live, attempt)
            extras = self.strategy.broadcast(sstate)
            expected: dict[str, str] = {}
            for c in live:
                if c in sampled:
                    expected[c] = tags.update(self.ns, self.slots[c].incarnation, self.slots[c].next_k)
                    self._instruct(c, {"action": "fit", "round": rnd, "attempt": attempt, "weights": weights,
                                       "extras": extras})
                else:
                    self._instruct(c, {"action": "wait", "round": rnd})
            got = collector.collect(CollectRequest(expected, shapes, time.monotonic() + p.round_timeout,
                                                   p.min_updates, p.close_on_quorum),
                                    lambda: self._poll_membership(channel))
            for c, why in got.refused.items():
                self._event(f"round {rnd}: refused the update of client {c!r}: {why}")
            for c in got.missing:
                self.outstanding.append((c, expected[c], rnd))
                self._event(f"round {rnd}: no update from client {c!r} before the deadline; it must rejoin")
                if self.slots[c].live:
                    self._instruct(c, {"action": "rejoin", "round": rnd})
                    self.slots[c].live = False
            if len(got.sums.contributors) >= p.min_updates:
                break
            failures.append(f"attempt {attempt + 1}: {len(got.sums.contributors)} of {p.min_updates} updates"
                            + (f", missing {', '.join(got.missing)}" if got.missing else "")
                            + (f", refused {', '.join(sorted(got.refused))}" if got.refused else ""))
            self._event(f"round {rnd}: too few updates ({failures[-1]})")
        else:
            raise FederationError(f"round {rnd} failed after {p.round_retries + 1} attempts: {'; '.join(failures)}. "
                                  "Resume the job once enough clients are back.")
        new = self.strategy.aggregate(rnd, weights, got.sums, sstate, len(self.clients))
        for c in got.sums.contributors:
            self.last_accepted[c] = rnd
        self.history.append(RoundRecord(rnd, attempt + 1, sampled, list(got.sums.contributors), list(got.missing),
                                        dict(got.refused), self.strategy.aggregate_metrics(got.sums),
                                        time.monotonic() - started))
        return new

    def run(self, channel: Channel) -> AggregatorSummary:
        p = self.params
        self.outbox = _Outbox(channel)
        try:
            return self._run(channel)
        except FederationError as exc:
            for c in self._live():
                self._instruct(c, {"action": "abort", "reason": str(exc)})
            self.outbox.flush(5.0)
            raise
        finally:
            self.outbox.flush(5.0 if p.round_timeout > 5 else p.round_timeout)
            self.outbox.close()

    def _run(self, channel: Channel) -> AggregatorSummary:
        p = self.params
        restored = self._restore()
        if restored is None:
            self._wait_for(channel, set(self.clients), p.min_fit_clients, p.join_timeout)
            self._preprocess(channel)
            assert self.space is not None
            net = make_net(p.model, self.space.n_outputs, p.hidden)
            weights = net.init(np.random.default_rng(p.seed))
            sstate = self.strategy.init_state(net.size)
            self._checkpoint(0, weights, sstate)
        else:
            weights, sstate, was_live = restored
            self._wait_for(channel, set(was_live), p.min_fit_clients, p.join_timeout)
            assert self.space is not None
            net = make_net(p.model, self.space.n_outputs, p.hidden)
        collector = self.collector_factory(channel, self.ctx)
        for rnd in range(self.next_round, p.rounds + 1):
            weights = self._round(channel, collector, rnd, weights, sstate, net.size)
            self.next_round = rnd + 1
            self._checkpoint(rnd, weights, sstate)
        self._poll_membership(channel, force=True)
        dropped = {c for c, s in self.slots.items() if s.incarnation > 0 and not s.live and not s.left}
        if dropped and p.rejoin_grace > 0:  # let clients that dropped out rejoin for the final model
            self._event(f"waiting up to {p.rejoin_grace:g} s for {', '.join(sorted(dropped))} to rejoin")
            self._wait_for(channel, dropped | set(self._live()), 0, p.rejoin_grace)
        for c in self._live():
            self._instruct(c, {"action": "finish", "round": p.rounds, "weights": weights})
        assert self.space is not None
        clients = {c: {"rows": s.rows, "notes": list(s.notes), "last_accepted": self.last_accepted.get(c, 0)}
                   for c, s in self.slots.items()}
        return AggregatorSummary(self.strategy.name, weights, self.space, self.history, self.events, clients)


__all__ = ["CollectorFactory", "HorizontalAggregator"]
