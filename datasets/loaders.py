"""Loaders for the gzipped CSVs shipped in ``datasets/data``.

* default credit (UCI id 350, CC BY 4.0; splits from FATE's examples, Apache-2.0): vertical guest/host
  views of the same 30,000 customers, and four horizontal files with 23 features each;
* breast (Wisconsin diagnostic, FATE examples): a small vertical split for fast protocol tests.

What it reveals: nothing; this is local data handling.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

DATA_DIR = Path(__file__).resolve().parent / "data"


def load_csv(name: str) -> pd.DataFrame:
    """Load ``datasets/data/<name>.csv.gz`` (``id`` as string, features as float64, ``y`` as int)."""
    path = DATA_DIR / f"{name}.csv.gz"
    if not path.exists():
        raise FileNotFoundError(f"no bundled dataset {name!r} (looked for {path})")
    frame = pd.read_csv(path, dtype={"id": str})
    if "y" in frame:
        frame["y"] = frame["y"].astype(np.int64)
    return frame


@dataclass(frozen=True)
class VerticalDataset:
    """The guest's table (id, y, features) and each host's table (id, features)."""

    guest: pd.DataFrame
    hosts: dict[str, pd.DataFrame]

    def joined(self) -> pd.DataFrame:
        """All parties' columns joined on id (centralised reference only; never done in production)."""
        out = self.guest
        for name, host in self.hosts.items():
            out = out.merge(host.add_prefix(f"{name}_").rename(columns={f"{name}_id": "id"}), on="id")
        return out

    def subset(self, ids: np.ndarray | list[str]) -> VerticalDataset:
        """The same parties restricted to ``ids`` (in that order)."""
        index = pd.Index(ids)

        def pick(frame: pd.DataFrame) -> pd.DataFrame:
            return frame.set_index("id").loc[index].reset_index()

        return VerticalDataset(pick(self.guest), {k: pick(v) for k, v in self.hosts.items()})


def load_default_credit_vertical() -> VerticalDataset:
    """Bank (guest: id, y, x0..x12) and insurer (host: id, x0..x9) views of 30,000 customers."""
    return VerticalDataset(load_csv("default_credit_hetero_guest"),
                           {"insurer": load_csv("default_credit_hetero_host")})


def load_breast_vertical() -> VerticalDataset:
    """Breast cancer: guest (id, y, x0..x9) and host (id, x0..x19), 569 rows."""
    return VerticalDataset(load_csv("breast_hetero_guest"), {"insurer": load_csv("breast_hetero_host")})


def load_default_credit_horizontal() -> dict[str, pd.DataFrame]:
    """Three 8,000-row silos with the same 23 features (guest, host_1, host_2) and a 6,000-row test set."""
    return {name: load_csv(f"default_credit_homo_{name}") for name in ("guest", "host_1", "host_2", "test")}


def train_test_split_ids(frame: pd.DataFrame, test_size: float = 0.2, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of the label holder's ids (the 80/20, seed-42 split used by the reference AUCs)."""
    train, test = train_test_split(frame["id"].to_numpy(), test_size=test_size, random_state=seed,
                                   stratify=frame["y"].to_numpy())
    return train, test
