"""Scale-out inside a silo on Dask: the ``[compute]`` section, and the same job on a 2-worker Dask local
cluster giving exactly the model of the process pool (every heavy loop goes through the executor the
silo hands its roles)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from arbiter.config import load_job_config
from arbiter.demo import prepare_workdir
from arbiter.simulate import simulate_job
from datasets import load_csv
from silo.compute import SCATTER_BYTES, ComputeConfig, open_compute, parse_compute
from silo.config import ConfigError, load_silo_config
from silo.data import validate_table

pytest.importorskip("distributed")


def _tables() -> dict[str, object]:
    return {"bank": validate_table(load_csv("breast_hetero_guest"), "bank", label_column="y"),
            "insurer": validate_table(load_csv("breast_hetero_host"), "insurer")}


def _with_compute(config: Path, section: str) -> Path:
    config.write_text(config.read_text() + "\n[compute]\n" + section + "\n")
    return config


def test_compute_section_is_checked(tmp_path: Path) -> None:
    _, paths = prepare_workdir(tmp_path, "breast", job_id="compute-config")
    assert load_silo_config(paths["bank"]).compute == ComputeConfig()  # absent: the process pool
    bank = paths["bank"].read_text()
    cases = {
        'executor = "dusk"': "did you mean 'dask'",
        'executor = "dask"\nworkerz = 2': "unknown key compute.workerz (did you mean 'workers'?)",
        'executor = "dask"': "either compute.scheduler",
        'executor = "dask"\nworkers = 0': "positive integer",
        'executor = "dask"\nscheduler = "tcp://10.0.0.5:8786"': "must be a tls:// address",
        'executor = "dask"\nscheduler = "tls://sched:8786"': "needs compute.tls_ca",
        'workers = 2': "needs compute.executor = 'dask'",
    }
    for section, message in cases.items():
        paths["bank"].write_text(bank)
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_silo_config(_with_compute(paths["bank"], section))
    paths["bank"].write_text(bank)
    config = load_silo_config(_with_compute(paths["bank"], 'executor = "dask"\nworkers = 2'))
    assert (config.compute.executor, config.compute.workers) == ("dask", 2)
    assert parse_compute({}, tmp_path, "x") == ComputeConfig()


def test_dask_executor_states_its_size_and_runs_tasks() -> None:
    compute = open_compute(ComputeConfig(executor="dask", workers=1))
    try:
        assert compute.kind == "dask" and compute.workers == 1 and compute.executor.workers == 1  # type: ignore[attr-defined]
        assert compute.executor.submit(pow, 3, 5, 7).result(60) == pow(3, 5, 7)
        # one pickled blob each way: keyword arguments, closures (by value) and errors still come through
        assert compute.executor.submit(int, "ff", base=16).result(60) == 255
        offset = 4
        assert compute.executor.submit(lambda x: x + offset, 1).result(60) == 5
        with pytest.raises(ZeroDivisionError):
            compute.executor.submit(divmod, 1, 0).result(60)
        big = b"x" * (SCATTER_BYTES + 1)  # sent to the worker directly, not through the scheduler
        assert [f.result(60) for f in [compute.executor.submit(len, big) for _ in range(3)]] == [len(big)] * 3
    finally:
        compute.close()


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["vertical_lr", "secureboost"])
def test_two_worker_dask_cluster_gives_the_process_pool_model(tmp_path: Path, algorithm: str) -> None:
    params = ({"max_epochs": 2, "batch_size": 128, "learning_rate": 0.15, "optimizer": "adam"}
              if algorithm == "vertical_lr" else {"n_estimators": 2, "max_depth": 3})
    _, paths = prepare_workdir(tmp_path, "breast", params=params, algorithm=algorithm, job_id=f"dask-{algorithm}",
                               salt="dask-salt", seed=3)
    spec = load_job_config(paths["job"]).spec
    pool = simulate_job(spec, _tables())  # type: ignore[arg-type]
    compute = open_compute(ComputeConfig(executor="dask", workers=2))
    try:
        assert compute.workers == 2
        dask = simulate_job(spec, _tables(), executor=compute.executor, workers=compute.workers)  # type: ignore[arg-type]
    finally:
        compute.close()
    assert dask["part_hashes"] == pool["part_hashes"]
    assert dask["parts"] == pool["parts"]
    assert dask["metrics"]["auc"] == pool["metrics"]["auc"]


def test_psi_blinding_on_the_executor_matches_threads() -> None:
    from algorithms.paillier import shared_executor
    from algorithms.psi.blinding import Blinder, hash_and_blind, new_scalar

    ids = [f"customer-{i}" for i in range(5000)]
    pool = shared_executor()
    scalar = new_scalar()
    inline = b"".join(hash_and_blind(scalar, ids, "ctx", None, chunk=1000))
    assert b"".join(hash_and_blind(scalar, ids, "ctx", pool, chunk=1000)) == inline
    other = new_scalar()
    here, there = Blinder(other, "peer", None), Blinder(other, "peer", pool)
    for start in range(0, len(inline), 32 * 1000):
        here.add(inline[start:start + 32 * 1000])
        there.add(inline[start:start + 32 * 1000])
    assert (here.result() == there.result()).all()
