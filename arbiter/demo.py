"""``fedrisk demo``: the silos and the arbiter as separate processes on loopback.

Steps: fresh certificates (private CA, one certificate per party) into the work dir, configs for the
parties and the job (free loopback ports), ``fedrisk silo serve`` per silo, ``fedrisk arbiter run
job.toml``, then shutdown. The silos follow the algorithm's topology: vertical algorithms get a bank
(guest: the bundled default-credit guest file) and an insurer (host file) and run PSI, training (e.g.
vertical LR with 2048-bit Paillier keys) and evaluation on the held-out ids; horizontal ones get three
banks holding the bundled horizontal split (same columns, own customers), every bank a ``client``.
Every child process is stopped on success, on error and on Ctrl-C (SIGTERM, then SIGKILL
after a grace period).

What it reveals to whom: the same as the real deployment; the demo only runs all parties on one host.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from algorithms import catalogue
from datasets import DATA_DIR

DATASETS = {
    "default_credit": ("default_credit_hetero_guest.csv.gz", "default_credit_hetero_host.csv.gz"),
    "breast": ("breast_hetero_guest.csv.gz", "breast_hetero_host.csv.gz"),
}
#: horizontal splits: one file per silo (every silo holds labels and the same columns)
HORIZONTAL_DATASETS = {
    "default_credit": {"bank-a": "default_credit_homo_guest.csv.gz", "bank-b": "default_credit_homo_host_1.csv.gz",
                       "bank-c": "default_credit_homo_host_2.csv.gz"},
}


def demo_silos(topology: str, dataset: str) -> list[tuple[str, Path, bool]]:
    """The demo's silos for an algorithm topology: ``(party id, data file, holds labels)``."""
    if topology == "horizontal":
        if dataset not in HORIZONTAL_DATASETS:
            raise ValueError(f"no horizontal split of {dataset!r}; available: {', '.join(HORIZONTAL_DATASETS)}")
        return [(name, DATA_DIR / f, True) for name, f in HORIZONTAL_DATASETS[dataset].items()]
    guest, host = DATASETS[dataset]
    return [("bank", DATA_DIR / guest, True), ("insurer", DATA_DIR / host, False)]


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on loopback (bound, read, released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table, e.g. distillation's families = { bank-a = "gbt" }
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))


def _toml(sections: dict[str, dict[str, Any]]) -> str:
    lines: list[str] = []
    for name, table in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in table.items())
        lines.append("")
    return "\n".join(lines)


