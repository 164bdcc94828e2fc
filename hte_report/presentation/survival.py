"""Time-to-event display: scale labels that carry the horizon and the time unit, survival
differences in percentage points, Kaplan–Meier curves by arm (small multiples with numbers at
risk) and the proportional-hazards diagnostics, all read from an :class:`HTEResult` of family
``"survival"`` and the analysed data.

The event is taken as harmful unless the plan says ``higher_is_better: true``: a hazard ratio
below 1 and a survival or RMST difference above 0 favour the treated arm
(:func:`higher_favours`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hte_report.core.format import SCALE_NAMES, clean_label, fmt_ci, fmt_p

if TYPE_CHECKING:
    from hte_report.results.result import HTEResult

#: Scales that measure the absence of the event.
SURVIVAL_SCALES = ("SurvDiff", "RMSTDiff")


def higher_favours(scale: str, higher_is_better: bool) -> bool:
    """Do larger values of ``scale`` favour treatment? ``higher_is_better`` describes the
    outcome (for a time-to-event outcome: is the event good?); survival and RMST differences
    measure the absence of the event, so their direction is the opposite of the hazard's."""
    return higher_is_better != (scale in SURVIVAL_SCALES)


def is_survival(res: HTEResult) -> bool:
    return getattr(res, "family", "") == "survival"


def time_unit(res: HTEResult) -> str:
    """The plan's ``outcome.time_unit`` (the report puts it in ``meta``), else 'time units'."""
    return str((res.meta or {}).get("time_unit") or "time units")


def _num(v: float) -> str:
    return f"{float(v):g}"


def horizon_of(res: HTEResult, scale: str, horizon: float | None = None) -> float | None:
    """The time a survival-scale row refers to: ``horizon`` when given, else the primary
    absolute spec's horizon (SurvDiff) or ``rmst_tau`` (RMSTDiff)."""
    if horizon is not None and np.isfinite(horizon):
        return float(horizon)
    meta = res.meta or {}
    if scale == "RMSTDiff":
        return meta.get("rmst_tau")
    h = res._primary_filters("absolute").get("horizon") if "absolute" in res.primary else None
    if h is None and meta.get("horizons"):
        h = meta["horizons"][0]
    return h


def scale_label(res: HTEResult, scale: str, short: bool | str = False,
                horizon: float | None = None) -> str:
    """A scale's name for titles and columns: with the horizon (or tau) and the time unit on
    survival scales, e.g. 'Survival difference at 1095 days (percentage points)'; short forms
    for narrow column headers ('Surv. diff., % points'; ``short="table"``: 'Surv. diff. at
    1095 days, % points')."""
    rm = (res.meta or {}).get("repeated") or {}
    if rm and scale in ("SlopeDiff", "MD"):  # repeated measures: per unit of time / landmark
        unit = rm.get("time_unit") or f"unit of {rm.get('time', 'time')}"
        if scale == "SlopeDiff":
            return f"Slope diff. per {unit}" if short else f"Difference in slope per {unit}"
        at = f"{rm.get('time')} = {rm.get('landmark', float('nan')):g}"
        return f"MD at {at}" if short else f"Mean difference at {at}"
    if scale not in SURVIVAL_SCALES or not is_survival(res):
        if short:
            return scale
        return SCALE_NAMES.get(scale, scale)
    unit, h = time_unit(res), horizon_of(res, scale, horizon)
    if short == "table":  # column headers of tables: the time, in fewer words
        at = f" at {_num(h)} {unit}" if h is not None else ""
        return (f"Surv. diff.{at}, % points" if scale == "SurvDiff"
                else f"RMST diff. to {_num(h)} {unit}, {unit}")
    if scale == "SurvDiff":
        if short:
            return "Surv. diff., % points"
        at = f" at {_num(h)} {unit}" if h is not None else ""
        return f"Survival difference{at} (percentage points)"
    if short:
        return f"RMST diff., {unit}"
    to = f" up to {_num(h)} {unit}" if h is not None else ""
    return f"RMST difference{to} ({unit})"


def display_scale(scale: str) -> str:
    """The scale whose formatting a value takes: survival differences, like risk
    differences, in percentage points."""
    return "RD" if scale == "SurvDiff" else scale


