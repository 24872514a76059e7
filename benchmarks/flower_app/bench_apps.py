"""ServerApp and ClientApp of the Flower side of ``python -m benchmarks.horizontal`` (benchmark-only).

Clients train the same numpy logistic regression as fedrisk's clients (mini-batch SGD, reshuffled per
epoch, full mean gradient per batch); the server runs Flower's own FedAvg (weighted by example counts) and
scores the bundled test split at the end, writing ``{"auc": ..., "seconds": ...}`` to the result path.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from sklearn.metrics import roc_auc_score

client = ClientApp()
server = ServerApp()


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


def _train(w: np.ndarray, X: np.ndarray, y: np.ndarray, epochs: int, batch: int, lr: float,
           rng: np.random.Generator) -> np.ndarray:
    w = w.copy()
    n = len(y)
    for _ in range(epochs):
        order = rng.permutation(n) if 0 < batch < n else np.arange(n)
        step = batch if 0 < batch < n else n
        for i in range(0, n, step):
            rows = order[i:i + step]
            d = (_sigmoid(X[rows] @ w[:-1] + w[-1]) - y[rows]) / len(rows)
            w[:-1] -= lr * (X[rows].T @ d)
            w[-1] -= lr * d.sum()
    return w


@client.train()
def train(msg: Message, context: Context) -> Message:
    cfg = context.run_config
    pid = int(context.node_config["partition-id"])
    data = np.load(Path(str(cfg["data-dir"])) / f"silo{pid}.npz")
    w = msg.content["arrays"].to_numpy_ndarrays()[0]
    rnd = int(msg.content["config"]["server-round"])
    w = _train(w, data["X"], data["y"], int(cfg["local-epochs"]), int(cfg["batch-size"]), float(cfg["lr"]),
               np.random.default_rng([int(cfg["seed"]), rnd, pid]))
    content = RecordDict({"arrays": ArrayRecord([w]), "metrics": MetricRecord({"num-examples": len(data["y"])})})
    return Message(content=content, reply_to=msg)


@server.main()
def main(grid: Grid, context: Context) -> None:
    cfg = context.run_config
    started = time.perf_counter()
    test = np.load(Path(str(cfg["data-dir"])) / "test.npz")
    strategy = FedAvg(fraction_train=1.0, fraction_evaluate=0.0, min_available_nodes=int(cfg["num-silos"]))
    result = strategy.start(grid=grid, initial_arrays=ArrayRecord([np.zeros(test["X"].shape[1] + 1)]),
                            num_rounds=int(cfg["num-server-rounds"]))
    w = result.arrays.to_numpy_ndarrays()[0]
    auc = float(roc_auc_score(test["y"], _sigmoid(test["X"] @ w[:-1] + w[-1])))
    Path(str(cfg["result"])).write_text(json.dumps({"auc": auc, "seconds": time.perf_counter() - started,
                                                    "weights": w.tolist()}))
