"""Secure aggregation over the services: three bank silos as processes, gRPC + mutual TLS, FedAvg with SecAgg."""

from __future__ import annotations

from pathlib import Path

import pytest

from arbiter.config import load_arbiter_config, load_job_config
from arbiter.demo import Processes, fedrisk_command, prepare_workdir, silo_names, wait_until_ready
from arbiter.runner import ArbiterService
from arbiter.simulate import simulate_job
from silo.config import load_silo_config
from silo.data import load_table

pytestmark = pytest.mark.slow


def test_fedavg_with_secure_aggregation_over_grpc_matches_the_simulation(tmp_path: Path) -> None:
    params = {"secure_aggregation": True, "rounds": 2, "min_fit_clients": 3, "min_updates": 3}
    root, paths = prepare_workdir(tmp_path, "default_credit", algorithm="fedavg", params=params,
                                  job_id="secagg-e2e", seed=7)
    names = silo_names(paths)
    assert len(names) >= 3
    procs = Processes()
    try:
        for name in names:
            procs.start(name, fedrisk_command("silo", "serve", "--config", str(paths[name])),
                        root / "logs" / f"{name}.log", cwd=root)
        wait_until_ready(procs, names, root)
        config = load_arbiter_config(paths["arbiter"])
        job = load_job_config(paths["job"])
        service = ArbiterService(config, progress=False)
        try:
            result = service.run(service.submit(job).id)
        finally:
            service.close()
    finally:
        procs.stop_all()
    tables = {}
    for name in names:
        cfg = load_silo_config(paths[name])
        tables[name] = load_table(cfg.data, cfg.party_id)
    sim = simulate_job(job.spec, tables)
    assert result["metrics"]["auc"] > 0.65
    # same model up to quantisation (48-bit ring): metrics agree far below any reporting precision
    assert abs(result["metrics"]["auc"] - sim["metrics"]["auc"]) <= 1e-6
