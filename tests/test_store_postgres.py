"""The arbiter's job store and model registry on a real PostgreSQL server, and the job queue on top of it.

Needs ``FEDRISK_TEST_POSTGRES_URL`` (a SQLAlchemy URL of a role allowed to create databases; ``.ci/run``
installs Debian's ``postgresql``, starts the cluster and exports it); skipped without it. Every test
module works in a database of its own, dropped at the end.

Pinned: the store API round-trips on PostgreSQL (bytes, JSON, events, checkpoints, evaluations); two
registrations of the same model name racing get distinct versions; two jobs run concurrently on one
arbiter (``concurrent_jobs = 2``), isolated by job id, each giving exactly the model of its in-process
simulation; an arbiter SIGKILLed mid-training is restarted and ``fedrisk arbiter serve`` resumes the job
to the same model.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from arbiter.config import load_arbiter_config, load_job_config
from arbiter.demo import Processes, fedrisk_command, prepare_workdir
from arbiter.queue import JobQueue
from arbiter.runner import ArbiterService
from arbiter.simulate import simulate_job
from arbiter.store import JobStore, StoreError
from datasets import load_csv
from silo.data import validate_table
from silo.store import SiloStore
from tests.test_services import start_silos

URL = os.environ.get("FEDRISK_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(not URL, reason="FEDRISK_TEST_POSTGRES_URL is not set (no PostgreSQL server; "
                                ".ci/run starts one)")
PARAMS = {"max_epochs": 3, "batch_size": 128, "learning_rate": 0.15, "optimizer": "adam", "tol": 0.0}


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A fresh database on the server named by the env var; dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    assert URL is not None
    name = f"fedrisk_t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_store_round_trip_on_postgres(pg_url: str) -> None:
    store = JobStore(pg_url)
    try:
        assert store.engine.dialect.name == "postgresql"
        store.create_job("pg-1", "vertical_lr", {"spec": {"x": 1}})
        with pytest.raises(StoreError, match="already exists"):
            store.create_job("pg-1", "vertical_lr", {})
        with pytest.raises(StoreError, match="at most 64"):
            store.create_job("j" * 65, "vertical_lr", {})
        store.transition("pg-1", "aligning")
        store.transition("pg-1", "training")
        store.record_checkpoint("pg-1", "arbiter", 0, "ab" * 32, state=b"\x00\x01binary")
        store.record_checkpoint("pg-1", "arbiter", 0, "cd" * 32, state=b"\x02")  # same step again: replaced
        assert store.checkpoint_state("pg-1", "arbiter") == (0, b"\x02")
        store.transition("pg-1", "evaluating")
        model = store.register_model("pg-1", "credit", "vertical_lr", {"a": 1}, {"auc": 0.7}, {"w": [1, 2]})
        assert (model.id, store.job("pg-1").state) == ("credit-v1", "done")
        store.record_evaluation(model.id, job_id="pg-1", threshold=0.5, rows=10, headline={"auc": 0.7},
                                metrics={"auc": 0.7}, schema_digests={"bank": "x"})
        assert [e.seq for e in store.evaluations(model.id)] == [1]
        assert [e["to_state"] for e in store.events("pg-1")] == ["queued", "aligning", "training", "evaluating",
                                                                 "done"]
    finally:
        store.close()
    reopened = JobStore(pg_url)  # a second process / an arbiter restart sees everything
    try:
        assert reopened.model("credit").model == {"w": [1, 2]}
    finally:
        reopened.close()


def test_concurrent_registrations_get_distinct_versions(pg_url: str) -> None:
    stores = [JobStore(pg_url) for _ in range(4)]
    try:
        for i, store in enumerate(stores):
            store.create_job(f"race-{i}", "vertical_lr", {})
            for state in ("aligning", "training", "evaluating"):
                store.transition(f"race-{i}", state)
        barrier = threading.Barrier(len(stores))
        ids: list[str] = []

        def register(i: int) -> None:
            barrier.wait()
            ids.append(stores[i].register_model(f"race-{i}", "raced", "vertical_lr", {}, {}, {"i": i}).id)

        threads = [threading.Thread(target=register, args=(i,)) for i in range(len(stores))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(ids) == [f"raced-v{v}" for v in range(1, len(stores) + 1)]
    finally:
        for store in stores:
            store.close()


# ------------------------------------------------------------------------------------- over the services
def _postgres_deployment(tmp: Path, pg_url: str, concurrent: int) -> tuple[Path, dict[str, Path]]:
    root, paths = prepare_workdir(tmp, "breast", params=PARAMS, job_id="pg-job", salt="pg-salt", seed=5)
    text = paths["arbiter"].read_text().replace('store = "stores/arbiter.sqlite"', f'store = "{pg_url}"')
    paths["arbiter"].write_text(text + f"\n[queue]\nconcurrent_jobs = {concurrent}\n")
    return root, paths


def _simulated(spec: object) -> dict[str, object]:
    tables = {"bank": validate_table(load_csv("breast_hetero_guest"), "bank", label_column="y"),
              "insurer": validate_table(load_csv("breast_hetero_host"), "insurer")}
    return simulate_job(spec, tables)  # type: ignore[arg-type]


def _assert_matches_simulation(root: Path, job_id: str, spec: object) -> None:
    sim = _simulated(spec)
    for pid in ("bank", "insurer"):
        part = SiloStore(root / "stores" / f"{pid}.sqlite").model_part(job_id)
        assert part is not None, f"{pid} holds no model part for {job_id}"
        np.testing.assert_array_equal(np.asarray(part["model"]["weights"]),
                                      np.asarray(sim["parts"][pid]["model"]["weights"]))  # type: ignore[index]


@pytest.mark.slow
def test_two_jobs_run_concurrently_on_one_arbiter(tmp_path: Path, pg_url: str) -> None:
    root, paths = _postgres_deployment(tmp_path, pg_url, concurrent=2)
    config = load_arbiter_config(paths["arbiter"])
    assert config.concurrent_jobs == 2
    base = load_job_config(paths["job"])
    jobs = [dataclasses.replace(base, spec=dataclasses.replace(base.spec, job_id=f"pg-concurrent-{i}", seed=s))
            for i, s in enumerate((3, 4))]
    procs = Processes()
    service = ArbiterService(config, progress=False)
    try:
        start_silos(root, paths, procs)
        for job in jobs:
            service.submit(job)
        queue = JobQueue(service, concurrency=config.concurrent_jobs, poll_seconds=0.2).start()
        overlap = False
        deadline = time.monotonic() + 400
        while not queue.wait_idle(0.5):
            overlap = overlap or len(queue.running()) == 2
            assert time.monotonic() < deadline, "the jobs did not finish"
        queue.stop()
        assert overlap, "the two jobs never ran at the same time"
        for job in jobs:
            outcome = queue.results[job.spec.job_id]
            assert not isinstance(outcome, BaseException), outcome
            assert service.store.job(job.spec.job_id).state == "done"
        versions = sorted(m.id for m in service.store.models() if m.name == "credit-lr")
        assert versions == ["credit-lr-v1", "credit-lr-v2"]
    finally:
        service.close()
        procs.stop_all()
    for job in jobs:  # isolation: each job's model is exactly its own simulation's
        _assert_matches_simulation(root, job.spec.job_id, job.spec)


@pytest.mark.slow
def test_arbiter_killed_mid_job_is_resumed_by_the_next_serve(tmp_path: Path, pg_url: str) -> None:
    root, paths = _postgres_deployment(tmp_path, pg_url, concurrent=1)
    base = load_job_config(paths["job"])
    job = dataclasses.replace(base, spec=dataclasses.replace(base.spec, job_id="pg-restart", seed=9))
    procs = Processes()
    try:
        start_silos(root, paths, procs)
        service = ArbiterService(load_arbiter_config(paths["arbiter"]), progress=False)
        try:
            service.submit(job)
        finally:
            service.close()
        serve = fedrisk_command("arbiter", "serve", "--config", str(paths["arbiter"]), "--until-idle")
        procs.start("arbiter", serve, root / "logs" / "arbiter-1.log", cwd=root)
        store = JobStore(pg_url)
        try:
            deadline = time.monotonic() + 180
            while not [s for _, s, _ in store.checkpoints("pg-restart", "arbiter") if s >= 0]:
                assert procs.procs["arbiter"].poll() is None, procs.tail("arbiter")
                assert time.monotonic() < deadline, "the arbiter never checkpointed an epoch"
                time.sleep(0.1)
            procs.kill("arbiter")  # SIGKILL mid-training: the job row stays in 'training'
            assert store.job("pg-restart").state == "training"
            procs.start("arbiter", serve, root / "logs" / "arbiter-2.log", cwd=root)
            assert procs.procs["arbiter"].wait(300) == 0, procs.tail("arbiter")
            final = store.job("pg-restart")
            assert final.state == "done" and final.attempt >= 1, final
            notes = [e["note"] or "" for e in store.events("pg-restart")]
            assert any("arbiter restarted" in n for n in notes)
        finally:
            store.close()
    finally:
        procs.stop_all()
    _assert_matches_simulation(root, "pg-restart", job.spec)
