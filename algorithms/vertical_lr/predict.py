"""Federated scoring with a trained vertical logistic regression model.

The guest asks for scores of ``n`` aligned rows; every host answers with its plaintext partial scores
``u_k = X_k·w_k`` for those rows; the guest computes ``sigmoid(X_G·w_G + b + Σ_k u_k)``.

What it reveals: the guest learns each host's per-row partial score ``X_k·w_k`` (a linear projection of
that host's features). Over many queries with fixed weights a guest can accumulate such projections of
host data — rate-limit and audit prediction requests in production. Hosts learn only how many rows were
scored (no labels, no guest scores, no probabilities).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from algorithms.base import Parties
from algorithms.vertical_lr.common import DEFAULT_PARTIES
from algorithms.vertical_lr.model import GuestModel, HostModel
from algorithms.vertical_lr.params import ProtocolError
from algorithms.vertical_lr.validation import check_features
from federation.channel import Channel


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=float)))


def _check_columns(model_names: Sequence[str], names: list[str], party: str) -> None:
    if list(model_names) != names:
        raise ValueError(f"{party}: features {names} do not match the model's {list(model_names)}")


class VerticalLRGuestPredictor:
    """Guest side of scoring. ``run(channel)`` returns the probabilities of class 1 (one per row)."""

    def __init__(self, model: GuestModel, x: np.ndarray, feature_names: Sequence[str] | None = None,
                 parties: Parties = DEFAULT_PARTIES, name: str = "predict") -> None:
        self.model, self.parties, self.name = model, parties, name
        self.x, names = check_features(x, feature_names or model.feature_names, "guest")
        _check_columns(model.feature_names, names, "guest")

    def run(self, channel: Channel) -> np.ndarray:
        p, n_rows = self.parties, self.x.shape[0]
        channel.broadcast(p.hosts, f"vlr.{self.name}.request", {"n_rows": n_rows})
        score = self.model.partial_score(self.x)
        for host in p.hosts:
            u = channel.recv(host, f"vlr.{self.name}.partial").get("u")
            if not isinstance(u, np.ndarray) or u.shape != (n_rows,) or u.dtype != np.float64:
                raise ProtocolError(f"expected {n_rows} partial scores from {host!r}")
            score = score + u
        return sigmoid(score)


class VerticalLRHostPredictor:
    """Host side of scoring. ``run(channel)`` returns the number of rows it scored."""

    def __init__(self, model: HostModel, x: np.ndarray, feature_names: Sequence[str] | None = None,
                 parties: Parties = DEFAULT_PARTIES, name: str = "predict") -> None:
        self.model, self.parties, self.name = model, parties, name
        self.x, names = check_features(x, feature_names or model.feature_names, "host")
        _check_columns(model.feature_names, names, "host")

    def run(self, channel: Channel) -> int:
        request = channel.recv(self.parties.guest, f"vlr.{self.name}.request")
        if int(request.get("n_rows", -1)) != self.x.shape[0]:
            raise ProtocolError(f"{channel.party_id} holds {self.x.shape[0]} aligned rows to score but the guest "
                                f"asked for {request.get('n_rows')}")
        channel.send(self.parties.guest, f"vlr.{self.name}.partial", {"u": self.model.partial_score(self.x)})
        return int(self.x.shape[0])
