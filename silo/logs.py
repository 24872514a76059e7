"""Structured logs for the services: one ``key=value`` (or JSON) line per event with party and job fields.

    configure_logging("bank")                      # key=value lines on stderr
    log = job_logger("fedrisk.silo", "bank", "job-1")
    log.info("epoch done", extra={"fields": {"epoch": 3}})
    # ts=2026-11-26T10:00:00Z level=INFO party=bank job=job-1 logger=fedrisk.silo msg="epoch done" epoch=3

What it reveals to whom: logs stay on the party's machine; they never contain rows, ids or weights.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any


class StructuredFormatter(logging.Formatter):
    def __init__(self, party: str, as_json: bool = False) -> None:
        super().__init__()
        self.party = party
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname,
            "party": getattr(record, "party", self.party),
        }
        job = getattr(record, "job", None)
        if job:
            fields["job"] = job
        fields["logger"] = record.name
        fields["msg"] = record.getMessage()
        fields.update(getattr(record, "fields", {}) or {})
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info).splitlines()[-1]
        if self.as_json:
            return json.dumps(fields, default=str)
        return " ".join(f"{k}={_quote(v)}" for k, v in fields.items())


def _quote(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if (not text or any(c in text for c in ' ="')) else text


def configure_logging(party: str, level: int = logging.INFO, as_json: bool = False,
                      log_file: str | None = None) -> None:
    """Route the ``fedrisk`` loggers to stderr (or ``log_file``) as structured lines tagged with ``party``."""
    handler: logging.Handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(StructuredFormatter(party, as_json))
    root = logging.getLogger("fedrisk")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


class JobLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        extra = dict(self.extra or {})
        extra.update(kwargs.get("extra", {}))
        kwargs["extra"] = extra
        return msg, kwargs


def job_logger(name: str, party: str, job: str | None = None) -> JobLogger:
    return JobLogger(logging.getLogger(name), {"party": party, "job": job})
