"""scikit-learn-style entry point: run the real vertical LR protocol in-process (simulation and tests).

``VerticalLogisticRegression(**params).fit(data)`` builds the guest, host and arbiter roles, runs them
in threads over an :class:`~federation.channel.InMemoryNetwork` (every message through the codec) and
keeps each party's result; ``predict_proba(data)`` runs the federated scoring protocol the same way.
``coef_`` / ``intercept_`` gather all parties' weights for inspection — only possible in a simulation.

What it reveals: in a real deployment, see the role modules; this class holds every party's data and
is for simulations only.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd

from algorithms.base import Checkpoint, Parties
from algorithms.paillier import PrivateKey, PublicKey, shared_executor
from algorithms.vertical_lr.arbiter import VerticalLRArbiter
from algorithms.vertical_lr.guest import VerticalLRGuest
from algorithms.vertical_lr.host import VerticalLRHost
from algorithms.vertical_lr.model import ArbiterSummary, GuestModel, HostModel
from algorithms.vertical_lr.params import (
    DEFAULT_PARAMS,
    Approximation,
    EarlyStopping,
    Optimizer,
    VerticalLRParams,
    check_batch_guard,
)
from algorithms.vertical_lr.predict import VerticalLRGuestPredictor, VerticalLRHostPredictor
from datasets import VerticalDataset
from federation.channel import InMemoryNetwork, run_parties


@dataclass
class VerticalArrays:
    """Aligned arrays of a vertical job: row i is the same customer at every party."""

    guest_x: np.ndarray
    y: np.ndarray | None
    hosts_x: dict[str, np.ndarray]
    guest_features: list[str] | None = None
    host_features: dict[str, list[str]] = field(default_factory=dict)


def _features(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in ("id", "y")]


def as_arrays(data: VerticalDataset | VerticalArrays, need_labels: bool = True) -> VerticalArrays:
    """Align a :class:`VerticalDataset` on the guest's id order and split it into arrays."""
    if isinstance(data, VerticalArrays):
        if need_labels and data.y is None:
            raise ValueError("guest: labels are required for training")
        return data
    guest = data.guest
    hint = ("; build the data with VerticalDataset.from_frames(guest, hosts, id_column=..., label_column=...) "
            "to name your columns (string categories are one-hot encoded as in the silos)")
    if "id" not in guest:
        raise ValueError(f"guest: the table has no 'id' column (columns: {list(guest.columns)}){hint}")
    if need_labels and "y" not in guest:
        raise ValueError(f"guest: the table has no label column 'y' (columns: {list(guest.columns)}){hint}")
    hosts_x, host_features = {}, {}
    for name, frame in data.hosts.items():
        if "id" not in frame:
            raise ValueError(f"host {name!r}: the table has no 'id' column (columns: {list(frame.columns)}){hint}")
        indexed = frame.set_index("id")
        missing = pd.Index(guest["id"]).difference(indexed.index)
        if len(missing):
            raise ValueError(f"host {name!r}: {len(missing)} guest ids are missing (e.g. {missing[0]!r}); "
                             "align the parties first")
        cols = _features(frame)
        hosts_x[name] = indexed.loc[guest["id"], cols].to_numpy(dtype=float)
        host_features[name] = cols
    cols = _features(guest)
    y = guest["y"].to_numpy() if "y" in guest else None
    return VerticalArrays(guest[cols].to_numpy(dtype=float), y, hosts_x, cols, host_features)


