"""The one interface every federated algorithm implements, and the types its roles receive.

An algorithm is a plug-in: one module (e.g. ``algorithms/vertical_lr/plugin.py``) defines a subclass of
:class:`Algorithm` and one line in :mod:`algorithms.catalogue` names it. The silo, the arbiter, the CLI
and the transport only ever talk to this interface; none of them names an algorithm.

A plug-in declares

* its **topology** and **stages** (vertical: ``align → train → evaluate``; horizontal: ``train → evaluate``),
* the **silo roles** it has (``guest``/``host``, or ``client``) with how many parties each may have, and
  whether (and as what) the arbiter takes part (``key_holder``, ``aggregator`` or not at all),
* a typed, frozen **Params** dataclass (parsed once; ``to_dict``/``from_dict``; unknown names refused with
  the nearest valid name),
* the number of **steps** (epochs / trees / rounds) a job runs, for progress and checkpoints,
* factories for the **trainer** and **predictor** role of each party, and how a party's private **model
  part** is turned into JSON types and back,
* which roles **report evaluation metrics** and how several metric parties' replies combine
  (:meth:`Algorithm.combine_metrics`),
* optional hooks with defaults: the ``align`` stage's role (:meth:`Algorithm.aligner`, PSI), a
  :meth:`~Algorithm.check_preflight` before any data moves, the job's Paillier :meth:`~Algorithm.key_bits`,
  and the demo's parameters, and
* the **disclosures**: for every message a role may receive, what it is allowed to learn from it (the
  privacy ledger and the transcript tests check every received message against these).

Every role gets the same two things from the silo: a :class:`PartyData` (aligned ids, the preprocessed
feature matrix, feature names, labels where held) and a :class:`RoleContext` (who it is, who the others
are, its parameters, seed, checkpoint, executor and message-tag namespace).

What it reveals to whom: nothing by itself; each plug-in's module docstring and :attr:`Algorithm.disclosures`
say what its protocol reveals.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Literal, Self, TypeVar

import numpy as np

from algorithms.base import Checkpoint, Parties, Payload, Role

Topology = Literal["vertical", "horizontal"]
ArbiterKind = Literal["key_holder", "aggregator"]
Stage = Literal["align", "train", "evaluate"]

P = TypeVar("P", bound="AlgorithmParams")


class ParamsError(ValueError):
    """A job's parameters are unknown, of the wrong type or out of range."""


