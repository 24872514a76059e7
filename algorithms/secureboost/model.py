"""SecureBoost model parts: the guest's trees and each host's private split lookup table.

* :class:`GuestModel` (guest only): every tree as heap-numbered nodes (root 0, children ``2i+1`` /
  ``2i+2``). Leaves carry their learning-rate-scaled weight; a guest split carries
  (feature, threshold, missing direction); a host split carries only (host party, opaque split id).
* :class:`HostModel` (one per host): split id -> (tree, feature, threshold, missing direction) of that
  host's own splits, plus its per-feature importance. The guest never sees it.

Both are JSON-able through ``to_dict`` / ``from_dict`` (no pickle).

What it reveals: the guest model reveals to its holder the tree shapes, leaf weights and which host
owns each split; a host model reveals only that host's own thresholds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from algorithms.secureboost.params import BoostParams


@dataclass
class TreeNode:
    id: int
    depth: int
    leaf: bool = True
    weight: float = 0.0
    party: str | None = None
    feature: str | None = None
    threshold: float | None = None
    missing_left: bool = False
    split_id: int | None = None
    gain: float = 0.0

    @property
    def left(self) -> int:
        return 2 * self.id + 1

    @property
    def right(self) -> int:
        return 2 * self.id + 2

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> TreeNode:
        return TreeNode(**d)


Tree = dict[int, TreeNode]


def tree_to_list(tree: Tree) -> list[dict[str, Any]]:
    return [tree[k].to_dict() for k in sorted(tree)]


def tree_from_list(nodes: list[dict[str, Any]]) -> Tree:
    return {int(d["id"]): TreeNode.from_dict(d) for d in nodes}


@dataclass
class GuestModel:
    params: BoostParams
    guest: str
    hosts: list[str]
    feature_names: list[str]
    trees: list[Tree] = field(default_factory=list)
    history: list[float] = field(default_factory=list)   # validation log-loss after each tree
    best_iteration: int | None = None
    host_split_gains: dict[str, dict[int, float]] = field(default_factory=dict)

    @property
    def n_levels(self) -> int:
        """Number of split levels over all trees (prediction round trips)."""
        depths = [n.depth + 1 for t in self.trees for n in t.values() if not n.leaf]
        return max(depths, default=0)

    def importance(self) -> dict[str, Any]:
        """Split counts and total gain: per guest feature, and per host (a host's features are opaque)."""
        guest = {f: {"splits": 0, "gain": 0.0} for f in self.feature_names}
        hosts = {h: {"splits": 0, "gain": 0.0} for h in self.hosts}
        for tree in self.trees:
            for node in tree.values():
                if node.leaf:
                    continue
                entry = guest[node.feature] if node.party == self.guest else hosts[node.party]  # type: ignore[index]
                entry["splits"] += 1
                entry["gain"] += node.gain
        return {self.guest: guest, **hosts}

    def margin(self, leaf_index: np.ndarray) -> np.ndarray:
        """Sum of leaf weights given ``leaf_index[tree, row]``."""
        out = np.zeros(leaf_index.shape[1])
        for t, tree in enumerate(self.trees):
            weights = np.zeros(max(tree) + 1)
            for node in tree.values():
                weights[node.id] = node.weight
            out += weights[leaf_index[t]]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "secureboost.guest", "params": self.params.to_dict(), "guest": self.guest,
                "hosts": list(self.hosts), "feature_names": list(self.feature_names),
                "trees": [tree_to_list(t) for t in self.trees], "history": [float(v) for v in self.history],
                "best_iteration": self.best_iteration,
                "host_split_gains": {h: {str(k): float(v) for k, v in g.items()}
                                     for h, g in self.host_split_gains.items()}}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> GuestModel:
        if d.get("kind") != "secureboost.guest":
            raise ValueError("not a SecureBoost guest model")
        return GuestModel(BoostParams.from_dict(d["params"]), d["guest"], list(d["hosts"]), list(d["feature_names"]),
                          [tree_from_list(t) for t in d["trees"]], [float(v) for v in d["history"]],
                          d.get("best_iteration"),
                          {h: {int(k): float(v) for k, v in g.items()} for h, g in d["host_split_gains"].items()})


@dataclass(frozen=True)
class HostSplit:
    tree: int
    feature: str
    threshold: float
    missing_left: bool
    gain: float = 0.0


@dataclass
class HostModel:
    party: str
    feature_names: list[str]
    splits: dict[int, HostSplit] = field(default_factory=dict)

    def importance(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {f: {"splits": 0, "gain": 0.0} for f in self.feature_names}
        for s in self.splits.values():
            out[s.feature]["splits"] += 1
            out[s.feature]["gain"] += s.gain
        return out

    def truncate(self, n_trees: int) -> None:
        self.splits = {k: s for k, s in self.splits.items() if s.tree < n_trees}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "secureboost.host", "party": self.party, "feature_names": list(self.feature_names),
                "splits": [{"id": k, **asdict(s)} for k, s in sorted(self.splits.items())]}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> HostModel:
        if d.get("kind") != "secureboost.host":
            raise ValueError("not a SecureBoost host model")
        splits = {}
        for entry in d["splits"]:
            fields_ = dict(entry)
            split_id = int(fields_.pop("id"))
            splits[split_id] = HostSplit(**fields_)
        return HostModel(d["party"], list(d["feature_names"]), splits)


def split_gains(GL: np.ndarray, HL: np.ndarray, G: float, H: float, reg_lambda: float) -> np.ndarray:
    """XGBoost's loss change of each candidate split (without the ½ factor, as in XGBoost's code)."""
    GR, HR = G - GL, H - HL
    return GL * GL / (HL + reg_lambda) + GR * GR / (HR + reg_lambda) - G * G / (H + reg_lambda)


def leaf_weight(G: float, H: float, params: BoostParams) -> float:
    return -G / (H + params.reg_lambda) * params.learning_rate


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
