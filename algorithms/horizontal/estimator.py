"""In-process horizontal federation: the real client and aggregator roles over an in-memory network.

``FederatedClassifier(algorithm="fedavg", rounds=…, …).fit(clients)`` takes one :class:`~algorithms.api.
PartyData` (or a DataFrame with ``id``, ``y`` and feature columns) per client, runs the catalogue plug-in's
aggregator and client roles in threads over :class:`~federation.channel.InMemoryNetwork` (every message
through the codec, exactly as over gRPC), and keeps each party's result. ``evaluate(holdouts)`` runs the
federated evaluation protocol; ``predict_proba(X)`` scores raw rows with the global model.

Faults and dynamics for tests and simulations: per-party ``checkpoints``, ``start_after`` (a late
joiner: a callable the client's thread calls before it starts, e.g. waiting for an event), ``leave_after``
(a client that leaves), ``faults`` (a wrapper around a party's channel: delay, duplicate, corrupt or drop
messages; a role that raises :class:`SimulatedCrash` just stops, as a killed process would),
``record=True`` (keep the transcript in ``network_``).

What it reveals: in a deployment, see the role modules; this class holds every party's data and is for
simulations only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from algorithms import catalogue
from algorithms.api import PartyData, RoleContext
from algorithms.base import Checkpoint, Parties
from algorithms.horizontal.aggregator import CollectorFactory, HorizontalAggregator
from algorithms.horizontal.client import HorizontalClient
from algorithms.horizontal.collector import UpdateSender
from algorithms.horizontal.evaluation import EvaluationAggregator, EvaluationClient
from algorithms.horizontal.model import AggregatorSummary, ClientModel
from algorithms.horizontal.params import HorizontalParams
from algorithms.horizontal.plugin import HorizontalAlgorithm
from federation.channel import Channel, InMemoryNetwork, run_parties


def party_data(frame: pd.DataFrame | PartyData) -> PartyData:
    """A client's table (``id``, ``y``, features) as :class:`PartyData`."""
    if isinstance(frame, PartyData):
        return frame
    features = tuple(c for c in frame.columns if c not in ("id", "y"))
    ids = frame["id"].astype(str).to_numpy() if "id" in frame else np.arange(len(frame)).astype(str)
    y = frame["y"].to_numpy(dtype=np.int64) if "y" in frame else None
    return PartyData(ids, frame[list(features)].to_numpy(dtype=np.float64), features, y)


ChannelWrapper = Callable[[Channel], Channel]


class SimulatedCrash(Exception):
    """Raised by a fault wrapper to stop a role the way a killed process stops (no error for the others)."""


def _runner(role: HorizontalClient | HorizontalAggregator | EvaluationClient, network: InMemoryNetwork, name: str,
            wrap: ChannelWrapper | None = None, before: Callable[[], None] | None = None) -> Callable[[], Any]:
    channel: Channel = network.channel(name)
    if wrap is not None:
        channel = wrap(channel)

    def run() -> Any:
        if before is not None:
            before()
        try:
            return role.run(channel)
        except SimulatedCrash:
            return None
    return run


