"""Forest plots and effect curves drawn from the tidy frames of an :class:`HTEResult`.

Every number shown comes from ``result.effects``, ``overall_effect``, ``interaction_p`` or
``curve``; nothing is refitted or recomputed. Axes labels (``forest-absolute``, ...) and artist
gids (``forest-points-absolute``, ``curve-estimate-relative``, ...) let tests read values back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.collections import LineCollection
from matplotlib.colors import is_color_like
from matplotlib.font_manager import FontProperties, fontManager
from matplotlib.markers import MarkerStyle
from matplotlib.patches import Polygon
from matplotlib.transforms import ScaledTranslation, blended_transform_factory

from hte_report.core.format import (
    MINUS,
    SCALE_NAMES,
    clean_label,
    fmt_ci,
    fmt_count,
    fmt_p,
    is_ratio,
)
from hte_report.errors import DataError
from hte_report.spec.options import OptionError, check_choice

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from hte_report.results.result import HTEResult

POSTHOC = "(post hoc \u2014 hypothesis-generating)"
_WEIGHT = {"continuous": ["n"], "binary": ["events_treated", "events_control"],
           "count": ["events_treated", "events_control"],
           "survival": ["events_treated", "events_control"]}  # marker area
#: Scales that measure the absence of the event (survival), so higher favours treatment
#: when the event is harmful.
_SURVIVAL_SCALES = ("SurvDiff", "RMSTDiff")
_UNINFORMATIVE = {"0", "1", "0.0", "1.0", "false", "true", "no", "yes", "control", "treated"}
_RENDERER = RendererAgg(10, 10, 300)  # text is measured as rendered at 300 dpi


@dataclass(frozen=True)
class ForestStyle:
    """Typography, colours and text columns of forest plots and effect curves.

    Parameters
    ----------
    font_family, font_size
        Font family (or families, first installed wins; DejaVu Sans supplies missing glyphs) and
        size in points; tick labels, p-values and notes use ``font_size - 1``.
    marker_color, overall_color, null_color, posthoc_color, shade_color, note_color
        Subgroup squares, intervals and curves; overall diamond and dashed line; null line;
        post hoc headings; zebra shading (``"none"`` switches it off); notes. Defaults are from
        the colour-blind-safe Okabe–Ito palette.
    show_counts, show_estimates, show_p_interaction, show_footnote
        Text columns: events/n per arm, estimate [CI], interaction p on heading rows; and the
        explanatory footnote.
    panel_width, max_label_width, row_height
        Inches. Longer subgroup labels are wrapped (headings) or truncated (levels);
        ``row_height=None`` uses 2 × font size up to 20 rows, tapering to 1.6 × at 40.

    Examples
    --------
    >>> ForestStyle(font_size=8, show_counts=False).font_size
    8
    """

    font_family: str | tuple[str, ...] = ("Arial", "Helvetica", "Liberation Sans", "DejaVu Sans")
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
            if f.name.endswith("_color") and not (v == "none" or is_color_like(v)):
                raise OptionError(f"ForestStyle.{f.name}={v!r} is not a matplotlib colour.")
            if f.name in ("font_size", "panel_width", "max_label_width", "row_height") and not (
                    (v is None and f.name == "row_height") or (isinstance(v, (int, float))
                                                               and v > 0)):
                raise OptionError(f"ForestStyle.{f.name} must be a positive number, got {v!r}.")

    def font(self, size: float | None = None, **kw: Any) -> FontProperties:
        """``FontProperties`` in this style's installed families (default size ``font_size``)."""
        wanted = [self.font_family] if isinstance(self.font_family, str) else self.font_family
        generic = {"serif", "sans-serif", "monospace"}
        found = [f for f in wanted if f in generic or f in _installed_fonts()]
        return FontProperties(family=found + ["DejaVu Sans"], size=size or self.font_size, **kw)


@lru_cache(maxsize=1)
def _installed_fonts() -> frozenset[str]:
    return frozenset(f.name for f in fontManager.ttflist)


