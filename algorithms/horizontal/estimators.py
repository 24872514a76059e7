"""scikit-learn-style local models: logistic regression (SGD/Adam, L2) and a small numpy MLP.

These are the models every client trains inside a horizontal job, usable on their own (a silo's
local-only baseline, tests against scikit-learn): ``fit(X, y)``, ``predict_proba(X)``, ``predict(X)``;
learned state ends with an underscore (``weights_``, ``coef_``/``intercept_`` for the logistic model,
``loss_`` per epoch).

What it reveals to whom: nothing; local computation.
"""

from __future__ import annotations

import numpy as np

from algorithms.horizontal.local import train_local
from algorithms.horizontal.nets import LogisticNet, MLPNet, Net


class _LocalEstimator:
    net_: Net

    def __init__(self, learning_rate: float, epochs: int, batch_size: int, optimizer: str, l2: float,
                 seed: int) -> None:
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.l2 = l2
        self.seed = seed

    def _make_net(self, n_features: int) -> Net:
        raise NotImplementedError

    def fit(self, X: np.ndarray, y: np.ndarray) -> _LocalEstimator:
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if X.ndim != 2 or len(X) != len(y):
            raise ValueError(f"X of shape {X.shape} and {len(y)} labels do not match")
        if not np.isfinite(X).all():
            raise ValueError("X holds NaN or infinite values")
        if not np.isin(y, (0.0, 1.0)).all():
            raise ValueError("labels must be 0 or 1")
        rng = np.random.default_rng(self.seed)
        self.net_ = self._make_net(X.shape[1])
        run = train_local(self.net_, self.net_.init(rng), X, y, epochs=self.epochs, batch_size=self.batch_size,
                          learning_rate=self.learning_rate, optimizer=self.optimizer, l2=self.l2, rng=rng)
        self.loss_ = list(run.epoch_losses)
        self.weights_ = run.weights
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if not hasattr(self, "weights_"):
            raise RuntimeError("call fit() first")
        p = self.net_.predict_proba(self.weights_, np.asarray(X, dtype=np.float64))
        return np.c_[1.0 - p, p]

    def predict(self, X: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= threshold).astype(np.int64)


class LocalLogisticRegression(_LocalEstimator):
    """Logistic regression by mini-batch SGD or Adam with an L2 penalty ``l2/2·‖coef‖²`` on the mean loss."""

    def __init__(self, learning_rate: float = 0.05, epochs: int = 20, batch_size: int = 64, optimizer: str = "sgd",
                 l2: float = 0.0, seed: int = 42) -> None:
        super().__init__(learning_rate, epochs, batch_size, optimizer, l2, seed)

    def _make_net(self, n_features: int) -> Net:
        return LogisticNet(n_features)

    @property
    def coef_(self) -> np.ndarray:
        return self.weights_[:-1]

    @property
    def intercept_(self) -> float:
        return float(self.weights_[-1])


class LocalMLPClassifier(_LocalEstimator):
    """A small ReLU network with a sigmoid output, trained by mini-batch SGD or Adam."""

    def __init__(self, hidden: tuple[int, ...] = (16,), learning_rate: float = 0.01, epochs: int = 20,
                 batch_size: int = 64, optimizer: str = "adam", l2: float = 0.0, seed: int = 42) -> None:
        super().__init__(learning_rate, epochs, batch_size, optimizer, l2, seed)
        self.hidden = hidden

    def _make_net(self, n_features: int) -> Net:
        return MLPNet(n_features, tuple(self.hidden))


__all__ = ["LocalLogisticRegression", "LocalMLPClassifier"]
