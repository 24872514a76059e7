"""Bundled data loads, and partitions are complete, disjoint and reproducible."""

from __future__ import annotations

import numpy as np

from datasets import (
    dirichlet_label_split,
    horizontal_iid_split,
    load_breast_vertical,
    load_default_credit_horizontal,
    load_default_credit_vertical,
    train_test_split_ids,
    vertical_split,
)


def test_default_credit_vertical_shapes() -> None:
    data = load_default_credit_vertical()
    assert data.guest.shape == (30000, 15)
    assert data.hosts["insurer"].shape == (30000, 11)
    assert set(data.guest["y"].unique()) == {0, 1}
    train, test = train_test_split_ids(data.guest)
    assert len(train) == 24000 and len(test) == 6000
    sub = data.subset(test)
    assert list(sub.guest["id"]) == list(test) == list(sub.hosts["insurer"]["id"])


def test_breast_and_horizontal() -> None:
    assert load_breast_vertical().joined().shape == (569, 1 + 1 + 10 + 20)
    homo = load_default_credit_horizontal()
    assert [len(homo[k]) for k in ("guest", "host_1", "host_2", "test")] == [8000, 8000, 8000, 6000]


def test_partitions() -> None:
    frame = load_default_credit_horizontal()["guest"]
    parts = vertical_split(frame, {"bank": ["y", "x0"], "insurer": ["x1", "x2"]})
    assert list(parts["insurer"].columns) == ["id", "x1", "x2"]
    iid = horizontal_iid_split(frame, 3, seed=1)
    assert sum(map(len, iid)) == len(frame)
    skew = dirichlet_label_split(frame, 4, alpha=0.1, seed=1)
    assert sorted(np.concatenate([p["id"].to_numpy() for p in skew])) == sorted(frame["id"])
    rates = [p["y"].mean() for p in skew if len(p) > 50]
    assert max(rates) - min(rates) > 0.1  # label skew
    again = dirichlet_label_split(frame, 4, alpha=0.1, seed=1)
    assert all(a.equals(b) for a, b in zip(skew, again, strict=True))
