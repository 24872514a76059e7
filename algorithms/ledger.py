"""The privacy ledger: what crossed a party's boundary in a job, mapped to the plug-in's declared disclosures.

A :class:`LedgerChannel` wraps the channel a role runs on and records every message the party receives —
tag, sender, the sender's role, payload size in bytes — and the :class:`~algorithms.api.Disclosure` it falls
under: the first declaration whose ``receiver`` matches this party's role, whose ``sender`` matches the
sender's role and whose ``tag`` pattern matches the tag (:func:`fnmatch.fnmatchcase`; ``*`` matches any
role). A message no declaration covers is recorded as ``undeclared``: the transcript tests fail on it, and
the silo's ledger summary shows it to the arbiter and in the report. The code is generic: it knows roles,
tags and the declarations, never an algorithm.

What it reveals to whom: the ledger stays with its party (a silo keeps the entries in its own store); the
summary that goes to the arbiter holds counts and byte totals per declared disclosure (tag pattern, sender
role, kind) — the message pattern of the protocol, which the arbiter knows anyway — and never a payload.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from algorithms.api import Algorithm, Disclosure
from algorithms.base import Parties
from federation import codec
from federation.channel import Channel
from federation.codec import Payload

UNDECLARED = "undeclared"

#: The PSI alignment every vertical plug-in inherits (:meth:`algorithms.api.Algorithm.aligner`).
ALIGN_DISCLOSURES: tuple[Disclosure, ...] = (
    Disclosure("*", "*", "psi.*", "row_level", "PSI alignment: blinded ids of the other side, the set sizes "
               "and the intersection (which own rows are shared)"),
)


def declared(plugin: Algorithm) -> tuple[Disclosure, ...]:
    """Every disclosure a job of ``plugin`` runs under: the alignment's (if it has that stage) and its own."""
    return (*(ALIGN_DISCLOSURES if "align" in plugin.stages else ()), *plugin.disclosures)


@dataclass(frozen=True)
class LedgerEntry:
    """One received message: who sent it under which tag, how large it was, which disclosure covers it."""

    stage: str
    tag: str
    sender: str
    sender_role: str
    size: int
    kind: str  # a Disclosure kind, or "undeclared"
    pattern: str  # the matching Disclosure's tag pattern ("" if undeclared)
    what: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def classify(disclosures: Sequence[Disclosure], receiver_role: str, sender_role: str, tag: str) -> Disclosure | None:
    """The first declaration covering ``tag`` from ``sender_role`` to ``receiver_role`` (``None``: undeclared)."""
    for d in disclosures:
        if (fnmatch.fnmatchcase(receiver_role, d.receiver) and fnmatch.fnmatchcase(sender_role, d.sender)
                and fnmatch.fnmatchcase(tag, d.tag)):
            return d
    return None


