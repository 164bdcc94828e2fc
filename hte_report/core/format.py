"""Number formatting shared by tables, plots and the report: one place, one style.

Differences in risk are shown in percentage points; ratios with two decimals; p-values as
``<0.001`` / three decimals; minus signs are U+2212.
"""

from __future__ import annotations

import math
import re

MINUS = "\u2212"

#: Characters no output format can carry as text: C0 controls other than tab and newline,
#: DEL, C1 controls, surrogates (from undecodable bytes) and the non-characters U+FFFE/U+FFFF.
#: XML (hence SVG) refuses most of them outright, and Typst's SVG reader with it.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_LINE = re.compile("\r\n?|[\n\t\u2028\u2029\x85]")


def _escape_control(m: re.Match) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean_text(text: object) -> str:
    """Text safe for HTML, SVG and Typst: control characters shown as escapes (``\\x1b``) so
    that distinct values stay distinct and visible; tabs and newlines kept (CR LF → LF)."""
    s = str(text)
    s = s.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub(_escape_control, s)


def clean_label(text: object) -> str:
    """A one-line label (variable, level, arm): :func:`clean_text` with line breaks and tabs
    as spaces."""
    return clean_text(_LINE.sub(" ", str(text)))

SCALE_NAMES = {
    "MD": "Mean difference",
    "SlopeDiff": "Difference in slope per unit of time",
    "RD": "Risk difference (percentage points)",
    "RR": "Risk ratio",
    "OR": "Odds ratio",
    "RateDiff": "Rate difference",
    "RateRatio": "Rate ratio",
    "HR": "Hazard ratio",
    "SurvDiff": "Survival difference",
    "RMSTDiff": "RMST difference",
    "MeanRatio": "Ratio of means",
}


def is_ratio(scale: str) -> bool:
    return scale in ("RR", "OR", "RateRatio", "HR", "MeanRatio")


def _minus(text: str) -> str:
    return text.replace("-", MINUS)


def fmt_est(value: float, scale: str) -> str:
    """One estimate on its scale: RD in percentage points (1 decimal), ratios 2 decimals,
    other differences 3 significant digits; an infinite bound as ∞, a missing one as –, and
    magnitudes of a million or more (a degenerate bound) or below 1e-4 in powers of ten."""
    if value is None:
        return "–"
    value = float(value)
    if math.isnan(value):
        return "–"
    if math.isinf(value):
        return "\u221e" if value > 0 else f"{MINUS}\u221e"
    shown = 100 * value if scale == "RD" else value
    if math.isinf(shown):
        return "\u221e" if shown > 0 else f"{MINUS}\u221e"
    if abs(shown) >= 1e6 or (0 < abs(shown) < 1e-4 and not is_ratio(scale)):
        return _minus(f"{shown:.2e}".replace("e+", "e"))
    if scale == "RD":
        return _minus(f"{shown:.1f}")
    if is_ratio(scale):
        return f"{value:.2f}"
    return _minus(_sig(value, 3))


def _sig(value: float, digits: int) -> str:
    if value == 0:
        return "0"
    mag = int(math.floor(math.log10(abs(value))))
    decimals = max(0, digits - 1 - mag)
    return f"{value:.{decimals}f}"


def fmt_ci(est: float, low: float, high: float, scale: str) -> str:
    """``est (low to high)``; the word 'to' avoids a dash colliding with minus signs."""
    if est is None or not math.isfinite(est):
        return "not estimable"
    if all(v is None or math.isnan(float(v)) for v in (low, high)):
        return f"{fmt_est(est, scale)} (CI not estimable)"
    return f"{fmt_est(est, scale)} ({fmt_est(low, scale)} to {fmt_est(high, scale)})"


def fmt_p(p: float) -> str:
    if p is None or not math.isfinite(p):
        return "–"
    if p < 0.001:
        return "<0.001"
    if p >= 0.995:
        return ">0.99"
    return f"{p:.3f}" if p < 0.1 else f"{p:.2f}"


def fmt_count(events: float, n: float) -> str:
    if n is None or not math.isfinite(n):
        return "–"
    if events is None or not math.isfinite(events):
        return f"{int(n)}"
    return f"{int(round(events))}/{int(n)}"


def p_eq(p: float, name: str = "p") -> str:
    """'p = 0.044', 'p < 0.001' or 'p > 0.99' for running text."""
    text = fmt_p(p)
    if text.startswith(("<", ">")):
        return f"{name} {text[0]} {text[1:]}"
    return f"{name} = {text}"


#: How each subgroup-analysis strategy is named in summaries, footnotes and the methods section.
STRATEGY_TEXT = {
    "one-at-a-time": "one modifier at a time (each modifier's own model: treatment, that "
                     "modifier, their interaction and the adjustment covariates)",
    "joint": "one joint model with every modifier's interaction (mutually adjusted for the "
             "other modifiers)",
    "within-subgroup": "separate models within each subgroup (sensitivity view); interaction "
                       "tests and effects from one-modifier-at-a-time models",
}


def strategy_text(strategy: str) -> str:
    return STRATEGY_TEXT.get(strategy, strategy)
