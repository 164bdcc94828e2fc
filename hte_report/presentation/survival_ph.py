"""Proportional-hazards diagnostic figures of a time-to-event result: log-minus-log
Kaplan–Meier curves by arm and scaled Schoenfeld residuals of the treatment against time with
a smoother, as R's ``plot(cox.zph(fit))``, in small multiples (all patients, then each level
of a pre-specified modifier) laid out like the Kaplan–Meier panels.

The numbers come from :func:`lml_curve` (the Kaplan–Meier estimate of
:func:`~hte_report.presentation.survival.km_curve`, R's ``survfit``) and
:func:`scaled_schoenfeld` (R's ``cox.zph(fit, transform = "km")$y`` for a Cox model of the
treatment alone, stratified like the analysis); :func:`zph_smooth` is the natural-spline
smoother of ``plot.cox.zph``. Both figure functions return the plotted numbers as a frame."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hte_report.core.format import clean_label, fmt_p
from hte_report.presentation.survival import ARM_STYLE, event_indicator, km_curve, time_unit

if TYPE_CHECKING:
    from hte_report.results.result import HTEResult


# ----------------------------------------------------------------------------- numbers
def lml_curve(time: np.ndarray, event: np.ndarray) -> pd.DataFrame:
    """log(-log S(t)) of the Kaplan–Meier estimate at each distinct positive time (a log axis
    has no 0) where 0 < S(t) < 1 (columns ``t``, ``s``, ``lml``); empty when the curve never
    leaves 1."""
    cv = km_curve(np.asarray(time, float), np.asarray(event, float))
    t, s = cv["t"][1:], cv["s"][1:]
    ok = (s > 0) & (s < 1) & (t > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.DataFrame({"t": t[ok], "s": s[ok], "lml": np.log(-np.log(s[ok]))})


def _km_left(time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """1 - KM(t-) at each time, pooled over strata: ``cox.zph``'s "km" transform."""
    cv = km_curve(time, event)
    idx = np.searchsorted(cv["t"][1:], time, side="left")  # curve times < t
    return 1.0 - cv["s"][idx]


