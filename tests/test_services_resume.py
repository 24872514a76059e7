"""A host silo process SIGKILLed (or stopped gracefully with SIGTERM) mid-training and restarted: the job
resumes from the last checkpoint (new attempt number in the transport key) and ends with exactly the weights
of an uninterrupted run."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from arbiter.cli import main
from arbiter.config import load_arbiter_config, load_job_config
from arbiter.demo import Processes, prepare_workdir
from arbiter.runner import ArbiterError, ArbiterService
from arbiter.simulate import simulate_job
from arbiter.store import JobStore
from datasets import load_csv
from silo.data import validate_table
from silo.store import SiloStore
from tests.test_services import start_silos

PARAMS = {"max_epochs": 6, "batch_size": 64, "learning_rate": 0.1, "optimizer": "adam", "tol": 0.0}


def _host_steps(path: Path, job_id: str) -> list[int]:
    if not path.exists():
        return []
    store = SiloStore(path)
    try:
        return store.checkpoint_steps(job_id)
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["automatic", "manual", "sigterm"])
def test_killed_host_resumes_with_identical_weights(tmp_path: Path, mode: str) -> None:
    """automatic: the arbiter waits for the host and retries; manual: the job fails (no retries) and
    ``fedrisk arbiter resume JOB`` continues it once the host is back; sigterm: a graceful stop tells the
    arbiter the silo is going away ("stopping" reply), which then waits and resumes as for SIGKILL."""
    job_id = f"resume-{mode}"
    root, paths = prepare_workdir(tmp_path, "breast", params=PARAMS, job_id=job_id, salt="resume-salt", seed=11,
                                  silo_deadline=60.0, retries=0 if mode == "manual" else 2)
    config = load_arbiter_config(paths["arbiter"])
    job = load_job_config(paths["job"])
    procs = Processes()
    outcome: dict[str, Any] = {}
    try:
        start_silos(root, paths, procs)
        service = ArbiterService(config, progress=False)
        record = service.submit(job)

        def drive() -> None:
            try:
                outcome["result"] = service.run(record.id)
            except BaseException as exc:
                outcome["error"] = exc

        runner = threading.Thread(target=drive, daemon=True)
        runner.start()
        host_db = root / "stores" / "insurer.sqlite"
        deadline = time.monotonic() + 120
        while not any(s >= 1 for s in _host_steps(host_db, job_id)):
            assert runner.is_alive(), f"job ended before the kill: {outcome}"
            assert time.monotonic() < deadline, "the host never checkpointed epoch 1"
            time.sleep(0.05)
        if mode == "sigterm":
            assert procs.stop("insurer", grace=30.0) == 0, procs.tail("insurer")  # graceful: exits cleanly
            log_text = (root / "logs" / "insurer.log").read_text(errors="replace")
            assert "stopping" in log_text
        else:
            procs.kill("insurer")  # SIGKILL: no chance to clean up
        killed_at = _host_steps(host_db, job_id)
        if mode == "manual":
            runner.join(60)
            assert isinstance(outcome.get("error"), ArbiterError) and "arbiter resume" in str(outcome["error"])
            assert service.store.job(job_id).state == "failed"
            service.close()
            start_silos(root, paths, procs, names=("insurer",))
            assert main(["arbiter", "resume", job_id, "--config", str(paths["arbiter"]), "--no-progress"]) == 0
            service = ArbiterService(config, progress=False)
            outcome = {"result": service.store.job(job_id).result}
        else:
            time.sleep(1.0)
            start_silos(root, paths, procs, names=("insurer",))
            runner.join(240)
            assert not runner.is_alive(), "the resumed job did not finish"
        service.close()
    finally:
        procs.stop_all()
    assert "error" not in outcome, outcome.get("error")
    assert max(killed_at) < PARAMS["max_epochs"] - 1, "the host was killed after training had finished"

    store = JobStore(config.store)
    try:
        final = store.job(job_id)
        assert final.state == "done" and final.attempt >= 1
        assert "failed" in [e["to_state"] for e in store.events(job_id)]
    finally:
        store.close()

    tables = {"bank": validate_table(load_csv("breast_hetero_guest"), "bank", label_column="y"),
              "insurer": validate_table(load_csv("breast_hetero_host"), "insurer")}
    sim = simulate_job(job.spec, tables)
    for pid in ("bank", "insurer"):
        part = SiloStore(root / "stores" / f"{pid}.sqlite").model_part(job_id)
        assert part is not None
        np.testing.assert_array_equal(np.asarray(part["model"]["weights"]),
                                      np.asarray(sim["parts"][pid]["model"]["weights"]))
    assert outcome["result"]["metrics"]["auc"] == pytest.approx(sim["metrics"]["auc"], abs=1e-12)
