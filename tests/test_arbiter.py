"""Arbiter configs (including the deploy/ examples) and the job spec the arbiter hands to silos."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from arbiter.config import load_arbiter_config, load_job_config
from federation.certs import provision
from silo.config import ConfigError, load_silo_config
from silo.jobs import JobSpec

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


@pytest.fixture()
def deploy_copy(tmp_path: Path) -> Path:
    for name in ("bank.toml", "insurer.toml", "arbiter.toml", "job.toml"):
        shutil.copy(DEPLOY / name, tmp_path / name)
    provision(tmp_path / "certs", ["bank", "insurer", "arbiter"])
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "customers.csv").write_text("id,y,x0\na,0,1.0\nb,1,2.0\n")
    (tmp_path / "data" / "policyholders.parquet").write_bytes(b"")
    return tmp_path


def test_deploy_examples_parse(deploy_copy: Path) -> None:
    bank = load_silo_config(deploy_copy / "bank.toml")
    assert (bank.party_id, bank.role, bank.data.label_column) == ("bank", "guest", "y")
    assert bank.peers["insurer"] == "insurer.example.internal:50062"
    insurer = load_silo_config(deploy_copy / "insurer.toml")
    assert insurer.role == "host" and insurer.data.source == "parquet"
    arbiter = load_arbiter_config(deploy_copy / "arbiter.toml")
    assert arbiter.party_id == "arbiter" and arbiter.store.endswith("arbiter.sqlite")
    job = load_job_config(deploy_copy / "job.toml")
    assert job.spec.parties.guest == "bank" and job.spec.parties.hosts == ("insurer",)
    assert job.spec.params["max_epochs"] == 5 and job.parties["bank"].control.endswith(":50071")
    assert job.spec.salt  # stable per federation when not given


def test_spec_roundtrip() -> None:
    job = load_job_config(DEPLOY / "job.toml")
    assert JobSpec.from_dict(job.spec.to_dict()) == job.spec


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace('control = "bank.example.internal:50071"\n', ""), "missing parties.bank.control"),
    (lambda t: t.replace("[job]\n", "[job]\nholdout = 1.5\n").replace("holdout = 0.2", ""), "holdout must be in"),
    (lambda t: t.replace('role = "host"', 'role = "observer"'), "role must be guest or host"),
    (lambda t: t.replace('algorithm = "vertical_lr"', 'algorithm = "secureboost"'), "unknown SecureBoost parameters"),
    (lambda t: t + "\n[[broken", "not valid TOML"),
])
def test_job_config_errors(tmp_path: Path, edit, message: str) -> None:
    path = tmp_path / "job.toml"
    path.write_text(edit((DEPLOY / "job.toml").read_text()))
    with pytest.raises(ConfigError, match=message):
        load_job_config(path)


@pytest.mark.parametrize(("name", "edit", "message"), [
    ("job.toml", lambda t: t.replace("holdout = ", "holdot = "), "unknown key job.holdot (did you mean 'holdout'?)"),
    ("bank.toml", lambda t: t.replace("label_column = ", "label_colum = "),
     "unknown key data.label_colum (did you mean 'label_column'?)"),
    ("bank.toml", lambda t: t + "\n[dta]\nx = 1\n", "unknown key [dta] (did you mean 'data'?)"),
    ("arbiter.toml", lambda t: t.replace("[party]\n", "[party]\nreport = 'r'\n"),
     "unknown key party.report (did you mean 'reports'?)"),
    ("job.toml", lambda t: t.replace('role = "host"', 'role = "host"\ncontrl = "x:1"', 1),
     "unknown key parties.insurer.contrl (did you mean 'control'?)"),
])
def test_every_config_section_refuses_unknown_keys_naming_the_nearest(deploy_copy: Path, name: str, edit,  # type: ignore[no-untyped-def]
                                                                      message: str) -> None:
    path = deploy_copy / name
    path.write_text(edit(path.read_text()))
    load = {"job.toml": load_job_config, "bank.toml": load_silo_config, "arbiter.toml": load_arbiter_config}[name]
    with pytest.raises(ConfigError, match=re.escape(message)):
        load(path)


def test_default_holdout_is_stable_per_federation_so_reports_compare(deploy_copy: Path) -> None:
    from silo.jobs import evaluation_set_digest, holdout_mask

    first, second = load_job_config(deploy_copy / "job.toml"), load_job_config(deploy_copy / "job.toml")
    assert first.spec.salt == second.spec.salt  # two jobs of the same federation
    ids = [f"C{i:06d}" for i in range(2000)]
    assert (holdout_mask(ids, first.spec.salt, 0.2) == holdout_mask(ids, second.spec.salt, 0.2)).all()
    assert evaluation_set_digest(ids[:5]) == evaluation_set_digest(list(reversed(ids[:5])))
