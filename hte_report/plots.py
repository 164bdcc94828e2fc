"""Forest plots and effect curves drawn from the tidy frames of an :class:`HTEResult`.

Nothing here refits a model or recomputes an estimate or interval: every number plotted or printed
comes from ``result.effects``, ``result.overall_effect``, ``result.interaction_p`` or
``result.curve``. Artists carry ``gid`` values (``forest-points``, ``forest-intervals``,
``forest-overall``, ``curve-estimate``, ...) and panel Axes carry labels (``forest-absolute``,
``forest-text-treated``, ...) so tests can read the plotted values back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib import ticker, transforms
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.collections import LineCollection
from matplotlib.colors import is_color_like
from matplotlib.font_manager import FontProperties, fontManager
from matplotlib.patches import Polygon

from .errors import DataError
from .options import OptionError, check_choice
from .result import RELATIVE_SCALES

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .result import HTEResult

MINUS = "\u2212"
POSTHOC = "(post hoc \u2014 hypothesis-generating)"
SCALE_NAMES = {"MD": "Mean difference", "RD": "Risk difference", "RateDiff": "Rate difference",
               "RR": "Risk ratio", "OR": "Odds ratio", "RateRatio": "Rate ratio",
               "HR": "Hazard ratio", "MeanRatio": "Ratio of means"}
_UNINFORMATIVE = {"0", "1", "0.0", "1.0", "false", "true", "no", "yes", "control", "treated"}
_RENDERER = RendererAgg(10, 10, 300)  # widths as rendered at 300 dpi (hinting varies by dpi)


@dataclass(frozen=True)
class ForestStyle:
    """Typography, colours and text columns of a forest plot (defaults: Okabe–Ito palette).

    Parameters
    ----------
    font_family, font_size
        Font (first installed family of a tuple; DejaVu Sans supplies missing glyphs) and size
        in points for every text element; tick labels and notes use ``font_size - 1``.
    marker_color, overall_color, null_color, posthoc_color, shade_color, note_color
        Subgroup squares and intervals; overall diamond and dashed line; null line; post hoc
        headings; zebra shading (``"none"`` to switch off); not-estimable notes.
    show_counts, show_estimates, show_p_interaction, show_footnote
        Which text columns (events/n per arm, estimate with CI, interaction p on heading rows)
        and whether the explanatory footnote under the plot is drawn.
    panel_width, max_label_width, row_height
        Inches. ``row_height=None`` picks 2.0 × font size for short plots, tapering to 1.6 ×
        for 40 rows. Labels wider than ``max_label_width`` are wrapped (headings) or truncated.

    Examples
    --------
    >>> ForestStyle(font_size=7, show_counts=False).font_size
    7
    """

    font_family: str | tuple[str, ...] = ("Arial", "Helvetica", "Liberation Sans", "Nimbus Sans",
                                          "DejaVu Sans")
    font_size: float = 7.0
    marker_color: str = "#0072B2"
    overall_color: str = "#000000"
    null_color: str = "#000000"
    posthoc_color: str = "#D55E00"
    shade_color: str = "#F0F0F0"
    note_color: str = "#555555"
    show_counts: bool = True
    show_estimates: bool = True
    show_p_interaction: bool = True
    show_footnote: bool = True
    panel_width: float = 1.5
    max_label_width: float = 1.6
    row_height: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name.endswith("_color") and not (is_color_like(v) or v == "none"):
                raise OptionError(f"ForestStyle.{f.name}={v!r} is not a matplotlib colour.")
            if f.name in ("font_size", "panel_width", "max_label_width", "row_height") and (
                    v is not None and not v > 0):
                raise OptionError(f"ForestStyle.{f.name} must be positive, got {v!r}.")

    def font(self, size: float | None = None, **kw: Any) -> FontProperties:
        """``FontProperties`` in this style's family (size defaults to ``font_size``)."""
        return FontProperties(family=self.families, size=size or self.font_size, **kw)

    @property
    def families(self) -> list[str]:
        """The installed families of ``font_family``, then DejaVu Sans (matplotlib's own)."""
        wanted = [self.font_family] if isinstance(self.font_family, str) else self.font_family
        generic = {"serif", "sans-serif", "monospace", "cursive", "fantasy"}
        found = [f for f in wanted if f in generic or f in _installed_fonts()]
        return found + [f for f in ("DejaVu Sans",) if f not in found]


@lru_cache(maxsize=1)
def _installed_fonts() -> frozenset[str]:
    return frozenset(f.name for f in fontManager.ttflist)


