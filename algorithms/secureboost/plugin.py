"""Vertical SecureBoost as a plug-in of :mod:`algorithms.api` (catalogue name ``secureboost``).

Topology vertical: ``align`` (PSI) → ``train`` → ``evaluate``. Silo roles: one ``guest`` (labels; it
generates and holds its own Paillier key) and one or more ``host`` parties; the arbiter takes no part in
the protocol. Steps are trees. The guest reports the evaluation metrics.

What it reveals to whom (the protocol in :mod:`algorithms.secureboost.guest`, :mod:`.host` and
:mod:`.prediction`; the ledger in :attr:`SecureBoost.disclosures`): a host receives only ciphertexts under
the guest's key, row → node assignments, the positions of its winning candidates and the final tree count
(plus its own split gains with ``share_host_gains``); the guest learns per host candidate the left-side
sums of g, h and counts under shuffled positions and the partition of the host splits it chose; when
scoring, a host learns which rows reach its splits and the guest their left/right outcome. The arbiter
learns nothing from the protocol.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from algorithms.api import Algorithm, AlgorithmParams, Disclosure, PartyData, Role, RoleContext, RoleSpec
from algorithms.base import Payload
from algorithms.secureboost.guest import SecureBoostGuest
from algorithms.secureboost.host import SecureBoostHost
from algorithms.secureboost.model import GuestModel, HostModel
from algorithms.secureboost.params import BoostParams
from algorithms.secureboost.prediction import SecureBoostGuestPredictor, SecureBoostHostPredictor
from federation.channel import Channel, PrefixedChannel

_DEMO = {"n_estimators": 3, "max_depth": 3, "learning_rate": 0.3, "max_bin": 32}


class Namespaced:
    """A role whose message tags all carry ``namespace`` (``run`` wraps the channel)."""

    def __init__(self, role: Role, namespace: str) -> None:
        self.role, self.namespace = role, namespace

    def run(self, channel: Channel) -> Any:
        return self.role.run(PrefixedChannel(channel, self.namespace) if self.namespace else channel)


class SecureBoost(Algorithm):
    """Vertical SecureBoost with packed Paillier; the guest holds its own key, no arbiter role."""

    name = "secureboost"
    topology = "vertical"
    stages = ("align", "train", "evaluate")
    roles = (RoleSpec("guest", 1, 1, holds_labels=True), RoleSpec("host", 1, None))
    arbiter = None
    params_class = BoostParams
    metric_roles = ("guest",)
    demo_name = "credit-boost"
    disclosures: ClassVar[tuple[Disclosure, ...]] = (
        Disclosure("host", "guest", "setup", "public", "the guest's public key, the parameters, the packing "
                   "layout, the digest of the ordered ids, the training row positions, the tree to resume after"),
        Disclosure("host", "guest", "t*.start", "ciphertext", "one ciphertext per training row packing (g, h) "
                   "under the guest's key; or the final tree count (with share_host_gains: its own splits' gains)"),
        Disclosure("host", "guest", "t*.d*.nodes", "row_level", "the node of every row at this level"),
        Disclosure("host", "guest", "t*.d*.decision", "public", "which of its candidates won"),
        Disclosure("guest", "host", "t*.d*.candidates", "aggregate", "left-side sums of g, h and counts per "
                   "candidate under shuffled positions (never which feature or bin)"),
        Disclosure("guest", "host", "t*.d*.partition", "row_level", "opaque split ids and the left/right "
                   "partition of the rows of the host splits it chose"),
        Disclosure("host", "guest", "*predict.l*.query", "row_level", "which rows reach each of its splits"),
        Disclosure("guest", "host", "*predict.l*.answer", "row_level",
                   "left/right outcome of host splits for the rows asked"),
    )

    def steps(self, params: AlgorithmParams) -> int:
        assert isinstance(params, BoostParams)
        return params.n_estimators

    def trainer(self, ctx: RoleContext, data: PartyData | None) -> Role:
        params = ctx.params
        assert isinstance(params, BoostParams) and data is not None
        if ctx.role == "guest":
            return SecureBoostGuest(data, params, ctx.parties, checkpoint=ctx.checkpoint, executor=ctx.executor)
        if ctx.role == "host":
            return SecureBoostHost(data, params, ctx.parties, ctx.party_id, checkpoint=ctx.checkpoint,
                                   executor=ctx.executor)
        raise ValueError(f"{self.name} has no {ctx.role!r} role")

    def predictor(self, ctx: RoleContext, part: Payload, data: PartyData) -> Role:
        role: Role
        if ctx.role == "guest":
            role = SecureBoostGuestPredictor(GuestModel.from_dict(part), data, ctx.parties)
        else:
            role = SecureBoostHostPredictor(HostModel.from_dict(part), data, ctx.parties)
        return Namespaced(role, ctx.namespace)

    def load_part(self, role: str, part: Payload) -> Any:
        return {"guest": GuestModel, "host": HostModel}[role].from_dict(part)

    def demo_params(self, dataset: str, steps: int | None = None) -> Payload:
        params: Payload = dict(_DEMO)
        if steps is not None:
            params["n_estimators"] = int(steps)
        return params

    def baseline_scores(self, params: AlgorithmParams, X_train: np.ndarray, y_train: np.ndarray,
                        X_eval: np.ndarray) -> tuple[np.ndarray, str] | None:
        """The plaintext twin with the job's parameters on the guest's features alone (no host)."""
        import pandas as pd

        from algorithms.secureboost.plain import PlainSecureBoost
        from datasets import VerticalDataset

        assert isinstance(params, BoostParams)
        names = [f"x{i}" for i in range(X_train.shape[1])]

        def frame(X: np.ndarray, y: np.ndarray | None) -> pd.DataFrame:
            out = pd.DataFrame(X, columns=names)
            out.insert(0, "id", [str(i) for i in range(len(X))])
            if y is not None:
                out.insert(1, "y", np.asarray(y, dtype=np.int64))
            return out

        twin = PlainSecureBoost(**params.to_dict()).fit(VerticalDataset(frame(X_train, y_train), {}))
        scores = twin.predict_proba(VerticalDataset(frame(X_eval, np.zeros(len(X_eval), np.int64)), {}))[:, 1]
        return scores, "SecureBoost with the same parameters on the guest's features only (trained in clear)"
