"""A host (feature holder) of vertical logistic regression.

Per mini-batch ``B`` host k

1. computes its partial scores ``u_k = X_k[B]·w_k`` and sends ``[[u_k]]`` (fresh encryptions under the
   arbiter's key) and ``[[Σ_B u_k²]]`` to the guest; with several hosts it also sends ``[[u_k]]`` to every
   host listed before it, and returns to the guest ``[[Σ_B u_k·u_l]]`` (re-randomised) for each host l
   listed after it (the cross terms of the loss);
2. receives the re-randomised fore-gradient ``[[d]]`` from the guest (whichever approximation the job
   uses: the host's work is the same), computes ``[[X_k[B]ᵀ d]]`` by
   multi-exponentiation, adds a fresh uniform mask from ``Z_n``, re-randomises it and has the arbiter
   decrypt it;
3. unmasks, divides by ``|B|``, adds ``l2·w_k`` and updates ``w_k`` locally (SGD or Adam).

At the end of an epoch (local approximation without label DP) it sends the guest ``[[Σ_epoch u_kᵀd]]``, a
fresh encryption of ``w_k·(X_kᵀd)`` summed over the batches, which it knows from its own gradient: the
guest adds it into the loss total (the second-order loss, :mod:`algorithms.vertical_lr.approximation`).
Then it applies the arbiter's decision: a rejected epoch (loss rose) is undone (weights and
optimizer state back to the start of the last accepted epoch) and the step is scaled as every other party's.

What it receives and learns: the arbiter's public key, the job parameters and the per-epoch decisions
(stop/continue, converged, and the step control's rollback and step scale: one bit per epoch on whether the
loss rose, :mod:`algorithms.vertical_lr.step_control`); ciphertexts under the arbiter's key (``[[d]]``;
other hosts' ``[[u]]``), which it cannot read;
the masked residues of its own gradient, i.e. its own plaintext gradient ``X_k[B]ᵀ d / |B|`` per batch.
That gradient is a linear function of ``d``; batches are always larger than ``X_k``'s feature count, so it
cannot be solved for ``d`` or the labels within a batch (the FATE guard); across batches ``d`` changes
with the weights. At setup it learns every silo's feature count and checks the batch guard itself,
including ``|B| > p_guest + 1``, which keeps the guest from solving its own gradient for ``u_k``.
It never sees a label, a plaintext fore-gradient or another party's weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor

import numpy as np

from algorithms.base import Checkpoint, Parties
from algorithms.dp.label import label_noise_allowance
from algorithms.paillier import CiphertextVector, QuantisedMatrix
from algorithms.vertical_lr.approximation import expansion, fore_gradient_loss
from algorithms.vertical_lr.common import (
    DEFAULT_PARTIES,
    anchor_state,
    apply_decision,
    batch_tag,
    checkpoint_state,
    encrypted_product,
    epoch_tag,
    expect_residues,
    expect_vector,
    for_key_holder,
    partial_scores,
    publish,
    restore_anchor,
    saved_epoch,
    silo_setup,
    snapshot,
    state_at,
    unmask_gradient,
)
from algorithms.vertical_lr.model import HostModel
from algorithms.vertical_lr.optimizer import PartyOptimizer
from algorithms.vertical_lr.params import (
    CROSS_FRAC_BITS,
    FEATURE_BITS,
    FORWARD_FRAC_BITS,
    ProtocolError,
    VerticalLRParams,
    batch_schedule,
    cross_bound,
    dot_bound,
    n_batches,
    score_bound,
    square_bound,
)
from algorithms.vertical_lr.pool import PooledEncryptor
from algorithms.vertical_lr.validation import check_features
from federation.channel import Channel


class VerticalLRHost:
    """Feature-holder role. ``run(channel)`` returns this host's :class:`HostModel`.

    ``x``: the host's features, rows aligned with the guest's. ``params``: if given, must equal the job's
    (sent by the guest through the arbiter); otherwise the job's are adopted.
    """

    def __init__(self, x: np.ndarray, feature_names: Sequence[str] | None = None, parties: Parties = DEFAULT_PARTIES,
                 params: VerticalLRParams | None = None, checkpoint: Checkpoint | None = None,
                 executor: Executor | None = None) -> None:
        self.parties = parties
        self.x, self.feature_names = check_features(x, feature_names, "host")
        self.params = params
        self.checkpoint = checkpoint
        self.executor = executor

    def run(self, channel: Channel) -> HostModel:
        me, p = channel.party_id, self.parties
        if me not in p.hosts:
            raise ProtocolError(f"{me!r} is not a host of this job (hosts: {list(p.hosts)})")
        n_rows, n_features = self.x.shape
        latest_epoch, latest = saved_epoch(self.checkpoint)
        setup = silo_setup(channel, p, {"role": "host", "n_rows": n_rows, "n_features": n_features,
                                        "checkpoint_epoch": latest_epoch}, self.params, n_rows)
        params, key = setup.params, setup.public_key
        state = state_at(latest_epoch, latest, setup.start_epoch - 1, me)
        weights = np.zeros(n_features) if state is None else np.asarray(state["weights"], dtype=float).copy()
        optimizer = PartyOptimizer(params.optimizer, params.learning_rate, n_features, params.lr_decay)
        if state is not None:
            optimizer.load(state["optimizer"])
        if setup.finished:
            return HostModel(weights, self.feature_names)

        index = p.hosts.index(me)
        earlier, later = p.hosts[:index], p.hosts[index + 1:]
        executor = self.executor  # None: inline
        # per epoch: [[u]] per row; per batch [[Σu²]], the cross term, the masked gradient's re-randomisation
        per_epoch = n_rows + n_batches(n_rows, params.batch_size) * (1 + (1 if later else 0) + n_features) + 1
        epochs_left = params.max_epochs - setup.start_epoch
        capacity = 2 * (n_rows // n_batches(n_rows, params.batch_size) + 2)
        encryptor = PooledEncryptor(key, executor, per_epoch * epochs_left, capacity, party=me)
        quantised = QuantisedMatrix.from_float(self.x, FEATURE_BITS)
        d_frac, d_bound = expansion(params.approximation).fore_gradient_header(len(p.hosts) * score_bound(),
                                                                                FORWARD_FRAC_BITS)
        d_header = d_frac, d_bound + label_noise_allowance(params.label_dp_noise, d_frac)  # public, as the guest's
        dot_loss = fore_gradient_loss(params.approximation, params.label_dp_noise)
        previous = state
        anchor = restore_anchor(state, weights, optimizer)  # start of the last accepted epoch (step control)
        try:
            for epoch in range(setup.start_epoch, params.max_epochs):
                start_weights = weights.copy()
                start = snapshot(weights, optimizer)
                dot = 0.0  # Σ_epoch u_kᵀd, the host's part of the local loss
                for b, rows in enumerate(batch_schedule(n_rows, params.batch_size, params.seed, epoch)):
                    tag = batch_tag(epoch, b)
                    u = partial_scores(self.x[rows], weights, me, tag)
                    # headers carry public bounds only (SCORE_LIMIT, |B|), never max |u| or Σu² themselves
                    forward = publish(encryptor.encrypt(u, FORWARD_FRAC_BITS), score_bound())
                    square = publish(encryptor.encrypt(np.array([u @ u]), FORWARD_FRAC_BITS), square_bound(len(rows)))
                    channel.send(p.guest, f"{tag}.forward", {"u": forward, "u_sq": square})
                    for peer in earlier:
                        channel.send(peer, f"{tag}.peer_forward", {"u": forward})
                    if later:
                        channel.send(p.guest, f"{tag}.cross", {"cross": self._cross_term(channel, encryptor, tag, u,
                                                                                         later, executor)})
                    d = expect_vector(channel.recv(p.guest, f"{tag}.fore_gradient"), "d", key, len(rows), p.guest,
                                      d_header)
                    product = encrypted_product(d, quantised.take(rows), executor)
                    masked, masks = for_key_holder(product, encryptor)
                    channel.send(p.arbiter, f"{tag}.gradient", {"g": masked})
                    residues = expect_residues(channel.recv(p.arbiter, f"{tag}.gradient.plain"), n_features,
                                               p.arbiter)
                    raw = unmask_gradient(residues, masks, key, product.frac_bits, me, tag)  # X_kᵀd
                    dot += float(weights @ raw)  # u_kᵀd with the weights the batch's scores came from
                    weights = optimizer.step(weights, raw / len(rows) + params.l2 * weights)
                et = epoch_tag(epoch)
                if dot_loss:  # one fresh ciphertext per epoch, for the guest's loss total only
                    term = publish(encryptor.encrypt(np.array([dot]), FORWARD_FRAC_BITS),
                                   dot_bound(n_rows, len(p.hosts)))
                    channel.send(p.guest, f"{et}.loss_term", {"ud": term})
                if params.early_stopping == "weight_diff":
                    delta = weights - start_weights
                    channel.send(p.arbiter, f"{et}.weight_diff", {"sq_norm": float(delta @ delta)})
                decision = channel.recv(p.arbiter, f"{et}.decision")
                weights, anchor = apply_decision(decision, weights, optimizer, start, anchor, p.arbiter)
                state = {"epoch": epoch, "weights": weights.copy(), "optimizer": optimizer.state(),
                         "anchor": anchor_state(anchor),
                         "stopped": bool(decision["stop"])}
                if self.checkpoint is not None:
                    self.checkpoint.save(epoch, checkpoint_state(state, previous))
                previous = state
                if decision["stop"]:
                    break
        finally:
            encryptor.close()
        return HostModel(weights, self.feature_names)

    def _cross_term(self, channel: Channel, encryptor: PooledEncryptor, tag: str, u: np.ndarray,
                    later: Sequence[str], executor: Executor | None) -> CiphertextVector:
        """``[[Σ_B u_k·u_l]]`` summed over the hosts l listed after this one, re-randomised for the guest."""
        key = encryptor.public_key
        # own scores at the public scale 2^CROSS_FRAC_BITS (a data-derived scale would show ⌈log2 max |u_k|⌉)
        weights_q = QuantisedMatrix(np.rint(np.ldexp(u, CROSS_FRAC_BITS)).astype(np.int64)[:, None], CROSS_FRAC_BITS)
        total: CiphertextVector | None = None
        for peer in later:
            theirs = expect_vector(channel.recv(peer, f"{tag}.peer_forward"), "u", key, len(u), peer,
                                   (FORWARD_FRAC_BITS, score_bound()))
            part = encrypted_product(theirs, weights_q, executor)
            total = part if total is None else total + part
        assert total is not None
        return encryptor.rerandomize(publish(total, cross_bound(len(u), len(later))))
