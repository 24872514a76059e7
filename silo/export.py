"""Export the guest's private model part to a JSON file, and load it back to score with the hosts' help.

``fedrisk models export MODEL --config bank.toml --out guest_model.json`` runs at the bank (the guest) on
its own store and writes :data:`FORMAT` JSON (no pickle): the model id, training job and algorithm, the
parties, the guest-side model (vertical LR: feature weights and intercept; SecureBoost: every tree with
its leaf weights, the guest's own splits and the hosts' opaque split ids), the local preprocessing
parameters (means, scales, categories), the schema (columns, kinds) and its digest, and the SHA-256 of the
stored part (the registry lists the same hash for the bank, so an export can be checked against it).

:func:`load_guest_model` reads such a file into a :class:`GuestModelFile`. The model is only the guest's
half: scoring needs every host's help, through the same federated prediction roles the services use::

    model = load_guest_model("guest_model.json")
    model.check_table(table)                      # refuses a table whose columns changed since training
    role = model.predictor(table, ids)            # the algorithm's guest predictor role
    scores = role.run(channel)                    # while each host runs its host predictor on the same ids

where each host runs its algorithm's predictor role (``catalogue.get(algorithm).predictor(ctx, part, data)``)
with its own stored part on the same ids in the same order (aligned by PSI), and ``channel`` connects the
guest to the hosts (:mod:`federation.grpc_transport` or an in-memory network).

What it reveals to whom: the file is the guest's own data and stays at the guest. It holds nothing of a
host's model beyond what the guest already holds (SecureBoost: opaque split ids and the party owning each
host split; no host feature name, threshold or weight).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from algorithms import catalogue
from algorithms.api import PartyData, Role, RoleContext, jsonable
from algorithms.base import Parties
from silo.data import DataError, LocalTable, schema_changes
from silo.preprocess import Preprocessor
from silo.store import SiloStore

__all__ = ["FORMAT", "GuestModelFile", "export_guest_model", "load_guest_model"]

FORMAT = "fedrisk.guest_model/1"


@dataclass(frozen=True)
class GuestModelFile:
    """An exported guest-side model part (see the module docstring)."""

    model_id: str
    job_id: str | None
    algorithm: str
    party: str
    parties: Parties
    model: dict[str, Any]
    preprocessing: Preprocessor
    columns: list[str]
    schema: dict[str, Any] | None
    schema_digest: str
    part_sha256: str | None

    def check_table(self, table: LocalTable) -> None:
        """Raise :class:`silo.data.DataError` naming what changed if ``table``'s columns differ from training."""
        if table.schema_digest != self.schema_digest:
            changes = "; ".join(schema_changes(self.schema, table.schema))
            raise DataError(f"party {table.party_id!r}: the table's columns changed since model {self.model_id!r} "
                            f"was trained ({changes}); refusing to score")

    def features(self, table: LocalTable, ids: Any) -> np.ndarray:
        """The preprocessed feature matrix of ``ids`` (in that order), as the model expects it."""
        self.check_table(table)
        frame, _ = table.rows(list(np.asarray(ids, dtype=object).astype(str)))
        return self.preprocessing.transform(frame)

    def predictor(self, table: LocalTable, ids: Any, name: str = "") -> Role:
        """The guest's federated prediction role for ``ids``; ``.run(channel)`` returns P(bad) per id.

        ``name``: the message-tag namespace (the hosts' predictor roles must use the same)."""
        X = self.features(table, ids)
        data = PartyData(np.asarray(ids, dtype=object).astype(str), X, tuple(self.columns))
        plugin = catalogue.get(self.algorithm)
        ctx = RoleContext(job_id=self.job_id or self.model_id, party_id=self.party, role="guest",
                          parties=self.parties, params=plugin.parse_params({}), namespace=name)
        return plugin.predictor(ctx, self.model, data)

    def predict_proba(self, table: LocalTable, ids: Any, channel: Any, prefix: str = "predict") -> np.ndarray:
        """Run the guest role of federated prediction (the same role the silo's evaluation runs)."""
        scores = self.predictor(table, ids, name=prefix).run(channel)
        assert scores is not None
        return np.asarray(scores, dtype=np.float64)


def _parties(part: dict[str, Any], party_id: str) -> Parties:
    if part.get("parties"):
        return Parties.from_dict(part["parties"])
    model = part["model"]
    if model.get("guest") is not None:  # SecureBoost guest models name their parties
        return Parties(guest=str(model["guest"]), hosts=tuple(model.get("hosts", ())))
    raise ValueError(f"model part of {party_id!r} predates stored parties; retrain to export it")


def export_guest_model(store: SiloStore, model_id: str, path: str | Path, *, party_id: str,
                       role: str = "guest") -> Path:
    """Write the guest's part of ``model_id`` (registry id or job id) from ``store`` to ``path`` as JSON."""
    if role != "guest":
        raise ValueError(f"party {party_id!r} is a {role}: only the guest's model part can be exported")
    part = store.model_part(model_id)
    if part is None:
        raise ValueError(f"party {party_id!r} has no model part for {model_id!r}")
    model = jsonable(part["model"])
    if str(model.get("kind", "")).split(".")[-1] != "guest":
        raise ValueError(f"model {model_id!r} in {party_id!r}'s store is not a guest part (kind {model.get('kind')!r})")
    doc = {"format": FORMAT, "model_id": model_id, "job_id": part.get("job_id"), "algorithm": part["algorithm"],
           "party": party_id, "parties": _parties(part, party_id).to_dict(), "model": model,
           "preprocessing": jsonable(part["preprocessing"]), "columns": list(part["columns"]),
           "schema": jsonable(part.get("schema")), "schema_digest": part["schema_digest"],
           "part_sha256": store.model_part_sha256(model_id),
           "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return out


def load_guest_model(path: str | Path) -> GuestModelFile:
    """Read a file written by :func:`export_guest_model`; raises ``ValueError`` naming what is wrong."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{p}: not a readable guest model file ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{p}: not a {FORMAT} file (format {doc.get('format') if isinstance(doc, dict) else None!r})")
    missing = [k for k in ("model_id", "algorithm", "party", "parties", "model", "preprocessing", "columns",
                           "schema_digest") if k not in doc]
    if missing:
        raise ValueError(f"{p}: missing fields {missing}")
    try:
        catalogue.get(str(doc["algorithm"]))
    except catalogue.UnknownAlgorithm as exc:
        raise ValueError(f"{p}: {exc}") from exc
    return GuestModelFile(model_id=str(doc["model_id"]), job_id=doc.get("job_id"), algorithm=str(doc["algorithm"]),
                          party=str(doc["party"]), parties=Parties.from_dict(doc["parties"]), model=doc["model"],
                          preprocessing=Preprocessor.from_dict(doc["preprocessing"]), columns=list(doc["columns"]),
                          schema=doc.get("schema"), schema_digest=str(doc["schema_digest"]),
                          part_sha256=doc.get("part_sha256"))
