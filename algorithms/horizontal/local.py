"""Local training of a :class:`~algorithms.horizontal.nets.Net` on one client's rows (the loop written once).

``train_local`` runs ``epochs`` passes of mini-batch SGD or Adam (state fresh per call) from ``w0``. A
strategy changes the local objective only through ``extra_grad`` (FedProx's proximal term, SCAFFOLD's
control-variate correction), and FedPer through ``start`` (which parameters start from the client's own
head); everything else is shared.

What it reveals to whom: nothing; the rows never leave the client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from algorithms.horizontal.nets import Net

ExtraGradient = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class LocalRun:
    """Result of one local training call: new weights, number of optimiser steps, mean batch loss."""

    weights: np.ndarray
    steps: int
    loss: float
    examples: int
    epoch_losses: tuple[float, ...] = ()


class _Adam:
    beta1, beta2, eps = 0.9, 0.999, 1e-8

    def __init__(self, size: int) -> None:
        self.m = np.zeros(size)
        self.v = np.zeros(size)
        self.t = 0

    def direction(self, g: np.ndarray) -> np.ndarray:
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * g
        self.v = self.beta2 * self.v + (1 - self.beta2) * g * g
        m_hat = self.m / (1 - self.beta1 ** self.t)
        v_hat = self.v / (1 - self.beta2 ** self.t)
        return m_hat / (np.sqrt(v_hat) + self.eps)


def batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Row indices of one epoch's mini-batches (full batch, in order, when ``batch_size`` is 0 or ≥ n)."""
    if n == 0:
        return []
    if batch_size <= 0 or batch_size >= n:
        return [np.arange(n)]
    order = rng.permutation(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def train_local(net: Net, w0: np.ndarray, X: np.ndarray, y: np.ndarray, *, epochs: int, batch_size: int,
                learning_rate: float, optimizer: str, l2: float, rng: np.random.Generator,
                extra_grad: ExtraGradient | None = None) -> LocalRun:
    """Train from ``w0`` for ``epochs`` epochs; ``extra_grad(w)`` is added to every batch gradient."""
    w = net.check(w0).copy()
    adam = _Adam(net.size) if optimizer == "adam" else None
    steps, loss_sum, seen = 0, 0.0, 0
    per_epoch: list[float] = []
    for _ in range(epochs):
        epoch_sum, epoch_seen = loss_sum, seen
        for rows in batches(len(y), batch_size, rng):
            loss, g = net.loss_grad(w, X[rows], y[rows], l2)
            if extra_grad is not None:
                g = g + extra_grad(w)
            w -= learning_rate * (adam.direction(g) if adam is not None else g)
            steps += 1
            loss_sum += loss * len(rows)
            seen += len(rows)
        per_epoch.append((loss_sum - epoch_sum) / (seen - epoch_seen) if seen > epoch_seen else 0.0)
    return LocalRun(w, steps, loss_sum / seen if seen else 0.0, len(y), tuple(per_epoch))


__all__ = ["ExtraGradient", "LocalRun", "batches", "train_local"]
