"""Job store: state machine, transactional model registration, content hashes, checkpoint index."""

from __future__ import annotations

import pytest

from arbiter.store import (
    INCARNATION,
    InvalidTransition,
    JobStore,
    StoreError,
    canonical_json,
    content_hash,
)


@pytest.fixture()
def store(tmp_path) -> JobStore:
    s = JobStore(tmp_path / "jobs.sqlite")
    yield s
    s.close()


def test_happy_path_and_events(store: JobStore) -> None:
    job = store.create_job("j1", "vertical_lr", {"seed": 1})
    assert job.state == "queued" and job.attempt == 0 and job.transport_key == f"j1.0:{INCARNATION}"
    for state in ("aligning", "training", "evaluating"):
        store.transition("j1", state)
    model = store.register_model("j1", "credit", "vertical_lr", {"seed": 1}, {"auc": 0.7}, {"parts": {"bank": "ab"}})
    assert store.job("j1").state == "done"
    assert [e["to_state"] for e in store.events("j1")] == ["queued", "aligning", "training", "evaluating", "done"]
    assert model.id == "credit-v1" and model.content_hash == content_hash(canonical_json({"parts": {"bank": "ab"}}))


@pytest.mark.parametrize("path", [["training"], ["aligning", "evaluating"], ["aligning", "queued"]])
def test_invalid_transitions_refused(store: JobStore, path: list[str]) -> None:
    store.create_job("j", "vertical_lr", {})
    with pytest.raises(InvalidTransition):
        for state in path:
            store.transition("j", state)


def test_done_is_terminal_and_failed_resumes_with_new_attempt(store: JobStore) -> None:
    store.create_job("j", "vertical_lr", {})
    store.transition("j", "aligning")
    store.transition("j", "training")
    failed = store.transition("j", "failed", error="host insurer unreachable")
    assert failed.stage == "training" and failed.error == "host insurer unreachable"
    resumed = store.transition("j", "training", new_attempt=True)
    assert resumed.attempt == 1 and resumed.transport_key == f"j.1:{INCARNATION}" and resumed.error is None
    store.transition("j", "cancelled")
    with pytest.raises(InvalidTransition):
        store.transition("j", "training")


def test_model_versions_and_lookup(store: JobStore) -> None:
    for jid in ("a", "b"):
        store.create_job(jid, "vertical_lr", {})
        for state in ("aligning", "training", "evaluating"):
            store.transition(jid, state)
        store.register_model(jid, "credit", "vertical_lr", {}, {"auc": 0.5}, {"job": jid})
    assert [m.id for m in store.models()] == ["credit-v1", "credit-v2"]
    assert store.model("credit").version == 2 and store.model("a").id == "credit-v1"
    with pytest.raises(StoreError):
        store.model("nope")


def test_failed_registration_leaves_nothing(store: JobStore) -> None:
    store.create_job("j", "vertical_lr", {})
    with pytest.raises(InvalidTransition):  # queued -> done is refused, so the model row is rolled back
        store.register_model("j", "credit", "vertical_lr", {}, {}, {"x": 1})
    assert store.models() == [] and store.job("j").state == "queued"
    with pytest.raises(ValueError):  # NaN is not canonical JSON: nothing written
        store.register_model("j", "credit", "vertical_lr", {}, {}, {"x": float("nan")})
    assert store.models() == []


def test_duplicate_job_refused(store: JobStore) -> None:
    store.create_job("j", "vertical_lr", {})
    with pytest.raises(StoreError, match="already exists"):
        store.create_job("j", "vertical_lr", {})


def test_checkpoint_index(store: JobStore) -> None:
    store.create_job("j", "vertical_lr", {})
    store.record_checkpoint("j", "bank", 0, "aa")
    store.record_checkpoint("j", "bank", 1, "bb")
    store.record_checkpoint("j", "arbiter", 0, "cc", state=b"s0")
    store.record_checkpoint("j", "arbiter", 1, "dd", state=b"s1")
    assert store.checkpoints("j", "bank") == [("bank", 0, "aa"), ("bank", 1, "bb")]
    assert store.checkpoint_state("j", "arbiter") == (1, b"s1")
    assert store.checkpoint_state("j", "arbiter", max_step=0) == (0, b"s0")


def test_store_from_an_earlier_version_gains_new_columns(tmp_path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE jobs (id VARCHAR(64) PRIMARY KEY, algorithm VARCHAR(64) NOT NULL, spec TEXT NOT NULL, "
                "state VARCHAR(16) NOT NULL, attempt INTEGER NOT NULL, stage VARCHAR(16), error TEXT, result TEXT, "
                "created_at FLOAT NOT NULL, updated_at FLOAT NOT NULL)")
    con.execute("INSERT INTO jobs VALUES ('old', 'vertical_lr', '{}', 'queued', 0, NULL, NULL, NULL, 1.0, 1.0)")
    con.commit()
    con.close()
    store = JobStore(path)
    assert store.job("old").training is None
    store.record_training("old", {"train_rows": 10})
    assert store.job("old").training == {"train_rows": 10}
    store.close()


def test_stores_are_created_owner_only(tmp_path) -> None:
    """Both SQLite stores hold aligned ids / models: another local user must not read them (was 0644)."""
    import os
    import stat

    from silo.store import SiloStore

    old = os.umask(0o022)
    try:
        silo = SiloStore(tmp_path / "silo" / "bank.sqlite")
        silo.save_alignment("j1", {"ids": ["a", "b"]})
        jobs = JobStore(tmp_path / "arbiter" / "jobs.sqlite")
        jobs.create_job("j1", "vertical_lr", {})
        url_store = JobStore(f"sqlite:///{tmp_path / 'url.sqlite'}")
        url_store.create_job("j2", "vertical_lr", {})
    finally:
        os.umask(old)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"bank.sqlite", "jobs.sqlite", "url.sqlite", "bank.sqlite-wal"}
    for p in files:  # the databases and their -wal / -shm files
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    for store in (silo, jobs, url_store):
        store.close()
    # an existing world-readable store is tightened when opened
    loose = tmp_path / "loose.sqlite"
    loose.touch(mode=0o644)
    JobStore(loose).close()
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600


def test_transport_keys_differ_per_process_start() -> None:
    """Dedup and closed-job state live in the nodes' memory: keys must never repeat after a restart."""
    import os
    import subprocess
    import sys

    code = "from arbiter.store import transport_key; print(transport_key('j1', 0, 'training'))"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    keys = {subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, check=True,
                           env=env).stdout.strip() for _ in range(2)}
    assert len(keys) == 2 and all(k.startswith("j1.0.training:") for k in keys)
