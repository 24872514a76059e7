"""A silo's private table: loading (CSV, Parquet or a SQL table through SQLAlchemy), validation and the
schema digest.

Validation runs before any job and fails with :class:`DataError` naming the party, column and row:
missing or duplicate ids, NaN/inf in a numeric feature, missing categorical values, non-binary labels,
an empty feature set. The schema digest is SHA-256 over the id/label column names and each feature's
name, kind and treatment (standardise or one-hot); it changes when the columns change, so a silo whose
table changed since training is refused at evaluation/prediction time.

What it reveals to whom: the digest (column names and kinds, hashed) is sent to the arbiter and peers;
rows, values and ids never leave the silo through this module.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, inspect, make_url

from datasets.frames import is_categorical
from silo.config import DataSource


class DataError(ValueError):
    """The silo's table is unusable; the message names the party, column and row."""


@dataclass(frozen=True)
class LocalTable:
    """Validated private data of one silo (ids as strings, features, optional binary labels)."""

    party_id: str
    ids: np.ndarray
    features: pd.DataFrame
    labels: np.ndarray | None
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    id_column: str
    label_column: str | None

    @property
    def schema(self) -> dict[str, object]:
        return {
            "id": self.id_column,
            "label": self.label_column,
            "features": [[c, "numeric" if c in self.numeric else "categorical",
                          "standardise" if c in self.numeric else "one_hot"] for c in self.features.columns],
        }

    @property
    def schema_digest(self) -> str:
        return hashlib.sha256(json.dumps(self.schema, sort_keys=True).encode()).hexdigest()

    def at(self, positions: np.ndarray) -> tuple[pd.DataFrame, np.ndarray | None]:
        """Features (and labels) of the rows at ``positions``, in that order."""
        feats = self.features.iloc[positions].reset_index(drop=True)
        return feats, (self.labels[positions] if self.labels is not None else None)

    def rows(self, ids: np.ndarray | list[str]) -> tuple[pd.DataFrame, np.ndarray | None]:
        """Features (and labels) of ``ids``, in that order."""
        index = pd.Index(self.ids)
        pos = index.get_indexer(pd.Index(ids))
        if (pos < 0).any():
            missing = np.asarray(ids)[pos < 0][:3]
            raise DataError(f"{self.party_id}: ids not in the local table: {list(missing)}")
        feats = self.features.iloc[pos].reset_index(drop=True)
        return feats, (self.labels[pos] if self.labels is not None else None)


def schema_changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """What differs between two :attr:`LocalTable.schema` dicts, in words (empty list: nothing found).

    Names id/label columns renamed, feature columns removed, added, changed kind (numeric/categorical) or
    treatment, and a changed column order. ``old`` may be None (a model part from before schemas were
    kept): the result then says only that the digest differs.
    """
    if old is None:
        return ["the columns differ (this model part predates detailed schemas: compare the digests)"]
    changes: list[str] = []
    for key, what in (("id", "id column"), ("label", "label column")):
        if old.get(key) != new.get(key):
            changes.append(f"{what} {old.get(key)!r} is now {new.get(key)!r}")
    before = {str(f[0]): (str(f[1]), str(f[2])) for f in old.get("features", [])}
    after = {str(f[0]): (str(f[1]), str(f[2])) for f in new.get("features", [])}
    removed = [c for c in before if c not in after]
    added = [c for c in after if c not in before]
    if len(removed) == 1 and len(added) == 1 and before[removed[0]][0] == after[added[0]][0]:
        changes.append(f"column {removed[0]!r} renamed to {added[0]!r}?")
    else:
        if removed:
            changes.append(f"columns removed: {removed}")
        if added:
            changes.append(f"columns added: {added}")
    for col in before:
        if col in after and before[col] != after[col]:
            changes.append(f"column {col!r} changed from {before[col][0]} to {after[col][0]}")
    if not changes and list(before) != list(after):
        changes.append("the feature columns were reordered")
    return changes


