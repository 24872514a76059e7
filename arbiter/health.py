"""``fedrisk health``: is this party serving? (container HEALTHCHECK, Kubernetes probes, operators).

A probe runs next to the party it checks, with that party's own config and certificate:

* a **silo** is asked ``health`` on its control plane over mutual TLS (the control server answers the
  silo's own identity for this one operation only; see :mod:`silo.control`), so a passing probe means
  the table was validated, the store opened and the TLS material is valid;
* the **arbiter**: its job store answers ``SELECT 1`` (SQLite file or PostgreSQL server) and, with
  ``data_plane=True`` (``fedrisk arbiter serve``), its data-plane server completes a mutual-TLS
  handshake under the arbiter's own party id.

Wildcard listen addresses (``0.0.0.0``, ``[::]``) are probed on loopback, which NetworkPolicies never
block. What it reveals to whom: nothing leaves the party; the reply is the literal status ``serving``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc
from sqlalchemy import text

from arbiter.config import load_arbiter_config
from arbiter.store import JobStore
from federation.certs import TlsConfig
from silo.config import ConfigError, load_silo_config, load_toml
from silo.control import ControlClient, ControlError

_WILDCARDS = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]", "": "127.0.0.1", "::": "[::1]"}


@dataclass(frozen=True)
class Health:
    ok: bool
    party: str
    detail: str

    def line(self) -> str:
        return f"{self.party}: {'serving' if self.ok else 'unhealthy'} ({self.detail})"


def local_address(listen: str) -> str:
    """Where a probe on the same host reaches a server listening on ``listen``."""
    host, _, port = listen.rpartition(":")
    return f"{_WILDCARDS.get(host, host)}:{port}"


def _tls(files: object) -> TlsConfig:
    return TlsConfig(files.ca.read_bytes(), files.cert.read_bytes(), files.key.read_bytes())  # type: ignore[attr-defined]


def check_silo(config_path: str | Path, timeout: float = 5.0) -> Health:
    config = load_silo_config(config_path)
    address = local_address(config.control)
    client = ControlClient(config.party_id, address, _tls(config.tls))
    try:
        reply = client.call("health", timeout=timeout)
    except ControlError as exc:
        return Health(False, config.party_id, str(exc))
    finally:
        client.close()
    ok = reply.get("status") == "serving" and reply.get("party") == config.party_id
    return Health(ok, config.party_id, f"control plane at {address}: {reply.get('status')}")


def check_arbiter(config_path: str | Path, timeout: float = 5.0, data_plane: bool = True) -> Health:
    config = load_arbiter_config(config_path)
    try:
        store = JobStore(config.store)
        try:
            with store.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            store.close()
    except Exception as exc:  # any database error makes the probe fail with its message
        return Health(False, config.party_id, f"job store unreachable: {type(exc).__name__}: {exc}")
    detail = f"job store {store.engine.dialect.name} ok"
    if data_plane:
        address = local_address(config.listen)
        channel = grpc.secure_channel(address, _tls(config.tls).channel_credentials(),
                                      options=[("grpc.ssl_target_name_override", config.party_id)])
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            return Health(False, config.party_id, f"{detail}; data plane at {address} not ready within {timeout:g}s")
        finally:
            channel.close()
        detail += f"; data plane at {address} ok"
    return Health(True, config.party_id, detail)


def check(config_path: str | Path, timeout: float = 5.0, data_plane: bool = True) -> Health:
    """Silo or arbiter, told apart by the config: a silo has ``party.control``."""
    raw = load_toml(config_path)
    party = raw.get("party")
    if not isinstance(party, dict):
        raise ConfigError(f"{config_path}: missing [party] section")
    if "control" in party:
        return check_silo(config_path, timeout)
    return check_arbiter(config_path, timeout, data_plane=data_plane)
