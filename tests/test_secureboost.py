"""Vertical SecureBoost: losslessness, accuracy, privacy transcript, packing bounds, resume, validation.

Encrypted runs use 2048-bit keys (the session ``keypair``) on subsets of default credit to stay fast;
the plaintext twin (same binning, candidates, gains; no encryption) is pinned to the encrypted
protocol by the lossless tests and stands in for it on the full data.
"""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from algorithms.base import MemoryCheckpoint, Parties
from algorithms.paillier import CiphertextVector, Decryptor, Encryptor
from algorithms.secureboost import (
    BoostParams,
    GuestModel,
    HostModel,
    InputError,
    PackingLayout,
    PackingOverflowError,
    PlainSecureBoost,
    SecureBoostGuest,
    SecureBoostHost,
    VerticalSecureBoost,
)
from algorithms.secureboost.host_trainer import EncryptedBackend, HostTrainer, PlainBackend
from algorithms.secureboost.packing import compress
from datasets import VerticalDataset, load_breast_vertical, load_default_credit_vertical, train_test_split_ids
from federation.channel import InMemoryNetwork, run_parties

SMALL = {"n_estimators": 2, "max_depth": 3}


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def credit() -> tuple[VerticalDataset, VerticalDataset]:
    data = load_default_credit_vertical()
    train_ids, test_ids = train_test_split_ids(data.guest)
    return data.subset(train_ids), data.subset(test_ids)


def inject_nan(data: VerticalDataset, fraction: float = 0.1, seed: int = 7) -> VerticalDataset:
    rng = np.random.default_rng(seed)
    guest = data.guest.copy()
    hosts = {k: v.copy() for k, v in data.hosts.items()}
    for frame, cols in [(guest, ["x3", "x5"]), *[(h, ["x1", "x2"]) for h in hosts.values()]]:
        for c in cols:
            frame.loc[rng.random(len(frame)) < fraction, c] = np.nan
    return VerticalDataset(guest, hosts)


@pytest.fixture(scope="module")
def small_credit(credit: tuple[VerticalDataset, VerticalDataset]) -> VerticalDataset:
    """3,000 training rows of default credit with 10 % NaN injected into two guest and two host columns."""
    train, _ = credit
    return inject_nan(train.subset(train.guest["id"].to_numpy()[:3000]))


@pytest.fixture(scope="module")
def encrypted_run(small_credit: VerticalDataset, keypair: Any) -> tuple[VerticalSecureBoost, InMemoryNetwork]:
    network = InMemoryNetwork(record=True)
    model = VerticalSecureBoost(**SMALL).fit(small_credit, keypair=keypair, network=network)
    return model, network


def tree_summary(model: GuestModel) -> list[list[tuple[Any, ...]]]:
    return [[(n.id, n.leaf, n.party, n.feature, n.threshold, n.missing_left, n.split_id)
             for _, n in sorted(tree.items())] for tree in model.trees]


def assert_same_models(a_guest: GuestModel, a_hosts: dict[str, HostModel],
                       b_guest: GuestModel, b_hosts: dict[str, HostModel]) -> None:
    assert tree_summary(a_guest) == tree_summary(b_guest)
    for ta, tb in zip(a_guest.trees, b_guest.trees, strict=True):
        for k in ta:
            assert abs(ta[k].weight - tb[k].weight) <= 1e-9
            assert abs(ta[k].gain - tb[k].gain) <= 1e-9 * max(1.0, abs(ta[k].gain))
    assert {h: m.to_dict()["splits"] for h, m in a_hosts.items()} == \
        {h: m.to_dict()["splits"] for h, m in b_hosts.items()}


# ------------------------------------------------------------- lossless

