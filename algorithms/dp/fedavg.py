"""Client-level DP-FedAvg (McMahan et al., ICLR 2018) with fixed or adaptive clipping (Andrew et al., 2021).

Each round every participating client clips its model update ``Δ_u`` to L2 norm ``C`` and the aggregate
gets Gaussian noise of standard deviation ``z_Δ · C``; the server divides by the number of clients that took
part. With secure aggregation the aggregator never sees a single ``Δ_u``; the noise is added

* ``noise_at="aggregator"`` — by the aggregator to the (securely computed) sum: central DP, the aggregator is
  trusted to add the noise but still learns no individual update;
* ``noise_at="clients"`` — distributed: each client adds ``N(0, (z_Δ·C)² / m)`` with ``m`` the secure-
  aggregation threshold (the fewest clients a sum can have before the round aborts), so any sum that is
  released carries at least the full variance and the aggregator only sees the noised sum.

Adaptive clipping (Andrew et al., "Differentially private learning with adaptive clipping"): each client
also reports ``b_u = 1[‖Δ_u‖ ≤ C]``; the server forms the noisy fraction ``b̄ = (Σ b_u + N(0, σ_b²)) / n`` and
moves the clip geometrically towards the ``γ``-quantile of the update norms: ``C ← C · exp(−η (b̄ − γ))``.
Privacy of both queries at total noise multiplier ``z`` is kept by splitting
``z_Δ = (z^−2 − (2σ_b)^−2)^−1/2`` (their Theorem 1).

Accounting: one ``PoissonSampledDpEvent(q, GaussianDpEvent(z))`` per round with ``q`` the client sampling rate
(``GaussianDpEvent(z)`` when every client takes part); neighbouring = one client's whole data added/removed.

What it reveals to whom: the released (noised) average is (ε, δ) client-level DP; the aggregator learns the
noised sum (or, with ``noise_at="aggregator"``, the exact sum before it adds the noise) and the clipped count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

NoiseAt = Literal["aggregator", "clients"]


def clip_update(delta: np.ndarray, clip_norm: float) -> tuple[np.ndarray, float]:
    """``Δ · min(1, C/‖Δ‖)`` and ``‖Δ‖``."""
    norm = float(np.linalg.norm(delta))
    return (delta * min(1.0, clip_norm / norm) if norm > 0 else delta.copy()), norm


@dataclass
class ClientLevelDP:
    """DP-FedAvg's clipping, noise and (adaptive) clip state, shared by clients (clip, noise share) and the
    aggregator (noise, clip update). ``clipped_count_stddev`` defaults to ``expected_clients / 20``."""

    noise_multiplier: float
    clip_norm: float = 1.0
    expected_clients: int = 10
    adaptive: bool = False
    target_quantile: float = 0.5
    clip_learning_rate: float = 0.2
    clipped_count_stddev: float | None = None
    noise_at: NoiseAt = "aggregator"
    clip_history: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.noise_multiplier <= 0 or self.clip_norm <= 0 or self.expected_clients < 1:
            raise ValueError("noise_multiplier, clip_norm and expected_clients must be positive")
        if self.noise_at not in ("aggregator", "clients"):
            raise ValueError(f"noise_at must be 'aggregator' or 'clients', got {self.noise_at!r}")
        if self.adaptive and self.update_noise_multiplier <= 0:
            raise ValueError("clipped_count_stddev too small for this noise multiplier (2σ_b must exceed 1/z)")

    @property
    def count_stddev(self) -> float:
        return self.expected_clients / 20 if self.clipped_count_stddev is None else self.clipped_count_stddev

    @property
    def update_noise_multiplier(self) -> float:
        """``z_Δ``: all of ``z`` with fixed clipping; Andrew et al.'s split with adaptive clipping."""
        if not self.adaptive:
            return self.noise_multiplier
        rest = self.noise_multiplier ** -2 - (2 * self.count_stddev) ** -2
        return rest ** -0.5 if rest > 0 else -1.0

    @property
    def noise_std(self) -> float:
        """Standard deviation of the noise on the sum of clipped updates."""
        return self.update_noise_multiplier * self.clip_norm

    def client_update(self, delta: np.ndarray, rng: np.random.Generator, min_clients: int = 1
                      ) -> tuple[np.ndarray, float]:
        """A client's contribution to the sum: clipped update (plus its noise share when ``noise_at="clients"``,
        for sums of at least ``min_clients``) and its clipped bit ``1[‖Δ‖ ≤ C]``."""
        clipped, norm = clip_update(delta, self.clip_norm)
        if self.noise_at == "clients":
            clipped = clipped + rng.normal(0.0, self.noise_std / math.sqrt(min_clients), clipped.shape)
        return clipped, float(norm <= self.clip_norm)

    def aggregate(self, total: np.ndarray, n_clients: int, rng: np.random.Generator,
                  clipped_count: float | None = None) -> np.ndarray:
        """The noised mean update from the sum of ``n_clients`` contributions; adapts the clip when adaptive
        (``clipped_count`` = Σ b_u)."""
        if n_clients < 1:
            raise ValueError("no client contributed")
        noisy = total + rng.normal(0.0, self.noise_std, total.shape) if self.noise_at == "aggregator" else total
        self.clip_history.append(self.clip_norm)
        if self.adaptive:
            if clipped_count is None:
                raise ValueError("adaptive clipping needs the clients' clipped count")
            frac = (clipped_count + rng.normal(0.0, self.count_stddev)) / n_clients
            self.clip_norm *= math.exp(-self.clip_learning_rate * (frac - self.target_quantile))
        return noisy / n_clients
