"""Scikit-learn-style entry point running the real SecureBoost protocol in-process.

``VerticalSecureBoost(**params).fit(vertical_dataset)`` builds the guest and host roles, connects them
through :class:`federation.channel.InMemoryNetwork` (every message goes through the pickle-free codec)
and runs them with :func:`federation.channel.run_parties`; ``predict_proba`` runs the federated
prediction protocol the same way. The roles are transport-free and run unchanged over gRPC.

What it reveals: this object holds every party's model part at once (a simulation convenience);
see :mod:`algorithms.secureboost.guest`, ``host`` and ``prediction`` for what each party learns.
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Any

import numpy as np

from algorithms.base import Checkpoint, Parties
from algorithms.paillier import PrivateKey, PublicKey, shared_executor
from algorithms.secureboost.guest import SecureBoostGuest
from algorithms.secureboost.host import SecureBoostHost
from algorithms.secureboost.model import GuestModel, HostModel
from algorithms.secureboost.params import BoostParams
from algorithms.secureboost.prediction import SecureBoostGuestPredictor, SecureBoostHostPredictor
from datasets import VerticalDataset
from federation.channel import InMemoryNetwork, run_parties


def federated_predict(guest_model: GuestModel, host_models: dict[str, HostModel], data: VerticalDataset,
                      parties: Parties, network: InMemoryNetwork | None = None) -> np.ndarray:
    """P(y=1) per row through the prediction protocol over an in-memory network."""
    network = network or InMemoryNetwork()
    roles: dict[str, Any] = {parties.guest: SecureBoostGuestPredictor(guest_model, data.guest, parties)}
    for h in parties.hosts:
        roles[h] = SecureBoostHostPredictor(host_models[h], data.hosts[h], parties)
    channels = {name: network.channel(name) for name in roles}
    out = run_parties({name: (lambda r=role, c=channels[name]: r.run(c)) for name, role in roles.items()}, network)
    return out[parties.guest]


class VerticalSecureBoost:
    """Vertical SecureBoost with packed Paillier (guest = label holder, hosts = feature holders)."""

    def __init__(self, n_estimators: int = 5, max_depth: int = 3, learning_rate: float = 0.3,
                 reg_lambda: float = 1.0, min_child_weight: float = 1.0, gamma: float = 0.0, max_bin: int = 32,
                 complete_secure: bool = False, validation_fraction: float = 0.0,
                 n_iter_no_change: int | None = None, seed: int = 0, precision_bits: int = 52,
                 share_host_gains: bool = False, guest: str = "bank") -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.reg_lambda = reg_lambda
        self.min_child_weight = min_child_weight
        self.gamma = gamma
        self.max_bin = max_bin
        self.complete_secure = complete_secure
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.seed = seed
        self.precision_bits = precision_bits
        self.share_host_gains = share_host_gains
        self.guest = guest
        self.guest_model_: GuestModel | None = None
        self.host_models_: dict[str, HostModel] = {}
        self.network_: InMemoryNetwork | None = None

    @property
    def params(self) -> BoostParams:
        return BoostParams(self.n_estimators, self.max_depth, self.learning_rate, self.reg_lambda,
                           self.min_child_weight, self.gamma, self.max_bin, self.complete_secure,
                           self.validation_fraction, self.n_iter_no_change, self.seed, self.precision_bits,
                           self.share_host_gains)

    def parties(self, data: VerticalDataset) -> Parties:
        return Parties(guest=self.guest, hosts=tuple(data.hosts))

    def fit(self, data: VerticalDataset, keypair: tuple[PublicKey, PrivateKey] | None = None,
            network: InMemoryNetwork | None = None, checkpoints: dict[str, Checkpoint] | None = None,
            executor: Executor | None = None) -> VerticalSecureBoost:
        """Run the encrypted training protocol; ``checkpoints`` maps party id -> Checkpoint; ``executor``:
        where the roles run their heavy loops (default: the process-wide pool
        :func:`~algorithms.paillier.shared_executor`)."""
        params, parties = self.params, self.parties(data)
        executor = executor if executor is not None else shared_executor()
        checkpoints = checkpoints or {}
        network = network or InMemoryNetwork()
        roles: dict[str, Any] = {parties.guest: SecureBoostGuest(data.guest, params, parties, keypair,
                                                                 checkpoints.get(parties.guest), executor)}
        for h in parties.hosts:
            roles[h] = SecureBoostHost(data.hosts[h], params, parties, h, checkpoints.get(h), executor)
        channels = {name: network.channel(name) for name in roles}
        out = run_parties({name: (lambda r=role, c=channels[name]: r.run(c)) for name, role in roles.items()},
                          network)
        self.network_ = network
        self.guest_model_ = out[parties.guest]
        self.host_models_ = {h: out[h] for h in parties.hosts}
        return self

    def _check_fitted(self) -> GuestModel:
        if self.guest_model_ is None:
            raise RuntimeError("VerticalSecureBoost is not fitted yet: call fit first")
        return self.guest_model_

    def predict_proba(self, data: VerticalDataset, network: InMemoryNetwork | None = None) -> np.ndarray:
        """``[[P(y=0), P(y=1)], …]`` via the federated prediction protocol (at most depth round trips)."""
        model = self._check_fitted()
        p1 = federated_predict(model, self.host_models_, data, Parties(guest=model.guest, hosts=tuple(model.hosts)),
                               network)
        return np.column_stack([1 - p1, p1])

    def predict(self, data: VerticalDataset, threshold: float = 0.5) -> np.ndarray:
        return (self.predict_proba(data)[:, 1] >= threshold).astype(np.int64)

    @property
    def feature_importances_(self) -> dict[str, dict[str, dict[str, float]]]:
        """Per party, per feature: split count and total gain (host parts come from each host's own model)."""
        model = self._check_fitted()
        guest_view = model.importance()
        out = {model.guest: guest_view[model.guest]}
        for h, hm in self.host_models_.items():
            out[h] = hm.importance()
        return out
