"""The seam between the round loop and how updates are summed: update senders and collectors.

The aggregator never looks at a single update itself: it asks an :class:`UpdateCollector` for the **sums**
of the round's contributions (named vectors and metric scalars, already weighted by the clients) and the
list of contributors. :class:`PlainCollector` receives every sampled client's update in the clear, checks
it and adds it up; a secure-aggregation collector can return the same :class:`~algorithms.horizontal.
strategy.RoundSums` from masked inputs. On the client side an :class:`UpdateSender` sends the contribution
(:class:`PlainSender`: as is).

The plain collector closes a round when every expected client answered, or at the deadline with at least
``min_updates`` accepted updates (immediately at ``min_updates`` with ``close_on_quorum``). It refuses, and
names, an update with the wrong vector names, a wrong shape or dtype, or a non-finite value; the transport
already keeps one message per (sender, tag), so a second update for the same round never counts. Updates
that arrive after the round closed stay unread in the mailbox; the aggregator drains them later and drops
them (see :mod:`algorithms.horizontal.aggregator`).

What it reveals to whom: with :class:`PlainCollector` the aggregator sees each accepted client's
contribution (its weighted model update, its example count and its summed training loss); with a secure
collector only their sums.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from algorithms.horizontal.strategy import METRIC_NAMES, RoundSums, Vectors
from federation.channel import Channel, ChannelTimeout


@dataclass(frozen=True)
class CollectRequest:
    """One round's collection: whom to hear from under which tag, what shapes, until when."""

    expected: Mapping[str, str]  # client id -> message tag of its update
    shapes: Mapping[str, int]
    deadline: float  # time.monotonic() value
    min_updates: int
    close_on_quorum: bool = False


@dataclass
class Collected:
    """The sums of the accepted updates, plus who was refused (with the reason) and who never answered."""

    sums: RoundSums
    refused: dict[str, str] = field(default_factory=dict)
    missing: tuple[str, ...] = ()


class UpdateCollector(Protocol):
    def collect(self, request: CollectRequest, idle: Callable[[], None]) -> Collected:
        """Gather the round; call ``idle()`` now and then while waiting (the aggregator polls joins there)."""
        ...


class UpdateSender(Protocol):
    def send(self, channel: Channel, aggregator: str, tag: str, vectors: Vectors, metrics: Mapping[str, float]
             ) -> None:
        """Deliver one client's contribution for the round."""
        ...


class UpdateRefused(ValueError):
    """An update that does not have the declared names, shapes or finite values."""


def check_update(payload: Mapping[str, Any], shapes: Mapping[str, int]) -> tuple[Vectors, dict[str, float]]:
    """The update's vectors and metrics, or :class:`UpdateRefused` saying what is wrong."""
    vectors = payload.get("vectors")
    metrics = payload.get("metrics")
    if not isinstance(vectors, dict) or not isinstance(metrics, dict):
        raise UpdateRefused("update without 'vectors' and 'metrics'")
    if set(vectors) != set(shapes):
        raise UpdateRefused(f"update carries vectors {sorted(vectors)}, expected {sorted(shapes)}")
    out: Vectors = {}
    for name, size in shapes.items():
        v = vectors[name]
        if not isinstance(v, np.ndarray) or v.dtype.kind not in "fiu":
            raise UpdateRefused(f"vector {name!r} is not a numeric array")
        if v.shape != (size,):
            raise UpdateRefused(f"vector {name!r} has shape {v.shape}, expected ({size},)")
        v = v.astype(np.float64)
        if not np.isfinite(v).all():
            raise UpdateRefused(f"vector {name!r} holds non-finite values (first at index "
                                f"{int(np.flatnonzero(~np.isfinite(v))[0])})")
        out[name] = v
    if set(metrics) != set(METRIC_NAMES):
        raise UpdateRefused(f"update carries metrics {sorted(metrics)}, expected {sorted(METRIC_NAMES)}")
    m: dict[str, float] = {}
    for name in METRIC_NAMES:
        value = metrics[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise UpdateRefused(f"metric {name!r} is not a finite number")
        m[name] = float(value)
    if m["examples"] < 0:
        raise UpdateRefused("negative example count")
    return out, m


class PlainSender:
    """Send the contribution in the clear."""

    def send(self, channel: Channel, aggregator: str, tag: str, vectors: Vectors, metrics: Mapping[str, float]
             ) -> None:
        channel.send(aggregator, tag, {"vectors": dict(vectors), "metrics": dict(metrics)})


class PlainCollector:
    """Receive each expected update, check it, add it up (see the module docstring)."""

    def __init__(self, channel: Channel, poll_interval: float = 0.002, max_poll_interval: float = 0.02) -> None:
        self.channel = channel
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval

    def collect(self, request: CollectRequest, idle: Callable[[], None]) -> Collected:
        pending = dict(request.expected)
        accepted: dict[str, tuple[Vectors, dict[str, float]]] = {}
        refused: dict[str, str] = {}
        wait = self.poll_interval
        while pending:
            got = False
            for client, tag in list(pending.items()):
                try:
                    payload = self.channel.recv(client, tag, timeout=0)
                except ChannelTimeout:
                    continue
                got = True
                del pending[client]
                try:
                    vectors, metrics = check_update(payload, request.shapes)
                except UpdateRefused as exc:
                    refused[client] = str(exc)
                    continue
                accepted[client] = (vectors, metrics)
            if not pending:
                break
            if request.close_on_quorum and len(accepted) >= request.min_updates:
                break
            if time.monotonic() >= request.deadline:
                break
            idle()
            if got:
                wait = self.poll_interval
            else:
                time.sleep(wait)
                wait = min(wait * 1.5, self.max_poll_interval)
        # add up in client order, so the sums do not depend on arrival order (bit-identical reruns)
        sums: Vectors = {name: np.zeros(size) for name, size in request.shapes.items()}
        metric_sums = dict.fromkeys(METRIC_NAMES, 0.0)
        for client in sorted(accepted):
            vectors, metrics = accepted[client]
            for name, v in vectors.items():
                sums[name] += v
            for name, value in metrics.items():
                metric_sums[name] += value
        return Collected(RoundSums(sums, metric_sums, tuple(sorted(accepted))), refused, tuple(sorted(pending)))


__all__ = ["CollectRequest", "Collected", "PlainCollector", "PlainSender", "UpdateCollector", "UpdateRefused",
           "UpdateSender", "check_update"]
