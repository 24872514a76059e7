"""Binning of one party's characteristics on its own data: quantile, equal width, categorical levels.

A :class:`FeatureBins` describes one characteristic: numeric cut points ``c_1 < … < c_{k−1}`` with
left-closed bins ``(−∞, c_1), [c_1, c_2), …, [c_{k−1}, ∞)`` (the convention of ``numpy.digitize`` and
toad), or, for a categorical characteristic, the level values of each bin; missing values (NaN) always
get their own bin, the last one, when the fitting data has any. :class:`CharacteristicBins` fits one per
feature column of a party's matrix and transforms it into bin indices.

* ``quantile`` (default): cut points at the ``i/n_bins`` quantiles of the non-missing values, duplicates
  removed (a discrete characteristic gets fewer bins);
* ``equal_width``: ``n_bins`` equal intervals between the minimum and the maximum, empty ones dropped;
* categorical (features listed in ``categorical``): one bin per distinct level.

Numeric value bins below a minimum size are merged into a neighbour at fitting time. Binning is
label-free. :meth:`FeatureBins.merge` applies merge groups (index ranges for numeric bins, level groups for
categorical ones) computed elsewhere, e.g. by the label holder's optimal merge.

What it reveals to whom: nothing; bins are fitted and kept by the party that owns the column.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Method = Literal["quantile", "equal_width"]
Kind = Literal["numeric", "categorical"]


class UnknownLevelError(ValueError):
    """A categorical characteristic has a value its bins were not fitted on."""


@dataclass(frozen=True)
class FeatureBins:
    """The bins of one characteristic (see the module docstring for the conventions)."""

    name: str
    kind: Kind
    edges: tuple[float, ...] = ()
    levels: tuple[tuple[float, ...], ...] = ()
    has_missing: bool = False

    @property
    def n_value_bins(self) -> int:
        """Bins of non-missing values."""
        return len(self.edges) + 1 if self.kind == "numeric" else len(self.levels)

    @property
    def n_bins(self) -> int:
        return self.n_value_bins + (1 if self.has_missing else 0)

    @property
    def missing_bin(self) -> int | None:
        return self.n_value_bins if self.has_missing else None

    # ------------------------------------------------------------------ fit
    @staticmethod
    def fit(name: str, column: np.ndarray, method: Method = "quantile", n_bins: int = 10,
            categorical: bool = False, min_rows: int = 1) -> FeatureBins:
        """Bins of one column; numeric value bins under ``min_rows`` rows are merged into their smaller
        neighbour (label-free; categorical levels and the missing bin are never merged here)."""
        col = np.asarray(column, dtype=np.float64)
        missing = np.isnan(col)
        values = col[~missing]
        if values.size == 0:
            raise ValueError(f"characteristic {name!r} has no non-missing value to bin")
        if categorical:
            return FeatureBins(name, "categorical", levels=tuple((float(v),) for v in np.unique(values)),
                               has_missing=bool(missing.any()))
        lo, hi = float(values.min()), float(values.max())
        if method == "quantile":
            cuts = np.quantile(values, np.arange(1, n_bins) / n_bins)
        elif method == "equal_width":
            cuts = np.linspace(lo, hi, n_bins + 1)[1:-1]
        else:
            raise ValueError(f"unknown binning method {method!r} (quantile or equal_width)")
        cuts = np.unique(cuts[(cuts > lo) & (cuts <= hi)])
        # drop cut points that leave a bin empty (equal width on skewed data): label-free clean-up
        idx = np.searchsorted(cuts, values, side="right")
        occupied = np.bincount(idx, minlength=len(cuts) + 1) > 0
        keep = [i for i in range(len(cuts)) if occupied[i + 1]]
        fitted = FeatureBins(name, "numeric", edges=tuple(float(c) for c in cuts[keep]),
                             has_missing=bool(missing.any()))
        sizes = np.bincount(fitted.transform(values), minlength=fitted.n_value_bins)
        return fitted.merge(small_bin_groups(sizes, min_rows)) if sizes.min() < min_rows else fitted

    # ------------------------------------------------------------ transform
    def transform(self, column: np.ndarray) -> np.ndarray:
        """Bin index of every value (int64); missing → :attr:`missing_bin` (refused if none was fitted)."""
        col = np.asarray(column, dtype=np.float64)
        missing = np.isnan(col)
        out = np.empty(len(col), dtype=np.int64)
        if self.kind == "numeric":
            out[~missing] = np.searchsorted(np.asarray(self.edges), col[~missing], side="right")
        else:
            lookup = {v: b for b, group in enumerate(self.levels) for v in group}
            vals = col[~missing]
            unknown = [v for v in np.unique(vals) if float(v) not in lookup]
            if unknown:
                raise UnknownLevelError(f"characteristic {self.name!r}: level(s) {unknown[:5]} were not seen "
                                        "when its bins were fitted")
            out[~missing] = [lookup[float(v)] for v in vals]
        if missing.any():
            if self.missing_bin is None:
                # a missing value where training had none: it gets the (new) missing bin, which has no WOE
                raise ValueError(f"characteristic {self.name!r} has missing values but its bins were fitted "
                                 "without any")
            out[missing] = self.missing_bin
        return out

    # ---------------------------------------------------------------- merge
    def merge(self, groups: Sequence[Sequence[int]]) -> FeatureBins:
        """New bins whose bin ``j`` is the union of the value bins in ``groups[j]`` (missing bin kept apart).

        Numeric groups must be consecutive index ranges covering every value bin in order; categorical
        groups any partition of the value bins.
        """
        flat = [int(b) for g in groups for b in g]
        if sorted(flat) != list(range(self.n_value_bins)) or any(len(g) == 0 for g in groups):
            raise ValueError(f"characteristic {self.name!r}: merge groups {list(map(list, groups))} do not "
                             f"partition its {self.n_value_bins} value bins")
        if self.kind == "numeric":
            if flat != list(range(self.n_value_bins)) or any(list(g) != list(range(g[0], g[-1] + 1))
                                                              for g in groups):
                raise ValueError(f"characteristic {self.name!r}: numeric merge groups must be consecutive ranges")
            edges = tuple(self.edges[g[0] - 1] for g in groups[1:])
            return FeatureBins(self.name, "numeric", edges=edges, has_missing=self.has_missing)
        levels = tuple(tuple(sorted(v for b in g for v in self.levels[int(b)])) for g in groups)
        return FeatureBins(self.name, "categorical", levels=levels, has_missing=self.has_missing)

    # -------------------------------------------------------------- display
    def labels(self, decimals: int = 4, unit: Sequence[float] | None = None) -> list[str]:
        """Human-readable bin labels (``[a, b)``, level lists, ``missing``); ``unit = (mean, scale)`` shows
        numeric edges in the column's original units (``mean + scale·edge``) when the party standardised it."""
        if self.kind == "numeric":
            mean, scale = (float(unit[0]), float(unit[1])) if unit is not None else (0.0, 1.0)
            bounds = [-np.inf, *(mean + scale * e for e in self.edges), np.inf]
            out = [f"[{_fmt(a, decimals)}, {_fmt(b, decimals)})" for a, b in itertools.pairwise(bounds)]
        else:
            out = ["{" + ", ".join(_fmt(v, decimals) for v in g) + "}" for g in self.levels]
        return out + (["missing"] if self.has_missing else [])

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "edges": list(self.edges),
                "levels": [list(g) for g in self.levels], "has_missing": self.has_missing}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> FeatureBins:
        return FeatureBins(str(d["name"]), d["kind"], tuple(float(v) for v in d["edges"]),
                           tuple(tuple(float(v) for v in g) for g in d["levels"]), bool(d["has_missing"]))


