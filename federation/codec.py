"""Pickle-free payload codec for protocol messages.

A payload is a ``dict[str, Value]`` where a value is ``None``, ``bool``, ``int`` (any size), ``float``,
``str``, ``bytes``, a numeric/bool ``numpy.ndarray``, a :class:`~algorithms.paillier.CiphertextVector`,
or a list / string-keyed dict of those. It is encoded with msgpack plus three extension types
(big integer, ndarray, ciphertext vector). Decoding never runs code: it only rebuilds these types, and a
ciphertext vector is validated against the receiver's expected key by its own ``from_bytes``.

What it reveals: exactly the values the protocol puts in the payload, nothing else (no object state,
no key material beyond a public-key fingerprint inside ciphertext vectors).
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

from algorithms.paillier.vector import CiphertextVector

_EXT_BIGINT = 1
_EXT_NDARRAY = 2
_EXT_CIPHERTEXTS = 3
_ALLOWED_DTYPES = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                   "float32", "float64"}

Payload = dict[str, Any]


class CodecError(ValueError):
    """A payload that cannot be encoded, or bytes that are not a valid payload."""


def _default(obj: Any) -> msgpack.ExtType:
    if isinstance(obj, CiphertextVector):
        return msgpack.ExtType(_EXT_CIPHERTEXTS, obj.to_bytes())
    if isinstance(obj, np.ndarray):
        dtype = obj.dtype.name
        if dtype not in _ALLOWED_DTYPES:
            raise CodecError(f"cannot send an array of dtype {dtype!r}")
        header = msgpack.packb([dtype, list(obj.shape)])
        return msgpack.ExtType(_EXT_NDARRAY, header + np.ascontiguousarray(obj).tobytes())
    if isinstance(obj, np.generic):
        return obj.item()  # type: ignore[return-value]
    if isinstance(obj, int):  # only reached for ints outside msgpack's 64-bit range
        sign = b"-" if obj < 0 else b"+"
        mag = abs(obj)
        return msgpack.ExtType(_EXT_BIGINT, sign + mag.to_bytes((mag.bit_length() + 7) // 8 or 1, "big"))
    if isinstance(obj, tuple):
        return list(obj)  # type: ignore[return-value]
    try:  # gmpy2.mpz and friends
        import gmpy2

        if isinstance(obj, type(gmpy2.mpz(0))):
            return _default(int(obj))
    except ImportError:  # pragma: no cover
        pass
    raise CodecError(f"cannot send a value of type {type(obj).__name__}")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _EXT_BIGINT:
        value = int.from_bytes(data[1:], "big")
        return -value if data[:1] == b"-" else value
    if code == _EXT_NDARRAY:
        unpacker = msgpack.Unpacker(raw=False)
        unpacker.feed(data)
        dtype, shape = next(unpacker)
        if dtype not in _ALLOWED_DTYPES:
            raise CodecError(f"refusing an array of dtype {dtype!r}")
        offset = unpacker.tell()
        return np.frombuffer(data[offset:], dtype=dtype).reshape(shape).copy()
    if code == _EXT_CIPHERTEXTS:
        return CiphertextVector.from_bytes(data)
    raise CodecError(f"unknown extension type {code}")


def encode(payload: Payload) -> bytes:
    """Serialise a payload to bytes (no pickle)."""
    if not isinstance(payload, dict):
        raise CodecError("a payload must be a dict of named fields")
    try:
        return msgpack.packb(payload, default=_default, use_bin_type=True, strict_types=True)
    except (TypeError, ValueError, OverflowError) as exc:
        if isinstance(exc, CodecError):
            raise
        raise CodecError(str(exc)) from exc


def decode(data: bytes) -> Payload:
    """Rebuild a payload from bytes produced by :func:`encode`."""
    try:
        payload = msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=True)
    except CodecError:
        raise
    except Exception as exc:
        raise CodecError(f"malformed payload: {exc}") from exc
    if not isinstance(payload, dict):
        raise CodecError("a payload must be a dict of named fields")
    return payload
