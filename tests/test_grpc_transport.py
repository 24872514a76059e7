"""gRPC + mutual-TLS transport: same roles as in-process, identity checks, streaming, retries, dedup."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from algorithms.base import Parties
from algorithms.paillier import Decryptor, Encryptor, PrivateKey, PublicKey, shared_executor
from algorithms.psi import PsiGuest, PsiHost
from federation import codec
from federation.certs import CertificateAuthority, CertificateError, TlsConfig, provision
from federation.channel import Channel, ChannelError, ChannelTimeout, InMemoryNetwork, run_parties
from federation.grpc_transport import (
    PartyNode,
    PeerRejected,
    RetryPolicy,
    TlsVerificationError,
    _PeerLink,
)
from federation.proto import transport_pb2 as pb
from tests.certificates import tls_with_common_names

PARTIES = ("bank", "insurer", "arbiter")
FAST = RetryPolicy(initial_backoff=0.05, max_backoff=0.4, give_up_after=1.5, call_timeout=10.0)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("certs")
    provision(d, PARTIES)
    return d


@pytest.fixture
def nodes(certs: Path) -> Iterator[Callable[..., PartyNode]]:
    started: list[PartyNode] = []

    def make(party: str, tls: TlsConfig | None = None, address: str = "127.0.0.1:0", start: bool = True,
             **kwargs: object) -> PartyNode:
        kwargs.setdefault("retry", FAST)
        node = PartyNode(party, address, tls or TlsConfig.from_dir(certs, party), **kwargs)  # type: ignore[arg-type]
        started.append(node)
        return node.start() if start else node

    yield make
    for node in started:
        node.stop(grace=0.1)


def connect(*nodes: PartyNode) -> None:
    for a in nodes:
        for b in nodes:
            if a is not b:
                a.add_peer(b.party_id, b.address)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def envelope(sender: str, receiver: str, tag: str, seq: int, data: bytes, job: str = "j") -> pb.Envelope:
    return pb.Envelope(job_id=job, tag=tag, sender=sender, receiver=receiver, seq=seq, payload_size=len(data),
                       payload_sha256=hashlib.sha256(data).digest())


# --- the same roles over both transports -------------------------------------------------------------

class KeyHolder:
    """Arbiter: publishes its key, decrypts the encrypted sum, returns it to both silos."""

    def __init__(self, keypair: tuple[PublicKey, PrivateKey]) -> None:
        self.public_key, self.private_key = keypair

    def run(self, channel: Channel) -> np.ndarray:
        channel.broadcast(["bank", "insurer"], "public_key", {"n": self.public_key.to_bytes()})
        total = Decryptor(self.private_key).decrypt(channel.recv("insurer", "encrypted_sum", timeout=30)["sum"])
        channel.broadcast(["bank", "insurer"], "sum", {"sum": total})
        return total


class Adder:
    """A silo: the bank encrypts its vector for the insurer, the insurer adds its own and forwards."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    def run(self, channel: Channel) -> np.ndarray:
        key = PublicKey.from_bytes(channel.recv("arbiter", "public_key", timeout=30)["n"])
        if channel.party_id == "bank":
            channel.send("insurer", "encrypted_values", {"vec": Encryptor(key).encrypt(self.values, 16)})
        else:
            theirs = channel.recv("bank", "encrypted_values", timeout=30)["vec"].under(key)
            channel.send("arbiter", "encrypted_sum", {"sum": theirs + Encryptor(key).encrypt(self.values, 16)})
        return np.asarray(channel.recv("arbiter", "sum", timeout=30)["sum"])


