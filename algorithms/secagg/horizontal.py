"""Secure aggregation for every horizontal strategy: an update sender and collector on the round loop's seam.

The horizontal aggregator only ever needs the **sums** of the round's contributions
(:mod:`algorithms.horizontal.collector`); :class:`SecureCollector` delivers them through
:mod:`algorithms.secagg.protocol`, and :class:`SecureSender` is the client side. Any strategy works unchanged
(FedAvg, FedProx, FedAdam/FedYogi, FedNova, SCAFFOLD's model and control-variate changes): its named vectors
and the metric sums (example count, summed loss) are laid out in one vector, sorted by name, metrics last.

Per round: the collector sends each sampled client ``{tag}.secagg.start`` with a fresh random session id, the
participant list (the sampled clients) and the layout; each client checks the layout against its
contribution, refuses a session id it has seen before and runs the SecAgg client; the collector runs the
SecAgg server and returns the unmasked sums, with the clients that dropped as ``missing`` (the aggregator
asks them to rejoin, as with plain updates). If the round aborts (too few survivors), nothing is unmasked and
the collector returns no contributors: the aggregator retries the round as it would for missing updates.

Preprocessing: with secure aggregation the client's ``prep`` message carries only its category codes and
column count; its row count, column sums and sums of squares of the raw values go through a secure sum
(:meth:`SecureSender.send_stats` / :meth:`SecureCollector.pool_stats`) in a wide fixed point: 120 bits in
three 40-bit limbs, 24 fractional bits, so sums of squares of amounts in the millions are exact to 2^-24.

Fixed point: every coordinate must lie in ``[-clip, clip]`` (default ``2^20``: example counts up to a million,
weighted updates); ``bits`` (default 48) gives ``bits − ceil(log2 n)`` bits per value, so each coordinate of a
sum of ``m`` clients is within ``m · clip / (2^(bits − ceil(log2 n)) − 1)/2`` of the plain sum — 1.2e-7 for
10 clients. A coordinate outside the range is refused at the client (:class:`SecAggError`), never wrapped.

What it reveals to whom: the aggregator learns the sums of the surviving clients' contributions (so the
global model, as before), who dropped, and nothing per client; clients learn what
:mod:`algorithms.secagg.protocol` says (neighbours' public keys, the survivor set).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

import numpy as np

from algorithms.api import Disclosure, RoleContext
from algorithms.horizontal.collector import Collected, CollectRequest, UpdateCollector
from algorithms.horizontal.params import FederationError
from algorithms.horizontal.strategy import METRIC_NAMES, RoundSums, Vectors
from algorithms.secagg.protocol import (
    SecAggAborted,
    SecAggClient,
    SecAggConfig,
    SecAggError,
    SecAggServer,
)
from algorithms.secagg.signing import Signer, Verifier
from federation.channel import Channel, ChannelTimeout

log = logging.getLogger(__name__)

#: defaults for model updates: 48-bit ring, values in ±2^20
HORIZONTAL_CONFIG = SecAggConfig(clip=float(1 << 20), bits=48)
_STAGES = 5
#: preprocessing statistics (row count, column sums and sums of squares of raw values) need a wider range:
#: each value is fixed point with WIDE_FRAC_BITS fractional bits in WIDE_LIMBS limbs of LIMB_BITS bits
WIDE_FRAC_BITS, LIMB_BITS, WIDE_LIMBS = 24, 40, 3
WIDE_BITS = LIMB_BITS * WIDE_LIMBS
_WIDE_OFFSET = 1 << (WIDE_BITS - 1)


def wide_encode(x: np.ndarray) -> np.ndarray:
    """Reals with ``|x| < 2^(WIDE_BITS − 1 − WIDE_FRAC_BITS)`` (≈ 4·10^28) as ``WIDE_LIMBS`` ring elements each
    (little-endian limbs of the offset fixed-point integer; exact to 2^-24 absolute)."""
    out = np.zeros(len(x) * WIDE_LIMBS, dtype=np.uint64)
    for i, v in enumerate(np.asarray(x, dtype=np.float64).tolist()):
        if not np.isfinite(v) or abs(v) >= 2.0 ** (WIDE_BITS - 1 - WIDE_FRAC_BITS):
            raise SecAggError(f"statistic {i} = {v} is outside the secure-sum range")
        n = round(v * (1 << WIDE_FRAC_BITS)) + _WIDE_OFFSET
        for j in range(WIDE_LIMBS):
            out[i * WIDE_LIMBS + j] = (n >> (LIMB_BITS * j)) & ((1 << LIMB_BITS) - 1)
    return out


def wide_decode(ring_total: np.ndarray, n_summed: int) -> np.ndarray:
    """The real sums from the (exact) limb sums of ``n_summed`` clients."""
    limbs = [int(v) for v in np.asarray(ring_total, dtype=np.uint64).tolist()]
    out = []
    for i in range(0, len(limbs), WIDE_LIMBS):
        n = sum(limbs[i + j] << (LIMB_BITS * j) for j in range(WIDE_LIMBS)) - n_summed * _WIDE_OFFSET
        out.append(n / (1 << WIDE_FRAC_BITS))
    return np.array(out, dtype=np.float64)


def start_tag(tag: str) -> str:
    return f"{tag}.secagg.start"


def layout(shapes: Mapping[str, int]) -> list[tuple[str, int]]:
    """The order of the flattened contribution: vectors sorted by name, then the metric sums."""
    return [(n, int(shapes[n])) for n in sorted(shapes)] + [(f"metric:{m}", 1) for m in METRIC_NAMES]


def flatten(vectors: Mapping[str, np.ndarray], metrics: Mapping[str, float], order: list[tuple[str, int]]
            ) -> np.ndarray:
    parts = []
    for name, size in order:
        value = np.atleast_1d(np.asarray(metrics[name[7:]] if name.startswith("metric:") else vectors[name],
                                         dtype=np.float64))
        if value.shape != (size,):
            raise SecAggError(f"contribution {name!r} has shape {value.shape}, the round expects ({size},)")
        parts.append(value)
    return np.concatenate(parts)


def unflatten(flat: np.ndarray, order: list[tuple[str, int]]) -> tuple[Vectors, dict[str, float]]:
    vectors: Vectors = {}
    metrics: dict[str, float] = {}
    at = 0
    for name, size in order:
        part = flat[at:at + size]
        at += size
        if name.startswith("metric:"):
            metrics[name[7:]] = float(part[0])
        else:
            vectors[name] = part.copy()
    return vectors, metrics


class SecureSender:
    """A client's :class:`~algorithms.horizontal.collector.UpdateSender` with secure aggregation."""

    def __init__(self, party_id: str, clients: Iterable[str], signer: Signer, verifier: Verifier, job_id: str,
                 namespace: str = "", config: SecAggConfig = HORIZONTAL_CONFIG, timeout: float = 600.0) -> None:
        self.party_id, self.clients = party_id, tuple(sorted(clients))
        self.signer, self.verifier = signer, verifier
        self.job_id, self.namespace, self.config, self.timeout = job_id, namespace, config, timeout
        self.sessions: set[str] = set()

    def send(self, channel: Channel, aggregator: str, tag: str, vectors: Vectors, metrics: Mapping[str, float]
             ) -> None:
        start = self._start(channel, aggregator, tag)
        session, participants = str(start["session"]), list(start["participants"])  # type: ignore[call-overload]
        order = [(str(n), int(k)) for n, k in start.get("layout", [])]  # type: ignore[attr-defined]
        if order != layout({n: len(np.atleast_1d(v)) for n, v in vectors.items()}):
            raise SecAggError(f"{self.party_id}: the round's layout {order} does not match the contribution")
        x = flatten(vectors, metrics, order)
        clip = self.config.clip
        if not np.all(np.isfinite(x)) or np.max(np.abs(x), initial=0.0) > clip:
            worst = int(np.argmax(np.where(np.isfinite(x), np.abs(x), np.inf)))
            raise SecAggError(f"{self.party_id}: contribution coordinate {worst} = {x[worst]} is outside the "
                              f"secure-aggregation range ±{clip:g} (raise the secagg clip)")
        SecAggClient(self.party_id, aggregator, participants, self.config, self.signer, self.verifier,
                     self.job_id, self.namespace + "sa.").aggregate(channel, x, session)


    def send_stats(self, channel: Channel, aggregator: str, tag: str, stats: Mapping[str, object]) -> None:
        """The preprocessing statistics: category codes in the clear under ``tag`` (the union is all the
        aggregator needs), the row count, column sums and sums of squares through a secure sum."""
        total = np.asarray(stats["sum"], dtype=np.float64)
        channel.send(aggregator, tag, {"categories": stats["categories"], "numeric": len(total), "secure": True})
        start = self._start(channel, aggregator, tag)
        order = [("count", 1), ("sum", len(total)), ("sumsq", len(total))]
        if [(str(n), int(k)) for n, k in start.get("layout", [])] != order:
            raise SecAggError(f"{self.party_id}: the statistics layout {start.get('layout')} does not match")
        x = np.r_[float(stats["count"]), total, np.asarray(stats["sumsq"], dtype=np.float64)]  # type: ignore[arg-type]
        SecAggClient(self.party_id, aggregator, start["participants"], STATS_CONFIG, self.signer, self.verifier,
                     self.job_id, self.namespace + "sa.").aggregate_ring(channel, wide_encode(x), start["session"])

    def _start(self, channel: Channel, aggregator: str, tag: str) -> Mapping[str, object]:
        try:
            start = channel.recv(aggregator, start_tag(tag), timeout=self.timeout)
        except ChannelTimeout as exc:
            raise SecAggError(f"{self.party_id}: no secure-aggregation start from {aggregator!r}") from exc
        session, participants = str(start.get("session", "")), start.get("participants", [])
        if not session or session in self.sessions:
            raise SecAggError(f"{self.party_id}: refused secure-aggregation session {session!r} (empty or replayed)")
        if not isinstance(participants, list) or self.party_id not in participants or \
                not set(participants) <= set(self.clients):
            raise SecAggError(f"{self.party_id}: participants {participants} are not clients of this job")
        self.sessions.add(session)
        return start


