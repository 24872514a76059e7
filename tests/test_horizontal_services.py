"""Horizontal jobs over the services: three bank processes + the arbiter over gRPC and mutual TLS.

The same job over the services gives exactly the model of the in-process simulation; a client SIGKILLed
mid-round is dropped from that round (the others close it) and, restarted, rejoins the running job.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from arbiter.config import load_arbiter_config, load_job_config
from arbiter.demo import Processes, fedrisk_command, prepare_workdir, silo_names, wait_until_ready
from arbiter.runner import ArbiterService
from arbiter.simulate import simulate_job
from arbiter.store import JobStore
from datasets import load_csv
from silo.data import validate_table

FILES = {"bank-a": "default_credit_homo_guest", "bank-b": "default_credit_homo_host_1",
         "bank-c": "default_credit_homo_host_2"}


def _start(root: Path, paths: dict[str, Path], procs: Processes, names: list[str]) -> None:
    for name in names:
        procs.start(name, fedrisk_command("silo", "serve", "--config", str(paths[name])),
                    root / "logs" / f"{name}.log", cwd=root)
    wait_until_ready(procs, names, root)


@pytest.mark.slow
def test_horizontal_job_over_the_services_equals_the_in_process_simulation(tmp_path: Path) -> None:
    params = {"rounds": 4, "batch_size": 64, "learning_rate": 0.05, "round_timeout": 60.0}
    root, paths = prepare_workdir(tmp_path, "default_credit", params=params, algorithm="fedavg",
                                  job_id="h-e2e", salt="h-salt", seed=5)
    procs = Processes()
    try:
        _start(root, paths, procs, silo_names(paths))
        service = ArbiterService(load_arbiter_config(paths["arbiter"]), progress=False)
        job = load_job_config(paths["job"])
        try:
            result = service.run(service.submit(job).id)
        finally:
            service.close()
    finally:
        procs.stop_all()
    tables = {p: validate_table(load_csv(f), p, label_column="y") for p, f in FILES.items()}
    sim = simulate_job(job.spec, tables)
    assert result["metrics"]["auc"] == sim["metrics"]["auc"]
    store = JobStore(load_arbiter_config(paths["arbiter"]).store)
    try:
        model = store.model(result["model_id"])
        assert model.model["part_hashes"] == sim["part_hashes"]  # bit-identical client models
        assert model.model["arbiter_part"]["weights"] == sim["arbiter"]["weights"]
    finally:
        store.close()
    assert set(result["full_metrics"]["per_party"]) == set(FILES)
    assert result["metrics"]["auc"] > 0.71


def _round_done(store_path: str, job_id: str) -> int:
    store = JobStore(store_path)
    try:
        steps = [s for _, s, _ in store.checkpoints(job_id, "arbiter")]
        return max(steps, default=-1)
    finally:
        store.close()


@pytest.mark.slow
def test_a_sigkilled_client_is_dropped_from_the_round_and_rejoins_after_a_restart(tmp_path: Path) -> None:
    params = {"rounds": 400, "batch_size": 256, "learning_rate": 0.02, "round_timeout": 3.0, "join_timeout": 60.0,
              "rejoin_grace": 60.0}
    root, paths = prepare_workdir(tmp_path, "default_credit", params=params, algorithm="fedavg",
                                  job_id="h-kill", salt="k-salt", seed=3)
    config = load_arbiter_config(paths["arbiter"])
    procs = Processes()
    outcome: dict[str, Any] = {}
    try:
        _start(root, paths, procs, silo_names(paths))
        service = ArbiterService(config, progress=False)
        record = service.submit(load_job_config(paths["job"]))

        def drive() -> None:
            try:
                outcome["result"] = service.run(record.id)
            except BaseException as exc:
                outcome["error"] = exc

        runner = threading.Thread(target=drive, daemon=True)
        runner.start()
        deadline = time.monotonic() + 120
        while _round_done(config.store, record.id) < 3:
            assert runner.is_alive(), f"job ended before the kill: {outcome}"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        procs.kill("bank-c")  # SIGKILL mid-round
        _start(root, paths, procs, ["bank-c"])
        runner.join(300)
        assert not runner.is_alive() and "result" in outcome, outcome
        service.close()
    finally:
        procs.stop_all()
    store = JobStore(config.store)
    try:
        summary = store.job(record.id).training["arbiter_part"]
    finally:
        store.close()
    history = summary["history"]
    missed = [r for r in history if "bank-c" in r["missing"]]
    assert missed and all(r["contributors"] == ["bank-a", "bank-b"] for r in missed)  # closed with the others
    assert any("bank-c" in r["contributors"] for r in history[history.index(missed[-1]) + 1:])  # rejoined
    assert any("client 'bank-c' joined (incarnation 2" in e for e in summary["events"])
    assert outcome["result"]["metrics"]["auc"] > 0.70


@pytest.mark.slow
def test_too_few_clients_fails_naming_them_and_resume_equals_the_uninterrupted_job(tmp_path: Path) -> None:
    from arbiter.cli import main

    params = {"rounds": 60, "batch_size": 256, "learning_rate": 0.02, "round_timeout": 3.0, "join_timeout": 3.0,
              "min_fit_clients": 3, "min_updates": 3, "round_retries": 0, "rejoin_grace": 0.0}
    root, paths = prepare_workdir(tmp_path, "default_credit", params=params, algorithm="fedavg",
                                  job_id="h-resume", salt="r-salt", seed=9, retries=0)
    config = load_arbiter_config(paths["arbiter"])
    job = load_job_config(paths["job"])
    procs = Processes()
    outcome: dict[str, Any] = {}
    try:
        _start(root, paths, procs, silo_names(paths))
        service = ArbiterService(config, progress=False)
        record = service.submit(job)

        def drive() -> None:
            try:
                outcome["result"] = service.run(record.id)
            except BaseException as exc:
                outcome["error"] = exc

        runner = threading.Thread(target=drive, daemon=True)
        runner.start()
        deadline = time.monotonic() + 120
        while _round_done(config.store, record.id) < 3:
            assert runner.is_alive() and time.monotonic() < deadline, outcome
            time.sleep(0.05)
        procs.kill("bank-c")
        runner.join(120)
        assert "error" in outcome and "bank-c" in str(outcome["error"]), outcome
        assert service.store.job(record.id).state == "failed"
        service.close()
        _start(root, paths, procs, ["bank-c"])
        assert main(["arbiter", "resume", record.id, "--config", str(paths["arbiter"]), "--no-progress"]) == 0
    finally:
        procs.stop_all()
    tables = {p: validate_table(load_csv(f), p, label_column="y") for p, f in FILES.items()}
    sim = simulate_job(job.spec, tables)  # the uninterrupted job (bit-identical to one over the services)
    store = JobStore(config.store)
    try:
        done = store.job(record.id)
        assert done.state == "done"
        model = store.model("credit-fedavg-v1")  # the demo's model name, first version
        assert model.job_id == record.id
        assert model.model["part_hashes"] == sim["part_hashes"]
        assert model.model["arbiter_part"]["weights"] == sim["arbiter"]["weights"]
    finally:
        store.close()
