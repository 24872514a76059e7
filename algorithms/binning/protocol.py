"""Vertical WOE/IV binning: the bank (guest, labels) and each host bin their own characteristics; host
counts per bin are summed under the bank's Paillier key.

Messages (tags under the job's namespace; per host):

* guest → host ``bin.setup``: the guest's public key (>= 2048 bits), the job parameters, the digest of the
  ordered ids, the training row positions, the packing layout (public);
* guest → host ``bin.labels``: ONE ciphertext per training row packing ``(y, 1)`` — the label and a row count
  in two slots (SecureBoost's packing with ``g = y − 1`` at zero fractional bits and no hessian slot);
* host → guest ``bin.counts``: per (characteristic, bin) the product of the row ciphertexts of the bin
  (SecureBoost's encrypted histogram code), several bins compressed into one ciphertext, re-randomised, in
  a random order; beside it the anonymised characteristic of each cell (a token per characteristic: an HMAC
  of its name under a key derived from the host's own data and rows, so a rerun gives the same tokens
  and the bank cannot recompute them; tokens listed in their own order), the bin's ordinal, each
  characteristic's number of bins, which bin holds the missing values and whether it is categorical —
  names and bin labels only if the host's silo
  allows it (``share_feature_names``). A bin smaller than ``min_bin_rows`` is refused before anything is
  sent (the message then carries only the error);
* guest → host ``bin.merge`` (only with ``optimal``): per anonymised characteristic the merge groups of its
  fine bins (index ranges; level groups for categorical ones);
* guest → host ``bin.selection``: the tokens of the host's characteristics kept by the IV selection.

What each party learns:

* the **host** learns the guest's public key, which rows are training rows, and, only with ``optimal`` /
  a selection, the merge groups of its characteristics and which of them were kept. It never receives a
  label, an event count, a WOE or an IV (the transcript test checks every message it receives).
* the **bank** learns, for every host characteristic under an anonymous token, the size and event count of
  each bin in order (hence its WOE and IV), the number of bins and which bin is the missing one; the host's
  names and bin labels only if the host allows it. It never sees a host value or a host row's bin. Bin
  sizes alone can hint at what a characteristic is (a 60/40 two-bin split looks like a binary one).

Attacks: the bank knows its events, so per-bin event counts tell it how its defaulters spread over a host's
bins — about individuals when there are few events: the bank refuses to start with fewer than
``min_bin_rows`` events or non-events. Counts over two row sets that differ by one customer would give that
customer's bins: a host sums over all of its aligned rows only and refuses a subset (test). Not stopped:
the same differencing across two *jobs* whose alignments differ by one customer (the bank controls its id
set in PSI) — rate-limit and audit binning jobs; and a bank that lies about its labels (malicious, out of
scope) can place any single customer in the host's bins.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from algorithms.base import Checkpoint, Parties
from algorithms.binning.bins import CharacteristicBins
from algorithms.binning.merge import optimal_groups
from algorithms.binning.params import BinningParams
from algorithms.binning.selection import Candidate, select
from algorithms.binning.woe import WoeTable, woe_table
from algorithms.paillier import CiphertextVector, Decryptor, Encryptor, PrivateKey, PublicKey, generate_keypair
from algorithms.secureboost.data import ids_digest
from algorithms.secureboost.host_trainer import EncryptedBackend
from algorithms.secureboost.packing import PackingLayout
from federation.channel import Channel


class BinTooSmallError(ValueError):
    """A bin holds fewer rows than ``min_bin_rows``: its counts would be close to row-level facts."""


class BinningProtocolError(RuntimeError):
    """A peer sent something the protocol does not allow (or reported an error)."""


def label_layout(n_rows: int, key_bits: int) -> PackingLayout:
    """SecureBoost's packing layout reused for labels: ``G = y`` (``g = y − 1``, 0 fractional bits), no
    hessian slot, a row count slot; ``slots`` bin sums fit one compressed ciphertext."""
    return PackingLayout.plan(n_rows, 0, key_bits)


def check_bin_sizes(bins: CharacteristicBins, B: np.ndarray, min_rows: int, party: str) -> None:
    """Raise :class:`BinTooSmallError` naming the characteristic and bin if one holds < ``min_rows`` rows."""
    for j, f in enumerate(bins.features):
        sizes = np.bincount(B[:, j], minlength=f.n_bins)
        for b, size in enumerate(sizes.tolist()):
            if size < min_rows:
                raise BinTooSmallError(
                    f"{party}: bin {f.labels()[b]} of characteristic {f.name!r} holds {size} rows, fewer than "
                    f"min_bin_rows={min_rows}: refusing to reveal its counts (use fewer bins, merge rare levels, "
                    "or lower min_bin_rows)")


def fit_bins(X: np.ndarray, names: Sequence[str], params: BinningParams) -> CharacteristicBins:
    """A party's (fine) bins, with the categorical names that are its own."""
    cats = [c for c in params.categorical if c in set(names)]
    return CharacteristicBins.fit(X, names, params.method, params.n_bins, cats, params.min_bin_rows)


