"""Typography shared by forest plots and effect curves: :class:`ForestStyle`, its fonts, text
measured as rendered (wrapping and truncating labels to a width in points) and the labels read
from an :class:`HTEResult`."""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import pandas as pd
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.colors import is_color_like
from matplotlib.font_manager import FontProperties, fontManager

from hte_report.core.format import SCALE_NAMES, clean_label, is_ratio
from hte_report.spec.options import OptionError

if TYPE_CHECKING:
    from hte_report.results.result import HTEResult

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
        Inches at the default 7 pt font; they grow in proportion with ``font_size``, so a
        larger font never cuts more text. Longer subgroup labels are wrapped (headings) or
        truncated (levels); ``row_height=None`` uses 2 × font size up to 20 rows, tapering to
        1.6 × at 40.
    truncate_labels
        ``False``: subgroup labels and arm names are never cut; they wrap onto as many lines
        as they need (the label column widens to the longest word).

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
    truncate_labels: bool = True

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name.endswith("_color") and not (v == "none" or is_color_like(v)):
                raise OptionError(f"ForestStyle.{f.name}={v!r} is not a matplotlib colour.")
            if f.name in ("font_size", "panel_width", "max_label_width", "row_height") and not (
                    (v is None and f.name == "row_height") or (
                        isinstance(v, (int, float)) and not isinstance(v, bool)
                        and 0 < v < 1000)):
                raise OptionError(f"ForestStyle.{f.name} must be a positive number (below "
                                  f"1000), got {v!r}.")
            if f.name.startswith("show_") or f.name == "truncate_labels":
                if type(v).__name__ not in ("bool", "bool_"):  # numpy's too
                    raise OptionError(f"ForestStyle.{f.name} must be True or False, got {v!r}.")
            if f.name == "font_family" and not (
                    (isinstance(v, str) and v.strip()) or (
                        isinstance(v, tuple) and v and all(isinstance(x, str) for x in v))):
                raise OptionError(f"ForestStyle.font_family must be a font name or a tuple of "
                                  f"names (the first installed is used), got {v!r}.")

    @property
    def scale(self) -> float:
        """Widths in inches are given at the default 7 pt font and grow with the font."""
        return max(1.0, self.font_size / 7.0)

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
        from hte_report.errors import ArgumentError

        raise ArgumentError(f"style must be a ForestStyle or None, got {type(style).__name__}; "
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
    return clean_label(display_label(result, modifier))


def display_label(result: HTEResult, modifier: str) -> str:
    """A modifier's display label: the plan's (``result.labels``); where it gives none (or just
    the column name), the data's variable label (e.g. of a SAS file) when the analysis
    recorded them in ``result.meta["variable_labels"]``; else the column name."""
    given = (result.labels or {}).get(modifier)
    if given and given != modifier:
        return given
    recorded = (result.meta or {}).get("variable_labels") or {}
    return str(recorded.get(modifier) or given or modifier)


def _note(cell: pd.Series) -> str:
    note = cell.get("note")
    return clean_label(note) if isinstance(note, str) and note.strip() else "not estimable"


def fmt_decimals(est: float, low: float, high: float, scale: str, decimals: int) -> str:
    """``est (low to high)`` with ``decimals`` decimals (risk and survival differences in
    percentage points, as in the tables); U+2212 minus signs."""
    import math

    from hte_report.core.format import MINUS

    k = 100.0 if scale in ("RD", "SurvDiff") else 1.0

    def one(v: float) -> str:
        if v is None or math.isnan(float(v)):
            return "\u2013"
        if math.isinf(float(v)):
            return "\u221e" if v > 0 else f"{MINUS}\u221e"
        return f"{k * float(v):.{decimals}f}".replace("-", MINUS)

    if est is None or not math.isfinite(est):
        return "not estimable"
    if all(v is None or math.isnan(float(v)) for v in (low, high)):
        return f"{one(est)} (CI not estimable)"
    return f"{one(est)} ({one(low)} to {one(high)})"


def _scale_title(scale: str) -> str:
    name = SCALE_NAMES.get(scale, scale)
    return f"{name} (log scale)" if is_ratio(scale) else name


# ------------------------------------------------------------------ forest options
_COLUMNS = {"counts": "show_counts", "estimates": "show_estimates", "p": "show_p_interaction"}


def with_columns(style: ForestStyle, columns: object) -> ForestStyle:
    """The style with the text columns ``columns`` names (and no others)."""
    if columns is None:
        return style
    if isinstance(columns, str):
        columns = (columns,)
    try:
        columns = tuple(columns)
    except TypeError:
        columns = (columns,)
    bad = [c for c in columns if c not in _COLUMNS]
    if bad:
        raise OptionError(f"columns= names {bad}; use any of {list(_COLUMNS)}.")
    from dataclasses import replace

    return replace(style, **{flag: key in columns for key, flag in _COLUMNS.items()})


def relabelled(result: HTEResult, arm_labels: object, labels: object) -> HTEResult:
    """The result with display labels of arms ``(control, treated)`` and modifiers. Without
    ``arm_labels``, a two-arm result's ``meta["arm_labels"]`` (a plan's ``control_label`` /
    ``treated_label``, when the analysis records them there) are used."""
    from dataclasses import replace

    from hte_report.results.result import require_result

    require_result(result, "a table or plot")
    recorded = (result.meta or {}).get("arm_labels")
    if arm_labels is None and recorded and not result.comparisons:
        arm_labels = tuple(str(x) for x in recorded)
    if arm_labels is not None:
        if (isinstance(arm_labels, str) or not hasattr(arm_labels, "__len__")
                or len(arm_labels) != 2 or not all(isinstance(x, str) and x.strip()
                                                    for x in arm_labels)):
            raise OptionError(f"arm_labels= must be two texts (control, treated), got "
                              f"{arm_labels!r}.")
        result = replace(result, treatment_labels=(arm_labels[0], arm_labels[1]))
    if labels is not None:
        if not isinstance(labels, dict):
            raise OptionError(f"labels= must be a mapping of modifier to display label, got "
                              f"{type(labels).__name__}.")
        extra = {str(k): str(v) for k, v in labels.items() if v is not None and str(v).strip()}
        result = replace(result, labels={**(result.labels or {}), **extra})
    return result


def _checked_init(init):
    import functools

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        from hte_report.spec.options import check_call

        check_call(init, (self, *args), kwargs, name="ForestStyle",
                   see="help(hte_report.ForestStyle)", hints=False)
        init(self, *args, **kwargs)

    return __init__


# an unknown setting (ForestStyle(colour=...)) is an ArgumentError naming the settings
ForestStyle.__init__ = _checked_init(ForestStyle.__init__)  # type: ignore[method-assign]
