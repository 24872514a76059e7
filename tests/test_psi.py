"""ECDH PSI: correct canonical intersection; RO hashing (RFC 9380 hash_to_field + try-and-increment); size
accepted before membership; refusals reveal sizes only; only blinded curve points cross the channel; id-format hints."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gmpy2
import numpy as np
import pytest
from nacl.bindings import crypto_scalarmult

from algorithms.base import Parties
from algorithms.psi import (
    POINT_BYTES,
    IntersectionTooSmall,
    PsiError,
    PsiGuest,
    PsiHost,
    PsiResult,
    hash_to_curve,
    id_shape,
    normalise_ids,
    protocol,
)
from algorithms.psi import blinding as blinding_mod
from algorithms.psi import hashing as h2c
from algorithms.psi.blinding import members
from federation.channel import Channel, InMemoryNetwork, run_parties

PAIR = Parties(guest="bank", hosts=("insurer",))
_P = 2**255 - 19


def run_pair(guest_ids: list[Any], host_ids: list[Any], parties: Parties = PAIR, context: str = "job-1/id",
             record: bool = False, **kwargs: Any) -> tuple[dict[str, PsiResult], InMemoryNetwork]:
    network = InMemoryNetwork(record=record)
    channels = {p: network.channel(p) for p in parties.silos}
    roles: dict[str, Callable[[], PsiResult]] = {
        parties.guest: lambda: PsiGuest(guest_ids, parties, context, **kwargs).run(channels[parties.guest])}
    for host, ids in zip(parties.hosts, host_ids if len(parties.hosts) > 1 else [host_ids], strict=True):
        roles[host] = lambda h=host, i=ids: PsiHost(i, parties, context, **kwargs).run(channels[h])
    return run_parties(roles, network), network


def run_collecting(roles: dict[str, PsiGuest | PsiHost], parties: Parties = PAIR,
                   record: bool = False) -> tuple[dict[str, Any], InMemoryNetwork]:
    """Run every role on its own thread; return each party's result or exception (refusals don't hang)."""
    network = InMemoryNetwork(record=record)
    channels = {p: network.channel(p) for p in parties.silos}
    out: dict[str, Any] = {}

    def role(party: str, obj: PsiGuest | PsiHost) -> None:
        try:
            out[party] = obj.run(channels[party])
        except BaseException as exc:
            out[party] = exc

    threads = [threading.Thread(target=role, args=item, name=item[0]) for item in roles.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(not t.is_alive() for t in threads)
    return out, network


def customer_ids(start: int, stop: int) -> list[str]:
    return [f"CUST-{i:06d}" for i in range(start, stop)]


def split_points(data: bytes) -> list[bytes]:
    return [data[i:i + POINT_BYTES] for i in range(0, len(data), POINT_BYTES)]


# ------------------------------------------------------------------------------------------ hashing
_RFC_DST = b"QUUX-V01-CS02-with-curve25519_XOF:SHAKE256_TAI_"
def test_hash_to_field_matches_rfc9380_vectors() -> None:
    """The expander is RFC 9380's expand_message_xof with SHAKE256 (appendix K.5 vectors and those of the
    drafts' K.4, same algorithm, shorter DST); the field elements are its 96 bytes cut in two, mod p."""
    rfc, draft = b"QUUX-V01-CS02-with-expander-SHAKE256", b"QUUX-V01-CS02-with-expander"
    assert h2c.expand_message_xof(b"", rfc, 0x20).hex() == \
        "2ffc05c48ed32b95d72e807f6eab9f7530dd1c2f013914c8fed38c5ccc15ad76"
    assert h2c.expand_message_xof(b"", draft, 0x20).hex() == \
        "58e90433d81860c47d350b0bb6fb94f98f6b0f9657efd04d410ae743260c096d"
    assert h2c.expand_message_xof(b"abc", draft, 0x20).hex() == \
        "c7f5e3c044790033707e24f21d971aaa03a760dfda6215bf0c8634da9012c8f8"
    assert h2c.expand_message_xof(b"abc", draft, 0x80).hex().startswith(
        "c5f366dc668697014a0a90a40ae27c19edcb8500f6ad5d4234fbf4204f64df52")
    with pytest.raises(ValueError, match="DST longer"):
        h2c.expand_message_xof(b"", b"x" * 256, 32)
    many = [f"m{i}".encode() for i in range(40)]
    assert h2c.hash_to_field(many, _RFC_DST) == [
        (int.from_bytes(e[:48], "big") % _P, int.from_bytes(e[48:], "big") % _P)
        for e in (h2c.expand_message_xof(m, _RFC_DST, 96) for m in many)]


