"""Benchmark: one SecureBoost tree on default credit with the process pool, a 1-worker and a 2-worker Dask
local cluster, in one run.

The tree (depth 3, 32 bins, 2048-bit key, the 24,000 training rows, bank guest 13 features + insurer host
10 features) runs in-process (both silos' roles in threads) with every heavy loop on the executor under
test: the bank's CRT encryption of the packed gradients, the insurer's encrypted histograms, re-randomised
packing, the bank's decryptions. Both Dask clusters (TLS on, one thread per worker process) get the same
chunking (2 chunks per loop, as the process pool's 2 workers), so the 1-worker cluster really runs every
chunk on its one worker and the ratio is the parallel speed-up, Dask overheads included.

Each configuration first fits one cold tree (fresh workers: they build their fixed-base tables for the
key, a once-per-key cost), then :data:`ROUNDS` warm trees on the same workers, the two Dask clusters
interleaved (1-2, 2-1, 1-2, ...) so that load from other processes on a shared machine falls on both
alike. Such load only ever adds time, so ``dask_*_seconds`` are the fastest warm tree of each
configuration and ``dask_speedup_2_workers`` their ratio (the same work on the same data, in the same
process); the ratio of the medians, the cold trees, every warm tree, the CPU seconds (this process and
the workers) and, for the fastest warm tree of each configuration, where the wall time went
(:mod:`benchmarks.executor_profile`: per task function the CPU inside the tasks and the wall time with
such tasks outstanding, and the wall time with no task outstanding) are printed too. Every model must be
identical.

Also prints the measured per-operation costs (encryption, histogram term, decryption) that the README's
estimate for 10 M rows x 50 host features on 32 workers is computed from.

Last lines: ``dask_identical_model=<0|1>`` and ``dask_speedup_2_workers=<1-worker time / 2-worker time>``.
Run: ``python -m benchmarks.dask``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from concurrent.futures import Executor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from algorithms.paillier import generate_keypair, opcount, shared_executor
from algorithms.paillier.parallel import workers
from algorithms.secureboost import VerticalSecureBoost
from benchmarks.executor_profile import Breakdown, ProfiledExecutor
from datasets import load_default_credit_vertical, train_test_split_ids
from silo.compute import DaskExecutor, local_cluster

SETTINGS: dict[str, Any] = {"n_estimators": 1, "max_depth": 3, "learning_rate": 0.3, "reg_lambda": 1.0,
                            "min_child_weight": 1.0, "max_bin": 32}
CHUNKS = 2
ROUNDS = 5  # warm trees per configuration


def _model(model: VerticalSecureBoost) -> str:
    guest = model.guest_model_
    assert guest is not None
    parts = {"guest": guest.to_dict(), **{h: m.to_dict() for h, m in model.host_models_.items()}}
    return json.dumps(parts, sort_keys=True, default=str)


@dataclass
class Tree:
    """One timed tree on one configuration."""

    wall: float
    cpu: float  # this process
    worker_cpu: float  # the workers (process pool: CPU inside the tasks only)
    breakdown: Breakdown
    model: str
    ops: dict[str, int]


@dataclass
class Config:
    """A configuration under test: its (profiled) executor and how to read its workers' CPU time."""

    name: str
    executor: ProfiledExecutor
    worker_cpu: Callable[[], float] | None
    cold: float = 0.0
    trees: list[Tree] = field(default_factory=list)

    def median(self) -> Tree:
        return sorted(self.trees, key=lambda t: t.wall)[len(self.trees) // 2]

    def best(self) -> Tree:
        return min(self.trees, key=lambda t: t.wall)


def _tree(fit: Callable[[Executor], VerticalSecureBoost], config: Config) -> Tree:
    config.executor.reset()
    opcount.reset()
    cpu0, t0 = time.process_time(), time.perf_counter()
    wcpu0 = config.worker_cpu() if config.worker_cpu else 0.0
    model = _model(fit(config.executor))
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    breakdown = config.executor.breakdown(wall)
    wcpu = config.worker_cpu() - wcpu0 if config.worker_cpu else breakdown.task_cpu
    return Tree(wall, cpu, wcpu, breakdown, model, opcount.snapshot())


def _cold(fit: Callable[[Executor], VerticalSecureBoost], config: Config) -> Tree:
    tree = _tree(fit, config)  # fresh workers: they build their fixed-base tables for the key here
    config.cold = tree.wall
    return tree


def transport(client: Any, executor: DaskExecutor, count: int = 12_000, repeat: int = 3) -> dict[str, float]:
    """CPU seconds (this process, the workers) per round trip of ``count`` 4096-bit values to a worker and
    back: through Dask's own task and result encoding, and as :class:`DaskExecutor` sends them."""
    import secrets

    from gmpy2 import mpz

    values = [mpz(secrets.randbits(4096)) for _ in range(count)]

    def workers_cpu() -> float:
        return float(sum(client.run(time.process_time).values()))

    out = {}
    for name, trip in (("dask", lambda: client.submit(list, values, pure=False).result()),
                       ("blob", lambda: executor.submit(list, values).result())):
        cpu, wcpu = time.process_time(), workers_cpu()
        for _ in range(repeat):
            assert trip() == values
        out[f"{name}_here"] = (time.process_time() - cpu) / repeat
        out[f"{name}_workers"] = (workers_cpu() - wcpu) / repeat
    return out


def _report(config: Config) -> None:
    walls = ", ".join(f"{t.wall:.2f}" for t in config.trees)
    cpus = ", ".join(f"{t.cpu:.2f} + {t.worker_cpu:.2f}" for t in config.trees)
    best = config.best()
    print(f"{config.name}: cold tree {config.cold:.2f} s; warm trees {walls} s wall (fastest {best.wall:.2f}, "
          f"median {config.median().wall:.2f}); CPU this process + workers {cpus} s")
    print(f"  {config.name}, fastest warm tree: {best.breakdown.line()}")


# The README's scale-out estimate: one tree, depth 3, on ROWS x HOST_FEATURES at one host, CLUSTER workers.
ROWS, HOST_FEATURES, CLUSTER, LINK_GBIT = 10_000_000, 50, 32, 10.0


def per_op_costs(public_key: Any, private_key: Any) -> dict[str, float]:
    """CPU seconds per operation, measured inline (one core): a CRT encryption of a packed (g, h) row, one
    histogram multiplication (row x feature pair), one decryption."""
    import numpy as np

    from algorithms.paillier import Decryptor, Encryptor
    from algorithms.secureboost.histogram import accumulate_pairs, joint_keys

    rng = np.random.default_rng(0)
    encryptor = Encryptor(public_key, private_key, executor=None)
    values = [int(v) for v in rng.integers(0, 1 << 40, 2000)]
    t = time.process_time()
    vector = encryptor.encrypt_encoded(values, 0, 1 << 40)
    encrypt = (time.process_time() - t) / len(values)
    cts = list(vector.ciphertexts) * 10  # 20,000 rows
    bins = rng.integers(0, 32, size=(len(cts), 10)).astype(np.int16)
    keys = joint_keys(bins, 32)
    t = time.process_time()
    _, _, ops = accumulate_pairs(int(public_key.nsquare), cts, keys, 32, 10, False)
    hist = (time.process_time() - t) / (len(cts) * keys.shape[1])
    decryptor = Decryptor(private_key, executor=None)
    t = time.process_time()
    decryptor.decrypt_raw(vector.take(list(range(300))))
    decrypt = (time.process_time() - t) / 300
    return {"encrypt": encrypt, "histogram_pair": hist, "decrypt": decrypt, "histogram_ops": ops}


def estimate(costs: dict[str, float], decryptions_per_tree: int) -> dict[str, float]:
    """Wall seconds of one tree on ROWS x HOST_FEATURES with CLUSTER workers at each silo (perfect split of
    the per-row loops; decryptions scale with features x nodes, not rows; ciphertexts of 512 bytes)."""
    pairs = (HOST_FEATURES + 1) // 2
    rows_histogrammed = ROWS * (1 + 0.5 + 0.5)  # level 0: all rows; levels 1, 2: the smaller children only
    out = {
        "encrypt_s": ROWS * costs["encrypt"] / CLUSTER,
        "histograms_s": rows_histogrammed * pairs * costs["histogram_pair"] / CLUSTER,
        "decrypt_s": decryptions_per_tree * (HOST_FEATURES / 10) * costs["decrypt"] / CLUSTER,
        "transfer_s": ROWS * 512 * 8 / (LINK_GBIT * 1e9),
    }
    out["total_s"] = sum(out.values())
    return out


def main() -> None:
    data = load_default_credit_vertical()
    train_ids, _ = train_test_split_ids(data.guest)
    train = data.subset(train_ids)
    keypair = generate_keypair(2048)

    def fit(executor: Executor) -> VerticalSecureBoost:
        return VerticalSecureBoost(**SETTINGS).fit(train, keypair=keypair, executor=executor)

    pool = shared_executor()
    pool.submit(int).result()  # start the worker processes outside the timed region
    proc = Config(f"process pool ({workers(pool)} processes; worker CPU: inside the tasks)",
                  ProfiledExecutor(pool, workers(pool)), None)
    models = {_cold(fit, proc).model}
    for _ in range(ROUNDS):
        proc.trees.append(_tree(fit, proc))
    _report(proc)
    with ExitStack() as stack:
        dask: list[Config] = []
        for n in (1, 2):
            cluster, client = local_cluster(n)  # as a silo's ``[compute] workers = n``
            stack.enter_context(cluster)
            stack.enter_context(client)
            info = client.scheduler_info()["workers"].values()
            assert sorted(int(w["nthreads"]) for w in info) == [1] * n, "one thread per worker process"
            executor = DaskExecutor(client, CHUNKS, direct=True)  # same chunking for both cluster sizes
            executor.submit(int).result()

            def worker_cpu(c: Any = client) -> float:
                return float(sum(c.run(time.process_time).values()))

            name = f"dask {n} worker{'s' if n > 1 else ''} (tls, {n} x 1 thread, {CHUNKS} chunks per loop)"
            dask.append(Config(name, ProfiledExecutor(executor, CHUNKS), worker_cpu))
        one, two = dask
        models |= {_cold(fit, one).model, _cold(fit, two).model}
        for r in range(ROUNDS):
            for config in (one, two) if r % 2 == 0 else (two, one):
                config.trees.append(_tree(fit, config))
        _report(one)
        _report(two)
        cost = transport(client, executor)
        print(f"round trip of 12,000 ciphertexts to a worker and back (CPU s here + in the workers): Dask's own "
              f"encoding {cost['dask_here']:.2f} + {cost['dask_workers']:.2f}, one blob each way "
              f"{cost['blob_here']:.2f} + {cost['blob_workers']:.2f}")
    models |= {t.model for c in (proc, one, two) for t in c.trees}
    costs = per_op_costs(*keypair)
    print(f"per-operation CPU (one core, inline): CRT encryption {costs['encrypt'] * 1e3:.3f} ms, histogram "
          f"multiplication (row x feature pair) {costs['histogram_pair'] * 1e6:.2f} us, "
          f"decryption {costs['decrypt'] * 1e3:.3f} ms")
    ops = two.best().ops
    est = estimate(costs, ops.get("decryption", 0))
    print(f"estimate, one tree (depth 3) on {ROWS:,} rows x {HOST_FEATURES} host features, {CLUSTER} workers per "
          f"silo, {LINK_GBIT:g} Gbit/s: " + ", ".join(f"{k} {v:.1f}" for k, v in est.items()))
    print("op counts per tree: " + ", ".join(f"{k}={v}" for k, v in sorted(ops.items())))
    b1, b2 = one.best(), two.best()
    print(f"load_average_1min={os.getloadavg()[0]:.1f}")
    print(f"process_pool_cold_seconds={proc.cold:.2f}")
    print(f"dask_1_worker_cold_seconds={one.cold:.2f}")
    print(f"dask_2_workers_cold_seconds={two.cold:.2f}")
    print(f"dask_speedup_2_workers_cold={one.cold / two.cold:.2f}")
    print(f"dask_speedup_2_workers_median={one.median().wall / two.median().wall:.2f}")
    print(f"dask_1_worker_cpu_seconds={b1.cpu + b1.worker_cpu:.2f}")
    print(f"dask_2_workers_cpu_seconds={b2.cpu + b2.worker_cpu:.2f}")
    print(f"process_pool_seconds={proc.best().wall:.2f}")
    print(f"dask_1_worker_seconds={b1.wall:.2f}")
    print(f"dask_2_workers_seconds={b2.wall:.2f}")
    print(f"dask_estimate_tree_10m_rows_50_features_32_workers_seconds={est['total_s']:.0f}")
    print(f"dask_identical_model={int(len(models) == 1)}")
    print(f"dask_speedup_2_workers={b1.wall / b2.wall:.2f}")


if __name__ == "__main__":
    main()
