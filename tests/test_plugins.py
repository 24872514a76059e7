"""The plug-in contract, checked for every algorithm in the catalogue (a new plug-in is tested by being listed).

For each ``catalogue.names()`` entry, on a tiny table (200 rows of the breast data, 2048-bit keys):

* the declaration is coherent (stages, roles, metric roles, arbiter kind, disclosures name real roles);
* ``Params`` survive ``to_dict``/``from_dict`` (also through JSON) and unknown names are refused naming
  the nearest valid one;
* its roles, built from ``PartyData`` + ``RoleContext`` only, train over the in-memory network, and every
  message each party receives is covered by a declared :class:`~algorithms.api.Disclosure`;
* a checkpointed run resumed from the first step gives the same model parts;
* ``export_part``/``load_part`` round-trip the parts, and the predictor roles score the same rows the same
  way from the round-tripped parts;
* (slow) through the silo workers (:func:`arbiter.simulate.simulate_job`), re-scoring the held-out rows
  from the stored parts reproduces the evaluation computed at training time;
* (slow) one job over the real services gives the model of the in-process simulation.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from algorithms import catalogue
from algorithms.api import Algorithm, AlgorithmParams, PartyData, RoleContext
from algorithms.base import MemoryCheckpoint, Parties
from algorithms.paillier import shared_executor
from arbiter.simulate import simulate_job
from datasets import load_breast_vertical
from federation.channel import InMemoryNetwork, run_parties
from silo.data import LocalTable, validate_table
from silo.evaluation import evaluate_at_guest
from silo.jobs import JobSpec
from silo.preprocess import Preprocessor
from silo.store import SiloStore

NAMES = catalogue.names()
ROWS = 200


def _parties(plugin: Algorithm) -> Parties:
    names = iter(("bank", "insurer", "telco", "retailer"))
    return Parties(roles={spec.name: tuple(next(names) for _ in range(max(spec.min_parties, 1)))
                          for spec in plugin.roles})


def _frames(plugin: Algorithm, parties: Parties) -> dict[str, Any]:
    """Each silo's raw table (id, [y,] features): vertical = breast guest/host columns, horizontal = rows."""
    data = load_breast_vertical()
    ids = data.guest["id"].to_numpy()[:ROWS]
    small = data.subset(ids)
    if plugin.topology == "vertical":
        host = small.hosts["insurer"]
        return {pid: (small.guest if role == plugin.label_role else host)
                for role, pids in parties.roles.items() for pid in pids}
    joined = small.joined()
    silos = parties.silos
    return {pid: joined.iloc[i::len(silos)].reset_index(drop=True) for i, pid in enumerate(silos)}


def _party_data(frame: Any) -> PartyData:
    features = [c for c in frame.columns if c not in ("id", "y")]
    X = frame[features].to_numpy(dtype=np.float64)
    X = (X - X.mean(axis=0)) / np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)
    y = frame["y"].to_numpy(dtype=np.int64) if "y" in frame.columns else None
    return PartyData(frame["id"].astype(str).to_numpy(), X, tuple(features), y)


def _params(plugin: Algorithm) -> AlgorithmParams:
    return plugin.parse_params(plugin.demo_params("breast", steps=2), seed=7)


def _train(plugin: Algorithm, parties: Parties, data: dict[str, PartyData], params: AlgorithmParams,
           checkpoints: dict[str, MemoryCheckpoint], record: bool = False) -> tuple[dict[str, Any], InMemoryNetwork]:
    pool = shared_executor()
    net = InMemoryNetwork(record=record)
    roles: dict[str, Any] = {}
    for pid in (*parties.silos, *((parties.arbiter,) if plugin.arbiter else ())):
        role = str(parties.role_of(pid))
        ctx = RoleContext(job_id="contract", party_id=pid, role=role, parties=parties, params=params, seed=7,
                          checkpoint=checkpoints.setdefault(pid, MemoryCheckpoint()), executor=pool,
                          workers=pool.workers)
        roles[pid] = plugin.trainer(ctx, data.get(pid))
    try:
        channels = {pid: net.channel(pid) for pid in roles}
        out = run_parties({pid: (lambda r=r, c=channels[pid]: r.run(c)) for pid, r in roles.items()}, net)
    finally:
        net.close()
    return {pid: plugin.export_part(result) for pid, result in out.items()}, net


