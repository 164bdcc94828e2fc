"""E-values (VanderWeele & Ding 2017, Ann Intern Med 167:268): the minimum strength of
association, on the risk-ratio scale, that an unmeasured confounder would need with both the
treatment and the outcome, conditional on the measured confounders, to explain away an
estimate (``e_value``) or to move its confidence interval to include the null
(``e_value_ci``; 1 when it already does).

``E = RR + sqrt(RR (RR - 1))`` for ``RR >= 1`` (``1 / RR`` first when ``RR < 1``). Other
scales by the paper's approximations: an odds ratio of a common outcome (risk under control
above 15%) as ``sqrt(OR)``, a rare one as the OR itself; a mean difference as ``RR =
exp(0.91 d)`` with ``d = MD / SD(Y)``. No E-value is given for a risk difference (its risk ratio
row carries it)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def e_value(rr: float) -> float:
    """E-value of a risk ratio (point estimate)."""
    if not np.isfinite(rr) or rr <= 0:
        return float("nan")
    rr = rr if rr >= 1 else 1 / rr
    return float(rr + np.sqrt(rr * (rr - 1)))


def e_value_ci(rr: float, low: float, high: float) -> float:
    """E-value of the confidence limit closer to the null (1 when the interval includes 1)."""
    if not (np.isfinite(low) and np.isfinite(high)) or not np.isfinite(rr):
        return float("nan")
    if low <= 1 <= high:
        return 1.0
    return e_value(low if rr > 1 else high)


def as_risk_ratio(scale: str, est: float, low: float, high: float, *, risk0: float = np.nan,
                  sd: float = np.nan) -> tuple[float, float, float]:
    """The estimate and its interval on the (approximate) risk-ratio scale."""
    if scale == "RR":
        return est, low, high
    if scale == "OR":
        if np.isfinite(risk0) and risk0 > 0.15:
            return float(np.sqrt(est)), float(np.sqrt(low)), float(np.sqrt(high))
        return est, low, high
    if scale == "MD" and np.isfinite(sd) and sd > 0:
        f = 0.91 / sd
        return float(np.exp(f * est)), float(np.exp(f * low)), float(np.exp(f * high))
    return np.nan, np.nan, np.nan


def add_e_values(effects: pd.DataFrame, sd: dict | None = None) -> pd.DataFrame:
    """``effects`` with ``e_value`` and ``e_value_ci`` columns (``sd``: outcome SD per
    modifier, for mean differences)."""
    ev, evci = [], []
    for r in effects.itertuples():
        rr, lo, hi = as_risk_ratio(r.scale, r.estimate, r.conf_low, r.conf_high,
                                   risk0=getattr(r, "mu0", np.nan),
                                   sd=(sd or {}).get(r.modifier, np.nan))
        ev.append(e_value(rr))
        evci.append(e_value_ci(rr, lo, hi))
    return effects.assign(e_value=ev, e_value_ci=evci)
