"""The ``scorecard`` plug-in: binning → IV selection → vertical logistic regression → per-party points.

Roles: ``guest`` (the bank), one or more ``host`` parties, and the arbiter as the regression's key holder.
Stages ``align → train → evaluate``; scoring returns the probability of the bad class at the bank from the
total points (its own + base + each host's per-row subtotal). A host's consent to name its characteristics
(``share_feature_names``) and to show its points table (``share_points_table``) comes from its own silo
(``ctx.extra``), never from the job file.

What it reveals to whom: see :mod:`algorithms.scorecard.roles` and :attr:`Scorecard.disclosures`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from algorithms.api import Algorithm, AlgorithmParams, Disclosure, ParamsError, PartyData, Role, RoleContext, RoleSpec
from algorithms.base import Parties, Payload
from algorithms.binning.plugin import DISCLOSURES as BINNING_DISCLOSURES
from algorithms.binning.plugin import consent, units
from algorithms.scorecard.params import ScorecardParams
from algorithms.scorecard.roles import (
    ScorecardArbiter,
    ScorecardGuest,
    ScorecardGuestPart,
    ScorecardGuestScorer,
    ScorecardHost,
    ScorecardHostPart,
    ScorecardHostScorer,
)
from algorithms.scorecard.sections import scorecard_sections
from algorithms.vertical_lr.params import ProtocolError, check_batch_guard

DISCLOSURES = (*BINNING_DISCLOSURES,
               Disclosure("arbiter", "guest", "train reply", "aggregate",
                          "the bank's report sections: IV/WOE tables, its points table, hosts' tables it was shown"),
               Disclosure("guest", "host", "*sc.points", "aggregate",
                          "the host's points table (per-bin points of its characteristics), only with its consent"),
               Disclosure("host", "guest", "*sc.*.request", "public", "how many rows are scored"),
               Disclosure("guest", "host", "*sc.*.points", "row_level",
                          "per scored row, the subtotal of the host's points (−factor × its partial logit)"),
               Disclosure("host", "arbiter", "vlr.*", "masked",
                          "vertical LR: public key, masked gradient residues; the host's own gradients and weights"),
               Disclosure("guest", "arbiter", "vlr.*", "masked", "vertical LR: as for the host, plus the epoch loss"),
               Disclosure("host", "guest", "vlr.*", "ciphertext", "vertical LR: the encrypted fore-gradient"),
               Disclosure("guest", "host", "vlr.*", "ciphertext", "vertical LR: the host's encrypted partial scores"),
               Disclosure("arbiter", "guest", "vlr.*", "masked", "vertical LR: masked vectors, the epoch loss"),
               Disclosure("arbiter", "host", "vlr.*", "masked", "vertical LR: masked vectors"))


class Scorecard(Algorithm):
    name = "scorecard"
    topology = "vertical"
    stages = ("align", "train", "evaluate")
    roles = (RoleSpec("guest", 1, 1, holds_labels=True), RoleSpec("host", 1, None))
    arbiter = "key_holder"
    params_class = ScorecardParams
    metric_roles = ("guest",)
    disclosures = DISCLOSURES
    consents = ("share_feature_names", "share_points_table")
    demo_name = "scorecard"

    def demo_params(self, dataset: str, steps: int | None = None) -> Payload:
        params: Payload = {"max_epochs": 6} if dataset == "default_credit" else \
            {"max_epochs": 4, "batch_size": 100, "min_bin_rows": 20, "n_bins": 6, "max_bins": 4}
        if steps is not None:
            params["max_epochs"] = int(steps)
        return params

    def report_sections(self, role: str, part: Payload) -> list[Payload]:
        return scorecard_sections(ScorecardGuestPart.from_dict(part)) if role == "guest" else []

    def export_files(self, role: str, part: Payload) -> dict[str, str]:
        """The points tables this party holds: its own and, at the bank, the hosts' it was shown."""
        if role == "guest":
            card = ScorecardGuestPart.from_dict(part)
            tables = [card.table, *(t for t in card.host_tables.values() if t is not None)]
        elif role == "host":
            tables = [ScorecardHostPart.from_dict(part).table]
        else:
            return {}
        csv_text = tables[0].to_csv() + "".join(t.to_csv().split("\n", 1)[1] for t in tables[1:])
        doc = {"scale": ScorecardGuestPart.from_dict(part).scale.to_dict() if role == "guest" else None,
               "tables": [t.to_dict() for t in tables]}
        return {"points.csv": csv_text, "points.json": json.dumps(doc, indent=1)}

    def load_part(self, role: str, part: Payload) -> Any:
        if role == "guest":
            return ScorecardGuestPart.from_dict(part)
        return ScorecardHostPart.from_dict(part) if role == "host" else part

    def steps(self, params: AlgorithmParams) -> int:
        assert isinstance(params, ScorecardParams)
        return params.max_epochs

    def trainer(self, ctx: RoleContext, data: PartyData | None) -> Role:
        params = ctx.params
        assert isinstance(params, ScorecardParams)
        if ctx.role == "arbiter":
            return ScorecardArbiter(params, ctx.parties, executor=ctx.executor, checkpoint=ctx.checkpoint)
        if data is None:
            raise ParamsError(f"{ctx.party_id}: a scorecard silo role needs its data")
        if ctx.role == "guest":
            if data.y is None:
                raise ParamsError(f"{ctx.party_id}: the guest of a scorecard job must hold the labels")
            return ScorecardGuest(data.X, data.feature_names, data.y, data.ids, params, ctx.parties,
                                  executor=ctx.executor, namespace=ctx.namespace, checkpoint=ctx.checkpoint,
                                  units=units(ctx))
        if ctx.role == "host":
            return ScorecardHost(data.X, data.feature_names, data.ids, params, ctx.parties, ctx.party_id,
                                 share_feature_names=consent(ctx, "share_feature_names"),
                                 share_points_table=consent(ctx, "share_points_table"),
                                 executor=ctx.executor, namespace=ctx.namespace, checkpoint=ctx.checkpoint,
                                 units=units(ctx))
        raise ParamsError(f"scorecard has no role {ctx.role!r}")

    def predictor(self, ctx: RoleContext, part: Payload, data: PartyData) -> Role:
        name = ctx.namespace or "predict"  # one scoring per namespace (e.g. eval.train, eval.test)
        if ctx.role == "guest":
            return ScorecardGuestScorer(ScorecardGuestPart.from_dict(part), data.X, data.feature_names, ctx.parties,
                                        name=name)
        if ctx.role == "host":
            return ScorecardHostScorer(ScorecardHostPart.from_dict(part), data.X, data.feature_names, ctx.parties,
                                       name=name)
        raise ParamsError(f"scorecard scoring has no role {ctx.role!r}")

    def check_preflight(self, params: AlgorithmParams, features: Mapping[str, int], rows: Mapping[str, int],
                        parties: Parties | None = None) -> list[str]:
        assert isinstance(params, ScorecardParams)
        n = min(rows.values(), default=0)
        if n < 2 * params.min_bin_rows:
            raise ParamsError(f"too few aligned rows ({n}) for bins of at least min_bin_rows={params.min_bin_rows}")
        # a host's indicator columns: at most (max_bins + 1 missing − 1 reference) per characteristic; the
        # regression's own guard refuses at run time on the actual columns, this only warns on the bound
        width = (params.max_bins if params.optimal else params.n_bins) + 1
        try:
            hosts = parties.hosts if parties is not None else tuple(features)
            guest = parties.guest if parties is not None else None
            check_batch_guard(n, params.batch_size, {h: features[h] * width for h in hosts if h in features},
                              features.get(guest, 0) if guest else 0)  # the bank's WOE columns: one each
        except ProtocolError as exc:
            return [f"{exc} (bound: up to {width} indicator columns per host characteristic; the regression "
                    "checks the actual columns)"]
        return []

