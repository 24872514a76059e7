"""Differential privacy as options of every horizontal strategy: record-level DP-SGD and client-level DP-FedAvg.

* :class:`RecordLevelDP` wraps any strategy and replaces the client's local training by DP-SGD
  (:mod:`algorithms.dp.dpsgd`: Poisson sampling at ``q = batch_size / rows``, per-example clipping at
  ``dp_clip``, Gaussian noise ``dp_noise_multiplier · dp_clip``). Every client keeps its own ledger
  (:class:`~algorithms.dp.accountant.PrivacyAccountant`): with ``dp_epsilon > 0`` it calibrates the noise for
  ``rounds × round(local_epochs / q)`` steps, records each round's steps before training, and contributes a
  zero-weight update instead of training once the next round would exceed the budget. The model it shares
  is then (ε, δ)-DP for its rows (post-processing: the aggregator, other clients and the model's users).
  The summed training loss is withheld (sent as 0), as it is not privatised.
* :class:`ClientLevelDP` (DP-FedAvg, McMahan et al. 2018) wraps FedAvg, FedProx, FedAdam or FedYogi: each
  client contributes its update clipped to ``dp_clip`` (the aggregator's current clip with
  ``dp_adaptive_clip``, Andrew et al.) with weight 1, the aggregate gets Gaussian noise (at the aggregator, or
  shared out among the clients with ``dp_noise_at = "clients"``), and the mean of the noised sum moves the
  model. The aggregator's ledger records one Gaussian release per round at client sampling rate
  ``q = sampled / clients`` (``q = 1`` when every client takes part; otherwise Poisson sampling is assumed);
  the round's metrics carry ``epsilon``. Summed losses are withheld.

What it reveals to whom: record level — each client's shared updates are (ε, δ)-DP in its rows; client level —
the released models are (ε, δ)-DP in any one client's whole data (the aggregator, with noise at the aggregator,
still sees the exact sum, but never a single client's update when secure aggregation is on).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from algorithms.api import ParamsError
from algorithms.dp.accountant import BudgetExhausted, PrivacyAccountant, calibrate_noise
from algorithms.dp.dpsgd import secure_rng
from algorithms.dp.fedavg import ClientLevelDP as ClientLevelMechanism
from algorithms.dp.fedavg import clip_update
from algorithms.horizontal.local import ExtraGradient, LocalRun
from algorithms.horizontal.nets import LogisticNet, Net
from algorithms.horizontal.strategy import ClientFit, Contribution, RoundSums, Strategy, Vectors


def per_example_gradients(net: Net, w: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(rows, size)`` gradients of the log loss (no L2 term): closed form for logistic regression, one row
    at a time otherwise."""
    if isinstance(net, LogisticNet):
        r = 1.0 / (1.0 + np.exp(-net.logits(w, X))) - y
        return np.c_[X * r[:, None], r]
    return np.array([net.loss_grad(w, X[i:i + 1], y[i:i + 1], 0.0)[1] for i in range(len(y))]).reshape(
        len(y), net.size)


def train_local_dp(net: Net, w0: np.ndarray, X: np.ndarray, y: np.ndarray, *, steps: int, sampling_rate: float,
                   clip_norm: float, noise_multiplier: float, learning_rate: float, optimizer: str, l2: float,
                   rng: np.random.Generator, noise_rng: np.random.Generator,
                   extra_grad: ExtraGradient | None = None) -> LocalRun:
    """``steps`` DP-SGD steps from ``w0`` (Poisson sampling, per-example clipping, Gaussian noise)."""
    w = net.check(w0).copy()
    penalised = net.penalised()
    m = v = np.zeros(net.size)
    n = len(y)
    for t in range(1, steps + 1):
        rows = np.flatnonzero(rng.random(n) < sampling_rate)
        total = np.zeros(net.size)
        if len(rows):
            g = per_example_gradients(net, w, X[rows], y[rows])
            norms = np.linalg.norm(g, axis=1)
            total = (g * np.minimum(1.0, clip_norm / np.maximum(norms, 1e-12))[:, None]).sum(axis=0)
        grad = (total + noise_rng.normal(0.0, noise_multiplier * clip_norm, net.size)) / (sampling_rate * n)
        grad = grad + l2 * w * penalised  # data-independent terms after the noise
        if extra_grad is not None:
            grad = grad + extra_grad(w)
        if optimizer == "adam":
            m = 0.9 * m + 0.1 * grad
            v = 0.999 * v + 0.001 * grad * grad
            w = w - learning_rate * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        else:
            w = w - learning_rate * grad
    return LocalRun(w, steps, 0.0, n, ())