STATS_CONFIG = SecAggConfig(clip=1.0, bits=48)


class SecureCollector:
    """The aggregator's :class:`~algorithms.horizontal.collector.UpdateCollector` with secure aggregation."""

    def __init__(self, channel: Channel, party_id: str, job_id: str, namespace: str = "",
                 config: SecAggConfig = HORIZONTAL_CONFIG) -> None:
        self.channel, self.party_id, self.job_id, self.namespace, self.config = (
            channel, party_id, job_id, namespace, config)
        self.last_result = None

    def collect(self, request: CollectRequest, idle: Callable[[], None]) -> Collected:
        participants = sorted(request.expected)
        order = layout(request.shapes)
        empty = RoundSums({n: np.zeros(s) for n, s in request.shapes.items()}, dict.fromkeys(METRIC_NAMES, 0.0), ())
        if len(participants) < 3:
            return Collected(empty, {c: "secure aggregation needs at least 3 clients in a round"
                                     for c in participants}, ())
        session = os.urandom(16).hex()
        for c in participants:
            self.channel.send(c, start_tag(request.expected[c]),
                              {"session": session, "participants": participants, "layout": order})
        stage = max(0.05, (request.deadline - time.monotonic()) / _STAGES)
        server = SecAggServer(self.party_id, participants, replace(self.config, deadline=stage), self.job_id,
                              self.namespace + "sa.")
        try:
            result = server.aggregate(self.channel, sum(s for _, s in order), session)
        except SecAggAborted as exc:
            log.warning("%s: secure aggregation aborted: %s", self.job_id, exc)
            return Collected(empty, {c: f"secure aggregation aborted: {exc}" for c in participants}, ())
        self.last_result = result
        vectors, metrics = unflatten(result.total, order)
        return Collected(RoundSums(vectors, metrics, result.survivors), dict(server.rejected), result.dropped)

    def pool_stats(self, stats: Mapping[str, Mapping[str, object]], tags: Mapping[str, str], deadline: float
                   ) -> list[dict[str, object]]:
        """The pooled preprocessing statistics of the clients whose (category) message arrived: row count, column
        sums and sums of squares by a secure sum (:class:`FederationError` if it cannot be done)."""
        participants = sorted(stats)
        widths = {int(stats[c].get("numeric", -1)) for c in participants}  # type: ignore[call-overload]
        if len(participants) < 3 or len(widths) != 1 or not all(stats[c].get("secure") for c in participants):
            raise FederationError(f"secure preprocessing needs >= 3 clients sending secure statistics of one width "
                                  f"(got {len(participants)}, widths {sorted(widths)})")
        k = widths.pop()
        order = [("count", 1), ("sum", k), ("sumsq", k)]
        session = os.urandom(16).hex()
        for c in participants:
            self.channel.send(c, start_tag(tags[c]), {"session": session, "participants": participants,
                                                      "layout": order})
        stage = max(0.05, (deadline - time.monotonic()) / _STAGES)
        server = SecAggServer(self.party_id, participants, replace(STATS_CONFIG, deadline=stage), self.job_id,
                              self.namespace + "sa.")
        try:
            result = server.aggregate(self.channel, WIDE_LIMBS * (1 + 2 * k), session)
        except SecAggAborted as exc:
            raise FederationError(f"secure preprocessing statistics aborted: {exc}") from exc
        totals = wide_decode(result.ring_total, len(result.survivors))
        categories: dict[str, set[float]] = {}
        for c in result.survivors:
            for name, codes in dict(stats[c].get("categories") or {}).items():  # type: ignore[call-overload]
                categories.setdefault(name, set()).update(np.asarray(codes, dtype=np.float64).tolist())
        return [{"count": round(totals[0]), "sum": totals[1:1 + k], "sumsq": totals[1 + k:],
                 "categories": {n: np.array(sorted(v)) for n, v in categories.items()}}]


