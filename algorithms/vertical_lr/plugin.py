"""Vertical logistic regression as a plug-in of :mod:`algorithms.api` (catalogue name ``vertical_lr``).

Topology vertical: ``align`` (PSI) → ``train`` → ``evaluate``. Silo roles: one ``guest`` (labels, the job
initiator) and one or more ``host`` parties; the arbiter is the Paillier key holder. Steps are epochs.
The guest reports the evaluation metrics (it holds the labels and receives the scores).

What it reveals to whom (the protocol in :mod:`algorithms.vertical_lr`; the ledger in
:attr:`VerticalLR.disclosures`): the arbiter decrypts only masked residues and learns row and feature
counts, the per-epoch loss and stop/continue (and ``‖Δw‖²`` per silo in weight-diff mode); a host learns
its own gradient per batch, receives ciphertexts under the arbiter's key and, with automatic step reduction
(``step_reduction > 0``), one bit per epoch: whether the epoch loss rose (the epoch is then undone by every
party and the step scaled, :mod:`algorithms.vertical_lr.step_control`); the guest learns its own
gradient per batch and the loss during training, and each host's per-row partial score when scoring.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from algorithms.api import (
    Algorithm,
    AlgorithmParams,
    Disclosure,
    ParamsError,
    PartyData,
    Role,
    RoleContext,
    RoleSpec,
)
from algorithms.base import Parties, Payload
from algorithms.dp.label import label_dp_epsilon
from algorithms.vertical_lr.approximation import fore_gradient_loss
from algorithms.vertical_lr.arbiter import VerticalLRArbiter
from algorithms.vertical_lr.guest import VerticalLRGuest
from algorithms.vertical_lr.host import VerticalLRHost
from algorithms.vertical_lr.model import ArbiterSummary, GuestModel, HostModel
from algorithms.vertical_lr.params import ProtocolError, VerticalLRParams, check_batch_guard
from algorithms.vertical_lr.predict import VerticalLRGuestPredictor, VerticalLRHostPredictor

_DEMO = {"default_credit": {"max_epochs": 2},  # package defaults: Adam 0.1, lr_decay 0.3, batches of 1024
         "breast": {"max_epochs": 3, "batch_size": 128, "learning_rate": 0.15, "optimizer": "adam"}}


class VerticalLR(Algorithm):
    """Vertical (hetero) logistic regression with Paillier; the arbiter holds the key."""

    name = "vertical_lr"
    topology = "vertical"
    stages = ("align", "train", "evaluate")
    roles = (RoleSpec("guest", 1, 1, holds_labels=True), RoleSpec("host", 1, None))
    arbiter = "key_holder"
    params_class = VerticalLRParams
    metric_roles = ("guest",)
    demo_name = "credit-lr"
    disclosures: ClassVar[tuple[Disclosure, ...]] = (
        Disclosure("arbiter", "guest", "vlr.hello", "public", "row count, feature count, the job parameters, "
                   "the latest checkpointed epoch and the loss history"),
        Disclosure("arbiter", "host", "vlr.hello", "public", "row count, feature count, latest checkpointed epoch"),
        Disclosure("guest", "arbiter", "vlr.setup", "public",
                   "public key, parameters, start epoch, every silo's feature count (for the batch guard)"),
        Disclosure("host", "arbiter", "vlr.setup", "public",
                   "public key, parameters, start epoch, every silo's feature count (for the batch guard)"),
        Disclosure("guest", "host", "vlr.e*.b*.forward", "ciphertext",
                   "[[u_k]] and [[Σ u_k²]] under the arbiter's key"),
        Disclosure("guest", "host", "vlr.e*.b*.cross", "ciphertext", "re-randomised [[Σ u_k·u_l]] cross terms"),
        Disclosure("host", "host", "vlr.e*.b*.peer_forward", "ciphertext", "a later host's [[u_l]]"),
        Disclosure("guest", "host", "vlr.e*.loss_term", "ciphertext",
                   "[[Σ u_kᵀd]] over the epoch under the arbiter's key (local loss), added into the masked total"),
        Disclosure("host", "guest", "vlr.e*.b*.fore_gradient", "ciphertext",
                   "re-randomised fore-gradient [[d]] under the arbiter's key"),
        Disclosure("arbiter", "guest", "vlr.e*.b*.gradient", "masked",
                   "the guest's gradient plus a uniform mask, re-randomised (no scale in the header)"),
        Disclosure("arbiter", "host", "vlr.e*.b*.gradient", "masked",
                   "a host's gradient plus a uniform mask, re-randomised (no scale in the header)"),
        Disclosure("guest", "arbiter", "vlr.e*.b*.gradient.plain", "masked",
                   "the decrypted residues of its own masked gradient: its own gradient per batch"),
        Disclosure("host", "arbiter", "vlr.e*.b*.gradient.plain", "masked",
                   "the decrypted residues of its own masked gradient: its own gradient per batch"),
        Disclosure("arbiter", "guest", "vlr.e*.loss", "masked",
                   "the epoch's encrypted loss terms combined into one ciphertext, masked and re-randomised"),
        Disclosure("guest", "arbiter", "vlr.e*.loss.plain", "masked",
                   "its own masked epoch loss, decrypted: one value per epoch, never a host's Σu² on its own"),
        Disclosure("arbiter", "guest", "vlr.e*.report", "aggregate", "the epoch's mean loss"),
        Disclosure("arbiter", "*", "vlr.e*.weight_diff", "aggregate", "‖Δw_p‖² per silo (weight-diff mode)"),
        Disclosure("*", "arbiter", "vlr.e*.decision", "public",
                   "stop / continue, converged, and the step control's rollback flag and step scale: one bit per "
                   "epoch on whether the epoch loss rose (step_reduction > 0)"),
        Disclosure("host", "guest", "vlr.*.request", "public", "how many rows are scored"),
        Disclosure("guest", "host", "vlr.*.partial", "row_level", "the host's partial score X_k·w_k per scored row"),
    )

    def steps(self, params: AlgorithmParams) -> int:
        assert isinstance(params, VerticalLRParams)
        return params.max_epochs

    def trainer(self, ctx: RoleContext, data: PartyData | None) -> Role:
        params = ctx.params
        assert isinstance(params, VerticalLRParams)
        if ctx.role == "arbiter":
            return VerticalLRArbiter(parties=ctx.parties, params=params, checkpoint=ctx.checkpoint,
                                     executor=ctx.executor)
        assert data is not None
        if ctx.role == "guest":
            assert data.y is not None
            return VerticalLRGuest(data.X, data.y, feature_names=list(data.feature_names), parties=ctx.parties,
                                   params=params, checkpoint=ctx.checkpoint, executor=ctx.executor)
        return VerticalLRHost(data.X, feature_names=list(data.feature_names), parties=ctx.parties, params=params,
                              checkpoint=ctx.checkpoint, executor=ctx.executor)

    def predictor(self, ctx: RoleContext, part: Payload, data: PartyData) -> Role:
        name = ctx.namespace or "predict"
        if ctx.role == "guest":
            return VerticalLRGuestPredictor(GuestModel.from_dict(part), data.X, parties=ctx.parties, name=name)
        return VerticalLRHostPredictor(HostModel.from_dict(part), data.X, parties=ctx.parties, name=name)

    def check_preflight(self, params: AlgorithmParams, features: Mapping[str, int], rows: Mapping[str, int],
                        parties: Parties | None = None) -> list[str]:
        """The batch-size guard on the silos' raw counts (the arbiter and every silo check it again on aligned
        rows): with batches no larger than a host's feature count, that host could solve its gradient for the
        labels; no larger than the guest's features + 1, the guest could solve its own for the hosts' scores."""
        assert isinstance(params, VerticalLRParams)
        if parties is None or not rows:
            return []
        try:
            check_batch_guard(min(rows.values()), params.batch_size, {h: features.get(h, 0) for h in parties.hosts},
                              features.get(parties.guest, 0))
        except ProtocolError as exc:
            raise ParamsError(str(exc)) from exc
        smallest = min(rows.values())
        if params.batch_size is not None and params.batch_size >= smallest:
            return [f"batch_size = {params.batch_size} is at least the {smallest} rows of the smallest silo (the "
                    "training rows after alignment and hold-out are fewer): every epoch is a single full-batch "
                    "step, so training needs many more epochs; lower batch_size for mini-batch steps"]
        return []

    def privacy_notes(self, params: AlgorithmParams, metrics: Payload, arbiter_part: Payload | None) -> list[str]:
        """Label DP on the fore-gradient (``label_dp_noise``): ε for the planned epochs (an upper bound)."""
        assert isinstance(params, VerticalLRParams)
        if params.label_dp_noise <= 0:
            return []
        eps = label_dp_epsilon(params.label_dp_noise, params.max_epochs)
        return [f"Label DP against the hosts: Gaussian noise (multiplier {params.label_dp_noise:g}, sensitivity 1) "
                f"on every fore-gradient; ε = {eps:.4f} at δ = 1e-05 for {params.max_epochs} epochs (dp-accounting "
                "PLD), with the guest's own scores treated as given."]

    def load_part(self, role: str, part: Payload) -> Any:
        cls = {"guest": GuestModel, "host": HostModel, "arbiter": ArbiterSummary}[role]
        return cls.from_dict(part)

    def demo_params(self, dataset: str, steps: int | None = None) -> Payload:
        params: Payload = dict(_DEMO.get(dataset, {}))
        if steps is not None:
            params["max_epochs"] = int(steps)
        return params

    def training_diagnostics(self, params: AlgorithmParams, arbiter_part: Payload | None) -> Payload:
        """The loss curve, and warnings when the loss rose, the step was reduced or training stopped unconverged."""
        assert isinstance(params, VerticalLRParams)
        if not arbiter_part:
            return {}
        summary = ArbiterSummary.from_dict(arbiter_part)
        losses = summary.losses
        warnings = []
        if summary.rejected:  # step control: every rise was undone, say where and whether it recovered
            warnings.append(step_control_warning(params, summary))
        else:
            rises = [(i, losses[i - 1], losses[i]) for i in range(1, len(losses))
                     if losses[i] > losses[i - 1] + params.tol]
            if rises:
                i, before, after = rises[0]
                warnings.append(f"the training loss rose in {len(rises)} of {len(losses) - 1} epochs (first in epoch "
                                f"{i}: {before:.4f} -> {after:.4f}); the step is too large for this data: lower "
                                f"learning_rate (now {params.learning_rate:g}), raise lr_decay (now "
                                f"{params.lr_decay:g}) or set step_reduction = 0.5 (automatic step reduction)")
        if not summary.converged and params.early_stopping == "loss":
            kept = [v for i, v in enumerate(losses) if i not in summary.rejected]  # undone epochs left out
            last = abs(kept[-1] - kept[-2]) if len(kept) > 1 else float("nan")
            warnings.append(f"training stopped after {len(losses)} of max_epochs = {params.max_epochs} epochs without "
                            f"converging (last loss change {last:.2g} > tol {params.tol:g}); the model may be "
                            "under-fitted: raise max_epochs or check the loss curve")
        kind = ("second-order expansion" if fore_gradient_loss(params.approximation, params.label_dp_noise)
                else "Taylor surrogate" if params.approximation == "taylor" else "upper bound")
        return {"curve": {"name": f"training loss ({kind})", "values": losses}, "warnings": warnings}


def step_control_warning(params: VerticalLRParams, summary: ArbiterSummary) -> str:
    """One line on the step reductions: where the step was halved, whether training recovered."""
    losses, rejected, scales = summary.losses, summary.rejected, summary.step_scales
    factor = "halved" if params.step_reduction == 0.5 else f"scaled by {params.step_reduction:g}"
    reduced = rejected[: params.max_step_reductions]
    where = ", ".join(f"epoch {e} ({_reference(losses, rejected, e):.4f} -> {losses[e]:.4f})" for e in reduced)
    line = (f"the training loss rose and the step was {factor} at {where}: each such epoch was undone by every "
            f"party (back to the start of the last accepted epoch)")
    last = len(losses) - 1
    final_scale = scales[-1] * (params.step_reduction if last in reduced else 1.0) if scales else 1.0
    if len(rejected) > params.max_step_reductions:
        line += (f"; it rose again at epoch {rejected[params.max_step_reductions]} after {params.max_step_reductions} "
                 "reductions, so training stopped at the last accepted epoch: the step is far too large for this "
                 f"data, lower learning_rate (now {params.learning_rate:g})")
    elif last in rejected:
        line += (f"; it never recovered (the last epoch was undone too, final step scale {final_scale:g}): the model "
                 f"is the last accepted epoch's, lower learning_rate (now {params.learning_rate:g})")
    else:
        line += (f"; the loss then fell at step scale {final_scale:g}: consider learning_rate = "
                 f"{params.learning_rate * final_scale:g}")
    return line


def _reference(losses: list[float], rejected: list[int], epoch: int) -> float:
    """The loss of the last accepted epoch before ``epoch`` (what its loss was compared with)."""
    accepted = [i for i in range(epoch) if i not in rejected]
    return losses[accepted[-1]] if accepted else float("nan")
