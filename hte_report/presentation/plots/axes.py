"""Axes shared by forest plots and effect curves: limits, readable ticks (log ticks for ratio
scales) and tick labels formatted as in the tables."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib import ticker

from hte_report.core.format import MINUS, is_ratio
from hte_report.errors import DataError
from hte_report.presentation.plots.style import ForestStyle, _width
from hte_report.spec.options import OptionError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from hte_report.results.result import HTEResult


def _tick(scale: str) -> ticker.Formatter:
    """Tick labels as in the tables: RD and survival differences in percentage points, U+2212
    minus signs."""
    k = 100 if scale in ("RD", "SurvDiff") else 1  # survival differences in % points
    return ticker.FuncFormatter(lambda x, _: f"{k * x:.6g}".replace("-", MINUS))


def _log_ticks(lo: float, hi: float, length: float, gap: float) -> list[float]:
    """Choose the densest nice log ticks at least ``gap`` apart on ``length`` points."""
    families = [(1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8), (1, 1.5, 2, 3, 5, 7), (1, 2, 3, 5),
                (1, 2, 5), (1, 2, 4), (1, 3), (1,)]
    for need in (3, 2):
        for mant in families:
            cand = ({2.0 ** k for k in range(-7, 8)} if mant == (1, 2, 4) else
                    {round(m * 10.0 ** k, 10) for k in range(-5, 6) for m in mant})
            ticks = sorted(t for t in cand if lo <= t <= hi)
            if len(ticks) >= need and len(ticks) <= 7 and min(
                    np.diff(np.log(ticks))) * length / math.log(hi / lo) >= gap:
                return ticks
    return [1.0]


def _limits(values: Sequence[float], null: float, log: bool,
            core: Sequence[float] | None = None, reach: float = 3.0) -> tuple[float, float]:
    """Axis limits covering the values and the null (ratios clipped to [0.01, 100]).

    On a linear axis, values further than ``reach`` times the spread of ``core`` (the
    estimates) from it are cut: one interval of a few patients, or a degenerate bound of 1e12,
    must not squash every other row into a line; the cut intervals end in arrow heads."""
    v = np.asarray([x for x in values if np.isfinite(x) and (x > 0 or not log)] + [null],
                   dtype=float)
    if core is not None and not log:
        c = np.asarray([x for x in core if np.isfinite(x)] + [null], dtype=float)
        span = (c.max() - c.min()) or abs(c.max()) or 1.0
        v = np.clip(v, c.min() - reach * span, c.max() + reach * span)
    if log:
        lo, hi = np.log(max(v.min(), 1e-2)), np.log(min(v.max(), 1e2))
        pad = 0.06 * max(hi - lo, np.log(2))
        return float(np.exp(lo - pad)), float(np.exp(hi + pad))
    lo, hi = float(v.min()), float(v.max())
    pad = 0.06 * ((hi - lo) or abs(hi) or 1.0)
    return lo - pad, hi + pad


def _drawn(lo: float, hi: float, log: bool):
    """Where an interval end is drawn: as given within reach of the axis, else (infinite or
    astronomically far ends) just beyond its edge, so the line runs to the arrow head without
    overflowing the renderer. NaN stays NaN (nothing drawn)."""
    if log:
        far = (lo * lo / hi, hi * hi / lo)
    else:
        far = (lo - (hi - lo), hi + (hi - lo))
    return lambda v: v if np.isnan(v) or far[0] <= v <= far[1] else float(np.clip(v, *far))


def _style_axis(ax: Axes, scale: str, style: ForestStyle, length: float, axis: str) -> None:
    """Readable ticks for an axis of ``length`` points; log scale for ratios."""
    small, log, fmt = style.font(style.font_size - 1), is_ratio(scale), _tick(scale)
    target = ax.xaxis if axis == "x" else ax.yaxis
    lo, hi = ax.get_xlim() if axis == "x" else ax.get_ylim()
    size = (lambda t: _width(fmt(t), small) + 6) if axis == "x" else (
        lambda t: 2.0 * small.get_size_in_points())
    if log:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
        ax.set_xlim(lo, hi) if axis == "x" else ax.set_ylim(lo, hi)
        target.set_major_locator(ticker.FixedLocator(_log_ticks(lo, hi, length, size(0.25))))
        target.set_minor_locator(ticker.NullLocator())
    else:
        for nbins in range(8, 1, -1):  # the most ticks whose labels do not touch
            loc = ticker.MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10])
            ticks = [t for t in loc.tick_values(lo, hi) if lo <= t <= hi]
            if len(ticks) < 2 or (ticks[1] - ticks[0]) * length / (hi - lo) >= max(map(size,
                                                                                    ticks)):
                break
        target.set_major_locator(loc)
    target.set_major_formatter(fmt)
    ax.tick_params(axis=axis, labelsize=small.get_size_in_points(), length=3, width=0.6, pad=2)
    for t in target.get_ticklabels():
        t.set_fontproperties(small)



# ------------------------------------------------------------------------ user options
def per_panel(name: str, value: object, primary: dict[str, tuple[str, str]],
              axes: Sequence[str], once: bool) -> dict[str, object]:
    """An option of the forest plot, per panel. ``value``: a mapping keyed by panel
    (``"absolute"``, ``"relative"``) or by the panel's scale (``"RD"``, ``"HR"``, ...), or -
    when ``once`` or only one panel is drawn - one value for every panel."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        if once or len(axes) == 1:
            return {a: value for a in axes}
        scales = ", ".join(f"{a!r} ({primary[a][0]})" for a in axes)
        raise OptionError(f"{name}= must be given per panel when both panels are drawn, as a "
                          f"mapping keyed by panel or scale: {scales}; e.g. {name}="
                          f"{{'absolute': ..., 'relative': ...}}.")
    out = {}
    names = {a: a for a in axes} | {primary[a][0]: a for a in axes}
    for key, v in value.items():
        if key not in names:
            raise OptionError(f"{name}= names {key!r}, which is not a panel drawn; use "
                              f"{sorted(names)}.")
        out[names[key]] = v
    return out


