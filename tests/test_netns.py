"""Real multi-host runs: bank, insurer and arbiter in three Linux network namespaces on a bridge.

Each party is a separate process inside its own network namespace (``ip netns``) with its own address
on a private /24 (10.213.0.0/24, on a bridge that has no address in the host namespace and no route out:
traffic stays inside the namespaces this test creates). Certificates carry each party's IP address as
its only non-loopback SAN, so a party connecting from another address is refused.

Pinned:

All are marked ``slow`` (CI runs them; each starts three or four processes in namespaces).

* a full job (PSI + training + evaluation) across the namespaces gives exactly the model of the
  in-process simulation;
* a party whose certificate names another address is refused (the job fails naming the address), and
  a fourth namespace using the bank's genuine key is refused too;
* (slow) a silo's link cut mid-training (``ip link set ... down``) and restored: the job waits and
  ends with the same model; a silo SIGKILLed mid-training and restarted: the job resumes to the same
  model; latency + loss with ``tc netem`` (skipped where the kernel has no ``sch_netem``), 2 % packet
  loss each way with nftables (netdev ingress/egress hooks; works without netem) and a bandwidth-limited
  link (``tc tbf``): the job completes with the same model and the duration is logged.

Needs root and ``ip`` (iproute2); skipped with a message otherwise (CI runs as root).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from arbiter.config import load_job_config
from arbiter.demo import Processes, _toml
from arbiter.simulate import simulate_job
from arbiter.store import JobStore
from datasets import DATA_DIR, load_csv
from federation.certs import CertificateAuthority
from silo.data import validate_table
from silo.store import SiloStore

log = logging.getLogger(__name__)

_IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
_HAVE_IP = shutil.which("ip") is not None
pytestmark = pytest.mark.skipif(not (_IS_ROOT and _HAVE_IP),
                                reason="network-namespace tests need root and iproute2 (`ip`); CI runs them as root")

_RUN = itertools.count(1)
SUBNET = "10.213.0"
ADDRESSES = {"bank": f"{SUBNET}.2", "insurer": f"{SUBNET}.3", "arbiter": f"{SUBNET}.4", "rogue": f"{SUBNET}.9"}
PORTS = {"arbiter": 50060, "bank": 50061, "insurer": 50062}
CONTROL = {"bank": 50071, "insurer": 50072}
PARAMS = {"max_epochs": 4, "batch_size": 128, "learning_rate": 0.15, "optimizer": "adam", "tol": 0.0}


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


@dataclass
class Federation:
    """Namespaces, bridge and veth links of one test run (names unique per process), and its processes."""

    root: Path
    tag: str = field(default_factory=lambda: f"fr{os.getpid() % 10000}{next(_RUN)}")
    procs: Processes = field(default_factory=Processes)
    namespaces: list[str] = field(default_factory=list)
    groups: set[int] = field(default_factory=set)  # process groups started here (a party and its pool)

    @property
    def bridge(self) -> str:
        return f"{self.tag}br"

    def ns(self, party: str) -> str:
        return f"{self.tag}-{party}"

    def host_link(self, party: str) -> str:
        return f"{self.tag}{party[0]}{party[1]}"  # host side of the party's veth (<= 15 characters)

    # topology --------------------------------------------------------------------------------------------
    def create(self) -> Federation:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("link", "set", self.bridge, "up")
        for party, address in ADDRESSES.items():
            ns, link = self.ns(party), self.host_link(party)
            _ip("netns", "add", ns)
            self.namespaces.append(ns)
            _ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("link", "set", link, "master", self.bridge)
            _ip("link", "set", link, "up")
            _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        return self

    def destroy(self) -> None:
        self.procs.stop_all()
        for group in self.groups:  # worker pools of parties that were killed: nothing may keep a namespace
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        for party in ADDRESSES:
            _ip("link", "del", self.host_link(party), check=False)
        for ns in self.namespaces:
            _ip("netns", "del", ns, check=False)
        _ip("link", "del", self.bridge, check=False)
        self.namespaces.clear()

    def kill(self, party: str) -> None:
        """SIGKILL the party's whole process group (the service and its worker pool), like a lost host."""
        proc = self.procs.procs.pop(party)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def set_link(self, party: str, up: bool) -> None:
        _ip("link", "set", self.host_link(party), "up" if up else "down")

    def tc(self, party: str, *qdisc: str) -> subprocess.CompletedProcess[str]:
        """Apply a root qdisc on both ends of the party's link (both directions are affected)."""
        out = subprocess.run(["tc", "qdisc", "replace", "dev", self.host_link(party), "root", *qdisc],
                             capture_output=True, text=True, timeout=30)
        if out.returncode == 0:
            out = subprocess.run(["ip", "netns", "exec", self.ns(party), "tc", "qdisc", "replace", "dev", "eth0",
                                  "root", *qdisc], capture_output=True, text=True, timeout=30)
        return out

    def drop(self, party: str, percent: int) -> subprocess.CompletedProcess[str]:
        """Random packet loss of ``percent`` % each way on the party's link, below the IP stack (nftables netdev
        ingress and egress hooks on the party's ``eth0``: TCP sees it as loss on the wire, not a local error)."""
        rules = (f"table netdev fedrisk_loss {{\n"
                 f"  chain rx {{ type filter hook ingress device \"eth0\" priority 0; "
                 f"numgen random mod 100 < {percent} counter drop; }}\n"
                 f"  chain tx {{ type filter hook egress device \"eth0\" priority 0; "
                 f"numgen random mod 100 < {percent} counter drop; }}\n}}\n")
        return subprocess.run(["ip", "netns", "exec", self.ns(party), "nft", "-f", "-"], input=rules,
                              capture_output=True, text=True, timeout=30)

    def dropped(self, party: str) -> int:
        """Packets the loss rules of :meth:`drop` have dropped so far on the party's link."""
        out = subprocess.run(["ip", "netns", "exec", self.ns(party), "nft", "list", "table", "netdev",
                              "fedrisk_loss"], capture_output=True, text=True, timeout=30)
        return sum(int(n) for n in re.findall(r"counter packets (\d+)", out.stdout))

    # parties ---------------------------------------------------------------------------------------------
    def issue_certificates(self, wrong: dict[str, str] | None = None) -> Path:
        """CA + one certificate per party whose IP SAN is the party's address (or ``wrong[party]``)."""
        certs = self.root / "certs"
        certs.mkdir(parents=True, exist_ok=True)
        ca = CertificateAuthority.create()
        (certs / "ca.pem").write_bytes(ca.cert_pem)
        for party in ("bank", "insurer", "arbiter"):
            cert, key = ca.issue(party, [(wrong or {}).get(party, ADDRESSES[party])])
            (certs / f"{party}.pem").write_bytes(cert)
            (certs / f"{party}-key.pem").write_bytes(key)
            (certs / f"{party}-key.pem").chmod(0o600)
        return certs

    def write_configs(self, job_id: str, retries: int = 2, silo_deadline: float = 90.0) -> dict[str, Path]:
        def tls(party: str) -> dict[str, str]:
            return {"ca": "certs/ca.pem", "cert": f"certs/{party}.pem", "key": f"certs/{party}-key.pem"}

        def addr(party: str) -> str:
            return f"{ADDRESSES[party]}:{PORTS[party]}"

        def control(party: str) -> str:
            return f"{ADDRESSES[party]}:{CONTROL[party]}"

        data = {"bank": {"source": "csv", "path": str(DATA_DIR / "breast_hetero_guest.csv.gz"), "id_column": "id",
                         "label_column": "y"},
                "insurer": {"source": "csv", "path": str(DATA_DIR / "breast_hetero_host.csv.gz"), "id_column": "id"}}
        paths = {name: self.root / f"{name}.toml" for name in ("bank", "insurer", "arbiter", "job")}
        for party, role, peer in (("bank", "guest", "insurer"), ("insurer", "host", "bank")):
            paths[party].write_text(_toml({
                "party": {"id": party, "role": role, "listen": addr(party), "control": control(party),
                          "arbiter": "arbiter", "store": f"stores/{party}.sqlite"},
                "tls": tls(party), "peers": {"arbiter": addr("arbiter"), peer: addr(peer)}, "data": data[party]}))
        paths["arbiter"].write_text(_toml({
            "party": {"id": "arbiter", "listen": addr("arbiter"), "store": "stores/arbiter.sqlite",
                      "reports": "reports"},
            "tls": tls("arbiter")}))
        paths["job"].write_text(_toml({
            "job": {"id": job_id, "name": "netns-lr", "algorithm": "vertical_lr", "holdout": 0.2, "seed": 13,
                    "salt": "netns-salt", "silo_deadline": silo_deadline, "retries": retries},
            "params": PARAMS,
            "parties.bank": {"role": "guest", "address": addr("bank"), "control": control("bank")},
            "parties.insurer": {"role": "host", "address": addr("insurer"), "control": control("insurer")}}))
        return paths

    def command(self, party: str, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns(party), sys.executable, "-P", "-m", "arbiter.cli", *args]

    def start_silo(self, party: str, config: Path, timeout: float = 60.0) -> None:
        logfile = self.root / "logs" / f"{party}.log"
        offset = logfile.stat().st_size if logfile.exists() else 0
        proc = self.procs.start(party, self.command(party, "silo", "serve", "--config", str(config)), logfile,
                                cwd=self.root)
        self.groups.add(proc.pid)
        deadline = time.monotonic() + timeout
        while "serving" not in logfile.read_text(errors="replace")[offset:]:
            proc = self.procs.procs[party]
            assert proc.poll() is None, f"{party} exited:\n{self.procs.tail(party)}"
            assert time.monotonic() < deadline, f"{party} did not come up:\n{self.procs.tail(party)}"
            time.sleep(0.2)

    def start_arbiter(self, paths: dict[str, Path]) -> subprocess.Popen[bytes]:
        proc = self.procs.start("arbiter", self.command(
            "arbiter", "arbiter", "run", str(paths["job"]), "--config", str(paths["arbiter"]), "--no-progress"),
            self.root / "logs" / "arbiter.log", cwd=self.root)
        self.groups.add(proc.pid)
        return proc

    def wait_arbiter(self, timeout: float) -> int:
        proc = self.procs.procs["arbiter"]
        try:
            status = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the job did not finish within {timeout:.0f}s:\n{self.procs.tail('arbiter', 30)}")\
                from None
        self.procs.procs.pop("arbiter")
        return status


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[Federation]:
    fed = Federation(tmp_path)
    try:
        fed.create()
        (tmp_path / "stores").mkdir()
        yield fed
    finally:
        fed.destroy()


