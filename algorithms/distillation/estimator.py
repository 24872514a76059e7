"""scikit-learn-style entry point: run the real federated distillation roles in-process.

``FederatedDistillation(**params).fit(silos, reference)`` builds one :class:`DistillationClient` per silo
and the :class:`DistillationAggregator`, runs them in threads over an
:class:`~federation.channel.InMemoryNetwork` (every message through the codec) and keeps each silo's
result. ``predict_proba(silo, X)`` scores with that silo's accepted model, ``local_proba`` with its
local-only model.

What it reveals: in a real deployment see the role modules; this class holds every silo's data and is for
simulations, tests and benchmarks only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from algorithms.api import PartyData, RoleContext
from algorithms.base import Checkpoint, MemoryCheckpoint, Parties
from algorithms.distillation.aggregator import DistillationAggregator
from algorithms.distillation.client import DistillationClient
from algorithms.distillation.families import ModelFamily
from algorithms.distillation.params import DistillationParams
from federation.channel import InMemoryNetwork, run_parties


def party_data(frame: pd.DataFrame, id_column: str = "id", label_column: str = "y") -> PartyData:
    """A silo's frame (id, label, numeric features) as :class:`PartyData`."""
    features = [c for c in frame.columns if c not in (id_column, label_column)]
    y = frame[label_column].to_numpy(np.int64) if label_column in frame else None
    return PartyData(frame[id_column].astype(str).to_numpy(), frame[features].to_numpy(np.float64), tuple(features), y)


class FederatedDistillation:
    """Federated distillation between silos of different model families (in-process simulation)."""

    def __init__(self, **params: Any) -> None:
        self.params = DistillationParams.from_dict(params)

    def fit(self, silos: Mapping[str, pd.DataFrame | PartyData], reference: pd.DataFrame | np.ndarray | None = None,
            checkpoints: Mapping[str, Checkpoint] | None = None, network: InMemoryNetwork | None = None
            ) -> FederatedDistillation:
        data = {k: v if isinstance(v, PartyData) else party_data(v) for k, v in silos.items()}
        names = next(iter(data.values())).feature_names
        ref: tuple[list[str], np.ndarray] | None = None
        if reference is not None:
            ref = (list(reference.columns), reference.to_numpy(np.float64)) if isinstance(reference, pd.DataFrame) \
                else (list(names), np.asarray(reference, np.float64))
        parties = Parties(roles={"client": tuple(data)})
        checkpoints = dict(checkpoints or {})
        net = network or InMemoryNetwork()

        def ctx(pid: str, role: str) -> RoleContext:
            return RoleContext(job_id="distillation", party_id=pid, role=role, parties=parties, params=self.params,
                               seed=self.params.seed, checkpoint=checkpoints.setdefault(pid, MemoryCheckpoint()))

        roles: dict[str, Any] = {pid: DistillationClient(ctx(pid, "client"), d) for pid, d in data.items()}
        roles[parties.arbiter] = DistillationAggregator(ctx(parties.arbiter, "arbiter"), ref)
        channels = {pid: net.channel(pid) for pid in roles}
        out = run_parties({pid: (lambda r=r, c=channels[pid]: r.run(c)) for pid, r in roles.items()}, net)
        self.summary_ = out.pop(parties.arbiter)
        self.parts_ = out
        self.models_ = {k: ModelFamily.from_dict(v["model"]) for k, v in out.items()}
        self.local_models_ = {k: ModelFamily.from_dict(v["local_model"]) for k, v in out.items()}
        return self

    def predict_proba(self, silo: str, X: np.ndarray) -> np.ndarray:
        return self.models_[silo].predict_proba(X)

    def local_proba(self, silo: str, X: np.ndarray) -> np.ndarray:
        return self.local_models_[silo].predict_proba(X)
