"""Federated scorecard: binning → IV selection → vertical logistic regression on the binned characteristics
→ points tables kept by each party; and scoring with per-party point subtotals.

Training (every step reuses an existing protocol; see their modules for the messages):

1. :mod:`algorithms.binning.protocol` — each party bins its own characteristics (fine bins merged
   optimally by the bank on decrypted counts), the bank gets the WOE/IV of every characteristic, the IV
   selection tells each host which of its characteristics are kept;
2. design matrices (:mod:`algorithms.scorecard.design`): the bank's kept characteristics WOE-coded, a host's
   as bin indicators (no WOE ever reaches a host);
3. :mod:`algorithms.vertical_lr` — the guest / host / arbiter roles fit the logistic regression on those
   design matrices (the arbiter holds the key; every decryption it performs is of masked values);
4. points (:mod:`algorithms.scorecard.points`): the bank's table (base points + ``−factor·w·WOE`` per bin),
   each host's table (``−factor·θ`` per bin) built by the host from its own coefficients;
   host → bank ``sc.points``: the host's table only if the host's silo allows it (``share_points_table``),
   otherwise only the fact that it is withheld.

Scoring: bank → host ``sc.{name}.request`` (how many rows); host → bank ``sc.{name}.points``: the per-row
subtotal of the host's points (``−factor ×`` its partial logit, what vertical LR scoring reveals too); the
bank adds its own points and the base points.

What each party learns: the host learns its own coefficients (hence its points table), its gradients
during the regression (see :mod:`algorithms.vertical_lr`) and, from binning, its merge groups and which of
its characteristics were kept — never a label, a count, a WOE or the bank's coefficients. The bank learns the
WOE/IV of every characteristic (host ones under tokens unless named), the total score and per-party
subtotals of every scored row, and a host's points table only with the host's consent. The arbiter learns
the epoch losses (vertical LR).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from algorithms.base import Checkpoint, Parties
from algorithms.binning.bins import CharacteristicBins
from algorithms.binning.protocol import BinningGuest, BinningHost, BinningProtocolError, GuestBinning, HostBinning
from algorithms.paillier import PrivateKey, PublicKey
from algorithms.scorecard.design import (
    indicator_columns,
    indicator_design,
    indicator_theta,
    reference_bins,
    woe_design,
)
from algorithms.scorecard.params import ScorecardParams
from algorithms.scorecard.points import PointsScale, PointsTable, indicator_points, woe_points
from algorithms.vertical_lr.arbiter import VerticalLRArbiter
from algorithms.vertical_lr.guest import VerticalLRGuest
from algorithms.vertical_lr.host import VerticalLRHost
from algorithms.vertical_lr.model import ArbiterSummary, GuestModel, HostModel
from federation.channel import Channel


def scale_of(params: ScorecardParams) -> PointsScale:
    return PointsScale(params.pdo, params.base_score, params.base_odds)


@dataclass
class ScorecardGuestPart:
    """The bank's private part: its bins, the IV table, its regression weights and points table, and the
    hosts' points tables they chose to share (``None`` where withheld)."""

    party: str
    binning: GuestBinning
    features: list[str]
    model: GuestModel
    scale: PointsScale
    table: PointsTable
    host_tables: dict[str, PointsTable | None] = field(default_factory=dict)

    @property
    def bins(self) -> CharacteristicBins:
        return self.binning.bins.select(self.features)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "scorecard.guest", "party": self.party, "binning": self.binning.to_dict(),
                "features": self.features, "model": self.model.to_dict(), "scale": self.scale.to_dict(),
                "table": self.table.to_dict(),
                "host_tables": {h: None if t is None else t.to_dict() for h, t in self.host_tables.items()}}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> ScorecardGuestPart:
        s = d["scale"]
        return ScorecardGuestPart(d["party"], GuestBinning.from_dict(d["binning"]), list(d["features"]),
                                  GuestModel.from_dict(d["model"]),
                                  PointsScale(s["pdo"], s["base_score"], s["base_odds"]),
                                  PointsTable.from_dict(d["table"]),
                                  {h: None if t is None else PointsTable.from_dict(t)
                                   for h, t in d["host_tables"].items()})


