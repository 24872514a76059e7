"""Paillier layer: keys, fixed-point encoding, ciphertext vectors, fast encryption, multi-exponentiation.

Public API::

    from algorithms.paillier import (generate_keypair, PublicKey, PrivateKey, Encryptor, Decryptor,
                                     CiphertextVector, QuantisedMatrix, matmul_transpose, mask, unmask)
"""

from algorithms.paillier.decryptor import Decryptor
from algorithms.paillier.encoding import EncodingOverflowError, NonFiniteValueError
from algorithms.paillier.encryptor import Encryptor
from algorithms.paillier.keys import (
    MIN_KEY_BITS,
    KeyTooSmallError,
    PrivateKey,
    PublicKey,
    WrongKeyError,
    generate_keypair,
)
from algorithms.paillier.masking import mask, unmask
from algorithms.paillier.multiexp import QuantisedMatrix, elementwise_product, matmul_transpose
from algorithms.paillier.parallel import WorkerPool, parallel_map, shared_executor
from algorithms.paillier.vector import CiphertextVector, InvalidCiphertextError

__all__ = [
    "MIN_KEY_BITS",
    "CiphertextVector",
    "Decryptor",
    "EncodingOverflowError",
    "Encryptor",
    "InvalidCiphertextError",
    "KeyTooSmallError",
    "NonFiniteValueError",
    "PrivateKey",
    "PublicKey",
    "QuantisedMatrix",
    "WorkerPool",
    "WrongKeyError",
    "elementwise_product",
    "generate_keypair",
    "mask",
    "matmul_transpose",
    "parallel_map",
    "shared_executor",
    "unmask",
]
