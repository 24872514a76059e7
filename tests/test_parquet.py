"""Parquet sources: a dataset folder of many files is read in partitions (silo.parquet) and gives exactly
the table that pandas would read at once: same ids, values, column order and schema digest; nulls are
reported with their row; only the configured columns are read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from silo.config import DataSource
from silo.data import DataError, load_table, validate_table
from silo.parquet import read_parquet_partitions

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def _dataset(root: Path, files: int = 5, rows: int = 257) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    frames = []
    for f in range(files):
        frame = pd.DataFrame({
            "customer": [f"c{f * rows + i:06d}" for i in range(rows)],
            "y": rng.integers(0, 2, rows),
            "income": rng.standard_normal(rows),
            "age": rng.integers(18, 90, rows),                # int64: read as float64
            "region": rng.choice(["north", "south", "east"], rows),
            "active": rng.integers(0, 2, rows).astype(bool),
        })
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), root / f"part-{f:02d}.parquet")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def test_dataset_folder_reads_like_pandas(tmp_path: Path) -> None:
    whole = _dataset(tmp_path)
    source = DataSource(source="parquet", path=tmp_path, id_column="customer", label_column="y")
    table = load_table(source, "bank")
    reference = validate_table(pd.read_parquet(tmp_path), "bank", id_column="customer", label_column="y")
    assert table.schema_digest == reference.schema_digest
    assert list(table.features.columns) == ["income", "age", "region", "active"]
    np.testing.assert_array_equal(table.ids, whole["customer"].to_numpy(dtype=str))
    np.testing.assert_array_equal(table.labels, whole["y"].to_numpy())
    for col in ("income", "age", "active"):
        np.testing.assert_array_equal(table.features[col].to_numpy(dtype=np.float64),
                                      reference.features[col].to_numpy(dtype=np.float64))
    assert list(table.features["region"].astype(str)) == list(whole["region"])
    small = read_parquet_partitions(tmp_path, columns=["income"], id_column="customer", batch_rows=100)
    assert list(small.columns) == ["customer", "income"] and len(small) == len(whole)


def test_null_in_a_numeric_column_names_the_row(tmp_path: Path) -> None:
    pq.write_table(pa.table({"id": ["a", "b", "c"], "x": pa.array([1.0, None, 3.0])}), tmp_path / "p0.parquet")
    pq.write_table(pa.table({"id": ["d"], "x": pa.array([4.0])}), tmp_path / "p1.parquet")
    with pytest.raises(DataError, match=r"non-finite value nan in column 'x' at row 2 \(id 'b'"):
        load_table(DataSource(source="parquet", path=tmp_path), "insurer")
    with pytest.raises(DataError, match="columns not in the Parquet data"):
        load_table(DataSource(source="parquet", path=tmp_path, features=("nope",)), "insurer")
