"""Federated distillation: consensus arithmetic, accept-if-better, families kept as arrays, dropouts,
resume, and what each party receives."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from algorithms.api import ParamsError
from algorithms.base import MemoryCheckpoint
from algorithms.distillation import FederatedDistillation, ModelFamily, make_family
from algorithms.distillation.consensus import aggregate_soft_labels, consensus_for, sharpen, silo_weight
from algorithms.distillation.families import FAMILIES as FAMILY_CLASSES
from algorithms.distillation.params import DistillationParams
from datasets import load_default_credit_horizontal
from federation.channel import InMemoryNetwork

FAMILIES = {"a": "gbt", "b": "scorecard", "c": "mlp"}


@pytest.fixture(scope="module")
def silos() -> tuple[dict[str, pd.DataFrame], pd.DataFrame, pd.DataFrame]:
    data = load_default_credit_horizontal()
    test = data["test"].sample(frac=1.0, random_state=0)
    features = [c for c in test.columns if c not in ("id", "y")]
    small = {k: data[n].iloc[:1200] for k, n in zip("abc", ("guest", "host_1", "host_2"), strict=True)}
    return small, test.iloc[:600][features], test.iloc[600:2600]


def test_consensus_matches_a_hand_computed_case() -> None:
    soft = {"a": np.array([0.2, 0.9]), "b": np.array([0.6, 0.5])}
    w = {"a": silo_weight("quality", 0.8, 100), "b": silo_weight("quality", 0.6, 300)}  # 0.3, 0.1
    assert w == pytest.approx({"a": 0.3, "b": 0.1})
    assert aggregate_soft_labels(soft, w) == pytest.approx([(0.3 * 0.2 + 0.1 * 0.6) / 0.4, (0.27 + 0.05) / 0.4])
    assert silo_weight("count", 0.8, 300) == 300 and silo_weight("uniform", 0.1, 5) == 1
    assert silo_weight("quality", 0.4, 10) == pytest.approx(0.01)  # worse than chance barely counts
    # DS-FL entropy reduction with T = 1/2: p² / (p² + (1 − p)²)
    assert sharpen(np.array([0.7, 0.5]), 0.5) == pytest.approx([0.49 / 0.58, 0.5])
    with pytest.raises(ValueError, match="different lengths"):
        aggregate_soft_labels({"a": np.zeros(2), "b": np.zeros(3)}, {"a": 1, "b": 1})


def test_leave_one_out_consensus_is_the_others_weighted_mean() -> None:
    soft = {"a": np.array([0.2, 0.9]), "b": np.array([0.6, 0.5]), "c": np.array([0.4, 0.1])}
    w = {"a": 0.3, "b": 0.1, "c": 0.2}
    assert consensus_for("a", soft, w, leave_one_out=True) == pytest.approx([(0.06 + 0.08) / 0.3, (0.05 + 0.02) / 0.3])
    assert consensus_for("a", soft, w) == pytest.approx(aggregate_soft_labels(soft, w))  # the default: of all
    assert consensus_for("new", soft, w, leave_one_out=True) == pytest.approx(aggregate_soft_labels(soft, w))
    alone = {"a": soft["a"]}  # a lone contributor gets its own (the consensus of all)
    assert consensus_for("a", alone, w, leave_one_out=True) == pytest.approx(soft["a"])


def test_warm_start_fine_tunes_the_mlp_from_its_current_weights(silos) -> None:  # type: ignore[no-untyped-def]
    frames, ref, _ = silos
    frame = frames["c"]
    X, y, R = frame.drop(columns=["id", "y"]).to_numpy(), frame["y"].to_numpy(), ref.to_numpy()[:300]
    soft = np.full(len(R), 0.25)
    local = make_family("mlp", seed=1).fit(X, y)
    fresh = make_family("mlp", seed=2).fit(X, y, R, soft)
    warm = make_family("mlp", seed=2).fit(X, y, R, soft, init=local)
    again = make_family("mlp", seed=2).fit(X, y, R, soft, init=ModelFamily.from_dict(local.to_dict()))
    assert np.array_equal(warm.predict_proba(X), again.predict_proba(X))  # from the stored arrays: the same
    assert not np.allclose(warm.predict_proba(X), fresh.predict_proba(X))
    # it continues from local's weights: after one epoch it is still near local, a fit from random weights is not
    short = [make_family("mlp", seed=2) for _ in range(2)]
    for m in short:
        m.epochs = 1  # type: ignore[attr-defined]
    one_warm, one_fresh = short[0].fit(X, y, R, soft, init=local), short[1].fit(X, y, R, soft)
    dist = {k: np.abs(m.decision_function(X) - local.decision_function(X)).mean()
            for k, m in (("warm", one_warm), ("fresh", one_fresh))}
    assert dist["warm"] < dist["fresh"] / 3
    # families that do not warm-start (convex logistic ones, trees refitted) ignore init
    assert [f for f, cls in FAMILY_CLASSES.items() if cls.warm_startable] == ["mlp"]
    start = make_family("logistic", seed=1).fit(X, y)
    assert np.array_equal(make_family("logistic", seed=2).fit(X, y, R, soft, init=start).predict_proba(X),
                          make_family("logistic", seed=2).fit(X, y, R, soft).predict_proba(X))


@pytest.mark.parametrize("family", ["logistic", "scorecard", "gbt", "mlp"])
def test_families_predict_from_their_arrays_as_sklearn_does(family: str, silos) -> None:  # type: ignore[no-untyped-def]
    frames, ref, _ = silos
    frame = frames["a"]
    X, y = frame.drop(columns=["id", "y"]).to_numpy(), frame["y"].to_numpy()
    model = make_family(family, seed=3).fit(X, y, ref.to_numpy(), np.full(len(ref), 0.3), soft_weight=0.5)
    loaded = ModelFamily.from_dict(json.loads(json.dumps(model.to_dict())))  # JSON types only, no pickle
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert roc_auc_score(y, model.predict_proba(X)) > 0.6


def test_one_class_silo_predicts_its_base_rate() -> None:
    model = make_family("gbt").fit(np.zeros((10, 2)), np.zeros(10, np.int64))
    assert np.allclose(model.predict_proba(np.ones((3, 2))), 1e-6, atol=1e-6)


def test_params_refuse_unknown_names_and_families() -> None:
    with pytest.raises(ParamsError, match="did you mean 'rounds'"):
        DistillationParams.from_dict({"roundz": 2})
    with pytest.raises(ParamsError, match="known families"):
        DistillationParams.from_dict({"families": {"a": "svm"}})
    with pytest.raises(ParamsError, match="did you mean 'warm_start'"):
        DistillationParams.from_dict({"warmstart": True})
    with pytest.raises(ParamsError, match="leave_one_out must be true or false"):
        DistillationParams.from_dict({"leave_one_out": "yes"})
    p = DistillationParams.from_dict({"families": FAMILIES, "newcomers": ["d"], "warm_start": True,
                                      "leave_one_out": True})
    assert DistillationParams.from_dict(p.to_dict()) == p


@pytest.mark.parametrize("options", [{}, {"warm_start": True, "leave_one_out": True, "soft_weight": 2.0}],
                         ids=["fresh", "warm-start-leave-one-out"])
def test_distillation_never_lowers_a_silos_held_out_metric_and_reports_per_silo(silos, options) -> None:  # type: ignore[no-untyped-def]
    frames, ref, _ = silos
    net = InMemoryNetwork(record=True)
    fd = FederatedDistillation(rounds=2, families=FAMILIES, **options).fit(frames, ref, network=net)
    for pid, part in fd.parts_.items():
        s = part["summary"]
        assert s["family"] == FAMILIES[pid] and len(s["accepted"]) == 2
        assert s["final_auc"] >= s["local_auc"]  # accept-if-better on the silo's own validation rows
    assert sorted(fd.summary_["silos"]) == ["a", "b", "c"]
    # what the aggregator received: per-round soft labels on reference rows and summaries, never a label or row
    for d in net.received_by("arbiter"):
        assert set(d.payload) <= {"soft", "quality", "rows", "family", "local_auc", "final_auc", "accepted",
                                  "validation_rows", "train_rows", "one_class", "newcomer"}
        if "soft" in d.payload:
            assert len(d.payload["soft"]) == len(ref)
    for d in net.received_by("a"):  # a client receives the reference rows and the consensus only
        assert set(d.payload) <= {"columns", "X", "consensus"}


def test_a_silo_dropping_mid_job_leaves_a_consensus_of_the_others(silos) -> None:  # type: ignore[no-untyped-def]
    _, ref, _ = silos
    # silo c is in the job but never answers: the round closes at its deadline with the two that did
    from algorithms.api import RoleContext
    from algorithms.base import Parties
    from algorithms.distillation.aggregator import DistillationAggregator
    from algorithms.distillation.client import DistillationClient
    from algorithms.distillation.estimator import party_data
    from federation.channel import run_parties

    params = DistillationParams(rounds=1, round_timeout=3.0)  # logistic silos: well inside the deadline
    parties = Parties(roles={"client": ("a", "b", "c")})
    net = InMemoryNetwork()

    def ctx(pid: str, role: str) -> RoleContext:
        return RoleContext("j", pid, role, parties, params)

    roles = {p: DistillationClient(ctx(p, "client"), party_data(silos[0][p])) for p in ("a", "b")}
    agg = DistillationAggregator(ctx("arbiter", "arbiter"), (list(ref.columns), ref.to_numpy()))
    channels = {p: net.channel(p) for p in ("arbiter", "a", "b", "c")}  # c is in the job but never answers
    out = run_parties({"arbiter": lambda: agg.run(channels["arbiter"]),
                       **{p: (lambda r=r, p=p: r.run(channels[p])) for p, r in roles.items()}}, net)
    history = out["arbiter"]["history"][0]
    assert history["contributors"] == ["a", "b"] and history["dropped"] == ["c"]


def test_too_few_silos_fail_the_round_naming_the_missing_ones(silos) -> None:  # type: ignore[no-untyped-def]
    from algorithms.api import RoleContext
    from algorithms.base import Parties
    from algorithms.distillation.aggregator import DistillationAggregator
    from algorithms.distillation.client import DistillationError

    _, ref, _ = silos
    params = DistillationParams(rounds=1, min_clients=2, round_timeout=0.5)
    parties = Parties(roles={"client": ("a", "b")})
    net = InMemoryNetwork()
    net.channel("a"), net.channel("b")
    agg = DistillationAggregator(RoleContext("j", "arbiter", "arbiter", parties, params),
                                 (list(ref.columns), ref.to_numpy()))
    with pytest.raises(DistillationError, match=r"0 of 2 silos.*missing: \['a', 'b'\]"):
        agg.run(net.channel("arbiter"))


def test_resume_from_a_round_checkpoint_gives_the_uninterrupted_models(silos) -> None:  # type: ignore[no-untyped-def]
    frames, ref, _ = silos
    frames = {k: v for k, v in frames.items() if k in "ab"}
    fams = {"a": "logistic", "b": "scorecard"}
    full = FederatedDistillation(rounds=2, families=fams).fit(frames, ref)
    cps = {k: MemoryCheckpoint() for k in ("a", "b", "arbiter")}
    FederatedDistillation(rounds=1, families=fams).fit(frames, ref, checkpoints=cps)  # stops after round 0
    resumed = FederatedDistillation(rounds=2, families=fams).fit(frames, ref, checkpoints=cps)
    for k in frames:
        assert resumed.parts_[k]["model"] == full.parts_[k]["model"]
    assert resumed.summary_["history"] == full.summary_["history"]


def test_synthetic_reference_from_federated_statistics(silos) -> None:  # type: ignore[no-untyped-def]
    frames, _, _ = silos
    net = InMemoryNetwork(record=True)
    fd = FederatedDistillation(rounds=1, families={"a": "logistic", "b": "logistic", "c": "logistic"},
                               reference="synthetic", n_synthetic=200).fit(frames, network=net)
    assert fd.summary_["reference_rows"] == 200
    stats = [d.payload for d in net.received_by("arbiter") if "sumsq" in d.payload]
    assert len(stats) == 3 and all(set(s) == {"columns", "count", "sum", "sumsq"} for s in stats)
