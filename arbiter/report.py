"""Evaluation reports for analysts and model validators: self-contained HTML, JSON, and a terminal table.

* :func:`write_report` writes ``<stem>.html`` (opens offline: CSS inline, plots as base64 PNG, no script,
  no external link) and ``<stem>.json`` (the same numbers plus the model card) into a folder.
* :func:`render_html` returns the HTML text; :func:`summary_table` a plain-text summary for the terminal.

Input is the aggregate evaluation dict of :meth:`algorithms.metrics.RiskReport.to_dict` (a ``RiskReport``
is accepted too) and a model card dict. Recognised model-card keys (all optional, any other key is shown
as well): ``name, algorithm, job_id, model_id, trained_at, dataset, parties`` (dict guest/hosts/arbiter),
``features_per_party`` (dict party → count), ``parameters`` (dict), ``training_time_s``, ``key_bits``,
``privacy_notes`` (str or list of str).

What it reveals to whom: the report contains exactly its inputs (aggregate metrics, downsampled curves,
the model card); it is written where the caller says (the arbiter's or the guest's report folder).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import math
from pathlib import Path
from typing import Any

from algorithms.metrics import RiskReport
from arbiter.plots import render_plots, training_curve_png
from arbiter.sections import CSS as SECTIONS_CSS
from arbiter.sections import Section, render_sections

__all__ = ["render_html", "summary_table", "write_report"]

SCHEMA = "fedrisk.evaluation/1"

_CARD_LABELS = {
    "name": "Model", "algorithm": "Algorithm", "job_id": "Job", "model_id": "Model id", "trained_at": "Trained at",
    "dataset": "Data", "parties": "Parties", "features_per_party": "Features per party",
    "parameters": "Parameters", "training_time_s": "Training time", "key_bits": "Paillier key size",
    "privacy_notes": "Privacy notes",
}

_CSS = """
*{box-sizing:border-box}
body{font-family:"DejaVu Sans","Helvetica Neue",Arial,sans-serif;color:#1d1d1d;background:#fff;margin:0;
 font-size:14px;line-height:1.45}
