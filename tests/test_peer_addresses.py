"""Silos whose ``[peers]`` disagree with the job (real processes): the arbiter has each silo try the data-plane
links it will use at submission, so a wrong port or swapped ports are refused within seconds with an error
naming the silo, the peer, the address and the cause, instead of a job hanging silently in ``aligning``."""

from __future__ import annotations

import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from arbiter.config import load_arbiter_config, load_job_config
from arbiter.demo import Processes, free_ports, prepare_workdir
from arbiter.pool import ArbiterError
from arbiter.runner import ArbiterService
from tests.test_services import start_silos


def _set_peer(path: Path, peer: str, address: str) -> None:
    old = tomllib.loads(path.read_text())["peers"][peer]
    path.write_text(path.read_text().replace(f'{peer} = "{old}"', f'{peer} = "{address}"'))
    assert tomllib.loads(path.read_text())["peers"][peer] == address


@pytest.fixture(scope="module")
def misconfigured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Path], str, str]]:
    """bank's [peers] points 'insurer' at a port where nothing listens; insurer's [peers] points 'bank' at
    bank's control port (swapped ports)."""
    root, paths = prepare_workdir(tmp_path_factory.mktemp("peers"), "breast", params={"max_epochs": 1},
                                  job_id="peers-wrong")
    dead = f"127.0.0.1:{free_ports(1)[0]}"
    bank_control = tomllib.loads(paths["bank"].read_text())["party"]["control"]
    _set_peer(paths["bank"], "insurer", dead)
    _set_peer(paths["insurer"], "bank", bank_control)
    procs = Processes()
    try:
        start_silos(root, paths, procs)
        yield root, paths, dead, bank_control
    finally:
        procs.stop_all()


@pytest.mark.slow
def test_wrong_peer_address_refused_at_submission(misconfigured: tuple[Path, dict[str, Path], str, str]) -> None:
    root, paths, dead, bank_control = misconfigured
    assert "categorical=none" in (root / "logs" / "bank.log").read_text()  # silos name the columns they one-hot encode
    service = ArbiterService(load_arbiter_config(paths["arbiter"]), progress=False)
    t0 = time.monotonic()
    try:
        with pytest.raises(ArbiterError) as err:
            service.submit(load_job_config(paths["job"]))
        assert service.store.jobs() == []  # nothing stored for a job that cannot run
    finally:
        service.close()
    assert time.monotonic() - t0 < 30
    message = str(err.value)
    job_insurer = tomllib.loads(paths["job"].read_text())["parties"]["insurer"]["address"]
    assert f"silo 'bank' cannot reach 'insurer' at {dead}" in message
    assert f"the job file names 'insurer' at {job_insurer}" in message
    assert "not reachable" in message or "did not answer" in message
    # swapped ports: the address of bank's control plane is given as its data plane
    assert f"silo 'insurer' cannot reach 'bank' at {bank_control}" in message
    assert "not a data plane" in message, message
