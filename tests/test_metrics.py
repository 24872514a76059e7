"""Risk metrics against independent computations (scikit-learn, scipy, hand-computed cases) and the guest-side
evaluation (aggregate-only result, baseline, score export)."""

from __future__ import annotations

import csv
import itertools
import json
import math

import numpy as np
import pytest
from scipy.stats import ks_2samp
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    brier_score_loss,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
)

from algorithms.metrics import (
    MIN_ROWS_PER_POINT,
    PSI_EPSILON,
    MetricsError,
    RiskReport,
    auc,
    brier,
    calibration_table,
    decile_table,
    evaluate_scores,
    federation_gain,
    gini,
    ks,
    ks_curve_points,
    population_stability_index,
    roc_curve_points,
    threshold_metrics,
)
from federation import codec
from silo.evaluation import assert_aggregate_only, evaluate_at_guest, export_scores_csv, guest_only_baseline


def _synthetic(n: int = 3000, seed: int = 0, signal: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.22).astype(np.int64)
    s = 1.0 / (1.0 + np.exp(-(signal * y + rng.normal(size=n) - 1.5)))
    return y, s


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return _synthetic()


# ---------------------------------------------------------------------------------------------------------
# ranking


def test_auc_and_gini_match_sklearn(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = data
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert gini(y, s) == pytest.approx(2 * roc_auc_score(y, s) - 1, abs=1e-12)


@pytest.mark.parametrize("decimals", [None, 1])  # continuous scores, and heavily tied scores
def test_ks_matches_scipy_two_sample(data: tuple[np.ndarray, np.ndarray], decimals: int | None) -> None:
    y, s = data
    if decimals is not None:
        s = np.round(s, decimals)
    res = ks(y, s)
    assert res.statistic == pytest.approx(ks_2samp(s[y == 1], s[y == 0]).statistic, abs=1e-12)
    # the cut-off reproduces the statistic: share of bads minus share of goods at or above it
    gap = np.mean(s[y == 1] >= res.cutoff) - np.mean(s[y == 0] >= res.cutoff)
    assert gap == pytest.approx(res.statistic, abs=1e-12)
    assert res.bad_share == pytest.approx(np.mean(s[y == 1] >= res.cutoff))
    assert res.good_share == pytest.approx(np.mean(s[y == 0] >= res.cutoff))


def test_ks_hand_computed() -> None:
    # scores high→low: 0.9 B, 0.8 B, 0.7 G, 0.6 B, 0.5 G, 0.4 G, 0.3 G (3 bads, 4 goods).
    # gaps at cut-offs ≥0.9: 1/3; ≥0.8: 2/3; ≥0.7: 2/3 − 1/4; ≥0.6: 1 − 1/4 = 0.75 (max); ≥0.5: 1/2 …
    y = [1, 1, 0, 1, 0, 0, 0]
    s = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3]
    res = ks(y, s)
    assert res.statistic == pytest.approx(0.75)
    assert res.cutoff == 0.6
    assert (res.bad_share, res.good_share) == pytest.approx((1.0, 0.25))
    # a tie between cut-offs ≥0.8 and ≥0.6 (both 2/3) resolves to the highest cut-off
    assert ks([1, 1, 0, 1, 0, 0], [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]).cutoff == 0.8


# ---------------------------------------------------------------------------------------------------------
# lift / gain