@dataclass
class ScorecardHostPart:
    """A host's private part: its bins, kept characteristics, indicator coefficients and points table."""

    party: str
    binning: HostBinning
    features: list[str]
    model: HostModel
    table: PointsTable

    @property
    def bins(self) -> CharacteristicBins:
        return self.binning.bins.select(self.features)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "scorecard.host", "party": self.party, "binning": self.binning.to_dict(),
                "features": self.features, "model": self.model.to_dict(), "table": self.table.to_dict()}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> ScorecardHostPart:
        return ScorecardHostPart(d["party"], HostBinning.from_dict(d["binning"]), list(d["features"]),
                                 HostModel.from_dict(d["model"]), PointsTable.from_dict(d["table"]))


def _columns(X: np.ndarray, names: Sequence[str], wanted: Sequence[str], party: str) -> np.ndarray:
    index = {n: j for j, n in enumerate(names)}
    missing = [n for n in wanted if n not in index]
    if missing:
        raise ValueError(f"{party}: the data lacks the scorecard's characteristics {missing}")
    return np.asarray(X, dtype=np.float64)[:, [index[n] for n in wanted]]


class ScorecardGuest:
    """The bank's training role: ``run(channel) -> ScorecardGuestPart``."""

    def __init__(self, X: np.ndarray, names: Sequence[str], y: np.ndarray, ids: np.ndarray, params: ScorecardParams,
                 parties: Parties, keypair: tuple[PublicKey, PrivateKey] | None = None,
                 executor: Executor | None = None, namespace: str = "", checkpoint: Checkpoint | None = None,
                 units: Mapping[str, Sequence[float]] | None = None) -> None:
        self.X, self.names, self.y, self.ids = np.asarray(X, dtype=np.float64), list(names), np.asarray(y), ids
        self.params, self.parties, self.keypair, self.executor, self.ns = params, parties, keypair, executor, namespace
        self.checkpoint = checkpoint  # the regression's epochs (binning is deterministic and simply reruns)
        self.units = dict(units or {})

    def run(self, channel: Channel) -> ScorecardGuestPart:
        p, me = self.params, self.parties.guest
        binning = BinningGuest(self.X, self.names, self.y, self.ids, p.binning(), self.parties, keypair=self.keypair,
                               executor=self.executor, namespace=self.ns, units=self.units).run(channel)
        kept = [c for c in binning.own() if c.selected]
        features = [c.key for c in kept]
        bins = binning.bins.select(features)
        B = bins.transform(_columns(self.X, self.names, features, me))
        x = woe_design(B, [c.table.woe for c in kept])
        model = VerticalLRGuest(x, self.y, features, self.parties, p.logistic(), checkpoint=self.checkpoint,
                                executor=self.executor).run(channel)
        scale = scale_of(p)
        table = PointsTable(me, [woe_points(scale, c.key, c.labels or [], w, c.table.woe)
                                 for c, w in zip(kept, model.weights, strict=True)],
                            base=float(scale.offset - scale.factor * model.intercept))
        host_tables: dict[str, PointsTable | None] = {}
        for host in self.parties.hosts:
            msg = channel.recv(host, f"{self.ns}sc.points")
            host_tables[host] = PointsTable.from_dict(msg["table"]) if msg.get("shared") else None
        return ScorecardGuestPart(me, binning, features, model, scale, table, host_tables)


