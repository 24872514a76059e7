"""Vertical (hetero) logistic regression: guest with labels, feature-holding hosts, arbiter with the key.

Protocol (per mini-batch ``B``; the same batches at every party from the shared seed and the epoch):

* arbiter → all (setup): Paillier public key (>= 2048 bits), job parameters, start epoch;
* host k → guest: ``[[u_k]] = [[X_k[B]·w_k]]`` and ``[[Σ u_k²]]`` (plus, with several hosts, ``[[u_k]]`` to
  earlier hosts and re-randomised cross terms ``[[Σ u_k·u_l]]`` to the guest);
* guest → hosts: the fore-gradient ``[[d]]``, a linear function of ``[[U]] = Σ_k [[u_k]]``, re-randomised:

  - ``approximation="local"`` (default): ``d = σ(u_G) − y + σ'(u_G)·U``, the logistic gradient expanded
    around the guest's own score ``u_G`` (one elementwise ciphertext × plaintext exponentiation per row);
    matches the exact logistic regression's AUC on default credit;
  - ``approximation="taylor"`` (FATE, Hardy et al.): ``d = ¼·(u_G + U) − ½·y'``, expanded around 0; its
    optimum is the least-squares fit;

* each silo → arbiter: ``[[X_p[B]ᵀ d]] + mask`` (uniform in ``Z_n``); arbiter → silo: decrypted residues;
  the silo unmasks and updates its own weights (SGD/Adam with optional step decay, L2);
* per epoch: host k → guest ``[[Σ u_kᵀd]]`` (local mode: its part of the second-order loss, from its own
  gradient); guest → arbiter the masked loss, one ciphertext combining all terms (the Taylor loss, or in
  local mode the second-order expansion around ``u_G``), then the plaintext mean loss; (weight-diff mode:
  every silo → arbiter ``‖Δw_p‖²``); arbiter → all: stop/continue and the step control's verdict (an epoch
  whose loss rose is undone by every party and the step scaled, :mod:`algorithms.vertical_lr.step_control`).

Who learns what (the same for both approximations: the local expansion's coefficients are the guest's
own and never leave it): the arbiter decrypts only masked vectors (uniform residues) and learns the epoch
loss (and ``‖Δw_p‖²`` in weight-diff mode); hosts learn their own gradients and nothing about labels beyond
what those imply (batch size > host feature count is enforced), plus with step control one bit per epoch
(whether the loss rose); the guest learns its own gradients and
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
