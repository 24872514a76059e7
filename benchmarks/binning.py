"""Benchmark: IV of the insurer's 10 characteristics under the bank's 2048-bit Paillier key.

Default credit, the 24,000 training rows of the 80/20 split (seed 42), 10 quantile bins per characteristic.
Runs the real bank and insurer roles (in-process, every message through the codec) and compares the
decrypted WOE/IV with the plaintext computation on the joined data. Prints the wall and CPU time (this
process plus its worker processes, read from /proc) of the encrypted run and of its phases, the Paillier op
counts, the same process's cost of merely encrypting 24,000 labels (measured on 4,000, scaled: the floor of
any protocol of this shape) and the ratio to it, and last ``iv_max_abs_err=`` (IV and WOE, vs plaintext)
and ``iv_seconds=`` (wall, key pair generated beforehand, the worker pool started outside the timed region).

Run: ``python -m benchmarks.binning``.
"""

from __future__ import annotations

import multiprocessing
import os
import time

import numpy as np

from algorithms.base import Parties
from algorithms.binning import BinningGuest, BinningHost, BinningParams, plain_woe
from algorithms.binning.protocol import fit_bins
from algorithms.paillier import generate_keypair, opcount, shared_executor
from datasets import load_default_credit_vertical, train_test_split_ids
from federation.channel import InMemoryNetwork, run_parties


def cpu_seconds() -> float:
    """CPU time of this process and its live children (the worker pool)."""
    total = time.process_time()
    tick = os.sysconf("SC_CLK_TCK")
    for child in multiprocessing.active_children():
        try:
            with open(f"/proc/{child.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def main() -> None:
    data = load_default_credit_vertical()
    train_ids, _ = train_test_split_ids(data.guest)
    train = data.subset(train_ids)
    g, h = train.guest, train.hosts["insurer"]
    gn = [c for c in g.columns if c not in ("id", "y")]
    hn = [c for c in h.columns if c != "id"]
    y, ids = g["y"].to_numpy(), g["id"].astype(str).to_numpy()
    params = BinningParams(n_bins=10)
    parties = Parties("bank", ("insurer",))
    keypair = generate_keypair(2048)
    executor = shared_executor()
    executor.submit(int).result()  # start the worker pool outside the timed region
    list(executor.map(int, range(8)))
    opcount.reset()
    net = InMemoryNetwork()
    channels = {p: net.channel(p) for p in ("bank", "insurer")}
    guest = BinningGuest(g[gn].to_numpy(), gn, y, ids, params, parties, keypair=keypair, executor=executor)
    host = BinningHost(h[hn].to_numpy(), hn, ids, params, parties, "insurer", executor=executor)
    cpu0, start = cpu_seconds(), time.perf_counter()
    out = run_parties({"bank": lambda: guest.run(channels["bank"]),
                       "insurer": lambda: host.run(channels["insurer"])}, net)
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu0
    ops = opcount.snapshot()
    # plaintext reference on the joined data (same bins: the host fits them on its own columns)
    ref_bins = fit_bins(h[hn].to_numpy(), hn, params)
    B = ref_bins.transform(h[hn].to_numpy())
    by_token = {c.key: c for c in out["bank"].of("insurer")}
    err = 0.0
    print(f"{'characteristic':>14} {'bins':>4} {'IV (encrypted)':>16} {'IV (plaintext)':>16}")
    for j, name in enumerate(hn):
        ref = plain_woe(B[:, j], y, ref_bins.features[j].n_bins)
        got = by_token[out["insurer"].tokens[name]]
        err = max(err, abs(got.iv - ref.iv), float(np.abs(got.table.woe - ref.woe).max()))
        print(f"{name:>14} {len(ref.woe):>4} {got.iv:>16.10f} {ref.iv:>16.10f}")
    # same-process baseline: the floor of any such protocol, one fresh encryption per label (4,000 rows, scaled)
    from algorithms.binning.protocol import label_layout
    from algorithms.paillier import Encryptor

    layout = label_layout(len(ids), keypair[0].bits)
    g_int, h_int = layout.quantise(y[:4000] - 1.0, np.zeros(4000))
    t0 = time.perf_counter()
    Encryptor(keypair[0], keypair[1], executor=executor).encrypt_encoded(layout.encode_rows(g_int, h_int), 0,
                                                                         layout.row_bound)
    floor = (time.perf_counter() - t0) * len(ids) / 4000
    print(f"encryption_floor_seconds={floor:.2f} iv_over_encryption_floor={seconds / floor:.2f}")
    print(f"rows={len(ids)} host_characteristics={len(hn)} key_bits={keypair[0].bits} "
          f"load_average_1min={os.getloadavg()[0]:.1f}")
    print("paillier_ops " + " ".join(f"{k}={v}" for k, v in sorted(ops.items())))
    print(f"iv_cpu_seconds={cpu:.2f}")
    print(f"iv_max_abs_err={err:.3e}")
    print(f"iv_seconds={seconds:.2f}")


if __name__ == "__main__":
    main()
