"""Evaluation plots (ROC, KS, gain/lift, calibration, PSI) drawn from an aggregate evaluation dict as PNG bytes.

Input is the dict of :meth:`algorithms.metrics.RiskReport.to_dict` (as produced at the guest by
:func:`silo.evaluation.evaluate_at_guest`). Figures are built with matplotlib's object API on the Agg
canvas (no pyplot global state, no display; safe in server threads).

What it reveals to whom: nothing beyond its input, which holds aggregates and downsampled curves only.
"""

from __future__ import annotations

import io
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

__all__ = ["calibration_png", "gain_lift_png", "ks_png", "psi_png", "render_plots", "roc_png"]

FEDERATED = "#1f4e79"
GUEST_ONLY = "#c55a11"
BADS = "#b22222"
GOODS = "#2e7d32"
GREY = "#8c8c8c"
DPI = 110


def _figure(width: float = 6.0, height: float = 4.3) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


def _style(ax: Any) -> None:
    ax.grid(True, color="#e3e3e3", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def roc_png(report: dict[str, Any]) -> bytes:
    """ROC curve of the model, the guest-only baseline when present, and the chance diagonal."""
    fig = _figure()
    ax = fig.add_subplot()
    roc = report["roc_curve"]
    ax.plot(roc["fpr"], roc["tpr"], color=FEDERATED, lw=2, label=f"federated model (AUC {report['auc']:.3f})")
    base = report.get("baseline")
    if base:
        ax.plot(base["roc_curve"]["fpr"], base["roc_curve"]["tpr"], color=GUEST_ONLY, lw=1.6, ls="--",
                label=f"guest-only model (AUC {base['auc']:.3f})")
    ax.plot([0, 1], [0, 1], color=GREY, lw=1, ls=":", label="random (AUC 0.500)")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="False positive rate (share of goods flagged)",
           ylabel="True positive rate (share of bads flagged)", title="ROC curve")
    ax.legend(loc="lower right", fontsize=9, frameon=False)
    _style(ax)
    return _png(fig)


def ks_png(report: dict[str, Any]) -> bytes:
    """Cumulative shares of bads and goods by population share (highest scores first), KS gap marked."""
    fig = _figure()
    ax = fig.add_subplot()
    k = report["ks_curve"]
    ax.plot(k["population"], k["cum_bad"], color=BADS, lw=2, label="cumulative share of bads")
    ax.plot(k["population"], k["cum_good"], color=GOODS, lw=2, label="cumulative share of goods")
    gaps = [b - g for b, g in zip(k["cum_bad"], k["cum_good"], strict=True)]
    i = max(range(len(gaps)), key=lambda j: abs(gaps[j]))
    x, lo, hi = k["population"][i], k["cum_good"][i], k["cum_bad"][i]
    ax.vlines(x, min(lo, hi), max(lo, hi), color="black", lw=1.4)
    ax.annotate(f"KS = {report['ks']:.3f}\nat score ≥ {report['ks_cutoff']:.4g}\n({x:.0%} of population flagged)",
                xy=(x, (lo + hi) / 2), xytext=(0.97, 0.06), textcoords="axes fraction", ha="right", va="bottom",
                fontsize=9, bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "#bbbbbb"},
                arrowprops={"arrowstyle": "->", "color": "black", "lw": 0.8})
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="Share of population (sorted by score, highest first)",
           ylabel="Cumulative share", title="Kolmogorov–Smirnov chart")
    ax.legend(loc="upper left", fontsize=9, frameon=False)
    _style(ax)
    return _png(fig)


def gain_lift_png(report: dict[str, Any]) -> bytes:
    """Left: cumulative gain (share of bads captured) by decile; right: lift and cumulative lift per decile."""
    fig = _figure(width=12.3, height=4.3)  # spans two columns: same text scale as the others
    ax1, ax2 = fig.subplots(1, 2)
    rows = report["deciles"]
    pop = [0.0] + [r["cum_population"] for r in rows]
    ax1.plot(pop, [0.0] + [r["cum_capture"] for r in rows], color=FEDERATED, lw=2, marker="o", ms=4,
             label="federated model")
    base = report.get("baseline")
    if base:
        ax1.plot([0.0] + [r["cum_population"] for r in base["deciles"]],
                 [0.0] + [r["cum_capture"] for r in base["deciles"]], color=GUEST_ONLY, lw=1.6, ls="--",
                 marker="s", ms=3, label="guest-only model")
    ax1.plot([0, 1], [0, 1], color=GREY, lw=1, ls=":", label="random")
    ax1.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="Share of population (highest scores first)",
            ylabel="Share of all bads captured", title="Cumulative gain")
    ax1.legend(loc="lower right", fontsize=9, frameon=False)
    _style(ax1)

    deciles = [r["decile"] for r in rows]
    ax2.bar(deciles, [r["lift"] for r in rows], color=FEDERATED, alpha=0.85, label="lift (decile)")
    ax2.plot(deciles, [r["cum_lift"] for r in rows], color=BADS, lw=2, marker="o", ms=4, label="cumulative lift")
    ax2.axhline(1.0, color=GREY, lw=1, ls=":")
    ax2.set(xlabel="Decile (1 = highest scores)", ylabel="Lift (bad rate / overall bad rate)", title="Lift by decile")
    ax2.set_xticks(deciles)
    ax2.legend(loc="upper right", fontsize=9, frameon=False)
    _style(ax2)
    return _png(fig)