class ScorecardHost:
    """A host's training role: ``run(channel) -> ScorecardHostPart``.

    ``share_feature_names`` / ``share_points_table``: the host silo's own consent to name its characteristics
    to the bank and to show it its points table.
    """

    def __init__(self, X: np.ndarray, names: Sequence[str], ids: np.ndarray, params: ScorecardParams,
                 parties: Parties, party: str, share_feature_names: bool = False, share_points_table: bool = False,
                 executor: Executor | None = None, namespace: str = "", checkpoint: Checkpoint | None = None,
                 units: Mapping[str, Sequence[float]] | None = None) -> None:
        self.X, self.names, self.ids = np.asarray(X, dtype=np.float64), list(names), ids
        self.units = dict(units or {})
        self.params, self.parties, self.party = params, parties, party
        self.share_names, self.share_points = share_feature_names, share_points_table
        self.executor, self.ns, self.checkpoint = executor, namespace, checkpoint

    def run(self, channel: Channel) -> ScorecardHostPart:
        p = self.params
        binning = BinningHost(self.X, self.names, self.ids, p.binning(), self.parties, self.party,
                              self.share_names, self.executor, self.ns, units=self.units).run(channel)
        features = binning.selected
        bins = binning.bins.select(features)
        B = bins.transform(_columns(self.X, self.names, features, self.party))
        columns = indicator_columns(bins, reference_bins(bins, B))
        x = indicator_design(B, columns)
        if x.shape[1] == 0:
            raise BinningProtocolError(f"{self.party}: none of its characteristics was kept by the IV selection; "
                                       "lower iv_threshold or leave this host out of the job")
        model = VerticalLRHost(x, [name for _, _, name in columns], self.parties, p.logistic(),
                               checkpoint=self.checkpoint, executor=self.executor).run(channel)
        scale = scale_of(p)
        theta = indicator_theta(bins, columns, model.weights)
        table = PointsTable(self.party, [indicator_points(scale, f.name, f.labels(unit=self.units.get(f.name)), t)
                                         for f, t in zip(bins.features, theta, strict=True)])
        channel.send(self.parties.guest, f"{self.ns}sc.points",
                     {"shared": True, "table": table.to_dict()} if self.share_points else {"shared": False})
        return ScorecardHostPart(self.party, binning, features, model, table)


class ScorecardArbiter:
    """The arbiter's role: the key holder of the regression (binning uses the bank's own key)."""

    def __init__(self, params: ScorecardParams, parties: Parties, executor: Executor | None = None,
                 keypair: tuple[PublicKey, PrivateKey] | None = None, checkpoint: Checkpoint | None = None) -> None:
        self.params, self.parties, self.executor, self.keypair = params, parties, executor, keypair
        self.checkpoint = checkpoint

    def run(self, channel: Channel) -> ArbiterSummary:
        return VerticalLRArbiter(self.parties, self.params.logistic(), checkpoint=self.checkpoint,
                                 executor=self.executor, keypair=self.keypair).run(channel)


# ---------------------------------------------------------------------------------------------- scoring

class ScorecardGuestScorer:
    """The bank's scoring role: ``run(channel)`` returns the probability of the bad class per row; the total
    points and per-party subtotals are kept in :attr:`points_` (``{"total": …, party: …, "base": …}``)."""

    def __init__(self, part: ScorecardGuestPart, X: np.ndarray, names: Sequence[str], parties: Parties,
                 name: str = "predict", namespace: str = "") -> None:
        self.part, self.parties, self.tag = part, parties, f"{namespace}sc.{name}"
        self.B = part.bins.transform(_columns(X, names, part.features, parties.guest))
        self.points_: dict[str, np.ndarray] = {}

    def run(self, channel: Channel) -> np.ndarray:
        n = self.B.shape[0]
        channel.broadcast(self.parties.hosts, f"{self.tag}.request", {"n_rows": n})
        subtotals = {self.parties.guest: self.part.table.subtotal(self.B)}
        for host in self.parties.hosts:
            pts = channel.recv(host, f"{self.tag}.points").get("points")
            if not isinstance(pts, np.ndarray) or pts.shape != (n,) or not np.all(np.isfinite(pts)):
                raise BinningProtocolError(f"expected {n} finite point subtotals from {host!r}")
            subtotals[host] = pts
        total = self.part.table.base + sum(subtotals.values())
        self.points_ = {"total": total, "base": np.full(n, self.part.table.base), **subtotals}
        return self.part.scale.probability(total)


class ScorecardHostScorer:
    """A host's scoring role: sends the per-row subtotal of its own points; returns the number of rows."""

    def __init__(self, part: ScorecardHostPart, X: np.ndarray, names: Sequence[str], parties: Parties,
                 name: str = "predict", namespace: str = "") -> None:
        self.part, self.parties, self.tag = part, parties, f"{namespace}sc.{name}"
        self.B = part.bins.transform(_columns(X, names, part.features, part.party))

    def run(self, channel: Channel) -> int:
        request = channel.recv(self.parties.guest, f"{self.tag}.request")
        if int(request.get("n_rows", -1)) != self.B.shape[0]:
            raise BinningProtocolError(f"{self.part.party} holds {self.B.shape[0]} aligned rows to score but the "
                                       f"bank asked for {request.get('n_rows')}")
        channel.send(self.parties.guest, f"{self.tag}.points", {"points": self.part.table.subtotal(self.B)})
        return int(self.B.shape[0])
