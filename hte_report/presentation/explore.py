"""Figures of the exploratory causal forest (:class:`hte_report.exploratory.ExploreResult`):
the CATE distribution by pre-specified subgroup, the GATES plot, the TOC curve and variable
importance. Every figure says "Exploratory" in its title."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from hte_report.core.format import clean_label

if TYPE_CHECKING:
    from hte_report.exploratory.result import ExploreResult

__all__ = ["cate_by_subgroup_plot", "effect_name", "gates_plot", "importance_plot", "toc_plot"]

_BLUE, _ORANGE, _GREY = "#0072B2", "#D55E00", "#666666"
_TAG = "Exploratory (hypothesis-generating)"
# Matplotlib 3.10 replaced boxplot's vert= by orientation= (vert deprecated in 3.11)
_HORIZONTAL = ({"orientation": "horizontal"}
               if tuple(int(x) for x in matplotlib.__version__.split(".")[:2]) >= (3, 10)
               else {"vert": False})


def effect_name(res: ExploreResult) -> str:
    """What the CATE measures: risk difference (binary), RMST difference (time-to-event, at
    the horizon), else mean difference."""
    if res.family == "time":
        return f"RMST difference to {res.settings.get('horizon'):g}"
    return "risk difference" if res.family == "binary" else "mean difference"


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height))
    fig.set_layout_engine("constrained")
    return fig


def cate_by_subgroup_plot(res: ExploreResult) -> Figure:
    """One panel per pre-specified modifier: box plots of the patients' out-of-bag CATE by
    subgroup, with the subgroup's AIPW effect and its CI (orange); dashed line: the AIPW ATE.
    Without modifiers, one box of all patients."""
    sub = res.subgroups
    mods = list(dict.fromkeys(sub["modifier"])) if len(sub) else []
    cate = res.cate["cate"].to_numpy()
    ate = float(res.ate["estimate"].iloc[0])
    panels = mods or ["All patients"]
    n_rows = sum(max(1, int((sub["modifier"] == m).sum())) for m in panels)
    fig = _figure(6.5, 1.0 + 0.45 * n_rows + 0.35 * len(panels))
    heights = [max(1, int((sub["modifier"] == m).sum())) + 0.6 for m in panels]
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False,
                        gridspec_kw={"height_ratios": heights})[:, 0]
    for ax, m in zip(axes, panels):
        if m == "All patients":
            data, labels, est = [cate], ["All patients"], None
        else:
            rows = sub[sub["modifier"] == m]
            data, labels = [], []
            for _, r in rows.iterrows():
                mask = (res.membership[m] == r["level"]).to_numpy()
                data.append(cate[mask])  # membership and cate share the row order
                labels.append(f"{clean_label(r['level'])} (n={int(r['n'])})")
            est = rows
        pos = np.arange(len(data))[::-1]
        ax.boxplot(data, positions=pos, **_HORIZONTAL, widths=0.4, showfliers=False,
                   patch_artist=True, boxprops={"facecolor": "#CFE3F1", "edgecolor": _BLUE},
                   medianprops={"color": _BLUE}, whiskerprops={"color": _BLUE},
                   capprops={"color": _BLUE})
        if est is not None:
            e = est["aipw_estimate"].to_numpy(dtype=float)
            lo = est["aipw_conf_low"].to_numpy(dtype=float)
            hi = est["aipw_conf_high"].to_numpy(dtype=float)
            ax.errorbar(e, pos - 0.36, xerr=[e - lo, hi - e], fmt="D", color=_ORANGE, ms=4,
                        capsize=2, lw=1)
        ax.axvline(ate, color=_GREY, ls="--", lw=0.8)
        ax.set_yticks(pos, labels, fontsize=8)
        ax.set_title(clean_label(m), fontsize=9, loc="left")
    axes[-1].set_xlabel(f"CATE ({effect_name(res)}); box: out-of-bag forest predictions; "
                        "diamond: AIPW subgroup effect (CI)", fontsize=8)
    fig.suptitle(f"{_TAG}: CATE by pre-specified subgroup", fontsize=10)
    return fig


def gates_plot(res: ExploreResult) -> Figure:
    """GATES by CATE quantile group with CIs (exploratory), the AIPW ATE (dashed) and each
    group's mean forest prediction (open circles)."""
    g = res.gates
    ate = float(res.ate["estimate"].iloc[0])
    fig = _figure(6.0, 3.4)
    ax = fig.subplots()
    x = g["group"].to_numpy()
    e, lo, hi = (g[c].to_numpy(dtype=float) for c in ("estimate", "conf_low", "conf_high"))
    ax.errorbar(x, e, yerr=[e - lo, hi - e], fmt="s", color=_BLUE, capsize=3,
                label="GATES (AIPW scores), CI")
    ax.plot(x, g["mean_cate"].to_numpy(dtype=float), "o", mfc="none", color=_ORANGE,
            label="mean forest CATE")
    ax.axhline(ate, color=_GREY, ls="--", lw=0.8, label="average effect (AIPW)")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(x, [f"G{k}" for k in x])
    ax.set_xlabel(f"Group by forest CATE ({len(x)} quantile groups, lowest to highest)")
    ax.set_ylabel(f"Effect ({effect_name(res)})")
    t = res.gates_tests.set_index("test")
    ax.set_title(f"{_TAG}\nSorted group effects (GATES); test of equal GATES p = "
                 f"{t.loc['equal GATES', 'p_value']:.2g}", fontsize=9, loc="left")
    ax.legend(fontsize=7, frameon=False, loc="best")
    return fig


