"""Benchmark: vertical SecureBoost with packed Paillier on default credit (bank guest + insurer host).

5 trees, depth 3, 32 bins, 2048-bit key, the 24,000 training rows of the 80/20 stratified split
(seed 42); prints seconds per tree, the CPU seconds (main process + pool workers) with a budget per
tree (op counts × unit costs measured in this process, see :mod:`benchmarks.budget`), the federated test
AUC on the 6,000 held-out rows, XGBoost's AUC with the same settings, the Paillier op counts, and last
``sbt_seconds_per_tree=<s>``.

Run: ``python -m benchmarks.secureboost``.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from algorithms.base import MemoryCheckpoint
from algorithms.paillier import generate_keypair, opcount, shared_executor
from algorithms.secureboost import VerticalSecureBoost
from benchmarks.budget import budget_lines, process_cpu_seconds, unit_costs
from datasets import load_default_credit_vertical, train_test_split_ids

SETTINGS: dict[str, Any] = {"n_estimators": 5, "max_depth": 3, "learning_rate": 0.3, "reg_lambda": 1.0,
                            "min_child_weight": 1.0, "max_bin": 32}


class TimedCheckpoint(MemoryCheckpoint):
    """Records when each tree is saved (the guest saves right after finishing a tree)."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def save(self, step: int, state: dict[str, Any]) -> None:
        self.times.append(time.perf_counter())
        super().save(step, state)


def xgboost_auc(train: Any, test: Any) -> float:
    import xgboost

    X = train.joined().drop(columns=["id", "y"]).to_numpy()
    Xt = test.joined().drop(columns=["id", "y"]).to_numpy()
    clf = xgboost.XGBClassifier(tree_method="hist", base_score=0.5, n_jobs=2, **SETTINGS)
    clf.fit(X, train.guest["y"].to_numpy())
    return float(roc_auc_score(test.guest["y"], clf.predict_proba(Xt)[:, 1]))


def main() -> None:
    data = load_default_credit_vertical()
    train_ids, test_ids = train_test_split_ids(data.guest)
    train, test = data.subset(train_ids), data.subset(test_ids)
    keypair = generate_keypair(2048)
    pool = shared_executor()
    for future in [pool.submit(time.sleep, 0.2) for _ in range(2)]:  # start both workers outside the timing
        future.result()
    workers = list(getattr(pool, "_processes", {}) or {})
    opcount.reset()
    cpu_before = process_cpu_seconds(workers)
    clock = TimedCheckpoint()
    model = VerticalSecureBoost(**SETTINGS)
    start = time.perf_counter()
    model.fit(train, keypair=keypair, checkpoints={"bank": clock})
    total = time.perf_counter() - start
    cpu = process_cpu_seconds(workers) - cpu_before
    ops = opcount.snapshot()
    per_tree = np.diff([start, *clock.times])
    t0 = time.perf_counter()
    auc = float(roc_auc_score(test.guest["y"], model.predict_proba(test)[:, 1]))
    predict_seconds = time.perf_counter() - t0
    print(f"rows: train {len(train_ids)}, test {len(test_ids)}; guest features 13, host features 10; key 2048 bits")
    print("seconds per tree: " + ", ".join(f"{s:.2f}" for s in per_tree) + f" (total fit {total:.1f} s)")
    print(f"federated prediction of {len(test_ids)} rows: {predict_seconds:.2f} s, "
          f"{model.guest_model_.n_levels} round trips")  # type: ignore[union-attr]
    print(f"SecureBoost test AUC: {auc:.4f}")
    print(f"XGBoost (hist, 32 bins, same settings) test AUC: {xgboost_auc(train, test):.4f}")
    print("op counts: " + ", ".join(f"{k}={v}" for k, v in sorted(ops.items())))
    trees = SETTINGS["n_estimators"]
    print(f"cpu_seconds={cpu:.1f} (main process + {len(workers)} pool workers) = {cpu / trees:.2f} per tree; on 2 "
          f"otherwise idle cores about {cpu / trees / 2:.2f} s per tree; 1-minute load average "
          f"{os.getloadavg()[0]:.1f}")
    print("CPU budget per tree (op counts x unit costs measured in this process, one core each):")
    for line in budget_lines(ops, unit_costs(*keypair), cpu, "tree", divisor=trees):
        print("  " + line)
    print(f"sbt_seconds_per_tree={total / SETTINGS['n_estimators']:.2f}")


if __name__ == "__main__":
    main()
