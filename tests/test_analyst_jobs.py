"""Binning and scorecard as jobs: the same silo workers as the services (in-process), the silos' consent
flags, the report sections the bank's plug-in provides and the generic HTML that renders them."""

from __future__ import annotations

from pathlib import Path

import pytest

from algorithms.base import Parties
from arbiter.report import write_report
from arbiter.sections import render_sections
from arbiter.simulate import simulate_job
from datasets import load_csv
from silo.config import ConfigError, parse_consent
from silo.data import LocalTable, validate_table
from silo.jobs import JobSpec

N_ROWS = 1500
PARTIES = Parties("bank", ("insurer",))


def _tables() -> dict[str, LocalTable]:
    return {"bank": validate_table(load_csv("default_credit_hetero_guest").iloc[:N_ROWS], "bank", label_column="y"),
            "insurer": validate_table(load_csv("default_credit_hetero_host").iloc[:N_ROWS], "insurer")}


def test_binning_job_reports_iv_and_woe_sections(tmp_path: Path) -> None:
    spec = JobSpec("bin-1", "binning", PARTIES, params={"n_bins": 8, "optimal": True, "max_bins": 4},
                   holdout=0.2, salt="s", seed=3, min_intersection=100)
    named = simulate_job(spec, _tables(), consent={"insurer": {"share_feature_names": True}})
    assert named["metrics"] == {} and set(named["report_sections"]) == {"bank"}
    sections = named["report_sections"]["bank"]
    iv = sections[0]
    assert iv["title"].startswith("Information value")
    rows = iv["table"]["rows"]
    assert {r[0] for r in rows} == {"bank", "insurer"} and len(rows) == 13 + 10
    assert {r[1] for r in rows if r[0] == "insurer"} == {f"x{i}" for i in range(10)}  # named: the host consented
    html_path, json_path = write_report(tmp_path, {}, {"name": "binning study", "job_id": "bin-1"}, stem="bin-1",
                                        sections=sections)
    page = html_path.read_text()
    assert "Information value by characteristic" in page and "WOE per bin" in page and "<script" not in page
    assert '"sections"' in json_path.read_text()
    # (without the consent the keys are the host's tokens: tests/test_binning.py)
    # the host's own part keeps its merged bins and tokens (nothing of the bank's)
    host_part = named["parts"]["insurer"]["model"]
    assert host_part["kind"] == "binning.host" and set(host_part["tokens"]) == {f"x{i}" for i in range(10)}


def test_sections_render_tables_and_signed_bars() -> None:
    page = render_sections([{"title": "T <b>", "table": {"columns": ["a", "v"], "rows": [["x", 1.5], ["y", -2.0]]},
                             "bars": {"labels": ["x", "y"], "values": [1.5, -2.0], "caption": "c"},
                             "sections": [{"title": "inner", "text": "t"}]}])
    assert "T &lt;b&gt;" in page and "fill neg" in page and "<h3>inner</h3>" in page


def test_consent_flags_are_checked_by_name() -> None:
    assert parse_consent({"share_points_table": True}, "insurer.toml") == {"share_points_table": True}
    with pytest.raises(ConfigError, match="did you mean 'share_feature_names'"):
        parse_consent({"share_feature_name": True}, "insurer.toml")
    with pytest.raises(ConfigError, match="true or false"):
        parse_consent({"share_points_table": "yes"}, "insurer.toml")


@pytest.mark.slow
def test_scorecard_job_reports_points_and_withholds_host_table(tmp_path: Path) -> None:
    spec = JobSpec("sc-1", "scorecard", PARTIES, params={"n_bins": 8, "max_bins": 4, "max_epochs": 3,
                                                         "batch_size": 200},
                   holdout=0.2, salt="s", seed=3, min_intersection=100)
    sim = simulate_job(spec, _tables())
    assert 0.6 < sim["metrics"]["auc"] < 1.0
    card = sim["report_sections"]["bank"][0]
    titles = [s["title"] for s in card["sections"]]
    assert titles == ["Points table — bank", "Points table — insurer"]
    assert "withheld" in card["sections"][1]["text"]
    shown = simulate_job(spec, _tables(), consent={"insurer": {"share_points_table": True}})
    assert "table" in shown["report_sections"]["bank"][0]["sections"][1]


# ------------------------------------------------------------------------------------ out-of-time evaluation

def _breast_tables(frac: float = 1.0, drift: float = 0.0, drop: str | None = None) -> dict[str, LocalTable]:
    guest, host = load_csv("breast_hetero_guest"), load_csv("breast_hetero_host")
    if frac < 1.0:
        keep = guest["id"].sample(frac=frac, random_state=0)
        guest, host = guest[guest["id"].isin(keep)], host[host["id"].isin(keep)]
    host = host.copy()
    host["x0"] = host["x0"] + drift
    if drop:
        host = host.drop(columns=[drop])
    return {"bank": validate_table(guest, "bank", label_column="y"), "insurer": validate_table(host, "insurer")}


def test_out_of_time_evaluation_with_own_alignment_csi_and_intervals(tmp_path: Path) -> None:
    from federation.channel import InMemoryNetwork, run_parties
    from silo.jobs import JobError, SiloWorker
    from silo.store import SiloStore

    spec = JobSpec("lr-oot", "vertical_lr", PARTIES, params={"max_epochs": 2, "batch_size": 128,
                                                              "learning_rate": 0.15},
                   holdout=0.25, salt="s", seed=3, min_intersection=100)
    tables = _breast_tables()
    simulate_job(spec, tables, workdir=tmp_path)
    later = _breast_tables(frac=0.7, drift=1.5)  # a later sample: fewer customers, the host's x0 has shifted
    stores = {pid: SiloStore(tmp_path / f"{pid}-sim.sqlite") for pid in tables}
    workers = {pid: SiloWorker(pid, str(PARTIES.role_of(pid)), tables[pid], stores[pid],
                               sources={"oot": (lambda t=later[pid]: t)}) for pid in tables}
    net = InMemoryNetwork()
    channels = {pid: net.channel(pid) for pid in workers}
    out = run_parties({pid: (lambda w=w: w.evaluate_out_of_time(spec, channels[w.party_id], "oot"))
                       for pid, w in workers.items()}, net)
    bank, host = out["bank"], out["insurer"]
    assert bank["new_rows"] == host["new_rows"] == len(later["bank"].ids)  # its own PSI alignment
    for m in (bank["metrics"], bank["new_metrics"]):
        lo, hi = m["ci"]["auc"]
        assert lo <= m["auc"] <= hi and m["ci"]["ks"][0] <= m["ks"] <= m["ci"]["ks"][1]
    assert bank["new_metrics"]["psi"] >= 0.0 and len(bank["new_metrics"]["psi_bins"]) >= 2  # score PSI train vs new
    assert set(host["stability"]) == {f"feature {i + 1}" for i in range(len(host["stability"]))}  # no consent
    assert host["stability"]["feature 1"] > 0.25 and max(bank["stability"].values()) < 0.1
    # a changed schema is refused, naming the columns, before anything is scored
    changed = SiloWorker("insurer", "host", tables["insurer"], stores["insurer"],
                         sources={"oot": lambda: _breast_tables(drop="x3")["insurer"]})
    with pytest.raises(JobError, match=r"data source 'oot' does not have the columns.*x3"):
        changed.evaluate_out_of_time(spec, channels["insurer"], "oot")
    with pytest.raises(JobError, match="no data source 'q4'"):
        changed.evaluate_out_of_time(spec, channels["insurer"], "q4")
    for s in stores.values():
        s.close()
