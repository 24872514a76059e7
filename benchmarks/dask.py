"""Benchmark: one SecureBoost tree on default credit with the process pool, a 1-worker and a 2-worker Dask
local cluster, in one run.

The tree (depth 3, 32 bins, 2048-bit key, the 24,000 training rows, bank guest 13 features + insurer host
10 features) runs in-process (both silos' roles in threads) with every heavy loop on the executor under
test: the bank's CRT encryption of the packed gradients, the insurer's encrypted histograms, re-randomised
packing, the bank's decryptions. Both Dask clusters get the same chunking (2 chunks per loop, as the
process pool's 2 workers), so the 1-worker cluster really runs every chunk on its one worker and the
ratio is the parallel speed-up, Dask overheads included. Wall time, this process's CPU time and the Dask
workers' CPU time are printed per run; the three models must be identical.

Also prints the measured per-operation costs (encryption, histogram term, decryption) that the README's
estimate for 10 M rows x 50 host features on 32 workers is computed from.

Last lines: ``dask_identical_model=<0|1>`` and ``dask_speedup_2_workers=<1-worker time / 2-worker time>``.
Run: ``python -m benchmarks.dask``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from algorithms.paillier import generate_keypair, opcount, shared_executor
from algorithms.paillier.parallel import workers
from algorithms.secureboost import VerticalSecureBoost
from benchmarks.executor_profile import Breakdown, ProfiledExecutor
from datasets import load_default_credit_vertical, train_test_split_ids
from silo.compute import DaskExecutor

SETTINGS: dict[str, Any] = {"n_estimators": 1, "max_depth": 3, "learning_rate": 0.3, "reg_lambda": 1.0,
                            "min_child_weight": 1.0, "max_bin": 32}
CHUNKS = 2


def _model(model: VerticalSecureBoost) -> str:
    guest = model.guest_model_
    assert guest is not None
    parts = {"guest": guest.to_dict(), **{h: m.to_dict() for h, m in model.host_models_.items()}}
    return json.dumps(parts, sort_keys=True, default=str)


@dataclass
class Run:
    """One configuration: the cold tree (fresh workers) and the warm one (same workers, second tree)."""

    cold: float
    wall: float
    cpu: float  # this process, warm tree
    worker_cpu: float  # the workers, warm tree (process pool: CPU inside the tasks only)
    breakdown: Breakdown
    models: set[str]
    ops: dict[str, int]


def _run(fit: Callable[[Executor], VerticalSecureBoost], executor: ProfiledExecutor,
         worker_cpu: Callable[[], float] | None) -> Run:
    models = set()
    t0 = time.perf_counter()
    models.add(_model(fit(executor)))  # cold: the workers build their fixed-base tables for the key here
    cold = time.perf_counter() - t0
    executor.reset()
    opcount.reset()
    cpu0, wcpu0, t0 = time.process_time(), worker_cpu() if worker_cpu else 0.0, time.perf_counter()
    models.add(_model(fit(executor)))
    wall = time.perf_counter() - t0
    breakdown = executor.breakdown(wall)
    wcpu = worker_cpu() - wcpu0 if worker_cpu else breakdown.task_cpu
    return Run(cold, wall, time.process_time() - cpu0, wcpu, breakdown, models, opcount.snapshot())


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
    from distributed import Client, LocalCluster

    data = load_default_credit_vertical()
    train_ids, _ = train_test_split_ids(data.guest)
    train = data.subset(train_ids)
    keypair = generate_keypair(2048)

    def fit(executor: Executor) -> VerticalSecureBoost:
        return VerticalSecureBoost(**SETTINGS).fit(train, keypair=keypair, executor=executor)

    def report(name: str, run: Run) -> None:
        print(f"{name}: cold tree {run.cold:.2f} s wall; warm tree {run.wall:.2f} s wall, {run.cpu:.2f} s CPU in "
              f"this process, {run.worker_cpu:.2f} s CPU in the workers")
        print(f"  {name} warm tree breakdown: {run.breakdown.line()}")

    results: dict[str, Run] = {}
    pool = shared_executor()
    pool.submit(int).result()  # start the worker processes outside the timed region
    results["process pool"] = _run(fit, ProfiledExecutor(pool, workers(pool)), None)
    report(f"process pool ({workers(pool)} processes, CPU in the tasks)", results["process pool"])
    for n in (1, 2):
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                          security=True) as cluster, Client(cluster) as client:
            client.wait_for_workers(n, timeout=120)
            info = client.scheduler_info()["workers"].values()
            assert sorted(int(w["nthreads"]) for w in info) == [1] * n, "one thread per worker process"
            executor = DaskExecutor(client, CHUNKS)  # same chunking for both cluster sizes
            executor.submit(int).result()

            def worker_cpu(c: Any = client) -> float:
                return float(sum(c.run(time.process_time).values()))

            name = f"dask {n} worker" + ("s" if n > 1 else "")
            results[name] = _run(fit, ProfiledExecutor(executor, CHUNKS), worker_cpu)
            report(f"{name} (tls, {n} processes x 1 thread, {CHUNKS} chunks per loop)", results[name])
    costs = per_op_costs(*keypair)
    print(f"per-operation CPU (one core, inline): CRT encryption {costs['encrypt'] * 1e3:.3f} ms, histogram "
          f"multiplication (row x feature pair) {costs['histogram_pair'] * 1e6:.2f} us, "
          f"decryption {costs['decrypt'] * 1e3:.3f} ms")
    decryptions = results["dask 2 workers"].ops.get("decryption", 0)
    est = estimate(costs, decryptions)
    print(f"estimate, one tree (depth 3) on {ROWS:,} rows x {HOST_FEATURES} host features, {CLUSTER} workers per "
          f"silo, {LINK_GBIT:g} Gbit/s: " + ", ".join(f"{k} {v:.1f}" for k, v in est.items()))
    models = set().union(*(r.models for r in results.values()))
    ops = results["dask 2 workers"].ops
    print("op counts per tree: " + ", ".join(f"{k}={v}" for k, v in sorted(ops.items())))
    one, two, proc = results["dask 1 worker"], results["dask 2 workers"], results["process pool"]
    print(f"process_pool_cold_seconds={proc.cold:.2f}")
    print(f"dask_1_worker_cold_seconds={one.cold:.2f}")
    print(f"dask_2_workers_cold_seconds={two.cold:.2f}")
    print(f"dask_speedup_2_workers_cold={one.cold / two.cold:.2f}")
    print(f"dask_1_worker_cpu_seconds={one.cpu + one.worker_cpu:.2f}")
    print(f"dask_2_workers_cpu_seconds={two.cpu + two.worker_cpu:.2f}")
    print(f"dask_1_worker_seconds={one.wall:.2f}")
    print(f"dask_2_workers_seconds={two.wall:.2f}")
    print(f"process_pool_seconds={proc.wall:.2f}")
    print(f"dask_estimate_tree_10m_rows_50_features_32_workers_seconds={est['total_s']:.0f}")
    print(f"dask_identical_model={int(len(models) == 1)}")
    print(f"dask_speedup_2_workers={one.wall / two.wall:.2f}")


if __name__ == "__main__":
    main()
