"""Entity alignment by ECDH private set intersection (PSI) between the guest and each host.

Each party holds a list of record ids (customer numbers, national ids, ...). Ids are normalised
(``str``, surrounding whitespace stripped, Unicode NFC), hashed with SHA-512 under a domain-separation
prefix and a job-specific ``context`` string both parties must pass identically, and mapped to the
prime-order subgroup of Curve25519 (``crypto_core_ed25519_from_uniform``, Elligator 2). Then, for a
guest ``G`` with secret scalar ``a`` and a host ``H`` with secret scalar ``b`` (fresh per run)::

    G -> H : shuffled  a·h(x)  for x in X          H -> G : shuffled  b·h(y)  for y in Y
    H -> G : b·(a·h(x)) in the order received      G -> H : a·(b·h(y)) in the order received
    each side: its own ids whose double-blinded value appears among the other side's = X ∩ Y

Blinding uses X25519 (``crypto_scalarmult``, libsodium's constant-time Montgomery ladder, ~3x faster
than the Edwards ``crypto_scalarmult_ed25519_noclamp``): the hashed Edwards points are converted to
their Montgomery u-coordinate, and since scalar multiplication commutes, ``a·(b·P) = b·(a·P)``.
Clamping makes every scalar a multiple of the cofactor, so a small-order component a peer might smuggle
in is erased, and libsodium rejects low-order inputs outright (the run fails with :class:`PsiError`).

Both parties learn the intersection and return it in the same canonical order (sorted by normalised
id), with the row positions of their own input, so rows align identically on both sides. With several
hosts the guest runs the exchange with each host, intersects the results and tells each host which of
its pairwise-intersection rows survive (indices into that canonical list).

What it reveals: to each party, the intersection and the size of the other party's set (the number
of points received). With several hosts, each host learns its pairwise intersection with the guest and
which of those rows are in the final (all-party) intersection, or only *that* the alignment was refused
(not why, nor any other host's sizes); the guest learns every pairwise intersection. Nothing else:
everything that crosses the channel is a Curve25519 point (32 bytes) blinded by a secret scalar, in a
fresh random order, plus (several hosts only) those intersection indices. Under the decisional
Diffie-Hellman assumption (random-oracle model for the hash) the blinded points of non-matching ids
look random. An intersection smaller than ``min_intersection`` (default 100) is refused by both sides
before anything is returned: a tiny intersection would make PSI a membership oracle for individual
customers.

Hashing to the curve and blinding run on the silo's executor when the role is given one (its process
pool or Dask cluster, ``RoleContext.executor``): the party's secret scalar and its points then travel to
its own workers, never to a peer.

Usage (the same roles run over :class:`federation.channel.InMemoryNetwork` or gRPC)::

    parties = Parties(guest="bank", hosts=("insurer",))
    guest = PsiGuest(bank_ids, parties, context="job-42/customer_id")
    host = PsiHost(insurer_ids, parties, context="job-42/customer_id")
    result = guest.run(channel)          # PsiResult(ids=[...], positions=array([...]), peer_sizes={...})
    X_aligned = X_bank[result.positions]
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import unicodedata
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import gmpy2
import numpy as np
from nacl.bindings import crypto_core_ed25519_from_uniform, crypto_scalarmult
from nacl.exceptions import RuntimeError as NaclRuntimeError
from nacl.utils import random as random_bytes

from algorithms.base import Parties
from algorithms.paillier.parallel import chunk_slices, parallel_map
from algorithms.paillier.parallel import workers as parallel_workers
from federation.channel import Channel

POINT_BYTES = 32
DEFAULT_MIN_INTERSECTION = 100
_PARALLEL_MIN = 2048
DOMAIN = b"fedrisk/psi/ecdh-x25519/v1"
_P = gmpy2.mpz(2**255 - 19)
_Y_MASK = (1 << 255) - 1


class PsiError(ValueError):
    """Invalid ids, a malformed peer message, or a refused intersection."""


class IntersectionTooSmall(PsiError):
    """The intersection is below the configured minimum; nothing was returned."""


@dataclass(frozen=True)
class PsiResult:
    """One party's view of the alignment: its own ids and rows, in the canonical shared order."""

    ids: list[str]  # normalised ids of the intersection, sorted (identical on every party)
    positions: np.ndarray  # row of each of those ids in this party's input
    peer_sizes: dict[str, int] = field(default_factory=dict)  # set size of each peer (revealed by PSI)

    def __len__(self) -> int:
        return len(self.ids)


def normalise_id(value: Any, row: int | None = None) -> str:
    """``str(value)`` stripped and NFC-normalised; refuses None, NaN and empty ids (naming the row)."""
    where = "" if row is None else f" at row {row}"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise PsiError(f"missing id{where}")
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    text = unicodedata.normalize("NFC", str(value).strip())
    if not text:
        raise PsiError(f"empty id{where}")
    return text


