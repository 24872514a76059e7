"""Vertical WOE/IV binning: bins, WOE/IV, optimal merge, selection, the encrypted protocol against the
plaintext computation on the joined data, the host's transcript, and refusal of too-small bins."""

from __future__ import annotations

from fnmatch import fnmatch

import numpy as np
import pytest

from algorithms import catalogue
from algorithms.api import ParamsError, PartyData, RoleContext
from algorithms.base import Parties
from algorithms.binning import (
    BinningGuest,
    BinningHost,
    BinningParams,
    BinningProtocolError,
    BinTooSmallError,
    Candidate,
    FeatureBins,
    optimal_groups,
    plain_woe,
    select,
    woe_table,
)
from algorithms.binning.protocol import check_bin_sizes, fit_bins, label_layout
from algorithms.paillier import CiphertextVector
from algorithms.secureboost.data import ids_digest
from datasets import load_default_credit_vertical
from federation.channel import InMemoryNetwork, run_parties

PARTIES = Parties("bank", ("insurer",))
N_ROWS = 1500


@pytest.fixture(scope="module")
def credit() -> dict[str, object]:
    """1,500 customers; the insurer's x1 is categorical, x4 has 120 missing values (its own bin)."""
    d = load_default_credit_vertical()
    g, h = d.guest.iloc[:N_ROWS], d.hosts["insurer"].iloc[:N_ROWS]
    gn = [c for c in g.columns if c not in ("id", "y")]
    hn = [c for c in h.columns if c != "id"]
    hx = h[hn].to_numpy().copy()
    hx[np.random.default_rng(1).choice(N_ROWS, 120, replace=False), hn.index("x4")] = np.nan
    return {"gx": g[gn].to_numpy(), "gn": gn, "y": g["y"].to_numpy(), "ids": g["id"].astype(str).to_numpy(),
            "hx": hx, "hn": hn}


def run_binning(credit: dict, params: BinningParams, keypair: tuple, share: bool = False,
                network: InMemoryNetwork | None = None) -> dict:
    net = network or InMemoryNetwork()
    guest = BinningGuest(credit["gx"], credit["gn"], credit["y"], credit["ids"], params, PARTIES, keypair=keypair)
    host = BinningHost(credit["hx"], credit["hn"], credit["ids"], params, PARTIES, "insurer",
                       share_feature_names=share)
    bank, insurer = net.channel("bank"), net.channel("insurer")
    return run_parties({"bank": lambda: guest.run(bank), "insurer": lambda: host.run(insurer)}, net)


# ------------------------------------------------------------------------------------------ local parts

def test_bins_quantile_equal_width_categorical_and_missing() -> None:
    x = np.r_[np.arange(100.0), [np.nan] * 7]
    q = FeatureBins.fit("q", x, "quantile", 4)
    assert q.edges == (24.75, 49.5, 74.25) and q.has_missing and q.n_bins == 5
    assert np.bincount(q.transform(x)).tolist() == [25, 25, 25, 25, 7]
    w = FeatureBins.fit("w", np.r_[np.zeros(50), [10.0] * 50], "equal_width", 5)
    assert w.edges == (8.0,)  # the empty intervals [2, 4), [4, 6), [6, 8) dropped
    c = FeatureBins.fit("c", np.array([3.0, 1, 1, 2, 3, 3]), categorical=True)
    assert c.levels == ((1.0,), (2.0,), (3.0,)) and c.transform(np.array([3.0, 1, 2])).tolist() == [2, 0, 1]
    merged = c.merge([[0, 2], [1]])
    assert merged.transform(np.array([3.0, 2, 1])).tolist() == [0, 1, 0]
    with pytest.raises(ValueError, match="consecutive"):
        q.merge([[0, 2], [1, 3]])
    assert q.merge([[0, 1], [2, 3]]).edges == (49.5,)
    # labels in the column's original units when the silo standardised it (mean 10, scale 2)
    assert q.merge([[0, 1], [2, 3]]).labels(unit=(10.0, 2.0)) == ["[-inf, 109)", "[109, inf)", "missing"]
    # numeric bins below min_rows are merged into a neighbour at fitting time (label-free)
    skewed = np.r_[np.zeros(5), np.arange(1.0, 201.0)]
    assert min(np.bincount(FeatureBins.fit("s", skewed, "quantile", 40, min_rows=20).transform(skewed))) >= 20


