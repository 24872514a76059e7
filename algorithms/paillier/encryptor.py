"""Fast Paillier encryption and re-randomisation.

Encryption is ``c = (1 + m·n) · ρ mod n²`` where the obfuscator ``ρ`` is an n-th power in ``Z*_{n²}``:

* ``"djn"`` (default) — Damgård–Jurik–Nielsen obfuscation ``ρ = hs^α`` with ``hs = h^n mod n²``,
  ``h = −x² mod n`` for a random ``x``, and a fresh ``α`` of ⌈|n|/2⌉ bits per ciphertext
  (I. Damgård, M. Jurik, J. B. Nielsen, "A generalization of Paillier's public-key system with
  applications to electronic voting", Int. J. Inf. Secur. 9, 2010; I. Damgård, M. Jurik, PKC 2001).
  When the key was generated under the conditions of Ma, Han, Lei (ACSAC 2021, see
  :mod:`algorithms.paillier.keys`) it publishes its own ``hs`` of order dividing ``2·p₀·q₀`` and ``α`` is
  drawn with ℓ bits (448 for a 2048-bit ``n``), as that paper prescribes; for any other key the DJN
  exponent above is kept. ``hs^α`` is computed from a precomputed Lim–Lee comb table
  (:mod:`algorithms.paillier.comb`; the cheapest layout whose table fits :data:`TABLE_BUDGET_BYTES`: for a
  448-bit ``α`` modulo a 4096-bit ``n²`` 31 multiplications and 6 squarings), instead of a full exponentiation.
  The encryptor that holds the private key (e.g. the guest in SecureBoost) evaluates the table modulo
  ``p²`` and ``q²`` and recombines by CRT, which roughly halves the cost again.
* ``"phe"`` — python-paillier's randomness ``ρ = r^n mod n²`` for a uniform ``r`` (about 10× slower).

``rerandomize`` multiplies ciphertexts by fresh obfuscators, so a party that adds its own plaintext to
a peer's ciphertext can send the result back without the peer stripping its old randomness.

What it reveals: nothing; the ciphertexts are semantically secure under the DCR assumption (DJN:
also the small-root assumption on ``hs``, with ``h`` fresh per encryptor and never sent; Ma et al.'s keys:
the assumptions of that paper, with the key holder's published ``hs``).
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from concurrent.futures import Executor
from typing import Literal

import gmpy2
import numpy as np
from gmpy2 import mpz

from algorithms.paillier import opcount
from algorithms.paillier.comb import CombLayout, comb_indices, comb_layout, comb_power, comb_table
from algorithms.paillier.encoding import check_bound, encode
from algorithms.paillier.keys import PrivateKey, PublicKey
from algorithms.paillier.parallel import Packed, chunk_slices, parallel_map, remote, unpacked, workers
from algorithms.paillier.vector import CiphertextVector, times_g_power

Obfuscation = Literal["djn", "phe"]

#: Memory one fixed-base table may take per process (bytes); the comb layout is the cheapest that fits.
TABLE_BUDGET_BYTES = 48 << 20
MAX_WINDOW_BITS = 12
_MIN_PARALLEL = 256
#: Table for small requests served in the calling process (a few hundred per run: a big table would cost
#: more to build than it saves; about the size of a 6-bit window table).
SMALL_TABLE_BUDGET_BYTES = 5 << 19

# Worker-side cache of fixed-base tables (at most TABLE_BUDGET_BYTES each), keyed by (modulus, base, layout):
# built once per process, bounded so a long-running service that creates many encryptors does not grow
# without limit.
_TABLES: OrderedDict[tuple[int, int, CombLayout], list[mpz]] = OrderedDict()
_MAX_TABLES = 4


def window_bits(exponent_bits: int, modulus_bits: int, budget: int = TABLE_BUDGET_BYTES) -> int:
    """The widest plain fixed-base window (≤ :data:`MAX_WINDOW_BITS`) whose table fits ``budget`` bytes.

    Kept as the reference point of :func:`~algorithms.paillier.comb.comb_layout`, which never costs more.
    """
    entry = (modulus_bits + 7) // 8 + 32  # digits plus the mpz object
    best = 4
    for w in range(4, MAX_WINDOW_BITS + 1):
        if -(-exponent_bits // w) * (1 << w) * entry <= budget:
            best = w
    return best


def _fixed_base_table(base: mpz, modulus: mpz, layout: CombLayout) -> list[mpz]:
    key = (int(modulus), int(base), layout)
    table = _TABLES.get(key)
    if table is not None:
        _TABLES.move_to_end(key)
    else:
        table = comb_table(base, modulus, layout)
        _TABLES[key] = table
        while len(_TABLES) > _MAX_TABLES:
            _TABLES.popitem(last=False)
    return table


def _djn_obfuscators(spec: tuple[int, ...], count: int, alpha_bits: int, budget: int = TABLE_BUDGET_BYTES,
                     pack: bool = False) -> list[mpz] | Packed:
    """``count`` fresh ``hs^α`` values, ``α`` uniform in ``[0, 2^alpha_bits)`` from the OS CSPRNG.

    ``spec`` is (nsquare, hs) or, for the key holder, (nsquare, hs, p², q², (p²)⁻¹ mod q², o_p, o_q) with
    ``o_p``, ``o_q`` the orders of ``hs`` modulo p² and q² where known (Ma et al.'s ``2p₀``, ``2q₀``; else 0):
    then ``hs^α mod p² = hs^(α mod o_p) mod p²`` — the same value from an exponent half as long. The powers
    come from a Lim–Lee comb table of at most ``budget`` bytes (the key holder: two of half that). ``pack``:
    return them as one :class:`~algorithms.paillier.parallel.Packed` blob (from a pool worker).
    """
    gmpy2.get_context().allow_release_gil = True
    out = _djn_powers(spec, count, alpha_bits, budget)
    return Packed.of(out, (int(mpz(spec[0]).bit_length()) + 7) // 8) if pack else out


def _djn_powers(spec: tuple[int, ...], count: int, alpha_bits: int, budget: int) -> list[mpz]:
    alphas = [secrets.randbits(alpha_bits) for _ in range(count)]
    if len(spec) == 2:
        nsq, hs = mpz(spec[0]), mpz(spec[1])
        layout = comb_layout(alpha_bits, int(nsq.bit_length()), budget)
        table = _fixed_base_table(hs, nsq, layout)
        return [comb_power(table, ix, layout, nsq) for ix in comb_indices(alphas, layout)]
    _, hs, psq, qsq, psq_inv, order_p, order_q = (mpz(v) for v in spec)
    halves = []
    for prime_sq, order in ((psq, order_p), (qsq, order_q)):
        bits = int(order.bit_length()) if order else alpha_bits
        layout = comb_layout(bits, int(prime_sq.bit_length()), budget // 2)
        table = _fixed_base_table(hs % prime_sq, prime_sq, layout)
        exponents = [a % order for a in alphas] if order else alphas
        halves.append([comb_power(table, ix, layout, prime_sq) for ix in comb_indices(exponents, layout)])
    return [xp + psq * ((xq - xp) * psq_inv % qsq) for xp, xq in zip(*halves, strict=True)]


def _phe_obfuscators(n: int, count: int) -> list[mpz]:
    gmpy2.get_context().allow_release_gil = True
    n_ = mpz(n)
    nsq = n_ * n_
    out = []
    for _ in range(count):
        r = mpz(secrets.randbelow(n - 1) + 1)
        while gmpy2.gcd(r, n_) != 1:  # pragma: no cover - probability ~2^-1023
            r = mpz(secrets.randbelow(n - 1) + 1)
        out.append(gmpy2.powmod(r, n_, nsq))
    return out


class Encryptor:
    """Encrypts and re-randomises vectors under ``public_key``.

    Pass ``private_key`` when this party is the key holder: DJN obfuscators are then computed by CRT.
    ``executor`` spreads the obfuscator generation over processes (``None``: inline). A key that carries
    Ma et al.'s ``hs`` (:attr:`PublicKey.hs`) is used with its ℓ-bit exponents; otherwise a fresh DJN ``h``.
    """

    def __init__(self, public_key: PublicKey, private_key: PrivateKey | None = None,
                 obfuscation: Obfuscation = "djn", executor: Executor | None = None) -> None:
        if obfuscation not in ("djn", "phe"):
            raise ValueError(f"unknown obfuscation {obfuscation!r}")
        if private_key is not None:
            public_key.require(private_key.public_key)
        self.public_key = public_key
        self.obfuscation = obfuscation
        self.executor = executor
        n, nsq = public_key.n, public_key.nsquare
        published = public_key.hs if public_key.hs is not None else (
            private_key.public_key.hs if private_key is not None else None)
        if published is not None:  # Ma et al.'s key: its own base, ℓ-bit exponents
            owner = public_key if public_key.hs is not None else private_key.public_key  # type: ignore[union-attr]
            self.alpha_bits = owner.exponent_bits
            hs_n = published
        else:
            self.alpha_bits = (public_key.bits + 1) // 2
            x = mpz(secrets.randbelow(int(n) - 2) + 2)
            h = (-(x * x)) % n
            if private_key is None:
                hs_n = gmpy2.powmod(h, n, nsq)
            else:
                p2, q2 = private_key.psquare, private_key.qsquare
                hs = (gmpy2.powmod(h % p2, n % (p2 - private_key.p), p2),
                      gmpy2.powmod(h % q2, n % (q2 - private_key.q), q2))
                hs_n = hs[0] + p2 * ((hs[1] - hs[0]) * gmpy2.invert(p2, q2) % q2)
        if private_key is None:
            self._spec: tuple[int, ...] = (int(nsq), int(hs_n))
            self.layout = comb_layout(self.alpha_bits, int(nsq.bit_length()), TABLE_BUDGET_BYTES)
        else:
            p2, q2 = private_key.psquare, private_key.qsquare
            orders = (private_key.p_order, private_key.q_order) if published is not None else (0, 0)
            self._spec = (int(nsq), int(hs_n), int(p2), int(q2), int(gmpy2.invert(p2, q2)), *map(int, orders))
            exponent = int(orders[0]).bit_length() or self.alpha_bits
            self.layout = comb_layout(exponent, int(p2.bit_length()), TABLE_BUDGET_BYTES // 2)

    # ----------------------------------------------------------- obfuscators
    def obfuscators(self, count: int) -> list[mpz]:
        """``count`` fresh random n-th powers (the expensive part of an encryption)."""
        if count <= 0:
            return []
        holder = "_crt" if self.obfuscation == "djn" and len(self._spec) > 2 else ""
        opcount.count(f"obfuscator_{self.obfuscation}{holder}", count)
        executor = self.executor if count >= _MIN_PARALLEL else None
        parts = chunk_slices(count, workers(executor))
        sizes = [s.stop - s.start for s in parts]
        if self.obfuscation == "phe":
            calls = [(int(self.public_key.n), k) for k in sizes]
            chunks = parallel_map(_phe_obfuscators, calls, executor)
        else:
            budget = TABLE_BUDGET_BYTES if count >= _MIN_PARALLEL else SMALL_TABLE_BUDGET_BYTES
            pack = remote(executor, len(sizes))
            calls = [(self._spec, k, self.alpha_bits, budget, pack) for k in sizes]
            chunks = parallel_map(_djn_obfuscators, calls, executor)
        return [r for chunk in chunks for r in unpacked(chunk)]

    # ------------------------------------------------------------ encryption
    def encrypt(self, values: np.ndarray, frac_bits: int) -> CiphertextVector:
        """Encrypt reals at scale ``2**frac_bits`` (NaN/inf and overflowing values refused)."""
        ints, bound = encode(values, frac_bits)
        return self.encrypt_encoded(ints, frac_bits, bound)

    def encrypt_encoded(self, plaintexts: list[int], frac_bits: int, bound: int | None = None) -> CiphertextVector:
        """Encrypt signed integers already at scale ``2**frac_bits``."""
        if bound is None:
            bound = max((abs(int(v)) for v in plaintexts), default=0)
        check_bound(bound, self.public_key.max_signed, "encryption")
        n, nsq = self.public_key.n, self.public_key.nsquare
        rho = self.obfuscators(len(plaintexts))
        cts = [times_g_power(r, int(m), n, nsq) for m, r in zip(plaintexts, rho, strict=True)]
        return CiphertextVector(self.public_key, cts, frac_bits, bound)

    def rerandomize(self, vector: CiphertextVector) -> CiphertextVector:
        """Same plaintexts, fresh randomness (unlinkable to the input ciphertexts)."""
        self.public_key.require(vector.public_key)
        nsq = self.public_key.nsquare
        rho = self.obfuscators(len(vector))
        return CiphertextVector(self.public_key, [c * r % nsq for c, r in zip(vector.ciphertexts, rho, strict=True)],
                                vector.frac_bits, vector.bound)
