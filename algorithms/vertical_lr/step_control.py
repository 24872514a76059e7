"""Automatic step reduction of vertical logistic regression: the arbiter's rule for an epoch whose loss rose.

After every epoch the arbiter compares the epoch loss with that of the last accepted epoch (the reference).
If it rose (by more than ``tol``) the epoch is *rejected*: every party rolls its weights and optimizer state
back to the start of the reference epoch and multiplies its optimizer's step by ``step_reduction`` from the
next epoch on. Back to the reference epoch's start, not the rejected epoch's: an epoch's loss is summed over
its batches before each update, so the rejected epoch's loss is that of the weights it *started* from (with
full batches exactly); the reference loss belongs to the reference epoch's starting weights. Every party
holds that state already (it keeps it in memory and in its checkpoint, ``anchor``). After
``max_step_reductions`` reductions a further rise stops the job at the reference epoch (not converged,
flagged by the plug-in's training diagnostics). ``step_reduction = 0`` turns the rule off
(the loss may rise, and is only flagged).

Why roll back: a model-risk team expects the delivered model never to be worse than the best epoch it saw,
and the rollback costs nothing (no message beyond the decision; the state is already held by every party).
A rejected epoch still counts towards ``max_epochs`` (the budget is of passes over the data) and its loss
stays in the history (what happened is reported; the curve shows it).

The rule is a pure function of the loss history and the parameters: a resumed arbiter replays it over the
guest's reported history (:meth:`StepControl.replay`) and every silo restores its step scale from its own
checkpoint, so a resumed job takes exactly the decisions of an uninterrupted one.

What it reveals to whom: the decision (stop / converged / rollback / step scale) goes to every silo. Hosts
thereby learn one bit per epoch: whether the epoch loss rose over the reference one (the step scale is a function
of those bits). The loss itself stays with the guest and the arbiter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Verdict:
    """The arbiter's decision on one epoch's loss."""

    accepted: bool   # the loss did not rise over the reference (last accepted) epoch's by more than tol
    rollback: bool   # every party returns to the weights and optimizer state at the reference epoch's start
    scale: float     # the step scale every party applies from the next epoch on
    exhausted: bool  # the loss rose with no reduction left: training stops at the best epoch


@dataclass
class StepControl:
    """Halve (by ``reduction``) the step of every party when an epoch's loss rises; see the module docstring.

    ``reduction``: factor in ``(0, 1)``, or ``0`` for off. ``max_reductions``: how many times at most.
    ``tol``: a rise up to ``tol`` counts as no rise (the convergence tolerance).
    """

    reduction: float
    max_reductions: int
    tol: float
    scale: float = 1.0
    reference: float | None = None  # the loss of the last accepted epoch
    reductions: int = 0
    scales: list[float] = field(default_factory=list)    # the scale each epoch ran with
    rejected: list[int] = field(default_factory=list)    # epochs (0-based) that were undone

    @property
    def enabled(self) -> bool:
        return self.reduction > 0

    def decide(self, loss: float) -> Verdict:
        """Record epoch ``len(self.scales)``'s loss and return the verdict (which updates the state)."""
        epoch = len(self.scales)
        self.scales.append(self.scale)
        if not self.enabled or self.reference is None or loss <= self.reference + self.tol:
            self.reference = loss
            return Verdict(True, False, self.scale, False)
        self.rejected.append(epoch)
        if self.reductions >= self.max_reductions:
            return Verdict(False, True, self.scale, True)
        self.reductions += 1
        self.scale *= self.reduction
        return Verdict(False, True, self.scale, False)

    def replay(self, losses: Iterable[float]) -> StepControl:
        """Take the decisions for an already trained history (a resumed arbiter)."""
        for loss in losses:
            self.decide(float(loss))
        return self
