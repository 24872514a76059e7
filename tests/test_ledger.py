"""The privacy ledger: every catalogued protocol, run through the silo workers (align → train → evaluate), receives
nothing its plug-in did not declare; the summary is generic; the README's disclosure table matches the declarations.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from algorithms import catalogue
from algorithms.api import Disclosure
from algorithms.base import Parties
from algorithms.ledger import UNDECLARED, Ledger, classify, declared, merge_summaries
from arbiter.simulate import simulate_job
from federation.channel import InMemoryNetwork
from silo.jobs import JobSpec
from silo.store import SiloStore
from tests.test_plugins import _parties, _tables

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", catalogue.names())
def test_every_received_message_is_declared(name: str, tmp_path: Path) -> None:
    plugin = catalogue.get(name)
    parties = _parties(plugin)
    spec = JobSpec(job_id=f"ledger-{name}", algorithm=name, parties=parties,
                   params=plugin.demo_params("breast", steps=1), salt="ledger", seed=3)
    sim = simulate_job(spec, _tables(plugin, parties), workdir=tmp_path)
    ledgers = sim["ledgers"]
    expected = set(parties.silos) | ({parties.arbiter} if plugin.arbiter is not None else set())
    assert set(ledgers) == expected
    for pid, summary in ledgers.items():
        undeclared = [row for row in summary["by_disclosure"] if row["kind"] == UNDECLARED]
        assert summary["undeclared"] == 0 and not undeclared, f"{name}: {pid} received undeclared {undeclared}"
        assert summary["messages"] > 0 and summary["bytes"] > 0
        assert summary["messages"] == sum(v["messages"] for v in summary["by_kind"].values())
    for pid in parties.silos:  # each silo keeps its own entries
        store = SiloStore(tmp_path / f"{pid}-sim.sqlite")
        try:
            entries = store.ledger(spec.job_id)
        finally:
            store.close()
        assert len(entries) == ledgers[pid]["messages"]
        stages = {e["stage"] for e in entries}  # horizontal parties score locally: no evaluation messages
        assert "train" in stages and stages <= {"align", "train", "evaluate"}
        assert all(set(e) == {"stage", "tag", "sender", "sender_role", "size", "kind", "pattern", "what"}
                   for e in entries)


def test_an_undeclared_message_is_caught() -> None:
    parties = Parties("bank", ("insurer",), "arbiter")
    ledger = Ledger("insurer", parties, (Disclosure("host", "guest", "x.*", "ciphertext", "[[x]]"),))
    net = InMemoryNetwork()
    channel = ledger.channel(net.channel("insurer"), "train")
    net.channel("arbiter")
    net.channel("bank").send("insurer", "x.1", {"v": 1})
    net.channel("bank").send("insurer", "labels", {"y": [0, 1]})
    net.channel("arbiter").send("insurer", "x.2", {"v": 2})  # declared for the guest as sender only
    channel.recv("bank", "x.1")
    channel.recv("bank", "labels")
    channel.recv("arbiter", "x.2")
    summary = ledger.summary()
    assert summary["undeclared"] == 2 and [e.tag for e in ledger.undeclared] == ["labels", "x.2"]
    assert summary["by_kind"]["ciphertext"]["messages"] == 1
    assert merge_summaries([summary, summary])["messages"] == 6
    assert classify(declared(catalogue.get(catalogue.default_name())), "host", "guest", "psi.blinded.bank") is not None


def _readme_table() -> dict[str, dict[str, str]]:
    """The README's generated table: {algorithm: {receiver role: cell}}."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- disclosures:begin -->\n(.*?)<!-- disclosures:end -->", text, re.S)
    assert block, "README.md lacks the generated disclosure table"
    return {"text": block.group(1)}  # type: ignore[dict-item]


def test_readme_disclosure_table_matches_the_declarations() -> None:
    from algorithms.ledger import disclosure_table

    assert _readme_table()["text"] == disclosure_table(), (
        "README.md's disclosure table is stale: regenerate it with "
        "`python -m algorithms.ledger --readme` and paste it between the markers")


def test_report_shows_each_partys_ledger(tmp_path: Path) -> None:
    import json

    import numpy as np

    from arbiter.report import write_report
    from silo.evaluation import evaluate_at_guest

    parties = Parties("bank", ("insurer",), "arbiter")
    plugin = catalogue.get(catalogue.default_name())
    ledgers = {}
    for pid in ("bank", "insurer"):
        ledger = Ledger(pid, parties, declared(plugin))
        net = InMemoryNetwork()
        other = "insurer" if pid == "bank" else "bank"
        tag = "vlr.e0.b0.forward" if pid == "bank" else "vlr.e0.b0.fore_gradient"
        channel = ledger.channel(net.channel(pid), "train")
        net.channel(other).send(pid, tag, {"u": b"\0" * 100})
        net.channel(other).send(pid, "smuggled", {"y": [1]})
        channel.recv(other, tag)
        channel.recv(other, "smuggled")
        ledgers[pid] = ledger.summary()
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    metrics = evaluate_at_guest(y, np.clip(y * 0.3 + rng.random(300) * 0.7, 0, 1))
    html, js = write_report(tmp_path, metrics, {"job_id": "j"}, stem="j", ledgers=ledgers)
    text = html.read_text()
    assert "Privacy ledger" in text and "<h3>bank (guest)</h3>" in text and "<h3>insurer (host)</h3>" in text
    assert "vlr.e*.b*.forward" in text and "1 undeclared" in text
    assert json.loads(js.read_text())["privacy_ledger"]["bank"]["undeclared"] == 1
