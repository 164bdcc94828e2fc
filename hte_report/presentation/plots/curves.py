"""Effect curves: the conditional treatment effect against a continuous modifier, one panel
per scale, with a pointwise band, an optional rug and a caption."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hte_report.core.format import MINUS, SCALE_NAMES, clean_label, fmt_p, is_ratio
from hte_report.errors import DataError
from hte_report.presentation.plots.axes import _drawn, _limits, _style_axis
from hte_report.presentation.plots.style import (
    ForestStyle,
    _arms,
    _check_style,
    _fit_text,
    _label,
    _scale_title,
)
from hte_report.spec.options import check_choice

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from hte_report.results.result import HTEResult


def effect_curve(
    result: HTEResult,
    modifier: str,
    *,
    data: pd.DataFrame | None = None,
    ax: Axes | Sequence[Axes] | None = None,
    style: ForestStyle | None = None,
) -> Figure:
    """Conditional treatment effect against a continuous modifier, one panel per scale.

    The curve is the conditional effect at the reference profile (``result.profile``) over the
    modifier's observed range with a pointwise confidence band, read from ``result.curve``;
    each panel title gives the Wald interaction p of that scale's model.

    Parameters
    ----------
    result
        A fitted :class:`~hte_report.result.HTEResult`.
    modifier
        A continuous effect modifier of ``result``.
    data
        The analysed data; when given, a rug shows the observed values of ``modifier``.
        Without it the rug is omitted and the caption says so.
    ax
        One Axes per scale (absolute, then relative). ``None`` creates a figure with a title
        and a caption; given Axes get neither.
    style
        A :class:`ForestStyle` for fonts and colours.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import hte_report as hr
    >>> from hte_report.datasets import load_rossi
    >>> d = load_rossi()
    >>> res = hr.fit("arrest ~ fin * (age + C(wexp))", d, treatment="fin")
    >>> [a.get_yscale() for a in effect_curve(res, "age", data=d).axes]
    ['linear', 'log']
    """
    from hte_report.presentation.plots.forest import check_plot_arguments

    check_plot_arguments(result)
    import matplotlib.pyplot as plt

    style = _check_style(style)
    check_choice("modifier", modifier, [m for m in result.modifiers
                                        if result.modifier_kinds.get(m) == "continuous"])
    axes = [a for a in ("absolute", "relative") if a in result.primary]
    if result.family == "survival":  # curves exist on the scales the estimator computes (HR)
        axes = [a for a in axes if len(_rows_of(result, a, modifier))] or axes
    if data is not None and not isinstance(data, pd.DataFrame):
        from hte_report.errors import ArgumentError

        raise ArgumentError(f"data must be a pandas DataFrame or None, got "
                            f"{type(data).__name__}.")
    if data is not None and modifier not in data.columns:
        raise DataError(f"data has no column {modifier!r} for the rug; pass the data the result "
                        "was fitted on, or data=None.")
    fs, small = style.font_size, style.font(style.font_size - 1)
    label, arms = _label(result, modifier), _arms(result, ("control", "treated"))
    if ax is None:  # layout in points: title, panel titles, plot, ticks and x label, caption
        width = 72 * (3.5 * len(axes) if len(axes) > 1 else 3.8)
        caption = _fit_text(_curve_caption(result, modifier, data), width - 16, small, 6)
        top, left = 1.6 * (fs + 1) + 2.6 * fs + 16, 4.5 * fs + 16
        bottom = 2 * fs + 20 + (caption.count("\n") + 1) * 1.3 * (fs - 1) + 12
        height = top + 2.3 * 72 + bottom
        fig, grid = plt.subplots(1, len(axes), figsize=(width / 72, height / 72), squeeze=False)
        panels = list(grid[0])
        fig.subplots_adjust(left=left / width, right=1 - 12 / width, top=1 - top / height,
                            bottom=bottom / height, wspace=(left + 16) / (width / len(axes)))
        fig.suptitle(f"{label}: conditional effect at the reference profile", x=6 / width,
                     y=1 - 6 / height, ha="left", va="top",
                     fontproperties=style.font(fs + 1, weight="bold"), parse_math=False)
        fig.text(6 / width, 6 / height, caption, fontproperties=small, color=style.note_color,
                 va="bottom", ha="left", parse_math=False, linespacing=1.3, gid="curve-caption")
    else:
        panels = [ax] if not isinstance(ax, Sequence) else list(ax)
        if len(panels) != len(axes):
            raise ValueError(f"ax must hold {len(axes)} Axes (one per scale: {axes}), got "
                             f"{len(panels)}.")
        fig = panels[0].figure
    for a, axis in zip(panels, axes, strict=True):
        cur = _rows_of(result, axis, modifier)
        if cur.empty:
            raise DataError(f"result.curves has no rows for {modifier!r} on the {axis} scale.")
        scale = str(cur.scale.iloc[0])
        log = is_ratio(scale)
        x = cur.value.to_numpy(float)
        est = cur.estimate.to_numpy(float)
        lo, hi = _limits([*est, *cur.conf_low, *cur.conf_high], 1.0 if log else 0.0, log,
                         core=est, reach=10.0)
        end = np.vectorize(_drawn(lo, hi, log), otypes=[float])
        band = {c: end(cur[c].to_numpy(float)) for c in ("conf_low", "conf_high", "estimate")}
        a.fill_between(x, band["conf_low"], band["conf_high"], color=style.marker_color,
                       alpha=0.18, lw=0, gid=f"curve-band-{axis}")
        for col, lw in (("conf_low", 0.6), ("conf_high", 0.6), ("estimate", 1.6)):
            a.plot(x, band[col], color=style.marker_color, lw=lw, gid=f"curve-{col}-{axis}")
        a.axhline(1.0 if log else 0.0, color=style.null_color, lw=0.8, gid=f"curve-null-{axis}")
        if not np.isfinite(est).any():
            a.text(0.5, 0.5, "not estimable", transform=a.transAxes, ha="center",
                   va="center", fontproperties=style.font(style="italic"),
                   color=style.note_color, gid=f"curve-not-estimable-{axis}", parse_math=False)
        if data is not None:  # room for the rug under the band
            lo = lo * (lo / hi) ** 0.06 if log else lo - 0.06 * (hi - lo)
        a.set_xlim(*((x.min(), x.max()) if x.max() > x.min() else (x.min() - 0.5,
                                                                     x.max() + 0.5)))
        a.set_ylim(lo, hi)
        size = a.get_position().size * fig.get_size_inches() * 72
        _style_axis(a, scale, style, size[1], "y")
        _style_axis(a, "", style, size[0], "x")
        a.spines[["right", "top"]].set_visible(False)
        if data is not None:
            vals = pd.to_numeric(data[modifier], errors="coerce").to_numpy(float)
            vals = vals[np.isfinite(vals)]
            q05, q95 = np.quantile(vals, [0.05, 0.95]) if len(vals) else (x.min(), x.max())
            for x0, x1 in ((x.min(), q05), (q95, x.max())):  # sparse tails: read with care
                if x1 > x0:
                    a.axvspan(x0, x1, color=style.shade_color, zorder=0, lw=0,
                              gid=f"curve-sparse-{axis}")
            if len(vals) > 2000:  # a seeded sample keeps the rug's density readable
                vals = np.random.default_rng(0).choice(vals, 2000, replace=False)
            a.vlines(vals, 0, 0.04, transform=a.get_xaxis_transform(), color="black", lw=0.5,
                     alpha=0.25, gid=f"curve-rug-{axis}")
        t = result.interaction_p(axis)
        p = fmt_p(t[t.modifier == modifier].p_value.iloc[0] if (t.modifier == modifier).any()
                  else np.nan)
        a.set_title(f"{_scale_title(scale)}\nP for interaction (Wald) "
                    f"{'' if p[0] in '<>' else '= '}{p}", fontproperties=style.font(),
                    loc="left", pad=6, linespacing=1.3, parse_math=False)
        a.set_xlabel(label, fontproperties=style.font(), labelpad=4, parse_math=False)
        a.set_ylabel(f"{SCALE_NAMES.get(scale, scale)}\n{arms[1]} vs {arms[0]} at the "
                     "reference profile", fontproperties=style.font(), linespacing=1.2,
                     parse_math=False)
    return fig


def _curve_caption(result: HTEResult, modifier: str, data: pd.DataFrame | None) -> str:
    def show(v: object) -> str:
        try:
            return f"{float(v):.3g}".replace("-", MINUS)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return str(v)

    from hte_report.presentation.analyses import profile_of

    prof = ", ".join(f"{r.variable} = {show(r.value)}" for r in
                     profile_of(result, modifier).itertuples())
    ctrl, trt = (str(x) for x in result.treatment_labels)
    rug = (f"Rug: observed values of {_label(result, modifier)} (n = "
           f"{int(data[modifier].notna().sum())}; darker where values are frequent); shaded: "
           "below the 5th or above the 95th percentile, where data are sparse."
           if data is not None else
           "Rug omitted: pass data= to show the observed values.")
    return clean_label(
        f"Effect of {result.treatment} ({trt} vs {ctrl}) with the other covariates at the "
        f"reference profile{f' ({prof})' if prof else ''}; band: pointwise "
        f"{100 * result.conf_level:g}% CI; "
        + "; ".join(f"{s} from {m}" for s, m in result.primary.values()
                    if result.family != "survival" or len(_scale_rows(result, s, modifier)))
        + f". {rug}")


def _scale_rows(result: HTEResult, scale: str, modifier: str) -> pd.DataFrame:
    c = result.curves
    if c is None or c.empty:
        return pd.DataFrame()
    return c[(c.scale == scale) & (c.modifier == modifier)]


def _rows_of(result: HTEResult, axis: str, modifier: str) -> pd.DataFrame:
    """The curve rows of ``axis``: its primary model's rows on its primary scale (several
    scales can share one model, as a Cox model's HR and survival difference)."""
    cur = result.curve(axis, modifier)
    if len(cur) and "scale" in cur:
        cur = cur[cur.scale == result.primary[axis][0]].reset_index(drop=True)
    return cur
