"""Scorecards: points against toad on the joined data with the same bins, and the federated scorecard
(binning → vertical LR on WOE / indicator columns → per-party points tables → scoring with subtotals)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from algorithms import catalogue
from algorithms.api import ParamsError
from algorithms.base import Parties
from algorithms.binning import BinningParams, plain_woe
from algorithms.binning.protocol import fit_bins
from algorithms.metrics import auc
from algorithms.scorecard import (
    PointsScale,
    ScorecardArbiter,
    ScorecardGuest,
    ScorecardGuestPart,
    ScorecardGuestScorer,
    ScorecardHost,
    ScorecardHostPart,
    ScorecardHostScorer,
    ScorecardParams,
)
from algorithms.scorecard.design import indicator_columns, indicator_design, reference_bins, woe_design
from algorithms.scorecard.points import woe_points
from datasets import load_default_credit_vertical
from federation.channel import InMemoryNetwork, run_parties

PARTIES = Parties("bank", ("insurer",))


@pytest.fixture(scope="module")
def credit() -> dict:
    d = load_default_credit_vertical()
    g, h = d.guest, d.hosts["insurer"]
    gn = [c for c in g.columns if c not in ("id", "y")]
    hn = [c for c in h.columns if c != "id"]
    return {"gx": g[gn].to_numpy(), "gn": gn, "y": g["y"].to_numpy(), "ids": g["id"].astype(str).to_numpy(),
            "hx": h[hn].to_numpy(), "hn": hn}


def test_points_equal_toad_on_the_joined_data_with_the_same_bins(credit: dict) -> None:
    toad = pytest.importorskip("toad")
    n = 6000
    y = credit["y"][:n]
    params = BinningParams(n_bins=5)
    X = np.column_stack([credit["gx"][:n], credit["hx"][:n]])
    names = [f"bank_{c}" for c in credit["gn"]] + [f"insurer_{c}" for c in credit["hn"]]
    bins = fit_bins(X, names, params)  # each party fits exactly these bins on its own columns
    B = bins.transform(X)
    tables = [plain_woe(B[:, j], y, f.n_bins) for j, f in enumerate(bins.features)]  # == encrypted (test_binning)
    frame = pd.DataFrame(X, columns=names)
    combiner = toad.transform.Combiner().load({f.name: list(f.edges) for f in bins.features})
    binned = combiner.transform(frame)
    assert np.array_equal(binned.to_numpy(), B)  # the same bins
    transer = toad.transform.WOETransformer()
    woe_frame = transer.fit_transform(binned, y)
    for j, f in enumerate(bins.features):
        assert np.abs(np.asarray(transer[f.name]["woe"]) - tables[j].woe).max() <= 1e-12
    card = toad.ScoreCard(combiner=combiner, transer=transer, pdo=20, rate=2, base_odds=50, base_score=600, C=1e6,
                          max_iter=2000)
    card.fit(woe_frame, y)
    scale = PointsScale(pdo=20, base_score=600, base_odds=50)
    assert scale.factor == pytest.approx(card.factor) and scale.offset == pytest.approx(card.offset)
    base = scale.offset - scale.factor * card.intercept_
    k = int(np.sum(card.coef_ != 0))
    total = np.full(n, base)
    for j, f in enumerate(bins.features):
        mine = woe_points(scale, f.name, f.labels(), card.coef_[j], tables[j].woe)
        assert np.abs(np.asarray(mine.points) + base / k - card.rules[f.name]["scores"]).max() <= 1e-9
        total += mine.lookup(B[:, j])
    assert np.abs(total - card.predict(frame)).max() <= 1e-9
    assert np.abs(scale.probability(total) - card.predict_proba(frame)[:, 1]).max() <= 1e-12


def test_scorecard_params_and_plugin(credit: dict) -> None:
    plugin = catalogue.get("scorecard")
    with pytest.raises(ParamsError, match="did you mean 'pdo'"):
        plugin.parse_params({"pdoo": 20})
    with pytest.raises(ParamsError, match="base_odds"):
        plugin.parse_params({"base_odds": 0})
    p = plugin.parse_params({"max_epochs": 2, "n_bins": 8}, seed=5)
    assert p.binning().n_bins == 8 and p.logistic().max_epochs == 2 and p.logistic().seed == 5
    assert plugin.arbiter == "key_holder" and plugin.steps(p) == 2
    warnings = plugin.check_preflight(ScorecardParams(batch_size=20), {"insurer": 10}, {"bank": 1000, "insurer": 1000})
    assert warnings and "batch size 20" in warnings[0]
    with pytest.raises(ParamsError, match="min_bin_rows"):
        plugin.check_preflight(ScorecardParams(), {"insurer": 10}, {"bank": 60, "insurer": 60})


@pytest.mark.slow
def test_federated_scorecard_end_to_end(credit: dict, keypair: tuple) -> None:
    n_train, n_test = 2000, 1000
    tr, te = np.arange(n_train), np.arange(n_train, n_train + n_test)
    params = ScorecardParams(n_bins=10, max_bins=5, iv_threshold=0.02, max_epochs=6, batch_size=250)
    net = InMemoryNetwork(record=True)
    roles = {"bank": ScorecardGuest(credit["gx"][tr], credit["gn"], credit["y"][tr], credit["ids"][tr], params,
                                    PARTIES, keypair=keypair),
             "insurer": ScorecardHost(credit["hx"][tr], credit["hn"], credit["ids"][tr], params, PARTIES, "insurer",
                                      share_points_table=False),
             "arbiter": ScorecardArbiter(params, PARTIES, keypair=keypair)}
    chans = {k: net.channel(k) for k in roles}
    out = run_parties({k: (lambda r=r, k=k: r.run(chans[k])) for k, r in roles.items()}, net)
    bank, host = out["bank"], out["insurer"]
    assert isinstance(bank, ScorecardGuestPart) and isinstance(host, ScorecardHostPart)
    assert bank.host_tables == {"insurer": None}  # withheld: the host did not consent
    # no WOE (or any label-derived value) ever reached the host: binning tags + the regression's ciphertexts
    host_tags = {d.tag.split(".")[0] for d in net.received_by("insurer")}
    assert host_tags == {"bin", "vlr"}
    # part round trip through JSON (what the silo stores)
    bank = ScorecardGuestPart.from_dict(json.loads(json.dumps(bank.to_dict())))
    host = ScorecardHostPart.from_dict(json.loads(json.dumps(host.to_dict())))
    # scoring: the bank gets the total and per-party subtotals
    snet = InMemoryNetwork()
    scorer = ScorecardGuestScorer(bank, credit["gx"][te], credit["gn"], PARTIES)
    hs = ScorecardHostScorer(host, credit["hx"][te], credit["hn"], PARTIES)
    sb, si = snet.channel("bank"), snet.channel("insurer")
    res = run_parties({"bank": lambda: scorer.run(sb), "insurer": lambda: hs.run(si)}, snet)
    pts = scorer.points_
    assert np.allclose(pts["total"], pts["base"] + pts["bank"] + pts["insurer"])
    assert np.allclose(res["bank"], bank.scale.probability(pts["total"]))
    # the points reproduce the model's logit: score = offset − factor·(b + w·WOE + θ·indicators)
    gB = bank.bins.transform(credit["gx"][te][:, [credit["gn"].index(f) for f in bank.features]])
    x_bank = woe_design(gB, [c.table.woe for c in bank.binning.own() if c.selected])
    hb = host.bins
    hB = hb.transform(credit["hx"][te][:, [credit["hn"].index(f) for f in host.features]])
    hB_train = hb.transform(credit["hx"][tr][:, [credit["hn"].index(f) for f in host.features]])
    cols = indicator_columns(hb, reference_bins(hb, hB_train))
    logit = x_bank @ bank.model.weights + bank.model.intercept + indicator_design(hB, cols) @ host.model.weights
    assert np.allclose(pts["total"], bank.scale.score(logit))
    # quality against scikit-learn's logistic regression on the same (joined) design
    from sklearn.linear_model import LogisticRegression
    gB_tr = bank.bins.transform(credit["gx"][tr][:, [credit["gn"].index(f) for f in bank.features]])
    design_tr = np.column_stack([woe_design(gB_tr, [c.table.woe for c in bank.binning.own() if c.selected]),
                                 indicator_design(hB_train, cols)])
    design_te = np.column_stack([x_bank, indicator_design(hB, cols)])
    ref = LogisticRegression(C=1e6, max_iter=5000).fit(design_tr, credit["y"][tr])
    ours, theirs = auc(credit["y"][te], res["bank"]), auc(credit["y"][te], ref.predict_proba(design_te)[:, 1])
    assert ours >= theirs - 0.015, (ours, theirs)
    # exports (also what `fedrisk models export` writes beside the part)
    files = catalogue.get("scorecard").export_files("guest", bank.to_dict())
    assert files["points.csv"].splitlines()[0] == "party,characteristic,bin,woe,points"
    assert json.loads(files["points.json"])["scale"]["pdo"] == 20.0
    assert bank.table.to_csv().splitlines()[0] == "party,characteristic,bin,woe,points"
    assert json.loads(host.table.to_json())["party"] == "insurer"