def test_encrypted_protocol_builds_the_same_trees_as_the_plaintext_twin(
        encrypted_run: tuple[VerticalSecureBoost, InMemoryNetwork], small_credit: VerticalDataset) -> None:
    """3,000 rows, 2 trees, depth 3, with injected NaN: same splits, thresholds, directions and leaf weights."""
    model, _ = encrypted_run
    twin = PlainSecureBoost(**SMALL).fit(small_credit)
    assert model.guest_model_ is not None and twin.guest_model_ is not None
    assert_same_models(model.guest_model_, model.host_models_, twin.guest_model_, twin.host_models_)
    parties = {n.party for t in model.guest_model_.trees for n in t.values() if not n.leaf}
    assert parties == {"bank", "insurer"}, "both parties' splits should be exercised"
    np.testing.assert_allclose(model.predict_proba(small_credit), twin.predict_proba(small_credit), atol=1e-12)


def test_auc_matches_xgboost_on_default_credit(credit: tuple[VerticalDataset, VerticalDataset]) -> None:
    """Plaintext twin on all 24,000 training rows (pinned to the encrypted protocol by the lossless tests)
    vs xgboost hist with the same bins, depth, trees, learning rate, lambda and min_child_weight."""
    import xgboost

    train, test = credit
    settings = {"n_estimators": 5, "max_depth": 3, "learning_rate": 0.3, "reg_lambda": 1.0,
                "min_child_weight": 1.0, "max_bin": 32}
    twin = PlainSecureBoost(**settings).fit(train)
    auc = roc_auc_score(test.guest["y"], twin.predict_proba(test)[:, 1])
    clf = xgboost.XGBClassifier(tree_method="hist", base_score=0.5, n_jobs=1, **settings)
    clf.fit(train.joined().drop(columns=["id", "y"]).to_numpy(), train.guest["y"].to_numpy())
    ref = roc_auc_score(test.guest["y"], clf.predict_proba(test.joined().drop(columns=["id", "y"]).to_numpy())[:, 1])
    assert abs(auc - ref) <= 0.005, (auc, ref)
    assert auc > 0.75


def test_missing_values_learn_a_default_direction() -> None:
    rng = np.random.default_rng(0)
    n = 400
    y = rng.integers(0, 2, n)
    guest = pd.DataFrame({"id": [f"r{i}" for i in range(n)], "y": y, "x0": rng.normal(size=n)})
    h0 = rng.normal(size=n)
    h0[y == 1] = np.nan  # missingness is the signal
    host = pd.DataFrame({"id": guest["id"], "h0": h0})
    data = VerticalDataset(guest, {"insurer": host})
    twin = PlainSecureBoost(n_estimators=1, max_depth=1).fit(data)
    root = twin.guest_model_.trees[0][0]  # type: ignore[union-attr]
    assert root.party == "insurer"
    p = twin.predict_proba(data)[:, 1]
    assert p[y == 1].min() > p[y == 0].max()


# --------------------------------------------------------------- privacy

