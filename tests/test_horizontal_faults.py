"""Horizontal federation under faults, in-process: dropouts, stragglers, duplicates, bad updates, late joiners,
leavers, too few clients, resume, schema mismatch and bad input."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from algorithms.base import MemoryCheckpoint, Payload
from algorithms.horizontal.estimator import FederatedClassifier, SimulatedCrash
from algorithms.horizontal.params import FederationError
from federation.channel import Channel, ChannelError

Hook = Callable[[Channel, str, str, Payload, int], None]


class Faulty(Channel):
    """A party's channel whose sends of update messages go through ``hook(inner, receiver, tag, payload, n)``
    (``n``: 1 for the party's first update, 2 for the second, ...)."""

    def __init__(self, inner: Channel, hook: Hook) -> None:
        super().__init__(inner.party_id)
        self.inner, self.hook, self.updates = inner, hook, 0

    def send(self, receiver: str, tag: str, payload: Payload) -> None:
        if tag.startswith("upd."):
            self.updates += 1
            self.hook(self.inner, receiver, tag, payload, self.updates)
        else:
            self.inner.send(receiver, tag, payload)

    def recv(self, sender: str, tag: str, timeout: float | None = None) -> Payload:
        return self.inner.recv(sender, tag, timeout)


def faulty(hook: Hook) -> Callable[[Channel], Channel]:
    return lambda inner: Faulty(inner, hook)


def crash_at(n_update: int) -> Callable[[Channel], Channel]:
    def hook(inner: Channel, receiver: str, tag: str, payload: Payload, n: int) -> None:
        if n >= n_update:
            raise SimulatedCrash
        inner.send(receiver, tag, payload)
    return faulty(hook)


def slow(seconds: float, only: int | None = None) -> Callable[[Channel], Channel]:
    def hook(inner: Channel, receiver: str, tag: str, payload: Payload, n: int) -> None:
        if only is None or n == only:
            time.sleep(seconds)
        inner.send(receiver, tag, payload)
    return faulty(hook)


def _frame(rng: np.random.Generator, n: int, d: int = 3, prefix: str = "r") -> pd.DataFrame:
    X = rng.normal(size=(n, d))
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ np.linspace(-1, 1, d))))).astype(int)
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(d)])
    df.insert(0, "y", y)
    df.insert(0, "id", [f"{prefix}{i}" for i in range(n)])
    return df


@pytest.fixture(scope="module")
def three() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(7)
    return {"a": _frame(rng, 80, prefix="a"), "b": _frame(rng, 60, prefix="b"), "c": _frame(rng, 50, prefix="c")}


FAST: dict[str, Any] = dict(batch_size=16, learning_rate=0.1, min_fit_clients=2, min_updates=2, round_timeout=0.3,
                            join_timeout=5.0, rejoin_grace=0.2)


def test_a_client_that_dies_mid_round_is_dropped_and_the_round_closes_with_the_others(three: dict) -> None:
    fed = FederatedClassifier("fedavg", rounds=5, faults={"c": crash_at(3)}, **FAST).fit(three)
    h = fed.history_
    assert [r.contributors for r in h[:2]] == [["a", "b", "c"]] * 2
    assert h[2].contributors == ["a", "b"] and h[2].missing == ["c"] and h[2].attempts == 1
    assert all(r.sampled == ["a", "b"] for r in h[3:])  # out until it rejoins: no deadline wasted per round
    assert any("no update from client 'c'" in e for e in fed.summary_.events)
    assert "c" not in fed.client_models_
    np.testing.assert_array_equal(fed.client_models_["a"].global_weights, fed.weights_)


def test_a_late_update_is_dropped_never_averaged_later_and_the_straggler_rejoins(three: dict) -> None:
    faults = {"a": slow(0.1), "c": slow(0.6, only=2)}  # rounds of >= 0.1 s: the job outlasts the straggler
    fed = FederatedClassifier("fedavg", rounds=12, faults=faults, **FAST).fit(three)
    h = fed.history_
    assert h[1].missing == ["c"] and h[1].contributors == ["a", "b"]
    assert any("dropped a late update of client 'c' for round 2" in e for e in fed.summary_.events)
    assert "c" in h[-1].contributors  # it rejoined under a new incarnation
    assert any("client 'c' joined (incarnation 2" in e for e in fed.summary_.events)
    np.testing.assert_array_equal(fed.client_models_["c"].global_weights, fed.weights_)


def test_a_second_update_in_the_same_round_is_dropped(three: dict) -> None:
    def twice(inner: Channel, receiver: str, tag: str, payload: Payload, n: int) -> None:
        inner.send(receiver, tag, payload)
        with pytest.raises(ChannelError, match="duplicate"):
            inner.send(receiver, tag, payload)

    clean = FederatedClassifier("fedavg", rounds=3, **FAST).fit(three)
    dup = FederatedClassifier("fedavg", rounds=3, faults={"b": faulty(twice)}, **FAST).fit(three)
    np.testing.assert_array_equal(dup.weights_, clean.weights_)


