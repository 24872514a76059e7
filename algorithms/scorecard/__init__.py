"""Federated scorecards: binned characteristics, vertical logistic regression, per-party points tables
(see :mod:`algorithms.scorecard.roles` for who learns what).
"""

from algorithms.scorecard.params import ScorecardParams
from algorithms.scorecard.points import CharacteristicPoints, PointsScale, PointsTable
from algorithms.scorecard.roles import (
    ScorecardArbiter,
    ScorecardGuest,
    ScorecardGuestPart,
    ScorecardGuestScorer,
    ScorecardHost,
    ScorecardHostPart,
    ScorecardHostScorer,
)

__all__ = [
    "CharacteristicPoints", "PointsScale", "PointsTable", "ScorecardArbiter", "ScorecardGuest", "ScorecardGuestPart",
    "ScorecardGuestScorer", "ScorecardHost", "ScorecardHostPart", "ScorecardHostScorer", "ScorecardParams",
]
