"""Overlap and balance figures of an observational analysis
(:class:`~hte_report.estimation.observational.ObservationalResult`): mirrored histograms of the
propensity score by arm (treated above the axis, control below), overall and within each level
of a subgroup variable, and love plots of the standardized mean differences of the propensity
model's columns before and after inverse probability weighting. Both return matplotlib figures
(no pyplot state) and take their numbers from the result's frames, so what is drawn is what was
estimated."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hte_report.errors import DataError, short

if TYPE_CHECKING:
    from hte_report.estimation.observational import ObservationalResult

ARM_COLOURS = {"treated": "#0072B2", "control": "#D55E00"}   # Okabe–Ito, as the KM curves
VERDICT_COLOURS = {"adequate": "#000000", "caution": "#E69F00", "violated": "#D55E00"}
SMD_LIMIT = 0.1


def _panels(res: ObservationalResult, modifier: str | None,
            titles=None) -> list[tuple[str, object, str]]:
    """(analysis, level, title) of the panels: all patients, then each level of ``modifier``
    (``titles(modifier, level)`` names a level's panel; default ``"modifier = level"``)."""
    out = [("All patients", "All patients", "All patients")]
    if modifier is None:
        return out
    if modifier not in res.meta.get("modifiers", []):
        raise DataError(f"{short(modifier)} is not a modifier of this analysis "
                        f"({short(res.meta.get('modifiers', []))}).")
    pos = res.positivity[res.positivity.modifier == modifier]
    return out + [(modifier, lv, titles(modifier, lv) if titles else f"{modifier} = {lv}")
                  for lv in pos.level]


def _verdict(res: ObservationalResult, analysis: str, level) -> pd.Series:
    p = res.positivity
    return p[(p.modifier == analysis) & (p.level == level)].iloc[0]


def ps_histograms(res: ObservationalResult, modifier: str | None = None, *, bins: int = 25,
                  ncols: int = 3, arm_labels: tuple[str, str] = ("Treated", "Control"),
                  titles=None):
    """Mirrored histograms of the propensity score by arm (share of the arm's rows per bin),
    one panel for all patients and one per level of ``modifier``; dashed lines at the
    positivity threshold, the level's verdict in its title."""
    from matplotlib.figure import Figure

    panels = _panels(res, modifier, titles)
    thr = float(res.meta.get("threshold", 0.05))
    n = len(panels)
    nc = min(ncols, n)
    nr = int(np.ceil(n / nc))
    fig = Figure(figsize=(2.4 * nc + 0.4, 2.0 * nr + 0.5))
    axes = fig.subplots(nr, nc, squeeze=False)
    edges = np.linspace(0, 1, bins + 1)
    for k, (analysis, level, title) in enumerate(panels):
        ax = axes[k // nc][k % nc]
        s = res.scores[res.scores.analysis == analysis]
        if analysis != "All patients":
            s = s[s.level == level]
        top = 0.0
        for arm, sign in (("treated", 1), ("control", -1)):
            e = s.ps[s.treated == (1 if arm == "treated" else 0)].to_numpy()
            if len(e) == 0:
                continue
            h, _ = np.histogram(e, edges)
            h = h / len(e)
            top = max(top, h.max())
            ax.bar(edges[:-1], sign * h, width=np.diff(edges), align="edge",
                   color=ARM_COLOURS[arm], alpha=0.75, linewidth=0,
                   label=arm_labels[0] if arm == "treated" else arm_labels[1])
        top = top or 1.0
        ax.axhline(0, color="black", linewidth=0.6)
        for x in (thr, 1 - thr):
            ax.axvline(x, color="grey", linestyle=(0, (3, 2)), linewidth=0.7)
        ax.set_xlim(0, 1)
        ax.set_ylim(-1.1 * top, 1.1 * top)
        ax.yaxis.set_major_formatter(_abs_percent())
        v = _verdict(res, analysis, level)
        ax.set_title(f"{title}\npositivity: {v.verdict}", fontsize=7,
                     color=VERDICT_COLOURS.get(v.verdict, "black"))
        ax.tick_params(labelsize=6)
        ax.set_xlabel("Propensity score", fontsize=6.5)
        if k % nc == 0:
            ax.set_ylabel("Share of arm (treated up, control down)", fontsize=6)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    for k in range(n, nr * nc):
        axes[k // nc][k % nc].set_visible(False)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=2, frameon=False, fontsize=6.5)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight()))
    return fig


def _abs_percent():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{abs(v):.0%}")


def love_plot(res: ObservationalResult, modifier: str | None = None, *, ncols: int = 3,
              limit: float = SMD_LIMIT, titles=None):
    """Standardized mean differences (treated minus control, over the unweighted pooled SD) of
    each propensity-model column, unweighted (open circles) and IPW-weighted (filled), one panel
    for all patients and one per level of ``modifier``; dashed lines at ``±limit``."""
    from matplotlib.figure import Figure

    panels = _panels(res, modifier, titles)
    b = res.balance
    terms = list(dict.fromkeys(b[b.modifier == "All patients"].term))
    if modifier is not None:
        terms += [t for t in dict.fromkeys(b[b.modifier == modifier].term) if t not in terms]
    n = len(panels)
    nc = min(ncols, n)
    nr = int(np.ceil(n / nc))
    fig = Figure(figsize=(2.6 * nc + 1.4, max(2.0, 0.16 * len(terms) + 0.9) * nr))
    axes = fig.subplots(nr, nc, squeeze=False, sharey=True)
    y = np.arange(len(terms))[::-1]
    pos = dict(zip(terms, y))
    for k, (analysis, level, title) in enumerate(panels):
        ax = axes[k // nc][k % nc]
        r = b[(b.modifier == analysis) & (b.level == level)]
        yy = np.array([pos[t] for t in r.term])
        ax.scatter(r.smd_unweighted, yy, facecolors="none", edgecolors="#555555", s=14,
                   linewidths=0.8, label="Unweighted", zorder=3)
        ax.scatter(r.smd_weighted, yy, color="#0072B2", s=14, label="IPW-weighted", zorder=4)
        for x in (-limit, limit):
            ax.axvline(x, color="grey", linestyle=(0, (3, 2)), linewidth=0.7)
        ax.axvline(0, color="black", linewidth=0.6)
        lim = max(0.25, float(np.nanmax(np.abs(r[["smd_unweighted", "smd_weighted"]].to_numpy(),
                                                  ))) * 1.1 if len(r) else 0.25)
        ax.set_xlim(-lim, lim)
        ax.set_yticks(y, terms)
        ax.tick_params(labelsize=6)
        ax.set_title(title, fontsize=7)
        ax.set_xlabel("Standardized mean difference", fontsize=6.5)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    for k in range(n, nr * nc):
        axes[k // nc][k % nc].set_visible(False)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=2, frameon=False, fontsize=6.5)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight()))
    return fig


def balance_summary(res: ObservationalResult, limit: float = SMD_LIMIT) -> pd.DataFrame:
    """Per analysis and level: the largest absolute SMD before and after weighting and the
    number of columns with |SMD| above ``limit`` after weighting."""
    b = res.balance.assign(abs_un=res.balance.smd_unweighted.abs(),
                           abs_w=res.balance.smd_weighted.abs())
    g = b.groupby(["modifier", "level"], sort=False)
    return pd.DataFrame({
        "max_abs_smd_unweighted": g.abs_un.max(),
        "max_abs_smd_weighted": g.abs_w.max(),
        "n_above_limit_weighted": g.abs_w.apply(lambda s: int((s > limit).sum())),
    }).reset_index()
