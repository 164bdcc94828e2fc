"""Exploratory views of heterogeneity beyond the pre-specified model: STEPP sliding windows,
ridge-penalized treatment interactions, and the c-for-benefit.

Everything here is labelled exploratory (``label = "exploratory"``): the confirmatory analysis
of a continuous modifier is the pre-specified interaction model (e.g. ``y ~ treat * bs(age,
df=4)`` through :func:`hte_report.fit`).

STEPP
-----

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
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hte_report.data.prepare import prepare, read_data
from hte_report.errors import DataError, HTEReportWarning, ModelError
from hte_report.estimation.contrasts import contrast, interval
from hte_report.models.glm import FitFailure, fit_glm
from hte_report.path.risk import make_folds, quantile_groups
from hte_report.spec.options import OptionError

__all__ = ["EffectModel", "SteppResult", "benefit_calibration", "c_for_benefit",
           "match_on_benefit", "ridge_effect_model", "ridge_logit", "stepp", "stepp_windows"]

_EFFECT_COLUMNS = ["scale", "estimate", "std_error", "conf_low", "conf_high", "statistic",
                   "p_value", "model", "note"]


@dataclass(frozen=True)
class SteppResult:
    """Effects in overlapping windows of a continuous modifier (exploratory).

    Frames
    ------
    effects
        One row per (window, scale): ``window``, ``modifier_low``, ``modifier_high``,
        ``modifier_median``, ``modifier_mean`` (the plot's x), ``n, n_treated, n_control,
        events_treated, events_control``, ``overlap`` (patients shared with the previous
        window), ``scale`` (RD, RR, OR), ``estimate, std_error`` (of the log for ratios),
        ``conf_low, conf_high, statistic, p_value, model, note``.
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
        """RD and RR against the window mean of the modifier (matplotlib Figure).

        The mean, not STEPP's usual median, because tied values (ages in years) give
        neighbouring windows the same median.
        """
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter, LogLocator

        if axes is None:
            fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.8), constrained_layout=True)
        else:
            fig = axes[0].figure
        for ax, scale, null in ((axes[0], "RD", 0.0), (axes[1], "RR", 1.0)):
            k = 100.0 if (percent and scale == "RD") else 1.0
            e = self.effects[(self.effects.scale == scale) & np.isfinite(self.effects.estimate)]
            ax.fill_between(e.modifier_mean, e.conf_low * k, e.conf_high * k, color="C0",
                            alpha=0.18, lw=0, label="pointwise 95% CI")
            ax.plot(e.modifier_mean, e.estimate * k, "o-", color="C0", ms=4,
                    label="window estimate")
            o = self.overall[self.overall.scale == scale].iloc[0]
            ax.axhline(o.estimate * k, color="C1", lw=1.0, ls="-.", label="all patients")
            ax.axhline(null * k, color="black", lw=0.8, ls="--")
            if scale == "RR":
                ax.set_yscale("log")
                ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
                ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
            ax.set_xlabel(f"{self.modifier} (mean in window)")
            ax.set_ylabel("Risk difference" + (", % points" if k == 100.0 else "") if scale == "RD"
                          else "Risk ratio")
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
        raise OptionError(f"size (patients per window) must be an integer in [2, {n}], got "
                         f"{size!r}.")
    if not isinstance(overlap, (int, np.integer)) or not 0 <= overlap < size:
        raise OptionError(f"overlap must be an integer in [0, size) = [0, {size}), got "
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
            raise OptionError(f"{role} column {col!r} is not in the data; columns: "
                             f"{list(raw.columns)[:20]}.")
    prep = prepare(raw, outcome=outcome, treatment=treatment, variables=(treatment, modifier),
                   family="binary", reference=reference)
    frame = prep.frame
    x = pd.to_numeric(frame[modifier], errors="coerce").to_numpy(float)
    if np.isnan(x).any():
        raise OptionError(f"modifier {modifier!r} must be numeric (continuous).")
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
                "modifier_mean": float(x[w].mean()),
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

# ============================================================================ effect modelling
# Predicted individual benefit from a treatment-interaction (effect) model, its shrinkage, and
# whether it discriminates observed benefit. Effect models with many interactions overfit and
# exaggerate heterogeneity (van Klaveren et al., J Clin Epidemiol 2019).


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
    from hte_report.estimation.setup import setup

    su = setup(formula, data, treatment=treatment, reference=reference, family="binary",
               models=("logit",))
    parsed, design, y = su.parsed, su.design, su.y
    X, X1, X0 = (np.asarray(a) for a in (design.X, design.X1, design.X0))  # dense (issue 21)
    t = su.prep.frame[parsed.treatment].to_numpy(int)
    idx = np.unique(np.concatenate([design.interaction_columns(m, parsed.treatment)
                                    for m in design.modifiers]))
    sd = np.zeros(X.shape[1])
    sd[idx] = X[:, idx].std(axis=0)
    grid = np.geomspace(1e-5, 10, 40) if lambdas is None else np.asarray(lambdas, float)
    if grid.ndim != 1 or len(grid) == 0 or np.any(~np.isfinite(grid)) or np.any(grid <= 0):
        raise OptionError(f"lambdas must be positive numbers, got {lambdas!r}.")
    grid = np.sort(grid)
    fold, k = make_folds(folds, t, y, seed, "folds")
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
