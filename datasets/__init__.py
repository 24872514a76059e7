"""Bundled public credit-risk data and partition helpers.

Loaders return pandas DataFrames with an ``id`` column, the label ``y`` where the party holds it, and
standardised features ``x0..``. Partition helpers cut one table into vertical (by columns) or horizontal
(IID or Dirichlet label-skew, seeded) silos, for simulations and tests.

What it reveals: nothing; this is local data handling.
"""

from datasets.frames import FrameError, canonical_frame
from datasets.loaders import (
    DATA_DIR,
    VerticalDataset,
    load_breast_vertical,
    load_csv,
    load_default_credit_horizontal,
    load_default_credit_vertical,
    train_test_split_ids,
)
from datasets.partition import dirichlet_label_split, horizontal_iid_split, vertical_split

__all__ = [
    "DATA_DIR",
    "FrameError",
    "VerticalDataset",
    "canonical_frame",
    "dirichlet_label_split",
    "horizontal_iid_split",
    "load_breast_vertical",
    "load_csv",
    "load_default_credit_horizontal",
    "load_default_credit_vertical",
    "train_test_split_ids",
    "vertical_split",
]
