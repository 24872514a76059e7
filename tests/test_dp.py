"""Differential privacy: ε equals dp-accounting's, calibration, budget stop, DP-SGD clipping, DP-FedAvg."""

from __future__ import annotations

import dp_accounting
import numpy as np
import pytest
from dp_accounting import pld, rdp
from sklearn.metrics import roc_auc_score

from algorithms.dp.accountant import (
    PLD_DISCRETISATION,
    BudgetExhausted,
    GaussianEvents,
    PrivacyAccountant,
    calibrate_noise,
    epsilon_of,
)
from algorithms.dp.dpsgd import DPSGDClassifier, LogisticModel, MLPModel, dp_sgd_step
from algorithms.dp.fedavg import ClientLevelDP, clip_update


def test_epsilon_equals_dp_accounting_for_the_same_events() -> None:
    acc = PrivacyAccountant(10.0, 1e-5)
    for _ in range(3):
        acc.spend(0.02, 1.1, 50)  # three rounds of 50 DP-SGD steps
    acc.spend(1.0, 3.0)  # one full-batch release
    # the same events built directly with dp-accounting's API
    event = dp_accounting.ComposedDpEvent([
        dp_accounting.SelfComposedDpEvent(
            dp_accounting.PoissonSampledDpEvent(0.02, dp_accounting.GaussianDpEvent(1.1)), 150),
        dp_accounting.GaussianDpEvent(3.0)])
    ref = pld.PLDAccountant(value_discretization_interval=PLD_DISCRETISATION)
    ref.compose(event)
    assert acc.epsilon == pytest.approx(ref.get_epsilon(1e-5), abs=1e-12)
    ref_rdp = rdp.RdpAccountant()
    ref_rdp.compose(event)
    checks = acc.cross_check()
    assert checks["rdp"] == pytest.approx(ref_rdp.get_epsilon(1e-5), abs=1e-12)
    assert checks["pld"] <= checks["rdp"]  # RDP is the looser bound
    assert len(acc.history) == 4 and acc.history == sorted(acc.history)
    # dp-accounting's own default discretisation agrees to < 1e-3
    fine = pld.PLDAccountant()
    fine.compose(event)
    assert acc.epsilon == pytest.approx(fine.get_epsilon(1e-5), abs=2e-3)


def test_published_reference_figure() -> None:
    # q = 0.01, z = 1.0, T = 1000, δ = 1e-5 → RDP 2.10, PLD 1.83 (REFERENCES.md)
    events = [GaussianEvents(0.01, 1.0, 1000)]
    assert epsilon_of(events, 1e-5, "pld") == pytest.approx(1.83, abs=0.01)
    assert epsilon_of(events, 1e-5, "rdp") == pytest.approx(2.10, abs=0.01)


def test_calibration_meets_the_target_tightly() -> None:
    z = calibrate_noise(2.0, 1e-5, 0.05, 100)
    eps = epsilon_of([GaussianEvents(0.05, z, 100)], 1e-5)
    assert 1.98 <= eps <= 2.0
    assert epsilon_of([GaussianEvents(0.05, z * 0.97, 100)], 1e-5) > 2.0


def test_budget_stops_before_it_is_exceeded() -> None:
    acc = PrivacyAccountant(1.0, 1e-5)
    spent = []
    with pytest.raises(BudgetExhausted, match="target 1"):
        for _ in range(100):
            spent.append(acc.spend(1.0, 5.0))
    assert spent and max(spent) <= 1.0 and acc.epsilon == spent[-1]
    assert acc.epsilon_after(1.0, 5.0) > 1.0
    again = PrivacyAccountant.from_dict(acc.to_dict())
    assert again.epsilon == acc.epsilon and again.events == acc.events and again.history == acc.history


@pytest.mark.parametrize("model", [LogisticModel(), MLPModel(hidden=5)])
def test_dpsgd_per_example_clipping_bound(model) -> None:
    rng = np.random.default_rng(0)
    X, y = rng.normal(0, 3, (40, 6)), (rng.random(40) < 0.4).astype(float)
    theta = model.init(6, rng) + rng.normal(0, 0.5, model.n_params(6))
    clip = 0.3
    g = model.per_example_gradients(theta, X, y)
    total, norms = model.clipped_gradient_sum(theta, X, y, clip)
    assert np.allclose(norms, np.linalg.norm(g, axis=1))
    assert (norms > clip).sum() > 10  # the bound binds for most rows
    clipped = g * np.minimum(1, clip / norms)[:, None]
    assert np.all(np.linalg.norm(clipped, axis=1) <= clip * (1 + 1e-12))
    assert np.allclose(total, clipped.sum(axis=0))
    # sensitivity: removing any one row moves the clipped sum by at most the clip
    for i in range(len(X)):
        keep = np.arange(len(X)) != i
        without, _ = model.clipped_gradient_sum(theta, X[keep], y[keep], clip)
        assert np.linalg.norm(total - without) <= clip * (1 + 1e-9)


def test_dpsgd_step_noise_scale() -> None:
    model = LogisticModel()
    X, y = np.zeros((1000, 3)), np.zeros(1000)
    steps = [dp_sgd_step(model, np.zeros(4), X, y, 0.1, 2.0, 1.5, np.random.default_rng(i)) for i in range(300)]
    # gradient at theta=0, x=0 is (0.5 - 0) on the intercept; noise std z·C / (q·n) = 3 / 100
    noise = np.array(steps)[:, :3]
    assert np.std(noise) == pytest.approx(0.03, rel=0.1)