def test_try_and_increment_takes_the_first_curve_candidate() -> None:
    """u0 when it is on the curve, else u1, else the next round's; a twist coordinate is never output, and
    the rounds needed follow the 1/2, 1/4, ... of a uniform coordinate."""
    msgs = [f"id-{i}".encode() for i in range(2000)]
    out = split_points(h2c.hash_to_u(msgs, _RFC_DST))
    first = second = later = 0
    for msg, point, (u0, u1) in zip(msgs, out, h2c.hash_to_field(msgs, _RFC_DST), strict=True):
        u = int.from_bytes(point, "little")
        assert gmpy2.jacobi(h2c.curve_rhs(gmpy2.mpz(u)), _P) == 1 and u > 1
        on0, on1 = (gmpy2.jacobi(h2c.curve_rhs(gmpy2.mpz(v)), _P) == 1 for v in (u0, u1))
        if on0:
            assert u == u0
            first += 1
        elif on1:
            assert u == u1
            second += 1
        else:
            v0, v1 = h2c.hash_to_field([msg], _RFC_DST + b"-R\x01")[0]
            assert u in (v0, v1) or not any(gmpy2.jacobi(h2c.curve_rhs(gmpy2.mpz(v)), _P) == 1 for v in (v0, v1))
            later += 1
    assert 900 < first < 1100 and 400 < second < 600 and 400 < later < 600  # binomial, > 4.5 sigma margins


def test_clamping_clears_the_cofactor() -> None:
    """Adding the order-2 point (0, 0) maps u to 1/u; a clamped scalar erases it, so the hash's torsion
    (we skip RFC 9380's clear_cofactor) never shows in blinded values."""
    scalar = bytes(range(1, 33))
    for point in hash_to_curve([f"id-{i}" for i in range(20)], "ctx"):
        u = int.from_bytes(point, "little")
        torsioned = pow(u, -1, _P).to_bytes(32, "little")
        assert crypto_scalarmult(scalar, point) == crypto_scalarmult(scalar, torsioned)


def test_hash_is_context_bound_and_on_the_curve() -> None:
    ids = customer_ids(0, 50)
    a, b = hash_to_curve(ids, "job-1"), hash_to_curve(ids, "job-2")
    assert len(set(a)) == 50 and not set(a) & set(b)
    assert all(_on_curve25519(p) for p in a)


def test_blinding_initialises_libsodium_before_its_first_call() -> None:
    """libsodium picks its fast X25519 in sodium_init; the pool workers import only this module, so the module
    itself must run it (without it every multiplication falls back to the 1.5x slower reference code)."""
    code = "import algorithms.psi.blinding; from nacl._sodium import lib; print(lib.sodium_init())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "1"  # 1: already initialised


@pytest.mark.parametrize("name", sorted(blinding_mod.IMPLEMENTATIONS))
def test_blinding_refuses_low_order_points_naming_the_peer(name: str) -> None:
    multiply = blinding_mod.IMPLEMENTATIONS[name]
    scalar = bytes(range(1, 33))
    good = hash_to_curve(["a", "b"], "ctx")
    p = 2**255 - 19
    for bad in (0, 1, p, p + 1):  # the points of order 2 and 4 (and their non-canonical encodings)
        with pytest.raises(PsiError, match=r"position 12 from 'insurer'"):
            multiply(scalar, b"".join(good) + bad.to_bytes(32, "little"), 10, "insurer")
    assert split_points(multiply(scalar, b"".join(good), 0, "insurer")) == [crypto_scalarmult(scalar, p) for p in good]


