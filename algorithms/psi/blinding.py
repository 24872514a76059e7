"""Blinding hashed points with a secret X25519 scalar, in chunks, on a process pool.

Points travel as fixed-width byte strings: a chunk of n points is one ``bytes`` of ``32·n`` (or an
``(n, 32)`` uint8 numpy array), never a Python object per point. :func:`hash_and_blind` (own ids →
``k·H(id)``) and :func:`blind` (peer points → ``k·P``) cut the work into chunks of :data:`CHUNK` points
and map module-level functions over an ``Executor`` (the silo's process pool; inline when ``None``).
The scalar goes to our own worker processes only; nothing from a peer is unpickled, peer points are raw
bytes checked by the X25519 implementation.

Blinding uses X25519 (RFC 7748: a constant-time Montgomery ladder), from libsodium (PyNaCl) or from
OpenSSL (``cryptography``): the same function, and which one is faster depends on the CPU (libsodium's
AVX code on the AMD EPYC machines measured here, 30-34 against 37 µs; OpenSSL's ADX code on the Intel Xeon
ones, 34 against 37 µs), so the party's process times both on the same points once and has its pool workers
use the faster (:func:`implementation`; ``FEDRISK_PSI_X25519`` fixes it). Scalar multiplication commutes,
``a·(b·P) = b·(a·P)``, and clamping makes every scalar a multiple of the cofactor 8, so a small-order
component in a hashed point (see :mod:`.hashing`) or smuggled in by a peer is erased; both libraries refuse
a low-order input (an all-zero result), which fails the run with :class:`PsiError` naming the peer and the
point's position.

:func:`members` matches double-blinded points with numpy (sort on the first 8 bytes, then a full 32-byte
comparison), so 10 million points need no Python set.

What it reveals to whom: nothing; this is local computation.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from nacl._sodium import ffi, lib  # the cffi handle nacl.bindings.crypto_scalarmult wraps (see _blind_bytes)
from nacl.bindings import sodium_init

from algorithms.psi.hashing import POINT_BYTES, hash_ids

sodium_init()  # picks libsodium's fastest X25519 for this CPU (30 instead of 47 µs here); idempotent

CHUNK = 1 << 15  # points per task and per message (1 MiB of points)


class PsiError(ValueError):
    """Invalid ids, a malformed peer message, or a refused intersection."""


def new_scalar() -> bytes:
    """A fresh secret scalar (X25519 clamps it: a multiple of the cofactor 8, bit 254 set)."""
    return os.urandom(32)


def _multiply_libsodium(scalar: bytes, points: bytes, offset: int, peer: str) -> bytes:
    """libsodium's ``crypto_scalarmult`` through PyNaCl's cffi handle, with pointers into one output buffer: the
    same C call as ``nacl.bindings.crypto_scalarmult`` without its per-point allocation and copies (~1.3 of ~33
    CPU-µs per point). A non-zero return is libsodium refusing a low-order point (an all-zero result)."""
    out = bytearray(len(points))
    dst, src, key = ffi.from_buffer(out), ffi.from_buffer(points), ffi.from_buffer(scalar)
    mult = lib.crypto_scalarmult
    for i in range(0, len(points), POINT_BYTES):
        if mult(dst + i, key, src + i):
            raise PsiError(f"invalid curve point at position {offset + i // POINT_BYTES} from {peer!r}")
    return bytes(out)


def _multiply_openssl(scalar: bytes, points: bytes, offset: int, peer: str) -> bytes:
    """OpenSSL's X25519 through ``cryptography``'s public API (one key object for the scalar, a public-key object
    per point, ~1.9 of ~34 CPU-µs). ``exchange`` raises ``ValueError`` for a low-order point (all-zero result)."""
    exchange, point = X25519PrivateKey.from_private_bytes(scalar).exchange, X25519PublicKey.from_public_bytes
    out: list[bytes] = []
    try:
        for i in range(0, len(points), POINT_BYTES):
            out.append(exchange(point(points[i:i + POINT_BYTES])))
    except ValueError:
        raise PsiError(f"invalid curve point at position {offset + len(out)} from {peer!r}") from None
    return b"".join(out)


#: The X25519 implementations, by name (each computes RFC 7748's function; tests check they agree).
IMPLEMENTATIONS: dict[str, Callable[[bytes, bytes, int, str], bytes]] = {
    "libsodium": _multiply_libsodium, "openssl": _multiply_openssl}


def cpu_costs(points: bytes, rounds: int = 3) -> dict[str, float]:
    """CPU seconds per point of each X25519 implementation on the same ``points`` (a fresh scalar; the
    implementations alternate, the best of ``rounds`` passes counts, so a busy moment hurts neither)."""
    scalar, n = new_scalar(), max(len(points) // POINT_BYTES, 1)
    best = dict.fromkeys(IMPLEMENTATIONS, float("inf"))
    for _ in range(rounds):
        for name, multiply in IMPLEMENTATIONS.items():
            start = time.process_time()
            multiply(scalar, points, 0, "self")
            best[name] = min(best[name], (time.process_time() - start) / n)
    return best


@functools.cache
def implementation() -> str:
    """The X25519 implementation to use: ``FEDRISK_PSI_X25519`` if set, else the faster of the two on this CPU
    by :func:`cpu_costs` over 1,024 points (about 0.2 s, once per process; the two are within 10 % of each
    other, so a wrong pick under load costs little)."""
    chosen = os.environ.get("FEDRISK_PSI_X25519", "").strip().lower()
    if chosen:
        if chosen not in IMPLEMENTATIONS:
            raise ValueError(f"FEDRISK_PSI_X25519={chosen!r}: choose one of {', '.join(sorted(IMPLEMENTATIONS))}")
        return chosen
    costs = cpu_costs(hash_ids([f"calibration-{i}" for i in range(1024)], "fedrisk-x25519-timing"))
    return min(costs, key=costs.__getitem__)


def _blind_bytes(scalar: bytes, points: bytes, offset: int, peer: str, using: str | None = None) -> bytes:
    """``scalar·P`` for every 32-byte point of ``points``, with the X25519 of ``using`` (an
    :data:`IMPLEMENTATIONS` name; default :func:`implementation`)."""
    # libsodium reads 32 bytes at each pointer: a short scalar or a partial last point would read past the buffer
    if len(scalar) != POINT_BYTES:
        raise ValueError(f"an X25519 scalar is {POINT_BYTES} bytes, not {len(scalar)}")
    if len(points) % POINT_BYTES:
        raise PsiError(f"points from {peer!r} are not whole {POINT_BYTES}-byte values")
    return IMPLEMENTATIONS[using or implementation()](scalar, points, offset, peer)


def _hash_and_blind_task(scalar: bytes, ids: list[str], context: str, offset: int, using: str) -> bytes:
    return _blind_bytes(scalar, hash_ids(ids, context), offset, "self", using)


def _blind_task(scalar: bytes, points: bytes, offset: int, peer: str, using: str) -> bytes:
    return _blind_bytes(scalar, points, offset, peer, using)


def _results(futures: list[Future[bytes]]) -> Iterator[bytes]:
    try:
        for f in futures:
            yield f.result()
    finally:
        for f in futures:
            f.cancel()


def hash_and_blind(scalar: bytes, ids: Sequence[str], context: str, executor: Executor | None,
                   chunk: int | None = None) -> Iterator[bytes]:
    """``scalar·H(id)`` for every id, yielded as one ``bytes`` per chunk of ``chunk`` ids, in order."""
    chunk, using = chunk or CHUNK, implementation()
    starts = range(0, len(ids), chunk)
    if executor is None:
        for s in starts:
            yield _hash_and_blind_task(scalar, list(ids[s:s + chunk]), context, s, using)
        return
    yield from _results([executor.submit(_hash_and_blind_task, scalar, list(ids[s:s + chunk]), context, s, using)
                         for s in starts])


class Blinder:
    """Blinds chunks of a peer's points as they arrive (submitted to the executor at once), then collects them."""

    def __init__(self, scalar: bytes, peer: str, executor: Executor | None) -> None:
        self.scalar, self.peer, self.executor = scalar, peer, executor
        self.using = implementation()  # chosen here, once, so every worker runs the same X25519
        self._parts: list[Future[bytes] | bytes] = []
        self._offset = 0

    def add(self, points: bytes) -> None:
        if self.executor is None:
            self._parts.append(_blind_task(self.scalar, points, self._offset, self.peer, self.using))
        else:
            self._parts.append(self.executor.submit(_blind_task, self.scalar, points, self._offset, self.peer,
                                                    self.using))
        self._offset += len(points) // POINT_BYTES

    def result(self) -> np.ndarray:
        """Every blinded point, in arrival order, as an ``(n, 32)`` uint8 array."""
        out = np.empty((self._offset, POINT_BYTES), dtype=np.uint8)
        row = 0
        try:
            for part in self._parts:
                data = part if isinstance(part, bytes) else part.result()
                n = len(data) // POINT_BYTES
                out[row:row + n] = np.frombuffer(data, dtype=np.uint8).reshape(n, POINT_BYTES)
                row += n
        finally:
            for part in self._parts:
                if not isinstance(part, bytes):
                    part.cancel()
        return out


