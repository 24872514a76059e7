"""``fedrisk evaluate MODEL``: score a registered model on held-out rows through federated prediction.

Steps of :func:`evaluate_model`:

1. Look the model up in the arbiter's registry (id ``name-vN``, a bare name = latest version, or the
   training job's id) and the job that trained it (spec, parties, addresses).
2. ``check`` every silo of that job with the model id: each silo confirms it holds its private part of
   the model and that its table's columns are unchanged since training (a changed silo refuses, naming
   the columns that changed; nothing is scored then).
3. ``evaluate`` at every silo on a fresh transport key: federated prediction (vertical LR or SecureBoost
   prediction roles) of the job's training rows (for PSI) and its held-out rows — the same SHA-256 split
   of the aligned ids that training used, so exactly the rows the model never saw. The guest computes the
   full metric set (:mod:`silo.evaluation`) at the chosen ``threshold`` and, if asked, writes
   ``id, score`` to a CSV inside its own export folder.
4. Keep the aggregate metrics as the model's next numbered evaluation in the registry
   (:meth:`arbiter.store.JobStore.record_evaluation`) and write the HTML + JSON report with the model card.

Which rows: only the held-out ids of the model's training job are supported; a separate evaluation data
source would need its own alignment (PSI) and is not implemented.

What it reveals to whom: the arbiter receives each silo's status (schema digest, counts) and the guest's
aggregate metrics (see :mod:`silo.evaluation`); per-sample scores, ids and labels stay at the guest (the
optional score CSV is written on the guest's machine, and the arbiter learns only its file name). Hosts
reveal to the guest what the prediction roles document (vertical LR: per-row partial scores; SecureBoost:
left/right outcomes of host splits).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from pathlib import Path
from typing import Any

from arbiter.config import ArbiterConfig, PartyAddress, load_arbiter_config
from arbiter.runner import ArbiterError, ArbiterService
from arbiter.store import EvaluationRecord, JobRecord, ModelRecord
from silo.control import ControlError, SiloUnavailable
from silo.jobs import VERSION, JobSpec

__all__ = ["evaluate_model", "headline_metrics", "model_card"]

KEY_BITS = 2048


def headline_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The few numbers shown in ``fedrisk models list/show`` (all from the guest's aggregate dict)."""
    out: dict[str, Any] = {k: metrics.get(k) for k in ("auc", "gini", "ks", "ks_cutoff", "brier", "ece", "psi",
                                                       "n", "n_bad")}
    threshold = metrics.get("threshold") or {}
    out.update({k: threshold.get(k) for k in ("threshold", "precision", "recall", "f1")})
    gain = (metrics.get("federation_gain") or {}).get("auc")
    if gain:
        out["auc_guest_only"] = gain.get("guest_only")
        out["auc_gain"] = gain.get("delta")
    return out


def model_card(record: ModelRecord, job: JobRecord, evaluation: EvaluationRecord | None = None
               ) -> dict[str, Any]:
    """The report's model card: what was trained, by whom, how, and how it was evaluated."""
    spec = job.spec.get("spec", {})
    training = job.training or {}
    card: dict[str, Any] = {
        "name": record.name, "algorithm": record.algorithm, "job_id": record.job_id, "model_id": record.id,
        "trained_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(record.created_at)),
        "parties": record.model.get("parties", spec.get("parties", {})),
        "features_per_party": job.spec.get("features", {}), "parameters": record.params,
        "training_time_s": training.get("training_time_s"), "key_bits": KEY_BITS,
        "content_hash": record.content_hash,
    }
    if evaluation is not None:
        card["evaluation"] = (f"#{evaluation.seq} at "
                              f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(evaluation.created_at))}: "
                              f"{evaluation.rows} held-out rows of job {evaluation.job_id} (hash split, holdout "
                              f"{spec.get('holdout')}), threshold {evaluation.threshold:g}")
    card["privacy_notes"] = [
        "Rows, ids, labels, weights and per-customer scores never left their silo; the arbiter received "
        "aggregate metrics, schema digests and model-part hashes only.",
        "During scoring the hosts revealed to the guest only what the prediction protocol needs (vertical LR: "
        "per-row partial scores; SecureBoost: left/right outcomes of host splits).",
        f"Paillier keys of {KEY_BITS} bits protected the training messages.",
    ]
    return card


def _parties(job: JobRecord) -> dict[str, PartyAddress]:
    return {pid: PartyAddress(pid, p["role"], p["address"], p["control"]) for pid, p in job.spec["parties"].items()}