def test_same_roles_run_in_memory_and_over_grpc(keypair: tuple[PublicKey, PrivateKey],
                                                nodes: Callable[..., PartyNode]) -> None:
    u, v = np.array([0.5, -1.25, 3.0]), np.array([1.0, 2.0, -0.5])
    roles = lambda: {"arbiter": KeyHolder(keypair), "bank": Adder(u), "insurer": Adder(v)}  # noqa: E731

    network = InMemoryNetwork()
    mem = {p: network.channel(p) for p in PARTIES}
    local = run_parties({p: (lambda r=r, p=p: r.run(mem[p])) for p, r in roles().items()}, network)

    bank, insurer, arbiter = (nodes(p) for p in PARTIES)
    connect(bank, insurer, arbiter)
    channels = {n.party_id: n.channel("job-sum") for n in (bank, insurer, arbiter)}
    remote = run_parties({p: (lambda r=r, p=p: r.run(channels[p])) for p, r in roles().items()})

    for result in (local, remote):
        for party in PARTIES:
            np.testing.assert_allclose(result[party], u + v, atol=1e-4)


def test_envelope_carries_key_fingerprints(keypair: tuple[PublicKey, PrivateKey],
                                           nodes: Callable[..., PartyNode]) -> None:
    bank, insurer = nodes("bank"), nodes("insurer")
    connect(bank, insurer)
    vec = Encryptor(keypair[0]).encrypt(np.array([1.0, 2.0]), 8)
    bank.channel("j").send("insurer", "v", {"nested": [{"vec": vec}], "n": 2})
    msg = insurer.channel("j").recv_message("bank", "v", timeout=5)
    assert (msg.sender, msg.tag, msg.seq) == ("bank", "v", 1)
    assert msg.key_fingerprints == (keypair[0].fingerprint,)
    assert msg.payload["nested"][0]["vec"].public_key == keypair[0]


def test_psi_alignment_over_grpc(nodes: Callable[..., PartyNode]) -> None:
    parties = Parties(guest="bank", hosts=("insurer",))
    bank, insurer = nodes("bank"), nodes("insurer")
    connect(bank, insurer)
    ids = [f"C{i:05d}" for i in range(1000)]
    channels = {"bank": bank.channel("align"), "insurer": insurer.channel("align")}
    results = run_parties({"bank": lambda: PsiGuest(ids[:900], parties, "align").run(channels["bank"]),
                           "insurer": lambda: PsiHost(ids[100:], parties, "align").run(channels["insurer"])})
    assert results["bank"].ids == results["insurer"].ids == ids[100:900]


# --- identity ----------------------------------------------------------------------------------------

def test_certificate_from_another_ca_is_refused(tmp_path: Path, certs: Path,
                                                nodes: Callable[..., PartyNode]) -> None:
    provision(tmp_path, PARTIES)  # a second, unrelated federation with the same party names
    other = TlsConfig.from_dir(tmp_path, "bank")
    insurer = nodes("insurer")
    # the rogue client trusts the real CA (so only the server's check of the client certificate can fail)
    rogue = nodes("bank", tls=TlsConfig((certs / "ca.pem").read_bytes(), other.cert_pem, other.key_pem))
    connect(insurer, rogue)
    with pytest.raises(ChannelError, match="gave up"):
        rogue.channel("j").send("insurer", "x", {"a": 1})
    with pytest.raises(ChannelTimeout):
        insurer.channel("j").recv("bank", "x", timeout=0.2)
    # and the other way round: a legitimate client does not talk to a server of another CA
    legit = nodes("bank")
    legit.add_peer("insurer", nodes("insurer", tls=TlsConfig.from_dir(tmp_path, "insurer")).address)
    with pytest.raises(TlsVerificationError, match="CERTIFICATE_VERIFY_FAILED"):  # not retried
        legit.channel("j").send("insurer", "x", {"a": 1})


def test_expired_certificate_is_refused(certs: Path, nodes: Callable[..., PartyNode]) -> None:
    ca = CertificateAuthority.load((certs / "ca.pem").read_bytes(), (certs / "ca-key.pem").read_bytes())
    cert, key = ca.issue("bank", days=1, not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=30))
    expired = TlsConfig((certs / "ca.pem").read_bytes(), cert, key)
    insurer, bank = nodes("insurer"), nodes("bank", tls=expired)
    connect(insurer, bank)
    with pytest.raises(ChannelError, match="gave up"):
        bank.channel("j").send("insurer", "x", {"a": 1})
    with pytest.raises(ChannelTimeout):
        insurer.channel("j").recv("bank", "x", timeout=0.2)