def normalise_ids(ids: Sequence[Any]) -> list[str]:
    """Normalise every id and refuse duplicates (naming both rows)."""
    normalised = [normalise_id(v, i) for i, v in enumerate(ids)]
    first: dict[str, int] = {}
    for i, v in enumerate(normalised):
        j = first.setdefault(v, i)
        if j != i:
            raise PsiError(f"duplicate id {v!r} at rows {j} and {i}")
    if not normalised:
        raise PsiError("no ids to align")
    return normalised


def _chunked(fn: Callable[..., list[bytes]], items: Sequence[Any], workers: int | None,
             executor: Executor | None = None, *extra: Any) -> list[bytes]:
    """``fn(chunk, offset, *extra)`` over contiguous chunks of ``items``, concatenated in order: on
    ``executor`` (the silo's process pool or Dask cluster; ``fn`` is module-level) when given, else on
    threads for large inputs (libsodium releases the GIL)."""
    if executor is not None and len(items) >= 2 * _PARALLEL_MIN:
        slices = chunk_slices(len(items), parallel_workers(executor), _PARALLEL_MIN)
        calls = [(list(items[s]), s.start, *extra) for s in slices]
        return [point for part in parallel_map(fn, calls, executor) for point in part]
    workers = workers or min(4, os.cpu_count() or 1)
    if workers <= 1 or len(items) < 2 * _PARALLEL_MIN:
        return fn(items, 0, *extra)
    step = -(-len(items) // workers)
    with ThreadPoolExecutor(workers, thread_name_prefix="psi") as pool:
        parts = pool.map(lambda start: fn(items[start:start + step], start, *extra), range(0, len(items), step))
        return [point for part in parts for point in part]


def _to_montgomery(digests: Sequence[bytes], offset: int = 0) -> list[bytes]:
    out: list[bytes] = []
    for digest in digests:
        edwards = crypto_core_ed25519_from_uniform(digest)  # Elligator 2, cofactor cleared
        y = gmpy2.mpz(int.from_bytes(edwards, "little") & _Y_MASK)
        u = (1 + y) * gmpy2.invert(1 - y, _P) % _P  # birational map Edwards -> Montgomery (y != 1: no identity)
        out.append(int(u).to_bytes(POINT_BYTES, "little"))
    return out


def hash_to_curve(ids: Sequence[str], context: str, workers: int | None = None,
                  executor: Executor | None = None) -> list[bytes]:
    """Montgomery u-coordinates (32 bytes) of the hashed points of normalised ids under ``context``."""
    ctx = context.encode("utf-8")
    prefix = DOMAIN + len(ctx).to_bytes(4, "big") + ctx + b"\x00"
    digests = [hashlib.sha512(prefix + value.encode("utf-8")).digest()[:32] for value in ids]
    return _chunked(_to_montgomery, digests, workers, executor)


def new_scalar() -> bytes:
    """A fresh secret scalar (X25519 clamps it: a multiple of the cofactor 8, bit 254 set)."""
    return random_bytes(32)


def _blind_chunk(chunk: Sequence[bytes], offset: int, scalar: bytes, peer: str) -> list[bytes]:
    out: list[bytes] = []
    for i, point in enumerate(chunk):
        try:
            out.append(crypto_scalarmult(scalar, point))
        except (NaclRuntimeError, TypeError, ValueError) as exc:
            raise PsiError(f"invalid curve point at position {offset + i} from {peer!r}") from exc
    return out


def blind(scalar: bytes, points: Sequence[bytes], peer: str = "peer", workers: int | None = None,
          executor: Executor | None = None) -> list[bytes]:
    """``scalar · point`` for every point; a low-order or malformed point raises :class:`PsiError`.

    With ``executor`` the secret scalar travels to the silo's own workers with the points."""
    return _chunked(_blind_chunk, points, workers, executor, scalar, peer)


def _pack(points: list[bytes]) -> bytes:
    return b"".join(points)


def _unpack(data: Any, peer: str, what: str) -> list[bytes]:
    if not isinstance(data, bytes) or len(data) % POINT_BYTES or not data:
        raise PsiError(f"{peer!r} sent malformed {what}: expected a non-empty multiple of {POINT_BYTES} bytes")
    return [data[i:i + POINT_BYTES] for i in range(0, len(data), POINT_BYTES)]


@dataclass
class _Side:
    """One party's half of a pairwise exchange (symmetric for guest and host)."""

    me: str
    peer: str
    prefix: str  # tag prefix of this pair, e.g. "psi.insurer"
    executor: Executor | None = None  # where the blinding runs (the silo's executor; None: threads)

    def exchange(self, channel: Channel, hashed: list[bytes]) -> tuple[list[int], int]:
        """Run the exchange; return (sorted own indices in the intersection, peer set size)."""
        scalar = new_scalar()
        order = list(range(len(hashed)))
        random.SystemRandom().shuffle(order)
        channel.send(self.peer, f"{self.prefix}.blinded.{self.me}",
                     {"points": _pack(blind(scalar, [hashed[i] for i in order], self.me, executor=self.executor))})
        theirs = _unpack(channel.recv(self.peer, f"{self.prefix}.blinded.{self.peer}").get("points"), self.peer,
                         "blinded points")
        double_theirs = blind(scalar, theirs, self.peer, executor=self.executor)
        channel.send(self.peer, f"{self.prefix}.double.{self.me}", {"points": _pack(double_theirs)})
        double_mine = _unpack(channel.recv(self.peer, f"{self.prefix}.double.{self.peer}").get("points"), self.peer,
                              "double-blinded points")
        if len(double_mine) != len(hashed):
            raise PsiError(f"{self.peer!r} returned {len(double_mine)} double-blinded points for {len(hashed)} sent")
        lookup = set(double_theirs)
        return sorted(order[j] for j, point in enumerate(double_mine) if point in lookup), len(theirs)


def _check_size(size: int, minimum: int, who: str) -> None:
    if size < minimum:
        raise IntersectionTooSmall(
            f"{who}: the intersection has {size} ids, below the minimum of {minimum}; refusing to align "
            "(a small intersection reveals whether individual customers are in the other party's data)")


class _PsiRole:
    """What both sides hold: their normalised ids, the job's parties, the domain-separation context, the minimum."""

    def __init__(self, ids: Sequence[Any], parties: Parties, context: str,
                 min_intersection: int = DEFAULT_MIN_INTERSECTION, executor: Executor | None = None) -> None:
        self.ids = normalise_ids(ids)
        self.parties = parties
        self.context = context
        self.min_intersection = min_intersection
        self.executor = executor


class PsiHost(_PsiRole):
    """A host's side: exchanges with the guest, returns the (final) intersection in canonical order."""

    def run(self, channel: Channel) -> PsiResult:
        me, guest = channel.party_id, self.parties.guest
        side = _Side(me, guest, f"psi.{me}", self.executor)
        found, guest_size = side.exchange(channel, hash_to_curve(self.ids, self.context, executor=self.executor))
        _check_size(len(found), self.min_intersection, me)
        canonical = sorted(found, key=lambda i: self.ids[i])
        if len(self.parties.hosts) > 1:
            keep = channel.recv(guest, f"psi.{me}.keep")
            if keep.get("refused"):
                raise IntersectionTooSmall(f"{me}: the guest refused the alignment: {keep['refused']}")
            idx = np.asarray(keep["indices"], dtype=np.int64)
            if idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= len(canonical))) \
                    or np.any(np.diff(idx) <= 0):
                raise PsiError(f"{guest!r} sent invalid intersection indices")
            canonical = [canonical[i] for i in idx]
            _check_size(len(canonical), self.min_intersection, me)
        return PsiResult([self.ids[i] for i in canonical], np.asarray(canonical, dtype=np.int64),
                         {guest: guest_size})


