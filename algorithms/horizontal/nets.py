"""The local models of horizontal jobs as pure functions of one flat parameter vector.

Every party holds the same :class:`Net` (built from the job parameters and the feature count), so a model is
just a float64 vector: the aggregator averages vectors, clients train them. :class:`LogisticNet` is
logistic regression (``[coef…, intercept]``); :class:`MLPNet` a small fully connected network (ReLU hidden
layers, sigmoid output), whose last layer is the *head* (FedPer keeps it per client) and the rest the
*body*. Loss: mean binary cross-entropy plus ``l2/2 · ‖weights‖²`` (intercepts and biases not penalised).

What it reveals to whom: nothing; this is local arithmetic.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


def log_loss(z: np.ndarray, y: np.ndarray) -> float:
    """Mean binary cross-entropy of logits ``z`` against labels ``y`` (numerically stable)."""
    return float(np.mean(np.logaddexp(0.0, z) - y * z)) if len(y) else 0.0


class Net(ABC):
    """A model whose parameters are one flat vector of ``size`` floats."""

    n_features: int
    size: int

    @abstractmethod
    def init(self, rng: np.random.Generator) -> np.ndarray:
        """Initial parameters."""

    @abstractmethod
    def logits(self, w: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Scores before the sigmoid, one per row."""

    @abstractmethod
    def loss_grad(self, w: np.ndarray, X: np.ndarray, y: np.ndarray, l2: float) -> tuple[float, np.ndarray]:
        """Mean loss (with the L2 term) and its gradient at ``w``."""

    @abstractmethod
    def penalised(self) -> np.ndarray:
        """Boolean mask of the parameters the L2 term applies to."""

    def head(self) -> slice:
        """The parameters of the output layer (FedPer's per-client part)."""
        return slice(self.size, self.size)

    def predict_proba(self, w: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Probability of class 1 per row."""
        return sigmoid(self.logits(w, X))

    def check(self, w: np.ndarray) -> np.ndarray:
        w = np.asarray(w, dtype=np.float64)
        if w.shape != (self.size,):
            raise ValueError(f"parameter vector of shape {w.shape}, expected ({self.size},)")
        return w


class LogisticNet(Net):
    """Logistic regression: ``w = [coef_0 … coef_{d-1}, intercept]``; initialised at zero."""

    def __init__(self, n_features: int) -> None:
        self.n_features = int(n_features)
        self.size = self.n_features + 1

    def init(self, rng: np.random.Generator) -> np.ndarray:
        return np.zeros(self.size)

    def logits(self, w: np.ndarray, X: np.ndarray) -> np.ndarray:
        return X @ w[:-1] + w[-1]

    def loss_grad(self, w: np.ndarray, X: np.ndarray, y: np.ndarray, l2: float) -> tuple[float, np.ndarray]:
        n = len(y)
        grad = np.zeros(self.size)
        if n == 0:
            return 0.0, grad
        z = self.logits(w, X)
        d = (sigmoid(z) - y) / n
        grad[:-1] = X.T @ d + l2 * w[:-1]
        grad[-1] = d.sum()
        return log_loss(z, y) + 0.5 * l2 * float(w[:-1] @ w[:-1]), grad

    def penalised(self) -> np.ndarray:
        mask = np.ones(self.size, dtype=bool)
        mask[-1] = False
        return mask


class MLPNet(Net):
    """``n_features → hidden… → 1`` with ReLU; layer ``k`` stores ``W_k`` (row-major ``in × out``) then ``b_k``.

    Initialised with He-uniform weights and zero biases from the given generator.
    """

    def __init__(self, n_features: int, hidden: tuple[int, ...]) -> None:
        self.n_features = int(n_features)
        self.widths = (self.n_features, *(int(h) for h in hidden), 1)
        self._layers: list[tuple[slice, slice, tuple[int, int]]] = []
        at = 0
        for fan_in, fan_out in zip(self.widths[:-1], self.widths[1:], strict=True):
            w = slice(at, at + fan_in * fan_out)
            at += fan_in * fan_out
            b = slice(at, at + fan_out)
            at += fan_out
            self._layers.append((w, b, (fan_in, fan_out)))
        self.size = at

    def init(self, rng: np.random.Generator) -> np.ndarray:
        w = np.zeros(self.size)
        for ws, _, (fan_in, fan_out) in self._layers:
            bound = np.sqrt(6.0 / max(fan_in, 1))
            w[ws] = rng.uniform(-bound, bound, fan_in * fan_out)
        return w

    def _unpack(self, w: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(w[ws].reshape(shape), w[bs]) for ws, bs, shape in self._layers]

    def _forward(self, w: np.ndarray, X: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        acts = [X]
        layers = self._unpack(w)
        h = X
        for W, b in layers[:-1]:
            h = np.maximum(h @ W + b, 0.0)
            acts.append(h)
        W, b = layers[-1]
        return acts, (h @ W + b)[:, 0]

    def logits(self, w: np.ndarray, X: np.ndarray) -> np.ndarray:
        return self._forward(w, X)[1]

    def loss_grad(self, w: np.ndarray, X: np.ndarray, y: np.ndarray, l2: float) -> tuple[float, np.ndarray]:
        n = len(y)
        grad = np.zeros(self.size)
        if n == 0:
            return 0.0, grad
        acts, z = self._forward(w, X)
        layers = self._unpack(w)
        delta = ((sigmoid(z) - y) / n)[:, None]
        penalty = 0.0
        for k in range(len(layers) - 1, -1, -1):
            W, _ = layers[k]
            ws, bs, _ = self._layers[k]
            grad[ws] = (acts[k].T @ delta + l2 * W).ravel()
            grad[bs] = delta.sum(axis=0)
            penalty += float(np.sum(W * W))
            if k:
                delta = (delta @ W.T) * (acts[k] > 0)
        return log_loss(z, y) + 0.5 * l2 * penalty, grad

    def penalised(self) -> np.ndarray:
        mask = np.zeros(self.size, dtype=bool)
        for ws, _, _ in self._layers:
            mask[ws] = True
        return mask

    def head(self) -> slice:
        ws, bs, _ = self._layers[-1]
        return slice(ws.start, bs.stop)


def make_net(model: str, n_features: int, hidden: tuple[int, ...] = (16,)) -> Net:
    """The job's local model for ``n_features`` inputs (``"logistic"`` or ``"mlp"``)."""
    if model == "logistic":
        return LogisticNet(n_features)
    if model == "mlp":
        return MLPNet(n_features, hidden)
    raise ValueError(f"unknown model {model!r}; valid: 'logistic', 'mlp'")


__all__ = ["LogisticNet", "MLPNet", "Net", "log_loss", "make_net", "sigmoid"]
