"""The arbiter of vertical logistic regression: key holder, decryptor of masked values, convergence judge.

Setup: collects every silo's hello (row count, feature count, latest checkpointed epoch; the guest adds
the job parameters and its loss history), picks the start epoch (the smallest epoch every silo has
checkpointed), enforces the batch-size guard, generates a Paillier key pair (>= 2048 bits) and sends
the public key, the parameters and the start epoch to every silo.

Training: per batch it decrypts each silo's *masked* gradient with ``decrypt_raw`` and returns the
residues; per epoch it decrypts the guest's masked loss (one ciphertext), receives the plaintext epoch loss (and,
with ``early_stopping="weight_diff"``, every silo's ``‖Δw‖²``) and broadcasts the decision: stop/continue,
converged, and the automatic step control's verdict (:mod:`algorithms.vertical_lr.step_control`): whether
every party rolls back the epoch (its loss rose over the last accepted one) and the step scale from the next epoch.

What it receives and learns: row and feature counts, the parameters, the per-epoch loss (an aggregate
scalar) and, in weight-diff mode, each silo's squared weight change per epoch. Every vector it decrypts
is masked by its owner with uniform values of ``Z_n``: the residues are uniformly random and reveal
nothing about gradients, weights or labels. It refuses to decrypt a vector not marked as masked, and
decrypts only vectors of the expected shape (a gradient of the silo's feature count, one-element loss
total). What it sends every silo per epoch: stop / converged / rollback and the step scale, so hosts learn
one bit per epoch about the loss (whether it rose). Like every party it is honest-but-curious: it cannot
verify that a masked vector really is what the protocol says, so a silo colluding with the arbiter, or a
malicious silo, is out of scope.
"""

from __future__ import annotations

import time
from concurrent.futures import Executor, ThreadPoolExecutor

from algorithms.base import Checkpoint, Parties
from algorithms.paillier import CiphertextVector, Decryptor, PrivateKey, PublicKey, generate_keypair
from algorithms.vertical_lr.common import DEFAULT_PARTIES, PREFIX, batch_tag, epoch_tag, expect_vector, saved_epoch
from algorithms.vertical_lr.model import ArbiterSummary
from algorithms.vertical_lr.params import ProtocolError, VerticalLRParams, batch_schedule, check_batch_guard
from algorithms.vertical_lr.step_control import StepControl
from federation.channel import Channel


