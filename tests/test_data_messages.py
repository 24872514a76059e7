"""Data errors read as a bank's analyst expects: 1-based row numbers, plain values (``2``, not ``np.int64(2)``),
and a missing label column lists the columns the table has."""

from __future__ import annotations

import pandas as pd
import pytest

from silo.data import DataError, validate_table


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"cust": ["C1", "C2", "C3", "C4"], "age": [30, 40, 50, 60], "default": [0, 1, 2, 0]})


def test_label_value_and_row_printed_plainly() -> None:
    with pytest.raises(DataError) as err:
        validate_table(_frame(), "bank", id_column="cust", label_column="default")
    message = str(err.value)
    assert "row 3 (id 'C3') has 2 " in message and "np." not in message


def test_missing_label_column_lists_the_columns() -> None:
    with pytest.raises(DataError, match=r"label column 'y' not found \(columns: \['cust', 'age', 'default'\]\)"):
        validate_table(_frame(), "bank", id_column="cust", label_column="y")