def _simulation(job_toml: Path) -> dict[str, object]:
    tables = {"bank": validate_table(load_csv("breast_hetero_guest"), "bank", label_column="y"),
              "insurer": validate_table(load_csv("breast_hetero_host"), "insurer")}
    return simulate_job(load_job_config(job_toml).spec, tables)


def _assert_same_model(fed: Federation, paths: dict[str, Path], job_id: str) -> None:
    store = JobStore(fed.root / "stores" / "arbiter.sqlite")
    try:
        job = store.job(job_id)
        assert job.state == "done", (job.state, job.error)
    finally:
        store.close()
    sim = _simulation(paths["job"])
    for pid in ("bank", "insurer"):
        part = SiloStore(fed.root / "stores" / f"{pid}.sqlite").model_part(job_id)
        assert part is not None, f"{pid} holds no model part"
        np.testing.assert_array_equal(np.asarray(part["model"]["weights"]),
                                      np.asarray(sim["parts"][pid]["model"]["weights"]))  # type: ignore[index]


def _steps(fed: Federation, party: str, job_id: str) -> list[int]:
    path = fed.root / "stores" / f"{party}.sqlite"
    if not path.exists():
        return []
    store = SiloStore(path)
    try:
        return store.checkpoint_steps(job_id)
    finally:
        store.close()


