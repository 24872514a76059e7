"""What a silo does for a job, stage by stage, over a :class:`~federation.channel.Channel`.

:class:`JobSpec` is the job as the arbiter sends it (algorithm, parameters, parties, hold-out fraction,
salt, seed). :class:`SiloWorker` runs one silo's side of each stage:

* ``align`` (algorithms whose stages include it): PSI between the label holder and each other silo (the
  plug-in's :meth:`~algorithms.api.Algorithm.aligner`, by default :mod:`algorithms.psi`); the aligned ids
  are sorted and split into train / evaluation by :func:`holdout_mask` (SHA-256 of salt and id, so every
  silo gets the same split without exchanging rows). Stored locally. Without an align stage (horizontal)
  a silo's rows are its own ids, split by the same hash.
* ``train``: fit local preprocessing on the training rows, hand the algorithm's trainer role a
  :class:`~algorithms.api.PartyData` and a :class:`~algorithms.api.RoleContext`, ``role.run``, keep the
  private model part (role result + preprocessing + schema digest) in the silo's store.
* ``evaluate``: federated scoring of the training and evaluation rows with the algorithm's predictor role
  (the job's model, or a registered model by id for ``fedrisk evaluate``; refused if the silo's columns
  changed since training); each metric role (the plug-in's ``metric_roles``) turns scores and labels into
  aggregate metrics (:mod:`silo.evaluation`), which are all the arbiter gets. On request it also writes
  ``id, score`` to a CSV inside its own export folder. With a named data source (``[data.NAME]``, e.g. a
  later month) it is an out-of-time evaluation: the new sample is aligned by its own PSI, every party
  computes the CSI of its own characteristics, the label holder adds the new sample's metrics and bootstrap
  intervals (:meth:`SiloWorker.evaluate_out_of_time`).
* after training, the plug-in's report sections of the party's result (``Algorithm.report_sections``) go
  back with the reply; the silo's ``[consent]`` flags reach its roles in ``RoleContext.extra``.

The same worker code runs in threads over :class:`~federation.channel.InMemoryNetwork` (the in-process
simulation) and in separate processes over gRPC, so both give identical models.

What it reveals to whom: PSI reveals the intersection to guest and host (see :mod:`algorithms.psi`);
training reveals what the algorithm's module documents; evaluation sends the host's partial scores of
the evaluation rows to the guest (as in FATE's hetero prediction) and only aggregate metrics to the
arbiter (out of time also each party's CSI per characteristic; a host names its characteristics only with
its ``share_feature_names`` consent). The arbiter gets counts, digests and hashes from the silos, never rows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from algorithms import catalogue
from algorithms.api import Algorithm, AlgorithmParams, PartyData, RoleContext
from algorithms.base import Checkpoint, Parties
from algorithms.ledger import Ledger, declared
from algorithms.secagg.signing import Signer, Verifier
from algorithms.stability import bootstrap_intervals, characteristic_stability
from federation.channel import Channel, ChannelError, ChannelTimeout, PrefixedChannel
from silo.data import DataError, LocalTable, schema_changes
from silo.evaluation import UnsafePathError, evaluate_at_guest, export_scores_csv, guest_only_baseline
from silo.preprocess import Preprocessor
from silo.store import SiloStore

_log = logging.getLogger("fedrisk.silo")
VERSION = "fedrisk-services/1"


class JobError(RuntimeError):
    """A job cannot run as specified (unknown algorithm, missing alignment, schema changed, ...)."""


class JobCancelled(ChannelError):
    """The arbiter aborted this attempt of the job."""


@dataclass(frozen=True)
class JobSpec:
    """A federated job as agreed by all parties (sent by the arbiter with every stage request)."""

    job_id: str
    algorithm: str
    parties: Parties
    params: dict[str, Any] = field(default_factory=dict)
    holdout: float = 0.2
    salt: str = ""
    seed: int = 42
    name: str = "model"
    min_intersection: int = 100

    def __post_init__(self) -> None:
        if not self.salt:  # stable per federation: the same parties hold out the same customers in every job,
            object.__setattr__(self, "salt", federation_salt(self.parties))  # so their reports compare
        if not 0.0 <= self.holdout < 1.0:
            raise JobError(f"job {self.job_id!r}: holdout must be in [0, 1), not {self.holdout}")
        self.plugin.check_parties(self.parties)
        _ = self.typed_params  # refuse bad parameters before any stage runs

    @property
    def plugin(self) -> Algorithm:
        """The job's algorithm (:class:`algorithms.catalogue.UnknownAlgorithm` if it is not catalogued)."""
        return catalogue.get(self.algorithm)

    @cached_property
    def typed_params(self) -> AlgorithmParams:
        """The job's parameters, parsed once (the job's seed fills the parameters' seed if not given)."""
        return self.plugin.parse_params(self.params, seed=self.seed)

    def to_dict(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "algorithm": self.algorithm, "parties": self.parties.to_dict(),
                "params": self.params, "holdout": self.holdout, "salt": self.salt, "seed": self.seed,
                "name": self.name, "min_intersection": self.min_intersection}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> JobSpec:
        return JobSpec(job_id=d["job_id"], algorithm=d["algorithm"], parties=Parties.from_dict(d["parties"]),
                       params=dict(d.get("params", {})), holdout=float(d.get("holdout", 0.2)),
                       salt=str(d.get("salt", "")), seed=int(d.get("seed", 42)), name=str(d.get("name", "model")),
                       min_intersection=int(d.get("min_intersection", 100)))


