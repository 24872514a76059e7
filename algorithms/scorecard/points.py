"""Points: the scale (PDO, base score, base odds) and each party's points table.

``score = offset + factor·ln(good:bad odds) = offset − factor·logit(p_bad)``. With the logistic model
``logit = b + Σ_j w_j·x_j`` the score splits into base points ``offset − factor·b`` (the bank's) and, per
characteristic and bin, ``−factor·w_j·WOE_jb`` for a WOE-coded characteristic (the bank's) or
``−factor·θ_jb`` for a characteristic coded as bin indicators with coefficients ``θ`` (a host's; its
reference bin scores 0). toad spreads the base points evenly over the characteristics
(``(offset − factor·b) / k`` added to every bin); :meth:`PointsTable.spread` gives that form.

What it reveals to whom: nothing by itself; each party builds its table from its own coefficients.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class PointsScale:
    pdo: float = 20.0
    base_score: float = 600.0
    base_odds: float = 50.0

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2.0)

    @property
    def offset(self) -> float:
        return self.base_score - self.factor * math.log(self.base_odds)

    def score(self, logit: np.ndarray) -> np.ndarray:
        """Points of a bad-class logit."""
        return self.offset - self.factor * np.asarray(logit, dtype=np.float64)

    def probability(self, score: np.ndarray) -> np.ndarray:
        """Probability of the bad class (label 1) at ``score`` points."""
        return 1.0 / (1.0 + np.exp((np.asarray(score, dtype=np.float64) - self.offset) / self.factor))

    def to_dict(self) -> dict[str, float]:
        return {"pdo": self.pdo, "base_score": self.base_score, "base_odds": self.base_odds,
                "factor": self.factor, "offset": self.offset}


@dataclass
class CharacteristicPoints:
    """Points of every bin of one characteristic (bins in the characteristic's order)."""

    name: str
    labels: list[str]
    points: list[float]
    coefficient: list[float]   # w_j·WOE_jb (WOE coding) or θ_jb (indicators), per bin
    woe: list[float] | None = None

    def lookup(self, bins: np.ndarray) -> np.ndarray:
        return np.asarray(self.points, dtype=np.float64)[np.asarray(bins, dtype=np.int64)]


@dataclass
class PointsTable:
    """One party's points table (``base`` is non-zero only at the bank)."""

    party: str
    characteristics: list[CharacteristicPoints] = field(default_factory=list)
    base: float = 0.0

    def subtotal(self, B: np.ndarray) -> np.ndarray:
        """Per-row points of this party's characteristics (without the base points)."""
        out = np.zeros(B.shape[0])
        for j, c in enumerate(self.characteristics):
            out += c.lookup(B[:, j])
        return out

    def spread(self, n_characteristics: int) -> dict[str, list[float]]:
        """toad's form: base points divided evenly over ``n_characteristics`` and added to every bin."""
        share = self.base / n_characteristics
        return {c.name: [p + share for p in c.points] for c in self.characteristics}

    def rows(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if self.base:
            out.append({"party": self.party, "characteristic": "(base points)", "bin": "", "woe": "",
                        "points": round(self.base, 6)})
        for c in self.characteristics:
            for b, (label, pts) in enumerate(zip(c.labels, c.points, strict=True)):
                out.append({"party": self.party, "characteristic": c.name, "bin": label,
                            "woe": "" if c.woe is None else round(c.woe[b], 6), "points": round(pts, 6)})
        return out

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=["party", "characteristic", "bin", "woe", "points"])
        writer.writeheader()
        writer.writerows(self.rows())
        return buf.getvalue()

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_dict(self) -> dict[str, Any]:
        return {"party": self.party, "base": self.base,
                "characteristics": [{"name": c.name, "labels": c.labels, "points": c.points,
                                     "coefficient": c.coefficient, "woe": c.woe} for c in self.characteristics]}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> PointsTable:
        return PointsTable(d["party"], [CharacteristicPoints(c["name"], list(c["labels"]),
                                                             [float(v) for v in c["points"]],
                                                             [float(v) for v in c["coefficient"]],
                                                             None if c["woe"] is None else [float(v) for v in c["woe"]])
                                        for c in d["characteristics"]], float(d["base"]))


def woe_points(scale: PointsScale, name: str, labels: list[str], weight: float, woe: np.ndarray
               ) -> CharacteristicPoints:
    """A WOE-coded characteristic with coefficient ``weight``: ``−factor·weight·WOE_b`` per bin."""
    contrib = float(weight) * np.asarray(woe, dtype=np.float64)
    return CharacteristicPoints(name, labels, (-scale.factor * contrib).tolist(), contrib.tolist(),
                                np.asarray(woe, dtype=np.float64).tolist())


def indicator_points(scale: PointsScale, name: str, labels: list[str], theta: np.ndarray) -> CharacteristicPoints:
    """A characteristic coded as bin indicators with per-bin coefficients ``theta`` (0 at the reference)."""
    theta = np.asarray(theta, dtype=np.float64)
    return CharacteristicPoints(name, labels, (-scale.factor * theta + 0.0).tolist(), theta.tolist())
