"""Waiting for a silo that is down polls every second but logs "waiting for silos" with backoff."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from algorithms.base import Parties
from arbiter.config import PartyAddress
from arbiter.pool import ArbiterError, SiloPool
from silo.control import SiloUnavailable
from silo.jobs import JobSpec


class _DownPool(SiloPool):
    polls = 0

    def status(self, pid: str, spec: JobSpec, **_: Any) -> dict[str, Any]:
        self.polls += 1
        raise SiloUnavailable(f"silo {pid!r} is down")


def test_waiting_for_silos_is_logged_with_backoff(caplog: pytest.LogCaptureFixture) -> None:
    spec = JobSpec("wait-log", "vertical_lr", Parties("bank", ("insurer",)))
    pool = _DownPool(None, {"insurer": PartyAddress("insurer", "host", "127.0.0.1:1", "127.0.0.1:2")})  # type: ignore[arg-type]
    log = logging.LoggerAdapter(logging.getLogger("fedrisk.test.wait"), {})
    with caplog.at_level(logging.INFO, logger="fedrisk.test.wait"), pytest.raises(ArbiterError, match="insurer"):
        pool.wait(spec, {}, deadline=6.5, log=log)
    waits = [r for r in caplog.records if r.getMessage() == "waiting for silos"]
    assert pool.polls >= 6  # polled every second
    assert 2 <= len(waits) <= 4  # logged at 0, 1, 3 s (then 7 s): not every second