class VerticalLRArbiter:
    """Coordinator role. ``run(channel)`` returns an :class:`ArbiterSummary`.

    ``params``: if given, must equal the guest's (otherwise the guest's are adopted). ``keypair``: use this
    key pair instead of generating one (tests share a session key). ``checkpoint``: receives the summary
    after every epoch (the arbiter needs no state to resume: the guest reports the loss history, over which
    the step control's decisions are replayed).
    """

    def __init__(self, parties: Parties = DEFAULT_PARTIES, params: VerticalLRParams | None = None,
                 checkpoint: Checkpoint | None = None, executor: Executor | None = None,
                 keypair: tuple[PublicKey, PrivateKey] | None = None) -> None:
        self.parties = parties
        self.params = params
        self.checkpoint = checkpoint
        self.executor = executor
        self.keypair = keypair
        self.epoch_seconds: list[float] = []
        self._gradient_lengths: dict[str, int] = {}
        self._converged = False

    # ------------------------------------------------------------------ steps
    def _refuse(self, channel: Channel, message: str) -> ProtocolError:
        channel.broadcast(self.parties.silos, f"{PREFIX}.setup", {"error": message})
        return ProtocolError(message)

    def _setup(self, channel: Channel) -> tuple[VerticalLRParams, int, int, bool, bool, list[float], PublicKey,
                                                Decryptor]:
        p = self.parties
        hellos = {silo: channel.recv(silo, f"{PREFIX}.hello") for silo in p.silos}
        guest = hellos[p.guest]
        try:
            params = VerticalLRParams.from_dict(guest["params"])
            if self.params is not None:
                self.params.require_same(params, "arbiter")
        except (ProtocolError, ValueError, TypeError, KeyError) as exc:
            raise self._refuse(channel, f"invalid job parameters: {exc}") from exc
        n_rows = int(guest["n_rows"])
        for silo, hello in hellos.items():
            if int(hello["n_rows"]) != n_rows:
                raise self._refuse(channel, f"{silo!r} holds {hello['n_rows']} aligned rows but the guest {n_rows}")
        host_features = {h: int(hellos[h]["n_features"]) for h in p.hosts}
        guest_features = int(guest["n_features"])
        try:
            check_batch_guard(n_rows, params.batch_size, host_features, guest_features)
        except ProtocolError as exc:
            raise self._refuse(channel, str(exc)) from exc
        epochs = {silo: int(h["checkpoint_epoch"]) for silo, h in hellos.items()}
        resume = min(epochs.values())
        if max(epochs.values()) > resume + 1:
            raise self._refuse(channel, f"checkpoints are more than one epoch apart ({epochs}): cannot resume")
        history = [float(v) for v in guest.get("history", [])][: resume + 1]
        finished = resume >= params.max_epochs - 1 or (epochs[p.guest] == resume and bool(guest.get("stopped")))
        converged = epochs[p.guest] == resume and bool(guest.get("converged"))
        public_key, private_key = self.keypair if self.keypair is not None else generate_keypair(params.key_bits)
        common = {"public_key": public_key.to_wire(), "params": params.to_dict(), "n_rows": n_rows,
                  "start_epoch": resume + 1, "finished": finished, "error": None,
                  "host_features": host_features, "guest_features": guest_features}
        channel.broadcast(p.silos, f"{PREFIX}.setup", common)
        decryptor = Decryptor(private_key, executor=self.executor)
        self._gradient_lengths = {silo: int(h["n_features"]) + (1 if silo == p.guest else 0)
                                  for silo, h in hellos.items()}
        return params, n_rows, resume + 1, finished, converged, history, public_key, decryptor

    def _decrypt_masked(self, decryptor: Decryptor, vector: CiphertextVector, sender: str) -> list[int]:
        if not vector.masked:
            raise ProtocolError(f"{sender!r} asked to decrypt an unmasked vector: refused")
        return decryptor.decrypt_raw(vector)

    def _serve_gradient(self, channel: Channel, decryptor: Decryptor, key: PublicKey, tag: str, silo: str,
                        length: int) -> None:
        # Only vectors of the silo's gradient length are decrypted: a silo cannot slip in, say, a slice of
        # [[d]] longer than its feature count (the batch guard keeps |B| above every host's feature count).
        vec = expect_vector(channel.recv(silo, f"{tag}.gradient"), "g", key, length, silo)
        channel.send(silo, f"{tag}.gradient.plain", {"residues": self._decrypt_masked(decryptor, vec, silo)})

    def run(self, channel: Channel) -> ArbiterSummary:
        p = self.parties
        params, n_rows, start, finished, self._converged, losses, key, decryptor = self._setup(channel)
        _, latest = saved_epoch(self.checkpoint)
        weight_diffs: list[float] = [float(v) for v in (latest or {}).get("weight_diffs", [])][:start]
        control = step_control(params).replay(losses)  # the decisions already taken (resume)
        epoch = start
        servers = ThreadPoolExecutor(max_workers=len(p.silos), thread_name_prefix="arbiter")
        try:
            self._train(channel, p, params, n_rows, epoch, finished, losses, weight_diffs, control, key, decryptor,
                        servers)
        finally:
            servers.shutdown(wait=False, cancel_futures=True)
        return self._summary(losses, weight_diffs, control)

    def _summary(self, losses: list[float], weight_diffs: list[float], control: StepControl) -> ArbiterSummary:
        return ArbiterSummary(len(losses), list(losses), self._converged, list(weight_diffs), list(control.scales),
                              list(control.rejected))

    def _train(self, channel: Channel, p: Parties, params: VerticalLRParams, n_rows: int, epoch: int,
               finished: bool, losses: list[float], weight_diffs: list[float], control: StepControl,
               key: PublicKey, decryptor: Decryptor, servers: ThreadPoolExecutor) -> None:
        while not finished and epoch < params.max_epochs:
            began = time.perf_counter()
            batches = batch_schedule(n_rows, params.batch_size, params.seed, epoch)
            for b in range(len(batches)):
                tag = batch_tag(epoch, b)
                # serve the silos concurrently (decryption releases the GIL), in whatever order they finish
                futures = [servers.submit(self._serve_gradient, channel, decryptor, key, tag, silo,
                                          self._gradient_lengths[silo]) for silo in p.silos]
                for future in futures:
                    future.result()
            et = epoch_tag(epoch)
            # the guest combined the epoch's loss terms into one ciphertext before masking it
            total = expect_vector(channel.recv(p.guest, f"{et}.loss"), "total", key, 1, p.guest)
            channel.send(p.guest, f"{et}.loss.plain", {"residues": self._decrypt_masked(decryptor, total, p.guest)})
            loss = float(channel.recv(p.guest, f"{et}.report")["loss"])
            reference = control.reference  # the last accepted epoch's loss (step control off: the previous one)
            verdict = control.decide(loss)
            if params.early_stopping == "weight_diff":
                diff = sum(float(channel.recv(s, f"{et}.weight_diff")["sq_norm"]) for s in p.silos) ** 0.5
                weight_diffs.append(diff)
                self._converged = verdict.accepted and diff < params.tol
            else:
                self._converged = verdict.accepted and reference is not None and abs(reference - loss) < params.tol
            losses.append(loss)
            stop = self._converged or verdict.exhausted or epoch == params.max_epochs - 1
            channel.broadcast(p.silos, f"{et}.decision", {"stop": stop, "converged": self._converged,
                                                          "rollback": verdict.rollback, "step_scale": verdict.scale})
            self.epoch_seconds.append(time.perf_counter() - began)
            if self.checkpoint is not None:
                self.checkpoint.save(epoch, self._summary(losses, weight_diffs, control).to_dict())
            finished = stop
            epoch += 1


def step_control(params: VerticalLRParams) -> StepControl:
    """The arbiter's step control for a job's parameters (fresh: no epoch decided yet)."""
    return StepControl(params.step_reduction, params.max_step_reductions, params.tol)
