"""The guest's tree-growing logic, independent of how hosts are reached (channel or in-process twin).

Per tree the guest computes logistic g, h on its training rows, quantises them (see
:mod:`algorithms.secureboost.packing`) and hands them to every participating host through a
:class:`HostProxy` (encrypted over a channel in the real protocol, in clear in the plaintext twin).
Level by level it evaluates XGBoost gains over its own candidates (exact plaintext histograms) and each
host's candidate left-sums, picks the best split per node (strictly greater gain wins; guest
candidates first, then hosts in party order), applies guest splits itself and asks the winning host to
partition the node's rows. Leaves get ``-G/(H+λ)·η``.

What it reveals: see :mod:`algorithms.secureboost.guest` (the guest learns decrypted candidate
left-sums of (g, h, count) and the left/right partition of host splits; nothing about host
features or thresholds).
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

from algorithms.base import Checkpoint
from algorithms.secureboost.binning import FeatureBins
from algorithms.secureboost.candidates import enumerate_candidates
from algorithms.secureboost.histogram import PlainHistogram, gradient_channels, shape_channels
from algorithms.secureboost.model import GuestModel, Tree, TreeNode, leaf_weight, sigmoid, split_gains
from algorithms.secureboost.packing import PackingLayout, SplitSums
from algorithms.secureboost.params import BoostParams


class HostProxy(ABC):
    """How the guest talks to one host during training."""

    party: str

    @abstractmethod
    def start_tree(self, tree: int, gradients: Any) -> None:
        """Begin tree ``tree``; ``gradients`` is None when the host sits this tree out."""

    @abstractmethod
    def send_nodes(self, tree: int, depth: int, assignment: np.ndarray | None) -> None:
        """Node id per row at this level (-1: not being split); None: the tree is complete."""

    @abstractmethod
    def receive_candidates(self, tree: int, depth: int) -> dict[int, list[SplitSums]]:
        """Per node, the host's candidate left-sums (in the host's, possibly shuffled, order)."""

    @abstractmethod
    def send_decision(self, tree: int, depth: int, wins: dict[int, int]) -> None:
        """The nodes this host won, with the winning candidate's position."""

    @abstractmethod
    def receive_partition(self, tree: int, depth: int) -> dict[int, tuple[int, np.ndarray]]:
        """Per won node: (opaque split id, goes-left flag of each row of the node in ascending row order)."""

    @abstractmethod
    def stop(self, next_tree: int, n_trees: int, split_gains: dict[int, float]) -> None:
        """Training is over: keep ``n_trees`` trees; gains of this host's splits."""


def split_seed(seed: int, y: np.ndarray, X: np.ndarray) -> int:
    """The validation split's seed: a hash of the job seed and the guest's own labels and features.

    The job seed is sent to every host, and the training rows are too: a stratified split drawn from the
    public seed alone lets a host replay it for every candidate number of positives and read off the
    positive count and many labels with certainty. Hashed with the guest's private data the seed is
    unknown to the hosts (they would need the guest's features), yet the same for a resumed run and the
    plaintext twin.
    """
    digest = hashlib.sha256()
    digest.update(b"fedrisk/secureboost/validation-split\0" + int(seed).to_bytes(16, "big", signed=True))
    digest.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(X, dtype=np.float64).tobytes())
    return int.from_bytes(digest.digest()[:16], "big")


