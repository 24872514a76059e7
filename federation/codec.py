"""Pickle-free payload codec for protocol messages.

A payload is a ``dict[str, Value]`` where a value is ``None``, ``bool``, ``int`` (any size), ``float``,
``str``, ``bytes``, a numeric/bool ``numpy.ndarray``, a value of a registered extension type, or a list /
string-keyed dict of those. It is encoded with msgpack plus two built-in extension types (big integer,
ndarray) and those registered with :func:`register_extension` by higher layers (the transport knows no
algorithm: :mod:`algorithms.paillier.vector` registers its ciphertext vector, code 3, with the public-key
fingerprint the transport announces in the envelope). Decoding never runs code: it only rebuilds these
types, and an extension value is validated by its own decoder (a ciphertext vector by its ``from_bytes``).
Decoding is memory bounded: the objects it builds may take at most ``MAX_EXPANSION`` times the payload's
size (msgpack's compact encoding of many small objects would otherwise expand ~65×), and arrays of any
size decode (their short header is parsed from a bounded prefix).

What it reveals: exactly the values the protocol puts in the payload, nothing else (no object state,
no key material beyond a public-key fingerprint inside ciphertext vectors).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gmpy2
import msgpack
import numpy as np

_EXT_BIGINT = 1
_EXT_NDARRAY = 2
_ARRAY_HEADER_MAX = 4096
#: Decoded objects may take at most this many times the payload's size in memory (plus the slack).
MAX_EXPANSION = 24
EXPANSION_SLACK = 4 << 20
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
        # the header is a short [dtype, shape]: parse it from a bounded prefix (feeding the whole array
        # would hit the Unpacker's 100 MiB default buffer and copy the data once more)
        unpacker = msgpack.Unpacker(raw=False, max_buffer_size=_ARRAY_HEADER_MAX)
        unpacker.feed(data[:_ARRAY_HEADER_MAX])
        try:
            dtype, shape = next(unpacker)
        except (StopIteration, ValueError, msgpack.OutOfData) as exc:
            raise CodecError(f"malformed array header: {exc}") from exc
        if dtype not in _ALLOWED_DTYPES:
            raise CodecError(f"refusing an array of dtype {dtype!r}")
        if not (isinstance(shape, list) and len(shape) <= 32 and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise CodecError(f"refusing an array of shape {shape!r}")
        offset = unpacker.tell()
        body = memoryview(data)[offset:]
        if int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize != len(body):
            raise CodecError(f"array of shape {shape} and dtype {dtype} does not match its {len(body)} bytes")
        return np.frombuffer(body, dtype=dtype).reshape(shape).copy()
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


class _Budget:
    """Counts the memory a payload's objects take while they are decoded; refuses beyond a bound.

    msgpack is compact: a 1-byte empty list or 2-byte one-character string becomes a 56-byte Python object
    plus an 8-byte slot in its container, so a hostile payload expands ~65× in memory. Every container and
    its elements are charged as they are built (sizes from ``sys.getsizeof``; small cached ints, ``None``
    and booleans are free) and decoding stops at ``MAX_EXPANSION × len(data) + EXPANSION_SLACK``.
    """

    def __init__(self, size: int) -> None:
        self.left = MAX_EXPANSION * size + EXPANSION_SLACK

    def charge(self, amount: int) -> None:
        self.left -= amount
        if self.left < 0:
            raise CodecError(f"payload expands beyond {MAX_EXPANSION}x its size in memory: refused")

    def list_hook(self, items: list[Any]) -> list[Any]:
        self.charge(sys.getsizeof(items) + sum(_size(v) for v in items))
        return items

    def pairs_hook(self, pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
        out = dict(pairs)
        self.charge(sys.getsizeof(out) + sum(_size(k) + _size(v) for k, v in pairs))
        return out


def _size(value: Any) -> int:
    """Memory of a decoded scalar (containers are charged when they are built)."""
    if value is None or isinstance(value, bool | list | dict) or (isinstance(value, int) and -5 <= value <= 256):
        return 0
    if isinstance(value, int | float | str | bytes | np.ndarray):
        return sys.getsizeof(value)
    return 64


def decode(data: bytes) -> Payload:
    """Rebuild a payload from bytes produced by :func:`encode` (memory bounded, see :class:`_Budget`)."""
    budget = _Budget(len(data))
    size = max(len(data), 1)
    try:
        payload = msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=True,
                                  list_hook=budget.list_hook, object_pairs_hook=budget.pairs_hook,
                                  max_str_len=size, max_bin_len=size, max_ext_len=size, max_array_len=size,
                                  max_map_len=size // 2 + 1)
    except CodecError:
        raise
    except Exception as exc:
        raise CodecError(f"malformed payload: {exc}") from exc
    if not isinstance(payload, dict):
        raise CodecError("a payload must be a dict of named fields")
    return payload