# ------------------------------------------------------------------------------ formatting
def _minus(s: str) -> str:
    return s.replace("-", MINUS)


def format_p(p: float) -> str:
    """P value to two significant digits (at least two decimals), ``<0.001`` below 0.001.

    Examples
    --------
    >>> [format_p(p) for p in (0.0004, 0.0435, 0.1305, 0.5)]
    ['<0.001', '0.044', '0.13', '0.50']
    """
    if p is None or not np.isfinite(p):
        return "n/a"
    if p < 0.001:
        return "<0.001"
    return f"{p:.{max(2, 1 - math.floor(math.log10(p)))}f}"


def _num(x: float, d: int) -> str:
    s = f"{x:.{d}f}"
    return _minus(s[1:] if s.startswith("-") and float(s) == 0 else s)


def _decimals(scale: str, values: Sequence[float]) -> int:
    v = np.abs(np.asarray(values, dtype=float))
    v = v[np.isfinite(v) & (v > 0)]
    if scale in RELATIVE_SCALES or not len(v):
        return 2
    return int(np.clip(1 - math.floor(math.log10(v.max())), 0, 3))


def _count(x: float) -> str:
    return "" if not np.isfinite(x) else f"{x:.0f}" if float(x).is_integer() else f"{x:.1f}"


def _width(text: str, prop: FontProperties) -> float:
    """Rendered width of (multi-line) text in points, with a 2% margin for hinting."""
    return max((_RENDERER.get_text_width_height_descent(line, prop, ismath=False)[0] * 0.2448
                for line in text.split("\n")), default=0.0)


def _fit_text(text: str, width: float, prop: FontProperties, max_lines: int = 1) -> str:
    """Wrap ``text`` on spaces into at most ``max_lines`` lines of ``width`` points; truncate the
    last line with an ellipsis."""
    lines, cur = [], ""
    for word in text.split(" "):
        trial = f"{cur} {word}" if cur else word
        if _width(trial, prop) <= width or not cur:
            cur = trial
        else:
            lines.append(cur)
            cur = word
    lines.append(cur)
    if len(lines) == 2 == max_lines:  # balance two lines: no single-word orphan
        words = text.split(" ")
        splits = [(" ".join(words[:k]), " ".join(words[k:])) for k in range(1, len(words))]
        lines = list(min(splits, key=lambda ab: max(_width(ab[0], prop), _width(ab[1], prop))))
    if len(lines) > max_lines:
        lines = lines[:max_lines - 1] + [" ".join(lines[max_lines - 1:])]
    last = lines[-1]
    while _width(last, prop) > width and len(last) > 2:
        last = last[:-2].rstrip() + "\u2026"
    return "\n".join(lines[:-1] + [last])


def _arm_labels(result: HTEResult, generic: tuple[str, str]) -> tuple[str, str]:
    """(control, treated) labels of the result, or ``generic`` when they are codes like 0/1."""
    control, treated = (str(x) for x in result.treatment_labels)
    if control.lower() in _UNINFORMATIVE or treated.lower() in _UNINFORMATIVE:
        return generic
    return control, treated


def _label(result: HTEResult, modifier: str) -> str:
    return (result.labels or {}).get(modifier) or modifier


def _scale_title(scale: str) -> str:
    name = SCALE_NAMES.get(scale, scale)
    return f"{name} (log scale)" if scale in RELATIVE_SCALES else name


def _nice_log_ticks(lo: float, hi: float, length: float, min_gap: float) -> list[float]:
    """The densest readable tick set on a log axis of ``length`` points (labels ``min_gap``
    points apart at least), preferring 1-2-5 and powers of two."""
    per_pt = length / math.log(hi / lo)
    families = [(1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 8), (1, 2, 5), (1, 2, 4), (1, 3), (1,)]
    for mant in families:
        cand = {round(m * 10.0 ** k, 10) for k in range(-5, 6) for m in mant}
        if mant == (1, 2, 4):  # powers of two around 1: 1/8, 1/4, 1/2, 1, 2, 4, 8
            cand = {2.0 ** k for k in range(-6, 7)}
        ticks = sorted(t for t in cand if lo <= t <= hi)
        gaps = np.diff(np.log(ticks)) * per_pt if len(ticks) > 1 else [np.inf]
        if len(ticks) >= 2 and min(gaps) >= min_gap and len(ticks) <= 7:
            return ticks
    return [t for t in (10.0 ** k for k in range(-6, 7)) if lo <= t <= hi] or [1.0]


