"""fedrisk's side of ``python -m benchmarks.horizontal`` (default): the FedAvg job over the real services.

Each silo's partition is written to a CSV and served by its own ``fedrisk silo serve`` process (gRPC +
mutual TLS on loopback, private CA); once every silo answers, the arbiter runs the job's training stage
(``holdout = 0``: every row trains, as in the in-process and Flower runs) and the global model from the
job store is scored on the bundled test split. Timed: job submission to the trained model (silos already
serving); CPU: this process plus every silo process over the same interval.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from algorithms.horizontal.model import ClientModel
from algorithms.horizontal.preprocessing import FeatureSpace
from arbiter.config import load_arbiter_config, load_job_config
from arbiter.demo import Processes, fedrisk_command, wait_until_ready, write_configs
from arbiter.runner import ArbiterService
from federation.certs import provision
from silo.logs import job_logger


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fedrisk_over_services(silos: dict[str, pd.DataFrame], test: pd.DataFrame, rounds: int, params: dict[str, Any]
                          ) -> tuple[float, float, float]:
    """(test AUC, wall seconds, CPU seconds) of the FedAvg job over the services."""
    names = {name: name.replace("_", "-") for name in silos}
    with tempfile.TemporaryDirectory(prefix="fedrisk-hbench-") as tmp:
        root = Path(tmp)
        (root / "stores").mkdir()
        (root / "data").mkdir()
        files = []
        for name, frame in silos.items():
            path = root / "data" / f"{names[name]}.csv"
            frame.to_csv(path, index=False)
            files.append((names[name], path, True))
        provision(root / "certs", parties=[*names.values(), "arbiter"], hosts=["localhost", "127.0.0.1"])
        job_params = {**params, "rounds": rounds, "min_fit_clients": 2, "min_updates": 2}
        paths = write_configs(root, files, job_params, job_id="bench-horizontal", holdout=0.0, algorithm="fedavg")
        procs = Processes()
        try:
            for n in names.values():
                procs.start(n, fedrisk_command("silo", "serve", "--config", str(paths[n])), root / "logs" / f"{n}.log",
                            cwd=root)
            wait_until_ready(procs, list(names.values()), root, timeout=300)
            service = ArbiterService(load_arbiter_config(paths["arbiter"]), progress=False)
            try:
                job = load_job_config(paths["job"])
                pids = [p.pid for p in procs.procs.values()]
                cpu0 = time.process_time() + sum(_cpu(p) for p in pids)
                t0 = time.perf_counter()
                record = service.submit(job)
                service._start_node(dict(job.parties))
                service._run_stages(record, job.spec, service.pool(job.parties), ("training",),
                                    job_logger("fedrisk.arbiter", "arbiter", record.id))
                wall = time.perf_counter() - t0
                cpu = time.process_time() + sum(_cpu(p) for p in pids) - cpu0
                part = service.store.job(record.id).training["arbiter_part"]
            finally:
                service.close()
        finally:
            procs.stop_all()
    model = ClientModel(str(params.get("model", "logistic")), (), FeatureSpace.from_dict(part["space"]),
                        np.asarray(part["weights"], dtype=np.float64))
    X = test[[c for c in test.columns if c not in ("id", "y")]].to_numpy(float)
    return float(roc_auc_score(test["y"], model.predict_proba(X))), wall, cpu


__all__ = ["fedrisk_over_services"]