def calibration_png(report: dict[str, Any]) -> bytes | None:
    """Reliability diagram (mean predicted vs observed bad rate per quantile bin); ``None`` without calibration."""
    rows = report.get("calibration")
    if not rows:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    pred = [r["mean_predicted"] for r in rows]
    obs = [r["observed_rate"] for r in rows]
    top = max([*pred, *obs]) * 1.1 or 1.0
    top = min(1.0, top)
    ax.plot([0, top], [0, top], color=GREY, lw=1, ls=":", label="perfect calibration")
    ece = report.get("ece")
    label = "federated model" + (f" (ECE {ece:.3f})" if ece is not None else "")
    ax.plot(pred, obs, color=FEDERATED, lw=2, marker="o", ms=5, label=label)
    base = report.get("baseline")
    if base and base.get("calibration"):
        ax.plot([r["mean_predicted"] for r in base["calibration"]], [r["observed_rate"] for r in base["calibration"]],
                color=GUEST_ONLY, lw=1.4, ls="--", marker="s", ms=3,
                label=f"guest-only model (ECE {base['ece']:.3f})")
    ax.set(xlim=(0, top), ylim=(0, top), xlabel="Mean predicted probability of bad (per bin)",
           ylabel="Observed bad rate (per bin)", title=f"Calibration ({len(rows)} quantile bins)")
    ax.legend(loc="upper left", fontsize=9, frameon=False)
    _style(ax)
    return _png(fig)


def psi_png(report: dict[str, Any]) -> bytes | None:
    """Training vs evaluation share per PSI bin (deciles of the training scores); ``None`` without PSI."""
    rows = report.get("psi_bins")
    if not rows:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    xs = [r["bin"] for r in rows]
    w = 0.4
    ax.bar([x - w / 2 for x in xs], [r["train_share"] for r in rows], width=w, color=GREY, label="training scores")
    ax.bar([x + w / 2 for x in xs], [r["eval_share"] for r in rows], width=w, color=FEDERATED,
           label="evaluation scores")
    ax.set_xticks(xs)
    ax.set(xlabel="Bin (deciles of the training scores, lowest first)", ylabel="Share of population",
           title=f"Score stability (PSI {report['psi']:.3f}, {report.get('psi_verdict')})")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    top = max(max(r["train_share"] for r in rows), max(r["eval_share"] for r in rows))
    ax.set_ylim(0, top * 1.3)  # room for the legend above the bars
    ax.legend(loc="upper center", ncol=2, fontsize=9, frameon=False)
    _style(ax)
    return _png(fig)


def training_curve_png(curve: dict[str, Any]) -> bytes | None:
    """The training curve a plug-in reported (e.g. the loss per epoch); ``None`` without one."""
    values = [float(v) for v in curve.get("values") or []]
    if not values:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    steps = list(range(1, len(values) + 1))
    ax.plot(steps, values, marker="o", color=FEDERATED)
    rising = [i for i in range(1, len(values)) if values[i] > values[i - 1]]
    if rising:
        ax.plot([steps[i] for i in rising], [values[i] for i in rising], "o", color="#c0392b", label="loss rose")
        ax.legend(fontsize=9, frameon=False)
    ax.set(xlabel="Epoch", ylabel=str(curve.get("name", "loss")), title="Training curve")
    ax.set_xticks(steps)
    _style(ax)
    return _png(fig)


def render_plots(report: dict[str, Any]) -> dict[str, bytes]:
    """PNG bytes of every plot: ``roc``, ``ks``, ``gain_lift``, and ``calibration`` / ``psi`` when available."""
    out = {"roc": roc_png(report), "ks": ks_png(report), "gain_lift": gain_lift_png(report)}
    for key, draw in (("calibration", calibration_png), ("psi", psi_png)):
        png = draw(report)
        if png is not None:
            out[key] = png
    return out