def test_the_x25519_implementations_agree() -> None:
    """libsodium and OpenSSL compute the same function on any 32 bytes a peer could send: curve and twist points,
    the top bit set (ignored), u-coordinates of p or more (reduced); so the faster one can be chosen per CPU."""
    rng = np.random.default_rng(7)
    raw = [bytes(row) for row in rng.integers(0, 256, (300, 32), dtype=np.uint8)]
    p = 2**255 - 19
    raw += [(p + 9).to_bytes(32, "little"), (2**255 - 1).to_bytes(32, "little"), (9 | 1 << 255).to_bytes(32, "little")]
    points = b"".join(raw) + b"".join(hash_to_curve([str(i) for i in range(50)], "agree"))
    for scalar in (bytes(range(1, 33)), bytes(32), b"\xff" * 32, blinding_mod.new_scalar()):
        results = {name: f(scalar, points, 0, "peer") for name, f in blinding_mod.IMPLEMENTATIONS.items()}
        assert len(set(results.values())) == 1, scalar
        assert split_points(results["libsodium"])[:3] == [crypto_scalarmult(scalar, q) for q in raw[:3]]


def test_the_x25519_implementation_can_be_fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    blinding_mod.implementation.cache_clear()
    try:
        monkeypatch.setenv("FEDRISK_PSI_X25519", "libsodium")
        assert blinding_mod.implementation() == "libsodium"
        blinding_mod.implementation.cache_clear()
        monkeypatch.setenv("FEDRISK_PSI_X25519", "boringssl")
        with pytest.raises(ValueError, match=r"FEDRISK_PSI_X25519='boringssl': choose one of libsodium, openssl"):
            blinding_mod.implementation()
        blinding_mod.implementation.cache_clear()
        monkeypatch.delenv("FEDRISK_PSI_X25519")
        assert blinding_mod.implementation() in blinding_mod.IMPLEMENTATIONS  # timed: the faster here
    finally:
        blinding_mod.implementation.cache_clear()


def test_members_handles_shared_prefixes() -> None:
    rng = np.random.default_rng(0)
    pool = rng.integers(0, 256, (50, 32), dtype=np.uint8)
    pool[1, :8] = pool[0, :8]  # two pool points share their first 8 bytes
    items = np.concatenate([pool[[0, 1, 7]], rng.integers(0, 256, (3, 32), dtype=np.uint8)])
    twin = pool[1].copy()
    twin[31] ^= 1  # same 8-byte key as pool[0] and pool[1], different point
    items = np.concatenate([items, twin[None]])
    np.testing.assert_array_equal(members(items, pool), [True, True, True, False, False, False, False])


# ------------------------------------------------------------------------------------------ protocol
def test_intersection_with_ten_percent_non_overlap() -> None:
    rng = np.random.default_rng(7)
    bank = customer_ids(0, 1000)
    insurer = customer_ids(100, 1100)  # 10 % of each side is not in the other
    rng.shuffle(insurer)
    insurer[0] = f"  {insurer[0]}\t"  # surrounding whitespace is not part of the id
    results, _ = run_pair(bank, insurer)
    expected = customer_ids(100, 1000)
    for party, ids in (("bank", bank), ("insurer", insurer)):
        result = results[party]
        assert result.ids == expected  # canonical order: sorted by the shared id
        assert [ids[i].strip() for i in result.positions] == expected  # rows to align, in that order
    assert results["bank"].peer_sizes == {"insurer": 1000}
    assert results["insurer"].peer_sizes == {"bank": 1000}


def test_points_stream_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protocol, "CHUNK", 64)
    monkeypatch.setattr(blinding_mod, "CHUNK", 64)
    bank, insurer = customer_ids(0, 300), customer_ids(50, 420)
    results, network = run_pair(bank, insurer, record=True, min_intersection=100)
    assert results["bank"].ids == results["insurer"].ids == customer_ids(50, 300)
    tags = {d.tag for d in network.received_by("insurer")}
    assert {f"psi.insurer.blinded.bank.{k}" for k in range(5)} <= tags  # 300 points in chunks of 64
    assert {f"psi.insurer.double.bank.{k}" for k in range(6)} <= tags  # 370 points back