def federation_salt(parties: Parties) -> str:
    """The default hold-out salt: derived from the silos' ids only (not random per job), so two models trained
    by the same federation on the same data are evaluated on the same rows."""
    return "federation-" + hashlib.sha256(",".join(sorted(parties.silos)).encode()).hexdigest()[:24]


def evaluation_set_digest(ids: np.ndarray) -> str:
    """SHA-256 of the sorted evaluation ids: two reports with the same digest scored the same customers."""
    return hashlib.sha256("\n".join(sorted(str(i) for i in ids)).encode()).hexdigest()


def holdout_mask(ids: np.ndarray, salt: str, fraction: float) -> np.ndarray:
    """True for ids in the evaluation set: SHA-256(salt || id) read as a number in [0, 1) < fraction."""
    prefix = salt.encode()
    values = np.array([int.from_bytes(hashlib.sha256(prefix + str(i).encode()).digest()[:8], "big") / 2.0**64
                       for i in ids], dtype=np.float64)
    return values < fraction


class CancellableChannel(Channel):
    """Wraps a channel so a blocked ``recv`` notices when the attempt is aborted."""

    def __init__(self, inner: Channel, cancelled: threading.Event, poll: float = 0.5) -> None:
        super().__init__(inner.party_id)
        self._inner = inner
        self._cancelled = cancelled
        self._poll = poll

    def send(self, receiver: str, tag: str, payload: dict[str, Any]) -> None:
        if self._cancelled.is_set():
            raise JobCancelled(f"{self.party_id}: attempt aborted")
        self._inner.send(receiver, tag, payload)

    def recv(self, sender: str, tag: str, timeout: float | None = None) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:  # the inner channel is asked at least once, so timeout=0 polls
            if self._cancelled.is_set():
                raise JobCancelled(f"{self.party_id}: attempt aborted while waiting for {tag!r} from {sender!r}")
            remaining = None if deadline is None else deadline - time.monotonic()
            wait = self._poll if remaining is None else max(0.0, min(self._poll, remaining))
            try:
                return self._inner.recv(sender, tag, timeout=wait)
            except ChannelTimeout:
                if remaining is not None and remaining <= wait:
                    raise ChannelTimeout(f"{self.party_id} timed out waiting for {tag!r} from {sender!r}") from None