class _Wrapper(Strategy):
    """Delegates every step to the wrapped strategy."""

    def __init__(self, inner: Strategy) -> None:
        super().__init__(inner.params)
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]

    def init_state(self, size: int) -> Vectors:
        return self.inner.init_state(size)

    def configure_round(self, rnd: int, available: Sequence[str], attempt: int = 0) -> list[str]:
        return self.inner.configure_round(rnd, available, attempt)

    def broadcast(self, state: Mapping[str, np.ndarray]) -> Vectors:
        return self.inner.broadcast(state)

    def summands(self, size: int) -> dict[str, int]:
        return self.inner.summands(size)

    def aggregate(self, rnd: int, weights: np.ndarray, sums: RoundSums, state: Vectors, n_clients: int
                  ) -> np.ndarray:
        return self.inner.aggregate(rnd, weights, sums, state, n_clients)

    def server_step(self, weights: np.ndarray, delta: np.ndarray, state: Vectors) -> np.ndarray:
        return self.inner.server_step(weights, delta, state)

    def aggregate_metrics(self, sums: RoundSums) -> dict[str, float]:
        return self.inner.aggregate_metrics(sums)

    def init_client_state(self, size: int) -> Vectors:
        return self.inner.init_client_state(size)

    def local_gradient_term(self, global_weights: np.ndarray, extras: Mapping[str, np.ndarray],
                            state: Mapping[str, np.ndarray]) -> ExtraGradient | None:
        return self.inner.local_gradient_term(global_weights, extras, state)

    def local_training(self, net: Net, start: np.ndarray, X: np.ndarray, y: np.ndarray, rng: np.random.Generator,
                       extra_grad: ExtraGradient | None) -> LocalRun:
        return self.inner.local_training(net, start, X, y, rng, extra_grad)

    def contribution(self, fit: ClientFit) -> Contribution:
        return self.inner.contribution(fit)

    def report_notes(self) -> list[str]:
        return self.inner.report_notes()


class RecordLevelDP(_Wrapper):
    """DP-SGD local training under any strategy (see the module docstring)."""

    def __init__(self, inner: Strategy) -> None:
        super().__init__(inner)
        p = self.params
        self.clip = float(p.dp_clip)  # type: ignore[attr-defined]
        self.noise_multiplier = float(p.dp_noise_multiplier)  # type: ignore[attr-defined]
        self.target = float(p.dp_epsilon) or math.inf  # type: ignore[attr-defined]
        self.delta = float(p.dp_delta)  # type: ignore[attr-defined]
        self.accountant: PrivacyAccountant | None = None
        self.skipped: list[str] = []
        self._noise = secure_rng(p.dp_seed)  # type: ignore[attr-defined]

    def plan(self, n_rows: int) -> tuple[float, int]:
        """``(q, steps per round)`` for a client with ``n_rows`` rows."""
        q = min(1.0, self.params.batch_size / n_rows) if self.params.batch_size > 0 else 1.0
        return q, max(1, round(self.params.local_epochs / q))

    def local_training(self, net: Net, start: np.ndarray, X: np.ndarray, y: np.ndarray, rng: np.random.Generator,
                       extra_grad: ExtraGradient | None) -> LocalRun:
        q, steps = self.plan(len(y))
        if self.accountant is None:
            if self.noise_multiplier <= 0:
                self.noise_multiplier = calibrate_noise(self.target, self.delta, q, steps * self.params.rounds)
            self.accountant = PrivacyAccountant(self.target, self.delta)
        try:
            self.accountant.spend(q, self.noise_multiplier, steps)
        except BudgetExhausted as exc:
            self.skipped.append(str(exc))
            return LocalRun(start.copy(), 0, 0.0, 0, ())
        p = self.params
        return train_local_dp(net, start, X, y, steps=steps, sampling_rate=q, clip_norm=self.clip,
                              noise_multiplier=self.noise_multiplier, learning_rate=p.learning_rate,
                              optimizer=p.optimizer, l2=p.l2, rng=rng, noise_rng=self._noise, extra_grad=extra_grad)

    def contribution(self, fit: ClientFit) -> Contribution:
        return self.inner.contribution(fit)

    @property
    def epsilon(self) -> float:
        return 0.0 if self.accountant is None or not self.accountant.events else self.accountant.epsilon

    def report_notes(self) -> list[str]:
        if self.accountant is None:
            return self.inner.report_notes()
        e = self.accountant.events
        steps = sum(x.count for x in e)
        q = e[0].sampling_rate if e else float("nan")
        notes = [f"record-level DP (DP-SGD): ε = {self.epsilon:.4f} at δ = {self.delta:g} (PLD; RDP "
                 f"{self.accountant.cross_check()['rdp']:.4f}) over {steps} steps, Poisson sampling q = {q!r}, "
                 f"per-example L2 clip {self.clip:g}, noise multiplier {self.noise_multiplier!r}"]
        return notes + [f"DP budget: {s}" for s in self.skipped[:1]] + self.inner.report_notes()


