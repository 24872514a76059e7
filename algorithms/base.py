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

import difflib
import threading
from dataclasses import dataclass, field, fields
from typing import Any, Protocol, TypeVar

from federation import codec
from federation.channel import Channel

Payload = dict[str, Any]
P = TypeVar("P")


def params_from_dict(cls: type[P], d: Payload, error: type[Exception], what: str) -> P:
    """Build the parameter dataclass ``cls`` from a job spec, refusing unknown names with ``error``."""
    valid = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(d) - set(valid))
    if unknown:
        close = difflib.get_close_matches(unknown[0], valid, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise error(f"unknown {what} {unknown}{hint}; valid: {', '.join(valid)}")
    return cls(**d)


class Parties:
    """Party ids of one job: a mapping silo role → party ids, plus the arbiter.

    Vertical jobs have one ``guest`` (labels) and one or more ``host`` parties; horizontal jobs have
    ``client`` parties. ``Parties("bank", ("insurer",))`` is shorthand for the vertical mapping;
    ``Parties(roles={"client": ("a", "b")})`` for any other. Equal and hashable by value.
    """

    __slots__ = ("_roles", "arbiter")

    def __init__(self, guest: str | None = "bank", hosts: tuple[str, ...] | list[str] = ("insurer",),
                 arbiter: str = "arbiter", *, roles: dict[str, tuple[str, ...]] | None = None) -> None:
        if roles is None:
            roles = {"guest": (guest,) if guest else (), "host": tuple(hosts)}
        self._roles: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
            (str(r), tuple(str(p) for p in ps)) for r, ps in roles.items() if ps)
        self.arbiter = str(arbiter)
        seen = [p for _, ps in self._roles for p in ps]
        if len(seen) != len(set(seen)) or self.arbiter in seen:
            raise ValueError(f"a party id appears twice in {self.roles} (arbiter {self.arbiter!r})")

    @property
    def roles(self) -> dict[str, tuple[str, ...]]:
        return dict(self._roles)

    def of(self, role: str) -> tuple[str, ...]:
        """The party ids that have silo role ``role`` (empty if none)."""
        return dict(self._roles).get(role, ())

    def role_of(self, party_id: str) -> str | None:
        """The silo role of ``party_id`` (``"arbiter"`` for the arbiter), or ``None`` if not in the job."""
        if party_id == self.arbiter:
            return "arbiter"
        return next((r for r, ps in self._roles if party_id in ps), None)

    @property
    def guest(self) -> str:
        guests = self.of("guest")
        if len(guests) != 1:
            raise ValueError(f"this job has no single guest: {self.roles}")
        return guests[0]

    @property
    def hosts(self) -> tuple[str, ...]:
        return self.of("host")

    @property
    def clients(self) -> tuple[str, ...]:
        return self.of("client")

    @property
    def silos(self) -> tuple[str, ...]:
        """Every silo party id, role by role in declaration order."""
        return tuple(p for _, ps in self._roles for p in ps)

    def to_dict(self) -> Payload:
        out: Payload = {"roles": {r: list(ps) for r, ps in self._roles}, "arbiter": self.arbiter}
        if len(self.of("guest")) == 1:  # vertical jobs also spell out guest / hosts (readable model files)
            out.update(guest=self.guest, hosts=list(self.hosts))
        return out

    @staticmethod
    def from_dict(d: Payload) -> Parties:
        if "roles" in d:
            return Parties(roles={str(r): tuple(ps) for r, ps in d["roles"].items()}, arbiter=d["arbiter"])
        return Parties(guest=d["guest"], hosts=tuple(d["hosts"]), arbiter=d["arbiter"])  # stores of version 0.1

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Parties) and (self._roles, self.arbiter) == (other._roles, other.arbiter)

    def __hash__(self) -> int:
        return hash((self._roles, self.arbiter))

    def __repr__(self) -> str:
        return f"Parties(roles={self.roles!r}, arbiter={self.arbiter!r})"


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
    """A party's side of a protocol: ``run`` executes it over a channel and returns the party's result
    (every plug-in's trainer and predictor factories return one, see :mod:`algorithms.api`)."""

    def run(self, channel: Channel) -> Any: ...