def _score(plugin: Algorithm, parties: Parties, data: dict[str, PartyData], parts: dict[str, Any],
           params: AlgorithmParams) -> tuple[dict[str, Any], InMemoryNetwork]:
    net = InMemoryNetwork(record=True)
    roles = {pid: plugin.predictor(RoleContext(job_id="contract", party_id=pid, role=str(parties.role_of(pid)),
                                               parties=parties, params=params, namespace="contract"),
                                   parts[pid], data[pid]) for pid in data}
    try:
        channels = {pid: net.channel(pid) for pid in roles}
        out = run_parties({pid: (lambda r=r, c=channels[pid]: r.run(c)) for pid, r in roles.items()}, net)
    finally:
        net.close()
    return out, net


def _assert_same(a: Any, b: Any, where: str = "part") -> None:
    """Equal JSON values; floats to 1e-9 relative (summation order may differ after a resume)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and not isinstance(a, bool):
        assert b == pytest.approx(a, rel=1e-9, abs=1e-12), f"{where}: {a} != {b}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _assert_declared(plugin: Algorithm, parties: Parties, net: InMemoryNetwork) -> None:
    """Every message a party received matches a Disclosure for (its role, the sender's role, the tag)."""
    for pid in (*parties.silos, parties.arbiter):
        me = parties.role_of(pid)
        for d in net.received_by(pid):
            sender = parties.role_of(d.sender)
            assert any(disc.receiver in (me, "*") and disc.sender in (sender, "*")
                       and fnmatch.fnmatchcase(d.tag, disc.tag) for disc in plugin.disclosures), \
                f"{plugin.name}: {pid} ({me}) received {d.tag!r} from {d.sender} ({sender}): no declared disclosure"


# ----------------------------------------------------------------------------------------- declaration
@pytest.mark.parametrize("name", NAMES)
def test_declaration_is_coherent(name: str) -> None:
    plugin = catalogue.get(name)
    assert plugin.name == name and plugin.topology in ("vertical", "horizontal")
    assert set(plugin.stages) <= {"align", "train", "evaluate"}
    # a model ends with train → evaluate; an analysis (nothing to score, e.g. binning) ends with train
    assert plugin.stages[-2:] == ("train", "evaluate") or (plugin.stages[-1] == "train" and not plugin.metric_roles)
    assert ("align" in plugin.stages) == (plugin.topology == "vertical")
    assert plugin.arbiter in (None, "key_holder", "aggregator")
    roles = plugin.silo_roles
    assert roles and len(set(roles)) == len(roles) and "arbiter" not in roles
    assert set(plugin.metric_roles) <= set(roles)
    if plugin.topology == "vertical":
        assert plugin.label_role in roles
    known = {*roles, "arbiter", "*"}
    assert plugin.disclosures, f"{name} declares no disclosures"
    for d in plugin.disclosures:
        assert d.receiver in known and d.sender in known and d.what and d.kind in (
            "ciphertext", "masked", "aggregate", "public", "row_level")
    assert plugin.steps(plugin.parse_params({})) >= 1
    plugin.check_parties(_parties(plugin))
    with pytest.raises(ValueError, match="role must be"):
        plugin.role_spec("nobody")


@pytest.mark.parametrize("name", NAMES)
def test_params_round_trip_and_unknown_names_refused(name: str) -> None:
    plugin = catalogue.get(name)
    for params in (plugin.parse_params({}), _params(plugin)):
        assert plugin.params_class.from_dict(params.to_dict()) == params
        assert plugin.params_class.from_dict(json.loads(json.dumps(params.to_dict()))) == params
    first = next(iter(plugin.parse_params({}).to_dict()))
    with pytest.raises(Exception, match=f"did you mean '{first}'"):
        plugin.parse_params({first[:-1]: 1})
    assert catalogue.get(name) is catalogue.get(name)  # loaded once


def test_catalogue_refuses_unknown_names() -> None:
    typo = NAMES[0][:-1]
    with pytest.raises(catalogue.UnknownAlgorithm, match=rf"unknown algorithm '{typo}' \(did you mean '{NAMES[0]}'"):
        catalogue.get(typo)
    assert catalogue.default_name() in NAMES


# ------------------------------------------------------------------------------------------- protocol
@pytest.fixture(scope="module", params=NAMES)
def trained(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    plugin = catalogue.get(request.param)
    parties = _parties(plugin)
    data = {pid: _party_data(frame) for pid, frame in _frames(plugin, parties).items()}
    params = _params(plugin)
    checkpoints: dict[str, MemoryCheckpoint] = {}
    parts, net = _train(plugin, parties, data, params, checkpoints, record=True)
    yield {"plugin": plugin, "parties": parties, "data": data, "params": params, "parts": parts,
           "checkpoints": checkpoints, "net": net}


def test_roles_train_and_receive_only_declared_messages(trained: dict[str, Any]) -> None:
    plugin, parties, parts = trained["plugin"], trained["parties"], trained["parts"]
    assert set(parts) >= set(parties.silos)
    json.dumps(parts, allow_nan=False)  # plain JSON types
    _assert_declared(plugin, parties, trained["net"])
    steps = trained["checkpoints"][parties.silos[0]].steps
    assert 1 <= len(steps) <= plugin.steps(trained["params"])


def test_checkpoint_resume_gives_the_same_parts(trained: dict[str, Any]) -> None:
    plugin, parties = trained["plugin"], trained["parties"]
    first = {pid: MemoryCheckpoint(_saved=cp._saved[:1]) for pid, cp in trained["checkpoints"].items()}
    resumed, _ = _train(plugin, parties, trained["data"], trained["params"], first)
    for pid in parties.silos:
        _assert_same(trained["parts"][pid], resumed[pid], f"{pid}'s part")


def test_parts_round_trip_and_predictor_scores_them_the_same(trained: dict[str, Any]) -> None:
    plugin, parties, data, params = trained["plugin"], trained["parties"], trained["data"], trained["params"]
    parts = trained["parts"]
    again = {pid: json.loads(json.dumps(plugin.export_part(plugin.load_part(str(parties.role_of(pid)), parts[pid]))))
             for pid in parties.silos}
    for pid in parties.silos:
        _assert_same(parts[pid], again[pid], f"{pid}'s part")
    if "evaluate" not in plugin.stages:
        return  # an analysis plug-in: nothing to score
    first, net = _score(plugin, parties, data, parts, params)
    second, _ = _score(plugin, parties, data, again, params)
    _assert_declared(plugin, parties, net)
    for pid in plugin.metric_parties(parties):
        scores = np.asarray(first[pid])
        assert scores.shape == (ROWS if plugin.topology == "vertical" else data[pid].n_rows,)
        assert np.all((scores >= 0) & (scores <= 1))
        np.testing.assert_array_equal(scores, np.asarray(second[pid]))
        y = data[pid].y
        assert y is not None and evaluate_at_guest(y, scores)["auc"] > 0.8  # it learned something
    for pid in set(parties.silos) - set(plugin.metric_parties(parties)):
        assert first[pid] is None or not isinstance(first[pid], np.ndarray)  # scores reach metric roles only


# ------------------------------------------------------------------------------ through the silo workers
def _tables(plugin: Algorithm, parties: Parties) -> dict[str, LocalTable]:
    frames = _frames(plugin, parties)
    labelled = {p for r in parties.roles for p in parties.of(r) if plugin.role_spec(r).holds_labels}
    return {pid: validate_table(frame, pid, label_column="y" if pid in labelled else None)
            for pid, frame in frames.items()}


@pytest.mark.slow  # a third training per algorithm (~10-20 s each); CI runs it
@pytest.mark.parametrize("name", NAMES)
def test_predictor_reproduces_the_training_time_evaluation(name: str, tmp_path: Path) -> None:
    plugin = catalogue.get(name)
    if "evaluate" not in plugin.stages:
        pytest.skip(f"{name} has no evaluation stage")
    parties = _parties(plugin)
    tables = _tables(plugin, parties)
    spec = JobSpec(job_id=f"contract-{name}", algorithm=name, parties=parties,
                   params=plugin.demo_params("breast", steps=2), salt="contract", seed=7)
    sim = simulate_job(spec, tables, workdir=tmp_path)
    for pid in plugin.metric_parties(parties):
        store = SiloStore(tmp_path / f"{pid}-sim.sqlite")
        try:
            alignment = store.alignment(spec.job_id)
        finally:
            store.close()
        assert alignment is not None
        held_out = np.asarray(alignment["ids"], dtype=object)[np.asarray(alignment["holdout"], dtype=bool)]
        data = {}
        # vertical: every silo scores the same held-out customers; horizontal: a party's rows are its own
        for silo in (parties.silos if plugin.topology == "vertical" else (pid,)):
            part = sim["parts"][silo]
            X = Preprocessor.from_dict(part["preprocessing"]).transform(tables[silo].rows(held_out)[0])
            data[silo] = PartyData(held_out.astype(str), X, tuple(part["columns"]))
        out, _ = _score(plugin, parties, data, {s: sim["parts"][s]["model"] for s in data}, spec.typed_params)
        labels = tables[pid].rows(held_out)[1]
        again = evaluate_at_guest(labels, np.asarray(out[pid]))
        metrics = sim["metrics"] if len(plugin.metric_parties(parties)) == 1 else sim["metrics"]["per_party"][pid]
        assert again["auc"] == pytest.approx(metrics["auc"], abs=1e-12)
        assert again["ks"] == pytest.approx(metrics["ks"], abs=1e-12)


# --------------------------------------------------------------------------------- over the real services
# SecureBoost is not deterministic at the demo's depth 3 on breast: three in-process simulations of one spec
# gave two different models (AUC 0.99717 / 0.99693). Host candidates with identical partitions of a node's
# rows (breast's radius / perimeter / area) tie on gain, and the guest's argmax then follows the host's
# secret per-level shuffle. Known defect, left to the SecureBoost owner (fix: the host offers one canonical
# candidate per distinct partition, which also hides the duplicates from the guest).
_NONDETERMINISTIC = {"secureboost": "gain ties broken by the host's shuffle",
                     # seen once in a full CI-like run (AUC 0.775594 vs 0.775616), passing alone: the scikit-learn
                     # families' float sums depend on the BLAS / OpenMP thread split of the process they run in
                     "distillation": "scikit-learn families' float sums follow the process's BLAS/OpenMP threads"}


@pytest.mark.slow
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(
    n in _NONDETERMINISTIC, reason=_NONDETERMINISTIC.get(n, ""), strict=False)) for n in NAMES])
