"""Message tags, payload checks, setup handshake and checkpoint restore shared by the vertical LR roles.

Every ciphertext vector a role receives is checked against the arbiter's public key
(:meth:`CiphertextVector.under`) and its expected length before use; residues are checked for count.

What it reveals: see :mod:`algorithms.vertical_lr` (this module only moves the protocol's messages).
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np

from algorithms.base import Checkpoint, Parties
from algorithms.paillier import (
    CiphertextVector,
    Encryptor,
    PublicKey,
    QuantisedMatrix,
    WrongKeyError,
    mask,
    matmul_transpose,
    unmask,
)
from algorithms.vertical_lr.optimizer import PartyOptimizer
from algorithms.vertical_lr.params import (
    SCORE_LIMIT,
    ProtocolError,
    VerticalLRParams,
    check_batch_guard,
)
from federation.channel import Channel

PREFIX = "vlr"
DEFAULT_PARTIES = Parties()


def batch_tag(epoch: int, batch: int) -> str:
    return f"{PREFIX}.e{epoch}.b{batch}"


def epoch_tag(epoch: int) -> str:
    return f"{PREFIX}.e{epoch}"


class TrainingDivergedError(FloatingPointError):
    """Weights or scores left the floating-point range: the step is too large for the features' scale."""


def check_scores(values: np.ndarray, party: str, tag: str) -> np.ndarray:
    """Refuse non-finite partial scores (diverged training) with a clear message instead of an encoding error."""
    if not np.all(np.isfinite(values)):
        raise TrainingDivergedError(
            f"{party}: partial scores are not finite at {tag}: training diverged; lower learning_rate, use "
            "optimizer='adam' or standardise the features"
        )
    return values


def partial_scores(x: np.ndarray, weights: np.ndarray, party: str, tag: str) -> np.ndarray:
    """``x·w``, refused with :class:`TrainingDivergedError` if it overflowed or left ``±SCORE_LIMIT``."""
    with np.errstate(over="ignore", invalid="ignore"):
        scores = x @ weights
    check_scores(scores, party, tag)
    if scores.size and float(np.max(np.abs(scores))) > SCORE_LIMIT:
        raise TrainingDivergedError(
            f"{party}: partial scores exceed ±2^{SCORE_LIMIT.bit_length() - 1} at {tag}: training diverged; "
            "lower learning_rate, use optimizer='adam' or standardise the features"
        )
    return scores


def publish(vector: CiphertextVector, bound: int) -> CiphertextVector:
    """The same ciphertexts with the public ``bound`` in their header instead of the data-derived one.

    ``bound`` comes from public parameters only (:data:`SCORE_LIMIT`, batch size, number of hosts); it must
    cover the analytic bound, which it does whenever the partial scores are within ``±SCORE_LIMIT``.
    """
    if vector.bound is None or vector.bound > bound:
        raise TrainingDivergedError(f"a ciphertext vector could exceed its public bound 2^{bound.bit_length()}")
    return CiphertextVector(vector.public_key, vector.ciphertexts, vector.frac_bits, bound)


def for_key_holder(vector: CiphertextVector, encryptor: Encryptor) -> tuple[CiphertextVector, list[int]]:
    """Mask ``vector`` for the arbiter: ``[[x + r]]`` re-randomised, with the public scale 0 in its header.

    Returns it with the masks ``r`` (keep them). Masking alone keeps the ciphertexts' randomness: the key
    holder, who strips the mask, would read it — an all-zero column of a batch gives the trivial encryption
    (``c ≡ 1 mod n``, visible even without the key), identical columns give identical ciphertexts. Fresh
    obfuscators make every ciphertext it receives a fresh encryption of a uniform residue. The real scale
    (it depends on ``⌈log2 max |x|⌉`` of the batch) stays with the owner, who unmasks at it.
    """
    masked, masks = mask(vector)
    fresh = encryptor.rerandomize(masked)
    return CiphertextVector(fresh.public_key, fresh.ciphertexts, 0, None), masks


def unmask_gradient(residues: list[int], masks: list[int], key: PublicKey, frac_bits: int, party: str,
                    tag: str) -> np.ndarray:
    """Unmask a decrypted gradient; a gradient beyond the float range means the training diverged."""
    try:
        values = unmask(residues, masks, key.n, frac_bits)
    except OverflowError as exc:
        raise TrainingDivergedError(f"{party}: gradient at {tag} exceeds the float range: training diverged; "
                                    "lower learning_rate or standardise the features") from exc
    return check_scores(values, party, tag)


def expect_vector(payload: dict[str, Any], name: str, key: PublicKey, length: int, sender: str,
                  header: tuple[int, int] | None = None) -> CiphertextVector:
    """The ciphertext vector ``payload[name]`` under ``key`` with ``length`` elements, or a clear error.

    ``header``: the public ``(frac_bits, bound)`` the vector must carry (vectors between silos).
    """
    value = payload.get(name)
    if not isinstance(value, CiphertextVector):
        raise ProtocolError(f"expected ciphertexts {name!r} from {sender!r}, got {type(value).__name__}")
    try:
        value.under(key)
    except WrongKeyError as exc:
        raise WrongKeyError(f"{name!r} from {sender!r}: {exc}") from exc
    if len(value) != length:
        raise ProtocolError(f"expected {length} ciphertexts {name!r} from {sender!r}, got {len(value)}")
    if header is not None and (value.frac_bits, value.bound) != header:
        raise ProtocolError(f"{name!r} from {sender!r} does not carry the public scale and bound of the protocol")
    return value


