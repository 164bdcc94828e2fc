"""Repeated measures shown as trajectories: each patient's measurements (thin lines), the observed
means by arm in time windows (points with 95% CIs) and the fitted mean trajectories of the
primary working model by arm (lines with 95% bands), overall and within each level of a
categorical modifier (small multiples); and the visit counts behind them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from hte_report.core.format import clean_label
from hte_report.results.result import HTEResult

TREATED, CONTROL = "#0b5fa5", "#c2571a"
#: Observed means are shown for windows with at least this many measurements in the arm.
MIN_WINDOW = 5


def repeated_meta(res: HTEResult) -> dict:
    """The repeated-measures design of a :func:`~hte_report.fit_mixed` result ({} otherwise)."""
    return dict((res.meta or {}).get("repeated") or {})


def time_unit_of(res: HTEResult) -> str:
    rm = repeated_meta(res)
    return rm.get("time_unit") or f"unit of {rm.get('time', 'time')}"


def effect_words(res: HTEResult) -> str:
    """'difference in the slope of y per year' / 'difference in mean y at year 2'."""
    rm = repeated_meta(res)
    unit = time_unit_of(res)
    if rm.get("estimand") == "landmark":
        return f"difference in mean {res.outcome} at {rm['time']} = {rm['landmark']:g}"
    return f"difference in the slope of {res.outcome} per {unit}"


def _windows(t: np.ndarray) -> tuple[np.ndarray, str]:
    """Window index of each time and a description: the distinct times when there are at most
    15, else windows of a round width (about 12 across the range)."""
    values = np.unique(t[np.isfinite(t)])
    if len(values) <= 15:
        return np.searchsorted(values, t), "at each visit time"
    span = float(values[-1] - values[0]) or 1.0
    raw = span / 12
    mag = 10 ** math.floor(math.log10(raw))
    width = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    idx = np.floor((t - values[0]) / width + 0.5).astype(int)
    return idx, f"in windows of {width:g} centred on multiples of {width:g}"


def observed_means(d: pd.DataFrame, time: str, y: str, arm: str, codes: dict,
                   conf_level: float = 0.95) -> tuple[pd.DataFrame, str]:
    """Mean, SD, n and t-based CI of ``y`` by arm and time window (mean time of the window)."""
    t = d[time].to_numpy(dtype=float)
    idx, how = _windows(t)
    rows = []
    frame = pd.DataFrame({"w": idx, "t": t, "y": d[y].to_numpy(dtype=float),
                          "arm": d[arm].to_numpy()})
    for key, code in codes.items():
        sub = frame[frame.arm == code]
        for _, g in sub.groupby("w", sort=True):
            n = len(g)
            if n < MIN_WINDOW:
                continue
            m = float(g.y.mean())
            sd = float(g.y.std(ddof=1)) if n > 1 else float("nan")
            half = (stats.t.ppf(0.5 + conf_level / 2, n - 1) * sd / math.sqrt(n)
                    if n > 1 else float("nan"))
            rows.append({"arm": key, "time": float(g.t.mean()), "n": n, "mean": m, "sd": sd,
                         "conf_low": m - half, "conf_high": m + half})
    return pd.DataFrame(rows), how


def fitted(res: HTEResult, modifier: str = "", level: str = "") -> pd.DataFrame:
    """Fitted mean trajectory rows of the primary model (arm 1 = treated)."""
    tr = pd.DataFrame((res.meta or {}).get("trajectories") or {})
    if tr.empty:
        return tr
    model = res.primary["absolute"][1]
    return tr[(tr.model == model) & (tr.modifier == modifier)
              & (tr.level.astype(str) == str(level))].sort_values(["arm", "time"])


def trajectory_panels(groups: list[tuple[str, pd.DataFrame, pd.DataFrame]], res: HTEResult,
                      codes: dict, labels: dict, *, ncols: int = 3, ylabel: str = "",
                      font_size: float = 7.0, max_patients: int = 400):
    """Small multiples, one panel per (title, visit rows, fitted rows): patients' trajectories
    (thin lines; at most ``max_patients`` per arm, chosen by patient order, stated), observed
    means in time windows with 95% CIs, and the fitted mean trajectory by arm with its 95%
    band. Returns the figure and the description of the time windows."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    rm = repeated_meta(res)
    time, group, y = rm["time"], rm["group"], res.outcome
    z = stats.norm.ppf(0.5 + res.conf_level / 2)
    n = len(groups)
    ncols = max(1, min(ncols, n))
    nrows = int(math.ceil(n / ncols))
    pw, ph = (2.45, 1.9) if ncols > 1 else (5.2, 2.7)
    fig, axes = plt.subplots(nrows, ncols, figsize=(0.6 + ncols * pw + (ncols - 1) * 0.35,
                                                    0.55 + nrows * (ph + 0.45)),
                             squeeze=False, sharex=True, sharey=True)
    colours = {"treated": TREATED, "control": CONTROL}
    how = ""
    for k, (title, d, fit) in enumerate(groups):
        ax = axes[k // ncols][k % ncols]
        for key in ("control", "treated"):
            arm = d[d[res.treatment] == codes[key]].sort_values([group, time])
            ids = list(dict.fromkeys(arm[group]))[:max_patients]
            segs = [g[[time, y]].to_numpy(float) for _, g in
                    arm[arm[group].isin(ids)].groupby(group, sort=False)]
            for s in segs:
                ax.plot(s[:, 0], s[:, 1], color=colours[key], lw=0.35, alpha=0.13, zorder=1,
                        rasterized=True)  # hundreds of faint lines: an image in the SVG
        obs, how = observed_means(d, time, y, res.treatment, codes, res.conf_level)
        for key, off in (("control", -0.004), ("treated", 0.004)):
            o = obs[obs.arm == key]
            span = float(np.ptp(d[time])) or 1.0
            ax.errorbar(o.time + off * span, o["mean"],
                        yerr=[o["mean"] - o.conf_low, o.conf_high - o["mean"]], fmt="o",
                        ms=2.4, lw=0.8, capsize=1.2, color=colours[key], zorder=3)
            f = fit[fit.arm == (1 if key == "treated" else 0)] if len(fit) else fit
            if len(f):
                ax.plot(f.time, f["mean"], color=colours[key], lw=1.6, zorder=4)
                ax.fill_between(f.time, f["mean"] - z * f.std_error,
                                f["mean"] + z * f.std_error, color=colours[key], alpha=0.18,
                                lw=0, zorder=2)
        ax.set_title(clean_label(title), fontsize=font_size, loc="left")
        ax.tick_params(labelsize=font_size - 1)
        ax.grid(alpha=0.25, lw=0.4)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    for k in range(n, nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    unit = rm.get("time_unit")
    named = not unit or unit.lower().rstrip("s") in str(time).lower()
    for ax in axes[-1]:
        ax.set_xlabel(clean_label(f"{time}" + ("" if named else f" ({unit})")),
                      fontsize=font_size)
    # the vertical axis covers the measurements (0.5th to 99.5th percentile) and the fitted
    # bands; an observed mean's wide interval (few measurements) may run off it
    allys = np.concatenate([pd.to_numeric(d[y], errors="coerce").to_numpy(float)
                            for _, d, _ in groups])
    allys = allys[np.isfinite(allys)]
    if len(allys):
        lo, hi = np.quantile(allys, [0.005, 0.995])
        fits = [f for _, _, f in groups if len(f)]
        if fits:
            fa = pd.concat(fits)
            lo = min(lo, float((fa["mean"] - z * fa.std_error).min()))
            hi = max(hi, float((fa["mean"] + z * fa.std_error).max()))
        pad = 0.05 * (hi - lo or 1.0)
        axes[0][0].set_ylim(lo - pad, hi + pad)
    for row in axes:
        row[0].set_ylabel(clean_label(ylabel or y), fontsize=font_size)
    handles = [Line2D([], [], color=colours[k], lw=1.6, marker="o", ms=3,
                      label=clean_label(labels[k])) for k in ("treated", "control")]
    fig.legend(handles=handles, loc="lower center", ncol=2, frameon=False,
               fontsize=font_size, bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, 0.06 if nrows == 1 else 0.035, 1, 1))
    return fig, how


def visit_summary(d: pd.DataFrame, res: HTEResult, codes: dict, labels: dict) -> pd.DataFrame:
    """Patients, visits, visits per patient and follow-up by arm (analysed rows)."""
    rm = repeated_meta(res)
    time, group = rm["time"], rm["group"]
    rows = []
    for key in ("treated", "control"):
        arm = d[d[res.treatment] == codes[key]]
        per = arm.groupby(group)[time].agg(["size", "max"])
        if per.empty:
            continue
        rows.append({
            "Arm": clean_label(labels[key]), "Patients": f"{len(per)}",
            "Visits": f"{int(per['size'].sum())}",
            "Visits per patient, median (range)":
                f"{per['size'].median():g} ({per['size'].min()}–{per['size'].max()})",
            "Last visit, median (range)":
                f"{per['max'].median():.3g} ({per['max'].min():.3g}–{per['max'].max():.3g})",
        })
    return pd.DataFrame(rows)


def interaction_words(res: HTEResult) -> str:
    """The terms an interaction test covers: 'treatment × modifier' (one outcome per patient),
    'treatment × time × modifier' (slope), or both combined at the landmark."""
    rm = repeated_meta(res)
    if not rm:
        return "treatment × modifier"
    if rm.get("estimand") == "landmark":
        return (f"treatment × modifier and treatment × {rm['time']} × modifier (combined at "
                f"{rm['time']} = {rm['landmark']:g})")
    return f"treatment × {rm['time']} × modifier"


def primary_words(res: HTEResult) -> str:
    """The primary analysis of a repeated outcome in words."""
    rm = repeated_meta(res)
    covs = list(res.adjustment or ())
    return (f"the treatment, {rm['time']} and their interaction"
            + (f", adjusted for {', '.join(covs)}" if covs and res.overall_analysis == "adjusted"
               else ""))
