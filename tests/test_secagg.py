"""Secure aggregation: exact sums with dropouts, clean aborts, refused keys, and what the aggregator sees."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from scipy import stats

from algorithms.secagg import (
    EcSigner,
    KeyVerifier,
    QuantisationError,
    Quantiser,
    SecAggAborted,
    SecAggClient,
    SecAggConfig,
    SecAggError,
    SecAggServer,
    shamir,
)
from algorithms.secagg.graph import neighbourhoods
from algorithms.secagg.prg import expand
from algorithms.secagg.signing import CertificateVerifier
from federation.channel import Channel, InMemoryNetwork
from federation.codec import Payload

STAGES = ("advertise", "shares", "masked", "consistency", "unmask")


class Dropped(Exception):
    """A simulated client going offline."""


class DroppingChannel(Channel):
    """A client's channel that goes dead when the client is about to send ``at`` (one of STAGES)."""

    def __init__(self, inner: Channel, at: str) -> None:
        super().__init__(inner.party_id)
        self.inner, self.at = inner, at

    def send(self, receiver: str, tag: str, payload: Payload) -> None:
        if tag.endswith("." + self.at):
            raise Dropped(self.party_id)
        self.inner.send(receiver, tag, payload)

    def recv(self, sender: str, tag: str, timeout: float | None = None) -> Payload:
        return self.inner.recv(sender, tag, timeout)


@dataclass
class Federation:
    n: int
    config: SecAggConfig = field(default_factory=lambda: SecAggConfig(clip=4.0, deadline=1.5))
    server_class: type[SecAggServer] = SecAggServer

    def __post_init__(self) -> None:
        self.ids = [f"c{i:02d}" for i in range(self.n)]
        self.keys = {c: ec.generate_private_key(ec.SECP256R1()) for c in self.ids}
        self.verifier = KeyVerifier({c: k.public_key() for c, k in self.keys.items()})
        self.server = self.server_class("arbiter", self.ids, self.config, job_id="job-1")
        self.clients = {c: SecAggClient(c, "arbiter", self.ids, self.config, EcSigner(c, self.keys[c]),
                                        self.verifier, job_id="job-1") for c in self.ids}

    def run(self, xs: dict[str, np.ndarray], drop: dict[str, str] | None = None, round_id: int = 0,
            network: InMemoryNetwork | None = None):
        """Run one round; returns (server result or exception, {client: outcome or exception}, network)."""
        drop = drop or {}
        net = network or InMemoryNetwork(record=True)
        out: dict[str, object] = {}
        length = len(next(iter(xs.values())))
        chans = {c: net.channel(c) for c in self.ids}
        server_chan = net.channel("arbiter")

        def guard(name: str, fn: Callable[[], object]) -> None:
            try:
                out[name] = fn()
            except Exception as exc:
                out[name] = exc

        threads = [threading.Thread(target=guard, args=("arbiter", lambda: self.server.aggregate(
            server_chan, length, round_id)))]
        for c in self.ids:
            ch = DroppingChannel(chans[c], drop[c]) if c in drop else chans[c]
            threads.append(threading.Thread(target=guard, args=(
                c, lambda c=c, ch=ch: self.clients[c].aggregate(ch, xs[c], round_id))))
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        return out.pop("arbiter"), out, net


def data(n: int, d: int, seed: int = 0, scale: float = 1.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"c{i:02d}": rng.normal(0, scale, d) for i in range(n)}


def ring_sum(q: Quantiser, xs: list[np.ndarray]) -> np.ndarray:
    return np.sum([q.encode(x) for x in xs], axis=0, dtype=np.uint64) & q.mask


# ---- building blocks ---------------------------------------------------------------------------------

def test_quantiser_error_bound_and_range() -> None:
    q = Quantiser(clip=2.0, max_clients=10, bits=32)
    assert q.value_bits == 28 and q.wire_dtype == np.uint32
    xs = [np.random.default_rng(i).uniform(-3, 3, 5000) for i in range(10)]
    total = np.sum([q.encode(x) for x in xs], axis=0, dtype=np.uint64)
    assert total.max() < q.modulus  # ten clients' values never wrap
    decoded = q.decode_sum(total, 10)
    clipped = np.sum([np.clip(x, -2, 2) for x in xs], axis=0)
    assert np.max(np.abs(decoded - clipped)) <= q.error_bound(10)
    assert q.error_bound(10) < 1e-7
    with pytest.raises(QuantisationError, match="non-finite"):
        q.encode(np.array([0.0, np.nan]))
    with pytest.raises(QuantisationError, match="bits"):
        Quantiser(clip=1.0, max_clients=3, bits=64)


