"""The arbiter's handle on a job's silos: control clients, one status check, parallel calls, abort, wait.

:class:`SiloPool` holds one :class:`silo.control.ControlClient` per silo of a job (mutual TLS, the
arbiter's certificate). :meth:`SiloPool.check` is the one place where a silo's reply to ``check`` is
verified (reachable, same services version, the party it claims to be, and — when the job already
recorded them — the same schema digest); :meth:`SiloPool.parallel` runs a stage's calls at every silo
at once and aborts the others on the first failure; :meth:`SiloPool.abort` cancels transport keys at
every reachable silo; :meth:`SiloPool.wait` polls silos that went down until they are back.

What it reveals to whom: the silos receive the job spec and transport keys; the arbiter receives what
:mod:`silo.control` lists (status, counts, digests, hashes, aggregate metrics).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from arbiter.config import PartyAddress
from federation.certs import TlsConfig
from federation.channel import ChannelError
from silo.control import ControlClient, ControlError, SiloUnavailable
from silo.jobs import VERSION, JobCancelled, JobSpec

ABORT_GRACE_S = 10.0  # after a failure, how long the other calls of the stage get to unwind
WAIT_LOG_MAX_GAP_S = 30.0  # "waiting for silos" is logged with backoff up to this gap


class ArbiterError(RuntimeError):
    """The job cannot run or continue; the message says why and what to do."""


class SiloPool:
    """Control clients to the silos of one job (``parties``: party id → its addresses)."""

    def __init__(self, tls: TlsConfig, parties: Mapping[str, PartyAddress]) -> None:
        self.tls = tls
        self.parties = dict(parties)
        self._clients: dict[str, ControlClient] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def client(self, pid: str) -> ControlClient:
        party = self.parties[pid]
        with self._lock:
            client = self._clients.get(pid)
            if client is None or client.address != party.control:
                client = self._clients[pid] = ControlClient(pid, party.control, self.tls)
            return client

    def call(self, pid: str, op: str, timeout: float | None = 30.0, **fields: Any) -> dict[str, Any]:
        return self.client(pid).call(op, timeout=timeout, **fields)

    # ------------------------------------------------------------------------------------------ checks
    def status(self, pid: str, spec: JobSpec, *, expected: Mapping[str, str] | None = None,
               model_id: str | None = None, timeout: float = 10.0, what: str = "") -> dict[str, Any]:
        """Silo ``pid``'s verified status for ``spec`` (raises :class:`ArbiterError`; :class:`SiloUnavailable`
        is raised as is so callers can wait). ``expected``: schema digests recorded for the job;
        ``model_id``: the silo must hold its part of that model; ``what``: prefix of error messages."""
        fields: dict[str, Any] = {"spec": spec.to_dict()}
        if model_id:
            fields["model_id"] = model_id
        try:
            status = self.call(pid, "check", timeout=timeout, **fields)
        except SiloUnavailable:
            raise
        except ControlError as exc:
            raise ArbiterError(f"{what}{exc}") from exc
        if status.get("version") != VERSION:
            raise ArbiterError(f"{what}silo {pid!r} runs {status.get('version')!r}, the arbiter {VERSION!r}")
        if status.get("party") != pid:
            raise ArbiterError(f"{what}the silo at {self.parties[pid].control} says it is {status.get('party')!r}, "
                               f"not {pid!r}")
        digest = str(status.get("schema_digest"))
        if expected and expected.get(pid) and digest != expected[pid]:
            raise ArbiterError(f"{what}silo {pid!r}: its table's columns changed since the job started (schema "
                               f"digest {digest[:12]} != {expected[pid][:12]}); refusing to continue")
        return status

    def check(self, spec: JobSpec, *, expected: Mapping[str, str] | None = None, model_id: str | None = None,
              timeout: float = 10.0, what: str = "") -> dict[str, dict[str, Any]]:
        """:meth:`status` of every silo; an unreachable silo is an :class:`ArbiterError` naming it."""
        statuses: dict[str, dict[str, Any]] = {}
        for pid, party in self.parties.items():
            try:
                statuses[pid] = self.status(pid, spec, expected=expected, model_id=model_id, timeout=timeout,
                                            what=what)
            except SiloUnavailable as exc:
                raise ArbiterError(f"{what}silo {pid!r} is not reachable at {party.control}: {exc}") from exc
        return statuses

    def check_peers(self, spec: JobSpec, timeout: float = 5.0, what: str = "") -> None:
        """Ask every silo to try the data-plane link to each other silo of the job at the address of its own
        ``[peers]`` table (what it will really use), so a wrong address fails the job here, within a bounded
        time, naming the silo, the peer and the address, instead of hanging in ``aligning``."""
        problems: list[str] = []
        for pid in self.parties:
            others = [p for p in self.parties if p != pid]
            if not others:
                continue
            try:
                reply = self.call(pid, "check", timeout=timeout + 10.0, spec=spec.to_dict(), probe=others,
                                  probe_timeout=timeout)
            except ControlError as exc:
                raise ArbiterError(f"{what}{exc}") from exc
            links = reply.get("peers") or {}
            for peer in others:
                link = links.get(peer) or {}
                if not link.get("error"):  # works, or not in that silo's [peers] (see SiloService._probe)
                    continue
                used, named = link.get("address"), self.parties[peer].address
                differs = f"; the job file names {peer!r} at {named}" if used != named else ""
                problems.append(f"silo {pid!r} cannot reach {peer!r} at {used} (its [peers] entry{differs}): "
                                f"{link['error']}")
        if problems:
            raise ArbiterError(f"{what}job {spec.job_id!r}: data-plane links do not work: " + "; ".join(problems))

    def wait(self, spec: JobSpec, expected: Mapping[str, str], deadline: float, log: logging.LoggerAdapter,  # type: ignore[type-arg]
             resume_hint: str = "") -> None:
        """Poll every silo until it answers (same schema digests as ``expected``) or ``deadline`` seconds pass."""
        until = time.monotonic() + deadline
        waiting = set(self.parties)
        pause, next_log = 1.0, 0.0  # poll every second, but log with backoff (1, 2, 4, ... 30 s apart)
        log_gap = 1.0
        while waiting:
            for pid in sorted(waiting):
                try:
                    self.status(pid, spec, expected=expected, timeout=3.0)
                except SiloUnavailable:
                    continue
                waiting.discard(pid)
            if not waiting:
                return
            if time.monotonic() > until:
                raise ArbiterError(f"job {spec.job_id!r}: silos {sorted(waiting)} did not come back within "
                                   f"{deadline:.0f}s;{resume_hint}")
            now = time.monotonic()
            if now >= next_log:
                log.info("waiting for silos", extra={"fields": {"silos": ",".join(sorted(waiting)),
                                                                "left_s": int(until - now)}})
                next_log, log_gap = now + log_gap, min(log_gap * 2, WAIT_LOG_MAX_GAP_S)
            time.sleep(pause)

    # ------------------------------------------------------------------------------------------- calls
    def stage_calls(self, op: str, spec: JobSpec, key: str, **fields: Any) -> dict[str, Callable[[], Any]]:
        """One call of control operation ``op`` per silo, on transport key ``key`` (run them with
        :meth:`parallel`)."""
        return {pid: (lambda pid=pid: self.call(pid, op, timeout=None, spec=spec.to_dict(), key=key, **fields))
                for pid in self.parties}

    def abort(self, keys: list[str], op: str = "abort") -> None:
        """Cancel (``abort``) or free (``close``) the transport ``keys`` at every reachable silo."""
        for pid in self.parties:
            with contextlib.suppress(ControlError):  # a dead silo has nothing left to abort
                self.call(pid, op, timeout=3.0, keys=keys)

    @staticmethod
    def parallel(calls: Mapping[str, Callable[[], Any]], on_error: Callable[[], None]) -> dict[str, Any]:
        """Run ``calls`` in threads; on the first failure call ``on_error`` (abort the others), give them
        :data:`ABORT_GRACE_S` to unwind and raise the most telling error (an unreachable silo first, a
        cancelled call last)."""
        results: dict[str, Any] = {}
        errors: list[tuple[str, BaseException]] = []
        lock = threading.Lock()

        def runner(name: str, fn: Callable[[], Any]) -> None:
            try:
                results[name] = fn()
            except BaseException as exc:
                with lock:
                    first = not errors
                    errors.append((name, exc))
                if first:
                    on_error()

        threads = [threading.Thread(target=runner, args=item, daemon=True, name=f"call-{item[0]}")
                   for item in calls.items()]
        for t in threads:
            t.start()
        grace_until: float | None = None
        for t in threads:
            while t.is_alive():
                t.join(0.2)
                if errors and grace_until is None:
                    grace_until = time.monotonic() + ABORT_GRACE_S
                if grace_until is not None and time.monotonic() > grace_until:
                    break  # aborted calls still unwinding (e.g. a send retrying a dead peer): do not wait
        if errors:
            def rank(e: tuple[str, BaseException]) -> int:
                exc = e[1]
                return 0 if isinstance(exc, SiloUnavailable) else 2 if isinstance(exc, JobCancelled | ChannelError) \
                    else 1
            raise sorted(errors, key=rank)[0][1]
        return results


__all__ = ["ABORT_GRACE_S", "ArbiterError", "SiloPool"]