def small_bin_groups(sizes: Sequence[int] | np.ndarray, min_rows: int) -> list[list[int]]:
    """Consecutive groups of bins, each of at least ``min_rows`` rows where possible: the smallest group is
    merged into its smaller neighbour until none is below ``min_rows`` (or one group is left)."""
    groups = [[i] for i in range(len(sizes))]
    size = [int(s) for s in sizes]
    while len(groups) > 1 and min(size) < min_rows:
        j = int(np.argmin(size))
        k = j if j == 0 or (j < len(groups) - 1 and size[j + 1] <= size[j - 1]) else j - 1
        groups[k:k + 2] = [groups[k] + groups[k + 1]]
        size[k:k + 2] = [size[k] + size[k + 1]]
    return groups


def _fmt(v: float, decimals: int) -> str:
    if np.isinf(v):
        return "-inf" if v < 0 else "inf"
    return f"{v:.{decimals}g}"


@dataclass
class CharacteristicBins:
    """The bins of every characteristic (column) of one party's feature matrix."""

    features: list[FeatureBins] = field(default_factory=list)

    @staticmethod
    def fit(X: np.ndarray, names: Sequence[str], method: Method = "quantile", n_bins: int = 10,
            categorical: Sequence[str] = (), min_rows: int = 1) -> CharacteristicBins:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(names):
            raise ValueError(f"expected a matrix with {len(names)} columns, got shape {X.shape}")
        unknown = sorted(set(categorical) - set(names))
        if unknown:
            raise ValueError(f"categorical characteristics {unknown} are not columns of this party")
        cats = set(categorical)
        return CharacteristicBins([FeatureBins.fit(n, X[:, j], method, n_bins, n in cats, min_rows)
                                   for j, n in enumerate(names)])

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Bin index matrix (rows × characteristics, int64)."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.features):
            raise ValueError(f"expected a matrix with {len(self.features)} columns, got shape {X.shape}")
        if not self.features:
            return np.zeros((X.shape[0], 0), dtype=np.int64)
        return np.column_stack([f.transform(X[:, j]) for j, f in enumerate(self.features)])

    def select(self, names: Sequence[str]) -> CharacteristicBins:
        by_name = {f.name: f for f in self.features}
        return CharacteristicBins([by_name[n] for n in names])

    def to_dict(self) -> dict[str, Any]:
        return {"features": [f.to_dict() for f in self.features]}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> CharacteristicBins:
        return CharacteristicBins([FeatureBins.from_dict(f) for f in d["features"]])
