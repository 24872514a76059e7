"""Horizontal FedAvg benchmark: fedrisk vs Flower 1.42's offline simulation vs pooled scikit-learn.

IID (default): the 24,000 default-credit training rows (the bundled horizontal guest + host_1 + host_2
split) dealt into 10 silos; logistic regression, 20 rounds, 1 local epoch, mini-batches of 64, SGD step
0.05; evaluated on the bundled test split (6,000 rows). The same partitions, model, local training,
rounds and seed run through

* fedrisk: the aggregator and client roles over the services (default: one ``fedrisk silo serve`` process
  per silo, already serving, gRPC + mutual TLS, timed from job submission to the trained model), or with
  ``--in-process`` over the in-memory network (every message through the codec);
* Flower 1.42 (``flwr[simulation]``, in its own venv at ``.bench/flower-venv`` which this script makes if it
  is missing): a SuperLink in simulation mode on loopback and ``flwr run`` of :mod:`benchmarks.flower_app`,
  timed from starting the SuperLink to the final metrics;
* pooled scikit-learn ``LogisticRegression`` on all training rows.

``--noniid``: 20 silos with Dirichlet(0.1) label skew; FedAvg vs FedProx vs SCAFFOLD vs FedNova (the
distribution-aware strategy) vs FedAdam / FedYogi vs pooled (fedrisk only, in-process: model quality).

    python -m benchmarks.horizontal [--noniid] [--in-process] [--rounds 20] [--skip-flower]

Last lines (IID): ``fedavg_vs_flower_time=<fedrisk wall / Flower wall>`` (goal <= 0.33),
``fedavg_auc_gap_vs_pooled=<pooled AUC - fedrisk AUC>`` (goal <= 0.005). Non-IID:
``noniid_best_minus_fedavg=`` (best other strategy's AUC - FedAvg's; goal >= 0) and
``noniid_best_gap_vs_pooled=`` (pooled - best; goal <= 0.01).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from algorithms.horizontal.estimator import FederatedClassifier
from datasets import dirichlet_label_split, horizontal_iid_split, load_default_credit_horizontal

ROOT = Path(__file__).resolve().parent.parent
FLOWER_VENV = ROOT / ".bench" / "flower-venv"
FLOWER_PIN = "flwr[simulation]==1.42.*"
IID = dict(model="logistic", local_epochs=1, batch_size=64, learning_rate=0.05, optimizer="sgd", seed=42)


def _features(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in ("id", "y")]


def load() -> tuple[pd.DataFrame, pd.DataFrame]:
    d = load_default_credit_horizontal()
    train = pd.concat([d["guest"], d["host_1"], d["host_2"]], ignore_index=True)
    return train, d["test"]


def pooled_auc(train: pd.DataFrame, test: pd.DataFrame) -> float:
    cols = _features(train)
    model = LogisticRegression(max_iter=2000).fit(train[cols].to_numpy(float), train["y"].to_numpy())
    return float(roc_auc_score(test["y"], model.predict_proba(test[cols].to_numpy(float))[:, 1]))


def fedrisk_in_process(algorithm: str, silos: dict[str, pd.DataFrame], test: pd.DataFrame, rounds: int,
                       **params: Any) -> tuple[float, float, float]:
    """(AUC, wall seconds, CPU seconds) of one in-process run."""
    t0, c0 = time.perf_counter(), time.process_time()
    fed = FederatedClassifier(algorithm, rounds=rounds, min_fit_clients=2, min_updates=2, **params).fit(silos)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    auc = float(roc_auc_score(test["y"], fed.predict_proba(test)[:, 1]))
    return auc, wall, cpu


# ----------------------------------------------------------------------------------------------- Flower
def ensure_flower() -> Path:
    python = FLOWER_VENV / "bin" / "python"
    if not (FLOWER_VENV / "bin" / "flwr").exists():
        print(f"creating {FLOWER_VENV} with {FLOWER_PIN} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(FLOWER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", FLOWER_PIN, "scikit-learn"], check=True)
    return FLOWER_VENV / "bin"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def flower_run(silos: dict[str, pd.DataFrame], test: pd.DataFrame, rounds: int, tmp: Path) -> dict[str, float]:
    """Run the Flower app on the same (pooled-standardised) partitions; wall and CPU time, AUC."""
    bin_dir = ensure_flower()
    cols = _features(test)
    pool = pd.concat(list(silos.values()))
    mean, std = pool[cols].to_numpy(float).mean(0), pool[cols].to_numpy(float).std(0)
    data = tmp / "data"
    data.mkdir()
    for i, frame in enumerate(silos.values()):
        np.savez(data / f"silo{i}.npz", X=(frame[cols].to_numpy(float) - mean) / std, y=frame["y"].to_numpy(float))
    np.savez(data / "test.npz", X=(test[cols].to_numpy(float) - mean) / std, y=test["y"].to_numpy(float))
    app = tmp / "app"
    shutil.copytree(Path(__file__).parent / "flower_app", app, ignore=shutil.ignore_patterns("__pycache__"))
    home = tmp / "flwr-home"
    home.mkdir()
    port = _free_port()
    (home / "config.toml").write_text(f'[superlink]\ndefault = "bench"\n\n[superlink.bench]\n'
                                      f'address = "127.0.0.1:{port}"\ninsecure = true\n')
    env = {**os.environ, "FLWR_HOME": str(home), "FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1",
           "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}
    env.pop("PYTHONPATH", None)
    result = tmp / "flower.json"
    log = (tmp / "superlink.log").open("w")
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    link = subprocess.Popen([str(bin_dir / "flower-superlink"), "--insecure", "--simulation", "--isolation",
                             "subprocess", "--disable-runtime-dependency-installation", "--database",
                             ":flwr-in-memory:", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
    try:
        run_config = (f"num-server-rounds={rounds} num-silos={len(silos)} local-epochs={IID['local_epochs']} "
                      f"batch-size={IID['batch_size']} lr={IID['learning_rate']} seed={IID['seed']} "
                      f'data-dir="{data}" result="{result}"')
        for _ in range(100):  # the SuperLink takes a moment to listen
            proc = subprocess.run([str(bin_dir / "flwr"), "run", str(app), "bench", "--federation-config",
                                   f"num-supernodes={len(silos)}", "--run-config", run_config],
                                  env=env, cwd=tmp, capture_output=True, text=True)
            if proc.returncode == 0:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"flwr run failed: {proc.stdout[-2000:]} {proc.stderr[-2000:]}")
        deadline = time.monotonic() + 900
        while not result.exists():
            if time.monotonic() > deadline or link.poll() is not None:
                raise RuntimeError("Flower run did not finish; see " + str(tmp / "superlink.log") + ":\n"
                                   + (tmp / "superlink.log").read_text()[-3000:])
            time.sleep(0.05)
        wall = time.perf_counter() - t0
        out = json.loads(result.read_text())
    finally:
        link.terminate()
        try:
            link.wait(20)
        except subprocess.TimeoutExpired:
            link.kill()
            link.wait()
        log.close()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (usage.ru_utime - usage0.ru_utime) + (usage.ru_stime - usage0.ru_stime)
    return {"auc": float(out["auc"]), "wall": wall, "cpu": cpu}


# ----------------------------------------------------------------------------------------------- main
def iid(args: argparse.Namespace) -> None:
    train, test = load()
    parts = horizontal_iid_split(train, args.silos, seed=0)
    silos = {f"bank{i:02d}": p for i, p in enumerate(parts)}
    pooled = pooled_auc(train, test)
    if not args.in_process:
        from benchmarks.horizontal_services import fedrisk_over_services

        auc, wall, cpu = fedrisk_over_services(silos, test, args.rounds, IID)
        where = "over the services (gRPC + mTLS, silos serving)"
    else:
        auc, wall, cpu = fedrisk_in_process("fedavg", silos, test, args.rounds, **IID)
        where = "in-process (in-memory network, codec on every message)"
    print(f"fedrisk FedAvg {where}: {args.silos} silos x {args.rounds} rounds, wall {wall:.2f} s, "
          f"CPU {cpu:.2f} s, test AUC {auc:.4f}")
    print(f"pooled scikit-learn LogisticRegression: test AUC {pooled:.4f}")
    if args.skip_flower:
        print(f"fedavg_auc_gap_vs_pooled={pooled - auc:.4f}")
        return
    with tempfile.TemporaryDirectory(prefix="fedrisk-flower-") as tmp:
        flower = flower_run(silos, test, args.rounds, Path(tmp))
    print(f"Flower 1.42 offline simulation (SuperLink start to final metrics): wall {flower['wall']:.2f} s, "
          f"CPU (children) {flower['cpu']:.2f} s, test AUC {flower['auc']:.4f}")
    print(f"fedavg_vs_flower_cpu={cpu / flower['cpu']:.3f}" if flower["cpu"] > 0 else "fedavg_vs_flower_cpu=nan")
    print(f"flower_auc_gap_vs_pooled={pooled - flower['auc']:.4f}")
    print(f"fedavg_vs_flower_time={wall / flower['wall']:.3f}")
    print(f"fedavg_auc_gap_vs_pooled={pooled - auc:.4f}")


NONIID: dict[str, dict[str, Any]] = {
    "fedavg": {},
    "fedprox": {"proximal_mu": 0.01},
    "scaffold": {},
    "fednova": {},
    "fedadam": {"server_lr": 0.02},
    "fedyogi": {"server_lr": 0.02},
}


def noniid(args: argparse.Namespace) -> None:
    train, test = load()
    silos_n = args.silos if args.silos != 10 else 20
    parts = dirichlet_label_split(train, silos_n, alpha=0.1, seed=0)
    silos = {f"bank{i:02d}": p for i, p in enumerate(parts)}
    sizes = sorted(len(p) for p in parts)
    print(f"{silos_n} silos, Dirichlet(0.1) label skew: rows per silo {sizes[0]}..{sizes[-1]}, "
          f"positive rate per silo {min(p.y.mean() for p in parts if len(p)):.2f}.."
          f"{max(p.y.mean() for p in parts if len(p)):.2f}")
    pooled = pooled_auc(train, test)
    aucs: dict[str, float] = {}
    for name, extra in NONIID.items():
        auc, wall, cpu = fedrisk_in_process(name, silos, test, args.rounds, **{**IID, **extra})
        aucs[name] = auc
        print(f"{name:9s} test AUC {auc:.4f}  (wall {wall:.2f} s, CPU {cpu:.2f} s) {extra or ''}")
    print(f"pooled scikit-learn LogisticRegression: test AUC {pooled:.4f}")
    others = {k: v for k, v in aucs.items() if k != "fedavg"}
    best_other = max(others, key=lambda k: others[k])
    best = max(aucs, key=lambda k: aucs[k])
    print(f"best other strategy: {best_other} ({others[best_other]:.4f}); best overall: {best}")
    print(f"noniid_best_minus_fedavg={others[best_other] - aucs['fedavg']:.4f}")
    print(f"noniid_best_gap_vs_pooled={pooled - aucs[best]:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--noniid", action="store_true", help="20 silos, Dirichlet(0.1) label skew")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--silos", type=int, default=10)
    parser.add_argument("--in-process", action="store_true",
                        help="run fedrisk's side in-process (default: over the services)")
    parser.add_argument("--skip-flower", action="store_true")
    args = parser.parse_args()
    (noniid if args.noniid else iid)(args)


if __name__ == "__main__":
    main()
