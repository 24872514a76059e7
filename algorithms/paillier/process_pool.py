"""The process pool behind :func:`algorithms.paillier.shared_executor`: safe from scripts, notebooks, REPLs.

Two properties the default ``ProcessPoolExecutor`` lacks:

* **The caller's ``__main__`` is never re-run.** ``spawn`` and ``forkserver`` children normally re-import
  the parent's main module (as ``__mp_main__``), so a plain script without an ``if __name__ ==
  "__main__":`` guard would start its own training in every worker and die with ``BrokenProcessPool``.
  Our workers are forked from a forkserver that preloads only this package, and their start-up data
  carries no ``init_main_from_*`` entry: they import nothing of the caller's. Everything a worker runs is
  a module-level function of ``algorithms.paillier`` (importable by name).
* **Workers never outlive their owner.** Each worker asks the kernel for ``SIGKILL`` when its parent
  (the forkserver, which itself exits when the owner's end of its "alive" pipe closes) dies
  (``prctl(PR_SET_PDEATHSIG)``), and a watchdog thread exits the worker as soon as the owning process is
  gone or a zombie — so a ``SIGKILL``\\ed silo leaves no orphaned workers behind.

What it reveals: nothing; only our own processes exchange (pickled) work items, never a peer.
"""

from __future__ import annotations

import ctypes
import io
import multiprocessing
import multiprocessing.context
import multiprocessing.forkserver
import multiprocessing.popen_forkserver
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import reduction, spawn, util
from typing import Any

#: Modules the forkserver imports once, so workers start with gmpy2 and the Paillier code loaded.
PRELOAD = ["algorithms.paillier"]
_PR_SET_PDEATHSIG = 1
_WATCH_SECONDS = 0.5


class _DetachedPopen(multiprocessing.popen_forkserver.Popen):
    """A forkserver child whose start-up data omits the parent's main module."""

    def _launch(self, process_obj: Any) -> None:
        prep_data = {k: v for k, v in spawn.get_preparation_data(process_obj._name).items()
                     if not k.startswith("init_main_")}
        buf = io.BytesIO()
        multiprocessing.context.set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            multiprocessing.context.set_spawning_popen(None)
        self.sentinel, w = multiprocessing.forkserver.connect_to_new_process(self._fds)
        parent_w = os.dup(w)  # the child watches this end to notice the parent's death
        self.finalizer = util.Finalize(self, util.close_fds, (parent_w, self.sentinel))
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = multiprocessing.forkserver.read_signed(self.sentinel)


class _DetachedProcess(multiprocessing.context.ForkServerProcess):
    @staticmethod
    def _Popen(process_obj: Any) -> _DetachedPopen:
        return _DetachedPopen(process_obj)


class DetachedForkServerContext(multiprocessing.context.ForkServerContext):
    """``forkserver`` start method whose workers never import the caller's ``__main__``."""

    Process = _DetachedProcess  # type: ignore[assignment]


def _owner_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:  # pragma: no cover - no /proc: ask the kernel instead
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def _watch_owner(owner: int) -> None:
    while _owner_alive(owner):
        time.sleep(_WATCH_SECONDS)
    os._exit(1)


def init_worker(owner: int) -> None:
    """Worker initializer: die with the parent (kernel signal) and with the owner (watchdog thread)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass
    if not _owner_alive(owner):  # the owner died before prctl took effect
        os._exit(1)
    threading.Thread(target=_watch_owner, args=(owner,), name="owner-watchdog", daemon=True).start()


def detached_pool_options() -> dict[str, Any]:
    """``ProcessPoolExecutor`` options for workers that neither re-run ``__main__`` nor outlive this process."""
    multiprocessing.forkserver.set_forkserver_preload(PRELOAD)
    return {"mp_context": DetachedForkServerContext(), "initializer": init_worker, "initargs": (os.getpid(),)}


def detached_process_pool(max_workers: int) -> ProcessPoolExecutor:
    """A process pool of ``max_workers`` workers that neither re-run ``__main__`` nor outlive this process."""
    return ProcessPoolExecutor(max_workers=max_workers, **detached_pool_options())
