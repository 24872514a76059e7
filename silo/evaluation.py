"""Guest-side evaluation: labels + federated scores → the aggregate result sent to the arbiter.

The guest (the bank) is the only party holding labels, and after federated prediction it also holds the
per-customer scores. :func:`evaluate_at_guest` turns them into a :class:`algorithms.metrics.RiskReport`
dict; :func:`guest_only_baseline` fits the bank's own logistic regression on its own features so the
report shows what the hosts' data adds; :func:`export_scores_csv` writes ``id, score`` for the bank's own
validation tools (that file stays inside the bank).

What it reveals to whom: per-sample scores, labels and ids never leave the guest. The dict returned by
:func:`evaluate_at_guest` (what the services send to the arbiter and what the report shows) contains only

* counts and rates: population size, number of bads, confusion matrix at one threshold, precision,
  recall, F1, AUC, Gini, KS, Brier, ECE, PSI;
* per-group aggregates: 10 decile groups (count, bads, min/max score), 10 calibration bins (mean score,
  observed bad rate, count, bin edges), 10 PSI bins (training-score decile edges, shares);
* binned curves, at most ``max_curve_points`` points each: ROC points (share of goods, share of bads at
  or above a cut-off) and KS points (population share, score cut-off, cumulative bad and good shares).
  The rows, sorted by score, are cut into consecutive groups of at least ``min_rows`` (20) rows and each
  point follows one group, whatever the sample size; the cut-offs lie midway between two rows' scores.
  Decile groups and calibration bins hold at least ``min_rows`` rows too (fewer groups on a small set).
  They reveal the score distribution's quantiles and how many bads lie in each group of >= 20 rows; they
  never give one row's label, and do not link a score to a customer id.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from algorithms.metrics import MIN_ROWS_PER_POINT, MetricsError, evaluate_scores, validate_finite, validate_labels

__all__ = ["assert_aggregate_only", "evaluate_at_guest", "export_scores_csv", "guest_only_baseline"]


def evaluate_at_guest(y_true: Any, scores: Any, *, train_scores: Any = None, baseline_scores: Any = None,
                      threshold: float = 0.5, n_bins: int = 10, max_curve_points: int = 200,
                      min_rows: int = MIN_ROWS_PER_POINT) -> dict[str, Any]:
    """Evaluate the federated model's ``scores`` on the guest's labels; return the aggregate result dict.

    Arguments are those of :func:`algorithms.metrics.evaluate_scores`: ``train_scores`` (the model's scores
    on its training rows, for PSI), ``baseline_scores`` (a guest-only model's scores on the same rows, for
    the federation gain, e.g. from :func:`guest_only_baseline`), ``threshold`` (score ≥ threshold → bad).
    The result is plain JSON / codec types (``RiskReport.to_dict()``) and is checked with
    :func:`assert_aggregate_only` before it is returned.
    """
    report = evaluate_scores(y_true, scores, train_scores=train_scores, baseline_scores=baseline_scores,
                             threshold=threshold, n_bins=n_bins, max_curve_points=max_curve_points,
                             min_rows=min_rows)
    result = report.to_dict()
    assert_aggregate_only(result, max_list_len=max(max_curve_points + 1, n_bins))
    return result


def assert_aggregate_only(result: dict[str, Any], max_list_len: int) -> None:
    """Raise ``ValueError`` if any list in ``result`` is longer than ``max_list_len`` (a per-sample leak guard)."""

    def walk(value: Any, where: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{where}.{k}")
        elif isinstance(value, list | tuple | np.ndarray):
            if len(value) > max_list_len:
                raise ValueError(f"evaluation result field {where} has {len(value)} entries (> {max_list_len}): "
                                 "per-sample data must not leave the guest")
            for i, v in enumerate(value):
                walk(v, f"{where}[{i}]")

    walk(result, "result")


def guest_only_baseline(X_train: Any, y_train: Any, X_eval: Any, *, C: float = 1.0,
                        max_iter: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Fit a plain scikit-learn ``LogisticRegression`` on the guest's own features only.

    Returns ``(train_scores, eval_scores)``: predicted probabilities of a bad on the training and the
    evaluation rows. Pass ``eval_scores`` as ``baseline_scores`` to :func:`evaluate_at_guest`. Local to the
    guest; reveals nothing.
    """
    X_tr = np.asarray(X_train, dtype=np.float64)
    X_ev = np.asarray(X_eval, dtype=np.float64)
    if X_tr.ndim != 2 or X_ev.ndim != 2 or X_tr.shape[1] != X_ev.shape[1]:
        raise MetricsError(f"guest features: X_train {X_tr.shape} and X_eval {X_ev.shape} must be 2-d with the "
                           "same number of columns")
    for name, X in (("X_train", X_tr), ("X_eval", X_ev)):
        bad = np.argwhere(~np.isfinite(X))
        if bad.size:
            raise MetricsError(f"guest features {name}: non-finite value at row {bad[0][0]}, column {bad[0][1]}")
    y = validate_labels(y_train, name="y_train")
    if X_tr.shape[0] != y.shape[0]:
        raise MetricsError(f"X_train has {X_tr.shape[0]} rows but y_train has {y.shape[0]}")
    model = LogisticRegression(C=C, max_iter=max_iter).fit(X_tr, y)
    return model.predict_proba(X_tr)[:, 1], model.predict_proba(X_ev)[:, 1]


def export_scores_csv(path: str | Path, ids: Any, scores: Any) -> Path:
    """Write ``id,score`` rows (header included, scores with full float precision) for the bank's own tools.

    Ids must be unique and as many as the scores; scores must be finite. Parent folders are created.
    Returns the path. The file holds per-customer scores: it is the guest's own data and never leaves it.
    """
    id_list = [str(i) for i in np.asarray(ids, dtype=object).reshape(-1)]
    s = validate_finite(scores, "scores")
    if len(id_list) != s.shape[0]:
        raise MetricsError(f"export_scores_csv: {len(id_list)} ids but {s.shape[0]} scores")
    seen: dict[str, int] = {}
    for row, i in enumerate(id_list):
        if i in seen:
            raise MetricsError(f"export_scores_csv: id {i!r} appears twice (rows {seen[i]} and {row})")
        seen[i] = row
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "score"])
        writer.writerows((i, repr(float(v))) for i, v in zip(id_list, s, strict=True))
    return out
