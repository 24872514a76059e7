"""Vertical (hetero) logistic regression: guest with labels, feature-holding hosts, arbiter with the key.

Protocol (per mini-batch ``B``; the same batches at every party from the shared seed and the epoch):

* arbiter → all (setup): Paillier public key (>= 2048 bits), job parameters, start epoch;
* host k → guest: ``[[u_k]] = [[X_k[B]·w_k]]`` and ``[[Σ u_k²]]`` (plus, with several hosts, ``[[u_k]]`` to
  earlier hosts and re-randomised cross terms ``[[Σ u_k·u_l]]`` to the guest);
* guest → hosts: ``[[d]] = ¼·(u_G + Σ_k [[u_k]]) − ½·y'``, re-randomised;
* each silo → arbiter: ``[[X_p[B]ᵀ d]] + mask`` (uniform in ``Z_n``); arbiter → silo: decrypted residues;
  the silo unmasks and updates its own weights (SGD/Adam, L2);
* per epoch: guest → arbiter masked loss terms, then the plaintext mean loss; (weight-diff mode: every
  silo → arbiter ``‖Δw_p‖²``); arbiter → all: stop/continue.

Who learns what: the arbiter decrypts only masked vectors (uniform residues) and learns the epoch loss
(and ``‖Δw_p‖²`` in weight-diff mode); hosts learn their own gradients and nothing about labels beyond
what those imply (batch size > host feature count is enforced); the guest learns its own gradients and
the loss, and at prediction time each host's per-row partial scores. See the role modules for details.
"""

from algorithms.vertical_lr.arbiter import VerticalLRArbiter
from algorithms.vertical_lr.estimator import VerticalArrays, VerticalLogisticRegression, as_arrays
from algorithms.vertical_lr.guest import VerticalLRGuest
from algorithms.vertical_lr.host import VerticalLRHost
from algorithms.vertical_lr.model import ArbiterSummary, GuestModel, HostModel
from algorithms.vertical_lr.params import ProtocolError, VerticalLRParams, batch_schedule
from algorithms.vertical_lr.predict import VerticalLRGuestPredictor, VerticalLRHostPredictor, sigmoid

__all__ = [
    "ArbiterSummary",
    "GuestModel",
    "HostModel",
    "ProtocolError",
    "VerticalArrays",
    "VerticalLRArbiter",
    "VerticalLRGuest",
    "VerticalLRGuestPredictor",
    "VerticalLRHost",
    "VerticalLRHostPredictor",
    "VerticalLRParams",
    "VerticalLogisticRegression",
    "as_arrays",
    "batch_schedule",
    "sigmoid",
]
