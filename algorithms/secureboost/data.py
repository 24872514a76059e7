"""Input validation and row alignment for SecureBoost parties.

Each party passes its own table: the guest ``id, y, features…``, a host ``id, features…`` (a pandas
DataFrame), or the :class:`algorithms.api.PartyData` a silo hands to every role (same checks). Features must
be numeric; NaN means "missing" (a learned default direction handles it), infinities are refused.
Labels must be 0/1. Parties must hold the same ids in the same order (the output of PSI alignment);
they check this by exchanging a SHA-256 digest of the ordered id list.

What it reveals: the id digest (the ids themselves are already shared after alignment).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from algorithms.api import PartyData

Table = pd.DataFrame | PartyData


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
        raise InputError(f"{party}: the table has no 'id' column (columns: {list(frame.columns)}); name yours with "
                         "VerticalDataset.from_frames(..., id_column=...)")
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
            raise InputError(f"{party}: feature column {c!r} is not numeric (dtype {frame[c].dtype}); build the "
                             "data with VerticalDataset.from_frames(...) to one-hot encode string categories")
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


def party_features(data: Table, party: str, columns: list[str] | None = None
                   ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """:func:`feature_matrix` of a DataFrame or a :class:`PartyData` (``columns``: the model's, in order)."""
    if not isinstance(data, PartyData):
        return feature_matrix(data, party, columns=columns)
    ids = np.asarray(data.ids).astype(str)
    if len(ids) == 0:
        raise InputError(f"{party}: the table is empty")
    dup = pd.Index(ids).duplicated()
    if dup.any():
        raise InputError(f"{party}: id {ids[np.argmax(dup)]!r} appears more than once")
    names = [str(n) for n in data.feature_names]
    X = np.asarray(data.X, dtype=np.float64)
    if columns is not None and list(columns) != names:
        missing = [c for c in columns if c not in names]
        if missing:
            raise InputError(f"{party}: the table lacks the model's feature columns {missing}")
        X, names = X[:, [names.index(c) for c in columns]], [str(c) for c in columns]
    if not names:
        raise InputError(f"{party}: the table has no feature columns")
    inf = np.isinf(X)
    if inf.any():
        r, c = np.argwhere(inf)[0]
        raise InputError(f"{party}: column {names[c]!r} is infinite at row {r} (id {ids[r]!r}); "
                         "only NaN is accepted, as 'missing'")
    return ids, X, names


def party_labels(data: Table, party: str) -> np.ndarray:
    """:func:`labels` of a DataFrame or a :class:`PartyData`."""
    if not isinstance(data, PartyData):
        return labels(data, party)
    if data.y is None:
        raise InputError(f"{party}: the guest's data has no labels")
    values = np.asarray(data.y, dtype=float)
    bad = ~np.isin(values, (0.0, 1.0))
    if bad.any():
        r = int(np.argmax(bad))
        raise InputError(f"{party}: label 'y' must be 0 or 1, got {data.y[r]!r} at row {r} (id {data.ids[r]!r})")
    y = values.astype(np.int64)
    if y.min() == y.max():
        raise InputError(f"{party}: labels contain a single class ({y[0]}); need both 0 and 1")
    return y


def host_checks(data: Table, party: str) -> None:
    """A host's data must not hold labels."""
    if isinstance(data, PartyData):
        if data.y is not None:
            raise InputError(f"{party}: a host table must not contain the label column 'y'")
        return
    host_frame_checks(data, party)