def _check_style(style: object) -> ForestStyle:
    if style is not None and not isinstance(style, ForestStyle):
        raise TypeError(f"style must be a ForestStyle or None, got {type(style).__name__}; "
                        "write style=ForestStyle(font_size=8).")
    return ForestStyle() if style is None else style


# ------------------------------------------------------------------------------ text
def _width(text: str, prop: FontProperties) -> float:
    """Width of (multi-line) text in points, plus 2% for hinting."""
    return max((_line_width(line, prop) for line in text.split("\n")), default=0.0)


@lru_cache(maxsize=8192)
def _line_width(line: str, prop: FontProperties) -> float:
    # FontProperties hash by value: counts, p-values and labels repeat across rows and plots
    return _RENDERER.get_text_width_height_descent(line, prop, ismath=False)[0] * 0.2448


def _fit_text(text: str, width: float, prop: FontProperties, max_lines: int = 1) -> str:
    """Wrap to ``max_lines`` balanced lines of ``width`` points; truncate with an ellipsis."""
    lines, cur, words = [], "", text.split(" ")
    for i, word in enumerate(words):
        trial = f"{cur} {word}" if cur else word
        if not cur or _width(trial, prop) <= width:
            cur = trial
        else:
            lines, cur = lines + [cur], word
            if len(lines) == max_lines:  # no room left: the rest joins the last line, cut
                cur = " ".join(words[i:])
                break
    lines.append(cur)
    if len(lines) == 2 == max_lines:
        words = text.split(" ")
        lines = list(min(((" ".join(words[:k]), " ".join(words[k:])) for k in range(
            1, len(words))), key=lambda ab: max(_width(ab[0], prop), _width(ab[1], prop))))
    if len(lines) > max_lines:
        lines = lines[:max_lines - 1] + [" ".join(lines[max_lines - 1:])]
    lines[-1] = _truncate(lines[-1], width, prop)
    return "\n".join(lines)


def _truncate(line: str, width: float, prop: FontProperties) -> str:
    """The longest prefix of ``line`` that fits in ``width`` points with an ellipsis appended
    (``line`` itself when it fits); a bisection, so a 500-character label costs a dozen
    measurements."""
    cap = int(width / (0.15 * prop.get_size_in_points())) + 2  # no glyph is narrower
    if len(line) > cap:
        line = line[:cap]
    elif _width(line, prop) <= width:
        return line
    lo, hi = 1, max(1, len(line) - 2)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _width(line[:mid].rstrip() + "\u2026", prop) <= width:
            lo = mid
        else:
            hi = mid - 1
    return line[:lo].rstrip() + "\u2026"


def _arms(result: HTEResult, generic: tuple[str, str]) -> tuple[str, str]:
    """(control, treated) labels, or ``generic`` when the labels are codes such as 0/1."""
    labels = tuple(clean_label(x) for x in result.treatment_labels)
    return generic if {s.lower() for s in labels} & _UNINFORMATIVE else (labels[0], labels[1])


def _label(result: HTEResult, modifier: str) -> str:
    return clean_label((result.labels or {}).get(modifier) or modifier)


def _note(cell: pd.Series) -> str:
    note = cell.get("note")
    return clean_label(note) if isinstance(note, str) and note.strip() else "not estimable"


def _scale_title(scale: str) -> str:
    name = SCALE_NAMES.get(scale, scale)
    return f"{name} (log scale)" if is_ratio(scale) else name


def _tick(scale: str) -> ticker.Formatter:
    """Tick labels as in the tables: RD in percentage points, U+2212 minus signs."""
    k = 100 if scale == "RD" else 1
    return ticker.FuncFormatter(lambda x, _: f"{k * x:.6g}".replace("-", MINUS))


# ------------------------------------------------------------------------------ axes
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


