"""The Paillier layer: key policy, phe interoperability, validation, fixed-point overflow, fast paths."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import gmpy2
import numpy as np
import phe
import pytest
from gmpy2 import mpz

from algorithms.paillier import (
    CiphertextVector,
    Decryptor,
    EncodingOverflowError,
    Encryptor,
    InvalidCiphertextError,
    KeyTooSmallError,
    NonFiniteValueError,
    PublicKey,
    QuantisedMatrix,
    WrongKeyError,
    elementwise_product,
    generate_keypair,
    mask,
    matmul_transpose,
    shared_executor,
    unmask,
)
from federation import codec

VALUES = np.array([0.0, 1.5, -2.25, 1e6, -3.0e-4, 123.456])


@pytest.fixture(scope="module")
def other_keypair():
    return generate_keypair(2048)


def test_small_keys_refused() -> None:
    with pytest.raises(KeyTooSmallError, match="2048"):
        generate_keypair(1024)
    small = phe.generate_paillier_keypair(n_length=512)[0]
    with pytest.raises(KeyTooSmallError):
        PublicKey.from_phe(small)


@pytest.mark.parametrize("mode", ["djn", "crt", "phe"])
def test_roundtrip_and_phe_interop(keypair, mode: str) -> None:
    pub, priv = keypair
    encryptor = Encryptor(pub, priv if mode == "crt" else None, obfuscation="phe" if mode == "phe" else "djn")
    vector = encryptor.encrypt(VALUES, frac_bits=30)
    np.testing.assert_allclose(Decryptor(priv).decrypt(vector), VALUES, atol=2**-29)
    # fast path -> phe: a raw ciphertext is an ordinary Paillier ciphertext with g = n + 1
    phe_priv, phe_pub = priv.to_phe(), pub.to_phe()
    ints = encryptor.encrypt_encoded([7, -11, 2**200], frac_bits=0)
    assert [phe_priv.decrypt(phe.EncryptedNumber(phe_pub, int(c), 0)) for c in ints.ciphertexts] == [7, -11, 2**200]
    # phe -> fast path
    theirs = [phe_pub.encrypt(v) for v in (5, -9)]
    vec = CiphertextVector(pub, [mpz(e.ciphertext()) for e in theirs], 0, 10)
    assert Decryptor(priv).decrypt_ints(vec) == [5, -9]


def test_rerandomize_changes_ciphertexts_not_plaintexts(keypair) -> None:
    pub, priv = keypair
    encryptor = Encryptor(pub)
    vector = encryptor.encrypt(VALUES, 20)
    fresh = encryptor.rerandomize(vector)
    assert not set(map(int, vector.ciphertexts)) & set(map(int, fresh.ciphertexts))
    np.testing.assert_allclose(Decryptor(priv).decrypt(fresh), VALUES, atol=2**-19)


def test_wrong_key_refused(keypair, other_keypair) -> None:
    pub, priv = keypair
    theirs = Encryptor(other_keypair[0]).encrypt(VALUES, 10)
    with pytest.raises(WrongKeyError):
        Decryptor(priv).decrypt(theirs)
    with pytest.raises(WrongKeyError):
        _ = Encryptor(pub).encrypt(VALUES, 10) + theirs
    with pytest.raises(WrongKeyError):
        theirs.under(pub)
    # the key travels with the bytes: a decoded vector still knows its key
    decoded = codec.decode(codec.encode({"v": theirs}))["v"]
    with pytest.raises(WrongKeyError):
        decoded.under(pub)


def test_invalid_ciphertexts_refused(keypair) -> None:
    pub, _ = keypair
    good = Encryptor(pub).encrypt_encoded([1, 2], 0)
    for bad in (mpz(0), pub.nsquare, pub.nsquare + 5, pub.n):  # out of range, or shares a factor with n
        vec = CiphertextVector(pub, [good.ciphertexts[0], bad], 0, 2)
        with pytest.raises(InvalidCiphertextError):
            CiphertextVector.from_bytes(vec.to_bytes()).under(pub)  # validated under the receiver's key
    raw = bytearray(good.to_bytes())
    raw[30] ^= 0xFF  # corrupt the fingerprint
    with pytest.raises(InvalidCiphertextError):
        CiphertextVector.from_bytes(bytes(raw))
    with pytest.raises(InvalidCiphertextError):
        CiphertextVector.from_bytes(good.to_bytes()[:-3])


def test_non_finite_refused(keypair) -> None:
    encryptor = Encryptor(keypair[0])
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(NonFiniteValueError, match="position"):
            encryptor.encrypt(np.array([1.0, bad]), 10)


def test_overflow_detected_before_computing(keypair) -> None:
    pub, _ = keypair
    encryptor = Encryptor(pub)
    with pytest.raises(EncodingOverflowError):
        encryptor.encrypt(np.array([1e300]), 60)  # ~2^1057 at scale 2^60: beyond 2^2047
    big = encryptor.encrypt_encoded([1 << 2045], 0)
    with pytest.raises(EncodingOverflowError, match="refusing"):
        _ = (big + big) + (big + big)
    with pytest.raises(EncodingOverflowError):
        big.rescale(10)
    many = encryptor.encrypt_encoded([1 << 2040] * 300, 0)
    with pytest.raises(EncodingOverflowError):
        many.sum()
    with pytest.raises(EncodingOverflowError):
        matmul_transpose(many, QuantisedMatrix(np.full((300, 1), 1 << 14, dtype=np.int64), 0))


def test_scale_mismatch_refused(keypair) -> None:
    encryptor = Encryptor(keypair[0])
    with pytest.raises(ValueError, match="scales differ"):
        _ = encryptor.encrypt(VALUES, 10) + encryptor.encrypt(VALUES, 12)


def test_homomorphic_ops(keypair) -> None:
    pub, priv = keypair
    encryptor, decryptor = Encryptor(pub), Decryptor(priv)
    a = encryptor.encrypt(VALUES, 16)
    b = encryptor.encrypt(VALUES * 2, 16)
    np.testing.assert_allclose(decryptor.decrypt(a + b), VALUES * 3, atol=1e-4)
    np.testing.assert_allclose(decryptor.decrypt(a.scaled_down(2)), VALUES / 4, atol=1e-4)
    np.testing.assert_allclose(decryptor.decrypt(a.rescale(20)), VALUES, atol=1e-4)
    np.testing.assert_allclose(decryptor.decrypt(a.sum()), [VALUES.sum()], rtol=1e-9, atol=1e-3)
    np.testing.assert_allclose(decryptor.decrypt(a.negate()), -VALUES, atol=1e-4)
    plain = [3 << 16, -(5 << 16)] * 3
    np.testing.assert_allclose(decryptor.decrypt(a.add_encoded(plain, 5 << 16)),
                               VALUES + np.array([3, -5] * 3), atol=1e-4)
    masked, masks = mask(a)
    residues = decryptor.decrypt_raw(masked)
    np.testing.assert_allclose(unmask(residues, masks, pub.n, 16), VALUES, atol=1e-4)
    with pytest.raises(EncodingOverflowError, match="masked"):
        decryptor.decrypt(masked)


@pytest.mark.parametrize("executor_kind", ["inline", "threads", "processes"])
def test_multiexp_matches_integer_product(keypair, executor_kind: str) -> None:
    pub, priv = keypair
    rng = np.random.default_rng(0)
    d = rng.normal(size=300)
    x = rng.normal(size=(300, 4)) * 3
    x[:, 0] = 0.0  # an all-zero column
    q = QuantisedMatrix.from_float(x)
    assert np.abs(q.values).max() < 2**15
    executor = {"inline": None, "threads": ThreadPoolExecutor(2), "processes": shared_executor()}[executor_kind]
    encryptor = Encryptor(pub, executor=executor)
    d_int = [int(v) for v in np.rint(d * 2**20)]
    vec = encryptor.encrypt_encoded(d_int, 20)
    product = matmul_transpose(vec, q, executor=executor)
    expected = [sum(di * int(xij) for di, xij in zip(d_int, q.values[:, j], strict=True)) for j in range(4)]
    assert Decryptor(priv, executor=executor).decrypt_ints(product) == expected
    assert product.frac_bits == 20 + q.frac_bits


def test_elementwise_product_matches_plaintext(keypair) -> None:
    public_key, private_key = keypair
    rng = np.random.default_rng(3)
    values = rng.normal(size=300) * 5
    factors = rng.integers(-(1 << 16), 1 << 16, size=300)
    factors[:3] = [0, 1, 1 << 16]
    vec = Encryptor(public_key).encrypt(values, 40)
    for executor in (None, shared_executor()):  # inline and chunked over the pool
        out = elementwise_product(vec, factors, 18, executor)
        assert out.frac_bits == 58 and len(out) == 300
        np.testing.assert_allclose(Decryptor(private_key).decrypt(out), values * factors / 2**18, rtol=1e-9,
                                   atol=1e-9)
    with pytest.raises(ValueError, match="3 factors for 300"):
        elementwise_product(vec, factors[:3], 18)
    masked, _ = mask(vec)
    with pytest.raises(ValueError, match="masked"):
        elementwise_product(masked, factors, 18)


def test_codec_roundtrip(keypair) -> None:
    pub, priv = keypair
    vec = Encryptor(pub).encrypt(VALUES, 12)
    payload = {"ct": vec, "arr": np.arange(6, dtype=np.int32).reshape(2, 3), "big": -(2**300), "s": "x",
               "nested": [{"a": 1.5}, None, True, b"raw"]}
    back = codec.decode(codec.encode(payload))
    np.testing.assert_array_equal(back["arr"], payload["arr"])
    assert back["big"] == -(2**300) and back["nested"] == payload["nested"] and back["s"] == "x"
    np.testing.assert_allclose(Decryptor(priv).decrypt(back["ct"]), VALUES, atol=1e-3)
    with pytest.raises(codec.CodecError):
        codec.encode({"obj": object()})
    with pytest.raises(codec.CodecError):
        codec.encode({"arr": np.array(["a"], dtype=object)})
    with pytest.raises(codec.CodecError):
        codec.decode(b"\xc1garbage")


def test_gmpy2_is_the_backend() -> None:
    assert phe.util.powmod is not None and gmpy2.version()


def test_larger_modulus_refused_before_validation(keypair, monkeypatch: pytest.MonkeyPatch) -> None:
    """A peer sends many ciphertexts under a huge modulus: the receiver must not spend work validating them."""
    import secrets

    from algorithms.paillier import vector as vector_module
    from algorithms.vertical_lr.common import expect_vector

    pub, _ = keypair
    calls: list[int] = []
    original = vector_module.validate_ciphertexts
    monkeypatch.setattr(vector_module, "validate_ciphertexts", lambda key, cts: (calls.append(key.bits),
                                                                                original(key, cts))[1])
    big = PublicKey.from_n(secrets.randbits(8192) | (1 << 8191) | 1)  # any odd 8192-bit number will do
    flood = CiphertextVector(big, [mpz(secrets.randbits(16000)) for _ in range(64)], 0, 1)
    received = codec.decode(codec.encode({"u": flood}))
    with pytest.raises(WrongKeyError):
        expect_vector(received, "u", pub, 64, "insurer")  # what every role does with what it receives
    assert calls == []  # refused on the modulus, no ciphertext looked at
    huge = bytearray(flood.to_bytes())
    huge[15:17] = (1025).to_bytes(2, "big")  # claims an 8200-bit modulus
    with pytest.raises(InvalidCiphertextError, match="8200-bit modulus is refused"):
        CiphertextVector.from_bytes(bytes(huge))
    # under the job's key the ciphertexts are validated once
    good = codec.decode(codec.encode({"u": Encryptor(pub).encrypt_encoded([1, 2], 0)}))["u"]
    good.under(pub)
    good.under(pub)
    assert calls == [pub.bits]