def _limits(values: Sequence[float], null: float, log: bool) -> tuple[float, float]:
    v = np.asarray([x for x in values if np.isfinite(x) and (x > 0 or not log)] + [null])
    if log:
        lo, hi = np.log(max(v.min(), 1e-2)), np.log(min(v.max(), 1e2))
        pad = 0.06 * max(hi - lo, np.log(2))
        return float(np.exp(lo - pad)), float(np.exp(hi + pad))
    lo, hi = float(v.min()), float(v.max())
    pad = 0.06 * ((hi - lo) or abs(hi) or 1.0)
    return lo - pad, hi + pad


def _style_axis(ax: Axes, scale: str, style: ForestStyle, length: float,
                axis: str = "x") -> None:
    """Ticks and labels of a panel axis of ``length`` points (log axes for ratio scales)."""
    small = style.font_size - 1
    log = scale in RELATIVE_SCALES
    target = ax.xaxis if axis == "x" else ax.yaxis
    if log:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
        lo, hi = ax.get_xlim() if axis == "x" else ax.get_ylim()
        gap = 1.8 * small if axis == "y" else _width("0.25", style.font(small)) + 8
        target.set_major_locator(ticker.FixedLocator(_nice_log_ticks(lo, hi, length, gap)))
        target.set_minor_locator(ticker.NullLocator())
    else:
        lo, hi = ax.get_xlim() if axis == "x" else ax.get_ylim()
        for nbins in range(8, 1, -1):  # the most ticks whose labels keep 6 points apart
            loc = ticker.MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10])
            ticks = [t for t in loc.tick_values(lo, hi) if lo <= t <= hi]
            size = max(_width(_minus(f"{t:g}"), style.font(small)) for t in ticks) if (
                axis == "x") else 1.8 * small
            if len(ticks) < 2 or (ticks[1] - ticks[0]) * length / (hi - lo) >= size + 6:
                break
        target.set_major_locator(loc)
    target.set_major_formatter(ticker.FuncFormatter(lambda x, _: _minus(f"{x:g}")))
    ax.tick_params(axis=axis, labelsize=small, length=3, width=0.6, pad=2)
    for t in target.get_ticklabels():
        t.set_fontfamily(style.families)


# ------------------------------------------------------------------------------ rows
@dataclass
class _Row:
    kind: str  # overall | heading | level
    label: str
    cells: dict[str, pd.Series | None]  # axis -> tidy row
    counts: pd.Series | None
    p_text: dict[str, str]
    posthoc: bool = False
    lines: int = 1
    top: float = 0.0

    @property
    def y(self) -> float:
        return self.top + self.lines / 2


def _rows(result: HTEResult, axes: list[str], adjusted: bool, overall: dict) -> list[_Row]:
    eff = {a: result.effects(a) for a in axes}
    tests = {a: result.interaction_p(a).set_index("modifier") for a in axes}
    base = overall[axes[0]] if overall[axes[0]] is not None else result.overall_effect(axes[0])
    rows = [_Row("overall", "All patients", dict(overall), base, {})]
    for mod in result.modifiers:
        ptext = {}
        for a in axes:
            t = tests[a].loc[mod] if mod in tests[a].index else None
            p = format_p(t.p_value) if t is not None else "n/a"
            if adjusted and t is not None:
                p += f" (adj {format_p(t.p_adjusted)})"
            ptext[a] = f"P-int = {p}"
        rows.append(_Row("heading", _label(result, mod), {a: None for a in axes}, None, ptext,
                         posthoc=mod in result.posthoc))
        spine = eff[axes[0]]
        for r in spine[spine.modifier == mod].sort_values("order").itertuples(index=False):
            cells = {}
            for a in axes:
                m = eff[a][(eff[a].modifier == mod) & (eff[a].level == r.level)]
                cells[a] = m.iloc[0] if len(m) else None
            rows.append(_Row("level", str(r.level), cells, cells[axes[0]], {}))
    return rows


