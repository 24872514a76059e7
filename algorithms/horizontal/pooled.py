"""One risk report for a horizontal job from the clients' own evaluation reports (aggregates only).

Each client evaluates the global model on its own hold-out and sends its :class:`algorithms.metrics.RiskReport`
dict (counts, rates, deciles, curves downsampled to at most 200 points, the local-only baseline). This
module pools them at the arbiter: the confusion matrix at the threshold is summed exactly; the pooled ROC
and KS curves of the global model are rebuilt from the clients' KS curves (share of each client's bads
and goods at or above each score cut-off, interpolated on a common grid of cut-offs and weighted by the
clients' bad and good counts), and the pooled AUC, KS and deciles are read off them; the Brier score is the
row-weighted mean (exact); the same pooling of the clients' local-only baselines gives the federation gain.
A per-party table keeps each client's own numbers.

What it reveals to whom: nothing beyond the clients' reports, which the arbiter already receives (see
:mod:`silo.evaluation`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from algorithms.metrics import federation_gain

MAX_POINTS = 200


def _usable(r: Mapping[str, Any]) -> bool:
    return bool(r.get("ks_curve")) and 0 < int(r.get("n_bad", 0)) < int(r.get("n", 0))


def _curves(reports: list[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pooled (cut-offs descending, TPR, FPR) from the clients' KS curves."""
    grid = np.unique(np.concatenate([np.asarray(r["ks_curve"]["threshold"], dtype=float) for r in reports]))[::-1]
    bads = sum(int(r["n_bad"]) for r in reports)
    goods = sum(int(r["n"]) - int(r["n_bad"]) for r in reports)
    tpr, fpr = np.zeros(len(grid)), np.zeros(len(grid))
    for r in reports:
        t = np.asarray(r["ks_curve"]["threshold"], dtype=float)[::-1]
        b = np.asarray(r["ks_curve"]["cum_bad"], dtype=float)[::-1]
        g = np.asarray(r["ks_curve"]["cum_good"], dtype=float)[::-1]
        # the first KS point (nothing at or above the maximum score) has cut-off = max score and share 0
        b_at, g_at = np.interp(grid, t, b, right=0.0), np.interp(grid, t, g, right=0.0)
        tpr += int(r["n_bad"]) * b_at
        fpr += (int(r["n"]) - int(r["n_bad"])) * g_at
    tpr, fpr = tpr / bads, fpr / goods
    return grid, np.maximum.accumulate(tpr), np.maximum.accumulate(fpr)


def _downsample(n: int, k: int = MAX_POINTS) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(int))


