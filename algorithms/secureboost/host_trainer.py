"""A host's side of tree growing, independent of transport and of encryption.

Per level the host receives the node of every row, computes its candidates' left-sums of the
guest's (g, h) — on ciphertexts (:class:`EncryptedBackend`) or, in the plaintext twin, on clear
integers (:class:`PlainBackend`) — shuffles them per node and answers. When one of its candidates
wins a node it creates an opaque split id, records (feature, threshold, missing direction) in its
private lookup table and partitions the node's rows.

What it reveals: see :mod:`algorithms.secureboost.host`.
"""

from __future__ import annotations

import random
import secrets
from abc import ABC, abstractmethod
from concurrent.futures import Executor
from typing import Any

import numpy as np
from gmpy2 import mpz

from algorithms.paillier import CiphertextVector, Encryptor, PublicKey, opcount, parallel_map
from algorithms.paillier.parallel import chunk_slices, workers
from algorithms.secureboost.binning import FeatureBins
from algorithms.secureboost.candidates import Candidate, enumerate_candidates
from algorithms.secureboost.histogram import (
    COUNT,
    EncryptedHistogram,
    PlainHistogram,
    encrypted_histograms,
    encrypted_total,
    gradient_channels,
    shape_channels,
)
from algorithms.secureboost.model import HostModel, HostSplit
from algorithms.secureboost.packing import PackingLayout, SplitSums, compress


class Backend(ABC):
    """Histogram arithmetic of one host: on ciphertexts or, for the twin, on plaintext integers."""

    @abstractmethod
    def start_tree(self, gradients: Any) -> None: ...

    @abstractmethod
    def histograms(self, nodes: dict[int, np.ndarray], need_total: set[int]) -> dict[int, Any]: ...

    @abstractmethod
    def subtract(self, parent: Any, child: Any, node_rows: np.ndarray, need_total: bool) -> Any: ...

    @abstractmethod
    def left_sums(self, hist: Any, candidates: list[Candidate]) -> list[Any]: ...

    @abstractmethod
    def seal(self, per_node: list[list[Any]]) -> Any: ...


class PlainBackend(Backend):
    """The plaintext twin: the same histograms on the clear fixed-point integers."""

    def __init__(self, bins_train: np.ndarray, n_bins: int) -> None:
        self.bins_train = bins_train
        self.n_bins = n_bins
        self.channels: np.ndarray | None = None

    def start_tree(self, gradients: Any) -> None:
        g_int, h_int = gradients
        self.channels = np.column_stack([shape_channels(len(g_int)), gradient_channels(g_int, h_int)])

    def histograms(self, nodes: dict[int, np.ndarray], need_total: set[int]) -> dict[int, PlainHistogram]:
        assert self.channels is not None
        return {n: PlainHistogram.build(self.bins_train[idx], self.channels[idx], self.n_bins)
                for n, idx in nodes.items()}

    def subtract(self, parent: PlainHistogram, child: PlainHistogram, node_rows: np.ndarray, need_total: bool
                 ) -> PlainHistogram:
        return parent - child

    def left_sums(self, hist: PlainHistogram, candidates: list[Candidate]) -> list[SplitSums]:
        return hist.left_sums(candidates)

    def seal(self, per_node: list[list[SplitSums]]) -> list[list[SplitSums]]:
        return per_node


class EncryptedBackend(Backend):
    """Histograms of the guest's packed (g, h) ciphertexts, compressed and re-randomised before sending."""

    def __init__(self, bins_train: np.ndarray, n_bins: int, public_key: PublicKey, layout: PackingLayout,
                 executor: Executor | None) -> None:
        self.bins_train = bins_train
        self.n_bins = n_bins
        self.public_key = public_key
        self.nsq = public_key.nsquare
        self.layout = layout
        self.executor = executor
        self.encryptor = Encryptor(public_key, executor=executor)  # for fresh obfuscators only
        self.ciphertexts: list[mpz] = []

    def start_tree(self, gradients: CiphertextVector) -> None:
        vec = gradients.under(self.public_key)
        if len(vec) != len(self.bins_train):
            raise ValueError(f"guest sent {len(vec)} gradient ciphertexts for {len(self.bins_train)} training rows")
        if vec.bound is None or vec.bound > self.layout.row_bound:
            raise ValueError("gradient ciphertexts do not declare the agreed packing bound")
        self.ciphertexts = vec.ciphertexts

    def histograms(self, nodes: dict[int, np.ndarray], need_total: set[int]) -> dict[int, EncryptedHistogram]:
        return encrypted_histograms(self.ciphertexts, self.nsq, self.bins_train, self.n_bins, nodes, need_total,
                                    self.executor)

    def subtract(self, parent: EncryptedHistogram, child: EncryptedHistogram, node_rows: np.ndarray,
                 need_total: bool) -> EncryptedHistogram:
        out = parent.subtract(child, self.nsq)
        if need_total and out.total is None:
            out.total = encrypted_total(self.ciphertexts, node_rows, self.nsq)
        return out

    def left_sums(self, hist: EncryptedHistogram, candidates: list[Candidate]) -> list[mpz]:
        return hist.left_sums(candidates, self.nsq)

    def seal(self, per_node: list[list[mpz]]) -> CiphertextVector:
        flat = [c for cts in per_node for c in cts]
        k = self.layout.slots
        groups = [flat[i:i + k] for i in range(0, len(flat), k)]
        opcount.count("sbt_compress_shift", max(len(flat) - len(groups), 0))
        calls = [(int(self.nsq), self.layout.width, groups[s])
                 for s in chunk_slices(len(groups), workers(self.executor), 8)] if groups else []
        packed = [c for part in parallel_map(compress, calls, self.executor) for c in part]
        vec = CiphertextVector(self.public_key, packed, 0, self.layout.packed_bound)
        return self.encryptor.rerandomize(vec)


