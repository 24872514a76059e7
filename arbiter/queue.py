"""``fedrisk arbiter serve``: the arbiter as a long-running service that works off a job queue.

Jobs are submitted into the job store (``fedrisk arbiter submit job.toml`` checks the silos and stores
the job as ``queued``); :class:`JobQueue` runs queued jobs oldest first, at most ``concurrent_jobs`` at
once, each in its own thread on one :class:`~arbiter.runner.ArbiterService` (one data-plane node, one
store). Jobs are isolated by their id: every transport key is ``f"{job_id}.{attempt}.{stage}"``, every
checkpoint, model part and registry row is keyed by the job id, so two jobs on the same silos never see
each other's messages.

A restart of the arbiter (crash, SIGKILL, rolling update) loses nothing: on start the queue first takes
up every job left in a live stage (``aligning``/``training``/``evaluating``) by the previous process: it
is marked failed, aborted at the silos and resumed from the newest common checkpoint, exactly like
``fedrisk arbiter resume``. A job that fails for good stays ``failed`` (resume it by hand).

With PostgreSQL as the store the queue can be inspected and fed from any host (``fedrisk arbiter
status --config ...``); run one ``serve`` process per store.

What it reveals to whom: nothing beyond :mod:`arbiter.runner`; the queue is local scheduling.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from arbiter.runner import ALL_STAGES, ArbiterService
from arbiter.store import QUEUED
from silo.logs import job_logger

_log = logging.getLogger("fedrisk.arbiter")


class JobQueue:
    """Run the store's queued (and interrupted) jobs, ``concurrency`` at a time."""

    def __init__(self, service: ArbiterService, concurrency: int = 1, poll_seconds: float = 1.0,
                 on_done: Callable[[str, dict[str, Any] | BaseException], None] | None = None) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, not {concurrency}")
        self.service = service
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.on_done = on_done
        self.results: dict[str, dict[str, Any] | BaseException] = {}
        self._running: dict[str, threading.Thread] = {}
        self._recover: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.log = job_logger("fedrisk.arbiter", service.config.party_id)

    # lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> JobQueue:
        """Start the data plane and the scheduling loop; jobs a previous process left running come first."""
        self.service._start_node({})
        self._recover = [j.id for j in self.service.store.jobs() if j.state in ALL_STAGES]
        if self._recover:
            self.log.info("taking up interrupted jobs", extra={"fields": {"jobs": ",".join(self._recover)}})
        self._thread = threading.Thread(target=self._loop, name="job-queue", daemon=True)
        self._thread.start()
        return self

    def stop(self, wait: float = 0.0) -> None:
        """Stop taking jobs; running jobs keep going for up to ``wait`` seconds (a later start resumes them)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        until = time.monotonic() + wait
        for thread in list(self._running.values()):
            thread.join(max(0.0, until - time.monotonic()))

    def running(self) -> list[str]:
        with self._lock:
            return sorted(self._running)

    def wait_idle(self, timeout: float) -> bool:
        """Block until no job is queued or running (tests, ``serve --until-idle``); False on timeout."""
        until = time.monotonic() + timeout
        while time.monotonic() < until:
            if not self.running() and not self._recover and not self._queued():
                return True
            time.sleep(0.2)
        return False

    # scheduling --------------------------------------------------------------------------------------
    def _queued(self) -> list[str]:
        return [j.id for j in self.service.store.jobs() if j.state == QUEUED]

    def _next(self) -> tuple[str, bool] | None:
        with self._lock:
            busy = set(self._running)
        while self._recover:
            job_id = self._recover.pop(0)
            if job_id not in busy:
                return job_id, True
        for job_id in self._queued():
            if job_id not in busy:
                return job_id, False
        return None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                while len(self.running()) < self.concurrency and not self._stop.is_set():
                    found = self._next()
                    if found is None:
                        break
                    self._launch(*found)
            except Exception:  # the store was briefly unreachable: try again at the next poll
                _log.exception("job queue: scheduling failed")
            self._stop.wait(self.poll_seconds)

    def _launch(self, job_id: str, resume: bool) -> None:
        thread = threading.Thread(target=self._run, args=(job_id, resume), name=f"job-{job_id}", daemon=True)
        with self._lock:
            self._running[job_id] = thread
        self.log.info("job started" if not resume else "job resumed after an arbiter restart",
                      extra={"job": job_id, "fields": {"running": len(self._running)}})
        thread.start()

    def _run(self, job_id: str, resume: bool) -> None:
        log = job_logger("fedrisk.arbiter", self.service.config.party_id, job_id)
        outcome: dict[str, Any] | BaseException
        try:
            outcome = self.service.run(job_id, resume=resume)
            log.info("job finished", extra={"fields": {"model": outcome.get("model_id")}})
        except Exception as exc:
            outcome = exc
            log.warning("job failed", extra={"fields": {"error": str(exc)[:300]}})
        finally:
            with self._lock:
                self._running.pop(job_id, None)
        self.results[job_id] = outcome
        if self.on_done is not None:
            self.on_done(job_id, outcome)