def test_sender_must_match_certificate_common_name(certs: Path, nodes: Callable[..., PartyNode]) -> None:
    insurer = nodes("insurer")
    link = _PeerLink("insurer", insurer.address, TlsConfig.from_dir(certs, "bank"))
    data = b"\x81\xa1a\x01"
    try:
        with pytest.raises(PeerRejected, match=r"PERMISSION_DENIED.*does not match the certificate CN 'bank'"):
            link.deliver(envelope("arbiter", "insurer", "forged", 1, data), data, FAST)
        with pytest.raises(PeerRejected, match="PERMISSION_DENIED"):  # addressed to someone else
            link.deliver(envelope("bank", "arbiter", "misrouted", 1, data), data, FAST)
    finally:
        link.close()
    with pytest.raises(ChannelTimeout):
        insurer.channel("j").recv("arbiter", "forged", timeout=0.2)


def test_node_refuses_a_certificate_of_another_party(certs: Path) -> None:
    with pytest.raises(CertificateError, match="not for party 'insurer'"):
        PartyNode("insurer", "127.0.0.1:0", TlsConfig.from_dir(certs, "bank"))


def test_client_pins_the_receiver_identity(nodes: Callable[..., PartyNode]) -> None:
    bank, arbiter = nodes("bank"), nodes("arbiter")
    bank.add_peer("insurer", arbiter.address)  # wrong address: the arbiter answers, not the insurer
    with pytest.raises(TlsVerificationError, match="cannot verify 'insurer'"):
        bank.channel("j").send("insurer", "x", {"a": 1})


# --- delivery semantics ------------------------------------------------------------------------------

def test_replayed_message_is_not_applied_twice(certs: Path, nodes: Callable[..., PartyNode]) -> None:
    insurer = nodes("insurer")
    link = _PeerLink("insurer", insurer.address, TlsConfig.from_dir(certs, "bank"))
    data = codec.encode({"amount": 100})
    env = envelope("bank", "insurer", "transfer", 7, data)
    channel = insurer.channel("j", parties=["bank", "insurer"])
    try:
        assert link.deliver(env, data, FAST) is False
        assert link.deliver(env, data, FAST) is True  # retry of the same message: acknowledged, dropped
        assert channel.recv("bank", "transfer", timeout=5) == {"amount": 100}
        assert link.deliver(env, data, FAST) is True  # replay after it was consumed: still dropped
        with pytest.raises(ChannelTimeout):
            channel.recv("bank", "transfer", timeout=0.3)
        with pytest.raises(PeerRejected, match="ALREADY_EXISTS"):  # same tag, new seq: refused
            link.deliver(envelope("bank", "insurer", "transfer", 8, data), data, FAST)
    finally:
        link.close()


def test_payload_above_grpc_limit_is_streamed(nodes: Callable[..., PartyNode]) -> None:
    bank, insurer = nodes("bank"), nodes("insurer")
    connect(bank, insurer)
    blob = os.urandom(9 * 1024 * 1024 + 17)  # > 4 MB default message limit, not a chunk multiple
    array = np.arange(300_000, dtype=np.float64)  # another 2.4 MB
    bank.channel("big").send("insurer", "blob", {"blob": blob, "array": array})
    got = insurer.channel("big").recv("bank", "blob", timeout=20)
    assert got["blob"] == blob
    np.testing.assert_array_equal(got["array"], array)


def test_send_retries_until_the_receiver_starts(nodes: Callable[..., PartyNode]) -> None:
    port = free_port()
    bank = nodes("bank")
    insurer = nodes("insurer", address=f"127.0.0.1:{port}", start=False)
    bank.add_peer("insurer", f"127.0.0.1:{port}")
    insurer.add_peer("bank", bank.address)  # a party of its peer table: accepted before the job is open
    errors: list[BaseException] = []

    def send() -> None:
        try:
            bank.channel("late").send("insurer", "hello", {"x": 1})
        except BaseException as exc:
            errors.append(exc)

    sender = threading.Thread(target=send)
    started = time.monotonic()
    sender.start()
    time.sleep(0.6)
    insurer.start()
    sender.join(timeout=10)
    assert not sender.is_alive() and not errors, errors
    assert time.monotonic() - started >= 0.6
    assert insurer.channel("late").recv("bank", "hello", timeout=5) == {"x": 1}