def _wait_for_step(fed: Federation, party: str, job_id: str, step: int, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not any(s >= step for s in _steps(fed, party, job_id)):
        proc = fed.procs.procs.get("arbiter")
        assert proc is not None and proc.poll() is None, f"job ended early:\n{fed.procs.tail('arbiter', 30)}"
        assert time.monotonic() < deadline, f"{party} never checkpointed step {step}"
        time.sleep(0.05)


def _run_full_job(fed: Federation, job_id: str, **job: float) -> tuple[dict[str, Path], float]:
    fed.issue_certificates()
    paths = fed.write_configs(job_id, **job)  # type: ignore[arg-type]
    fed.start_silo("bank", paths["bank"])
    fed.start_silo("insurer", paths["insurer"])
    t0 = time.perf_counter()
    fed.start_arbiter(paths)
    return paths, t0


# -------------------------------------------------------------------------------------------------- tests
@pytest.mark.slow
def test_full_job_across_three_namespaces(federation: Federation) -> None:
    fed = federation
    paths, t0 = _run_full_job(fed, "netns-full")
    health = subprocess.run(fed.command("bank", "health", "--config", str(paths["bank"])), capture_output=True,
                            text=True, timeout=60)
    assert health.returncode == 0 and "bank: serving" in health.stdout, health.stderr
    assert fed.wait_arbiter(240) == 0, fed.procs.tail("arbiter", 30)
    elapsed = time.perf_counter() - t0
    log.warning("netns full job (PSI + %d epochs + evaluation) took %.1fs", PARAMS["max_epochs"], elapsed)
    print(f"netns_full_job_seconds={elapsed:.1f}")
    assert "AUC" in fed.procs.tail("arbiter", 30) or "done" in fed.procs.tail("arbiter", 30)
    _assert_same_model(fed, paths, "netns-full")
    # the parties really talked over the bridge: the silos' peers were the namespaces' addresses
    bank_log = (fed.root / "logs" / "bank.log").read_text()
    assert f"{ADDRESSES['bank']}:{PORTS['bank']}" in bank_log


@pytest.mark.slow
def test_party_outside_its_certificate_address_is_refused(federation: Federation) -> None:
    fed = federation
    fed.issue_certificates(wrong={"insurer": f"{SUBNET}.99"})  # the insurer runs at .3
    paths = fed.write_configs("netns-wrong-address", retries=0)
    fed.start_silo("bank", paths["bank"])
    fed.start_silo("insurer", paths["insurer"])
    fed.start_arbiter(paths)
    assert fed.wait_arbiter(120) == 2
    out = fed.procs.tail("arbiter", 40)
    assert f"connection from {ADDRESSES['insurer']}, which is not an address in the caller's certificate " \
           f"({SUBNET}.99)" in out, out
    store = JobStore(fed.root / "stores" / "arbiter.sqlite")
    try:
        # refused when the silos probe their peers at submission, or failed at alignment: never a model
        assert all(j.state == "failed" for j in store.jobs() if j.id == "netns-wrong-address")
        assert not store.models()
    finally:
        store.close()
    # the bank's genuine certificate and key, used from a fourth namespace: refused by the bank's peer
    probe = (
        "import sys\n"
        "from federation.certs import TlsConfig\n"
        "from federation.grpc_transport import PartyNode, PeerRejected, RetryPolicy\n"
        f"tls = TlsConfig.from_dir({str(fed.root / 'certs')!r}, 'bank')\n"
        f"node = PartyNode('bank', '{ADDRESSES['rogue']}:0', tls, {{'insurer': '{ADDRESSES['insurer']}:"
        f"{PORTS['insurer']}'}}, retry=RetryPolicy(give_up_after=10)).start()\n"
        "try:\n"
        "    node.channel('rogue-job').send('insurer', 'hello', {'x': 1})\n"
        "except PeerRejected as exc:\n"
        "    print('refused:', exc)\n"
        "    sys.exit(0)\n"
        "sys.exit(1)\n")
    rogue = subprocess.run(["ip", "netns", "exec", fed.ns("rogue"), sys.executable, "-P", "-c", probe],
                           capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert rogue.returncode == 0, rogue.stdout + rogue.stderr
    assert f"connection from {ADDRESSES['rogue']}" in rogue.stdout


@pytest.mark.slow
def test_link_cut_mid_job_waits_and_ends_with_the_same_model(federation: Federation) -> None:
    fed = federation
    paths, t0 = _run_full_job(fed, "netns-link")
    _wait_for_step(fed, "insurer", "netns-link", 1)
    fed.set_link("insurer", up=False)
    try:
        time.sleep(8.0)
        assert fed.procs.procs["arbiter"].poll() is None, "the job ended while the insurer was cut off"
        stalled = _steps(fed, "insurer", "netns-link")
    finally:
        fed.set_link("insurer", up=True)
    assert fed.wait_arbiter(300) == 0, fed.procs.tail("arbiter", 30)
    assert max(stalled) < PARAMS["max_epochs"] - 1, "training had finished before the cut"
    print(f"netns_link_cut_job_seconds={time.perf_counter() - t0:.1f}")
    _assert_same_model(fed, paths, "netns-link")


@pytest.mark.slow
def test_silo_sigkilled_and_restarted_resumes_to_the_same_model(federation: Federation) -> None:
    fed = federation
    paths, t0 = _run_full_job(fed, "netns-kill")
    _wait_for_step(fed, "insurer", "netns-kill", 1)
    fed.kill("insurer")
    killed_at = _steps(fed, "insurer", "netns-kill")
    time.sleep(1.0)
    fed.start_silo("insurer", paths["insurer"])
    assert fed.wait_arbiter(300) == 0, fed.procs.tail("arbiter", 30)
    assert max(killed_at) < PARAMS["max_epochs"] - 1
    store = JobStore(fed.root / "stores" / "arbiter.sqlite")
    try:
        job = store.job("netns-kill")
        assert job.attempt >= 1 and "failed" in [e["to_state"] for e in store.events("netns-kill")]
    finally:
        store.close()
    print(f"netns_sigkill_job_seconds={time.perf_counter() - t0:.1f}")
    _assert_same_model(fed, paths, "netns-kill")


def _netem_available() -> bool:
    ns = f"frprobe{os.getpid() % 100000}"
    if not (_IS_ROOT and _HAVE_IP and shutil.which("tc")):
        return False
    try:
        _ip("netns", "add", ns)
        out = subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem",
                              "delay", "1ms"], capture_output=True, text=True, timeout=30)
        return out.returncode == 0
    finally:
        _ip("netns", "del", ns, check=False)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("nft") is None, reason="needs nftables (`nft`) for packet loss")
