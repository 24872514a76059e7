"""Secure aggregation cost: FedAvg rounds with SecAgg vs plain aggregation, dropouts, 50 clients.

In-process (the real client and aggregator roles in threads over :class:`federation.channel.InMemoryNetwork`,
every message through the msgpack codec exactly as over gRPC; not over gRPC + mTLS services):

1. 10 clients on the bundled default-credit horizontal data (24,000 rows dealt IID), an MLP with 100,051
   parameters (23 → 400 → 225 → 1), one local epoch per round: FedAvg rounds with plain aggregation and
   with secure aggregation, alternating runs in the same process; round time = the aggregator's round
   duration (local training + aggregation), median over rounds. Also the aggregation step alone (the SecAgg
   protocol for 100,051 coordinates vs receiving and adding the same 10 float64 vectors).
2. 10 clients, 3 (30 %) dropping after sending their masked input, and 3 dropping before: is the
   unmasked ring sum exactly the sum of the expected clients' quantised vectors?
3. 50 clients (SecAgg+ graph, degree 18), 100,051 coordinates: aggregation time and bytes each client sends.

    python -m benchmarks.secagg [--rounds 2]

Last lines: ``secagg_round_overhead=`` (secure / plain round time; goal <= 2.0) and ``secagg_dropout_exact=``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import threading
import time
from collections import defaultdict

import numpy as np
import pandas as pd
from cryptography.hazmat.primitives.asymmetric import ec

from algorithms.horizontal.estimator import FederatedClassifier
from algorithms.secagg import EcSigner, KeyVerifier, SecAggClient, SecAggConfig, SecAggServer
from algorithms.secagg.horizontal import HORIZONTAL_CONFIG, secure_aggregation
from datasets import load_default_credit_horizontal
from datasets.partition import horizontal_iid_split
from federation.channel import Channel, InMemoryNetwork
from federation.codec import Payload

HIDDEN = (400, 225)
D = 23 * 400 + 400 + 400 * 225 + 225 + 225 + 1  # 100,051


def keys_for(names):
    keys = {c: ec.generate_private_key(ec.SECP256R1()) for c in names}
    return {c: EcSigner(c, k) for c, k in keys.items()}, KeyVerifier({c: k.public_key() for c, k in keys.items()})


def fedavg_rounds(clients: dict[str, pd.DataFrame], rounds: int, secure: bool) -> list[float]:
    kw = {}
    if secure:
        signers, verifier = keys_for(clients)
        kw["collector"], kw["sender"] = secure_aggregation(signers, verifier)
    fc = FederatedClassifier("fedavg", model="mlp", hidden=HIDDEN, rounds=rounds, local_epochs=1, batch_size=256,
                             learning_rate=0.05, round_timeout=300.0, join_timeout=120.0, min_fit_clients=3,
                             min_updates=3, **kw).fit(clients)
    return [r.seconds for r in fc.history_]


class Dropping(Channel):
    def __init__(self, inner: Channel, at: str) -> None:
        super().__init__(inner.party_id)
        self.inner, self.at = inner, at

    def send(self, receiver: str, tag: str, payload: Payload) -> None:
        if tag.endswith("." + self.at):
            raise ConnectionAbortedError(self.party_id)
        self.inner.send(receiver, tag, payload)

    def recv(self, sender: str, tag: str, timeout: float | None = None) -> Payload:
        return self.inner.recv(sender, tag, timeout)


def secagg_round(n: int, d: int, drop: dict[str, str] | None = None, config: SecAggConfig = HORIZONTAL_CONFIG,
                 seed: int = 0):
    """One SecAgg round of ``n`` clients; returns (result, expected ring sum, seconds, bytes sent per client)."""
    ids = [f"c{i:02d}" for i in range(n)]
    signers, verifier = keys_for(ids)
    rng = np.random.default_rng(seed)
    xs = {c: rng.normal(0, 100.0, d) for c in ids}
    net = InMemoryNetwork(record=True)
    server = SecAggServer("arbiter", ids, config, "bench")
    out: dict[str, object] = {}
    drop = drop or {}

    def client(c: str) -> None:
        ch: Channel = net.channel(c)
        if c in drop:
            ch = Dropping(ch, drop[c])
        with contextlib.suppress(ConnectionAbortedError):  # a simulated dropout
            SecAggClient(c, "arbiter", ids, config, signers[c], verifier, "bench").aggregate(ch, xs[c], 0)

    sch = net.channel("arbiter")
    threads = [threading.Thread(target=client, args=(c,)) for c in ids]
    t0, c0 = time.perf_counter(), time.process_time()
    for t in threads:
        t.start()
    out["result"] = server.aggregate(sch, d, 0)
    seconds = time.perf_counter() - t0
    for t in threads:
        t.join()
    out["cpu"] = time.process_time() - c0  # every party's thread: the whole protocol's CPU
    q = server.session(0).quantiser
    included = [c for c in ids if drop.get(c) != "masked"]
    expected = np.sum([q.encode(xs[c]) for c in included], axis=0, dtype=np.uint64) & q.mask
    sent: dict[str, int] = defaultdict(int)
    for dl in net.transcript:
        sent[dl.sender] += dl.size
    CPU.setdefault(n, []).append(float(out["cpu"]))  # type: ignore[arg-type]
    return out["result"], expected, seconds, {c: sent[c] for c in ids}


CPU: dict[int, list[float]] = {}


def plain_aggregation(n: int, d: int) -> tuple[float, float]:
    """Receive n float64 vectors through the codec and add them (the plain collector's work)."""
    net = InMemoryNetwork()
    rng = np.random.default_rng(0)
    ids = [f"c{i:02d}" for i in range(n)]
    sch = net.channel("arbiter")
    vectors = {c: rng.normal(0, 1, d) for c in ids}
    t0, c0 = time.perf_counter(), time.process_time()
    for c in ids:
        net.channel(c).send("arbiter", "upd", {"vectors": {"delta": vectors[c]}})
    total = np.zeros(d)
    for c in ids:
        total += sch.recv(c, "upd")["vectors"]["delta"]
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    data = load_default_credit_horizontal()
    pool = pd.concat([data[k] for k in ("guest", "host_1", "host_2")], ignore_index=True)
    clients = {f"bank-{i}": f for i, f in enumerate(horizontal_iid_split(pool, 10, seed=0))}
    print(f"mode: in-process (InMemoryNetwork, codec bytes as over gRPC); MLP {HIDDEN}: {D} parameters")

    plain_t, secure_t = [], []
    c0 = time.process_time()
    w0 = time.perf_counter()
    for _ in range(2):
        plain_t += fedavg_rounds(clients, args.rounds, secure=False)
        secure_t += fedavg_rounds(clients, args.rounds, secure=True)
    plain, secure = statistics.median(plain_t), statistics.median(secure_t)
    print(f"10 clients FedAvg round (local epoch + aggregation): plain {plain:.3f} s, secure {secure:.3f} s "
          f"(medians of {len(plain_t)} rounds; {time.perf_counter() - w0:.1f} s wall, "
          f"{time.process_time() - c0:.1f} s CPU for all runs)")

    plain_runs = [plain_aggregation(10, D) for _ in range(3)]
    agg_plain, cpu_plain = statistics.median(r[0] for r in plain_runs), statistics.median(r[1] for r in plain_runs)
    runs = [secagg_round(10, D, seed=i) for i in range(3)]
    agg_secure, cpu_secure = statistics.median(r[2] for r in runs), statistics.median(CPU[10])
    print(f"10 clients aggregation step alone (all parties, {D} coordinates): plain {agg_plain:.3f} s wall / "
          f"{cpu_plain:.3f} s CPU, secure {agg_secure:.3f} s wall / {cpu_secure:.3f} s CPU "
          f"(ratio {agg_secure / agg_plain:.1f} wall, {cpu_secure / cpu_plain:.1f} CPU)")
    exact_none = all(np.array_equal(r[0].ring_total, r[1]) for r in runs)

    after = {c: "consistency" for c in ("c01", "c04", "c08")}
    before = {c: "masked" for c in ("c02", "c05", "c09")}
    dropout_cfg = SecAggConfig(clip=HORIZONTAL_CONFIG.clip, bits=HORIZONTAL_CONFIG.bits, deadline=2.0)
    res_a, exp_a, t_a, _ = secagg_round(10, D, after, dropout_cfg, seed=7)
    res_b, exp_b, t_b, _ = secagg_round(10, D, before, dropout_cfg, seed=8)
    exact_a, exact_b = np.array_equal(res_a.ring_total, exp_a), np.array_equal(res_b.ring_total, exp_b)
    print(f"30 % dropping after masking: exact={int(exact_a)} (late {list(res_a.late)}), {t_a:.2f} s incl. "
          f"one 2 s stage deadline; 30 % dropping before masking: exact={int(exact_b)} "
          f"(dropped {list(res_b.dropped)}), {t_b:.2f} s")

    res50, exp50, t50, sent50 = secagg_round(50, D, seed=3)
    cpu50 = CPU[50][-1]
    per_client = statistics.median(sent50.values())
    degree = len(SecAggServer("a", sent50, HORIZONTAL_CONFIG, "bench").session(0).neighbours["c00"])
    exact50 = int(np.array_equal(res50.ring_total, exp50))
    print(f"50 clients (SecAgg+ degree {degree}): aggregation {t50:.2f} s wall, {cpu50:.2f} s CPU; exact={exact50}")
    _, _, _, sent10 = secagg_round(10, D, seed=4)
    print(f"bytes sent per client: 10 clients {statistics.median(sent10.values()) / 1e6:.3f} MB, 50 clients "
          f"{per_client / 1e6:.3f} MB (plain float64 update: {8 * D / 1e6:.3f} MB)")
    print(f"secagg_aggregation_ratio={agg_secure / agg_plain:.2f}")
    print(f"secagg_aggregation_cpu_ratio={cpu_secure / cpu_plain:.2f}")
    print(f"secagg_time_50_clients_s={t50:.2f}")
    print(f"secagg_bytes_per_client_50={per_client}")
    print(f"secagg_round_overhead={secure / plain:.2f}")
    print(f"secagg_dropout_exact={int(exact_none and exact_a and exact_b)}")


if __name__ == "__main__":
    main()
