"""Partition one table into silos: vertical by columns, horizontal IID or with Dirichlet label skew.

What it reveals: nothing; this is local simulation tooling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd


def vertical_split(frame: pd.DataFrame, columns: Mapping[str, Sequence[str]], id_column: str = "id"
                   ) -> dict[str, pd.DataFrame]:
    """One table per party with the id column plus that party's columns (every column used at most once)."""
    seen: dict[str, str] = {}
    for party, cols in columns.items():
        for col in cols:
            if col not in frame.columns:
                raise KeyError(f"column {col!r} for party {party!r} is not in the table")
            if col in seen:
                raise ValueError(f"column {col!r} given to both {seen[col]!r} and {party!r}")
            seen[col] = party
    return {party: frame[[id_column, *cols]].copy() for party, cols in columns.items()}


def horizontal_iid_split(frame: pd.DataFrame, n_parties: int, seed: int = 0) -> list[pd.DataFrame]:
    """Shuffle rows and deal them into ``n_parties`` silos of near-equal size."""
    if n_parties < 1:
        raise ValueError("n_parties must be at least 1")
    order = np.random.default_rng(seed).permutation(len(frame))
    return [frame.iloc[np.sort(part)].reset_index(drop=True) for part in np.array_split(order, n_parties)]


def dirichlet_label_split(frame: pd.DataFrame, n_parties: int, alpha: float = 0.5, label: str = "y",
                          seed: int = 0) -> list[pd.DataFrame]:
    """Non-IID silos: each class's rows are spread over parties with proportions ~ Dirichlet(alpha).

    Small ``alpha`` gives strongly skewed label mixes; large ``alpha`` approaches IID.
    """
    if n_parties < 1 or alpha <= 0:
        raise ValueError("need n_parties >= 1 and alpha > 0")
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(n_parties)]
    for cls in np.unique(frame[label].to_numpy()):
        rows = rng.permutation(np.flatnonzero(frame[label].to_numpy() == cls))
        shares = rng.dirichlet(np.full(n_parties, alpha))
        cuts = (np.cumsum(shares)[:-1] * len(rows)).astype(int)
        for k, chunk in enumerate(np.split(rows, cuts)):
            parts[k].extend(chunk.tolist())
    return [frame.iloc[np.sort(np.array(p, dtype=int))].reset_index(drop=True) for p in parts]