def test_shamir_threshold() -> None:
    secret = bytes(range(32))
    shares = shamir.split(secret, 3, [1, 2, 3, 4, 5])
    assert shamir.combine({k: shares[k] for k in (2, 4, 5)}, 3) == secret
    assert shamir.combine({k: shares[k] for k in (1, 3, 5)}, 3) == secret
    with pytest.raises(shamir.ShamirError, match="2 shares, 3 needed"):
        shamir.combine({k: shares[k] for k in (1, 2)}, 3)
    # t-1 shares interpolate to a value unrelated to the secret
    with contextlib.suppress(shamir.ShamirError):
        assert shamir.combine({k: shares[k] for k in (1, 2)}, 2) != secret


def test_mask_expansion_is_a_keyed_stream() -> None:
    a, b = expand(b"\x01" * 32, 1000, 32), expand(b"\x02" * 32, 1000, 32)
    assert a.dtype == np.uint64 and a.max() < 2**32
    assert np.array_equal(a, expand(b"\x01" * 32, 1000, 32)) and not np.array_equal(a, b)
    with pytest.raises(ValueError, match="32 bytes"):
        expand(b"\x01" * 4, 10, 32)  # no short seeds


def test_secagg_plus_graph_is_logarithmic_symmetric_and_public() -> None:
    ids = [f"c{i:02d}" for i in range(64)]
    g = neighbourhoods(ids, b"ctx")
    assert all(len(v) == 18 for v in g.values())  # 3·log2(64) = 18
    assert all(u in g[v] for u in ids for v in g[u])
    assert g == neighbourhoods(list(reversed(ids)), b"ctx") and g != neighbourhoods(ids, b"other")
    small = neighbourhoods(ids[:10], b"ctx")
    assert all(len(v) == 9 for v in small.values())


# ---- the protocol ------------------------------------------------------------------------------------

def test_sum_without_dropouts_is_exact_up_to_quantisation() -> None:
    fed = Federation(5)
    xs = data(5, 300)
    res, clients, _ = fed.run(xs)
    assert not isinstance(res, Exception), res
    q = fed.server.session(0).quantiser
    assert np.array_equal(res.ring_total, ring_sum(q, list(xs.values())))
    assert np.max(np.abs(res.total - np.sum(list(xs.values()), axis=0))) <= res.error_bound
    assert res.survivors == tuple(fed.ids) and res.dropped == () and res.late == ()
    assert all(o.survivors == tuple(fed.ids) for o in clients.values())


def test_thirty_percent_dropping_after_masking_recovered_exactly() -> None:
    fed = Federation(10)
    xs = data(10, 500, seed=1)
    dropped = ["c01", "c04", "c08"]
    res, _, _ = fed.run(xs, drop={c: "consistency" for c in dropped})
    assert not isinstance(res, Exception), res
    q = fed.server.session(0).quantiser
    assert np.array_equal(res.ring_total, ring_sum(q, list(xs.values())))  # their inputs are in the sum
    assert res.late == tuple(dropped) and res.dropped == ()


def test_thirty_percent_dropping_before_masking_leaves_the_survivors_sum() -> None:
    fed = Federation(10)
    xs = data(10, 500, seed=2)
    dropped = ["c00", "c05", "c09"]
    res, _, net = fed.run(xs, drop={c: "masked" for c in dropped})
    assert not isinstance(res, Exception), res
    q = fed.server.session(0).quantiser
    alive = [xs[c] for c in fed.ids if c not in dropped]
    assert np.array_equal(res.ring_total, ring_sum(q, alive))
    assert res.dropped == tuple(dropped)
    # no client's pairwise key and self-mask seed are both revealed
    reveals = [d.payload for d in net.received_by("arbiter") if d.tag.endswith(".unmask")]
    s_owners = {u for r in reveals for u in r["s"]}
    b_owners = {u for r in reveals for u in r["b"]}
    assert s_owners == set(dropped) and b_owners == set(fed.ids) - set(dropped) and not s_owners & b_owners


