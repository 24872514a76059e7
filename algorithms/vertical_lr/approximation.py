"""The two linear approximations of the logistic gradient the guest can evaluate on encrypted host scores.

With ``U = Σ_k u_k`` (the hosts' partial scores, encrypted) and ``u_G`` (the guest's own score, in clear)
the exact fore-gradient ``σ(u_G + U) − y`` is not computable under Paillier; both approximations are
linear in ``[[U]]``:

* ``"taylor"`` (Hardy et al., arXiv 1711.10677; FATE): expansion around 0,
  ``d = ¼·(u_G + U) − ½·y'`` with ``y' = 2y − 1``. Its optimum is the least-squares fit of ``wx`` to ``2y'``.
  Loss: ``Σ [log 2 − ½·y'·wx + ⅛·(wx)²]``, the second-order expansion itself.
* ``"local"``: expansion around the guest's own score, ``d = σ(u_G) − y + σ'(u_G)·U`` with
  ``σ' = σ(1 − σ) ∈ (0, ¼]``. Exact when the hosts contribute nothing and much closer to the logistic
  gradient otherwise (its fixed point reaches the exact logistic regression's test AUC to ~0.001 on
  default credit, where the Taylor optimum falls 0.006 short). ``[[d]] = σ'(u_G) ⊙ [[U]] + (σ(u_G) − y)``
  costs one 16-bit modular exponentiation per row
  (:func:`algorithms.paillier.elementwise_product`).
  Loss (monitoring, early stopping and step control): the second-order expansion around ``u_G`` itself,
  ``Σ ℓ(u_G) + Σ (σ(u_G) − y)·U + ½·Σ σ'(u_G)·U²`` with ``ℓ(z) = log(1 + e^{−y'z})``. Since
  ``Σ_i U_i·d_i = Σ (σ − y)·U + Σ σ'·U²`` it equals ``Σ ℓ(u_G) + ½·Σ (σ − y)·U + ½·Σ_k u_kᵀd``, and host k
  knows ``u_kᵀd = w_k·(X_kᵀd)`` from its own plaintext gradient: it sends ``[[Σ_epoch u_kᵀd]]`` once per
  epoch (:func:`fore_gradient_loss`). The earlier surrogate ``⅛·Σ U²`` (``σ' ≤ ¼``) is an upper bound that
  grows with the host scores wherever ``σ' < ¼``: on an imbalanced portfolio (σ' ≈ 0.06) it *rose* every
  epoch while the true logistic loss fell (SGD 0.5 on 6 % positives: 0.220 → 0.257 against 0.2085 → 0.2025),
  which would make the step control undo healthy epochs. It is kept with label DP, where ``d`` carries the
  guest's noise and ``u_kᵀd`` with it.

The Taylor loss (and the local one under label DP) needs the plaintext part, ``[[Σ c_i·U_i]]`` with per-row
coefficients ``c`` (multi-exponentiation), and ``⅛·[[Σ U²]]`` from the hosts' squares and cross terms.

What it reveals: nothing beyond the protocol's messages. The coefficients (``σ'(u_G)``, ``σ(u_G) − y``,
``¼u_G − ½y'``) are the guest's own and stay with it: only the re-randomised ``[[d]]`` leaves the guest,
and loss terms only masked (see :mod:`algorithms.vertical_lr.guest`).
"""

from __future__ import annotations

import math
from concurrent.futures import Executor
from typing import Protocol

import numpy as np

from algorithms.paillier import CiphertextVector, elementwise_product
from algorithms.vertical_lr.params import SCORE_LIMIT, Approximation

APPROXIMATIONS: tuple[Approximation, ...] = ("taylor", "local")

#: ``σ'(u_G) ∈ (0, ¼]`` is quantised to multiples of ``2^-18`` (exponents of at most 16 bits).
SLOPE_FRAC_BITS = 18
#: Loss factors of the encrypted squared terms: ``⅛·Σ_k Σ u_k²`` and ``¼·Σ_{k<l} Σ u_k·u_l`` (= ⅛·Σ U²).
SQUARE_FACTOR = 0.125
CROSS_FACTOR = 0.25
LOG2 = math.log(2.0)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=float)))


