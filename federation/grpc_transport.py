"""The real transport: gRPC over mutual TLS, implementing :class:`federation.channel.Channel`.

Each party runs one :class:`PartyNode`: a gRPC server (its inbox, mailboxes keyed by job id) plus
client links to its peers. ``node.channel(job_id)`` returns a :class:`GrpcChannel`, a drop-in
replacement for :class:`~federation.channel.InMemoryChannel`, so the same protocol roles run
unchanged in-process and across machines.

Sending a message = one client-streaming ``Inbox.Deliver`` call to the receiver: an
:class:`Envelope` (job id, tag, sender, receiver, sequence number, Paillier key fingerprints of the
ciphertext vectors inside, payload size and SHA-256) followed by the :mod:`federation.codec` payload in
1 MiB chunks (no size limit from gRPC's 4 MB default; ``max_payload_bytes`` bounds it).

Guarantees:

* mutual TLS only: the server requires a client certificate signed by the federation CA, the client
  verifies the server against the CA *and* pins it to the receiver's party id (TLS target name =
  party id, present as a DNS SAN in every certificate made by :mod:`federation.certs`);
* the envelope sender must equal the common name of the caller's certificate (a certificate with exactly
  one CN), and the envelope receiver must be this node, otherwise ``PERMISSION_DENIED``; a caller whose
  certificate lists IP addresses must connect from one of them (:func:`federation.certs.address_mismatch`);
* a certificate of the federation's CA is not enough: a job's mailbox accepts only the job's parties
  (given to :meth:`PartyNode.channel`); before it is opened, only the parties of the node's peer table
  (anyone else is told ``UNAVAILABLE`` and retries, nothing is stored);
* bounded memory: every payload is counted against a cap per sender and a cap for the node (stored and
  being received); beyond them the sender is told ``UNAVAILABLE`` and backs off; a stream that stalls is
  cancelled after the deadline a sender of that size uses;
* ``UNAVAILABLE`` is retried with exponential backoff (jittered) until ``RetryPolicy.give_up_after``;
  each attempt has a deadline that grows with the payload size; a failed verification of the server's
  certificate is not retried (:class:`TlsVerificationError`);
* exactly-once application: the receiver remembers every accepted ``(job, tag, sender, seq)``; a
  re-delivered or replayed message with that key is acknowledged as a duplicate and dropped, a
  different message re-using a tag is refused (``ALREADY_EXISTS``), a closed job refuses everything;
* nothing is unpickled: payloads are decoded by :func:`federation.codec.decode` on ``recv``, and the
  key fingerprints found in the payload must match those the envelope announced.

What it reveals: to the receiver, exactly the payload plus the envelope (job id, tag, sender, size,
sequence number, key fingerprints); to a network observer, only TLS metadata (endpoints, timing,
sizes). Peers learn each other's certificate (party id, host names).

Usage (one process per party in production; threads work too)::

    from federation.certs import provision, TlsConfig
    from federation.grpc_transport import PartyNode

    provision("certs", ["bank", "insurer", "arbiter"])
    peers = {"bank": "127.0.0.1:50051", "insurer": "127.0.0.1:50052", "arbiter": "127.0.0.1:50053"}
    with PartyNode("bank", peers["bank"], TlsConfig.from_dir("certs", "bank"), peers) as node:
        channel = node.channel("job-42")                 # a federation.channel.Channel
        channel.send("insurer", "hello", {"x": 1})
        reply = channel.recv("insurer", "hello.reply", timeout=30)
        result = SomeGuestRole(...).run(channel)         # roles run unchanged
        node.close_job("job-42")                         # free the mailbox, refuse late messages
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc

from federation import codec
from federation.certs import CertificateError, TlsConfig, address_mismatch, check_party_id, peer_common_name
from federation.channel import DEFAULT_TIMEOUT, Channel, ChannelError, ChannelTimeout
from federation.codec import Payload
from federation.proto import transport_pb2 as pb
from federation.proto import transport_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20
DEFAULT_MAX_PAYLOAD = 1 << 30
#: What a node holds in memory for one sender / for all (stored and being received); beyond, senders retry.
DEFAULT_MAX_PEER_BYTES = 2 << 30
DEFAULT_MAX_TOTAL_BYTES = 4 << 30
#: How long one connection attempt to a peer may take (TCP, TLS and HTTP/2 handshakes): gRPC's default.
CONNECT_TIMEOUT_MS = 20_000
JOB_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


class PeerRejected(ChannelError):
    """The receiver refused the message (identity mismatch, tag re-use, closed job, size, ...)."""


class TlsVerificationError(ChannelError):
    """We could not verify the peer (certificate of another CA, expired, or not the expected party id)."""


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff and deadlines of a send (seconds)."""

    initial_backoff: float = 0.1
    max_backoff: float = 5.0
    multiplier: float = 2.0
    give_up_after: float = 120.0  # total time spent retrying UNAVAILABLE before raising ChannelError
    call_timeout: float = 30.0  # deadline of one attempt ...
    seconds_per_mib: float = 0.5  # ... plus this much per MiB of payload

    def deadline_for(self, size: int) -> float:
        return self.call_timeout + self.seconds_per_mib * size / CHUNK_SIZE


