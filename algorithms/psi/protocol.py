"""The PSI roles: a cardinality-only round, both sides accept the size, and only then membership.

For a guest ``G`` (ids X, fresh secret scalar ``a``) and a host ``H`` (ids Y, scalar ``b``), with ``h`` the
random-oracle hash of :mod:`.hashing` and every list streamed in chunks of :data:`~.blinding.CHUNK` points::

    1. G -> H : a·h(x) for x in X, in a fresh random order σ        H -> G : b·h(y), in a random order τ
    2. H -> G : b·a·h(x), re-shuffled by a fresh permutation         G -> H : a·b·h(y), re-shuffled likewise
       each side counts which of the peer's points, blinded twice by itself, occur in what it got back:
       both now hold c = |X ∩ Y| and nothing else (the re-shuffle cuts every link to its own order)
    3. H -> G : verdict (accept, H's minimum)                        G -> H : decision (proceed or refuse, why)
       each side's minimum is max(the job's ``min_intersection``, its own ``local_floor``); the arbiter's
       job spec cannot lower a silo's floor (set in the silo's own config, default 100)
    4. only if both accepted: each side sends the positions, in the *peer's* order (σ or τ), of the
       peer's points that matched; each maps them back through its own permutation to its rows
    5. several hosts: G intersects the pairwise results and tells each host which of its rows survive

What each side learns, and when:

* after 1: the other side's set size (the number of points received);
* after 2: the intersection size ``c``, nothing about which ids. The points a side receives in 1 are
  its peer's hashes under a secret scalar, and in 2 its own points under the peer's scalar in a fresh
  uniformly random order: under the decisional Diffie-Hellman assumption in the random-oracle model they
  show only how many of them coincide with its own double-blinded set;
* after 3: whether the other side accepts, and its minimum. A refusing run ends here: both raise
  :class:`IntersectionTooSmall` saying why (sizes only, plus a hint with the shape of the caller's own
  ids), neither holds any id of the intersection;
* after 4: the intersection (the ids of its own that are in the peer's set), returned in a canonical
  order (sorted by normalised id) with the row positions of its own input, identical on both sides;
* several hosts: the guest learns every pairwise size and intersection, each host only its own with the
  guest, then which of those rows are in the all-party intersection, or only *that* the alignment was
  refused ("another party refused", no other host's size). The guest checks the all-party size against
  the largest minimum of any party before any host learns which rows survive.

Usage (the same roles run over :class:`federation.channel.InMemoryNetwork` or gRPC)::

    parties = Parties(guest="bank", hosts=("insurer",))
    guest = PsiGuest(bank_ids, parties, context="job-42/customer_id", local_floor=100)
    result = guest.run(channel)          # PsiResult(ids=[...], positions=array([...]), peer_sizes={...})
    X_aligned = X_bank[result.positions]
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from algorithms.base import Parties
from algorithms.psi.blinding import (
    CHUNK,
    POINT_BYTES,
    Blinder,
    PsiError,
    hash_and_blind,
    members,
    new_scalar,
    random_permutation,
)
from algorithms.psi.hashing import PROTOCOL, SUITE
from algorithms.psi.ids import normalise_ids, shape_hint
from federation.channel import Channel

DEFAULT_MIN_INTERSECTION = 100
HASH_SUITE = (PROTOCOL + SUITE).decode("ascii")  # named in the first blinded chunk: both sides must hash alike
PARALLEL_MIN = 20_000  # ids below which hashing and blinding run inline (a process pool costs ~1 s to start)


class Disclosure(NamedTuple):
    """What ``receiver`` (a role) may learn from messages whose tag matches ``tag`` (fnmatch pattern); the same
    fields as :class:`algorithms.api.Disclosure` (``Disclosure(*d)`` converts; not imported here: api imports
    this package for its default aligner)."""

    receiver: str
    sender: str
    tag: str
    kind: str
    what: str


_PAIRWISE = tuple(
    Disclosure(receiver, sender, tag, kind, what) for receiver, sender in (("guest", "host"), ("host", "guest"))
    for tag, kind, what in (
        ("psi.*.blinded.*", "ciphertext", f"the {sender}'s hashed ids under its secret scalar, in a random order "
                                          "(the first chunk names the public hash suite): "
                                          f"the {sender}'s set size"),
        ("psi.*.double.*", "ciphertext", f"the {receiver}'s own blinded points under the {sender}'s scalar, "
                                         "re-shuffled: the intersection size only"),
        ("psi.*.matches.*", "row_level", f"after both accepted the size: which of the {receiver}'s ids are in "
                                         "the intersection (positions in its own random order)"),
    )
)
DISCLOSURES: tuple[Disclosure, ...] = (
    *_PAIRWISE,
    Disclosure("guest", "host", "psi.*.verdict.*", "public", "whether the host accepts the size, and its minimum"),
    Disclosure("host", "guest", "psi.*.decision", "public", "proceed, or why the alignment was refused (sizes "
                                                            "of this pair only)"),
    Disclosure("host", "guest", "psi.*.keep", "row_level", "several hosts: which of its intersection rows are "
                                                           "in the all-party intersection, or only that it "
                                                           "was refused"),
)
"""What each PSI message may reveal to its receiver (the privacy ledger and the transcript tests check these)."""


class IntersectionTooSmall(PsiError):
    """A party refused the intersection size; nothing about membership was exchanged."""


@dataclass(frozen=True)
class PsiResult:
    """One party's view of the alignment: its own ids and rows, in the canonical shared order."""

    ids: list[str]  # normalised ids of the intersection, sorted (identical on every party)
    positions: np.ndarray  # row of each of those ids in this party's input
    peer_sizes: dict[str, int] = field(default_factory=dict)  # set size of each peer (revealed by PSI)

    def __len__(self) -> int:
        return len(self.ids)


