"""``fedrisk arbiter run|resume``: drive a job through its stages across the silos.

Steps of :meth:`ArbiterService.run`:

1. ``check``: every silo is reachable over mutual TLS, runs a compatible version, has the role the job
   gives it; its schema digest is recorded (and compared again before evaluation and on resume: a
   silo whose columns changed is refused). Only then is the job row created (nothing is written for an
   invalid job).
2. the algorithm's stages (:attr:`algorithms.api.Algorithm.stages`), each a job state:

   * ``aligning`` (vertical algorithms): each silo runs PSI (label holder with every other silo) and the
     hash split of the aligned ids;
   * ``training``: the arbiter runs its own protocol role if the algorithm gives it one (key holder or
     aggregator) while each silo runs its role; every party checkpoints per step (silos locally, the
     arbiter in its store);
   * ``evaluating``: federated scoring of the held-out ids; the metric parties (the algorithm's
     ``metric_roles``) return aggregate metrics only, combined by the algorithm's ``combine_metrics``.

3. ``done``: the model (parameters, metrics, schema digests and the SHA-256 of each party's private
   part) is registered in the same transaction as the state change, and the report is written; the
   metrics are kept as the model's evaluation #1 (``fedrisk evaluate`` adds #2, #3, ...: see
   :mod:`arbiter.evaluate`).

If a silo dies, or stops gracefully (SIGTERM: its in-flight calls answer "stopping",
:class:`silo.control.SiloStopping`), the attempt is aborted everywhere; the arbiter waits up to
``silo_deadline`` seconds for it to come back and then resumes automatically (at most ``retries``
times) with a fresh attempt number in the transport key (``f"{job_id}.{attempt}.{stage}"``) from the
newest checkpoint step every party holds. Otherwise the job is ``failed`` and ``fedrisk arbiter resume
JOB`` continues it later.

What it reveals to whom: the arbiter learns what :mod:`silo.control` lists (counts, digests, hashes,
aggregate metrics) plus what its protocol role sees (see the algorithm's module docstring).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from algorithms.api import Algorithm, ParamsError, RoleContext
from algorithms.ledger import Ledger, declared, merge_summaries
from algorithms.paillier import shared_executor
from arbiter.card import headline_metrics, model_card
from arbiter.config import ArbiterConfig, JobConfig, PartyAddress
from arbiter.pool import ArbiterError, SiloPool
from arbiter.report import write_report
from arbiter.sections import check_sections, evaluation_sections
from arbiter.store import (
    ALIGNING,
    DONE,
    EVALUATING,
    FAILED,
    QUEUED,
    STAGE_STATES,
    TERMINAL,
    TRAINING,
    VERTICAL_STAGES,
    JobRecord,
    JobStore,
    ModelRecord,
    content_hash,
)
from federation import codec
from federation.channel import ChannelError
from federation.grpc_transport import PartyNode
from silo.control import ControlError, SiloUnavailable
from silo.jobs import CancellableChannel, JobError, JobSpec
from silo.logs import job_logger
from silo.store import SqliteCheckpoint

ALL_STAGES = VERTICAL_STAGES  # every stage state a job can be in
TERMINAL_STATES = tuple(TERMINAL)
Log = logging.LoggerAdapter  # type: ignore[type-arg]


class _StoreCheckpointAdapter:
    """The arbiter role's checkpoints, kept (codec bytes) in the job store's checkpoint table."""

    def __init__(self, store: JobStore, party: str) -> None:
        self._store, self._party = store, party

    def save_checkpoint(self, job_id: str, step: int, state: dict[str, Any]) -> str:
        data = codec.encode(state)
        digest = content_hash(data)
        self._store.record_checkpoint(job_id, self._party, step, digest, state=data)
        return digest

    def latest_checkpoint(self, job_id: str, max_step: int | None = None) -> tuple[int, dict[str, Any]] | None:
        found = self._store.checkpoint_state(job_id, self._party, max_step)
        return None if found is None else (found[0], codec.decode(found[1]))


def job_parties(job: JobRecord) -> dict[str, PartyAddress]:
    """The silos of a stored job with their addresses."""
    return {pid: PartyAddress(pid, p["role"], p["address"], p["control"]) for pid, p in job.spec["parties"].items()}


class ArbiterService:
    """The coordinator: the job store, the stage loop, a data-plane node for the arbiter's protocol role and
    a :class:`~arbiter.pool.SiloPool` per job for the control calls to the silos."""

    def __init__(self, config: ArbiterConfig, progress: bool = True) -> None:
        self.config = config
        self.tls = config.tls.load()
        self.store = JobStore(config.store)
        self.progress = progress
        self.log = job_logger("fedrisk.arbiter", config.party_id)
        self._node: PartyNode | None = None
        self._node_lock = threading.Lock()  # jobs of the queue (arbiter.queue) start in parallel threads
        self._pools: dict[tuple[tuple[str, str], ...], SiloPool] = {}
        self._ledgers: dict[str, dict[str, list[dict[str, Any]]]] = {}  # job -> party -> stage summaries

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        if self._node is not None:
            self._node.stop(grace=0.5)
            self._node = None
        self.store.close()

    # ---------------------------------------------------------------------------------------------- setup
    def pool(self, parties: dict[str, PartyAddress]) -> SiloPool:
        """Control clients to ``parties``: one pool per set of silos, reused by submit, run and evaluate
        (an idle duplicate channel would only collect keepalive GOAWAYs), closed with the service."""
        key = tuple(sorted((pid, p.control) for pid, p in parties.items()))
        with self._node_lock:  # the queue's jobs ask from several threads
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = SiloPool(self.tls, parties)
            return pool

    def _start_node(self, parties: dict[str, PartyAddress]) -> PartyNode:
        with self._node_lock:
            if self._node is None:
                self._node = PartyNode(self.config.party_id, self.config.listen, self.tls,
                                       {p.party_id: p.address for p in parties.values()}).start()
            for p in parties.values():  # a later job (queue) may name parties or addresses the first did not
                if self._node.peers.get(p.party_id) != p.address:
                    self._node.add_peer(p.party_id, p.address)
            return self._node

    def submit(self, job: JobConfig) -> JobRecord:
        """Check the silos, then create the job (nothing is stored if a check fails)."""
        spec = job.spec
        pool = self.pool(job.parties)
        statuses = pool.check(spec)
        pool.check_peers(spec)  # the data-plane addresses the silos will use (their [peers]) work, checked now
        try:
            warnings = spec.plugin.check_preflight(spec.typed_params,
                                                   {pid: s["features"] for pid, s in statuses.items()},
                                                   {pid: s["rows"] for pid, s in statuses.items()}, spec.parties)
            for warning in warnings:
                self.log.warning("preflight", extra={"job": spec.job_id, "fields": {"warning": warning}})
        except ParamsError as exc:
            raise ArbiterError(f"job {spec.job_id!r}: {exc}") from exc
        record = {
            "spec": spec.to_dict(),
            "parties": {p.party_id: {"role": p.role, "address": p.address, "control": p.control}
                        for p in job.parties.values()},
            "silo_deadline": job.silo_deadline, "retries": job.retries,
            "schema_digests": {pid: s["schema_digest"] for pid, s in statuses.items()},
            "rows": {pid: s["rows"] for pid, s in statuses.items()},
            "features": {pid: s["features"] for pid, s in statuses.items()},
            "stages": [STAGE_STATES[s] for s in spec.plugin.stages],  # the store's state machine follows them
            "warnings": list(warnings),  # pre-flight: carried into the result, the CLI and the report
        }
        created = self.store.create_job(spec.job_id, spec.algorithm, record)
        self.log.info("job created", extra={"job": spec.job_id, "fields": {"algorithm": spec.algorithm}})
        return created

    # ------------------------------------------------------------------------------------------------ run
    def run(self, job_id: str, *, resume: bool = False) -> dict[str, Any]:
        """Drive ``job_id`` to ``done`` (automatic resumes after silo failures); return the result."""
        job = self.store.job(job_id)
        if job.state in TERMINAL_STATES:
            raise ArbiterError(f"job {job_id!r} is already {job.state}")
        spec = JobSpec.from_dict(job.spec["spec"])
        parties = job_parties(job)
        pool = self.pool(parties)
        log = job_logger("fedrisk.arbiter", self.config.party_id, job_id)
        stages = tuple(STAGE_STATES[s] for s in spec.plugin.stages)
        if job.state in ALL_STAGES:  # the arbiter itself stopped mid-job: fail that attempt and abort it at the silos
            job = self.store.transition(job_id, FAILED, error="arbiter restarted while the job was running")
            self._abort(job, pool)
        if job.state == FAILED and not resume:
            raise ArbiterError(f"job {job_id!r} failed at {job.stage}: {job.error}; "
                               f"continue it with `fedrisk arbiter resume {job_id}`")
        self._start_node(parties)
        retries = int(job.spec.get("retries", 3))
        deadline = float(job.spec.get("silo_deadline", 120.0))
        while True:
            job = self.store.job(job_id)
            start = stages.index(job.stage) if job.state == FAILED and job.stage in stages else 0
            if job.state == FAILED:
                pool.wait(spec, job.spec.get("schema_digests", {}), deadline, log,
                          resume_hint=f" continue later with `fedrisk arbiter resume {job.id}`")
            try:
                return self._run_stages(job, spec, pool, stages[start:], log)
            except (SiloUnavailable, ChannelError) as exc:
                job = self.store.job(job_id)
                if job.state != FAILED:
                    job = self.store.transition(job_id, FAILED, error=str(exc))
                log.warning("attempt failed", extra={"fields": {"attempt": job.attempt, "stage": job.stage,
                                                                "error": str(exc)[:200]}})
                self._abort(job, pool)
                if retries <= 0:
                    raise ArbiterError(f"job {job_id!r} failed at {job.stage}: {exc}; continue it with "
                                       f"`fedrisk arbiter resume {job_id}` once every silo is up") from exc
                retries -= 1
            except BaseException as exc:
                job = self.store.job(job_id)
                if job.state not in (FAILED, *TERMINAL_STATES):
                    reason = "interrupted (Ctrl-C or SIGTERM)" if isinstance(exc, KeyboardInterrupt) \
                        else f"{type(exc).__name__}: {exc}"
                    self.store.transition(job_id, FAILED, error=reason)
                self._abort(self.store.job(job_id), pool)
                raise

    def resume(self, job_id: str) -> dict[str, Any]:
        return self.run(job_id, resume=True)

    def status(self, job_id: str | None = None) -> list[JobRecord]:
        return [self.store.job(job_id)] if job_id else self.store.jobs()

    # ------------------------------------------------------------------------------------------ stage loop
    def _abort(self, job: JobRecord, pool: SiloPool, op: str = "abort") -> None:
        """Cancel the attempt's roles and close its transport keys here and at every reachable silo."""
        keys = [job.stage_key(stage) for stage in ALL_STAGES]
        if self._node is not None:
            for key in keys:
                with contextlib.suppress(Exception):
                    self._node.close_job(key)
        pool.abort(keys, op)

    def _run_stages(self, job: JobRecord, spec: JobSpec, pool: SiloPool, stages: tuple[str, ...], log: Log
                    ) -> dict[str, Any]:
        """Run ``stages`` (job states, in the algorithm's order); the evaluation stage gives the result."""
        resumed = job.state == FAILED
        result: dict[str, Any] = {}
        for i, stage in enumerate(stages):
            job = self.store.transition(job.id, stage, new_attempt=resumed and i == 0)
            log.info("stage", extra={"fields": {"state": stage, "attempt": job.attempt}})
            if stage == ALIGNING:
                self._align(job, spec, pool)
            elif stage == TRAINING:
                self._train(job, spec, pool, resumed and i == 0, log)
            elif stage == EVALUATING:
                result = self._evaluate(job, spec, pool, log)
        if EVALUATING not in stages and TRAINING in stages:  # nothing to score: the report is the result
            result = self._finish_without_evaluation(job, spec, pool, log)
        return result

    def _align(self, job: JobRecord, spec: JobSpec, pool: SiloPool) -> None:
        bar = tqdm(total=len(pool.parties), desc="PSI alignment", unit="silo", disable=not self.progress, leave=True)
        calls = pool.stage_calls("align", spec, job.stage_key(ALIGNING))

        def counted(fn: Callable[[], Any]) -> Callable[[], Any]:
            def inner() -> Any:
                out = fn()
                bar.update(1)
                return out
            return inner

        try:
            out = pool.parallel({k: counted(v) for k, v in calls.items()}, lambda: self._abort(job, pool))
        finally:
            bar.close()
        self._keep_ledgers(job, out)
        counts = {pid: r["aligned"] for pid, r in out.items()}
        if len(set(counts.values())) != 1:
            raise JobError(f"job {job.id!r}: silos disagree on the aligned row count: {counts}")
        self.log.info("aligned", extra={"job": job.id, "fields": {
            "rows": next(iter(counts.values())), "evaluation": next(iter(out.values()))["evaluation"]}})

    def _resume_step(self, job: JobRecord, spec: JobSpec, pool: SiloPool) -> int:
        """Newest checkpoint step that every party (silos and the arbiter's role) holds; -1 if none."""
        common: set[int] | None = {s for _, s, _ in self.store.checkpoints(job.id, self.config.party_id)}
        for pid in pool.parties:
            steps = set(pool.call(pid, "checkpoints", timeout=10.0, spec=spec.to_dict())["steps"])
            common = steps if common is None else common & steps
        return max(common) if common else -1

    def _train(self, job: JobRecord, spec: JobSpec, pool: SiloPool, resumed: bool, log: Log) -> None:
        assert self._node is not None
        plugin = spec.plugin
        # A fresh run ignores any stale checkpoint (cap -1); a resumed run hands every role its latest
        # checkpoint and the protocol's setup agrees the restart step (parties may be one step apart).
        resume_step = self._resume_step(job, spec, pool) if resumed else -1
        cap = None if resumed else -1
        log.info("training", extra={"fields": {"attempt": job.attempt, "common_checkpoint": resume_step}})
        steps = plugin.steps(spec.typed_params)
        bar = tqdm(total=steps, desc="training steps", unit="step", disable=not self.progress, leave=True,
                   initial=max(resume_step + 1, 0) if steps else 0)
        key = job.stage_key(TRAINING)
        cancelled = threading.Event()
        channel = CancellableChannel(self._node.channel(key, (*spec.parties.silos, spec.parties.arbiter)), cancelled)
        arbiter_ledger = Ledger(self.config.party_id, spec.parties, declared(plugin))

        def on_save(step: int, digest: str) -> None:
            bar.n = min(step + 1, steps or step + 1)
            bar.refresh()
            log.info("step", extra={"fields": {"step": step, "sha256": digest[:12]}})

        checkpoint = SqliteCheckpoint(_StoreCheckpointAdapter(self.store, self.config.party_id),  # type: ignore[arg-type]
                                      job.id, max_step=cap, on_save=on_save)
        calls = pool.stage_calls("train", spec, key, resume_step=cap)
        arbiter_done = threading.Event()
        if plugin.survives_silo_loss:  # a silo that dies is waited for and rejoins; the others go on
            calls = {pid: _rejoining(pool, pid, fn, spec, key, arbiter_done, cancelled, log)
                     for pid, fn in calls.items()}
        if plugin.arbiter is not None:  # the arbiter plays a role (key holder, aggregator)
            executor = shared_executor()
            ctx = RoleContext(job_id=job.id, party_id=self.config.party_id, role="arbiter", parties=spec.parties,
                              params=spec.typed_params, seed=spec.seed, checkpoint=checkpoint, executor=executor,
                              workers=executor.workers)

            def arbiter_role() -> Any:
                try:
                    return plugin.export_part(plugin.trainer(ctx, None).run(arbiter_ledger.channel(channel, "train")))
                finally:
                    arbiter_done.set()
            calls["__arbiter__"] = arbiter_role
        else:  # no arbiter role: the silos' checkpoints drive the progress bar
            calls["__arbiter__"] = lambda: None

        def on_error() -> None:
            cancelled.set()
            self._abort(job, pool)

        t0 = time.perf_counter()
        try:
            out = pool.parallel(calls, on_error)
        finally:
            bar.close()
        arbiter_part = out.pop("__arbiter__")
        gone = sorted(pid for pid, reply in out.items() if reply is None)
        if gone:
            raise ArbiterError(f"job {job.id!r}: silos {gone} left training and were not back before it ended; "
                               f"continue with `fedrisk arbiter resume {job.id}` once they are up")
        self._keep_ledgers(job, out)
        if plugin.arbiter is not None:
            self._keep_ledgers(job, {self.config.party_id: {"ledger": arbiter_ledger.summary()}})
        for pid, reply in out.items():
            for step, digest in reply.get("checkpoints", []):
                self.store.record_checkpoint(job.id, pid, int(step), str(digest))
        diagnostics = plugin.training_diagnostics(spec.typed_params, arbiter_part)
        for warning in diagnostics.get("warnings", []):  # loud: the job record, the CLI and the report carry it
            log.warning("model check", extra={"fields": {"warning": warning}})
        self.store.record_training(job.id, {
            "diagnostics": diagnostics,
            "part_hashes": {pid: r["part_sha256"] for pid, r in out.items()},
            "train_rows": _rows(plugin, spec, {pid: r["train_rows"] for pid, r in out.items()}),
            "training_time_s": round(time.perf_counter() - t0, 2),
            "arbiter_part": arbiter_part, "ledgers": self._ledger_summaries(job),
            "report_sections": {pid: check_sections(r["report_sections"], f"silo {pid!r}")
                                for pid, r in out.items() if r.get("report_sections")}})

    def _evaluate(self, job: JobRecord, spec: JobSpec, pool: SiloPool, log: Log) -> dict[str, Any]:
        expected = job.spec.get("schema_digests", {})
        pool.check(spec, expected=expected)  # refuse a silo whose columns changed since training
        out = pool.parallel(pool.stage_calls("evaluate", spec, job.stage_key(EVALUATING)),
                            lambda: self._abort(job, pool))
        plugin = spec.plugin
        metric_parties = plugin.metric_parties(spec.parties)
        metrics = plugin.combine_metrics({pid: out[pid]["metrics"] for pid in metric_parties})
        training = self.store.job(job.id).training
        if training is None:
            raise ArbiterError(f"job {job.id!r}: no training summary; resume it at the training stage")
        model = {"job_id": job.id, "algorithm": spec.algorithm, "params": spec.params, "seed": spec.seed,
                 "parties": spec.parties.to_dict(), "schema_digests": expected,
                 "part_hashes": training["part_hashes"], "arbiter_part": training["arbiter_part"]}
        headline = {k: metrics.get(k) for k in ("auc", "ks", "gini", "n", "n_bad")}
        evaluation_warnings = [*small_evaluation_warnings(metrics.get("n"), metrics.get("n_bad")),
                               *calibration_warnings(metrics)]
        for warning in evaluation_warnings:
            log.warning("evaluation check", extra={"fields": {"warning": warning}})
        diagnostics = dict(training.get("diagnostics") or {})
        warnings = [*job.spec.get("warnings", []), *diagnostics.get("warnings", []), *evaluation_warnings]
        if warnings != list(diagnostics.get("warnings", [])):  # the job record and the report carry them all
            training = {**training, "diagnostics": {**diagnostics, "warnings": warnings}}
            self.store.record_training(job.id, training)
        result = {"metrics": headline, "training_time_s": training["training_time_s"],
                  "warnings": warnings,
                  "evaluation_rows": _rows(plugin, spec, {pid: r["evaluation_rows"] for pid, r in out.items()}),
                  "train_rows": training["train_rows"]}
        record = self.store.register_model(job.id, spec.name, spec.algorithm, spec.params, headline, model,
                                           result=result)
        self._abort(job, pool, op="close")
        for pid in pool.parties:  # silos key their private part by the registry id too (best effort: the
            try:                  # part stays reachable by job id)
                pool.call(pid, "name_model", timeout=10.0, spec=spec.to_dict(), model_id=record.id)
            except ControlError as exc:
                log.warning("could not name the model at a silo", extra={"fields": {"error": str(exc)[:200]}})
        result["model_id"] = record.id
        result["content_hash"] = record.content_hash
        stored = training.get("ledgers") or {}  # align + train (stored with the training summary)
        ledgers = {pid: merged for pid in sorted(set(stored) | set(out))
                   if (merged := merge_summaries([stored.get(pid) or {}, out.get(pid, {}).get("ledger") or {}]))}
        result["ledger"] = {pid: {k: v[k] for k in ("role", "messages", "bytes", "undeclared")}
                            for pid, v in ledgers.items() if v}
        result["report"] = self._write_report(record, self.store.job(job.id), metrics, ledgers)
        self.store.record_evaluation(record.id, job_id=job.id, threshold=0.5, rows=result["evaluation_rows"],
                                     headline=headline_metrics(metrics), metrics=metrics,
                                     schema_digests=expected, reports=result["report"])
        log.info("done", extra={"fields": {"model": record.id, "auc": f"{headline['auc']:.4f}",
                                           "ks": f"{headline['ks']:.4f}"}})
        result["full_metrics"] = metrics
        return result

    def _keep_ledgers(self, job: JobRecord, replies: dict[str, Any]) -> None:
        """Remember each party's ledger summary of a stage (the silos return them with their reply)."""
        for pid, reply in replies.items():
            summary = reply.get("ledger") if isinstance(reply, dict) else None
            if summary:
                self._ledgers.setdefault(job.id, {}).setdefault(pid, []).append(summary)

    def _ledger_summaries(self, job: JobRecord) -> dict[str, Any]:
        """Per party: the merged ledger of the stages this process ran for ``job`` so far."""
        return {pid: merged for pid, parts in sorted(self._ledgers.get(job.id, {}).items())
                if (merged := merge_summaries(parts))}

    def _write_report(self, record: ModelRecord, job: JobRecord, metrics: dict[str, Any],
                      ledgers: dict[str, Any] | None = None) -> list[str]:
        card = model_card(record, job, metrics=metrics)
        html_path, json_path = write_report(Path(self.config.reports), metrics, card, stem=job.id,
                                            ledgers=ledgers,
                                            sections=evaluation_sections(metrics) + _plugin_sections(job))
        return [str(html_path), str(json_path)]

    def _finish_without_evaluation(self, job: JobRecord, spec: JobSpec, pool: SiloPool, log: Log
                                   ) -> dict[str, Any]:
        """A job whose algorithm has no evaluation stage (nothing to score): report the parties' sections."""
        job = self.store.job(job.id)
        training = job.training
        if training is None:
            raise ArbiterError(f"job {job.id!r}: no training summary; resume it at the training stage")
        self._abort(job, pool, op="close")
        card = {"name": spec.name, "algorithm": spec.algorithm, "job_id": job.id, "parties": spec.parties.to_dict(),
                "features_per_party": job.spec.get("features", {}), "parameters": spec.params,
                "training_time_s": training.get("training_time_s"),
                "privacy_notes": [d.what for d in spec.plugin.disclosures if d.receiver == "arbiter"]}
        html_path, json_path = write_report(Path(self.config.reports), {}, card, stem=job.id,
                                            sections=_plugin_sections(job))
        result = {"job_id": job.id, "report": [str(html_path), str(json_path)],
                  "training_time_s": training["training_time_s"], "train_rows": training["train_rows"]}
        self.store.transition(job.id, DONE, note="report", result=result)
        log.info("done", extra={"fields": {"report": str(html_path)}})
        return {**result, "report_sections": training.get("report_sections", {})}