# ------------------------------------------------------------------------------ forest plot
@dataclass
class _Row:
    kind: str  # overall | heading | level
    label: str
    cells: dict[str, pd.Series | None]  # axis -> tidy row
    counts: pd.Series | None = None
    p_text: dict[str, str] = field(default_factory=dict)
    posthoc: bool = False
    lines: int = 1
    top: float = 0.0

    @property
    def y(self) -> float:
        return self.top + self.lines / 2


def _rows(result: HTEResult, axes: list[str], adjusted: bool, overall: dict) -> list[_Row]:
    """All patients, then per modifier a heading row and its levels in frame order."""
    eff = {a: result.effects(a) for a in axes}
    tests = {a: result.interaction_p(a).set_index("modifier") for a in axes}
    counts = next((o for o in overall.values() if o is not None), None)
    rows = [_Row("overall", "All patients", dict(overall), counts)]
    for mod in result.modifiers:
        ptext = {}
        for a in axes:
            t = tests[a].loc[mod] if mod in tests[a].index else None
            p = fmt_p(np.nan if t is None else t.p_value)
            if adjusted and t is not None:
                p += f" (adj {fmt_p(t.p_adjusted)})"
            ptext[a] = f"P-int {'' if p[0] in '<>' else '= '}{p}"
        rows.append(_Row("heading", _label(result, mod), {a: None for a in axes}, None, ptext,
                         posthoc=mod in result.posthoc))
        spine = eff[axes[0]][eff[axes[0]].modifier == mod].sort_values("order")
        for level in spine.level:
            match = {a: eff[a][(eff[a].modifier == mod) & (eff[a].level == level)] for a in axes}
            cells = {a: m.iloc[0] if len(m) else None for a, m in match.items()}
            rows.append(_Row("level", clean_label(result.level_label(mod, level)), cells,
                             cells[axes[0]]))
    return rows


