"""Axes shared by forest plots and effect curves: limits, readable ticks (log ticks for ratio
scales) and tick labels formatted as in the tables."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib import ticker

from hte_report.core.format import MINUS, is_ratio
from hte_report.presentation.plots.style import ForestStyle, _width

if TYPE_CHECKING:
    from matplotlib.axes import Axes


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

