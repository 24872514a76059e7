"""``fedrisk evaluate`` and the model registry commands over running silos (bank + insurer processes, gRPC +
mutual TLS, the small breast data, 2048-bit keys).

* evaluating a registered model over the services gives the report files and exactly (1e-9) the metrics
  computed in-process from the same model parts on the same held-out rows; the guest writes the score CSV;
* ``fedrisk models export`` → :func:`silo.export.load_guest_model` gives identical federated predictions
  (vertical LR and SecureBoost);
* a silo whose columns changed since training is refused, naming the silo and the columns.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from algorithms.api import PartyData, RoleContext
from algorithms.stability import bootstrap_intervals
from algorithms.vertical_lr.model import GuestModel, HostModel
from algorithms.vertical_lr.predict import sigmoid
from arbiter.cli import main
from arbiter.config import load_arbiter_config, load_job_config
from arbiter.demo import Processes, fedrisk_command, prepare_workdir, wait_until_ready
from arbiter.runner import ArbiterError, ArbiterService
from arbiter.store import JobStore
from datasets import load_csv
from federation.channel import InMemoryNetwork, run_parties
from silo.data import LocalTable, validate_table
from silo.evaluation import evaluate_at_guest, guest_only_baseline
from silo.export import GuestModelFile, load_guest_model
from silo.jobs import JobSpec
from silo.preprocess import Preprocessor
from silo.store import SiloStore
from tests.test_services import PARAMS, start_silos

LR_MODEL, BOOST_MODEL = "credit-lr-v1", "credit-boost-v1"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Path], Processes]]:
    """Running silos with a vertical LR model and a SecureBoost model registered at the arbiter."""
    root, paths = prepare_workdir(tmp_path_factory.mktemp("evaluate"), "breast", params=PARAMS,
                                  job_id="ev-lr", salt="ev-salt", seed=7)
    text = paths["job"].read_text()
    head, _, rest = text.partition("[params]\n")
    rest = rest[rest.index("[parties."):]
    head = (head.replace('algorithm = "vertical_lr"', 'algorithm = "secureboost"')
            .replace('id = "ev-lr"', 'id = "ev-boost"').replace('name = "credit-lr"', 'name = "credit-boost"'))
    (root / "job-boost.toml").write_text(head + "[params]\nn_estimators = 2\nmax_depth = 2\n\n" + rest)
    procs = Processes()
    try:
        start_silos(root, paths, procs)
        service = ArbiterService(load_arbiter_config(paths["arbiter"]), progress=False)
        try:
            for job_file in (paths["job"], root / "job-boost.toml"):
                service.run(service.submit(load_job_config(job_file)).id)
        finally:
            service.close()
        yield root, paths, procs
    finally:
        procs.stop_all()


def _tables() -> dict[str, LocalTable]:
    return {"bank": validate_table(load_csv("breast_hetero_guest"), "bank", label_column="y"),
            "insurer": validate_table(load_csv("breast_hetero_host"), "insurer")}


def _part_and_split(root: Path, pid: str, model_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    store = SiloStore(root / "stores" / f"{pid}.sqlite")
    try:
        part = store.model_part(model_id)
        assert part is not None
        alignment = store.alignment(part["job_id"])
        assert alignment is not None
        return part, alignment
    finally:
        store.close()


def _assert_close(actual: Any, expected: Any, where: str = "metrics") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), where
        for k in expected:
            _assert_close(actual[k], expected[k], f"{where}.{k}")
    elif isinstance(expected, list | tuple):
        assert len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _assert_close(a, e, f"{where}[{i}]")
    elif isinstance(expected, float) and not isinstance(actual, bool):
        assert actual == pytest.approx(expected, abs=1e-9, rel=0), where
    else:
        assert actual == expected, where


def _in_process_lr(root: Path, threshold: float) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Metrics, ids and scores of the held-out rows computed locally from both silos' stored parts."""
    tables = _tables()
    scores: dict[str, np.ndarray] = {}
    labels: dict[str, np.ndarray] = {}
    guest_X: dict[str, np.ndarray] = {}
    ids = None
    for pid in ("bank", "insurer"):
        part, alignment = _part_and_split(root, pid, LR_MODEL)
        pre = Preprocessor.from_dict(part["preprocessing"])
        mask = np.asarray(alignment["holdout"], dtype=bool)
        positions = np.asarray(alignment["positions"], dtype=np.int64)
        ids = np.asarray(alignment["ids"], dtype=object)[mask]
        for split, pos in (("train", positions[~mask]), ("test", positions[mask])):
            frame, y = tables[pid].at(pos)
            X = pre.transform(frame)
            if pid == "bank":
                model = GuestModel.from_dict(part["model"])
                scores[split] = model.partial_score(X)
                labels[split], guest_X[split] = y, X  # type: ignore[assignment]
            else:
                scores[split] = scores[split] + HostModel.from_dict(part["model"]).partial_score(X)
    train, test = sigmoid(scores["train"]), sigmoid(scores["test"])
    _, baseline = guest_only_baseline(guest_X["train"], labels["train"], guest_X["test"])
    metrics = evaluate_at_guest(labels["test"], test, train_scores=train, baseline_scores=baseline,
                                threshold=threshold)
    metrics["ci"] = bootstrap_intervals(labels["test"], test, seed=7)  # the job's seed
    assert ids is not None
    return metrics, ids, test


