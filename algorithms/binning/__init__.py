"""Vertical binning toolkit: per-party bins, WOE/IV of host characteristics under the bank's Paillier key,
federated optimal merging and IV selection (see :mod:`algorithms.binning.protocol` for who learns what).
"""

from algorithms.binning.bins import CharacteristicBins, FeatureBins, UnknownLevelError
from algorithms.binning.merge import optimal_groups
from algorithms.binning.params import BinningParams
from algorithms.binning.protocol import (
    BinningGuest,
    BinningHost,
    BinningProtocolError,
    BinTooSmallError,
    Characteristic,
    GuestBinning,
    HostBinning,
)
from algorithms.binning.selection import Candidate, select
from algorithms.binning.woe import WoeTable, plain_woe, woe_table

__all__ = [
    "BinTooSmallError", "BinningGuest", "BinningHost", "BinningParams", "BinningProtocolError", "Candidate",
    "Characteristic", "CharacteristicBins", "FeatureBins", "GuestBinning", "HostBinning", "UnknownLevelError",
    "WoeTable", "optimal_groups", "plain_woe", "select", "woe_table",
]
