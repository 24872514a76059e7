"""The risk analyst toolkit over the real services (separate processes, gRPC + mutual TLS): a binning job
file (``algorithm = "binning"``) ends with its IV/WOE report, and ``fedrisk evaluate --source oot`` scores a
registered model on a later sample that each silo declares as ``[data.oot]``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from arbiter.cli import main
from arbiter.config import load_arbiter_config, load_job_config
from arbiter.demo import Processes, prepare_workdir
from arbiter.runner import ArbiterService
from datasets import load_csv
from tests.test_services import PARAMS, start_silos

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Path], Processes]]:
    root, paths = prepare_workdir(tmp_path_factory.mktemp("analyst"), "breast", params=PARAMS,
                                  job_id="an-lr", salt="an-salt", seed=7)
    guest, host = load_csv("breast_hetero_guest"), load_csv("breast_hetero_host")
    keep = guest["id"].sample(frac=0.8, random_state=1)
    host = host[host["id"].isin(keep)].copy()
    host["x0"] = host["x0"] + 1.0  # the later sample has drifted
    guest[guest["id"].isin(keep)].to_csv(root / "bank-later.csv", index=False)
    host.to_csv(root / "insurer-later.csv", index=False)
    for party in ("bank", "insurer"):
        with paths[party].open("a") as f:
            f.write(f'\n[data.oot]\npath = "{party}-later.csv"\n')
    with paths["insurer"].open("a") as f:
        f.write("\n[consent]\nshare_feature_names = true\n")
    text = paths["job"].read_text()
    head, _, rest = text.partition("[params]\n")
    rest = rest[rest.index("[parties."):]
    head = head.replace('algorithm = "vertical_lr"', 'algorithm = "binning"').replace('id = "an-lr"', 'id = "an-bin"')
    (root / "job-binning.toml").write_text(head + "[params]\nn_bins = 5\noptimal = true\nmax_bins = 3\n\n" + rest)
    procs = Processes()
    try:
        start_silos(root, paths, procs)
        yield root, paths, procs
    finally:
        procs.stop_all()


def test_binning_job_file_over_the_services(deployment: tuple[Path, dict[str, Path], Processes]) -> None:
    root, paths, _ = deployment
    service = ArbiterService(load_arbiter_config(paths["arbiter"]), progress=False)
    try:
        record = service.submit(load_job_config(root / "job-binning.toml"))
        result = service.run(record.id)
        assert service.store.job(record.id).state == "done"
    finally:
        service.close()
    html = Path(result["report"][0]).read_text()
    assert "Information value by characteristic" in html and "insurer · x0" in html  # named: host's consent
    assert set(result["report_sections"]) == {"bank"}


def test_out_of_time_evaluation_over_the_services(deployment: tuple[Path, dict[str, Path], Processes],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    _, paths, _ = deployment
    service = ArbiterService(load_arbiter_config(paths["arbiter"]), progress=False)
    try:
        result = service.run(service.submit(load_job_config(paths["job"])).id)
    finally:
        service.close()
    assert main(["evaluate", result["model_id"], "--config", str(paths["arbiter"]), "--source", "oot"]) == 0
    out = capsys.readouterr().out
    assert "out-of-time sample 'oot'" in out
    report = next(line.split("report: ")[1] for line in out.splitlines() if line.startswith("report: ")
                  and line.endswith(".html"))
    html = Path(report).read_text()
    assert "Training holdout vs out-of-time sample" in html and "Characteristic stability" in html
    assert main(["evaluate", result["model_id"], "--config", str(paths["arbiter"]), "--source", "q9"]) != 0
    assert "no data source 'q9'" in capsys.readouterr().err