@dataclass
class Characteristic:
    """One row of the IV table as the bank holds it."""

    party: str
    key: str               # own name at the bank; the host's token (or name, if shared) otherwise
    name: str | None       # the real name if known to the bank
    kind: str
    labels: list[str] | None
    missing_bin: int | None
    table: WoeTable
    selected: bool = True

    @property
    def iv(self) -> float:
        return self.table.iv

    def to_dict(self) -> dict[str, Any]:
        return {"party": self.party, "key": self.key, "name": self.name, "kind": self.kind, "labels": self.labels,
                "missing_bin": self.missing_bin, "table": self.table.to_dict(), "selected": self.selected}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Characteristic:
        return Characteristic(d["party"], d["key"], d["name"], d["kind"], d["labels"], d["missing_bin"],
                              WoeTable.from_dict(d["table"]), bool(d["selected"]))


@dataclass
class GuestBinning:
    """The bank's result: its own bins and the IV table of every characteristic (own and hosts')."""

    party: str
    bins: CharacteristicBins
    characteristics: list[Characteristic] = field(default_factory=list)

    def own(self) -> list[Characteristic]:
        return [c for c in self.characteristics if c.party == self.party]

    def of(self, party: str) -> list[Characteristic]:
        return [c for c in self.characteristics if c.party == party]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "binning.guest", "party": self.party, "bins": self.bins.to_dict(),
                "characteristics": [c.to_dict() for c in self.characteristics]}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> GuestBinning:
        return GuestBinning(d["party"], CharacteristicBins.from_dict(d["bins"]),
                            [Characteristic.from_dict(c) for c in d["characteristics"]])


@dataclass
class HostBinning:
    """A host's result: its (merged) bins, the tokens it used and which characteristics were kept."""

    party: str
    bins: CharacteristicBins
    tokens: dict[str, str]          # name -> token
    selected: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "binning.host", "party": self.party, "bins": self.bins.to_dict(), "tokens": self.tokens,
                "selected": self.selected}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> HostBinning:
        return HostBinning(d["party"], CharacteristicBins.from_dict(d["bins"]), dict(d["tokens"]),
                           list(d["selected"]))


def _merge_own(bins: CharacteristicBins, B: np.ndarray, y: np.ndarray, params: BinningParams) -> CharacteristicBins:
    out = []
    for j, f in enumerate(bins.features):
        col = B[:, j]
        values = col != (f.missing_bin if f.missing_bin is not None else -1)
        e = np.bincount(col[values], weights=y[values], minlength=f.n_value_bins)
        n = np.bincount(col[values], minlength=f.n_value_bins)
        groups = optimal_groups(e, n, f.kind == "categorical", params.min_bin_rows, params.max_bins,
                                params.monotonic, params.adjustment)
        out.append(f.merge(groups))
    return CharacteristicBins(out)


