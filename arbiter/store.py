"""The arbiter's job store and model registry (SQLite through SQLAlchemy; the path is configurable).

Tables: ``jobs`` (spec, state, attempt, error, aggregate results), ``job_events`` (every state
transition), ``checkpoints`` (index of the per-epoch checkpoints each party reported: step and SHA-256
of the state bytes, plus the arbiter's own role state), ``models`` (versioned per name, with job,
parameters, aggregate metrics and the SHA-256 content hash of the canonical model bytes) and
``evaluations`` (numbered per model: threshold, row count, the guest's aggregate metrics, report files).

Job states follow a small state machine built from the algorithm's stages (:func:`transitions`; vertical:
queued → aligning → training → evaluating → done, horizontal: queued → training → evaluating → done; any
live state → failed / cancelled, failed → resumed at the stage it failed; a job's stages are kept in its
spec under ``stages``); an invalid transition raises
:class:`InvalidTransition`. Each public method is one transaction, so a failure leaves nothing half
written: a job row is created together with its first event, a model row together with the ``done``
transition.

What it reveals to whom: nothing leaves this file. It holds only what the arbiter legitimately sees:
job specs, party addresses, schema digests, aggregate metrics and content hashes of each silo's
private model part (never the part itself).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine

QUEUED, ALIGNING, TRAINING, EVALUATING, DONE, FAILED, CANCELLED = (
    "queued", "aligning", "training", "evaluating", "done", "failed", "cancelled")
STATES = (QUEUED, ALIGNING, TRAINING, EVALUATING, DONE, FAILED, CANCELLED)
TERMINAL = frozenset({DONE, CANCELLED})
#: the job state of each algorithm stage (:attr:`algorithms.api.Algorithm.stages`)
STAGE_STATES = {"align": ALIGNING, "train": TRAINING, "evaluate": EVALUATING}
VERTICAL_STAGES = (ALIGNING, TRAINING, EVALUATING)


def transitions(stages: tuple[str, ...] = VERTICAL_STAGES) -> dict[str, frozenset[str]]:
    """The state machine of a job whose algorithm runs ``stages`` (job states, in order): queued → first
    stage → … → last stage → done; any live state → failed / cancelled; failed → resumed at any stage."""
    chain = (QUEUED, *stages, DONE)
    out = {state: frozenset({nxt, FAILED, CANCELLED}) for state, nxt in itertools.pairwise(chain)}
    out[FAILED] = frozenset({*stages, CANCELLED})  # resume at the failed stage
    out[DONE] = out[CANCELLED] = frozenset()
    return out


TRANSITIONS: dict[str, frozenset[str]] = transitions()


class StoreError(RuntimeError):
    """A store operation was refused (unknown job/model, duplicate id, ...)."""


class InvalidTransition(StoreError):
    """A job state change that the state machine does not allow."""


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON bytes (sorted keys, no whitespace) used for content hashes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_meta = MetaData()
jobs_table = Table(
    "jobs", _meta,
    Column("id", String(64), primary_key=True),
    Column("algorithm", String(64), nullable=False),
    Column("spec", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempt", Integer, nullable=False, default=0),
    Column("stage", String(16), nullable=True),  # stage a failed job failed in (where resume restarts)
    Column("error", Text, nullable=True),
    Column("result", Text, nullable=True),
    Column("training", Text, nullable=True),  # training summary: part hashes, rows, time (for evaluation/resume)
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
events_table = Table(
    "job_events", _meta,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(64), ForeignKey("jobs.id"), nullable=False, index=True),
    Column("from_state", String(16), nullable=True),
    Column("to_state", String(16), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("note", Text, nullable=True),
    Column("at", Float, nullable=False),
)
checkpoints_table = Table(
    "checkpoints", _meta,
    Column("job_id", String(64), ForeignKey("jobs.id"), primary_key=True),
    Column("party", String(64), primary_key=True),
    Column("step", Integer, primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("state", LargeBinary, nullable=True),  # only for the arbiter's own role state
    Column("at", Float, nullable=False),
)
models_table = Table(
    "models", _meta,
    Column("id", String(80), primary_key=True),  # f"{name}-v{version}"
    Column("name", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("job_id", String(64), ForeignKey("jobs.id"), nullable=False, unique=True),
    Column("algorithm", String(64), nullable=False),
    Column("params", Text, nullable=False),
    Column("metrics", Text, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("model", LargeBinary, nullable=False),  # canonical JSON: parties, schema digests, part hashes
    Column("created_at", Float, nullable=False),
    UniqueConstraint("name", "version"),
)

evaluations_table = Table(
    "evaluations", _meta,
    Column("model_id", String(80), ForeignKey("models.id"), primary_key=True),
    Column("seq", Integer, primary_key=True),  # 1, 2, ... per model (1: the evaluation at training time)
    Column("job_id", String(64), nullable=False),  # the training job whose held-out ids were scored
    Column("threshold", Float, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("headline", Text, nullable=False),
    Column("metrics", Text, nullable=False),  # the guest's full aggregate evaluation dict
    Column("schema_digests", Text, nullable=False),
    Column("reports", Text, nullable=True),
    Column("created_at", Float, nullable=False),
)


def transport_key(job_id: str, *parts: object) -> str:
    """The transport key (mailbox name) of a job's messages: ``job_id.attempt[.stage]`` for the attempts of
    a job's stages, ``job_id.eval-<random>`` for an evaluation; stale attempts can never interfere."""
    return ".".join((job_id, *(str(p) for p in parts)))


