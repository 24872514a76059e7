"""ECDH PSI: correct, canonical intersection; refusals; only blinded curve points cross the channel."""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from algorithms import psi
from algorithms.base import Parties
from algorithms.psi import (
    POINT_BYTES,
    IntersectionTooSmall,
    PsiError,
    PsiGuest,
    PsiHost,
    PsiResult,
    hash_to_curve,
    normalise_ids,
)
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


def customer_ids(start: int, stop: int) -> list[str]:
    return [f"CUST-{i:06d}" for i in range(start, stop)]


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


def test_small_intersection_is_refused_by_both_parties() -> None:
    network = InMemoryNetwork()
    channels = {p: network.channel(p) for p in PAIR.silos}
    errors: dict[str, BaseException] = {}

    def role(party: str, obj: PsiGuest | PsiHost) -> None:
        try:
            obj.run(channels[party])
        except BaseException as exc:
            errors[party] = exc

    bank, insurer = customer_ids(0, 500), customer_ids(450, 900)  # 50 in common
    threads = [threading.Thread(target=role, args=("bank", PsiGuest(bank, PAIR, "c"))),
               threading.Thread(target=role, args=("insurer", PsiHost(insurer, PAIR, "c")))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert set(errors) == {"bank", "insurer"}
    for exc in errors.values():
        assert isinstance(exc, IntersectionTooSmall)
        assert "50 ids, below the minimum of 100" in str(exc)
    results, _ = run_pair(bank, insurer, min_intersection=50)  # configurable
    assert len(results["bank"]) == 50


def test_different_contexts_do_not_match() -> None:
    network = InMemoryNetwork()
    channels = {p: network.channel(p) for p in PAIR.silos}
    ids = customer_ids(0, 200)
    with pytest.raises(IntersectionTooSmall, match="has 0 ids"):
        run_parties({"bank": lambda: PsiGuest(ids, PAIR, "job-1").run(channels["bank"]),
                     "insurer": lambda: PsiHost(ids, PAIR, "job-2").run(channels["insurer"])}, network)


def _on_curve25519(u_bytes: bytes) -> bool:
    u = int.from_bytes(u_bytes, "little")
    rhs = (u * u * u + 486662 * u * u + u) % _P
    return u < _P and (rhs == 0 or pow(rhs, (_P - 1) // 2, _P) == 1)


def test_only_blinded_curve_points_cross_the_channel() -> None:
    bank, insurer = customer_ids(0, 300), customer_ids(30, 330)
    _, network = run_pair(bank, insurer, record=True)
    transcript = network.transcript
    assert len(transcript) == 4  # blinded set and double-blinded set, each way
    unblinded = set(hash_to_curve(normalise_ids(bank), "job-1/id")) | set(hash_to_curve(insurer, "job-1/id"))
    for delivery in transcript:
        assert list(delivery.payload) == ["points"]
        data = delivery.payload["points"]
        assert isinstance(data, bytes) and len(data) == 300 * POINT_BYTES
        points = [data[i:i + POINT_BYTES] for i in range(0, len(data), POINT_BYTES)]
        assert all(_on_curve25519(p) for p in points)
        assert not unblinded & set(points)  # never a bare hash of an id
        assert len(set(points)) == len(points)
        assert b"CUST" not in data


def test_blinded_sets_are_shuffled(monkeypatch: pytest.MonkeyPatch) -> None:
    ids = customer_ids(0, 200)
    _, net = run_pair(ids, ids, record=True)
    fresh = [d.payload["points"] for d in net.transcript if d.tag == "psi.insurer.blinded.bank"]
    monkeypatch.setattr(psi, "new_scalar", lambda: bytes(range(32)))  # same scalar: only the order can differ
    sent = []
    for _ in range(2):
        _, net = run_pair(ids, ids, record=True)
        sent += [d.payload["points"] for d in net.transcript if d.tag == "psi.insurer.blinded.bank"]
    split = [[s[i:i + POINT_BYTES] for i in range(0, len(s), POINT_BYTES)] for s in sent]
    assert set(split[0]) == set(split[1]) and split[0] != split[1]  # same points, fresh random order
    assert not set(split[0]) & {fresh[0][i:i + POINT_BYTES] for i in range(0, len(fresh[0]), POINT_BYTES)}


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
    with pytest.raises(PsiError, match="missing id at row 1"):
        normalise_ids(["a", None])
    with pytest.raises(PsiError, match="empty id at row 0"):
        normalise_ids(["  "])


class _LowOrderHost:
    """A misbehaving host that answers with low-order points."""

    def run(self, channel: Channel) -> None:
        channel.send("bank", "psi.insurer.blinded.insurer", {"points": bytes(POINT_BYTES) * 150})
        channel.recv("bank", "psi.insurer.blinded.bank")


def test_low_order_points_from_a_peer_are_rejected() -> None:
    network = InMemoryNetwork()
    channels = {p: network.channel(p) for p in PAIR.silos}
    with pytest.raises(PsiError, match="invalid curve point at position 0 from 'insurer'"):
        run_parties({"bank": lambda: PsiGuest(customer_ids(0, 150), PAIR, "c").run(channels["bank"]),
                     "insurer": lambda: _LowOrderHost().run(channels["insurer"])}, network)


def test_multi_host_refusal_reaches_every_host_without_sizes() -> None:
    parties = Parties(guest="bank", hosts=("insurer", "telco"))
    bank, insurer, telco = customer_ids(0, 400), customer_ids(0, 400), customer_ids(350, 500)  # telco: 50
    network = InMemoryNetwork()
    channels = {p: network.channel(p) for p in parties.silos}
    errors: dict[str, BaseException] = {}

    def role(party: str, obj: PsiGuest | PsiHost) -> None:
        try:
            obj.run(channels[party])
        except BaseException as exc:
            errors[party] = exc

    threads = [threading.Thread(target=role, args=("bank", PsiGuest(bank, parties, "c"))),
               threading.Thread(target=role, args=("insurer", PsiHost(insurer, parties, "c"))),
               threading.Thread(target=role, args=("telco", PsiHost(telco, parties, "c")))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert all(not t.is_alive() for t in threads)
    assert set(errors) == {"bank", "insurer", "telco"}
    assert all(isinstance(e, IntersectionTooSmall) for e in errors.values())
    assert "50" not in str(errors["insurer"])  # the insurer does not learn the telco's overlap
