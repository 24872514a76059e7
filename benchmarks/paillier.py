"""Paillier throughput on this machine: ``phe`` as-is versus fedrisk's fast paths, in the same process.

Prints encryptions per second per core for ``phe.PaillierPublicKey.encrypt`` (float values), for the DJN
fixed-base path and for the CRT path of the key holder, plus decryption, re-randomisation and
multi-exponentiation costs, and the throughput with the 2-process pool. Last line:
``encrypt_speedup_vs_phe=<fast-path encryptions/s ÷ phe encryptions/s, one core each>``.

Run: ``python -m benchmarks.paillier``.

``--vs-heu`` instead compares with SecretFlow HEU's ZPaillier (C++, pip ``sf-heu``, the optional ``bench``
extra): the same plaintexts (signed 41-bit integers) are encrypted and decrypted by HEU and by fedrisk,
one core each (the process is pinned to one CPU, so HEU's thread pool has one core too), alternating
rounds in one process, CPU seconds per element (median over rounds). Both use their default 2048-bit
keys: HEU's ZPaillier key, fedrisk's key under Ma et al.'s conditions (448-bit obfuscator exponents,
see :mod:`algorithms.paillier.keys`). Last lines: ``encrypt_speedup_vs_heu=`` (HEU time ÷ ours on the
non-key-holder path), ``decrypt_speedup_vs_heu=``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import phe

from algorithms.paillier import (
    Decryptor,
    Encryptor,
    PrivateKey,
    PublicKey,
    QuantisedMatrix,
    generate_keypair,
    matmul_transpose,
    shared_executor,
)

T = TypeVar("T")


def best_rate(fn, count: int, repeats: int = 3) -> float:
    """Best items/second over ``repeats`` runs of ``fn()`` processing ``count`` items."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return count / best


def timed(fn: Callable[..., T], *args: Any) -> tuple[T, float]:
    """``fn(*args)`` and the CPU seconds it took."""
    start = time.process_time()
    result = fn(*args)
    return result, time.process_time() - start


def vs_heu(count: int, rounds: int) -> None:
    """HEU ZPaillier versus fedrisk, same plaintexts, one core, alternating rounds."""
    try:
        from heu import numpy as hnp
        from heu import phe as hphe
    except ImportError as exc:  # pragma: no cover - optional benchmark dependency
        raise SystemExit(f"--vs-heu needs SecretFlow HEU: pip install 'fedrisk[bench]' ({exc})") from exc
    cpu = sorted(os.sched_getaffinity(0))[-1]
    os.sched_setaffinity(0, {cpu})
    kit = hnp.setup(hphe.SchemaType.ZPaillier, 2048)
    heu_codec = kit.integer_encoder()
    heu_enc, heu_dec = kit.encryptor(), kit.decryptor()
    pub, priv = generate_keypair(2048)
    ours, ours_crt, decryptor = Encryptor(pub), Encryptor(pub, priv), Decryptor(priv)
    rng = np.random.default_rng(0)
    plain = [int(v) for v in rng.integers(-2**40, 2**40, size=count)]
    heu_plain = kit.array(plain, heu_codec)
    ours.encrypt_encoded(plain[:8], 0)  # build the fixed-base tables outside the timing
    ours_crt.encrypt_encoded(plain[:8], 0)
    heu_enc.encrypt(kit.array(plain[:8], heu_codec))
    ordinary_pub, ordinary_priv = (PublicKey.from_phe(k) if i == 0 else PrivateKey.from_phe(k)  # type: ignore[arg-type]
                                   for i, k in enumerate(phe.generate_paillier_keypair(n_length=2048)))
    ordinary = Encryptor(ordinary_pub).encrypt_encoded(plain, 0)  # full DJN exponent, full decryption exponents
    ordinary_decryptor = Decryptor(ordinary_priv)  # type: ignore[arg-type]
    times: dict[str, list[float]] = {k: [] for k in ("heu_enc", "our_enc", "our_crt", "heu_dec", "our_dec", "full_dec")}
    for _ in range(rounds):
        heu_ct, t = timed(heu_enc.encrypt, heu_plain)
        times["heu_enc"].append(t)
        our_ct, t = timed(ours.encrypt_encoded, plain, 0)
        times["our_enc"].append(t)
        times["our_crt"].append(timed(ours_crt.encrypt_encoded, plain, 0)[1])
        heu_pt, t = timed(heu_dec.decrypt, heu_ct)
        times["heu_dec"].append(t)
        our_back, t = timed(decryptor.decrypt_ints, our_ct)
        times["our_dec"].append(t)
        times["full_dec"].append(timed(ordinary_decryptor.decrypt_ints, ordinary)[1])
        heu_back = [int(v) for v in heu_pt.to_numpy(heu_codec).ravel()]
        if heu_back != plain or our_back != plain:
            raise SystemExit("decryption mismatch")
    med = {k: statistics.median(v) / count * 1e3 for k, v in times.items()}
    print(f"HEU ZPaillier (sf-heu) vs fedrisk, 2048-bit keys, {count} plaintexts x {rounds} alternating rounds, "
          f"pinned to CPU {cpu}, CPU ms per element (median); load average {os.getloadavg()[0]:.1f}")
    print(f"heu_encrypt_ms={med['heu_enc']:.3f} fedrisk_encrypt_ms={med['our_enc']:.3f} "
          f"fedrisk_crt_encrypt_ms={med['our_crt']:.3f} (key holder)")
    print(f"heu_decrypt_ms={med['heu_dec']:.3f} fedrisk_decrypt_ms={med['our_dec']:.3f} "
          f"fedrisk_decrypt_ordinary_key_ms={med['full_dec']:.3f} (phe-generated key: full exponents)")
    comb = ours.layout
    print(f"fedrisk obfuscator exponent {ours.alpha_bits} bits, Lim-Lee comb of {comb.teeth} teeth "
          f"x {comb.columns} columns ({comb.multiplications:.0f} multiplications + {comb.squarings} squarings each)")
    print(f"crt_encrypt_speedup_vs_heu={med['heu_enc'] / med['our_crt']:.2f}")
    print(f"encrypt_speedup_vs_heu={med['heu_enc'] / med['our_enc']:.2f}")
    print(f"decrypt_speedup_vs_heu={med['heu_dec'] / med['our_dec']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vs-heu", action="store_true", help="compare with SecretFlow HEU ZPaillier")
    parser.add_argument("--count", type=int, default=500, help="plaintexts per round (--vs-heu)")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (--vs-heu)")
    args = parser.parse_args()
    if args.vs_heu:
        vs_heu(args.count, args.rounds)
        return
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