SECAGG_DISCLOSURES: tuple[Disclosure, ...] = (
    Disclosure("arbiter", "client", "*sa.secagg.*", "masked",
               "secure aggregation (secure_aggregation = true): the client's fresh public keys, signature and "
               "certificate; share ciphertexts under client-to-client keys; its contribution masked (uniform in "
               "Z_2^k); its signature on the survivor set; at unmasking, shares of the surviving clients' "
               "self-mask seeds and of the dropped clients' mask keys — together only the sum of the surviving "
               "clients' contributions, and who dropped"),
    Disclosure("client", "arbiter", "*sa.secagg.*", "public",
               "its neighbours' signed public keys and certificates, the encrypted shares addressed to it, the "
               "survivor set and its signatures, or why the round aborted"),
    Disclosure("client", "arbiter", "*upd.*.secagg.start", "public",
               "the session id, participants and vector layout of the round's secure sum"),
    Disclosure("client", "arbiter", "*prep.*.secagg.start", "public",
               "the session id, participants and layout of the secure sum of the preprocessing statistics (with "
               "secure aggregation the client's prep message carries only its category codes and column count)"),
)


def secure_collector(channel: Channel, ctx: RoleContext) -> UpdateCollector:
    """The aggregator's collector when a job sets ``secure_aggregation``."""
    return SecureCollector(channel, ctx.party_id, ctx.job_id, ctx.namespace)


