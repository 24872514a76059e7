"""Raw tables as the silos accept them, for the Python estimators: named id / label columns, string categories.

:func:`canonical_frame` turns one party's raw table into the estimators' form: an ``id`` column (strings), the
label as ``y`` (0/1, guest only) and float features, with every categorical column (a string or other
non-numeric column, or one named in ``categorical``) one-hot encoded as ``column=value`` in sorted category
order, as the silos' preprocessing does (:mod:`silo.preprocess`). Categories are learned from the table
unless ``categories`` (from the training table) are given; values unseen then encode as all zeros, so a
scoring table gets exactly the training table's columns. Numeric columns are left as they are (the
estimators take them raw).

What it reveals: nothing; this is local data handling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd


class FrameError(ValueError):
    """A raw table cannot be used as given (the message names the party and the column)."""


def is_categorical(series: pd.Series) -> bool:
    """A column the silos one-hot encode: anything but numbers and booleans."""
    return not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series))


def canonical_frame(frame: pd.DataFrame, party: str, *, id_column: str = "id", label_column: str | None = None,
                    categorical: Sequence[str] = (), categories: Mapping[str, Sequence[str]] | None = None
                    ) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """``frame`` with columns ``id``, ``y`` (if ``label_column``) and float features; and the category lists
    used per categorical column (pass them back as ``categories`` for a scoring table)."""
    if not isinstance(frame, pd.DataFrame):
        raise FrameError(f"{party}: expected a pandas DataFrame, got {type(frame).__name__}")
    columns = list(frame.columns)
    if id_column not in frame.columns:
        raise FrameError(f"{party}: id column {id_column!r} not found (columns: {columns}); name it with "
                         "id_column=")
    if label_column is not None and label_column not in frame.columns:
        raise FrameError(f"{party}: label column {label_column!r} not found (columns: {columns}); name it with "
                         "label_column=")
    reserved = {id_column, *([label_column] if label_column else [])}
    clash = [c for c in ("id", "y") if c in frame.columns and c not in reserved]
    if clash:
        raise FrameError(f"{party}: feature columns {clash} would clash with the id/label names; rename them")
    out = pd.DataFrame({"id": frame[id_column].astype(str).to_numpy()})
    if label_column is not None:
        raw = frame[label_column]
        y = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isin(y, (0.0, 1.0))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            value = raw.iloc[row]
            raise FrameError(f"{party}: label column {label_column!r} must be 0/1; row {row + 1} has "
                             f"{value.item() if isinstance(value, np.generic) else value!r}")
        out["y"] = y.astype(np.int64)
    used: dict[str, list[str]] = {}
    given = dict(categories or {})
    for col in [c for c in frame.columns if c not in reserved]:
        series = frame[col]
        if col in categorical or col in given or is_categorical(series):
            if series.isna().any():
                row = int(np.flatnonzero(series.isna().to_numpy())[0])
                raise FrameError(f"{party}: missing value in categorical column {col!r} at row {row + 1}")
            text = series.astype(str)
            cats = list(given[col]) if col in given else sorted(text.unique().tolist())
            codes = pd.Index(cats).get_indexer(text)
            for j, cat in enumerate(cats):
                out[f"{col}={cat}"] = (codes == j).astype(np.float64)
            used[str(col)] = [str(c) for c in cats]
        else:
            out[str(col)] = series.to_numpy(dtype=np.float64)
    return out, used


__all__ = ["FrameError", "canonical_frame", "is_categorical"]
