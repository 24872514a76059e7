"""Fast Paillier paths: Ma et al. short-exponent keys, comb layouts, window widths, batched short CRT decryption.

Every fast path is checked against a reference path (full-exponent DJN, textbook ``phe`` decryption) and
for interoperability with ``phe`` in both directions.
"""

from __future__ import annotations

import gmpy2
import numpy as np
import phe
import pytest
from gmpy2 import mpz

from algorithms.paillier import CiphertextVector, Decryptor, Encryptor, PrivateKey, PublicKey, generate_keypair
from algorithms.paillier.encryptor import _djn_obfuscators, window_bits
from algorithms.paillier.keys import SUBGROUP_BITS

VALUES = np.array([0.0, 1.5, -2.25, 1e6, -3.0e-4, 123.456, -7.0])


def test_generated_keys_meet_the_key_generation_conditions(keypair) -> None:
    pub, priv = keypair
    assert pub.bits == 2048 and pub.exponent_bits == SUBGROUP_BITS[2048] == 448
    for prime, order in ((priv.p, priv.p_order), (priv.q, priv.q_order)):
        small = order // 2
        assert gmpy2.is_prime(prime) and gmpy2.is_prime(small) and small.bit_length() == 224
        cofactor = (prime - 1) // order
        assert (prime - 1) % order == 0 and gmpy2.is_prime(cofactor)
    assert gmpy2.gcd(pub.n, (priv.p - 1) * (priv.q - 1)) == 1
    # hs is an n-th power whose order divides 2·p0·q0, not 1
    assert pub.hs != 1 and gmpy2.powmod(pub.hs, priv.p_order * priv.q_order // 2, pub.nsquare) == 1


def test_public_key_wire_form_roundtrip(keypair) -> None:
    pub, _ = keypair
    back = PublicKey.from_wire(pub.to_wire())
    assert back == pub and back.hs == pub.hs and back.exponent_bits == 448
    plain = PublicKey.from_wire(pub.to_bytes())  # the plain form still parses, without hs
    assert plain == pub and plain.hs is None
    with pytest.raises(ValueError):
        pub.with_obfuscation_base(1, 448)
    with pytest.raises(ValueError):
        pub.with_obfuscation_base(int(pub.n) * 3, 448)  # not a unit
    with pytest.raises(ValueError):  # g^k = 1 + k·n: "obfuscators" that are plaintext offsets
        pub.with_obfuscation_base(int(gmpy2.powmod(pub.n + 1, 2**600, pub.nsquare)), 448)


def test_private_key_bytes_keep_the_subgroup_orders(keypair) -> None:
    pub, priv = keypair
    back = PrivateKey.from_bytes(pub, priv.to_bytes())
    assert (back.p, back.q, back.p_order, back.q_order) == (priv.p, priv.q, priv.p_order, priv.q_order)


@pytest.mark.parametrize("holder", [False, True])
def test_short_exponent_encryption_roundtrip_and_phe_interop(keypair, holder: bool) -> None:
    pub, priv = keypair
    enc = Encryptor(pub, priv if holder else None)
    assert enc.alpha_bits == 448
    vec = enc.encrypt(VALUES, 30)
    np.testing.assert_allclose(Decryptor(priv).decrypt(vec), VALUES, atol=2**-29)
    phe_priv, phe_pub = priv.to_phe(), pub.to_phe()
    ints = enc.encrypt_encoded([7, -11, 2**300], 0)
    assert [phe_priv.decrypt(phe.EncryptedNumber(phe_pub, int(c), 0)) for c in ints.ciphertexts] == [7, -11, 2**300]


def test_short_decryption_falls_back_for_full_randomness(keypair) -> None:
    """phe's r^n randomness is outside hs's subgroup: decrypted with the full exponent, correctly."""
    pub, priv = keypair
    phe_pub = pub.to_phe()
    plain = [5, -9, 0, 2**100]
    theirs = [mpz(phe_pub.encrypt(v).ciphertext(be_secure=True)) for v in plain]
    ours = Encryptor(pub).encrypt_encoded(plain, 0).ciphertexts
    mixed = CiphertextVector(pub, [x for pair in zip(theirs, ours, strict=True) for x in pair], 0, 2**100)
    assert Decryptor(priv).decrypt_ints(mixed) == [v for v in plain for _ in range(2)]
    # and an ordinary (phe-generated) key decrypts with the full exponents
    ordinary_pub, ordinary_priv = phe.generate_paillier_keypair(n_length=2048)
    opub = PublicKey.from_phe(ordinary_pub)
    opriv = PrivateKey.from_phe(ordinary_priv)
    enc = Encryptor(opub)
    assert opub.hs is None and enc.alpha_bits == 1024
    np.testing.assert_allclose(Decryptor(opriv).decrypt(enc.encrypt(VALUES, 30)), VALUES, atol=2**-29)


def test_short_decryption_equals_the_reference(keypair) -> None:
    pub, priv = keypair
    rng = np.random.default_rng(3)
    plain = [int(v) for v in rng.integers(-2**40, 2**40, size=80)]
    vec = Encryptor(pub).encrypt_encoded(plain, 0)
    phe_priv, phe_pub = priv.to_phe(), pub.to_phe()
    reference = [phe_priv.decrypt(phe.EncryptedNumber(phe_pub, int(c), 0)) for c in vec.ciphertexts]
    assert Decryptor(priv).decrypt_ints(vec) == reference == plain


@pytest.mark.parametrize("budget", [1, 1 << 16, 5 << 19, 48 << 20])
def test_every_comb_layout_gives_hs_to_the_same_exponent(keypair, budget: int) -> None:
    """Comb powers equal gmpy2.powmod for the same α (α drawn from a seeded stand-in for the CSPRNG)."""
    pub, _ = keypair
    import algorithms.paillier.encryptor as encryptor_module

    alphas = [int(a) for a in np.random.default_rng(budget).integers(0, 2**62, size=4)] + [2**448 - 1, 0, 2**447]
    it = iter(alphas)
    real = encryptor_module.secrets.randbits
    encryptor_module.secrets.randbits = lambda bits: next(it)  # type: ignore[assignment]
    try:
        got = _djn_obfuscators((int(pub.nsquare), int(pub.hs)), len(alphas), 448, budget)
    finally:
        encryptor_module.secrets.randbits = real  # type: ignore[assignment]
    assert got == [gmpy2.powmod(pub.hs, a, pub.nsquare) for a in alphas]


def test_window_fits_the_memory_budget() -> None:
    for bits, modulus in ((448, 4096), (1024, 4096), (448, 2048)):
        w = window_bits(bits, modulus)
        assert 4 <= w <= 12
        assert -(-bits // w) * (1 << w) * (modulus // 8 + 32) <= 48 << 20
    assert window_bits(448, 4096, budget=1) == 4


@pytest.mark.parametrize(("bits", "modulus", "budget"), [(448, 4096, 48 << 20), (225, 2048, 24 << 20),
                                                         (1024, 4096, 48 << 20), (448, 4096, 5 << 19)])
def test_comb_layout_fits_the_budget_and_never_costs_more_than_the_window_table(bits: int, modulus: int,
                                                                               budget: int) -> None:
    from algorithms.paillier.comb import CombLayout, comb_layout

    layout = comb_layout(bits, modulus, budget)
    w = window_bits(bits, modulus, budget)
    assert layout.entries * (modulus // 8 + 32) <= budget
    assert layout.teeth * layout.row_bits >= bits and layout.columns * layout.block_bits >= layout.row_bits
    assert layout.cost <= CombLayout.of(bits, w, -(-bits // w)).cost
    if (bits, modulus) == (448, 4096) and budget == 48 << 20:  # the figures quoted in the docstrings
        assert (layout.teeth, layout.columns, layout.block_bits) == (14, 5, 7)
        assert round(layout.multiplications) == 31 and layout.squarings == 6


def test_other_key_sizes_keep_the_full_exponent() -> None:
    assert 2560 not in SUBGROUP_BITS  # no published ℓ: an ordinary key (phe), DJN exponent of |n|/2 bits
    pub, _ = generate_keypair(2560)
    assert pub.hs is None and Encryptor(pub).alpha_bits == 1280


def test_key_holder_obfuscators_with_reduced_exponents_equal_the_full_power(keypair) -> None:
    """hs^α mod p² = hs^(α mod 2p₀) mod p²: the CRT path yields exactly hs^α mod n² for the same α."""
    pub, priv = keypair
    import algorithms.paillier.encryptor as encryptor_module

    enc = Encryptor(pub, priv)
    assert len(enc._spec) == 7 and enc._spec[5] == priv.p_order
    alphas = [3, 2**448 - 1, 2**300 + 12345, int(priv.p_order), 0]
    it = iter(alphas)
    real = encryptor_module.secrets.randbits
    encryptor_module.secrets.randbits = lambda bits: next(it)  # type: ignore[assignment]
    try:
        got = _djn_obfuscators(enc._spec, len(alphas), enc.alpha_bits)
    finally:
        encryptor_module.secrets.randbits = real  # type: ignore[assignment]
    assert got == [gmpy2.powmod(pub.hs, a, pub.nsquare) for a in alphas]


def test_grouped_multiexp_equals_the_reference(keypair) -> None:
    """Columns with few distinct values (grouped) and many (buckets), both signs: Π c^e exactly."""
    from algorithms.paillier import QuantisedMatrix, matmul_transpose
    from algorithms.paillier.multiexp import _grouping_pays

    pub, priv = keypair
    rng = np.random.default_rng(11)
    rows = 300
    values = np.column_stack([
        rng.choice([-3, 0, 5, 2**15 - 1], size=rows),           # categorical, signed
        np.ones(rows, dtype=np.int64),                           # intercept
        rng.integers(-2**15, 2**15, size=rows),                  # continuous
    ]).astype(np.int64)
    assert _grouping_pays(np.abs(values[:, 0][values[:, 0] != 0]), 8)
    assert not _grouping_pays(np.abs(values[:, 2]), 8)
    vec = Encryptor(pub).encrypt_encoded([int(v) for v in rng.integers(-1000, 1000, size=rows)], 0)
    got = matmul_transpose(vec, QuantisedMatrix(values, 0))
    nsq = pub.nsquare
    for j in range(values.shape[1]):
        expected = mpz(1)
        for c, e in zip(vec.ciphertexts, values[:, j].tolist(), strict=True):
            power = gmpy2.powmod(c, abs(e), nsq)
            expected = expected * (power if e >= 0 else gmpy2.invert(power, nsq)) % nsq
        assert got.ciphertexts[j] == expected
    plain = Decryptor(priv).decrypt_ints(vec)
    assert Decryptor(priv).decrypt_ints(got) == [int(np.dot(plain, values[:, j])) for j in range(values.shape[1])]


def test_matmul_on_the_pool_equals_inline(keypair) -> None:
    """Columns shared out among the workers (3 columns) and rows split (1 column): the same ciphertexts."""
    from algorithms.paillier import QuantisedMatrix, matmul_transpose, shared_executor

    pub, _ = keypair
    rng = np.random.default_rng(5)
    rows = 1400  # >= 4096 terms: the pool is used
    values = np.column_stack([rng.choice([-2, 7], size=rows), rng.integers(-2**15, 2**15, size=rows),
                              rng.integers(0, 2**10, size=rows)]).astype(np.int64)
    vec = Encryptor(pub).encrypt_encoded([int(v) for v in rng.integers(-1000, 1000, size=rows)], 0)
    for matrix in (QuantisedMatrix(values, 0), QuantisedMatrix(np.tile(values[:, 1:2], (3, 1)), 0)):
        target = vec if matrix.shape[0] == rows else CiphertextVector.concat([vec, vec, vec])
        inline = matmul_transpose(target, matrix)
        pooled = matmul_transpose(target, matrix, shared_executor())
        assert pooled.ciphertexts == inline.ciphertexts


def test_plaintext_addition_shortcut_equals_the_textbook_product(keypair) -> None:
    from algorithms.paillier.vector import times_g_power

    pub, _ = keypair
    n, nsq = pub.n, pub.nsquare
    rng = np.random.default_rng(9)
    cts = [mpz(int(v)) for v in rng.integers(1, 2**62, size=5)] + [nsq - 1, nsq - n - 1, mpz(1)]
    for c in cts:
        for m in (0, 1, -1, int(n) // 2, -(int(n) // 2), 2**1000 + 3, int(n) - 1):
            assert times_g_power(c, m, n, nsq) == c * ((m % n) * n + 1) % nsq


def test_jointly_grouped_columns_equal_the_reference(keypair) -> None:
    """Correlated categorical columns, the intercept and a continuous column, signed, with all-zero rows:
    the planner groups the categorical ones jointly, and every column's product is Π c^e exactly,
    inline and shared out over an executor."""
    from concurrent.futures import ThreadPoolExecutor

    from algorithms.paillier import QuantisedMatrix, matmul_transpose
    from algorithms.paillier.multiexp import plan_units

    pub, _ = keypair
    rng = np.random.default_rng(5)
    rows = 256
    status = rng.choice([-2, -1, 0, 1, 2], size=rows)
    values = np.column_stack([
        status * 700,                                            # categorical, signed, zeros
        (status + rng.choice([0, 1], size=rows)) * 650,          # correlated with the first
        rng.choice([0, 3000], size=rows),                        # binary
        np.ones(rows, dtype=np.int64),                           # intercept
        rng.integers(-2**14, 2**14, size=rows),                  # continuous
    ]).astype(np.int64)
    values[:5, :4] = 0  # rows that no grouped column multiplies
    units = plan_units(values)
    assert sorted(j for u in units for j in u) == list(range(5))
    assert any(len(u) > 1 for u in units) and [4] in units
    vec = Encryptor(pub).encrypt_encoded([int(v) for v in rng.integers(-1000, 1000, size=rows)], 0)
    nsq = pub.nsquare
    expected = []
    for j in range(values.shape[1]):
        acc = mpz(1)
        for c, e in zip(vec.ciphertexts, values[:, j].tolist(), strict=True):
            power = gmpy2.powmod(c, abs(e), nsq)
            acc = acc * (power if e >= 0 else gmpy2.invert(power, nsq)) % nsq
        expected.append(acc)
    with ThreadPoolExecutor(2) as pool:
        for executor in (None, pool):
            assert matmul_transpose(vec, QuantisedMatrix(values, 0), executor).ciphertexts == expected


def test_packed_blobs_round_trip_through_pickle() -> None:
    """What the workers exchange: fixed-width blobs give back exactly the integers (0, 1, the largest)."""
    import pickle

    from algorithms.paillier.parallel import Packed, unpacked

    values = [mpz(0), mpz(1), mpz(2) ** 4096 - 1, mpz(12345678901234567890)]
    packed = Packed.of(values, 512)
    assert len(packed) == 4 and unpacked(pickle.loads(pickle.dumps(packed))) == values
    assert unpacked(values) == values