def scaled_schoenfeld(time, event, x, strata=None, ties: str = "efron",
                      beta: float | None = None) -> dict:
    """Scaled Schoenfeld residuals of a one-covariate Cox model (the treatment, 0/1), as
    ``cox.zph(coxph(Surv(time, event) ~ x + strata(...), ties = ties), transform = "km")``.

    One residual per event, ordered by stratum and time: ``x_i - xbar(t_i)`` (Efron: the mean
    over the tied deaths of the Efron-weighted risk-set means, as survival's C code), scaled
    by ``D / I`` (events and information of the strata where x varies) and shifted by the
    coefficient. Events of a stratum where x is constant have no residual (NaN), as in R.
    ``beta``: the Cox coefficient (default: fitted here, by the package's Cox fit; a fit that
    does not converge, as when one arm has no events, is a ``ModelError``).

    Returns {"time", "x" (1 - KM(t-) pooled), "y", "stratum", "beta", "var" (D / I, the
    variance ``plot.cox.zph`` scales its band with)}."""
    time = np.asarray(time, float)
    event = np.asarray(event, float)
    x = np.asarray(x, float)
    strata = (np.zeros(len(time), int) if strata is None
              else np.unique(np.asarray(strata), return_inverse=True)[1])
    if beta is None:
        import warnings

        from hte_report.errors import ModelError
        from hte_report.models.survival import fit_cox

        with warnings.catch_warnings():  # non-convergence is reported below, as an error
            warnings.simplefilter("ignore")
            fit = fit_cox(x[:, None], time, event, strata, ties)
        if not fit.converged:  # e.g. no events in one arm: the coefficient is infinite
            raise ModelError("the Cox model of the treatment did not converge")
        beta = float(fit.params[0])
    r = np.exp(beta * (x - x.mean()))
    g = _km_left(time, event)
    out_t, out_g, out_res, out_s, info, used = [], [], [], [], 0.0, 0
    for s in np.unique(strata):
        rows = np.nonzero(strata == s)[0]
        ts, es, xs, rs = time[rows], event[rows], x[rows], r[rows]
        ut, inv = np.unique(ts, return_inverse=True)
        m = len(ut)

        def at_risk(w, inv=inv, m=m):  # sums over the rows with time >= each distinct time
            return np.cumsum(np.bincount(inv, w, minlength=m)[::-1])[::-1]

        def dead_sum(w, inv=inv, m=m, es=es):
            return np.bincount(inv, w * es, minlength=m)

        S = [at_risk(rs * xs ** k) for k in range(3)]
        D = [dead_sum(rs * xs ** k) for k in range(3)]
        nd = np.bincount(inv, es, minlength=m).astype(int)
        blocks = np.nonzero(nd > 0)[0]
        rep = np.repeat(blocks, nd[blocks])  # one entry per death, by event time
        first = np.repeat(np.cumsum(nd[blocks]) - nd[blocks], nd[blocks])
        f = ((np.arange(len(rep)) - first) / nd[rep] if ties == "efron"
             else np.zeros(len(rep)))
        den = S[0][rep] - f * D[0][rep]
        xb = (S[1][rep] - f * D[1][rep]) / den
        varies = np.ptp(xs) > 0
        if varies:
            info += float(np.sum((S[2][rep] - f * D[2][rep]) / den - xb ** 2))
            used += len(rep)
        xbar = np.bincount(rep, xb, minlength=m) / np.maximum(nd, 1)
        dead = np.nonzero(es == 1)[0]
        dead = dead[np.argsort(ts[dead], kind="stable")]
        out_t.append(ts[dead])
        out_g.append(g[rows][dead])
        out_res.append(xs[dead] - xbar[inv[dead]] if varies else np.full(len(dead), np.nan))
        out_s.append(np.full(len(dead), s))
    res = np.concatenate(out_res) if out_res else np.zeros(0)
    out_t, out_g, out_s = (np.concatenate(v) if v else np.zeros(0)
                           for v in (out_t, out_g, out_s))
    var = used / info if info > 0 else np.nan
    return {"time": np.asarray(out_t, float), "x": np.asarray(out_g, float),
            "y": beta + res * var, "stratum": np.asarray(out_s, int), "beta": beta,
            "var": var}


def _ns_basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """A natural cubic spline basis (intercept included) with the given knots, boundary knots
    first and last: the space of R's ``splines::ns(..., intercept = TRUE)``."""
    k = np.sort(knots)
    last = k[-1]

    def d(j):
        return (np.clip(x - k[j], 0, None) ** 3 - np.clip(x - last, 0, None) ** 3) / (last - k[j])

    cols = [np.ones_like(x), x] + [d(j) - d(len(k) - 2) for j in range(len(k) - 2)]
    return np.column_stack(cols)


def zph_smooth(x: np.ndarray, y: np.ndarray, var: float, nsmo: int = 40,
               df: int = 4) -> pd.DataFrame | None:
    """The smoother of ``plot.cox.zph(..., df = 4, nsmo = 40)``: least squares on a natural
    spline basis (knots at the range and the 1/3, 2/3 quantiles of the grid and the points),
    with ``yhat -/+ 2 sqrt(var * h)`` (``h``: the leverage of each grid point). None when the
    spline fit would be singular (fewer distinct times than ``df``)."""
    keep = np.isfinite(y)
    x, y = np.asarray(x, float)[keep], np.asarray(y, float)[keep]
    if len(np.unique(x)) < df or not np.isfinite(var):
        return None
    grid = np.linspace(x.min(), x.max(), nsmo)
    both = np.concatenate([grid, x])
    inner = np.quantile(both, np.linspace(0, 1, df)[1:-1])
    knots = np.concatenate([[both.min()], inner, [both.max()]])
    B = _ns_basis(both, knots)
    P, X = B[:nsmo], B[nsmo:]
    q, rr = np.linalg.qr(X)
    if np.linalg.matrix_rank(rr) < df:
        return None
    coef = np.linalg.solve(rr, q.T @ y)
    yhat = P @ coef
    ri = np.linalg.inv(rr)
    h = np.sum((P @ ri) ** 2, axis=1)
    band = 2 * np.sqrt(var * h)
    return pd.DataFrame({"x": grid, "yhat": yhat, "lower": yhat - band, "upper": yhat + band})


