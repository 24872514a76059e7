"""DP-SGD (Abadi et al., CCS 2016) for numpy logistic regression and a one-hidden-layer MLP.

Each step draws a Poisson sample (every row independently with probability ``q = batch_size / n``), computes
every example's gradient, clips each to L2 norm ``clip_norm``, sums, adds ``N(0, (z · clip_norm)² I)`` and
divides by the expected batch size ``q · n``; the optimiser (SGD or Adam — post-processing) takes the step.
One step is one ``PoissonSampledDpEvent(q, GaussianDpEvent(z))`` for the accountant
(:mod:`algorithms.dp.accountant`); ``target_epsilon`` calibrates ``z`` for the planned number of steps.

Per-example gradients are never materialised as a ``(batch, params)`` tensor for the MLP: the first layer's
per-example gradient is the outer product ``x_i ⊗ δ_i``, whose norm is ``‖x_i‖·‖δ_i‖``, so the clipped sum is
``Xᵀ (f ⊙ δ)`` with the per-example clip factors ``f`` (:meth:`Model.clipped_gradient_sum`).

Noise is drawn from numpy's PCG64 seeded with 256 bits of OS entropy (``seed=None``; a fixed seed is for
tests and benchmarks only); the floating-point Gaussian is the usual implementation caveat (Mironov 2012).

What it reveals to whom: the trained parameters are (ε, δ)-DP with respect to adding or removing one row of
the training data (Poisson sampling assumed, as stated); nothing leaves the party by itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from algorithms.dp.accountant import PrivacyAccountant, calibrate_noise


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def secure_rng(seed: int | None = None) -> np.random.Generator:
    """A generator seeded from 256 bits of OS entropy (``seed=None``) or from ``seed`` (tests)."""
    return np.random.default_rng(int.from_bytes(os.urandom(32), "big") if seed is None else seed)


def _clip_factors(norms: np.ndarray, clip: float) -> np.ndarray:
    return np.minimum(1.0, clip / np.maximum(norms, 1e-12))


class Model:
    """A differentiable binary classifier over a flat parameter vector."""

    def n_params(self, d: int) -> int:
        raise NotImplementedError

    def init(self, d: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def predict_proba(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def per_example_gradients(self, theta: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``(rows, params)`` gradients of the log loss (the reference for tests)."""
        raise NotImplementedError

    def clipped_gradient_sum(self, theta: np.ndarray, X: np.ndarray, y: np.ndarray, clip: float
                             ) -> tuple[np.ndarray, np.ndarray]:
        """``Σ_i clip(g_i)`` and the per-example norms ``‖g_i‖``."""
        g = self.per_example_gradients(theta, X, y)
        norms = np.linalg.norm(g, axis=1)
        return (g * _clip_factors(norms, clip)[:, None]).sum(axis=0), norms