def test_unicode_ids_are_normalised() -> None:
    names = [f"client-{i}-é" for i in range(120)]
    decomposed = [unicodedata.normalize("NFD", n) for n in names]
    assert decomposed[0] != names[0]
    results, _ = run_pair([*names, "only-bank"], [*decomposed, "only-insurer", 42])
    assert results["bank"].ids == results["insurer"].ids == sorted(names)


def test_integer_and_string_ids_agree() -> None:
    results, _ = run_pair(list(range(150)), [str(i) for i in range(50, 200)])
    assert results["bank"].ids == sorted(str(i) for i in range(50, 150))
    np.testing.assert_array_equal(results["bank"].positions, [int(s) for s in results["bank"].ids])
    out, _ = run_collecting({"bank": PsiGuest(np.arange(150), PAIR, "c"), "insurer": PsiHost(["x"], PAIR, "c")})
    assert all(isinstance(e, IntersectionTooSmall) and "has 0 ids" in str(e) for e in out.values())


def test_numpy_string_arrays_are_accepted() -> None:
    results, _ = run_pair(np.array(customer_ids(0, 200)), customer_ids(50, 250))
    assert results["bank"].ids == customer_ids(50, 200)


def test_small_intersection_is_refused_by_both_parties() -> None:
    bank, insurer = customer_ids(0, 500), customer_ids(450, 900)  # 50 in common
    out, _ = run_collecting({"bank": PsiGuest(bank, PAIR, "c"), "insurer": PsiHost(insurer, PAIR, "c")})
    for exc in out.values():
        assert isinstance(exc, IntersectionTooSmall)
        assert "50 ids, below the minimum of 100" in str(exc)
    # configurable, but only if every silo's own floor allows it
    results, _ = run_pair(bank, insurer, min_intersection=50, local_floor=50)
    assert len(results["bank"]) == 50


def test_different_contexts_do_not_match() -> None:
    ids = customer_ids(0, 200)
    out, _ = run_collecting({"bank": PsiGuest(ids, PAIR, "job-1"), "insurer": PsiHost(ids, PAIR, "job-2")})
    assert all(isinstance(e, IntersectionTooSmall) and "has 0 ids" in str(e) for e in out.values())


