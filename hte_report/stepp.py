"""STEPP-style sliding-window subpopulation analysis of a continuous modifier (exploratory).

The subpopulation treatment effect pattern plot (Bonetti & Gelber, Stat Med 2000; Biostatistics
2004) estimates the treatment effect in overlapping windows of patients ordered by a continuous
covariate. It is a descriptive view: windows overlap, so neighbouring estimates are correlated
and no multiplicity-controlled inference is drawn from them. The pre-specified analysis of a
continuous modifier is the interaction model (e.g. ``y ~ treat * bs(age, df=4)``).

Windows (sliding, by rank, ties kept together): patients are sorted by the modifier; window
``i`` covers ranks ``[i * step, i * step + size)`` with ``step = size - overlap``, and a last
window ends at the largest value. A window is then widened to every patient whose modifier lies
in its value range, so tied values are never split; duplicate windows are dropped. This is the
spirit of ``stepp::stepp.win(type = "sliding", r1 = overlap, r2 = size)``, not its exact rule.

Effects per window are the crude effects of its 2 x 2 table from the package's engine: the
working models (``ols``, ``modified-poisson`` with HC0 variance; ``logit``) fitted on
``y ~ treat`` and contrasted with :func:`hte_report.effects.contrast` -- the Wald RD, the Katz log
RR and the Woolf log OR.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .data import prepare, read_data
from .effects import contrast, interval
from .errors import HTEReportWarning
from .models.glm import FitFailure, fit_glm

__all__ = ["SteppResult", "stepp", "stepp_windows"]

_EFFECT_COLUMNS = ["scale", "estimate", "std_error", "conf_low", "conf_high", "statistic",
                   "p_value", "model", "note"]


@dataclass(frozen=True)
class SteppResult:
    """Effects in overlapping windows of a continuous modifier (exploratory).

    Frames
    ------
    effects
        One row per (window, scale): ``window``, ``modifier_low``, ``modifier_high``,
        ``modifier_median``, ``n, n_treated, n_control, events_treated, events_control``,
        ``overlap`` (patients shared with the previous window), ``scale`` (RD, RR, OR),
        ``estimate, std_error`` (of the log for ratios), ``conf_low, conf_high, statistic,
        p_value, model, note``.
    overall
        The same effects in all analysed patients.
    """

    outcome: str
    treatment: str
    modifier: str
    size: int
    overlap: int
    conf_level: float
    effects: pd.DataFrame
    overall: pd.DataFrame
    n_analysed: int
    label: str = "exploratory"

    def plot(self, axes=None, *, percent: bool = True):
        """RD and RR against the window median of the modifier (matplotlib Figure)."""
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter, LogLocator

        if axes is None:
            fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.8), constrained_layout=True)
        else:
            fig = axes[0].figure
        for ax, scale, null in ((axes[0], "RD", 0.0), (axes[1], "RR", 1.0)):
            k = 100.0 if (percent and scale == "RD") else 1.0
            e = self.effects[(self.effects.scale == scale) & np.isfinite(self.effects.estimate)]
            ax.fill_between(e.modifier_median, e.conf_low * k, e.conf_high * k, color="C0",
                            alpha=0.18, lw=0, label="pointwise 95% CI")
            ax.plot(e.modifier_median, e.estimate * k, "o-", color="C0", ms=4,
                    label="window estimate")
            o = self.overall[self.overall.scale == scale].iloc[0]
            ax.axhline(o.estimate * k, color="C1", lw=1.0, ls="-.", label="all patients")
            ax.axhline(null * k, color="black", lw=0.8, ls="--")
            if scale == "RR":
                ax.set_yscale("log")
                ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
                ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
            unit = " (%)" if k == 100.0 else ""
            ax.set_xlabel(f"{self.modifier} (median of window)")
            ax.set_ylabel(f"{'Risk difference' if scale == 'RD' else 'Risk ratio'}{unit}")
        axes[0].legend(fontsize=8, frameon=False)
        fig.suptitle(f"STEPP by {self.modifier} (exploratory; windows of {self.size}, "
                     f"overlap {self.overlap}; estimates are correlated)", fontsize=10)
        return fig


def stepp_windows(x: object, size: int, overlap: int) -> list[np.ndarray]:
    """Boolean masks of the sliding windows (see the module docstring for the rule).

    Examples
    --------
    >>> [int(w.sum()) for w in stepp_windows(range(10), size=4, overlap=2)]
    [4, 4, 4, 4]
    """
    v = np.asarray(x, dtype=float)
    n = len(v)
    if not isinstance(size, (int, np.integer)) or not 2 <= size <= n:
        raise ValueError(f"size (patients per window) must be an integer in [2, {n}], got "
                         f"{size!r}.")
    if not isinstance(overlap, (int, np.integer)) or not 0 <= overlap < size:
        raise ValueError(f"overlap must be an integer in [0, size) = [0, {size}), got "
                         f"{overlap!r}.")
    s = np.sort(v)
    step = size - overlap
    starts = list(range(0, n - size + 1, step))
    if starts[-1] + size < n:
        starts.append(n - size)
    out, seen = [], set()
    for a in starts:
        lo, hi = s[a], s[a + size - 1]
        if (lo, hi) in seen:
            continue
        seen.add((lo, hi))
        out.append((v >= lo) & (v <= hi))
    return out


def stepp(
    data: object,
    *,
    outcome: str,
    treatment: str,
    modifier: str,
    size: int | None = None,
    overlap: int | None = None,
    reference: object = None,
    conf_level: float = 0.95,
) -> SteppResult:
    """Sliding-window (STEPP-style) effects of treatment by a continuous modifier: exploratory.

    Parameters
    ----------
    data
        DataFrame or path; rows missing outcome, treatment or modifier are excluded.
    outcome, treatment, modifier
        Binary outcome, two-level treatment and the continuous modifier.
    size
        Patients per window before ties are added (STEPP's ``r2``); default a quarter of the
        patients.
    overlap
        Largest number of patients shared by consecutive windows before ties (``r1``);
        default three quarters of ``size``.
    reference
        Control level of a treatment that is not 0/1 or bool.
    conf_level
        Confidence level of the pointwise intervals.

    Returns
    -------
    SteppResult

    Examples
    --------
    >>> from hte_report.datasets import load_rossi
    >>> s = stepp(load_rossi(), outcome="arrest", treatment="fin", modifier="age", size=120,
    ...           overlap=80)
    >>> s.label, sorted(s.effects.scale.unique())
    ('exploratory', ['OR', 'RD', 'RR'])
    """
    raw = read_data(data)
    for role, col in (("outcome", outcome), ("treatment", treatment), ("modifier", modifier)):
        if col not in raw.columns:
            raise ValueError(f"{role} column {col!r} is not in the data; columns: "
                             f"{list(raw.columns)[:20]}.")
    prep = prepare(raw, outcome=outcome, treatment=treatment, variables=(treatment, modifier),
                   family="binary", reference=reference)
    frame = prep.frame
    x = pd.to_numeric(frame[modifier], errors="coerce").to_numpy(float)
    if np.isnan(x).any():
        raise ValueError(f"modifier {modifier!r} must be numeric (continuous).")
    n = len(frame)
    size = max(n // 4, 2) if size is None else size
    overlap = (3 * size) // 4 if overlap is None else overlap
    y = frame[outcome].to_numpy(float)
    t = frame[treatment].to_numpy(int)
    windows = stepp_windows(x, size, overlap)
    rows, prev = [], None
    for i, w in enumerate(windows):
        info = {"window": i + 1, "modifier_low": float(x[w].min()),
                "modifier_high": float(x[w].max()), "modifier_median": float(np.median(x[w])),
                "overlap": int((w & prev).sum()) if prev is not None else 0,
                **_counts(y[w], t[w])}
        for eff in _crude_effects(y[w], t[w], conf_level):
            rows.append({**info, **eff})
        prev = w
    overall = pd.DataFrame([{**_counts(y, t), **e} for e in _crude_effects(y, t, conf_level)])
    return SteppResult(outcome, treatment, modifier, int(size), int(overlap), conf_level,
                       pd.DataFrame(rows), overall, n)


def _counts(y: np.ndarray, t: np.ndarray) -> dict:
    return {"n": len(y), "n_treated": int((t == 1).sum()), "n_control": int((t == 0).sum()),
            "events_treated": int(y[t == 1].sum()), "events_control": int(y[t == 0].sum())}


def _crude_effects(y: np.ndarray, t: np.ndarray, conf_level: float) -> list[dict]:
    """RD (OLS, HC0), RR (modified Poisson, HC0) and OR (logit) of one 2 x 2 table."""
    X = np.column_stack([np.ones_like(y), t.astype(float)])
    X1, X0 = np.array([[1.0, 1.0]]), np.array([[1.0, 0.0]])
    n1, n0 = int(t.sum()), int((1 - t).sum())
    e1, e0 = y[t == 1].sum(), y[t == 0].sum()
    degenerate = ""
    if n1 == 0 or n0 == 0:
        degenerate = "not estimable: an arm is empty"
    elif min(e1, e0) == 0 or e1 == n1 or e0 == n0:
        degenerate = "not estimable: no events (or only events) in an arm"
    out = []
    for name, var, kind, scale in (("ols", "HC0", "difference", "RD"),
                                   ("modified-poisson", "HC0", "ratio", "RR"),
                                   ("logit", "model", "odds-ratio", "OR")):
        note = degenerate if (degenerate and (scale != "RD" or "empty" in degenerate)) else ""
        est = dict.fromkeys(("estimate", "std_error", "conf_low", "conf_high", "statistic",
                             "p_value"), np.nan)
        label = name if var == "model" else f"{name}-{var}"
        if not note:
            try:
                fm = fit_glm(name, X, y, ("Intercept", "treatment"), var)
                res = interval(contrast(fm, X1, X0, np.ones((1, 1)), kind), conf_level)
                est = {k: float(v[0]) for k, v in res.items()}
            except FitFailure as exc:
                note = f"not estimable: {exc}"
                warnings.warn(f"STEPP window: {exc}", HTEReportWarning, stacklevel=3)
        out.append({"scale": scale, **est, "model": label, "note": note})
    return out
