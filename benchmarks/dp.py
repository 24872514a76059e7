"""Record-level DP on default credit: 10 silos, FedAvg logistic regression, AUC at ε ∈ {1, 3, 8} vs non-private.

The bundled horizontal default-credit training rows (24,000) are dealt IID to 10 silos (2,400 rows each); the
6,000-row test file scores the global model. Non-private FedAvg and record-level DP-SGD FedAvg
(``dp = "record"``: Poisson sampling q = batch / rows, per-example clip, Gaussian noise calibrated by
dp-accounting's PLD accountant for the job's total steps at δ = 1e-5) run with the same rounds, local epochs,
batch size and step size, in-process (the real roles over the in-memory network). Each silo's reported ε
(its model notes) is checked against dp-accounting computing ε afresh for the same events.

    python -m benchmarks.dp [--rounds 10]

Last lines: ``dp_auc_loss_eps3=`` (non-private AUC − AUC at ε = 3; goal <= 0.02) and
``dp_epsilon_matches_accountant=`` (1 when every silo's ε equals dp-accounting's and is <= its target).
"""

from __future__ import annotations

import argparse
import re
import time

import dp_accounting
import pandas as pd
from dp_accounting import pld
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from algorithms.dp.accountant import PLD_DISCRETISATION
from algorithms.horizontal.estimator import FederatedClassifier
from datasets import load_default_credit_horizontal
from datasets.partition import horizontal_iid_split

EPSILONS = (1.0, 3.0, 8.0)
DELTA = 1e-5


def reference_epsilon(q: float, z: float, steps: int) -> float:
    acc = pld.PLDAccountant(value_discretization_interval=PLD_DISCRETISATION)
    acc.compose(dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(z)), steps))
    return float(acc.get_epsilon(DELTA))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--clip", type=float, default=3.0)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    args = parser.parse_args()
    data = load_default_credit_horizontal()
    pool = pd.concat([data[k] for k in ("guest", "host_1", "host_2")], ignore_index=True)
    silos = {f"silo-{i}": f for i, f in enumerate(horizontal_iid_split(pool, 10, seed=0))}
    test = data["test"]
    features = [c for c in test.columns if c not in ("id", "y")]
    common = {"model": "logistic", "rounds": args.rounds, "local_epochs": 1, "batch_size": args.batch_size,
              "learning_rate": args.learning_rate, "optimizer": "sgd", "round_timeout": 600.0,
              "join_timeout": 120.0, "min_fit_clients": 10, "min_updates": 10}

    def auc(fc: FederatedClassifier) -> float:
        return float(roc_auc_score(test["y"], fc.predict_proba(test[features].to_numpy(float))[:, 1]))

    X = pool[features].to_numpy(float)
    mu, sd = X.mean(axis=0), X.std(axis=0)
    sk = LogisticRegression(max_iter=1000).fit((X - mu) / sd, pool["y"])
    pooled = roc_auc_score(test["y"], sk.predict_proba((test[features].to_numpy(float) - mu) / sd)[:, 1])
    print(f"reference: pooled scikit-learn LR (not federated, not private): AUC {pooled:.4f}")
    t0, c0 = time.perf_counter(), time.process_time()
    base = auc(FederatedClassifier("fedavg", **common).fit(silos))
    print(f"non-private FedAvg LR: AUC {base:.4f} ({args.rounds} rounds, batch {args.batch_size}, "
          f"lr {args.learning_rate})")
    losses: dict[float, float] = {}
    matches = True
    for eps in EPSILONS:
        fc = FederatedClassifier("fedavg", dp="record", dp_epsilon=eps, dp_delta=DELTA, dp_clip=args.clip,
                                 **common).fit(silos)
        a = auc(fc)
        losses[eps] = base - a
        worst = 0.0
        for model in fc.client_models_.values():
            note = next(n for n in model.notes if n.startswith("record-level DP"))
            reported = float(re.search(r"ε = ([0-9.]+)", note).group(1))
            q = float(re.search(r"q = ([0-9.e-]+)", note).group(1))
            z = float(re.search(r"noise multiplier ([0-9.e-]+)", note).group(1))
            steps = int(re.search(r"over (\d+) steps", note).group(1))
            ref = reference_epsilon(q, z, steps)
            worst = max(worst, abs(ref - reported))
            matches &= abs(ref - reported) < 1e-4 and reported <= eps
        print(f"ε = {eps:g}, δ = {DELTA:g}: AUC {a:.4f} (loss {base - a:+.4f}); noise multiplier {z:.3f}, "
              f"q = {q:.4f}, {steps} steps per silo; |ε reported − dp-accounting| <= {worst:.1e}")
    print(f"({time.perf_counter() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU; in-process)")
    print(f"dp_auc_loss_eps1={losses[1.0]:.4f}")
    print(f"dp_auc_loss_eps8={losses[8.0]:.4f}")
    print(f"dp_auc_loss_eps3={losses[3.0]:.4f}")
    print(f"dp_epsilon_matches_accountant={int(matches)}")


if __name__ == "__main__":
    main()