def _on_curve25519(u_bytes: bytes) -> bool:
    u = int.from_bytes(u_bytes, "little")
    rhs = (u * u * u + 486662 * u * u + u) % _P
    return u < _P and (rhs == 0 or pow(rhs, (_P - 1) // 2, _P) == 1)


def test_only_blinded_curve_points_cross_the_channel() -> None:
    bank, insurer = customer_ids(0, 300), customer_ids(30, 330)
    _, network = run_pair(bank, insurer, record=True)
    unblinded = set(hash_to_curve(normalise_ids(bank), "job-1/id")) | set(hash_to_curve(insurer, "job-1/id"))
    kinds = set()
    for delivery in network.transcript:
        kind = delivery.tag.split(".")[2]
        kinds.add(kind)
        if kind in ("blinded", "double"):
            first_blinded = kind == "blinded" and delivery.tag.endswith(".0")
            assert set(delivery.payload) == ({"total", "points", "suite"} if first_blinded else {"total", "points"})
            assert delivery.payload["total"] == 300
            if first_blinded:
                assert delivery.payload["suite"] == protocol.HASH_SUITE
                assert protocol.HASH_SUITE == "FEDRISK-PSI-V4-curve25519-u_XOF:SHAKE256_TAI_"
            points = split_points(delivery.payload["points"])
            assert len(points) == 300 and all(_on_curve25519(p) for p in points)
            assert not unblinded & set(points)  # never a bare hash of an id
            assert len(set(points)) == len(points)
            assert b"CUST" not in delivery.payload["points"]
        elif kind == "verdict":
            assert delivery.payload == {"accept": True, "minimum": 100, "reason": ""}
        elif kind == "decision":
            assert delivery.payload == {"proceed": True, "reason": ""}
        else:
            assert kind == "matches" and len(delivery.payload["indices"]) == 270
    assert kinds == {"blinded", "double", "verdict", "decision", "matches"}


def test_blinded_and_double_blinded_sets_are_shuffled(monkeypatch: pytest.MonkeyPatch) -> None:
    ids = customer_ids(0, 200)
    _, net = run_pair(ids, ids, record=True)
    fresh = [d.payload["points"] for d in net.transcript if d.tag == "psi.insurer.blinded.bank.0"]
    monkeypatch.setattr(protocol, "new_scalar", lambda: bytes(range(32)))  # same scalar: only the order can differ
    sent, doubled = [], []
    for _ in range(2):
        _, net = run_pair(ids, ids, record=True)
        sent += [d.payload["points"] for d in net.transcript if d.tag == "psi.insurer.blinded.bank.0"]
        doubled += [d.payload["points"] for d in net.transcript if d.tag == "psi.insurer.double.insurer.0"]
    for pair in (sent, doubled):
        first, second = split_points(pair[0]), split_points(pair[1])
        assert set(first) == set(second) and first != second  # same points, fresh random order
    assert not set(split_points(sent[0])) & set(split_points(fresh[0]))


def test_three_parties_align_on_the_common_intersection() -> None:
    parties = Parties(guest="bank", hosts=("insurer", "telco"))
    bank, insurer, telco = customer_ids(0, 400), customer_ids(50, 450), customer_ids(0, 300)
    results, _ = run_pair(bank, [insurer, telco], parties=parties)
    expected = customer_ids(50, 300)
    for party, ids in (("bank", bank), ("insurer", insurer), ("telco", telco)):
        assert results[party].ids == expected
        assert [ids[i] for i in results[party].positions] == expected


def test_bad_ids_are_named() -> None:
    with pytest.raises(PsiError, match="duplicate id 'a' at rows 0 and 2"):
        normalise_ids(["a", "b", " a "])
    with pytest.raises(PsiError, match="duplicate id '7' at rows 0 and 1"):
        normalise_ids([7, "7"])
    with pytest.raises(PsiError, match="missing id at row 1"):
        normalise_ids(["a", None])
    with pytest.raises(PsiError, match="empty id at row 1"):
        normalise_ids(["a", "  "])
    with pytest.raises(PsiError, match="no ids"):
        normalise_ids([])


class _LowOrderHost:
    """A misbehaving host that answers with low-order points."""

    def run(self, channel: Channel) -> None:
        channel.send("bank", "psi.insurer.blinded.insurer.0",
                     {"total": 150, "points": bytes(POINT_BYTES) * 150, "suite": protocol.HASH_SUITE})
        channel.recv("bank", "psi.insurer.blinded.bank.0")


def test_low_order_points_from_a_peer_are_rejected() -> None:
    network = InMemoryNetwork()
    channels = {p: network.channel(p) for p in PAIR.silos}
    with pytest.raises(PsiError, match="invalid curve point at position 0 from 'insurer'"):
        run_parties({"bank": lambda: PsiGuest(customer_ids(0, 150), PAIR, "c").run(channels["bank"]),
                     "insurer": lambda: _LowOrderHost().run(channels["insurer"])}, network)


class _OldReleaseHost:
    """A host on an older release: its blinded points come without (or with another) hash suite."""

    def __init__(self, suite: str | None) -> None:
        self.suite = suite

    def run(self, channel: Channel) -> None:
        msg: dict[str, Any] = {"total": 150, "points": b"".join(hash_to_curve(customer_ids(0, 150), "c"))}
        if self.suite is not None:
            msg["suite"] = self.suite
        channel.send("bank", "psi.insurer.blinded.insurer.0", msg)
        channel.recv("bank", "psi.insurer.blinded.bank.0")


@pytest.mark.parametrize("suite", [None, "FEDRISK-PSI-V3-curve25519-u_XMD:SHA-512_TAI_"])
def test_a_peer_hashing_ids_differently_is_named_not_blamed_on_the_id_format(suite: str | None) -> None:
    """Otherwise every id would hash to a different point and the run would end in an empty intersection
    with a hint about id formats."""
    network = InMemoryNetwork()
    channels = {p: network.channel(p) for p in PAIR.silos}
    with pytest.raises(PsiError, match=r"'insurer' hashes ids with .* but 'bank' with FEDRISK-PSI-V4-.*"
                                       r"different fedrisk releases") as err:
        run_parties({"bank": lambda: PsiGuest(customer_ids(0, 150), PAIR, "c").run(channels["bank"]),
                     "insurer": lambda: _OldReleaseHost(suite).run(channels["insurer"])}, network)
    assert (suite or "an older, unnamed suite") in str(err.value)


def test_multi_host_refusal_reaches_every_host_without_sizes() -> None:
    parties = Parties(guest="bank", hosts=("insurer", "telco"))
    bank, insurer, telco = customer_ids(0, 400), customer_ids(0, 400), customer_ids(350, 500)  # telco: 50
    out, network = run_collecting({"bank": PsiGuest(bank, parties, "c"), "insurer": PsiHost(insurer, parties, "c"),
                                   "telco": PsiHost(telco, parties, "c")}, parties, record=True)
    assert all(isinstance(e, IntersectionTooSmall) for e in out.values())
    assert "50" not in str(out["insurer"])  # the insurer does not learn the telco's overlap
    assert "another party refused" in str(out["insurer"])
    # refused on the counts: no host received any membership information
    assert not [d for d in network.transcript if d.tag.split(".")[2] in ("matches", "keep")]


def test_multi_host_final_intersection_checked_against_every_floor() -> None:
    """Pairwise sizes pass, the all-party one (30) does not: refused before any host learns which rows survive."""
    parties = Parties(guest="bank", hosts=("insurer", "telco"))
    bank, insurer, telco = customer_ids(0, 400), customer_ids(0, 130), customer_ids(100, 400)
    out, _ = run_collecting({"bank": PsiGuest(bank, parties, "c"), "insurer": PsiHost(insurer, parties, "c"),
                             "telco": PsiHost(telco, parties, "c")}, parties)
    assert all(isinstance(e, IntersectionTooSmall) for e in out.values())
    assert "all-party intersection" in str(out["insurer"]) and not re.search(r"\b30\b", str(out["insurer"]))
    assert "30 ids" in str(out["bank"])


# ------------------------------------------------------------------------------- attacks (issue 10.5)
def test_job_cannot_lower_a_silo_floor_and_a_refusal_reveals_no_membership(monkeypatch: pytest.MonkeyPatch) -> None:
    """The attack: an arbiter sets min_intersection=0 to make PSI a membership oracle for 3 customers. The
    insurer's own floor (100) refuses after the count; neither side holds any id of the intersection, and
    the refusing transcript carries counts only."""
    scalars = {"bank": bytes(range(1, 33)), "insurer": bytes(range(33, 65))}  # known, so the test can attack
    monkeypatch.setattr(protocol, "new_scalar", lambda: scalars[threading.current_thread().name])
    shared = ["CUST-000007", "CUST-000123", "CUST-000250"]
    bank = customer_ids(0, 300)
    insurer = [*shared, *(f"OTHER-{i:05d}" for i in range(297))]
    np.random.default_rng(1).shuffle(insurer)
    out, network = run_collecting({"bank": PsiGuest(bank, PAIR, "c", min_intersection=0, local_floor=0),
                                   "insurer": PsiHost(insurer, PAIR, "c", min_intersection=0, local_floor=100)},
                                  record=True)
    for party in ("bank", "insurer"):
        exc = out[party]
        assert isinstance(exc, IntersectionTooSmall), exc
        text = str(exc)
        assert "3 ids, below the minimum of 100 (insurer's local floor)" in text
        assert not any(s in text for s in shared)  # no id of the intersection in the error
    # what each party received: points (fixed counts), a verdict / decision with sizes, nothing else
    for party, peer_size in (("bank", 300), ("insurer", 300)):
        for d in network.received_by(party):
            kind = d.tag.split(".")[2]
            assert kind in ("blinded", "double", "verdict", "decision"), d.tag  # no positions, no ids
            if kind in ("blinded", "double"):
                assert d.payload["total"] == (peer_size if kind == "blinded" else 300)
            else:
                numbers = {int(n) for n in re.findall(r"\d+", str(d.payload)) if n != "0"}
                assert numbers <= {3, 100}, d.payload  # the count and the minimum, nothing per id
    # the positional attack that worked before the fix: the bank reads the double-blinded points returned to
    # it as aligned with the order it sent; now the matches sit at fresh random positions
    sent = [p for d in network.received_by("insurer") if d.tag.startswith("psi.insurer.blinded.bank")
            for p in split_points(d.payload["points"])]
    returned = [p for d in network.received_by("bank") if d.tag.startswith("psi.insurer.double.insurer")
                for p in split_points(d.payload["points"])]
    assert len(sent) == len(returned) == 300
    theirs = [p for d in network.received_by("bank") if d.tag.startswith("psi.insurer.blinded.insurer")
              for p in split_points(d.payload["points"])]
    doubled = {crypto_scalarmult(scalars["bank"], p) for p in theirs}  # all the bank can do with its scalar
    hits = [j for j, p in enumerate(returned) if p in doubled]
    assert len(hits) == 3  # the bank learns the count, as declared
    own = {crypto_scalarmult(scalars["bank"], p): x for x, p in zip(bank, hash_to_curve(bank, "c"), strict=True)}
    where = sorted(j for j, p in enumerate(sent) if own[p] in shared)  # where the shared ids sat in what it sent
    assert hits != where  # reading the returned order as the sent order points at the wrong customers
    assert {own[sent[j]] for j in hits} != set(shared)


def test_refusal_names_id_counts_and_own_id_shapes_only() -> None:
    """Issue 11.8: different id formats ('C000123' vs '123') give an empty intersection and a hint."""
    bank = [f"C{i:06d}" for i in range(500)]
    insurer = [str(i) for i in range(500)]
    out, _ = run_collecting({"bank": PsiGuest(bank, PAIR, "c"), "insurer": PsiHost(insurer, PAIR, "c")})
    bank_msg, insurer_msg = str(out["bank"]), str(out["insurer"])
    assert "bank had 500 ids, insurer had 500" in bank_msg
    assert "insurer had 500 ids, bank had 500" in insurer_msg
    assert "'A999999' (500 of 500)" in bank_msg and "'999'" not in bank_msg  # its own shape, never the peer's
    assert "'A999999'" not in insurer_msg and "'999' (" in insurer_msg
    assert id_shape("C-00012x") == "A-99999A"


def test_silo_config_sets_its_own_floor(tmp_path: Path) -> None:
    from silo.config import ConfigError, load_silo_config
    from tests.test_silo import _write_config, frame

    frame().to_csv(tmp_path / "d.csv", index=False)
    path = _write_config(tmp_path, 'source = "csv"\npath = "d.csv"')
    assert load_silo_config(path).psi_floor == 100  # the default
    path.write_text(path.read_text() + "\n[psi]\nmin_intersection = 5000\n")
    assert load_silo_config(path).psi_floor == 5000
    path.write_text(path.read_text().replace("5000", "0"))
    with pytest.raises(ConfigError, match=r"psi\.min_intersection must be a positive integer"):
        load_silo_config(path)


def test_every_received_message_is_a_declared_disclosure() -> None:
    from fnmatch import fnmatch

    from algorithms.psi.protocol import DISCLOSURES

    parties = Parties(guest="bank", hosts=("insurer", "telco"))
    _, network = run_pair(customer_ids(0, 400), [customer_ids(50, 450), customer_ids(0, 300)], parties=parties,
                          record=True)
    for d in network.transcript:
        receiver, sender = parties.role_of(d.receiver), parties.role_of(d.sender)
        assert [x for x in DISCLOSURES if x.receiver == receiver and x.sender == sender and fnmatch(d.tag, x.tag)], \
            d.tag
