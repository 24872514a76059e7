"""PSI alignment time: guest and host with 30,000 ids each (27,000 shared), in-process threads.

Run: ``python -m benchmarks.psi [n]``. Both parties share this machine's cores, so the figure is an
upper bound for two separate machines.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from algorithms.base import Parties
from algorithms.psi import PsiGuest, PsiHost
from federation.channel import InMemoryNetwork, run_parties


def main(n: int = 30_000) -> float:
    overlap = int(n * 0.9)
    guest_ids = [f"CUST-{i:08d}" for i in range(n)]
    host_ids = [f"CUST-{i:08d}" for i in range(n - overlap, 2 * n - overlap)]
    np.random.default_rng(0).shuffle(host_ids)
    parties = Parties(guest="bank", hosts=("insurer",))
    network = InMemoryNetwork()
    channels = {p: network.channel(p) for p in parties.silos}
    start = time.perf_counter()
    results = run_parties({"bank": lambda: PsiGuest(guest_ids, parties, "bench").run(channels["bank"]),
                           "insurer": lambda: PsiHost(host_ids, parties, "bench").run(channels["insurer"])}, network)
    seconds = time.perf_counter() - start
    assert len(results["bank"]) == overlap and results["bank"].ids == results["insurer"].ids
    print(f"ids per side={n} intersection={overlap} bytes exchanged={network.bytes_sent}")
    print(f"psi_{n // 1000}k_seconds={seconds:.2f}")
    return seconds


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30_000)
