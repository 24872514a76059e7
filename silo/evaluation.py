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

import contextlib
import csv
import io
import os
import secrets
from pathlib import Path, PurePath
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from algorithms.metrics import MIN_ROWS_PER_POINT, MetricsError, evaluate_scores, validate_finite, validate_labels

__all__ = ["UnsafePathError", "assert_aggregate_only", "evaluate_at_guest", "export_scores_csv", "guest_only_baseline",
           "write_inside"]


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


def export_scores_csv(path: str | Path, ids: Any, scores: Any, root: str | Path | None = None) -> Path:
    """Write ``id,score`` rows (header included, scores with full float precision) for the bank's own tools.

    Ids must be unique and as many as the scores; scores must be finite. Parent folders are created.
    With ``root``, ``path`` is relative to that folder and the file is written safely inside it at write
    time (:func:`write_inside`: no symlink is followed, the file appears atomically with mode 0600).
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
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["id", "score"])
    writer.writerows((i, repr(float(v))) for i, v in zip(id_list, s, strict=True))
    data = buffer.getvalue().encode("utf-8")
    if root is not None:
        return write_inside(Path(root), PurePath(path), data)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return out


class UnsafePathError(ValueError):
    """A path that would leave its folder (absolute, ``..``, or through a symbolic link)."""


def write_inside(root: Path, relative: PurePath, data: bytes) -> Path:
    """Write ``data`` to ``root/relative`` without following any symbolic link below ``root``.

    Every folder is opened relative to its parent with ``O_NOFOLLOW`` (created 0700 if missing), the data
    goes to a fresh ``O_EXCL`` temporary file (0600) in the last folder, which is then renamed over the
    target name — a rename replaces a symlink planted there instead of writing through it. The checks
    happen when the file is written, not before a long federated scoring.
    """
    parts = relative.parts
    if relative.is_absolute() or not parts or any(p in ("", ".", "..") for p in parts):
        raise UnsafePathError(f"{str(relative)!r} is not a plain relative path inside {str(root)!r}")
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | nofollow
    fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        for name in parts[:-1]:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o700, dir_fd=fd)
            try:
                child = os.open(name, flags, dir_fd=fd)
            except OSError as exc:
                raise UnsafePathError(f"{str(relative)!r}: {name!r} inside {str(root)!r} is not a plain folder "
                                      "(a symbolic link?)") from exc
            os.close(fd)
            fd = child
        temp = f".{parts[-1]}.{secrets.token_hex(8)}.tmp"
        out = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | nofollow, 0o600, dir_fd=fd)
        try:
            with os.fdopen(out, "wb") as fh:
                fh.write(data)
            os.replace(temp, parts[-1], src_dir_fd=fd, dst_dir_fd=fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=fd)
            raise
    finally:
        os.close(fd)
    return root.joinpath(*parts)
