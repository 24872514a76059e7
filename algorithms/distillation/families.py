"""Model families a silo may run in federated distillation, behind one small interface.

Each family fits on hard labels (its own rows) plus soft labels (the consensus on the reference rows)
and predicts the probability of class 1. Soft labels are taught by the weighted-duplicate construction:
a reference row with consensus ``c`` enters the fit twice, as class 1 with weight ``λ·c`` and as class 0
with weight ``λ·(1 − c)``; the weighted log-loss of that pair is exactly ``λ`` times the cross-entropy to
``c``, so every family that takes ``sample_weight`` learns the soft targets.

* ``logistic``: scikit-learn ``LogisticRegression`` on the features.
* ``scorecard``: a logistic scorecard — quantile bins per characteristic, bin indicators, logistic regression.
* ``gbt``: scikit-learn ``HistGradientBoostingClassifier`` (gradient-boosted trees).
* ``mlp``: scikit-learn ``MLPClassifier`` (one ReLU hidden layer of 32, L2 0.01, 40 epochs of Adam).

``fit(..., init=model)`` *warm-starts* a family that can continue training (``warm_startable``: the MLP,
whose fit from random weights is one local optimum among many): it starts from ``model``'s weights and runs
the family's own schedule (the same 40 epochs of Adam) on the same rows, as FedMD's silos keep updating
their model instead of refitting it. The other families fit afresh: the logistic ones are convex (a warm
start reaches the same optimum), and gradient-boosted trees are refitted from their base rate.

A fitted family is kept as plain arrays (``to_dict``/``from_dict``: coefficients, bin edges, tree nodes,
layer weights) and always predicts from those arrays, so a model loaded from a silo's store scores exactly
as it did when trained; nothing is pickled.

What it reveals to whom: nothing; every family runs inside its silo.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from itertools import pairwise
from typing import Any, ClassVar

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

Params = dict[str, Any]

# The MLP runs a fixed number of epochs by design, so "maximum iterations reached" is no news. A filter for
# that one warning of that one module (``catch_warnings`` is not thread-safe: silos train in threads).
warnings.filterwarnings("ignore", category=ConvergenceWarning, module=r"sklearn\.neural_network")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))


class ModelFamily(ABC):
    """A silo's model: ``fit(X, y, X_soft, soft, soft_weight, init)``, then ``predict_proba(X)`` (class 1)."""

    name: ClassVar[str]
    warm_startable: ClassVar[bool] = False

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.params_: Params | None = None

    # subclasses: a sklearn estimator → arrays, and arrays → raw scores (log-odds)
    @abstractmethod
    def _fit_arrays(self, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> Params: ...

    @abstractmethod
    def _decision(self, params: Params, X: np.ndarray) -> np.ndarray: ...

    def _fine_tune_arrays(self, init: Params, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> Params:
        """Continue training from ``init`` (families with ``warm_startable``)."""
        raise NotImplementedError(f"{self.name} does not warm-start")

    def fit(self, X: np.ndarray, y: np.ndarray, X_soft: np.ndarray | None = None, soft: np.ndarray | None = None,
            soft_weight: float = 1.0, init: ModelFamily | None = None) -> ModelFamily:
        """Fit on ``(X, y)`` plus ``X_soft`` with soft labels ``soft``; from ``init``'s weights if it can."""
        X_fit, y_fit, w_fit = np.asarray(X, float), np.asarray(y, np.int64), np.ones(len(y))
        if X_soft is not None and soft is not None and len(soft):
            soft = np.clip(np.asarray(soft, float), 0.0, 1.0)
            X_fit = np.vstack([X_fit, X_soft, X_soft])
            y_fit = np.concatenate([y_fit, np.ones(len(soft), np.int64), np.zeros(len(soft), np.int64)])
            w_fit = np.concatenate([w_fit, soft_weight * soft, soft_weight * (1.0 - soft)])
        keep = w_fit > 0
        X_fit, y_fit, w_fit = X_fit[keep], y_fit[keep], w_fit[keep]
        if len(np.unique(y_fit)) < 2:  # a one-class silo: its base rate (the report says so)
            rate = float(np.average(y_fit, weights=w_fit)) if len(y_fit) else 0.5
            self.params_ = {"constant": float(np.log(max(rate, 1e-6) / max(1 - rate, 1e-6)))}
            return self
        warm = (self.warm_startable and init is not None and init.name == self.name and init.params_ is not None
                and "constant" not in init.params_)
        self.params_ = self._fine_tune_arrays(init.params_, X_fit, y_fit, w_fit) if warm and init is not None \
            else self._fit_arrays(X_fit, y_fit, w_fit)
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        if self.params_ is None:
            raise RuntimeError(f"{self.name} model is not fitted")
        X = np.asarray(X, float)
        if "constant" in self.params_:
            return np.full(len(X), float(self.params_["constant"]))
        return self._decision(self.params_, X)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return _sigmoid(self.decision_function(X))

    def to_dict(self) -> Params:
        if self.params_ is None:
            raise RuntimeError(f"{self.name} model is not fitted")
        return {"family": self.name, "seed": self.seed, "params": _lists(self.params_)}

    @staticmethod
    def from_dict(d: Params) -> ModelFamily:
        model = make_family(str(d["family"]), int(d.get("seed", 0)))
        model.params_ = _arrays(d["params"])
        return model


class Logistic(ModelFamily):
    name = "logistic"

    def _fit_arrays(self, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> Params:
        lr = LogisticRegression(C=1.0, max_iter=2000).fit(X, y, sample_weight=w)
        return {"coef": lr.coef_[0], "intercept": float(lr.intercept_[0])}

    def _decision(self, params: Params, X: np.ndarray) -> np.ndarray:
        return X @ params["coef"] + params["intercept"]


class Scorecard(ModelFamily):
    """Quantile bins (at most ``n_bins`` per characteristic) → bin indicators → logistic regression."""

    name = "scorecard"
    n_bins = 10

    @staticmethod
    def _indicators(edges: list[np.ndarray], X: np.ndarray) -> np.ndarray:
        blocks = []
        for j, e in enumerate(edges):
            idx = np.searchsorted(e, X[:, j], side="right")
            blocks.append(np.eye(len(e) + 1)[idx])
        return np.hstack(blocks)

    def _fit_arrays(self, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> Params:
        qs = np.linspace(0, 1, self.n_bins + 1)[1:-1]
        edges = [np.unique(np.quantile(X[:, j], qs)) for j in range(X.shape[1])]
        lr = LogisticRegression(C=0.5, max_iter=3000).fit(self._indicators(edges, X), y, sample_weight=w)
        return {"edges": edges, "coef": lr.coef_[0], "intercept": float(lr.intercept_[0])}

    def _decision(self, params: Params, X: np.ndarray) -> np.ndarray:
        return self._indicators(list(params["edges"]), X) @ params["coef"] + params["intercept"]


class GradientBoostedTrees(ModelFamily):
    """``HistGradientBoostingClassifier``; its trees are kept as node arrays and walked in numpy."""

    name = "gbt"
    _FIELDS = ("value", "feature_idx", "num_threshold", "missing_go_to_left", "left", "right", "is_leaf")

    def _fit_arrays(self, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> Params:
        gbt = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15,
                                             l2_regularization=1.0, random_state=self.seed).fit(X, y, sample_weight=w)
        trees = [{f: np.asarray(p.nodes[f]) for f in self._FIELDS} for (p,) in gbt._predictors]
        return {"baseline": float(np.ravel(gbt._baseline_prediction)[0]), "trees": trees}

    def _decision(self, params: Params, X: np.ndarray) -> np.ndarray:
        raw = np.full(len(X), float(params["baseline"]))
        rows = np.arange(len(X))
        for t in params["trees"]:
            node = np.zeros(len(X), dtype=np.int64)
            leaf = np.asarray(t["is_leaf"], bool)
            while True:
                active = ~leaf[node]
                if not active.any():
                    break
                n = node[active]
                x = X[rows[active], np.asarray(t["feature_idx"])[n]]
                left = np.where(np.isnan(x), np.asarray(t["missing_go_to_left"], bool)[n],
                                x <= np.asarray(t["num_threshold"])[n])
                node[active] = np.where(left, np.asarray(t["left"])[n], np.asarray(t["right"])[n])
            raw += np.asarray(t["value"], float)[node]
        return raw


class NeuralNet(ModelFamily):
    """``MLPClassifier`` with one ReLU hidden layer; kept as its weight matrices."""

    name = "mlp"
    warm_startable = True
    hidden = (32,)
    epochs = 40

    def _mlp(self, epochs: int, warm_start: bool = False) -> MLPClassifier:
        return MLPClassifier(hidden_layer_sizes=self.hidden, alpha=1e-2, batch_size=256, max_iter=epochs,
                             random_state=self.seed, warm_start=warm_start)

    def _fit_arrays(self, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> Params:
        with warnings.catch_warnings():  # (the module filter covers threads, this one test runners' filters)
            warnings.simplefilter("ignore", ConvergenceWarning)
            mlp = self._mlp(self.epochs).fit(X, y, sample_weight=w)
        return {"weights": list(mlp.coefs_), "biases": list(mlp.intercepts_)}

    def _fine_tune_arrays(self, init: Params, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> Params:
        weights = [np.array(W, dtype=float) for W in init["weights"]]
        biases = [np.array(b, dtype=float) for b in init["biases"]]
        units = [X.shape[1], *self.hidden, 1]
        if [W.shape for W in weights] != list(pairwise(units)):
            return self._fit_arrays(X, y, w)  # another architecture: fit afresh
        mlp = self._mlp(1, warm_start=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            mlp.fit(X, y, sample_weight=w)  # one epoch sets up the estimator (classes, layers, loss curve) ...
            mlp.coefs_, mlp.intercepts_ = weights, biases  # ... whose weights are then replaced by init's
            mlp.set_params(max_iter=self.epochs).fit(X, y, sample_weight=w)  # warm_start: continues from them
        return {"weights": list(mlp.coefs_), "biases": list(mlp.intercepts_)}

    def _decision(self, params: Params, X: np.ndarray) -> np.ndarray:
        a = X
        layers = list(zip(params["weights"], params["biases"], strict=True))
        for W, b in layers[:-1]:
            a = np.maximum(a @ np.asarray(W) + np.asarray(b), 0.0)
        W, b = layers[-1]
        return (a @ np.asarray(W) + np.asarray(b))[:, 0]


def _lists(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"__array__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_lists(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _arrays(value: Any) -> Any:
    if isinstance(value, dict) and "__array__" in value:
        return np.asarray(value["__array__"], dtype=value["dtype"])
    if isinstance(value, dict):
        return {k: _arrays(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_arrays(v) for v in value]
    return value


FAMILIES: dict[str, type[ModelFamily]] = {f.name: f for f in (Logistic, Scorecard, GradientBoostedTrees, NeuralNet)}


def make_family(name: str, seed: int = 0) -> ModelFamily:
    if name not in FAMILIES:
        raise ValueError(f"unknown model family {name!r}; known: {', '.join(sorted(FAMILIES))}")
    return FAMILIES[name](seed)
