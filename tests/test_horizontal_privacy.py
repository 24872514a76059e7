"""What the aggregator and the clients of a horizontal job receive: only what the plug-in's disclosures declare.

Every message in the in-memory transcript is matched against ``Algorithm.disclosures`` and its content is
checked field by field; and the one attack the aggregator can mount with a tiny client's update is a test.
"""

from __future__ import annotations

from fnmatch import fnmatch

import numpy as np
import pandas as pd
import pytest

from algorithms import catalogue
from algorithms.horizontal.estimator import FederatedClassifier
from algorithms.horizontal.strategy import METRIC_NAMES


def _frame(rng: np.random.Generator, n: int, prefix: str) -> pd.DataFrame:
    X = rng.normal(size=(n, 4))
    df = pd.DataFrame(X, columns=["age", "limit", "bill", "pay"])
    df.insert(0, "y", (rng.random(n) < 1 / (1 + np.exp(-X[:, 0]))).astype(int))
    df.insert(0, "id", [f"{prefix}{i}" for i in range(n)])
    return df


@pytest.mark.parametrize("algorithm", ["fedavg", "scaffold", "fednova", "fedadam"])
def test_every_message_is_declared_and_carries_nothing_per_row(algorithm: str) -> None:
    rng = np.random.default_rng(2)
    clients = {"north": _frame(rng, 37, "n"), "south": _frame(rng, 41, "s"), "east": _frame(rng, 29, "e")}
    fed = FederatedClassifier(algorithm, rounds=3, batch_size=8, record=True, fine_tune_epochs=1).fit(clients)
    plugin = catalogue.get(algorithm)
    size = len(fed.weights_)
    shapes = fed.plugin.strategy(plugin.parse_params({})).summands(size)
    rows = {len(f) for f in clients.values()}
    transcript = fed.network_.transcript
    assert transcript
    for d in transcript:
        receiver_role = "arbiter" if d.receiver == "arbiter" else "client"
        sender_role = "arbiter" if d.sender == "arbiter" else "client"
        assert sender_role != receiver_role, f"{d.sender} -> {d.receiver}: clients never talk to each other"
        assert any(x.receiver == receiver_role and x.sender == sender_role and fnmatch(d.tag, x.tag)
                   for x in plugin.disclosures), f"undeclared message {d.tag!r} to {d.receiver}"
        stack = [d.payload]
        while stack:  # no vector as long as a client's row count: nothing per row
            v = stack.pop()
            if isinstance(v, dict):
                stack.extend(v.values())
            elif isinstance(v, list):
                stack.extend(v)
            elif isinstance(v, np.ndarray):
                assert v.size <= size and not (set(v.shape) & rows), (d.tag, v.shape)
        p = d.payload
        if d.tag.startswith("join."):
            assert set(p) == {"features", "digest", "rows", "notes"}
        elif d.tag.startswith("prep.global."):
            assert set(p) == {"space"} and set(p["space"]) == {"names", "mean", "scale", "count", "categories"}
        elif d.tag.startswith("prep."):
            assert set(p) == {"count", "sum", "sumsq", "categories"} and len(p["sum"]) == 4
        elif d.tag.startswith("upd."):
            assert set(p) == {"vectors", "metrics"} and set(p["metrics"]) == set(METRIC_NAMES)
            assert {k: len(v) for k, v in p["vectors"].items()} == shapes
        elif d.tag.startswith("ins."):
            assert p["action"] in {"fit", "wait", "finish"}
            assert set(p) <= {"action", "round", "attempt", "weights", "extras", "last_accepted"}
            if p["action"] == "fit":
                assert set(p["extras"]) == ({"c"} if algorithm == "scaffold" else set())
        else:
            assert d.tag.startswith("welcome."), d.tag


def test_the_aggregator_learns_only_aggregates_at_evaluation() -> None:
    rng = np.random.default_rng(4)
    clients = {"north": _frame(rng, 60, "n"), "south": _frame(rng, 70, "s")}
    fed = FederatedClassifier("fedavg", rounds=2, batch_size=8, record=True).fit(clients)
    report = fed.evaluate({"north": _frame(rng, 53, "x"), "south": _frame(rng, 47, "z")})
    plugin = catalogue.get("fedavg")
    for d in fed.eval_network_.received_by("arbiter"):
        assert any(x.receiver == "arbiter" and fnmatch(d.tag, x.tag) for x in plugin.disclosures), d.tag
        assert set(d.payload) == {"rows", "positives", "notes", "models", "hist_pos", "hist_neg"}
        assert len(d.payload["hist_pos"]) == 100
    assert report["rows"] == 100


def test_attack_one_row_client_update_reveals_its_row_unless_the_guard_holds() -> None:
    """With one local full-batch SGD step from w = 0, a one-row client's update is −lr·(σ(0) − y)·[x, 1]:
    the aggregator, which also knows the pooled scaling, recovers the raw row as Δcoef / Δintercept."""
    rng = np.random.default_rng(9)
    clients = {"big": _frame(rng, 50, "b"), "tiny": _frame(rng, 1, "t")}
    secret = clients["tiny"][["age", "limit", "bill", "pay"]].to_numpy(float)[0]

    def attack(**guard: int) -> np.ndarray | None:
        fed = FederatedClassifier("fedavg", rounds=1, batch_size=0, local_epochs=1, optimizer="sgd", min_updates=2,
                                  record=True, **guard).fit(clients)
        up = next(d.payload["vectors"]["delta"] for d in fed.network_.received_by("arbiter")
                  if d.sender == "tiny" and d.tag.startswith("upd."))
        if up[-1] == 0:
            return None
        space = fed.summary_.space
        return up[:-1] / up[-1] * space.scale + space.mean

    np.testing.assert_allclose(attack(min_client_rows=1), secret, rtol=1e-9)  # the leak is real
    assert attack() is None  # default guard: fewer than 10 rows contribute a zero-weight update
