"""Federated preprocessing: every client standardises and one-hot encodes with the same pooled statistics.

Before round 1 every client of the starting cohort sends :func:`local_stats` of its raw feature matrix:
its row count, per numeric column the sum and the sum of squares, and per categorical column the set of
category codes it holds. The aggregator adds them up (:func:`combine`) into a :class:`FeatureSpace`
(pooled mean and standard deviation per numeric column, the sorted union of categories per categorical
column) and sends it to every client, including clients that join later. Each client then transforms its
rows locally with :meth:`FeatureSpace.transform`; the local model's inputs are identical in meaning at
every client.

What it reveals to whom: the aggregator learns each client's row count, each numeric column's sum and sum
of squares (so the client's column means and variances) and which category codes each client has. Every
client learns the pooled means, standard deviations and category union. No row leaves a client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def _split(names: Sequence[str], categorical: Sequence[str]) -> tuple[list[int], list[int]]:
    unknown = [c for c in categorical if c not in names]
    if unknown:
        raise ValueError(f"categorical columns {unknown} are not features of the data ({list(names)})")
    cat = [i for i, n in enumerate(names) if n in set(categorical)]
    num = [i for i in range(len(names)) if i not in set(cat)]
    return num, cat


def local_stats(X: np.ndarray, names: Sequence[str], categorical: Sequence[str] = ()) -> dict[str, Any]:
    """One client's sufficient statistics (see the module docstring)."""
    num, cat = _split(names, categorical)
    Xn = X[:, num]
    return {"count": int(X.shape[0]), "sum": Xn.sum(axis=0), "sumsq": (Xn * Xn).sum(axis=0),
            "categories": {names[i]: np.unique(X[:, i]).astype(np.float64) for i in cat}}


@dataclass(frozen=True)
class FeatureSpace:
    """Pooled preprocessing: raw ``names`` → standardised numeric columns, then one-hot categorical ones."""

    names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    categories: Mapping[str, np.ndarray]
    count: int

    @property
    def numeric(self) -> list[int]:
        return _split(self.names, list(self.categories))[0]

    @property
    def output_names(self) -> tuple[str, ...]:
        out = [self.names[i] for i in self.numeric]
        for name, values in self.categories.items():
            out += [f"{name}={v:g}" for v in values]
        return tuple(out)

    @property
    def n_outputs(self) -> int:
        return len(self.output_names)

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.names):
            raise ValueError(f"expected {len(self.names)} columns {list(self.names)}, got shape {X.shape}")
        parts = [(X[:, self.numeric] - self.mean) / self.scale]
        for name, values in self.categories.items():
            col = X[:, self.names.index(name)]
            parts.append((col[:, None] == values[None, :]).astype(np.float64))
        return np.hstack(parts) if parts else np.zeros((len(X), 0))

    def to_dict(self) -> dict[str, Any]:
        return {"names": list(self.names), "mean": self.mean, "scale": self.scale, "count": self.count,
                "categories": {k: np.asarray(v) for k, v in self.categories.items()}}

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> FeatureSpace:
        return FeatureSpace(tuple(d["names"]), np.asarray(d["mean"], dtype=np.float64),
                            np.asarray(d["scale"], dtype=np.float64),
                            {str(k): np.asarray(v, dtype=np.float64) for k, v in d["categories"].items()},
                            int(d["count"]))

    @staticmethod
    def identity(names: Sequence[str], categorical: Sequence[str] = ()) -> FeatureSpace:
        """No scaling (``standardize = False``); categories still need :func:`combine`."""
        num, _ = _split(names, categorical)
        return FeatureSpace(tuple(names), np.zeros(len(num)), np.ones(len(num)), {}, 0)


def combine(stats: Sequence[Mapping[str, Any]], names: Sequence[str], categorical: Sequence[str] = (),
            standardize: bool = True) -> FeatureSpace:
    """Add the clients' statistics up into the pooled :class:`FeatureSpace`."""
    num, _ = _split(names, categorical)
    n = sum(int(s["count"]) for s in stats)
    total = np.sum([np.asarray(s["sum"], dtype=np.float64) for s in stats], axis=0) if stats else np.zeros(len(num))
    sq = np.sum([np.asarray(s["sumsq"], dtype=np.float64) for s in stats], axis=0) if stats else np.zeros(len(num))
    if standardize and n > 0:
        mean = total / n
        var = np.maximum(sq / n - mean * mean, 0.0)
        scale = np.where(var > 1e-24, np.sqrt(var), 1.0)
    else:
        mean, scale = np.zeros(len(num)), np.ones(len(num))
    cats = {c: np.unique(np.concatenate([np.asarray(s["categories"].get(c, []), dtype=np.float64) for s in stats]))
            for c in categorical}
    return FeatureSpace(tuple(names), mean, scale, cats, n)


__all__ = ["FeatureSpace", "combine", "local_stats"]