def nearest(name: str, valid: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest valid name, or ``''`` when none is close."""
    match = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def refuse_unknown(given: Iterable[str], valid: Iterable[str], where: str) -> None:
    """Raise :class:`ParamsError` for the first name in ``given`` that is not in ``valid``, naming the nearest."""
    valid = list(valid)
    for name in given:
        if name not in valid:
            raise ParamsError(f"unknown {where} {name!r}{nearest(name, valid)}; valid: {', '.join(sorted(valid))}")


@dataclass(frozen=True)
class AlgorithmParams:
    """Base of every plug-in's parameter dataclass: one strict ``from_dict`` and a JSON-able ``to_dict``."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        refuse_unknown(d, [f.name for f in fields(cls)], "parameter")
        try:
            return cls(**dict(d))
        except (TypeError, ValueError) as exc:
            raise ParamsError(str(exc)) from exc

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class PartyData:
    """What a silo hands to every role: its rows in the job's canonical order, preprocessed.

    ``ids``: the (aligned) row ids as strings; ``X``: float64 matrix of shape ``(len(ids), len(feature_names))``;
    ``y``: labels in {0, 1} where this party holds them, else ``None``.
    """

    ids: np.ndarray
    X: np.ndarray
    feature_names: tuple[str, ...]
    y: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.X.ndim != 2 or self.X.shape[0] != len(self.ids) or self.X.shape[1] != len(self.feature_names):
            raise ValueError(f"PartyData: X has shape {self.X.shape}, expected ({len(self.ids)}, "
                             f"{len(self.feature_names)})")
        if self.y is not None and len(self.y) != len(self.ids):
            raise ValueError(f"PartyData: {len(self.y)} labels for {len(self.ids)} rows")

    @property
    def n_rows(self) -> int:
        return int(self.X.shape[0])

    def subset(self, rows: np.ndarray) -> PartyData:
        return PartyData(self.ids[rows], self.X[rows], self.feature_names, None if self.y is None else self.y[rows])


@dataclass(frozen=True)
class RoleContext:
    """Everything a role needs besides its data: who it is, who the others are, and its resources.

    ``namespace`` prefixes every message tag of the role (two scorings in one job cannot collide);
    ``executor`` runs the heavy loops (a process pool, or a Dask cluster's executor) and ``workers`` says
    how many tasks it runs at once (never read from the executor's private attributes).
    """

    job_id: str
    party_id: str
    role: str
    parties: Parties
    params: AlgorithmParams
    seed: int = 42
    checkpoint: Checkpoint | None = None
    executor: Executor | None = None
    workers: int = 1
    namespace: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Disclosure:
    """What ``receiver`` (a role name) may learn from messages whose tag matches ``tag`` (fnmatch pattern).

    ``kind`` is how the content reaches it: ``"ciphertext"`` (under a key it does not hold), ``"masked"``
    (uniform residues), ``"aggregate"`` (sums / statistics over several rows or parties), ``"public"``
    (parameters, shapes, counts everyone agreed to), ``"row_level"`` (per-row values, stated plainly).
    ``what`` says in words what is revealed; the README's disclosure table is generated from these.
    """

    receiver: str
    sender: str
    tag: str
    kind: Literal["ciphertext", "masked", "aggregate", "public", "row_level"]
    what: str


@dataclass(frozen=True)
class RoleSpec:
    """A silo role of an algorithm and how many parties may take it (``max_parties`` None = unbounded)."""

    name: str
    min_parties: int = 1
    max_parties: int | None = None
    holds_labels: bool = False


class Algorithm(ABC):
    """One federated algorithm as the services see it (see the module docstring)."""

    name: ClassVar[str]
    topology: ClassVar[Topology]
    stages: ClassVar[tuple[Stage, ...]]
    roles: ClassVar[tuple[RoleSpec, ...]]
    arbiter: ClassVar[ArbiterKind | None] = None
    params_class: ClassVar[type[AlgorithmParams]]
    #: silo roles whose evaluation replies carry metrics (vertical: the guest; horizontal: every client)
    metric_roles: ClassVar[tuple[str, ...]] = ("guest",)
    disclosures: ClassVar[tuple[Disclosure, ...]] = ()
    #: who standardises and encodes the features: ``"local"`` (the silo fits its own preprocessing on its
    #: training rows) or ``"federated"`` (the silo hands the raw numeric columns to the roles, whose protocol
    #: derives one preprocessing from pooled statistics, e.g. horizontal jobs)
    preprocessing: ClassVar[Literal["local", "federated"]] = "local"
    #: the training stage goes on when one silo's process dies: the runner does not abort the attempt but
    #: re-issues that silo's call once it answers again, and its role rejoins from its checkpoint
    survives_silo_loss: ClassVar[bool] = False

    # ---- parameters ---------------------------------------------------------------------------------
    def parse_params(self, params: Mapping[str, Any], seed: int | None = None) -> AlgorithmParams:
        """The typed parameters of a job (``seed`` fills the params' own ``seed`` field where it has one)."""
        d = dict(params)
        if seed is not None and "seed" in {f.name for f in fields(self.params_class)}:
            d.setdefault("seed", seed)
        return self.params_class.from_dict(d)

    @abstractmethod
    def steps(self, params: AlgorithmParams) -> int:
        """How many checkpointed steps (epochs, trees, rounds) a job runs at most."""

    def key_bits(self, params: AlgorithmParams) -> int | None:
        """The Paillier key size a job with ``params`` uses (the params' ``key_bits``; ``None``: no
        homomorphic encryption). The model card reports it."""
        bits = getattr(params, "key_bits", None)
        return int(bits) if bits is not None else None

    # ---- roles --------------------------------------------------------------------------------------
    @property
    def silo_roles(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.roles)

    @abstractmethod
    def trainer(self, ctx: RoleContext, data: PartyData | None) -> Role:
        """The training role of ``ctx.role`` (``"arbiter"`` for the arbiter's role, with ``data=None``)."""

    @abstractmethod
    def predictor(self, ctx: RoleContext, part: Payload, data: PartyData) -> Role:
        """The scoring role of ``ctx.role`` for the party's stored ``part``; at metric roles ``run`` returns
        the probabilities of class 1 of ``data``'s rows (other roles return ``None``)."""

    def variant_scores(self, ctx: RoleContext, part: Payload, data: PartyData) -> Mapping[str, np.ndarray]:
        """Scores of a metric party's other models on ``data`` (e.g. ``"personalised"``), evaluated locally
        beside the main model; computed without messages. Default: none."""
        return {}

    def aligner(self, ctx: RoleContext, ids: list[str]) -> Role:
        """The ``align`` stage's role (only called when ``"align"`` is in :attr:`stages`): private set
        intersection between the label holder and every other party. ``run`` returns an object with ``ids``
        (the intersection in canonical order) and ``positions`` (their local row positions)."""
        from algorithms.psi import PsiGuest, PsiHost

        context = f"{ctx.job_id}/{ctx.extra.get('salt', '')}"
        cls = PsiGuest if ctx.role == self.label_role else PsiHost
        return cls(ids, ctx.parties, context=context, min_intersection=int(ctx.extra.get("min_intersection", 100)),
                   local_floor=int(ctx.extra.get("psi_floor", 100)), executor=ctx.executor)

    @property
    def label_role(self) -> str | None:
        """The first silo role that holds labels (``None`` if none does)."""
        return next((r.name for r in self.roles if r.holds_labels), None)

    def role_spec(self, role: str) -> RoleSpec:
        """The :class:`RoleSpec` called ``role``; :class:`ParamsError` naming the nearest valid role otherwise."""
        for spec in self.roles:
            if spec.name == role:
                return spec
        raise ParamsError(f"role must be {' or '.join(self.silo_roles)}, not {role!r}{nearest(role, self.silo_roles)}")

    def check_parties(self, parties: Parties) -> None:
        """Refuse (:class:`ParamsError`) a party mapping whose roles or counts do not fit :attr:`roles`."""
        for role in parties.roles:
            self.role_spec(role)
        for spec in self.roles:
            found = parties.of(spec.name)
            low, high = spec.min_parties, spec.max_parties
            if len(found) < low or (high is not None and len(found) > high):
                count = (f"exactly {_count(low)}" if high == low else f"at least {_count(low)}" if high is None
                         else f"between {low} and {high} parties")
                raise ParamsError(f"{count} must have role = {spec.name!r} (found {list(found)})")

    def metric_parties(self, parties: Parties) -> tuple[str, ...]:
        """The party ids whose evaluation replies carry metrics (those of :attr:`metric_roles`)."""
        return tuple(p for role in self.metric_roles for p in parties.of(role))

    def combine_metrics(self, per_party: Mapping[str, Payload]) -> Payload:
        """One job's metrics from the metric parties' replies. One party: its metrics as they are; several:
        the row-weighted mean of every top-level number (``n`` and ``n_bad`` summed) and ``per_party``."""
        if len(per_party) == 1:
            return dict(next(iter(per_party.values())))
        replies = list(per_party.values())
        weights = np.array([float(m.get("n", 1) or 1) for m in replies])
        out: Payload = {}
        for key in replies[0]:
            values = [m.get(key) for m in replies]
            if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
                out[key] = (int(sum(values)) if key in ("n", "n_bad")  # type: ignore[arg-type]
                            else float(np.average(np.asarray(values, dtype=float), weights=weights)))
        out["per_party"] = {pid: dict(m) for pid, m in per_party.items()}
        return out

    # ---- training diagnostics -----------------------------------------------------------------------
    def training_diagnostics(self, params: AlgorithmParams, arbiter_part: Payload | None) -> Payload:
        """What model risk must see about how training went, from the arbiter's part: ``{"curve": {"name",
        "values"}}`` (e.g. the loss per epoch, plotted in the report) and ``{"warnings": [...]}`` (did not
        converge, loss rose: printed by the CLI, kept in the job record, shown first in the report)."""
        return {}

    # ---- evaluation ---------------------------------------------------------------------------------
    def baseline_scores(self, params: AlgorithmParams, X_train: np.ndarray, y_train: np.ndarray,
                        X_eval: np.ndarray) -> tuple[np.ndarray, str] | None:
        """What the metric party could do alone: the same algorithm and parameters trained in clear on its own
        features only, scored on the evaluation rows, with a one-line description for the report (the
        federation gain compares against it). ``None``: the silo uses a plain logistic regression."""
        return None

    # ---- model parts --------------------------------------------------------------------------------
    def export_part(self, result: Any) -> Payload:
        """A role's training result as JSON types (the party's private model part)."""
        return jsonable(result)

    def load_part(self, role: str, part: Payload) -> Any:
        """A stored model part back as the algorithm's model object (inverse of :meth:`export_part`)."""
        return part

    #: consent flags a silo may set in its config's ``[consent]`` table (``true``/``false``); the silo passes
    #: them to its roles in :attr:`RoleContext.extra` (e.g. a host allowing its feature names to be shown)
    consents: ClassVar[tuple[str, ...]] = ()

    def export_files(self, role: str, part: Payload) -> dict[str, str]:
        """Extra files ``{suffix: text}`` written beside a party's exported model part (e.g. a points table as
        CSV); default none."""
        return {}

    def report_sections(self, role: str, part: Payload) -> list[Payload]:
        """Report sections (JSON types: title, text, table, bars; see :mod:`arbiter.sections`) that a silo
        of ``role`` adds to the job's report from its exported training result ``part``. They go to the
        arbiter, which writes the report, so a plug-in returns only what that party may show (default none)."""
        return []

    # ---- demo ---------------------------------------------------------------------------------------
    #: the model name the demo registers (``fedrisk demo --algorithm NAME``)
    demo_name: ClassVar[str] = "model"

    def demo_params(self, dataset: str, steps: int | None = None) -> Payload:
        """Parameters the demo uses on a bundled ``dataset`` (``steps`` overrides :meth:`steps`)."""
        return {}

    def privacy_notes(self, params: AlgorithmParams, metrics: Payload, arbiter_part: Payload | None) -> list[str]:
        """Lines for the model card's privacy notes (secure aggregation, the ε spent, its assumptions)."""
        return []

    def check_preflight(self, params: AlgorithmParams, features: Mapping[str, int], rows: Mapping[str, int],
                        parties: Parties | None = None) -> list[str]:
        """Refuse (raise :class:`ParamsError`) or warn (return messages) before any data moves, from the
        silos' raw feature and row counts (by party id; rows before alignment). The arbiter calls it when a
        job is submitted."""
        return []


def _count(n: int) -> str:
    return "one party" if n == 1 else f"{n} parties"


def jsonable(value: Any) -> Any:
    """A role result as plain JSON types (``to_dict()`` if it has one; numpy → lists)."""
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


__all__ = [
    "Algorithm", "AlgorithmParams", "ArbiterKind", "Disclosure", "ParamsError", "PartyData", "Role", "RoleContext",
    "RoleSpec", "Stage", "Topology", "jsonable", "nearest", "refuse_unknown",
]