@dataclass(frozen=True)
class Message:
    """A received message with its envelope data."""

    job_id: str
    sender: str
    tag: str
    seq: int
    key_fingerprints: tuple[str, ...]
    payload: Payload


def key_fingerprints(payload: Any) -> list[str]:
    """Sorted distinct key fingerprints of every encrypted value inside a payload (Paillier ciphertext
    vectors: the codec extensions registered with a fingerprint)."""
    return codec.fingerprints(payload)


def check_job_id(job_id: str) -> str:
    if not isinstance(job_id, str) or not JOB_ID_PATTERN.match(job_id):
        raise ValueError(f"invalid job id {job_id!r}: 1-128 characters of letters, digits, '.', '_', ':', '-'")
    return job_id


# ----------------------------------------------------------------------------------------------- inbox


@dataclass
class _Stored:
    envelope: pb.Envelope
    data: bytes


@dataclass
class _JobBox:
    messages: dict[tuple[str, str], _Stored] = field(default_factory=dict)
    accepted: dict[tuple[str, str], int] = field(default_factory=dict)  # (sender, tag) -> seq
    parties: frozenset[str] | None = None  # the job's parties, once a local channel opened the mailbox


class _Duplicate(Exception):
    pass


class _Full(Exception):
    """The receiver's memory cap for this sender or in total is reached: retry later."""


ALLOW, RETRY, DENY = "allow", "retry", "deny"


