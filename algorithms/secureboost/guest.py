"""SecureBoost guest (label holder, e.g. the bank): the active party of vertical SecureBoost.

The guest generates its OWN Paillier key pair; no arbiter takes part in SecureBoost (``Parties.arbiter``
is unused: the key holder is the label holder, and the guest only decrypts sums of its own gradients).

Messages (per host; tags are unique per job):

* sends ``setup``: public key, parameters, packing layout, digest of the ordered ids, the training
  row positions (validation rows are the rest), the tree to resume after;
* per tree ``t{t}.start``: ONE ciphertext per training row packing (g+1, h, 1) at 2^-52
  (CRT-accelerated DJN encryption), or ``participate=False`` (complete-secure first tree),
  or ``stop`` with the final number of trees (and, only if ``share_host_gains``, the gains of that
  host's own splits);
* per level ``t{t}.d{d}.nodes``: the node id of every row (``-1`` = in a leaf), or ``done``;
* receives ``t{t}.d{d}.candidates``: compressed, re-randomised ciphertexts of the left-sums of the
  host's shuffled candidates, and per node how many there are;
* sends ``t{t}.d{d}.decision``: the nodes this host won and the winning position;
* receives ``t{t}.d{d}.partition``: per won node an opaque split id and left/right per row.

What the guest learns: per node and host candidate, the left-going (Σg, Σh, count) — not which feature
or threshold it belongs to (positions are shuffled per level) — hence also how many distinct
candidate partitions the host has per node, and the row partition of the host splits it chose. It
never receives host feature values or thresholds. Its labels, gradients and leaf weights never leave
it in clear.
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Any

import numpy as np

from algorithms.base import Checkpoint, Parties
from algorithms.paillier import CiphertextVector, Decryptor, Encryptor, PrivateKey, PublicKey, generate_keypair
from algorithms.secureboost.data import Table, ids_digest, party_features, party_labels
from algorithms.secureboost.guest_trainer import GuestTrainer, HostProxy, stratified_validation
from algorithms.secureboost.model import GuestModel
from algorithms.secureboost.packing import PackingLayout, SplitSums
from algorithms.secureboost.params import BoostParams
from federation.channel import Channel


class ChannelHostProxy(HostProxy):
    """A host reached through the guest's channel; decrypts and unpacks what the host sends."""

    def __init__(self, channel: Channel, party: str, decryptor: Decryptor, layout: PackingLayout,
                 public_key: PublicKey) -> None:
        self.channel = channel
        self.party = party
        self.decryptor = decryptor
        self.layout = layout
        self.public_key = public_key

    def start_tree(self, tree: int, gradients: CiphertextVector | None) -> None:
        self.channel.send(self.party, f"t{tree}.start",
                          {"stop": False, "participate": gradients is not None, "gradients": gradients})

    def send_nodes(self, tree: int, depth: int, assignment: np.ndarray | None) -> None:
        self.channel.send(self.party, f"t{tree}.d{depth}.nodes",
                          {"done": assignment is None, "assignment": assignment})

    def receive_candidates(self, tree: int, depth: int) -> dict[int, list[SplitSums]]:
        msg = self.channel.recv(self.party, f"t{tree}.d{depth}.candidates")
        vec = msg["sums"].under(self.public_key)
        nodes, counts = [int(n) for n in msg["nodes"]], [int(c) for c in msg["counts"]]
        if len(nodes) != len(counts) or min(counts, default=0) < 0:
            raise ValueError(f"{self.party} sent a malformed candidate list")
        values = self.decryptor.decrypt_raw(vec) if len(vec) else []
        flat = self.layout.unpack(values, sum(counts))
        out, start = {}, 0
        for node, k in zip(nodes, counts, strict=True):
            out[node] = flat[start:start + k]
            start += k
        return out

    def send_decision(self, tree: int, depth: int, wins: dict[int, int]) -> None:
        nodes = sorted(wins)
        self.channel.send(self.party, f"t{tree}.d{depth}.decision",
                          {"nodes": np.array(nodes, dtype=np.int64),
                           "positions": np.array([wins[n] for n in nodes], dtype=np.int64)})

    def receive_partition(self, tree: int, depth: int) -> dict[int, tuple[int, np.ndarray]]:
        msg = self.channel.recv(self.party, f"t{tree}.d{depth}.partition")
        nodes, ids, sizes = msg["nodes"], msg["split_ids"], msg["sizes"]
        flags = np.asarray(msg["goes_left"], dtype=bool)
        if sum(int(s) for s in sizes) != len(flags):
            raise ValueError(f"{self.party} sent a malformed partition")
        out, start = {}, 0
        for node, sid, size in zip(nodes, ids, sizes, strict=True):
            out[int(node)] = (int(sid), flags[start:start + int(size)])
            start += int(size)
        return out

    def stop(self, next_tree: int, n_trees: int, split_gains: dict[int, float]) -> None:
        ids = sorted(split_gains)
        payload: dict[str, Any] = {"stop": True, "n_trees": n_trees}
        if ids:
            payload["split_ids"] = np.array(ids, dtype=np.int64)
            payload["gains"] = np.array([split_gains[i] for i in ids], dtype=np.float64)
        self.channel.send(self.party, f"t{next_tree}.start", payload)


