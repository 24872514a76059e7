"""Secure aggregation (SecAgg / SecAgg+) with dropout recovery: the aggregator learns only the sum.

Modules: :mod:`~algorithms.secagg.quantize` (fixed point in ``Z_{2^k}``), :mod:`~algorithms.secagg.prg`
(X25519 + HKDF + ChaCha20 masks), :mod:`~algorithms.secagg.shamir` (t-of-n sharing of mask seeds),
:mod:`~algorithms.secagg.signing` (signed key advertisements), :mod:`~algorithms.secagg.graph`
(SecAgg+ neighbourhoods) and :mod:`~algorithms.secagg.protocol` (the client and aggregator roles).

What it reveals to whom: see :mod:`algorithms.secagg.protocol` — the aggregator learns the sum of the
surviving clients' (quantised) vectors and who dropped; nothing per client.
"""

from algorithms.secagg.protocol import (
    AggregateResult,
    ClientOutcome,
    SecAggAborted,
    SecAggClient,
    SecAggConfig,
    SecAggError,
    SecAggServer,
)
from algorithms.secagg.quantize import QuantisationError, Quantiser
from algorithms.secagg.signing import CertificateVerifier, EcSigner, KeyVerifier, SignatureError, Signer, Verifier

__all__ = [
    "AggregateResult", "CertificateVerifier", "ClientOutcome", "EcSigner", "KeyVerifier", "QuantisationError",
    "Quantiser", "SecAggAborted", "SecAggClient", "SecAggConfig", "SecAggError", "SecAggServer", "SignatureError",
    "Signer", "Verifier",
]