def redact_url(url: str) -> str:
    """A database URL fit for messages and logs: the password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # unparsable: still hide what looks like user:password@
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def redact_secret(text: str, url: str) -> str:
    """``text`` with the URL and its password (raw and URL-encoded) replaced by their redacted forms."""
    text = text.replace(url, redact_url(url))
    try:
        password = make_url(url).password
    except Exception:
        match = re.search(r"://[^:/@]*:([^@]*)@", url)
        password = match.group(1) if match else None
    if password:
        for form in {str(password), quote_plus(str(password)), quote(str(password), safe="")}:
            text = text.replace(form, "***")
    return text


def read_source(source: DataSource) -> pd.DataFrame:
    """Read the configured table as a DataFrame (ids are read as strings)."""
    if source.source == "csv":
        assert source.path is not None
        return pd.read_csv(source.path, dtype={source.id_column: str}, keep_default_na=True)
    if source.source == "parquet":  # a file or a folder of many files, read in partitions (silo.parquet)
        assert source.path is not None
        from silo.parquet import read_parquet_partitions

        columns = None
        if source.features is not None:
            columns = [source.id_column, *([source.label_column] if source.label_column else []), *source.features]
        return read_parquet_partitions(source.path, columns=columns, id_column=source.id_column)
    assert source.url is not None and source.table is not None
    engine = create_engine(source.url)
    try:
        if not inspect(engine).has_table(source.table):
            raise DataError(f"SQL source {redact_url(source.url)}: no table {source.table!r}")
        with engine.connect() as conn:
            return pd.read_sql_table(source.table, conn)
    finally:
        engine.dispose()


def _plain(value: object) -> str:
    """A value as a reader expects it in a message: ``2``, ``'yes'`` (not ``np.int64(2)``)."""
    item = value.item() if isinstance(value, np.generic) else value
    return repr(item)


def validate_table(frame: pd.DataFrame, party_id: str, id_column: str = "id", label_column: str | None = None,
                   features: tuple[str, ...] | None = None, categorical: tuple[str, ...] | None = None
                   ) -> LocalTable:
    """Check a raw table and split it into ids, features and labels; raise :class:`DataError` on problems
    (row numbers in messages are 1-based data rows: row 1 is the first row after a CSV's header)."""
    who = f"party {party_id!r}"
    if id_column not in frame.columns:
        raise DataError(f"{who}: id column {id_column!r} not found (columns: {list(frame.columns)})")
    if label_column is not None and label_column not in frame.columns:
        raise DataError(f"{who}: label column {label_column!r} not found (columns: {list(frame.columns)})")
    raw_ids = frame[id_column]
    missing = raw_ids.isna() | (raw_ids.astype(str).str.strip() == "")
    if missing.any():
        row = int(np.flatnonzero(missing.to_numpy())[0])
        raise DataError(f"{who}: missing id in column {id_column!r} at row {row + 1} ({int(missing.sum())} missing)")
    ids = raw_ids.astype(str).to_numpy()
    dup = pd.Series(ids).duplicated(keep="first").to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        raise DataError(f"{who}: duplicate id {_plain(ids[row])} in column {id_column!r} at row {row + 1} "
                        f"({int(dup.sum())} duplicates)")
    reserved = {id_column, *([label_column] if label_column else [])}
    if features is None:
        feature_cols = [c for c in frame.columns if c not in reserved]
    else:
        unknown = [c for c in features if c not in frame.columns]
        if unknown:
            raise DataError(f"{who}: feature columns not found: {unknown}")
        clash = [c for c in features if c in reserved]
        if clash:
            raise DataError(f"{who}: feature columns {clash} are the id/label column")
        feature_cols = list(features)
    if not feature_cols:
        raise DataError(f"{who}: the feature set is empty (no columns besides {sorted(reserved)})")
    cat_given = set(categorical or ())
    bad_cat = cat_given - set(feature_cols)
    if bad_cat:
        raise DataError(f"{who}: categorical columns {sorted(bad_cat)} are not features")
    numeric: list[str] = []
    cats: list[str] = []
    feats = frame[feature_cols]  # copy-on-write (pandas >= 3): columns are copied only where replaced
    for col in feature_cols:
        series = feats[col]
        if col in cat_given or is_categorical(series):  # the same rule as the estimators' (datasets.frames)
            if series.isna().any():
                row = int(np.flatnonzero(series.isna().to_numpy())[0])
                raise DataError(f"{who}: missing value in categorical column {col!r} at row {row + 1} "
                                f"(id {_plain(ids[row])})")
            feats[col] = series.astype(str)
            cats.append(col)
        else:
            values = series.to_numpy(dtype=np.float64)
            bad = ~np.isfinite(values)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise DataError(f"{who}: non-finite value {float(values[row])} in column {col!r} at row {row + 1} "
                                f"(id {_plain(ids[row])}; {int(bad.sum())} NaN/inf in this column)")
            if series.dtype != np.float64:  # float64 columns stay as they are (no copy of a shared block)
                feats[col] = values
            numeric.append(col)
    labels = None
    if label_column is not None:
        raw = frame[label_column]
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isin(values, (0.0, 1.0))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"{who}: label column {label_column!r} must be 0/1; row {row + 1} (id {_plain(ids[row])}) "
                            f"has {_plain(raw.iloc[row])} ({int(bad.sum())} non-binary values)")
        labels = values.astype(np.int64)
        if len(np.unique(labels)) < 2:
            raise DataError(f"{who}: label column {label_column!r} has a single class")
    return LocalTable(party_id=party_id, ids=ids, features=feats.reset_index(drop=True), labels=labels,
                      numeric=tuple(numeric), categorical=tuple(cats), id_column=id_column,
                      label_column=label_column)


def load_table(source: DataSource, party_id: str) -> LocalTable:
    """Read and validate the configured source."""
    try:
        frame = read_source(source)
    except DataError:
        raise
    except Exception as exc:
        if source.url is not None:  # the URL may carry a password: never echo it (nor the driver's message)
            where = f"{redact_url(source.url)} table {source.table}"
            detail = redact_secret(str(exc), source.url)
            raise DataError(f"party {party_id!r}: cannot read {source.source} source {where}: {detail}") from None
        raise DataError(f"party {party_id!r}: cannot read {source.source} source {source.path}: {exc}") from exc
    return validate_table(frame, party_id, source.id_column, source.label_column, source.features,
                          source.categorical)