def _numbers(name: str, value: object, scale: str) -> list[float]:
    try:
        v = [float(x) for x in value]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise OptionError(f"{name}= for the {scale} panel must be numbers, got "
                          f"{value!r}.") from None
    if not all(math.isfinite(x) for x in v) or (is_ratio(scale) and min(v, default=1) <= 0):
        raise OptionError(f"{name}= for the {scale} panel must be finite"
                          f"{' and positive (a ratio scale)' if is_ratio(scale) else ''}, got "
                          f"{value!r}.")
    return v


def check_xlim(value: object, scale: str) -> tuple[float, float]:
    """x-limits (low, high) in the units of the tidy frame (a risk difference as a
    proportion, ratios as ratios)."""
    v = _numbers("xlim", value, scale)
    if len(v) != 2 or v[0] >= v[1]:
        raise OptionError(f"xlim= for the {scale} panel must be (low, high) with low < high, "
                          f"got {value!r}.")
    return v[0], v[1]


def check_ticks(value: object, scale: str, lim: tuple[float, float]) -> list[float]:
    """Tick positions within the panel's limits."""
    v = sorted(set(_numbers("ticks", value, scale)))
    if not v:
        raise OptionError(f"ticks= for the {scale} panel is empty.")
    out = [t for t in v if not lim[0] - 1e-12 <= t <= lim[1] + 1e-12]
    if out:
        raise OptionError(f"ticks= {out} of the {scale} panel lie outside its x-limits "
                          f"({lim[0]:.6g}, {lim[1]:.6g}); widen them with xlim=.")
    return v


def set_ticks(ax: Axes, ticks: list[float]) -> None:
    """Fixed ticks (after :func:`_style_axis`, keeping its formatter)."""
    ax.xaxis.set_major_locator(ticker.FixedLocator(ticks))
    ax.xaxis.set_minor_locator(ticker.NullLocator())


def panels_drawn(panels: object, available: list[str]) -> list[str]:
    """The panels ``panels=`` asks for, among those the result has."""
    from hte_report.spec.options import check_choice

    if not available:
        raise DataError("the result has no converged model to plot.")
    check_choice("panels", panels, ["both", "absolute", "relative"])
    if panels == "both":
        return available
    if panels not in available:
        raise OptionError(f"panels={panels!r}: the result has no {panels} scale (it has "
                          f"{', '.join(available)}).")
    return [panels]


def forest_options(result: HTEResult, axes: list[str], xlim: object, ticks: object,
                   decimals: object) -> dict[str, dict]:
    """xlim, ticks and decimals of the forest plot per panel, checked. Ticks without xlim
    widen the automatic limits to include them."""
    scale = {a: result.primary[a][0] for a in axes}
    lims = {a: check_xlim(v, scale[a]) for a, v in per_panel("xlim", xlim, result.primary,
                                                              axes, once=False).items()}
    tks = {a: v for a, v in per_panel("ticks", ticks, result.primary, axes, False).items()}
    dec = per_panel("decimals", decimals, result.primary, axes, once=True)
    for a, d in dec.items():
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or not 0 <= d <= 6:
            raise OptionError(f"decimals= for the {scale[a]} panel must be an integer from 0 "
                              f"to 6, got {d!r}.")
    for a, t in tks.items():
        tks[a] = check_ticks(t, scale[a], lims.get(a, (-math.inf, math.inf)))
    return {"xlim": lims, "ticks": tks, "decimals": dec}


def check_room(ax: Axes, width: float, need_w: float, need_h: float) -> None:
    """The given Axes' area must hold the text columns and one text line per row."""
    height = ax.get_position().height * 72 * ax.figure.get_figheight()
    if width < need_w or height < need_h:
        raise OptionError(
            f"the given Axes is {width / 72:.2f} x {height / 72:.2f} in; this forest plot "
            f"needs at least {need_w / 72:.2f} x {need_h / 72:.2f} in to draw without "
            "overlap. Give a larger Axes (or figure), fewer text columns (columns=...), "
            "one panel (panels=...) or a smaller font (style=ForestStyle(font_size=...)).")