class LogisticModel(Model):
    """``p = σ(x·w + b)``; parameters ``[w, b]``."""

    def n_params(self, d: int) -> int:
        return d + 1

    def init(self, d: int, rng: np.random.Generator) -> np.ndarray:
        return np.zeros(d + 1)

    def predict_proba(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        return _sigmoid(X @ theta[:-1] + theta[-1])

    def per_example_gradients(self, theta: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        r = self.predict_proba(theta, X) - y
        return np.c_[X * r[:, None], r]

    def clipped_gradient_sum(self, theta: np.ndarray, X: np.ndarray, y: np.ndarray, clip: float
                             ) -> tuple[np.ndarray, np.ndarray]:
        r = self.predict_proba(theta, X) - y
        norms = np.abs(r) * np.sqrt(np.einsum("ij,ij->i", X, X) + 1.0)
        fr = r * _clip_factors(norms, clip)
        return np.r_[X.T @ fr, fr.sum()], norms


@dataclass(frozen=True)
class MLPModel(Model):
    """One hidden ReLU layer: ``p = σ(relu(x·W1 + b1)·w2 + b2)``; parameters ``[W1 (d×h), b1, w2, b2]``."""

    hidden: int = 16

    def n_params(self, d: int) -> int:
        return d * self.hidden + 2 * self.hidden + 1

    def _split(self, theta: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        h = self.hidden
        W1 = theta[:d * h].reshape(d, h)
        return W1, theta[d * h:d * h + h], theta[d * h + h:d * h + 2 * h], float(theta[-1])

    def init(self, d: int, rng: np.random.Generator) -> np.ndarray:
        h = self.hidden
        return np.r_[rng.normal(0, np.sqrt(2.0 / d), d * h), np.zeros(h), rng.normal(0, np.sqrt(1.0 / h), h), 0.0]

    def _forward(self, theta: np.ndarray, X: np.ndarray):
        W1, b1, w2, b2 = self._split(theta, X.shape[1])
        a = X @ W1 + b1
        hid = np.maximum(a, 0.0)
        return a, hid, w2, _sigmoid(hid @ w2 + b2)

    def predict_proba(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        return self._forward(theta, X)[3]

    def _backward(self, theta: np.ndarray, X: np.ndarray, y: np.ndarray):
        a, hid, w2, p = self._forward(theta, X)
        r = p - y  # dL/dz
        delta = (r[:, None] * w2[None, :]) * (a > 0)  # dL/da, (rows, h)
        return r, hid, delta

    def per_example_gradients(self, theta: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        r, hid, delta = self._backward(theta, X, y)
        gW1 = np.einsum("ij,ik->ijk", X, delta).reshape(len(X), -1)
        return np.c_[gW1, delta, hid * r[:, None], r]

    def clipped_gradient_sum(self, theta: np.ndarray, X: np.ndarray, y: np.ndarray, clip: float
                             ) -> tuple[np.ndarray, np.ndarray]:
        r, hid, delta = self._backward(theta, X, y)
        sq_delta = np.einsum("ij,ij->i", delta, delta)
        sq = (np.einsum("ij,ij->i", X, X) * sq_delta + sq_delta
              + np.einsum("ij,ij->i", hid, hid) * r * r + r * r)
        norms = np.sqrt(sq)
        f = _clip_factors(norms, clip)
        fd, fr = delta * f[:, None], r * f
        return np.r_[(X.T @ fd).ravel(), fd.sum(axis=0), hid.T @ fr, fr.sum()], norms


def make_model(kind: Literal["logistic", "mlp"], hidden: int = 16) -> Model:
    if kind == "logistic":
        return LogisticModel()
    if kind == "mlp":
        return MLPModel(hidden)
    raise ValueError(f"model must be 'logistic' or 'mlp', got {kind!r}")


@dataclass
class Adam:
    """Adam on a flat vector (state kept across calls, so local rounds can continue it)."""

    learning_rate: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    m: np.ndarray | None = None
    v: np.ndarray | None = None
    t: int = 0

    def step(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        if self.m is None or self.v is None:
            self.m, self.v = np.zeros_like(theta), np.zeros_like(theta)
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1 - self.beta2) * grad * grad
        mh, vh = self.m / (1 - self.beta1 ** self.t), self.v / (1 - self.beta2 ** self.t)
        return theta - self.learning_rate * mh / (np.sqrt(vh) + self.eps)


def dp_sgd_step(model: Model, theta: np.ndarray, X: np.ndarray, y: np.ndarray, sampling_rate: float,
                clip_norm: float, noise_multiplier: float, rng: np.random.Generator) -> np.ndarray:
    """One noisy gradient: Poisson sample, clip per example, sum, add Gaussian noise, divide by ``q·n``."""
    rows = np.flatnonzero(rng.random(len(X)) < sampling_rate)
    total = (model.clipped_gradient_sum(theta, X[rows], y[rows], clip_norm)[0] if len(rows)
             else np.zeros_like(theta))
    noisy = total + rng.normal(0.0, noise_multiplier * clip_norm, theta.shape)
    return noisy / (sampling_rate * len(X))


@dataclass
class DPSGDClassifier:
    """Logistic regression or MLP trained with DP-SGD (scikit-learn style: ``fit`` / ``predict_proba``).

    Give ``noise_multiplier`` directly, or ``target_epsilon`` (with ``target_delta``) to calibrate it for
    ``epochs`` epochs at ``q = batch_size / n``. ``accountant_`` holds the ledger, ``epsilon_`` the ε spent.
    ``steps``/``partial_fit`` let a federated client run a fixed number of steps per round on one ledger.
    """

    model: Literal["logistic", "mlp"] = "logistic"
    hidden: int = 16
    clip_norm: float = 1.0
    noise_multiplier: float | None = None
    target_epsilon: float | None = None
    target_delta: float = 1e-5
    batch_size: int = 64
    epochs: float = 5.0
    learning_rate: float = 0.05
    seed: int | None = None
    coef_: np.ndarray | None = field(default=None, init=False)
    accountant_: PrivacyAccountant | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.clip_norm <= 0 or self.batch_size < 1 or self.epochs <= 0 or self.learning_rate <= 0:
            raise ValueError("clip_norm, batch_size, epochs and learning_rate must be positive")
        if self.noise_multiplier is None and self.target_epsilon is None:
            raise ValueError("give noise_multiplier or target_epsilon")
        self._model = make_model(self.model, self.hidden)

    def sampling_rate(self, n_rows: int) -> float:
        return min(1.0, self.batch_size / n_rows)

    def planned_steps(self, n_rows: int) -> int:
        return max(1, round(self.epochs / self.sampling_rate(n_rows)))

    def prepare(self, n_rows: int, total_steps: int | None = None) -> float:
        """Calibrate (if needed) and open the ledger for ``total_steps`` (default: the planned epochs)."""
        steps = self.planned_steps(n_rows) if total_steps is None else total_steps
        q = self.sampling_rate(n_rows)
        if self.noise_multiplier is None:
            self.noise_multiplier = calibrate_noise(float(self.target_epsilon), self.target_delta, q, steps)
        self.accountant_ = PrivacyAccountant(self.target_epsilon or float("inf"), self.target_delta)
        self._rng = secure_rng(self.seed)
        self._optimizer = Adam(self.learning_rate)
        return self.noise_multiplier

    def run_steps(self, theta: np.ndarray, X: np.ndarray, y: np.ndarray, steps: int) -> np.ndarray:
        """``steps`` DP-SGD steps from ``theta`` (recorded in the ledger first: refused if over budget)."""
        if self.accountant_ is None:
            raise RuntimeError("call prepare() or fit() first")
        q = self.sampling_rate(len(X))
        z = float(self.noise_multiplier)  # type: ignore[arg-type]
        self.accountant_.spend(q, z, steps)
        for _ in range(steps):
            theta = self._optimizer.step(theta, dp_sgd_step(self._model, theta, X, y, q, self.clip_norm, z,
                                                            self._rng))
        return theta

    def fit(self, X: np.ndarray, y: np.ndarray) -> DPSGDClassifier:
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
        self.prepare(len(X))
        theta = self._model.init(X.shape[1], self._rng)
        self.coef_ = self.run_steps(theta, X, y, self.planned_steps(len(X)))
        return self

    @property
    def epsilon_(self) -> float:
        return 0.0 if self.accountant_ is None else self.accountant_.epsilon

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if self.coef_ is None:
            raise RuntimeError("not fitted")
        p = self._model.predict_proba(self.coef_, np.asarray(X, dtype=np.float64))
        return np.c_[1 - p, p]

    def predict(self, X: np.ndarray) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)
