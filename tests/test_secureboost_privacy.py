"""SecureBoost: a host replaying the validation split from the job seed (the audit's attack), shown to fail now.

The guest sends every host the job parameters (seed included) and the training row positions. When the
stratified validation split was drawn from that public seed, a host could replay it for every candidate number
of positives k: only the true k is consistent with the split it sees, and aligning the replayed per-class
train/validation patterns with the observed one pins many rows' labels. The roles run for real (2048-bit key,
breast data); the host's view is what it received over the in-memory network.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from algorithms.secureboost import VerticalSecureBoost
from datasets import load_breast_vertical
from federation.channel import InMemoryNetwork

FRACTION = 0.2
SEED = 0


def replay_attack(n: int, train_rows: np.ndarray, seed: int, fraction: float) -> tuple[list[int], dict[int, int]]:
    """The host's attack: the positive counts consistent with the split, and the labels certain under them.

    For a candidate count k the public seed gives, per class, which of its rows (in row order) are training
    rows: split ``[0]*(n-k) + [1]*k`` (the split depends on the labels only through the class counts). The
    observed train/validation sequence must be a merge of the two class patterns; a forward and a backward
    pass over (row, positives so far) find every consistent merge and the rows whose label is the same in all.
    """
    observed = np.zeros(n, dtype=bool)
    observed[train_rows] = True
    consistent, certain = [], {}
    for k in range(2, n - 1):
        sorted_y = np.r_[np.zeros(n - k, dtype=int), np.ones(k, dtype=int)]
        tr, _ = train_test_split(np.arange(n), test_size=fraction, random_state=seed, stratify=sorted_y)
        is_train = np.zeros(n, dtype=bool)
        is_train[tr] = True
        neg, pos = is_train[: n - k], is_train[n - k:]
        # forward[t][j]: the first t rows can hold j positives consistently
        forward = np.zeros((n + 1, k + 1), dtype=bool)
        forward[0, 0] = True
        j = np.arange(k + 1)
        for t in range(n):
            i = t - j  # negatives so far
            ok_neg = forward[t] & (i >= 0) & (i < n - k) & (neg[np.clip(i, 0, n - k - 1)] == observed[t])
            ok_pos = forward[t, :-1] & (i[:-1] >= 0) & (pos[np.clip(j[:-1], 0, k - 1)] == observed[t])
            forward[t + 1] = ok_neg
            forward[t + 1, 1:] |= ok_pos
            if not forward[t + 1].any():
                break
        else:
            if forward[n, k]:
                consistent.append(k)
                certain = _certain_labels(forward, neg, pos, observed, n, k)
    return consistent, certain


def _certain_labels(forward: np.ndarray, neg: np.ndarray, pos: np.ndarray, observed: np.ndarray, n: int, k: int
                    ) -> dict[int, int]:
    backward = np.zeros((n + 1, k + 1), dtype=bool)
    backward[n, k] = True
    j = np.arange(k + 1)
    can = np.zeros((n, 2), dtype=bool)
    for t in range(n - 1, -1, -1):
        i = t - j
        valid_i = (i >= 0) & (i < n - k)
        neg_step = forward[t] & valid_i & (neg[np.clip(i, 0, n - k - 1)] == observed[t]) & backward[t + 1]
        pos_step = np.zeros(k + 1, dtype=bool)
        pos_step[:-1] = (forward[t, :-1] & (i[:-1] >= 0) & (pos[np.clip(j[:-1], 0, k - 1)] == observed[t])
                         & backward[t + 1, 1:])
        can[t] = neg_step.any(), pos_step.any()
        backward[t] = neg_step | pos_step
    return {t: int(can[t, 1]) for t in range(n) if can[t].sum() == 1}


def test_host_cannot_replay_the_validation_split(keypair: Any) -> None:
    data = load_breast_vertical()
    y = data.guest["y"].to_numpy()
    network = InMemoryNetwork(record=True)
    VerticalSecureBoost(n_estimators=1, max_depth=1, max_bin=4, validation_fraction=FRACTION, seed=SEED).fit(
        data, keypair=keypair, network=network)
    setup = next(d.payload for d in network.received_by("insurer") if d.tag == "setup")
    assert setup["params"]["seed"] == SEED  # the host knows the job seed ...
    train_rows = np.asarray(setup["train_rows"])  # ... and sees the split

    # the attack works against a split drawn from the public seed (what the guest used to do) ...
    public_train, _ = train_test_split(np.arange(len(y)), test_size=FRACTION, random_state=SEED, stratify=y)
    consistent, certain = replay_attack(len(y), np.sort(public_train), SEED, FRACTION)
    assert consistent == [int(y.sum())] and len(certain) > 50
    assert all(y[row] == label for row, label in certain.items())
    print(f"public-seed split: positive count {consistent[0]} and {len(certain)} labels recovered")

    # ... and finds nothing in the split the guest actually used (seeded by a hash of its own data)
    consistent, certain = replay_attack(len(y), train_rows, SEED, FRACTION)
    assert consistent == [] and certain == {}
