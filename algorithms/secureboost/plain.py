"""The plaintext twin of vertical SecureBoost: same binning, candidates, gains and tie-breaking.

:class:`PlainSecureBoost` runs the guest's :class:`GuestTrainer` against in-process hosts whose
histograms are computed in clear on the same fixed-point integers the guest would encrypt, with no
shuffling. Because the encrypted protocol's decrypted sums are those very integers, the twin builds
exactly the same trees; the tests use it to pin losslessness and to compare with XGBoost.

What it reveals: everything to everyone — it is a test and reference tool, never a deployment mode.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from algorithms.base import Parties
from algorithms.secureboost.data import feature_matrix, host_frame_checks, ids_digest, labels
from algorithms.secureboost.guest_trainer import GuestTrainer, HostProxy, stratified_validation
from algorithms.secureboost.host_trainer import HostTrainer, PlainBackend
from algorithms.secureboost.model import GuestModel, HostModel
from algorithms.secureboost.packing import PackingLayout, SplitSums
from algorithms.secureboost.params import BoostParams
from datasets import VerticalDataset


class LocalPlainHost(HostProxy):
    """A host computed in the same process, in clear."""

    def __init__(self, trainer: HostTrainer) -> None:
        self.trainer = trainer
        self.party = trainer.party
        self._pending: Any = None
        self.model: HostModel | None = None

    def start_tree(self, tree: int, gradients: Any) -> None:
        if gradients is not None:
            self.trainer.start_tree(tree, gradients)

    def send_nodes(self, tree: int, depth: int, assignment: np.ndarray | None) -> None:
        if assignment is not None:
            self._pending = self.trainer.candidates(assignment)

    def receive_candidates(self, tree: int, depth: int) -> dict[int, list[SplitSums]]:
        per_node, nodes, _ = self._pending
        return dict(zip(nodes, per_node, strict=True))

    def send_decision(self, tree: int, depth: int, wins: dict[int, int]) -> None:
        self._pending = self.trainer.partition(wins)

    def receive_partition(self, tree: int, depth: int) -> dict[int, tuple[int, np.ndarray]]:
        return self._pending

    def stop(self, next_tree: int, n_trees: int, split_gains: dict[int, float]) -> None:
        self.model = self.trainer.finish(n_trees, split_gains)


class PlainSecureBoost:
    """``PlainSecureBoost(**params).fit(vertical_dataset)``: the same algorithm without encryption."""

    def __init__(self, guest: str = "bank", **params: Any) -> None:
        self.params = BoostParams(**params)
        self.guest = guest
        self.guest_model_: GuestModel | None = None
        self.host_models_: dict[str, HostModel] = {}

    def fit(self, data: VerticalDataset) -> PlainSecureBoost:
        p = self.params
        ids, X, names = feature_matrix(data.guest, self.guest)
        y = labels(data.guest, self.guest)
        train_rows, valid_rows = stratified_validation(y, p.validation_fraction, p.seed, X)
        layout = PackingLayout.plan(len(train_rows), p.precision_bits, 2048)
        proxies = []
        for party, frame in data.hosts.items():
            host_frame_checks(frame, party)
            h_ids, h_X, h_names = feature_matrix(frame, party)
            if ids_digest(h_ids) != ids_digest(ids):
                raise ValueError(f"{party}: rows are not aligned with the guest's")
            trainer = HostTrainer(party, h_X, h_names, p.max_bin, train_rows,
                                  lambda b, nb: PlainBackend(b, nb), shuffle=False)
            proxies.append(LocalPlainHost(trainer))
        trainer = GuestTrainer(p, self.guest, X, y, names, proxies, lambda g, h: (g, h), layout, train_rows,
                               valid_rows)
        start, model, margin = trainer.resume_point()
        self.guest_model_ = trainer.fit(start, model, margin)
        self.host_models_ = {px.party: px.model for px in proxies if px.model is not None}
        return self

    def predict_proba(self, data: VerticalDataset) -> np.ndarray:
        from algorithms.secureboost.estimator import federated_predict

        assert self.guest_model_ is not None, "call fit first"
        parties = Parties(guest=self.guest, hosts=tuple(self.host_models_))
        p1 = federated_predict(self.guest_model_, self.host_models_, data, parties)
        return np.column_stack([1 - p1, p1])
