"""Input checks for the parties' local data (features, labels, names), with errors naming the culprit.

What it reveals: nothing; errors are raised locally and name only the party's own rows and columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from algorithms.paillier import NonFiniteValueError


def check_features(x: np.ndarray, feature_names: Sequence[str] | None, party: str) -> tuple[np.ndarray, list[str]]:
    """Return ``x`` as a finite float matrix and its column names; refuse empty, ragged or non-finite data."""
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"{party}: features must be a 2-D matrix (rows × features), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{party}: no rows")
    if arr.shape[1] == 0:
        raise ValueError(f"{party}: no features")
    names = [f"x{j}" for j in range(arr.shape[1])] if feature_names is None else [str(n) for n in feature_names]
    if len(names) != arr.shape[1]:
        raise ValueError(f"{party}: {len(names)} feature names for {arr.shape[1]} columns")
    bad = ~np.isfinite(arr)
    if bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        raise NonFiniteValueError(
            f"{party}: feature {names[col]!r} is {arr[row, col]} at row {row} ({int(bad.sum())} NaN/inf values "
            "in total); impute or drop them before training"
        )
    return np.ascontiguousarray(arr), names


def check_labels(y: np.ndarray, n_rows: int, party: str) -> np.ndarray:
    """Return labels as int64 in {0, 1}; refuse anything else naming the first offending row."""
    arr = np.asarray(y).ravel()
    if arr.shape[0] != n_rows:
        raise ValueError(f"{party}: {arr.shape[0]} labels for {n_rows} feature rows")
    as_float = arr.astype(float) if arr.dtype != object else np.array([_num(v) for v in arr], dtype=float)
    bad = ~np.isin(as_float, (0.0, 1.0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        value = arr[row].item() if isinstance(arr[row], np.generic) else arr[row]
        raise ValueError(f"{party}: label at row {row} is {value!r}; labels must be 0 or 1 "
                         f"({int(bad.sum())} invalid labels in total)")
    return as_float.astype(np.int64)


def _num(v: object) -> float:
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")