def _plugin_sections(job: JobRecord) -> list[dict[str, Any]]:
    """The report sections the silos' plug-in roles returned after training, party by party."""
    spec = JobSpec.from_dict(job.spec["spec"])
    sections = (job.training or {}).get("report_sections", {})
    return [sec for pid in spec.parties.silos for sec in sections.get(pid, [])]


def _rejoining(pool: SiloPool, pid: str, call: Callable[[], Any], spec: JobSpec, key: str, done: threading.Event,
               cancelled: threading.Event, log: Log) -> Callable[[], Any]:
    """A silo's training call that survives the silo's death (plug-ins with ``survives_silo_loss``): wait until
    the silo answers again, then call it again (its role rejoins from its latest checkpoint); ``None`` if the
    stage ended first."""
    def again() -> Any:
        return pool.call(pid, "train", timeout=None, spec=spec.to_dict(), key=key, resume_step=None)

    def run() -> Any:
        attempt = call
        while True:
            try:
                return attempt()
            except SiloUnavailable as exc:
                log.warning("silo lost during training; the others go on", extra={"fields": {
                    "silo": pid, "error": str(exc)[:200]}})
            while not (done.is_set() or cancelled.is_set()):
                try:
                    pool.call(pid, "check", timeout=3.0, spec=spec.to_dict())
                    break
                except SiloUnavailable:
                    time.sleep(0.5)
            else:
                return None
            log.info("silo is back; it rejoins training", extra={"fields": {"silo": pid}})
            attempt = again

    return run


