"""Pickle-free payload codec for protocol messages.

A payload is a ``dict[str, Value]`` where a value is ``None``, ``bool``, ``int`` (any size), ``float``,
``str``, ``bytes``, a numeric/bool ``numpy.ndarray``, a value of a registered extension type, or a list /
string-keyed dict of those. It is encoded with msgpack plus two built-in extension types (big integer,
ndarray) and those registered with :func:`register_extension` by higher layers (the transport knows no
algorithm: :mod:`algorithms.paillier.vector` registers its ciphertext vector, code 3, with the public-key
fingerprint the transport announces in the envelope). Decoding never runs code: it only rebuilds these
types, and an extension value is validated by its own decoder (a ciphertext vector by its ``from_bytes``).

What it reveals: exactly the values the protocol puts in the payload, nothing else (no object state,
no key material beyond a public-key fingerprint inside ciphertext vectors).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gmpy2
import msgpack
import numpy as np

_EXT_BIGINT = 1
_EXT_NDARRAY = 2
_MPZ = type(gmpy2.mpz(0))
_ALLOWED_DTYPES = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                   "float32", "float64"}

Payload = dict[str, Any]


class CodecError(ValueError):
    """A payload that cannot be encoded, or bytes that are not a valid payload."""


@dataclass(frozen=True)
class Extension:
    """A value type the codec carries as a msgpack extension (see :func:`register_extension`)."""

    code: int
    cls: type
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]
    fingerprint: Callable[[Any], str] | None = None


_EXTENSIONS: dict[int, Extension] = {}


def register_extension(code: int, cls: type, encode: Callable[[Any], bytes], decode: Callable[[bytes], Any],
                       fingerprint: Callable[[Any], str] | None = None) -> None:
    """Carry values of ``cls`` as extension ``code`` (3..127): ``encode(value) -> bytes`` and
    ``decode(bytes) -> value`` (which must validate what it rebuilds and run no code from the bytes).
    ``fingerprint(value)``: the key a value is encrypted under, announced by the transport's envelope.
    Registering the same class again under the same code is a no-op."""
    if not 3 <= code <= 127:
        raise ValueError(f"extension codes 3..127 are free, not {code}")
    existing = _EXTENSIONS.get(code)
    if existing is not None and existing.cls is not cls:
        raise ValueError(f"extension code {code} is taken by {existing.cls.__name__}")
    _EXTENSIONS[code] = Extension(code, cls, encode, decode, fingerprint)


def fingerprints(payload: Any) -> list[str]:
    """Sorted distinct key fingerprints of every registered extension value inside ``payload``."""
    found: set[str] = set()
    stack = [payload]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
        else:
            for ext in _EXTENSIONS.values():
                if ext.fingerprint is not None and isinstance(value, ext.cls):
                    found.add(ext.fingerprint(value))
    return sorted(found)


def _default(obj: Any) -> msgpack.ExtType:
    for ext in _EXTENSIONS.values():
        if isinstance(obj, ext.cls):
            return msgpack.ExtType(ext.code, ext.encode(obj))
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
    if isinstance(obj, _MPZ):  # gmpy2 big integers travel as ints
        return _default(int(obj))
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
    ext = _EXTENSIONS.get(code)
    if ext is not None:
        return ext.decode(data)
    raise CodecError(f"unknown extension type {code} (is the module that registers it imported?)")


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