def test_wrong_shape_and_non_finite_updates_are_refused_and_named(three: dict) -> None:
    def corrupt(inner: Channel, receiver: str, tag: str, payload: Payload, n: int) -> None:
        vectors = dict(payload["vectors"])
        if n == 2:
            vectors["delta"] = np.zeros(len(vectors["delta"]) + 1)
        if n == 3:
            vectors["delta"] = np.full(len(vectors["delta"]), np.nan)
        inner.send(receiver, tag, {"vectors": vectors, "metrics": payload["metrics"]})

    fed = FederatedClassifier("fedavg", rounds=4, faults={"c": faulty(corrupt)}, **FAST).fit(three)
    h = fed.history_
    assert "shape (5,), expected (4,)" in h[1].refused["c"] and h[1].contributors == ["a", "b"]
    assert "non-finite" in h[2].refused["c"] and h[2].contributors == ["a", "b"]
    assert h[3].contributors == ["a", "b", "c"]
    assert any("refused the update of client 'c'" in e for e in fed.summary_.events)
    assert np.isfinite(fed.weights_).all()


class _Signal(MemoryCheckpoint):
    """The aggregator's checkpoint; sets ``event`` once round ``at`` is saved."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.event = at, threading.Event()

    def save(self, step: int, state: Payload) -> None:
        super().save(step, state)
        if step >= self.at:
            self.event.set()


def test_a_late_joiner_gets_the_current_global_model_at_the_next_round(three: dict) -> None:
    signal = _Signal(at=2)
    fed = FederatedClassifier("fedavg", rounds=8, checkpoints={"arbiter": signal},
                              start_after={"c": lambda: signal.event.wait(10)}, faults={"a": slow(0.1)},
                              **{**FAST, "join_timeout": 0.2}).fit(three)
    h = fed.history_
    assert all("c" not in r.sampled for r in h[:2])
    first = next(r.round for r in h if "c" in r.contributors)
    assert first >= 3 and "c" in h[-1].contributors
    assert fed.summary_.space.count == 80 + 60  # preprocessing used the starting cohort
    np.testing.assert_array_equal(fed.client_models_["c"].global_weights, fed.weights_)


def test_a_client_may_leave_a_running_job(three: dict) -> None:
    fed = FederatedClassifier("fedavg", rounds=5, leave_after={"c": 2}, **{**FAST, "round_timeout": 1.0}).fit(three)
    assert [r.contributors for r in fed.history_[:2]] == [["a", "b", "c"]] * 2
    assert all("c" not in r.contributors for r in fed.history_[2:])
    assert "left after round 2" in fed.client_models_["c"].notes


@pytest.mark.parametrize("algorithm", ["scaffold", "fedadam"])
def test_too_few_clients_fails_naming_them_and_resume_equals_uninterrupted(algorithm: str) -> None:
    rng = np.random.default_rng(11)
    two = {"a": _frame(rng, 64, prefix="a"), "b": _frame(rng, 48, prefix="b")}
    params = {**FAST, "rounds": 5, "join_timeout": 0.3, "round_retries": 1}
    if algorithm == "scaffold":
        params["local_epochs"] = 2
    whole = FederatedClassifier(algorithm, **params).fit(two)
    cps = {p: MemoryCheckpoint() for p in ("arbiter", "a", "b")}
    with pytest.raises(FederationError, match="missing: b"):
        FederatedClassifier(algorithm, checkpoints=cps, faults={"b": crash_at(3)}, **params).fit(two)
    assert cps["arbiter"].steps[-1] == 2
    resumed = FederatedClassifier(algorithm, checkpoints=cps, **params).fit(two)
    np.testing.assert_array_equal(resumed.weights_, whole.weights_)
    assert [r.round for r in resumed.history_] == [1, 2, 3, 4, 5]
    assert any("resumed after round 2" in e for e in resumed.summary_.events)


def test_schema_mismatch_names_the_silo_and_the_columns(three: dict) -> None:
    bad = dict(three)
    bad["b"] = three["b"].rename(columns={"x2": "z2"})
    with pytest.raises(FederationError, match=r"silo 'b': missing columns \['x2'\], unexpected columns \['z2'\]"):
        FederatedClassifier("fedavg", rounds=2, **FAST).fit(bad)


def test_bad_rows_are_refused_before_anything_is_sent(three: dict) -> None:
    nan = dict(three)
    nan["a"] = three["a"].copy()
    nan["a"].loc[3, "x1"] = np.nan
    with pytest.raises(ValueError, match="client 'a': non-finite value in column 'x1', row 3"):
        FederatedClassifier("fedavg", rounds=1, **FAST).fit(nan)
    labels = dict(three)
    labels["b"] = three["b"].assign(y=three["b"]["y"] * 2)
    with pytest.raises(ValueError, match="client 'b': labels must be 0 or 1"):
        FederatedClassifier("fedavg", rounds=1, **FAST).fit(labels)


def test_clients_with_zero_rows_or_one_class_train_and_the_summary_says_so(three: dict) -> None:
    odd = dict(three)
    odd["z"] = three["a"].iloc[:0]
    odd["o"] = three["b"][three["b"].y == 0]
    fed = FederatedClassifier("fedavg", rounds=2, **FAST).fit(odd)
    assert "zero rows" in fed.summary_.clients["z"]["notes"][0]
    assert "one class only" in fed.summary_.clients["o"]["notes"][0]
    assert fed.history_[-1].contributors == ["a", "b", "c", "o", "z"]
    report = fed.evaluate({"a": three["a"], "o": odd["o"], "z": odd["z"]})
    assert report["silos"]["o"]["models"]["global"]["auc"] is None
    assert any("one class" in n for n in report["silos"]["o"]["notes"])
    assert report["silos"]["z"]["rows"] == 0