def expect_residues(payload: dict[str, Any], length: int, sender: str) -> list[int]:
    values = payload.get("residues")
    if not isinstance(values, list) or len(values) != length or not all(isinstance(v, int) for v in values):
        raise ProtocolError(f"expected {length} decrypted residues from {sender!r}")
    return values


def encrypted_product(vector: CiphertextVector, matrix: QuantisedMatrix, executor: Executor | None
                      ) -> CiphertextVector:
    """``[[Qᵀ v]]`` with the bucket width suited to each worker's chunk (small batches: narrow buckets)."""
    return matmul_transpose(vector, matrix, executor)


#: A party's weights and optimizer state at the start of an epoch.
Snapshot = tuple[np.ndarray, dict[str, Any]]


def snapshot(weights: np.ndarray, optimizer: PartyOptimizer) -> Snapshot:
    return weights.copy(), optimizer.state()


def apply_decision(decision: dict[str, Any], weights: np.ndarray, optimizer: PartyOptimizer, start: Snapshot,
                   anchor: Snapshot, sender: str) -> tuple[np.ndarray, Snapshot]:
    """Apply the arbiter's step control at the end of an epoch; returns the weights to go on with and the anchor.

    ``start``: this epoch's starting state; ``anchor``: the starting state of the last accepted epoch (the one
    the loss is compared with). Accepted: the epoch becomes the anchor. Rejected (its loss rose): back to the
    anchor, whose loss is the one the rise was measured against — the epoch's own start would not do, since
    the weights it starts from are the ones whose loss rose (with full batches its loss is theirs exactly).
    Then the step scale of the next epochs is taken. Every party applies the same decision, so the parties'
    optimizers stay in lock-step and the joint update stays that of one optimizer on the joined weights.
    """
    rollback, scale = decision.get("rollback", False), decision.get("step_scale", 1.0)
    if not isinstance(rollback, bool) or not isinstance(scale, int | float) or isinstance(scale, bool) \
            or not 0 < scale <= 1:
        raise ProtocolError(f"{sender!r} sent an invalid step decision (rollback={rollback!r}, step_scale={scale!r})")
    if rollback:
        weights = anchor[0].copy()
        optimizer.load(anchor[1])
    else:
        anchor = start
    optimizer.scale = float(scale)
    return weights, anchor


def anchor_state(anchor: Snapshot) -> dict[str, Any]:
    return {"weights": anchor[0].copy(), "optimizer": anchor[1]}


def restore_anchor(state: dict[str, Any] | None, weights: np.ndarray, optimizer: PartyOptimizer) -> Snapshot:
    """The anchor saved in a checkpoint, or (fresh start, or a checkpoint without one) the current state."""
    saved = (state or {}).get("anchor")
    if saved is None:
        return snapshot(weights, optimizer)
    return np.asarray(saved["weights"], dtype=float).copy(), dict(saved["optimizer"])


@dataclass(frozen=True)
class Setup:
    """What a silo learns at setup: the key, the job's parameters, where to (re)start."""

    public_key: PublicKey
    params: VerticalLRParams
    n_rows: int
    start_epoch: int
    finished: bool
    host_features: dict[str, int]
    guest_features: int


def saved_epoch(checkpoint: Checkpoint | None) -> tuple[int, dict[str, Any] | None]:
    """The latest checkpointed epoch (-1 if none) and its state."""
    latest = checkpoint.latest() if checkpoint is not None else None
    if latest is None:
        return -1, None
    return int(latest[0]), latest[1]


def state_at(latest_epoch: int, latest: dict[str, Any] | None, epoch: int, party: str) -> dict[str, Any] | None:
    """The state saved at the end of ``epoch`` (the latest one or the one before it), ``None`` for a fresh start."""
    if epoch < 0:
        return None
    if latest is not None and epoch == latest_epoch:
        return latest
    if latest is not None and epoch == latest_epoch - 1 and latest.get("previous") is not None:
        return latest["previous"]
    raise ProtocolError(f"{party} cannot resume after epoch {epoch}: its checkpoint holds epoch {latest_epoch}")


def checkpoint_state(state: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """Attach the previous epoch's state (without its own ``previous``) so a party can roll back one epoch."""
    out = dict(state)
    out["previous"] = None if previous is None else {k: v for k, v in previous.items() if k != "previous"}
    return out


def silo_setup(channel: Channel, parties: Parties, hello: dict[str, Any], own_params: VerticalLRParams | None,
               n_rows: int) -> Setup:
    """Send this silo's hello to the arbiter and receive the job setup (or the arbiter's refusal)."""
    me = channel.party_id
    channel.send(parties.arbiter, f"{PREFIX}.hello", hello)
    reply = channel.recv(parties.arbiter, f"{PREFIX}.setup")
    if reply.get("error"):
        raise ProtocolError(f"arbiter refused the job: {reply['error']}")
    params = VerticalLRParams.from_dict(reply["params"])
    if own_params is not None:
        own_params.require_same(params, me)
    if int(reply["n_rows"]) != n_rows:
        raise ProtocolError(f"{me} holds {n_rows} aligned rows but the job has {reply['n_rows']}")
    host_features = {k: int(v) for k, v in (reply.get("host_features") or {}).items()}
    guest_features = int(reply.get("guest_features", -1))
    # every silo enforces the batch guard itself, on the feature counts the arbiter collected
    check_batch_guard(n_rows, params.batch_size, host_features, guest_features)
    if me in host_features and host_features[me] != int(hello["n_features"]):
        raise ProtocolError(f"the arbiter reports {host_features[me]} features for {me} but it holds "
                            f"{hello['n_features']}")
    return Setup(PublicKey.from_wire(reply["public_key"]), params, n_rows, int(reply["start_epoch"]),
                 bool(reply["finished"]), host_features, guest_features)
