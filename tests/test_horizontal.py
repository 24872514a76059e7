"""Horizontal federation: strategies against hand-computed references, local models against scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from algorithms import catalogue
from algorithms.api import ParamsError
from algorithms.base import MemoryCheckpoint
from algorithms.horizontal.estimator import FederatedClassifier
from algorithms.horizontal.estimators import LocalLogisticRegression, LocalMLPClassifier
from algorithms.horizontal.nets import LogisticNet, MLPNet
from algorithms.horizontal.plugin import HorizontalAlgorithm
from datasets import load_default_credit_horizontal


def _frame(rng: np.random.Generator, n: int, d: int = 4, shift: float = 0.0) -> pd.DataFrame:
    X = rng.normal(shift, 1.0 + shift, size=(n, d))
    logits = X @ np.linspace(-1, 1, d) + 0.3
    y = (rng.random(n) < 1 / (1 + np.exp(-logits))).astype(int)
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(d)])
    df.insert(0, "y", y)
    df.insert(0, "id", [f"r{shift}-{i}" for i in range(n)])
    return df


@pytest.fixture(scope="module")
def clients() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(0)
    return {"a": _frame(rng, 120), "b": _frame(rng, 70, shift=0.5), "c": _frame(rng, 200, shift=-0.3)}


def _pooled(clients: dict[str, pd.DataFrame]) -> tuple[np.ndarray, np.ndarray]:
    pool = pd.concat(list(clients.values()))
    X = pool[[c for c in pool.columns if c.startswith("x")]].to_numpy(float)
    return (X - X.mean(axis=0)) / X.std(axis=0), pool["y"].to_numpy(float)


def test_catalogue_lists_the_horizontal_plugins() -> None:
    for name in ("fedavg", "fedprox", "scaffold", "fedadam", "fedyogi", "fednova"):
        plugin = catalogue.get(name)
        assert isinstance(plugin, HorizontalAlgorithm) and plugin.name == name
        assert plugin.topology == "horizontal" and plugin.stages == ("train", "evaluate")
        assert plugin.arbiter == "aggregator" and plugin.metric_roles == ("client",)
    with pytest.raises(ParamsError, match="did you mean 'proximal_mu'"):
        catalogue.get("fedprox").parse_params({"proximal_m": 0.1})
    with pytest.raises(ParamsError, match="optimizer = 'sgd'"):
        catalogue.get("scaffold").parse_params({"optimizer": "adam"})


def test_fedavg_one_full_batch_step_equals_centralised_gradient_descent(clients: dict[str, pd.DataFrame]) -> None:
    lr, l2, rounds = 0.5, 0.01, 8
    fed = FederatedClassifier("fedavg", rounds=rounds, local_epochs=1, batch_size=0, learning_rate=lr, l2=l2,
                              optimizer="sgd").fit(clients)
    X, y = _pooled(clients)
    net = LogisticNet(X.shape[1])
    w = np.zeros(net.size)
    for _ in range(rounds):
        w = w - lr * net.loss_grad(w, X, y, l2)[1]
    np.testing.assert_allclose(fed.weights_, w, rtol=0, atol=1e-12)
    assert [r.contributors for r in fed.history_] == [["a", "b", "c"]] * rounds


def test_fedprox_with_zero_mu_equals_fedavg(clients: dict[str, pd.DataFrame]) -> None:
    common = dict(rounds=3, local_epochs=2, batch_size=16, learning_rate=0.1, optimizer="adam")
    avg = FederatedClassifier("fedavg", **common).fit(clients)
    prox0 = FederatedClassifier("fedprox", proximal_mu=0.0, **common).fit(clients)
    prox = FederatedClassifier("fedprox", proximal_mu=1.0, **common).fit(clients)
    np.testing.assert_array_equal(prox0.weights_, avg.weights_)
    assert np.abs(prox.weights_ - avg.weights_).max() > 1e-4


def test_scaffold_control_variates_match_a_hand_computed_two_client_case() -> None:
    rng = np.random.default_rng(3)
    two = {"a": _frame(rng, 40), "b": _frame(rng, 25, shift=1.0)}
    lr, K, server_lr, rounds = 0.3, 3, 0.8, 2
    cps = {p: MemoryCheckpoint() for p in ("arbiter", "a", "b")}
    fed = FederatedClassifier("scaffold", rounds=rounds, local_epochs=K, batch_size=0, learning_rate=lr,
                              server_lr=server_lr, checkpoints=cps).fit(two)
    # by hand: the pooled standardisation, then option-II SCAFFOLD with N = 2
    pool = pd.concat(list(two.values()))
    cols = [c for c in pool.columns if c.startswith("x")]
    mu, sd = pool[cols].to_numpy(float).mean(0), pool[cols].to_numpy(float).std(0)
    data = {k: ((f[cols].to_numpy(float) - mu) / sd, f["y"].to_numpy(float)) for k, f in two.items()}
    net = LogisticNet(len(cols))
    x, c = np.zeros(net.size), np.zeros(net.size)
    ci = {k: np.zeros(net.size) for k in two}
    for _ in range(rounds):
        dy, dc = [], []
        for k, (X, y) in data.items():
            w = x.copy()
            for _ in range(K):
                w = w - lr * (net.loss_grad(w, X, y, 0.0)[1] + c - ci[k])
            c_plus = ci[k] - c + (x - w) / (K * lr)
            dy.append(w - x)
            dc.append(c_plus - ci[k])
            ci[k] = c_plus
        x = x + server_lr * np.mean(dy, axis=0)
        c = c + np.sum(dc, axis=0) / 2
    np.testing.assert_allclose(fed.weights_, x, atol=1e-12)
    saved = cps["arbiter"].latest()
    assert saved is not None
    np.testing.assert_allclose(saved[1]["strategy_state"]["c"], c, atol=1e-12)
    for k in two:
        client_state = cps[k].latest()
        assert client_state is not None
        # the last round's c_i⁺ waits in "pending" until the aggregator confirms the update was aggregated
        assert client_state[1]["pending"]["round"] == rounds
        np.testing.assert_allclose(client_state[1]["pending"]["private"]["c_i"], ci[k], atol=1e-12)


def test_fednova_with_equal_step_counts_is_fedavg_and_normalises_unequal_ones() -> None:
    rng = np.random.default_rng(5)
    equal = {"a": _frame(rng, 64), "b": _frame(rng, 64, shift=0.4)}
    common = dict(rounds=3, local_epochs=2, batch_size=16, learning_rate=0.1)
    np.testing.assert_allclose(FederatedClassifier("fednova", **common).fit(equal).weights_,
                               FederatedClassifier("fedavg", **common).fit(equal).weights_, atol=1e-12)
    unequal = {"a": _frame(rng, 160), "b": _frame(rng, 32, shift=0.4)}
    one = dict(rounds=1, local_epochs=1, batch_size=16, learning_rate=0.1)
    nova = FederatedClassifier("fednova", record=True, **one).fit(unequal)
    avg = FederatedClassifier("fedavg", **one).fit(unequal)
    ups = {d.sender: d.payload["vectors"] for d in nova.network_.received_by("arbiter") if d.tag.startswith("upd.")}
    steps = {k: v["weighted_steps"][0] / v["weight"][0] for k, v in ups.items()}
    assert steps == {"a": 10.0, "b": 2.0}
    tau_eff = (160 * 10 + 32 * 2) / 192
    expected = tau_eff * (ups["a"]["delta"] + ups["b"]["delta"]) / 192
    np.testing.assert_allclose(nova.weights_, expected, atol=1e-12)
    assert np.abs(nova.weights_ - avg.weights_).max() > 1e-4


@pytest.mark.parametrize("name", ["fedadam", "fedyogi"])
def test_server_optimisers_apply_reddi_et_al_to_the_fedavg_update(name: str, clients: dict[str, pd.DataFrame]
                                                                  ) -> None:
    one = dict(rounds=1, local_epochs=1, batch_size=0, learning_rate=0.5, optimizer="sgd")
    avg = FederatedClassifier("fedavg", **one).fit(clients).weights_  # w0 = 0, so this is the mean update
    opt = FederatedClassifier(name, server_lr=0.05, beta1=0.9, beta2=0.99, tau=1e-3, **one).fit(clients).weights_
    m = 0.1 * avg
    v = 0.01 * avg**2 if name == "fedadam" else -(0.01 * avg**2) * np.sign(-(avg**2))
    np.testing.assert_allclose(opt, 0.05 * m / (np.sqrt(v) + 1e-3), atol=1e-12)


def test_sampling_is_seeded_and_respects_fraction_and_minimum(clients: dict[str, pd.DataFrame]) -> None:
    common = dict(rounds=4, fraction_fit=0.3, min_fit_clients=2, min_updates=2, batch_size=32)
    a = FederatedClassifier("fedavg", **common).fit(clients)
    b = FederatedClassifier("fedavg", **common).fit(clients)
    assert [r.sampled for r in a.history_] == [r.sampled for r in b.history_]
    assert all(len(r.sampled) == 2 for r in a.history_)
    assert len({tuple(r.sampled) for r in a.history_}) > 1
    np.testing.assert_array_equal(a.weights_, b.weights_)


def test_local_logistic_regression_matches_scikit_learn() -> None:
    frame = load_default_credit_horizontal()["guest"]
    X, y = frame.drop(columns=["id", "y"]).to_numpy(float), frame["y"].to_numpy()
    C = 1.0
    ours = LocalLogisticRegression(learning_rate=0.1, epochs=300, batch_size=0, optimizer="adam",
                                   l2=1.0 / (C * len(y))).fit(X, y)
    ref = LogisticRegression(C=C, max_iter=2000).fit(X, y)
    assert abs(roc_auc_score(y, ours.predict_proba(X)[:, 1]) - roc_auc_score(y, ref.predict_proba(X)[:, 1])) < 1e-3
    np.testing.assert_allclose(ours.coef_, ref.coef_[0], atol=0.03)
    assert ours.intercept_ == pytest.approx(ref.intercept_[0], abs=0.02)


def test_mlp_gradient_matches_finite_differences_and_learns() -> None:
    rng = np.random.default_rng(1)
    net = MLPNet(3, (5, 4))
    w = net.init(rng)
    X, y = rng.normal(size=(30, 3)), (rng.random(30) < 0.4).astype(float)
    _, g = net.loss_grad(w, X, y, 0.1)
    eps = 1e-6
    num = np.array([(net.loss_grad(w + eps * e, X, y, 0.1)[0] - net.loss_grad(w - eps * e, X, y, 0.1)[0]) / (2 * eps)
                    for e in np.eye(net.size)])
    np.testing.assert_allclose(g, num, atol=1e-6)
    frame = load_default_credit_horizontal()["guest"]
    Xc, yc = frame.drop(columns=["id", "y"]).to_numpy(float), frame["y"].to_numpy()
    mlp = LocalMLPClassifier(hidden=(8,), epochs=5, learning_rate=0.01).fit(Xc, yc)
    assert roc_auc_score(yc, mlp.predict_proba(Xc)[:, 1]) > 0.74


def test_fedper_keeps_a_local_head_and_evaluation_compares_global_local_personalised() -> None:
    d = load_default_credit_horizontal()
    train = {"a": d["guest"].iloc[:1500], "b": d["host_1"].iloc[:1500], "c": d["host_2"].iloc[:1500]}
    test = d["test"]
    holdout = {"a": test.iloc[:1000], "b": test.iloc[1000:2000], "c": test.iloc[2000:3000]}
    fed = FederatedClassifier("fedavg", model="mlp", hidden=(8,), rounds=4, local_epochs=1, batch_size=64,
                              learning_rate=0.01, optimizer="adam", personal_head=True, fine_tune_epochs=1,
                              baseline_epochs=4).fit(train)
    heads = [m.personalised_weights[MLPNet(23, (8,)).head()] for m in fed.client_models_.values()]  # type: ignore[index]
    assert not np.allclose(heads[0], heads[1])
    for m in fed.client_models_.values():
        np.testing.assert_array_equal(m.global_weights, fed.weights_)
    report = fed.evaluate(holdout)
    assert set(report["overall"]) == {"global", "personalised", "local"}
    assert set(report["silos"]) == {"a", "b", "c"} and report["missing"] == []
    assert report["rows"] == 3000
    for silo in report["silos"].values():
        models = silo["models"]
        assert silo["gain_over_local"] == pytest.approx(models["global"]["auc"] - models["local"]["auc"])
    pooled = roc_auc_score(test.y.iloc[:3000], np.concatenate(
        [fed.client_models_[k].predict_proba(holdout[k].drop(columns=["id", "y"]).to_numpy(float)) for k in holdout]))
    assert report["pooled_global_auc"] == pytest.approx(pooled, abs=0.003)


def test_federated_logistic_regression_reaches_the_pooled_auc_on_default_credit() -> None:
    d = load_default_credit_horizontal()
    train = {"bank_a": d["guest"], "bank_b": d["host_1"], "bank_c": d["host_2"]}
    fed = FederatedClassifier("fedavg", rounds=5, batch_size=64, learning_rate=0.05).fit(train)
    test = d["test"]
    Xt = test.drop(columns=["id", "y"]).to_numpy(float)
    pool = pd.concat(list(train.values()))
    ref = LogisticRegression(max_iter=1000).fit(pool.drop(columns=["id", "y"]).to_numpy(float), pool.y)
    gap = roc_auc_score(test.y, ref.predict_proba(Xt)[:, 1]) - roc_auc_score(test.y, fed.predict_proba(Xt)[:, 1])
    assert gap < 0.005


def test_pooled_report_from_the_clients_reports_matches_the_pooled_scores() -> None:
    from algorithms.horizontal.pooled import pooled_report
    from algorithms.metrics import evaluate_scores

    rng = np.random.default_rng(8)
    reports, ys, ss = {}, [], []
    for k, (n, shift) in enumerate([(900, 0.0), (400, 0.7), (1500, -0.4)]):
        y = (rng.random(n) < 0.25).astype(int)
        s = 1 / (1 + np.exp(-(rng.normal(shift, 1, n) + 1.2 * y)))
        base = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + 0.6 * y)))
        reports[f"s{k}"] = evaluate_scores(y, s, baseline_scores=base).to_dict()
        ys.append(y)
        ss.append(s)
    reports["tiny"] = {"n": 12, "n_bad": 0, "notes": ["12 held-out rows with one class only: no metrics"]}
    pooled = pooled_report(reports)
    y, s = np.concatenate(ys), np.concatenate(ss)
    assert pooled["n"] == len(y) + 12 and pooled["n_bad"] == int(y.sum())
    assert pooled["auc"] == pytest.approx(roc_auc_score(y, s), abs=0.003)
    assert pooled["threshold"]["tp"] == int(((s >= 0.5) & (y == 1)).sum())
    assert sum(d["count"] for d in pooled["deciles"]) == len(y)
    assert sum(d["bads"] for d in pooled["deciles"]) == int(y.sum())
    assert pooled["federation_gain"]["auc"]["delta"] > 0
    assert pooled["per_party"]["tiny"]["auc"] is None and "one class" in pooled["per_party"]["tiny"]["notes"][0]