MIN_EVALUATION_ROWS = 200  # below these, AUC / KS / Gini move by several points from a few rows more or less
MIN_EVALUATION_BADS = 20


def small_evaluation_warnings(n: Any, n_bad: Any) -> list[str]:
    """A warning when the evaluation set is too small for stable metrics (rows or bads below the minimums)."""
    if not isinstance(n, int | float) or not isinstance(n_bad, int | float):
        return []
    if n >= MIN_EVALUATION_ROWS and n_bad >= MIN_EVALUATION_BADS:
        return []
    return [f"the evaluation set is small ({int(n)} rows, {int(n_bad)} bads; stable metrics need at least "
            f"{MIN_EVALUATION_ROWS} rows and {MIN_EVALUATION_BADS} bads): AUC, KS and Gini may move by several "
            "points with a different split; raise holdout or evaluate on more data (`fedrisk evaluate`)"]


CALIBRATION_RATIO = 1.25  # mean PD over observed bad rate (or its inverse) above which the report warns


def calibration_warnings(metrics: dict[str, Any]) -> list[str]:
    """A warning when the model's mean predicted probability is far from the observed bad rate on the evaluation
    rows (calibration-in-the-large), with enough bads for the comparison to mean something."""
    mean, rate, n_bad = metrics.get("mean_predicted"), metrics.get("bad_rate"), metrics.get("n_bad")
    if not all(isinstance(v, int | float) for v in (mean, rate, n_bad)) or n_bad < MIN_EVALUATION_BADS \
            or not 0 < rate < 1 or mean <= 0:
        return []
    ratio = mean / rate
    if 1 / CALIBRATION_RATIO <= ratio <= CALIBRATION_RATIO:
        return []
    return [f"calibration-in-the-large: the model predicts {mean:.2%} bads on average for {rate:.2%} observed on the "
            f"evaluation rows ({ratio:.2f}x); its ranking metrics (AUC, KS, Gini) are unaffected, but recalibrate "
            "its intercept on recent data before using the scores as PDs"]


def _rows(plugin: Algorithm, spec: JobSpec, per_party: dict[str, int]) -> int:
    """A job's row count from the silos' counts: aligned rows (vertical: every silo holds the same rows,
    the label holder's count is taken) or the sum over the silos (horizontal)."""
    if plugin.topology == "vertical":
        label_role = plugin.label_role
        holders = spec.parties.of(label_role) if label_role else ()
        return int(per_party[holders[0]] if holders else next(iter(per_party.values())))
    return int(sum(per_party.values()))


__all__ = ["QUEUED", "ArbiterError", "ArbiterService", "job_parties"]