class _Inbox:
    """Mailboxes of one node, keyed by job id; thread-safe."""

    def __init__(self, max_peer_bytes: int = 1 << 62, max_total_bytes: int = 1 << 62) -> None:
        self._cond = threading.Condition()
        self._jobs: dict[str, _JobBox] = {}
        self._closed_jobs: set[str] = set()
        self._stopped = False
        self.max_peer_bytes = max_peer_bytes
        self.max_total_bytes = max_total_bytes
        self._peer_bytes: dict[str, int] = {}  # stored + being received, per sender
        self._total_bytes = 0

    def open(self, job_id: str, parties: Iterable[str] | None = None) -> bool:
        """Ensure a mailbox exists (accepting ``parties`` only, when given); True if it was created now."""
        with self._cond:
            if job_id in self._closed_jobs:
                raise ChannelError(f"job {job_id!r} was closed on this node")
            box = self._jobs.get(job_id)
            created = box is None
            if box is None:
                box = self._jobs[job_id] = _JobBox()
            if parties is not None:
                box.parties = frozenset(parties)
                for key in [k for k in box.messages if k[0] not in box.parties]:  # early arrivals of outsiders
                    self._release(key[0], len(box.messages.pop(key).data))
            return created

    def admits(self, job_id: str, sender: str, peers: Iterable[str]) -> str:
        """Whether ``sender`` may deliver into ``job_id``: a job's parties once its mailbox is open; before,
        the parties of this node's peer table, and any other certificate is asked to retry later."""
        with self._cond:
            box = self._jobs.get(job_id)
            if box is not None and box.parties is not None:
                return ALLOW if sender in box.parties else DENY
            if sender in peers:
                return ALLOW
            return RETRY if box is None else DENY

    def reserve(self, sender: str, size: int) -> None:
        """Count ``size`` bytes against the sender's and the node's caps, or raise :class:`_Full`."""
        with self._cond:
            mine = self._peer_bytes.get(sender, 0)
            if mine + size > self.max_peer_bytes or self._total_bytes + size > self.max_total_bytes:
                raise _Full(f"inbox holds {mine} bytes from {sender!r} and {self._total_bytes} in total "
                            f"(caps {self.max_peer_bytes} / {self.max_total_bytes}): retry later")
            self._peer_bytes[sender] = mine + size
            self._total_bytes += size

    def release(self, sender: str, size: int) -> None:
        with self._cond:
            self._release(sender, size)

    def _release(self, sender: str, size: int) -> None:
        left = self._peer_bytes.get(sender, 0) - size
        if left > 0:
            self._peer_bytes[sender] = left
        else:
            self._peer_bytes.pop(sender, None)
        self._total_bytes = max(0, self._total_bytes - size)

    @property
    def held_bytes(self) -> int:
        with self._cond:
            return self._total_bytes

    def close_job(self, job_id: str) -> None:
        with self._cond:
            box = self._jobs.pop(job_id, None)
            if box is not None:
                for (sender, _), stored in box.messages.items():
                    self._release(sender, len(stored.data))
            self._closed_jobs.add(job_id)
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def is_closed(self, job_id: str) -> bool:
        with self._cond:
            return job_id in self._closed_jobs

    def seen(self, env: pb.Envelope) -> bool:
        with self._cond:
            box = self._jobs.get(env.job_id)
            return box is not None and box.accepted.get((env.sender, env.tag)) == env.seq

    def put(self, env: pb.Envelope, data: bytes) -> bool:
        """Store a message; returns whether it is a duplicate. Raises PeerRejected on conflicts."""
        with self._cond:
            if env.job_id in self._closed_jobs:
                raise PeerRejected(f"job {env.job_id!r} is closed on {env.receiver!r}")
            box = self._jobs.setdefault(env.job_id, _JobBox())
            key = (env.sender, env.tag)
            previous = box.accepted.get(key)
            if previous == env.seq:
                return True
            if previous is not None:
                raise _Duplicate(f"tag {env.tag!r} of job {env.job_id!r} from {env.sender!r} was already used "
                                 f"(seq {previous}, now {env.seq})")
            box.accepted[key] = env.seq
            box.messages[key] = _Stored(env, data)
            self._cond.notify_all()
            return False

    def _wait(self, job_id: str, ready: Callable[[_JobBox], tuple[str, str] | None], timeout: float,
              what: str) -> _Stored:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self._stopped:
                    raise ChannelError(f"node stopped while waiting for {what}")
                box = self._jobs.get(job_id)
                if box is None:
                    raise ChannelError(f"job {job_id!r} was closed while waiting for {what}")
                key = ready(box)
                if key is not None:
                    stored = box.messages.pop(key)
                    self._release(key[0], len(stored.data))
                    return stored
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ChannelTimeout(f"timed out waiting for {what} (job {job_id!r})")
                self._cond.wait(min(remaining, 1.0))

    def take(self, job_id: str, sender: str, tag: str, timeout: float) -> _Stored:
        key = (sender, tag)
        return self._wait(job_id, lambda box: key if key in box.messages else None, timeout,
                          f"{tag!r} from {sender!r}")


# ---------------------------------------------------------------------------------------------- server


def _peer_common_name(context: grpc.ServicerContext) -> str | None:
    """The peer certificate's CN if it has exactly one (read from the certificate: gRPC shows only one)."""
    return peer_common_name(context.auth_context())


def _peer_certificate(context: grpc.ServicerContext) -> bytes | None:
    pems = context.auth_context().get("x509_pem_cert") or []
    return pems[0] if len(pems) == 1 else None