def test_woe_with_adjustment_for_empty_cells() -> None:
    t = woe_table(np.array([10.0, 0.0, 30.0]), np.array([100.0, 50.0, 100.0]))
    # the empty cell: (0 + 0.5) / 40 events vs (50 + 0.5) / 210 non-events
    assert t.woe[1] == pytest.approx(np.log((0.5 / 40) / (50.5 / 210)))
    assert t.woe[0] == pytest.approx(np.log((10 / 40) / (90 / 210)))
    assert t.iv == pytest.approx(float(np.sum((np.array([10, 0.5, 30]) / 40 - np.array([90, 50.5, 70]) / 210)
                                              * t.woe)))


def test_optimal_merge_is_monotonic_and_respects_min_size() -> None:
    rng = np.random.default_rng(0)
    n = np.full(12, 200.0)
    rate = np.clip(np.linspace(0.05, 0.4, 12) + rng.normal(0, 0.04, 12), 0.01, 0.9)
    e = np.round(n * rate)
    groups = optimal_groups(e, n, min_rows=300, max_bins=5)
    assert [i for g in groups for i in g] == list(range(12)) and len(groups) <= 5
    ge, gn = np.array([e[g].sum() for g in groups]), np.array([n[g].sum() for g in groups])
    assert gn.min() >= 300 and np.all(np.diff(ge / gn) > 0)
    cat = optimal_groups(np.array([5.0, 40, 10]), np.array([100.0, 100, 100]), categorical=True, min_rows=50)
    assert sorted(i for g in cat for i in g) == [0, 1, 2]


def test_selection_threshold_and_top_k_across_parties() -> None:
    cands = [Candidate("bank", "a", 0.3), Candidate("insurer", "t1", 0.5), Candidate("insurer", "t2", 0.01),
             Candidate("bank", "b", 0.1)]
    assert select(cands, 0.02) == {("bank", "a"), ("insurer", "t1"), ("bank", "b")}
    assert select(cands, 0.0, top_k=2) == {("insurer", "t1"), ("bank", "a")}


# ------------------------------------------------------------------------------------------ protocol

def test_host_woe_iv_under_encryption_equal_plaintext_on_joined_data(credit: dict, keypair: tuple) -> None:
    params = BinningParams(n_bins=8, categorical=("x1",))
    out = run_binning(credit, params, keypair)
    bank, host = out["bank"], out["insurer"]
    # the plaintext reference on the joined data: the same bins, labels next to the host's columns
    ref_bins = fit_bins(credit["hx"], credit["hn"], params)
    assert ref_bins.to_dict() == host.bins.to_dict()
    B = ref_bins.transform(credit["hx"])
    remote = bank.of("insurer")
    assert len(remote) == len(credit["hn"]) and all(c.name is None for c in remote)
    by_token = {c.key: c for c in remote}
    worst = 0.0
    for j, name in enumerate(credit["hn"]):
        ref = plain_woe(B[:, j], credit["y"], ref_bins.features[j].n_bins)
        got = by_token[host.tokens[name]]
        assert got.table.totals.tolist() == ref.totals.tolist()
        worst = max(worst, abs(got.iv - ref.iv), float(np.abs(got.table.woe - ref.woe).max()))
    assert worst <= 1e-9
    x4 = by_token[host.tokens["x4"]]
    assert x4.missing_bin == len(x4.table.totals) - 1 and x4.table.totals[-1] == 120
    assert by_token[host.tokens["x1"]].kind == "categorical"
    # the bank's own characteristics, in clear at the bank
    gB = bank.bins.transform(credit["gx"])
    for j, c in enumerate(bank.own()):
        assert c.iv == pytest.approx(plain_woe(gB[:, j], credit["y"], bank.bins.features[j].n_bins).iv, abs=1e-12)