# ----------------------------------------------------------------------------- layout
def _grid(slots: list, ncols: int, pw: float, ch: float, legend: bool = True):
    """A figure of ``len(slots)`` panel places (``ncols`` per row) of ``pw`` x ``ch`` inches,
    with room for titles, tick labels and axis labels, and the arms' legend below; a slot that
    is None stays empty (its axes None), so each modifier can start a row."""
    import matplotlib.pyplot as plt

    n = len(slots)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    left, wgap, title_h, gap_h, hgap = 0.62, 0.5, 0.24, 0.42, 0.12
    leg_h = 0.16 if legend else 0.0
    width = left + ncols * pw + (ncols - 1) * wgap + 0.15
    cell = title_h + ch + gap_h
    height = nrows * cell + (nrows - 1) * hgap + leg_h + 0.05
    fig = plt.figure(figsize=(width, height))
    axes = []
    for k in range(n):
        if slots[k] is None:
            axes.append(None)
            continue
        r, c = divmod(k, ncols)
        x0 = left + c * (pw + wgap)
        y0 = height - r * (cell + hgap) - title_h - ch
        axes.append(fig.add_axes((x0 / width, y0 / height, pw / width, ch / height),
                                 label=f"panel-{k}"))
    lax = fig.add_axes((left / width, 0.02 / height, (width - left) / width,
                        max(leg_h, 0.01) / height), label="legend")
    lax.set_axis_off()
    return fig, axes, lax, ncols


def _style(ax, small: float, first: bool, ylabel: str, xlabel: str, title: str,
           font_size: float) -> None:
    ax.tick_params(labelsize=small, length=3, width=0.6, pad=2)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_title(clean_label(title), fontsize=font_size, fontweight="bold", loc="left", pad=4)
    if first:
        ax.set_ylabel(ylabel, fontsize=small)
    ax.set_xlabel(xlabel, fontsize=small, labelpad=1)


