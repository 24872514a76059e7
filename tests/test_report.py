"""Evaluation reports: self-contained HTML (checked in headless Chromium), JSON with the same numbers, and the
terminal summary table."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from arbiter.report import render_html, summary_table, write_report
from silo.evaluation import evaluate_at_guest

CHROMIUM = Path("/usr/bin/chromium")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MODEL_CARD: dict[str, Any] = {
    "name": "Vertical LR (bank + insurer)",
    "algorithm": "hetero logistic regression, Paillier",
    "job_id": "job-0001",
    "parties": {"guest": "bank", "hosts": ["insurer"], "arbiter": "arbiter"},
    "features_per_party": {"bank": 13, "insurer": 10},
    "parameters": {"learning_rate": 0.15, "epochs": 10, "batch_size": 1024},
    "training_time_s": 312.4,
    "key_bits": 2048,
    "privacy_notes": ["Gradients travel only as Paillier ciphertexts.", "The arbiter decrypts masked values only."],
    "owner": "credit risk <validation> team",
}


def _scores(n: int, seed: int, signal: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.22).astype(np.int64)
    return y, 1.0 / (1.0 + np.exp(-(signal * y + rng.normal(size=n) - 1.5)))


@pytest.fixture(scope="module")
def full_report() -> dict[str, Any]:
    y, s = _scores(3000, 0, 1.0)
    base = 1.0 / (1.0 + np.exp(-(0.5 * y + np.random.default_rng(1).normal(size=y.size) - 1.5)))
    train = _scores(6000, 2, 1.0)[1]
    return evaluate_at_guest(y, s, train_scores=train, baseline_scores=base)


def _images(page: str) -> list[str]:
    return re.findall(r'<img [^>]*src="([^"]*)"', page)


def test_write_report_html_and_json(tmp_path: Path, full_report: dict[str, Any]) -> None:
    html_path, json_path = write_report(tmp_path / "reports", full_report, MODEL_CARD, stem="job-0001")
    assert html_path == tmp_path / "reports" / "job-0001.html" and json_path.suffix == ".json"

    def no_constants(name: str) -> None:
        raise AssertionError(f"non-strict JSON constant {name}")

    doc = json.loads(json_path.read_text(encoding="utf-8"), parse_constant=no_constants)
    assert doc["schema"] == "fedrisk.evaluation/1"
    assert doc["metrics"] == full_report
    assert doc["model_card"] == MODEL_CARD

    page = html_path.read_text(encoding="utf-8")
    images = _images(page)
    assert len(images) == 5  # ROC, KS, gain/lift, calibration, PSI
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == PNG_MAGIC
    for section in ("Headline metrics", "Federation gain", "Lift and gain by decile", "Confusion matrix",
                    "Calibration", "Population stability", "Model card"):
        assert section in page
    assert f"{full_report['auc']:.3f}" in page
    assert "2048 bits" in page and "312.4 s" in page and "insurer: 10" in page


def test_html_is_self_contained_and_escaped(full_report: dict[str, Any]) -> None:
    card = {**MODEL_CARD, "name": "<script>alert(1)</script>"}
    page = render_html(full_report, card)
    assert "<script" not in page  # the card's text is escaped; the report itself runs no script
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "credit risk &lt;validation&gt; team" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", page)
    assert "@import" not in page and "url(" not in page


def test_report_without_optional_parts(tmp_path: Path) -> None:
    y, s = _scores(500, 3, 1.0)
    logits = np.log(s / (1 - s))
    result = evaluate_at_guest(y, logits, threshold=0.0)
    html_path, _ = write_report(tmp_path, result, None)
    page = html_path.read_text(encoding="utf-8")
    assert len(_images(page)) == 3  # no calibration (not probabilities), no PSI (no training scores)
    assert "Population stability" not in page and "Federation gain" not in page
    assert "not computed" in page and "No model card given" in page
    text = summary_table(result)
    assert "guest-only" not in text and "note: scores are not probabilities" in text


def test_summary_table(full_report: dict[str, Any]) -> None:
    text = summary_table(full_report)
    assert text.startswith("Evaluation: 3,000 rows")
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("metric"))
    block = lines[header:header + 7]  # header, rule, AUC, Gini, KS, Brier, ECE
    assert len({len(line) for line in block}) == 1  # aligned columns
    assert block[2].split()[:2] == ["AUC", f"{full_report['auc']:.4f}"]
    delta = full_report["federation_gain"]["auc"]["delta"]
    assert block[2].split()[-1] == f"{delta:+.4f}"
    assert "PSI" in text and "KS cut-off" in text
    deciles = [line for line in lines if re.match(r"^(decile|\d+ )", line)]
    assert len(deciles) == 11 and len({len(line) for line in deciles}) == 1
    assert "\x1b[" not in text


@pytest.mark.skipif(not CHROMIUM.exists(),
                    reason="headless Chromium not installed: apt-get update && apt-get install -y chromium")
def test_report_renders_in_headless_chromium(tmp_path: Path, full_report: dict[str, Any]) -> None:
    html_path, _ = write_report(tmp_path, full_report, MODEL_CARD)
    # A copy of the page with a probe that records, after the load event, whether every image decoded.
    probe = ("<script>window.addEventListener('load',function(){var r=[];for(var i=0;i<document.images.length;"
             "i++){var m=document.images[i];r.push(m.complete&&m.naturalWidth>0?m.naturalWidth+'x'+"
             "m.naturalHeight:'BROKEN');}var d=document.createElement('div');d.id='img-probe';"
             "d.setAttribute('data-result',r.join(','));document.body.appendChild(d);});</script>")
    probed = tmp_path / "probed.html"
    probed.write_text(html_path.read_text(encoding="utf-8").replace("</body>", probe + "</body>"), encoding="utf-8")

    def chromium(*args: str) -> subprocess.CompletedProcess[str]:
        profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
        cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", *args]
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)
        finally:
            shutil.rmtree(profile, ignore_errors=True)

    dom = chromium("--dump-dom", probed.as_uri())
    match = re.search(r'id="img-probe" data-result="([^"]*)"', dom.stdout)
    assert match, f"page did not finish loading in Chromium (rc={dom.returncode}): {dom.stderr[-2000:]}"
    sizes = match.group(1).split(",")
    assert len(sizes) == 5 and "BROKEN" not in sizes, sizes
    assert all(int(s.split("x")[0]) > 300 and int(s.split("x")[1]) > 300 for s in sizes)

    shot = tmp_path / "report.png"
    run = chromium(f"--screenshot={shot}", "--window-size=1280,4000", html_path.as_uri())
    assert shot.exists(), f"no screenshot (rc={run.returncode}): {run.stderr[-2000:]}"
    assert shot.read_bytes()[:8] == PNG_MAGIC

    from PIL import Image  # matplotlib's own dependency

    with Image.open(shot) as img:
        assert img.size == (1280, 4000)
        pixels = np.asarray(img.convert("RGB"), dtype=np.int16)
    non_white = np.any(pixels < 235, axis=2)
    assert non_white.mean() > 0.03, "screenshot is (almost) blank"
    title_blue = np.all(np.abs(pixels - np.array([31, 78, 121])) < 30, axis=2)  # headings and curves
    assert title_blue[:200].sum() > 500, "report title not rendered at the top of the page"
    assert title_blue.sum() > 20_000, "plot curves / headings missing"
