"""Paillier throughput on this machine: ``phe`` as-is versus fedrisk's fast paths, in the same process.

Prints encryptions per second per core for ``phe.PaillierPublicKey.encrypt`` (float values), for the DJN
fixed-base path and for the CRT path of the key holder, plus decryption, re-randomisation and
multi-exponentiation costs, and the throughput with the 2-process pool. Last line:
``encrypt_speedup_vs_phe=<fast-path encryptions/s ÷ phe encryptions/s, one core each>``.

Run: ``python -m benchmarks.paillier``.
"""

from __future__ import annotations

import time

import numpy as np

from algorithms.paillier import (
    Decryptor,
    Encryptor,
    QuantisedMatrix,
    generate_keypair,
    matmul_transpose,
    shared_executor,
)


def best_rate(fn, count: int, repeats: int = 3) -> float:
    """Best items/second over ``repeats`` runs of ``fn()`` processing ``count`` items."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return count / best


def main() -> None:
    pub, priv = generate_keypair(2048)
    rng = np.random.default_rng(0)
    phe_pub = pub.to_phe()

    n_phe, n_fast = 40, 1000
    phe_values = rng.normal(size=n_phe).tolist()
    phe_rate = best_rate(lambda: [phe_pub.encrypt(v) for v in phe_values], n_phe)

    values = rng.normal(size=n_fast)
    djn = Encryptor(pub)
    crt = Encryptor(pub, priv)
    djn.encrypt(values[:10], 32)  # build the fixed-base tables outside the timing
    crt.encrypt(values[:10], 32)
    djn_rate = best_rate(lambda: djn.encrypt(values, 32), n_fast)
    crt_rate = best_rate(lambda: crt.encrypt(values, 32), n_fast)

    vector = djn.encrypt(values, 32)
    rerand_rate = best_rate(lambda: djn.rerandomize(vector), n_fast)
    decryptor = Decryptor(priv)
    dec_rate = best_rate(lambda: decryptor.decrypt(vector), n_fast)
    x = QuantisedMatrix.from_float(rng.normal(size=(n_fast, 8)))
    term_rate = best_rate(lambda: matmul_transpose(vector, x), n_fast * 8)

    pool = shared_executor()
    pooled = Encryptor(pub, executor=pool)
    pooled.encrypt(values[:600], 32)  # warm the workers and their tables
    pool_rate = best_rate(lambda: pooled.encrypt(np.tile(values, 4), 32), 4 * n_fast)

    print("2048-bit key, one core unless stated (best of 3)")
    print(f"phe.encrypt(float)                 {phe_rate:10.1f} /s   {1e3 / phe_rate:7.3f} ms")
    print(f"fast encrypt, DJN fixed-base       {djn_rate:10.1f} /s   {1e3 / djn_rate:7.3f} ms")
    print(f"fast encrypt, DJN + CRT (key owner){crt_rate:10.1f} /s   {1e3 / crt_rate:7.3f} ms")
    print(f"re-randomise (DJN)                 {rerand_rate:10.1f} /s   {1e3 / rerand_rate:7.3f} ms")
    print(f"CRT decrypt                        {dec_rate:10.1f} /s   {1e3 / dec_rate:7.3f} ms")
    print(f"multi-exponentiation, 16-bit terms {term_rate:10.1f} /s   {1e6 / term_rate:7.1f} us/term")
    print(f"fast encrypt, DJN, 2-process pool  {pool_rate:10.1f} /s   (all cores)")
    print(f"crt_encrypt_speedup_vs_phe={crt_rate / phe_rate:.1f}")
    print(f"encrypt_speedup_vs_phe={djn_rate / phe_rate:.1f}")


if __name__ == "__main__":
    main()