class SecureBoostGuest:
    """The guest role: ``SecureBoostGuest(data, params, parties).run(channel) -> GuestModel``.

    ``data``: the guest's table (``id``, ``y`` in {0,1}, numeric features; NaN = missing) or its
    ``PartyData``, rows aligned with every host's. ``keypair``: the guest's own Paillier key pair
    (``params.key_bits``; generated when omitted). ``checkpoint``: saved after each tree; a rerun resumes
    after the last saved tree. ``executor``: where the heavy Paillier loops run (``None``: inline).
    """

    def __init__(self, data: Table, params: BoostParams, parties: Parties,
                 keypair: tuple[PublicKey, PrivateKey] | None = None, checkpoint: Checkpoint | None = None,
                 executor: Executor | None = None) -> None:
        self.party = parties.guest
        self.ids, self.X, self.feature_names = party_features(data, self.party)
        self.y = party_labels(data, self.party)
        self.params = params
        self.parties = parties
        self.keypair = keypair
        self.checkpoint = checkpoint
        self.executor = executor

    def run(self, channel: Channel) -> GuestModel:
        p = self.params
        public_key, private_key = self.keypair if self.keypair is not None else generate_keypair(p.key_bits)
        train_rows, valid_rows = stratified_validation(self.y, p.validation_fraction, p.seed)
        layout = PackingLayout.plan(len(train_rows), p.precision_bits, public_key.bits)
        executor = self.executor
        encryptor = Encryptor(public_key, private_key, executor=executor)
        decryptor = Decryptor(private_key, executor=executor)
        proxies = [ChannelHostProxy(channel, h, decryptor, layout, public_key) for h in self.parties.hosts]

        def seal(g_int: np.ndarray, h_int: np.ndarray) -> CiphertextVector:
            return encryptor.encrypt_encoded(layout.encode_rows(g_int, h_int), 0, layout.row_bound)

        trainer = GuestTrainer(p, self.party, self.X, self.y, self.feature_names, proxies, seal, layout,
                               train_rows, valid_rows, self.checkpoint)
        start, model, margin = trainer.resume_point()
        setup: dict[str, Any] = {"public_key": public_key.to_bytes(), "params": p.to_dict(),
                                 "layout": layout.to_dict(), "ids_digest": ids_digest(self.ids),
                                 "n_rows": len(self.ids), "train_rows": train_rows.astype(np.int64),
                                 "resume_after": start}
        channel.broadcast(self.parties.hosts, "setup", setup)
        return trainer.fit(start, model, margin)