def forest_plot(
    result: HTEResult,
    ax: Axes | None = None,
    *,
    style: ForestStyle | None = None,
    higher_is_better: bool = False,
    adjusted: bool = False,
) -> Figure:
    """Forest plot of subgroup effects with absolute and relative panels side by side.

    Parameters
    ----------
    result
        A fitted :class:`~hte_report.result.HTEResult`; only its tidy frames are read.
    ax
        Draw into this Axes' area of its figure (the Axes itself is hidden). ``None`` creates a
        figure whose height grows with the number of rows.
    style
        A :class:`ForestStyle`; ``None`` uses the defaults.
    higher_is_better
        ``False`` (default): the outcome is harmful, so effects below the null favour treatment.
    adjusted
        Show the multiplicity-adjusted interaction p too, e.g. ``"0.044 (adj 0.13)"``.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import hte_report as hr
    >>> from hte_report.datasets import load_rossi
    >>> res = hr.fit("arrest ~ fin * (age + C(wexp))", load_rossi(), treatment="fin")
    >>> fig = forest_plot(res, adjusted=True)
    >>> [a.get_xscale() for a in fig.axes if a.get_label() in ("forest-absolute",
    ...                                                        "forest-relative")]
    ['linear', 'log']
    """
    import matplotlib.pyplot as plt

    style = _check_style(style)
    axes = [a for a in ("absolute", "relative") if a in result.primary]
    if not axes:
        raise DataError("the result has no converged model to plot.")
    overall = {a: result.overall_effect(a) for a in axes}
    overall = {a: o if o.scale == result.primary[a][0] else None for a, o in overall.items()}
    rows = _rows(result, axes, adjusted, overall)
    cols, texts = _columns(result, rows, axes, style)
    fs, small = style.font_size, style.font(style.font_size - 1)
    n_units = 0.0  # height in text lines: rows, gaps before headings, space above the axis
    for i, r in enumerate(rows):
        n_units += 0.35 if r.kind == "heading" and i else 0
        r.top, n_units = n_units, n_units + r.lines
    n_units += 0.3
    notes = _forest_notes(result, axes, rows, overall, adjusted) if style.show_footnote else []
    head_h, fav_h = 2.5 * fs + 8, 2.5 * fs + 12  # points: column headers; ticks and favours
    text_w = sum(w for k, _, w in cols if not k.startswith("panel")) + 8
    width = text_w + 72 * style.panel_width * len(axes) if ax is None else (
        ax.get_position().width * 72 * ax.figure.get_figwidth())
    note = _fit_text(" ".join(notes), width - 12, small, max_lines=12)
    foot_h = fav_h + (note.count("\n") + 1) * 1.3 * (fs - 1) + 8 if notes else fav_h
    if ax is None:
        row_h = 72 * style.row_height if style.row_height else fs * float(
            np.interp(len(rows), [20, 40], [2.0, 1.6]))
        box = (0.0, 0.0, width, head_h + n_units * row_h + foot_h)
        fig = plt.figure(figsize=(width / 72, box[3] / 72))
    else:  # the given Axes becomes an invisible container
        fig, pos = ax.figure, ax.get_position()
        box = tuple(72 * v for v in (pos.x0 * fig.get_figwidth(), pos.y0 * fig.get_figheight(),
                                     width / 72, pos.height * fig.get_figheight()))
        ax.set_axis_off()
    fw, fh = (72 * v for v in fig.get_size_inches())
    body_h = box[3] - head_h - foot_h
    x, flex = box[0] + 4, max(36.0, (box[2] - text_w) / len(axes))

    def new_axes(x0: float, w: float, label: str) -> Axes:
        a = fig.add_axes((x0 / fw, (box[1] + foot_h) / fh, w / fw, body_h / fh), label=label)
        a.set_ylim(n_units, 0)
        a.patch.set_visible(False)
        a.set_yticks([])
        for s in ("left", "right", "top"):
            a.spines[s].set_visible(False)
        return a

    bg = new_axes(x, box[2] - 8, "forest-background")
    bg.set_axis_off()
    for i, r in enumerate(rows):
        if i % 2 == 0 and style.shade_color != "none":
            bg.axhspan(r.top, r.top + r.lines, color=style.shade_color, lw=0, zorder=0)
    bg.axhline(0, color="black", lw=0.8)
    if notes:
        bg.annotate(note, (0, 0), xycoords="axes fraction", xytext=(0, -fav_h), va="top",
                    textcoords="offset points", color=style.note_color, fontproperties=small,
                    parse_math=False, linespacing=1.3, gid="forest-footnote")
    for key, header, w in cols:
        panel = key.startswith("panel-")
        a = new_axes(x, flex if panel else w, f"forest-{key.removeprefix('panel-')}")
        x += flex if panel else w
        ha, xa = ("center", 0.5) if panel or key in ("treated", "control") else ("left", 0.0)
        a.annotate(header, (xa, 1), xycoords="axes fraction", xytext=(4 * (ha == "left"), 4),
                   textcoords="offset points", ha=ha, va="bottom", linespacing=1.15,
                   fontproperties=style.font(weight="bold"), parse_math=False)
        if panel:
            _draw_panel(a, result, key.removeprefix("panel-"), rows, overall, style,
                        body_h / n_units, higher_is_better)
            continue
        a.set_axis_off()
        for i, (r, txt) in enumerate(zip(rows, texts[key], strict=True)):
            fp = (style.font(weight="bold" if r.kind != "level" else "normal") if key == "label"
                  else style.font(fs - 1, style="italic") if r.kind == "heading" else style.font())
            one = "\n" not in txt  # one line: baseline half a cap height below the row centre
            shift = ScaledTranslation((14 if r.kind == "level" and key == "label" else 4) * (
                ha == "left") / 72, -0.36 * fp.get_size_in_points() * one / 72,
                fig.dpi_scale_trans)
            a.text(xa, r.y, txt, transform=blended_transform_factory(a.transAxes, a.transData)
                   + shift, ha=ha, va="baseline" if one else "center", fontproperties=fp,
                   color=style.posthoc_color if r.posthoc and key == "label" else "black",
                   linespacing=1.1, gid=f"forest-{key}-{i}", parse_math=False)
    return fig