class _InboxServicer(pb_grpc.InboxServicer):
    def __init__(self, node: PartyNode) -> None:
        self._node = node

    def Deliver(self, request_iterator: Iterator[pb.Chunk], context: grpc.ServicerContext) -> pb.Ack:
        node = self._node
        peer = _peer_common_name(context)
        first = next(request_iterator, None)
        if first is None or not first.HasField("envelope"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first chunk must carry the envelope")
        env = first.envelope
        mismatch = address_mismatch(context.peer(), _peer_certificate(context))
        if mismatch is not None:
            log.warning("%s: refused %r from %r: %s", node.party_id, env.tag, peer, mismatch)
            context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{peer!r}: {mismatch}")
        if peer is None or env.sender != peer:
            log.warning("%s: refused %r claiming sender %r from certificate CN %r", node.party_id, env.tag,
                        env.sender, peer)
            context.abort(grpc.StatusCode.PERMISSION_DENIED,
                          f"envelope sender {env.sender!r} does not match the certificate CN {peer!r}")
        if env.receiver != node.party_id:
            context.abort(grpc.StatusCode.PERMISSION_DENIED,
                          f"message for {env.receiver!r} delivered to {node.party_id!r}")
        if not JOB_ID_PATTERN.match(env.job_id) or not env.tag:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "invalid job id or empty tag")
        if env.payload_size > node.max_payload_bytes:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          f"payload of {env.payload_size} bytes exceeds {node.max_payload_bytes}")
        if node._inbox.is_closed(env.job_id):
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"job {env.job_id!r} is closed on {node.party_id!r}")
        admitted = node._inbox.admits(env.job_id, env.sender, node.peers)
        if admitted == DENY:  # a certificate of the CA is not enough: only the job's parties
            log.warning("%s: refused %r from %r, not a party of job %r", node.party_id, env.tag, env.sender,
                        env.job_id)
            context.abort(grpc.StatusCode.PERMISSION_DENIED,
                          f"{env.sender!r} is not a party of job {env.job_id!r} on {node.party_id!r}")
        if admitted == RETRY:  # not in our peer table and the job is not open here yet: nothing is stored
            context.abort(grpc.StatusCode.UNAVAILABLE,
                          f"job {env.job_id!r} is not open on {node.party_id!r} for {env.sender!r} yet")
        if node._inbox.seen(env):  # retry or replay of an accepted message: do not read it again
            return pb.Ack(duplicate=True)
        try:
            node._inbox.reserve(env.sender, env.payload_size)
        except _Full as exc:  # back-pressure: the sender backs off and retries
            context.abort(grpc.StatusCode.UNAVAILABLE, f"{node.party_id!r}: {exc}")
        kept = False
        # a stream that stalls is cancelled after the deadline a sender of this size would use
        timer = threading.Timer(node.retry.deadline_for(env.payload_size) + node.retry.call_timeout, context.cancel)
        timer.daemon = True
        timer.start()
        try:
            buf = bytearray()
            for chunk in request_iterator:
                if chunk.HasField("envelope"):
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, "only the first chunk may carry an envelope")
                buf += chunk.data
                if len(buf) > env.payload_size:
                    context.abort(grpc.StatusCode.INVALID_ARGUMENT, "more payload bytes than announced")
            data = bytes(buf)
            del buf
            if len(data) != env.payload_size or hashlib.sha256(data).digest() != env.payload_sha256:
                context.abort(grpc.StatusCode.DATA_LOSS, f"payload of {env.tag!r} is incomplete or corrupted")
            try:
                duplicate = node._inbox.put(env, data)
            except _Duplicate as exc:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, str(exc))
            except PeerRejected as exc:
                context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
            kept = not duplicate
            return pb.Ack(duplicate=duplicate)
        finally:
            timer.cancel()
            if not kept:
                node._inbox.release(env.sender, env.payload_size)


# ---------------------------------------------------------------------------------------------- client

_RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE})  # incl. "inbox full" and "job not open yet"
# our own check of the server failed (the server refusing *our* certificate looks like a closed socket)
_TLS_FAILURE = re.compile(r"CERTIFICATE_VERIFY_FAILED|Hostname Verification|verification check failed", re.I)


