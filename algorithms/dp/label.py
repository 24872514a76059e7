"""Label DP for vertical logistic regression: Gaussian noise on the fore-gradient the guest sends to hosts.

The hosts of vertical LR receive the encrypted fore-gradient ``[[d]]`` of every batch and, through the arbiter,
their plaintext gradient ``X_hᵀ d / |B|``: gradient-based label inference (the README's "not stopped" attack)
reads labels from it. With ``label_dp_noise = z > 0`` the guest sends ``[[d + N(0, z² I)]]`` instead (the noise
is added homomorphically at the ciphertext's fixed-point scale; the guest's own gradient uses the exact
``d``). Changing one label changes exactly one ``d_i`` by 1 (``"local"``: ``σ(u_G) − y``; ``"taylor"``:
``−½·y'``, ``y' = ±1``), and every row is in one batch per epoch, so each epoch is one Gaussian mechanism of
sensitivity 1 with noise multiplier ``z``; ``epochs`` epochs compose to
``SelfComposedDpEvent(GaussianDpEvent(z), epochs)`` — :func:`label_dp_epsilon` (the same accountant).

Scope, stated with the figure: the guarantee covers the fore-gradients (and everything the hosts compute from
them, hence the hosts' own model), with the guest's partial scores treated as given: the guest's weights are
trained on the exact labels, so a host that could also learn the guest's scores is not covered.

What it reveals to whom: the hosts learn noised fore-gradients; ε is public and goes in the model notes.
"""

from __future__ import annotations

import numpy as np

from algorithms.dp.accountant import GaussianEvents, epsilon_of
from algorithms.paillier import CiphertextVector


def noisy_fore_gradient(fore: CiphertextVector, noise_multiplier: float, rng: np.random.Generator
                        ) -> CiphertextVector:
    """``[[d + N(0, z²)]]`` (``fore`` itself when ``z = 0``); re-randomise before sending, as for ``[[d]]``."""
    if noise_multiplier <= 0:
        return fore
    noise = np.rint(np.ldexp(rng.normal(0.0, noise_multiplier, len(fore)), fore.frac_bits))
    ints = [int(v) for v in noise.tolist()]
    return fore.add_encoded(ints, max((abs(v) for v in ints), default=0))


def label_noise_allowance(noise_multiplier: float, frac_bits: int) -> int:
    """What the fore-gradient's public header bound adds for the label-DP noise: 12 standard deviations at the
    fixed-point scale (public: it depends on the noise multiplier only; exceeding it has probability < 1e-32)."""
    return 0 if noise_multiplier <= 0 else int(np.ceil(np.ldexp(12.0 * noise_multiplier, frac_bits)))


def label_dp_epsilon(noise_multiplier: float, epochs: int, delta: float = 1e-5) -> float:
    """ε at ``delta`` of ``epochs`` epochs of noised fore-gradients (PLD accountant)."""
    if noise_multiplier <= 0:
        return float("inf")
    return epsilon_of([GaussianEvents(1.0, noise_multiplier, epochs)], delta)