def test_too_many_dropouts_abort_cleanly_before_anything_is_unmasked() -> None:
    fed = Federation(10)  # threshold 7
    xs = data(10, 100, seed=3)
    res, clients, net = fed.run(xs, drop={c: "masked" for c in ("c01", "c02", "c03", "c04")})
    assert isinstance(res, SecAggAborted) and "6 of 10 clients left after 'masked', at least 7 needed" in str(res)
    assert "c01" in str(res)
    for c in ("c00", "c05", "c09"):
        assert isinstance(clients[c], SecAggAborted) and "aborted the round" in str(clients[c])
    assert not [d for d in net.received_by("arbiter") if d.tag.endswith((".unmask", ".consistency"))]


def test_too_few_unmasking_shares_abort() -> None:
    fed = Federation(5)  # threshold 4
    res, _, _ = fed.run(data(5, 50), drop={"c00": "unmask", "c01": "unmask"})
    assert isinstance(res, SecAggAborted)
    assert "cannot unmask" in str(res) or "at least 4 needed" in str(res)


class SubstitutingServer(SecAggServer):
    """A malicious aggregator that gives c00 its own mask key in place of c01's."""

    def relay_advertisements(self, recipient, ads):
        if recipient == "c00":
            from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

            from algorithms.secagg.protocol import _pub
            ads = dict(ads)
            ads["c01"] = dict(ads["c01"], s_pk=_pub(X25519PrivateKey.generate()))
        return ads


def test_substituted_key_advertisement_refused() -> None:
    fed = Federation(4, server_class=SubstitutingServer)
    _, clients, _ = fed.run(data(4, 20))
    assert isinstance(clients["c00"], SecAggError)
    assert "refused the key advertisement of 'c01'" in str(clients["c00"])


class ReplayingServer(SecAggServer):
    """Keeps round 0's advertisements and relays c01's old one in round 1."""

    old: ClassVar[dict] = {}

    def relay_advertisements(self, recipient, ads):
        if not self.old:
            ReplayingServer.old = dict(ads)
        elif recipient == "c00" and "c01" in self.old:
            ads = dict(ads, c01=self.old["c01"])
        return ads


def test_replayed_key_advertisement_refused() -> None:
    ReplayingServer.old = {}
    fed = Federation(4, server_class=ReplayingServer)
    xs = data(4, 20)
    res0, _, _ = fed.run(xs, round_id=0)
    assert not isinstance(res0, Exception), res0
    _, clients, _ = fed.run(xs, round_id=1)
    assert isinstance(clients["c00"], SecAggError) and "'c01'" in str(clients["c00"])


def test_aggregator_transcript_is_masked_and_uniform_whatever_the_data() -> None:
    """Every vector the aggregator receives is uniform in Z_{2^k}: all-zero and all-extreme inputs alike."""
    fed = Federation(4)
    d = 4000
    for xs in ({c: np.zeros(d) for c in fed.ids}, {c: np.full(d, 4.0) for c in fed.ids}, data(4, d, seed=7)):
        res, _, net = fed.run(xs)
        assert not isinstance(res, Exception), res
        for delivery in net.received_by("arbiter"):
            for key, value in delivery.payload.items():
                if delivery.tag.endswith(".masked"):
                    y = value.astype(np.float64) / 2**32
                    # 1e-7 per test: ~2 tests x 4 clients x 3 data sets per run (a false alarm at 1e-4 was seen once
                    # in a CI-like run); a vector that is not masked fails with p ~ 0
                    assert stats.kstest(y, "uniform").pvalue > 1e-7
                    counts = np.bincount((value >> 28).astype(np.int64), minlength=16)
                    assert stats.chisquare(counts).pvalue > 1e-7
                else:  # keys, signatures, ciphertexts, shares: bytes only, never arrays
                    assert not isinstance(value, np.ndarray), (delivery.tag, key)