def write_configs(workdir: Path, silos: list[tuple[str, Path, bool]], params: dict[str, Any], *,
                  job_id: str | None = None, seed: int = 42, holdout: float = 0.2, salt: str = "fedrisk-demo",
                  silo_deadline: float = 60.0, retries: int = 3, name: str | None = None,
                  ports: list[int] | None = None, algorithm: str | None = None) -> dict[str, Path]:
    """Write ``<silo>.toml`` per silo, arbiter.toml and job.toml into ``workdir`` (certs in workdir/certs).

    ``silos``: ``(party id, data file, holds labels)``. Roles follow the algorithm's role list: with one
    silo role every silo takes it; otherwise the first silo takes the label-holding role and the others the
    remaining one.
    """
    algorithm = algorithm or catalogue.default_name()
    plugin = catalogue.get(algorithm)
    names = [s[0] for s in silos]
    free = ports or free_ports(1 + 2 * len(silos))
    addr = {"arbiter": f"127.0.0.1:{free[0]}"} | {n: f"127.0.0.1:{free[1 + 2 * i]}" for i, n in enumerate(names)}
    control = {n: f"127.0.0.1:{free[2 + 2 * i]}" for i, n in enumerate(names)}
    label_role = plugin.label_role
    others = [r for r in plugin.silo_roles if r != label_role] or [label_role]
    roles = {n: (label_role if (i == 0 or len(plugin.silo_roles) == 1) else others[0]) for i, n in enumerate(names)}

    def tls(party: str) -> dict[str, str]:
        return {"ca": "certs/ca.pem", "cert": f"certs/{party}.pem", "key": f"certs/{party}-key.pem"}

    paths = {n: workdir / f"{n}.toml" for n in [*names, "arbiter", "job"]}
    for n, data_file, labelled in silos:
        data = {"source": "csv", "path": str(data_file), "id_column": "id"}
        if labelled and catalogue.silo_roles().get(str(roles[n]), False):
            data["label_column"] = "y"
        paths[n].write_text(_toml({
            "party": {"id": n, "role": roles[n], "listen": addr[n], "control": control[n], "arbiter": "arbiter",
                      "store": f"stores/{n}.sqlite"},
            "tls": tls(n),
            "peers": {p: a for p, a in addr.items() if p != n},
            "data": data,
        }))
    paths["arbiter"].write_text(_toml({
        "party": {"id": "arbiter", "listen": addr["arbiter"], "store": "stores/arbiter.sqlite",
                  "reports": "reports"},
        "tls": tls("arbiter"),
    }))
    job: dict[str, Any] = {"name": name or plugin.demo_name, "algorithm": algorithm,
                           "holdout": holdout, "seed": seed,
                           "salt": salt, "silo_deadline": silo_deadline, "retries": retries}
    if job_id:
        job["id"] = job_id
    paths["job"].write_text(_toml({
        "job": job,
        "params": params,
        **{f"parties.{n}": {"role": roles[n], "address": addr[n], "control": control[n]} for n in names},
    }))
    return paths


def fedrisk_command(*args: str) -> list[str]:
    """The ``fedrisk`` console script run by this interpreter (works in a venv and from a checkout)."""
    return [sys.executable, "-P", "-m", "arbiter.cli", *args]  # -P: the cwd never shadows a package


class Processes:
    """Child processes that are always stopped: SIGTERM, then SIGKILL after ``grace`` seconds."""

    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    def start(self, name: str, cmd: list[str], log_path: Path | None = None, cwd: Path | None = None
              ) -> subprocess.Popen[bytes]:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            out: Any = log_path.open("ab")
            self.logs[name] = log_path
        else:
            out = None
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT if out else None, cwd=cwd, env=env,
                                start_new_session=True)
        if out is not None:
            out.close()
        self.procs[name] = proc
        return proc

    def stop(self, name: str, grace: float = 10.0) -> int | None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(5)
        return proc.returncode

    def kill(self, name: str) -> None:
        """SIGKILL (tests: a silo dying mid-job)."""
        proc = self.procs.pop(name)
        proc.kill()
        proc.wait(10)

    def stop_all(self) -> None:
        """Stop in reverse start order (the arbiter before the silos it is talking to)."""
        for name in reversed(list(self.procs)):
            self.stop(name)

    def tail(self, name: str, lines: int = 15) -> str:
        path = self.logs.get(name)
        if path is None or not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_until_ready(procs: Processes, names: list[str], workdir: Path, timeout: float = 60.0) -> None:
    """Wait until each silo answers a control ``check`` from the arbiter's identity."""
    from arbiter.config import load_job_config
    from federation.certs import TlsConfig
    from silo.control import ControlClient, SiloUnavailable

    job = load_job_config(workdir / "job.toml")
    tls = TlsConfig.from_dir(workdir / "certs", "arbiter")
    deadline = time.monotonic() + timeout
    for name in names:
        client = ControlClient(name, job.parties[name].control, tls)
        try:
            while True:
                proc = procs.procs[name]
                if proc.poll() is not None:
                    raise RuntimeError(f"silo {name!r} exited with status {proc.returncode}:\n{procs.tail(name)}")
                try:
                    client.call("check", timeout=2.0)
                    break
                except SiloUnavailable:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"silo {name!r} did not come up within {timeout:.0f}s:\n"
                                           f"{procs.tail(name)}") from None
                    time.sleep(0.3)
        finally:
            client.close()


