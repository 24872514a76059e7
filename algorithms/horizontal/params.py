"""Parameters of a horizontal (FedAvg-family) job, shared by the aggregator and every client.

One frozen dataclass per strategy family: :class:`HorizontalParams` holds what every strategy uses (local
model, local training, rounds, sampling, deadlines, preprocessing, personalisation); FedProx, SCAFFOLD and
the server optimisers add their own fields in subclasses (see their modules). Unknown names are refused with
the nearest valid one (:meth:`algorithms.api.AlgorithmParams.from_dict`).

What it reveals to whom: the parameters travel to every party of the job (they are the job's public
configuration); they say nothing about any party's data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from algorithms.api import AlgorithmParams, ParamsError

ModelKind = Literal["logistic", "mlp"]
DPMode = Literal["none", "record", "client"]
DPNoiseAt = Literal["aggregator", "clients"]
LocalOptimizer = Literal["sgd", "adam"]


class FederationError(RuntimeError):
    """A horizontal job cannot go on (too few clients, refused schema, peer gone); the message names who."""


@dataclass(frozen=True)
class HorizontalParams(AlgorithmParams):
    """Hyper-parameters of a horizontal job.

    Local model: ``model`` (``"logistic"`` or ``"mlp"`` with ``hidden`` units per layer), trained for
    ``local_epochs`` passes over the client's rows per round with mini-batches of ``batch_size`` rows
    (``0``: full batch), ``optimizer`` ``"sgd"`` or ``"adam"`` (state reset each round) at
    ``learning_rate``, L2 penalty ``l2`` (on weights, not intercepts/biases).

    Rounds and participation: ``rounds`` rounds; each samples ``max(ceil(fraction_fit · available),
    min_fit_clients)`` of the clients that are live (seeded by ``(seed, round)``). A round closes when
    every sampled client has answered, or when ``round_timeout`` seconds passed and at least
    ``min_updates`` updates arrived (``close_on_quorum``: as soon as ``min_updates`` arrived). With fewer,
    the round is retried ``round_retries`` times, then the job fails naming the missing clients. Before
    round 1 the aggregator waits up to ``join_timeout`` seconds for every listed client (at least
    ``min_fit_clients`` must join); after the last round it waits up to ``rejoin_grace`` seconds for clients
    that dropped out (not those that left) to rejoin, so they get the final model too.

    Preprocessing (federated, before round 1): ``standardize`` numeric columns with the pooled mean and
    standard deviation; ``categorical`` columns (category codes) are one-hot encoded over the union of
    the clients' categories.

    Personalisation (after the last round, at every client, local only): ``fine_tune_epochs`` local
    epochs from the global model; ``personal_head`` (MLP only, FedPer): the output layer starts from the
    client's own head every round; ``baseline_epochs`` epochs of a local-only model for comparison
    (``0``: none).

    Guard: a client with fewer than ``min_client_rows`` rows (but some) contributes a zero-weight update —
    one local step on a handful of rows lets the aggregator reconstruct them (for one row of logistic
    regression, ``x = Δcoef / Δintercept``; see the attack test).

    Differential privacy (:mod:`algorithms.dp.strategy`): ``dp = "record"`` trains locally with DP-SGD
    (per-example clip ``dp_clip``), ``dp = "client"`` is DP-FedAvg (update clip ``dp_clip``, adaptive with
    ``dp_adaptive_clip``, noise added at ``dp_noise_at``); the noise multiplier is ``dp_noise_multiplier`` or
    calibrated for the target ``(dp_epsilon, dp_delta)`` over the job's rounds. ``dp_seed`` fixes the noise
    (tests only; by default it is seeded from OS entropy).

    ``secure_aggregation``: every round's contributions are summed by SecAgg (:mod:`algorithms.secagg.
    horizontal`): the aggregator learns only their sum and who dropped. Needs at least 3 clients per round and
    each silo's certificate signer (the silo passes it to the client role).
    """

    model: ModelKind = "logistic"
    hidden: tuple[int, ...] = (16,)
    rounds: int = 20
    local_epochs: int = 1
    batch_size: int = 64
    learning_rate: float = 0.05
    optimizer: LocalOptimizer = "sgd"
    l2: float = 0.0
    fraction_fit: float = 1.0
    min_fit_clients: int = 2
    min_updates: int = 2
    close_on_quorum: bool = False
    round_timeout: float = 300.0
    round_retries: int = 1
    join_timeout: float = 120.0
    rejoin_grace: float = 30.0
    standardize: bool = True
    categorical: tuple[str, ...] = ()
    fine_tune_epochs: int = 0
    personal_head: bool = False
    baseline_epochs: int = 0
    min_client_rows: int = 10
    seed: int = 42
    dp: DPMode = "none"
    dp_epsilon: float = 0.0
    dp_delta: float = 1e-5
    dp_clip: float = 1.0
    dp_noise_multiplier: float = 0.0
    dp_adaptive_clip: bool = False
    dp_noise_at: DPNoiseAt = "aggregator"
    dp_seed: int | None = None
    secure_aggregation: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        object.__setattr__(self, "categorical", tuple(str(c) for c in self.categorical))
        if self.model not in ("logistic", "mlp"):
            raise ParamsError(f"model must be 'logistic' or 'mlp', not {self.model!r}")
        if self.optimizer not in ("sgd", "adam"):
            raise ParamsError(f"optimizer must be 'sgd' or 'adam', not {self.optimizer!r}")
        for name in ("rounds", "local_epochs", "min_fit_clients", "min_updates"):
            if int(getattr(self, name)) < 1:
                raise ParamsError(f"{name} must be at least 1, not {getattr(self, name)!r}")
        for name in ("batch_size", "round_retries", "fine_tune_epochs", "baseline_epochs", "min_client_rows"):
            if int(getattr(self, name)) < 0:
                raise ParamsError(f"{name} must be >= 0, not {getattr(self, name)!r}")
        if not 0.0 < self.fraction_fit <= 1.0:
            raise ParamsError(f"fraction_fit must be in (0, 1], not {self.fraction_fit!r}")
        if self.min_updates > self.min_fit_clients:
            raise ParamsError(f"min_updates ({self.min_updates}) cannot exceed min_fit_clients "
                              f"({self.min_fit_clients})")
        if not (math.isfinite(self.rejoin_grace) and self.rejoin_grace >= 0):
            raise ParamsError(f"rejoin_grace must be >= 0, not {self.rejoin_grace!r}")
        for name in ("learning_rate", "round_timeout", "join_timeout"):
            value = float(getattr(self, name))
            if not (math.isfinite(value) and value > 0):
                raise ParamsError(f"{name} must be a positive number, not {getattr(self, name)!r}")
        if self.l2 < 0 or not math.isfinite(self.l2):
            raise ParamsError(f"l2 must be >= 0, not {self.l2!r}")
        if self.model == "mlp" and (not self.hidden or min(self.hidden) < 1):
            raise ParamsError(f"hidden must list positive layer widths, not {self.hidden!r}")
        if self.personal_head and self.model != "mlp":
            raise ParamsError("personal_head (FedPer) needs model = 'mlp' (logistic regression has no body)")
        self._check_dp()
        if self.secure_aggregation and self.min_updates < 3:
            raise ParamsError("secure_aggregation needs min_updates >= 3 (a sum of two reveals each to the other)")

    def _check_dp(self) -> None:
        """Differential privacy options (:mod:`algorithms.dp.strategy`)."""
        if self.dp not in ("none", "record", "client"):
            raise ParamsError(f"dp must be 'none', 'record' or 'client', not {self.dp!r}")
        if self.dp_noise_at not in ("aggregator", "clients"):
            raise ParamsError(f"dp_noise_at must be 'aggregator' or 'clients', not {self.dp_noise_at!r}")
        if self.dp == "none":
            return
        if not (self.dp_epsilon > 0 or self.dp_noise_multiplier > 0):
            raise ParamsError("dp needs dp_epsilon > 0 (calibrates the noise) or dp_noise_multiplier > 0")
        if not 0 < self.dp_delta < 1 or not self.dp_clip > 0:
            raise ParamsError(f"dp needs 0 < dp_delta < 1 and dp_clip > 0, not {self.dp_delta!r}, {self.dp_clip!r}")

    def sample_size(self, available: int) -> int:
        """How many of ``available`` live clients a round samples."""
        return min(available, max(math.ceil(self.fraction_fit * available), self.min_fit_clients))


__all__ = ["FederationError", "HorizontalParams", "LocalOptimizer", "ModelKind"]
