"""Number formatting shared by tables, plots and the report: one place, one style.

Differences in risk are shown in percentage points; ratios with two decimals; p-values as
``<0.001`` / three decimals; minus signs are U+2212.
"""

from __future__ import annotations

import math

MINUS = "\u2212"

SCALE_NAMES = {
    "MD": "Mean difference",
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
    other differences 3 significant digits."""
    if value is None or not math.isfinite(value):
        return "–"
    if scale == "RD":
        return _minus(f"{100 * value:.1f}")
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