def _send_points(channel: Channel, peer: str, tag: str, chunks: Iterable[bytes], total: int,
                 first: dict[str, str] | None = None) -> None:
    sent = 0
    for k, data in enumerate(chunks):
        head = first if first and k == 0 else {}
        channel.send(peer, f"{tag}.{k}", {"total": total, "points": data, **head})
        sent += len(data) // POINT_BYTES
    if sent != total:  # pragma: no cover - internal invariant
        raise PsiError(f"sent {sent} points, announced {total}")


def _check_suite(peer: str, me: str, msg: dict[str, object]) -> None:
    """The peer's first blinded chunk names its hash suite: a silo on another fedrisk release would hash every id
    to different points and the run would end in an empty intersection blamed on the id format."""
    theirs = msg.get("suite")
    if theirs != HASH_SUITE:
        raise PsiError(f"{peer!r} hashes ids with {theirs or 'an older, unnamed suite'!s} but {me!r} with "
                       f"{HASH_SUITE}: the silos run different fedrisk releases; upgrade both to the same one")


def _recv_points(channel: Channel, peer: str, tag: str, what: str,
                 me: str | None = None) -> Iterable[tuple[int, bytes]]:
    """Yield ``(total, chunk)`` of a streamed list of points until ``total`` points arrived (the first chunk's hash
    suite checked when ``me`` is given)."""
    got, k, total = 0, 0, None
    while total is None or got < total:
        msg = channel.recv(peer, f"{tag}.{k}")
        if k == 0 and me is not None:
            _check_suite(peer, me, msg)
        data, n = msg.get("points"), msg.get("total")
        if not isinstance(n, int) or n <= 0 or (total is not None and n != total):
            raise PsiError(f"{peer!r} sent malformed {what}: a bad or changing total")
        if not isinstance(data, bytes) or not data or len(data) % POINT_BYTES or got + len(data) // POINT_BYTES > n:
            raise PsiError(f"{peer!r} sent malformed {what}: expected chunks of {POINT_BYTES}-byte points")
        total = n
        got += len(data) // POINT_BYTES
        k += 1
        yield total, data


def _chunks(points: np.ndarray, order: np.ndarray, chunk: int | None = None) -> Iterable[bytes]:
    """``points[order]`` in chunks, without a second copy of all the points."""
    chunk = chunk or CHUNK
    for s in range(0, len(order), chunk):
        yield points[order[s:s + chunk]].tobytes()


