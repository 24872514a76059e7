"""A silo's own SQLite store: its private model parts, per-epoch checkpoints and aligned ids per job.

Everything here stays inside the silo. Checkpoint and model bytes are :mod:`federation.codec` payloads
(never pickled). :class:`SqliteCheckpoint` implements :class:`algorithms.base.Checkpoint`; on resume the
arbiter agrees a step every party has, and ``latest()`` is capped at it, so all roles restart from the
same epoch.

What it reveals to whom: only SHA-256 digests of checkpoint states and model parts are reported to the
arbiter (so it can index them); the bytes never leave.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    event,
    insert,
    select,
)

from federation import codec

_meta = MetaData()
checkpoints_table = Table(
    "checkpoints", _meta,
    Column("job_id", String(64), primary_key=True),
    Column("step", Integer, primary_key=True),
    Column("state", LargeBinary, nullable=False),
    Column("at", Float, nullable=False),
)
models_table = Table(
    "model_parts", _meta,
    Column("model_id", String(80), primary_key=True),  # the training job's id (registry ids: model_names)
    Column("part", LargeBinary, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("at", Float, nullable=False),
)
model_names_table = Table(
    "model_names", _meta,
    Column("model_id", String(80), primary_key=True),  # the arbiter's registry id, e.g. "credit-lr-v3"
    Column("job_id", String(64), nullable=False),
    Column("at", Float, nullable=False),
)
alignments_table = Table(
    "alignments", _meta,
    Column("job_id", String(64), primary_key=True),
    Column("payload", LargeBinary, nullable=False),
    Column("at", Float, nullable=False),
)
ledger_table = Table(  # the privacy ledger: every message this silo received, per job and stage
    "ledger", _meta,
    Column("job_id", String(64), primary_key=True),
    Column("stage", String(32), primary_key=True),
    Column("entries", LargeBinary, nullable=False),  # codec-encoded list of LedgerEntry dicts
    Column("at", Float, nullable=False),
)


def private_sqlite_file(path: str | Path) -> Path:
    """Create (or tighten) a SQLite database file readable by its owner only (0600) before SQLite opens it.

    The stores hold the aligned ids, model parts and checkpoints; SQLite would create the file with the
    process umask (typically 0644) and gives its ``-wal`` / ``-shm`` / journal files the database file's mode.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    for suffix in ("-wal", "-shm", "-journal"):
        side = path.with_name(path.name + suffix)
        if side.exists() and not side.is_symlink():
            os.chmod(side, 0o600)
    return path


