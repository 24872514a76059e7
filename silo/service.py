"""``fedrisk silo serve``: one silo as a long-running service.

On start the silo reads and validates its table (a bad table stops it with an error naming the column
and row, before it listens), opens its local store, starts its data-plane node
(:class:`federation.grpc_transport.PartyNode`, mutual TLS) and its control server
(:class:`silo.control.ControlServer`, accepting calls from the arbiter only). Each control request runs
one job stage (:class:`silo.jobs.SiloWorker`) on the transport channel of key
``f"{job_id}.{attempt}.{stage}"``, so messages of an aborted attempt can never reach the next one.

What it reveals to whom: see :mod:`silo.control` (to the arbiter) and :mod:`silo.jobs` (to peers).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import signal
import threading
from typing import Any

from algorithms.secagg.signing import CertificateVerifier, EcSigner
from federation.grpc_transport import PartyNode
from silo.compute import open_compute
from silo.config import SiloConfig
from silo.control import ControlServer, SiloStopping
from silo.data import load_table
from silo.jobs import CancellableChannel, JobError, JobSpec, SiloWorker
from silo.logs import job_logger
from silo.store import SiloStore, SqliteCheckpoint

_log = logging.getLogger("fedrisk.silo")
STOP_GRACE_S = 5.0  # how long a graceful stop lets in-flight control calls answer


class SiloService:
    """A silo: validated data, local store, data-plane node and control server."""

    def __init__(self, config: SiloConfig) -> None:
        self.config = config
        self.table = load_table(config.data, config.party_id)  # DataError before anything listens
        self.tls = config.tls.load()
        self.store = SiloStore(config.store)
        self.compute = open_compute(config.compute)  # the process pool, or a Dask cluster inside the silo
        self.worker = SiloWorker(config.party_id, config.role, self.table, self.store, export_dir=config.exports,
                                 executor=self.compute.executor, workers=self.compute.workers,
                                 psi_floor=config.psi_floor, consent=config.consent,
                                 sources={name: functools.partial(load_table, ds, config.party_id)
                                          for name, ds in config.sources.items()},
                                 signer=EcSigner.from_pem(config.party_id, self.tls.key_pem, self.tls.cert_pem),
                                 verifier=CertificateVerifier(self.tls.ca_pem))  # secure aggregation
        self.node = PartyNode(config.party_id, config.listen, self.tls, config.peers)
        self.control: ControlServer | None = None
        self._cancel: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._going_away = threading.Event()  # set once stop() begins: in-flight stages reply "stopping"
        self.log = job_logger("fedrisk.silo", config.party_id)

    # lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> SiloService:
        self.node.start()
        try:
            self.control = ControlServer(self.config.control, self.tls, self.handle, self.config.arbiter).start()
        except Exception:
            self.node.stop()
            raise
        self.log.info("serving", extra={"fields": {
            "listen": self.node.address, "control": f"{self.config.control.rsplit(':', 1)[0]}:{self.control.port}",
            "rows": len(self.table.ids), "schema": self.table.schema_digest[:12], "role": self.config.role,
            "numeric": len(self.table.numeric),  # which columns are one-hot encoded (strings, or [data] categorical)
            "categorical": ",".join(self.table.categorical) or "none"}})
        return self

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._going_away.set()
        self.log.info("stopping: in-flight stages are cut short and told to the arbiter")
        with self._lock:
            for event in self._cancel.values():
                event.set()
        if self.control is not None:  # long enough for the cut-short stages to send their "stopping" reply
            self.control.stop(grace=STOP_GRACE_S)
        self.node.stop(grace=0.5)
        self.store.close()
        self.compute.close()
        self.log.info("stopped")

    def serve_forever(self) -> None:
        """Serve until SIGTERM/SIGINT or a ``shutdown`` request."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._stopped.set())
        try:
            while not self._stopped.wait(0.5):
                pass
        finally:
            self._stopped.clear()
            self.stop()

    # control requests ----------------------------------------------------------------------------------
    def _channel(self, key: str, spec: JobSpec) -> CancellableChannel:
        with self._lock:
            event = self._cancel.setdefault(key, threading.Event())
        parties = (*spec.parties.silos, spec.parties.arbiter)  # the data plane accepts the job's parties only
        return CancellableChannel(self.node.channel(key, parties), event)

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._handle(request)
        except Exception as exc:
            if self._going_away.is_set():  # cut short by a graceful stop, not a failure of the stage
                raise SiloStopping(f"silo {self.config.party_id!r} is stopping ({type(exc).__name__}: {exc}); "
                                   "its checkpoints are kept") from exc
            raise

    def _handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "check":
            status = self.worker.status()
            if "spec" in request:
                self.worker.check_role(JobSpec.from_dict(request["spec"]))
            if request.get("model_id"):  # evaluation ahead: the part exists and the columns are unchanged
                self.worker.model_part(str(request["model_id"]))
            if request.get("probe"):  # the data-plane links this silo will use for the job, tried now
                status["peers"] = self._probe([str(p) for p in request["probe"]],
                                              float(request.get("probe_timeout", 5.0)))
            return status
        if op == "shutdown":
            self._stopped.set()
            return {}
        if op in ("abort", "close"):  # close: the job is done, free its mailboxes and refuse late messages
            self._abort(list(request.get("keys", [])), verb="aborted" if op == "abort" else "closed")
            return {}
        spec = JobSpec.from_dict(request["spec"])
        log = job_logger("fedrisk.silo", self.config.party_id, spec.job_id)
        if op == "checkpoints":
            return {"steps": self.store.checkpoint_steps(spec.job_id)}
        if op == "name_model":
            self.store.name_model(str(request["model_id"]), spec.job_id)
            log.info("model named", extra={"fields": {"model": request["model_id"]}})
            return {}
        key = str(request["key"])
        if op == "align":
            log.info("align start", extra={"fields": {"key": key}})
            out = self.worker.align(spec, self._channel(key, spec))
            log.info("align done", extra={"fields": {k: v for k, v in out.items() if k != "ledger"}})
            return out
        if op == "train":
            resume_step = request.get("resume_step")
            checkpoint = SqliteCheckpoint(
                self.store, spec.job_id, max_step=resume_step,
                on_save=lambda step, digest: log.info("checkpoint", extra={"fields": {"step": step,
                                                                                     "sha256": digest[:12]}}))
            log.info("train start", extra={"fields": {"key": key, "resume_step": resume_step}})
            out = self.worker.train(spec, self._channel(key, spec), checkpoint)
            out["checkpoints"] = self.store.checkpoint_digests(spec.job_id)
            log.info("train done", extra={"fields": {"part_sha256": out["part_sha256"][:12]}})
            return out
        if op == "evaluate" and request.get("source"):
            log.info("evaluate start", extra={"fields": {"key": key, "source": request["source"]}})
            model_id = request.get("model_id")
            out = self.worker.evaluate_out_of_time(spec, self._channel(key, spec), str(request["source"]),
                                                   model_id=str(model_id) if model_id else None,
                                                   threshold=float(request.get("threshold", 0.5)))
            log.info("evaluate done", extra={"fields": {"rows": out["evaluation_rows"], "new_rows": out["new_rows"]}})
            return out
        if op == "evaluate":
            log.info("evaluate start", extra={"fields": {"key": key}})
            model_id = request.get("model_id")
            out = self.worker.evaluate(spec, self._channel(key, spec), model_id=str(model_id) if model_id else None,
                                       threshold=float(request.get("threshold", 0.5)),
                                       export_scores=request.get("export_scores") or None)
            done: dict[str, Any] = {"rows": out["evaluation_rows"]}
            if out.get("exported") and self.config.exports is not None:  # where the scores are, in full
                done["exported"] = str((self.config.exports / out["exported"]).resolve())
            log.info("evaluate done", extra={"fields": done})
            return out
        raise JobError(f"unknown control operation {op!r}")

    def _probe(self, parties: list[str], timeout: float) -> dict[str, dict[str, str | None]]:
        """Per peer of its [peers] table: the address there and ``None`` or why the link fails (in parallel,
        each bounded by ``timeout``). Parties without an entry are left out (a horizontal client talks to the
        aggregator only; a missing entry a protocol needs fails at once with "no address" anyway)."""
        found: dict[str, dict[str, str | None]] = {}

        def one(pid: str) -> None:
            found[pid] = {"address": self.node.peers.get(pid), "error": self.node.probe(pid, timeout)}

        threads = [threading.Thread(target=one, args=(pid,), daemon=True) for pid in parties  # a peer it has no
                   if pid != self.config.party_id and pid in self.node.peers]  # entry for: not its protocol's
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout + 2.0)
        for pid, reply in found.items():
            if reply["error"]:
                self.log.warning("peer not reachable", extra={"fields": {"peer": pid, "error": reply["error"]}})
        return found

    def _abort(self, keys: list[str], verb: str = "aborted") -> None:
        for key in keys:
            with self._lock:
                event = self._cancel.setdefault(key, threading.Event())
            event.set()
            with contextlib.suppress(Exception):  # already closed
                self.node.close_job(key)
            with self._lock:
                self._cancel.pop(key, None)
            self.log.info(verb, extra={"fields": {"key": key}})
