"""Where the CPU time of a protocol run goes: op counts × unit costs measured in this process.

:func:`unit_costs` times each counted Paillier operation (:mod:`algorithms.paillier.opcount`) on the
benchmark's own key, single-threaded, CPU time; :func:`budget_lines` multiplies them by a run's counts and
sets the sum against the CPU seconds the run really took (main process + pool workers). The remainder is
what the counted operations do not explain: Python overhead around gmpy2 calls (encoding, list handling,
chunking, pickling to the pool), numpy, the codec and the in-memory channel.

What it reveals: nothing; local timing.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable

import gmpy2
import numpy as np
from gmpy2 import mpz

from algorithms.paillier import (
    Decryptor,
    Encryptor,
    PrivateKey,
    PublicKey,
    QuantisedMatrix,
    elementwise_product,
    matmul_transpose,
)
from algorithms.paillier.comb import comb_table


def process_cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of this process and the given children (Linux /proc; 0 where unavailable)."""
    total = time.process_time()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


def _per_item(fn: Callable[[], object], count: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best / count


def unit_costs(public_key: PublicKey, private_key: PrivateKey, matrices: list[np.ndarray] | None = None
               ) -> dict[str, float]:
    """CPU seconds per counted operation, measured here with this key (one core, no pool).

    ``matrices``: plaintext matrices like the run's (e.g. each party's first batch of features) for the
    multi-exponentiation cost, which depends on the values (few distinct values are cheaper); default a
    continuous random matrix. Obfuscators are timed in bulk (the pool's window).
    """
    rng = np.random.default_rng(0)
    nsq = public_key.nsquare
    enc, crt, dec = Encryptor(public_key), Encryptor(public_key, private_key), Decryptor(private_key)
    enc.obfuscators(300)
    crt.obfuscators(300)  # tables outside the timing
    vec = enc.encrypt(rng.normal(size=1024), 32)
    quantised_all = [QuantisedMatrix.from_float(m[:1024], 16) for m in matrices] if matrices else []
    a = [mpz(secrets.randbelow(int(nsq))) for _ in range(2000)]
    b = a[1:] + a[:1]
    quantised = QuantisedMatrix.from_float(rng.normal(size=(1024, 8)), 16)
    slopes = rng.integers(1, 1 << 16, size=1024)
    costs = {
        "obfuscator_djn": _per_item(lambda: enc.obfuscators(300), 300),
        "obfuscator_djn_crt": _per_item(lambda: crt.obfuscators(300), 300),
        "multiexp_term": (_per_item(lambda: [matmul_transpose(vec.take(range(len(q.values))), q)
                                             for q in quantised_all], sum(q.values.size for q in quantised_all))
                          if quantised_all else _per_item(lambda: matmul_transpose(vec, quantised), 1024 * 8)),
        "elementwise_powmod": _per_item(lambda: elementwise_product(vec, slopes, 18), 1024),
        "decryption": _per_item(lambda: dec.decrypt_raw(vec.take(range(200))), 200),
        "sbt_histogram_mulmod": _per_item(lambda: [x * y % nsq for x, y in zip(a, b, strict=True)], 2000),
        "sbt_histogram_inversion": _per_item(lambda: [x * gmpy2.invert(y, nsq) % nsq for x, y in
                                                      zip(a[:200], b[:200], strict=True)], 200),
        "sbt_compress_shift": _per_item(lambda: [gmpy2.powmod(x, mpz(1) << 135, nsq) for x in a[:100]], 100),
    }
    costs["obfuscator_phe"] = _per_item(lambda: Encryptor(public_key, obfuscation="phe").obfuscators(20), 20, 1)
    return costs


def table_line(public_key: PublicKey, workers: int, prefix: str) -> str:
    """The obfuscators' comb layout and what building its table costs (once per key in every pool worker)."""
    encryptor = Encryptor(public_key)
    layout = encryptor.layout
    nsq = public_key.nsquare
    start = time.process_time()
    comb_table(public_key.hs if public_key.hs is not None else mpz(4), nsq, layout)
    build = time.process_time() - start
    return (f"{prefix}_obfuscator_table: teeth={layout.teeth} columns={layout.columns} "
            f"multiplications={layout.multiplications:.0f} squarings={layout.squarings} entries={layout.entries} "
            f"build_cpu_s={build:.2f} per pool worker, {workers} workers: {build * workers:.2f} s of the other CPU")


def budget_lines(ops: dict[str, int], costs: dict[str, float], cpu_seconds: float, prefix: str,
                 divisor: float = 1.0) -> list[str]:
    """``key=value`` lines: count and estimated CPU seconds per op kind (÷ ``divisor``, e.g. per tree)."""
    lines, explained = [], 0.0
    for kind in sorted(ops):
        unit = costs.get(kind)
        count = ops[kind] / divisor
        if unit is None:
            lines.append(f"{prefix}_{kind}: count={count:.0f} (no unit cost)")
            continue
        seconds = count * unit
        explained += seconds
        lines.append(f"{prefix}_{kind}: count={count:.0f} unit_us={unit * 1e6:.1f} cpu_s={seconds:.2f}")
    total = cpu_seconds / divisor
    lines.append(f"{prefix}_counted_ops_cpu_s={explained:.2f} {prefix}_total_cpu_s={total:.2f} "
                 f"{prefix}_other_cpu_s={total - explained:.2f} (Python/numpy/codec/channel overhead)")
    return lines
