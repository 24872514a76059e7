"""The channel abstraction every protocol role talks through, and its in-memory implementation.

A role sends a named message (``tag``) with a payload (see :mod:`federation.codec`) to a named party
and receives a named message from a named party. Tags are unique within a job (e.g.
``"epoch3.batch7.fore_gradient"``), so messages can be matched however the transport reorders them.

:class:`InMemoryNetwork` runs roles as threads of one process. Every message still goes through the
codec (encode on send, decode on receive), so the simulation exercises exactly the bytes a real
transport would carry, and the network can keep a transcript of what each party received — the
privacy tests read it.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from federation import codec
from federation.codec import Payload

T = TypeVar("T")

DEFAULT_TIMEOUT = 3600.0


class ChannelError(RuntimeError):
    """The transport failed: a peer is unreachable, closed, or did not answer in time."""


class ChannelTimeout(ChannelError):
    """No message with the expected tag arrived before the deadline."""


class Channel(ABC):
    """One party's view of the federation: send to and receive from named peers."""

    def __init__(self, party_id: str) -> None:
        self.party_id = party_id

    @abstractmethod
    def send(self, receiver: str, tag: str, payload: Payload) -> None:
        """Deliver ``payload`` to ``receiver`` under ``tag``; returns once the transport accepted it."""

    @abstractmethod
    def recv(self, sender: str, tag: str, timeout: float | None = None) -> Payload:
        """Block until the message ``tag`` from ``sender`` arrives and return its payload."""

    def broadcast(self, receivers: Iterable[str], tag: str, payload: Payload) -> None:
        """Send the same payload to several parties."""
        for receiver in receivers:
            self.send(receiver, tag, payload)


class PrefixedChannel(Channel):
    """A view of a channel whose tags all carry ``prefix`` (two scorings in one job cannot collide)."""

    def __init__(self, inner: Channel, prefix: str) -> None:
        super().__init__(inner.party_id)
        self._inner, self._prefix = inner, prefix

    def send(self, receiver: str, tag: str, payload: Payload) -> None:
        self._inner.send(receiver, f"{self._prefix}.{tag}", payload)

    def recv(self, sender: str, tag: str, timeout: float | None = None) -> Payload:
        return self._inner.recv(sender, f"{self._prefix}.{tag}", timeout)


@dataclass(frozen=True)
class Delivery:
    """One message as the receiver got it (for transcripts)."""

    sender: str
    receiver: str
    tag: str
    size: int
    payload: Payload


@dataclass
class _Mailbox:
    lock: threading.Condition = field(default_factory=threading.Condition)
    messages: dict[tuple[str, str], bytes] = field(default_factory=dict)


class InMemoryNetwork:
    """A set of parties in one process; messages are encoded bytes held in per-receiver mailboxes."""

    def __init__(self, record: bool = False) -> None:
        self._mailboxes: dict[str, _Mailbox] = {}
        self._closed = threading.Event()
        self._record = record
        self._transcript: list[Delivery] = []
        self._transcript_lock = threading.Lock()
        self.bytes_sent = 0

    def channel(self, party_id: str) -> InMemoryChannel:
        self._mailboxes.setdefault(party_id, _Mailbox())
        return InMemoryChannel(party_id, self)

    def close(self) -> None:
        """Wake every blocked receiver with an error (used when one role fails)."""
        self._closed.set()
        for box in self._mailboxes.values():
            with box.lock:
                box.lock.notify_all()

    def received_by(self, party_id: str) -> list[Delivery]:
        """Everything ``party_id`` received so far (requires ``record=True``)."""
        with self._transcript_lock:
            return [d for d in self._transcript if d.receiver == party_id]

    @property
    def transcript(self) -> list[Delivery]:
        with self._transcript_lock:
            return list(self._transcript)

    def _deliver(self, sender: str, receiver: str, tag: str, data: bytes) -> None:
        if self._closed.is_set():
            raise ChannelError("network closed")
        box = self._mailboxes.get(receiver)
        if box is None:
            raise ChannelError(f"unknown party {receiver!r}")
        with box.lock:
            key = (sender, tag)
            if key in box.messages:
                raise ChannelError(f"duplicate message {tag!r} from {sender!r} to {receiver!r}")
            box.messages[key] = data
            self.bytes_sent += len(data)
            box.lock.notify_all()

    def _take(self, receiver: str, sender: str, tag: str, timeout: float) -> bytes:
        box = self._mailboxes[receiver]
        deadline = time.monotonic() + timeout
        with box.lock:
            while (sender, tag) not in box.messages:
                if self._closed.is_set():
                    raise ChannelError("network closed while waiting for " + tag)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ChannelTimeout(f"{receiver} timed out waiting for {tag!r} from {sender!r}")
                box.lock.wait(min(remaining, 1.0))
            return box.messages.pop((sender, tag))

    def _note(self, delivery: Delivery) -> None:
        if self._record:
            with self._transcript_lock:
                self._transcript.append(delivery)


class InMemoryChannel(Channel):
    """A party's channel on an :class:`InMemoryNetwork`."""

    def __init__(self, party_id: str, network: InMemoryNetwork) -> None:
        super().__init__(party_id)
        self._network = network

    def send(self, receiver: str, tag: str, payload: Payload) -> None:
        self._network._deliver(self.party_id, receiver, tag, codec.encode(payload))

    def recv(self, sender: str, tag: str, timeout: float | None = None) -> Payload:
        data = self._network._take(self.party_id, sender, tag, DEFAULT_TIMEOUT if timeout is None else timeout)
        payload = codec.decode(data)
        self._network._note(Delivery(sender, self.party_id, tag, len(data), payload))
        return payload


def run_parties(roles: dict[str, Callable[[], T]], network: InMemoryNetwork | None = None) -> dict[str, T]:
    """Run each role's callable in its own thread; return their results or re-raise the first failure.

    If one role raises, the network is closed so the others stop waiting instead of hanging.
    """
    results: dict[str, Any] = {}
    errors: list[tuple[str, BaseException]] = []

    def runner(name: str, fn: Callable[[], T]) -> None:
        try:
            results[name] = fn()
        except BaseException as exc:  # re-raised in the caller's thread below
            errors.append((name, exc))
            if network is not None:
                network.close()

    threads = [threading.Thread(target=runner, args=(n, f), name=f"party-{n}", daemon=True)
               for n, f in roles.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        # Prefer the root cause over the "network closed" errors it triggered in the other roles.
        primary = next((e for e in errors if not isinstance(e[1], ChannelError)), errors[0])
        raise primary[1]
    return results
