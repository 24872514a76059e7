"""Where a run on an executor spends its time: a wrapping executor that times every task.

:class:`ProfiledExecutor` wraps any ``concurrent.futures`` executor (the process pool, a Dask cluster's)
and keeps its :attr:`workers`, so the code under test chunks its work exactly as it would on the bare
executor. Each task runs inside :func:`clocked`, which measures the CPU and wall seconds spent in the task
function itself on the worker; the wrapper adds when the caller submitted it and when the result was back
in the calling process. :meth:`ProfiledExecutor.breakdown` turns that into, per task function: tasks, CPU
in the tasks, and the wall time the callers spent with tasks of that function outstanding; plus the wall
time with no task outstanding (the roles' own work in the calling process). What the tasks' CPU does not
explain in the outstanding wall time is transport and scheduling overhead (pickling, TLS, the Dask
scheduler) or waiting for a busy core.

What it reveals: nothing; local timing (lives in ``benchmarks/``: workers import it by name).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any


def clocked(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, float, float]:
    """``fn(*args, **kwargs)`` with the CPU and wall seconds it took here."""
    cpu, wall = time.process_time(), time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.process_time() - cpu, time.perf_counter() - wall


@dataclass
class _Task:
    name: str
    submitted: float
    done: float = 0.0
    cpu: float = 0.0
    wall: float = 0.0


def _union(spans: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for a, b in sorted(spans):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


@dataclass
class Breakdown:
    """Per task function: ``(tasks, CPU seconds in the tasks, wall seconds outstanding)``; ``outside``: wall
    seconds with no task outstanding."""

    wall: float
    functions: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    outstanding: float = 0.0

    @property
    def outside(self) -> float:
        return self.wall - self.outstanding

    @property
    def task_cpu(self) -> float:
        return sum(cpu for _, cpu, _ in self.functions.values())

    def line(self) -> str:
        parts = [f"{name} {n} tasks {cpu:.2f} s CPU / {span:.2f} s wall outstanding"
                 for name, (n, cpu, span) in sorted(self.functions.items(), key=lambda kv: -kv[1][2])]
        return "; ".join(parts) + f"; no task outstanding {self.outside:.2f} s wall"


class ProfiledExecutor(Executor):
    """``executor`` with every task timed (see the module docstring); same :attr:`workers`."""

    def __init__(self, executor: Executor, workers: int) -> None:
        self.inner = executor
        self.workers = workers
        self._tasks: list[_Task] = []
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._tasks = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        task = _Task(getattr(fn, "__name__", type(fn).__name__), time.perf_counter())
        with self._lock:
            self._tasks.append(task)
        inner = self.inner.submit(clocked, fn, args, kwargs)
        outer: Future[Any] = Future()
        outer.set_running_or_notify_cancel()

        def done(f: Future[tuple[Any, float, float]]) -> None:
            task.done = time.perf_counter()
            error = f.exception()
            if error is not None:
                outer.set_exception(error)
                return
            value, task.cpu, task.wall = f.result()
            outer.set_result(value)

        inner.add_done_callback(done)
        return outer

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass  # the wrapped executor belongs to the caller

    def breakdown(self, wall: float) -> Breakdown:
        with self._lock:
            tasks = list(self._tasks)
        out = Breakdown(wall)
        for name in {t.name for t in tasks}:
            mine = [t for t in tasks if t.name == name]
            out.functions[name] = (len(mine), sum(t.cpu for t in mine), _union([(t.submitted, t.done) for t in mine]))
        out.outstanding = _union([(t.submitted, t.done) for t in tasks])
        return out