@dataclass
class _Pair:
    """One party's half of a pairwise exchange with ``peer`` (symmetric for guest and host)."""

    me: str
    peer: str
    prefix: str  # tag prefix of this pair, e.g. "psi.insurer"
    executor: Executor | None
    size: int = 0  # c = |X ∩ Y| after :meth:`count`
    peer_size: int = 0
    _order: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # σ: my ids in sent order
    _peer_hits: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # matches, peer's order
    timings: dict[str, float] = field(default_factory=dict)  # wall seconds per step (benchmarks read them)

    def _lap(self, step: str, since: float) -> float:
        now = time.perf_counter()
        self.timings[step] = self.timings.get(step, 0.0) + now - since
        return now

    def count(self, channel: Channel, ids: list[str], context: str) -> int:
        """Rounds 1-2: the intersection size, and nothing about which ids."""
        t = time.perf_counter()
        scalar = new_scalar()
        self._order = random_permutation(len(ids))
        shuffled = np.asarray(ids, dtype=object)[self._order].tolist()
        t = self._lap("shuffle own ids", t)
        _send_points(channel, self.peer, f"{self.prefix}.blinded.{self.me}",
                     hash_and_blind(scalar, shuffled, context, self.executor), len(ids), {"suite": HASH_SUITE})
        del shuffled
        t = self._lap("hash + blind own ids, send", t)
        blinder = Blinder(scalar, self.peer, self.executor)
        for total, data in _recv_points(channel, self.peer, f"{self.prefix}.blinded.{self.peer}", "blinded points",
                                        self.me):
            self.peer_size = total
            blinder.add(data)
        doubled_theirs = blinder.result()  # a·b·h(y), in the peer's order
        t = self._lap("receive + blind peer points", t)
        reshuffle = random_permutation(len(doubled_theirs))
        _send_points(channel, self.peer, f"{self.prefix}.double.{self.me}", _chunks(doubled_theirs, reshuffle),
                     len(doubled_theirs))
        del reshuffle
        t = self._lap("re-shuffle + send double-blinded", t)
        mine = np.empty((len(ids), POINT_BYTES), dtype=np.uint8)  # b·a·h(x), in a fresh order unknown to me
        row = 0
        for total, data in _recv_points(channel, self.peer, f"{self.prefix}.double.{self.peer}",
                                        "double-blinded points"):
            if total != len(ids):
                raise PsiError(f"{self.peer!r} returned {total} double-blinded points for {len(ids)} sent")
            n = len(data) // POINT_BYTES
            mine[row:row + n] = np.frombuffer(data, dtype=np.uint8).reshape(n, POINT_BYTES)
            row += n
        t = self._lap("receive own double-blinded", t)
        self._peer_hits = np.flatnonzero(members(doubled_theirs, mine)).astype(np.int64)
        self.size = len(self._peer_hits)
        self._lap("count matches", t)
        return self.size

    def reveal(self, channel: Channel) -> np.ndarray:
        """Round 4 (only after both accepted): my rows in the intersection, unsorted."""
        t = time.perf_counter()
        channel.send(self.peer, f"{self.prefix}.matches.{self.me}", {"indices": self._peer_hits})
        idx = channel.recv(self.peer, f"{self.prefix}.matches.{self.peer}").get("indices")
        idx = np.asarray(idx if idx is not None else [], dtype=np.int64)
        if idx.ndim != 1 or len(idx) != self.size or (idx.size and (idx.min() < 0 or idx.max() >= len(self._order)
                                                                   or np.any(np.diff(idx) <= 0))):
            raise PsiError(f"{self.peer!r} sent intersection positions inconsistent with the agreed size {self.size}")
        self._lap("reveal positions", t)
        return self._order[idx]


class _PsiRole:
    """What both sides hold: normalised ids, the job's parties, the context, and the two minimums."""

    def __init__(self, ids: Sequence[Any] | np.ndarray, parties: Parties, context: str,
                 min_intersection: int = DEFAULT_MIN_INTERSECTION, local_floor: int = DEFAULT_MIN_INTERSECTION,
                 executor: Executor | None = None) -> None:
        start = time.perf_counter()
        self.ids = normalise_ids(ids)
        self.timings: dict[str, float] = {"normalise ids": time.perf_counter() - start}  # wall seconds per step
        self.parties = parties
        self.context = context
        self.min_intersection = int(min_intersection)
        self.local_floor = int(local_floor)
        self._executor = executor

    @property
    def minimum(self) -> int:
        """The smallest intersection this party accepts: the job's minimum, never below its own floor (nor 1)."""
        return max(self.min_intersection, self.local_floor, 1)

    def _who_sets_minimum(self, me: str) -> str:
        return f"{me}'s local floor" if self.local_floor >= self.min_intersection else "the job's min_intersection"

    def executor(self) -> Executor | None:
        if self._executor is not None or len(self.ids) < PARALLEL_MIN:
            return self._executor
        from algorithms.paillier.parallel import shared_executor

        return shared_executor()

    def _canonical(self, rows: Iterable[int]) -> list[int]:
        start = time.perf_counter()
        out = sorted(rows, key=self.ids.__getitem__)
        self.timings["sort intersection"] = self.timings.get("sort intersection", 0.0) + time.perf_counter() - start
        return out

    def _collect(self, pairs: Iterable[_Pair]) -> None:
        for pair in pairs:
            for step, seconds in pair.timings.items():
                self.timings[step] = self.timings.get(step, 0.0) + seconds

    def _refuse(self, me: str, reason: str, peer_sizes: dict[str, int]) -> IntersectionTooSmall:
        return IntersectionTooSmall(f"{me}: refusing to align: {reason}. {shape_hint(self.ids, me, peer_sizes)}")

    def _too_small(self, me: str, size: int, minimum: int, setter: str, what: str = "the intersection") -> str:
        return f"{what} has {size} ids, below the minimum of {minimum} ({setter})"


