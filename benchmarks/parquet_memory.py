"""Benchmark: peak memory of loading a silo table from a Parquet dataset of many files.

Writes a dataset folder of 40 files x 25,000 rows (1,000,000 customers: a string id and 50 float64
features, 400 MB as a float64 matrix), then loads and validates it in fresh processes two ways: the
silo's partitioned reader (:mod:`silo.parquet`, one record batch at a time into preallocated columns)
and ``pandas.read_parquet`` of the whole folder followed by the same validation. Peak resident memory
(``ru_maxrss``) is measured per process, minus the interpreter's baseline with the same imports.

Last lines: ``parquet_stream_peak_mb=``, ``parquet_pandas_peak_mb=``, ``parquet_matrix_mb=`` and
``parquet_peak_ratio=<pandas / stream>``. Run: ``python -m benchmarks.parquet_memory [--rows N]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

FILES, COLUMNS = 40, 50

_CHILD = """
import resource, sys
import pandas as pd, pyarrow, numpy
from silo.data import validate_table
from silo.parquet import read_parquet_partitions
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if sys.argv[1] == "baseline":
    table = None
elif sys.argv[1] == "stream":
    table = validate_table(read_parquet_partitions(sys.argv[2]), "host")
else:
    table = validate_table(pd.read_parquet(sys.argv[2]), "host")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def write_dataset(root: Path, rows: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    per_file = rows // FILES
    for f in range(FILES):
        data = {"id": pa.array([f"c{f * per_file + i}" for i in range(per_file)])}
        data.update({f"x{c}": pa.array(rng.standard_normal(per_file)) for c in range(COLUMNS)})
        pq.write_table(pa.table(data), root / f"part-{f:03d}.parquet")


def peak_mb(mode: str, path: Path) -> float:
    out = subprocess.run([sys.executable, "-c", _CHILD, mode, str(path)], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_dataset(root, args.rows)
        rows = (args.rows // FILES) * FILES
        baseline = peak_mb("baseline", root)
        stream = peak_mb("stream", root) - baseline
        whole = peak_mb("pandas", root) - baseline
    matrix = rows * COLUMNS * 8 / 2**20
    print(f"{rows} rows x {COLUMNS} float64 features in {FILES} Parquet files ({matrix:.0f} MB as a matrix); "
          f"interpreter baseline {baseline:.0f} MB")
    print(f"partitioned reader + validation: peak {stream:.0f} MB above baseline ({stream / matrix:.2f}x the matrix)")
    print(f"pandas.read_parquet + validation: peak {whole:.0f} MB above baseline ({whole / matrix:.2f}x the matrix)")
    print(f"parquet_stream_peak_mb={stream:.0f}")
    print(f"parquet_pandas_peak_mb={whole:.0f}")
    print(f"parquet_matrix_mb={matrix:.0f}")
    print(f"parquet_peak_ratio={whole / stream:.2f}")


if __name__ == "__main__":
    main()
