"""In-process simulation of a whole job: the same silo workers and roles as the services, in threads.

:func:`simulate_job` runs the algorithm's stages (e.g. align → train → evaluate) for every party over
:class:`~federation.channel.InMemoryNetwork` (every message still goes through the codec), with each
silo's local store in a temporary directory. With the same spec (seed, salt, parameters) and the same
tables it produces exactly the model parts and metrics of a run over gRPC, which is what the end-to-end
tests and ``benchmarks.services`` compare against.

What it reveals to whom: nothing beyond the real protocol; the function returns every party's model part
only because it is a single-process simulation for tests and benchmarks.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from algorithms.api import RoleContext
from algorithms.base import MemoryCheckpoint
from algorithms.paillier import shared_executor
from algorithms.secagg.signing import EcSigner, KeyVerifier
from federation.channel import InMemoryNetwork, run_parties
from silo.data import LocalTable
from silo.jobs import JobSpec, SiloWorker
from silo.store import SiloStore, SqliteCheckpoint


def simulate_job(spec: JobSpec, tables: dict[str, LocalTable], workdir: str | Path | None = None
                 ) -> dict[str, Any]:
    """Run the job in-process; returns ``{"metrics", "parts", "arbiter", "timings"}``."""
    tmp = tempfile.TemporaryDirectory() if workdir is None else None
    root = Path(tmp.name if tmp is not None else workdir)  # type: ignore[arg-type]
    root.mkdir(parents=True, exist_ok=True)
    stores = {pid: SiloStore(root / f"{pid}-sim.sqlite") for pid in tables}
    plugin = spec.plugin
    pool = shared_executor()  # the services' roles run on the same kind of pool
    # in-process stand-ins for the silos' certificate keys (secure aggregation signs key advertisements)
    keys = {pid: ec.generate_private_key(ec.SECP256R1()) for pid in tables}
    verifier = KeyVerifier({pid: k.public_key() for pid, k in keys.items()})
    workers = {pid: SiloWorker(pid, str(spec.parties.role_of(pid)), tables[pid], stores[pid], executor=pool,
                               workers=pool.workers, signer=EcSigner(pid, keys[pid]), verifier=verifier)
               for pid in tables}
    timings: dict[str, Any] = {}
    try:
        net = InMemoryNetwork()
        channels = {pid: net.channel(pid) for pid in workers}
        t0 = time.perf_counter()
        if "align" in plugin.stages:
            run_parties({pid: (lambda w=w: w.align(spec, channels[w.party_id])) for pid, w in workers.items()}, net)
        timings["align_s"] = time.perf_counter() - t0
        net.close()

        net = InMemoryNetwork()
        arbiter_cp = MemoryCheckpoint()
        stamps: list[float] = []

        arbiter_channel = net.channel(spec.parties.arbiter)

        ctx = RoleContext(job_id=spec.job_id, party_id=spec.parties.arbiter, role="arbiter", parties=spec.parties,
                          params=spec.typed_params, seed=spec.seed, checkpoint=arbiter_cp, executor=pool,
                          workers=pool.workers)

        def arbiter() -> Any:
            return plugin.export_part(plugin.trainer(ctx, None).run(arbiter_channel))

        calls: dict[str, Any] = {spec.parties.arbiter: arbiter if plugin.arbiter is not None else (lambda: None)}
        holders = spec.parties.of(plugin.label_role) if plugin.label_role else ()
        timed = holders[0] if holders else next(iter(workers))  # whose checkpoints time the steps
        for pid, w in workers.items():
            cp = SqliteCheckpoint(stores[pid], spec.job_id, max_step=-1,
                                  on_save=(lambda s, d: stamps.append(time.perf_counter()))
                                  if pid == timed else None)
            channel = net.channel(pid)
            calls[pid] = (lambda w=w, cp=cp, ch=channel: w.train(spec, ch, cp))
        t0 = time.perf_counter()
        out = run_parties(calls, net)
        timings["train_s"] = time.perf_counter() - t0
        timings["epoch_ends"] = [s - t0 for s in stamps]
        net.close()

        net = InMemoryNetwork()
        channels = {pid: net.channel(pid) for pid in workers}
        evaluated = run_parties({pid: (lambda w=w: w.evaluate(spec, channels[w.party_id]))
                                 for pid, w in workers.items()}, net)
        net.close()
        parts = {pid: stores[pid].model_part(spec.job_id) for pid in workers}
        metric_parties = plugin.metric_parties(spec.parties)
        metrics = plugin.combine_metrics({pid: evaluated[pid]["metrics"] for pid in metric_parties})
        return {"metrics": metrics, "parts": parts,
                "part_hashes": {pid: out[pid]["part_sha256"] for pid in workers},
                "arbiter": out[spec.parties.arbiter], "timings": timings}
    finally:
        for store in stores.values():
            store.close()
        if tmp is not None:
            tmp.cleanup()
