"""Generic report sections that a plug-in's result provides (tables and bar charts), rendered as HTML.

A section is JSON types only (it travels from a silo to the arbiter through the codec)::

    {"title": "Information value", "text": "...",            # optional text (escaped)
     "table": {"columns": ["characteristic", "IV"], "rows": [["x0", 0.18], ...]},   # optional
     "bars": {"labels": ["x0", ...], "values": [0.18, ...], "caption": "IV per characteristic"},  # optional
     "sections": [ ... ]}                                    # optional nested sections (h3)

Bars are drawn with inline CSS (no script, no image), negative values to the left of the axis. Nothing here
knows any algorithm: the plug-in decides what its sections say (``Algorithm.report_sections``).

What it reveals to whom: exactly its input, into the report the arbiter writes.
"""

from __future__ import annotations

import html
import math
from typing import Any

Section = dict[str, Any]

CSS = """
.bars{margin:6px 0 14px;font-size:12px}
.bars .bar{display:grid;grid-template-columns:minmax(90px,260px) 1fr 80px;gap:8px;align-items:center;margin:2px 0}
.bars .lab{text-align:right;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.bars .track{position:relative;height:14px;background:#f2f4f7;border-radius:2px}
.bars .fill{position:absolute;top:0;height:14px;background:#1f4e79;border-radius:2px}
.bars .fill.neg{background:#b22222}
.bars .axis{position:absolute;top:-2px;bottom:-2px;border-left:1px solid #777}
.bars .val{text-align:right;font-variant-numeric:tabular-nums}
.bars figcaption{font-size:12px;color:#555}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _cell(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return _e("–" if v is None else v)
    if isinstance(v, int):
        return _e(f"{v:,}")
    if isinstance(v, float):
        return _e("–" if not math.isfinite(v) else f"{v:.4f}" if abs(v) < 1000 else f"{v:,.1f}")
    return _e(v)


def _table(table: dict[str, Any]) -> str:
    columns = [str(c) for c in table.get("columns", [])]
    rows = table.get("rows", [])
    text = [isinstance(v, str) for v in (rows[0] if rows else [])]
    head = "".join(f'<th class="l">{_e(c)}</th>' if i < len(text) and text[i] else f"<th>{_e(c)}</th>"
                   for i, c in enumerate(columns))
    body = "".join("<tr>" + "".join(f'<td class="l">{_cell(v)}</td>' if isinstance(v, str) else f"<td>{_cell(v)}</td>"
                                    for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _bars(bars: dict[str, Any]) -> str:
    labels = [str(v) for v in bars.get("labels", [])]
    values = [float(v) if isinstance(v, int | float) and math.isfinite(v) else 0.0 for v in bars.get("values", [])]
    if not values:
        return ""
    lo, hi = min(0.0, *values), max(0.0, *values)
    span = (hi - lo) or 1.0
    zero = (0.0 - lo) / span * 100
    out = ['<figure class="bars">']
    for label, v in zip(labels, values, strict=False):
        left = min(zero, (v - lo) / span * 100)
        width = abs(v) / span * 100
        cls = "fill neg" if v < 0 else "fill"
        out.append(f'<div class="bar"><div class="lab" title="{_e(label)}">{_e(label)}</div>'
                   f'<div class="track"><div class="{cls}" style="left:{left:.2f}%;width:{width:.2f}%"></div>'
                   f'<div class="axis" style="left:{zero:.2f}%"></div></div><div class="val">{_cell(v)}</div></div>')
    if bars.get("caption"):
        out.append(f"<figcaption>{_e(bars['caption'])}</figcaption>")
    out.append("</figure>")
    return "".join(out)


def render_sections(sections: list[Section], level: int = 2) -> str:
    """HTML of ``sections`` (``<h2>`` titles, nested ones ``<h3>``)."""
    out = []
    for s in sections:
        tag = f"h{min(level, 4)}"
        if s.get("title"):
            out.append(f"<{tag}>{_e(s['title'])}</{tag}>")
        if s.get("text"):
            out.append(f"<p>{_e(s['text'])}</p>")
        inner = []
        if isinstance(s.get("table"), dict):
            inner.append(_table(s["table"]))
        if isinstance(s.get("bars"), dict):
            inner.append(_bars(s["bars"]))
        if inner:
            out.append('<div class="row">' + "".join(f"<div>{x}</div>" for x in inner) + "</div>")
        if s.get("sections"):
            out.append(render_sections(list(s["sections"]), level + 1))
    return "".join(out)


def _ci(m: dict[str, Any], key: str) -> str:
    ci = (m.get("ci") or {}).get(key)
    return f"[{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "–"


def evaluation_sections(metrics: dict[str, Any]) -> list[Section]:
    """Sections every evaluation report gets from the label holder's aggregates: bootstrap intervals of AUC
    and KS, and, for an out-of-time evaluation (``metrics["out_of_time"]``), holdout vs the new sample side
    by side, the score PSI and each party's characteristic stability (CSI)."""
    out: list[Section] = []
    oot = metrics.get("out_of_time")
    if metrics.get("ci") and not oot:
        level = metrics["ci"].get("level", 0.95)
        out.append({"title": f"Bootstrap {level:.0%} intervals",
                    "text": f"{metrics['ci'].get('resamples')} resamples of the held-out rows with replacement.",
                    "table": {"columns": ["metric", "estimate", "interval"],
                              "rows": [["AUC", metrics.get("auc"), _ci(metrics, "auc")],
                                       ["KS", metrics.get("ks"), _ci(metrics, "ks")]]}})
    if oot:
        new = oot.get("metrics", {})
        name = str(oot.get("source", "new sample"))
        rows = [["rows", metrics.get("n"), "", new.get("n"), ""],
                ["bad rate", metrics.get("bad_rate"), "", new.get("bad_rate"), ""],
                ["AUC", metrics.get("auc"), _ci(metrics, "auc"), new.get("auc"), _ci(new, "auc")],
                ["KS", metrics.get("ks"), _ci(metrics, "ks"), new.get("ks"), _ci(new, "ks")],
                ["Gini", metrics.get("gini"), "", new.get("gini"), ""],
                ["Brier", metrics.get("brier"), "", new.get("brier"), ""],
                ["score PSI vs training", metrics.get("psi"), "", new.get("psi"), ""]]
        out.append({"title": f"Training holdout vs out-of-time sample '{name}'",
                    "text": "Same model, the training job's held-out rows and the new sample (aligned by its own "
                            "PSI); intervals: percentile bootstrap.",
                    "table": {"columns": ["metric", "holdout", "interval", name, "interval"], "rows": rows}})
        stab = oot.get("stability") or {}
        subs = []
        for party, csi in stab.items():
            items = sorted(csi.items(), key=lambda kv: -(kv[1] if isinstance(kv[1], int | float) else 0))
            subs.append({"title": f"{party}",
                         "table": {"columns": ["characteristic", "CSI"], "rows": [[k, v] for k, v in items]},
                         "bars": {"labels": [k for k, _ in items], "values": [v for _, v in items],
                                  "caption": "CSI (≥ 0.1 watch, ≥ 0.25 shifted)"}})
        if subs:
            out.append({"title": "Characteristic stability (CSI), training vs out-of-time",
                        "text": "Computed by each party on its own characteristics (a host names them only if it "
                                "allows it).", "sections": subs})
    return out


def check_sections(sections: Any, where: str) -> list[Section]:
    """Refuse anything but a list of section dicts (a silo's reply is checked before it is rendered)."""
    if not isinstance(sections, list) or not all(isinstance(s, dict) for s in sections):
        raise ValueError(f"{where}: report sections must be a list of dicts")
    return sections
