"""Parameters of federated distillation (one job, every party).

What it reveals: the parameters are public job configuration (including which model family each silo
runs, which the silos choose and announce).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from algorithms.api import AlgorithmParams, ParamsError
from algorithms.distillation.consensus import Weighting
from algorithms.distillation.families import FAMILIES

ReferenceSource = Literal["arbiter", "synthetic"]


@dataclass(frozen=True)
class DistillationParams(AlgorithmParams):
    """``rounds`` of soft-label exchange on a reference set every silo may see.

    * ``families``: model family per silo (``gbt``, ``logistic``, ``scorecard``, ``mlp``); others use
      ``default_family``.
    * ``reference``: ``"arbiter"`` — unlabelled rows the arbiter supplies (``reference_path``, a CSV whose
      columns are the silos' feature names; an ``id`` column is ignored, a label column is refused) — or
      ``"synthetic"`` — ``n_synthetic`` rows drawn from the federated feature means and variances.
    * ``weighting`` / ``temperature``: see :mod:`algorithms.distillation.consensus`.
    * ``leave_one_out``: each contributing silo distils the consensus of the *other* contributors (its own
      soft labels teach it nothing new and pull the consensus towards its current model); newcomers, and a
      silo that is the only contributor of a round, receive the consensus of all.
    * ``soft_weight``: weight of the reference rows (per row) against a silo's own labelled rows.
    * ``warm_start``: a family that can continue training (the MLP) distils by fine-tuning its current model
      (the local-only one, then the last accepted one) for its usual epochs instead of fitting from random
      weights; the other families always fit afresh (see :mod:`algorithms.distillation.families`).
    * ``validation_fraction``: share of each silo's training rows held out for its accept-if-better check
      (the distilled model replaces the current one only if this held-out AUC does not get worse).
    * ``newcomers``: silos that receive the consensus and fine-tune on it but do not contribute soft labels
      (a late joiner with few labels).
    * ``min_clients`` / ``round_timeout``: a round closes when every live silo answered or the timeout
      passed; it needs at least ``min_clients`` answers, else the job fails naming the silos missing.
    """

    rounds: int = 2
    families: dict[str, str] = field(default_factory=dict)
    default_family: str = "logistic"
    reference: ReferenceSource = "arbiter"
    reference_path: str | None = None
    n_synthetic: int = 3000
    weighting: Weighting = "quality"
    temperature: float | None = None
    leave_one_out: bool = False
    soft_weight: float = 1.0
    warm_start: bool = False
    validation_fraction: float = 0.2
    newcomers: tuple[str, ...] = ()
    min_clients: int = 1
    round_timeout: float = 600.0
    seed: int = 42

    def __post_init__(self) -> None:
        object.__setattr__(self, "newcomers", tuple(self.newcomers))
        object.__setattr__(self, "families", dict(self.families))
        for party, fam in {**self.families, "default_family": self.default_family}.items():
            if fam not in FAMILIES:
                raise ParamsError(f"families.{party} = {fam!r}: known families are {', '.join(sorted(FAMILIES))}")
        for flag in ("warm_start", "leave_one_out"):
            if not isinstance(getattr(self, flag), bool):
                raise ParamsError(f"{flag} must be true or false, not {getattr(self, flag)!r}")
        if self.rounds < 1:
            raise ParamsError(f"rounds must be >= 1, not {self.rounds}")
        if self.reference not in ("arbiter", "synthetic"):
            raise ParamsError(f"reference must be 'arbiter' or 'synthetic', not {self.reference!r}")
        if self.weighting not in ("quality", "count", "uniform"):
            raise ParamsError(f"weighting must be quality, count or uniform, not {self.weighting!r}")
        if self.temperature is not None and not 0.0 < self.temperature <= 1.0:
            raise ParamsError(f"temperature must be in (0, 1], not {self.temperature}")
        if not 0.0 < self.validation_fraction < 0.9:
            raise ParamsError(f"validation_fraction must be in (0, 0.9), not {self.validation_fraction}")
        if self.soft_weight < 0 or self.min_clients < 1 or self.round_timeout <= 0 or self.n_synthetic < 10:
            raise ParamsError("soft_weight >= 0, min_clients >= 1, round_timeout > 0 and n_synthetic >= 10 required")

    def family_of(self, party: str) -> str:
        return self.families.get(party, self.default_family)