def pooled_report(reports: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The pooled :class:`~algorithms.metrics.RiskReport`-shaped dict (see the module docstring)."""
    rs = [r for r in reports.values() if _usable(r)]
    n = sum(int(r.get("n", 0)) for r in reports.values())
    n_bad = sum(int(r.get("n_bad", 0)) for r in reports.values())
    notes = [f"{pid}: {note}" for pid, r in reports.items() for note in r.get("notes", [])
             if "population stability" not in note]
    notes.append("pooled over the clients' hold-outs: the confusion matrix and Brier score are exact; curves, "
                 "AUC, KS and deciles are interpolated from each client's downsampled KS curve")
    if not rs:
        raise ValueError("no client hold-out has both classes: nothing to pool")
    grid, tpr, fpr = _curves(rs)
    tpr = np.concatenate([[0.0], tpr, [1.0]])
    fpr = np.concatenate([[0.0], fpr, [1.0]])
    cut = np.concatenate([[grid[0]], grid, [grid[-1]]])
    auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    n_u, bad_u = sum(int(r["n"]) for r in rs), sum(int(r["n_bad"]) for r in rs)  # rows the curves cover
    pop = (tpr * bad_u + fpr * (n_u - bad_u)) / n_u
    i_ks = int(np.argmax(tpr - fpr))
    idx = np.union1d(_downsample(len(tpr)), [i_ks])
    deciles = _deciles(pop, tpr, cut, n_u, bad_u)
    th = [r["threshold"] for r in reports.values() if r.get("threshold")]
    counts = {k: sum(int(t[k]) for t in th) for k in ("tn", "fp", "fn", "tp")}
    out: dict[str, Any] = {
        "n": n, "n_bad": n_bad, "bad_rate": n_bad / n if n else 0.0, "auc": auc, "gini": 2 * auc - 1,
        "ks": float(tpr[i_ks] - fpr[i_ks]), "ks_cutoff": float(cut[i_ks]),
        "threshold": _threshold(counts, float(th[0]["threshold"]) if th else 0.5, n),
        "deciles": deciles, "roc_curve": {"fpr": fpr[idx].tolist(), "tpr": tpr[idx].tolist()},
        "ks_curve": {"population": pop[idx].tolist(), "threshold": cut[idx].tolist(), "cum_bad": tpr[idx].tolist(),
                     "cum_good": fpr[idx].tolist()},
        "brier": _weighted(reports, "brier"), "ece": None, "calibration": None,
        "psi": None, "psi_verdict": None, "psi_bins": None, "baseline": None, "federation_gain": None,
        "notes": notes}
    baselines = {pid: r["baseline"] for pid, r in reports.items() if r.get("baseline")}
    if baselines and all(_usable(b) for b in baselines.values()) and len(baselines) == len(rs):
        # every usable party has its own-data baseline on the same rows: pool it the same way
        base = pooled_report(baselines)
        base["notes"] = []
        out["baseline"] = base
        out["federation_gain"] = federation_gain(out, base)
    out["per_party"] = {pid: _party_row(r) for pid, r in sorted(reports.items())}
    return out


def _weighted(reports: Mapping[str, Mapping[str, Any]], key: str) -> float | None:
    pairs = [(int(r["n"]), float(r[key])) for r in reports.values() if r.get(key) is not None]
    total = sum(w for w, _ in pairs)
    return sum(w * v for w, v in pairs) / total if total else None


def _threshold(c: dict[str, int], threshold: float, n: int) -> dict[str, Any]:
    def ratio(a: int, b: int) -> float:
        return a / b if b else 0.0

    tp, fp, fn, tn = c["tp"], c["fp"], c["fn"], c["tn"]
    return {"threshold": threshold, "tn": tn, "fp": fp, "fn": fn, "tp": tp, "precision": ratio(tp, tp + fp),
            "recall": ratio(tp, tp + fn), "f1": ratio(2 * tp, 2 * tp + fp + fn), "accuracy": ratio(tp + tn, n),
            "specificity": ratio(tn, tn + fp), "predicted_bad_rate": ratio(tp + fp, n)}


def _deciles(pop: np.ndarray, tpr: np.ndarray, cut: np.ndarray, n: int, n_bad: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    prev_count = prev_bads = 0
    prev_cut = float(cut[0])
    overall = n_bad / n
    for k in range(1, 11):
        q = k / 10
        cum_count = round(q * n)
        cum_bads = round(float(np.interp(q, pop, tpr)) * n_bad) if k < 10 else n_bad
        cum_bads = max(cum_bads, prev_bads)
        low = float(np.interp(q, pop, cut))
        count, bads = cum_count - prev_count, cum_bads - prev_bads
        rows.append({"decile": k, "count": count, "bads": bads, "goods": count - bads,
                     "bad_rate": bads / count if count else 0.0, "min_score": low, "max_score": prev_cut,
                     "cum_count": cum_count, "cum_bads": cum_bads,
                     "cum_bad_rate": cum_bads / cum_count if cum_count else 0.0,
                     "capture": bads / n_bad, "cum_capture": cum_bads / n_bad, "cum_population": cum_count / n,
                     "lift": (bads / count) / overall if count else 0.0,
                     "cum_lift": (cum_bads / cum_count) / overall if cum_count else 0.0})
        prev_count, prev_bads, prev_cut = cum_count, cum_bads, low
    return rows


def _party_row(r: Mapping[str, Any]) -> dict[str, Any]:
    base = r.get("baseline") or {}
    row = {k: r.get(k) for k in ("n", "n_bad", "auc", "ks", "brier", "psi")}
    row["local_only_auc"] = base.get("auc")
    row["gain_over_local_auc"] = (None if r.get("auc") is None or base.get("auc") is None
                                  else float(r["auc"]) - float(base["auc"]))
    for name, v in (r.get("variants") or {}).items():  # e.g. the personalised model on the same rows
        row[f"{name}_auc"] = v.get("auc")
    row["notes"] = list(r.get("notes", []))
    return row


__all__ = ["pooled_report"]