def test_federated_optimal_binning_matches_the_plaintext_merge(credit: dict, keypair: tuple) -> None:
    params = BinningParams(n_bins=12, optimal=True, max_bins=4, min_bin_rows=100, iv_threshold=0.02)
    out = run_binning(credit, params, keypair, share=True)
    bank, host = out["bank"], out["insurer"]
    fine = fit_bins(credit["hx"], credit["hn"], params)
    Bf = fine.transform(credit["hx"])
    y = credit["y"]
    for j, f in enumerate(fine.features):
        k = f.n_value_bins
        vals = Bf[:, j] < k
        e = np.bincount(Bf[vals, j], weights=y[vals], minlength=k)
        n = np.bincount(Bf[vals, j], minlength=k)
        expected = f.merge(optimal_groups(e, n, False, 100, 4, True, 0.5))
        assert host.bins.features[j].to_dict() == expected.to_dict()
        mine = next(c for c in bank.of("insurer") if c.key == f.name)  # names shared by the host's consent
        ref = plain_woe(expected.transform(credit["hx"][:, j]), y, expected.n_bins)
        assert np.abs(mine.table.woe - ref.woe).max() <= 1e-9
        if expected.missing_bin is None:
            assert np.all(np.diff(mine.table.event_rate) > 0) or np.all(np.diff(mine.table.event_rate) < 0) \
                or len(mine.table.woe) == 1
    kept = {c.key for c in bank.of("insurer") if c.selected}
    assert set(host.selected) == kept and kept == {c.key for c in bank.of("insurer") if c.iv >= 0.02}


def test_host_never_receives_a_label_derived_value(credit: dict, keypair: tuple) -> None:
    net = InMemoryNetwork(record=True)
    params = BinningParams(n_bins=10, optimal=True, top_k=5)
    run_binning(credit, params, keypair, network=net)
    # every message anyone received is declared in the plug-in's disclosure ledger
    role_of = {"bank": "guest", "insurer": "host"}
    ledger = catalogue.get("binning").disclosures
    for d in net.transcript:
        assert any(x.receiver == role_of[d.receiver] and x.sender == role_of[d.sender] and fnmatch(d.tag, x.tag)
                   for x in ledger), d.tag
    received = net.received_by("insurer")
    tags = [d.tag for d in received]
    assert tags == ["bin.setup", "bin.labels", "bin.merge", "bin.selection"]
    setup, labels, merge, selection = (d.payload for d in received)
    assert set(setup) == {"public_key", "params", "ids_digest", "n_rows", "train_rows", "layout"}
    assert setup["params"] == params.to_dict()
    assert set(labels) == {"labels"} and isinstance(labels["labels"], CiphertextVector)
    assert labels["labels"].public_key == keypair[0]  # under the bank's key, which the host does not hold
    # merge groups: integer index ranges only; selection: the host's own tokens only
    assert set(merge) == {"keys", "groups"}
    assert all(isinstance(i, int) for gs in merge["groups"] for g in gs for i in g)
    assert set(selection) == {"keep"} and set(selection["keep"]) <= set(merge["keys"])
    assert all(k.startswith("insurer:") for k in merge["keys"])
    # no float anywhere the host receives (WOE, IV, rates, counts would be floats or count arrays)
    for d in received:
        for key, value in d.payload.items():
            if key not in ("layout", "params"):
                assert not isinstance(value, float)
                assert not (isinstance(value, np.ndarray) and value.dtype.kind == "f"), (d.tag, key)
    # without the optimal merge and selection the host learns nothing label-derived at all
    net2 = InMemoryNetwork(record=True)
    run_binning(credit, BinningParams(n_bins=10), keypair, network=net2)
    keep = next(d.payload for d in net2.received_by("insurer") if d.tag == "bin.selection")["keep"]
    assert len(keep) == len(credit["hn"])  # everything kept: the selection carries no information


