"""One small interface for running the heavy Paillier loops on several cores.

:func:`parallel_map` splits work into chunks and maps a module-level function over them with any
``concurrent.futures.Executor``. ``None`` runs inline. :func:`shared_executor` is a lazily created
:class:`WorkerPool` (a process pool, ``forkserver`` start, so it is safe next to gRPC and role threads)
sized to the cores; its size is the explicit attribute :attr:`WorkerPool.workers`. Roles never create a
pool themselves: they run on the executor their :class:`~algorithms.api.RoleContext` (or their caller)
hands them.
Only our own worker processes are involved: nothing from a peer is ever unpickled.

What it reveals: nothing; this is local computation.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from multiprocessing.context import BaseContext
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()


class WorkerPool(ProcessPoolExecutor):
    """A process pool that says how many tasks it runs at once (:attr:`workers`)."""

    def __init__(self, workers: int, mp_context: BaseContext | None = None) -> None:
        super().__init__(max_workers=workers, mp_context=mp_context)
        self.workers = int(workers)


_pool: WorkerPool | None = None


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def shared_executor() -> WorkerPool:
    """The process pool shared by every role in this process (created on first use)."""
    global _pool
    with _lock:
        if _pool is None:
            context = multiprocessing.get_context("forkserver")
            _pool = WorkerPool(cpu_count(), mp_context=context)
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
    the core count for any other executor."""
    if executor is None:
        return 1
    return executor.workers if isinstance(executor, WorkerPool) else cpu_count()
