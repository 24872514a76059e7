"""DP options of the horizontal strategies: record-level DP-SGD and client-level DP-FedAvg, ε as dp-accounting's."""

from __future__ import annotations

import re

import dp_accounting
import numpy as np
import pandas as pd
import pytest
from dp_accounting import pld
from sklearn.metrics import roc_auc_score

from algorithms.api import ParamsError
from algorithms.dp.accountant import PLD_DISCRETISATION
from algorithms.dp.strategy import per_example_gradients
from algorithms.horizontal.estimator import FederatedClassifier
from algorithms.horizontal.nets import LogisticNet, MLPNet


def _frame(rng: np.random.Generator, n: int, tag: str, d: int = 4) -> pd.DataFrame:
    X = rng.normal(0, 1, size=(n, d))
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ np.linspace(-1.5, 1.5, d))))).astype(int)
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(d)])
    df.insert(0, "y", y)
    df.insert(0, "id", [f"{tag}-{i}" for i in range(n)])
    return df


@pytest.fixture(scope="module")
def clients() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(5)
    return {f"bank-{i}": _frame(rng, 400, f"b{i}") for i in range(3)}


BASE = {"rounds": 4, "batch_size": 40, "learning_rate": 0.1, "round_timeout": 30.0, "join_timeout": 30.0,
        "dp_seed": 1}


def pld_epsilon(event: dp_accounting.DpEvent, delta: float) -> float:
    acc = pld.PLDAccountant(value_discretization_interval=PLD_DISCRETISATION)
    acc.compose(event)
    return float(acc.get_epsilon(delta))


def test_per_example_gradients_match_the_nets() -> None:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(6, 3)), np.array([0, 1, 1, 0, 1, 0.0])
    for net in (LogisticNet(3), MLPNet(3, (4,))):
        w = net.init(rng) + rng.normal(0, 0.1, net.size)
        g = per_example_gradients(net, w, X, y)
        assert g.shape == (6, net.size)
        assert np.allclose(g.mean(axis=0), net.loss_grad(w, X, y, 0.0)[1])


def test_record_level_dp_reports_the_accountants_epsilon(clients) -> None:
    fc = FederatedClassifier("fedavg", dp="record", dp_epsilon=2.0, dp_clip=1.0, **BASE).fit(clients)
    note = next(n for n in fc.client_models_["bank-0"].notes if n.startswith("record-level DP"))
    eps = float(re.search(r"ε = ([0-9.]+)", note).group(1))
    z = float(re.search(r"noise multiplier ([0-9.]+)", note).group(1))
    steps = int(re.search(r"over (\d+) steps", note).group(1))
    assert steps == 4 * 10  # 4 rounds × 1 epoch / q, q = 40/400
    ref = pld_epsilon(dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(0.1, dp_accounting.GaussianDpEvent(z)), steps), 1e-5)
    assert eps == pytest.approx(ref, abs=2e-3) and eps <= 2.0
    pool = pd.concat(list(clients.values()))
    auc = roc_auc_score(pool["y"], fc.predict_proba(pool[[f"x{i}" for i in range(4)]].to_numpy())[:, 1])
    assert auc > 0.8
    # the summed loss is withheld under DP
    assert all(r.metrics["train_loss"] == 0.0 for r in fc.history_)


def test_record_level_dp_stops_before_the_budget(clients) -> None:
    params = dict(BASE, dp_noise_multiplier=1.0, dp_epsilon=1.0)
    fc = FederatedClassifier("fedavg", dp="record", **params).fit(clients)
    notes = fc.client_models_["bank-1"].notes
    eps = float(re.search(r"ε = ([0-9.]+)", notes[0]).group(1))
    assert eps <= 1.0 and any("would spend" in n for n in notes)


def test_client_level_dp_fedavg_epsilon_per_round(clients) -> None:
    fc = FederatedClassifier("fedavg", dp="client", dp_noise_multiplier=1.5, dp_clip=0.5, **BASE).fit(clients)
    eps = [r.metrics["epsilon"] for r in fc.history_]
    assert eps == sorted(eps) and len(eps) == 4
    ref = pld_epsilon(dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(1.5), 4), 1e-5)
    assert eps[-1] == pytest.approx(ref, abs=1e-9)
    with pytest.raises(ParamsError, match="client-level DP needs"):
        FederatedClassifier("scaffold", dp="client", dp_noise_multiplier=1.0, **BASE).fit(clients)
    with pytest.raises(ParamsError, match="dp needs dp_epsilon"):
        FederatedClassifier("fedavg", dp="record", **BASE).fit(clients)


def test_model_card_privacy_notes(clients) -> None:
    from algorithms import catalogue

    plugin = catalogue.get("fedavg")
    fc = FederatedClassifier("fedavg", dp="client", dp_noise_multiplier=2.0, **BASE).fit(clients)
    params = plugin.parse_params({"dp": "client", "dp_noise_multiplier": 2.0, "secure_aggregation": True,
                                  "min_updates": 3, "min_fit_clients": 3})
    notes = plugin.privacy_notes(params, {}, fc.summary_.to_dict())
    assert notes[0].startswith("Secure aggregation") and "Client-level DP" in notes[1]
    assert f"ε = {fc.history_[-1].metrics['epsilon']:.4f}" in notes[1]
    record = plugin.parse_params({"dp": "record", "dp_epsilon": 1.0})
    assert plugin.privacy_notes(record, {"notes": ["bank-0: record-level DP (DP-SGD): ε = 0.9"]}, None) == [
        "bank-0: record-level DP (DP-SGD): ε = 0.9"]