def _log_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks between ``lo`` and ``hi`` (a log axis of follow-up time)."""
    out = []
    for e in range(int(np.floor(np.log10(lo))) - 1, int(np.ceil(np.log10(hi))) + 1):
        out.extend(m * 10.0 ** e for m in (1, 2, 5))
    out = [t for t in out if lo <= t <= hi]
    if len(out) > 6:
        out = [t for t in out if str(f"{t:g}")[0] in "15"]
    return out


def _arm_rows(res: HTEResult, g: pd.DataFrame, code) -> tuple[np.ndarray, np.ndarray]:
    t, e = event_indicator(res, g[g[res.treatment] == code])
    ok = np.isfinite(t) & np.isfinite(e)
    return t[ok], e[ok]


# ----------------------------------------------------------------------------- figures
def lml_panels(groups: list[tuple[str, pd.DataFrame] | None], res: HTEResult, arms: dict,
               arm_labels: dict, *, ncols: int = 3, font_size: float = 7.0,
               panel_width: float | None = None):
    """Log-minus-log plots by arm: log(-log S(t)) of each arm's Kaplan–Meier curve against
    time on a log axis, one panel per (title, rows) in ``ncols`` columns (None: an empty
    place), one vertical axis for all. Parallel curves: proportional hazards (their vertical
    distance is the log hazard ratio).

    Returns (figure, frame): one row per panel, arm and plotted point (t, s, lml)."""
    from matplotlib.lines import Line2D

    unit = time_unit(res)
    small = font_size - 1
    pw = panel_width or (2.3 if min(ncols, len(groups)) > 1 else 4.6)
    fig, axes, lax, ncols = _grid(groups, ncols, pw, 1.3 if pw < 3 else 2.2)
    panels = [(k, *grp) for k, grp in enumerate(groups) if grp is not None]
    pos = pd.to_numeric(pd.concat([g for _k, _t, g in panels])[res.meta["time"]],
                        errors="coerce")
    tmax = float(np.nanmax(pos))
    rows, curves = [], {}
    for k, title, g in panels:
        for arm in ("treated", "control"):
            cv = lml_curve(*_arm_rows(res, g, arms[arm]))
            curves[k, arm] = cv
            rows.extend({"panel": title, "arm": arm_labels[arm], **r}
                        for r in cv.to_dict("records"))
    frame = pd.DataFrame(rows, columns=["panel", "arm", "t", "s", "lml"])
    tmin = float(frame.t.min()) if len(frame) else 1.0
    lo = max(tmin * 0.8, tmax / 1e4)
    ylo, yhi = ((float(frame.lml.min()), float(frame.lml.max())) if len(frame) else (-1, 0))
    pad = 0.05 * (yhi - ylo or 1.0)
    for k, title, g in panels:
        ax = axes[k]
        for arm in ("treated", "control"):
            cv = curves[k, arm]
            colour, ls = ARM_STYLE[arm]
            if len(cv):  # the step runs on to the arm's last follow-up time
                last = float(np.nanmax(_arm_rows(res, g, arms[arm])[0]))
                ax.step(np.append(cv.t, max(last, cv.t.iloc[-1])),
                        np.append(cv.lml, cv.lml.iloc[-1]), where="post", color=colour,
                        ls=ls, lw=1.1, gid=f"lml-{k}-{arm}")
        if not any(len(curves[k, a]) for a in ("treated", "control")):
            ax.text(0.5, 0.5, "no events", transform=ax.transAxes, ha="center",
                    va="center", fontsize=small, style="italic", color="#555555")
        ax.set_xscale("log")
        ax.set_xlim(lo, tmax * 1.05)
        ax.set_ylim(ylo - pad, yhi + pad)
        ticks = _log_ticks(lo, tmax * 1.05)
        ax.set_xticks(ticks)
        ax.set_xticks([], minor=True)
        ax.set_xticklabels([f"{v:g}" for v in ticks])
        _style(ax, small, k % ncols == 0, "log(−log S(t))", f"Time ({unit}, log scale)",
               title, font_size)
    names = [clean_label(arm_labels[a]) for a in ("treated", "control")]
    lax.legend([Line2D([], [], color=ARM_STYLE[a][0], ls=ARM_STYLE[a][1], lw=1.1)
                for a in ("treated", "control")], names, loc="upper left", ncol=2,
               fontsize=small, frameon=False, handlelength=2.4, borderaxespad=0)
    return fig, frame


def schoenfeld_panels(groups: list[tuple[str, pd.DataFrame] | None], res: HTEResult,
                      arms: dict,
                      *, strata: tuple[str, ...] = (), ties: str = "efron",
                      p_values: dict | None = None, ncols: int = 3, font_size: float = 7.0,
                      panel_width: float | None = None):
    """Scaled Schoenfeld residuals of the treatment (a Cox model of the treatment alone,
    stratified by ``strata``, within each panel's rows) against time on the Kaplan–Meier
    scale, tick labels in the time unit; the ``plot.cox.zph`` smoother with its +/- 2 SE band
    and the constant coefficient (dotted). ``p_values``: {title: cox.zph p} shown in the panel
    titles. ``groups`` and ``ncols`` as :func:`lml_panels`.

    Returns (figure, frame): one row per panel and event (time, x, y, beta) with the smoother
    in a second frame under ``frame.attrs["smooth"]``."""
    from hte_report.errors import ModelError

    unit = time_unit(res)
    small = font_size - 1
    pw = panel_width or (2.3 if min(ncols, len(groups)) > 1 else 4.6)
    fig, axes, lax, ncols = _grid(groups, ncols, pw, 1.3 if pw < 3 else 2.2, legend=False)
    rows, smooth = [], []
    for k, grp in enumerate(groups):
        if grp is None:
            continue
        title, g = grp
        ax = axes[k]
        d = g[g[res.treatment].isin([arms["treated"], arms["control"]])]
        d = d.dropna(subset=list(strata)) if strata else d
        t, e = event_indicator(res, d)
        xt = (d[res.treatment] == arms["treated"]).to_numpy(float)
        st = (d[list(strata)].astype(str).agg("\x1f".join, axis=1).to_numpy() if strata
              else np.zeros(len(d), int))
        ok = np.isfinite(t) & np.isfinite(e)
        try:
            z = scaled_schoenfeld(t[ok], e[ok], xt[ok], st[ok], ties)
        except (ModelError, np.linalg.LinAlgError, ValueError, ZeroDivisionError):
            z = None
        p = (p_values or {}).get(title)
        head = clean_label(title) + (f" (P = {fmt_p(p)})" if p is not None and np.isfinite(p)
                                     else "")
        if z is None or not np.isfinite(z["y"]).any():
            ax.text(0.5, 0.5, "not estimable", transform=ax.transAxes, ha="center",
                    va="center", fontsize=small, style="italic", color="#555555",
                    gid=f"zph-not-estimable-{k}")
            ax.set_xticks([])
            ax.set_yticks([])
            _style(ax, small, k % ncols == 0, "β(t) of treatment (log HR)",
                   f"Time ({unit}, Kaplan–Meier scale)", head, font_size)
            continue
        rows.extend({"panel": title, "time": a, "x": b, "y": c, "beta": z["beta"]}
                    for a, b, c in zip(z["time"], z["x"], z["y"], strict=True))
        ax.plot(z["x"], z["y"], ls="none", marker="o", ms=2.2, mew=0, alpha=0.55,
                color="#555555", gid=f"zph-points-{k}")
        ax.axhline(z["beta"], color="#0072B2", lw=0.7, ls=":", gid=f"zph-beta-{k}")
        ax.axhline(0.0, color="#000000", lw=0.5, zorder=0)
        sm = zph_smooth(z["x"], z["y"], z["var"])
        if sm is not None:
            smooth.append(sm.assign(panel=title))
            ax.plot(sm.x, sm.yhat, color="#D55E00", lw=1.3, gid=f"zph-smooth-{k}")
            for col in ("lower", "upper"):
                ax.plot(sm.x, sm[col], color="#D55E00", lw=0.7, ls=(0, (4, 2)),
                        gid=f"zph-band-{col}-{k}")
        # ticks: readable times placed on the Kaplan–Meier scale (as plot.cox.zph)
        fin = np.isfinite(z["y"])
        xs, ts = z["x"][fin], z["time"][fin]
        order = np.argsort(ts, kind="stable")
        cand = [v for v in _time_candidates(float(ts.max()), unit) if ts.min() <= v <= ts.max()]
        pos = np.interp(cand, ts[order], xs[order])
        keep = np.concatenate([[True], np.diff(pos) > 0.06 * (xs.max() - xs.min() or 1)]
                              )[:len(pos)]
        ax.set_xticks(pos[keep])
        ax.set_xticklabels([f"{v:g}" for v in np.asarray(cand)[keep]])
        lo, hi = np.nanmin(z["y"]), np.nanmax(z["y"])
        if sm is not None:
            lo, hi = min(lo, sm.lower.min()), max(hi, sm.upper.max())
        pad = 0.05 * (hi - lo or 1.0)
        ax.set_ylim(lo - pad, hi + pad)
        _style(ax, small, k % ncols == 0, "β(t) of treatment (log HR)",
               f"Time ({unit}, Kaplan–Meier scale)", head, font_size)
    frame = pd.DataFrame(rows, columns=["panel", "time", "x", "y", "beta"])
    frame.attrs["smooth"] = (pd.concat(smooth, ignore_index=True) if smooth
                             else pd.DataFrame(columns=["x", "yhat", "lower", "upper",
                                                        "panel"]))
    return fig, frame


def _time_candidates(tmax: float, unit: str) -> list[float]:
    from hte_report.presentation.survival import time_ticks

    ticks = time_ticks(tmax, unit, 6)
    if len(ticks) < 4:  # yearly ticks on a follow-up under two years: use round numbers
        from matplotlib import ticker

        ticks = [float(v) for v in ticker.MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10])
                 .tick_values(0, tmax) if 0 <= v <= tmax]
    return [v for v in ticks if v > 0]
