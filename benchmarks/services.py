"""Services overhead: the demo job over loopback mutual TLS vs the same job in-process.

Runs the bank and insurer silos as separate processes and the arbiter in this process (PSI + vertical LR
on the bundled default-credit data, 2048-bit Paillier keys), then the identical job in-process
(:func:`arbiter.simulate.simulate_job`, same data, spec, seed and parameters). Seconds per epoch are the
intervals between the guest's consecutive epoch checkpoints in both runs (the first epoch, which also
holds key generation and setup, is excluded when there are at least two epochs).

    python -m benchmarks.services [--epochs 3]

Last line: ``services_overhead=<services seconds per epoch / in-process seconds per epoch>`` (goal <= 1.15).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from arbiter.config import load_arbiter_config, load_job_config
from arbiter.demo import Processes, fedrisk_command, prepare_workdir, wait_until_ready
from arbiter.runner import ArbiterService
from arbiter.simulate import simulate_job
from arbiter.store import JobStore
from silo.config import load_silo_config
from silo.data import load_table
from silo.store import SiloStore, checkpoints_table


def per_epoch(ends: list[float]) -> float:
    gaps = [b - a for a, b in itertools.pairwise(ends)]
    return statistics.median(gaps) if gaps else ends[0]


def guest_epoch_ends(db: Path, job_id: str) -> list[float]:
    store = SiloStore(db)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(select(checkpoints_table.c.at).where(checkpoints_table.c.job_id == job_id)
                                .order_by(checkpoints_table.c.step)).all()
        return [r[0] for r in rows]
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--dataset", default="default_credit", choices=["default_credit", "breast"])
    args = parser.parse_args()
    job_id = f"bench-{time.strftime('%Y%m%d-%H%M%S')}"
    with tempfile.TemporaryDirectory(prefix="fedrisk-bench-") as tmp:
        root, paths = prepare_workdir(Path(tmp), args.dataset, epochs=args.epochs, job_id=job_id,
                                      params={"tol": 0.0})
        procs = Processes()
        try:
            for name in ("bank", "insurer"):
                procs.start(name, fedrisk_command("silo", "serve", "--config", str(paths[name])),
                            root / "logs" / f"{name}.log", cwd=root)
            wait_until_ready(procs, ["bank", "insurer"], root)
            config = load_arbiter_config(paths["arbiter"])
            job = load_job_config(paths["job"])
            service = ArbiterService(config, progress=False)
            try:
                record = service.submit(job)
                t0 = time.perf_counter()
                result = service.run(record.id)
                services_total = time.perf_counter() - t0
            finally:
                service.close()
        finally:
            procs.stop_all()
        store = JobStore(config.store)
        try:
            events = {e["to_state"]: e["at"] for e in store.events(job_id)}
        finally:
            store.close()
        psi_s = events["training"] - events["aligning"]
        ends = guest_epoch_ends(root / "stores" / "bank.sqlite", job_id)
        services_epoch = per_epoch(ends)

        tables = {}
        for name in ("bank", "insurer"):
            cfg = load_silo_config(paths[name])
            tables[name] = load_table(cfg.data, cfg.party_id)
        t0 = time.perf_counter()
        sim = simulate_job(job.spec, tables)
        inprocess_total = time.perf_counter() - t0
        inprocess_epoch = per_epoch(sim["timings"]["epoch_ends"])

    print(f"data: {args.dataset}, {args.epochs} epochs, params {job.spec.params}")
    metrics = result["metrics"]
    print(f"services: total {services_total:.1f} s, AUC {metrics['auc']:.4f}, KS {metrics['ks']:.4f}")
    print(f"in-process: total {inprocess_total:.1f} s, AUC {sim['metrics']['auc']:.4f}")
    print(f"psi_seconds={psi_s:.2f}")
    print(f"in-process PSI seconds={sim['timings']['align_s']:.2f}")
    print(f"services_seconds_per_epoch={services_epoch:.2f}")
    print(f"inprocess_seconds_per_epoch={inprocess_epoch:.2f}")
    print(f"services_overhead={services_epoch / inprocess_epoch:.3f}")


if __name__ == "__main__":
    main()
