"""Risk-model metrics for binary scores, computed by the guest (the label holder).

Convention: ``y_true`` is 1 for a *bad* (default / claim) and 0 for a good; a higher score means a higher
risk (e.g. the predicted probability of default). Every function validates its input and raises
:class:`MetricsError` (a ``ValueError``) naming the offending argument and row.

Small functions, one per metric:

* :func:`auc`, :func:`gini` (2·AUC − 1), :func:`ks` (Kolmogorov–Smirnov statistic and its score cut-off),
* :func:`decile_table` (lift / gain by decile, decile 1 = highest scores),
* :func:`threshold_metrics` (confusion matrix, precision, recall, F1 at a threshold),
* :func:`brier`, :func:`calibration_table` (+ expected calibration error),
* :func:`population_stability_index` (between training and evaluation scores; "PSI" in credit-risk
  reports, unrelated to the PSI alignment protocol of :mod:`algorithms.psi`),
* :func:`roc_curve_points`, :func:`ks_curve_points` (downsampled curve data for plots).

:func:`evaluate_scores` runs all of them and returns a :class:`RiskReport` whose ``to_dict()`` is plain
JSON (and :mod:`federation.codec`) compatible; :func:`federation_gain` compares a federated model with a
guest-only baseline.

What it reveals to whom: these functions run locally at the guest and reveal nothing by themselves. A
``RiskReport`` holds only aggregates: counts and rates per decile / bin, score quantiles (bin edges, the
KS cut-off) and at most ``max_curve_points`` points per curve. ROC and KS points are rank statistics of
the whole population (the fraction of bads and goods above a threshold); they do not link a score or a
label to any customer id, and in :func:`evaluate_scores` every curve point, decile group and calibration
bin covers at least ``min_rows`` (20) rows whatever the sample size, with curve cut-offs between two
rows' scores, so a small evaluation set does not give each row's score and label. See
:mod:`silo.evaluation` for what leaves the guest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

__all__ = [
    "MIN_ROWS_PER_POINT",
    "PSI_EPSILON",
    "MetricsError",
    "RiskReport",
    "auc",
    "brier",
    "calibration_table",
    "decile_table",
    "evaluate_scores",
    "federation_gain",
    "gini",
    "ks",
    "ks_curve_points",
    "population_stability_index",
    "roc_curve_points",
    "threshold_metrics",
    "validate_finite",
    "validate_labels",
    "validate_scores",
]

PSI_EPSILON = 1e-4
"""Floor applied to a bin's population share in :func:`population_stability_index` (empty bins keep the
log finite)."""

MIN_ROWS_PER_POINT = 20
"""Fewest rows behind one curve point, decile group or calibration bin of an evaluation report: on a small
evaluation set a point per row would give every row's score and, in the curve's steps, its label."""


class MetricsError(ValueError):
    """Input that no metric can be computed on (NaN scores, non-binary labels, one class only, …)."""


# ---------------------------------------------------------------------------------------------------------
# input validation


def _as_scores(scores: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MetricsError(f"{name}: not numeric ({exc})") from exc
    if arr.ndim != 1:
        arr = arr.reshape(-1) if arr.ndim == 2 and 1 in arr.shape else arr
    if arr.ndim != 1:
        raise MetricsError(f"{name}: expected a 1-d array, got shape {arr.shape}")
    if arr.size == 0:
        raise MetricsError(f"{name}: empty")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise MetricsError(f"{name}: {bad.size} non-finite value(s) (NaN or inf), first at row {int(bad[0])} "
                           f"(value {arr[bad[0]]})")
    return arr


def _as_labels(y_true: Any, name: str = "y_true") -> np.ndarray:
    arr = np.asarray(y_true)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise MetricsError(f"{name}: expected a 1-d array, got shape {arr.shape}")
    if arr.size == 0:
        raise MetricsError(f"{name}: empty")
    if arr.dtype == bool:
        return arr.astype(np.int64)
    try:
        as_float = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise MetricsError(f"{name}: labels must be 0 or 1 ({exc})") from exc
    bad = np.flatnonzero((as_float != 0) & (as_float != 1))
    if bad.size:
        raise MetricsError(f"{name}: labels must be 0 (good) or 1 (bad); row {int(bad[0])} is {arr[bad[0]].item()!r} "
                           f"({bad.size} invalid row(s))")
    return as_float.astype(np.int64)


def validate_labels(y_true: Any, *, name: str = "y_true", require_both_classes: bool = True) -> np.ndarray:
    """Check a label vector (0 = good, 1 = bad; bools accepted) and return it as int64."""
    y = _as_labels(y_true, name)
    n_bad = int(y.sum())
    if require_both_classes and n_bad in (0, y.shape[0]):
        only = "bads (1)" if n_bad else "goods (0)"
        raise MetricsError(f"{name} holds only {only} over {y.shape[0]} rows: AUC, KS and lift need both classes")
    return y


def validate_finite(values: Any, name: str) -> np.ndarray:
    """Check a 1-d vector of finite numbers (scores) and return it as float64."""
    return _as_scores(values, name)


def validate_scores(y_true: Any, scores: Any, *, name: str = "scores",
                    require_both_classes: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Check labels and scores and return them as ``(int64 labels, float64 scores)`` arrays.

    Raises :class:`MetricsError` for mismatched lengths, labels outside {0, 1}, NaN/inf scores, or (with
    ``require_both_classes``) a label vector holding only one class, on which AUC/KS are undefined.
    """
    y = _as_labels(y_true)
    s = _as_scores(scores, name)
    if y.shape[0] != s.shape[0]:
        raise MetricsError(f"y_true has {y.shape[0]} rows but {name} has {s.shape[0]}")
    return validate_labels(y, require_both_classes=require_both_classes), s


