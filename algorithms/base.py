"""Shared contracts of protocol roles: who the parties are, how a role runs, how it checkpoints.

Every federated algorithm in :mod:`algorithms` exposes one class per role (guest, host, arbiter, …).
A role is built from its parameters, its party's private data and an optional :class:`Checkpoint`,
and ``role.run(channel)`` executes the protocol through a :class:`federation.channel.Channel` and
returns that party's own result (its part of the model). The same role objects run in threads over
:class:`federation.channel.InMemoryNetwork` and in separate processes over gRPC.

Checkpoint state is a codec payload (dict of numbers, arrays, strings): it is stored with
:mod:`federation.codec`, never pickled. A role that finds a checkpoint continues after that step; with
the same seed the result is identical to an uninterrupted run.

What it reveals: nothing by itself; see each algorithm's module docstring.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields
from typing import Any, Protocol, TypeVar

from federation import codec
from federation.channel import Channel

Payload = dict[str, Any]
P = TypeVar("P")


def params_from_dict(cls: type[P], d: Payload, error: type[Exception], what: str) -> P:
    """Build the parameter dataclass ``cls`` from a job spec, refusing unknown names with ``error``."""
    unknown = set(d) - {f.name for f in fields(cls)}  # type: ignore[arg-type]
    if unknown:
        raise error(f"unknown {what} {sorted(unknown)}")
    return cls(**d)


@dataclass(frozen=True)
class Parties:
    """Party ids of one job: the label-holding guest, the feature-holding hosts and the arbiter."""

    guest: str = "bank"
    hosts: tuple[str, ...] = ("insurer",)
    arbiter: str = "arbiter"

    def to_dict(self) -> Payload:
        return {"guest": self.guest, "hosts": list(self.hosts), "arbiter": self.arbiter}

    @staticmethod
    def from_dict(d: Payload) -> Parties:
        return Parties(guest=d["guest"], hosts=tuple(d["hosts"]), arbiter=d["arbiter"])

    @property
    def silos(self) -> tuple[str, ...]:
        return (self.guest, *self.hosts)


class Checkpoint(Protocol):
    """Per-party, per-job store of the latest protocol state."""

    def save(self, step: int, state: Payload) -> None: ...

    def latest(self) -> tuple[int, Payload] | None: ...


@dataclass
class MemoryCheckpoint:
    """Checkpoint kept in memory (in-process runs and tests); round-trips through the codec."""

    _saved: list[tuple[int, bytes]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def save(self, step: int, state: Payload) -> None:
        with self._lock:
            self._saved.append((step, codec.encode(state)))

    def latest(self) -> tuple[int, Payload] | None:
        with self._lock:
            if not self._saved:
                return None
            step, data = self._saved[-1]
        return step, codec.decode(data)

    @property
    def steps(self) -> list[int]:
        return [s for s, _ in self._saved]


class Role(Protocol):
    """A party's side of a protocol."""

    def run(self, channel: Channel) -> Any: ...
