"""Additive masking of ciphertexts before a key holder decrypts them.

The owner of an encrypted value ``[[x]]`` who needs it in clear adds a mask ``r`` drawn uniformly from
``Z_n`` (``[[x + r mod n]]``), lets the key holder decrypt, and subtracts ``r``. The key holder sees
``x + r mod n``, which is uniform in ``Z_n`` whatever ``x`` is: it learns nothing about ``x``.

What it reveals: to the key holder, nothing (one-time pad over ``Z_n``); to the owner, ``x``.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import numpy as np

from algorithms.paillier.encoding import decode, from_residue
from algorithms.paillier.vector import CiphertextVector


def draw_masks(count: int, n: int) -> list[int]:
    """``count`` uniform residues of ``Z_n`` from the OS CSPRNG."""
    return [secrets.randbelow(int(n)) for _ in range(count)]


def mask(vector: CiphertextVector) -> tuple[CiphertextVector, list[int]]:
    """Return ``[[x + r]]`` and the masks ``r`` (keep them; send only the masked vector)."""
    if vector.masked:
        raise ValueError("vector is already masked")
    masks = draw_masks(len(vector), int(vector.public_key.n))
    return vector.add_mask(masks), masks


def unmask(residues: Sequence[int], masks: Sequence[int], n: int, frac_bits: int) -> np.ndarray:
    """Recover the floats from decrypted masked residues."""
    if len(residues) != len(masks):
        raise ValueError("residues and masks differ in length")
    n = int(n)
    return decode([from_residue((int(v) - int(r)) % n, n) for v, r in zip(residues, masks, strict=True)], frac_bits)
