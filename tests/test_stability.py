"""CSI per characteristic and bootstrap intervals of AUC and KS."""

from __future__ import annotations

import numpy as np
import pytest

from algorithms.metrics import auc, ks
from algorithms.stability import _auc, _ks, bootstrap_intervals, characteristic_stability


def test_rank_auc_and_ks_equal_the_metrics_module() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    s = np.round(rng.random(400) + 0.3 * y, 2)  # ties on purpose
    assert _auc(y, s) == pytest.approx(auc(y, s), abs=1e-12)
    assert _ks(y, s) == pytest.approx(ks(y, s).statistic, abs=1e-12)


def test_bootstrap_interval_covers_the_estimate_and_narrows_with_more_rows() -> None:
    rng = np.random.default_rng(1)
    small_y = rng.integers(0, 2, 300)
    big_y = rng.integers(0, 2, 3000)
    small = bootstrap_intervals(small_y, rng.random(300) + 0.5 * small_y, resamples=100)
    big = bootstrap_intervals(big_y, rng.random(3000) + 0.5 * big_y, resamples=100)
    assert small["auc"][0] < small["auc"][1] and small["ks"][0] < small["ks"][1]
    assert big["auc"][1] - big["auc"][0] < small["auc"][1] - small["auc"][0]
    with pytest.raises(ValueError):
        bootstrap_intervals([0, 1], [0.1], resamples=50)


def test_csi_flags_a_shifted_characteristic_only() -> None:
    rng = np.random.default_rng(2)
    train = rng.normal(size=(5000, 2))
    new = np.column_stack([rng.normal(size=3000), rng.normal(0.8, 1.0, size=3000)])
    csi = characteristic_stability(train, new, ["stable", "shifted"])
    assert csi["stable"] < 0.02 and csi["shifted"] > 0.25