def _require_probabilities(s: np.ndarray, name: str) -> None:
    out = np.flatnonzero((s < 0) | (s > 1))
    if out.size:
        raise MetricsError(f"{name}: probabilities must lie in [0, 1]; row {int(out[0])} is {s[out[0]]}")


# ---------------------------------------------------------------------------------------------------------
# ranking metrics


def auc(y_true: Any, scores: Any) -> float:
    """Area under the ROC curve (scikit-learn's ``roc_auc_score``)."""
    y, s = validate_scores(y_true, scores)
    return float(roc_auc_score(y, s))


def gini(y_true: Any, scores: Any) -> float:
    """Gini coefficient (accuracy ratio) = 2·AUC − 1."""
    return 2.0 * auc(y_true, scores) - 1.0


@dataclass(frozen=True)
class KSResult:
    """KS statistic = max over cut-offs of (share of bads with score ≥ cutoff − share of goods with score ≥ cutoff).

    ``statistic`` is the largest absolute gap between the cumulative score distributions of bads and goods
    (the two-sample KS statistic); ``cutoff`` is the score at which it is reached (classify score ≥ cutoff
    as bad; the highest such score if several reach it); ``bad_share``/``good_share`` are the shares of
    bads/goods at or above the cut-off.
    """

    statistic: float
    cutoff: float
    bad_share: float
    good_share: float


