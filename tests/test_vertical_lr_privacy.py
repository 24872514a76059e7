"""Vertical LR: the attacks an audit mounted with the project's own roles, each shown to fail now.

Every test runs the real guest / host / arbiter roles over the in-memory network with the session's 2048-bit
key on the breast data, plays the curious party with exactly what that party holds, and checks the attack no
longer works (or is refused before it can start).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import numpy as np
import pytest

from algorithms.base import Parties
from algorithms.paillier import CiphertextVector, Decryptor, QuantisedMatrix, mask
from algorithms.vertical_lr import (
    ProtocolError,
    VerticalArrays,
    VerticalLRArbiter,
    VerticalLRGuest,
    VerticalLRHost,
    VerticalLRParams,
    as_arrays,
    batch_schedule,
)
from algorithms.vertical_lr import arbiter as arbiter_module
from algorithms.vertical_lr import common as common_module
from algorithms.vertical_lr import guest as guest_module
from algorithms.vertical_lr import host as host_module
from algorithms.vertical_lr.approximation import sigmoid, slope_factors
from algorithms.vertical_lr.params import FEATURE_BITS
from datasets import load_breast_vertical, train_test_split_ids
from federation.channel import InMemoryNetwork, run_parties

FAST = dict(learning_rate=0.05, optimizer="adam", max_epochs=1, tol=0.0, lr_decay=0.0)


@pytest.fixture(scope="module")
def breast() -> VerticalArrays:
    data = load_breast_vertical()
    train_ids, _ = train_test_split_ids(data.guest)
    return as_arrays(data.subset(train_ids))


def run_job(arrays: VerticalArrays, params: VerticalLRParams, keypair: Any, record: bool = False
            ) -> tuple[dict[str, Any], InMemoryNetwork, Parties]:
    parties = Parties("bank", tuple(arrays.hosts_x), "arbiter")
    roles: dict[str, Any] = {"bank": VerticalLRGuest(arrays.guest_x, arrays.y, None, parties, params),
                             "arbiter": VerticalLRArbiter(parties, None, keypair=keypair)}
    for h, x in arrays.hosts_x.items():
        roles[h] = VerticalLRHost(x, None, parties)
    network = InMemoryNetwork(record=record)
    results = run_parties({n: partial(r.run, network.channel(n)) for n, r in roles.items()}, network)
    return results, network, parties


@contextmanager
def recording(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> Iterator[list[tuple[str, np.ndarray]]]:
    """Record ``(tag, result)`` of ``module.name(..., party, tag)`` calls: what that role holds in clear."""
    seen: list[tuple[str, np.ndarray]] = []
    original: Callable[..., np.ndarray] = getattr(module, name)

    def wrapper(*args: Any) -> np.ndarray:
        out = original(*args)
        seen.append((args[-1], np.array(out, dtype=float)))
        return out

    monkeypatch.setattr(module, name, wrapper)
    yield seen


# --------------------------------------------------------------------------- 1. guest solving for host scores
def _guest_attack(arrays: VerticalArrays, params: VerticalLRParams, gradients: list[tuple[str, np.ndarray]],
                  guest_scores: list[tuple[str, np.ndarray]], host_scores: list[tuple[str, np.ndarray]]) -> float:
    """The guest solves ``X_G1[B]ᵀ d = g`` for ``d``, then ``d = σ(u_G) − y + σ'(u_G)·U`` for every row's ``U``.

    Returns the largest error of the recovered host scores over all batches, relative to the largest score.
    """
    n = len(arrays.y)
    design = np.c_[arrays.guest_x, np.ones(n)]
    xq = QuantisedMatrix.from_float(design, FEATURE_BITS).to_float()  # the guest's own quantised features
    batches = batch_schedule(n, params.batch_size, params.seed, 0)
    u_g, u_h = dict(guest_scores), dict(host_scores)
    errors, scale = [], []
    for b, rows in enumerate(batches):
        tag = f"vlr.e0.b{b}"
        g = dict(gradients)[tag]
        d, *_ = np.linalg.lstsq(xq[rows].T, g, rcond=None)  # minimum-norm solution when underdetermined
        slope = np.ldexp(slope_factors(u_g[tag]).astype(float), -18)
        recovered = (d - (sigmoid(u_g[tag]) - arrays.y[rows])) / slope
        errors.append(np.max(np.abs(recovered - u_h[tag])))
        scale.append(np.max(np.abs(u_h[tag])))
    return float(max(errors) / max(scale))


def test_guest_cannot_solve_its_gradient_for_host_scores(breast: VerticalArrays, keypair: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # a host with 5 features, the guest with 10 (+ intercept): batches of 11 rows passed the old host-only guard
    rows = slice(0, 451)  # 41 batches of exactly 11 rows
    arrays = VerticalArrays(breast.guest_x[rows], breast.y[rows], {"insurer": breast.hosts_x["insurer"][rows, :5]})
    p_guest = arrays.guest_x.shape[1]
    assert p_guest == 10
    small = VerticalLRParams(batch_size=p_guest + 1, **FAST)

    # every party refuses it now: the arbiter at setup ...
    with pytest.raises(ProtocolError, match=r"batch size 11 .* guest's 10 features plus intercept"):
        run_job(arrays, small, keypair)
    # ... and the silos on their own, even if the arbiter let the job through (the host is the one protected)
    monkeypatch.setattr(arbiter_module, "check_batch_guard", lambda *a: None)
    with pytest.raises(ProtocolError, match=r"guest's 10 features plus intercept"):
        run_job(arrays, small, keypair)

    # the attack itself, with every guard switched off: exact recovery of every row's host score
    monkeypatch.setattr(common_module, "check_batch_guard", lambda *a: None)
    with (recording(monkeypatch, guest_module, "unmask_gradient") as grads,
          recording(monkeypatch, guest_module, "partial_scores") as u_guest,
          recording(monkeypatch, host_module, "partial_scores") as u_host):
        run_job(arrays, small, keypair)
        exact = _guest_attack(arrays, small, grads, u_guest, u_host)
        print(f"guard off, |B| = 11: host scores recovered to {exact:.1e}")
        assert exact < 1e-4
    monkeypatch.undo()

    # the smallest batch the guard allows: the system is underdetermined, the guest's best guess is far off
    allowed = VerticalLRParams(batch_size=p_guest + 2, **FAST)
    with (recording(monkeypatch, guest_module, "unmask_gradient") as grads,
          recording(monkeypatch, guest_module, "partial_scores") as u_guest,
          recording(monkeypatch, host_module, "partial_scores") as u_host):
        run_job(arrays, allowed, keypair)
        guess = _guest_attack(arrays, allowed, grads, u_guest, u_host)
        print(f"|B| >= 12: best guess off by {guess:.2f} of the largest score")
        assert guess > 0.1


def test_host_enforces_the_guard_itself(breast: VerticalArrays, keypair: Any) -> None:
    """A host alone, facing an arbiter that lets an 11-row batch through: it refuses before sending anything."""
    public_key, _ = keypair
    params = VerticalLRParams(batch_size=11, **FAST)
    x = breast.hosts_x["insurer"][:, :5]
    parties = Parties("bank", ("insurer",), "arbiter")

    def lenient_arbiter(channel: Any) -> None:
        channel.recv("insurer", "vlr.hello")
        channel.send("insurer", "vlr.setup", {"public_key": public_key.to_bytes(), "params": params.to_dict(),
                                              "n_rows": len(x), "start_epoch": 0, "finished": False, "error": None,
                                              "host_features": {"insurer": 5}, "guest_features": 10})

    network = InMemoryNetwork(record=True)
    with pytest.raises(ProtocolError, match=r"guest's 10 features plus intercept"):
        run_parties({"arbiter": partial(lenient_arbiter, network.channel("arbiter")),
                     "insurer": partial(VerticalLRHost(x, None, parties).run, network.channel("insurer"))}, network)
    assert [d.tag for d in network.transcript if d.sender == "insurer"] == ["vlr.hello"]


# ------------------------------------------------------------------ 2. clear bound / frac_bits headers
def _headers(network: InMemoryNetwork) -> list[tuple[str, str, str, str, int, int | None]]:
    """Every ciphertext vector header any party received: (receiver, sender, tag, field, frac_bits, bound)."""
    out = []
    for d in network.transcript:
        for name, value in d.payload.items():
            if isinstance(value, CiphertextVector):
                out.append((d.receiver, d.sender, d.tag, name, value.frac_bits, value.bound))
            elif isinstance(value, list):
                out.extend((d.receiver, d.sender, d.tag, name, v.frac_bits, v.bound) for v in value
                           if isinstance(v, CiphertextVector))
    return sorted(out)


@pytest.mark.parametrize("approximation", ["local", "taylor"])
def test_headers_carry_public_values_only(breast: VerticalArrays, keypair: Any, monkeypatch: pytest.MonkeyPatch,
                                          approximation: str) -> None:
    x = breast.hosts_x["insurer"]
    arrays = VerticalArrays(breast.guest_x, breast.y, {"insurer": x[:, :12], "broker": x[:, 12:]})
    rng = np.random.default_rng(7)
    other = VerticalArrays(rng.normal(size=breast.guest_x.shape) * 5, 1 - breast.y,
                           {"insurer": rng.normal(size=(len(x), 12)) * 0.01, "broker": rng.normal(size=(len(x), 8))})
    params = VerticalLRParams(batch_size=64, approximation=approximation, **FAST)
    with recording(monkeypatch, host_module, "partial_scores") as u_host:
        _, network, _ = run_job(arrays, params, keypair, record=True)
    _, network_other, _ = run_job(other, params, keypair, record=True)

    # the attack: the guest reads each host's Σ_B u² (and max |u|) off the header, without decrypting
    squares = {tag: float(u @ u) for tag, u in u_host}
    read = [(d.tag, d.payload["u_sq"].bound / 2.0 ** d.payload["u_sq"].frac_bits) for d in network.received_by("bank")
            if d.tag.endswith(".forward")]
    assert len(read) == 2 * 7
    assert not any(np.isclose(value, squares[tag.removesuffix(".forward")], rtol=1e-3) for tag, value in read
                   if squares[tag.removesuffix(".forward")] > 0)
    # every header (bound and scale, at every party, including the arbiter's masked vectors) is the same for
    # completely different data: it is a function of the public parameters only
    headers = _headers(network)
    assert headers == _headers(network_other)
    assert {(h[4], h[5]) for h in headers if h[0] == "arbiter"} == {(0, None)}


# ------------------------------------------------------------------------------------ 3. per-term loss
def test_guest_unmasks_one_loss_value_per_epoch(breast: VerticalArrays, keypair: Any,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The guest used to unmask every loss term: each host's Σ_B u² per batch. Now one combined value per epoch."""
    x = breast.hosts_x["insurer"]
    arrays = VerticalArrays(breast.guest_x, breast.y, {"insurer": x[:, :12], "broker": x[:, 12:]})
    params = VerticalLRParams(batch_size=64, **FAST | {"max_epochs": 2})
    with (recording(monkeypatch, guest_module, "unmask") as unmasked,
          recording(monkeypatch, host_module, "partial_scores") as u_host):
        results, network, _ = run_job(arrays, params, keypair, record=True)
    loss_messages = [d for d in network.received_by("arbiter") if ".gradient" not in d.tag and d.sender == "bank"
                     and any(isinstance(v, CiphertextVector) for v in d.payload.values())]
    assert [d.tag for d in loss_messages] == ["vlr.e0.loss", "vlr.e1.loss"]
    assert all(len(d.payload["total"]) == 1 for d in loss_messages)
    assert len(unmasked) == 2 and all(value.shape == (1,) for _, value in unmasked)  # one value per epoch
    # what it unmasked is the epoch's whole encrypted part, not any single host's per-batch Σu²
    squares = np.array([float(u @ u) for _, u in u_host])
    assert not np.isclose(squares[:, None], np.array([v[0] for _, v in unmasked])[None, :], rtol=1e-6).any()
    assert len(results["bank"].losses) == 2