class HostTrainer:
    """One host's training state: bins, per-level candidates, private split lookup table."""

    def __init__(self, party: str, X: np.ndarray, feature_names: list[str], max_bin: int, train_rows: np.ndarray,
                 backend_factory: Any, shuffle: bool = True, rng: random.Random | None = None) -> None:
        self.party = party
        self.feature_names = feature_names
        self.train_rows = np.asarray(train_rows, dtype=np.int64)
        self.bins = FeatureBins.fit(X[self.train_rows], max_bin)
        self.B = self.bins.transform(X)
        self.B_train = self.B[self.train_rows]
        self.n_bins = self.bins.n_bins
        self.shape = shape_channels(len(self.train_rows))
        self.backend: Backend = backend_factory(self.B_train, self.bins.max_bins)
        self.shuffle = shuffle
        self.rng = rng or secrets.SystemRandom()  # the shuffle must be unpredictable to the guest
        self.model = HostModel(party, feature_names)
        self.tree = -1
        self._previous: dict[int, Any] = {}
        self._assignment: np.ndarray | None = None
        self._offered: dict[int, list[Candidate]] = {}

    @property
    def n_rows(self) -> int:
        return len(self.B)

    def start_tree(self, tree: int, gradients: Any) -> None:
        self.tree = tree
        self._previous = {}
        self.backend.start_tree(gradients)

    def candidates(self, assignment: np.ndarray) -> tuple[Any, list[int], list[int]]:
        """Sealed left-sums of every active node's shuffled candidates, the node ids and per-node counts."""
        assignment = np.asarray(assignment)
        if assignment.shape != (self.n_rows,):
            raise ValueError(f"{self.party}: node assignment of length {assignment.shape} for {self.n_rows} rows")
        self._assignment = assignment
        train_nodes = assignment[self.train_rows]
        nodes = [int(n) for n in np.unique(train_nodes[train_nodes >= 0])]
        rows = {n: np.flatnonzero(train_nodes == n) for n in nodes}
        shapes = {n: PlainHistogram.build(self.B_train[rows[n]], self.shape[rows[n]], self.bins.max_bins)
                  for n in nodes}
        need_total = {n for n in nodes if shapes[n].missing()[COUNT].sum() > 0}
        direct, derived = {}, {}
        for n in nodes:
            parent, sibling = (n - 1) // 2, (n + 1 if n % 2 else n - 1)
            smaller = sibling not in rows or (len(rows[n]), n) <= (len(rows[sibling]), sibling)
            if n == 0 or parent not in self._previous or smaller:
                direct[n] = rows[n]
            else:
                derived[n] = (parent, sibling)
        hists = self.backend.histograms(direct, need_total)
        for n, (parent, sibling) in derived.items():
            hists[n] = self.backend.subtract(self._previous[parent], hists[sibling], rows[n], n in need_total)
        self._previous = hists
        self._offered = {}
        per_node, counts = [], []
        for n in nodes:
            cands = enumerate_candidates(shapes[n], self.n_bins)
            if self.shuffle:
                self.rng.shuffle(cands)
            self._offered[n] = cands
            per_node.append(self.backend.left_sums(hists[n], cands))
            counts.append(len(cands))
        return self.backend.seal(per_node), nodes, counts

    def partition(self, wins: dict[int, int]) -> dict[int, tuple[int, np.ndarray]]:
        """Record the winning splits; per node its new split id and goes-left flags of its rows (ascending)."""
        assert self._assignment is not None
        out = {}
        for node, position in sorted(wins.items()):
            offered = self._offered.get(int(node))
            if offered is None or not 0 <= int(position) < len(offered):
                raise ValueError(f"{self.party}: the guest chose unknown candidate {position} at node {node}")
            f, b, missing_left = offered[int(position)]
            rows = np.flatnonzero(self._assignment == node)
            col = self.B[rows, f]
            goes_left = np.where(col < 0, missing_left, col <= b)
            split_id = len(self.model.splits)
            while split_id in self.model.splits:
                split_id += 1
            self.model.splits[split_id] = HostSplit(self.tree, self.feature_names[f], self.bins.threshold(f, b),
                                                    bool(missing_left))
            out[int(node)] = (split_id, goes_left.astype(bool))
        return out

    def finish(self, n_trees: int, gains: dict[int, float]) -> HostModel:
        self.model.truncate(n_trees)
        for sid, split in list(self.model.splits.items()):
            g = gains.get(sid)
            if g is not None:
                self.model.splits[sid] = HostSplit(split.tree, split.feature, split.threshold, split.missing_left,
                                                   float(g))
        return self.model
