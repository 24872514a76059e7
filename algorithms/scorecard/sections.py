"""Report sections of a scorecard at the bank: scale, the bank's points table, hosts' tables where shown,
then the binning sections (IV and WOE tables).

What it reveals to whom: the bank sends these to the arbiter, which writes the report: its own points
table, a host's table only if the host allowed the bank to see it, the IV/WOE aggregates.
"""

from __future__ import annotations

from typing import Any

from algorithms.binning.sections import binning_sections
from algorithms.scorecard.points import PointsTable
from algorithms.scorecard.roles import ScorecardGuestPart


def _points(table: PointsTable) -> dict[str, Any]:
    rows = [[r["characteristic"], r["bin"], r["woe"] if r["woe"] != "" else None, r["points"]] for r in table.rows()]
    return {"title": f"Points table — {table.party}",
            "table": {"columns": ["characteristic", "bin", "WOE", "points"], "rows": rows}}


def scorecard_sections(part: ScorecardGuestPart) -> list[dict[str, Any]]:
    s = part.scale
    scale = {"title": "Scorecard",
             "text": f"score = offset + factor·ln(good:bad odds); {s.base_score:g} points at odds {s.base_odds:g}:1, "
                     f"{s.pdo:g} points to double the odds (factor {s.factor:.4f}, offset {s.offset:.4f}). "
                     "Each party keeps its own points table; the bank sees totals and per-party subtotals.",
             "sections": [_points(part.table)]}
    for host, table in part.host_tables.items():
        scale["sections"].append(_points(table) if table is not None else
                                 {"title": f"Points table — {host}",
                                  "text": f"withheld: {host} did not allow its points table to be shown"})
    return [scale, *binning_sections(part.binning)]
