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
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from algorithms.api import RoleContext
from algorithms.base import MemoryCheckpoint
from algorithms.ledger import Ledger, declared, merge_summaries
from algorithms.paillier import shared_executor
from algorithms.secagg.signing import EcSigner, KeyVerifier
from federation.channel import InMemoryNetwork, run_parties
from silo.data import LocalTable
from silo.jobs import JobSpec, SiloWorker
from silo.store import SiloStore, SqliteCheckpoint


def simulate_job(spec: JobSpec, tables: dict[str, LocalTable], workdir: str | Path | None = None,
                 executor: Executor | None = None, workers: int = 1,
                 consent: dict[str, dict[str, bool]] | None = None) -> dict[str, Any]:
    """Run the job in-process; returns ``{"metrics", "parts", "report_sections", "arbiter", "timings",
    "ledgers"}`` (``metrics`` empty for an algorithm without an evaluation stage; ``ledgers``: every party's
    privacy-ledger summary over all stages, see :mod:`algorithms.ledger`). ``consent``: each silo's
    ``[consent]``. ``executor`` (with its ``workers``) is where every silo role's heavy loops run, as a silo's
    ``[compute]`` section would set it (default: the shared process pool)."""
    tmp = tempfile.TemporaryDirectory() if workdir is None else None
    root = Path(tmp.name if tmp is not None else workdir)  # type: ignore[arg-type]
    root.mkdir(parents=True, exist_ok=True)
    stores = {pid: SiloStore(root / f"{pid}-sim.sqlite") for pid in tables}
    plugin = spec.plugin
    pool = executor if executor is not None else shared_executor()  # the services' roles run on the same kind
    size = workers if executor is not None else pool.workers  # type: ignore[attr-defined]
    # in-process stand-ins for the silos' certificate keys (secure aggregation signs key advertisements)
    keys = {pid: ec.generate_private_key(ec.SECP256R1()) for pid in tables}
    verifier = KeyVerifier({pid: k.public_key() for pid, k in keys.items()})
    silos = {pid: SiloWorker(pid, str(spec.parties.role_of(pid)), tables[pid], stores[pid], executor=pool,
                             workers=size, consent=(consent or {}).get(pid), signer=EcSigner(pid, keys[pid]),
                             verifier=verifier) for pid in tables}
    timings: dict[str, Any] = {}
    try:
        net = InMemoryNetwork()
        channels = {pid: net.channel(pid) for pid in silos}
        t0 = time.perf_counter()
        aligned: dict[str, Any] = {}
        if "align" in plugin.stages:
            aligned = run_parties({pid: (lambda w=w: w.align(spec, channels[w.party_id]))
                                   for pid, w in silos.items()}, net)
        timings["align_s"] = time.perf_counter() - t0
        net.close()

        net = InMemoryNetwork()
        arbiter_cp = MemoryCheckpoint()
        stamps: list[float] = []

        arbiter_ledger = Ledger(spec.parties.arbiter, spec.parties, declared(plugin))
        arbiter_channel = arbiter_ledger.channel(net.channel(spec.parties.arbiter), "train")

        ctx = RoleContext(job_id=spec.job_id, party_id=spec.parties.arbiter, role="arbiter", parties=spec.parties,
                          params=spec.typed_params, seed=spec.seed, checkpoint=arbiter_cp,
                          executor=shared_executor(), workers=shared_executor().workers)  # no [compute] at the arbiter

        def arbiter() -> Any:
            return plugin.export_part(plugin.trainer(ctx, None).run(arbiter_channel))

        calls: dict[str, Any] = {spec.parties.arbiter: arbiter if plugin.arbiter is not None else (lambda: None)}
        holders = spec.parties.of(plugin.label_role) if plugin.label_role else ()
        timed = holders[0] if holders else next(iter(silos))  # whose checkpoints time the steps
        for pid, w in silos.items():
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

        metrics: dict[str, Any] = {}
        evaluated: dict[str, Any] = {}
        if "evaluate" in plugin.stages:
            net = InMemoryNetwork()
            channels = {pid: net.channel(pid) for pid in silos}
            evaluated = run_parties({pid: (lambda w=w: w.evaluate(spec, channels[w.party_id]))
                                     for pid, w in silos.items()}, net)
            net.close()
            metric_parties = plugin.metric_parties(spec.parties)
            metrics = plugin.combine_metrics({pid: evaluated[pid]["metrics"] for pid in metric_parties})
        parts = {pid: stores[pid].model_part(spec.job_id) for pid in silos}
        ledgers = {pid: merge_summaries([(aligned.get(pid) or {}).get("ledger") or {}, out[pid].get("ledger") or {},
                                         (evaluated.get(pid) or {}).get("ledger") or {}]) for pid in silos}
        if plugin.arbiter is not None:
            ledgers[spec.parties.arbiter] = arbiter_ledger.summary()
        return {"metrics": metrics, "parts": parts,
                "part_hashes": {pid: out[pid]["part_sha256"] for pid in silos},
                "report_sections": {pid: out[pid]["report_sections"] for pid in silos
                                    if out[pid].get("report_sections")},
                "arbiter": out[spec.parties.arbiter], "timings": timings, "ledgers": ledgers}
    finally:
        for store in stores.values():
            store.close()
        if tmp is not None:
            tmp.cleanup()