def _columns(result: HTEResult, rows: list[_Row], axes: list[str], style: ForestStyle
             ) -> tuple[list[tuple[str, str, float]], dict[str, list[str]]]:
    """Wrap labels (setting row heights); columns as (key, header, points) and texts."""
    prop, bold, small = style.font(), style.font(weight="bold"), style.font(style.font_size - 1)
    label_w = 72 * style.max_label_width
    if any(r.posthoc for r in rows):  # the post hoc tag always fits on one line
        label_w = max(label_w, _width(POSTHOC, bold))
    note_font = style.font(style.font_size - 1, style="italic")
    for r in rows:
        fp = bold if r.kind != "level" else prop
        if r.posthoc:
            one = f"{r.label} {POSTHOC}"
            r.label = one if _width(one, fp) <= label_w else (
                f"{_fit_text(r.label, label_w, fp, 2)}\n{POSTHOC}")
        else:
            r.label = _fit_text(r.label, label_w - 10 * (r.kind == "level"), fp,
                                2 if r.kind == "heading" else 1)
        r.lines = r.label.count("\n") + 1
        for c in r.cells.values():  # a not-estimable note may take two lines in its panel
            if r.kind == "level" and c is not None and not np.isfinite(c.estimate):
                note = _fit_text(_note(c), 72 * style.panel_width - 8,
                                 note_font, 2)
                r.lines = max(r.lines, note.count("\n") + 1)
    label_col = max(_width(r.label, bold) + 10 * (r.kind == "level") for r in rows)
    cols = [("label", "Subgroup", max(label_col, _width("Subgroup", bold)) + 6)]
    texts = {"label": [r.label for r in rows]}
    binary = result.family != "continuous"
    if style.show_counts:
        arms = _arms(result, ("Control", "Treated"))
        for key, name in (("treated", arms[1]), ("control", arms[0])):
            ev, n = f"events_{key}", f"n_{key}"
            texts[key] = ["" if r.counts is None else "\u2013" if not np.isfinite(r.counts[n])
                          else fmt_count(r.counts[ev], r.counts[n]) for r in rows]
            head = f"{name[:1].upper()}{name[1:14]}\n{'events/n' if binary else 'n'}"
            cols.append((key, head, max(_width(head, bold), *(_width(t, prop) for t in
                                                              texts[key])) + 10))
    pct = f"{100 * result.conf_level:g}%"
    for a in axes:
        scale = result.primary[a][0]
        cols.append((f"panel-{a}", _fit_text(_scale_title(scale), 72 * style.panel_width, bold,
                                             2), 72 * style.panel_width))
        if not (style.show_estimates or style.show_p_interaction):
            continue
        key, heads = f"text-{a}", [r for r in rows if r.kind == "heading"]
        texts[key] = [_estimate_text(r, a, style) for r in rows]
        head = f"{scale} ({pct} CI)" if style.show_estimates else ""
        w = max(_width(head, bold), *(_width(t, prop) for t, r in zip(texts[key], rows,
                                                                      strict=True)
                                      if r.kind != "heading"))
        if any(_width(r.p_text[a], small) > 1.6 * w for r in heads):  # (adj ...) below
            for i, r in enumerate(rows):
                if r.kind == "heading":
                    texts[key][i] = texts[key][i].replace(" (adj", "\n(adj")
                    r.lines = max(r.lines, 2)
        cols.append((key, head, max(w, *(_width(t, small) for t in texts[key])) + 10))
    return cols, texts


def _estimate_text(r: _Row, axis: str, style: ForestStyle) -> str:
    if r.kind == "heading":
        return r.p_text[axis] if style.show_p_interaction else ""
    c = r.cells[axis]
    if not style.show_estimates or c is None:  # no row on this scale: leave blank
        return ""
    return fmt_ci(c.estimate, c.conf_low, c.conf_high, c.scale)