def secure_sender(ctx: RoleContext) -> SecureSender:
    """A client's sender when a job sets ``secure_aggregation``, with the silo's signer and verifier from
    ``ctx.extra`` (``"signer"``: its certificate key, ``"verifier"``: the federation CA)."""
    signer, verifier = ctx.extra.get("signer"), ctx.extra.get("verifier")
    if signer is None or verifier is None:
        raise SecAggError(f"client {ctx.party_id!r}: secure aggregation needs the silo's certificate signer and "
                          "CA verifier (RoleContext.extra 'signer' and 'verifier')")
    return SecureSender(ctx.party_id, ctx.parties.clients, signer, verifier, ctx.job_id, ctx.namespace)


def secure_aggregation(signers: Mapping[str, Signer], verifier: Verifier, config: SecAggConfig = HORIZONTAL_CONFIG
                       ) -> tuple[Callable[[Channel, RoleContext], UpdateCollector], Callable[[RoleContext],
                                                                                            SecureSender]]:
    """The aggregator's collector factory and the clients' sender factory for one job (in-process runs)."""

    def collector(channel: Channel, ctx: RoleContext) -> UpdateCollector:
        return SecureCollector(channel, ctx.party_id, ctx.job_id, ctx.namespace, config)

    def sender(ctx: RoleContext) -> SecureSender:
        return SecureSender(ctx.party_id, ctx.parties.clients, signers[ctx.party_id], verifier, ctx.job_id,
                            ctx.namespace, config)

    return collector, sender