class BinningGuest:
    """The bank's role: ``BinningGuest(X, names, y, ids, params, parties).run(channel) -> GuestBinning``.

    ``train_rows``: the row positions bins and counts are computed on (default: all rows); ``keypair``: the
    bank's own Paillier key pair (generated when omitted; no arbiter takes part).
    """

    def __init__(self, X: np.ndarray, names: Sequence[str], y: np.ndarray, ids: np.ndarray, params: BinningParams,
                 parties: Parties, train_rows: np.ndarray | None = None,
                 keypair: tuple[PublicKey, PrivateKey] | None = None, executor: Executor | None = None,
                 namespace: str = "", checkpoint: Checkpoint | None = None,
                 units: Mapping[str, Sequence[float]] | None = None) -> None:
        self.X = np.asarray(X, dtype=np.float64)
        self.names = list(names)
        self.y = np.asarray(y, dtype=np.int64)
        if set(np.unique(self.y).tolist()) - {0, 1}:
            raise ValueError("labels must be 0 or 1")
        self.ids = np.asarray(ids)
        self.params = params
        self.parties = parties
        self.train_rows = np.arange(len(self.y)) if train_rows is None else np.asarray(train_rows, dtype=np.int64)
        self.keypair = keypair
        self.executor = executor
        self.ns = namespace
        self.checkpoint = checkpoint  # saved once at the end (a rerun recomputes the same result)
        self.units = dict(units or {})  # (mean, scale) of standardised columns: labels in original units

    def _tag(self, name: str) -> str:
        return f"{self.ns}bin.{name}"

    def run(self, channel: Channel) -> GuestBinning:
        p, tr = self.params, self.train_rows
        me = self.parties.guest
        y = self.y[tr]
        events = int(y.sum())
        if min(events, len(y) - events) < p.min_bin_rows:
            # with few events the per-bin event counts place individual (known) defaulters in host bins
            raise BinningProtocolError(f"{me}: {events} events and {len(y) - events} non-events among the "
                                       f"training rows; both must reach min_bin_rows={p.min_bin_rows}")
        bins = fit_bins(self.X[tr], self.names, p)
        if p.optimal:
            bins = _merge_own(bins, bins.transform(self.X[tr]), y, p)
        B = bins.transform(self.X[tr])
        own = [Characteristic(me, f.name, f.name, f.kind, f.labels(unit=self.units.get(f.name)), f.missing_bin,
                              woe_table(np.bincount(B[:, j], weights=y, minlength=f.n_bins),
                                        np.bincount(B[:, j], minlength=f.n_bins), p.adjustment))
               for j, f in enumerate(bins.features)]
        hosts = self.parties.hosts
        public_key, private_key = self.keypair if self.keypair is not None else generate_keypair(p.key_bits)
        layout = label_layout(len(tr), public_key.bits)
        setup = {"public_key": public_key.to_bytes(), "params": p.to_dict(), "ids_digest": ids_digest(self.ids),
                 "n_rows": len(self.ids), "train_rows": tr.astype(np.int64), "layout": layout.to_dict()}
        channel.broadcast(hosts, self._tag("setup"), setup)
        encryptor = Encryptor(public_key, private_key, executor=self.executor)
        g_int, h_int = layout.quantise(y.astype(np.float64) - 1.0, np.zeros(len(y)))
        labels = encryptor.encrypt_encoded(layout.encode_rows(g_int, h_int), 0, layout.row_bound)
        channel.broadcast(hosts, self._tag("labels"), {"labels": labels})
        decryptor = Decryptor(private_key, executor=self.executor)
        remote: dict[str, list[Characteristic]] = {}
        for host in hosts:
            remote[host] = self._receive_counts(channel, host, decryptor, public_key, layout, len(tr))
        if p.optimal:
            for host in hosts:
                remote[host] = self._merge_host(channel, host, remote[host])
        every = own + [c for h in hosts for c in remote[h]]
        kept = select([Candidate(c.party, c.key, c.iv) for c in every], p.iv_threshold, p.top_k)
        for c in every:
            c.selected = (c.party, c.key) in kept
        for host in hosts:
            channel.send(host, self._tag("selection"),
                         {"keep": [c.key for c in remote[host] if c.selected]})
        result = GuestBinning(me, bins, every)
        if self.checkpoint is not None:
            self.checkpoint.save(0, {"binning": result.to_dict()})
        return result

    def _receive_counts(self, channel: Channel, host: str, decryptor: Decryptor, key: PublicKey,
                        layout: PackingLayout, n_train: int) -> list[Characteristic]:
        msg = channel.recv(host, self._tag("counts"))
        if msg.get("error"):
            raise BinningProtocolError(f"{host} refused to send its bin counts: {msg['error']}")
        vec: CiphertextVector = msg["sums"].under(key)
        tokens = [str(t) for t in msg["tokens"]]
        feature, ordinal = np.asarray(msg["feature"], dtype=np.int64), np.asarray(msg["bin"], dtype=np.int64)
        n_bins = np.asarray(msg["n_bins"], dtype=np.int64)
        if len(feature) != len(ordinal) or len(n_bins) != len(tokens) or int(n_bins.sum()) != len(feature):
            raise BinningProtocolError(f"{host} sent a malformed bin list")
        triples = layout.unpack(decryptor.decrypt_raw(vec) if len(vec) else [], len(feature))
        events = [np.zeros(int(k)) for k in n_bins]
        totals = [np.zeros(int(k)) for k in n_bins]
        seen = [np.zeros(int(k), dtype=bool) for k in n_bins]
        for f, b, (ev, _, count) in zip(feature.tolist(), ordinal.tolist(), triples, strict=True):
            if not (0 <= f < len(tokens) and 0 <= b < n_bins[f]) or seen[f][b]:
                raise BinningProtocolError(f"{host} sent an invalid or repeated (characteristic, bin) cell")
            seen[f][b] = True
            events[f][b], totals[f][b] = ev, count
        names = msg.get("names")
        labels = msg.get("labels")
        out = []
        for f, token in enumerate(tokens):
            if totals[f].sum() != n_train:
                raise BinningProtocolError(f"{host}: the bins of one characteristic do not cover the training rows")
            if totals[f].min() < self.params.min_bin_rows:
                raise BinningProtocolError(f"{host} sent the counts of a bin below min_bin_rows")
            missing = int(msg["missing_bin"][f])
            name = str(names[f]) if names else None
            out.append(Characteristic(host, name or token, name, "categorical" if msg["categorical"][f] else "numeric",
                                      [str(s) for s in labels[f]] if labels else None,
                                      None if missing < 0 else missing,
                                      woe_table(events[f], totals[f], self.params.adjustment)))
        return out

    def _merge_host(self, channel: Channel, host: str, chars: list[Characteristic]) -> list[Characteristic]:
        p = self.params
        groups_of: list[list[list[int]]] = []
        merged = []
        for c in chars:
            k = len(c.table.totals) - (1 if c.missing_bin is not None else 0)
            e, n = c.table.events[:k], c.table.totals[:k]
            groups = optimal_groups(e, n, c.kind == "categorical", p.min_bin_rows, p.max_bins, p.monotonic,
                                    p.adjustment)
            groups_of.append(groups)
            ge = [e[g].sum() for g in groups] + ([c.table.events[k]] if c.missing_bin is not None else [])
            gn = [n[g].sum() for g in groups] + ([c.table.totals[k]] if c.missing_bin is not None else [])
            labels = None
            if c.labels is not None:
                labels = [c.labels[g[0]] if len(g) == 1 else "+".join(c.labels[i] for i in g) for g in groups]
                labels += ["missing"] if c.missing_bin is not None else []
            merged.append(Characteristic(c.party, c.key, c.name, c.kind, labels,
                                         len(groups) if c.missing_bin is not None else None,
                                         woe_table(np.array(ge), np.array(gn), p.adjustment)))
        channel.send(host, self._tag("merge"), {"keys": [c.key for c in chars],
                                                "groups": [[[int(i) for i in g] for g in gs] for gs in groups_of]})
        return merged