class SiloWorker:
    """One silo's side of every job stage (transport-free: stages take a channel)."""

    def __init__(self, party_id: str, role: str, table: LocalTable, store: SiloStore,
                 export_dir: Path | None = None, executor: Executor | None = None, workers: int = 1,
                 psi_floor: int = 100, consent: dict[str, bool] | None = None,
                 sources: Mapping[str, Callable[[], LocalTable]] | None = None,
                 signer: Signer | None = None, verifier: Verifier | None = None) -> None:
        self.party_id = party_id
        self.psi_floor = psi_floor  # this silo's own PSI minimum (config [psi]); a job spec cannot lower it
        self.consent = dict(consent or {})
        self.sources = dict(sources or {})  # named data sources (e.g. an out-of-time sample), loaded on use
        self.security = {"signer": signer, "verifier": verifier} if signer is not None else {}
        self.role = role
        self.table = table
        self.store = store
        self.export_dir = export_dir
        self.executor = executor  # where every role's heavy loops run (None: inline); reaches them via RoleContext
        self.workers = workers

    # --- status -------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {"party": self.party_id, "role": self.role, "schema_digest": self.table.schema_digest,
                "version": VERSION, "rows": len(self.table.ids), "features": len(self.table.features.columns)}

    def check_role(self, spec: JobSpec) -> None:
        """Refuse a job that does not list this silo, or lists it under another role than its config's."""
        expected = spec.parties.role_of(self.party_id)
        if expected is None or expected == "arbiter":
            raise JobError(f"party {self.party_id!r} is not in job {spec.job_id!r} ({spec.parties.to_dict()})")
        if expected != self.role:
            raise JobError(f"job {spec.job_id!r} names {self.party_id!r} as {expected}, but it is configured "
                           f"as {self.role}")

    def context(self, spec: JobSpec, checkpoint: Checkpoint | None = None, namespace: str = "",
                extra: Mapping[str, Any] | None = None) -> RoleContext:
        """The :class:`RoleContext` of this silo's role in ``spec`` (``extra`` adds to its ``extra``)."""
        return RoleContext(job_id=spec.job_id, party_id=self.party_id, role=self.role, parties=spec.parties,
                           params=spec.typed_params, seed=spec.seed, checkpoint=checkpoint, executor=self.executor,
                           workers=self.workers, namespace=namespace,
                           extra={"salt": spec.salt, "min_intersection": spec.min_intersection,
                                  "psi_floor": self.psi_floor, **self.consent, **self.security, **(extra or {})})

    # --- privacy ledger -------------------------------------------------------------------------------
    def ledger(self, spec: JobSpec) -> Ledger:
        """A fresh ledger of what this silo receives in ``spec``, against the plug-in's disclosures."""
        return Ledger(self.party_id, spec.parties, declared(spec.plugin))

    def _keep_ledger(self, spec: JobSpec, stage: str, ledger: Ledger) -> None:
        self.store.save_ledger(spec.job_id, stage, [e.to_dict() for e in ledger.entries])

    # --- align --------------------------------------------------------------------------------------
    def align(self, spec: JobSpec, channel: Channel | None) -> dict[str, Any]:
        """PSI with the peers (when the algorithm has an ``align`` stage), then the hash split; returns counts
        only."""
        self.check_role(spec)
        existing = self.store.alignment(spec.job_id)
        if existing is not None:
            return {"aligned": len(existing["ids"]), "evaluation": int(np.sum(existing["holdout"])),
                    "reused": True}
        if "align" in spec.plugin.stages:
            assert channel is not None
            ledger = self.ledger(spec)
            try:
                found = spec.plugin.aligner(self.context(spec), list(self.table.ids)).run(ledger.channel(channel,
                                                                                                         "align"))
            finally:
                self._keep_ledger(spec, "align", ledger)
            aligned, positions = list(found.ids), np.asarray(found.positions, dtype=np.int64)
        else:  # no alignment stage (horizontal): the silo's own rows, in id order
            order = np.argsort(np.asarray(self.table.ids, dtype=str), kind="stable")
            aligned, positions = [str(self.table.ids[i]) for i in order], order.astype(np.int64)
        if not aligned:
            raise DataError(f"party {self.party_id!r}: the intersection with the other silos is empty")
        mask = holdout_mask(np.asarray(aligned), spec.salt, spec.holdout)
        self.store.save_alignment(spec.job_id, {"ids": list(aligned), "positions": np.asarray(positions, np.int64),
                                                "holdout": mask})
        return {"aligned": len(aligned), "evaluation": int(mask.sum()), "reused": False,
                "ledger": ledger.summary() if "align" in spec.plugin.stages else None}

    def _split(self, spec: JobSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Local row positions and aligned ids of the training and the evaluation rows, in canonical order."""
        alignment = self.store.alignment(spec.job_id)
        if alignment is None and "align" not in spec.plugin.stages:
            self.align(spec, channel=None)  # no peer is involved
            alignment = self.store.alignment(spec.job_id)
        if alignment is None:
            raise JobError(f"job {spec.job_id!r}: {self.party_id} has no alignment; run the align stage first")
        positions = np.asarray(alignment["positions"], dtype=np.int64)
        ids = np.asarray(alignment["ids"], dtype=object)
        mask = np.asarray(alignment["holdout"], dtype=bool)
        return positions[~mask], positions[mask], ids[~mask], ids[mask]

    # --- train --------------------------------------------------------------------------------------
    def train(self, spec: JobSpec, channel: Channel, checkpoint: Checkpoint | None) -> dict[str, Any]:
        self.check_role(spec)
        train_pos, _, train_ids, _ = self._split(spec)
        frame, labels = self.table.at(train_pos)
        plugin = spec.plugin
        if plugin.preprocessing == "federated":  # the protocol derives one preprocessing from pooled statistics
            if self.table.categorical:
                raise JobError(f"party {self.party_id!r}: categorical columns {list(self.table.categorical)} "
                               f"cannot be encoded federatedly over the services yet ({spec.algorithm} pools "
                               "statistics of numeric columns); encode them as numbers in the source table")
            pre = Preprocessor.passthrough(self.table.numeric)
            X = pre.transform(frame)
        else:
            pre = Preprocessor(self.table.numeric, self.table.categorical)
            X = pre.fit_transform(frame)
        data = PartyData(np.asarray(train_ids).astype(str), X, tuple(pre.output_columns), labels)
        units = {c: [pre.means_[c], pre.scales_[c]] for c in pre.numeric}  # how it standardised (for labels)
        ctx = self.context(spec, checkpoint, extra={"column_units": units})
        ledger = self.ledger(spec)
        try:
            result = plugin.export_part(plugin.trainer(ctx, data).run(ledger.channel(channel, "train")))
        finally:
            self._keep_ledger(spec, "train", ledger)
        part = {"algorithm": spec.algorithm, "model": result, "preprocessing": pre.to_dict(),
                "schema_digest": self.table.schema_digest, "schema": self.table.schema,
                "columns": pre.output_columns, "train_rows": len(train_pos), "job_id": spec.job_id,
                "parties": spec.parties.to_dict()}
        digest = self.store.save_model_part(spec.job_id, part)
        reply: dict[str, Any] = {"part_sha256": digest, "train_rows": len(train_pos), "ledger": ledger.summary()}
        sections = plugin.report_sections(self.role, result)
        if sections:  # what this party's plug-in shows in the job's report (aggregates it may reveal)
            reply["report_sections"] = sections
        return reply

    # --- evaluate -----------------------------------------------------------------------------------
    def model_part(self, model_id: str) -> dict[str, Any]:
        """The silo's private part of ``model_id``; refused if the table's columns changed since training."""
        part = self.store.model_part(model_id)
        if part is None:
            raise JobError(f"party {self.party_id!r} has no model part for {model_id!r}")
        if part["schema_digest"] != self.table.schema_digest:
            changes = schema_changes(part.get("schema"), self.table.schema)
            raise JobError(f"party {self.party_id!r}: the table's columns changed since model {model_id!r} was "
                           f"trained ({'; '.join(changes) or 'schema digest differs'}; schema digest "
                           f"{self.table.schema_digest[:12]} != {part['schema_digest'][:12]}); refusing to score")
        return part

    def evaluate(self, spec: JobSpec, channel: Channel, *, model_id: str | None = None, threshold: float = 0.5,
                 export_scores: str | None = None) -> dict[str, Any]:
        """Score the training and the evaluation rows of ``spec``'s split with model ``model_id`` (default:
        the job's own model); the guest returns aggregate metrics only.

        ``export_scores`` (guest only): a CSV path inside the silo's export folder where the guest writes the
        evaluation rows' ``id, score``; the reply names the file, the scores stay at the guest.
        """
        self.check_role(spec)
        train_pos, test_pos, train_ids, test_ids = self._split(spec)
        part = self.model_part(model_id or spec.job_id)
        if part["algorithm"] != spec.algorithm:
            raise JobError(f"party {self.party_id!r}: model {model_id!r} is {part['algorithm']}, the job says "
                           f"{spec.algorithm}")
        export_path = (self._export_path(export_scores) if export_scores and self.role in spec.plugin.metric_roles
                       else None)
        pre = Preprocessor.from_dict(part["preprocessing"])
        train_frame, train_labels = self.table.at(train_pos)
        test_frame, test_labels = self.table.at(test_pos)
        X_train, X_test = pre.transform(train_frame), pre.transform(test_frame)
        names = tuple(part["columns"])
        plugin = spec.plugin
        ledger = self.ledger(spec)
        recorded = ledger.channel(channel, "evaluate")

        def scores_of(X: np.ndarray, ids: np.ndarray, namespace: str) -> np.ndarray | None:
            data = PartyData(np.asarray(ids).astype(str), X, names)
            return plugin.predictor(self.context(spec, namespace=namespace), part["model"], data).run(recorded)

        try:
            train_scores = scores_of(X_train, train_ids, "eval.train")
            scores = scores_of(X_test, test_ids, "eval.test")
        finally:
            self._keep_ledger(spec, "evaluate", ledger)
        if self.role not in plugin.metric_roles:
            return {"evaluation_rows": len(test_pos), "ledger": ledger.summary()}
        assert train_labels is not None and test_labels is not None and scores is not None
        several = len(plugin.metric_parties(spec.parties)) > 1
        if several and len(np.unique(test_labels)) < 2:  # the others' metrics still pool; say why not here
            n_bad = int(np.sum(test_labels))
            return {"metrics": {"n": len(test_pos), "n_bad": n_bad, "notes": [
                f"{len(test_pos)} held-out rows with one class only: no metrics for this party"]},
                "evaluation_rows": len(test_pos), "ledger": ledger.summary()}
        if len(np.unique(train_labels)) < 2:  # no own-data baseline can be trained
            baseline, baseline_model = None, ""
        else:  # what this party could do alone (standardised on its own rows when the job pooled statistics)
            own = Preprocessor(self.table.numeric, ()).fit(train_frame) if plugin.preprocessing == "federated" \
                else None
            X_own, X_own_test = (X_train, X_test) if own is None else (own.transform(train_frame),
                                                                       own.transform(test_frame))
            alone = plugin.baseline_scores(spec.typed_params, X_own, train_labels, X_own_test)
            baseline, baseline_model = alone if alone is not None else (
                guest_only_baseline(X_own, train_labels, X_own_test)[1],
                "logistic regression on this party's own features only")
        metrics = evaluate_at_guest(test_labels, scores, train_scores=train_scores, baseline_scores=baseline,
                                    threshold=threshold)
        metrics["evaluation_set_sha256"] = evaluation_set_digest(test_ids)
        if baseline is not None and metrics.get("federation_gain"):
            metrics["baseline_model"] = baseline_model
        variants = plugin.variant_scores(self.context(spec), part["model"], PartyData(
            np.asarray(test_ids).astype(str), X_test, names))
        if variants:  # the party's other models on the same rows (e.g. personalised): headline numbers only
            metrics["variants"] = {name: {k: v for k, v in evaluate_at_guest(test_labels, s, threshold=threshold)
                                          .items() if k in ("auc", "gini", "ks", "brier")}
                                   for name, s in variants.items()}
        metrics["ci"] = bootstrap_intervals(test_labels, scores, seed=spec.seed)
        out: dict[str, Any] = {"metrics": metrics, "evaluation_rows": len(test_pos), "ledger": ledger.summary()}
        if export_path is not None:
            assert self.export_dir is not None
            try:  # checked again, and written without following links, now that the scores exist
                export_scores_csv(export_path, test_ids, scores, root=self.export_dir)
            except UnsafePathError as exc:
                raise JobError(f"party {self.party_id!r}: score export refused: {exc}") from exc
            out["exported"] = export_path.as_posix()
        return out

    def source_table(self, name: str) -> LocalTable:
        """The silo's named data source ``name`` (``[data.NAME]`` in its config), read and validated."""
        if name not in self.sources:
            known = ", ".join(sorted(self.sources)) or "none"
            raise JobError(f"party {self.party_id!r} has no data source {name!r} (configured: {known})")
        return self.sources[name]()

    def evaluate_out_of_time(self, spec: JobSpec, channel: Channel, source: str, *, model_id: str | None = None,
                             threshold: float = 0.5) -> dict[str, Any]:
        """Score model ``model_id`` on the silo's named data source ``source`` (e.g. a later month) next to the
        training job's held-out rows.

        The new sample gets its own PSI alignment (salted apart from the training alignment); its columns
        must be the model's (refused naming the columns otherwise). Every party computes the stability (CSI)
        of its own characteristics, training rows vs the new sample; a host names them only with its
        ``share_feature_names`` consent (else ``feature 1..k``). The label holder returns the aggregate
        metrics of both samples with bootstrap intervals of AUC and KS, and the score PSI training vs new.
        """
        self.check_role(spec)
        part = self.model_part(model_id or spec.job_id)
        table = self.source_table(source)
        if table.schema_digest != part["schema_digest"]:
            changes = schema_changes(part.get("schema"), table.schema)
            raise JobError(f"party {self.party_id!r}: data source {source!r} does not have the columns of model "
                           f"{model_id or spec.job_id!r} ({'; '.join(changes) or 'schema digest differs'}); "
                           "refusing to score it")
        plugin = spec.plugin
        ctx = self.context(spec)
        ctx = dataclasses.replace(ctx, extra={**ctx.extra, "salt": f"{spec.salt}:{source}"})
        if "align" in plugin.stages:
            found = plugin.aligner(ctx, list(table.ids)).run(PrefixedChannel(channel, f"oot.{source}"))
            new_ids, new_pos = list(found.ids), np.asarray(found.positions, dtype=np.int64)
        else:
            new_pos = np.argsort(np.asarray(table.ids, dtype=str), kind="stable")
            new_ids = [str(table.ids[i]) for i in new_pos]
        train_pos, test_pos, train_ids, test_ids = self._split(spec)
        pre = Preprocessor.from_dict(part["preprocessing"])
        names = tuple(part["columns"])
        train_frame, _ = self.table.at(train_pos)
        test_frame, test_labels = self.table.at(test_pos)
        new_frame, new_labels = table.at(new_pos)
        X_train, X_test, X_new = pre.transform(train_frame), pre.transform(test_frame), pre.transform(new_frame)

        def scores_of(X: np.ndarray, ids: Any, namespace: str) -> np.ndarray | None:
            data = PartyData(np.asarray(ids).astype(str), X, names)
            return plugin.predictor(self.context(spec, namespace=namespace), part["model"], data).run(channel)

        train_scores = scores_of(X_train, train_ids, "eval.train")
        test_scores = scores_of(X_test, test_ids, "eval.test")
        new_scores = scores_of(X_new, np.asarray(new_ids), f"eval.{source}")
        csi = characteristic_stability(X_train, X_new, names)
        if self.role not in plugin.metric_roles and not self.consent.get("share_feature_names", False):
            csi = {f"feature {i + 1}": v for i, v in enumerate(csi.values())}
        out: dict[str, Any] = {"evaluation_rows": len(test_pos), "new_rows": len(new_pos), "stability": csi}
        if self.role not in plugin.metric_roles:
            return out
        assert test_labels is not None and new_labels is not None and test_scores is not None
        assert new_scores is not None
        holdout = evaluate_at_guest(test_labels, test_scores, train_scores=train_scores, threshold=threshold)
        holdout["ci"] = bootstrap_intervals(test_labels, test_scores, seed=spec.seed)
        later = evaluate_at_guest(new_labels, new_scores, train_scores=train_scores, threshold=threshold)
        later["ci"] = bootstrap_intervals(new_labels, new_scores, seed=spec.seed)
        out.update(metrics=holdout, new_metrics=later)
        return out

    def _export_path(self, requested: str) -> PurePosixPath:
        """``requested`` as a plain relative path inside the silo's export folder (the arbiter cannot name other
        files): no absolute path, no ``..``; symbolic links are refused when the file is written."""
        if self.export_dir is None:
            raise JobError(f"party {self.party_id!r} has no export folder configured (party.exports)")
        path = PurePosixPath(requested)
        if path.is_absolute() or not path.parts or any(p in ("", ".", "..") for p in path.parts):
            raise JobError(f"party {self.party_id!r}: score export path {requested!r} is outside its export "
                           f"folder {str(self.export_dir.resolve())!r}")
        if path.suffix.lower() != ".csv":
            raise JobError(f"party {self.party_id!r}: score export path {requested!r} must end in .csv")
        return path