def _roc_all(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC at every distinct score (fpr, tpr, threshold), starting at (0, 0, +inf)."""
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    return fpr, tpr, thr


def ks(y_true: Any, scores: Any) -> KSResult:
    """Kolmogorov–Smirnov statistic between the score distributions of bads and goods, and its cut-off."""
    y, s = validate_scores(y_true, scores)
    fpr, tpr, thr = _roc_all(y, s)
    gap = tpr - fpr
    i = int(np.argmax(np.round(np.abs(gap), 12)))  # ties (up to float noise): the highest cut-off
    cutoff = float(thr[i]) if np.isfinite(thr[i]) else float(s.max())  # all scores tied: no separation
    return KSResult(statistic=float(abs(gap[i])), cutoff=cutoff, bad_share=float(tpr[i]),
                    good_share=float(fpr[i]))


# ---------------------------------------------------------------------------------------------------------
# lift / gain


def decile_table(y_true: Any, scores: Any, n_bins: int = 10, min_rows: int = 1) -> list[dict[str, Any]]:
    """Lift and gain table: population sorted by score, highest first, cut into ``n_bins`` equal-count groups.

    Group 1 holds the highest scores. Rows are sorted by descending score and split as evenly as possible
    (``numpy.array_split``: the first ``n % n_bins`` groups get one row more), then every boundary that
    would split equal scores moves down to the end of that tie, so tied rows always share a group (the
    table does not depend on the input order; under heavy ties there are fewer, unequal groups).
    With fewer than ``n_bins·min_rows`` rows there are only ``max(1, n // min_rows)`` groups, and a group
    left with fewer than ``min_rows`` rows by a moved boundary is merged into its neighbour, so every
    group holds at least ``min_rows`` rows.

    Each row: ``decile, count, bads, goods, bad_rate, min_score, max_score, cum_count, cum_bads,
    cum_bad_rate, capture`` (share of all bads in this group), ``cum_capture`` (the gain: share of all
    bads in groups 1..k), ``cum_population`` (share of the population in groups 1..k), ``lift``
    (bad_rate / overall bad rate) and ``cum_lift`` (cum_bad_rate / overall bad rate).
    """
    if n_bins < 1:
        raise MetricsError(f"n_bins must be >= 1, got {n_bins}")
    y, s = validate_scores(y_true, scores)
    n = y.shape[0]
    order = np.argsort(-s, kind="stable")
    groups = _tie_aware_groups(order, s[order], max(1, min(n_bins, n // max(min_rows, 1))), max(min_rows, 1))
    total_bads = int(y.sum())
    overall = total_bads / n
    rows: list[dict[str, Any]] = []
    cum_count = cum_bads = 0
    for k, idx in enumerate(groups, start=1):
        count = int(idx.size)
        bads = int(y[idx].sum())
        cum_count += count
        cum_bads += bads
        bad_rate = bads / count
        cum_bad_rate = cum_bads / cum_count
        rows.append({
            "decile": k, "count": count, "bads": bads, "goods": count - bads, "bad_rate": bad_rate,
            "min_score": float(s[idx].min()), "max_score": float(s[idx].max()),
            "cum_count": cum_count, "cum_bads": cum_bads, "cum_bad_rate": cum_bad_rate,
            "capture": bads / total_bads, "cum_capture": cum_bads / total_bads,
            "cum_population": cum_count / n,
            "lift": bad_rate / overall, "cum_lift": cum_bad_rate / overall,
        })
    return rows


def _tie_aware_groups(order: np.ndarray, sorted_scores: np.ndarray, n_groups: int, min_rows: int
                      ) -> list[np.ndarray]:
    """``order`` (rows by descending score) in ``n_groups`` near-equal groups whose boundaries never split
    equal scores; groups under ``min_rows`` rows are merged into the previous one (the first into the next)."""
    n = order.shape[0]
    cuts = np.cumsum([a.size for a in np.array_split(np.arange(n), n_groups)])[:-1]
    moved: list[int] = []
    for c in cuts:
        c = int(c)
        while 0 < c < n and sorted_scores[c] == sorted_scores[c - 1]:
            c += 1
        if moved and c <= moved[-1]:
            continue
        if c < n:
            moved.append(c)
    groups = [g for g in np.split(order, moved) if g.size]
    merged: list[np.ndarray] = []
    for g in groups:
        if merged and (g.size < min_rows or merged[-1].size < min_rows):
            merged[-1] = np.concatenate([merged[-1], g])
        else:
            merged.append(g)
    return merged


# ---------------------------------------------------------------------------------------------------------
# threshold metrics


def threshold_metrics(y_true: Any, scores: Any, threshold: float = 0.5) -> dict[str, Any]:
    """Confusion matrix and classification metrics when ``score >= threshold`` is predicted bad (1).

    Returns ``threshold, tn, fp, fn, tp, precision, recall, f1, accuracy, specificity,
    predicted_bad_rate``; a ratio with a zero denominator is 0.0 (scikit-learn's ``zero_division=0``).
    Works with one class present (the matrix is still defined).
    """
    if not np.isfinite(threshold):
        raise MetricsError(f"threshold must be finite, got {threshold}")
    y, s = validate_scores(y_true, scores, require_both_classes=False)
    pred = s >= threshold
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))
    tn = int(np.sum(~pred & (y == 0)))

    def ratio(a: int, b: int) -> float:
        return a / b if b else 0.0

    precision = ratio(tp, tp + fp)
    recall = ratio(tp, tp + fn)
    f1 = ratio(2 * tp, 2 * tp + fp + fn)
    return {"threshold": float(threshold), "tn": tn, "fp": fp, "fn": fn, "tp": tp,
            "precision": precision, "recall": recall, "f1": f1, "accuracy": ratio(tp + tn, y.shape[0]),
            "specificity": ratio(tn, tn + fp), "predicted_bad_rate": ratio(tp + fp, y.shape[0])}


# ---------------------------------------------------------------------------------------------------------
# calibration


def brier(y_true: Any, scores: Any) -> float:
    """Brier score: mean of (probability − label)²; scores must be probabilities in [0, 1]."""
    y, s = validate_scores(y_true, scores, require_both_classes=False)
    _require_probabilities(s, "scores")
    return float(np.mean((s - y) ** 2))


def calibration_table(y_true: Any, scores: Any, n_bins: int = 10, min_rows: int = 1
                      ) -> tuple[list[dict[str, Any]], float]:
    """Reliability table over ``n_bins`` quantile bins of the predicted probabilities, and the ECE.

    Bin edges are the 0, 1/n_bins, …, 100 % percentiles of ``scores``; a score equal to an inner edge falls
    into the lower bin (the same binning as scikit-learn's ``calibration_curve(strategy="quantile")``).
    Empty bins (repeated edges under heavy ties) are dropped. Each row: ``bin, count, lower, upper,
    mean_predicted, observed_rate, bads``. The expected calibration error is
    ECE = Σ_b (n_b / N) · |mean_predicted_b − observed_rate_b|. With fewer than ``n_bins·min_rows`` rows
    only ``max(1, n // min_rows)`` bins are used.
    """
    if n_bins < 1:
        raise MetricsError(f"n_bins must be >= 1, got {n_bins}")
    y, s = validate_scores(y_true, scores, require_both_classes=False)
    _require_probabilities(s, "scores")
    n_bins = max(1, min(n_bins, s.shape[0] // max(min_rows, 1)))
    edges = np.percentile(s, np.linspace(0, 100, n_bins + 1))
    ids = np.searchsorted(edges[1:-1], s)
    total = np.bincount(ids, minlength=n_bins)
    sum_pred = np.bincount(ids, weights=s, minlength=n_bins)
    sum_true = np.bincount(ids, weights=y, minlength=n_bins)
    rows: list[dict[str, Any]] = []
    ece = 0.0
    n = s.shape[0]
    for b in np.flatnonzero(total):
        count = int(total[b])
        mean_pred = float(sum_pred[b] / count)
        observed = float(sum_true[b] / count)
        ece += count / n * abs(mean_pred - observed)
        rows.append({"bin": len(rows) + 1, "count": count, "lower": float(edges[b]), "upper": float(edges[b + 1]),
                     "mean_predicted": mean_pred, "observed_rate": observed, "bads": int(np.rint(sum_true[b]))})
    return rows, float(ece)


# ---------------------------------------------------------------------------------------------------------
# stability


@dataclass(frozen=True)
class PSIResult:
    """Population stability index and its per-bin contributions (see :func:`population_stability_index`)."""

    value: float
    bins: list[dict[str, Any]]

    @property
    def verdict(self) -> str:
        return psi_verdict(self.value)


def psi_verdict(value: float) -> str:
    """Conventional reading: < 0.10 stable, 0.10–0.25 moderate shift, > 0.25 significant shift."""
    if value < 0.10:
        return "stable"
    if value <= 0.25:
        return "moderate shift"
    return "significant shift"


def population_stability_index(train_scores: Any, eval_scores: Any, n_bins: int = 10,
                               epsilon: float = PSI_EPSILON) -> PSIResult:
    """Population stability index of the evaluation scores against the training scores.

    Bins: the deciles (for ``n_bins=10``) of the TRAINING scores; repeated edges are merged, the first and
    last bins are open-ended so evaluation scores outside the training range are counted, and a score
    equal to an inner edge falls into the lower bin. With e_i the training share and a_i the evaluation
    share of bin i, each floored at ``epsilon`` (so an empty bin keeps the logarithm finite),

        PSI = Σ_i (a_i − e_i) · ln(a_i / e_i).

    Each bin row: ``bin, lower, upper, train_count, eval_count, train_share, eval_share, contribution``
    (shares before flooring; contribution after); ``lower`` of the first and ``upper`` of the last bin are
    ``None`` (open-ended), so the rows stay strict JSON.
    """
    if n_bins < 1:
        raise MetricsError(f"n_bins must be >= 1, got {n_bins}")
    if not 0 < epsilon < 1:
        raise MetricsError(f"epsilon must be in (0, 1), got {epsilon}")
    e_scores = _as_scores(train_scores, "train_scores")
    a_scores = _as_scores(eval_scores, "eval_scores")
    edges = np.unique(np.percentile(e_scores, np.linspace(0, 100, n_bins + 1)))
    inner = edges[1:-1]
    k = inner.size + 1
    e_count = np.bincount(np.searchsorted(inner, e_scores), minlength=k)
    a_count = np.bincount(np.searchsorted(inner, a_scores), minlength=k)
    e_share = e_count / e_scores.size
    a_share = a_count / a_scores.size
    e_f = np.maximum(e_share, epsilon)
    a_f = np.maximum(a_share, epsilon)
    contrib = (a_f - e_f) * np.log(a_f / e_f)
    rows = [{"bin": i + 1, "lower": float(inner[i - 1]) if i > 0 else None,
             "upper": float(inner[i]) if i < k - 1 else None,
             "train_count": int(e_count[i]), "eval_count": int(a_count[i]),
             "train_share": float(e_share[i]), "eval_share": float(a_share[i]), "contribution": float(contrib[i])}
            for i in range(k)]
    return PSIResult(value=float(contrib.sum()), bins=rows)


# ---------------------------------------------------------------------------------------------------------
# curves


def _group_ends(sorted_desc: np.ndarray, min_rows: int, max_groups: int) -> np.ndarray:
    """Ends (exclusive) of consecutive rank groups of the descending scores: each of >= ``min_rows`` rows.

    At most ``max_groups`` groups of near-equal size; a boundary never splits tied scores (it moves past
    them, and a group left smaller than ``min_rows`` is merged into its neighbour). Fewer than ``min_rows``
    rows give one group.
    """
    if max_groups < 1:
        raise MetricsError(f"max_points must be >= 2, got {max_groups + 1}")
    if min_rows < 1:
        raise MetricsError(f"min_rows must be >= 1, got {min_rows}")
    n = sorted_desc.shape[0]
    k = max(1, min(max_groups, n // min_rows))
    ends: list[int] = []
    prev = 0
    for raw in np.round(np.linspace(0, n, k + 1)).astype(np.int64)[1:]:
        e = int(raw)
        while 0 < e < n and sorted_desc[e] == sorted_desc[e - 1]:
            e += 1
        if e <= prev or (e - prev < min_rows and e < n):
            continue
        ends.append(e)
        prev = e
    if ends[-1] != n:
        ends.append(n)
    if len(ends) > 1 and ends[-1] - ends[-2] < min_rows:
        del ends[-2]
    return np.asarray(ends, dtype=np.int64)


def _binned(y: np.ndarray, s: np.ndarray, max_points: int, min_rows: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per rank group (highest scores first): its end, cumulative bad and good shares, and the cut-off
    between it and the next group (the midpoint of the two scores around the boundary: no row's score)."""
    order = np.argsort(-s, kind="stable")
    ys, ss = y[order], s[order]
    ends = _group_ends(ss, min_rows, max_points - 1)
    cum_bads = np.cumsum(ys)[ends - 1]
    n_bad = int(y.sum())
    n_good = y.shape[0] - n_bad
    cut = np.array([(ss[e - 1] + ss[e]) / 2 if e < ss.shape[0] else ss[-1] for e in ends], dtype=float)
    return ends, cum_bads / n_bad, (ends - cum_bads) / n_good, cut


def roc_curve_points(y_true: Any, scores: Any, max_points: int = 200,
                     min_rows: int = MIN_ROWS_PER_POINT) -> dict[str, list[float]]:
    """ROC curve (``fpr``, ``tpr``) with at most ``max_points`` points, from (0, 0) to (1, 1).

    The rows, sorted by descending score, are cut into consecutive groups of at least ``min_rows`` rows
    (never splitting tied scores) and the curve has one point after each group: whatever the number of
    rows, no step of the curve is one customer's label. No thresholds are returned.
    """
    y, s = validate_scores(y_true, scores)
    _, tpr, fpr, _ = _binned(y, s, max_points, min_rows)
    return {"fpr": [0.0] + [float(v) for v in fpr], "tpr": [0.0] + [float(v) for v in tpr]}


def ks_curve_points(y_true: Any, scores: Any, max_points: int = 200,
                    min_rows: int = MIN_ROWS_PER_POINT) -> dict[str, list[float]]:
    """KS chart data: cumulative shares of bads and goods at or above each score cut-off, highest first.

    Keys: ``population`` (share of all rows with score ≥ cut-off), ``threshold`` (the cut-off: midway
    between the scores on either side of a group boundary; the first point reports the maximum score,
    the last the minimum), ``cum_bad`` and ``cum_good``. Points at most ``max_points``, one after each
    group of at least ``min_rows`` rows (as in :func:`roc_curve_points`), from (0, 0, 0) to (1, 1, 1); the
    largest gap on the curve is therefore within one group of the exact KS statistic.
    """
    y, s = validate_scores(y_true, scores)
    ends, tpr, fpr, cut = _binned(y, s, max_points, min_rows)
    return {"population": [0.0] + [float(v) for v in ends / y.shape[0]],
            "threshold": [float(s.max())] + [float(v) for v in cut],
            "cum_bad": [0.0] + [float(v) for v in tpr], "cum_good": [0.0] + [float(v) for v in fpr]}


# ---------------------------------------------------------------------------------------------------------
# the full report


@dataclass
class RiskReport:
    """All evaluation numbers of one binary risk model on one evaluation set (aggregates only).

    ``to_dict()`` gives plain JSON types; ``RiskReport.from_dict`` reverses it. Optional parts are
    ``None`` when not computed: ``brier``/``ece``/``calibration``/``mean_predicted`` need probabilities in [0, 1];
    ``psi``/``psi_bins`` need training scores; ``baseline`` (a guest-only model's report) and
    ``federation_gain`` need baseline scores. ``notes`` says why a part was skipped.
    """

    n: int
    n_bad: int
    bad_rate: float
    auc: float
    gini: float
    ks: float
    ks_cutoff: float
    threshold: dict[str, Any]
    deciles: list[dict[str, Any]]
    roc_curve: dict[str, list[float]]
    ks_curve: dict[str, list[float]]
    brier: float | None = None
    ece: float | None = None
    calibration: list[dict[str, Any]] | None = None
    mean_predicted: float | None = None  # calibration-in-the-large: the mean PD, against ``bad_rate``
    psi: float | None = None
    psi_verdict: str | None = None
    psi_bins: list[dict[str, Any]] | None = None
    baseline: RiskReport | None = None
    federation_gain: dict[str, dict[str, float]] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = value.to_dict() if isinstance(value, RiskReport) else _plain(value)
        return out

    @staticmethod
    def from_dict(d: dict[str, Any]) -> RiskReport:
        fields = dict(d)
        if fields.get("baseline") is not None:
            fields["baseline"] = RiskReport.from_dict(fields["baseline"])
        known = RiskReport.__dataclass_fields__
        return RiskReport(**{k: v for k, v in fields.items() if k in known})


def _plain(value: Any) -> Any:
    """Numpy scalars/arrays and tuples → plain Python types."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def evaluate_scores(y_true: Any, scores: Any, *, train_scores: Any = None, baseline_scores: Any = None,
                    threshold: float = 0.5, n_bins: int = 10, max_curve_points: int = 200,
                    min_rows: int = MIN_ROWS_PER_POINT) -> RiskReport:
    """Evaluate a binary risk model's ``scores`` (higher = riskier) against labels ``y_true`` (1 = bad).

    * ``train_scores``: the model's scores on its training set → PSI (training deciles as bins).
    * ``baseline_scores``: a guest-only model's scores on the same rows → ``report.baseline`` and
      ``report.federation_gain`` (AUC, Gini, KS deltas: federated − guest-only).
    * ``threshold``: cut-off for the confusion matrix (score ≥ threshold → bad).
    * ``n_bins``: groups of the decile table, the calibration table and PSI.
    * ``max_curve_points``: cap on points per curve (ROC, KS).
    * ``min_rows``: fewest rows behind each curve point, decile group and calibration bin, whatever the
      number of rows (default :data:`MIN_ROWS_PER_POINT`).

    Brier score and calibration are computed only when all scores lie in [0, 1] (a note says otherwise).
    """
    y, s = validate_scores(y_true, scores)
    notes: list[str] = []
    k = ks(y, s)
    a = auc(y, s)
    report = RiskReport(
        n=int(y.shape[0]), n_bad=int(y.sum()), bad_rate=float(y.mean()), auc=a, gini=2 * a - 1,
        ks=k.statistic, ks_cutoff=k.cutoff, threshold=threshold_metrics(y, s, threshold),
        deciles=decile_table(y, s, n_bins, min_rows), roc_curve=roc_curve_points(y, s, max_curve_points, min_rows),
        ks_curve=ks_curve_points(y, s, max_curve_points, min_rows), notes=notes)
    if s.min() >= 0 and s.max() <= 1:
        report.brier = brier(y, s)
        report.calibration, report.ece = calibration_table(y, s, n_bins, min_rows)
        report.mean_predicted = float(s.mean())
    else:
        notes.append("scores are not probabilities in [0, 1]: Brier score and calibration not computed")
    if train_scores is not None:
        p = population_stability_index(train_scores, s, n_bins)
        report.psi, report.psi_verdict, report.psi_bins = p.value, p.verdict, p.bins
    else:
        notes.append("no training scores given: population stability index not computed")
    if baseline_scores is not None:
        _, b = validate_scores(y, baseline_scores, name="baseline_scores")
        report.baseline = evaluate_scores(y, b, threshold=threshold, n_bins=n_bins,
                                          max_curve_points=max_curve_points, min_rows=min_rows)
        report.federation_gain = federation_gain(report, report.baseline)
    return report


def federation_gain(report: RiskReport | dict[str, Any],
                    baseline_report: RiskReport | dict[str, Any]) -> dict[str, dict[str, float]]:
    """What the hosts' features add: ``{metric: {"federated", "guest_only", "delta"}}`` for AUC, Gini, KS.

    ``delta`` = federated − guest-only (positive = the federated model ranks risk better); Brier is
    included when both reports have it (there a negative delta is an improvement).
    """
    r = report.to_dict() if isinstance(report, RiskReport) else report
    b = baseline_report.to_dict() if isinstance(baseline_report, RiskReport) else baseline_report
    out: dict[str, dict[str, float]] = {}
    for key in ("auc", "gini", "ks", "brier"):
        if r.get(key) is None or b.get(key) is None:
            continue
        out[key] = {"federated": float(r[key]), "guest_only": float(b[key]), "delta": float(r[key] - b[key])}
    return out
