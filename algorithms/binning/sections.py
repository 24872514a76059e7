"""Report sections of a binning result at the bank: the IV table and, per characteristic, its WOE table.

Host characteristics appear under the host's anonymous tokens (and bin ordinals) unless the host consented
to name them. The sections are JSON types for :mod:`arbiter.sections`.

What it reveals to whom: the bank sends these aggregates (bin sizes, event counts and rates, WOE, IV) to the
arbiter, which writes the job's report; nothing row-level.
"""

from __future__ import annotations

from typing import Any

from algorithms.binning.protocol import Characteristic, GuestBinning


def _label(c: Characteristic) -> str:
    return f"{c.party} · {c.key}"


def iv_section(binning: GuestBinning) -> dict[str, Any]:
    chars = sorted(binning.characteristics, key=lambda c: -c.iv)
    return {"title": "Information value by characteristic",
            "text": "IV of every characteristic of every party (host characteristics under anonymous tokens "
                    "unless the host allows its names); selected = kept by the IV selection.",
            "table": {"columns": ["party", "characteristic", "kind", "bins", "IV", "selected"],
                      "rows": [[c.party, c.key, c.kind, len(c.table.woe), c.iv, "yes" if c.selected else "no"]
                               for c in chars]},
            "bars": {"labels": [_label(c) for c in chars], "values": [c.iv for c in chars], "caption": "IV"}}


def woe_sections(binning: GuestBinning) -> dict[str, Any]:
    subs = []
    for c in binning.characteristics:
        t = c.table
        labels = c.labels or [f"bin {b}" + (" (missing)" if b == c.missing_bin else "") for b in range(len(t.woe))]
        subs.append({
            "title": f"{_label(c)} — IV {c.iv:.4f}",
            "table": {"columns": ["bin", "rows", "events", "event rate", "WOE", "IV"],
                      "rows": [[labels[b], int(t.totals[b]), int(t.events[b]), float(t.event_rate[b]),
                                float(t.woe[b]), float(t.iv_bins[b])] for b in range(len(t.woe))]},
            "bars": {"labels": labels, "values": [float(v) for v in t.woe], "caption": "WOE per bin"}})
    return {"title": "Weight of evidence per characteristic",
            "text": "WOE = ln(share of events / share of non-events); a bin without events or non-events gets "
                    "0.5 added to both counts.", "sections": subs}


def binning_sections(binning: GuestBinning) -> list[dict[str, Any]]:
    return [iv_section(binning), woe_sections(binning)]