def _forest_notes(result: HTEResult, axes: list[str], rows: list[_Row], overall: dict,
                  adjusted: bool) -> list[str]:
    pct = f"{100 * result.conf_level:g}%"
    size = "subgroup size" if result.family == "continuous" else "number of events"
    sized = [r.cells[a][_WEIGHT[result.family]].sum(min_count=1) for a in axes for r in rows
             if r.kind == "level" and r.cells[a] is not None]
    circles = ("; circles: conditional effects at the stated value of a continuous modifier"
               if not np.isfinite(sized).all() else "")
    notes = [f"Squares: subgroup effects (area proportional to {size}){circles}; lines: {pct} "
             "CIs; diamond and dashed line: overall effect."]
    how = {"OR": " (conditional)"}
    cond = circles or any(s in how for s, _ in result.primary.values())
    notes.append("; ".join(f"{s} from {m}{how.get(s, '')}" for s, m in result.primary.values())
                 + ("; conditional effects hold the other covariates at the reference profile"
                    if cond else "") + ".")
    adj = ""
    if adjusted:  # family sizes as recorded with the adjusted p-values
        t = result.interaction_p(axes[0])
        fam = t.groupby(t.get("family", pd.Series("all", t.index))).modifier.nunique()
        method = t.p_adjust_method.iloc[0] if len(t) else result.multiplicity
        adj = (f"; adj: {method}-adjusted across the {fam.iloc[0]} modifiers tested"
               if len(fam) == 1 else f"; adj: {method}-adjusted within each family ("
               + ", ".join(f"{n} {name}" for name, n in fam.items()) + " modifiers)")
    notes.append(f"P-int: Wald test of the treatment \u00d7 modifier terms in the model of each "
                 f"scale{adj}.")
    notes += [f"No overall {result.primary[a][0]}: the result has no standardized overall effect "
              "on that scale." for a in axes if overall[a] is None]
    notes += [f"Blank {result.primary[a][0]} rows: the result has no such subgroup on that "
              "scale." for a in axes if any(r.kind == "level" and r.cells[a] is None
                                            for r in rows)]
    if set(result.posthoc) & set(result.modifiers):
        notes.append("Post hoc modifiers were not pre-specified; their results are "
                     "hypothesis-generating.")
    return notes