class Ledger:
    """The entries of one party in one job (thread-safe: roles may receive from several threads)."""

    def __init__(self, party_id: str, parties: Parties, disclosures: Iterable[Disclosure]) -> None:
        self.party_id = party_id
        self.parties = parties
        self.role = parties.role_of(party_id) or "unknown"
        self.disclosures = tuple(disclosures)
        self.entries: list[LedgerEntry] = []
        self._lock = threading.Lock()

    def record(self, stage: str, sender: str, tag: str, payload: Payload) -> LedgerEntry:
        sender_role = self.parties.role_of(sender) or "unknown"
        found = classify(self.disclosures, self.role, sender_role, tag)
        entry = LedgerEntry(stage, tag, sender, sender_role, len(codec.encode(payload)),
                            found.kind if found else UNDECLARED, found.tag if found else "",
                            found.what if found else "")
        with self._lock:
            self.entries.append(entry)
        return entry

    def channel(self, inner: Channel, stage: str) -> LedgerChannel:
        """``inner`` with every received message recorded under ``stage``."""
        return LedgerChannel(inner, self, stage)

    @property
    def undeclared(self) -> list[LedgerEntry]:
        with self._lock:
            return [e for e in self.entries if e.kind == UNDECLARED]

    def summary(self) -> dict[str, Any]:
        """Counts and bytes per disclosure (pattern, sender role, kind) and per kind; JSON types only."""
        with self._lock:
            entries = list(self.entries)
        groups: dict[tuple[str, str, str, str], list[int]] = {}
        for e in entries:
            key = (e.pattern or e.tag, e.sender_role, e.kind, e.what)
            counts = groups.setdefault(key, [0, 0])
            counts[0] += 1
            counts[1] += e.size
        kinds: dict[str, dict[str, int]] = {}
        for (_, _, kind, _), (n, size) in groups.items():
            k = kinds.setdefault(kind, {"messages": 0, "bytes": 0})
            k["messages"] += n
            k["bytes"] += size
        return {"party": self.party_id, "role": self.role, "messages": len(entries),
                "bytes": sum(e.size for e in entries), "undeclared": sum(e.kind == UNDECLARED for e in entries),
                "by_kind": kinds,
                "by_disclosure": [{"tag": tag, "sender": sender, "kind": kind, "what": what, "messages": n,
                                   "bytes": size} for (tag, sender, kind, what), (n, size) in sorted(groups.items())]}


def merge_summaries(parts: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """One summary from a party's per-stage summaries (``None`` if there are none)."""
    parts = [p for p in parts if p]
    if not parts:
        return None
    groups: dict[tuple[str, str, str, str], list[int]] = {}
    kinds: dict[str, dict[str, int]] = {}
    for p in parts:
        for row in p.get("by_disclosure", []):
            counts = groups.setdefault((row["tag"], row["sender"], row["kind"], row["what"]), [0, 0])
            counts[0] += int(row["messages"])
            counts[1] += int(row["bytes"])
        for kind, v in p.get("by_kind", {}).items():
            k = kinds.setdefault(kind, {"messages": 0, "bytes": 0})
            k["messages"] += int(v["messages"])
            k["bytes"] += int(v["bytes"])
    first = parts[0]
    return {"party": first.get("party"), "role": first.get("role"),
            "messages": sum(int(p.get("messages", 0)) for p in parts),
            "bytes": sum(int(p.get("bytes", 0)) for p in parts),
            "undeclared": sum(int(p.get("undeclared", 0)) for p in parts), "by_kind": kinds,
            "by_disclosure": [{"tag": tag, "sender": sender, "kind": kind, "what": what, "messages": n, "bytes": size}
                              for (tag, sender, kind, what), (n, size) in sorted(groups.items())]}


class LedgerChannel(Channel):
    """A channel that records every message its party receives in a :class:`Ledger`; sends pass through."""

    def __init__(self, inner: Channel, ledger: Ledger, stage: str) -> None:
        super().__init__(inner.party_id)
        self.inner = inner
        self.ledger = ledger
        self.stage = stage

    def send(self, receiver: str, tag: str, payload: Payload) -> None:
        self.inner.send(receiver, tag, payload)

    def broadcast(self, receivers: Iterable[str], tag: str, payload: Payload) -> None:
        self.inner.broadcast(receivers, tag, payload)

    def recv(self, sender: str, tag: str, timeout: float | None = None) -> Payload:
        payload = self.inner.recv(sender, tag, timeout)
        self.ledger.record(self.stage, sender, tag, payload)
        return payload

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()


def disclosure_table() -> str:
    """The README's "declared disclosures" table, generated from every catalogued plug-in's declarations."""
    from algorithms import catalogue

    lines = ["| protocol | receiver | from | message tags | kind | what it may learn |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name in catalogue.names():
        for d in declared(catalogue.get(name)):
            what = d.what.replace("|", "\\|")
            lines.append(f"| {name} | {d.receiver} | {d.sender} | `{d.tag}` | {d.kind} | {what} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m algorithms.ledger --readme
    print(disclosure_table(), end="")
