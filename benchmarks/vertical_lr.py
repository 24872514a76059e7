"""Benchmark: one epoch of vertical logistic regression on default credit (24,000 rows, 2048-bit keys).

Bank = guest (13 features + labels), insurer = host (10 features), arbiter holds the key. The real
protocol runs in-process (threads + the shared 2-process pool), every message through the codec.
Settings: the library defaults (``VerticalLRParams``: ``approximation="local"``, Adam with step 0.2 and
``lr_decay=0.2``, batches of 1024 rows: 23 batches per epoch, far above the 10-feature guard), one epoch.
``--approximation taylor`` times the FATE-compatible Taylor mode instead (same optimizer settings);
``--compare`` also times the other mode and prints its seconds per epoch before the final line.

Prints seconds per epoch (as timed by the arbiter, from the first batch to the stop decision), the key
generation and total times, the CPU seconds spent (main process + pool workers: on a shared machine the
wall time depends on other load, CPU/2 is what 2 idle cores would take), the test AUC on the 6,000
held-out rows after this one epoch, the Paillier op counts with the CPU budget they explain (unit costs
measured in the same process, see :mod:`benchmarks.budget`), what re-randomising the masked vectors for the
arbiter costs per epoch (that many DJN obfuscators timed in this process, and its share of the epoch's CPU),
and last ``lr_epoch_seconds=<s>``.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from algorithms.paillier import Encryptor, generate_keypair, opcount, shared_executor
from algorithms.vertical_lr import VerticalLogisticRegression, VerticalLRParams
from algorithms.vertical_lr.params import n_batches
from benchmarks.budget import budget_lines, process_cpu_seconds, table_line, unit_costs
from datasets import VerticalDataset, load_default_credit_vertical, train_test_split_ids


def run_epoch(train: VerticalDataset, test: VerticalDataset, keypair: Any, approximation: str,
              workers: list[int]) -> dict[str, Any]:
    """Fit one epoch; return its timings, CPU seconds, op counts, loss and test AUC."""
    opcount.reset()
    cpu_before, main_before = process_cpu_seconds(workers), time.process_time()
    began = time.perf_counter()
    model = VerticalLogisticRegression(max_epochs=1, keypair=keypair, approximation=approximation).fit(train)
    fit_seconds = time.perf_counter() - began
    cpu = process_cpu_seconds(workers) - cpu_before
    main_cpu = time.process_time() - main_before
    ops = opcount.snapshot()
    auc = roc_auc_score(test.guest["y"], model.predict_proba(test)[:, 1])
    return {"model": model, "fit_seconds": fit_seconds, "cpu": cpu, "main_cpu": main_cpu, "ops": ops, "auc": auc,
            "epoch": model.epoch_seconds_[0]}


def main() -> None:
    default = VerticalLRParams()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--approximation", choices=("local", "taylor"), default=default.approximation)
    parser.add_argument("--compare", action="store_true", help="also time the other approximation")
    args = parser.parse_args()
    data = load_default_credit_vertical()
    train_ids, test_ids = train_test_split_ids(data.guest)
    train, test = data.subset(train_ids), data.subset(test_ids)
    pool = shared_executor()  # start both worker processes outside the timed region
    for future in [pool.submit(time.sleep, 0.2) for _ in range(2)]:
        future.result()
    began = time.perf_counter()
    keypair = generate_keypair(2048)
    keygen = time.perf_counter() - began
    workers = list(getattr(pool, "_processes", {}) or {})
    other = "taylor" if args.approximation == "local" else "local"
    extra = run_epoch(train, test, keypair, other, workers) if args.compare else None
    r = run_epoch(train, test, keypair, args.approximation, workers)
    model, cpu = r["model"], r["cpu"]
    print(f"rows={len(train_ids)} guest_features=13 host_features=10 key_bits=2048 batch_size={default.batch_size} "
          f"optimizer={default.optimizer} learning_rate={default.learning_rate} lr_decay={default.lr_decay} "
          f"approximation={args.approximation}")
    print(f"keygen_seconds={keygen:.2f} fit_seconds={r['fit_seconds']:.2f} bytes_sent={model.network_.bytes_sent}")
    print(f"cpu_seconds={cpu:.1f} (main process + {len(workers)} pool workers; on 2 otherwise idle cores the wall "
          f"time is about cpu/2 = {cpu / 2:.1f} s; 1-minute load average {os.getloadavg()[0]:.1f})")
    print(f"main_process_cpu_seconds={r['main_cpu']:.1f} (the three roles' threads, channel and codec: one GIL) "
          f"pool_workers_cpu_seconds={cpu - r['main_cpu']:.1f}")
    print(f"epoch_seconds={r['epoch']:.2f} loss={model.losses_[0]:.4f} test_auc={r['auc']:.4f}")
    print("opcount " + " ".join(f"{k}={v}" for k, v in sorted(r["ops"].items())))
    print("CPU budget of the fit (op counts x unit costs measured in this process, one core each):")
    guest_x = train.guest.drop(columns=["id", "y"]).to_numpy(float)
    matrices = [np.c_[guest_x, np.ones(len(guest_x))]] + [h.drop(columns=["id"]).to_numpy(float)
                                                          for h in train.hosts.values()]
    for line in budget_lines(r["ops"], unit_costs(*keypair, matrices), cpu, "epoch"):
        print("  " + line)
    print("  " + table_line(keypair[0], len(workers), "epoch"))
    # what re-randomising the masked vectors for the arbiter costs: one obfuscator per gradient entry and
    # batch at every silo, one for the epoch's loss; timed inline in this process (CPU = wall here)
    batches = n_batches(len(train_ids), default.batch_size)
    extra_obfuscators = batches * ((13 + 1) + 10) + 1
    encryptor = Encryptor(keypair[0])
    encryptor.obfuscators(8)  # build the fixed-base table outside the timed region
    cpu_began, wall_began = time.process_time(), time.perf_counter()
    encryptor.obfuscators(extra_obfuscators)
    rerandomise_cpu, rerandomise_wall = time.process_time() - cpu_began, time.perf_counter() - wall_began
    print(f"rerandomise_obfuscators_per_epoch={extra_obfuscators} rerandomise_cpu_seconds_per_epoch="
          f"{rerandomise_cpu:.3f} rerandomise_wall_seconds_per_epoch={rerandomise_wall:.3f} "
          f"rerandomise_share_of_epoch_cpu={rerandomise_cpu / cpu:.4f}")
    if extra is not None:
        print(f"{other}_epoch_seconds={extra['epoch']:.2f} {other}_cpu_seconds={extra['cpu']:.1f} "
              f"{other}_test_auc={extra['auc']:.4f}")
    print(f"lr_epoch_seconds={r['epoch']:.2f}")


if __name__ == "__main__":
    main()