class VerticalLogisticRegression:
    """Vertical (hetero) logistic regression with a guest, one or more hosts and an arbiter.

    Parameters are those of :class:`~algorithms.vertical_lr.params.VerticalLRParams`, plus the party ids
    (``guest``/``arbiter``; host ids come from the data), the executor the roles run their heavy loops on
(default: the process-wide pool :func:`~algorithms.paillier.shared_executor`), an optional key pair for
    the arbiter (default: a fresh 2048-bit key per fit) and optional per-party checkpoints (by party id).
    After ``fit``: ``guest_model_``, ``host_models_``, ``summary_``, ``losses_``, ``epoch_seconds_``,
    ``coef_`` (guest features, then each host's), ``intercept_``, ``network_`` (bytes sent).
    """

    def __init__(self, learning_rate: float = DEFAULT_PARAMS.learning_rate,
                 max_epochs: int = DEFAULT_PARAMS.max_epochs, batch_size: int | None = DEFAULT_PARAMS.batch_size,
                 optimizer: Optimizer = DEFAULT_PARAMS.optimizer, l2: float = DEFAULT_PARAMS.l2,
                 tol: float = DEFAULT_PARAMS.tol, early_stopping: EarlyStopping = DEFAULT_PARAMS.early_stopping,
                 seed: int = DEFAULT_PARAMS.seed, fit_intercept: bool = DEFAULT_PARAMS.fit_intercept,
                 guest: str = "bank", arbiter: str = "arbiter", executor: Executor | None = None,
                 keypair: tuple[PublicKey, PrivateKey] | None = None,
                 checkpoints: dict[str, Checkpoint] | None = None,
                 approximation: Approximation = DEFAULT_PARAMS.approximation,
                 lr_decay: float = DEFAULT_PARAMS.lr_decay, step_reduction: float = DEFAULT_PARAMS.step_reduction,
                 max_step_reductions: int = DEFAULT_PARAMS.max_step_reductions) -> None:
        self.learning_rate = learning_rate
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.l2 = l2
        self.tol = tol
        self.early_stopping = early_stopping
        self.seed = seed
        self.fit_intercept = fit_intercept
        self.guest = guest
        self.arbiter = arbiter
        self.executor = executor
        self.keypair = keypair
        self.checkpoints = checkpoints
        self.approximation = approximation
        self.lr_decay = lr_decay
        self.step_reduction = step_reduction
        self.max_step_reductions = max_step_reductions

    @property
    def params(self) -> VerticalLRParams:
        return VerticalLRParams(learning_rate=self.learning_rate, max_epochs=self.max_epochs,
                                batch_size=self.batch_size, optimizer=self.optimizer, l2=self.l2, tol=self.tol,
                                early_stopping=self.early_stopping, seed=self.seed, fit_intercept=self.fit_intercept,
                                approximation=self.approximation, lr_decay=self.lr_decay,
                                step_reduction=self.step_reduction, max_step_reductions=self.max_step_reductions)

    def fit(self, data: VerticalDataset | VerticalArrays) -> VerticalLogisticRegression:
        arrays = as_arrays(data)
        params = self.params
        parties = Parties(self.guest, tuple(arrays.hosts_x), self.arbiter)
        check_batch_guard(len(arrays.guest_x), params.batch_size,
                          {h: np.asarray(x).shape[1] if np.ndim(x) == 2 else 0 for h, x in arrays.hosts_x.items()},
                          np.asarray(arrays.guest_x).shape[1] if np.ndim(arrays.guest_x) == 2 else 0)
        cps = self.checkpoints or {}
        executor = self.executor if self.executor is not None else shared_executor()
        roles = {parties.guest: VerticalLRGuest(arrays.guest_x, arrays.y, arrays.guest_features, parties, params,
                                                cps.get(parties.guest), executor),
                 parties.arbiter: VerticalLRArbiter(parties, params, cps.get(parties.arbiter), executor,
                                                    self.keypair)}
        for h, x in arrays.hosts_x.items():
            roles[h] = VerticalLRHost(x, arrays.host_features.get(h), parties, params, cps.get(h), executor)
        self.network_ = InMemoryNetwork()
        results = run_parties({name: partial(role.run, self.network_.channel(name)) for name, role in roles.items()},
                              self.network_)
        self.parties_ = parties
        self.guest_model_: GuestModel = results[parties.guest]
        self.host_models_: dict[str, HostModel] = {h: results[h] for h in parties.hosts}
        self.summary_: ArbiterSummary = results[parties.arbiter]
        self.epoch_seconds_: list[float] = roles[parties.arbiter].epoch_seconds  # type: ignore[attr-defined]
        self.coef_ = np.concatenate([self.guest_model_.weights, *(m.weights for m in self.host_models_.values())])
        self.intercept_ = self.guest_model_.intercept
        self.losses_ = list(self.summary_.losses)
        return self

    def predict_proba(self, data: VerticalDataset | VerticalArrays) -> np.ndarray:
        """``(n, 2)`` class probabilities, computed by the federated scoring protocol."""
        if not hasattr(self, "guest_model_"):
            raise RuntimeError("call fit() first")
        arrays = as_arrays(data, need_labels=False)
        p = self.parties_
        if set(arrays.hosts_x) != set(p.hosts):
            raise ValueError(f"prediction data has hosts {sorted(arrays.hosts_x)} but the model {list(p.hosts)}")
        roles: dict[str, VerticalLRGuestPredictor | VerticalLRHostPredictor] = {
            p.guest: VerticalLRGuestPredictor(self.guest_model_, arrays.guest_x, arrays.guest_features, p)}
        for h in p.hosts:
            roles[h] = VerticalLRHostPredictor(self.host_models_[h], arrays.hosts_x[h], arrays.host_features.get(h), p)
        network = InMemoryNetwork()
        results = run_parties({name: partial(role.run, network.channel(name)) for name, role in roles.items()},
                              network)
        proba = np.asarray(results[p.guest], dtype=float)
        return np.c_[1.0 - proba, proba]

    def predict(self, data: VerticalDataset | VerticalArrays, threshold: float = 0.5) -> np.ndarray:
        return (self.predict_proba(data)[:, 1] >= threshold).astype(np.int64)