def test_too_small_bins_are_refused_before_any_count_is_sent(credit: dict, keypair: tuple) -> None:
    params = BinningParams(n_bins=5, categorical=("x2",))  # x2 has a level with 3 customers
    net = InMemoryNetwork()
    channels = {p: net.channel(p) for p in ("bank", "insurer")}
    seen: list[dict] = []

    def bank() -> None:  # the bank's first step, then what it gets back instead of counts
        ch = channels["bank"]
        ch.send("insurer", "bin.setup", {"public_key": keypair[0].to_bytes(), "params": params.to_dict(),
                                         "ids_digest": ids_digest(credit["ids"]), "n_rows": N_ROWS,
                                         "train_rows": np.arange(N_ROWS),
                                         "layout": label_layout(N_ROWS, keypair[0].bits).to_dict()})
        seen.append(ch.recv("insurer", "bin.counts"))

    host = BinningHost(credit["hx"], credit["hn"], credit["ids"], params, PARTIES, "insurer")
    with pytest.raises(BinTooSmallError, match=r"'x2' holds \d rows, fewer than min_bin_rows=50"):
        run_parties({"bank": bank, "insurer": lambda: host.run(channels["insurer"])}, net)
    assert len(seen) == 1 and set(seen[0]) == {"error"} and "refusing to reveal" in seen[0]["error"]
    # the bank's role turns the refusal into an error naming the host
    with pytest.raises((BinningProtocolError, BinTooSmallError), match="insurer"):
        run_binning(credit, params, keypair)
    # a lower minimum lets the same bins through (checked locally: the protocol run is the one above)
    bins = fit_bins(credit["hx"], credit["hn"], BinningParams(n_bins=5, categorical=("x2",), min_bin_rows=2))
    check_bin_sizes(bins, bins.transform(credit["hx"]), 2, "insurer")


def test_binning_plugin_builds_roles_and_refuses_unknown_parameters(credit: dict) -> None:
    plugin = catalogue.get("binning")
    with pytest.raises(ParamsError, match="did you mean 'n_bins'"):
        plugin.parse_params({"n_bin": 4})
    params = plugin.parse_params({"n_bins": 4}, seed=7)
    assert params.seed == 7 and plugin.stages == ("align", "train") and plugin.arbiter is None
    data = PartyData(credit["ids"], credit["hx"], tuple(credit["hn"]))
    ctx = RoleContext("job", "insurer", "host", PARTIES, params, extra={"share_feature_names": True})
    role = plugin.trainer(ctx, data)
    assert isinstance(role, BinningHost) and role.share
    with pytest.raises(ParamsError, match="true or false"):
        plugin.trainer(RoleContext("job", "insurer", "host", PARTIES, params,
                                   extra={"share_feature_names": "yes"}), data)
    with pytest.raises(ParamsError, match="min_bin_rows"):
        plugin.check_preflight(params, {"bank": 13, "insurer": 10}, {"bank": 60, "insurer": 60})


def test_attacks_by_the_bank_on_host_bins_are_refused(credit: dict, keypair: tuple) -> None:
    """Differencing two row subsets that differ by one customer would give that customer's bin in every host
    characteristic; and with a handful of events, per-bin event counts place known defaulters in host bins."""
    net = InMemoryNetwork()
    subset = np.arange(N_ROWS - 1)  # every row but one
    guest = BinningGuest(credit["gx"], credit["gn"], credit["y"], credit["ids"], BinningParams(), PARTIES,
                         train_rows=subset, keypair=keypair)
    host = BinningHost(credit["hx"], credit["hn"], credit["ids"], BinningParams(), PARTIES, "insurer")
    bank, insurer = net.channel("bank"), net.channel("insurer")
    with pytest.raises(BinningProtocolError, match="1499 of the 1500 aligned rows; refused"):
        run_parties({"bank": lambda: guest.run(bank), "insurer": lambda: host.run(insurer)}, net)
    few = np.zeros(N_ROWS, dtype=np.int64)
    few[:3] = 1
    with pytest.raises(BinningProtocolError, match="3 events"):
        BinningGuest(credit["gx"], credit["gn"], few, credit["ids"], BinningParams(), PARTIES,
                     keypair=keypair).run(InMemoryNetwork().channel("bank"))