def test_dpsgd_classifier_learns_within_budget() -> None:
    from datasets.loaders import load_breast_vertical

    frame = load_breast_vertical().joined()
    X = frame.drop(columns=["id", "y"]).to_numpy(float)
    X = (X - X.mean(0)) / X.std(0)
    y = frame["y"].to_numpy(float)
    clf = DPSGDClassifier(target_epsilon=3.0, target_delta=1e-5, batch_size=64, epochs=10, clip_norm=1.0,
                          learning_rate=0.05, seed=1).fit(X, y)
    assert 0 < clf.epsilon_ <= 3.0
    assert roc_auc_score(y, clf.predict_proba(X)[:, 1]) > 0.95


def test_dp_fedavg_fixed_and_adaptive_clipping() -> None:
    clipped, norm = clip_update(np.array([3.0, 4.0]), 1.0)
    assert norm == 5.0 and np.allclose(clipped, [0.6, 0.8])
    fixed = ClientLevelDP(noise_multiplier=1.0, clip_norm=2.0)
    assert fixed.noise_std == 2.0
    # adaptive: the clip moves towards the median update norm (here 10); noise split per Andrew et al.
    dp = ClientLevelDP(noise_multiplier=1.0, clip_norm=0.5, expected_clients=100, adaptive=True,
                       target_quantile=0.5)
    assert dp.update_noise_multiplier == pytest.approx((1 - (2 * 5.0) ** -2) ** -0.5)
    rng = np.random.default_rng(0)
    for _ in range(60):
        bits = [dp.client_update(rng.normal(0, 10 / np.sqrt(50), 50), rng)[1] for _ in range(100)]
        dp.aggregate(np.zeros(50), 100, rng, clipped_count=sum(bits))
    assert 7 < dp.clip_norm < 13
    # distributed noise: m clients' shares add up to the full variance
    shares = ClientLevelDP(noise_multiplier=2.0, clip_norm=1.0, noise_at="clients")
    total = sum(shares.client_update(np.zeros(20000), rng, min_clients=4)[0] for _ in range(4))
    assert np.std(total) == pytest.approx(2.0, rel=0.03)


def test_label_dp_noise_on_the_fore_gradient(keypair) -> None:
    from algorithms.dp.label import label_dp_epsilon, noisy_fore_gradient
    from algorithms.paillier import Decryptor, Encryptor

    pub, priv = keypair
    d = np.linspace(-0.5, 0.5, 200)
    fore = Encryptor(pub, priv).encrypt(d, 30)
    assert noisy_fore_gradient(fore, 0.0, np.random.default_rng(0)) is fore
    noisy = Decryptor(priv).decrypt(noisy_fore_gradient(fore, 2.0, np.random.default_rng(0)))
    noise = noisy - d
    assert np.std(noise) == pytest.approx(2.0, rel=0.15) and abs(np.mean(noise)) < 0.5
    # ε of 5 epochs: one sensitivity-1 Gaussian per epoch, as dp-accounting composes it
    ref = pld.PLDAccountant(value_discretization_interval=PLD_DISCRETISATION)
    ref.compose(dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(4.0), 5))
    assert label_dp_epsilon(4.0, 5) == pytest.approx(ref.get_epsilon(1e-5), abs=1e-12)


def test_vertical_lr_model_card_states_the_label_dp_epsilon() -> None:
    from algorithms import catalogue
    from algorithms.dp.label import label_dp_epsilon

    plugin = catalogue.get("vertical_lr")
    assert plugin.privacy_notes(plugin.parse_params({}), {}, None) == []
    notes = plugin.privacy_notes(plugin.parse_params({"label_dp_noise": 3.0, "max_epochs": 4}), {}, None)
    assert f"ε = {label_dp_epsilon(3.0, 4):.4f}" in notes[0]


@pytest.mark.slow
def test_vertical_lr_with_label_dp_noise_trains_and_noises_the_hosts(keypair) -> None:
    from dataclasses import replace

    from algorithms.vertical_lr import VerticalLogisticRegression
    from algorithms.vertical_lr.estimator import as_arrays
    from datasets import load_breast_vertical

    class WithLabelDP(VerticalLogisticRegression):  # the estimator has no label-DP argument: set the param
        @property
        def params(self):
            return replace(super().params, label_dp_noise=0.05)

    arrays = as_arrays(load_breast_vertical())
    schedule = {"learning_rate": 0.1, "optimizer": "adam", "batch_size": None, "tol": 0.0, "max_epochs": 3}
    plain = VerticalLogisticRegression(keypair=keypair, **schedule).fit(arrays)
    noisy = WithLabelDP(keypair=keypair, **schedule).fit(arrays)
    host_plain, host_noisy = plain.host_models_["insurer"].weights, noisy.host_models_["insurer"].weights
    assert not np.allclose(host_plain, host_noisy)  # the hosts trained on noised fore-gradients
    assert roc_auc_score(arrays.y, noisy.predict_proba(arrays)[:, 1]) > 0.9