def prepare_workdir(workdir: str | Path, dataset: str = "default_credit", epochs: int | None = None,
                    keep: bool = False, params: dict[str, Any] | None = None, **job: Any
                    ) -> tuple[Path, dict[str, Path]]:
    """Fresh certificates and configs in ``workdir`` (``params`` override the dataset's training
    parameters, ``job`` the job settings of :func:`write_configs`); returns it and the config paths."""
    from federation.certs import provision

    root = Path(workdir).resolve()
    if not keep:
        for sub in ("stores", "logs", "reports", "certs"):
            shutil.rmtree(root / sub, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    (root / "stores").mkdir(exist_ok=True)
    plugin = catalogue.get(job.setdefault("algorithm", catalogue.default_name()))
    silos = demo_silos(plugin.topology, dataset)
    provision(root / "certs", parties=[s[0] for s in silos] + ["arbiter"], hosts=["localhost", "127.0.0.1"],
              overwrite=True)
    job.setdefault("name", plugin.demo_name)
    params = {**plugin.demo_params(dataset, epochs), **(params or {})}
    paths = write_configs(root, silos, params, **job)
    return root, paths


def silo_names(paths: dict[str, Path]) -> list[str]:
    """The silo party ids of a prepared work dir (every config but the arbiter's and the job's)."""
    return [n for n in paths if n not in ("arbiter", "job")]


def run_demo(workdir: str | Path = "demo-output", epochs: int | None = None, dataset: str = "default_credit",
             keep: bool = False, algorithm: str | None = None) -> int:
    """Run the whole demo; returns the arbiter's exit status."""
    algorithm = algorithm or catalogue.default_name()
    root, paths = prepare_workdir(workdir, dataset, epochs, keep, algorithm=algorithm,
                                  job_id=f"demo-{time.strftime('%Y%m%d-%H%M%S')}")
    print(f"fedrisk demo: work dir {root}")
    silos = silo_names(paths)
    print(f"  certificates: {root / 'certs'} (private CA; {', '.join(silos)}, arbiter)")
    print(f"  configs: {', '.join(p.name for p in paths.values())}")
    procs = Processes()

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        for name in silos:
            procs.start(name, fedrisk_command("silo", "serve", "--config", str(paths[name])),
                        root / "logs" / f"{name}.log", cwd=root)
            print(f"  started silo {name} (pid {procs.procs[name].pid}, log logs/{name}.log)")
        wait_until_ready(procs, silos, root)
        print("  silos are up; starting the arbiter (log logs/arbiter.log)\n")
        (root / "logs").mkdir(exist_ok=True)
        arbiter = procs.start("arbiter", fedrisk_command("arbiter", "run", str(paths["job"]), "--config",
                                                         str(paths["arbiter"]), "--log-file",
                                                         str(root / "logs" / "arbiter.log")), cwd=root)
        status = arbiter.wait()
        procs.procs.pop("arbiter", None)
        if status != 0:
            procs.logs["arbiter"] = root / "logs" / "arbiter.log"
            for name in ("arbiter", *silos):
                print(f"\n--- last lines of {name}'s log ---\n{procs.tail(name)}", file=sys.stderr)
            print(f"fedrisk demo: the arbiter exited with status {status}", file=sys.stderr)
            return status
        print(f"\nfedrisk demo: done. Reports in {root / 'reports'}; registry: "
              f"fedrisk models list --config {paths['arbiter']}")
        name = catalogue.get(algorithm).demo_name
        print(f"  re-evaluate later: start the silos (fedrisk silo serve --config {root}/{silos[0]}.toml, the same "
              f"for {', '.join(f'{s}.toml' for s in silos[1:])}), then fedrisk evaluate {name} --config "
              f"{paths['arbiter']} --threshold 0.3")
        return 0
    except KeyboardInterrupt:
        print("\nfedrisk demo: interrupted, stopping every process", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        signal.signal(signal.SIGTERM, previous)