main{max-width:1160px;margin:0 auto;padding:28px 32px 48px}
header{border-bottom:3px solid #1f4e79;padding-bottom:10px;margin-bottom:20px}
h1{font-size:24px;margin:0 0 4px;color:#1f4e79}
h2{font-size:18px;margin:30px 0 10px;color:#1f4e79;border-bottom:1px solid #d6dde6;padding-bottom:4px}
h3{font-size:15px;margin:16px 0 6px}
.sub{color:#555;font-size:13px}
.kpis{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px;margin:8px 0 6px}
.kpi{border:1px solid #d6dde6;border-radius:6px;padding:8px 12px;background:#f7f9fc}
.kpi .label{font-size:12px;color:#555;text-transform:uppercase;letter-spacing:.04em}
.kpi .value{font-size:22px;font-weight:bold;color:#1f4e79}
.kpi .note{font-size:12px;color:#555}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}
th,td{border:1px solid #d0d7de;padding:4px 9px;text-align:right;white-space:nowrap}
th{background:#eef2f7;font-weight:600}
td.l,th.l{text-align:left;white-space:normal}
tbody tr:nth-child(even) td{background:#fafbfc}
.pos{color:#2e7d32;font-weight:600}.neg{color:#b22222;font-weight:600}
.plots{display:grid;grid-template-columns:1fr 1fr;gap:16px}
figure{margin:0;border:1px solid #e1e4e8;border-radius:6px;padding:6px;background:#fff}
figure.wide{grid-column:1 / span 2}
figure img{width:100%;height:auto;display:block}
figcaption{font-size:12px;color:#555;padding:4px 4px 0}
.row{display:flex;flex-wrap:wrap;gap:28px;align-items:flex-start}
.notes{background:#fff8e6;border-left:4px solid #e0a800;padding:8px 12px;margin:8px 0}
.privacy{background:#eef6ee;border-left:4px solid #2e7d32;padding:8px 12px;margin:8px 0}
footer{margin-top:36px;color:#777;font-size:12px;border-top:1px solid #e1e4e8;padding-top:8px}
@media print{
 main{max-width:none;padding:0}
 body{font-size:11px}
 .plots{grid-template-columns:1fr 1fr}
 figure,table,.kpis,.card{break-inside:avoid;page-break-inside:avoid}
 h2{break-after:avoid;page-break-after:avoid}
}
"""


# ---------------------------------------------------------------------------------------------------------
# formatting helpers


def _as_dict(report: RiskReport | dict[str, Any]) -> dict[str, Any]:
    return report.to_dict() if isinstance(report, RiskReport) else report


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(x: Any, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float) and not math.isfinite(x):
        return "∞" if x > 0 else "−∞"
    return f"{x:.{digits}f}"


def _pct(x: Any, digits: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f} %"


def _score(x: Any) -> str:
    if x is None:
        return "–"
    return f"{x:.6f}" if abs(x) < 1e-3 else f"{x:.4g}"  # no scientific notation for near-zero scores


def _signed(x: float, digits: int = 3, better_if_negative: bool = False) -> str:
    cls = "pos" if (x < 0 if better_if_negative else x > 0) else ("neg" if x != 0 else "")
    return f'<span class="{cls}">{x:+.{digits}f}</span>'


def _table(headers: list[str], rows: list[list[str]], left: int = 0, caption: str | None = None) -> str:
    """HTML table; the first ``left`` columns are left-aligned; cells are already-escaped HTML."""
    head = "".join(f'<th class="l">{h}</th>' if i < left else f"<th>{h}</th>" for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f'<td class="l">{c}</td>' if i < left else f"<td>{c}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    cap = f"<caption>{caption}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# ---------------------------------------------------------------------------------------------------------
# HTML sections


def _kpis(r: dict[str, Any]) -> str:
    cards = [
        ("AUC", _num(r["auc"]), "area under ROC"),
        ("Gini", _num(r["gini"]), "2·AUC − 1"),
        ("KS", _num(r["ks"]), f"at score ≥ {_score(r['ks_cutoff'])}"),
        ("Brier", _num(r.get("brier"), 4), "mean squared error"),
        ("ECE", _num(r.get("ece"), 4), "expected calibration error"),
        ("Mean PD", _pct(r.get("mean_predicted"), 2), f"observed bad rate {_pct(r['bad_rate'], 2)}"),
        ("PSI", _num(r.get("psi"), 4), r.get("psi_verdict") or "no training scores"),
        ("Population", _num(r["n"]), f"{_num(r['n_bad'])} bads ({_pct(r['bad_rate'])})"),
    ]
    gain = r.get("federation_gain") or {}
    if "auc" in gain:
        alone = "own data only" if r.get("per_party") else "guest-only"
        cards.insert(1, ("AUC gain", f"{gain['auc']['delta']:+.3f}", f"vs {alone} {gain['auc']['guest_only']:.3f}"))
    return '<div class="kpis">' + "".join(
        f'<div class="kpi"><div class="label">{_e(a)}</div><div class="value">{_e(b)}</div>'
        f'<div class="note">{_e(c)}</div></div>' for a, b, c in cards) + "</div>"


def _gain_section(r: dict[str, Any]) -> str:
    gain = r.get("federation_gain")
    if not gain:
        return ""
    names = {"auc": "AUC", "gini": "Gini", "ks": "KS", "brier": "Brier score"}
    rows = [[names.get(k, k), _num(v["federated"], 4), _num(v["guest_only"], 4),
             _signed(v["delta"], 4, better_if_negative=(k == "brier"))] for k, v in gain.items()]
    if r.get("per_party"):  # several parties, each with its own rows and its own-data model
        text = ("The same metrics, pooled the same way, for the models each party trains on its own rows only: "
                "the difference is what the other parties' rows add")
        alone = "Own data only"
    else:
        model = r.get("baseline_model") or "a model trained on the guest's own features only"
        text = (f"The same metrics for {model[0].lower() + model[1:]}, on the same evaluation rows: the "
                "difference is what the hosts' data adds")
        alone = "Guest-only model"
    return (f"<h2>Federation gain</h2><p>{text} (for the Brier score a negative difference is an improvement).</p>"
            + _table(["Metric", "Federated model", alone, "Difference"], rows, left=1))


def _per_party_section(r: dict[str, Any]) -> str:
    """Per-silo table when the metrics were pooled over several metric parties (each on its own hold-out)."""
    per = r.get("per_party")
    if not isinstance(per, dict) or not per:
        return ""
    extra = sorted({k for p in per.values() for k in p if k.endswith("_auc")
                    and k not in ("local_only_auc", "gain_over_local_auc")})
    rows = [[_e(pid), _num(p.get("n")), _num(p.get("n_bad")), _num(p.get("auc"), 4), _num(p.get("ks"), 4),
             _num(p.get("brier"), 4), _num(p.get("local_only_auc"), 4),
             _signed(p["gain_over_local_auc"], 4) if p.get("gain_over_local_auc") is not None else "–",
             *(_num(p.get(k), 4) for k in extra), _e("; ".join(p.get("notes") or []))] for pid, p in per.items()]
    return ("<h2>Per party</h2><p>Each party evaluated the model on its own held-out rows and sent aggregates only; "
            "the headline metrics above pool these hold-outs. <i>Own data only</i> is a model the party trains on "
            "its own training rows alone: the gain is what the federation adds for that party.</p>"
            + _table(["Party", "Rows", "Bads", "AUC", "KS", "Brier", "Own data only AUC", "Gain",
                      *(_e(k[:-4].replace("_", " ").capitalize() + " AUC") for k in extra), "Notes"], rows, left=1))


def _plots_section(r: dict[str, Any], card: dict[str, Any] | None = None) -> str:
    pngs = render_plots(r)
    curve = training_curve_png((card or {}).get("training_curve") or {})
    if curve is not None:
        pngs["training"] = curve
    captions = {
        "roc": "ROC curve: share of bads vs share of goods flagged as the cut-off is lowered.",
        "ks": "KS chart: the largest gap between the cumulative shares of bads and goods.",
        "gain_lift": "Gain and lift by decile of the score (decile 1 = highest scores).",
        "calibration": "Calibration: mean predicted probability vs observed bad rate in quantile bins.",
        "psi": "Stability: share of training and evaluation scores in each decile bin of the training scores.",
        "training": "Training curve as the arbiter saw it (red: an epoch whose loss rose).",
    }
    alts = {"roc": "ROC curve", "ks": "KS chart", "gain_lift": "Gain and lift chart", "calibration": "Calibration plot",
            "psi": "Score stability chart", "training": "Training curve"}
    figs = []
    for key in ("roc", "ks", "gain_lift", "calibration", "psi", "training"):
        if key not in pngs:
            continue
        data = base64.b64encode(pngs[key]).decode("ascii")
        cls = ' class="wide"' if key == "gain_lift" else ""
        figs.append(f'<figure{cls} id="plot-{key}"><img alt="{alts[key]}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{_e(captions[key])}</figcaption></figure>")
    return '<h2>Charts</h2><div class="plots">' + "".join(figs) + "</div>"


def _decile_section(r: dict[str, Any]) -> str:
    headers = ["Decile", "Count", "Bads", "Goods", "Bad rate", "Score range", "Capture", "Cum. capture (gain)",
               "Cum. bad rate", "Lift", "Cum. lift"]
    rows = [[str(d["decile"]), _num(d["count"]), _num(d["bads"]), _num(d["goods"]), _pct(d["bad_rate"]),
             f"{_score(d['min_score'])} – {_score(d['max_score'])}", _pct(d["capture"]), _pct(d["cum_capture"]),
             _pct(d["cum_bad_rate"]), _num(d["lift"], 2), _num(d["cum_lift"], 2)] for d in r["deciles"]]
    rows.append(["<b>All</b>", f"<b>{_num(r['n'])}</b>", f"<b>{_num(r['n_bad'])}</b>",
                 f"<b>{_num(r['n'] - r['n_bad'])}</b>", f"<b>{_pct(r['bad_rate'])}</b>", "", "100.0 %", "", "",
                 "1.00", ""])
    return ("<h2>Lift and gain by decile</h2><p>Evaluation rows sorted by score, highest first, in groups of equal "
            "size. Lift = bad rate of the group / overall bad rate.</p>" + _table(headers, rows))


def _threshold_section(r: dict[str, Any]) -> str:
    t = r["threshold"]
    cm = _table(["", "Predicted good", "Predicted bad", "Total"], [
        ["<b>Actual good</b>", _num(t["tn"]), _num(t["fp"]), _num(t["tn"] + t["fp"])],
        ["<b>Actual bad</b>", _num(t["fn"]), _num(t["tp"]), _num(t["fn"] + t["tp"])],
        ["<b>Total</b>", _num(t["tn"] + t["fn"]), _num(t["fp"] + t["tp"]), _num(r["n"])],
    ], left=1)
    stats = _table(["Measure", "Value"], [
        ["Precision (bads among flagged)", _pct(t["precision"])],
        ["Recall (bads flagged)", _pct(t["recall"])],
        ["F1", _num(t["f1"])],
        ["Accuracy", _pct(t["accuracy"])],
        ["Specificity (goods passed)", _pct(t["specificity"])],
        ["Flagged share of population", _pct(t["predicted_bad_rate"])],
    ], left=1)
    return (f"<h2>Confusion matrix at threshold {_score(t['threshold'])}</h2>"
            f"<p>A score ≥ {_score(t['threshold'])} is predicted bad.</p>"
            f'<div class="row"><div>{cm}</div><div>{stats}</div></div>')


def _calibration_section(r: dict[str, Any]) -> str:
    rows_in = r.get("calibration")
    if not rows_in:
        return ""
    rows = [[str(c["bin"]), f"{_score(c['lower'])} – {_score(c['upper'])}", _num(c["count"]), _num(c["bads"]),
             _num(c["mean_predicted"], 4), _num(c["observed_rate"], 4),
             _signed(c["observed_rate"] - c["mean_predicted"], 4)] for c in rows_in]
    return (f"<h2>Calibration</h2><p>Brier score {_num(r.get('brier'), 4)}; expected calibration error "
            f"ECE = Σ (n<sub>b</sub>/N)·|predicted − observed| = {_num(r.get('ece'), 4)}.</p>"
            + _table(["Bin", "Score range", "Count", "Bads", "Mean predicted", "Observed bad rate",
                      "Observed − predicted"], rows))


def _psi_section(r: dict[str, Any]) -> str:
    if r.get("psi") is None:
        return ""
    rows = [[str(b["bin"]), "−∞" if b["lower"] is None else _score(b["lower"]),
             "+∞" if b["upper"] is None else _score(b["upper"]), _num(b["train_count"]), _pct(b["train_share"]),
             _num(b["eval_count"]), _pct(b["eval_share"]), _num(b["contribution"], 5)] for b in r["psi_bins"]]
    return ("<h2>Population stability</h2>"
            f"<p>PSI = Σ (a − e)·ln(a / e) = <b>{_num(r['psi'], 4)}</b> ({_e(r.get('psi_verdict'))}), where e and a "
            "are the shares of training and evaluation scores in each decile bin of the training scores (shares "
            "floored at 0.0001). Reading: &lt; 0.10 stable, 0.10–0.25 moderate shift, &gt; 0.25 significant "
            "shift.</p>"
            + _table(["Bin", "From (>)", "To (≤)", "Training count", "Training share", "Evaluation count",
                      "Evaluation share", "Contribution"], rows))


def _card_value(key: str, value: Any) -> str:
    if key == "training_time_s" and isinstance(value, int | float):
        return _e(f"{value:,.1f} s")
    if key == "key_bits" and isinstance(value, int):
        return _e(f"{value} bits")
    if key == "features_per_party" and isinstance(value, dict):
        lines = [f"{_e(k)}: {_e(v)}" for k, v in value.items()]
        if all(isinstance(v, int) for v in value.values()):
            lines.append(f"total: {sum(value.values())}")
        return "<br>".join(lines)
    if key == "parties" and isinstance(value, dict):
        return "<br>".join(f"{_e(k)}: {_e(', '.join(map(str, v)) if isinstance(v, list | tuple) else v)}"
                           for k, v in value.items())
    if isinstance(value, dict):
        return _table(["Parameter", "Value"], [[_e(k), _e(_fmt_plain(v))] for k, v in value.items()], left=2)
    if isinstance(value, list | tuple):
        if key == "privacy_notes":
            return "<ul>" + "".join(f"<li>{_e(v)}</li>" for v in value) + "</ul>"
        return _e(", ".join(map(str, value)))
    return _e(value)


def _fmt_plain(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list | tuple):
        return ", ".join(map(str, v))
    return str(v)


def _card_section(card: dict[str, Any]) -> str:
    if not card:
        return "<h2>Model card</h2><p>No model card given.</p>"
    keys = [k for k in _CARD_LABELS if k in card] + [k for k in card if k not in _CARD_LABELS
                                                      and k != "training_curve"]  # plotted in the charts
    rows = [[f"<b>{_e(_CARD_LABELS.get(k, k.replace('_', ' ').capitalize()))}</b>", _card_value(k, card[k])]
            for k in keys]
    return '<h2>Model card</h2><div class="card">' + _table(["Field", "Value"], rows, left=2) + "</div>"


def _ledger_section(ledgers: dict[str, Any] | None) -> str:
    """Per party: what it received in the job, grouped by the plug-in's declared disclosures."""
    if not ledgers:
        return ""
    parts = ['<h2>Privacy ledger</h2><p>Every message each party received in this job, counted under the '
             "disclosure its algorithm declares for it (kind: ciphertext under a key it does not hold, masked "
             "residues, aggregates, public parameters, row-level values). <b>Undeclared</b> messages would be a "
             "bug and are flagged.</p>"]
    for party, summary in ledgers.items():
        if not summary:
            continue
        kinds = ", ".join(f"{k}: {v['messages']:,} ({_bytes(v['bytes'])})"
                          for k, v in sorted(summary["by_kind"].items()))
        flag = (f' <b class="bad">{summary["undeclared"]} undeclared</b>' if summary.get("undeclared") else "")
        rows = [[_e(row["tag"]), _e(row["sender"]), _e(row["kind"]), _e(row["what"]), f"{row['messages']:,}",
                 _bytes(row["bytes"])] for row in summary["by_disclosure"]]
        parts.append(f"<h3>{_e(party)} ({_e(summary.get('role', ''))})</h3><p>{summary['messages']:,} messages, "
                     f"{_bytes(summary['bytes'])}; {_e(kinds)}{flag}</p>")
        parts.append(_table(["tags", "from", "kind", "what it may learn", "messages", "bytes"], rows, left=4))
    return "".join(parts)


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _warnings_html(warnings: list[str] | None) -> str:
    """Training problems model risk must read first (did not converge, the loss rose)."""
    if not warnings:
        return ""
    return ('<div class="warning" style="border:2px solid #c0392b;background:#fdecea;padding:0.6em 1em;'
            'margin:1em 0"><b>Warning: check this model before use.</b><ul>'
            + "".join(f"<li>{_e(w)}</li>" for w in warnings) + "</ul></div>")


def render_html(report: RiskReport | dict[str, Any], model_card: dict[str, Any] | None = None,
                title: str | None = None, ledgers: dict[str, Any] | None = None,
                sections: list[Section] | None = None) -> str:
    """The complete, self-contained HTML page for one evaluation (see module docstring); ``sections``: the
    plug-in's own sections (:mod:`arbiter.sections`), after the metrics. An empty ``report`` (a job without
    an evaluation stage) gives a page of the sections and the model card only."""
    r = _as_dict(report)
    card = model_card or {}
    extra = render_sections(sections or [])
    if not r:
        return _page(title or f"Report: {card.get('name') or card.get('algorithm') or 'job'}",
                     extra + _card_section(card))
    name = card.get("name") or card.get("algorithm") or "risk model"
    title = title or f"Evaluation report: {name}"
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    notes = r.get("notes") or []
    notes_html = ('<div class="notes"><b>Notes.</b><ul>' + "".join(f"<li>{_e(n)}</li>" for n in notes)
                  + "</ul></div>") if notes else ""
    sub = [f"Generated {stamp}", f"{_num(r['n'])} evaluation rows, {_num(r['n_bad'])} bads ({_pct(r['bad_rate'])})"]
    if card.get("job_id"):
        sub.insert(0, f"job {card['job_id']}")
    if r.get("evaluation_set_sha256"):
        sub.append(f"evaluation set {str(r['evaluation_set_sha256'])[:16]}")
    who = ("each party on its own held-out rows, pooled at the arbiter" if r.get("per_party")
           else "the label holder (guest)")
    privacy = ('<div class="privacy"><b>What this report contains.</b> Only aggregate statistics computed by '
               f"{who}: counts and rates per group, score quantiles and curves downsampled to at "
               f"most {max(len(r['roc_curve']['fpr']), len(r['ks_curve']['population']))} points. No customer "
               "id, label or individual score is included.</div>")
    body = "".join([
        f"<header><h1>{_e(title)}</h1><div class=\"sub\">{_e(' · '.join(sub))}</div></header>",
        _warnings_html(card.get("training_warnings")),
        "<h2>Headline metrics</h2>", _kpis(r), notes_html, _gain_section(r), _per_party_section(r),
        _plots_section(r, card),
        _decile_section(r), _threshold_section(r), _calibration_section(r), _psi_section(r), extra,
        _card_section(card), _ledger_section(ledgers), privacy,
        f"<footer>fedrisk evaluation report · schema {SCHEMA} · {stamp}</footer>",
    ])
    return _page(title, body, header=False)


def _page(title: str, body: str, header: bool = True) -> str:
    if header:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        body = (f"<header><h1>{_e(title)}</h1><div class=\"sub\">Generated {_e(stamp)}</div></header>{body}"
                f"<footer>fedrisk report · schema {SCHEMA} · {stamp}</footer>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{_CSS}{SECTIONS_CSS}</style></head><body><main>{body}</main></body>"
            "</html>\n")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, tuple | set):
        return list(obj)
    return str(obj)


def write_report(out_dir: str | Path, report: RiskReport | dict[str, Any], model_card: dict[str, Any] | None = None,
                 *, stem: str = "report", title: str | None = None, ledgers: dict[str, Any] | None = None,
                 sections: list[Section] | None = None
                 ) -> tuple[Path, Path]:
    """Write ``<out_dir>/<stem>.html`` and ``<out_dir>/<stem>.json``; return ``(html_path, json_path)``.

    The JSON holds ``{"schema", "generated_at", "model_card", "metrics"[, "privacy_ledger"]}`` where
    ``metrics`` is the report dict unchanged (strict JSON: no NaN/inf) and ``privacy_ledger`` each party's
    ledger summary (:mod:`algorithms.ledger`). ``out_dir`` is created if needed; files are overwritten.
    """
    r = _as_dict(report)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html_path = out / f"{stem}.html"
    json_path = out / f"{stem}.json"
    html_path.write_text(render_html(r, model_card, title, ledgers, sections), encoding="utf-8")
    doc: dict[str, Any] = {"schema": SCHEMA, "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                           "model_card": model_card or {}, "metrics": r}
    if ledgers:
        doc["privacy_ledger"] = ledgers
    if sections:
        doc["sections"] = sections
    json_path.write_text(json.dumps(doc, indent=1, allow_nan=False, default=_json_default, ensure_ascii=False)
                         + "\n", encoding="utf-8")
    return html_path, json_path


# ---------------------------------------------------------------------------------------------------------
# terminal


def _text_table(headers: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths,
                                                                                              strict=True)))

    return [line(headers), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def summary_table(report: RiskReport | dict[str, Any]) -> str:
    """Plain-text summary (aligned columns, no colour codes): headline metrics, gain vs guest-only, deciles."""
    r = _as_dict(report)
    base = r.get("baseline")
    lines = [f"Evaluation: {_num(r['n'])} rows, {_num(r['n_bad'])} bads ({_pct(r['bad_rate'])})", ""]
    metrics = [("AUC", "auc", 4), ("Gini", "gini", 4), ("KS", "ks", 4), ("Brier", "brier", 4), ("ECE", "ece", 4)]
    if base:
        rows = []
        for label, key, d in metrics:
            a, b = r.get(key), base.get(key)
            rows.append([label, _num(a, d), _num(b, d), "–" if a is None or b is None else f"{a - b:+.{d}f}"])
        lines += _text_table(["metric", "federated", "guest-only", "delta"], rows)
    else:
        lines += _text_table(["metric", "value"], [[label, _num(r.get(key), d)] for label, key, d in metrics])
    lines.append("")
    lines.append(f"KS cut-off: score >= {_score(r['ks_cutoff'])}")
    if r.get("psi") is not None:
        lines.append(f"PSI (train vs evaluation scores): {r['psi']:.4f} ({r.get('psi_verdict')})")
    t = r["threshold"]
    lines.append(f"At threshold {_score(t['threshold'])}: TP {t['tp']:,}  FP {t['fp']:,}  FN {t['fn']:,}  "
                 f"TN {t['tn']:,}  precision {_pct(t['precision'])}  recall {_pct(t['recall'])}  F1 {t['f1']:.3f}")
    lines.append("")
    rows = [[str(d["decile"]), _num(d["count"]), _num(d["bads"]), _pct(d["bad_rate"]), _pct(d["cum_capture"]),
             _num(d["lift"], 2), _num(d["cum_lift"], 2)] for d in r["deciles"]]
    lines += _text_table(["decile", "count", "bads", "bad rate", "cum gain", "lift", "cum lift"], rows)
    for note in r.get("notes") or []:
        lines.append(f"note: {note}")
    return "\n".join(lines)
