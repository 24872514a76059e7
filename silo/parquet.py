"""Reading a silo's table from Parquet: one file or a dataset folder of many files, in partitions.

``pandas.read_parquet`` materialises the whole Arrow table and then converts it, so its peak is about
twice the table plus Arrow's buffers. :func:`read_parquet_partitions` counts the rows from the files'
metadata, allocates the final columns once (numeric columns as one column-major float64 block, ids as
strings, text columns as categoricals) and fills them from record batches of ``batch_rows`` rows read one
at a time (no read-ahead across files), so the peak stays near the final matrix plus one batch, whatever
the number of files. Only the columns the silo uses are read. Nulls in numeric columns become NaN, which
validation then reports with the row (:mod:`silo.data`).

What it reveals to whom: nothing; the table stays in the silo's memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_BATCH_ROWS = 65_536


def _is_numeric(field_type: object) -> bool:
    import pyarrow as pa

    t = field_type
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
                or pa.types.is_decimal(t))


def read_parquet_partitions(path: str | Path, columns: Sequence[str] | None = None, id_column: str = "id",
                            batch_rows: int = DEFAULT_BATCH_ROWS) -> pd.DataFrame:
    """The table at ``path`` (a Parquet file or a folder of them) as a DataFrame, read batch by batch.

    ``columns``: the columns to read (default: all); ``id_column`` is always read as strings.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds

    dataset = ds.dataset(str(path), format="parquet")
    schema = dataset.schema
    names = list(columns) if columns is not None else list(schema.names)
    if id_column not in names and id_column in schema.names:
        names.insert(0, id_column)
    missing = [c for c in names if c not in schema.names]
    if missing:
        raise KeyError(f"columns not in the Parquet data: {missing} (columns: {schema.names})")
    n = dataset.count_rows()
    numeric = [c for c in names if c != id_column and _is_numeric(schema.field(c).type)]
    text = [c for c in names if c != id_column and c not in numeric]
    block = np.empty((n, len(numeric)), dtype=np.float64, order="F")  # each column contiguous
    id_chunks: list[pa.Array] = []  # Arrow strings (compact); one pandas string column at the end
    text_chunks: dict[str, list[pa.Array]] = {c: [] for c in text}
    start = 0
    pool = pa.default_memory_pool()
    for i, batch in enumerate(dataset.to_batches(columns=names, batch_size=batch_rows, batch_readahead=0,
                                                 fragment_readahead=0)):
        if i % 8 == 7:
            pool.release_unused()  # the allocator keeps freed batch buffers otherwise
        stop = start + batch.num_rows
        for j, col in enumerate(numeric):
            values = batch.column(col)
            if pa.types.is_decimal(values.type) or pa.types.is_boolean(values.type):
                values = values.cast(pa.float64())
            block[start:stop, j] = values.to_numpy(zero_copy_only=False)
        if id_column in names:
            id_chunks.append(batch.column(id_column).cast(pa.string()))
        for col in text:
            text_chunks[col].append(batch.column(col).cast(pa.string()).dictionary_encode())
        start = stop
    pool.release_unused()
    if start != n:
        raise ValueError(f"{path}: read {start} rows, the metadata announced {n}")
    frame = pd.DataFrame(block, columns=numeric, copy=False)
    out: dict[str, object] = {}
    if id_column in names:
        out[id_column] = (pa.chunked_array(id_chunks, type=pa.string()).to_pandas() if id_chunks
                          else pd.Series([], dtype=str))
    for col in text:
        chunks = text_chunks.pop(col)
        out[col] = (pa.chunked_array(chunks).combine_chunks().to_pandas() if chunks
                    else pd.Series([], dtype="category"))
    for col, values in out.items():
        frame[col] = values
    return frame[names]
