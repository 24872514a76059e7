"""The model card of a registered model and the headline metrics shown in ``fedrisk models list/show``.

:func:`model_card` is written into every report of a model (the one written at the end of training and
each ``fedrisk evaluate`` report): what was trained, by whom, with which parameters and key size (from
the job's parameters, via the algorithm's :meth:`~algorithms.api.Algorithm.key_bits`), and what the
protocol revealed (from the algorithm's declared disclosures).

What it reveals to whom: the card holds only what the arbiter already legitimately holds (aggregate
metrics, counts, parameters, content hashes).
"""

from __future__ import annotations

import time
from typing import Any

from algorithms import catalogue
from arbiter.store import EvaluationRecord, JobRecord, ModelRecord
from silo.jobs import JobSpec

__all__ = ["headline_metrics", "model_card"]


def headline_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The few numbers shown in ``fedrisk models list/show`` (all from the metric parties' aggregate dict)."""
    out: dict[str, Any] = {k: metrics.get(k) for k in ("auc", "gini", "ks", "ks_cutoff", "brier", "ece", "psi",
                                                       "n", "n_bad")}  # psi: population stability index
    threshold = metrics.get("threshold") or {}
    out.update({k: threshold.get(k) for k in ("threshold", "precision", "recall", "f1")})
    gain = (metrics.get("federation_gain") or {}).get("auc")
    if gain:
        out["auc_guest_only"] = gain.get("guest_only")
        out["auc_gain"] = gain.get("delta")
    return out


def _privacy_notes(spec: JobSpec, key_bits: int | None) -> list[str]:
    notes = ["Rows, ids, labels, weights and per-customer scores never left their silo; the arbiter received "
             "aggregate metrics, schema digests and model-part hashes only."]
    row_level = [d for d in spec.plugin.disclosures if d.kind == "row_level"]
    if row_level:
        notes.append("The protocol revealed per-row values only where its disclosures say so: "
                     + "; ".join(f"to the {d.receiver} from the {d.sender}: {d.what}" for d in row_level) + ".")
    if key_bits:
        notes.append(f"Paillier keys of {key_bits} bits protected the training messages.")
    return notes


def model_card(record: ModelRecord, job: JobRecord, evaluation: EvaluationRecord | None = None,
               metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report's model card: what was trained, by whom, how, and how it was evaluated."""
    spec = JobSpec.from_dict(job.spec["spec"])
    training = job.training or {}
    key_bits = catalogue.get(spec.algorithm).key_bits(spec.typed_params)
    card: dict[str, Any] = {
        "name": record.name, "algorithm": record.algorithm, "job_id": record.job_id, "model_id": record.id,
        "trained_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(record.created_at)),
        "parties": record.model.get("parties", spec.parties.to_dict()),
        "features_per_party": job.spec.get("features", {}), "parameters": record.params,
        "training_time_s": training.get("training_time_s"), "key_bits": key_bits,
        "content_hash": record.content_hash,
    }
    if evaluation is not None:
        card["evaluation"] = (f"#{evaluation.seq} at "
                              f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(evaluation.created_at))}: "
                              f"{evaluation.rows} held-out rows of job {evaluation.job_id} (hash split, holdout "
                              f"{spec.holdout}), threshold {evaluation.threshold:g}")
    diagnostics = training.get("diagnostics") or {}
    if diagnostics.get("warnings"):
        card["training_warnings"] = list(diagnostics["warnings"])
    if diagnostics.get("curve"):
        card["training_curve"] = diagnostics["curve"]
    card["privacy_notes"] = _privacy_notes(spec, key_bits) + spec.plugin.privacy_notes(  # SecAgg, DP, ε spent
        spec.typed_params, metrics if metrics is not None else (evaluation.metrics if evaluation else {}),
        record.model.get("arbiter_part"))
    return card
