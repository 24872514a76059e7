"""Batched CRT decryption for the key holder.

Each ciphertext costs two half-size exponentiations (mod ``p²`` and ``q²``) and a CRT recombination,
as in python-paillier; vectors are split over an optional executor.

What it reveals: the plaintexts, to the key holder only. Protocols in fedrisk only hand the key holder
vectors that the owner masked with uniform values from ``Z_n`` (see :mod:`algorithms.paillier.masking`),
so :meth:`Decryptor.decrypt_raw` on such a vector yields uniformly random residues.
"""

from __future__ import annotations

from concurrent.futures import Executor

import gmpy2
import numpy as np
from gmpy2 import mpz

from algorithms.paillier import opcount
from algorithms.paillier.encoding import EncodingOverflowError, decode, from_residue
from algorithms.paillier.keys import PrivateKey
from algorithms.paillier.parallel import chunk_slices, parallel_map, workers
from algorithms.paillier.vector import CiphertextVector

_MIN_PARALLEL = 64


def _crt_decrypt(params: tuple[int, ...], ciphertexts: list[mpz]) -> list[int]:
    gmpy2.get_context().allow_release_gil = True
    p, q, psq, qsq, p_inv, hp, hq = (mpz(v) for v in params)
    out = []
    for c in ciphertexts:
        mp = (gmpy2.powmod(c, p - 1, psq) - 1) // p * hp % p
        mq = (gmpy2.powmod(c, q - 1, qsq) - 1) // q * hq % q
        out.append(int(mp + p * ((mq - mp) * p_inv % q)))
    return out


class Decryptor:
    """Decrypts vectors under its own key; vectors under any other key are refused."""

    def __init__(self, private_key: PrivateKey, executor: Executor | None = None) -> None:
        self.private_key = private_key
        self.public_key = private_key.public_key
        self.executor = executor
        k = private_key
        self._params = tuple(int(v) for v in (k.p, k.q, k.psquare, k.qsquare, k.p_inverse, k.hp, k.hq))

    def decrypt_raw(self, vector: CiphertextVector) -> list[int]:
        """Plaintext residues in ``[0, n)`` (for masked vectors: what the arbiter sees)."""
        self.public_key.require(vector.public_key)
        opcount.count("decryption", len(vector))
        cts = vector.ciphertexts
        executor = self.executor if len(cts) >= _MIN_PARALLEL else None
        calls = [(self._params, cts[s]) for s in chunk_slices(len(cts), workers(executor))]
        return [m for chunk in parallel_map(_crt_decrypt, calls, executor) for m in chunk]

    def decrypt_ints(self, vector: CiphertextVector) -> list[int]:
        """Signed plaintext integers (refuses masked vectors and vectors that may have wrapped)."""
        if vector.masked:
            raise EncodingOverflowError("a masked vector decrypts to uniform residues: use decrypt_raw")
        n = int(self.public_key.n)
        return [from_residue(m, n) for m in self.decrypt_raw(vector)]

    def decrypt(self, vector: CiphertextVector) -> np.ndarray:
        """Decrypt and decode to floats at the vector's scale."""
        return decode(self.decrypt_ints(vector), vector.frac_bits)
