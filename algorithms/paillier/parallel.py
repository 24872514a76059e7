"""One small interface for running the heavy Paillier loops on several cores.

:func:`parallel_map` splits work into chunks and maps a module-level function over them with any
``concurrent.futures.Executor``. ``None`` runs inline. :func:`shared_executor` is a lazily created
process pool (:class:`WorkerPool`, ``forkserver`` start, so it is safe next to gRPC and role threads) sized to
the cores; its size is the explicit attribute :attr:`WorkerPool.workers`. Its workers never re-import the
caller's ``__main__`` (estimators work from plain scripts, notebooks and REPLs) and never outlive this process
(see :mod:`algorithms.paillier.process_pool`). If no process pool can be started here it falls back to
threads (gmpy2 releases the GIL in its exponentiations), with a warning. Roles never create a pool themselves:
they run on the executor their :class:`~algorithms.api.RoleContext` (or their caller) hands them.
Only our own worker processes are involved: nothing from a peer is ever unpickled. Long lists of big integers
travel to and from the workers as one :class:`Packed` blob (a list of ``mpz`` pickles one object at a time).

What it reveals: nothing; this is local computation.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import gmpy2
from gmpy2 import mpz

from algorithms.paillier.process_pool import detached_pool_options

T = TypeVar("T")

_lock = threading.Lock()


class WorkerPool(ProcessPoolExecutor):
    """A process pool that says how many tasks it runs at once (:attr:`workers`)."""

    def __init__(self, workers: int, **options: Any) -> None:
        super().__init__(max_workers=workers, **options)
        self.workers = int(workers)


class ThreadWorkerPool(ThreadPoolExecutor):
    """The fallback where no process can be started: threads (gmpy2 releases the GIL), same :attr:`workers`."""

    def __init__(self, workers: int) -> None:
        super().__init__(max_workers=workers, thread_name_prefix="paillier")
        self.workers = int(workers)


_pool: WorkerPool | ThreadWorkerPool | None = None
_log = logging.getLogger(__name__)


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def shared_executor() -> WorkerPool | ThreadWorkerPool:
    """The process pool shared by every role in this process (created on first use)."""
    global _pool
    with _lock:
        if _pool is None:
            try:
                _pool = WorkerPool(cpu_count(), **detached_pool_options())
                _pool.submit(int).result()  # fail here, not in the middle of a protocol
            except (OSError, RuntimeError, ValueError) as exc:  # e.g. no /dev/shm, sandboxed interpreter
                _log.warning("no process pool (%s): running the Paillier work on threads", exc)
                _pool = ThreadWorkerPool(cpu_count())
            atexit.register(_pool.shutdown, wait=False, cancel_futures=True)
        return _pool


def chunk_slices(total: int, parts: int, min_chunk: int = 1) -> list[slice]:
    """Split ``range(total)`` into at most ``parts`` contiguous slices of at least ``min_chunk``."""
    parts = max(1, min(parts, total // max(min_chunk, 1)))
    step, extra = divmod(total, parts)
    out, start = [], 0
    for i in range(parts):
        stop = start + step + (1 if i < extra else 0)
        out.append(slice(start, stop))
        start = stop
    return [s for s in out if s.stop > s.start] or [slice(0, total)]


def parallel_map(fn: Callable[..., T], calls: Sequence[tuple[Any, ...]], executor: Executor | None) -> list[T]:
    """``[fn(*args) for args in calls]``, on ``executor`` when given and there is more than one call."""
    if executor is None or len(calls) <= 1:
        return [fn(*args) for args in calls]
    futures = [executor.submit(fn, *args) for args in calls]
    return [f.result() for f in futures]


def workers(executor: Executor | None) -> int:
    """How many chunks to cut work into for ``executor``: 1 inline, a :class:`WorkerPool`'s ``workers``,
    the public ``workers`` attribute of any other executor that has one (a Dask cluster's executor from
    :mod:`silo.compute`), else the core count."""
    if executor is None:
        return 1
    if isinstance(executor, WorkerPool | ThreadWorkerPool):
        return executor.workers
    size = getattr(executor, "workers", None)
    return size if isinstance(size, int) and size > 0 else cpu_count()


_BINARY_HEAD = b"\x01\x01"  # gmpy2.to_binary's header of a non-negative mpz


@dataclass(frozen=True)
class Packed:
    """Non-negative integers below ``2^(8·width)`` as one blob in gmpy2's binary form at a fixed width.

    Pickles as a single bytes object: packing and unpacking cost ~1.4 µs per 4096-bit value against
    ~2.6 µs for pickling a list of ``mpz`` (its reducer runs once per element).
    """

    blob: bytes
    width: int

    @staticmethod
    def of(values: Sequence[mpz], width: int) -> Packed:
        return Packed(b"".join([_BINARY_HEAD + v.to_bytes(width, "little") for v in values]), width)

    def unpack(self) -> list[mpz]:
        step, blob = self.width + 2, self.blob
        return [gmpy2.from_binary(blob[i:i + step]) for i in range(0, len(blob), step)]

    def __len__(self) -> int:
        return len(self.blob) // (self.width + 2)


def unpacked(values: Sequence[mpz] | Packed) -> list[mpz]:
    """``values`` as a list (unpacking a :class:`Packed` blob)."""
    return values.unpack() if isinstance(values, Packed) else list(values)


def remote(executor: Executor | None, calls: int) -> bool:
    """Whether :func:`parallel_map` sends these calls to ``executor`` (rather than running them inline)."""
    return executor is not None and calls > 1
