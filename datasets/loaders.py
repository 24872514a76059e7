"""Loaders for the gzipped CSVs shipped in ``datasets/data``.

* default credit (UCI id 350, CC BY 4.0; splits from FATE's examples, Apache-2.0): vertical guest/host
  views of the same 30,000 customers, and four horizontal files with 23 features each;
* breast (Wisconsin diagnostic, FATE examples): a small vertical split for fast protocol tests.

What it reveals: nothing; this is local data handling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from datasets.frames import canonical_frame

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
    """The guest's table (id, y, features) and each host's table (id, features), by host party id.

    The estimators (``VerticalLogisticRegression``, ``SecureBoostClassifier``) take it as their data. Build
    it from raw tables as the silos accept them with :meth:`from_frames` (named id / label columns, string
    categories one-hot encoded); ``categories`` keeps the category lists so a scoring table built with
    ``like=`` the training dataset gets the same columns.
    """

    guest: pd.DataFrame
    hosts: dict[str, pd.DataFrame]
    categories: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # party -> column -> categories

    @staticmethod
    def from_frames(guest: pd.DataFrame, hosts: Mapping[str, pd.DataFrame], *,
                    id_column: str | Mapping[str, str] = "id", label_column: str | None = "y",
                    categorical: Mapping[str, Sequence[str]] | None = None,
                    like: VerticalDataset | None = None) -> VerticalDataset:
        """Raw tables → a dataset: ``id_column`` (one name, or one per party: ``"guest"`` and host ids),
        ``label_column`` in the guest's table (``None`` for a scoring table without labels), ``categorical``
        (per party: numeric-looking columns to one-hot encode too; string columns always are), ``like``: the
        training dataset whose categories a scoring table reuses."""
        def id_of(party: str) -> str:
            return id_column if isinstance(id_column, str) else id_column.get(party, "id")

        known = like.categories if like is not None else {}
        extra = dict(categorical or {})
        frames, categories = {}, {}
        for party, frame in [("guest", guest), *hosts.items()]:
            frames[party], categories[party] = canonical_frame(
                frame, party, id_column=id_of(party), label_column=label_column if party == "guest" else None,
                categorical=tuple(extra.get(party, ())), categories=known.get(party))
        return VerticalDataset(frames.pop("guest"), frames, categories)

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

        return VerticalDataset(pick(self.guest), {k: pick(v) for k, v in self.hosts.items()}, self.categories)


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