class PsiGuest(_PsiRole):
    """The guest's side: one exchange per host, then the intersection over all hosts."""

    def run(self, channel: Channel) -> PsiResult:
        me = channel.party_id
        hashed = hash_to_curve(self.ids, self.context, executor=self.executor)
        pairwise: dict[str, list[int]] = {}
        sizes: dict[str, int] = {}
        for host in self.parties.hosts:  # all exchanges first, so every host hears the outcome below
            found, sizes[host] = _Side(me, host, f"psi.{host}", self.executor).exchange(channel, hashed)
            pairwise[host] = sorted(found, key=lambda i: self.ids[i])
        final = set.intersection(*(set(rows) for rows in pairwise.values()))
        canonical = sorted(final, key=lambda i: self.ids[i])
        if len(self.parties.hosts) == 1:
            _check_size(len(canonical), self.min_intersection, me)  # the host checks the same size itself
        else:
            small = [f"{h}: {len(r)}" for h, r in pairwise.items() if len(r) < self.min_intersection]
            if len(canonical) < self.min_intersection:
                small.append(f"all hosts: {len(canonical)}")
            # hosts hear only *that* the alignment was refused, never another host's intersection size
            refused = f"an intersection is below the minimum of {self.min_intersection}" if small else ""
            for host, rows in pairwise.items():
                indices = np.array([] if refused else [k for k, row in enumerate(rows) if row in final],
                                   dtype=np.int64)
                channel.send(host, f"psi.{host}.keep", {"indices": indices, "refused": refused})
            if refused:
                raise IntersectionTooSmall(f"{me}: refusing to align, {refused} ({', '.join(small)})")
        return PsiResult([self.ids[i] for i in canonical], np.asarray(canonical, dtype=np.int64), sizes)
