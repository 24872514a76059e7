"""The ``fedrisk`` command line: certificates, clear errors for bad configs and bad data (status 2, nothing
written), job status and the model registry."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from arbiter.cli import main
from arbiter.demo import prepare_workdir
from arbiter.store import JobStore


@pytest.fixture()
def workdir(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    return prepare_workdir(tmp_path / "w", "breast", job_id="cli-job")


def test_certs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "--out", str(tmp_path / "c"), "--parties", "bank", "arbiter"]) == 0
    assert {p.name for p in (tmp_path / "c").iterdir()} == {"ca.pem", "ca-key.pem", "bank.pem", "bank-key.pem",
                                                           "arbiter.pem", "arbiter-key.pem"}
    assert main(["certs", "--out", str(tmp_path / "c")]) == 2
    assert "already exists" in capsys.readouterr().err


def _store_is_empty(paths: dict[str, Path]) -> bool:
    db = paths["arbiter"].parent / "stores" / "arbiter.sqlite"
    if not db.exists():
        return True
    store = JobStore(db)
    try:
        return store.jobs() == [] and store.models() == []
    finally:
        store.close()


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace('algorithm = "vertical_lr"', 'algorithm = "deep_forest"'), "unknown algorithm 'deep_forest'"),
    (lambda t: t.replace('role = "host"', 'role = "guest"'), "exactly one party must have role = 'guest'"),
    (lambda t: t.replace("learning_rate = 0.15", "learning_rate = -1.0"), "learning_rate must be > 0"),
    (lambda t: t.replace("[params]\n", "[params]\nmomentum = 0.9\n"), "unknown training parameters"),
])
def test_bad_job_config(workdir: tuple[Path, dict[str, Path]], capsys: pytest.CaptureFixture[str], edit,
                        message: str) -> None:
    _, paths = workdir
    paths["job"].write_text(edit(paths["job"].read_text()))
    assert main(["arbiter", "run", str(paths["job"]), "--config", str(paths["arbiter"]), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fedrisk: error:") and message in err
    assert _store_is_empty(paths)


def test_missing_tls_file(workdir: tuple[Path, dict[str, Path]], capsys: pytest.CaptureFixture[str]) -> None:
    root, paths = workdir
    (root / "certs" / "arbiter-key.pem").unlink()
    assert main(["arbiter", "run", str(paths["job"]), "--config", str(paths["arbiter"])]) == 2
    assert "tls.key" in capsys.readouterr().err
    assert _store_is_empty(paths)
    (root / "certs" / "bank.pem").unlink()
    assert main(["silo", "serve", "--config", str(paths["bank"])]) == 2
    assert "TLS file tls.cert" in capsys.readouterr().err


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda f: pd.concat([f, f.iloc[[3]]]), "duplicate id"),
    (lambda f: f.assign(id=f["id"].where(f.index != 5, None)), "missing id in column 'id' at row 6"),
    (lambda f: f.assign(x0=f["x0"].where(f.index != 7, float("nan"))), "column 'x0' at row 8"),
    (lambda f: f.assign(x1=f["x1"].where(f.index != 2, float("inf"))), "non-finite value inf in column 'x1' at row 3"),
    (lambda f: f.assign(y=f["y"].where(f.index != 4, 3)), "label column 'y' must be 0/1; row 5"),
    (lambda f: f[["id", "y"]], "feature set is empty"),
])
def test_silo_refuses_bad_data(workdir: tuple[Path, dict[str, Path]], capsys: pytest.CaptureFixture[str], mutate,
                               message: str) -> None:
    root, paths = workdir
    from datasets import load_csv

    bad = root / "bad.csv"
    mutate(load_csv("breast_hetero_guest")).to_csv(bad, index=False)
    text = paths["bank"].read_text()
    start = text.index('path = "') + len('path = "')
    paths["bank"].write_text(text[:start] + str(bad) + text[text.index('"', start):])
    assert main(["silo", "serve", "--config", str(paths["bank"])]) == 2
    err = capsys.readouterr().err
    assert "party 'bank'" in err and message in err
    assert not (root / "stores" / "bank.sqlite").exists()  # refused before opening its store


def _populated_store(paths: dict[str, Path]) -> None:
    store = JobStore(paths["arbiter"].parent / "stores" / "arbiter.sqlite")
    store.create_job("cli-job", "vertical_lr", {"spec": {}})
    for state in ("aligning", "training", "evaluating"):
        store.transition("cli-job", state)
    store.record_checkpoint("cli-job", "bank", 0, "ab" * 32)
    store.register_model("cli-job", "credit-lr", "vertical_lr", {"max_epochs": 2}, {"auc": 0.75, "ks": 0.4},
                         {"part_hashes": {"bank": "00"}})
    store.close()


def test_status_and_models(workdir: tuple[Path, dict[str, Path]], capsys: pytest.CaptureFixture[str]) -> None:
    _, paths = workdir
    _populated_store(paths)
    cfg = ["--config", str(paths["arbiter"])]
    assert main(["arbiter", "status", *cfg]) == 0
    assert "cli-job" in capsys.readouterr().out
    assert main(["arbiter", "status", "cli-job", *cfg]) == 0
    out = capsys.readouterr().out
    assert "evaluating -> done" in out and "checkpoint bank" in out
    assert main(["models", "list", *cfg]) == 0
    out = capsys.readouterr().out
    assert "credit-lr-v1" in out and "auc=0.7500" in out
    assert main(["models", "show", "credit-lr", *cfg]) == 0
    out = capsys.readouterr().out
    assert '"content_hash"' in out and '"version": 1' in out
    assert main(["models", "show", "nope", *cfg]) == 2
    assert "no model 'nope'" in capsys.readouterr().err
    assert main(["arbiter", "resume", "cli-job", *cfg]) == 2
    assert "already done" in capsys.readouterr().err
    assert main(["arbiter", "resume", "unknown", *cfg]) == 2
    assert "no job 'unknown'" in capsys.readouterr().err
