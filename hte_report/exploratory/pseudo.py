"""Jackknife pseudo-observations of the restricted mean survival time (RMST), the documented
transformation that lets the causal forest analyse a time-to-event outcome (exploratory).

For a horizon ``tau``, the Kaplan-Meier RMST of all n patients is
``theta = integral_0^tau S(t) dt`` and patient i's pseudo-observation is
``n theta - (n - 1) theta_(-i)``, with ``theta_(-i)`` the RMST of the Kaplan-Meier curve
without patient i (Andersen, Hansen & Klein 2004; Andersen & Perme 2010). Under censoring
independent of the covariates and of the treatment, E[pseudo-observation | X, W] is the
patient's RMST to ``tau``, so a causal forest fitted to the pseudo-observations estimates the
CATE on the RMST-difference scale (time units up to ``tau``). Pseudo-observations are computed
over all patients together (both arms), as usual; with covariate-dependent censoring they are
biased (use an IPCW-weighted analysis instead -- not available here).

The leave-one-out curves are computed exactly, all at once: removing patient i lowers the
number at risk by one up to the patient's time and, for an event, the number of events by one
at that time. ``tests/reference/explore.R`` checks the numbers against a brute-force jackknife
of ``survival::survfit``'s restricted mean.
"""

from __future__ import annotations

import numpy as np

__all__ = ["km_rmst", "rmst_pseudo_observations"]


def _grid(time: np.ndarray, event: np.ndarray, horizon: float):
    ut = np.unique(time[(event == 1) & (time <= horizon)])  # event times up to the horizon
    # width of the step after each event time, up to the horizon
    widths = np.diff(np.r_[ut, horizon])
    n_risk = (time[None, :] >= ut[:, None]).sum(axis=1).astype(float)
    d = ((time[None, :] == ut[:, None]) & (event[None, :] == 1)).sum(axis=1).astype(float)
    return ut, widths, n_risk, d


def km_rmst(time, event, horizon: float) -> float:
    """Kaplan-Meier restricted mean survival time to ``horizon``."""
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float)
    ut, widths, n_risk, d = _grid(time, event, horizon)
    if len(ut) == 0:
        return float(horizon)
    s = np.cumprod(1 - d / n_risk)
    return float(ut[0] + np.sum(s * widths))


def rmst_pseudo_observations(time, event, horizon: float, chunk: int = 2000) -> np.ndarray:
    """Exact jackknife pseudo-observations of the Kaplan-Meier RMST to ``horizon``."""
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float)
    n = len(time)
    ut, widths, n_risk, d = _grid(time, event, horizon)
    theta = km_rmst(time, event, horizon)
    if len(ut) == 0:
        return np.full(n, float(horizon))
    out = np.empty(n)
    for start in range(0, n, chunk):
        t = time[start:start + chunk, None]
        e = event[start:start + chunk, None]
        nr = n_risk[None, :] - (t >= ut[None, :])
        dd = d[None, :] - ((t == ut[None, :]) & (e == 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            haz = np.where(nr > 0, dd / np.where(nr > 0, nr, 1), 0.0)
        s = np.cumprod(1 - haz, axis=1)
        theta_i = ut[0] + (s * widths[None, :]).sum(axis=1)
        out[start:start + chunk] = n * theta - (n - 1) * theta_i
    return out