class _PeerLink:
    """A TLS channel to one peer, pinned to its party id."""

    def __init__(self, peer_id: str, address: str, tls: TlsConfig) -> None:
        self.peer_id = peer_id
        self.address = address
        options = [
            ("grpc.ssl_target_name_override", peer_id),
            ("grpc.enable_retries", 0),  # retries are ours (with dedup), not gRPC's
            # reconnect soon after a peer restarts (backoff 0.1 s, growing to 2 s) ...
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 2000),
            # ... but give each attempt gRPC's default 20 s to connect: this option is the *minimum connect
            # timeout* (TCP + TLS + HTTP/2 handshake). At 100 ms a lost SYN (retransmitted after 1 s) or a
            # long-haul link with a 50 ms round trip failed the attempt, and a link check with it.
            ("grpc.min_reconnect_backoff_ms", CONNECT_TIMEOUT_MS),
        ]
        self._channel = grpc.secure_channel(address, tls.channel_credentials(), options=options)
        self._stub = pb_grpc.InboxStub(self._channel)

    def deliver(self, env: pb.Envelope, data: bytes, policy: RetryPolicy) -> bool:
        """Send with retries; returns True if the receiver already had this message."""

        def chunks() -> Iterator[pb.Chunk]:
            yield pb.Chunk(envelope=env)
            view = memoryview(data)
            for start in range(0, len(data), CHUNK_SIZE):
                yield pb.Chunk(data=bytes(view[start:start + CHUNK_SIZE]))

        give_up = time.monotonic() + policy.give_up_after
        backoff = policy.initial_backoff
        attempt = 0
        while True:
            attempt += 1
            try:
                ack = self._stub.Deliver(chunks(), timeout=policy.deadline_for(len(data)))
                return bool(ack.duplicate)
            except grpc.RpcError as exc:
                code, details = exc.code(), exc.details()
                what = f"{env.tag!r} from {env.sender!r} to {self.peer_id!r} at {self.address}"
                if code in _RETRYABLE and _TLS_FAILURE.search(details or ""):  # misconfiguration: do not retry
                    cause = describe_failure(self.peer_id, self.address, code, details or "", plane="data")
                    raise TlsVerificationError(f"cannot verify {self.peer_id!r}, sending {what}: {cause}") from exc
                if code in _RETRYABLE:
                    if time.monotonic() + backoff > give_up:
                        raise ChannelError(f"gave up sending {what} after {attempt} attempts: {details}") from exc
                    log.debug("retrying %s in %.2fs (%s)", what, backoff, details)
                    time.sleep(backoff * random.uniform(0.8, 1.2))
                    backoff = min(backoff * policy.multiplier, policy.max_backoff)
                    continue
                if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise ChannelTimeout(f"sending {what} exceeded its deadline") from exc
                if code == grpc.StatusCode.UNIMPLEMENTED:  # swapped ports: not an inbox at that address
                    cause = describe_failure(self.peer_id, self.address, code, details or "", plane="data")
                    raise PeerRejected(f"sending {what}: {cause}") from exc
                raise PeerRejected(f"{self.peer_id!r} refused {what}: {code.name} {details}") from exc

    def probe(self, sender: str, timeout: float) -> str | None:
        """One handshake with the peer's data plane: ``None`` if it is reachable, verified us and we verified
        it as ``peer_id``; otherwise why not, in words. The probe is an envelope without a tag, which the
        receiver refuses (``INVALID_ARGUMENT``) after every identity check and before storing anything."""
        env = pb.Envelope(job_id="probe", tag="", sender=sender, receiver=self.peer_id, seq=0, payload_size=0)
        until = time.monotonic() + timeout
        backoff = 0.1
        while True:  # a transient failure (a connection reset on a lossy link) is tried again until `timeout`
            try:
                self._stub.Deliver(iter([pb.Chunk(envelope=env)]), timeout=max(until - time.monotonic(), 0.01))
            except grpc.RpcError as exc:
                code, details = exc.code(), exc.details() or ""
                if code == grpc.StatusCode.INVALID_ARGUMENT:
                    return None
                transient = code in _RETRYABLE and not MISCONFIGURED_TLS.search(details)
                if transient and time.monotonic() + backoff < until:
                    time.sleep(backoff)
                    backoff = min(2 * backoff, 1.0)
                    continue
                return describe_failure(self.peer_id, self.address, code, details, plane="data")
            return None

    def close(self) -> None:
        self._channel.close()


# TLS failures that are configuration errors (never transient): our CA did not sign the peer's certificate, the
# peer's CA did not sign ours, or the certificate at that address is another party's
MISCONFIGURED_TLS = re.compile(r"CERTIFICATE_VERIFY_FAILED|unknown ca|Hostname Verification|verification check failed"
                               r"|bad certificate|certificate verify", re.I)