def toc_plot(res: ExploreResult) -> Figure:
    """The targeting operator characteristic: effect among the top q fraction by forest CATE
    minus the average effect, with pointwise bootstrap CIs; AUTOC is its area."""
    toc = res.toc
    fig = _figure(6.0, 3.4)
    ax = fig.subplots()
    ax.fill_between(toc["q"].to_numpy(dtype=float), toc["conf_low"].to_numpy(dtype=float),
                    toc["conf_high"].to_numpy(dtype=float), color="#CFE3F1", lw=0,
                    label="pointwise bootstrap CI")
    ax.plot(toc["q"].to_numpy(dtype=float), toc["estimate"].to_numpy(dtype=float),
            color=_BLUE, marker="o", ms=3, label="TOC")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xlim(0, 1)
    ax.set_xlabel("Fraction q treated first, by forest CATE (highest first)")
    ax.set_ylabel(f"TOC ({effect_name(res)})")
    r = res.rate.set_index("metric")
    ax.set_title(f"{_TAG}\nTOC (top q minus average); AUTOC {r.loc['AUTOC', 'estimate']:.3g} (SE "
                 f"{r.loc['AUTOC', 'std_error']:.2g}, p {r.loc['AUTOC', 'p_value']:.2g})",
                 fontsize=9, loc="left")
    ax.legend(fontsize=7, frameon=False)
    return fig


def importance_plot(res: ExploreResult, top: int = 15) -> Figure:
    """Variable importance (split frequency, depth-weighted), summed per covariate."""
    imp = (res.importance.drop_duplicates("variable")
           .sort_values("variable_importance", ascending=False, kind="stable").head(top))
    fig = _figure(5.5, 0.8 + 0.28 * len(imp))
    ax = fig.subplots()
    pos = np.arange(len(imp))[::-1]
    ax.barh(pos, imp["variable_importance"], color=_BLUE)
    ax.set_yticks(pos, [clean_label(v) for v in imp["variable"]], fontsize=8)
    ax.set_xlabel("Share of splits (depth-weighted; grf's variable importance)")
    ax.set_title(f"{_TAG}\nVariable importance of the causal forest", fontsize=9, loc="left")
    return fig