def fmt_effect(est: float, low: float, high: float, scale: str) -> str:
    """``fmt_ci`` with survival differences in percentage points."""
    return fmt_ci(est, low, high, display_scale(scale))


# ----------------------------------------------------------------------------- data
def event_indicator(res: HTEResult, data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(time, event) of ``data`` as the result's Surv() reads them (``meta``)."""
    t = pd.to_numeric(data[res.meta["time"]], errors="coerce").to_numpy(float)
    e = pd.to_numeric(data[res.meta["event"]], errors="coerce").to_numpy(float)
    return t, e


def km_curve(time: np.ndarray, event: np.ndarray) -> dict:
    """Kaplan–Meier estimate: step times and survival (starting at 0, 1), censoring times
    with the survival there, numbers at risk, and the median (NaN when not reached: the
    curve never falls to 0.5)."""
    from hte_report.models.survival import kaplan_meier

    ut, surv, n_risk, d = kaplan_meier(time, event)
    censored = np.bincount(np.unique(time, return_inverse=True)[1], weights=1 - event,
                           minlength=len(ut))
    below = np.nonzero(surv <= 0.5 + 1e-12)[0]
    median = float(ut[below[0]]) if len(below) else np.nan
    return {"t": np.concatenate([[0.0], ut]), "s": np.concatenate([[1.0], surv]),
            "cens_t": ut[censored > 0], "cens_s": surv[censored > 0], "median": median,
            "time": np.asarray(time, float), "n": len(time), "events": int(event.sum())}


def at_risk(time: np.ndarray, ticks) -> list[int]:
    """Numbers at risk (time >= t) at each tick."""
    time = np.asarray(time, float)
    return [int((time >= t).sum()) for t in ticks]


def survival_at(curve: dict, t: float) -> float:
    """KM survival at time ``t`` (right-continuous step)."""
    i = np.searchsorted(curve["t"], t, side="right") - 1
    return float(curve["s"][max(i, 0)])


def fmt_median(v: float, unit: str) -> str:
    return "not reached" if not np.isfinite(v) else f"{v:g} {unit}"


def time_ticks(tmax: float, unit: str, most: int = 8) -> list[float]:
    """Readable ticks for follow-up: yearly in days (365), 12-monthly, 52-weekly (or multiples
    of them), else a MaxNLocator choice; at most ``most``."""
    from matplotlib import ticker

    step = {"days": 365.0, "day": 365.0, "months": 12.0, "month": 12.0, "weeks": 52.0,
            "week": 52.0}.get(unit.lower())
    if step and tmax >= 2 * step:
        while tmax / step >= most:
            step *= 2
        return list(np.arange(0, tmax + 1e-9, step))
    ticks = ticker.MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(0, tmax)
    return [float(t) for t in ticks if 0 <= t <= tmax]


# ----------------------------------------------------------------------------- KM figure
#: Okabe–Ito: treated blue (solid), control vermillion (dashed).
ARM_STYLE = {"treated": ("#0072B2", "-"), "control": ("#D55E00", (0, (4, 2)))}


def km_panels(groups: list[tuple[str, pd.DataFrame]], res: HTEResult, arms: dict,
              arm_labels: dict, *, ncols: int = 3, marks: dict | None = None,
              font_size: float = 7.0, ylabel: str = "Event-free (%)",
              panel_width: float | None = None, cumulative: bool = False,
              ytop: float = 1.0):
    """Small multiples of Kaplan–Meier curves by arm, one panel per (title, rows), each with
    its numbers at risk and a legend (events/n and median per arm) below it. ``arms``:
    {'treated': code, 'control': code} of the treatment column; ``arm_labels``: their display
    names; ``marks``: {label: time} drawn as dotted vertical lines (the horizon, tau).
    ``cumulative``: draw 1 - KM going up, on a vertical axis from 0 to ``ytop`` (for infrequent
    events, Pocock, Clayton & Altman 2002), instead of the KM curve going down from 100%.

    Returns (figure, summaries): one summary row per panel and arm with n, events, median and
    the KM survival at each mark."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.transforms import ScaledTranslation

    unit = time_unit(res)
    marks = marks or {}
    n = len(groups)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    small = font_size - 1
    # inches: panel, curve, gap for tick labels and the axis label, risk table and legend
    pw = panel_width or (2.45 if ncols > 1 else 5.2)
    ch = 1.75 if ncols > 1 else 2.5
    title_h, gap_h, risk_h, leg_h, hgap = 0.22, 0.42, 0.5, 0.36, 0.28
    names = [clean_label(arm_labels[k]) for k in ("treated", "control")]
    left = max(0.55, 0.058 * small * max(len(x) for x in names) / 6 + 0.3)
    wgap = 0.42
    width = left + ncols * pw + (ncols - 1) * wgap + 0.15
    cell_h = title_h + ch + gap_h + risk_h + leg_h
    height = nrows * cell_h + (nrows - 1) * hgap + 0.05
    fig = plt.figure(figsize=(width, height))
    trt_col = res.treatment
    tmax = float(np.nanmax(pd.to_numeric(
        pd.concat([g for _, g in groups])[res.meta["time"]], errors="coerce")))
    ticks = time_ticks(tmax, unit, 8 if pw > 4 else 5)
    rows = []
    for k, (title, g) in enumerate(groups):
        r, c = divmod(k, ncols)
        x0 = left + c * (pw + wgap)
        top = height - r * (cell_h + hgap)
        y_curve = top - title_h - ch
        ax = fig.add_axes((x0 / width, y_curve / height, pw / width, ch / height),
                          label=f"km-{k}")
        y_risk = y_curve - gap_h - risk_h
        rax = fig.add_axes((x0 / width, y_risk / height, pw / width, risk_h / height),
                           label=f"km-risk-{k}")
        rax.set_xlim(0, tmax * 1.02)
        rax.set_ylim(0, 1)
        rax.set_axis_off()
        rax.text(0.0, 0.97, "Number at risk", transform=rax.transAxes, ha="left", va="top",
                 fontsize=small, style="italic", color="#555555")
        handles, texts = [], []
        for j, arm in enumerate(("treated", "control")):
            sub = g[g[trt_col] == arms[arm]]
            t, e = event_indicator(res, sub)
            ok = np.isfinite(t) & np.isfinite(e)
            t, e = t[ok], e[ok]
            colour, ls = ARM_STYLE[arm]
            y = 0.6 - 0.38 * j
            if c == 0:  # clear of the first count, which is centred on time 0
                rax.text(0, y, names[j], ha="right", va="center", fontsize=small,
                         color=colour, transform=rax.transAxes + ScaledTranslation(
                             -14 / 72, 0, fig.dpi_scale_trans))
            if len(t) == 0:
                rows.append({"panel": title, "arm": arm_labels[arm], "n": 0, "events": 0,
                             "median": np.nan, **{m: np.nan for m in marks}})
                continue
            cv = km_curve(t, e)
            flip = (lambda v: 1 - np.asarray(v)) if cumulative else np.asarray
            ax.step(cv["t"], flip(cv["s"]), where="post", color=colour, ls=ls, lw=1.2,
                    gid=f"km-curve-{k}-{arm}")
            ax.plot(cv["cens_t"], flip(cv["cens_s"]), ls="none", marker="|", ms=3.5, mew=0.7,
                    color=colour, gid=f"km-censor-{k}-{arm}")
            handles.append(Line2D([], [], color=colour, ls=ls, lw=1.2))
            texts.append(f"{names[j]}: {cv['events']}/{cv['n']} events, median "
                         f"{fmt_median(cv['median'], unit)}")
            row = {"panel": title, "arm": arm_labels[arm], "n": cv["n"],
                   "events": cv["events"], "median": cv["median"]}
            for name, at in marks.items():
                row[name] = survival_at(cv, at) if at <= cv["t"].max() else np.nan
            rows.append(row)
            for tk, nr in zip(ticks, at_risk(t, ticks), strict=True):
                rax.text(tk, y, str(nr), transform=rax.get_xaxis_transform(), ha="center",
                         va="center", fontsize=small, color=colour, gid=f"km-risk-{k}-{arm}")
        for at in marks.values():
            ax.axvline(at, color="#777777", lw=0.6, ls=":", zorder=0)
        ax.set_ylim(0, ytop * 1.02)
        ax.set_xlim(0, tmax * 1.02)
        ax.set_xticks(ticks)
        ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}")
        ax.tick_params(labelsize=small, length=3, width=0.6, pad=2)
        step = 0.25 if ytop > 0.6 else 0.1 if ytop > 0.3 else 0.05
        yt = np.arange(0, ytop + 1e-9, step)
        ax.set_yticks(yt)
        ax.set_yticklabels([f"{100 * v:.0f}" for v in yt])
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.set_title(clean_label(title), fontsize=font_size, fontweight="bold", loc="left",
                     pad=4)
        if c == 0:
            ax.set_ylabel(ylabel, fontsize=small)
        ax.set_xlabel(f"Time ({unit})", fontsize=small, labelpad=1)
        lax = fig.add_axes((x0 / width, (y_risk - leg_h) / height, pw / width,
                            leg_h / height), label=f"km-legend-{k}")
        lax.set_axis_off()
        lax.legend(handles, texts, loc="upper left", fontsize=small - 0.5, frameon=False,
                   handlelength=2.4, borderaxespad=0, borderpad=0, labelspacing=0.3)
    return fig, pd.DataFrame(rows)


# ----------------------------------------------------------------------------- PH
def ph_subgroup_frame(res: HTEResult, arms: tuple[str, str] | None = None) -> pd.DataFrame:
    """cox.zph p of the treatment within the overall population and each subgroup (the
    ``ph_p_value`` of the HR rows), with events/n per arm. ``arms``: (control, treated)
    display names (default the treatment's codes)."""
    from hte_report.core.format import fmt_count

    ctrl, trt = arms or res.treatment_labels
    out = []
    ov = res._comparison(res.overall, None)
    ov = ov[ov.scale == "HR"]
    if len(ov):
        o = ov.iloc[0]
        out.append({"Modifier": "Overall", "Subgroup": "All patients",
                    f"Events/n ({trt})": fmt_count(o.events_treated, o.n_treated),
                    f"Events/n ({ctrl})": fmt_count(o.events_control, o.n_control),
                    "P (PH, treatment)": fmt_p(o.get("ph_p_value", np.nan))})
    sg = res._comparison(res.subgroups, None)
    sg = sg[(sg.scale == "HR") & np.isfinite(sg.get("ph_p_value", pd.Series(np.nan,
                                                                              sg.index)))]
    if "analysis" in sg and res.strategy != "within-subgroup":
        sg = sg[sg.analysis != "within-subgroup"]
    sg = sg.drop_duplicates(["modifier", "level"])
    order = {m: i for i, m in enumerate(res.modifiers)}
    sg = sg[sg.modifier.isin(list(order))]
    sg = sg.assign(o=sg.modifier.map(order)).sort_values(["o", "order"], kind="stable")
    for r in sg.itertuples():
        out.append({"Modifier": clean_label(res.labels.get(r.modifier, r.modifier)),
                    "Subgroup": clean_label(res.level_label(r.modifier, r.level)),
                    f"Events/n ({trt})": fmt_count(r.events_treated, r.n_treated),
                    f"Events/n ({ctrl})": fmt_count(r.events_control, r.n_control),
                    "P (PH, treatment)": fmt_p(r.ph_p_value)})
    return pd.DataFrame(out)


def ph_terms_frame(res: HTEResult) -> pd.DataFrame:
    """cox.zph per term of the model in ``meta["ph_tests"]`` (the GLOBAL row last)."""
    tests = (res.meta or {}).get("ph_tests") or []
    rows = [{"Term": "GLOBAL (all terms)" if t["term"] == "GLOBAL" else clean_label(t["term"]),
             "Chi-square": f"{t['statistic']:.2f}" if np.isfinite(t["statistic"]) else "–",
             "df": str(int(t["df"])), "P": fmt_p(t["p_value"])} for t in tests]
    return pd.DataFrame(rows, columns=["Term", "Chi-square", "df", "P"])