class BinningHost:
    """A host's role: ``BinningHost(X, names, ids, params, parties, party).run(channel) -> HostBinning``.

    ``share_feature_names``: the host's own consent (from its silo config) to send its characteristic names
    and bin labels to the bank.
    """

    def __init__(self, X: np.ndarray, names: Sequence[str], ids: np.ndarray, params: BinningParams, parties: Parties,
                 party: str, share_feature_names: bool = False, executor: Executor | None = None,
                 namespace: str = "", checkpoint: Checkpoint | None = None,
                 units: Mapping[str, Sequence[float]] | None = None) -> None:
        if party not in parties.hosts:
            raise ValueError(f"{party!r} is not a host of this job (hosts: {list(parties.hosts)})")
        self.X = np.asarray(X, dtype=np.float64)
        self.names = list(names)
        self.ids = np.asarray(ids)
        self.params = params
        self.parties = parties
        self.party = party
        self.share = share_feature_names
        self.executor = executor
        self.ns = namespace
        self.checkpoint = checkpoint
        self.units = dict(units or {})

    def _tag(self, name: str) -> str:
        return f"{self.ns}bin.{name}"

    def run(self, channel: Channel) -> HostBinning:
        guest = self.parties.guest
        setup = channel.recv(guest, self._tag("setup"))
        try:  # a refusal is sent to the bank in place of the counts, so it fails at once, naming the reason
            key, tr, layout, bins, B = self._accept(setup)
        except (BinningProtocolError, BinTooSmallError) as exc:
            channel.send(guest, self._tag("counts"), {"error": str(exc)})
            raise
        labels = channel.recv(guest, self._tag("labels"))["labels"].under(key)
        if len(labels) != len(tr):
            raise BinningProtocolError(f"{self.party}: {len(labels)} label ciphertexts for {len(tr)} training rows")
        rng = secrets.SystemRandom()
        secret = self._token_key(setup)
        named = {n: f"{self.party}:{hmac.new(secret, n.encode(), hashlib.sha256).hexdigest()[:8]}" for n in self.names}
        order = sorted(range(len(self.names)), key=lambda j: named[self.names[j]])  # token order hides ours
        tokens = [named[self.names[j]] for j in order]  # token i is characteristic order[i]
        width = max((f.n_bins for f in bins.features), default=1)
        backend = EncryptedBackend(B, width, key, layout, self.executor)
        backend.start_tree(labels)
        hist = backend.histograms({0: np.arange(len(tr))}, set())[0]
        cells = [(i, b) for i, j in enumerate(order) for b in range(bins.features[j].n_bins)]
        rng.shuffle(cells)
        cts = [hist.cells[order[i] * width + b] for i, b in cells]
        if any(c is None for c in cts):  # pragma: no cover - bins are fitted on these rows and checked non-empty
            raise BinningProtocolError(f"{self.party}: an empty bin")
        feats = [bins.features[j] for j in order]
        msg: dict[str, Any] = {
            "sums": backend.seal([cts]), "tokens": tokens,
            "feature": np.array([i for i, _ in cells], dtype=np.int64),
            "bin": np.array([b for _, b in cells], dtype=np.int64),
            "n_bins": np.array([f.n_bins for f in feats], dtype=np.int64),
            "missing_bin": np.array([-1 if f.missing_bin is None else f.missing_bin for f in feats], dtype=np.int64),
            "categorical": np.array([f.kind == "categorical" for f in feats], dtype=bool)}
        if self.share:
            msg["names"] = [f.name for f in feats]
            msg["labels"] = [f.labels(unit=self.units.get(f.name)) for f in feats]
        channel.send(guest, self._tag("counts"), msg)
        token_of = {self.names[j]: tokens[i] for i, j in enumerate(order)}
        key_of = {self.names[j]: (self.names[j] if self.share else tokens[i]) for i, j in enumerate(order)}
        if self.params.optimal:
            bins = self._apply_merge(channel.recv(guest, self._tag("merge")), bins, key_of)
        keep = set(channel.recv(guest, self._tag("selection"))["keep"])
        if keep - set(key_of.values()):
            raise BinningProtocolError(f"{self.party}: the guest selected characteristics this host does not have")
        result = HostBinning(self.party, bins, token_of, [n for n in self.names if key_of[n] in keep])
        if self.checkpoint is not None:
            self.checkpoint.save(0, {"binning": result.to_dict()})
        return result

    def _token_key(self, setup: dict[str, Any]) -> bytes:
        """A key only this host can form (its own data and the job): tokens are the same when a job is rerun
        or resumed, and the bank, which knows the names a host might use, cannot recompute them."""
        h = hashlib.sha256(b"fedrisk/binning-tokens\0" + str(setup["ids_digest"]).encode())
        h.update(np.ascontiguousarray(self.X).tobytes())
        h.update("\0".join(self.names).encode())
        return h.digest()

    def _accept(self, setup: dict[str, Any]) -> tuple[PublicKey, np.ndarray, PackingLayout, CharacteristicBins,
                                                      np.ndarray]:
        """Check the bank's setup and fit this host's bins (raises before anything is revealed)."""
        if BinningParams.from_dict(setup["params"]) != self.params:
            raise BinningProtocolError(f"{self.party}: the guest's binning parameters differ from this job's")
        if setup["ids_digest"] != ids_digest(self.ids) or int(setup["n_rows"]) != len(self.ids):
            raise BinningProtocolError(f"{self.party}: rows are not aligned with the guest's (different ids or order)")
        key = PublicKey.from_bytes(setup["public_key"])
        tr = np.asarray(setup["train_rows"], dtype=np.int64)
        if len(tr) == 0 or tr.min() < 0 or tr.max() >= len(self.ids) or len(np.unique(tr)) != len(tr):
            raise BinningProtocolError(f"{self.party}: invalid training rows in the guest's setup")
        if len(tr) != len(self.ids):
            # counts over two row sets that differ by one customer give that customer's bin in every
            # characteristic: the host only ever sums over all of its aligned (training) rows
            raise BinningProtocolError(f"{self.party}: the bank asked for bin counts over {len(tr)} of the "
                                       f"{len(self.ids)} aligned rows; refused (subsets allow differencing)")
        layout = label_layout(len(tr), key.bits)
        if layout.to_dict() != setup["layout"]:
            raise BinningProtocolError(f"{self.party}: the guest's packing layout differs from ours")
        bins = fit_bins(self.X[tr], self.names, self.params)
        B = bins.transform(self.X[tr])
        check_bin_sizes(bins, B, self.params.min_bin_rows, self.party)
        return key, tr, layout, bins, B

    def _apply_merge(self, msg: dict[str, Any], bins: CharacteristicBins, key_of: dict[str, str]
                     ) -> CharacteristicBins:
        groups = dict(zip((str(k) for k in msg["keys"]), msg["groups"], strict=True))
        if set(groups) != set(key_of.values()):
            raise BinningProtocolError(f"{self.party}: the guest's merge does not name every characteristic once")
        return CharacteristicBins([f.merge(groups[key_of[f.name]]) for f in bins.features])
