"""Silo: configs, data sources, validation errors naming column/row, preprocessing, schema digest,
hash split, local store and checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine

from federation.certs import provision
from silo.config import ConfigError, load_silo_config
from silo.data import DataError, load_table, validate_table
from silo.jobs import JobError, JobSpec, SiloWorker, holdout_mask
from silo.preprocess import Preprocessor
from silo.store import SiloStore, SqliteCheckpoint


def frame(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"c{i}" for i in range(n)], "y": [0, 1] * (n // 2),
                         "age": np.arange(n, dtype=float), "region": ["n", "s", "e"] * (n // 3)})


# ---------------------------------------------------------------------------------------- validation
def test_valid_table_splits_numeric_and_categorical() -> None:
    t = validate_table(frame(), "bank", label_column="y")
    assert t.numeric == ("age",) and t.categorical == ("region",)
    assert list(t.labels) == [0, 1, 0, 1, 0, 1]


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda f: f.assign(id=["c0", "c1", "c1", "c3", "c4", "c5"]), r"duplicate id 'c1' in column 'id' at row 3"),
    (lambda f: f.assign(id=["c0", None, "c2", "c3", "c4", "c5"]), r"missing id in column 'id' at row 2"),
    (lambda f: f.assign(age=[0, 1, np.nan, 3, 4, 5]), r"non-finite value nan in column 'age' at row 3"),
    (lambda f: f.assign(age=[0, 1, 2, np.inf, 4, 5]), r"non-finite value inf in column 'age' at row 4"),
    (lambda f: f.assign(y=[0, 1, 2, 0, 1, 0]), r"label column 'y' must be 0/1; row 3"),
    (lambda f: f.assign(y=[0, 0, 0, 0, 0, 0]), r"single class"),
    (lambda f: f[["id", "y"]], r"feature set is empty"),
    (lambda f: f.assign(region=["n", None, "e", "n", "s", "e"]), r"missing value in categorical column 'region' "
                                                                  r"at row 2"),
])
def test_bad_data_names_column_and_row(mutate, message: str) -> None:
    with pytest.raises(DataError, match=message):
        validate_table(mutate(frame()), "bank", label_column="y")


def test_unknown_columns_are_named() -> None:
    with pytest.raises(DataError, match="label column 'target' not found"):
        validate_table(frame(), "bank", label_column="target")
    with pytest.raises(DataError, match=r"feature columns not found: \['income'\]"):
        validate_table(frame(), "bank", label_column="y", features=("age", "income"))


# ------------------------------------------------------------------------------------------ sources
def _write_config(tmp: Path, data: str, role: str = "guest", tls: bool = True) -> Path:
    if tls and not (tmp / "certs" / "ca.pem").exists():
        provision(tmp / "certs", ["bank", "arbiter"])
    label = 'label_column = "y"\n' if role == "guest" else ""
    path = tmp / "bank.toml"
    path.write_text(f"""
[party]
id = "bank"
role = "{role}"
listen = "127.0.0.1:0"
control = "127.0.0.1:0"

[tls]
ca = "certs/ca.pem"
cert = "certs/bank.pem"
key = "certs/bank-key.pem"