def _draw_panel(ax: Axes, result: HTEResult, axis: str, rows: list[_Row], overall: dict,
                style: ForestStyle, row_h: float, higher_is_better: bool) -> None:
    """Null and overall lines, diamond, squares, intervals and notes of one scale."""
    scale = result.primary[axis][0]
    null, o = (1.0 if is_ratio(scale) else 0.0), overall[axis]
    subs = [(r, r.cells[axis]) for r in rows if r.kind == "level" and r.cells[axis] is not None]
    ok = [(r, c) for r, c in subs if np.isfinite(c.estimate)]
    vals = [v for _, c in ok for v in (c.estimate, c.conf_low, c.conf_high)]
    if o is not None:
        vals += [o.estimate, o.conf_low, o.conf_high]
    core = [c.estimate for _, c in ok] + ([] if o is None else [o.estimate, o.conf_low,
                                                                 o.conf_high])
    lo, hi = _limits(vals, null, is_ratio(scale), core=core)
    ax.set_xlim(lo, hi)
    end = _drawn(lo, hi, is_ratio(scale))
    length = ax.get_position().width * 72 * ax.figure.get_figwidth()
    _style_axis(ax, scale, style, length, "x")
    ax.spines["bottom"].set_linewidth(0.6)
    ax.axvline(null, color=style.null_color, lw=0.8, zorder=1, gid=f"forest-null-{axis}")
    if o is not None and np.isfinite(o.estimate):
        ax.axvline(o.estimate, color=style.overall_color, lw=0.7, ls=(0, (4, 3)), zorder=1,
                   gid=f"forest-overall-line-{axis}")
        y = rows[0].y
        clo, chi = (o.estimate if np.isnan(v) else end(v) for v in (o.conf_low, o.conf_high))
        ax.add_patch(Polygon([(clo, y), (o.estimate, y - 0.32), (chi, y),
                              (o.estimate, y + 0.32)], closed=True, color=style.overall_color,
                             zorder=3, gid=f"forest-overall-{axis}"))
    w = np.array([float(c[_WEIGHT[result.family]].sum(min_count=1)) for _, c in ok])
    side = 0.8 * row_h * np.sqrt(w / max(np.nanmax(w, initial=0), 1))  # area proportional to w
    ys = [r.y for r, _ in ok]
    ax.add_collection(LineCollection(
        [[(end(c.conf_low), y), (end(c.conf_high), y)] for (_, c), y in zip(ok, ys,
                                                                             strict=True)],
        colors=style.marker_color, linewidths=1.0, zorder=2, gid=f"forest-intervals-{axis}"))
    pts = ax.scatter([c.estimate for _, c in ok], ys, s=np.where(
        np.isfinite(w), np.maximum(side, 2.5), 0.45 * row_h) ** 2, color=style.marker_color,
        edgecolors="none", zorder=4, gid=f"forest-points-{axis}")
    shapes = {m: MarkerStyle(m).get_path().transformed(MarkerStyle(m).get_transform())
              for m in "so"}  # squares for subgroups, circles for rows without a size
    pts.set_paths([shapes["s" if np.isfinite(v) else "o"] for v in w])
    for (_, c), y in zip(ok, ys, strict=True):  # arrow heads where an interval leaves the axis
        for end, edge, mk in ((c.conf_low, lo, "<"), (c.conf_high, hi, ">")):
            if (end < edge) if mk == "<" else (end > edge):
                ax.plot([edge], [y], marker=mk, ms=4, color=style.marker_color, clip_on=False)
    prop = style.font(style.font_size - 1, style="italic")
    for i, (r, c) in enumerate(subs):
        if not np.isfinite(c.estimate):
            ax.text(0.5, r.y, _fit_text(_note(c), length - 8, prop,
                                        r.lines), transform=ax.get_yaxis_transform(),
                    ha="center", va="center", fontproperties=prop, color=style.note_color,
                    bbox={"fc": "white", "ec": "none", "pad": 0.6, "alpha": 0.9},
                    gid=f"forest-not-estimable-{axis}-{i}", parse_math=False, linespacing=1.0)
    control, treated = _arms(result, ("control", "treatment"))
    better_up = higher_is_better != (scale in _SURVIVAL_SCALES)
    left, right = (control, treated) if better_up else (treated, control)
    frac = float(np.clip(ax.transLimits.transform((null, 1))[0], 0.05, 0.95))
    small = style.font(style.font_size - 1)
    for side, text, ha, dx, room in (("left", f"\u2190 Favours {left}", "right", -3, frac),
                                     ("right", f"Favours {right} \u2192", "left", 3, 1 - frac)):
        if _width(text, small) > max(room, 0.5) * length + 18:
            text = text.replace("Favours ", "Favours\n")
        ax.annotate(text, (frac, 0), xycoords="axes fraction", xytext=(dx, -style.font_size - 9),
                    textcoords="offset points", ha=ha, va="top", fontproperties=small,
                    linespacing=1.1, gid=f"forest-favours-{axis}-{side}", parse_math=False)


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
    import matplotlib.pyplot as plt

    style = _check_style(style)
    check_choice("modifier", modifier, [m for m in result.modifiers
                                        if result.modifier_kinds.get(m) == "continuous"])
    axes = [a for a in ("absolute", "relative") if a in result.primary]
    if data is not None and not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame or None, got {type(data).__name__}.")
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
        cur = result.curve(axis, modifier)
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

    prof = ", ".join(f"{r.variable} = {show(r.value)}" for r in result.profile.itertuples()
                     if r.variable not in (modifier, result.treatment))
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
        + "; ".join(f"{s} from {m}" for s, m in result.primary.values()) + f". {rug}")