class PsiHost(_PsiRole):
    """A host's side: exchange with the guest, accept or refuse the size, then the (final) intersection."""

    def run(self, channel: Channel) -> PsiResult:
        me, guest = channel.party_id, self.parties.guest
        pair = _Pair(me, guest, f"psi.{me}", self.executor())
        size = pair.count(channel, self.ids, self.context)
        sizes = {guest: pair.peer_size}
        mine = "" if size >= self.minimum else self._too_small(me, size, self.minimum, self._who_sets_minimum(me))
        channel.send(guest, f"psi.{me}.verdict.{me}", {"accept": not mine, "minimum": self.minimum, "reason": mine})
        decision = channel.recv(guest, f"psi.{me}.decision")
        if mine or not decision.get("proceed"):
            raise self._refuse(me, mine or f"{guest} refused: {decision.get('reason') or 'no reason given'}", sizes)
        canonical = self._canonical(pair.reveal(channel).tolist())
        if len(self.parties.hosts) > 1:
            keep = channel.recv(guest, f"psi.{me}.keep")
            if keep.get("refused"):
                raise self._refuse(me, f"{guest} refused: {keep['refused']}", sizes)
            idx = np.asarray(keep["indices"], dtype=np.int64)
            if idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= len(canonical))) \
                    or np.any(np.diff(idx) <= 0):
                raise PsiError(f"{guest!r} sent invalid intersection indices")
            if len(idx) < self.minimum:
                raise self._refuse(me, self._too_small(me, len(idx), self.minimum, self._who_sets_minimum(me),
                                                       "the all-party intersection"), sizes)
            canonical = [canonical[i] for i in idx]
        self._collect([pair])
        return PsiResult([self.ids[i] for i in canonical], np.asarray(canonical, dtype=np.int64), sizes)


class PsiGuest(_PsiRole):
    """The guest's side: a count with every host, one decision for all, then each pairwise intersection."""

    def run(self, channel: Channel) -> PsiResult:
        me, hosts = channel.party_id, self.parties.hosts
        executor = self.executor()
        pairs = {h: _Pair(me, h, f"psi.{h}", executor) for h in hosts}
        for pair in pairs.values():  # every count first: no host learns membership before all agree
            pair.count(channel, self.ids, self.context)
        sizes = {h: p.peer_size for h, p in pairs.items()}
        minimums = {me: self.minimum}
        reasons: dict[str, str] = {}
        for host, pair in pairs.items():
            verdict = channel.recv(host, f"psi.{host}.verdict.{host}")
            minimums[host] = int(verdict.get("minimum", 0))
            if not verdict.get("accept"):
                reasons[host] = str(verdict.get("reason") or f"{host} refused")
            elif pair.size < self.minimum:
                reasons[host] = self._too_small(me, pair.size, self.minimum, self._who_sets_minimum(me),
                                                f"the intersection with {host}")
        for host in hosts:  # a host hears its own pair's reason, or only *that* another pair failed
            reason = reasons.get(host) or ("another party refused the alignment" if reasons else "")
            channel.send(host, f"psi.{host}.decision", {"proceed": not reasons, "reason": reason})
        if reasons:
            raise self._refuse(me, "; ".join(f"{h}: {r}" for h, r in reasons.items()), sizes)
        pairwise = {h: self._canonical(p.reveal(channel).tolist()) for h, p in pairs.items()}
        final = set.intersection(*(set(rows) for rows in pairwise.values())) if len(hosts) > 1 else None
        first = pairwise[hosts[0]]  # already canonical: the all-party rows keep its order
        canonical = first if final is None else [row for row in first if row in final]
        if len(hosts) > 1:
            floor = max(minimums.values())
            refused = "" if len(canonical) >= floor else \
                f"the all-party intersection is below a party's minimum ({floor})"
            # hosts hear only *that* the alignment was refused, never another host's intersection size
            for host, rows in pairwise.items():
                indices = np.array([] if refused or final is None else
                                   [k for k, row in enumerate(rows) if row in final], dtype=np.int64)
                channel.send(host, f"psi.{host}.keep", {"indices": indices, "refused": refused})
            if refused:
                raise self._refuse(me, f"{refused}: {len(canonical)} ids", sizes)
        self._collect(pairs.values())
        return PsiResult([self.ids[i] for i in canonical], np.asarray(canonical, dtype=np.int64), sizes)