class ClientLevelDP(_Wrapper):
    """DP-FedAvg with fixed or adaptive clipping over FedAvg-style strategies (see the module docstring)."""

    def __init__(self, inner: Strategy, n_clients: int | None = None) -> None:
        super().__init__(inner)
        if set(inner.summands(1)) != {"delta", "weight"}:
            raise ParamsError(f"client-level DP needs a strategy that averages one update ({inner.name!r} "
                              "contributes more; use record-level DP)")
        p = self.params
        self.target = float(p.dp_epsilon) or math.inf  # type: ignore[attr-defined]
        self.delta = float(p.dp_delta)  # type: ignore[attr-defined]
        try:
            self.mechanism = ClientLevelMechanism(
                noise_multiplier=float(p.dp_noise_multiplier) or 1.0,  # type: ignore[attr-defined]
                clip_norm=float(p.dp_clip), expected_clients=max(1, p.min_updates),  # type: ignore[attr-defined]
                adaptive=bool(p.dp_adaptive_clip), noise_at=p.dp_noise_at)  # type: ignore[attr-defined]
        except ValueError as exc:
            raise ParamsError(f"client-level DP: {exc}") from exc
        self.calibrated = float(p.dp_noise_multiplier) > 0  # type: ignore[attr-defined]
        self.accountant = PrivacyAccountant(self.target, self.delta)
        self.exhausted = ""
        self._rng = secure_rng(p.dp_seed)  # type: ignore[attr-defined]
        self._epsilon = 0.0

    # ---- aggregator
    def init_state(self, size: int) -> Vectors:
        return {**self.inner.init_state(size), "dp_clip": np.array([self.mechanism.clip_norm])}

    def broadcast(self, state: Mapping[str, np.ndarray]) -> Vectors:
        return {**self.inner.broadcast(state), "dp_clip": np.asarray(state["dp_clip"]).copy()}

    def summands(self, size: int) -> dict[str, int]:
        return {"delta": size, "weight": 1, "unclipped": 1}

    def aggregate(self, rnd: int, weights: np.ndarray, sums: RoundSums, state: Vectors, n_clients: int
                  ) -> np.ndarray:
        m = len(sums.contributors)
        if m == 0:
            return weights
        q = float(self.params.fraction_fit)  # client sampling rate (Poisson assumed when < 1); dropouts aren't
        if not self.calibrated:
            self.mechanism.noise_multiplier = calibrate_noise(self.target, self.delta, q, self.params.rounds)
            self.calibrated = True
        self.mechanism.clip_norm = float(np.asarray(state["dp_clip"])[0])
        try:
            self._epsilon = self.accountant.spend(q, self.mechanism.noise_multiplier)
        except BudgetExhausted as exc:
            self.exhausted = str(exc)
            return weights
        mean = self.mechanism.aggregate(np.asarray(sums.vectors["delta"]), m, self._rng,
                                        clipped_count=float(np.asarray(sums.vectors["unclipped"])[0]))
        state["dp_clip"] = np.array([self.mechanism.clip_norm])
        return self.inner.server_step(weights, mean, state)

    def aggregate_metrics(self, sums: RoundSums) -> dict[str, float]:
        out = self.inner.aggregate_metrics(sums)
        out.update(epsilon=self._epsilon, delta=self.delta, noise_multiplier=self.mechanism.noise_multiplier,
                   clip=self.mechanism.clip_norm)
        return out

    # ---- client
    def contribution(self, fit: ClientFit) -> Contribution:
        base = self.inner.contribution(fit)
        clip = float(np.asarray(fit.extras["dp_clip"])[0])
        self.mechanism.clip_norm = clip
        delta = fit.run.weights - fit.global_weights
        if fit.run.steps == 0:
            return Contribution({"delta": np.zeros_like(delta), "weight": np.zeros(1), "unclipped": np.zeros(1)},
                                base.state)
        clipped, norm = clip_update(delta, clip)
        if self.mechanism.noise_at == "clients":
            clipped = clipped + self._rng.normal(0.0, self.mechanism.noise_std / math.sqrt(
                self.mechanism.expected_clients), clipped.shape)
        return Contribution({"delta": clipped, "weight": np.ones(1), "unclipped": np.array([float(norm <= clip)])},
                            base.state)

    def local_training(self, net: Net, start: np.ndarray, X: np.ndarray, y: np.ndarray, rng: np.random.Generator,
                       extra_grad: ExtraGradient | None) -> LocalRun:
        run = self.inner.local_training(net, start, X, y, rng, extra_grad)
        return LocalRun(run.weights, run.steps, 0.0, run.examples, ())  # the loss is not privatised: withheld


def with_privacy(strategy: Strategy) -> Strategy:
    """``strategy`` wrapped per its params' ``dp`` option (``"none"``, ``"record"`` or ``"client"``)."""
    mode = getattr(strategy.params, "dp", "none")
    if mode == "record":
        return RecordLevelDP(strategy)
    if mode == "client":
        return ClientLevelDP(strategy)
    return strategy


__all__ = ["ClientLevelDP", "RecordLevelDP", "per_example_gradients", "train_local_dp", "with_privacy"]