[data]
{data}
{label}""")
    return path


def test_csv_parquet_and_sql_sources(tmp_path: Path) -> None:
    df = frame()
    df.to_csv(tmp_path / "d.csv", index=False)
    df.to_parquet(tmp_path / "d.parquet", index=False)
    engine = create_engine(f"sqlite:///{tmp_path / 'd.db'}")
    df.to_sql("customers", engine, index=False)
    engine.dispose()
    digests = set()
    for data in ('source = "csv"\npath = "d.csv"', 'source = "parquet"\npath = "d.parquet"',
                 'source = "sql"\nurl = "d.db"\ntable = "customers"'):
        config = load_silo_config(_write_config(tmp_path, data))
        table = load_table(config.data, config.party_id)
        assert list(table.ids) == list(df["id"]) and table.numeric == ("age",)
        digests.add(table.schema_digest)
    assert len(digests) == 1


def test_config_errors_are_clear(tmp_path: Path) -> None:
    frame().to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(ConfigError, match="does not exist"):
        load_silo_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match=r"data.path = .*nope.csv.* does not exist"):
        load_silo_config(_write_config(tmp_path, 'source = "csv"\npath = "nope.csv"'))
    with pytest.raises(ConfigError, match="a host holds no labels"):
        load_silo_config(_write_config(tmp_path, 'source = "csv"\npath = "d.csv"\nlabel_column = "y"', role="host"))
    (tmp_path / "certs" / "bank-key.pem").unlink()
    with pytest.raises(ConfigError, match=r"TLS file tls.key = .*bank-key.pem.* does not exist"):
        load_silo_config(_write_config(tmp_path, 'source = "csv"\npath = "d.csv"'))


def test_missing_sql_table(tmp_path: Path) -> None:
    create_engine(f"sqlite:///{tmp_path / 'e.db'}").dispose()
    config = load_silo_config(_write_config(tmp_path, 'source = "sql"\nurl = "e.db"\ntable = "customers"'))
    with pytest.raises(DataError, match="no table 'customers'"):
        load_table(config.data, config.party_id)


# ------------------------------------------------------------------------------------- preprocessing
def test_preprocessor_standardises_and_one_hot_encodes() -> None:
    t = validate_table(frame(), "bank", label_column="y")
    pre = Preprocessor(t.numeric, t.categorical)
    X = pre.fit_transform(t.features)
    assert pre.output_columns == ["age", "region=e", "region=n", "region=s"]
    assert X[:, 0].mean() == pytest.approx(0.0) and X[:, 0].std() == pytest.approx(1.0)
    assert X[:, 1:].sum(axis=1).tolist() == [1.0] * 6
    again = Preprocessor.from_dict(pre.to_dict())
    unseen = t.features.assign(region=["w"] * 6)
    np.testing.assert_array_equal(again.transform(unseen)[:, 1:], 0.0)


def test_schema_digest_changes_with_columns() -> None:
    a = validate_table(frame(), "bank", label_column="y")
    b = validate_table(frame().rename(columns={"age": "age_years"}), "bank", label_column="y")
    c = validate_table(frame(), "bank", label_column="y", categorical=("age", "region"))
    assert len({a.schema_digest, b.schema_digest, c.schema_digest}) == 3


def test_changed_schema_refused_at_evaluation(tmp_path: Path) -> None:
    store = SiloStore(tmp_path / "s.sqlite")
    old = validate_table(frame(), "bank", label_column="y")
    store.save_model_part("job1", {"schema_digest": old.schema_digest, "model": {}})
    changed = validate_table(frame().assign(extra=1.0), "bank", label_column="y")
    with pytest.raises(JobError, match="columns changed since model 'job1'"):
        SiloWorker("bank", "guest", changed, store).model_part("job1")
    assert SiloWorker("bank", "guest", old, store).model_part("job1")["schema_digest"] == old.schema_digest
    store.close()


# --------------------------------------------------------------------------------------- split, spec
def test_holdout_mask_is_deterministic_and_salted() -> None:
    ids = np.array([str(i) for i in range(5000)])
    a = holdout_mask(ids, "salt", 0.2)
    assert np.array_equal(a, holdout_mask(ids[::-1], "salt", 0.2)[::-1])
    assert 0.17 < a.mean() < 0.23
    assert not np.array_equal(a, holdout_mask(ids, "other", 0.2))


def test_unknown_algorithm_refused() -> None:
    from algorithms.base import Parties

    with pytest.raises(ValueError, match="unknown algorithm 'deep_forest'"):
        JobSpec(job_id="j", algorithm="deep_forest", parties=Parties())


# ------------------------------------------------------------------------------------- store, ckpt
def test_sqlite_checkpoint_roundtrip_cap_and_digests(tmp_path: Path) -> None:
    store = SiloStore(tmp_path / "s.sqlite")
    saved: list[int] = []
    cp = SqliteCheckpoint(store, "j", on_save=lambda step, digest: saved.append(step))
    assert cp.latest() is None
    cp.save(0, {"w": np.arange(3.0), "big": 2**200})
    cp.save(1, {"w": np.arange(3.0) + 1, "big": 2**201})
    step, state = cp.latest()
    assert step == 1 and state["big"] == 2**201 and np.array_equal(state["w"], [1.0, 2.0, 3.0])
    assert saved == [0, 1] and [s for s, _ in store.checkpoint_digests("j")] == [0, 1]
    assert SqliteCheckpoint(store, "j", max_step=0).latest()[0] == 0
    assert SqliteCheckpoint(store, "j", max_step=-1).latest() is None
    store.close()


@pytest.mark.parametrize("url", [
    "sqlite+nodriver://alice:s3cr%40t@db.internal/risk",  # unknown driver
    "not a url://alice:s3cr@t@db.internal/risk",  # unparsable: SQLAlchemy echoes the whole string
    "mysql+nodriver://alice:s3cret@db.internal:3306/risk",
])
def test_sql_password_never_in_errors(url: str) -> None:
    """A SQL source URL with its password used to be echoed in the silo's error (and hence its logs)."""
    from silo.config import DataSource

    with pytest.raises(DataError) as info:
        load_table(DataSource(source="sql", url=url, table="customers"), "bank")
    message = str(info.value) + "".join(str(e) for e in (info.value.__cause__, info.value.__context__) if e)
    assert "s3cr" not in message and "cannot read sql source" in message
    assert "***" in message or "alice" not in message


def test_control_plane_demands_exactly_one_common_name(tmp_path: Path) -> None:
    """A CA-signed certificate with two CNs ("arbiter", then "insurer") used to pass as the arbiter."""
    from federation.certs import TlsConfig, provision
    from silo.control import ControlClient, ControlError, ControlServer
    from tests.certificates import tls_with_common_names

    provision(tmp_path, ["bank", "insurer", "arbiter"])
    two_names = tls_with_common_names(tmp_path, ["arbiter", "insurer"])
    server = ControlServer("127.0.0.1:0", TlsConfig.from_dir(tmp_path, "bank"), lambda p: {"pong": True},
                           "arbiter").start()
    try:
        address = f"127.0.0.1:{server.port}"
        assert ControlClient("bank", address, TlsConfig.from_dir(tmp_path, "arbiter")).call("ping") == {"pong": True}
        with pytest.raises(ControlError, match="only accepted from 'arbiter'"):
            ControlClient("bank", address, two_names).call("ping")
    finally:
        server.stop(0)