def test_packet_loss_on_a_link_still_completes(federation: Federation) -> None:
    """2 % of the bank's packets lost each way (nftables, since this kernel has no netem): TCP retransmits,
    the job completes with the same model; the duration and the packets dropped are printed."""
    fed = federation
    out = fed.drop("bank", 2)
    assert out.returncode == 0, out.stderr
    paths, t0 = _run_full_job(fed, "netns-loss")
    assert fed.wait_arbiter(600) == 0, fed.procs.tail("arbiter", 30)
    elapsed = time.perf_counter() - t0
    dropped = fed.dropped("bank")
    log.warning("netns job with 2 %% loss each way took %.1fs (%d packets dropped)", elapsed, dropped)
    print(f"netns_loss_job_seconds={elapsed:.1f} netns_loss_packets_dropped={dropped}")
    assert dropped > 0
    _assert_same_model(fed, paths, "netns-loss")


@pytest.mark.slow
@pytest.mark.parametrize("impairment", ["netem", "tbf"])
def test_impaired_link_still_completes(federation: Federation, impairment: str) -> None:
    """netem: 20 ms +- 5 ms delay and 1 % loss each way on the bank's link; tbf: the bank's link shaped to
    20 Mbit/s. Both need only the kernel's qdiscs; the duration is printed."""
    fed = federation
    if impairment == "netem" and not _netem_available():
        pytest.skip("this kernel has no sch_netem qdisc (tc: 'Specified qdisc kind is unknown'); "
                    "the tbf variant still shapes the link")
    qdisc = (["netem", "delay", "20ms", "5ms", "loss", "1%"] if impairment == "netem"
             else ["tbf", "rate", "20mbit", "burst", "64kb", "latency", "100ms"])
    out = fed.tc("bank", *qdisc)
    assert out.returncode == 0, out.stderr
    paths, t0 = _run_full_job(fed, f"netns-{impairment}")
    assert fed.wait_arbiter(600) == 0, fed.procs.tail("arbiter", 30)
    elapsed = time.perf_counter() - t0
    log.warning("netns job with %s (%s) took %.1fs", impairment, " ".join(qdisc), elapsed)
    print(f"netns_{impairment}_job_seconds={elapsed:.1f}")
    _assert_same_model(fed, paths, f"netns-{impairment}")
    with contextlib.suppress(Exception):
        subprocess.run(["tc", "qdisc", "del", "dev", fed.host_link("bank"), "root"], capture_output=True, timeout=10)
