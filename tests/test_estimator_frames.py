"""The Python estimators take what the silos take: raw tables with named id / label columns and string
categories (``VerticalDataset.from_frames``), one-hot encoded as the silos' preprocessing does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from algorithms.paillier import PrivateKey, PublicKey
from algorithms.secureboost.plain import PlainSecureBoost
from algorithms.vertical_lr.estimator import VerticalLogisticRegression
from datasets import FrameError, VerticalDataset, load_breast_vertical
from silo.data import validate_table
from silo.preprocess import Preprocessor


def _raw() -> tuple[pd.DataFrame, pd.DataFrame]:
    data = load_breast_vertical()
    guest = data.guest.rename(columns={"id": "customer", "y": "default"})
    guest["segment"] = np.where(guest["x0"] > 0, "retail", "sme")  # a string category, as a bank's table has
    host = data.hosts["insurer"].rename(columns={"id": "cust_no"})
    return guest, host


def test_raw_frames_train_both_estimators(keypair: tuple[PublicKey, PrivateKey]) -> None:
    guest, host = _raw()
    data = VerticalDataset.from_frames(guest, {"insurer": host}, id_column={"guest": "customer", "insurer": "cust_no"},
                                       label_column="default")
    assert {"segment=retail", "segment=sme"} <= set(data.guest.columns) and "segment" not in data.guest.columns
    assert data.categories["guest"] == {"segment": ["retail", "sme"]}
    # the same columns and categories as the silo's preprocessing of that table
    table = validate_table(guest, "bank", id_column="customer", label_column="default")
    assert table.categorical == ("segment",)
    pre = Preprocessor(table.numeric, table.categorical).fit(table.features)
    assert [c for c in pre.output_columns if "=" in c] == ["segment=retail", "segment=sme"]

    boost = PlainSecureBoost(n_estimators=3, max_depth=2).fit(data)
    assert boost.predict_proba(data).shape == (len(guest), 2)
    small = data.subset(data.guest["id"].to_numpy()[:120])
    lr = VerticalLogisticRegression(max_epochs=1, batch_size=64, keypair=keypair).fit(small)
    assert np.all(np.isfinite(lr.predict_proba(small)))

    # a scoring table: no label, an unseen category → all zeros, the training columns exactly
    scoring_guest = guest.drop(columns=["default"]).head(5).assign(segment=["retail", "sme", "corporate", "sme", "x"])
    scoring_host = host.set_index("cust_no").loc[scoring_guest["customer"]].reset_index()
    scoring = VerticalDataset.from_frames(scoring_guest, {"insurer": scoring_host}, label_column=None, like=data,
                                          id_column={"guest": "customer", "insurer": "cust_no"})
    assert list(scoring.guest.columns) == [c for c in data.guest.columns if c != "y"]
    assert scoring.guest.loc[2, ["segment=retail", "segment=sme"]].tolist() == [0.0, 0.0]
    assert boost.predict_proba(scoring).shape == (5, 2)


def test_raw_frames_errors_name_the_columns() -> None:
    guest, host = _raw()
    with pytest.raises(FrameError, match=r"guest: id column 'id' not found \(columns: \['customer'"):
        VerticalDataset.from_frames(guest, {"insurer": host})
    with pytest.raises(FrameError, match=r"label column 'y' not found"):
        VerticalDataset.from_frames(guest, {"insurer": host}, id_column={"guest": "customer", "insurer": "cust_no"})
    with pytest.raises(ValueError, match=r"no 'id' column \(columns: .*VerticalDataset.from_frames"):
        VerticalLogisticRegression().fit(VerticalDataset(guest, {"insurer": host}))
