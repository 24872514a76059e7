"""Arbiter and job configuration (``arbiter.toml``, ``job.toml``).

``arbiter.toml``::

    [party]
    id = "arbiter"
    listen = "127.0.0.1:50060"       # data plane (the arbiter's protocol role receives here)
    store = "arbiter.sqlite"         # job store and model registry (SQLAlchemy URL or SQLite path)
    reports = "reports"              # where report files are written

    [tls]
    ca = "certs/ca.pem"
    cert = "certs/arbiter.pem"
    key = "certs/arbiter-key.pem"

    [queue]                          # `fedrisk arbiter serve` only
    concurrent_jobs = 2              # queued jobs run at once (each isolated by its job id)

``job.toml``::

    [job]
    name = "credit-lr"               # model name in the registry (versions count up)
    algorithm = "..."                # a name from algorithms.catalogue.names() (`fedrisk demo --help`)
    holdout = 0.2                    # evaluation fraction of the aligned ids (hash split)
    seed = 42
    # id = "credit-lr-001"           # default: name + timestamp
    # salt = "..."                   # default: stable per federation (same silos → same evaluation rows)
    silo_deadline = 120              # seconds to wait for a silo that went down before failing the job
    retries = 3                      # automatic resumes after a silo comes back
    min_intersection = 100           # PSI refuses smaller intersections (membership-oracle guard)

    [params]                         # passed to the algorithm
    max_epochs = 3

    [parties.bank]
    role = "guest"                   # one of the algorithm's roles (counts checked against it)
    address = "127.0.0.1:50061"      # data plane
    control = "127.0.0.1:50071"      # control plane

    [parties.insurer]
    role = "host"
    address = "127.0.0.1:50062"
    control = "127.0.0.1:50072"

Errors name the file and the key; nothing is written to the store while a config is invalid.

What it reveals to whom: nothing; this is local configuration.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from algorithms import catalogue
from algorithms.api import Algorithm, ParamsError
from algorithms.base import Parties
from silo.config import ConfigError, TLSFiles, load_toml, parse_tls, resolve
from silo.config_keys import strict_keys, untracked
from silo.jobs import JobSpec


@dataclass(frozen=True)
class ArbiterConfig:
    party_id: str
    listen: str
    store: str
    reports: Path
    tls: TLSFiles
    source_file: Path | None = None
    concurrent_jobs: int = 1  # [queue] concurrent_jobs: jobs `fedrisk arbiter serve` runs at once


@dataclass(frozen=True)
class PartyAddress:
    party_id: str
    role: str
    address: str
    control: str


@dataclass(frozen=True)
class JobConfig:
    spec: JobSpec
    parties: dict[str, PartyAddress]
    silo_deadline: float = 120.0
    retries: int = 3
    source_file: Path | None = None


def load_arbiter_config(path: str | Path) -> ArbiterConfig:
    path = Path(path).resolve()
    raw = load_toml(path)
    where = str(path)
    with strict_keys(raw, where, ConfigError):
        party = raw.get("party")
        if not isinstance(party, dict):
            raise ConfigError(f"{where}: missing [party] section")
        if "listen" not in party:
            raise ConfigError(f"{where}: missing party.listen")
        store = str(party.get("store", "arbiter.sqlite"))
        if "://" not in store:
            store = str(resolve(path.parent, store))
        queue = raw.get("queue", {})
        concurrent = queue.get("concurrent_jobs", 1) if isinstance(queue, dict) else None
        if not isinstance(concurrent, int) or isinstance(concurrent, bool) or concurrent < 1:
            raise ConfigError(f"{where}: queue.concurrent_jobs must be a positive integer, not {concurrent!r}")
        config = ArbiterConfig(party_id=str(party.get("id", "arbiter")), listen=str(party["listen"]), store=store,
                               reports=resolve(path.parent, party.get("reports", "reports")),
                               tls=parse_tls(raw, path.parent, where), source_file=path, concurrent_jobs=concurrent)
        return config


def load_job_config(path: str | Path, arbiter_id: str = "arbiter") -> JobConfig:
    path = Path(path).resolve()
    raw = load_toml(path)
    where = str(path)
    with strict_keys(raw, where, ConfigError):
        job = raw.get("job")
        if not isinstance(job, dict):
            raise ConfigError(f"{where}: missing [job] section")
        algorithm = job.get("algorithm")
        if not algorithm:
            raise ConfigError(f"{where}: missing job.algorithm")
        try:
            plugin: Algorithm = catalogue.get(str(algorithm))
        except ValueError as exc:
            raise ConfigError(f"{where}: job.algorithm: {exc}") from exc
        parties_raw = raw.get("parties")
        if not isinstance(parties_raw, dict) or not parties_raw:
            raise ConfigError(f"{where}: missing [parties.<id>] sections")
        parties: dict[str, PartyAddress] = {}
        for pid, entry in parties_raw.items():
            if not isinstance(entry, dict):
                raise ConfigError(f"{where}: [parties.{pid}] must be a table")
            for key in ("role", "address", "control"):
                if key not in entry:
                    raise ConfigError(f"{where}: missing parties.{pid}.{key}")
            try:
                plugin.role_spec(str(entry["role"]))
            except ParamsError as exc:
                raise ConfigError(f"{where}: parties.{pid}.{exc}") from exc
            parties[pid] = PartyAddress(pid, str(entry["role"]), str(entry["address"]), str(entry["control"]))
        roles = {r: tuple(p.party_id for p in parties.values() if p.role == r) for r in plugin.silo_roles}
        try:
            job_parties = Parties(roles=roles, arbiter=arbiter_id)
            plugin.check_parties(job_parties)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        name = str(job.get("name", f"{algorithm}-model"))
        job_id = str(job.get("id", f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"))
        params = untracked(raw.get("params", {}))  # the plug-in's Params refuses unknown names
        try:
            spec = JobSpec(job_id=job_id, algorithm=str(algorithm), parties=job_parties,
                           params=params, holdout=float(job.get("holdout", 0.2)), salt=str(job.get("salt", "")),
                           seed=int(job.get("seed", 42)), name=name,
                           min_intersection=int(job.get("min_intersection", 100)))
        except (ValueError, TypeError, RuntimeError) as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        config = JobConfig(spec=spec, parties=parties, silo_deadline=float(job.get("silo_deadline", 120.0)),
                           retries=int(job.get("retries", 3)), source_file=path)
        return config
