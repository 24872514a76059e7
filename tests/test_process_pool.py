"""The shared process pool: usable from a plain script (no ``__main__`` guard), and never outlives its owner."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def _wait_gone(pids: list[int], seconds: float = 10.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = [p for p in pids if _alive(p)]
        if not left:
            return []
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


POOL_PIDS = """
import json, multiprocessing.forkserver
from algorithms.paillier import generate_keypair, Encryptor, shared_executor
pool = shared_executor()
pub, _ = generate_keypair(2048)
Encryptor(pub, executor=pool).obfuscators(600)   # real work on both workers
pids = sorted(pool._processes) + [multiprocessing.forkserver._forkserver._forkserver_pid]
print(json.dumps(pids), flush=True)
"""


def test_workers_die_with_a_sigkilled_owner(tmp_path: Path) -> None:
    script = tmp_path / "owner.py"
    script.write_text(POOL_PIDS + "import time\ntime.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=_env(),
                            cwd=tmp_path)
    try:
        assert proc.stdout is not None
        pids = json.loads(proc.stdout.readline())
        assert len(pids) >= 2 and all(_alive(p) for p in pids)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert _wait_gone(pids) == [], "pool workers or the forkserver outlived a SIGKILLed owner"


def test_no_pool_process_survives_a_pytest_run(tmp_path: Path) -> None:
    out = tmp_path / "pids.json"
    body = POOL_PIDS.replace("print(json.dumps(pids), flush=True)", f"open({str(out)!r}, 'w').write(json.dumps(pids))")
    (tmp_path / "test_uses_pool.py").write_text("def test_pool():\n" + textwrap.indent(body, "    "))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                         capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert _wait_gone(json.loads(out.read_text())) == [], "pytest left pool processes behind"


README_STYLE = """
from datasets import load_breast_vertical
from algorithms.vertical_lr import VerticalLogisticRegression
from algorithms.secureboost import VerticalSecureBoost

data = load_breast_vertical()
lr = VerticalLogisticRegression(max_epochs=1).fit(data)
sbt = VerticalSecureBoost(n_estimators=1, max_depth=2).fit(data)
p = sbt.predict_proba(data)[:, 1]
print("fitted", len(lr.losses_), len(p))
"""


@pytest.mark.slow
def test_readme_example_runs_as_a_plain_script(tmp_path: Path) -> None:
    """No ``if __name__ == "__main__":`` guard: the pool must not re-run this module in its workers."""
    script = tmp_path / "run.py"
    script.write_text(README_STYLE)
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=_env(), cwd=tmp_path,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "fitted 1" in run.stdout
    assert "BrokenProcessPool" not in run.stderr


def test_pool_runs_from_stdin_like_a_repl(tmp_path: Path) -> None:
    """A main module without a file (REPL, ``python -``, notebooks) uses the pool too."""
    code = POOL_PIDS.replace("print(json.dumps(pids), flush=True)", "print('pool', len(pids))")
    run = subprocess.run([sys.executable, "-"], input=code, capture_output=True, text=True, env=_env(),
                         cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "pool 3" in run.stdout