class FederatedClassifier:
    """Horizontal federated training of the catalogue algorithm ``algorithm`` (see the module docstring).

    ``params`` are the plug-in's parameters (:class:`~algorithms.horizontal.params.HorizontalParams` and the
    variant's own). After ``fit``: ``summary_`` (the aggregator's), ``client_models_``, ``weights_``,
    ``history_``, ``network_``.
    """

    def __init__(self, algorithm: str = "fedavg", *, arbiter: str = "arbiter", job_id: str = "horizontal",
                 checkpoints: Mapping[str, Checkpoint] | None = None,
                 start_after: Mapping[str, Callable[[], None]] | None = None,
                 leave_after: Mapping[str, int] | None = None, faults: Mapping[str, ChannelWrapper] | None = None,
                 collector: CollectorFactory | None = None,
                 sender: Callable[[RoleContext], UpdateSender] | None = None, record: bool = False,
                 **params: Any) -> None:
        self.algorithm = algorithm
        self.arbiter = arbiter
        self.job_id = job_id
        self.checkpoints = checkpoints
        self.start_after = start_after
        self.leave_after = leave_after
        self.faults = faults
        self.collector = collector
        self.sender = sender
        self.record = record
        self.params = params

    @property
    def plugin(self) -> HorizontalAlgorithm:
        plugin = catalogue.get(self.algorithm)
        if not isinstance(plugin, HorizontalAlgorithm):
            raise ValueError(f"{self.algorithm!r} is not a horizontal algorithm")
        return plugin

    def _context(self, party: str, role: str, parties: Parties, params: HorizontalParams) -> RoleContext:
        cps = self.checkpoints or {}
        return RoleContext(self.job_id, party, role, parties, params, seed=params.seed, checkpoint=cps.get(party))

    def fit(self, clients: Mapping[str, pd.DataFrame | PartyData]) -> FederatedClassifier:
        plugin = self.plugin
        params = plugin.parse_params(self.params)
        assert isinstance(params, HorizontalParams)
        data = {name: party_data(frame) for name, frame in clients.items()}
        parties = Parties(roles={"client": tuple(data)}, arbiter=self.arbiter)
        aggregator = HorizontalAggregator(self._context(self.arbiter, "arbiter", parties, params),
                                          plugin.strategy(params), collector=self.collector)
        roles: dict[str, Callable[[], Any]] = {}
        network = InMemoryNetwork(record=self.record)
        leave, before, faults = self.leave_after or {}, self.start_after or {}, self.faults or {}
        roles[self.arbiter] = _runner(aggregator, network, self.arbiter, faults.get(self.arbiter))
        for name, d in data.items():
            ctx = self._context(name, "client", parties, params)
            client = HorizontalClient(ctx, d, plugin.strategy(params), leave_after=leave.get(name),
                                      sender=self.sender(ctx) if self.sender is not None else None)
            roles[name] = _runner(client, network, name, faults.get(name), before.get(name))
        self.network_ = network
        results = run_parties(roles, network)
        self.parties_ = parties
        self.summary_: AggregatorSummary = results[self.arbiter]
        self.client_models_: dict[str, ClientModel] = {c: results[c] for c in data if results.get(c) is not None}
        self.weights_ = self.summary_.weights
        self.history_ = self.summary_.history
        return self

    def predict_proba(self, X: np.ndarray | pd.DataFrame) -> np.ndarray:
        if not hasattr(self, "summary_"):
            raise RuntimeError("call fit() first")
        if isinstance(X, pd.DataFrame):
            X = party_data(X).X
        params = self.plugin.parse_params(self.params)
        assert isinstance(params, HorizontalParams)
        model = ClientModel(params.model, params.hidden, self.summary_.space, self.weights_)
        p = model.predict_proba(np.asarray(X, dtype=np.float64))
        return np.c_[1.0 - p, p]

    def evaluate(self, holdouts: Mapping[str, pd.DataFrame | PartyData], timeout: float = 60.0) -> dict[str, Any]:
        """Per-silo and overall metrics by the federated evaluation protocol (aggregates only reach the arbiter)."""
        params = self.plugin.parse_params(self.params)
        assert isinstance(params, HorizontalParams)
        data = {name: party_data(frame) for name, frame in holdouts.items()}
        parties = Parties(roles={"client": tuple(data)}, arbiter=self.arbiter)
        network = InMemoryNetwork(record=self.record)
        roles: dict[str, Callable[[], Any]] = {
            self.arbiter: lambda: EvaluationAggregator(self._context(self.arbiter, "arbiter", parties, params),
                                                       timeout).run(network.channel(self.arbiter))}
        for name, d in data.items():
            ev = EvaluationClient(self._context(name, "client", parties, params), self.client_models_[name], d)
            roles[name] = _runner(ev, network, name)
        self.eval_network_ = network
        return run_parties(roles, network)[self.arbiter]


__all__ = ["ChannelWrapper", "FederatedClassifier", "SimulatedCrash", "party_data"]
