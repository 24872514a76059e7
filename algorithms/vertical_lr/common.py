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
    PublicKey,
    QuantisedMatrix,
    WrongKeyError,
    matmul_transpose,
    unmask,
)
from algorithms.vertical_lr.params import ProtocolError, VerticalLRParams, bucket_window
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
    """``x·w``, refused with :class:`TrainingDivergedError` if it overflowed."""
    with np.errstate(over="ignore", invalid="ignore"):
        scores = x @ weights
    return check_scores(scores, party, tag)


def unmask_gradient(residues: list[int], masks: list[int], key: PublicKey, frac_bits: int, party: str,
                    tag: str) -> np.ndarray:
    """Unmask a decrypted gradient; a gradient beyond the float range means the training diverged."""
    try:
        values = unmask(residues, masks, key.n, frac_bits)
    except OverflowError as exc:
        raise TrainingDivergedError(f"{party}: gradient at {tag} exceeds the float range: training diverged; "
                                    "lower learning_rate or standardise the features") from exc
    return check_scores(values, party, tag)


def expect_vector(payload: dict[str, Any], name: str, key: PublicKey, length: int, sender: str
                  ) -> CiphertextVector:
    """The ciphertext vector ``payload[name]`` under ``key`` with ``length`` elements, or a clear error."""
    value = payload.get(name)
    if not isinstance(value, CiphertextVector):
        raise ProtocolError(f"expected ciphertexts {name!r} from {sender!r}, got {type(value).__name__}")
    try:
        value.under(key)
    except WrongKeyError as exc:
        raise WrongKeyError(f"{name!r} from {sender!r}: {exc}") from exc
    if len(value) != length:
        raise ProtocolError(f"expected {length} ciphertexts {name!r} from {sender!r}, got {len(value)}")
    return value


def expect_residues(payload: dict[str, Any], length: int, sender: str) -> list[int]:
    values = payload.get("residues")
    if not isinstance(values, list) or len(values) != length or not all(isinstance(v, int) for v in values):
        raise ProtocolError(f"expected {length} decrypted residues from {sender!r}")
    return values


def encrypted_product(vector: CiphertextVector, matrix: QuantisedMatrix, executor: Executor | None
                      ) -> CiphertextVector:
    """``[[Qᵀ v]]`` with the bucket width suited to the batch (small batches: narrow buckets)."""
    rows, cols = matrix.shape
    parallel = executor is not None and rows * cols >= 4096
    bits = int(np.max(np.abs(matrix.values))).bit_length() if matrix.values.size else 1
    window = bucket_window(max(1, rows // (2 if parallel else 1)), max(bits, 1))
    return matmul_transpose(vector, matrix, executor, window)


@dataclass(frozen=True)
class Setup:
    """What a silo learns at setup: the key, the job's parameters, where to (re)start."""

    public_key: PublicKey
    params: VerticalLRParams
    n_rows: int
    start_epoch: int
    finished: bool
    host_features: dict[str, int]


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
    return Setup(PublicKey.from_wire(reply["public_key"]), params, n_rows, int(reply["start_epoch"]),
                 bool(reply["finished"]), {k: int(v) for k, v in (reply.get("host_features") or {}).items()})
