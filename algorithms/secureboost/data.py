"""Input validation and row alignment for SecureBoost parties.

Each party passes its own table: the guest ``id, y, features…``, a host ``id, features…``. Features must
be numeric; NaN means "missing" (a learned default direction handles it), infinities are refused.
Labels must be 0/1. Parties must hold the same ids in the same order (the output of PSI alignment);
they check this by exchanging a SHA-256 digest of the ordered id list.

What it reveals: the id digest (the ids themselves are already shared after alignment).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd


class InputError(ValueError):
    """A party's table cannot be used (names the party, column and row)."""


def ids_digest(ids: np.ndarray) -> str:
    h = hashlib.sha256()
    for i in ids:
        h.update(str(i).encode())
        h.update(b"\n")
    return h.hexdigest()


def feature_matrix(frame: pd.DataFrame, party: str, exclude: tuple[str, ...] = ("id", "y"),
                   columns: list[str] | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Ids, float64 features (NaN = missing) and feature names of one party's table."""
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"{party}: expected a pandas DataFrame, got {type(frame).__name__}")
    if "id" not in frame.columns:
        raise InputError(f"{party}: the table has no 'id' column")
    ids = frame["id"].astype(str).to_numpy()
    if len(ids) == 0:
        raise InputError(f"{party}: the table is empty")
    dup = pd.Index(ids).duplicated()
    if dup.any():
        raise InputError(f"{party}: id {ids[np.argmax(dup)]!r} appears more than once")
    names = [c for c in frame.columns if c not in exclude] if columns is None else list(columns)
    missing_cols = [c for c in names if c not in frame.columns]
    if missing_cols:
        raise InputError(f"{party}: the table lacks the model's feature columns {missing_cols}")
    if not names:
        raise InputError(f"{party}: the table has no feature columns")
    for c in names:
        if not (pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])):
            raise InputError(f"{party}: feature column {c!r} is not numeric (dtype {frame[c].dtype})")
    X = frame[names].to_numpy(dtype=np.float64)
    inf = np.isinf(X)
    if inf.any():
        r, c = np.argwhere(inf)[0]
        raise InputError(f"{party}: column {names[c]!r} is infinite at row {r} (id {ids[r]!r}); "
                         "only NaN is accepted, as 'missing'")
    return ids, X, [str(n) for n in names]


def labels(frame: pd.DataFrame, party: str) -> np.ndarray:
    """The guest's 0/1 labels."""
    if "y" not in frame.columns:
        raise InputError(f"{party}: the guest table has no label column 'y'")
    raw = frame["y"]
    if raw.isna().any():
        r = int(np.argmax(raw.isna().to_numpy()))
        raise InputError(f"{party}: label 'y' is missing at row {r} (id {frame['id'].iloc[r]!r})")
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isin(values, (0.0, 1.0))
    if bad.any():
        r = int(np.argmax(bad))
        raise InputError(f"{party}: label 'y' must be 0 or 1, got {raw.iloc[r]!r} at row {r} "
                         f"(id {frame['id'].iloc[r]!r})")
    y = values.astype(np.int64)
    if y.min() == y.max():
        raise InputError(f"{party}: labels contain a single class ({y[0]}); need both 0 and 1")
    return y


def host_frame_checks(frame: pd.DataFrame, party: str) -> None:
    if isinstance(frame, pd.DataFrame) and "y" in frame.columns:
        raise InputError(f"{party}: a host table must not contain the label column 'y'")
