"""Personalized absolute benefit from a relative effect and a patient's baseline risk.

For a patient with baseline (control) risk ``p0`` and a relative risk ``RR`` that applies to
them (overall, or of their subgroup), the absolute risk reduction is ``ARR = p0 (1 - RR)`` and
the number needed to treat ``NNT = 1 / ARR``. When the treatment harms (``RR > 1``) the ARR is
negative and ``1 / |ARR|`` is the number needed to harm. Intervals for the ARR come from the RR
interval with ``p0`` taken as known; when the ARR interval includes 0 the NNT interval is not
an interval but two half-lines through infinity, written as Altman (BMJ 1998;317:1309) proposes:
``NNTB 10 (NNTH 50 to inf to NNTB 4)``.

Events are taken to be harmful (death, relapse, arrest): benefit is a reduction in risk.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import DataError, ModelError

__all__ = ["EffectModel", "benefit_calibration", "benefit_from_result", "c_for_benefit",
           "match_on_benefit", "personalized_benefit", "plot_personalized_benefit",
           "ridge_effect_model", "ridge_logit"]

_BENEFIT_COLUMNS = ["p0", "rr", "rr_low", "rr_high", "arr", "arr_low", "arr_high", "nnt",
                    "nnt_type", "nntb_low", "nntb_high", "nnth_low", "nnth_high", "nnt_text"]


def _as_array(name: str, value: object) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or an array of numbers, got "
                         f"{type(value).__name__} {value!r}.") from None
    return arr


def _check_p0(p0: np.ndarray) -> None:
    bad = ~((p0 > 0) & (p0 < 1))
    if bad.any():
        raise ValueError(f"p0 (baseline risk) must be strictly between 0 and 1; got "
                         f"{p0[bad].ravel()[:5].tolist()}. Give risks as proportions "
                         "(5% -> 0.05).")


def _check_rr(name: str, rr: np.ndarray) -> None:
    bad = ~(np.isfinite(rr) & (rr > 0))
    if bad.any():
        raise ValueError(f"{name} must be a finite risk ratio > 0; got "
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
            raise ValueError(f"rr_ci must be a pair (low, high), got {rr_ci!r}.")
        lo, hi = _as_array("rr_ci[0]", rr_ci[0]), _as_array("rr_ci[1]", rr_ci[1])
        _check_rr("rr_ci[0]", lo)
        _check_rr("rr_ci[1]", hi)
        p, r, lo, hi = np.broadcast_arrays(p, r, lo, hi)
        bad = ~((lo <= r) & (r <= hi))
        if bad.any():
            raise ValueError(f"rr_ci must satisfy low <= rr <= high; got rr {r[bad][:3].tolist()}"
                             f" with low {lo[bad][:3].tolist()}, high {hi[bad][:3].tolist()}.")
    else:
        p, r = np.broadcast_arrays(p, r)
        lo = hi = np.full(p.shape, np.nan)
    p, r, lo, hi = (np.atleast_1d(a).ravel().astype(float) for a in (p, r, lo, hi))
    arr = p * (1 - r)
    arr_lo, arr_hi = p * (1 - hi), p * (1 - lo)
    rows = []
    for i in range(len(p)):
        rows.append(_nnt(arr[i], arr_lo[i], arr_hi[i]))
    df = pd.DataFrame({"p0": p, "rr": r, "rr_low": lo, "rr_high": hi, "arr": arr,
                       "arr_low": arr_lo, "arr_high": arr_hi})
    df = pd.concat([df, pd.DataFrame(rows, index=df.index)], axis=1)
    return df[_BENEFIT_COLUMNS]


def _ceil(x: float) -> str:
    """NNTs are rounded up to whole patients (after removing float noise: 199.99999 -> 200)."""
    if not np.isfinite(x):
        return "∞"
    return str(int(math.ceil(round(x, 8))))


def _nnt(arr: float, lo: float, hi: float) -> dict:
    eps = 0.0
    if arr > eps:
        kind, nnt = "NNTB", 1 / arr
    elif arr < -eps:
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
        raise ValueError("benefit_from_result needs a result for a binary outcome (risk ratio); "
                         f"got family={getattr(result, 'family', None)!r}.")
    if model is None:
        scale, model = result.primary.get("relative", (None, None))
        if scale != "RR":
            raise ValueError("the result has no risk-ratio model; fit with "
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
        raise ValueError(f"no risk ratio for model={model!r}, modifier={modifier!r}, "
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
    for _, r in b.iloc[[0, -1]].iterrows():
        ax.annotate(r.nnt_text.split(" (")[0], (r.p0 * k, r.arr * k), fontsize=8,
                    textcoords="offset points", xytext=(4, 6))
    unit = " (%)" if percent else ""
    ax.set_xlabel(f"Baseline risk p0{unit}")
    ax.set_ylabel(f"Absolute risk reduction{unit}")
    ax.legend(fontsize=8, frameon=False)
    return ax


# ============================================================================ effect modelling
# Exploratory: predicted individual benefit from a treatment-interaction (effect) model, its
# shrinkage, and whether it discriminates observed benefit. Not confirmatory: effect models
# with many interactions overfit and exaggerate heterogeneity (van Klaveren 2019).


@dataclass(frozen=True)
class EffectModel:
    """A logistic effect model with ridge-penalized treatment interactions (exploratory).

    Frames
    ------
    coefficients
        ``term``, ``penalized`` (treatment-interaction column), ``unpenalized`` (maximum
        likelihood) and ``ridge`` (at the cross-validated penalty).
    cv
        ``lambda``, held-out mean binomial ``deviance`` and its ``std_error`` across folds,
        ``chosen``.
    patients
        ``treatment``, ``outcome``, ``fold``, predicted benefit (risk under control minus risk
        under treatment) ``benefit_<model>`` (apparent, on all data) and
        ``benefit_<model>_cv`` (from the model fitted without the patient's fold), for
        ``model`` in ``unpenalized``, ``ridge``.
    c_for_benefit
        ``model``, ``predictions`` (``apparent``/``cross-fitted``), ``estimate``, ``n_pairs``.
    calibration
        Observed against predicted benefit in quantile groups of matched pairs.
    """

    formula: str
    outcome: str
    treatment: str
    penalty: float
    folds: int
    seed: int | None
    coefficients: pd.DataFrame
    cv: pd.DataFrame
    patients: pd.DataFrame
    c_for_benefit: pd.DataFrame
    calibration: pd.DataFrame
    notes: tuple[str, ...] = ()
    label: str = "exploratory"


def ridge_logit(X: np.ndarray, y: np.ndarray, penalty: np.ndarray,
                start: np.ndarray | None = None) -> np.ndarray:
    """Maximize ``loglik(b) / n - 0.5 * sum(penalty * b**2)`` by Newton's method.

    ``penalty`` is per coefficient (0 for unpenalized columns), so with ``penalty_j = lambda
    * sd_j**2`` this is glmnet's ridge (``alpha = 0``) on standardized columns.
    """
    n = len(y)
    b = np.zeros(X.shape[1]) if start is None else np.array(start, dtype=float)
    for _ in range(200):
        mu = 1.0 / (1.0 + np.exp(-(X @ b)))
        grad = X.T @ (y - mu) / n - penalty * b
        hess = (X.T * (mu * (1 - mu))) @ X / n + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        b = b + step
        if np.max(np.abs(step)) < 1e-11:
            return b
    raise ModelError("the penalized logistic model did not converge in 200 Newton steps "
                     "(separation?); use a larger penalty or fewer interactions.")


def ridge_effect_model(
    formula: str,
    data: object,
    *,
    treatment: str | None = None,
    reference: object = None,
    folds: int = 10,
    seed: int | None = 0,
    lambdas: Sequence[float] | None = None,
    benefit_groups: int = 5,
) -> EffectModel:
    """Ridge penalty on the treatment interactions only, chosen by K-fold cross-validation,
    with c-for-benefit and calibration-for-benefit checks. Exploratory.

    Parameters
    ----------
    formula
        A logistic effect model such as ``"y ~ treat * (age + prio + wexp)"``; every column
        of a treatment x covariate term is penalized (after scaling to unit SD); main effects
        and the treatment are not.
    data, treatment, reference
        As for :func:`hte_report.fit` (binary outcome).
    folds, seed
        Cross-validation folds (balanced on arm x outcome) and their seed.
    lambdas
        Penalty grid; default 40 values from 1e-5 to 10 (log-spaced) on the per-patient scale.
    benefit_groups
        Quantile groups of matched pairs for calibration-for-benefit.

    Returns
    -------
    EffectModel

    Examples
    --------
    >>> from hte_report.datasets import load_rossi
    >>> em = ridge_effect_model("arrest ~ fin * (age + prio + wexp)", load_rossi(),
    ...                         treatment="fin", folds=5, seed=1)
    >>> em.label, bool(em.penalty > 0)
    ('exploratory', True)
    """
    from .data import prepare, read_data
    from .design import build_design
    from .formula import parse_formula
    from .risk import _folds

    raw = read_data(data)
    parsed = parse_formula(formula, raw.columns, treatment=treatment)
    prep = prepare(raw, outcome=parsed.outcome, treatment=parsed.treatment,
                   variables=parsed.variables, family="binary", reference=reference)
    frame = prep.frame
    design = build_design(parsed, frame)
    X, X1, X0 = design.X, design.X1, design.X0
    y = frame[parsed.outcome].to_numpy(float)
    t = frame[parsed.treatment].to_numpy(int)
    idx = np.unique(np.concatenate([design.interaction_columns(m, parsed.treatment)
                                    for m in design.modifiers]))
    sd = np.zeros(X.shape[1])
    sd[idx] = X[:, idx].std(axis=0)
    grid = np.geomspace(1e-5, 10, 40) if lambdas is None else np.asarray(lambdas, float)
    if grid.ndim != 1 or len(grid) == 0 or np.any(~np.isfinite(grid)) or np.any(grid <= 0):
        raise ValueError(f"lambdas must be positive numbers, got {lambdas!r}.")
    grid = np.sort(grid)
    fold, k = _folds(folds, t, y, seed, len(y))
    dev = np.zeros((k, len(grid)))
    oof = {"unpenalized": np.zeros(len(y)), "ridge": np.zeros(len(y))}
    fold_fits = []
    for f in range(1, k + 1):
        tr, te = fold != f, fold == f
        start = ridge_logit(X[tr], y[tr], np.zeros(X.shape[1]))
        fits = [start]
        b = start
        for j, lam in enumerate(grid):
            b = ridge_logit(X[tr], y[tr], lam * sd**2, b)
            fits.append(b)
            mu = np.clip(1 / (1 + np.exp(-(X[te] @ b))), 1e-15, 1 - 1e-15)
            dev[f - 1, j] = -2 * np.mean(y[te] * np.log(mu) + (1 - y[te]) * np.log(1 - mu))
        fold_fits.append(fits)
    mean_dev = dev.mean(axis=0)
    best = int(np.argmin(mean_dev))
    lam = float(grid[best])
    notes = []
    if best in (0, len(grid) - 1):
        notes.append(f"the chosen penalty {lam:g} is at the edge of the grid; widen lambdas.")
    for f in range(1, k + 1):
        te = fold == f
        for name, b in (("unpenalized", fold_fits[f - 1][0]),
                        ("ridge", fold_fits[f - 1][best + 1])):
            oof[name][te] = _benefit(X0[te], X1[te], b)
    b_ml = ridge_logit(X, y, np.zeros(X.shape[1]))
    b_ridge = ridge_logit(X, y, lam * sd**2, b_ml)
    coefs = pd.DataFrame({"term": design.columns, "penalized": sd > 0,
                          "unpenalized": b_ml, "ridge": b_ridge})
    cv = pd.DataFrame({"lambda": grid, "deviance": mean_dev,
                       "std_error": dev.std(axis=0, ddof=1) / np.sqrt(k),
                       "chosen": np.arange(len(grid)) == best})
    patients = pd.DataFrame({"treatment": t, "outcome": y, "fold": fold,
                             "benefit_unpenalized": _benefit(X0, X1, b_ml),
                             "benefit_ridge": _benefit(X0, X1, b_ridge),
                             "benefit_unpenalized_cv": oof["unpenalized"],
                             "benefit_ridge_cv": oof["ridge"]})
    cfb, cal = [], []
    for name in ("unpenalized", "ridge"):
        for pred, col in (("apparent", f"benefit_{name}"), ("cross-fitted",
                                                           f"benefit_{name}_cv")):
            c = c_for_benefit(patients[col], t, y)
            cfb.append({"model": name, "predictions": pred, "estimate": c["estimate"],
                        "n_pairs": c["n_pairs"]})
            g = benefit_calibration(patients[col], t, y, groups=benefit_groups)
            cal.append(g.assign(model=name, predictions=pred))
    notes.append("exploratory: predicted benefit from an effect model; apparent measures are "
                 "optimistic, cross-fitted ones use out-of-fold predictions.")
    return EffectModel(formula, parsed.outcome, parsed.treatment, lam, k, seed, coefs, cv,
                       patients, pd.DataFrame(cfb), pd.concat(cal, ignore_index=True),
                       tuple(notes))


def _benefit(X0: np.ndarray, X1: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(X0 @ b))) - 1 / (1 + np.exp(-(X1 @ b)))


def match_on_benefit(benefit: object, treatment: object) -> tuple[np.ndarray, np.ndarray]:
    """1:1 matching of treated and control patients on the rank of predicted benefit.

    Each arm is sorted by predicted benefit (ties by row order); every patient of the smaller
    arm (size m, i-th smallest) is paired with the patient of rank ``floor((i + 0.5) M / m)``
    of the larger arm (size M), so unmatched patients of the larger arm are spread evenly.
    Returns the row indices (treated, control) of the m pairs.
    """
    pb = np.asarray(benefit, dtype=float)
    t = np.asarray(treatment)
    tr = np.flatnonzero(t == 1)[np.argsort(pb[t == 1], kind="stable")]
    co = np.flatnonzero(t == 0)[np.argsort(pb[t == 0], kind="stable")]
    small, large = (tr, co) if len(tr) <= len(co) else (co, tr)
    m, big = len(small), len(large)
    if m < 2:
        raise DataError("matching on predicted benefit needs at least two patients per arm.")
    pick = large[np.floor((np.arange(m) + 0.5) * big / m).astype(int)]
    return (small, pick) if len(tr) <= len(co) else (pick, small)


def c_for_benefit(benefit: object, treatment: object, outcome: object) -> dict:
    """c-for-benefit (van Klaveren et al., J Clin Epidemiol 2018): exploratory.

    Patients are matched 1:1 on predicted benefit (:func:`match_on_benefit`); a pair's
    predicted benefit is the mean of its two predictions and its observed benefit is
    ``y_control - y_treated`` (-1, 0 or 1). The c-statistic is the proportion of pairs of pairs
    with different observed benefit in which the pair with the larger observed benefit has
    the larger predicted benefit (ties in prediction count one half) -- Harrell's C, as
    ``Hmisc::rcorr.cens(predicted, observed)``.

    Returns
    -------
    dict
        ``estimate``, ``n_pairs`` and the paired arrays ``predicted``, ``observed``.
    """
    y = np.asarray(outcome, dtype=float)
    pb = np.asarray(benefit, dtype=float)
    it, ic = match_on_benefit(pb, treatment)
    pred = (pb[it] + pb[ic]) / 2
    obs = y[ic] - y[it]
    conc = ties = usable = 0.0
    levels = np.unique(obs)
    for a_i, a in enumerate(levels):
        lo = np.sort(pred[obs == a])
        for b in levels[a_i + 1:]:
            hi = pred[obs == b]  # observed benefit b > a: concordant when predicted is larger
            below = np.searchsorted(lo, hi, side="left")
            equal = np.searchsorted(lo, hi, side="right") - below
            conc += below.sum()
            ties += equal.sum()
            usable += len(lo) * len(hi)
    est = (conc + 0.5 * ties) / usable if usable else np.nan
    return {"estimate": float(est), "n_pairs": len(it), "predicted": pred, "observed": obs}


def benefit_calibration(benefit: object, treatment: object, outcome: object,
                        groups: int = 5) -> pd.DataFrame:
    """Observed against predicted benefit in quantile groups of matched pairs (exploratory).

    Observed benefit of a group is the mean of ``y_control - y_treated`` over its pairs, with a
    normal-approximation 95% interval (SD / sqrt(pairs)).
    """
    from .risk import quantile_groups

    c = c_for_benefit(benefit, treatment, outcome)
    codes, edges = quantile_groups(c["predicted"], groups)
    rows = []
    for g in range(len(edges) - 1):
        o = c["observed"][codes == g]
        se = o.std(ddof=1) / np.sqrt(len(o)) if len(o) > 1 else np.nan
        rows.append({"group": g + 1, "n_pairs": len(o),
                     "predicted": float(c["predicted"][codes == g].mean()),
                     "observed": float(o.mean()), "conf_low": o.mean() - 1.959964 * se,
                     "conf_high": o.mean() + 1.959964 * se})
    return pd.DataFrame(rows)
