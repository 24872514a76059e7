"""The ``binning`` plug-in: vertical WOE/IV binning, optimal merging and IV selection as a job.

Roles: ``guest`` (the bank: labels and its own characteristics; it holds its own Paillier key) and one or
more ``host`` parties; no arbiter. Stages ``align → train`` (a binning job has nothing to score). A host's
consent to name its characteristics to the bank comes from its own silo (``ctx.extra["share_feature_names"]``),
never from the job file.

What it reveals to whom: see :mod:`algorithms.binning.protocol` and :attr:`Binning.disclosures`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from algorithms.api import Algorithm, AlgorithmParams, Disclosure, ParamsError, PartyData, Role, RoleContext, RoleSpec
from algorithms.base import Parties, Payload
from algorithms.binning.params import BinningParams
from algorithms.binning.protocol import BinningGuest, BinningHost, GuestBinning, HostBinning
from algorithms.binning.sections import binning_sections

DISCLOSURES = (
    Disclosure("arbiter", "guest", "train reply", "aggregate",
               "the bank's report sections: IV and per-bin sizes, event counts, WOE of every characteristic "
               "(host ones under tokens unless named)"),
    Disclosure("host", "guest", "*bin.setup", "public",
               "the bank's public key, the job's parameters, the id digest, the training row positions, the layout"),
    Disclosure("host", "guest", "*bin.labels", "ciphertext",
               "one Paillier ciphertext per training row packing (label, 1) under the bank's key"),
    Disclosure("guest", "host", "*bin.counts", "aggregate",
               "per anonymised characteristic and bin: the bin's size and event count (decrypted by the bank); "
               "bin order, which bin is missing, categorical flags; names and labels only with the host's consent"),
    Disclosure("host", "guest", "*bin.merge", "aggregate",
               "merge groups (index ranges) of the host's fine bins, derived from the bank's counts"),
    Disclosure("host", "guest", "*bin.selection", "aggregate",
               "which of the host's characteristics passed the IV selection"),
)


def consent(ctx: RoleContext, key: str) -> bool:
    """A host silo's own consent flag (default: withheld)."""
    value = ctx.extra.get(key, False)
    if not isinstance(value, bool):
        raise ParamsError(f"{key} must be true or false in the silo's configuration, got {value!r}")
    return value


def units(ctx: RoleContext) -> dict[str, tuple[float, float]]:
    """``(mean, scale)`` of the columns the silo standardised (``ctx.extra["column_units"]``), for labels."""
    raw = ctx.extra.get("column_units", {})
    return {str(k): (float(v[0]), float(v[1])) for k, v in raw.items()} if isinstance(raw, Mapping) else {}


class Binning(Algorithm):
    name = "binning"
    topology = "vertical"
    stages = ("align", "train")
    roles = (RoleSpec("guest", 1, 1, holds_labels=True), RoleSpec("host", 1, None))
    arbiter = None
    params_class = BinningParams
    metric_roles = ()
    disclosures = DISCLOSURES
    consents = ("share_feature_names",)
    demo_name = "binning"

    def steps(self, params: AlgorithmParams) -> int:
        return 1

    def trainer(self, ctx: RoleContext, data: PartyData | None) -> Role:
        if data is None:
            raise ParamsError("binning has no arbiter role")
        params = ctx.params
        assert isinstance(params, BinningParams)
        if ctx.role == "guest":
            if data.y is None:
                raise ParamsError(f"{ctx.party_id}: the guest of a binning job must hold the labels")
            return BinningGuest(data.X, data.feature_names, data.y, data.ids, params, ctx.parties,
                                executor=ctx.executor, namespace=ctx.namespace, checkpoint=ctx.checkpoint,
                                units=units(ctx))
        if ctx.role == "host":
            return BinningHost(data.X, data.feature_names, data.ids, params, ctx.parties, ctx.party_id,
                               share_feature_names=consent(ctx, "share_feature_names"), executor=ctx.executor,
                               namespace=ctx.namespace, checkpoint=ctx.checkpoint, units=units(ctx))
        raise ParamsError(f"binning has no role {ctx.role!r}")

    def demo_params(self, dataset: str, steps: int | None = None) -> Payload:
        return {"optimal": True} if dataset == "default_credit" else {"optimal": True, "min_bin_rows": 20}

    def report_sections(self, role: str, part: Payload) -> list[Payload]:
        return binning_sections(GuestBinning.from_dict(part)) if role == "guest" else []

    def load_part(self, role: str, part: Payload) -> Any:
        return GuestBinning.from_dict(part) if role == "guest" else HostBinning.from_dict(part)

    def predictor(self, ctx: RoleContext, part: Payload, data: PartyData) -> Role:
        raise ParamsError("a binning job has no scoring stage: train a 'scorecard' to score customers")

    def check_preflight(self, params: AlgorithmParams, features: Mapping[str, int], rows: Mapping[str, int],
                        parties: Parties | None = None) -> list[str]:
        assert isinstance(params, BinningParams)
        small = {p: n for p, n in rows.items() if n < 2 * params.min_bin_rows}
        if small:
            raise ParamsError(f"too few aligned rows for bins of at least min_bin_rows={params.min_bin_rows}: {small}")
        return []