# ------------------------------------------------------------------------------ forest plot
def forest_plot(
    result: HTEResult,
    ax: Axes | None = None,
    *,
    style: ForestStyle | None = None,
    higher_is_better: bool = False,
    adjusted: bool = False,
    title: str | None = None,
) -> Figure:
    """Forest plot of subgroup effects with absolute and relative panels side by side.

    Parameters
    ----------
    result
        A fitted :class:`~hte_report.result.HTEResult`; only its tidy frames are read.
    ax
        Draw into the area of this Axes (which becomes an invisible container) in its figure.
        ``None`` creates a figure whose height grows with the number of rows.
    style
        A :class:`ForestStyle`; ``None`` uses the defaults.
    higher_is_better
        ``False`` (default): the outcome is harmful, so effects below the null favour treatment.
    adjusted
        Also show the multiplicity-adjusted interaction p (``"0.044 (adj 0.13)"``).
    title
        Optional title above the plot.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import hte_report as hr
    >>> from hte_report.datasets import load_rossi
    >>> res = hr.fit("arrest ~ fin * (age + C(wexp))", load_rossi(), treatment="fin")
    >>> fig = forest_plot(res, adjusted=True)
    >>> [a.get_xscale() for a in fig.axes if a.get_label().startswith("forest-") and
    ...  a.get_label().count("-") == 1]
    ['linear', 'log']
    """
    import matplotlib.pyplot as plt

    style = _check_style(style)
    axes = [a for a in ("absolute", "relative") if a in result.primary]
    if not axes:
        raise DataError("the result has no converged model to plot.")
    overall: dict[str, pd.Series | None] = {}
    for a in axes:
        o = result.overall_effect(a)
        overall[a] = o if o.scale == result.primary[a][0] else None  # never mislabel a scale
    rows = _rows(result, axes, adjusted, overall)
    fs, small = style.font_size, style.font_size - 1
    prop, bold = style.font(), style.font(weight="bold")
    label_w = 72 * style.max_label_width
    if any(r.posthoc for r in rows):  # the post hoc tag always fits on one line
        label_w = max(label_w, _width(POSTHOC, bold))
    for r in rows:  # wrap headings, truncate levels; taller rows where needed
        fp = bold if r.kind != "level" else prop
        if r.posthoc:  # the post hoc tag on its own line unless all fits on one
            one = f"{r.label} {POSTHOC}"
            r.label = one if _width(one, fp) <= label_w else (
                f"{_fit_text(r.label, label_w, fp, 2)}\n{_fit_text(POSTHOC, label_w, fp, 2)}")
        else:
            r.label = _fit_text(r.label, label_w - (10 if r.kind == "level" else 0), fp,
                                max_lines=2 if r.kind == "heading" else 1)
        r.lines = r.label.count("\n") + 1
    binary = result.family != "continuous"
    ctrl, trt = _arm_labels(result, ("Control", "Treated"))
    pct = f"{100 * result.conf_level:g}%"
    cols: list[tuple[str, str, float]] = []  # (key, header, width in points)
    cols.append(("label", "Subgroup", min(label_w, max(_width(r.label, bold) + (
        10 if r.kind == "level" else 0) for r in rows)) + 6))
    texts: dict[str, list[str]] = {}
    if style.show_counts:
        for key, name, ev, n in (("treated", trt, "events_treated", "n_treated"),
                                 ("control", ctrl, "events_control", "n_control")):
            texts[key] = ["" if r.counts is None else
                          (f"{_count(r.counts[ev])}/{_count(r.counts[n])}" if binary
                           else _count(r.counts[n])) for r in rows]
            head = f"{name[:1].upper()}{name[1:14]}\n{'events/n' if binary else 'n'}"
            cols.append((key, head, max(_width(head, bold), *(_width(t, prop) for t in
                                                              texts[key])) + 10))
    for a in axes:
        scale = result.primary[a][0]
        cols.append((f"panel-{a}", _scale_title(scale), 72 * style.panel_width))
        if style.show_estimates or style.show_p_interaction:
            vals = [v for r in rows for c in [r.cells[a]] if c is not None
                    for v in (c.estimate, c.conf_low, c.conf_high)]
            d = _decimals(scale, vals)
            texts[a] = [_estimate_text(r, a, d, style) for r in rows]
            head = f"{scale} [{pct} CI]" if style.show_estimates else ""
            w = max(_width(head, bold), *(_width(t, prop) for t, r in zip(texts[a], rows)
                                          if r.kind != "heading"))
            heads = [i for i, r in enumerate(rows) if r.kind == "heading"]
            if any(_width(texts[a][i], style.font(small)) > 1.6 * w for i in heads):
                for i in heads:  # very long "P-int = x (adj y)": two lines on every heading
                    texts[a][i] = texts[a][i].replace(" (adj", "\n(adj")
                    rows[i].lines = max(rows[i].lines, 2)
            cols.append((f"text-{a}", head, max(w, *(_width(t, style.font(small))
                                                     for t in texts[a])) + 10))
    # ---------------------------------------------------------------- geometry (points)
    n_units = 0.0
    for i, r in enumerate(rows):
        n_units += 0.35 if r.kind == "heading" and i else 0
        r.top, n_units = n_units, n_units + r.lines
    n_units += 0.3  # breathing space above the x axis
    row_h = 72 * style.row_height if style.row_height else fs * float(
        np.interp(len(rows), [20, 40], [2.0, 1.6]))
    notes = _forest_notes(result, axes, overall, adjusted, binary, pct) if (
        style.show_footnote) else []
    head_h = 2 * fs * 1.25 + 8 + (fs * 1.6 + 6 if title else 0)
    fav_h = 8 + 2 * small * 1.25 + 6
    text_w = sum(w for k, _, w in cols if not k.startswith("panel")) + 8
    if ax is None:
        width = text_w + 72 * style.panel_width * len(axes)
        note_text = _fit_text(" ".join(notes), width - 8, style.font(small), max_lines=12)
        foot_h = fav_h + (note_text.count("\n") + 1) * small * 1.3 + 8 if notes else fav_h
        height = head_h + n_units * row_h + foot_h
        fig = plt.figure(figsize=(width / 72, height / 72))
        box = (0.0, 0.0, width, height)
    else:
        fig = ax.figure
        pos = ax.get_position()
        fw, fh = (72 * v for v in fig.get_size_inches())
        box = (pos.x0 * fw, pos.y0 * fh, pos.width * fw, pos.height * fh)
        width = box[2]
        note_text = _fit_text(" ".join(notes), width - 8, style.font(small), max_lines=12)
        foot_h = fav_h + (note_text.count("\n") + 1) * small * 1.3 + 8 if notes else fav_h
        ax.set_axis_off()
        ax.set_label("forest-container")
    fw, fh = (72 * v for v in fig.get_size_inches())
    body_h = box[3] - head_h - foot_h
    flex = max(36.0, (box[2] - text_w) / len(axes))
    x = box[0] + 4
    body_y = box[1] + foot_h

    def new_axes(x0: float, w: float, label: str) -> Axes:
        a = fig.add_axes((x0 / fw, body_y / fh, w / fw, body_h / fh), label=label)
        a.set_ylim(n_units, 0)
        a.patch.set_visible(False)
        a.set_yticks([])
        for s in ("left", "right", "top"):
            a.spines[s].set_visible(False)
        return a

    bg = new_axes(x, box[2] - 8, "forest-background")
    bg.set_zorder(-1)
    bg.set_axis_off()
    for i, r in enumerate(rows):
        if i % 2 == 0 and style.shade_color != "none":
            bg.axhspan(r.top, r.top + r.lines, color=style.shade_color, lw=0)
    bg.axhline(0, color="black", lw=0.8)
    if title:
        bg.annotate(title, (0, 1), xycoords="axes fraction", xytext=(0, head_h - fs * 1.4),
                    textcoords="offset points", fontproperties=style.font(fs + 1, weight="bold"),
                    va="bottom", parse_math=False)
    for key, header, w in cols:
        if key.startswith("panel"):
            w = flex
        a = new_axes(x, w, f"forest-{key.removeprefix('panel-')}")
        x += w
        is_panel = key.startswith("panel")
        ha, xa = {"label": ("left", 0.0), "treated": ("center", 0.5), "control": (
            "center", 0.5)}.get(key, ("center", 0.5) if is_panel else ("left", 0.0))
        a.annotate(header, (xa, 1), xycoords="axes fraction", xytext=(4 if ha == "left" else 0,
                   4), textcoords="offset points", ha=ha, va="bottom", fontproperties=bold,
                   parse_math=False, linespacing=1.15)
        if is_panel:
            _draw_panel(a, result, key.removeprefix("panel-"), rows, overall, style, row_h,
                        higher_is_better, binary)
            continue
        a.set_axis_off()
        a.set_xlim(0, 1)
        for i, r in enumerate(rows):
            if key == "label":
                txt, fp = r.label, bold if r.kind != "level" else prop
                color = style.posthoc_color if r.posthoc else "black"
            else:
                txt = texts[key.removeprefix("text-")][i]
                fp = style.font(small, style="italic") if r.kind == "heading" else prop
                color = "black"
            dx = (14 if r.kind == "level" and key == "label" else 4) if ha == "left" else 0
            one = "\n" not in txt  # one line: baseline half a cap height below the row centre
            dy = -0.36 * fp.get_size_in_points() if one else 0.0
            tr = transforms.blended_transform_factory(a.transAxes, a.transData)
            a.text(xa, r.y, txt, transform=tr + transforms.ScaledTranslation(
                dx / 72, dy / 72, fig.dpi_scale_trans), ha=ha, fontproperties=fp,
                va="baseline" if one else "center", color=color, gid=f"forest-{key}-{i}", parse_math=False, linespacing=1.1)
    if notes:
        bg.annotate(note_text, (0, 0), xycoords="axes fraction", xytext=(0, -fav_h),
                    textcoords="offset points", va="top", ha="left", color=style.note_color,
                    fontproperties=style.font(small), parse_math=False, linespacing=1.3)
    return fig