def test_send_gives_up_when_nobody_listens(nodes: Callable[..., PartyNode]) -> None:
    bank = nodes("bank")
    bank.add_peer("insurer", f"127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(ChannelError, match="gave up"):
        bank.channel("j").send("insurer", "x", {})
    assert time.monotonic() - started < FAST.give_up_after + 2


def test_closed_job_refuses_messages_and_wakes_receivers(nodes: Callable[..., PartyNode]) -> None:
    bank, insurer = nodes("bank"), nodes("insurer")
    connect(bank, insurer)
    channel = insurer.channel("done")
    threading.Timer(0.2, channel.close).start()
    with pytest.raises(ChannelError, match="closed"):
        channel.recv("bank", "never", timeout=5)
    with pytest.raises(PeerRejected, match="closed"):
        bank.channel("done").send("insurer", "late", {})


# --- the real protocol over the real transport -------------------------------------------------------

def test_vertical_lr_over_grpc_matches_in_memory(keypair: tuple[PublicKey, PrivateKey],
                                                 nodes: Callable[..., PartyNode]) -> None:
    vlr = pytest.importorskip("algorithms.vertical_lr")
    datasets = pytest.importorskip("datasets")
    data = datasets.load_breast_vertical()
    train_ids, _ = datasets.train_test_split_ids(data.guest)
    arrays = vlr.as_arrays(data.subset(train_ids))
    parties = Parties("bank", tuple(arrays.hosts_x), "arbiter")
    params = vlr.VerticalLRParams(learning_rate=0.01, optimizer="adam", batch_size=64, tol=0.0, max_epochs=1)

    def roles() -> dict[str, Any]:
        out: dict[str, Any] = {
            "bank": vlr.VerticalLRGuest(arrays.guest_x, arrays.y, arrays.guest_features, parties, params,
                                        executor=shared_executor()),
            "arbiter": vlr.VerticalLRArbiter(parties, None, executor=shared_executor(), keypair=keypair)}
        for h, x in arrays.hosts_x.items():
            out[h] = vlr.VerticalLRHost(x, arrays.host_features.get(h), parties, executor=shared_executor())
        return out

    network = InMemoryNetwork()
    mem = {p: network.channel(p) for p in (*parties.silos, parties.arbiter)}
    local = run_parties({p: (lambda r=r, p=p: r.run(mem[p])) for p, r in roles().items()}, network)

    grpc_nodes = [nodes(p) for p in (*parties.silos, parties.arbiter)]
    connect(*grpc_nodes)
    channels = {n.party_id: n.channel("vlr-job") for n in grpc_nodes}
    remote = run_parties({p: (lambda r=r, p=p: r.run(channels[p])) for p, r in roles().items()})

    np.testing.assert_allclose(remote["bank"].weights, local["bank"].weights, rtol=1e-9, atol=1e-12)
    for h in parties.hosts:
        np.testing.assert_allclose(remote[h].weights, local[h].weights, rtol=1e-9, atol=1e-12)
    assert list(remote["arbiter"].losses) == pytest.approx(list(local["arbiter"].losses))


# --- hardening: who may deliver, how much, for how long ----------------------------------------------

def test_only_the_jobs_parties_may_deliver(certs: Path, nodes: Callable[..., PartyNode]) -> None:
    """Any certificate of the CA used to open mailboxes and queue messages; now only the job's parties."""
    insurer = nodes("insurer")
    insurer.channel("j", parties=["bank", "insurer"])
    outsider = _PeerLink("insurer", insurer.address, TlsConfig.from_dir(certs, "arbiter"))  # valid CA cert
    data = codec.encode({"x": 1})
    try:
        with pytest.raises(PeerRejected, match=r"PERMISSION_DENIED.*'arbiter' is not a party of job 'j'"):
            outsider.deliver(envelope("arbiter", "insurer", "t", 1, data, job="j"), data, FAST)
        # a job not open yet: a party of no peer table is asked to retry; nothing is stored meanwhile
        with pytest.raises(ChannelError, match=r"gave up.*not open on 'insurer'"):
            outsider.deliver(envelope("arbiter", "insurer", "t", 1, data, job="other"), data, FAST)
        assert insurer._inbox.held_bytes == 0
    finally:
        outsider.close()


def test_memory_is_capped_per_peer_and_in_total(nodes: Callable[..., PartyNode]) -> None:
    bank, arbiter = nodes("bank"), nodes("arbiter")
    insurer = nodes("insurer", max_peer_bytes=3 << 20, max_total_bytes=5 << 20)
    connect(bank, insurer, arbiter)
    blob = os.urandom(2 << 20)
    bank.channel("j").send("insurer", "a", {"b": blob})
    with pytest.raises(ChannelError, match=r"gave up.*retry later"):  # a second 2 MiB from the bank: over 3 MiB
        bank.channel("j").send("insurer", "b", {"b": blob})
    arbiter.channel("j").send("insurer", "c", {"b": blob})  # the arbiter has its own allowance ...
    with pytest.raises(ChannelError, match=r"gave up.*retry later"):  # ... within the node's 5 MiB
        arbiter.channel("j").send("insurer", "d", {"b": os.urandom(1536 << 10)})
    channel = insurer.channel("j")
    assert channel.recv("bank", "a", timeout=5)["b"] == blob  # consuming frees the bank's share
    bank.channel("j").send("insurer", "b2", {"b": blob})
    assert channel.recv("bank", "b2", timeout=5)["b"] == blob
    channel.close()
    assert insurer._inbox.held_bytes == 0  # closing the job frees what it still held


def test_stalled_stream_is_cancelled(certs: Path, nodes: Callable[..., PartyNode]) -> None:
    import grpc

    from federation.proto import transport_pb2_grpc as pb_grpc

    insurer = nodes("insurer", retry=RetryPolicy(call_timeout=0.5, seconds_per_mib=0.1))
    insurer.add_peer("bank", "127.0.0.1:1")
    data = b"x" * 1000
    link = _PeerLink("insurer", insurer.address, TlsConfig.from_dir(certs, "bank"))

    def stalling() -> Iterator[pb.Chunk]:
        yield pb.Chunk(envelope=envelope("bank", "insurer", "slow", 1, data))
        time.sleep(6)  # never sends the payload
        yield pb.Chunk(data=data)

    stub = pb_grpc.InboxStub(link._channel)
    started = time.monotonic()
    try:
        with pytest.raises(grpc.RpcError):
            stub.Deliver(stalling(), timeout=30)
        assert time.monotonic() - started < 5
        while insurer._inbox.held_bytes and time.monotonic() - started < 5:  # the handler lets go too
            time.sleep(0.05)
        print(f"released after {time.monotonic() - started:.2f}s")
        assert insurer._inbox.held_bytes == 0
    finally:
        link.close()


def test_data_plane_refuses_a_certificate_with_two_common_names(certs: Path, nodes: Callable[..., PartyNode]) -> None:
    """gRPC reports only the first CN: a CA-signed CN=bank+CN=arbiter certificate must not pass as the bank."""
    tls = tls_with_common_names(certs, ["bank", "arbiter"])
    insurer = nodes("insurer")
    insurer.add_peer("bank", "127.0.0.1:1")
    link = _PeerLink("insurer", insurer.address, tls)
    data = codec.encode({"x": 1})
    try:
        with pytest.raises(PeerRejected, match=r"PERMISSION_DENIED.*does not match the certificate CN None"):
            link.deliver(envelope("bank", "insurer", "t", 1, data), data, FAST)
    finally:
        link.close()