def describe_failure(peer_id: str, address: str, code: grpc.StatusCode | None, details: str, *, plane: str,
                     ca: str = "") -> str:
    """A failed call to ``peer_id`` at ``address`` in words that name the likely cause (wrong CA, a service of
    another party or of the other plane at that port, nothing listening, no answer in time)."""
    text = details or ""
    other = "control" if plane == "data" else "data"
    where = f"{peer_id!r} at {address}"
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return (f"the service at {address} is not a {plane} plane (a {other} plane, or another service, answers "
                f"there): check the port given for {peer_id!r}")
    if re.search(r"Hostname Verification|verification check failed|subject alt|does not match", text, re.I):
        return (f"TLS handshake with {where} failed: the certificate presented there is not {peer_id!r}'s (another "
                f"party's service at that address?): {text}")
    if re.search(r"unknown ca|bad certificate", text, re.I):
        return (f"TLS handshake with {where} failed: it does not accept our certificate (not signed by the CA it "
                f"trusts: are both sides using the federation's ca.pem?): {text}")
    if re.search(r"CERTIFICATE_VERIFY_FAILED|certificate verify|self.signed|unable to get", text, re.I):
        return (f"TLS handshake with {where} failed: its certificate is not signed by our CA{f' ({ca})' if ca else ''}"
                f" (are both sides using the federation's ca.pem?): {text}")
    if re.search(r"handshake|ssl|tls|alert", text, re.I):
        return f"TLS handshake with {where} failed: {text}"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"{where} did not answer in time (nothing listening there, or a firewall drops the packets)"
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return f"{where} refused us: {text}"
    if re.search(r"connection refused|failed to connect|connect failed", text, re.I):
        return f"{where} is not reachable: nothing accepts connections there ({text})"
    return f"{where} is not reachable: {code.name if code else 'error'} {text}"


# ------------------------------------------------------------------------------------------------ node


class PartyNode:
    """One party's endpoint: inbox server + links to peers. Start it, then take per-job channels.

    ``peers`` maps party id -> ``host:port``. ``listen_address`` may use port 0 (see :attr:`port`).
    """

    def __init__(self, party_id: str, listen_address: str, tls: TlsConfig, peers: dict[str, str] | None = None,
                 *, retry: RetryPolicy | None = None, max_payload_bytes: int = DEFAULT_MAX_PAYLOAD,
                 max_peer_bytes: int = DEFAULT_MAX_PEER_BYTES, max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
                 max_workers: int = 8) -> None:
        self.party_id = check_party_id(party_id)
        if tls.common_name != party_id:
            raise CertificateError(f"certificate is for {tls.common_name!r}, not for party {party_id!r}")
        self.listen_address = listen_address
        self.tls = tls
        self.peers: dict[str, str] = dict(peers or {})
        self.retry = retry or RetryPolicy()
        self.max_payload_bytes = max_payload_bytes
        self._max_workers = max_workers
        self._inbox = _Inbox(max_peer_bytes, max_total_bytes)
        self._links: dict[str, _PeerLink] = {}
        self._seq: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self._server: grpc.Server | None = None
        self.port: int | None = None

    # lifecycle
    def start(self) -> PartyNode:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=self._max_workers,
                                                        thread_name_prefix=f"inbox-{self.party_id}"),
                             options=[("grpc.so_reuseport", 0)])
        pb_grpc.add_InboxServicer_to_server(_InboxServicer(self), server)
        port = server.add_secure_port(self.listen_address, self.tls.server_credentials())
        if port == 0:
            raise ChannelError(f"{self.party_id}: cannot listen on {self.listen_address}")
        server.start()
        self._server, self.port = server, port
        return self

    def stop(self, grace: float = 1.0) -> None:
        """Stop serving, wake every blocked ``recv`` with ChannelError, close peer links."""
        self._inbox.stop()
        if self._server is not None:
            self._server.stop(grace).wait(grace + 1.0)
            self._server = None
        with self._lock:
            links, self._links = list(self._links.values()), {}
        for link in links:
            link.close()

    def __enter__(self) -> PartyNode:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        """``host:port`` actually listened on (after :meth:`start`)."""
        host = self.listen_address.rsplit(":", 1)[0]
        return f"{host}:{self.port}"

    # jobs
    def channel(self, job_id: str, parties: Iterable[str] | None = None) -> GrpcChannel:
        """This party's channel for ``job_id`` (messages that arrived before are kept).

        ``parties``: the job's party ids; the mailbox then accepts messages from them only (early arrivals
        from anyone else are dropped). Without it, the parties of this node's peer table.
        """
        self._inbox.open(check_job_id(job_id), None if parties is None else {check_party_id(p) for p in parties})
        return GrpcChannel(self, job_id)

    def close_job(self, job_id: str) -> None:
        """Drop the job's mailbox; later messages for it are refused, blocked receivers fail."""
        self._inbox.close_job(job_id)

    def probe(self, party_id: str, timeout: float = 5.0) -> str | None:
        """Check the data-plane link to ``party_id`` at its peer-table address (see :meth:`_PeerLink.probe`):
        ``None`` if it works, else a message naming the party, the address and the likely cause."""
        address = self.peers.get(party_id)
        if address is None:
            return f"no address for party {party_id!r} in the peer table"
        link = _PeerLink(party_id, address, self.tls)
        try:
            return link.probe(self.party_id, timeout)
        finally:
            link.close()

    def add_peer(self, party_id: str, address: str) -> None:
        with self._lock:
            self.peers[check_party_id(party_id)] = address
            old = self._links.pop(party_id, None)
        if old is not None:
            old.close()

    # internals used by GrpcChannel
    def _link(self, party_id: str) -> _PeerLink:
        with self._lock:
            link = self._links.get(party_id)
            if link is None:
                address = self.peers.get(party_id)
                if address is None:
                    raise ChannelError(f"{self.party_id}: no address for party {party_id!r} in the peer table")
                link = self._links[party_id] = _PeerLink(party_id, address, self.tls)
            return link

    def _next_seq(self, job_id: str, receiver: str) -> int:
        with self._lock:
            seq = self._seq.get((job_id, receiver), 0) + 1
            self._seq[(job_id, receiver)] = seq
            return seq

    def _send(self, env: pb.Envelope, data: bytes) -> bool:
        if env.receiver == self.party_id:  # loopback without the network
            try:
                self._inbox.reserve(env.sender, len(data))
            except _Full as exc:
                raise ChannelError(str(exc)) from exc
            try:
                duplicate = self._inbox.put(env, data)
            except _Duplicate as exc:
                self._inbox.release(env.sender, len(data))
                raise PeerRejected(str(exc)) from exc
            if duplicate:
                self._inbox.release(env.sender, len(data))
            return duplicate
        return self._link(env.receiver).deliver(env, data, self.retry)