def test_job_over_the_services_equals_the_simulation(name: str, tmp_path: Path) -> None:
    from arbiter.config import load_arbiter_config, load_job_config
    from arbiter.demo import Processes, demo_silos, prepare_workdir, silo_names
    from arbiter.runner import ArbiterService
    from arbiter.store import JobStore
    from tests.test_services import start_silos

    plugin = catalogue.get(name)
    if "evaluate" not in plugin.stages:
        pytest.skip(f"{name} has no evaluation stage (its services test: tests/test_analyst_services.py)")
    dataset = "breast" if plugin.topology == "vertical" else "default_credit"  # the bundled horizontal split
    root, paths = prepare_workdir(tmp_path, dataset, epochs=2, algorithm=name, job_id=f"svc-{name}",
                                  salt="svc-salt", seed=7)
    procs = Processes()
    try:
        start_silos(root, paths, procs, names=tuple(silo_names(paths)))
        service = ArbiterService(load_arbiter_config(paths["arbiter"]), progress=False)
        try:
            job = load_job_config(paths["job"])
            result = service.run(service.submit(job).id)
        finally:
            service.close()
    finally:
        procs.stop_all()
    tables = {pid: validate_table(pd.read_csv(path), pid, label_column="y" if labelled and
                                  plugin.role_spec(str(job.spec.parties.role_of(pid))).holds_labels else None)
              for pid, path, labelled in demo_silos(plugin.topology, dataset)}
    sim = simulate_job(job.spec, tables)
    assert result["metrics"]["auc"] == pytest.approx(sim["metrics"]["auc"], abs=1e-9)
    store = JobStore(load_arbiter_config(paths["arbiter"]).store)
    try:
        assert store.model(result["model_id"]).model["part_hashes"] == sim["part_hashes"]
    finally:
        store.close()


@pytest.mark.parametrize("name", NAMES)
def test_preflight_accepts_the_tiny_table(name: str) -> None:
    plugin = catalogue.get(name)
    parties = _parties(plugin)
    frames = _frames(plugin, parties)
    warnings = plugin.check_preflight(_params(plugin), {p: f.shape[1] - 1 for p, f in frames.items()},
                                      {p: len(f) for p, f in frames.items()}, parties)
    assert isinstance(warnings, list)
