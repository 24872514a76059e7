"""Benchmark: federated distillation between three banks whose model families differ, plus a newcomer.

The bundled horizontal default-credit split: bank-a (gradient-boosted trees), bank-b (logistic scorecard)
and bank-c (neural net) hold 8,000 labelled customers each. The bundled test split (6,000 rows) is
shuffled (seed 0) and cut into 3,000 reference rows (labels removed: the silos only ever see the features),
500 labelled rows of a newcomer bank (bank-new, a logistic scorecard) and 2,500 evaluation rows — so no label
of a reference row is used anywhere and no evaluation row is a reference row. Two rounds, quality-weighted
consensus, each reference row weighted 2.5 (``soft_weight``: the 3,000 reference rows then weigh a little
more than a bank's ~6,400 own rows), the MLP fine-tuning its current model (``warm_start``), accept-if-better
on each silo's own validation rows. The same seeds every run.

Prints per silo the evaluation AUC of its local-only model and of the model it kept, and last
``distill_min_gain=`` (smallest gain over the three banks), ``distill_weak_gain=`` (gain of the bank whose
local-only model is weakest), ``transfer_gain=`` (the newcomer: kept model vs training on its 500 rows alone).
Before them, a control: ``weak_gain_without_consensus=`` is the weakest bank alone running the same job with
``soft_weight = 0`` (the same rounds, warm starts and accept-if-better, but no reference row): the share of
its gain that is extra training rather than what the federation taught it.

Run: ``python -m benchmarks.distillation [--rounds N] [--soft-weight W] [--no-warm-start] [--leave-one-out]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import roc_auc_score

from algorithms.distillation import FederatedDistillation
from datasets import load_default_credit_horizontal

FAMILIES = {"bank-a": "gbt", "bank-b": "scorecard", "bank-c": "mlp", "bank-new": "scorecard"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--soft-weight", type=float, default=2.5)
    parser.add_argument("--temperature", type=float, default=None)
    parser.add_argument("--warm-start", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--leave-one-out", action=argparse.BooleanOptionalAction, default=False)
    args = parser.parse_args()
    data = load_default_credit_horizontal()
    test = data["test"].sample(frac=1.0, random_state=0).reset_index(drop=True)
    features = [c for c in test.columns if c not in ("id", "y")]
    reference = test.iloc[:3000][features]
    newcomer = test.iloc[3000:3500]
    evaluation = test.iloc[3500:]
    silos = {"bank-a": data["guest"], "bank-b": data["host_1"], "bank-c": data["host_2"], "bank-new": newcomer}
    t0, c0 = time.perf_counter(), time.process_time()
    options = {"rounds": args.rounds, "families": FAMILIES, "temperature": args.temperature,
               "warm_start": args.warm_start, "leave_one_out": args.leave_one_out}
    fd = FederatedDistillation(newcomers=("bank-new",), soft_weight=args.soft_weight, **options).fit(silos, reference)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    X, y = evaluation[features].to_numpy(), evaluation["y"].to_numpy()
    print(f"reference rows {len(reference)}, evaluation rows {len(evaluation)}, rounds {args.rounds}, soft weight "
          f"{args.soft_weight}, warm start {args.warm_start}, leave-one-out {args.leave_one_out}; "
          f"{wall:.1f} s wall, {cpu:.1f} s CPU")
    gains: dict[str, float] = {}
    local_auc: dict[str, float] = {}
    for pid in silos:
        local = roc_auc_score(y, fd.local_proba(pid, X))
        kept = roc_auc_score(y, fd.predict_proba(pid, X))
        s = fd.parts_[pid]["summary"]
        print(f"{pid:9s} {s['family']:9s} train rows {s['train_rows']:5d}  local-only AUC {local:.4f}  "
              f"kept AUC {kept:.4f}  gain {kept - local:+.4f}  accepted rounds {s['accepted']}")
        gains[pid], local_auc[pid] = kept - local, local
    banks = [p for p in silos if p != "bank-new"]
    weakest = min(banks, key=lambda p: local_auc[p])
    print(f"weakest bank: {weakest} ({FAMILIES[weakest]})")
    alone = FederatedDistillation(soft_weight=0.0, **options).fit({weakest: silos[weakest]}, reference)
    assert np.array_equal(alone.local_proba(weakest, X), fd.local_proba(weakest, X))  # the same local-only model
    control = roc_auc_score(y, alone.predict_proba(weakest, X)) - local_auc[weakest]
    print(f"control: {weakest} alone, same job without reference rows (soft weight 0): gain {control:+.4f}, "
          f"accepted rounds {alone.parts_[weakest]['summary']['accepted']}")
    print(f"weak_gain_without_consensus={control:.4f}")
    print(f"distill_min_gain={min(gains[p] for p in banks):.4f}")
    print(f"distill_weak_gain={gains[weakest]:.4f}")
    print(f"transfer_gain={gains['bank-new']:.4f}")


if __name__ == "__main__":
    main()
