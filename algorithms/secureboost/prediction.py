"""Federated SecureBoost prediction: all trees walked level by level, at most ``depth`` round trips.

The guest keeps, for every (tree, row), the current node. Per level it evaluates its own splits
locally and sends each host ONE query: the rows and opaque split ids of the (tree, row) pairs sitting
at that host's splits. The host looks the ids up in its private table, compares its own feature
values with its own thresholds and answers one left/right flag per query; the guest moves the rows on.
After the last level the guest sums the leaf weights (they never leave the guest).

Messages per level ``l``: guest -> host ``predict.l{l}.query`` (rows, split ids, ``last`` flag; the
first one also carries the id digest); host -> guest ``predict.l{l}.answer`` (flags).

What it reveals: a host learns which rows reach each of its own splits (and nothing else: not the
guest's splits, leaf weights or scores); the guest learns the left/right outcome of host splits for
the rows asked, never a host feature value or threshold.
"""

from __future__ import annotations

import numpy as np

from algorithms.base import Parties
from algorithms.secureboost.data import Table, host_checks, ids_digest, party_features
from algorithms.secureboost.model import GuestModel, HostModel, sigmoid
from federation.channel import Channel


def _goes_left(values: np.ndarray, threshold: float, missing_left: bool) -> np.ndarray:
    return np.where(np.isnan(values), missing_left, values <= threshold)


class SecureBoostGuestPredictor:
    """``SecureBoostGuestPredictor(model, data, parties).run(channel) -> P(y=1)`` per row of ``data``."""

    def __init__(self, model: GuestModel, data: Table, parties: Parties | None = None) -> None:
        self.model = model
        self.parties = parties or Parties(guest=model.guest, hosts=tuple(model.hosts))
        self.ids, self.X, _ = party_features(data, model.guest, columns=model.feature_names)
        self.column = {f: i for i, f in enumerate(model.feature_names)}

    def run(self, channel: Channel) -> np.ndarray:
        model, n = self.model, len(self.ids)
        position = np.zeros((len(model.trees), n), dtype=np.int64)
        n_levels = max(model.n_levels, 1)
        hosts = list(self.parties.hosts)
        for level in range(n_levels):
            queries: dict[str, list[tuple[int, np.ndarray, int]]] = {h: [] for h in hosts}
            for t, tree in enumerate(model.trees):
                for node in tree.values():
                    if node.leaf or node.depth != level:
                        continue
                    rows = np.flatnonzero(position[t] == node.id)
                    if not len(rows):
                        continue
                    if node.party == model.guest:
                        left = _goes_left(self.X[rows, self.column[node.feature]], node.threshold, node.missing_left)
                        position[t, rows] = np.where(left, node.left, node.right)
                    else:
                        queries[node.party].append((t, rows, node.id))  # type: ignore[index]
            last = level == n_levels - 1
            for h in hosts:
                q = queries[h]
                rows = np.concatenate([r for _, r, _ in q]) if q else np.zeros(0, dtype=np.int64)
                ids = np.concatenate([np.full(len(r), model.trees[t][nid].split_id, dtype=np.int64)
                                      for t, r, nid in q]) if q else np.zeros(0, dtype=np.int64)
                payload = {"rows": rows.astype(np.int64), "split_ids": ids, "last": last}
                if level == 0:
                    payload["ids_digest"] = ids_digest(self.ids)
                    payload["n_rows"] = n
                channel.send(h, f"predict.l{level}.query", payload)
            for h in hosts:
                flags = np.asarray(channel.recv(h, f"predict.l{level}.answer")["goes_left"], dtype=bool)
                start = 0
                for t, rows, nid in queries[h]:
                    f = flags[start:start + len(rows)]
                    if len(f) != len(rows):
                        raise ValueError(f"{h} answered {len(flags)} flags for more queries")
                    start += len(rows)
                    node = model.trees[t][nid]
                    position[t, rows] = np.where(f, node.left, node.right)
        return sigmoid(model.margin(position))


class SecureBoostHostPredictor:
    """``SecureBoostHostPredictor(model, data, parties).run(channel) -> number of answered queries``."""

    def __init__(self, model: HostModel, data: Table, parties: Parties) -> None:
        host_checks(data, model.party)
        self.model = model
        self.parties = parties
        self.ids, self.X, _ = party_features(data, model.party, columns=model.feature_names)
        self.column = {f: i for i, f in enumerate(model.feature_names)}

    def run(self, channel: Channel) -> int:
        guest, answered, level = self.parties.guest, 0, 0
        while True:
            q = channel.recv(guest, f"predict.l{level}.query")
            if level == 0 and (q.get("ids_digest") != ids_digest(self.ids) or int(q["n_rows"]) != len(self.ids)):
                raise ValueError(f"{self.model.party}: prediction rows are not aligned with the guest's")
            rows = np.asarray(q["rows"], dtype=np.int64)
            split_ids = np.asarray(q["split_ids"], dtype=np.int64)
            if len(rows) != len(split_ids) or (len(rows) and (rows.min() < 0 or rows.max() >= len(self.ids))):
                raise ValueError(f"{self.model.party}: malformed prediction query")
            flags = np.zeros(len(rows), dtype=bool)
            for sid in np.unique(split_ids):
                split = self.model.splits.get(int(sid))
                if split is None:
                    raise ValueError(f"{self.model.party}: unknown split id {sid} in prediction query")
                sel = split_ids == sid
                flags[sel] = _goes_left(self.X[rows[sel], self.column[split.feature]], split.threshold,
                                        split.missing_left)
            channel.send(guest, f"predict.l{level}.answer", {"goes_left": flags})
            answered += len(rows)
            level += 1
            if q["last"]:
                return answered