def stratified_validation(y: np.ndarray, fraction: float, seed: int, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, validation) row positions, stratified on ``y``, from the guest-secret :func:`split_seed`."""
    n = len(y)
    if fraction <= 0:
        return np.arange(n), np.empty(0, dtype=np.int64)
    from sklearn.model_selection import train_test_split

    rng = np.random.RandomState(np.random.SeedSequence(split_seed(seed, y, X)).generate_state(4))
    train, valid = train_test_split(np.arange(n), test_size=fraction, random_state=rng, stratify=y)
    return np.sort(train), np.sort(valid)


def _logloss(y: np.ndarray, margin: np.ndarray) -> float:
    p = np.clip(sigmoid(margin), 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


class GuestTrainer:
    """Grows the boosted trees at the guest."""

    def __init__(self, params: BoostParams, party: str, X: np.ndarray, y: np.ndarray, feature_names: list[str],
                 hosts: list[HostProxy], seal: Callable[[np.ndarray, np.ndarray], Any], layout: PackingLayout,
                 train_rows: np.ndarray, valid_rows: np.ndarray, checkpoint: Checkpoint | None = None) -> None:
        self.params = params
        self.party = party
        self.y = y
        self.feature_names = feature_names
        self.hosts = hosts
        self.seal = seal
        self.layout = layout
        self.train_rows = train_rows
        self.valid_rows = valid_rows
        self.checkpoint = checkpoint
        self.bins = FeatureBins.fit(X[train_rows], params.max_bin)
        self.B = self.bins.transform(X)
        self.n_bins = self.bins.n_bins
        self.shape = shape_channels(len(train_rows))

    # ------------------------------------------------------------------ fit
    def resume_point(self) -> tuple[int, GuestModel, np.ndarray]:
        model = GuestModel(self.params, self.party, [h.party for h in self.hosts], self.feature_names)
        margin = np.zeros(len(self.y))
        if self.checkpoint is not None:
            saved = self.checkpoint.latest()
            if saved is not None:
                step, state = saved
                model = GuestModel.from_dict(state["model"])
                model.params.require_same(self.params.to_dict(), "checkpoint")
                margin = np.asarray(state["margin"], dtype=np.float64)
                if len(model.trees) != step or len(margin) != len(self.y):
                    raise ValueError("guest checkpoint does not match this data set")
        return len(model.trees), model, margin

    def fit(self, start: int, model: GuestModel, margin: np.ndarray) -> GuestModel:
        p = self.params
        tr, va = self.train_rows, self.valid_rows
        best_loss = min(model.history) if model.history else np.inf
        stop = self._no_improvement(model, len(model.trees) - 1)
        t = start
        while t < p.n_estimators and not stop:
            prob = sigmoid(margin[tr])
            g_int, h_int = self.layout.quantise(prob - self.y[tr], prob * (1 - prob))
            participate = bool(self.hosts) and not (p.complete_secure and t == 0)
            sealed = self.seal(g_int, h_int) if participate else None
            for host in self.hosts:
                host.start_tree(t, sealed)
            tree, leaf_of_row = self._grow(t, g_int, h_int, participate)
            model.trees.append(tree)
            weights = np.zeros(max(tree) + 1)
            for node in tree.values():
                weights[node.id] = node.weight
            margin = margin + weights[leaf_of_row]
            if p.early_stopping:
                loss = _logloss(self.y[va], margin[va])
                model.history.append(loss)
                if loss < best_loss - 1e-12:
                    best_loss, model.best_iteration = loss, t
                stop = self._no_improvement(model, t)
            t += 1
            if self.checkpoint is not None:
                self.checkpoint.save(t, {"model": model.to_dict(), "margin": margin})
        n_trees = len(model.trees)
        if p.early_stopping and model.best_iteration is not None:
            n_trees = model.best_iteration + 1
            model.trees = model.trees[:n_trees]
        gains = self._host_gains(model)
        model.host_split_gains = gains
        for host in self.hosts:
            host.stop(t, n_trees, gains[host.party] if p.share_host_gains else {})
        return model

    def _no_improvement(self, model: GuestModel, last_tree: int) -> bool:
        p = self.params
        return bool(p.early_stopping and model.best_iteration is not None
                    and last_tree - model.best_iteration >= p.n_iter_no_change)

    def _host_gains(self, model: GuestModel) -> dict[str, dict[int, float]]:
        out: dict[str, dict[int, float]] = {h.party: {} for h in self.hosts}
        for tree in model.trees:
            for node in tree.values():
                if not node.leaf and node.party != self.party:
                    out[node.party][int(node.split_id)] = node.gain  # type: ignore[index, arg-type]
        return out

    # ----------------------------------------------------------------- grow
    def _grow(self, t: int, g_int: np.ndarray, h_int: np.ndarray, participate: bool) -> tuple[Tree, np.ndarray]:
        p = self.params
        hosts = self.hosts if participate else []
        channels = np.column_stack([self.shape, gradient_channels(g_int, h_int)])
        n_rows = len(self.y)
        position = np.zeros(n_rows, dtype=np.int64)
        train_pos = np.zeros(len(self.train_rows), dtype=np.int64)  # node of each training row
        tree: Tree = {}
        node_sums: dict[int, SplitSums] = {}
        hist0 = PlainHistogram(np.zeros((channels.shape[1], 0, 0)), channels.sum(axis=0))
        node_sums[0] = hist0.total_sums()
        active = [0]
        depth = 0
        while True:
            if not active or depth == p.max_depth:
                for node_id in active:
                    tree[node_id] = self._leaf(node_id, depth, node_sums[node_id])
                for host in hosts:
                    host.send_nodes(t, depth, None)
                break
            assignment = np.where(np.isin(position, active), position, -1).astype(np.int32)
            for host in hosts:
                host.send_nodes(t, depth, assignment)
            own: dict[int, tuple[list, list[SplitSums]]] = {}
            for node_id in active:
                idx = np.flatnonzero(train_pos == node_id)
                hist = PlainHistogram.build(self.B[self.train_rows[idx]], channels[idx], self.bins.max_bins)
                cands = enumerate_candidates(hist, self.n_bins)
                own[node_id] = (cands, hist.left_sums(cands))
            remote = {h.party: h.receive_candidates(t, depth) for h in hosts}
            decisions: dict[int, tuple[str, Any, float, SplitSums]] = {}
            for node_id in active:
                choice = self._best_split(node_id, node_sums[node_id], own[node_id], remote)
                if choice is None:
                    tree[node_id] = self._leaf(node_id, depth, node_sums[node_id])
                else:
                    decisions[node_id] = choice
            for host in hosts:
                host.send_decision(t, depth, {n: c[1] for n, c in decisions.items() if c[0] == host.party})
            partitions: dict[int, tuple[int, np.ndarray]] = {}
            for host in hosts:
                partitions.update(host.receive_partition(t, depth))
            next_active = []
            for node_id, (owner, which, gain, left) in sorted(decisions.items()):
                rows = np.flatnonzero(position == node_id)
                node = TreeNode(node_id, depth, leaf=False, party=owner, gain=gain)
                if owner == self.party:
                    f, b, missing_left = which
                    col = self.B[rows, f]
                    goes_left = np.where(col < 0, missing_left, col <= b)
                    node.feature, node.threshold, node.missing_left = (self.feature_names[f],
                                                                       self.bins.threshold(f, b), missing_left)
                else:
                    split_id, goes_left = partitions[node_id]
                    if len(goes_left) != len(rows):
                        raise ValueError(f"{owner} partitioned {len(goes_left)} rows of node {node_id}, "
                                         f"expected {len(rows)}")
                    node.split_id = int(split_id)
                tree[node_id] = node
                goes_left = np.asarray(goes_left, dtype=bool)
                position[rows] = np.where(goes_left, node.left, node.right)
                total = node_sums[node_id]
                node_sums[node.left] = left
                node_sums[node.right] = (total[0] - left[0], total[1] - left[1], total[2] - left[2])
                train_pos = position[self.train_rows]
                if left[2] != int((train_pos == node.left).sum()):
                    raise ValueError(f"partition of node {node_id} by {owner} disagrees with its split sums")
                next_active += [node.left, node.right]
            active = next_active
            depth += 1
        return tree, position

    def _leaf(self, node_id: int, depth: int, sums: SplitSums) -> TreeNode:
        G, H = self.layout.to_stats(sums)
        return TreeNode(node_id, depth, leaf=True, weight=leaf_weight(G, H, self.params))

    def _best_split(self, node_id: int, total: SplitSums, own: tuple[list, list[SplitSums]],
                    remote: dict[str, dict[int, list[SplitSums]]]) -> tuple[str, Any, float, SplitSums] | None:
        p, layout = self.params, self.layout
        G, H = layout.to_stats(total)
        options: list[tuple[str, Any]] = [(self.party, c) for c in own[0]]
        sums: list[SplitSums] = list(own[1])
        for host in self.hosts:
            if host.party in remote:
                host_sums = remote[host.party].get(node_id, [])
                options += [(host.party, i) for i in range(len(host_sums))]
                sums += host_sums
        if not sums:
            return None
        stats = np.array([layout.to_stats(s) for s in sums])
        GL, HL = stats[:, 0], stats[:, 1]
        gains = split_gains(GL, HL, G, H, p.reg_lambda)
        mcw = p.min_child_weight
        valid = (mcw <= HL) & (mcw <= H - HL)
        gains = np.where(valid, gains, -np.inf)
        best = int(np.argmax(gains))
        if not np.isfinite(gains[best]) or gains[best] <= max(p.gamma, 0.0):
            return None
        owner, which = options[best]
        return owner, which, float(gains[best]), sums[best]