class GrpcChannel(Channel):
    """A party's :class:`~federation.channel.Channel` for one job over its :class:`PartyNode`."""

    def __init__(self, node: PartyNode, job_id: str) -> None:
        super().__init__(node.party_id)
        self.node = node
        self.job_id = job_id

    def envelope(self, receiver: str, tag: str, payload: Payload, data: bytes, seq: int | None = None
                 ) -> pb.Envelope:
        return pb.Envelope(job_id=self.job_id, tag=tag, sender=self.party_id, receiver=receiver,
                           seq=self.node._next_seq(self.job_id, receiver) if seq is None else seq,
                           key_fingerprints=key_fingerprints(payload), payload_size=len(data),
                           payload_sha256=hashlib.sha256(data).digest())

    def send(self, receiver: str, tag: str, payload: Payload) -> None:
        if not tag:
            raise ValueError("a message needs a non-empty tag")
        data = codec.encode(payload)
        self.node._send(self.envelope(receiver, tag, payload, data), data)

    def recv(self, sender: str, tag: str, timeout: float | None = None) -> Payload:
        return self.recv_message(sender, tag, timeout).payload

    def recv_message(self, sender: str, tag: str, timeout: float | None = None) -> Message:
        """:meth:`recv` with the envelope data (sequence number, announced key fingerprints)."""
        stored = self.node._inbox.take(self.job_id, sender, tag, DEFAULT_TIMEOUT if timeout is None else timeout)
        return self._open(stored)

    def close(self) -> None:
        """Close this job on the node (see :meth:`PartyNode.close_job`)."""
        self.node.close_job(self.job_id)

    def _open(self, stored: _Stored) -> Message:
        env = stored.envelope
        payload = codec.decode(stored.data)
        found = key_fingerprints(payload)
        if found != sorted(env.key_fingerprints):
            raise ChannelError(f"{env.tag!r} from {env.sender!r}: envelope announces keys {list(env.key_fingerprints)}"
                               f" but the payload holds ciphertexts under {found}")
        return Message(env.job_id, env.sender, env.tag, env.seq, tuple(env.key_fingerprints), payload)
