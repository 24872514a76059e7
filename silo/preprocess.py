"""Local preprocessing inside a silo: standardise numeric columns, one-hot encode categorical ones.

Parameters (means, standard deviations, category lists) are fitted on the silo's own training rows and
kept in its private model part; they never leave the silo. Categories unseen at fit time encode as all
zeros; a constant column is centred only (scale 1).

What it reveals to whom: nothing; it is local computation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


@dataclass
class Preprocessor:
    """scikit-learn-like ``fit`` / ``transform`` over a silo's feature frame."""

    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    means_: dict[str, float] = field(default_factory=dict)
    scales_: dict[str, float] = field(default_factory=dict)
    categories_: dict[str, list[str]] = field(default_factory=dict)

    def fit(self, frame: pd.DataFrame) -> Preprocessor:
        for col in self.numeric:
            values = frame[col].to_numpy(dtype=np.float64)
            mean = float(values.mean()) if len(values) else 0.0
            std = float(values.std()) if len(values) else 1.0
            self.means_[col] = mean
            self.scales_[col] = std if std > 1e-12 else 1.0
        for col in self.categorical:
            self.categories_[col] = sorted(frame[col].astype(str).unique().tolist())
        return self

    @property
    def output_columns(self) -> list[str]:
        out = list(self.numeric)
        for col in self.categorical:
            out.extend(f"{col}={cat}" for cat in self.categories_[col])
        return out

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        blocks: list[np.ndarray] = []
        if self.numeric:
            values = frame[list(self.numeric)].to_numpy(dtype=np.float64)
            means = np.array([self.means_[c] for c in self.numeric])
            scales = np.array([self.scales_[c] for c in self.numeric])
            blocks.append((values - means) / scales)
        for col in self.categorical:
            cats = self.categories_[col]
            codes = pd.Index(cats).get_indexer(frame[col].astype(str))  # -1 for categories unseen at fit
            onehot = np.zeros((len(frame), len(cats)))
            known = codes >= 0
            onehot[np.flatnonzero(known), codes[known]] = 1.0
            blocks.append(onehot)
        if not blocks:
            return np.zeros((len(frame), 0))
        return np.hstack(blocks)

    @staticmethod
    def passthrough(numeric: tuple[str, ...]) -> Preprocessor:
        """The raw numeric columns unchanged (for algorithms whose protocol preprocesses federatedly)."""
        return Preprocessor(numeric=tuple(numeric), means_=dict.fromkeys(numeric, 0.0),
                            scales_=dict.fromkeys(numeric, 1.0))

    def fit_transform(self, frame: pd.DataFrame) -> np.ndarray:
        return self.fit(frame).transform(frame)

    def to_dict(self) -> dict[str, Any]:
        return {"numeric": list(self.numeric), "categorical": list(self.categorical), "means": self.means_,
                "scales": self.scales_, "categories": self.categories_}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Preprocessor:
        return Preprocessor(numeric=tuple(d["numeric"]), categorical=tuple(d["categorical"]),
                            means_=dict(d["means"]), scales_=dict(d["scales"]),
                            categories_={k: list(v) for k, v in d["categories"].items()})
