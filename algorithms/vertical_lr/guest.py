"""The guest (label holder) of vertical logistic regression.

Per mini-batch ``B`` (``y' = 2y − 1 ∈ {−1, +1}``, ``U = Σ_k u_k``, approximations in
:mod:`algorithms.vertical_lr.approximation`):

1. receives ``[[u_k]]`` and ``[[Σ_B u_k²]]`` from every host k;
2. computes the fore-gradient homomorphically: ``"local"``: ``[[d]] = σ'(u_G) ⊙ [[U]] + (σ(u_G) − y)``
   (``σ'(u_G)`` quantised to 2^-18, one 16-bit exponentiation per row); ``"taylor"`` (Hardy et al., arXiv
   1711.10677): ``[[d]] = ¼·(u_G + [[U]]) − ½·y'`` (the ¼ is an exact change of fixed-point scale). It
   re-randomises ``[[d]]`` and sends it to every host — without re-randomisation a host could divide out
   its own ciphertext of ``u_k`` and read the plaintext part, i.e. the labels;
3. computes ``[[X_G1[B]ᵀ d]]`` (``X_G1`` = features plus a column of ones for the intercept), masks it
   with fresh uniform values of ``Z_n``, has the arbiter decrypt it, unmasks, divides by ``|B|``, adds
   ``l2·w`` (not on the intercept) and updates its weights locally (SGD or Adam);
4. accumulates the batch loss: a plaintext part, ``[[Σ c·U]]`` (multi-exponentiation with the guest's
   per-row coefficients ``c``), ``⅛·[[Σ u_k²]]`` from each host and ``¼·[[Σ u_k·u_l]]`` (k < l) cross terms
   from the hosts. Taylor: ``Σ [log 2 − ½·y'·wx + ⅛·(wx)²]`` (``c = ¼u_G − ½y'``); local:
   ``Σ log(1 + e^{−y'u_G}) + Σ (σ(u_G) − y)·U + ⅛·Σ U²`` (``c = σ(u_G) − y``), an upper bound of the
   second-order expansion around ``u_G`` since ``σ' ≤ ¼``.

At the end of an epoch the encrypted loss terms are masked and decrypted by the arbiter; the guest
reports the mean epoch loss (one scalar, without the L2 term) and receives stop/continue.

What it receives and learns: ciphertexts under the arbiter's key from the hosts (it cannot read them),
the hosts' feature counts, the masked residues of its own gradient and loss terms, hence its own
plaintext gradient ``X_G1[B]ᵀ d / |B|`` per batch (it knows ``d`` up to the hosts' contribution) and the
epoch loss. It never sees host features, host weights or host partial scores during training.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from typing import Any

import numpy as np

from algorithms.base import Checkpoint, Parties
from algorithms.dp.dpsgd import secure_rng
from algorithms.dp.label import noisy_fore_gradient
from algorithms.paillier import CiphertextVector, QuantisedMatrix, mask, unmask
from algorithms.vertical_lr.approximation import CROSS_FACTOR, SQUARE_FACTOR, expansion
from algorithms.vertical_lr.common import (
    DEFAULT_PARTIES,
    batch_tag,
    checkpoint_state,
    encrypted_product,
    epoch_tag,
    expect_residues,
    expect_vector,
    partial_scores,
    saved_epoch,
    silo_setup,
    state_at,
    unmask_gradient,
)
from algorithms.vertical_lr.model import GuestModel
from algorithms.vertical_lr.optimizer import PartyOptimizer
from algorithms.vertical_lr.params import (
    DEFAULT_PARAMS,
    FEATURE_BITS,
    LOSS_BITS,
    ProtocolError,
    VerticalLRParams,
    batch_schedule,
    check_batch_guard,
    n_batches,
)
from algorithms.vertical_lr.pool import PooledEncryptor
from algorithms.vertical_lr.validation import check_features, check_labels
from federation.channel import Channel


class VerticalLRGuest:
    """Label-holder role. ``run(channel)`` returns the guest's :class:`GuestModel`.

    ``x``: the guest's features; ``y``: labels in {0, 1}; rows aligned with every host's. ``params``: the
    job's parameters (the guest is the job initiator; they are sent to the arbiter and the hosts).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, feature_names: Sequence[str] | None = None,
                 parties: Parties = DEFAULT_PARTIES, params: VerticalLRParams = DEFAULT_PARAMS,
                 checkpoint: Checkpoint | None = None, executor: Executor | None = None) -> None:
        self.parties = parties
        self.x, self.feature_names = check_features(x, feature_names, "guest")
        self.y = check_labels(y, self.x.shape[0], "guest")
        self.params = params
        self.checkpoint = checkpoint
        self.executor = executor

    def _restore(self, state: dict[str, Any] | None) -> tuple[np.ndarray, PartyOptimizer, list[float], bool]:
        size = self.x.shape[1] + 1
        weights = np.zeros(size) if state is None else np.asarray(state["weights"], dtype=float).copy()
        optimizer = PartyOptimizer(self.params.optimizer, self.params.learning_rate, size, self.params.lr_decay)
        if state is None:
            return weights, optimizer, [], False
        optimizer.load(state["optimizer"])
        return weights, optimizer, [float(v) for v in state["history"]], bool(state["converged"])

    def _model(self, weights: np.ndarray, losses: list[float], converged: bool) -> GuestModel:
        return GuestModel(weights[:-1].copy(), float(weights[-1]), list(self.feature_names), list(losses),
                          len(losses), converged)

    def run(self, channel: Channel) -> GuestModel:
        me, p, params = channel.party_id, self.parties, self.params
        if me != p.guest:
            raise ProtocolError(f"{me!r} is not the guest of this job ({p.guest!r})")
        n_rows, n_features = self.x.shape
        latest_epoch, latest = saved_epoch(self.checkpoint)
        hello = {"role": "guest", "n_rows": n_rows, "n_features": n_features, "checkpoint_epoch": latest_epoch,
                 "params": params.to_dict(), "history": list((latest or {}).get("history", [])),
                 "stopped": bool((latest or {}).get("stopped", False)),
                 "converged": bool((latest or {}).get("converged", False))}
        setup = silo_setup(channel, p, hello, params, n_rows)
        check_batch_guard(n_rows, params.batch_size, setup.host_features)  # our own check, not only the arbiter's
        key = setup.public_key
        state = state_at(latest_epoch, latest, setup.start_epoch - 1, me)
        weights, optimizer, losses, converged = self._restore(state)
        if setup.finished:
            return self._model(weights, losses, converged)

        executor = self.executor  # None: inline
        capacity = 2 * (n_rows // n_batches(n_rows, params.batch_size) + 2)
        encryptor = PooledEncryptor(key, executor, n_rows * (params.max_epochs - setup.start_epoch), capacity,
                                    party=me)
        design = np.c_[self.x, np.ones(n_rows) if params.fit_intercept else np.zeros(n_rows)]
        quantised = QuantisedMatrix.from_float(design, FEATURE_BITS)
        labels = self.y.astype(float)
        approx = expansion(params.approximation)
        penalty = np.r_[np.full(n_features, params.l2), 0.0]
        previous = state
        label_noise = secure_rng(None)  # label DP noise (if label_dp_noise > 0): OS entropy, never the job seed
        try:
            for epoch in range(setup.start_epoch, params.max_epochs):
                start_weights = weights.copy()
                plain_loss = 0.0
                terms: list[tuple[CiphertextVector, float]] = []
                for b, rows in enumerate(batch_schedule(n_rows, params.batch_size, params.seed, epoch)):
                    tag = batch_tag(epoch, b)
                    forwards = [channel.recv(h, f"{tag}.forward") for h in p.hosts]
                    total = expect_vector(forwards[0], "u", key, len(rows), p.hosts[0])
                    for h, fw in zip(p.hosts[1:], forwards[1:], strict=True):
                        total = total + expect_vector(fw, "u", key, len(rows), h)
                    u_guest = partial_scores(design[rows], weights, me, tag)
                    y_batch = labels[rows]
                    fore = approx.fore_gradient(total, u_guest, y_batch, executor)
                    channel.broadcast(p.hosts, f"{tag}.fore_gradient", {"d": encryptor.rerandomize(
                        noisy_fore_gradient(fore, params.label_dp_noise, label_noise))})

                    product = encrypted_product(fore, quantised.take(rows), executor)
                    masked, masks = mask(product)
                    channel.send(p.arbiter, f"{tag}.gradient", {"g": masked})

                    # loss terms while the arbiter decrypts
                    plain_loss += approx.plain_loss(u_guest, y_batch)
                    coeff = QuantisedMatrix.from_float(approx.loss_coefficients(u_guest, y_batch), LOSS_BITS)
                    terms.append((encrypted_product(total, coeff, executor), 1.0))
                    for h, fw in zip(p.hosts, forwards, strict=True):
                        terms.append((expect_vector(fw, "u_sq", key, 1, h), SQUARE_FACTOR))
                    for h in p.hosts[:-1]:
                        cross = channel.recv(h, f"{tag}.cross")
                        terms.append((expect_vector(cross, "cross", key, 1, h), CROSS_FACTOR))

                    residues = expect_residues(channel.recv(p.arbiter, f"{tag}.gradient.plain"), n_features + 1,
                                               p.arbiter)
                    gradient = (unmask_gradient(residues, masks, key, product.frac_bits, me, tag) / len(rows)
                                + penalty * weights)
                    weights = optimizer.step(weights, gradient)
                    if not params.fit_intercept:
                        weights[-1] = 0.0

                loss = (plain_loss + self._decrypt_terms(channel, epoch, terms)) / n_rows
                losses.append(loss)
                et = epoch_tag(epoch)
                channel.send(p.arbiter, f"{et}.report", {"loss": loss})
                if params.early_stopping == "weight_diff":
                    delta = weights - start_weights
                    channel.send(p.arbiter, f"{et}.weight_diff", {"sq_norm": float(delta @ delta)})
                decision = channel.recv(p.arbiter, f"{et}.decision")
                converged = bool(decision["converged"])
                state = {"epoch": epoch, "weights": weights.copy(), "optimizer": optimizer.state(),
                         "history": list(losses), "stopped": bool(decision["stop"]), "converged": converged}
                if self.checkpoint is not None:
                    self.checkpoint.save(epoch, checkpoint_state(state, previous))
                previous = state
                if decision["stop"]:
                    break
        finally:
            encryptor.close()
        return self._model(weights, losses, converged)

    def _decrypt_terms(self, channel: Channel, epoch: int, terms: list[tuple[CiphertextVector, float]]) -> float:
        """Mask the encrypted loss terms, have the arbiter decrypt them, return ``Σ factor·term``."""
        p, key = self.parties, terms[0][0].public_key
        masked = [mask(vec) for vec, _ in terms]
        et = epoch_tag(epoch)
        channel.send(p.arbiter, f"{et}.loss_terms", {"terms": [m for m, _ in masked]})
        residues = channel.recv(p.arbiter, f"{et}.loss_terms.plain").get("residues")
        if not isinstance(residues, list) or len(residues) != len(terms):
            raise ProtocolError(f"expected {len(terms)} decrypted loss terms from {p.arbiter!r}")
        total = 0.0
        for (vec, factor), (_, masks), res in zip(terms, masked, residues, strict=True):
            total += factor * float(unmask(expect_residues({"residues": res}, 1, p.arbiter), masks, key.n,
                                           vec.frac_bits)[0])
        return total