def _check_style(style: object) -> ForestStyle:
    if style is None:
        return ForestStyle()
    if not isinstance(style, ForestStyle):
        raise TypeError(f"style must be a ForestStyle or None, got {type(style).__name__}; "
                        "write style=ForestStyle(font_size=7).")
    return style


def _estimate_text(r: _Row, axis: str, d: int, style: ForestStyle) -> str:
    if r.kind == "heading":
        return r.p_text[axis] if style.show_p_interaction else ""
    c = r.cells[axis]
    if c is None or not style.show_estimates:
        return "" if r.kind == "overall" or not style.show_estimates else "not estimable"
    if not np.isfinite(c.estimate):
        return "not estimable"
    return f"{_num(c.estimate, d)} [{_num(c.conf_low, d)}, {_num(c.conf_high, d)}]"


def _forest_notes(result: HTEResult, axes: list[str], overall: dict, adjusted: bool,
                  binary: bool, pct: str) -> list[str]:
    size = "number of events" if binary else "subgroup size"
    notes = [f"Squares: standardized subgroup effects (area proportional to {size}); lines: "
             f"{pct} CIs; diamond and dashed line: overall effect."]
    notes.append("; ".join(f"{s} from {m}" for s, m in result.primary.values()) + ".")
    adj = ""
    if adjusted:
        pre = [m for m in result.modifiers if m not in result.posthoc]
        if "family" in result.interactions.columns and len(pre) < len(result.modifiers):
            adj = (f"; adj: {result.multiplicity}-adjusted across the {len(pre)} pre-specified "
                   "modifiers (post hoc modifiers as a separate family)")
        else:
            adj = f"; adj: {result.multiplicity}-adjusted across {len(result.modifiers)} modifiers"
    notes.append(f"P-int: Wald test of the treatment \u00d7 modifier terms in the model of each "
                 f"scale{adj}.")
    for a in axes:
        if overall[a] is None:
            notes.append(f"No overall {result.primary[a][0]} is shown: the frame has no "
                         "standardized overall effect on that scale.")
    if any(p in result.modifiers for p in result.posthoc):
        notes.append("Post hoc modifiers were not pre-specified; their results are "
                     "hypothesis-generating.")
    return notes


