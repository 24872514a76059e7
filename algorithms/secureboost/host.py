"""SecureBoost host (feature holder, e.g. the insurer): a passive party of vertical SecureBoost.

Receives (see :mod:`algorithms.secureboost.guest` for the message list): the guest's public key and
job setup (including which rows are training rows; the rest are the guest's validation rows), per
tree one Paillier ciphertext per training row (packed g, h — the host cannot decrypt), per level the
node of every row, the positions of the candidates it won, and at the end the number of trees kept
(and, only with ``share_host_gains``, the gains of its own splits).

Sends: per level the left-sums of its candidates — bins accumulated on ciphertexts (histogram
subtraction for the larger sibling), cumulated, compressed several per ciphertext, re-randomised with
fresh obfuscators and shuffled per node, so the guest cannot tell which feature or bin a candidate
is; per won node an opaque split id and the left/right flag of the node's rows.

What the host learns: the instance space of every node (which rows sit in which node at each level,
as in standard SecureBoost, Cheng et al. 2019 — it needs it to build histograms, and it learns the
partition of every split, its own and other parties'); which of its candidates won; with ``share_host_gains`` the
gains of its own splits (for feature importance). It never sees a label, gradient, hessian, leaf weight, guest feature
or guest threshold in clear. Its thresholds stay in its private :class:`HostModel` lookup table.
"""

from __future__ import annotations

import random
from concurrent.futures import Executor

import numpy as np

from algorithms.base import Checkpoint, Parties
from algorithms.paillier import PublicKey
from algorithms.secureboost.data import Table, host_checks, ids_digest, party_features
from algorithms.secureboost.host_trainer import EncryptedBackend, HostTrainer
from algorithms.secureboost.model import HostModel
from algorithms.secureboost.packing import PackingLayout
from algorithms.secureboost.params import BoostParams
from federation.channel import Channel


class SecureBoostHost:
    """The host role: ``SecureBoostHost(data, params, parties, party_id).run(channel) -> HostModel``."""

    def __init__(self, data: Table, params: BoostParams, parties: Parties, party_id: str,
                 checkpoint: Checkpoint | None = None, executor: Executor | None = None,
                 rng: random.Random | None = None) -> None:
        if party_id not in parties.hosts:
            raise ValueError(f"{party_id!r} is not a host of this job (hosts: {list(parties.hosts)})")
        host_checks(data, party_id)
        self.party = party_id
        self.ids, self.X, self.feature_names = party_features(data, party_id)
        self.params = params
        self.parties = parties
        self.checkpoint = checkpoint
        self.executor = executor
        self.rng = rng

    def run(self, channel: Channel) -> HostModel:
        guest = self.parties.guest
        setup = channel.recv(guest, "setup")
        self.params.require_same(setup["params"], guest)
        if setup["ids_digest"] != ids_digest(self.ids) or int(setup["n_rows"]) != len(self.ids):
            raise ValueError(f"{self.party}: rows are not aligned with the guest's (different ids or order)")
        public_key = PublicKey.from_bytes(setup["public_key"])
        train_rows = np.asarray(setup["train_rows"], dtype=np.int64)
        if len(train_rows) == 0 or train_rows.min() < 0 or train_rows.max() >= len(self.ids):
            raise ValueError(f"{self.party}: invalid training rows in the guest's setup")
        layout = PackingLayout.plan(len(train_rows), self.params.precision_bits, public_key.bits)
        if layout.to_dict() != setup["layout"]:
            raise ValueError(f"{self.party}: the guest's packing layout differs from ours")
        executor = self.executor
        trainer = HostTrainer(self.party, self.X, self.feature_names, self.params.max_bin, train_rows,
                              lambda b, nb: EncryptedBackend(b, nb, public_key, layout, executor), rng=self.rng)
        t = int(setup["resume_after"])
        self._resume(trainer, t)
        while True:
            start = channel.recv(guest, f"t{t}.start")
            if start["stop"]:
                gains = dict(zip((int(i) for i in start.get("split_ids", [])),
                                 (float(g) for g in start.get("gains", [])), strict=True))
                return trainer.finish(int(start["n_trees"]), gains)
            if start["participate"]:
                trainer.start_tree(t, start["gradients"])
                depth = 0
                while True:
                    nodes = channel.recv(guest, f"t{t}.d{depth}.nodes")
                    if nodes["done"]:
                        break
                    sums, node_ids, counts = trainer.candidates(nodes["assignment"])
                    channel.send(guest, f"t{t}.d{depth}.candidates",
                                 {"sums": sums, "nodes": np.array(node_ids, dtype=np.int64),
                                  "counts": np.array(counts, dtype=np.int64)})
                    decision = channel.recv(guest, f"t{t}.d{depth}.decision")
                    parts = trainer.partition(dict(zip((int(n) for n in decision["nodes"]),
                                                       (int(q) for q in decision["positions"]), strict=True)))
                    order = sorted(parts)
                    flags = [parts[n][1] for n in order]
                    channel.send(guest, f"t{t}.d{depth}.partition",
                                 {"nodes": np.array(order, dtype=np.int64),
                                  "split_ids": np.array([parts[n][0] for n in order], dtype=np.int64),
                                  "sizes": np.array([len(f) for f in flags], dtype=np.int64),
                                  "goes_left": np.concatenate(flags) if flags else np.zeros(0, dtype=bool)})
                    depth += 1
            t += 1
            if self.checkpoint is not None:
                self.checkpoint.save(t, {"model": trainer.model.to_dict()})

    def _resume(self, trainer: HostTrainer, resume_after: int) -> None:
        if resume_after == 0:
            return
        saved = self.checkpoint.latest() if self.checkpoint is not None else None
        if saved is None or saved[0] < resume_after:
            have = 0 if saved is None else saved[0]
            raise ValueError(f"{self.party}: the guest resumes after tree {resume_after} but this host's "
                             f"checkpoint only covers {have} trees")
        model = HostModel.from_dict(saved[1]["model"])
        model.truncate(resume_after)
        trainer.model = model
