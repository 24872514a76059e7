"""Codec limits: bounded expansion of hostile payloads, arrays of any size, malformed array headers."""

from __future__ import annotations

import sys
import tracemalloc

import msgpack
import numpy as np
import pytest

from federation import codec
from federation.codec import CodecError


def test_expansion_bomb_is_refused() -> None:
    """1 MiB of one-byte empty lists used to become ~65 MiB of Python objects; now refused early."""
    bomb = msgpack.packb({"x": [[] for _ in range(1 << 20)]})
    tracemalloc.start()
    try:
        with pytest.raises(CodecError, match="expands beyond"):
            codec.decode(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 * len(bomb)
    strings = msgpack.packb({"s": ["a"] * (1 << 19)})  # one-character strings: ~29x
    with pytest.raises(CodecError, match="expands beyond"):
        codec.decode(strings)


def test_ordinary_payloads_decode() -> None:
    payload = {"indices": list(range(30_000)), "residues": [3 ** 1290 + i for i in range(64)],
               "nested": {"a": [1.5, "text", b"bytes", None, True]}, "array": np.arange(10.0)}
    out = codec.decode(codec.encode(payload))
    assert out["indices"] == payload["indices"] and out["residues"] == payload["residues"]
    assert out["nested"] == payload["nested"]
    np.testing.assert_array_equal(out["array"], payload["array"])
    assert sys.getsizeof(out["indices"]) > 0


def test_array_above_100_mib_decodes() -> None:
    """The inner Unpacker's 100 MiB default buffer used to refuse a legitimate large array."""
    big = np.zeros((101 << 20) // 8 + 3, dtype=np.float64)
    big[-1] = 7.0
    out = codec.decode(codec.encode({"a": big}))["a"]
    assert out.shape == big.shape and out[-1] == 7.0


def test_malformed_array_headers_are_refused() -> None:
    header = msgpack.packb(["float64", [5]])
    for data in (header + b"\0" * 39, msgpack.packb(["float64", [-1]]), msgpack.packb(["object", [1]]) + b"\0" * 8,
                 b"\xc1"):
        with pytest.raises(CodecError):
            codec.decode(msgpack.packb({"a": msgpack.ExtType(2, data)}))
