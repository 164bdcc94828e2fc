"""Personalized absolute benefit: for a patient with baseline (control) risk ``p0`` and a
relative risk ``RR`` that applies to them, the absolute risk reduction ``ARR = p0 (1 - RR)`` and
the number needed to treat ``NNT = 1 / ARR`` (``1 / |ARR|`` is the number needed to harm when
``RR > 1``). ARR limits come from the RR limits with ``p0`` taken as known; when the ARR interval
includes 0 the NNT "interval" is two half-lines through infinity, written as Altman
(BMJ 1998;317:1309) proposes: ``NNTB 10 (NNTH 50 to inf to NNTB 4)``.

Events are taken to be harmful (death, relapse, arrest): benefit is a reduction in risk.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from hte_report.errors import DataError
from hte_report.spec.options import OptionError

__all__ = ["benefit_from_result", "personalized_benefit", "plot_personalized_benefit"]


# ----------------------------------------------------------------------------- personalized
_BENEFIT_COLUMNS = ["p0", "rr", "rr_low", "rr_high", "arr", "arr_low", "arr_high", "nnt",
                    "nnt_type", "nntb_low", "nntb_high", "nnth_low", "nnth_high", "nnt_text"]


def _as_array(name: str, value: object) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise OptionError(f"{name} must be a number or an array of numbers, got "
                         f"{type(value).__name__} {value!r}.") from None
    return arr


#: The smallest baseline risk taken: one in a billion. Below it the NNT for a benefit exceeds
#: 10^9 patients (a number no trial's risk ratio can support), and at risks near
#: the smallest floats the absolute difference is no longer computed exactly (1e-300 x 0.1
#: overflows the NNT's display, 1e-320 x 0.1 rounds to 0, "no difference").
MIN_P0 = 1e-9


def _check_p0(p0: np.ndarray) -> None:
    bad = ~((p0 > 0) & (p0 < 1))
    if bad.any():
        raise OptionError(f"p0 (baseline risk) must be strictly between 0 and 1; got "
                         f"{p0[bad].ravel()[:5].tolist()}. Give risks as proportions "
                         "(5% -> 0.05).")
    tiny = p0 < MIN_P0
    if tiny.any():
        raise OptionError(f"p0 (baseline risk) {p0[tiny].ravel()[0]:g} is below one in a "
                          f"billion ({MIN_P0:g}), the smallest baseline risk taken: the number "
                          "needed to treat for a benefit would exceed 10^9 patients, and at the "
                          "smallest numbers the ARR and NNT are not computed exactly. Give risks "
                          "as proportions (5% -> 0.05, 1 in 10,000 -> 0.0001).")


def _check_treated_risk(p0: np.ndarray, rr: np.ndarray) -> None:
    """p0 x RR is the risk under treatment: a risk ratio cannot take it above 1."""
    over = p0 * rr > 1
    if over.any():
        p, r = float(p0[over].ravel()[0]), float(rr[over].ravel()[0])
        raise OptionError(
            f"p0 {p:g} with risk ratio {r:g} gives a risk under treatment of {p * r:.4g}, above "
            "1: a risk ratio cannot apply at baseline risks above 1/RR "
            f"({1 / r:.4g} for RR {r:g}), so the ARR and NNT there would be wrong. Use baseline "
            "risks below 1/RR, or an odds ratio (which keeps every risk below 1; "
            "hr.fit(..., models=('logit', ...)) reports it), or a smaller RR.")


def _check_rr(name: str, rr: np.ndarray) -> None:
    bad = ~(np.isfinite(rr) & (rr > 0))
    if bad.any():
        raise OptionError(f"{name} must be a finite risk ratio > 0; got "
                         f"{rr[bad].ravel()[:5].tolist()}.")


def personalized_benefit(p0: object, rr: object, rr_ci: Sequence[object] | None = None
                         ) -> pd.DataFrame:
    """Absolute risk reduction and NNT (NNTB / NNTH) for baseline risks ``p0``.

    Parameters
    ----------
    p0
        Baseline (untreated) risk(s) as proportions in (0, 1): a number or an array.
    rr
        Risk ratio(s), treated vs control, > 0; broadcast against ``p0``.
    rr_ci
        ``(low, high)`` confidence limits of ``rr`` (each broadcast like ``rr``); without it
        the interval columns are NaN.

    Returns
    -------
    pandas.DataFrame
        One row per broadcast element: ``p0, rr, rr_low, rr_high``; ``arr`` = p0 (1 - RR) and
        its limits ``arr_low`` = p0 (1 - RR_high), ``arr_high`` = p0 (1 - RR_low) (p0 taken as
        known); ``nnt`` = 1 / |ARR| with ``nnt_type`` ``NNTB`` (ARR > 0), ``NNTH`` (ARR < 0) or
        ``none`` (ARR = 0, infinite); the NNT interval as ``nntb_low, nntb_high`` and
        ``nnth_low, nnth_high`` (NaN when that side is not in the interval, ``inf`` when it is
        unbounded); ``nnt_text``: the Altman (1998) display with NNTs rounded up.

    Examples
    --------
    >>> b = personalized_benefit(0.05, 0.90)
    >>> round(float(b.arr[0]) * 100, 6), b.nnt_text[0]
    (0.5, 'NNTB 200')
    >>> personalized_benefit(0.05, 0.90, rr_ci=(0.80, 1.01)).nnt_text[0]
    'NNTB 200 (NNTH 2000 to ∞ to NNTB 100)'
    """
    p = _as_array("p0", p0)
    r = _as_array("rr", rr)
    _check_p0(p)
    _check_rr("rr", r)
    if rr_ci is not None:
        if not isinstance(rr_ci, (tuple, list)) or len(rr_ci) != 2:
            raise OptionError(f"rr_ci must be a pair (low, high), got {rr_ci!r}.")
        lo, hi = _as_array("rr_ci[0]", rr_ci[0]), _as_array("rr_ci[1]", rr_ci[1])
        _check_rr("rr_ci[0]", lo)
        _check_rr("rr_ci[1]", hi)
        p, r, lo, hi = _broadcast(p, r, lo, hi)
        bad = ~((lo <= r) & (r <= hi))
        if bad.any():
            raise OptionError(f"rr_ci must satisfy low <= rr <= high; got rr {r[bad][:3].tolist()}"
                             f" with low {lo[bad][:3].tolist()}, high {hi[bad][:3].tolist()}.")
    else:
        p, r = _broadcast(p, r)
        lo = hi = np.full(p.shape, np.nan)
    _check_treated_risk(p, r)
    p, r, lo, hi = (np.atleast_1d(a).ravel().astype(float) for a in (p, r, lo, hi))
    arr = p * (1 - r)
    arr_lo, arr_hi = p * (1 - hi), p * (1 - lo)
    # the estimate makes a risk (checked above); an upper RR limit may not: its ARR limit is kept
    # as p0 (1 - RR_high), the interval of the RR mapped with p0 taken as known (as in the R
    # cross-check), and the reader is told that it reaches below p0 - 1
    beyond = p * hi > 1
    if beyond.any():
        import warnings

        from hte_report.errors import HTEReportWarning

        i = int(np.flatnonzero(beyond)[0])
        warnings.warn(f"at p0 {p[i]:g} the upper RR limit {hi[i]:g} implies a risk under "
                      f"treatment of {p[i] * hi[i]:.4g}, above 1: the lower ARR limit "
                      f"{arr_lo[i]:.4g} (p0 (1 - RR_high)) is below p0 - 1 = {p[i] - 1:.4g}, "
                      "the smallest possible ARR. The RR interval is too wide for this baseline "
                      "risk; an odds ratio keeps every risk below 1.", HTEReportWarning,
                      stacklevel=2)
    rows = []
    for i in range(len(p)):
        rows.append(_nnt(arr[i], arr_lo[i], arr_hi[i]))
    df = pd.DataFrame({"p0": p, "rr": r, "rr_low": lo, "rr_high": hi, "arr": arr,
                       "arr_low": arr_lo, "arr_high": arr_hi})
    df = pd.concat([df, pd.DataFrame(rows, index=df.index)], axis=1)
    return df[_BENEFIT_COLUMNS]


def _broadcast(*arrays: np.ndarray) -> list[np.ndarray]:
    try:
        return np.broadcast_arrays(*arrays)
    except ValueError:
        shapes = " and ".join(str(np.shape(a)) for a in arrays)
        raise OptionError(f"p0, rr and rr_ci must be numbers or arrays of matching shapes; got "
                          f"shapes {shapes}.") from None


def _ceil(x: float) -> str:
    """NNTs are rounded up to whole patients (after removing float noise, relative to the
    number: 199.99999999999997 -> 200, 10000000000.000002 -> 10000000000)."""
    if not np.isfinite(x):
        return "∞"
    return str(int(math.ceil(float(f"{x:.12g}"))))


def _nnt(arr: float, lo: float, hi: float) -> dict:
    if arr > 0:
        kind, nnt = "NNTB", 1 / arr
    elif arr < 0:
        kind, nnt = "NNTH", -1 / arr
    else:
        kind, nnt = "none", np.inf
    out = {"nnt": nnt, "nnt_type": kind, "nntb_low": np.nan, "nntb_high": np.nan,
           "nnth_low": np.nan, "nnth_high": np.nan}
    text = f"{kind} {_ceil(nnt)}" if kind != "none" else "NNT ∞ (no difference)"
    if np.isfinite(lo) and np.isfinite(hi):
        if lo > 0:  # benefit throughout
            out.update(nntb_low=1 / hi, nntb_high=1 / lo)
            ci = f"NNTB {_ceil(1 / hi)} to {_ceil(1 / lo)}"
        elif hi < 0:  # harm throughout
            out.update(nnth_low=-1 / lo, nnth_high=-1 / hi)
            ci = f"NNTH {_ceil(-1 / lo)} to {_ceil(-1 / hi)}"
        else:  # the ARR interval includes 0: NNTH x to inf to NNTB y
            parts = []
            if lo < 0:
                out.update(nnth_low=-1 / lo, nnth_high=np.inf)
                parts.append(f"NNTH {_ceil(-1 / lo)}")
            if hi > 0:
                out.update(nntb_low=1 / hi, nntb_high=np.inf)
                parts.append(f"NNTB {_ceil(1 / hi)}")
            ci = " to ∞ to ".join(parts) if len(parts) == 2 else (
                f"{parts[0]} to ∞" if parts else "∞")
        text = f"{text} ({ci})"
    out["nnt_text"] = text
    return out


def benefit_from_result(result, p0: object, *, modifier: str | None = None,
                        level: str | None = None, model: str | None = None) -> pd.DataFrame:
    """Personalized benefit from the risk ratio of a fitted :class:`~hte_report.HTEResult`.

    Parameters
    ----------
    result
        A result whose models include a log-link model (``modified-poisson`` or
        ``log-binomial``) for a binary outcome.
    p0
        Baseline risk(s) in (0, 1).
    modifier, level
        Use the standardized RR of this subgroup (all levels of ``modifier`` when ``level`` is
        omitted); the overall RR when ``modifier`` is omitted.
    model
        The model label (e.g. ``"modified-poisson-HC0"``); default: the primary relative model.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`personalized_benefit` with ``modifier``, ``level`` and ``model``
        in front, one row per (subgroup, p0).

    Examples
    --------
    >>> import hte_report as hr
    >>> from hte_report.datasets import load_rossi
    >>> res = hr.fit("arrest ~ fin * C(wexp)", load_rossi(), treatment="fin")
    >>> b = benefit_from_result(res, [0.1, 0.3], modifier="wexp", level="1")
    >>> b[["level", "p0", "nnt_type"]].values.tolist()
    [['1', 0.1, 'NNTB'], ['1', 0.3, 'NNTB']]
    """
    if getattr(result, "family", None) != "binary":
        raise OptionError("benefit_from_result needs a result for a binary outcome (risk ratio); "
                         f"got family={getattr(result, 'family', None)!r}.")
    if model is None:
        scale, model = result.primary.get("relative", (None, None))
        if scale != "RR":
            raise OptionError("the result has no risk-ratio model; fit with "
                             "models=('modified-poisson', ...) or 'log-binomial'.")
    if modifier is None:
        rows = result.overall[(result.overall.scale == "RR") & (result.overall.model == model)]
        rows = rows.assign(modifier="All patients", level="")
    else:
        sub = result.subgroups
        rows = sub[(sub.scale == "RR") & (sub.model == model) & (sub.method == "standardized")
                   & (sub.modifier == modifier)]
        if level is not None:
            rows = rows[rows.level == str(level)]
    if rows.empty:
        have = sorted(result.subgroups[result.subgroups.scale == "RR"].model.unique())
        raise OptionError(f"no risk ratio for model={model!r}, modifier={modifier!r}, "
                         f"level={level!r}; RR models in the result: {have}; modifiers: "
                         f"{list(result.modifiers)}.")
    out = []
    for r in rows.itertuples():
        if not np.isfinite(r.estimate):
            raise DataError(f"the RR of {r.modifier} {r.level} is not estimable ({r.note}).")
        b = personalized_benefit(p0, r.estimate, (r.conf_low, r.conf_high))
        b.insert(0, "model", model)
        b.insert(0, "level", r.level)
        b.insert(0, "modifier", r.modifier)
        out.append(b)
    return pd.concat(out, ignore_index=True)


def plot_personalized_benefit(benefit: pd.DataFrame, ax=None, *, percent: bool = True):
    """ARR against baseline risk from a :func:`personalized_benefit` frame (one RR).

    Draws the ARR line with its interval band over the frame's ``p0`` values and marks the
    NNT on a secondary axis-free annotation at the ends. Returns the Axes.

    Examples
    --------
    >>> import numpy as np
    >>> b = personalized_benefit(np.linspace(0.01, 0.5, 50), 0.8, (0.7, 0.95))
    >>> ax = plot_personalized_benefit(b)
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.6), constrained_layout=True)
    k = 100.0 if percent else 1.0
    b = benefit.sort_values("p0")
    if np.isfinite(b.arr_low).all():
        ax.fill_between(b.p0 * k, b.arr_low * k, b.arr_high * k, color="C0", alpha=0.2, lw=0,
                        label="interval from the RR interval")
    ax.plot(b.p0 * k, b.arr * k, color="C0", lw=1.6, label="ARR = p0 (1 − RR)")
    ax.axhline(0, color="black", lw=0.8, ls="--")
    for (_, r), side in zip(b.iloc[[0, -1]].iterrows(), ("left", "right")):
        ax.annotate(r.nnt_text.split(" (")[0], (r.p0 * k, r.arr * k), fontsize=8, ha=side,
                    textcoords="offset points", xytext=(4 if side == "left" else -4, 8))
    ax.set_xlabel("Baseline risk p0" + (" (%)" if percent else ""))
    ax.set_ylabel("Absolute risk reduction" + (", % points" if percent else ""))
    ax.legend(fontsize=8, frameon=False)
    return ax
