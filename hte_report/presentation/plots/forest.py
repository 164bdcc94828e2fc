"""The forest plot: subgroup effects with absolute and relative panels side by side, text
columns (labels, counts, estimates, interaction p) and an explanatory footnote."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.markers import MarkerStyle
from matplotlib.patches import Polygon
from matplotlib.transforms import ScaledTranslation, blended_transform_factory

from hte_report.core.format import clean_label, fmt_count, fmt_p, is_ratio
from hte_report.presentation.plots.axes import (
    _drawn,
    _limits,
    _style_axis,
    check_room,
    forest_options,
    panels_drawn,
    set_ticks,
)
from hte_report.presentation.plots.forest_notes import _WEIGHT, _forest_notes
from hte_report.presentation.plots.style import (
    ForestStyle,
    _arms,
    _check_style,
    _fit_text,
    _label,
    _note,
    _scale_title,
    _width,
    fmt_decimals,
    relabelled,
    with_columns,
)
from hte_report.presentation.survival import fmt_effect, higher_favours, is_survival, scale_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from hte_report.results.result import HTEResult

POSTHOC = "(post hoc \u2014 hypothesis-generating)"


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
    modifier: str = ""

    @property
    def y(self) -> float:
        return self.top + self.lines / 2


def _rows(result: HTEResult, axes: list[str], adjusted: bool, overall: dict,
          comparison: str | None = None) -> list[_Row]:
    """All patients, then per modifier a heading row and its levels in frame order."""
    from hte_report.presentation.analyses import display_levels

    eff = {a: result.effects(a, comparison=comparison) for a in axes}
    tests = {a: result.interaction_p(a, comparison=comparison).set_index("modifier")
             for a in axes}
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
        for level, first in display_levels(eff, mod, axes):
            match = {a: eff[a][(eff[a].modifier == mod) & (eff[a].level == level)] for a in axes}
            cells = {a: m.iloc[0] if len(m) else None for a, m in match.items()}
            rows.append(_Row("level", clean_label(result.level_label(mod, level)), cells,
                             first, modifier=mod))
    return rows


def check_plot_arguments(result: object, ax: object = None, **flags: object) -> None:
    """A plot of an :class:`HTEResult` into an optional matplotlib Axes; yes/no options are
    True or False (a text such as ``"no"`` would count as yes)."""
    from hte_report.errors import ArgumentError
    from hte_report.results.result import require_result

    require_result(result, "a plot")
    if ax is not None:
        from matplotlib.axes import Axes

        if not isinstance(ax, Axes):
            raise ArgumentError(f"ax= must be a matplotlib Axes (e.g. from plt.subplots()), got "
                                f"{type(ax).__name__}.")
    from hte_report.spec.options import check_flags

    check_flags(**flags)


def forest_plot(
    result: HTEResult,
    ax: Axes | None = None,
    *,
    style: ForestStyle | None = None,
    higher_is_better: bool = False,
    adjusted: bool = False,
    comparison: str | None = None,
    panels: str = "both",
    xlim: object = None,
    ticks: object = None,
    decimals: object = None,
    arm_labels: tuple[str, str] | None = None,
    columns: tuple[str, ...] | None = None,
    labels: dict[str, str] | None = None,
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
    comparison
        For a treatment with three or more arms: which comparison (``"B vs A"``, one of
        ``result.comparisons``; default the first). It is named in the footnote.
    panels
        ``"both"`` (default), ``"absolute"`` or ``"relative"``.
    xlim, ticks
        x-limits ``(low, high)`` and tick positions, in the units of the tidy frame (a risk
        difference as a proportion: ``(-0.2, 0.1)`` is −20 to 10 percentage points; ratios as
        ratios). With both panels, a mapping keyed by panel or scale:
        ``xlim={"RD": (-0.3, 0.2), "RR": (0.5, 2)}``. Intervals beyond the limits end in arrow
        heads.
    decimals
        Decimals of the estimate column (percentage points for risk differences), one number
        or a mapping per panel; default as in the tables.
    arm_labels
        ``(control, treated)`` names for the count columns and the "Favours ..." labels;
        default the result's ``treatment_labels`` (the plan's ``control_label`` /
        ``treated_label`` in a report).
    columns
        Text columns to show, any of ``"counts"``, ``"estimates"``, ``"p"`` (default: as
        ``style`` says, all three).
    labels
        Display labels of modifiers, overriding the result's (e.g. the variable labels of a
        SAS file: ``labels=hte_report.data.readers.variable_labels(df)``).

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

    check_plot_arguments(result, ax, higher_is_better=higher_is_better, adjusted=adjusted)
    if comparison is not None and not result.comparisons:
        from hte_report.spec.options import OptionError

        raise OptionError(f"comparison={comparison!r} applies to a treatment with three or more "
                          "arms; this result compares two arms. Remove comparison=.")
    style = with_columns(_check_style(style), columns)
    axes = panels_drawn(panels, [a for a in ("absolute", "relative") if a in result.primary])
    if result.comparisons:
        from hte_report.spec.options import check_choice

        if comparison is not None:
            check_choice("comparison", comparison, list(result.comparisons))
        comparison = comparison or result.comparisons[0]
        active, _, control = comparison.partition(" vs ")
        from dataclasses import replace

        result = replace(result, treatment_labels=(control, active))  # "Favours B", counts
    else:
        comparison = None
    result = relabelled(result, arm_labels, labels)
    opts = forest_options(result, axes, xlim, ticks, decimals)
    overall = {a: result.overall_effect(a, comparison) for a in axes}
    overall = {a: o if o.scale == result.primary[a][0] else None for a, o in overall.items()}
    rows = _rows(result, axes, adjusted, overall, comparison)
    cols, texts = _columns(result, rows, axes, style, opts["decimals"])
    fs, small = style.font_size, style.font(style.font_size - 1)
    n_units = 0.0  # height in text lines: rows, gaps before headings, space above the axis
    for i, r in enumerate(rows):
        n_units += 0.35 if r.kind == "heading" and i else 0
        r.top, n_units = n_units, n_units + r.lines
    n_units += 0.3
    notes = _forest_notes(result, axes, rows, overall, adjusted, comparison) \
        if style.show_footnote else []
    text_w = sum(w for k, _, w in cols if not k.startswith("panel")) + 8
    width = text_w + 72 * style.panel_width * style.scale * len(axes) if ax is None else (
        ax.get_position().width * 72 * ax.figure.get_figwidth())
    bold = style.font(weight="bold")
    words = max(_width(w, bold) for k, h, _ in cols if k.startswith("panel")
                for w in h.split())  # a panel is at least as wide as its title's longest word
    flex_w = max(36.0, words + 4, (width - text_w) / len(axes))
    if ax is None:
        width = text_w + flex_w * len(axes)
    cols = [(k, _fit_text(h.replace("\n", " "), flex_w - 4, bold, 200) if k.startswith(
        "panel") else h, w) for k, h, w in cols]  # panel titles wrapped to the panel
    head_lines = max(h.count("\n") + 1 for _, h, _ in cols)  # points: column headers
    head_h = max(2.5 * fs + 8, head_lines * 1.15 * fs + 8)
    fav_lines = max(_favours(f"Favours {arm} \u2192", 0.5 * flex_w + 18, small).count("\n") + 1
                    for arm in _arms(result, ("control", "treatment")))
    fav_h = max(2.5 * fs + 12, fs + 13 + 1.1 * (fs - 1) * fav_lines)  # ticks and "Favours"
    note = _fit_text(" ".join(notes), width - 12, small, max_lines=200)
    foot_h = fav_h + (note.count("\n") + 1) * 1.3 * (fs - 1) + 8 if notes else fav_h
    if ax is not None:
        check_room(ax, width, text_w + flex_w * len(axes), head_h + foot_h + n_units * 1.2 * fs)
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
    x, flex = box[0] + 4, flex_w

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
                        body_h / n_units, higher_is_better, opts)
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


def _columns(result: HTEResult, rows: list[_Row], axes: list[str], style: ForestStyle,
             decimals: dict | None = None
             ) -> tuple[list[tuple[str, str, float]], dict[str, list[str]]]:
    """Wrap labels (setting row heights); columns as (key, header, points) and texts."""
    prop, bold, small = style.font(), style.font(weight="bold"), style.font(style.font_size - 1)
    label_w, panel_w = 72 * style.max_label_width * style.scale, 72 * style.panel_width * (
        style.scale)
    lines = {"heading": 2, "level": 1} if style.truncate_labels else {"heading": 200,
                                                                      "level": 200}
    if not style.truncate_labels:  # widen to the longest word: wrapping never cuts one
        label_w = max([label_w] + [_width(w, bold) + 10 for r in rows
                                   for w in r.label.split(" ")])
    if any(r.posthoc for r in rows):  # the post hoc tag always fits on one line
        label_w = max(label_w, _width(POSTHOC, bold))
    note_font = style.font(style.font_size - 1, style="italic")
    for r in rows:
        fp = bold if r.kind != "level" else prop
        if r.posthoc:
            one = f"{r.label} {POSTHOC}"
            r.label = one if _width(one, fp) <= label_w else (
                f"{_fit_text(r.label, label_w, fp, lines['heading'])}\n{POSTHOC}")
        else:
            r.label = _fit_text(r.label, label_w - 10 * (r.kind == "level"), fp,
                                lines["heading" if r.kind == "heading" else "level"])
        r.lines = r.label.count("\n") + 1
        for c in r.cells.values():  # a not-estimable note may take two lines in its panel
            if r.kind == "level" and c is not None and not np.isfinite(c.estimate):
                note = _fit_text(_note(c), panel_w - 8, note_font, 2)
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
            name = (name if len(name) <= 18 else f"{name[:17]}\u2026") if (
                style.truncate_labels) else _fit_text(name, max(
                    [54 * style.scale] + [_width(w, bold) for w in name.split(" ")]), bold, 200)
            head = f"{name[:1].upper()}{name[1:]}\n{'events/n' if binary else 'n'}"
            cols.append((key, head, max(_width(head, bold), *(_width(t, prop) for t in
                                                              texts[key])) + 10))
    pct = f"{100 * result.conf_level:g}%"
    for a in axes:
        scale = result.primary[a][0]
        labelled = is_survival(result) or bool((result.meta or {}).get("repeated"))
        title = (f"{scale_label(result, scale)}" + (" (log scale)" if is_ratio(scale) else "")
                 if labelled else _scale_title(scale))
        cols.append((f"panel-{a}", _fit_text(title, max(
            [panel_w] + [_width(w, bold) for w in title.split(" ")]), bold, 200), panel_w))
        if not (style.show_estimates or style.show_p_interaction):
            continue
        key, heads = f"text-{a}", [r for r in rows if r.kind == "heading"]
        texts[key] = [_estimate_text(r, a, style, (decimals or {}).get(a)) for r in rows]
        head = (f"{scale_label(result, scale, short=True)}\n({pct} CI)"
                if is_survival(result) or (result.meta or {}).get("repeated")
                else f"{scale} ({pct} CI)") if style.show_estimates else ""
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


def _favours(text: str, width: float, prop) -> str:
    """ "Favours X" on two lines, or (a long arm name) on up to three lines of ``width``."""
    two = text.replace("Favours ", "Favours\n")
    if _width(two, prop) <= width:
        return two
    return _fit_text(text, max([width] + [_width(w, prop) for w in text.split(" ")]), prop, 3)


def _estimate_text(r: _Row, axis: str, style: ForestStyle, decimals: int | None = None) -> str:
    if r.kind == "heading":
        return r.p_text[axis] if style.show_p_interaction else ""
    c = r.cells[axis]
    if not style.show_estimates or c is None:  # no row on this scale: leave blank
        return ""
    if decimals is not None:
        return fmt_decimals(c.estimate, c.conf_low, c.conf_high, c.scale, int(decimals))
    return fmt_effect(c.estimate, c.conf_low, c.conf_high, c.scale)


def _draw_panel(ax: Axes, result: HTEResult, axis: str, rows: list[_Row], overall: dict,
                style: ForestStyle, row_h: float, higher_is_better: bool,
                opts: dict | None = None) -> None:
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
    opts = opts or {}
    lo, hi = (opts.get("xlim") or {}).get(axis) or _limits(vals, null, is_ratio(scale),
                                                           core=core)
    tks = (opts.get("ticks") or {}).get(axis)
    if tks and axis not in (opts.get("xlim") or {}):  # automatic limits reach every tick
        lo, hi = min(lo, tks[0]), max(hi, tks[-1])
    ax.set_xlim(lo, hi)
    end = _drawn(lo, hi, is_ratio(scale))
    length = ax.get_position().width * 72 * ax.figure.get_figwidth()
    _style_axis(ax, scale, style, length, "x")
    if tks:
        set_ticks(ax, tks)
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
    better_up = higher_favours(scale, higher_is_better)
    left, right = (control, treated) if better_up else (treated, control)
    frac = float(np.clip(ax.transLimits.transform((null, 1))[0], 0.05, 0.95))
    small = style.font(style.font_size - 1)
    for side, text, ha, dx, room in (("left", f"\u2190 Favours {left}", "right", -3, frac),
                                     ("right", f"Favours {right} \u2192", "left", 3, 1 - frac)):
        if _width(text, small) > max(room, 0.5) * length + 18:
            text = _favours(text, max(room, 0.5) * length + 18, small)
        ax.annotate(text, (frac, 0), xycoords="axes fraction", xytext=(dx, -style.font_size - 9),
                    textcoords="offset points", ha=ha, va="top", fontproperties=small,
                    linespacing=1.1, gid=f"forest-favours-{axis}-{side}", parse_math=False)
