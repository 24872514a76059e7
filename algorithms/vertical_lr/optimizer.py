"""Per-party optimizers for vertical logistic regression (plain SGD and Adam) with checkpointable state.

Both are separable per coordinate, so each party updating its own weights with its own optimizer gives
exactly the update a centralised optimizer would make on the joined weight vector.

What it reveals: nothing; the state stays with its party (and its checkpoint store).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from algorithms.vertical_lr.params import Optimizer


class PartyOptimizer:
    """SGD (``w -= lr_t·g``) or Adam (β₁ = 0.9, β₂ = 0.999, ε = 1e-8) on one party's weight vector.

    The step size decays with the number ``t`` of updates already made: ``lr_t = scale·lr / (1 + decay·t)``
    (``decay = 0``: constant). ``scale`` is the arbiter's step scale (automatic step reduction,
    :mod:`algorithms.vertical_lr.step_control`). Every party counts the same updates and applies the same
    scale, so the joint update stays exact.
    """

    beta1 = 0.9
    beta2 = 0.999
    eps = 1e-8

    def __init__(self, kind: Optimizer, learning_rate: float, size: int, decay: float = 0.0) -> None:
        self.kind = kind
        self.learning_rate = float(learning_rate)
        self.decay = float(decay)
        self.step_count = 0
        self.scale = 1.0
        self.m = np.zeros(size)
        self.v = np.zeros(size)

    def step(self, weights: np.ndarray, gradient: np.ndarray) -> np.ndarray:
        """Return the updated weights (the input is not modified)."""
        rate = self.scale * self.learning_rate / (1.0 + self.decay * self.step_count)
        self.step_count += 1
        if self.kind == "sgd":
            return weights - rate * gradient
        self.m = self.beta1 * self.m + (1 - self.beta1) * gradient
        self.v = self.beta2 * self.v + (1 - self.beta2) * gradient * gradient
        m_hat = self.m / (1 - self.beta1 ** self.step_count)
        v_hat = self.v / (1 - self.beta2 ** self.step_count)
        return weights - rate * m_hat / (np.sqrt(v_hat) + self.eps)

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind, "step": self.step_count, "scale": self.scale, "m": self.m.copy(),
                "v": self.v.copy()}

    def load(self, state: dict[str, Any]) -> None:
        if state["kind"] != self.kind:
            raise ValueError(f"checkpoint holds {state['kind']!r} optimizer state but the job uses {self.kind!r}")
        self.step_count = int(state["step"])
        self.scale = float(state.get("scale", 1.0))  # checkpoints from before step control: unscaled
        self.m = np.asarray(state["m"], dtype=float).copy()
        self.v = np.asarray(state["v"], dtype=float).copy()