def test_decile_table_hand_computed_20_rows() -> None:
    # 20 rows, distinct scores; labels listed from the highest score down, two rows per decile.
    labels_desc = [1, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    scores_desc = [(20 - i) / 20 for i in range(20)]
    perm = np.random.default_rng(3).permutation(20)  # input order must not matter
    y = np.array(labels_desc)[perm]
    s = np.array(scores_desc)[perm]
    rows = decile_table(y, s)

    assert [r["decile"] for r in rows] == list(range(1, 11))
    assert [r["count"] for r in rows] == [2] * 10
    assert [r["bads"] for r in rows] == [2, 1, 1, 0, 1, 0, 0, 0, 0, 0]
    assert [r["goods"] for r in rows] == [0, 1, 1, 2, 1, 2, 2, 2, 2, 2]
    assert [r["bad_rate"] for r in rows] == pytest.approx([1, .5, .5, 0, .5, 0, 0, 0, 0, 0])
    assert [r["cum_bads"] for r in rows] == [2, 3, 4, 4, 5, 5, 5, 5, 5, 5]
    assert [r["capture"] for r in rows] == pytest.approx([.4, .2, .2, 0, .2, 0, 0, 0, 0, 0])
    assert [r["cum_capture"] for r in rows] == pytest.approx([.4, .6, .8, .8, 1, 1, 1, 1, 1, 1])
    assert [r["cum_population"] for r in rows] == pytest.approx([k / 10 for k in range(1, 11)])
    overall = 5 / 20
    assert [r["lift"] for r in rows] == pytest.approx([4, 2, 2, 0, 2, 0, 0, 0, 0, 0])
    cum_rates = [2 / 2, 3 / 4, 4 / 6, 4 / 8, 5 / 10, 5 / 12, 5 / 14, 5 / 16, 5 / 18, 5 / 20]
    assert [r["cum_bad_rate"] for r in rows] == pytest.approx(cum_rates)
    assert [r["cum_lift"] for r in rows] == pytest.approx([c / overall for c in cum_rates])
    assert rows[0]["max_score"] == 1.0 and rows[0]["min_score"] == 0.95
    assert rows[-1]["max_score"] == 0.1 and rows[-1]["min_score"] == 0.05


def test_decile_table_uneven_and_small() -> None:
    y, s = _synthetic(23, seed=5)
    y[:2] = [0, 1]
    rows = decile_table(y, s)
    assert [r["count"] for r in rows] == [3, 3, 3, 2, 2, 2, 2, 2, 2, 2]
    assert rows[-1]["cum_capture"] == pytest.approx(1.0) and rows[-1]["cum_lift"] == pytest.approx(1.0)
    assert len(decile_table([0, 1, 0], [0.1, 0.9, 0.2])) == 3  # fewer rows than deciles: one row per group


# ---------------------------------------------------------------------------------------------------------
# threshold metrics


@pytest.mark.parametrize("threshold", [0.5, 0.2, 0.99])
def test_threshold_metrics_match_sklearn(data: tuple[np.ndarray, np.ndarray], threshold: float) -> None:
    y, s = data
    m = threshold_metrics(y, s, threshold)
    pred = (s >= threshold).astype(int)
    (tn, fp), (fn, tp) = confusion_matrix(y, pred, labels=[0, 1])
    assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (tn, fp, fn, tp)
    p, r, f, _ = precision_recall_fscore_support(y, pred, average="binary", zero_division=0)
    assert (m["precision"], m["recall"], m["f1"]) == pytest.approx((p, r, f))
    assert m["accuracy"] == pytest.approx(np.mean(pred == y))


def test_threshold_is_inclusive_and_no_flagged_is_zero_precision() -> None:
    m = threshold_metrics([0, 1, 1], [0.2, 0.5, 0.7], threshold=0.5)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (2, 0, 0, 1)
    none = threshold_metrics([0, 1, 1], [0.2, 0.5, 0.7], threshold=0.9)
    assert none["precision"] == 0.0 and none["recall"] == 0.0 and none["f1"] == 0.0


# ---------------------------------------------------------------------------------------------------------
# calibration


def test_brier_matches_sklearn(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = data
    assert brier(y, s) == pytest.approx(brier_score_loss(y, s), abs=1e-12)


@pytest.mark.parametrize("decimals", [None, 2])
def test_calibration_table_matches_sklearn(data: tuple[np.ndarray, np.ndarray], decimals: int | None) -> None:
    y, s = data
    if decimals is not None:
        s = np.round(s, decimals)
    rows, ece = calibration_table(y, s, n_bins=10)
    prob_true, prob_pred = calibration_curve(y, s, n_bins=10, strategy="quantile")
    assert [r["observed_rate"] for r in rows] == pytest.approx(list(prob_true), abs=1e-12)
    assert [r["mean_predicted"] for r in rows] == pytest.approx(list(prob_pred), abs=1e-12)
    assert sum(r["count"] for r in rows) == len(y)
    assert sum(r["bads"] for r in rows) == int(y.sum())
    counts = np.array([r["count"] for r in rows])
    assert ece == pytest.approx(float(np.sum(counts / len(y) * np.abs(prob_true - prob_pred))), abs=1e-12)


def test_calibration_and_ece_hand_computed() -> None:
    # 2 quantile bins: {0.1, 0.2} (mean 0.15, observed 0.5) and {0.7, 0.9} (mean 0.8, observed 1.0)
    rows, ece = calibration_table([0, 1, 1, 1], [0.1, 0.2, 0.7, 0.9], n_bins=2)
    assert [(r["count"], r["bads"]) for r in rows] == [(2, 1), (2, 2)]
    assert [r["mean_predicted"] for r in rows] == pytest.approx([0.15, 0.8])
    assert ece == pytest.approx(0.5 * 0.35 + 0.5 * 0.2)


def test_probability_metrics_refuse_non_probabilities() -> None:
    with pytest.raises(MetricsError, match=r"\[0, 1\].*row 1"):
        brier([0, 1], [0.2, 1.5])
    with pytest.raises(MetricsError, match=r"\[0, 1\]"):
        calibration_table([0, 1], [-0.1, 0.5])


# ---------------------------------------------------------------------------------------------------------
# PSI


def test_psi_hand_computed() -> None:
    train = np.arange(100, dtype=float)  # quartile edges 24.75, 49.5, 74.25: 25 rows per bin
    evals = np.array([1, 2, 3, 4, 5, 30, 31, 60, 80, 200], dtype=float)  # 200 lies beyond the training range
    res = population_stability_index(train, evals, n_bins=4)
    e = [0.25] * 4
    a = [0.5, 0.2, 0.1, 0.2]
    expected = sum((ai - ei) * math.log(ai / ei) for ai, ei in zip(a, e, strict=True))
    assert res.value == pytest.approx(expected, abs=1e-12)
    assert [b["train_count"] for b in res.bins] == [25, 25, 25, 25]
    assert [b["eval_count"] for b in res.bins] == [5, 2, 1, 2]
    assert res.bins[0]["lower"] is None and res.bins[-1]["upper"] is None
    assert res.bins[1]["lower"] == pytest.approx(24.75)
    assert sum(b["contribution"] for b in res.bins) == pytest.approx(res.value)


def test_psi_empty_bins_use_epsilon_and_edges_go_low() -> None:
    train = np.arange(100, dtype=float)
    res = population_stability_index(train, np.array([0.0, 24.75, 10.0]), n_bins=4)  # 24.75 is an inner edge: lower bin
    eps = PSI_EPSILON
    expected = (1 - 0.25) * math.log(1 / 0.25) + 3 * (eps - 0.25) * math.log(eps / 0.25)
    assert res.value == pytest.approx(expected, rel=1e-12)
    assert [b["eval_count"] for b in res.bins] == [3, 0, 0, 0]


def test_psi_same_distribution_is_zero_and_verdicts() -> None:
    x = np.random.default_rng(1).random(1000)
    assert population_stability_index(x, x).value == pytest.approx(0.0, abs=1e-15)
    assert population_stability_index(x, x).verdict == "stable"
    assert population_stability_index(x, x ** 3).verdict == "significant shift"


# ---------------------------------------------------------------------------------------------------------
# curves


def test_roc_points_downsampled_and_faithful(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = data
    roc = roc_curve_points(y, s, max_points=150)
    assert len(roc["fpr"]) <= 150 and len(roc["fpr"]) == len(roc["tpr"])
    assert (roc["fpr"][0], roc["tpr"][0]) == (0.0, 0.0) and (roc["fpr"][-1], roc["tpr"][-1]) == (1.0, 1.0)
    assert np.all(np.diff(roc["fpr"]) >= 0) and np.all(np.diff(roc["tpr"]) >= 0)
    assert np.trapezoid(roc["tpr"], roc["fpr"]) == pytest.approx(roc_auc_score(y, s), abs=0.005)


def test_ks_curve_comes_close_to_the_ks_point(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = data
    curve = ks_curve_points(y, s, max_points=100)
    assert len(curve["population"]) <= 100
    gaps = np.array(curve["cum_bad"]) - np.array(curve["cum_good"])
    assert ks(y, s).statistic - 0.02 <= gaps.max() <= ks(y, s).statistic + 1e-12  # within one group of rows
    assert curve["population"][0] == 0.0 and curve["population"][-1] == pytest.approx(1.0)
    assert all(math.isfinite(t) for t in curve["threshold"])


# ---------------------------------------------------------------------------------------------------------
# validation


@pytest.mark.parametrize(("y", "s", "match"), [
    ([0, 1, 1], [0.1, float("nan"), 0.3], r"scores: 1 non-finite .* row 1"),
    ([0, 1, 1], [0.1, 0.2, float("inf")], r"non-finite .* row 2"),
    ([0, 2, 1], [0.1, 0.2, 0.3], r"labels must be 0 \(good\) or 1 \(bad\); row 1 is 2"),
    ([0, -1, 1], [0.1, 0.2, 0.3], r"row 1 is -1"),
    (["a", "b", "a"], [0.1, 0.2, 0.3], r"y_true: labels must be 0 or 1"),
    ([0, 1], [0.1, 0.2, 0.3], r"y_true has 2 rows but scores has 3"),
    ([1, 1, 1], [0.1, 0.2, 0.3], r"only bads \(1\) over 3 rows"),
    ([0, 0, 0], [0.1, 0.2, 0.3], r"only goods \(0\)"),
    ([], [], r"y_true: empty"),
    ([0, 1], ["x", "y"], r"scores: not numeric"),
    ([[0, 1], [1, 0]], [[0.1, 0.2], [0.3, 0.4]], r"1-d"),
])
def test_bad_input_gives_clear_errors(y: list, s: list, match: str) -> None:
    with pytest.raises(MetricsError, match=match):
        evaluate_scores(y, s)


def test_validation_of_extra_inputs(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = data
    with pytest.raises(MetricsError, match="train_scores: 1 non-finite"):
        evaluate_scores(y, s, train_scores=[0.1, float("nan")])
    with pytest.raises(MetricsError, match="baseline_scores has 2"):
        evaluate_scores(y, s, baseline_scores=[0.1, 0.2])
    assert isinstance(MetricsError("x"), ValueError)


# ---------------------------------------------------------------------------------------------------------
# the report


def test_evaluate_scores_full_report_is_json_and_codec_safe() -> None:
    y, s = _synthetic(4000, seed=2, signal=1.2)
    _, base = _synthetic(4000, seed=2, signal=0.5)
    train = _synthetic(8000, seed=9)[1]
    report = evaluate_scores(y, s, train_scores=train, baseline_scores=base, threshold=0.4)
    d = report.to_dict()
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text) == d
    assert codec.decode(codec.encode(d)) == d
    assert RiskReport.from_dict(d).to_dict() == d

    assert d["auc"] == pytest.approx(roc_auc_score(y, s))
    assert d["threshold"]["threshold"] == 0.4
    assert d["psi"] is not None and len(d["psi_bins"]) == 10
    assert d["brier"] == pytest.approx(brier_score_loss(y, s))
    assert d["baseline"]["auc"] == pytest.approx(roc_auc_score(y, base))
    gain = d["federation_gain"]
    assert gain["auc"]["delta"] == pytest.approx(roc_auc_score(y, s) - roc_auc_score(y, base))
    assert gain["ks"]["delta"] == pytest.approx(d["ks"] - d["baseline"]["ks"])
    assert gain["gini"]["delta"] == pytest.approx(2 * gain["auc"]["delta"])
    assert federation_gain(d, d["baseline"]) == gain
    assert d["notes"] == []


def test_evaluate_scores_without_probabilities_or_training_scores(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = data
    logits = np.log(s / (1 - s))
    report = evaluate_scores(y, logits, threshold=0.0)
    assert report.brier is None and report.calibration is None and report.psi is None
    assert report.baseline is None and report.federation_gain is None
    assert any("Brier" in n for n in report.notes) and any("population stability" in n for n in report.notes)
    assert report.auc == pytest.approx(roc_auc_score(y, s))  # rank metrics do not care about the scale


# ---------------------------------------------------------------------------------------------------------
# guest-side evaluation


def test_evaluate_at_guest_returns_aggregates_only() -> None:
    y, s = _synthetic(5000, seed=4)
    result = evaluate_at_guest(y, s, train_scores=s[::-1], baseline_scores=np.sqrt(s), max_curve_points=120)

    def longest(v: object) -> int:
        if isinstance(v, dict):
            return max((longest(x) for x in v.values()), default=0)
        if isinstance(v, list):
            return max([len(v), *(longest(x) for x in v)])
        return 0

    assert longest(result) <= 121
    assert result["n"] == 5000
    with pytest.raises(ValueError, match=r"result.scores has 5000 entries .* must not leave the guest"):
        assert_aggregate_only({"scores": list(s)}, max_list_len=201)


def test_guest_only_baseline_on_bundled_breast_data() -> None:
    from datasets import load_breast_vertical, train_test_split_ids

    guest = load_breast_vertical().guest.set_index("id")
    train_ids, test_ids = train_test_split_ids(guest.reset_index())
    X = guest.drop(columns="y")
    tr_scores, ev_scores = guest_only_baseline(X.loc[train_ids], guest.loc[train_ids, "y"], X.loc[test_ids])
    assert tr_scores.shape == (len(train_ids),) and ev_scores.shape == (len(test_ids),)
    assert auc(guest.loc[test_ids, "y"], ev_scores) > 0.9
    with pytest.raises(MetricsError, match="same number of columns"):
        guest_only_baseline(X.loc[train_ids], guest.loc[train_ids, "y"], X.loc[test_ids].iloc[:, :3])


def test_export_scores_csv(tmp_path) -> None:
    path = export_scores_csv(tmp_path / "out" / "scores.csv", ["c1", "c2", 3], [0.25, 1 / 3, 0.9])
    with path.open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["id", "score"]
    assert [r[0] for r in rows[1:]] == ["c1", "c2", "3"]
    assert float(rows[2][1]) == 1 / 3  # full precision round-trip
    with pytest.raises(MetricsError, match=r"id 'c1' appears twice \(rows 0 and 1\)"):
        export_scores_csv(tmp_path / "x.csv", ["c1", "c1"], [0.1, 0.2])
    with pytest.raises(MetricsError, match="2 ids but 1 scores"):
        export_scores_csv(tmp_path / "x.csv", ["a", "b"], [0.1])
    with pytest.raises(MetricsError, match="non-finite"):
        export_scores_csv(tmp_path / "x.csv", ["a"], [float("nan")])


# ---------------------------------------------------------------------------------------------------------
# privacy of what leaves the guest


def test_small_evaluation_set_reveals_no_row_score_or_label() -> None:
    """The arbiter used to read every row's exact score (KS cut-offs) and label (curve steps) when n <= 200."""
    y, s = _synthetic(150, seed=11, signal=1.0)
    result = evaluate_at_guest(y, s)  # exactly what the guest sends to the arbiter
    n, min_rows = len(y), MIN_ROWS_PER_POINT
    ks_curve, roc = result["ks_curve"], result["roc_curve"]
    # the attack: every cut-off that is some row's score, and a label per step of the curve
    inner = ks_curve["threshold"][1:-1]
    assert not set(inner) & set(s.tolist())
    steps = np.diff(np.rint(np.array(ks_curve["population"]) * n))
    assert len(steps) <= n // min_rows and steps.min() >= min_rows  # every point covers >= 20 rows
    assert np.diff(np.rint(np.array(roc["tpr"]) * y.sum()) + np.rint(np.array(roc["fpr"]) * (n - y.sum()))).min() \
        >= min_rows
    assert min(d["count"] for d in result["deciles"]) >= min_rows
    assert min(b["count"] for b in result["calibration"]) >= min_rows
    # tiny sets: one group, nothing per row
    tiny = evaluate_at_guest([0, 1, 0, 1, 1, 0, 0, 1], [0.1, 0.9, 0.3, 0.8, 0.6, 0.2, 0.4, 0.7])
    assert tiny["ks_curve"]["population"] == [0.0, 1.0] and len(tiny["deciles"]) == 1


def test_curve_groups_never_split_ties() -> None:
    y = np.array([1, 0] * 50)
    s = np.repeat(np.linspace(0.9, 0.1, 10), 10)  # ten runs of ten tied scores
    curve = ks_curve_points(y, s, min_rows=15)
    population = np.rint(np.array(curve["population"]) * 100).astype(int)
    assert all(p % 10 == 0 for p in population) and np.diff(population).min() >= 15


def test_score_export_never_follows_links(tmp_path) -> None:
    from silo.evaluation import UnsafePathError

    root, outside = tmp_path / "exports", tmp_path / "outside.csv"
    root.mkdir()
    outside.write_text("keep")
    (root / "s.csv").symlink_to(outside)
    path = export_scores_csv("s.csv", ["a", "b"], [0.1, 0.2], root=root)
    assert outside.read_text() == "keep" and not path.is_symlink() and path.read_text().startswith("id,score")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    (root / "d").symlink_to(tmp_path, target_is_directory=True)
    for bad in ("d/x.csv", "../x.csv", "/tmp/x.csv", "a/../../x.csv"):
        with pytest.raises(UnsafePathError):
            export_scores_csv(bad, ["a"], [0.1], root=root)
    assert not (tmp_path / "x.csv").exists()
    assert export_scores_csv("new/deeper/x.csv", ["a"], [0.1], root=root).read_bytes() == b"id,score\r\na,0.1\r\n"
    assert [p.name for p in (root / "new" / "deeper").iterdir()] == ["x.csv"]  # no temporary file left


def test_decile_table_never_splits_tied_scores() -> None:
    """Tied scores share a group, whatever their input order (a boundary inside a tie moves below it)."""
    rng = np.random.default_rng(3)
    s = np.repeat(np.linspace(0.9, 0.1, 7), [30, 5, 40, 3, 12, 25, 15])  # 130 rows, 7 distinct scores
    y = rng.integers(0, 2, s.size)
    rows = decile_table(y, s)
    for a, b in itertools.pairwise(rows):
        assert a["min_score"] > b["max_score"]  # no score on both sides of a boundary
    assert sum(r["count"] for r in rows) == s.size
    perm = rng.permutation(s.size)
    assert decile_table(y[perm], s[perm]) == rows  # independent of the input order
    assert min(r["count"] for r in decile_table(y, s, min_rows=20)) >= 20
