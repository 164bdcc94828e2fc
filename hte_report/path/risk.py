"""Baseline (outcome) risk models for PATH risk-based analyses of treatment effect.

The PATH statement (Kent et al., Ann Intern Med 2020) recommends, for a positive trial, reporting
treatment effects across strata of predicted baseline risk. This module predicts that risk and
assesses the predictions; :mod:`hte_report.benefit` estimates effects across it.

:func:`risk_model` fits a prognostic model for the binary outcome *without* the treatment term
on all patients (``method="pooled"``: blinded to arm, as PATH suggests; with
``include_treatment=True`` the arm enters as a main effect and is set to control when
predicting), on the control arm only (``"control-arm"``), or takes it from outside
(``"external"``: coefficients or a column of predicted risks). It reports the c-statistic (DeLong
interval, as ``pROC``), calibration-in-the-large, the calibration slope and grouped observed vs
predicted risks. Models developed on the same trial are optimistic: a warning says so, and
``crossfit_folds=K`` predicts every patient from a model that did not see them.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from formulaic import model_matrix
from scipy import stats

from hte_report.data.prepare import prepare, read_data
from hte_report.errors import DataError, FormulaError, HTEReportWarning, ModelError, short
from hte_report.models.glm import DEVIANCE_ATOL, DEVIANCE_RTOL, FitFailure, fit_glm
from hte_report.spec.formula import _factor_columns, check_formula_safety, parse_text
from hte_report.spec.options import OptionError, check_choice, check_conf_level

__all__ = ["OverfittingWarning", "RiskModel", "c_statistic", "make_folds", "quantile_groups",
           "risk_model"]

METHODS = ("pooled", "control-arm", "external")
ROW = "_hte_row"
POPULATIONS = ("all", "control", "treated")


class OverfittingWarning(HTEReportWarning):
    """A risk model developed and evaluated on the same trial is optimistic."""


@dataclass(frozen=True)
class RiskModel:
    """A baseline-risk model and its predicted risk for every analysed patient.

    Frames
    ------
    patients
        One row per analysed patient: ``row`` (position in the input data), ``treatment``
        (0 control / 1 treated), ``outcome``, ``risk`` (predicted baseline risk), ``lp``
        (its logit) and ``fold`` (cross-fitting fold, 0 when not cross-fitted).
    model
        Coefficients of the risk model fitted on its whole development population
        (``term, estimate, std_error, conf_low, conf_high, statistic, p_value``); supplied
        coefficients have no standard errors; empty for a column of risks.
    performance
        ``metric`` (``c_statistic`` with a DeLong interval; ``calibration_intercept``:
        calibration-in-the-large, the intercept of ``glm(y ~ offset(lp), binomial)``;
        ``calibration_slope``: the slope of ``glm(y ~ lp, binomial)``) per ``population``
        (``all``, ``control``, ``treated``), with ``null`` (the value of a perfect model),
        ``p_value`` against it, ``n``, ``events`` and ``method``.
    calibration
        Observed against mean predicted risk by ``population`` and ``group`` (tenths of
        predicted risk by default), with exact (Clopper-Pearson) intervals for the observed.
    """

    formula: str
    outcome: str
    treatment: str
    treatment_labels: tuple[str, str]
    method: str
    include_treatment: bool
    crossfit_folds: int | None
    seed: int | None
    conf_level: float
    patients: pd.DataFrame
    model: pd.DataFrame
    performance: pd.DataFrame
    calibration: pd.DataFrame
    n_input: int
    n_analysed: int
    data_sha256: str
    notes: tuple[str, ...] = ()

    @property
    def developed_on_trial(self) -> bool:
        return self.method != "external"

    def c_statistic(self, population: str = "all") -> pd.Series:
        """The c-statistic row for ``population`` (``all``, ``control``, ``treated``)."""
        p = self.performance
        return p[(p.metric == "c_statistic") & (p.population == population)].iloc[0]


def risk_model(
    formula: str,
    data: object,
    *,
    treatment: str,
    method: str = "pooled",
    include_treatment: bool = False,
    coefficients: Mapping[str, float] | pd.Series | None = None,
    risk_column: str | None = None,
    crossfit_folds: int | Sequence[int] | None = None,
    seed: int | None = 0,
    reference: object = None,
    conf_level: float = 0.95,
    calibration_groups: int = 10,
    safe_formula: bool = False,
) -> RiskModel:
    """Predict every patient's baseline risk of a binary outcome and assess the predictions.

    Parameters
    ----------
    formula
        The risk model without the treatment, e.g. ``"arrest ~ age + prio + wexp"``. With
        ``risk_column`` write ``"arrest ~ 1"``.
    data
        DataFrame or path; rows missing a used variable are excluded and counted.
    treatment
        The treatment column (two levels; see ``reference``).
    method
        ``"pooled"`` (all patients, no treatment term -- blinded to arm), ``"control-arm"``
        (control patients only; predictions for all) or ``"external"`` (``coefficients`` on
        the formula's design columns, or ``risk_column``).
    include_treatment
        Pooled only: add the treatment as a main effect and predict with it set to control.
    coefficients
        External model: design column name (``"Intercept"``, ``"age"``, ...) -> coefficient
        on the logit scale. Names must match the formula's design exactly.
    risk_column
        External model: a column of predicted risks in (0, 1).
    crossfit_folds
        ``K`` (>= 2): every patient's risk comes from the model refitted without their fold
        (folds balanced on arm x outcome, shuffled with ``seed``); or one fold label per
        analysed row. Transforms (spline knots, centring) keep the state learnt from all rows,
        which uses no outcome.
    seed
        Seed of the fold assignment (recorded in the result).
    reference
        Control level of a treatment that is not 0/1 or bool.
    conf_level
        Confidence level of every interval.
    calibration_groups
        Number of quantile groups of predicted risk in the ``calibration`` frame.
    safe_formula
        Refuse formula terms that would run code (formulas from a plan file).

    Returns
    -------
    RiskModel

    Examples
    --------
    >>> from hte_report.datasets import load_rossi
    >>> from hte_report.path.risk import risk_model
    >>> rm = risk_model("arrest ~ age + prio + wexp + mar + paro + race", load_rossi(),
    ...                 treatment="fin", crossfit_folds=5, seed=1)
    >>> round(float(rm.c_statistic().estimate), 2)  # out-of-fold; the apparent c is 0.66
    0.62
    """
    check_choice("method", method, METHODS)
    conf_level = check_conf_level(conf_level)
    if include_treatment and method != "pooled":
        raise OptionError(f"include_treatment=True applies to method='pooled' only, not "
                         f"{method!r}.")
    if method == "external" and (coefficients is None) == (risk_column is None):
        raise OptionError("method='external' needs exactly one of coefficients= (a mapping of "
                         "design column -> logit coefficient) or risk_column= (predicted risks).")
    if method != "external" and (coefficients is not None or risk_column is not None):
        raise OptionError(f"coefficients= and risk_column= are for method='external'; with "
                         f"method={method!r} the model is fitted on the trial.")
    if method == "external" and crossfit_folds is not None:
        raise OptionError("crossfit_folds applies to models developed on the trial, not to an "
                         "external model.")
    check_seed(seed)
    if (isinstance(calibration_groups, bool) or not isinstance(calibration_groups, int)
            or calibration_groups < 2):
        raise OptionError(f"calibration_groups must be an integer >= 2, got "
                         f"{calibration_groups!r}.")
    if safe_formula:
        check_formula_safety(formula)
    raw = read_data(data)
    outcome, rhs, columns = _parse_risk_formula(formula, raw.columns, treatment)
    if risk_column is not None:
        if rhs.strip() not in ("1", ""):
            raise FormulaError(f"with risk_column={risk_column!r} the formula must be "
                               f"'{outcome} ~ 1', got {formula!r}.")
        if risk_column not in raw.columns:
            raise DataError(f"risk_column {risk_column!r} is not in the data.")
        columns = [risk_column]
    frame_in = raw.assign(**{ROW: np.arange(len(raw))})
    prep = prepare(frame_in, outcome=outcome, treatment=treatment,
                   variables=(treatment, *columns, ROW), family="binary", reference=reference)
    if prep.n_excluded:
        warnings.warn(f"{prep.n_excluded} of {prep.n_input} rows excluded for missing values "
                      "in the risk model's variables.", HTEReportWarning, stacklevel=2)
    frame = prep.frame
    y = frame[outcome].to_numpy(float)
    t = frame[treatment].to_numpy(int)
    n = len(frame)
    notes: list[str] = []

    folds = np.zeros(n, dtype=int)
    k = None
    if crossfit_folds is not None:
        folds, k = make_folds(crossfit_folds, t, y, seed)
    if method == "external":
        if risk_column is not None:
            risk = frame[risk_column].to_numpy(float)
            if np.any((risk <= 0) | (risk >= 1)):
                bad = risk[(risk <= 0) | (risk >= 1)]
                raise DataError(f"risk_column {risk_column!r} must hold risks strictly between "
                                f"0 and 1; {len(bad)} value(s) are not, e.g. {bad[:3].tolist()}.")
            lp = np.log(risk / (1 - risk))
            coef = pd.DataFrame(columns=["term", "estimate", "std_error", "conf_low",
                                         "conf_high", "statistic", "p_value"])
        else:
            X, names = _design(rhs, frame)
            b = _external_coefficients(coefficients, names)
            lp = X @ b
            coef = pd.DataFrame({"term": names, "estimate": b}).assign(
                std_error=np.nan, conf_low=np.nan, conf_high=np.nan, statistic=np.nan,
                p_value=np.nan)
    else:
        design_rhs = f"{treatment} + {rhs}" if include_treatment else rhs
        X, names = _design(design_rhs, frame)
        X0 = X
        if include_treatment:
            f0 = frame.assign(**{treatment: 0})
            X0 = np.asarray(model_matrix(design_rhs, frame).model_spec.get_model_matrix(f0),
                            dtype=float)
        develop = np.ones(n, dtype=bool) if method == "pooled" else (t == 0)
        full = _fit_logit(X[develop], y[develop], names, "the risk model")
        coef = _coef_frame(full, names, conf_level)
        lp = X0 @ full.params
        if k is not None:
            for f in np.unique(folds):
                train = develop & (folds != f)
                fm = _fit_logit(X[train], y[train], names, f"the risk model without fold {f}")
                lp[folds == f] = X0[folds == f] @ fm.params
        if k is None:
            msg = ("the risk model was developed and is evaluated on the same trial: its "
                   "c-statistic and calibration are optimistic")
            if method == "control-arm":
                msg += (", and fitting it on the control arm only biases risk-stratified "
                        "effects towards spurious heterogeneity (Burke 2014; Abadie 2018)")
            msg += ". Use crossfit_folds=K for out-of-fold predictions."
            warnings.warn(msg, OverfittingWarning, stacklevel=2)
            notes.append(msg)
        else:
            notes.append(f"risks are {k}-fold cross-fitted (seed {seed}); coefficients are "
                         "from the model fitted on the whole development population.")
    risk = 1.0 / (1.0 + np.exp(-lp))
    patients = pd.DataFrame({"row": frame[ROW].to_numpy(int), "treatment": t, "outcome": y,
                             "risk": risk, "lp": lp, "fold": folds})
    performance, calibration = _performance(patients, conf_level, calibration_groups)
    return RiskModel(
        formula=formula, outcome=outcome, treatment=treatment,
        treatment_labels=prep.treatment_labels, method=method,
        include_treatment=include_treatment, crossfit_folds=k,
        seed=seed if k is not None else None, conf_level=conf_level, patients=patients,
        model=coef, performance=performance, calibration=calibration, n_input=prep.n_input,
        n_analysed=n, data_sha256=prep.data_sha256, notes=tuple(notes))


def _parse_risk_formula(formula: str, columns, treatment: str) -> tuple[str, str, list[str]]:
    parsed = parse_text(formula, "y ~ age + sex")
    lhs = list(parsed.lhs)
    if len(lhs) != 1 or len(lhs[0].factors) != 1:
        raise FormulaError(f"the left-hand side of {formula!r} must be one outcome column.")
    outcome = lhs[0].factors[0].expr
    used: list[str] = []
    for term in parsed.rhs:
        for factor in term.factors:
            used += [c for c in _factor_columns(factor, columns) if c not in used]
    for col in [outcome, treatment, *used]:
        if col not in columns:
            raise FormulaError(f"column {col!r} named by formula {formula!r} (or treatment=) is "
                               f"not in the data; columns: {list(columns)[:20]}.")
    if treatment in used:
        raise FormulaError(
            f"the risk formula {formula!r} uses the treatment {treatment!r}: write it without "
            "the treatment (use include_treatment=True to add it as a main effect set to "
            "control when predicting).")
    return outcome, formula.split("~", 1)[1], used


def _design(rhs: str, frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    try:
        mm = model_matrix(rhs, frame, na_action="raise")
    except Exception as exc:
        raise FormulaError(f"cannot build the risk model's design for {rhs!r}: {exc}") from None
    return np.asarray(mm, dtype=float), list(mm.columns)


def _external_coefficients(coefficients, names: list[str]) -> np.ndarray:
    coefs = dict(coefficients.items()) if hasattr(coefficients, "items") else None
    if coefs is None:
        raise OptionError("coefficients must be a mapping (dict or pandas Series) of design "
                         f"column -> coefficient; the design columns are {names}.")
    missing = [c for c in names if c not in coefs]
    extra = [c for c in coefs if c not in names]
    if missing or extra:
        raise OptionError(f"coefficients do not match the formula's design columns {names}: "
                         f"missing {missing}, not in the design {extra}.")
    b = np.array([float(coefs[c]) for c in names])
    if not np.all(np.isfinite(b)):
        raise OptionError("coefficients must be finite numbers.")
    return b


def _fit_logit(X, y, names, what):
    if y.sum() == 0 or y.sum() == len(y):
        raise DataError(f"cannot fit {what}: the outcome is constant ({int(y.sum())} events "
                        f"in {len(y)} patients).")
    try:
        return fit_glm("logit", X, y, tuple(names), "model")
    except FitFailure as exc:
        raise ModelError(f"{what} did not converge ({exc}); check for separation or use "
                         "fewer covariates.") from None


def _coef_frame(fm, names, conf_level):
    z = stats.norm.ppf(0.5 + conf_level / 2)
    se = np.sqrt(np.diag(fm.vcov))
    b = fm.params
    return pd.DataFrame({"term": names, "estimate": b, "std_error": se,
                         "conf_low": b - z * se, "conf_high": b + z * se,
                         "statistic": b / se, "p_value": 2 * stats.norm.sf(np.abs(b / se))})


def check_seed(seed: object, name: str = "seed") -> None:
    """A seed is None or a whole number >= 0 (``"x"`` or ``1.5`` would fail or be ignored)."""
    if seed is None:
        return
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        hint = (f" (write {seed.strip()}, not {seed!r})" if isinstance(seed, str)
                and seed.strip().isdigit() else "")
        raise OptionError(f"{name} must be a whole number >= 0 (or None), got "
                          f"{short(seed)}{hint}.")


def make_folds(spec: int | Sequence[int], treatment: np.ndarray, outcome: np.ndarray,
               seed: int | None, name: str = "crossfit_folds") -> tuple[np.ndarray, int]:
    """Fold labels 1..K for cross-fitting and cross-validation, and K.

    ``spec`` is K (folds balanced on arm x outcome: each of the four cells is shuffled with
    ``seed`` and dealt to the folds in turn from a random fold) or one label per row.
    """
    t, y, n = np.asarray(treatment), np.asarray(outcome), len(outcome)
    check_seed(seed)
    if isinstance(spec, (bool, np.bool_)) or (
            np.ndim(spec) == 0 and not isinstance(spec, (int, np.integer))):  # "5", 5.0, {..}
        hint = (f" (write {spec.strip()}, not {spec!r})" if isinstance(spec, str)
                and spec.strip().isdigit() else "")
        raise OptionError(f"{name} must be a whole number of folds K >= 2 or one fold label "
                          f"per analysed row, got {short(spec)}{hint}.")
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        k = int(spec)
        if k < 2 or k > n // 2:
            raise OptionError(f"{name} must be between 2 and n/2 = {n // 2}, got {k}.")
        rng = np.random.default_rng(seed)
        folds = np.zeros(n, dtype=int)
        for cell in ((0, 0), (0, 1), (1, 0), (1, 1)):  # balance arm x outcome across folds
            idx = np.flatnonzero((t == cell[0]) & (y == cell[1]))
            idx = rng.permutation(idx)
            folds[idx] = (np.arange(len(idx)) + rng.integers(k)) % k + 1
        return folds, k
    folds = np.asarray(spec)
    if folds.ndim != 1 or len(folds) != n:
        raise OptionError(f"{name} must be an integer K or one fold label per analysed "
                         f"row ({n}), got {type(spec).__name__} of length {len(folds)}.")
    codes = np.unique(folds, return_inverse=True)[1] + 1
    if codes.max() < 2:
        raise OptionError(f"{name} labels must name at least two folds.")
    return codes.astype(int), int(codes.max())


# ----------------------------------------------------------------------------- performance
def c_statistic(outcome, score, conf_level: float = 0.95) -> dict:
    """c-statistic (area under the ROC curve) with DeLong's standard error and interval.

    Ties in ``score`` count one half. The interval is ``c +/- z SE`` clipped to [0, 1], as
    ``pROC::ci.auc(method = "delong")``.

    Examples
    --------
    >>> c_statistic([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])["estimate"]
    0.75
    """
    y = np.asarray(outcome, dtype=float)
    s = np.asarray(score, dtype=float)
    cases, ctrls = s[y == 1], s[y == 0]
    m, n = len(cases), len(ctrls)
    if m < 2 or n < 2:
        raise DataError(f"the c-statistic needs at least two patients with and two without the "
                        f"event; got {m} and {n}.")
    r_all = stats.rankdata(s)
    v10 = (r_all[y == 1] - stats.rankdata(cases)) / n  # per case: share of controls below
    v01 = 1.0 - (r_all[y == 0] - stats.rankdata(ctrls)) / m  # per control: share of cases above
    auc = float(v10.mean())
    se = float(np.sqrt(v10.var(ddof=1) / m + v01.var(ddof=1) / n))
    z = stats.norm.ppf(0.5 + conf_level / 2)
    return {"estimate": auc, "std_error": se, "conf_low": max(0.0, auc - z * se),
            "conf_high": min(1.0, auc + z * se), "n": m + n, "events": m}


def _calibration_fit(y, lp, slope: bool, conf_level: float) -> dict:
    X = np.column_stack([np.ones_like(lp), lp]) if slope else np.ones((len(lp), 1))
    off = None if slope else lp
    res = sm.GLM(y, X, family=sm.families.Binomial(), offset=off).fit(
        maxiter=200, tol_criterion="deviance", rtol=DEVIANCE_RTOL, atol=DEVIANCE_ATOL)
    j = 1 if slope else 0
    b, se = float(res.params[j]), float(np.sqrt(res.cov_params()[j, j]))
    null = 1.0 if slope else 0.0
    z = stats.norm.ppf(0.5 + conf_level / 2)
    stat = (b - null) / se
    return {"estimate": b, "std_error": se, "conf_low": b - z * se, "conf_high": b + z * se,
            "null": null, "statistic": stat, "p_value": float(2 * stats.norm.sf(abs(stat)))}


def quantile_groups(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes 0..K-1 of K quantile groups (type-7 quantiles, right-closed, lowest included:
    R's ``cut(x, unique(quantile(x, 0:K/K)), include.lowest = TRUE)``) and the edges used."""
    edges = np.unique(np.quantile(x, np.linspace(0, 1, k + 1)))
    codes = np.searchsorted(edges, x, side="left") - 1
    codes[x == edges[0]] = 0
    return codes, edges


def _performance(patients: pd.DataFrame, conf_level: float, groups: int):
    perf, calib = [], []
    for pop in POPULATIONS:
        sel = patients if pop == "all" else patients[patients.treatment == (pop == "treated")]
        y, risk, lp = sel.outcome.to_numpy(), sel.risk.to_numpy(), sel.lp.to_numpy()
        base = {"population": pop, "n": len(sel), "events": int(y.sum())}
        try:
            c = c_statistic(y, risk, conf_level)
            perf.append({"metric": "c_statistic", **base, "estimate": c["estimate"],
                         "std_error": c["std_error"], "conf_low": c["conf_low"],
                         "conf_high": c["conf_high"], "null": 0.5,
                         "statistic": (c["estimate"] - 0.5) / c["std_error"],
                         "p_value": float(2 * stats.norm.sf(abs(c["estimate"] - 0.5)
                                                            / c["std_error"])),
                         "method": "DeLong"})
            for metric, slope in (("calibration_intercept", False), ("calibration_slope", True)):
                perf.append({"metric": metric, **base, **_calibration_fit(y, lp, slope,
                                                                            conf_level),
                             "method": "logistic recalibration"})
        except DataError:
            continue
        codes, edges = quantile_groups(risk, groups)
        for g in range(len(edges) - 1):
            yy = y[codes == g]
            ev = int(yy.sum())
            ci = stats.binomtest(ev, len(yy)).proportion_ci(conf_level, method="exact")
            calib.append({"population": pop, "group": g + 1, "risk_low": edges[g],
                          "risk_high": edges[g + 1], "n": len(yy), "events": ev,
                          "predicted": float(risk[codes == g].mean()),
                          "observed": ev / len(yy), "conf_low": ci.low, "conf_high": ci.high})
    return pd.DataFrame(perf), pd.DataFrame(calib)
