"""Hyper-parameters of vertical SecureBoost, shared by every role of one job.

All parties of a job are built with the same :class:`BoostParams`; the guest sends them in its setup
message and each host refuses to run if its own copy differs (so a misconfigured silo fails loudly
instead of silently binning or packing differently).

What it reveals: the parameters themselves (public job configuration).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from algorithms.api import AlgorithmParams
from algorithms.base import params_from_dict
from algorithms.paillier.keys import MIN_KEY_BITS


@dataclass(frozen=True)
class BoostParams(AlgorithmParams):
    """XGBoost-style parameters (names as in ``xgboost.XGBClassifier``) plus the protocol options.

    * ``gamma`` is the minimum split gain (XGBoost's ``min_split_loss``); gains are XGBoost's
      ``GL²/(HL+λ) + GR²/(HR+λ) − G²/(H+λ)`` (no ½ factor, as in XGBoost's code).
    * ``complete_secure``: the first tree uses the guest's features only (Cheng et al., §5).
    * ``validation_fraction`` / ``n_iter_no_change``: early stopping on a stratified hold-out of the
      training rows (validation log-loss); the model keeps the trees up to the best iteration.
    * ``precision_bits``: fixed-point scale of g and h (FATE uses 52).
    * ``share_host_gains``: at the end, tell each host the gains of its own splits (for its per-feature
      gain importance). Off by default: a host then only ever receives ciphertexts, row/node ids and
      partition instructions, and its importance has split counts only.
    """

    n_estimators: int = 5
    max_depth: int = 3
    learning_rate: float = 0.3
    reg_lambda: float = 1.0
    min_child_weight: float = 1.0
    gamma: float = 0.0
    max_bin: int = 32
    complete_secure: bool = False
    validation_fraction: float = 0.0
    n_iter_no_change: int | None = None
    seed: int = 0
    precision_bits: int = 52
    share_host_gains: bool = False
    key_bits: int = MIN_KEY_BITS  # the guest's Paillier modulus

    def __post_init__(self) -> None:
        checks = [
            (self.n_estimators >= 1, "n_estimators must be >= 1"),
            (1 <= self.max_depth <= 16, "max_depth must be in [1, 16]"),
            (self.learning_rate > 0, "learning_rate must be > 0"),
            (self.reg_lambda >= 0, "reg_lambda must be >= 0"),
            (self.min_child_weight >= 0, "min_child_weight must be >= 0"),
            (self.gamma >= 0, "gamma must be >= 0"),
            (2 <= self.max_bin <= 1024, "max_bin must be in [2, 1024]"),
            (0.0 <= self.validation_fraction < 1.0, "validation_fraction must be in [0, 1)"),
            (self.n_iter_no_change is None or self.n_iter_no_change >= 1, "n_iter_no_change must be >= 1 or None"),
            (16 <= self.precision_bits <= 52, "precision_bits must be in [16, 52]"),
            (isinstance(self.key_bits, int) and self.key_bits >= MIN_KEY_BITS,
             f"key_bits must be an integer >= {MIN_KEY_BITS}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        if self.n_iter_no_change is not None and self.validation_fraction <= 0:
            raise ValueError("n_iter_no_change needs a validation_fraction > 0")

    @property
    def early_stopping(self) -> bool:
        return self.n_iter_no_change is not None and self.validation_fraction > 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BoostParams:
        return params_from_dict(cls, dict(d), ValueError, "SecureBoost parameters:")

    def require_same(self, other: dict[str, Any], peer: str) -> None:
        """Raise unless ``other`` (a peer's ``to_dict``) equals these parameters."""
        mine = self.to_dict()
        diff = sorted(k for k in set(mine) | set(other) if mine.get(k) != other.get(k))
        if diff:
            detail = ", ".join(f"{k}: ours={mine.get(k)!r} {peer}={other.get(k)!r}" for k in diff)
            raise ValueError(f"SecureBoost parameters differ from {peer}'s: {detail}")