def test_evaluate_over_services_equals_in_process(trained: tuple[Path, dict[str, Path], Processes],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    root, paths, _ = trained
    cfg = ["--config", str(paths["arbiter"])]
    assert main(["evaluate", LR_MODEL, *cfg, "--threshold", "0.4", "--export-scores", "eval/scores.csv"]) == 0
    out = capsys.readouterr().out
    assert "AUC" in out and "decile" in out and f"model {LR_MODEL}" in out and "evaluation #2" in out
    assert "scores: bank wrote id,score of the" in out and "to eval/scores.csv inside its export folder" in out
    html = root / "reports" / f"{LR_MODEL}-eval2.html"
    report = json.loads((root / "reports" / f"{LR_MODEL}-eval2.json").read_text())
    assert html.exists() and "Model card" in html.read_text()
    card = report["model_card"]
    assert card["model_id"] == LR_MODEL and card["key_bits"] == 2048 and card["features_per_party"]["insurer"] > 0
    assert card["parameters"]["max_epochs"] == PARAMS["max_epochs"] and card["training_time_s"] > 0

    expected, ids, scores = _in_process_lr(root, threshold=0.4)
    # the silo adds what the in-process reference does not compute: the evaluation set's digest, the baseline
    assert len(report["metrics"]["evaluation_set_sha256"]) == 64 and report["metrics"]["baseline_model"]
    _assert_close({k: v for k, v in report["metrics"].items() if k not in ("evaluation_set_sha256", "baseline_model")},
                  expected)
    assert report["metrics"]["threshold"]["threshold"] == 0.4 and report["metrics"]["psi"] is not None
    assert report["metrics"]["federation_gain"]["auc"]["federated"] > 0.8

    exported = pd.read_csv(root / "exports" / "eval" / "scores.csv", dtype={"id": str})
    assert exported["id"].tolist() == [str(i) for i in ids]
    np.testing.assert_allclose(exported["score"].to_numpy(), scores, rtol=0, atol=1e-12)
    assert "eval/scores.csv" in out

    store = JobStore(load_arbiter_config(paths["arbiter"]).store)
    try:
        evaluations = store.evaluations(LR_MODEL)
        assert [e.seq for e in evaluations] == [1, 2] and evaluations[-1].threshold == 0.4
        assert evaluations[-1].headline["auc"] == pytest.approx(expected["auc"], abs=1e-9)
    finally:
        store.close()
    assert main(["models", "list", *cfg]) == 0
    assert f"{LR_MODEL}" in (listing := capsys.readouterr().out) and "evaluation #2" in listing
    assert main(["models", "show", LR_MODEL, *cfg]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["latest_evaluation"]["evaluation"] == 2 and shown["latest_evaluation"]["metrics"]["f1"] is not None

    # the arbiter cannot make the guest write outside its export folder
    with pytest.raises(ArbiterError, match="outside its export folder"):
        from arbiter.evaluate import evaluate_model

        evaluate_model(paths["arbiter"], LR_MODEL, export_scores="../../stolen.csv")

    # ... nor through a symbolic link planted in the export folder (checked when writing, after the scoring)
    victim = root / "victim.csv"
    victim.write_text("bank's other file\n")
    (root / "exports" / "eval" / "link.csv").symlink_to(victim)
    evaluate_model(paths["arbiter"], LR_MODEL, export_scores="eval/link.csv")
    assert victim.read_text() == "bank's other file\n"
    link = root / "exports" / "eval" / "link.csv"
    assert not link.is_symlink() and link.read_text().startswith("id,score")
    (root / "exports" / "elsewhere").symlink_to(root, target_is_directory=True)
    with pytest.raises(ArbiterError, match="not a plain folder"):
        evaluate_model(paths["arbiter"], LR_MODEL, export_scores="elsewhere/stolen.csv")
    assert not (root / "stolen.csv").exists()


def _predictor(spec: JobSpec, party: str, part: dict[str, Any], X: np.ndarray, ids: np.ndarray,
               namespace: str = "") -> Any:
    """A party's prediction role object from its stored part (what the silo's evaluation builds)."""
    ctx = RoleContext(job_id=spec.job_id, party_id=party, role=str(spec.parties.role_of(party)),
                      parties=spec.parties, params=spec.typed_params, namespace=namespace)
    return spec.plugin.predictor(ctx, part["model"], PartyData(ids, X, tuple(part["columns"])))


def _host_role(spec: JobSpec, host_part: dict[str, Any], host_X: np.ndarray, ids: np.ndarray) -> Any:
    """The insurer's prediction role object (the counterpart of ``GuestModelFile.predictor``)."""
    return _predictor(spec, "insurer", host_part, host_X, ids)


def _federated_scores(guest: Any, host: Any) -> np.ndarray:
    """Run ``guest(channel)`` at the bank and ``host(channel)`` at the insurer over an in-memory network."""
    net = InMemoryNetwork()
    bank, insurer = net.channel("bank"), net.channel("insurer")
    try:
        out = run_parties({"bank": lambda: guest(bank), "insurer": lambda: host(insurer)}, net)
    finally:
        net.close()
    return np.asarray(out["bank"])


@pytest.mark.parametrize("model_id", [LR_MODEL, BOOST_MODEL])
def test_export_load_round_trip_gives_identical_predictions(trained: tuple[Path, dict[str, Path], Processes],
                                                            tmp_path: Path, model_id: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    root, paths, _ = trained
    out_file = tmp_path / "guest_model.json"
    assert main(["models", "export", model_id, "--config", str(paths["bank"]), "--out", str(out_file)]) == 0
    doc = json.loads(out_file.read_text())  # plain JSON, no pickle
    assert doc["format"] == "fedrisk.guest_model/1" and doc["parties"]["hosts"] == ["insurer"]
    assert ("trees" in doc["model"]) == (model_id == BOOST_MODEL)
    loaded = load_guest_model(out_file)
    assert isinstance(loaded, GuestModelFile) and loaded.model_id == model_id

    tables = _tables()
    part, alignment = _part_and_split(root, "bank", model_id)
    host_part, _ = _part_and_split(root, "insurer", model_id)
    store = JobStore(load_arbiter_config(paths["arbiter"]).store)
    try:
        record = store.model(model_id)
        spec = JobSpec.from_dict(store.job(record.job_id).spec["spec"])
    finally:
        store.close()
    assert loaded.part_sha256 == record.model["part_hashes"]["bank"]  # the export matches the registry
    mask = np.asarray(alignment["holdout"], dtype=bool)
    ids = np.asarray(alignment["ids"], dtype=object)[mask].astype(str)
    host_X = Preprocessor.from_dict(host_part["preprocessing"]).transform(tables["insurer"].rows(ids)[0])


    def host(ch: Any) -> Any:
        return _predictor(spec, "insurer", host_part, host_X, ids, "predict").run(ch)

    from_file = _federated_scores(lambda ch: loaded.predict_proba(tables["bank"], ids, ch), host)
    guest_X = Preprocessor.from_dict(part["preprocessing"]).transform(tables["bank"].rows(ids)[0])
    from_store = _federated_scores(
        lambda ch: _predictor(spec, "bank", part, guest_X, ids, "predict").run(ch), host)
    np.testing.assert_array_equal(from_file, from_store)
    role = loaded.predictor(tables["bank"], ids)  # the documented role API gives the same scores
    np.testing.assert_array_equal(_federated_scores(role.run, _host_role(spec, host_part, host_X, ids).run),
                                  from_store)
    if model_id == LR_MODEL:
        np.testing.assert_allclose(from_file, _in_process_lr(root, 0.5)[2], rtol=0, atol=1e-12)

    assert main(["models", "export", model_id, "--config", str(paths["insurer"]), "--out",
                 str(tmp_path / "x.json")]) == 2
    assert "only the guest's model part" in capsys.readouterr().err


def test_silo_with_changed_columns_is_refused(trained: tuple[Path, dict[str, Path], Processes],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Runs last: restarts the insurer on a table with a column removed and one renamed."""
    root, paths, procs = trained
    frame = load_csv("breast_hetero_host")
    features = [c for c in frame.columns if c != "id"]
    changed = frame.drop(columns=[features[0]]).rename(columns={features[1]: "renamed_col"})
    changed.to_csv(root / "insurer-changed.csv", index=False)
    text = paths["insurer"].read_text()
    data_path = next(line.split("=", 1)[1].strip().strip('"') for line in text.splitlines()
                     if line.startswith("path ="))
    (root / "insurer-changed.toml").write_text(text.replace(data_path, str(root / "insurer-changed.csv")))
    procs.stop("insurer")
    procs.start("insurer", fedrisk_command("silo", "serve", "--config", str(root / "insurer-changed.toml")),
                root / "logs" / "insurer-changed.log", cwd=root)
    wait_until_ready(procs, ["insurer"], root)

    store = JobStore(load_arbiter_config(paths["arbiter"]).store)
    try:
        before = len(store.evaluations(LR_MODEL))
        assert main(["evaluate", LR_MODEL, "--config", str(paths["arbiter"])]) == 2
        err = capsys.readouterr().err
        assert err.startswith("fedrisk: error:") and "'insurer'" in err and "columns changed" in err
        assert repr(features[0]) in err and "renamed_col" in err
        assert len(store.evaluations(LR_MODEL)) == before  # nothing recorded for the refused run
    finally:
        store.close()