# --------------------------------------------------------- 4. masked ciphertexts re-randomised for the arbiter
def _randomness(network: InMemoryNetwork, keypair: Any) -> list[list[int]]:
    """What the arbiter reads from every masked vector it receives: each ciphertext's randomness ρ.

    It decrypts ``m + r`` and divides it out: ``ρ = c·(1 + (m + r)·n)⁻¹ = c·(1 − (m + r)·n) mod n²``.
    """
    public_key, private_key = keypair
    n, nsq = int(public_key.n), int(public_key.nsquare)
    decryptor = Decryptor(private_key)
    out = []
    for d in network.received_by("arbiter"):
        for value in d.payload.values():
            if isinstance(value, CiphertextVector):
                assert value.masked
                plain = decryptor.decrypt_raw(value)
                out.append([int(c) * (1 - int(m) * n) % nsq for c, m in zip(value.ciphertexts, plain, strict=True)])
    return out


def test_arbiter_cannot_read_ciphertext_randomness(breast: VerticalArrays, keypair: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A zero column and two identical guest columns: recognisable from the masked gradients unless re-randomised."""
    public_key, _ = keypair
    n = int(public_key.n)
    guest_x = breast.guest_x.copy()
    guest_x[:, 0] = 0.0  # e.g. a rare category absent from every batch
    guest_x[:, 1] = guest_x[:, 2]
    arrays = VerticalArrays(guest_x, breast.y, breast.hosts_x)
    params = VerticalLRParams(batch_size=64, **FAST)

    def leaky(vector: CiphertextVector, encryptor: Any) -> tuple[CiphertextVector, list[int]]:  # masking only
        masked, masks = mask(vector)
        return CiphertextVector(masked.public_key, masked.ciphertexts, 0, None), masks

    with monkeypatch.context() as patch:  # the attack works against masking alone
        patch.setattr(guest_module, "for_key_holder", leaky)
        _, network, _ = run_job(arrays, params, keypair, record=True)
    gradients = [d.payload["g"] for d in network.received_by("arbiter") if d.sender == "bank"
                 and d.tag.endswith(".gradient")]
    assert all(int(g.ciphertexts[0]) % n == 1 for g in gradients)  # the zero column, seen without the key
    rho = _randomness(network, keypair)
    assert all(r[1] == r[2] for r in rho if len(r) == guest_x.shape[1] + 1)  # identical columns

    _, network, _ = run_job(arrays, params, keypair, record=True)
    received = [v for d in network.received_by("arbiter") for v in d.payload.values()
                if isinstance(v, CiphertextVector)]
    assert len(received) == 2 * 7 + 1  # the gradients of both silos per batch, the loss
    assert not any(int(c) % n == 1 for v in received for c in v.ciphertexts)
    every = [x for r in _randomness(network, keypair) for x in r]
    assert len(set(every)) == len(every) and 1 not in every  # every ciphertext a fresh encryption
