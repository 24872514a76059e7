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
from typing import Any

from algorithms.paillier import generate_keypair, opcount, shared_executor
from algorithms.paillier.parallel import workers
from algorithms.secureboost import VerticalSecureBoost
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


def _timed(fit: Callable[[Executor], VerticalSecureBoost], executor: Executor,
           worker_cpu: Callable[[], float]) -> tuple[float, float, float, str, dict[str, int]]:
    opcount.reset()
    cpu0, wcpu0, t0 = time.process_time(), worker_cpu(), time.perf_counter()
    model = fit(executor)
    wall = time.perf_counter() - t0
    return wall, time.process_time() - cpu0, worker_cpu() - wcpu0, _model(model), opcount.snapshot()


def main() -> None:
    from distributed import Client, LocalCluster

    data = load_default_credit_vertical()
    train_ids, _ = train_test_split_ids(data.guest)
    train = data.subset(train_ids)
    keypair = generate_keypair(2048)

    def fit(executor: Executor) -> VerticalSecureBoost:
        return VerticalSecureBoost(**SETTINGS).fit(train, keypair=keypair, executor=executor)

    results: dict[str, tuple[float, float, float, str, dict[str, int]]] = {}
    pool = shared_executor()
    pool.submit(int).result()  # start the worker processes outside the timed region
    results["process pool"] = _timed(fit, pool, lambda: 0.0)
    print(f"process pool ({workers(pool)} processes): {results['process pool'][0]:.2f} s wall, "
          f"{results['process pool'][1]:.2f} s CPU in this process (pool workers not counted)")
    for n in (1, 2):
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                          security=True) as cluster, Client(cluster) as client:
            client.wait_for_workers(n, timeout=120)
            executor = DaskExecutor(client, CHUNKS)  # same chunking for both cluster sizes

            def worker_cpu(c: Any = client) -> float:
                return float(sum(c.run(time.process_time).values()))

            executor.submit(int).result()
            name = f"dask {n} worker" + ("s" if n > 1 else "")
            results[name] = _timed(fit, executor, worker_cpu)
            wall, cpu, wcpu, _, _ = results[name]
            print(f"{name} (tls, {CHUNKS} chunks per loop): {wall:.2f} s wall, {cpu:.2f} s CPU in this process, "
                  f"{wcpu:.2f} s CPU in the Dask workers")
    models = {r[3] for r in results.values()}
    ops = results["dask 2 workers"][4]
    print("op counts per tree: " + ", ".join(f"{k}={v}" for k, v in sorted(ops.items())))
    t1, t2 = results["dask 1 worker"][0], results["dask 2 workers"][0]
    print(f"dask_1_worker_seconds={t1:.2f}")
    print(f"dask_2_workers_seconds={t2:.2f}")
    print(f"process_pool_seconds={results['process pool'][0]:.2f}")
    print(f"dask_identical_model={int(len(models) == 1)}")
    print(f"dask_speedup_2_workers={t1 / t2:.2f}")


if __name__ == "__main__":
    main()