def _walk(value: Any, path: str = ""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{path}[{i}]")
    else:
        yield path, value


def test_host_receives_only_ciphertexts_ids_and_partition_instructions(
        encrypted_run: tuple[VerticalSecureBoost, InMemoryNetwork], small_credit: VerticalDataset, keypair: Any
) -> None:
    model, network = encrypted_run
    predict_net = InMemoryNetwork(record=True)
    model.predict_proba(small_credit, network=predict_net)
    received = network.received_by("insurer") + predict_net.received_by("insurer")
    assert received
    n_ciphertext_vectors = 0
    for d in received:
        for path, v in _walk(d.payload):
            if d.tag == "setup" and path.startswith((".params", ".layout")):
                continue  # public job configuration
            if isinstance(v, CiphertextVector):
                keypair[0].require(v.public_key)  # only under the guest's key: the host cannot decrypt
                n_ciphertext_vectors += 1
            elif isinstance(v, np.ndarray):
                assert v.dtype.kind in "iub", f"{d.tag}{path}: {v.dtype} array sent to the host"
            else:
                assert v is None or isinstance(v, bool | int | str | bytes), f"{d.tag}{path}: {type(v)}"
                assert not isinstance(v, float)
    assert n_ciphertext_vectors == SMALL["n_estimators"]  # one packed (g, h) vector per tree


def test_guest_never_receives_host_feature_values_or_thresholds(
        encrypted_run: tuple[VerticalSecureBoost, InMemoryNetwork], small_credit: VerticalDataset) -> None:
    model, network = encrypted_run
    predict_net = InMemoryNetwork(record=True)
    model.predict_proba(small_credit, network=predict_net)
    received = network.received_by("bank") + predict_net.received_by("bank")
    host_values = set(small_credit.hosts["insurer"].drop(columns="id").to_numpy().ravel().tolist())
    for d in received:
        for path, v in _walk(d.payload):
            if isinstance(v, np.ndarray):
                assert v.dtype.kind in "iub", f"{d.tag}{path}: {v.dtype} array sent to the guest"
            else:
                assert isinstance(v, CiphertextVector | bool | int), f"{d.tag}{path}: {type(v)}"
                assert not isinstance(v, float) or v not in host_values
    # the guest's model holds only opaque ids for host splits
    for tree in model.guest_model_.trees:  # type: ignore[union-attr]
        for node in tree.values():
            if not node.leaf and node.party == "insurer":
                assert node.feature is None and node.threshold is None and node.split_id is not None


def test_host_answers_are_rerandomised(keypair: Any) -> None:
    """Same inputs, same shuffle: the sealed candidate sums decrypt equal but share no ciphertext."""
    pub, priv = keypair
    rng = np.random.default_rng(3)
    n = 300
    X = rng.normal(size=(n, 3))
    X[rng.random(n) < 0.2, 1] = np.nan  # exercises the encrypted missing-value sums
    layout = PackingLayout.plan(n, 52, pub.bits)
    g_int, h_int = layout.quantise(rng.uniform(-1, 1, n), rng.uniform(0, 0.25, n))
    cts = Encryptor(pub, priv).encrypt_encoded(layout.encode_rows(g_int, h_int), 0, layout.row_bound)
    outputs, raws = [], []
    for _ in range(2):
        trainer = HostTrainer("insurer", X, ["a", "b", "c"], 8, np.arange(n),
                              lambda b, nb: EncryptedBackend(b, nb, pub, layout, None), rng=random.Random(1))
        trainer.start_tree(0, cts)
        sealed, _, counts = trainer.candidates(np.zeros(n, dtype=np.int32))
        outputs.append(sealed)
        flat = trainer.backend.left_sums(trainer._previous[0], trainer._offered[0])  # type: ignore[attr-defined]
        raws.append(compress(int(pub.nsquare), layout.width,
                             [flat[i:i + layout.slots] for i in range(0, len(flat), layout.slots)]))
    a, b = outputs
    dec = Decryptor(priv)
    assert dec.decrypt_raw(a) == dec.decrypt_raw(b)
    assert raws[0] == raws[1]  # deterministic before re-randomisation ...
    assert not set(a.ciphertexts) & set(b.ciphertexts)  # ... fresh obfuscators after
    assert not set(a.ciphertexts) & set(raws[0])
    # and they are exactly the plaintext twin's sums of the same candidates
    plain = HostTrainer("insurer", X, ["a", "b", "c"], 8, np.arange(n), lambda b, nb: PlainBackend(b, nb),
                        shuffle=False)
    plain.start_tree(0, (g_int, h_int))
    plain.candidates(np.zeros(n, dtype=np.int32))
    offered = trainer._offered[0]  # type: ignore[attr-defined]
    expected = plain.backend.left_sums(plain._previous[0], offered)  # type: ignore[attr-defined]
    assert layout.unpack(dec.decrypt_raw(a), sum(counts)) == expected
    assert any(missing_left for _, _, missing_left in offered)


# ---------------------------------------------------------------- packing

def test_packing_bounds_are_checked() -> None:
    layout = PackingLayout.plan(24_000, 52, 2048)
    assert layout.slots == 13 and layout.slots * layout.width <= 2046
    # a sum of n maximal rows fits each slot
    assert (24_000 * (2 << 52)).bit_length() <= layout.g_bits
    assert (24_000 * (1 << 50)).bit_length() <= layout.h_bits
    with pytest.raises(PackingOverflowError, match="refusing a data set this large"):
        PackingLayout.plan(2 ** 1950, 52, 2048)  # never materialised: the bound alone refuses it
    with pytest.raises(PackingOverflowError):
        layout.encode_rows(np.zeros(24_001, dtype=np.int64), np.zeros(24_001, dtype=np.int64))
    with pytest.raises(ValueError, match="exceeds its layout"):
        layout.unpack([1 << (layout.slots * layout.width)], layout.slots)
    with pytest.raises(ValueError, match="gradients must lie"):
        layout.quantise(np.array([1.5]), np.array([0.1]))


def test_packed_sums_round_trip() -> None:
    layout = PackingLayout.plan(1000, 52, 2048)
    rng = np.random.default_rng(1)
    g, h = rng.uniform(-1, 1, 1000), rng.uniform(0, 0.25, 1000)
    g_int, h_int = layout.quantise(g, h)
    rows = layout.encode_rows(g_int, h_int)
    total = sum(rows)
    sums = layout.unpack([total], 1)[0]
    G, H = layout.to_stats(sums)
    assert sums[2] == 1000 and abs(G - g.sum()) < 1e-9 and abs(H - h.sum()) < 1e-9


# ------------------------------------------------ protocol options & resume

def test_checkpoint_resume_gives_identical_model(credit: tuple[VerticalDataset, VerticalDataset],
                                                 keypair: Any) -> None:
    train, _ = credit
    data = train.subset(train.guest["id"].to_numpy()[:600])
    params = {"n_estimators": 3, "max_depth": 2}
    full = {"bank": MemoryCheckpoint(), "insurer": MemoryCheckpoint()}
    a = VerticalSecureBoost(**params).fit(data, keypair=keypair, checkpoints=full, executor=None)
    assert full["bank"].steps == [1, 2, 3] and full["insurer"].steps == [1, 2, 3]
    # crash after tree 1 at the guest, after tree 2 at the host: both resume after tree 1
    partial = {"bank": MemoryCheckpoint(_saved=full["bank"]._saved[:1]),
               "insurer": MemoryCheckpoint(_saved=full["insurer"]._saved[:2])}
    b = VerticalSecureBoost(**params).fit(data, keypair=keypair, checkpoints=partial, executor=None)
    assert_same_models(a.guest_model_, a.host_models_, b.guest_model_, b.host_models_)  # type: ignore[arg-type]
    assert partial["bank"].steps == [1, 2, 3]
    # a host whose checkpoint is behind the guest's is refused
    behind = {"bank": MemoryCheckpoint(_saved=full["bank"]._saved[:2]), "insurer": MemoryCheckpoint()}
    with pytest.raises(ValueError, match="checkpoint only covers 0 trees"):
        VerticalSecureBoost(**params).fit(data, keypair=keypair, checkpoints=behind, executor=None)


def test_two_hosts_complete_secure_and_importance(keypair: Any) -> None:
    breast = load_breast_vertical()
    host = breast.hosts["insurer"]
    data = VerticalDataset(breast.guest, {"insurer": host[["id", *[f"x{i}" for i in range(10)]]],
                                          "telco": host[["id", *[f"x{i}" for i in range(10, 20)]]]})
    params = {"n_estimators": 3, "max_depth": 2, "complete_secure": True, "share_host_gains": True}
    network = InMemoryNetwork(record=True)
    model = VerticalSecureBoost(**params).fit(data, keypair=keypair, network=network, executor=None)
    twin = PlainSecureBoost(**params).fit(data)
    assert_same_models(model.guest_model_, model.host_models_, twin.guest_model_, twin.host_models_)  # type: ignore
    first = model.guest_model_.trees[0]  # type: ignore[union-attr]
    assert all(n.leaf or n.party == "bank" for n in first.values()), "complete secure: tree 0 is guest-only"
    for h in ("insurer", "telco"):
        t0 = [d for d in network.received_by(h) if d.tag.startswith("t0.")]
        assert [d.tag for d in t0] == ["t0.start"] and t0[0].payload["gradients"] is None
    imp = model.feature_importances_
    assert set(imp) == {"bank", "insurer", "telco"}
    assert set(imp["telco"]) == {f"x{i}" for i in range(10, 20)}
    host_splits = sum(v["splits"] for h in ("insurer", "telco") for v in imp[h].values())
    guest_view = model.guest_model_.importance()  # type: ignore[union-attr]
    assert host_splits == guest_view["insurer"]["splits"] + guest_view["telco"]["splits"] > 0
    assert sum(v["gain"] for v in imp["telco"].values()) == pytest.approx(guest_view["telco"]["gain"])
    # federated prediction: one round trip per level at most
    predict_net = InMemoryNetwork(record=True)
    p = model.predict_proba(data, network=predict_net)
    np.testing.assert_allclose(p, twin.predict_proba(data), atol=1e-12)
    assert len(predict_net.received_by("telco")) <= params["max_depth"]
    assert roc_auc_score(data.guest["y"], p[:, 1]) > 0.95


def test_early_stopping_keeps_the_best_trees(credit: tuple[VerticalDataset, VerticalDataset]) -> None:
    train, _ = credit
    data = train.subset(train.guest["id"].to_numpy()[:2000])
    twin = PlainSecureBoost(n_estimators=40, max_depth=3, learning_rate=1.0, validation_fraction=0.3,
                            n_iter_no_change=2).fit(data)
    g = twin.guest_model_
    assert g is not None and g.best_iteration is not None
    assert len(g.trees) == g.best_iteration + 1 < 40
    assert len(g.history) == g.best_iteration + 3
    assert min(g.history) == g.history[g.best_iteration]
    assert all(s.tree <= g.best_iteration for s in twin.host_models_["insurer"].splits.values())


def test_models_are_json_round_trippable(encrypted_run: tuple[VerticalSecureBoost, InMemoryNetwork],
                                         small_credit: VerticalDataset) -> None:
    model, _ = encrypted_run
    g = GuestModel.from_dict(json.loads(json.dumps(model.guest_model_.to_dict())))  # type: ignore[union-attr]
    h = HostModel.from_dict(json.loads(json.dumps(model.host_models_["insurer"].to_dict())))
    clone = VerticalSecureBoost(**SMALL)
    clone.guest_model_, clone.host_models_ = g, {"insurer": h}
    np.testing.assert_array_equal(clone.predict_proba(small_credit), model.predict_proba(small_credit))


# ------------------------------------------------------------ validation

def test_bad_input_is_refused_with_clear_errors() -> None:
    breast = load_breast_vertical()
    parties = Parties()
    params = BoostParams()
    bad_y = breast.guest.copy()
    bad_y.loc[5, "y"] = 2
    with pytest.raises(InputError, match=r"must be 0 or 1.*row 5"):
        SecureBoostGuest(bad_y, params, parties)
    text = breast.guest.copy()
    text["x1"] = "a"
    with pytest.raises(InputError, match="'x1' is not numeric"):
        SecureBoostGuest(text, params, parties)
    inf = breast.guest.copy()
    inf.loc[3, "x2"] = np.inf
    with pytest.raises(InputError, match="'x2' is infinite at row 3"):
        SecureBoostGuest(inf, params, parties)
    with pytest.raises(InputError, match="must not contain the label"):
        SecureBoostHost(breast.guest, params, parties, "insurer")
    with pytest.raises(ValueError, match="n_iter_no_change needs"):
        BoostParams(n_iter_no_change=3)


def test_misaligned_rows_and_mismatched_params_are_refused(keypair: Any) -> None:
    breast = load_breast_vertical()
    parties = Parties()
    shuffled = breast.hosts["insurer"].iloc[::-1].reset_index(drop=True)
    for host_data, host_params, match in [(shuffled, BoostParams(), "not aligned"),
                                          (breast.hosts["insurer"], BoostParams(max_bin=16), "max_bin")]:
        network = InMemoryNetwork()
        guest = SecureBoostGuest(breast.guest, BoostParams(), parties, keypair=keypair, executor=None)
        host = SecureBoostHost(host_data, host_params, parties, "insurer", executor=None)
        cg, ch = network.channel("bank"), network.channel("insurer")
        with pytest.raises(ValueError, match=match):
            run_parties({"bank": lambda g=guest, c=cg: g.run(c), "insurer": lambda h=host, c=ch: h.run(c)}, network)



def test_encrypted_early_stopping_truncates_every_party(keypair: Any) -> None:
    data = load_breast_vertical()
    params = {"n_estimators": 8, "max_depth": 2, "max_bin": 8, "learning_rate": 1.0, "validation_fraction": 0.3,
              "n_iter_no_change": 1}
    model = VerticalSecureBoost(**params).fit(data, keypair=keypair, executor=None)
    twin = PlainSecureBoost(**params).fit(data)
    g = model.guest_model_
    assert g is not None and g.best_iteration is not None and len(g.trees) < 8
    assert_same_models(g, model.host_models_, twin.guest_model_, twin.host_models_)  # type: ignore[arg-type]
    assert all(s.tree < len(g.trees) for s in model.host_models_["insurer"].splits.values())


def test_same_roles_run_over_grpc_with_mutual_tls(keypair: Any, tmp_path: Any) -> None:
    """The transport-free roles, unchanged, over gRPC + mTLS: same model as the in-memory run."""
    from federation.certs import TlsConfig, provision
    from federation.grpc_transport import PartyNode

    data = load_breast_vertical()
    params = BoostParams(n_estimators=1, max_depth=2, max_bin=8)
    parties = Parties(guest="bank", hosts=("insurer",))
    provision(tmp_path, ("bank", "insurer"))
    nodes = [PartyNode(p, "127.0.0.1:0", TlsConfig.from_dir(tmp_path, p)).start() for p in ("bank", "insurer")]
    try:
        nodes[0].add_peer("insurer", nodes[1].address)
        nodes[1].add_peer("bank", nodes[0].address)
        bank, insurer = (n.channel("sbt-job") for n in nodes)
        guest = SecureBoostGuest(data.guest, params, parties, keypair=keypair, executor=None)
        host = SecureBoostHost(data.hosts["insurer"], params, parties, "insurer", executor=None)
        out = run_parties({"bank": lambda: guest.run(bank), "insurer": lambda: host.run(insurer)})
    finally:
        for n in nodes:
            n.stop(grace=0.1)
    twin = PlainSecureBoost(n_estimators=1, max_depth=2, max_bin=8).fit(data)
    assert_same_models(out["bank"], {"insurer": out["insurer"]}, twin.guest_model_, twin.host_models_)  # type: ignore


def test_federation_gain_baseline_is_secureboost_on_the_guests_features() -> None:
    """The gain of a SecureBoost model is measured against a guest-only SecureBoost with the same parameters
    (not a logistic regression, which overstated the gain several-fold)."""
    from algorithms import catalogue
    from algorithms.secureboost.plain import PlainSecureBoost
    from datasets import VerticalDataset, load_breast_vertical

    data = load_breast_vertical()
    plugin = catalogue.get("secureboost")
    params = plugin.parse_params({"n_estimators": 3, "max_depth": 2}, seed=7)
    X = data.guest.drop(columns=["id", "y"]).to_numpy()
    y = data.guest["y"].to_numpy()
    found = plugin.baseline_scores(params, X[:400], y[:400], X[400:])
    assert found is not None and "SecureBoost" in found[1]
    twin = PlainSecureBoost(**params.to_dict()).fit(VerticalDataset(data.guest.iloc[:400], {}))
    expected = twin.predict_proba(VerticalDataset(data.guest.iloc[400:], {}))[:, 1]
    assert np.allclose(found[0], expected)