def random_permutation(n: int) -> np.ndarray:
    """A uniformly random permutation of ``range(n)`` from the OS CSPRNG (argsort of 64-bit random keys;
    a tie, probability about n^2 / 2^65, only makes the order among the tied pair deterministic)."""
    keys = np.frombuffer(os.urandom(8 * n), dtype=np.uint64) if n else np.empty(0, dtype=np.uint64)
    return np.argsort(keys, kind="stable").astype(np.int64)


def members(items: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """Boolean mask: ``items[i]`` (a 32-byte point) occurs in ``pool``; both ``(n, 32)`` uint8 arrays.

    Both sides are sorted on their first 8 bytes and merged (``searchsorted`` with sorted queries walks the
    pool once; random queries into ten million keys cost 8x more in cache misses), then every candidate is
    compared in full; pool keys shared by several points (about n^2 / 2^65 of them) are settled exactly."""
    if not len(items) or not len(pool):
        return np.zeros(len(items), dtype=bool)
    a = np.ascontiguousarray(items).view("<u8")
    b = np.ascontiguousarray(pool).view("<u8")
    order_b = np.argsort(b[:, 0])
    keys = b[order_b, 0]
    order_a = np.argsort(a[:, 0])
    queries = a[order_a, 0]
    pos = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
    hit_sorted = keys[pos] == queries
    idx = np.flatnonzero(hit_sorted)
    for s in range(0, len(idx), 1 << 20):  # full 32-byte comparison, a million candidates at a time
        part = idx[s:s + (1 << 20)]
        hit_sorted[part] = np.all(b[order_b[pos[part]], 1:] == a[order_a[part], 1:], axis=1)
    hit = np.empty(len(items), dtype=bool)
    hit[order_a] = hit_sorted
    clash = np.flatnonzero(keys[1:] == keys[:-1])  # pool points sharing their first 8 bytes
    if clash.size:
        shared = np.unique(keys[clash])
        full = {bytes(row) for row in np.asarray(pool)[order_b][np.isin(keys, shared)]}
        for i in np.flatnonzero(np.isin(a[:, 0], shared)):
            hit[i] = bytes(np.asarray(items)[i]) in full
    return hit
