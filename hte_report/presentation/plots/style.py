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


