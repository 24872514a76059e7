"""Horizontal jobs through the silo workers (the services' code path, in-process): federated preprocessing
of raw columns, the pooled report with per-party rows and personalised models, schema and input errors."""

from __future__ import annotations

import pandas as pd
import pytest

from algorithms.base import Parties
from algorithms.horizontal.params import FederationError
from arbiter.report import render_html
from arbiter.simulate import simulate_job
from datasets import load_csv
from silo.data import validate_table
from silo.jobs import JobError, JobSpec

FILES = {"bank-a": "default_credit_homo_guest", "bank-b": "default_credit_homo_host_1",
         "bank-c": "default_credit_homo_host_2"}


def _tables(frames: dict[str, pd.DataFrame], categorical: tuple[str, ...] = ()) -> dict:
    return {p: validate_table(f, p, label_column="y", categorical=categorical or None) for p, f in frames.items()}


def _spec(**params: object) -> JobSpec:
    return JobSpec(job_id="hj", algorithm="fedavg", parties=Parties(roles={"client": tuple(FILES)}),
                   params={"rounds": 3, "round_timeout": 30.0, "join_timeout": 30.0, **params}, salt="hj-salt")


def test_a_job_through_the_silo_workers_pools_every_clients_holdout() -> None:
    frames = {p: load_csv(f).iloc[:1500] for p, f in FILES.items()}
    raw = {p: f.assign(x0=f["x0"] * 1000 + 50) for p, f in frames.items()}  # unscaled: pooled statistics fix it
    sim = simulate_job(_spec(fine_tune_epochs=1), _tables(raw))
    ref = simulate_job(_spec(fine_tune_epochs=1), _tables(frames))
    assert sim["metrics"]["auc"] == pytest.approx(ref["metrics"]["auc"], abs=1e-6)  # same model after scaling
    m = sim["metrics"]
    assert set(m["per_party"]) == set(FILES) and m["n"] == sum(p["n"] for p in m["per_party"].values())
    assert all(p["personalised_auc"] is not None and p["local_only_auc"] is not None for p in m["per_party"].values())
    assert "federation_gain" in m and m["auc"] > 0.68
    assert "Per party" in render_html(m, {"name": "h"})
    assert sim["arbiter"]["space"]["count"] + m["n"] == 3 * 1500  # statistics pooled over the training rows


def test_schema_mismatch_names_the_silo_and_the_columns() -> None:
    frames = {p: load_csv(f).iloc[:1000] for p, f in FILES.items()}
    frames["bank-b"] = frames["bank-b"].rename(columns={"x5": "pay_5"})
    with pytest.raises(FederationError, match=r"silo 'bank-b': missing columns \['x5'\], unexpected columns"):
        simulate_job(_spec(), _tables(frames))


def test_categorical_columns_are_refused_with_a_clear_reason() -> None:
    frames = {p: load_csv(f).iloc[:500].assign(region="north") for p, f in FILES.items()}
    with pytest.raises(JobError, match=r"categorical columns \['region'\] cannot be encoded federatedly"):
        simulate_job(_spec(), _tables(frames, categorical=("region",)))