@dataclass(frozen=True)
class JobRecord:
    id: str
    algorithm: str
    spec: dict[str, Any]
    state: str
    attempt: int
    stage: str | None
    error: str | None
    result: dict[str, Any] | None
    created_at: float
    updated_at: float
    training: dict[str, Any] | None = None

    @property
    def transport_key(self) -> str:
        """Job key used on the transport for the current attempt (stale attempts cannot interfere)."""
        return transport_key(self.id, self.attempt)

    def stage_key(self, stage: str) -> str:
        """Transport key of ``stage`` (a job state) in the current attempt."""
        return transport_key(self.id, self.attempt, stage)


@dataclass(frozen=True)
class ModelRecord:
    id: str
    name: str
    version: int
    job_id: str
    algorithm: str
    params: dict[str, Any]
    metrics: dict[str, Any]
    content_hash: str
    model: dict[str, Any]
    created_at: float


@dataclass(frozen=True)
class EvaluationRecord:
    model_id: str
    seq: int
    job_id: str
    threshold: float
    rows: int
    headline: dict[str, Any]
    metrics: dict[str, Any]
    schema_digests: dict[str, str]
    reports: list[str]
    created_at: float


def _engine(url_or_path: str | Path) -> Engine:
    url = str(url_or_path)
    if "://" not in url:
        Path(url).parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{url}"
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()
    return engine