class SiloStore:
    """Local persistence of one silo (a SQLite file of mode 0600)."""

    def __init__(self, path: str | Path) -> None:
        path = private_sqlite_file(path)
        self.engine = create_engine(f"sqlite:///{path}")

        @event.listens_for(self.engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=10000")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        _meta.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # privacy ledger -------------------------------------------------------------------------------
    def save_ledger(self, job_id: str, stage: str, entries: list[dict[str, Any]]) -> None:
        """Keep (replace) the ledger entries of one stage of a job."""
        with self.engine.begin() as conn:
            conn.execute(delete(ledger_table).where((ledger_table.c.job_id == job_id)
                                                    & (ledger_table.c.stage == stage)))
            conn.execute(ledger_table.insert().values(job_id=job_id, stage=stage,
                                                      entries=codec.encode({"entries": entries}), at=time.time()))

    def ledger(self, job_id: str) -> list[dict[str, Any]]:
        """Every ledger entry of a job, stage by stage."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(ledger_table.c.entries).where(ledger_table.c.job_id == job_id)
                                .order_by(ledger_table.c.at)).all()
        return [e for (data,) in rows for e in codec.decode(data)["entries"]]

    # checkpoints ----------------------------------------------------------------------------------
    def save_checkpoint(self, job_id: str, step: int, state: dict[str, Any]) -> str:
        data = codec.encode(state)
        with self.engine.begin() as conn:
            conn.execute(delete(checkpoints_table).where((checkpoints_table.c.job_id == job_id)
                                                         & (checkpoints_table.c.step == step)))
            conn.execute(insert(checkpoints_table).values(job_id=job_id, step=step, state=data, at=time.time()))
        return hashlib.sha256(data).hexdigest()

    def checkpoint_steps(self, job_id: str) -> list[int]:
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(select(checkpoints_table.c.step)
                                               .where(checkpoints_table.c.job_id == job_id)
                                               .order_by(checkpoints_table.c.step))]

    def checkpoint_digests(self, job_id: str) -> list[list[Any]]:
        """``[[step, sha256], ...]`` of the job's checkpoints (what the arbiter indexes)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(checkpoints_table.c.step, checkpoints_table.c.state)
                                .where(checkpoints_table.c.job_id == job_id).order_by(checkpoints_table.c.step))
            return [[r[0], hashlib.sha256(r[1]).hexdigest()] for r in rows]

    def latest_checkpoint(self, job_id: str, max_step: int | None = None) -> tuple[int, dict[str, Any]] | None:
        query = select(checkpoints_table.c.step, checkpoints_table.c.state).where(
            checkpoints_table.c.job_id == job_id)
        if max_step is not None:
            query = query.where(checkpoints_table.c.step <= max_step)
        with self.engine.connect() as conn:
            row = conn.execute(query.order_by(checkpoints_table.c.step.desc()).limit(1)).first()
        return None if row is None else (row[0], codec.decode(row[1]))

    def truncate_checkpoints(self, job_id: str, after_step: int | None) -> None:
        """Drop checkpoints newer than ``after_step`` (all of them if None)."""
        cond = checkpoints_table.c.job_id == job_id
        if after_step is not None:
            cond = cond & (checkpoints_table.c.step > after_step)
        with self.engine.begin() as conn:
            conn.execute(delete(checkpoints_table).where(cond))

    # model parts ------------------------------------------------------------------------------------
    def save_model_part(self, model_id: str, part: dict[str, Any]) -> str:
        data = codec.encode(part)
        digest = hashlib.sha256(data).hexdigest()
        with self.engine.begin() as conn:
            conn.execute(delete(models_table).where(models_table.c.model_id == model_id))
            conn.execute(insert(models_table).values(model_id=model_id, part=data, sha256=digest, at=time.time()))
        return digest

    def name_model(self, model_id: str, job_id: str) -> None:
        """Record the registry id the arbiter gave the model trained by ``job_id``."""
        with self.engine.begin() as conn:
            if conn.execute(select(models_table.c.model_id).where(models_table.c.model_id == job_id)).first() is None:
                raise KeyError(f"no model part for job {job_id!r}")
            conn.execute(delete(model_names_table).where(model_names_table.c.model_id == model_id))
            conn.execute(insert(model_names_table).values(model_id=model_id, job_id=job_id, at=time.time()))

    def model_part(self, model_id: str) -> dict[str, Any] | None:
        """The private part of a model, by job id or by registry id."""
        found = self._model_row(model_id)
        return None if found is None else codec.decode(found[0])

    def model_part_sha256(self, model_id: str) -> str | None:
        """SHA-256 of the stored part bytes (what the arbiter's registry lists for this silo)."""
        found = self._model_row(model_id)
        return None if found is None else str(found[1])

    def _model_row(self, model_id: str) -> tuple[bytes, str] | None:
        with self.engine.connect() as conn:
            alias = conn.execute(select(model_names_table.c.job_id)
                                 .where(model_names_table.c.model_id == model_id)).first()
            key = alias[0] if alias is not None else model_id
            row = conn.execute(select(models_table.c.part, models_table.c.sha256)
                               .where(models_table.c.model_id == key)).first()
        return None if row is None else (bytes(row[0]), str(row[1]))

    def model_ids(self) -> list[str]:
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(select(models_table.c.model_id).order_by(models_table.c.at))]

    # alignment ----------------------------------------------------------------------------------------
    def save_alignment(self, job_id: str, payload: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(alignments_table).where(alignments_table.c.job_id == job_id))
            conn.execute(insert(alignments_table).values(job_id=job_id, payload=codec.encode(payload),
                                                         at=time.time()))

    def alignment(self, job_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(alignments_table.c.payload)
                               .where(alignments_table.c.job_id == job_id)).first()
        return None if row is None else codec.decode(row[0])


class SqliteCheckpoint:
    """:class:`algorithms.base.Checkpoint` backed by a :class:`SiloStore` (or any store with the same API)."""

    def __init__(self, store: SiloStore, job_id: str, max_step: int | None = None,
                 on_save: Any = None) -> None:
        self._store = store
        self._job_id = job_id
        self._max_step = max_step
        self._on_save = on_save
        self._lock = threading.Lock()

    def save(self, step: int, state: dict[str, Any]) -> None:
        with self._lock:
            digest = self._store.save_checkpoint(self._job_id, step, state)
            self._max_step = None  # new progress supersedes the resume cap
        if self._on_save is not None:
            self._on_save(step, digest)

    def latest(self) -> tuple[int, dict[str, Any]] | None:
        with self._lock:
            return self._store.latest_checkpoint(self._job_id, self._max_step)
