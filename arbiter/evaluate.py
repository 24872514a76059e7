"""``fedrisk evaluate MODEL``: score a registered model on held-out rows through federated prediction.

Steps of :func:`evaluate_model`:

1. Look the model up in the arbiter's registry (id ``name-vN``, a bare name = latest version, or the
   training job's id) and the job that trained it (spec, parties, addresses).
2. ``check`` every silo of that job with the model id: each silo confirms it holds its private part of
   the model and that its table's columns are unchanged since training (a changed silo refuses, naming
   the columns that changed; nothing is scored then).
3. ``evaluate`` at every silo on a fresh transport key: federated prediction (the algorithm's predictor
   roles) of the job's training rows (for the population stability index) and its held-out rows — the
   same SHA-256 split of the ids that training used, so exactly the rows the model never saw. Each metric
   party (the guest for the vertical algorithms) computes the full metric set (:mod:`silo.evaluation`) at
   the chosen ``threshold`` and, if asked, writes ``id, score`` to a CSV inside its own export folder;
   the algorithm's ``combine_metrics`` turns several metric parties' replies into one.
4. Keep the aggregate metrics as the model's next numbered evaluation in the registry
   (:meth:`arbiter.store.JobStore.record_evaluation`) and write the HTML + JSON report with the model card.

Which rows: the held-out ids of the model's training job and, with ``source``, a new sample (e.g. a later
month) that every silo declares as ``[data.NAME]``, aligned by its own PSI (out-of-time evaluation).

What it reveals to whom: the arbiter receives each silo's status (schema digest, counts) and the metric
parties' aggregate metrics (see :mod:`silo.evaluation`); per-sample scores, ids and labels stay at the
metric party (the optional score CSV is written on its machine, and the arbiter learns only its file
name). The other silos reveal to it what the algorithm's prediction roles declare in its disclosures.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from arbiter.card import headline_metrics, model_card
from arbiter.config import ArbiterConfig, load_arbiter_config
from arbiter.pool import ArbiterError, SiloPool
from arbiter.report import write_report
from arbiter.runner import ArbiterService, job_parties
from arbiter.sections import evaluation_sections
from arbiter.store import transport_key
from silo.control import ControlError
from silo.jobs import JobSpec

__all__ = ["evaluate_model"]


def evaluate_model(config: ArbiterConfig | str | Path, model_id: str, *, threshold: float = 0.5,
                   export_scores: str | None = None, reports_dir: str | Path | None = None,
                   source: str | None = None) -> dict[str, Any]:
    """Evaluate registered model ``model_id`` over the running silos; returns the result dict.

    ``threshold``: score cut-off (score ≥ threshold → bad) of the confusion matrix, precision, recall, F1.
    ``export_scores``: CSV path (relative to the metric party's ``party.exports`` folder, the guest's for the
    vertical algorithms) where THAT party writes the held-out rows' ``id, score``; the scores never reach
    the arbiter. ``reports_dir``: where the HTML and JSON report go (default: the arbiter's ``reports``).

    The result has ``model_id``, ``evaluation`` (its number), ``metrics`` (headline), ``full_metrics``
    (the metric parties' aggregate dict, combined by the algorithm), ``evaluation_rows``, ``report`` (HTML
    and JSON paths) and ``exported`` (the metric party's file name, if any). Raises
    :class:`arbiter.runner.ArbiterError` naming the silo when one is unreachable, lacks the model or has
    changed columns.

    ``source``: the name of a data source every silo declares in its config (``[data.NAME]``, e.g. a later
    month): an out-of-time evaluation. The silos align the new sample by their own PSI, score it next to the
    held-out rows, and the metrics gain ``out_of_time`` (the new sample's aggregate metrics with bootstrap
    intervals, score PSI vs training, each party's CSI per characteristic); a silo whose source lacks the
    model's columns refuses, naming them.
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
        pool: SiloPool = service.pool(job_parties(job))
        statuses = pool.check(spec, expected=record.model.get("schema_digests", {}), model_id=record.id,
                              timeout=15.0, what=f"cannot evaluate model {record.id!r}: ")
        key = transport_key(job.id, f"eval-{uuid.uuid4().hex[:12]}")
        metric_parties = spec.plugin.metric_parties(spec.parties)
        fields: dict[str, Any] = {"model_id": record.id, "threshold": float(threshold)}
        if source:
            fields["source"] = str(source)
        export = {"export_scores": str(export_scores)} if export_scores and not source else {}
        calls = {pid: (lambda pid=pid: pool.call(pid, "evaluate", timeout=None, spec=spec.to_dict(), key=key,
                                                 **fields, **(export if pid in metric_parties else {})))
                 for pid in pool.parties}

        t0 = time.perf_counter()
        try:
            out = pool.parallel(calls, lambda: pool.abort([key]))
        except ControlError as exc:
            raise ArbiterError(f"evaluation of model {record.id!r} failed: {exc}") from exc
        finally:
            pool.abort([key], op="close")
        metrics = spec.plugin.combine_metrics({pid: out[pid]["metrics"] for pid in metric_parties})
        if source:
            metrics["out_of_time"] = {
                "source": str(source), "rows": sum(int(out[pid]["new_rows"]) for pid in metric_parties),
                "metrics": spec.plugin.combine_metrics({pid: out[pid]["new_metrics"] for pid in metric_parties}),
                "stability": {pid: out[pid].get("stability", {}) for pid in pool.parties}}
        rows = sum(int(out[pid]["evaluation_rows"]) for pid in metric_parties)
        exported = [out[pid]["exported"] for pid in metric_parties if out[pid].get("exported")]
        exported_by = [pid for pid in metric_parties if out[pid].get("exported")]
        headline = headline_metrics(metrics)
        evaluation = service.store.record_evaluation(
            record.id, job_id=job.id, threshold=float(threshold), rows=rows,
            headline=headline, metrics=metrics,
            schema_digests={pid: s["schema_digest"] for pid, s in statuses.items()})
        ledgers = {pid: reply["ledger"] for pid, reply in out.items() if reply.get("ledger")}  # the silos' view
        paths = write_report(Path(reports_dir) if reports_dir is not None else Path(config.reports), metrics,
                             model_card(record, job, evaluation), stem=f"{record.id}-eval{evaluation.seq}",
                             ledgers=ledgers, sections=evaluation_sections(metrics))
        reports = [str(p) for p in paths]
        service.store.set_evaluation_reports(record.id, evaluation.seq, reports)
        service.log.info("evaluated", extra={"job": job.id, "fields": {
            "model": record.id, "evaluation": evaluation.seq, "auc": f"{headline['auc']:.4f}",
            "seconds": f"{time.perf_counter() - t0:.1f}"}})
        return {"model_id": record.id, "job_id": job.id, "evaluation": evaluation.seq, "metrics": headline,
                "full_metrics": metrics, "evaluation_rows": rows, "report": reports,
                "exported": exported[0] if len(exported) == 1 else exported or None, "exported_by": exported_by,
                "content_hash": record.content_hash}
    finally:
        service.close()