class Expansion(Protocol):
    """One linear approximation: the encrypted fore-gradient and the guest's parts of the loss."""

    name: str

    def fore_gradient(self, scores: CiphertextVector, u_guest: np.ndarray, y: np.ndarray,
                      executor: Executor | None) -> CiphertextVector:
        """``[[d]]`` from ``[[U]]`` (not re-randomised)."""
        ...

    def fore_gradient_header(self, scores_bound: int, frac_bits: int) -> tuple[int, int]:
        """Public ``(frac_bits, bound)`` of ``[[d]]`` from those of ``[[U]]`` (parameters only, no data)."""
        ...

    def plaintext_fore_gradient(self, u_guest: np.ndarray, scores: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The same ``d`` in clear (simulations and tests)."""
        ...

    def plain_loss(self, u_guest: np.ndarray, y: np.ndarray) -> float:
        """The part of the batch loss that depends on the guest's data only."""
        ...

    def loss_coefficients(self, u_guest: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``c`` of the linear loss term ``Σ c_i·U_i``."""
        ...


class TaylorExpansion:
    """Expansion around 0 (FATE-compatible): ``d = ¼·(u_G + U) − ½·y'``."""

    name = "taylor"

    def fore_gradient(self, scores: CiphertextVector, u_guest: np.ndarray, y: np.ndarray,
                      executor: Executor | None) -> CiphertextVector:
        # ¼·(U + u_G − 2y') at scale 2^(F+2): add the plaintext part, then move the scale (exact, free)
        plain = np.rint(np.ldexp(u_guest - 2.0 * (2.0 * y - 1.0), scores.frac_bits))
        ints = [int(v) for v in plain.tolist()]
        return scores.add_encoded(ints, max((abs(v) for v in ints), default=0)).scaled_down(2)

    def fore_gradient_header(self, scores_bound: int, frac_bits: int) -> tuple[int, int]:
        return frac_bits + 2, scores_bound + ((SCORE_LIMIT + 2) << frac_bits)  # |u_G − 2y'| <= SCORE_LIMIT + 2

    def plaintext_fore_gradient(self, u_guest: np.ndarray, scores: np.ndarray, y: np.ndarray) -> np.ndarray:
        return 0.25 * (u_guest + scores) - 0.5 * (2.0 * y - 1.0)

    def plain_loss(self, u_guest: np.ndarray, y: np.ndarray) -> float:
        return float(np.sum(LOG2 - 0.5 * (2.0 * y - 1.0) * u_guest + 0.125 * u_guest * u_guest))

    def loss_coefficients(self, u_guest: np.ndarray, y: np.ndarray) -> np.ndarray:
        return -0.5 * (2.0 * y - 1.0) + 0.25 * u_guest


def slope_factors(u_guest: np.ndarray) -> np.ndarray:
    """``σ'(u_G)`` quantised to integers at scale ``2^SLOPE_FRAC_BITS`` (at most ``2^16``)."""
    s = sigmoid(u_guest)
    return np.rint(np.ldexp(s * (1.0 - s), SLOPE_FRAC_BITS)).astype(np.int64)


class LocalExpansion:
    """Expansion around the guest's own score: ``d = σ(u_G) − y + σ'(u_G)·U``."""

    name = "local"

    def fore_gradient(self, scores: CiphertextVector, u_guest: np.ndarray, y: np.ndarray,
                      executor: Executor | None) -> CiphertextVector:
        scaled = elementwise_product(scores, slope_factors(u_guest), SLOPE_FRAC_BITS, executor)
        plain = np.rint(np.ldexp(sigmoid(u_guest) - y, scaled.frac_bits))
        ints = [int(v) for v in plain.tolist()]
        return scaled.add_encoded(ints, max((abs(v) for v in ints), default=0))

    def fore_gradient_header(self, scores_bound: int, frac_bits: int) -> tuple[int, int]:
        # σ'(u_G) <= 2^16 at scale 2^18, |σ(u_G) − y| < 1
        return frac_bits + SLOPE_FRAC_BITS, (scores_bound << 16) + (1 << (frac_bits + SLOPE_FRAC_BITS))

    def plaintext_fore_gradient(self, u_guest: np.ndarray, scores: np.ndarray, y: np.ndarray) -> np.ndarray:
        slope = np.ldexp(slope_factors(u_guest).astype(float), -SLOPE_FRAC_BITS)
        return sigmoid(u_guest) - y + slope * scores

    def plain_loss(self, u_guest: np.ndarray, y: np.ndarray) -> float:
        return float(np.sum(np.logaddexp(0.0, -(2.0 * y - 1.0) * u_guest)))

    def loss_coefficients(self, u_guest: np.ndarray, y: np.ndarray) -> np.ndarray:
        return sigmoid(u_guest) - y


def expansion(name: Approximation) -> Expansion:
    """The approximation called ``name`` (``"taylor"`` or ``"local"``)."""
    if name == "taylor":
        return TaylorExpansion()
    if name == "local":
        return LocalExpansion()
    raise ValueError(f"approximation must be one of {APPROXIMATIONS}, got {name!r}")


def fore_gradient_loss(name: Approximation, label_dp_noise: float) -> bool:
    """Whether the loss's host part is ``½·Σ (σ − y)·U + ½·Σ_k u_kᵀd`` (local expansion without label DP: the
    second-order expansion exactly) instead of ``Σ c·U + ⅛·Σ U²``."""
    return name == "local" and label_dp_noise == 0


def plaintext_loss(name: Approximation, u_guest: np.ndarray, scores: np.ndarray, y: np.ndarray,
                   label_dp_noise: float = 0.0) -> float:
    """The batch loss the protocol reports, computed in clear (simulations and tests)."""
    exp = expansion(name)
    linear = float(exp.loss_coefficients(u_guest, y) @ scores)
    if fore_gradient_loss(name, label_dp_noise):
        return exp.plain_loss(u_guest, y) + 0.5 * linear + 0.5 * float(scores @ exp.plaintext_fore_gradient(
            u_guest, scores, y))
    return exp.plain_loss(u_guest, y) + linear + SQUARE_FACTOR * float(scores @ scores)