def _draw_panel(ax: Axes, result: HTEResult, axis: str, rows: list[_Row], overall: dict,
                style: ForestStyle, row_h: float, higher_is_better: bool, binary: bool) -> None:
    scale = result.primary[axis][0]
    log = scale in RELATIVE_SCALES
    null = 1.0 if log else 0.0
    o = overall[axis]
    subs = [(r, r.cells[axis]) for r in rows if r.kind == "level" and r.cells[axis] is not None]
    ok = [(r, c) for r, c in subs if np.isfinite(c.estimate)]
    vals = [v for _, c in ok for v in (c.estimate, c.conf_low, c.conf_high)]
    if o is not None:
        vals += [o.estimate, o.conf_low, o.conf_high]
    lo, hi = _limits(vals, null, log)
    ax.set_xlim(lo, hi)
    _style_axis(ax, scale, style, ax.get_position().width * 72 * ax.figure.get_figwidth())
    ax.spines["bottom"].set_linewidth(0.6)
    ax.axvline(null, color=style.null_color, lw=0.8, zorder=1, gid="forest-null")
    if o is not None and np.isfinite(o.estimate):
        ax.axvline(o.estimate, color=style.overall_color, lw=0.7, ls=(0, (4, 3)), zorder=1,
                   gid="forest-overall-line")
        y = rows[0].y
        ax.add_patch(Polygon([(o.conf_low, y), (o.estimate, y - 0.32), (o.conf_high, y),
                              (o.estimate, y + 0.32)], closed=True, color=style.overall_color,
                             zorder=3, gid="forest-overall"))
    weight_col = ("events_treated", "events_control") if binary else ("n",)
    w = np.array([sum(float(c[k]) for k in weight_col) for _, c in ok])
    side = 0.8 * row_h * np.sqrt(np.where(np.isfinite(w), w, 0) / max(np.nanmax(w, initial=0), 1))
    ys = [r.y for r, _ in ok]
    ax.add_collection(LineCollection(
        [[(c.conf_low, y), (c.conf_high, y)] for (_, c), y in zip(ok, ys)],
        colors=style.marker_color, linewidths=1.0, zorder=2, gid="forest-intervals"))
    ax.scatter([c.estimate for _, c in ok], ys, s=np.maximum(side, 2.5) ** 2, marker="s",
               color=style.marker_color, edgecolors="none", zorder=4, gid="forest-points")
    for (_, c), y in zip(ok, ys):  # intervals running off the axis get an arrow head
        for end, edge, mk in ((c.conf_low, lo, "<"), (c.conf_high, hi, ">")):
            if (end < edge) if mk == "<" else (end > edge):
                ax.plot([edge], [y], marker=mk, ms=4, color=style.marker_color, clip_on=False,
                        gid="forest-clipped")
    prop = style.font(style.font_size - 1, style="italic")
    tr = transforms.blended_transform_factory(ax.transAxes, ax.transData)
    for r, c in subs:
        if not np.isfinite(c.estimate):
            note = str(c.note or "not estimable")
            ax.text(0.5, r.y, _fit_text(note, 72 * style.panel_width - 6, prop, r.lines),
                    transform=tr, ha="center", va="center", fontproperties=prop,
                    color=style.note_color, gid="forest-not-estimable", parse_math=False,
                    linespacing=1.0)
    _favours(ax, null, higher_is_better, _arm_labels(result, ("control", "treatment")), style)


