"""Guidance for small tables: an evaluation set too small for stable metrics is flagged (the arbiter adds the
warning to the job record, the log, the CLI output and the report)."""

from __future__ import annotations

import numpy as np
import pytest

from arbiter.runner import MIN_EVALUATION_BADS, MIN_EVALUATION_ROWS, calibration_warnings, small_evaluation_warnings


def test_small_evaluation_set_warns() -> None:
    (few_rows,) = small_evaluation_warnings(114, 42)
    assert "114 rows" in few_rows and f"at least {MIN_EVALUATION_ROWS} rows" in few_rows
    (few_bads,) = small_evaluation_warnings(5000, 7)
    assert "7 bads" in few_bads and f"{MIN_EVALUATION_BADS} bads" in few_bads
    assert small_evaluation_warnings(5000, 300) == []
    assert small_evaluation_warnings(None, None) == []


def test_calibration_in_the_large_warns_when_the_mean_pd_is_far_from_the_bad_rate() -> None:
    """The vertical LR's local expansion over-predicts rare bads (7.6 % for 6.0 % on the imbalanced test table):
    the evaluation flags such a gap, and stays quiet within 1.25x or with too few bads to tell."""
    from algorithms.metrics import evaluate_scores

    rng = np.random.default_rng(0)
    y = (rng.random(4000) < 0.06).astype(int)
    fair = np.clip(0.06 + 0.05 * (y - 0.06) + rng.normal(0, 0.01, 4000), 0.001, 0.999)
    report = evaluate_scores(y, fair).to_dict()
    assert report["mean_predicted"] == pytest.approx(fair.mean())
    assert calibration_warnings(report) == []
    (warning,) = calibration_warnings(evaluate_scores(y, np.clip(fair * 1.6, 0, 1)).to_dict())
    assert "calibration-in-the-large" in warning and "recalibrate" in warning
    assert calibration_warnings({"mean_predicted": 0.2, "bad_rate": 0.05, "n_bad": 5}) == []
    assert calibration_warnings({"bad_rate": 0.05, "n_bad": 500}) == []  # scores that are not probabilities