class JobStore:
    """Jobs, their transitions, the checkpoint index and the model registry in one SQL database."""

    def __init__(self, url_or_path: str | Path) -> None:
        self.engine = _engine(url_or_path)
        _meta.create_all(self.engine)
        _add_missing_columns(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # jobs ------------------------------------------------------------------------------------------
    def create_job(self, job_id: str, algorithm: str, spec: dict[str, Any]) -> JobRecord:
        now = time.time()
        with self.engine.begin() as conn:
            if conn.execute(select(jobs_table.c.id).where(jobs_table.c.id == job_id)).first():
                raise StoreError(f"job {job_id!r} already exists")
            conn.execute(insert(jobs_table).values(
                id=job_id, algorithm=algorithm, spec=json.dumps(spec, sort_keys=True), state=QUEUED,
                attempt=0, created_at=now, updated_at=now))
            conn.execute(insert(events_table).values(job_id=job_id, from_state=None, to_state=QUEUED,
                                                     attempt=0, note="created", at=now))
        return self.job(job_id)

    def job(self, job_id: str) -> JobRecord:
        with self.engine.connect() as conn:
            row = conn.execute(select(jobs_table).where(jobs_table.c.id == job_id)).mappings().first()
        if row is None:
            raise StoreError(f"no job {job_id!r}")
        return _job_record(row)

    def jobs(self) -> list[JobRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(jobs_table).order_by(jobs_table.c.created_at)).mappings().all()
        return [_job_record(r) for r in rows]

    def transition(self, job_id: str, to_state: str, *, note: str | None = None, error: str | None = None,
                   new_attempt: bool = False, result: dict[str, Any] | None = None) -> JobRecord:
        """Move a job to ``to_state`` (refused unless the state machine allows it)."""
        if to_state not in STATES:
            raise InvalidTransition(f"unknown state {to_state!r}")
        now = time.time()
        with self.engine.begin() as conn:
            self._transition(conn, job_id, to_state, now, note=note, error=error, new_attempt=new_attempt,
                             result=result)
        return self.job(job_id)

    def _transition(self, conn: Any, job_id: str, to_state: str, now: float, *, note: str | None,
                    error: str | None, new_attempt: bool, result: dict[str, Any] | None) -> None:
        row = conn.execute(select(jobs_table.c.state, jobs_table.c.attempt, jobs_table.c.spec)
                           .where(jobs_table.c.id == job_id)).first()
        if row is None:
            raise StoreError(f"no job {job_id!r}")
        state, attempt, spec = row
        stages = json.loads(spec).get("stages") if spec else None
        allowed = transitions(tuple(stages)) if isinstance(stages, list) else TRANSITIONS
        if to_state not in allowed.get(state, frozenset()):
            raise InvalidTransition(f"job {job_id!r}: {state} -> {to_state} is not allowed")
        attempt = attempt + 1 if new_attempt else attempt
        values: dict[str, Any] = {"state": to_state, "attempt": attempt, "updated_at": now}
        if to_state == FAILED:
            values.update(stage=state, error=error)
        elif error is None:
            values["error"] = None
        if result is not None:
            values["result"] = json.dumps(result, sort_keys=True)
        conn.execute(update(jobs_table).where(jobs_table.c.id == job_id).values(**values))
        conn.execute(insert(events_table).values(job_id=job_id, from_state=state, to_state=to_state,
                                                 attempt=attempt, note=note or error, at=now))

    def events(self, job_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(events_table).where(events_table.c.job_id == job_id)
                                .order_by(events_table.c.seq)).mappings().all()
        return [dict(r) for r in rows]

    def record_training(self, job_id: str, summary: dict[str, Any]) -> None:
        """Keep the training stage's summary (model-part hashes, row counts, duration) with the job."""
        with self.engine.begin() as conn:
            done = conn.execute(update(jobs_table).where(jobs_table.c.id == job_id).values(
                training=canonical_json(summary).decode(), updated_at=time.time()))
            if done.rowcount != 1:
                raise StoreError(f"no job {job_id!r}")

    # checkpoints -----------------------------------------------------------------------------------
    def record_checkpoint(self, job_id: str, party: str, step: int, sha256: str, state: bytes | None = None) -> None:
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(checkpoints_table.delete().where(
                (checkpoints_table.c.job_id == job_id) & (checkpoints_table.c.party == party)
                & (checkpoints_table.c.step == step)))
            conn.execute(insert(checkpoints_table).values(job_id=job_id, party=party, step=step, sha256=sha256,
                                                          state=state, at=now))

    def checkpoints(self, job_id: str, party: str | None = None) -> list[tuple[str, int, str]]:
        query = select(checkpoints_table.c.party, checkpoints_table.c.step, checkpoints_table.c.sha256).where(
            checkpoints_table.c.job_id == job_id)
        if party is not None:
            query = query.where(checkpoints_table.c.party == party)
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(query.order_by(checkpoints_table.c.party,
                                                                  checkpoints_table.c.step)).all()]

    def checkpoint_state(self, job_id: str, party: str, max_step: int | None = None) -> tuple[int, bytes] | None:
        query = select(checkpoints_table.c.step, checkpoints_table.c.state).where(
            (checkpoints_table.c.job_id == job_id) & (checkpoints_table.c.party == party))
        if max_step is not None:
            query = query.where(checkpoints_table.c.step <= max_step)
        with self.engine.connect() as conn:
            row = conn.execute(query.order_by(checkpoints_table.c.step.desc()).limit(1)).first()
        return None if row is None or row[1] is None else (row[0], row[1])

    # models ----------------------------------------------------------------------------------------
    def register_model(self, job_id: str, name: str, algorithm: str, params: dict[str, Any],
                       metrics: dict[str, Any], model: dict[str, Any], result: dict[str, Any] | None = None
                       ) -> ModelRecord:
        """Store the model and move the job to ``done`` in one transaction; returns the new version."""
        data = canonical_json(model)
        now = time.time()
        with self.engine.begin() as conn:
            version = (conn.execute(select(func.max(models_table.c.version))
                                    .where(models_table.c.name == name)).scalar() or 0) + 1
            model_id = f"{name}-v{version}"
            conn.execute(insert(models_table).values(
                id=model_id, name=name, version=version, job_id=job_id, algorithm=algorithm,
                params=json.dumps(params, sort_keys=True), metrics=json.dumps(metrics, sort_keys=True),
                content_hash=content_hash(data), model=data, created_at=now))
            self._transition(conn, job_id, DONE, now, note=f"model {model_id}", error=None, new_attempt=False,
                             result=result if result is not None else {"model_id": model_id, "metrics": metrics})
        return self.model(model_id)

    def model(self, model_id: str) -> ModelRecord:
        with self.engine.connect() as conn:
            row = conn.execute(select(models_table).where(models_table.c.id == model_id)).mappings().first()
            if row is None:  # also accept a job id or a bare name (latest version)
                row = conn.execute(select(models_table).where(
                    (models_table.c.job_id == model_id) | (models_table.c.name == model_id))
                    .order_by(models_table.c.version.desc()).limit(1)).mappings().first()
        if row is None:
            raise StoreError(f"no model {model_id!r}")
        record = _model_record(row)
        if content_hash(bytes(row["model"])) != record.content_hash:
            raise StoreError(f"model {model_id!r}: stored bytes do not match their content hash")
        return record

    def models(self) -> list[ModelRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(models_table).order_by(models_table.c.created_at)).mappings().all()
        return [_model_record(r) for r in rows]

    # evaluations -----------------------------------------------------------------------------------
    def record_evaluation(self, model_id: str, *, job_id: str, threshold: float, rows: int,
                          headline: dict[str, Any], metrics: dict[str, Any], schema_digests: dict[str, str],
                          reports: list[str] | None = None) -> EvaluationRecord:
        """Keep one evaluation of a registered model (aggregate metrics only); numbered 1, 2, ... per model."""
        now = time.time()
        with self.engine.begin() as conn:
            if conn.execute(select(models_table.c.id).where(models_table.c.id == model_id)).first() is None:
                raise StoreError(f"no model {model_id!r}")
            seq = (conn.execute(select(func.max(evaluations_table.c.seq))
                                .where(evaluations_table.c.model_id == model_id)).scalar() or 0) + 1
            conn.execute(insert(evaluations_table).values(
                model_id=model_id, seq=seq, job_id=job_id, threshold=float(threshold), rows=int(rows),
                headline=canonical_json(headline).decode(), metrics=canonical_json(metrics).decode(),
                schema_digests=canonical_json(schema_digests).decode(),
                reports=json.dumps(reports or []), created_at=now))
        return self.evaluations(model_id)[-1]

    def set_evaluation_reports(self, model_id: str, seq: int, reports: list[str]) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(evaluations_table).where(
                (evaluations_table.c.model_id == model_id) & (evaluations_table.c.seq == seq)).values(
                reports=json.dumps(reports)))

    def evaluations(self, model_id: str) -> list[EvaluationRecord]:
        """Evaluations of ``model_id`` (the registry id), oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(evaluations_table).where(evaluations_table.c.model_id == model_id)
                                .order_by(evaluations_table.c.seq)).mappings().all()
        return [_evaluation_record(r) for r in rows]

    def latest_evaluation(self, model_id: str) -> EvaluationRecord | None:
        found = self.evaluations(model_id)
        return found[-1] if found else None


def _add_missing_columns(engine: Engine) -> None:
    """Additive migration: a store created by an earlier version gets the nullable columns added since."""
    inspector = inspect(engine)
    with engine.begin() as conn:
        for table in _meta.sorted_tables:
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present:
                    if not column.nullable:
                        raise StoreError(f"the store's table {table.name!r} lacks the required column "
                                         f"{column.name!r}; it was created by an incompatible version")
                    kind = column.type.compile(dialect=engine.dialect)
                    conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))


def _job_record(row: Any) -> JobRecord:
    return JobRecord(id=row["id"], algorithm=row["algorithm"], spec=json.loads(row["spec"]), state=row["state"],
                     attempt=row["attempt"], stage=row["stage"], error=row["error"],
                     result=json.loads(row["result"]) if row["result"] else None,
                     created_at=row["created_at"], updated_at=row["updated_at"],
                     training=json.loads(row["training"]) if row["training"] else None)


def _model_record(row: Any) -> ModelRecord:
    return ModelRecord(id=row["id"], name=row["name"], version=row["version"], job_id=row["job_id"],
                       algorithm=row["algorithm"], params=json.loads(row["params"]),
                       metrics=json.loads(row["metrics"]), content_hash=row["content_hash"],
                       model=json.loads(bytes(row["model"])), created_at=row["created_at"])


def _evaluation_record(row: Any) -> EvaluationRecord:
    return EvaluationRecord(model_id=row["model_id"], seq=row["seq"], job_id=row["job_id"],
                            threshold=row["threshold"], rows=row["rows"], headline=json.loads(row["headline"]),
                            metrics=json.loads(row["metrics"]), schema_digests=json.loads(row["schema_digests"]),
                            reports=json.loads(row["reports"]) if row["reports"] else [],
                            created_at=row["created_at"])