def test_secagg_plus_neighbourhoods_with_dropouts() -> None:
    n = 20
    fed = Federation(n, config=SecAggConfig(clip=4.0, deadline=1.5, complete_max=8))
    assert len(fed.server.session(0).neighbours["c00"]) == 14  # 3·log2(20) → 14 < 19
    xs = data(n, 200, seed=5)
    res, _, _ = fed.run(xs, drop={"c03": "masked", "c11": "consistency"})
    assert not isinstance(res, Exception), res
    q = fed.server.session(0).quantiser
    assert np.array_equal(res.ring_total, ring_sum(q, [xs[c] for c in fed.ids if c != "c03"]))


def test_malformed_masked_input_is_rejected_and_its_masks_removed() -> None:
    class Truncating(Channel):
        def __init__(self, inner):
            super().__init__(inner.party_id)
            self.inner = inner

        def send(self, receiver, tag, payload):
            if tag.endswith(".masked"):
                payload = {"y": payload["y"][:-1]}
            self.inner.send(receiver, tag, payload)

        def recv(self, sender, tag, timeout=None):
            return self.inner.recv(sender, tag, timeout)

    fed = Federation(4)
    xs = data(4, 30)
    net = InMemoryNetwork(record=True)
    original = net.channel

    def channel(pid):
        ch = original(pid)
        return Truncating(ch) if pid == "c02" else ch

    net.channel = channel  # type: ignore[method-assign]
    res, clients, _ = fed.run(xs, network=net)
    assert not isinstance(res, Exception), res
    assert isinstance(clients["c02"], SecAggAborted) and "refused" in str(clients["c02"])
    assert res.dropped == ("c02",) and "length 30" in res.rejected["c02"]
    q = fed.server.session(0).quantiser
    assert np.array_equal(res.ring_total, ring_sum(q, [xs[c] for c in fed.ids if c != "c02"]))


def test_certificate_verifier_checks_ca_and_party(tmp_path) -> None:
    from federation.certs import provision

    provision(tmp_path, parties=["bank", "insurer", "arbiter"])
    read = lambda name: (tmp_path / name).read_bytes()  # noqa: E731
    verifier = CertificateVerifier(read("ca.pem"), {"bank": read("bank.pem"), "insurer": read("insurer.pem")})
    signer = EcSigner.from_pem("bank", read("bank-key.pem"))
    sig = signer.sign(b"hello")
    verifier.verify("bank", b"hello", sig)
    with pytest.raises(Exception, match="invalid signature"):
        verifier.verify("insurer", b"hello", sig)
    with pytest.raises(Exception, match="names"):
        CertificateVerifier(read("ca.pem"), {"bank": read("insurer.pem")})


def test_certificates_travel_with_the_advertisements_and_are_ca_checked(tmp_path) -> None:
    """Clients know only the CA: each peer's certificate comes with its advertisement (SecAgg+ graph too)."""
    from federation.certs import provision

    ids = [f"c{i:02d}" for i in range(20)]
    provision(tmp_path, parties=[*ids, "arbiter"])
    read = lambda name: (tmp_path / name).read_bytes()  # noqa: E731
    config = SecAggConfig(clip=4.0, deadline=3.0, complete_max=4)
    fed = Federation(20, config=config)
    assert len(fed.server.session(0).neighbours["c00"]) == 14
    fed.clients = {c: SecAggClient(c, "arbiter", ids, config,
                                   EcSigner.from_pem(c, read(f"{c}-key.pem"), read(f"{c}.pem")),
                                   CertificateVerifier(read("ca.pem")), job_id="job-1") for c in ids}
    xs = data(20, 50, seed=9)
    res, clients, _ = fed.run(xs, drop={"c03": "masked"})
    assert not isinstance(res, Exception), (res, clients)
    q = fed.server.session(0).quantiser
    assert np.array_equal(res.ring_total, ring_sum(q, [xs[c] for c in ids if c != "c03"]))

    class CertSwapper(SecAggServer):  # relays c01's keys with c02's certificate
        def relay_advertisements(self, recipient, ads):
            if recipient == "c00" and "c01" in ads and "c02" in ads:
                ads = dict(ads, c01=dict(ads["c01"], cert=ads["c02"]["cert"]))
            return ads

    fed.server = CertSwapper("arbiter", ids, config, job_id="job-1")
    _, clients, _ = fed.run(xs, round_id=1)
    assert isinstance(clients["c00"], SecAggError) and "names ['c02']" in str(clients["c00"])
