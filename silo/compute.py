"""Where a silo's heavy loops run: the local process pool (default) or a Dask cluster inside the silo.

Silo config section::

    [compute]
    executor = "process"              # default: one process pool sized to the host's cores
    # executor = "dask"
    # scheduler = "tls://dask-scheduler.bank.internal:8786"   # an existing cluster inside the institution
    # tls_ca = "dask/ca.pem"          # Dask's own TLS (required for a scheduler address)
    # tls_cert = "dask/client.pem"
    # tls_key = "dask/client-key.pem"
    # workers = 4                     # instead of scheduler: a local cluster of 4 worker processes

:func:`open_compute` turns it into a :class:`Compute`: a ``concurrent.futures.Executor`` plus the number of
tasks it runs at once, which the silo hands to every role through
:class:`~algorithms.api.RoleContext` (``executor``, ``workers``). With Dask the executor is the
client's ``get_executor()`` (``pure=False``: no hashing of large arguments), wrapped so that it states its
size (:class:`DaskExecutor`). A local cluster always runs with Dask's TLS on (temporary credentials); a
scheduler address must be ``tls://`` with the three TLS files.

What it reveals to whom: this module moves no data by itself, but whatever a role computes on the
executor travels to the Dask workers, which are inside the silo's trust boundary: plaintext feature
values and labels-derived values (gradients, hessians) to be encrypted, Paillier public keys and
ciphertexts, and, at a party holding a private key, the key's primes for decryption. Tasks and results
are pickled, one blob each way, between the silo and its own workers (never across the federation). Keep
the workers on the silo's network with TLS on; nothing goes to the other parties.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from concurrent.futures import CancelledError, Executor, Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from algorithms.api import nearest

EXECUTORS = ("process", "dask")
_KEYS = ("executor", "scheduler", "workers", "threads_per_worker", "memory_limit", "tls_ca", "tls_cert", "tls_key")


class ComputeConfigError(ValueError):
    """The ``[compute]`` section is invalid (re-raised by :mod:`silo.config` as its ``ConfigError``)."""


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


@dataclass(frozen=True)
class ComputeConfig:
    """The ``[compute]`` section of a silo config."""

    executor: Literal["process", "dask"] = "process"
    scheduler: str | None = None
    workers: int | None = None
    threads_per_worker: int = 1
    memory_limit: str = "auto"
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None


def parse_compute(raw: dict[str, Any], base: Path, where: str) -> ComputeConfig:
    """Parse ``[compute]`` (absent: the process pool); unknown keys are refused naming the nearest valid one."""
    section = raw.get("compute", {})
    if not isinstance(section, dict):
        raise ComputeConfigError(f"{where}: [compute] must be a table")
    for key in section:
        if key not in _KEYS:
            raise ComputeConfigError(f"{where}: unknown key compute.{key}{nearest(key, _KEYS)}")
    executor = str(section.get("executor", "process"))
    if executor not in EXECUTORS:
        raise ComputeConfigError(f"{where}: compute.executor must be 'process' or 'dask', not {executor!r}"
                          f"{nearest(executor, EXECUTORS)}")
    scheduler, workers = section.get("scheduler"), section.get("workers")
    tls = {k: _resolve(base, str(section[k])) if k in section else None for k in ("tls_ca", "tls_cert", "tls_key")}
    if executor == "process":
        extra = [k for k in ("scheduler", "workers") if k in section]
        if extra:
            raise ComputeConfigError(f"{where}: compute.{extra[0]} needs compute.executor = 'dask'")
    else:
        if (scheduler is None) == (workers is None):
            raise ComputeConfigError(f"{where}: with compute.executor = 'dask' give either compute.scheduler "
                              "(an existing cluster) or compute.workers (a local cluster)")
        if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
            raise ComputeConfigError(f"{where}: compute.workers must be a positive integer, not {workers!r}")
        if scheduler is not None:
            if not str(scheduler).startswith("tls://"):
                raise ComputeConfigError(f"{where}: compute.scheduler must be a tls:// address (Dask traffic "
                                         f"carries the silo's plaintext data and keys), not {scheduler!r}")
            missing = [k for k, v in tls.items() if v is None]
            if missing:
                raise ComputeConfigError(f"{where}: a Dask scheduler address needs compute.{missing[0]} "
                                         "(Dask's own TLS)")
            for key, path in tls.items():
                if path is not None and not path.is_file():
                    raise ComputeConfigError(f"{where}: compute.{key} = {str(path)!r} does not exist")
    threads = section.get("threads_per_worker", 1)
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ComputeConfigError(f"{where}: compute.threads_per_worker must be a positive integer, not {threads!r}")
    return ComputeConfig(executor=executor, scheduler=None if scheduler is None else str(scheduler),  # type: ignore[arg-type]
                         workers=workers, threads_per_worker=threads,
                         memory_limit=str(section.get("memory_limit", "auto")), **tls)


def _run_blob(blob: bytes) -> bytes:
    """On a Dask worker: unpickle ``(fn, args, kwargs)``, run it, pickle the result (one blob each way)."""
    fn, args, kwargs = pickle.loads(blob)  # our own task, from inside the silo
    return pickle.dumps(fn(*args, **kwargs), protocol=pickle.HIGHEST_PROTOCOL)


def _blob(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    try:
        return pickle.dumps((fn, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError):  # a closure or lambda: by value, as Dask would
        import cloudpickle

        return cloudpickle.dumps((fn, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)


#: Task blobs at least this large are sent to a worker directly (``Client.scatter(direct=True)``) instead of
#: inside the task through the scheduler.
SCATTER_BYTES = 1 << 20


class DaskExecutor(Executor):
    """A Dask client's executor that says how many tasks run at once (:attr:`workers`).

    Each task travels as ONE pickled blob and its result comes back as one: Dask's own message encoding
    would give every element of a list (12,000 ciphertexts per chunk) its own pickled frame, which costs
    several times more CPU in the silo's process and in the worker than the data warrants. With
    ``direct`` (a local cluster, or workers the silo can reach) a blob of :data:`SCATTER_BYTES` or more
    goes straight to a worker (round robin) and the task runs there, rather than through the scheduler.
    The blobs stay between the silo and its own workers, over Dask's TLS.
    """

    def __init__(self, client: Any, workers: int, direct: bool = False) -> None:
        self._client = client
        self._inner = client.get_executor(pure=False)
        self.workers = int(workers)
        self.direct = direct

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        blob: Any = _blob(fn, args, kwargs)
        if self.direct and len(blob) >= SCATTER_BYTES:
            blob = self._client.scatter(blob, direct=True, hash=False)
        inner = self._inner.submit(_run_blob, blob)
        outer: Future[Any] = Future()

        def done(f: Future[bytes]) -> None:
            if f.cancelled():
                outer.set_exception(CancelledError())
            elif (error := f.exception()) is not None:
                outer.set_exception(error)
            else:
                try:
                    outer.set_result(pickle.loads(f.result()))  # from our own worker
                except BaseException as exc:  # handed to the caller through the future
                    outer.set_exception(exc)

        outer.set_running_or_notify_cancel()
        inner.add_done_callback(done)
        return outer

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._inner.shutdown(wait=wait)


@dataclass
class Compute:
    """An executor, its size, and what to close when the silo stops."""

    executor: Executor
    workers: int
    kind: str
    _close: Callable[[], None] = lambda: None

    def close(self) -> None:
        self._close()


def open_compute(config: ComputeConfig | None) -> Compute:
    """Start (or connect to) what ``config`` names."""
    config = config or ComputeConfig()
    if config.executor == "process":
        from algorithms.paillier import shared_executor
        from algorithms.paillier.parallel import workers

        pool = shared_executor()
        return Compute(pool, workers(pool), "process")
    from distributed import Client
    from distributed.security import Security

    if config.workers is not None:
        cluster, client = local_cluster(config.workers, config.threads_per_worker, config.memory_limit)

        def close() -> None:
            client.close()
            cluster.close()
    else:
        security = Security(tls_ca_file=str(config.tls_ca), tls_client_cert=str(config.tls_cert),
                            tls_client_key=str(config.tls_key), require_encryption=True)
        client = Client(config.scheduler, security=security)
        cluster = None

        def close() -> None:
            client.close()
    client.wait_for_workers(1, timeout=120)
    threads = sum(int(w.get("nthreads", 1)) for w in client.scheduler_info()["workers"].values())
    executor = DaskExecutor(client, max(threads, 1), direct=config.workers is not None)
    return Compute(executor, max(threads, 1), "dask", close)


def local_cluster(workers: int, threads_per_worker: int = 1, memory_limit: str = "auto") -> tuple[Any, Any]:
    """A Dask cluster of ``workers`` processes on this host and a client of it: Dask's TLS on (temporary
    credentials), no dashboard, results fetched from the workers directly rather than through the
    scheduler (which runs in this process)."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=threads_per_worker, processes=True,
                           memory_limit=memory_limit, dashboard_address=None, security=True)
    client = Client(cluster, direct_to_workers=True)
    client.wait_for_workers(workers, timeout=120)
    return cluster, client