def _favours(ax: Axes, null: float, higher_is_better: bool, arms: tuple[str, str],
             style: ForestStyle) -> None:
    control, treated = arms
    left, right = (control, treated) if higher_is_better else (treated, control)
    prop = style.font(style.font_size - 1)
    frac = float(np.clip(ax.transLimits.transform((null, 0))[0], 0.1, 0.9))
    tr = transforms.blended_transform_factory(ax.transAxes, ax.transAxes)
    tick_h = style.font_size + 9
    for text, ha, dx, room in ((f"\u2190 Favours {left}", "right", -3, frac),
                               (f"Favours {right} \u2192", "left", 3, 1 - frac)):
        avail = max(room, 0.5) * 72 * style.panel_width + 18
        if _width(text, prop) > avail:
            text = text.replace("Favours ", "Favours\n") if ha == "right" else text.replace(
                "Favours ", "Favours\n", 1)
        ax.annotate(text, (frac, 0), xycoords=tr, xytext=(dx, -tick_h), textcoords=
                    "offset points", ha=ha, va="top", fontproperties=prop, linespacing=1.1,
                    gid="forest-favours", parse_math=False)


# ------------------------------------------------------------------------------ effect curve
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
    modifier's observed range, with a pointwise confidence band, read from ``result.curve``.

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
        One Axes per panel (absolute, then relative); ``None`` creates a figure.
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
    >>> fig = effect_curve(res, "age", data=d)
    >>> [a.get_yscale() for a in fig.axes]
    ['linear', 'log']
    """
    import matplotlib.pyplot as plt

    style = _check_style(style)
    continuous = [m for m in result.modifiers if result.modifier_kinds.get(m) == "continuous"]
    check_choice("modifier", modifier, continuous)
    axes = [a for a in ("absolute", "relative") if a in result.primary]
    if data is not None:
        if not isinstance(data, pd.DataFrame):
            raise TypeError(f"data must be a pandas DataFrame or None, got {type(data).__name__}.")
        if modifier not in data.columns:
            raise DataError(f"data has no column {modifier!r} for the rug; pass the data the "
                            "result was fitted on, or data=None.")
    fs, small = style.font_size, style.font_size - 1
    label = _label(result, modifier)
    arms = _arm_labels(result, ("control", "treated"))
    prof = ", ".join(f"{r.variable} = {_profile_value(r.value)}" for r in
                     result.profile.itertuples() if r.variable not in (modifier, result.treatment))
    pct = f"{100 * result.conf_level:g}%"
    ctrl, trt = (str(x) for x in result.treatment_labels)
    caption = (f"Effect of {result.treatment} ({trt} vs {ctrl}) with the other covariates "
               f"at the reference profile{' (' + prof + ')' if prof else ''}; band: pointwise "
               f"{pct} CI; " + "; ".join(f"{s} from {m}" for s, m in result.primary.values())
               + ". " + (f"Rug: observed values of {label} (n = "
                         f"{int(data[modifier].notna().sum())})." if data is not None else
                         "Rug omitted: pass data= to show the observed values."))
    if ax is None:  # layout in points: title, panel titles, plot, ticks, x label, caption
        width = 72 * (3.5 * len(axes) if len(axes) > 1 else 3.8)
        caption = _fit_text(caption, width - 16, style.font(small), max_lines=6)
        top = (fs + 1) * 1.6 + 2 * fs * 1.3 + 16
        bottom = fs * 2 + 20 + (caption.count("\n") + 1) * small * 1.3 + 12
        height = top + 2.3 * 72 + bottom
        fig, grid = plt.subplots(1, len(axes), figsize=(width / 72, height / 72), squeeze=False)
        panels = list(grid[0])
        left = fs * 4.5 + 16
        fig.subplots_adjust(left=left / width, right=1 - 12 / width, top=1 - top / height,
                            bottom=bottom / height, wspace=(left + 12) / (width / len(axes)))
        fig.suptitle(f"{label}: conditional effect at the reference profile", x=6 / width,
                     y=1 - 6 / height, ha="left", va="top",
                     fontproperties=style.font(fs + 1, weight="bold"))
        fig.text(6 / width, 6 / height, caption, fontproperties=style.font(small),
                 color=style.note_color, va="bottom", ha="left", parse_math=False,
                 linespacing=1.3, gid="curve-caption")
    else:
        panels = [ax] if not isinstance(ax, Sequence) else list(ax)
        if len(panels) != len(axes):
            raise ValueError(f"ax must hold {len(axes)} Axes (one per scale: {axes}), "
                             f"got {len(panels)}.")
        fig = panels[0].figure
    for a, axis in zip(panels, axes):
        cur = result.curve(axis, modifier)
        if cur.empty:
            raise DataError(f"result.curves has no rows for {modifier!r} on the {axis} scale.")
        scale = str(cur.scale.iloc[0])
        log = scale in RELATIVE_SCALES
        x = cur.value.to_numpy(float)
        a.fill_between(x, cur.conf_low, cur.conf_high, color=style.marker_color, alpha=0.18,
                       lw=0, gid="curve-band")
        a.plot(x, cur.conf_low, color=style.marker_color, lw=0.6, gid="curve-low")
        a.plot(x, cur.conf_high, color=style.marker_color, lw=0.6, gid="curve-high")
        a.plot(x, cur.estimate, color=style.marker_color, lw=1.6, gid="curve-estimate")
        a.axhline(1.0 if log else 0.0, color=style.null_color, lw=0.8, gid="curve-null")
        a.set_xlim(x.min(), x.max())
        lo, hi = _limits(list(cur.conf_low) + list(cur.conf_high), 1.0 if log else 0.0, log)
        if data is not None:  # room for the rug below the band
            lo = lo * (lo / hi) ** 0.06 if log else lo - 0.06 * (hi - lo)
        a.set_ylim(lo, hi)
        size = a.get_position().size * fig.get_size_inches() * 72
        _style_axis(a, scale, style, size[1], axis="y")
        _style_axis(a, "", style, size[0], axis="x")
        for side in ("right", "top"):
            a.spines[side].set_visible(False)
        if data is not None:
            rug = pd.to_numeric(data[modifier], errors="coerce").dropna().to_numpy(float)
            a.vlines(np.unique(rug), 0, 0.04, transform=a.get_xaxis_transform(), color="black",
                     lw=0.5, gid="curve-rug")
        tests = result.interaction_p(axis)
        t = tests[tests.modifier == modifier]
        p = format_p(t.p_value.iloc[0]) if len(t) else "n/a"
        a.set_title(f"{_scale_title(scale)}\nP for interaction (Wald) = {p}",
                    fontproperties=style.font(fs), loc="left", pad=6, linespacing=1.3)
        a.set_xlabel(label, fontproperties=style.font(fs), labelpad=4)
        a.set_ylabel(f"{SCALE_NAMES.get(scale, scale)}, {arms[1]} vs {arms[0]}\n"
                     "at the reference profile", fontproperties=style.font(fs),
                     linespacing=1.2)
    return fig


def _profile_value(v: object) -> str:
    try:
        return _minus(f"{float(v):.3g}")  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(v)
