"""Secure aggregation with dropout recovery (Bonawitz et al., CCS 2017; SecAgg+ graph, Bell et al., CCS 2020).

One aggregation ("round") sums the clients' real vectors so that the aggregator learns only the sum of the
clients that sent a masked input, and who dropped. Per round every client ``u`` makes two fresh X25519 key
pairs (``c_u`` to encrypt shares, ``s_u`` to agree pairwise masks) and a fresh 32-byte self-mask seed ``b_u``.
Tags are ``{namespace}secagg.{round}.{stage}``; every stage has a deadline at the aggregator, and a client
that misses it is dropped from that stage on::

    1 advertise   u → A   c_u^pk, s_u^pk, signed by u's certificate key over (context, u, keys)
                  A → u   the signed advertisements of u's neighbours        (u verifies every signature)
    2 shares      u → A   for each neighbour v: AEAD_{k_uv}(share_v(s_u^sk) ‖ share_v(b_u)), t_u-of-(deg+1)
                  A → v   the ciphertexts addressed to v                      (k_uv = HKDF(X25519(c_u, c_v)))
    3 masked      u → A   y_u = q(x_u) + PRG(b_u) + Σ_{v ∈ N(u)∩U2} ±PRG(s_uv)   mod 2^k
    4 survivors   A → u   U3 = who sent y;  u → A  u's signature over (context, U3)
                  A → u   the signatures of U3 (u checks >= t_u of them, all over the same U3)
    5 unmask      u → A   for each neighbour w: w's s-share if w ∈ U2 \\ U3 (dropped before masking),
                          w's b-share if w ∈ U3 — never both for one w (U3 is one set every honest
                          client signed; a client refuses to go on with fewer than t_u signatures)
                  A       rebuilds b_w (w ∈ U3) and s_w^sk (w ∈ U2 \\ U3) from >= t_w shares, removes
                          the self masks and the dropped clients' pairwise masks: Σ_{u ∈ U3} q(x_u)

Masks come from :mod:`algorithms.secagg.prg` (ChaCha20 keyed by HKDF-SHA256); values are fixed-point
encoded by :mod:`algorithms.secagg.quantize` (range and error bound stated there). If any stage leaves fewer
clients than the threshold, or a dropped client's secret cannot be rebuilt, the round aborts: the aggregator
sends ``{"abort": reason}`` to the clients still waiting and raises :class:`SecAggAborted`; nothing has been
unmasked (no client reveals a share before it holds ``t_u`` signatures on the same survivor set).

What it reveals to whom:

* the aggregator: the public keys and signatures, ciphertexts it cannot open (share encryption keys are
  client-to-client), the masked vectors (uniform in ``Z_{2^k}`` without the seeds), which clients dropped
  at which stage, and — from the unmasking shares — ``b_w`` of each surviving client and ``s_w^sk`` of each
  client that dropped before masking; together only ``Σ_{u ∈ U3} q(x_u)``: the sum, nothing per client;
* each client: its neighbours' public keys and signatures, its shares of their seeds (< t of any secret),
  and the survivor set U3 (who dropped);
* with the complete graph, privacy holds against an aggregator colluding with up to ``t − 1`` clients
  (semi-honest) and against key substitution and replay by a malicious aggregator (signed advertisements
  bound to the round). SecAgg+ graphs: per neighbourhood, as in Bell et al.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from algorithms.secagg import graph, prg, shamir
from algorithms.secagg.quantize import Quantiser
from algorithms.secagg.signing import SignatureError, Signer, Verifier
from federation.channel import Channel, ChannelTimeout

Payload = dict[str, object]
_RAW = serialization.Encoding.Raw
_PUB = serialization.PublicFormat.Raw
_PRIV = serialization.PrivateFormat.Raw
_KEY_BYTES = 32
_NONCE_BYTES = 12
_STAGES = ("advertise", "keys", "shares", "shares_for", "masked", "survivors", "consistency", "signatures",
           "unmask")


class SecAggError(RuntimeError):
    """A malformed or unauthentic message; the message names the party."""


class SecAggAborted(SecAggError):
    """The round was aborted (too few clients, or a secret could not be rebuilt); nothing was unmasked."""


@dataclass(frozen=True)
class SecAggConfig:
    """Public parameters every party of a job agrees on.

    ``clip``: quantisation range ``[-clip, clip]`` per coordinate; ``bits``: the ring ``Z_{2^bits}``;
    ``threshold_fraction``: shares needed to rebuild a secret, as a fraction of its holders (2/3 by
    default, Bonawitz et al.'s choice against a malicious aggregator); ``complete_max``: the complete graph
    up to this many clients, SecAgg+ neighbourhoods of ``degree`` (default ~3·log2 n) above;
    ``deadline``: seconds the aggregator waits for each stage; ``client_timeout``: seconds a client waits
    for the aggregator (default: 6 deadlines).
    """

    clip: float = 1.0
    bits: int = 32
    threshold_fraction: float = 2 / 3
    complete_max: int = graph.DEFAULT_COMPLETE_MAX
    degree: int | None = None
    deadline: float = 60.0
    client_timeout: float | None = None

    def __post_init__(self) -> None:
        if not 0.5 <= self.threshold_fraction <= 1.0:
            raise ValueError(f"threshold_fraction must be in [0.5, 1], got {self.threshold_fraction}")
        if self.deadline <= 0:
            raise ValueError(f"deadline must be positive, got {self.deadline}")

    @property
    def wait(self) -> float:
        return 6 * self.deadline if self.client_timeout is None else self.client_timeout


def _frame(*parts: bytes | str) -> bytes:
    """Unambiguous concatenation (length-prefixed) of the parts of a signed or authenticated message."""
    out = bytearray()
    for p in parts:
        b = p.encode() if isinstance(p, str) else p
        out += len(b).to_bytes(4, "big") + b
    return bytes(out)


class Session:
    """What both sides derive from the public job data for one round: context, graph, thresholds, tags."""

    def __init__(self, clients: Iterable[str], config: SecAggConfig, job_id: str, namespace: str,
                 round_id: int | str) -> None:
        self.clients = tuple(sorted(set(clients)))
        if len(self.clients) < 3:
            raise SecAggError(f"secure aggregation needs at least 3 clients, got {len(self.clients)}")
        self.config = config
        self.namespace = namespace
        self.round_id = str(round_id)
        self.context = _frame(prg.DOMAIN, job_id, namespace, self.round_id)
        self.neighbours = graph.neighbourhoods(self.clients, self.context, config.complete_max, config.degree)
        self.thresholds = {c: graph.threshold(len(n), config.threshold_fraction) for c, n in self.neighbours.items()}
        self.point = {c: i + 1 for i, c in enumerate(self.clients)}  # Shamir evaluation points
        self.quantiser = Quantiser(config.clip, len(self.clients), config.bits)

    def tag(self, stage: str) -> str:
        return f"{self.namespace}secagg.{self.round_id}.{stage}"

    def advertisement(self, party: str, c_pk: bytes, s_pk: bytes) -> bytes:
        return _frame(self.context, "advertise", party, c_pk, s_pk)

    def survivors_statement(self, party: str, survivors: Iterable[str]) -> bytes:
        return _frame(self.context, "survivors", party, *sorted(survivors))

    def share_ad(self, sender: str, receiver: str) -> bytes:
        return _frame(self.context, "share", sender, receiver)

    def sign_of(self, u: str, v: str) -> int:
        """+1 if ``u`` adds the pairwise mask of (u, v), −1 if it subtracts it."""
        return 1 if u < v else -1

    def holders(self, u: str) -> frozenset[str]:
        return self.neighbours[u] | {u}


def _pub(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(_RAW, _PUB)


def _expect(msg: Payload, party: str, key: str, kind: type) -> object:
    value = msg.get(key)
    if not isinstance(value, kind):
        raise SecAggError(f"{party}: field {key!r} missing or not {kind.__name__}")
    return value


def _check_abort(msg: Payload, where: str) -> Payload:
    reason = msg.get("abort")
    if reason is not None:
        raise SecAggAborted(f"aggregator aborted the round at {where}: {reason}")
    return msg


@dataclass
class _Held:
    """The shares a client holds of one neighbour's two secrets."""

    s_share: bytes
    b_share: bytes


@dataclass(frozen=True)
class ClientOutcome:
    """What a client learns from a round: who the aggregator says survived (U3)."""

    survivors: tuple[str, ...]


class SecAggClient:
    """A client's side of secure aggregation (call :meth:`aggregate` once per round)."""

    def __init__(self, party_id: str, aggregator: str, clients: Iterable[str], config: SecAggConfig,
                 signer: Signer, verifier: Verifier, job_id: str, namespace: str = "") -> None:
        if signer.party_id != party_id:
            raise SecAggError(f"{party_id}: the signer is {signer.party_id!r}'s")
        self.party_id, self.aggregator = party_id, aggregator
        self.clients = tuple(clients)
        self.config, self.signer, self.verifier = config, signer, verifier
        self.job_id, self.namespace = job_id, namespace

    def session(self, round_id: int | str) -> Session:
        return Session(self.clients, self.config, self.job_id, self.namespace, round_id)

    def _recv(self, channel: Channel, s: Session, stage: str) -> Payload:
        try:
            msg = channel.recv(self.aggregator, s.tag(stage), timeout=self.config.wait)
        except ChannelTimeout as exc:
            raise SecAggError(f"{self.party_id}: no {stage!r} from the aggregator {self.aggregator!r} within "
                              f"{self.config.wait:.0f} s") from exc
        return _check_abort(msg, stage)

    def aggregate(self, channel: Channel, x: np.ndarray, round_id: int | str) -> ClientOutcome:
        """Contribute ``x`` (clipped to the quantiser's range) to the round's sum."""
        return self.aggregate_ring(channel, self.session(round_id).quantiser.encode(x), round_id)

    def aggregate_ring(self, channel: Channel, q: np.ndarray, round_id: int | str) -> ClientOutcome:
        """Contribute ring elements ``q`` (uint64, each below ``2^value_bits`` so the sum cannot wrap)."""
        s = Session(self.clients, self.config, self.job_id, self.namespace, round_id)
        me = self.party_id
        if me not in s.neighbours:
            raise SecAggError(f"{me} is not a client of this job")
        q = np.asarray(q, dtype=np.uint64)
        if q.size and int(q.max()) >= 1 << s.quantiser.value_bits:
            raise SecAggError(f"{me}: a ring input is >= 2^{s.quantiser.value_bits}: the sum could wrap")
        t_me, nbrs = s.thresholds[me], s.neighbours[me]

        # 1. advertise two fresh key pairs, signed
        c_sk, s_sk = X25519PrivateKey.generate(), X25519PrivateKey.generate()
        c_pk, s_pk = _pub(c_sk), _pub(s_sk)
        channel.send(self.aggregator, s.tag("advertise"),
                     {"c_pk": c_pk, "s_pk": s_pk, "sig": self.signer.sign(s.advertisement(me, c_pk, s_pk)),
                      "cert": self.signer.certificate})
        ads = _expect(self._recv(channel, s, "keys"), self.aggregator, "ads", dict)
        own = ads.get(me)
        if not isinstance(own, dict) or own.get("c_pk") != c_pk or own.get("s_pk") != s_pk:
            raise SecAggError(f"{me}: the aggregator relayed a different key advertisement for {me}")
        live = set(ads) - {me}
        if not live <= nbrs:
            raise SecAggError(f"{me}: the aggregator sent keys of non-neighbours {sorted(live - nbrs)}")
        keys: dict[str, tuple[bytes, bytes]] = {}
        certs: dict[str, bytes] = {me: self.signer.certificate}
        for v in sorted(live):
            ad = ads[v]
            if not isinstance(ad, dict) or not all(isinstance(ad.get(k), bytes) for k in ("c_pk", "s_pk", "sig")):
                raise SecAggError(f"{me}: malformed key advertisement of {v!r}")
            if len(ad["c_pk"]) != _KEY_BYTES or len(ad["s_pk"]) != _KEY_BYTES:
                raise SecAggError(f"{me}: key advertisement of {v!r} has keys of the wrong size")
            try:
                cert = ad.get("cert", b"")
                self.verifier.verify(v, s.advertisement(v, ad["c_pk"], ad["s_pk"]), ad["sig"],
                                     cert if isinstance(cert, bytes) else b"")
            except SignatureError as exc:
                raise SecAggError(f"{me}: refused the key advertisement of {v!r} (substituted or replayed): "
                                  f"{exc}") from None
            keys[v] = (ad["c_pk"], ad["s_pk"])
            certs[v] = cert if isinstance(cert, bytes) else b""
        holders = sorted(live | {me})
        if len(holders) < t_me:
            raise SecAggAborted(f"{me}: only {len(holders)} of the {t_me} shareholders needed are online")

        # 2. Shamir-share s_sk and the self-mask seed b among the holders, encrypted to each
        b_seed = os.urandom(prg.SEED_BYTES)
        points = [s.point[v] for v in holders]
        s_shares = shamir.split(s_sk.private_bytes(_RAW, _PRIV, serialization.NoEncryption()), t_me, points)
        b_shares = shamir.split(b_seed, t_me, points)
        held: dict[str, _Held] = {me: _Held(s_shares[s.point[me]], b_shares[s.point[me]])}
        out: dict[str, bytes] = {}
        for v in holders:
            if v == me:
                continue
            aead = ChaCha20Poly1305(prg.agree(c_sk, keys[v][0], s.context, "share-encryption", me, v))
            nonce = os.urandom(_NONCE_BYTES)
            out[v] = nonce + aead.encrypt(nonce, s_shares[s.point[v]] + b_shares[s.point[v]], s.share_ad(me, v))
        channel.send(self.aggregator, s.tag("shares"), {"to": out})
        incoming = _expect(self._recv(channel, s, "shares_for"), self.aggregator, "from", dict)
        if not set(incoming) <= live:
            raise SecAggError(f"{me}: shares relayed from parties that did not advertise: "
                              f"{sorted(set(incoming) - live)}")
        for u, ct in incoming.items():
            if not isinstance(ct, bytes) or len(ct) <= _NONCE_BYTES:
                raise SecAggError(f"{me}: malformed share ciphertext from {u!r}")
            aead = ChaCha20Poly1305(prg.agree(c_sk, keys[u][0], s.context, "share-encryption", me, u))
            try:
                pt = aead.decrypt(ct[:_NONCE_BYTES], ct[_NONCE_BYTES:], s.share_ad(u, me))
            except InvalidTag:
                raise SecAggError(f"{me}: the shares from {u!r} do not authenticate") from None
            if len(pt) != 2 * shamir.SHARE_BYTES:
                raise SecAggError(f"{me}: the shares from {u!r} have the wrong size")
            held[u] = _Held(pt[:shamir.SHARE_BYTES], pt[shamir.SHARE_BYTES:])
        u2 = set(incoming)
        if len(u2) + 1 < t_me:
            raise SecAggAborted(f"{me}: only {len(u2) + 1} of the {t_me} shareholders needed are still online")

        # 3. masked input
        bits = s.quantiser.bits
        y = q + prg.expand(b_seed, len(q), bits)
        for v in sorted(u2):
            mask = prg.expand(prg.agree(s_sk, keys[v][1], s.context, "mask", me, v), len(q), bits)
            y = y + mask if s.sign_of(me, v) > 0 else y - mask
        y &= s.quantiser.mask
        channel.send(self.aggregator, s.tag("masked"), {"y": y.astype(s.quantiser.wire_dtype)})

        # 4. consistency: sign the survivor set, check t_me signatures on the same set
        survivors = _expect(self._recv(channel, s, "survivors"), self.aggregator, "survivors", list)
        u3 = set(survivors)
        if me not in u3 or not u3 <= set(s.clients) or len(u3) != len(survivors):
            raise SecAggError(f"{me}: invalid survivor set from the aggregator")
        if len((u2 | {me}) & u3) < t_me:
            raise SecAggAborted(f"{me}: only {len((u2 | {me}) & u3)} of my shareholders survived, {t_me} needed")
        channel.send(self.aggregator, s.tag("consistency"), {"sig": self.signer.sign(s.survivors_statement(me, u3))})
        signed = self._recv(channel, s, "signatures")
        sigs = _expect(signed, self.aggregator, "sigs", dict)
        relayed = signed.get("certs") if isinstance(signed.get("certs"), dict) else {}
        for v, pem in relayed.items():  # certificates of non-neighbours (SecAgg+), CA-checked by the verifier
            if v not in certs and isinstance(pem, bytes):
                certs[v] = pem
        if not set(sigs) <= u3 or me not in sigs:
            raise SecAggError(f"{me}: survivor signatures from outside the survivor set")
        for v, sig in sigs.items():
            try:
                if not isinstance(sig, bytes):
                    raise SignatureError("not bytes")
                self.verifier.verify(v, s.survivors_statement(v, u3), sig, certs.get(v, b""))
            except SignatureError as exc:
                raise SecAggError(f"{me}: {v!r} did not sign this survivor set: {exc}") from None
        if len(sigs) < t_me:
            raise SecAggAborted(f"{me}: {len(sigs)} signatures on the survivor set, {t_me} needed")

        # 5. unmask: one kind of share per neighbour, decided by the signed U3
        channel.send(self.aggregator, s.tag("unmask"), {
            "s": {u: held[u].s_share for u in sorted(u2 - u3)},
            "b": {u: held[u].b_share for u in sorted((u2 & u3) | {me})},
        })
        return ClientOutcome(tuple(sorted(u3)))


@dataclass(frozen=True)
class AggregateResult:
    """The aggregator's result: the decoded sum, the ring sum, and who took part."""

    total: np.ndarray  # Σ_{u ∈ survivors} clip(x_u), decoded (float64)
    ring_total: np.ndarray  # Σ q(x_u) mod 2^bits
    survivors: tuple[str, ...]  # U3: clients whose input is in the sum
    dropped: tuple[str, ...]  # clients whose input is not in the sum
    late: tuple[str, ...]  # in the sum, but dropped before unmasking (recovered from shares)
    error_bound: float  # per-coordinate bound |total − Σ clipped x_u| from quantisation
    rejected: Mapping[str, str] = field(default_factory=dict)  # party → why its message was refused


class SecAggServer:
    """The aggregator's side: relays, enforces deadlines and thresholds, unmasks the sum."""

    def __init__(self, party_id: str, clients: Iterable[str], config: SecAggConfig, job_id: str,
                 namespace: str = "") -> None:
        self.party_id = party_id
        self.clients = tuple(clients)
        self.config, self.job_id, self.namespace = config, job_id, namespace
        self.rejected: dict[str, str] = {}

    def session(self, round_id: int | str) -> Session:
        return Session(self.clients, self.config, self.job_id, self.namespace, round_id)

    # ---- hooks (a test's malicious aggregator overrides these) ---------------------------------------
    def relay_advertisements(self, recipient: str, ads: dict[str, Payload]) -> dict[str, Payload]:
        """The advertisements sent to ``recipient`` (an honest aggregator relays them unchanged)."""
        return ads

    # ---- plumbing -----------------------------------------------------------------------------------
    def _collect(self, channel: Channel, senders: Iterable[str], s: Session, stage: str) -> dict[str, Payload]:
        """Every sender's ``stage`` message that arrives before the stage deadline (the others dropped)."""
        deadline = time.monotonic() + self.config.deadline
        got: dict[str, Payload] = {}
        for u in sorted(senders):
            try:
                got[u] = channel.recv(u, s.tag(stage), timeout=max(0.001, deadline - time.monotonic()))
            except ChannelTimeout:
                continue
        return got

    def _need(self, channel: Channel, s: Session, alive: set[str], stage: str, next_stage: str) -> None:
        """Abort (telling ``alive`` under ``next_stage``) unless enough clients are left after ``stage``."""
        need = min(s.thresholds.values())
        if len(alive) < need:
            reason = (f"{len(alive)} of {len(s.clients)} clients left after {stage!r}, at least {need} needed "
                      f"(dropped: {', '.join(sorted(set(s.clients) - alive)) or 'none'})")
            self._abort(channel, s, alive, next_stage, reason)

    def _abort(self, channel: Channel, s: Session, recipients: Iterable[str], stage: str, reason: str) -> None:
        for u in sorted(recipients):
            channel.send(u, s.tag(stage), {"abort": reason})
        raise SecAggAborted(reason)

    def _reject(self, channel: Channel, s: Session, u: str, why: str, next_stage: str) -> None:
        """Drop ``u`` for a malformed message and tell it why (it would otherwise wait for ``next_stage``)."""
        self.rejected[u] = why
        channel.send(u, s.tag(next_stage), {"abort": f"your message was refused: {why}"})

    # ---- the protocol -------------------------------------------------------------------------------
    def aggregate(self, channel: Channel, length: int, round_id: int | str) -> AggregateResult:
        """Run one round and return the sum of the surviving clients' vectors of ``length`` coordinates."""
        s = self.session(round_id)
        self.rejected = {}
        clients = set(s.clients)

        ads: dict[str, Payload] = {}
        for u, m in self._collect(channel, clients, s, "advertise").items():
            if all(isinstance(m.get(k), bytes) for k in ("c_pk", "s_pk", "sig")) and \
                    len(m["c_pk"]) == len(m["s_pk"]) == _KEY_BYTES:
                ads[u] = {"c_pk": m["c_pk"], "s_pk": m["s_pk"], "sig": m["sig"],
                          "cert": m["cert"] if isinstance(m.get("cert"), bytes) else b""}
            else:
                self._reject(channel, s, u, "malformed key advertisement", "keys")
        u1 = set(ads)
        self._need(channel, s, u1, "advertise", "keys")
        for u in sorted(u1):
            view = {v: ads[v] for v in sorted((s.neighbours[u] & u1) | {u})}
            channel.send(u, s.tag("keys"), {"ads": self.relay_advertisements(u, view)})

        shares: dict[str, dict[str, bytes]] = {}
        for u, m in self._collect(channel, u1, s, "shares").items():
            to = m.get("to")
            if isinstance(to, dict) and set(to) == (s.neighbours[u] & u1) and all(isinstance(c, bytes)
                                                                                  for c in to.values()):
                shares[u] = to
            else:
                self._reject(channel, s, u, "shares not addressed to exactly its online neighbours", "shares_for")
        u2 = set(shares)
        self._need(channel, s, u2, "shares", "shares_for")
        for v in sorted(u2):
            channel.send(v, s.tag("shares_for"), {"from": {u: shares[u][v] for u in sorted(s.neighbours[v] & u2)}})

        q = s.quantiser
        masked: dict[str, np.ndarray] = {}
        for u, m in self._collect(channel, u2, s, "masked").items():
            y = m.get("y")
            if isinstance(y, np.ndarray) and y.shape == (length,) and y.dtype == q.wire_dtype:
                masked[u] = y.astype(np.uint64)
            else:
                self._reject(channel, s, u, f"masked input is not a {q.wire_dtype} vector of length {length}",
                             "survivors")
        u3 = set(masked)
        self._need(channel, s, u3, "masked", "survivors")
        for u in sorted(u3):
            channel.send(u, s.tag("survivors"), {"survivors": sorted(u3)})

        sigs = {u: m["sig"] for u, m in self._collect(channel, u3, s, "consistency").items()
                if isinstance(m.get("sig"), bytes)}
        u4 = set(sigs)
        self._need(channel, s, u4, "consistency", "signatures")
        for u in sorted(u4):
            channel.send(u, s.tag("signatures"), {"sigs": dict(sorted(sigs.items())),
                                                  "certs": {v: ads[v]["cert"] for v in sorted(sigs)}})

        reveals = self._collect(channel, u4, s, "unmask")
        total = self._unmask(s, ads, masked, u2, u3, reveals, length)
        return AggregateResult(
            total=q.decode_sum(total, len(u3)), ring_total=total, survivors=tuple(sorted(u3)),
            dropped=tuple(sorted(clients - u3)), late=tuple(sorted(u3 - set(reveals))),
            error_bound=q.error_bound(len(u3)), rejected=dict(self.rejected))

    def _unmask(self, s: Session, ads: Mapping[str, Payload], masked: Mapping[str, np.ndarray], u2: set[str],
                u3: set[str], reveals: Mapping[str, Payload], length: int) -> np.ndarray:
        bits = s.quantiser.bits

        def gather(kind: str, owner: str) -> dict[int, bytes]:
            out: dict[int, bytes] = {}
            for v, m in reveals.items():
                share = m.get(kind, {}).get(owner) if isinstance(m.get(kind), dict) else None
                if v in s.holders(owner) and isinstance(share, bytes):
                    out[s.point[v]] = share
            return out

        secrets: dict[tuple[str, str], bytes] = {}
        for kind, owners in (("b", u3), ("s", u2 - u3)):
            for w in sorted(owners):
                got = gather(kind, w)
                if len(got) < s.thresholds[w]:
                    raise SecAggAborted(f"cannot unmask {w!r}: {len(got)} shares of its "
                                        f"{'self-mask seed' if kind == 'b' else 'mask key'}, "
                                        f"{s.thresholds[w]} needed; the round is aborted, nothing unmasked")
                try:
                    secrets[kind, w] = shamir.combine(got, s.thresholds[w])
                except shamir.ShamirError as exc:
                    raise SecAggAborted(f"cannot unmask {w!r}: {exc}") from None

        total = np.zeros(length, dtype=np.uint64)
        for u in sorted(u3):
            total += masked[u]
            total -= prg.expand(secrets["b", u], length, bits)
        for w in sorted(u2 - u3):  # dropped after sharing, before masking: remove their pairwise masks
            sk = X25519PrivateKey.from_private_bytes(secrets["s", w])
            if _pub(sk) != ads[w]["s_pk"]:
                raise SecAggAborted(f"the shares of {w!r}'s mask key rebuild a different key; aborted")
            for v in sorted(s.neighbours[w] & u3):
                mask = prg.expand(prg.agree(sk, ads[v]["s_pk"], s.context, "mask", w, v), length, bits)
                # v added sign_of(v, w)·mask to y_v
                total = total - mask if s.sign_of(v, w) > 0 else total + mask
        return total & s.quantiser.mask