def _check_silos(service: ArbiterService, spec: JobSpec, parties: dict[str, PartyAddress], record: ModelRecord
                 ) -> dict[str, Any]:
    """Every silo is up, runs this version, holds its part of the model and has unchanged columns."""
    expected = record.model.get("schema_digests", {})
    statuses: dict[str, Any] = {}
    for pid, party in parties.items():
        try:
            status = service._client(party).call("check", timeout=15.0, spec=spec.to_dict(), model_id=record.id)
        except SiloUnavailable as exc:
            raise ArbiterError(f"silo {pid!r} is not reachable at {party.control}: {exc}") from exc
        except ControlError as exc:
            raise ArbiterError(f"cannot evaluate model {record.id!r}: {exc}") from exc
        if status.get("version") != VERSION:
            raise ArbiterError(f"silo {pid!r} runs {status.get('version')!r}, the arbiter {VERSION!r}")
        if expected.get(pid) and status.get("schema_digest") != expected[pid]:
            raise ArbiterError(f"cannot evaluate model {record.id!r}: silo {pid!r}'s table's columns changed since "
                               f"training (schema digest {str(status.get('schema_digest'))[:12]} != "
                               f"{expected[pid][:12]})")
        statuses[pid] = status
    return statuses


def evaluate_model(config: ArbiterConfig | str | Path, model_id: str, *, threshold: float = 0.5,
                   export_scores: str | None = None, reports_dir: str | Path | None = None) -> dict[str, Any]:
    """Evaluate registered model ``model_id`` over the running silos; returns the result dict.

    ``threshold``: score cut-off (score ≥ threshold → bad) of the confusion matrix, precision, recall, F1.
    ``export_scores``: CSV path (relative to the guest's ``party.exports`` folder) where the GUEST writes
    the held-out rows' ``id, score``; the scores never reach the arbiter. ``reports_dir``: where the HTML and
    JSON report go (default: the arbiter's ``reports`` folder).

    The result has ``model_id``, ``evaluation`` (its number), ``metrics`` (headline), ``full_metrics``
    (the guest's aggregate dict), ``evaluation_rows``, ``report`` (HTML and JSON paths) and ``exported``
    (the guest-side file name, if any). Raises :class:`arbiter.runner.ArbiterError` naming the silo when one
    is unreachable, lacks the model or has changed columns.
    """
    if not 0.0 <= float(threshold) <= 1.0:
        raise ArbiterError(f"threshold must be in [0, 1], not {threshold}")
    if not isinstance(config, ArbiterConfig):
        config = load_arbiter_config(config)
    service = ArbiterService(config, progress=False)
    try:
        record = service.store.model(model_id)
        job = service.store.job(record.job_id)
        spec = JobSpec.from_dict(job.spec["spec"])
        parties = _parties(job)
        statuses = _check_silos(service, spec, parties, record)
        key = f"{job.id}.eval-{uuid.uuid4().hex[:12]}"

        metric_parties = spec.plugin.metric_parties(spec.parties)

        def call(pid: str) -> dict[str, Any]:
            fields: dict[str, Any] = {"model_id": record.id, "threshold": float(threshold)}
            if pid in metric_parties and export_scores:
                fields["export_scores"] = str(export_scores)
            return service._client(parties[pid]).call("evaluate", timeout=None, spec=spec.to_dict(), key=key,
                                                      **fields)

        def close(op: str = "abort") -> None:
            for party in parties.values():
                with contextlib.suppress(ControlError):
                    service._client(party).call(op, timeout=3.0, keys=[key])

        t0 = time.perf_counter()
        try:
            out = service._parallel({pid: (lambda p=pid: call(p)) for pid in parties}, close)
        except ControlError as exc:
            raise ArbiterError(f"evaluation of model {record.id!r} failed: {exc}") from exc
        finally:
            close("close")
        metrics = spec.plugin.combine_metrics({pid: out[pid]["metrics"] for pid in metric_parties})
        rows = sum(int(out[pid]["evaluation_rows"]) for pid in metric_parties)
        exported = [out[pid]["exported"] for pid in metric_parties if out[pid].get("exported")]
        headline = headline_metrics(metrics)
        evaluation = service.store.record_evaluation(
            record.id, job_id=job.id, threshold=float(threshold), rows=rows,
            headline=headline, metrics=metrics,
            schema_digests={pid: s["schema_digest"] for pid, s in statuses.items()})
        from arbiter.report import write_report

        paths = write_report(Path(reports_dir) if reports_dir is not None else Path(config.reports), metrics,
                             model_card(record, job, evaluation), stem=f"{record.id}-eval{evaluation.seq}")
        reports = [str(p) for p in paths]
        service.store.set_evaluation_reports(record.id, evaluation.seq, reports)
        service.log.info("evaluated", extra={"job": job.id, "fields": {
            "model": record.id, "evaluation": evaluation.seq, "auc": f"{headline['auc']:.4f}",
            "seconds": f"{time.perf_counter() - t0:.1f}"}})
        return {"model_id": record.id, "job_id": job.id, "evaluation": evaluation.seq, "metrics": headline,
                "full_metrics": metrics, "evaluation_rows": rows, "report": reports,
                "exported": exported[0] if len(exported) == 1 else exported or None,
                "content_hash": record.content_hash}
    finally:
        service.close()
