"""An honest, orthogonalized causal forest (EconML's ``CausalForestDML``) and its
cross-fitted calibration -- exploratory, hypothesis-generating.

Method
------
The forest is the generalized random forest of Athey, Tibshirani & Wager (2019) as implemented
by EconML (``econml.dml.CausalForestDML``), never a hand-written forest:

* **Orthogonalization** (R-learner / double machine learning): the outcome and the treatment
  are residualized on the covariates with cross-fitted nuisance models (``n_folds``-fold,
  stratified by arm): ``y_hat`` = m(x) = E[Y | X] by a random forest regressor (binary outcomes
  too: m(x) is a risk) and ``w_hat`` = e(x) = P(W = 1 | X): the trial's known allocation
  probability (``propensity=0.5``), the cross-fitted proportion treated (a randomized trial
  without ``propensity``: grf's ``W.hat = mean(W)``), or a random forest classifier
  (``design="observational"``).
* **Honesty**: each tree is grown on a subsample (``max_samples``, default 45 %, without
  replacement) split in two halves, one choosing the splits and the other estimating the leaf
  effects; trees come in little bags (``subforest_size`` 4) for the bootstrap-of-little-bags
  variance of each CATE.
* **Cross-fitted evaluation**: every calibration number uses the *out-of-bag* CATE of each
  patient (from trees whose subsample excluded them, as grf's ``predict()`` without new data)
  and the cross-fitted nuisance predictions; see :mod:`hte_report.exploratory.calibration`.
* **Reproducible**: ``seed`` seeds the folds, the nuisance forests, the causal forests and the
  bootstraps: the same data, seed and library versions give identical numbers (tested) with
  ``n_jobs=1`` (the default). With ``n_jobs > 1`` scikit-learn and EconML sum the trees'
  predictions in thread order, so the last bits of the nuisance predictions can change from
  run to run, and with them an occasional split: faster, but not bit-reproducible.

Outcomes: continuous (CATE as a mean difference), binary 0/1 (CATE as a risk difference;
the implied risks without and with treatment are ``m(x) - e(x) tau(x)`` and that plus
``tau(x)``, whose ratio is the implied risk ratio -- a by-product of a risk-difference forest,
not a fitted ratio model) and time-to-event (``family="time"``, ``event=``, ``horizon=``):
the forest analyses jackknife pseudo-observations of the Kaplan-Meier restricted mean survival
time to ``horizon`` (:mod:`hte_report.exploratory.pseudo`), so the CATE is an RMST
difference; this assumes censoring independent of covariates and treatment.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from hte_report.errors import DataError, FormulaError, HTEReportError, ModelError
from hte_report.exploratory import calibration as cal
from hte_report.exploratory.result import EXPLORATORY_NOTE, ExploreResult
from hte_report.spec.options import checked_arguments

__all__ = ["MissingDependencyError", "explore"]

LABEL = "exploratory"


class MissingDependencyError(HTEReportError, ImportError):
    """An optional dependency (the ``ml`` extra) is not installed."""


def _require_econml():
    try:
        import econml  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            "hte_report.explore needs EconML and scikit-learn, which are not installed "
            f"({exc.name} is missing): pip install 'hte-report[ml]'") from None


_C_TERM = re.compile(r"^C\(\s*([^,()]+?)\s*\)$")


def _parse_covariates(covariates, outcome):
    """Column names (and which to treat as categorical) from a list or an ``y ~ a + C(b)``
    formula of plain column names."""
    categorical: set[str] = set()
    if isinstance(covariates, str):
        text = covariates
        if "~" in text:
            lhs, _, text = text.partition("~")
            lhs = lhs.strip()
            if lhs:
                if outcome is not None and outcome != lhs:
                    raise FormulaError(f"the formula's outcome {lhs!r} differs from "
                                       f"outcome={outcome!r}")
                outcome = lhs
        names = []
        for term in text.split("+"):
            term = term.strip()
            if not term:
                raise FormulaError(f"empty term in the covariate formula {covariates!r}")
            m = _C_TERM.match(term)
            if m:
                term = m.group(1).strip()
                categorical.add(term)
            elif not re.fullmatch(r"[A-Za-z_.][\w.]*", term):
                raise FormulaError(
                    f"covariate term {term!r}: the forest takes plain column names (or C(name) "
                    "for a categorical one), joined by '+'; it finds interactions and "
                    "non-linearities itself")
            names.append(term)
    elif isinstance(covariates, Sequence):
        names = [str(c) for c in covariates]
    else:
        raise FormulaError("covariates must be a list of column names or a formula "
                           "'outcome ~ a + b + C(c)'")
    if not names:
        raise FormulaError("no covariates given: the forest needs at least one")
    dup = sorted({c for c in names if names.count(c) > 1})
    if dup:
        raise FormulaError(f"covariates given twice: {dup}")
    if outcome is None:
        raise FormulaError("no outcome: give outcome= or a formula 'outcome ~ covariates'")
    return names, categorical, outcome


def _check_columns(data: pd.DataFrame, names: Sequence[str], what: str) -> None:
    missing = [c for c in names if c not in data.columns]
    if missing:
        import difflib

        hints = []
        for c in missing:
            close = difflib.get_close_matches(c, [str(x) for x in data.columns], n=1)
            hints.append(f"{c!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise DataError(f"{what} not in the data: {', '.join(hints)}")


def _design_matrix(frame: pd.DataFrame, names, categorical) -> pd.DataFrame:
    """Numeric covariate matrix: numeric and boolean columns as they are, text / categorical
    columns (and ``C(name)``) one-hot over every observed level."""
    parts = []
    for c in names:
        col = frame[c]
        is_num = (pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col))
        if pd.api.types.is_bool_dtype(col):
            parts.append(col.astype(float).rename(c))
        elif is_num and c not in categorical:
            if pd.api.types.is_complex_dtype(col):
                raise DataError(f"covariate {c!r} is complex-valued")
            values = col.astype(float)
            if not np.isfinite(values.to_numpy()).all():
                raise DataError(f"covariate {c!r} has infinite values")
            parts.append(values.rename(c))
        elif pd.api.types.is_datetime64_any_dtype(col) or pd.api.types.is_timedelta64_dtype(col):
            raise DataError(f"covariate {c!r} holds dates or time spans: convert it to a "
                            "number (e.g. age in years) first")
        else:
            levels = sorted(pd.unique(col.astype(str)))
            for lev in levels:
                parts.append((col.astype(str) == lev).astype(float).rename(f"{c}[{lev}]"))
    X = pd.concat(parts, axis=1)
    const = [c for c in names if all(X[k].nunique() <= 1 for k in X.columns
                                     if k == c or k.startswith(f"{c}["))]
    if len(const) == len(names):
        raise DataError(f"every covariate is constant on the analysed rows: {const}")
    return X


def _treatment_codes(col: pd.Series, treatment: str, control) -> np.ndarray:
    values = pd.unique(col)
    if len(values) != 2:
        raise DataError(f"treatment {treatment!r} must have exactly two levels on the analysed "
                        f"rows, found {len(values)}: {sorted(map(str, values))[:6]}")
    if control is not None:
        if control not in set(values):
            raise DataError(f"control={control!r} is not a level of {treatment!r} "
                            f"({sorted(map(str, values))})")
        return (col != control).to_numpy(dtype=float)
    as_set = {v.item() if hasattr(v, "item") else v for v in values}
    if as_set == {0, 1} or as_set == {False, True}:
        return col.astype(float).to_numpy()
    raise DataError(f"treatment {treatment!r} has levels {sorted(map(str, values))}: give "
                    "control= (the reference level), or code it 0/1")


def _outcome_values(col: pd.Series, outcome: str, family: str | None) -> tuple[np.ndarray, str]:
    if pd.api.types.is_bool_dtype(col):
        col = col.astype(float)
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_complex_dtype(col):
        raise DataError(f"outcome {outcome!r} must be numeric (0/1 for a binary outcome)")
    y = col.to_numpy(dtype=float)
    if not np.isfinite(y).all():
        raise DataError(f"outcome {outcome!r} has infinite values")
    binary = set(np.unique(y)) <= {0.0, 1.0}
    if family is None:
        family = "binary" if binary else "continuous"
    if family not in ("binary", "continuous"):
        raise DataError(f"family={family!r}: use 'binary', 'continuous' or 'time' (with event= "
                        "and horizon=)")
    if family == "binary" and not binary:
        raise DataError(f"outcome {outcome!r} is not coded 0/1, so it cannot be binary")
    if np.unique(y).size < 2:
        raise DataError(f"outcome {outcome!r} is constant on the analysed rows")
    return y, family


_TIME = ("time", "survival", "time-to-event")


def _rmst_outcome(frame, outcome, event, horizon) -> tuple[np.ndarray, float]:
    """RMST pseudo-observations of the analysed rows (see :mod:`.pseudo`)."""
    from hte_report.exploratory.pseudo import rmst_pseudo_observations

    t = frame[outcome]
    if not pd.api.types.is_numeric_dtype(t) or pd.api.types.is_bool_dtype(t):
        raise DataError(f"survival time {outcome!r} must be numeric")
    t = t.to_numpy(dtype=float)
    if not np.isfinite(t).all() or (t < 0).any():
        raise DataError(f"survival time {outcome!r} must be finite and non-negative")
    e = frame[event]
    ev = e.to_numpy(dtype=float) if (pd.api.types.is_numeric_dtype(e)
                                     or pd.api.types.is_bool_dtype(e)) else None
    if ev is None or not set(np.unique(ev)) <= {0.0, 1.0}:
        raise DataError(f"event indicator {event!r} must be coded 0/1 (1 = event)")
    if ev.sum() == 0:
        raise DataError(f"no events in {event!r} on the analysed rows")
    if horizon is None:
        raise DataError("a time-to-event outcome needs horizon= (the RMST time horizon)")
    if isinstance(horizon, bool) or not isinstance(horizon, (int, float, np.number)) \
            or not 0 < float(horizon) <= float(t.max()):
        raise DataError(f"horizon must be a positive time no later than the last follow-up "
                        f"time ({t.max():g}), got {horizon!r}")
    return rmst_pseudo_observations(t, ev, float(horizon)), float(horizon)


def _modifier_matrix(frame: pd.DataFrame, modifiers) -> pd.DataFrame:
    """Pre-specified modifiers for the best linear projection: numeric as they are, others as
    indicators of each level but the first (sorted)."""
    parts = []
    for m in modifiers:
        col = frame[m]
        if pd.api.types.is_bool_dtype(col):
            parts.append(col.astype(float).rename(m))
        elif pd.api.types.is_numeric_dtype(col) and col.nunique() > 2:
            parts.append(col.astype(float).rename(m))
        else:
            levels = sorted(pd.unique(col.astype(str)))
            if len(levels) < 2:
                raise DataError(f"modifier {m!r} is constant on the analysed rows")
            if pd.api.types.is_numeric_dtype(col):  # 0/1: keep it numeric, named as is
                parts.append(col.astype(float).rename(m))
                continue
            for lev in levels[1:]:
                parts.append((col.astype(str) == lev).astype(float).rename(f"{m}[{lev}]"))
    if not parts:
        return pd.DataFrame(index=frame.index)
    return pd.concat(parts, axis=1)


def _subgroup_levels(col: pd.Series) -> tuple[pd.Series, str]:
    """Display subgroups of a pre-specified modifier: its levels when it has at most six,
    else below / at or above the median."""
    if col.nunique() <= 6 or not pd.api.types.is_numeric_dtype(col):
        return col.astype(str), "levels"
    med = float(col.median())
    x = col.to_numpy(dtype=float)
    if (x < med).any():
        lab = np.where(x < med, f"< {med:g}", f">= {med:g}")
    else:  # a spike at the minimum (e.g. zero earnings): the spike against the rest
        lab = np.where(x <= med, f"<= {med:g}", f"> {med:g}")
    return pd.Series(lab, index=col.index), f"split at the median ({med:g})"


def _subgroups(frame, modifiers, tau, scores, conf_level) -> tuple[pd.DataFrame, pd.DataFrame]:
    from scipy import stats

    z = stats.norm.ppf(0.5 + conf_level / 2)
    rows = []
    membership = {"row": frame.index.to_numpy()}
    for m in modifiers:
        groups, how = _subgroup_levels(frame[m])
        membership[m] = groups.to_numpy()
        for lev in sorted(pd.unique(groups)):
            mask = (groups == lev).to_numpy()
            k = int(mask.sum())
            s = scores[mask]
            est = float(s.mean())
            se = float(s.std(ddof=1) / np.sqrt(k)) if k > 1 else np.nan
            t = tau[mask]
            rows.append({"modifier": m, "level": str(lev), "grouping": how, "n": k,
                         "cate_mean": float(t.mean()), "cate_q25": float(np.quantile(t, .25)),
                         "cate_median": float(np.median(t)),
                         "cate_q75": float(np.quantile(t, .75)),
                         "aipw_estimate": est, "aipw_std_error": se,
                         "aipw_conf_low": est - z * se, "aipw_conf_high": est + z * se})
    cols = ["modifier", "level", "grouping", "n", "cate_mean", "cate_q25", "cate_median",
            "cate_q75", "aipw_estimate", "aipw_std_error", "aipw_conf_low", "aipw_conf_high"]
    return pd.DataFrame(rows, columns=cols), pd.DataFrame(membership)


def _crossfit_priorities(Xv, w, w_res, y_res, *, n_folds, n_trees, min_leaf, max_samples,
                         seed, n_jobs) -> tuple[np.ndarray, np.ndarray]:
    """Folds (stratified by arm, seeded) and each patient's CATE from a causal forest grown on
    the other folds' residuals (EconML's ``CausalForest``, the final stage of
    ``CausalForestDML``): priorities for GATES and RATE that no outcome of the patient's own
    fold has touched (out-of-bag predictions are not enough there: a patient's noise moves
    its neighbours' predictions, and both land in the same top group)."""
    from econml.grf import CausalForest

    n = len(w)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1818]))
    folds = np.empty(n, dtype=int)
    for arm in (0.0, 1.0):
        idx = np.flatnonzero(w == arm)
        folds[rng.permutation(idx)] = np.arange(len(idx)) % n_folds
    tau = np.empty(n)
    for k in range(n_folds):
        train = folds != k
        forest = CausalForest(n_estimators=n_trees, min_samples_leaf=min_leaf,
                              max_samples=max_samples, honest=True, inference=False,
                              n_jobs=n_jobs, random_state=seed + 1 + k)
        forest.fit(Xv[train], w_res[train], y_res[train])
        tau[~train] = np.asarray(forest.predict(Xv[~train]), dtype=float).reshape(-1)
    return folds, tau


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("hte-report", "econml", "scikit-learn", "numpy", "scipy", "pandas"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _labelled(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    frame["label"] = LABEL
    return frame


@checked_arguments
def explore(covariates, data: pd.DataFrame, *, treatment: str, outcome: str | None = None,
            modifiers: Sequence[str] | None = None, control=None, family: str | None = None,
            event: str | None = None, horizon: float | None = None,
            design: str = "randomized", propensity: float | None = None,
            n_trees: int = 2000, min_leaf: int = 5, max_samples: float = 0.45,
            n_folds: int = 5, n_groups: int = 5, n_bootstrap: int = 200,
            nuisance_trees: int = 200, crossfit_trees: int | None = None, seed: int = 0,
            conf_level: float = 0.95,
            alpha: float = 0.05, n_jobs: int = 1) -> ExploreResult:
    """Fit an honest, orthogonalized causal forest and evaluate it (exploratory).

    Parameters
    ----------
    covariates
        The columns the forest may split on: a list of names, or a formula
        ``"outcome ~ a + b + C(c)"`` of plain column names (``C()`` marks a numeric code as
        categorical; text columns are categorical anyway and one-hot encoded).
    data
        The data frame. Rows with a missing value in the outcome, treatment, covariates or
        modifiers are excluded (counted in ``n_excluded``).
    treatment, control
        The two-level treatment column; ``control`` is its reference level (not needed for a
        0/1 or boolean column).
    outcome
        The outcome column (or the formula's left-hand side).
    modifiers
        The *pre-specified* effect modifiers (columns): the best linear projection of the CATE
        on them and the CATE distribution by their subgroups -- the bridge to the confirmatory
        analysis.
    family
        ``"continuous"``, ``"binary"`` (default: binary when the outcome is 0/1) or ``"time"``.
    event, horizon
        Time-to-event outcomes: ``outcome`` is the follow-up time, ``event`` the 0/1 event
        column, ``horizon`` the RMST horizon (no later than the last follow-up time).
    design, propensity
        ``"randomized"`` (the default): ``propensity`` is the known probability of treatment
        (e.g. 0.5), or, when not given, the cross-fitted proportion treated.
        ``"observational"``: the propensity is estimated by a cross-fitted random forest
        classifier (``propensity`` must not be given); check overlap in ``notes``.
    n_trees, min_leaf, max_samples
        The causal forest: number of trees (rounded up to a multiple of 4), minimum leaf size,
        subsample fraction per tree (below 0.5, as honesty halves it).
    n_folds, nuisance_trees
        Cross-fitting folds of the nuisance models and their number of trees.
    crossfit_trees
        Trees of each fold's causal forest that gives the cross-fitted priorities of GATES and
        RATE (default ``max(100, n_trees // 4)``: a ranking needs fewer trees than the CATE
        intervals).
    n_groups, n_bootstrap
        GATES groups (5: quintiles of the CATE) and bootstrap replicates of RATE / TOC.
    seed
        Seeds everything random: same seed, same numbers.
    n_jobs
        Parallel jobs of the forests; only ``n_jobs=1`` (the default) is bit-reproducible.

    Returns
    -------
    ExploreResult
        Tidy frames labelled ``exploratory``; see :class:`ExploreResult`.
    """
    if not isinstance(data, pd.DataFrame):
        if hasattr(data, "to_pandas") and hasattr(data, "columns"):  # polars
            from hte_report.data.prepare import read_data

            data = read_data(data)
        else:
            raise DataError(f"data must be a pandas or polars DataFrame, got "
                            f"{type(data).__name__}")
    names, categorical, outcome = _parse_covariates(covariates, outcome)
    modifiers = [] if modifiers is None else ([modifiers] if isinstance(modifiers, str)
                                              else [str(m) for m in modifiers])
    if not isinstance(treatment, str):
        raise DataError("treatment must be a column name")
    _check_columns(data, [outcome], "outcome")
    _check_columns(data, [treatment], "treatment")
    _check_columns(data, names, "covariates")
    _check_columns(data, modifiers, "modifiers")
    if family in _TIME or event is not None:
        if event is None:
            raise DataError("a time-to-event outcome needs event= (the 0/1 event column)")
        if family not in (None, *_TIME):
            raise DataError(f"event= is for time-to-event outcomes, not family={family!r}")
        family = "time"
        if not isinstance(event, str):
            raise DataError("event must be a column name")
        _check_columns(data, [event], "event")
        if event in names or event in (outcome, treatment):
            raise FormulaError(f"the event column {event!r} cannot also be the outcome, the "
                               "treatment or a covariate")
    elif horizon is not None:
        raise DataError(f"horizon={horizon!r} applies to a time-to-event outcome only; give "
                        "event= (the 0/1 event column) with the follow-up time as outcome, or "
                        "remove horizon=")
    for role, col in (("outcome", outcome), ("treatment", treatment)):
        if col in names:
            raise FormulaError(f"the {role} {col!r} cannot also be a covariate")
    if outcome == treatment:
        raise FormulaError("the outcome and the treatment are the same column")
    for m in modifiers:
        if m in (outcome, treatment, event):
            raise FormulaError(f"modifier {m!r} is the outcome, the treatment or the event "
                               "column")
    dup = sorted({str(c) for c in data.columns[data.columns.duplicated()]}
                 & {outcome, treatment, *names, *modifiers, *([event] if event else [])})
    if dup:
        raise DataError(f"columns appear more than once in the data: {dup}")
    if design not in ("randomized", "observational"):
        raise DataError(f"design={design!r}: use 'randomized' or 'observational'")
    if propensity is not None:
        if design == "observational":
            raise DataError("propensity= is the known allocation probability of a randomized "
                            "trial; an observational design estimates it")
        if (isinstance(propensity, bool) or not isinstance(propensity, (int, float))
                or not 0 < float(propensity) < 1):
            raise DataError(f"propensity must be a number strictly between 0 and 1, got "
                            f"{propensity!r}")
    for name, value, low in (("n_trees", n_trees, 4), ("min_leaf", min_leaf, 1),
                             ("n_folds", n_folds, 2), ("n_groups", n_groups, 2),
                             ("n_bootstrap", n_bootstrap, 2), ("nuisance_trees", nuisance_trees, 1),
                             ("n_jobs", -1 if n_jobs == -1 else n_jobs, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            also = " (or -1: all cores)" if name == "n_jobs" else ""
            raise DataError(f"{name} must be an integer >= {low}{also}, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    for name, value in (("max_samples", max_samples), ("conf_level", conf_level),
                        ("alpha", alpha)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
            raise DataError(f"{name} must be a number, got {value!r}")
    if not 0 < max_samples < 0.5:
        raise DataError(f"max_samples must be in (0, 0.5) for an honest forest, got "
                        f"{max_samples!r}")
    if not 0 < conf_level < 1 or not 0 < alpha < 1:
        raise DataError("conf_level and alpha must be strictly between 0 and 1")
    _require_econml()

    used = list(dict.fromkeys([outcome, treatment, *([event] if event else []), *names,
                               *modifiers]))
    frame = data.loc[:, used]
    keep = frame.notna().all(axis=1).to_numpy()
    frame = frame.loc[keep]
    n_excluded = int((~keep).sum())
    if n_excluded:
        from hte_report.errors import MissingDataWarning

        miss = data.loc[:, used].isna().sum()
        detail = ", ".join(f"{c}: {int(k)}" for c, k in miss.items() if k)
        warnings.warn(f"explore: {n_excluded} of {len(data)} rows excluded for missing values "
                      f"({detail}).", MissingDataWarning, stacklevel=2)
    n = len(frame)
    if family in _TIME:
        y, horizon = _rmst_outcome(frame, outcome, event, horizon)
        family = "time"
    else:
        y, family = _outcome_values(frame[outcome], outcome, family)
    w = _treatment_codes(frame[treatment], treatment, control)
    n1 = int(w.sum())
    if min(n1, n - n1) < 2 * n_folds or n < 10 * n_groups:
        raise DataError(f"too few patients for a causal forest: {n - n1} control and {n1} "
                        f"treated on the analysed rows (need at least {2 * n_folds} per arm and "
                        f"{10 * n_groups} in all)")
    X = _design_matrix(frame, names, categorical)
    A = _modifier_matrix(frame, modifiers)
    seed = int(seed)
    n_trees = int(-(-int(n_trees) // 4) * 4)
    if crossfit_trees is None:
        crossfit_trees = max(100, n_trees // 4)
    elif (isinstance(crossfit_trees, bool) or not isinstance(crossfit_trees, (int, np.integer))
          or crossfit_trees < 4):
        raise DataError(f"crossfit_trees must be an integer >= 4, got {crossfit_trees!r}")
    crossfit_trees = int(-(-int(crossfit_trees) // 4) * 4)

    from econml.dml import CausalForestDML
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    from hte_report.exploratory._learners import ConstantPropensity

    model_y = RandomForestRegressor(n_estimators=int(nuisance_trees), min_samples_leaf=5,
                                    max_features=1.0 / 3 if X.shape[1] >= 3 else 1.0,
                                    random_state=seed, n_jobs=n_jobs)
    if design == "observational":
        model_t = RandomForestClassifier(n_estimators=int(nuisance_trees), min_samples_leaf=5,
                                         random_state=seed, n_jobs=n_jobs)
        how_e = "estimated (cross-fitted random forest classifier)"
    elif propensity is not None:
        model_t = ConstantPropensity(float(propensity))
        how_e = f"known, {float(propensity):g}"
    else:
        model_t = DummyClassifier(strategy="prior")
        how_e = "randomized; the cross-fitted proportion treated"
    forest = CausalForestDML(model_y=model_y, model_t=model_t, discrete_treatment=True,
                             cv=int(n_folds), n_estimators=n_trees,
                             min_samples_leaf=int(min_leaf), max_samples=float(max_samples),
                             honest=True, inference=True, drate=False, criterion="mse",
                             n_jobs=n_jobs, random_state=seed)
    Xv = X.to_numpy(dtype=float)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            forest.fit(y, w, X=Xv, cache_values=True)
            y_res, w_res = forest.residuals_[0], forest.residuals_[1]
            tau_oob = np.asarray(forest.model_final_.oob_predict(Xv), dtype=float).reshape(n)
            inf = forest.effect_inference(Xv)
            tau_fit = np.asarray(inf.point_estimate, dtype=float).reshape(n)
            tau_se = np.asarray(inf.stderr, dtype=float).reshape(n)
            importances = np.asarray(forest.feature_importances(max_depth=4,
                                                                depth_decay_exponent=2.0),
                                     dtype=float).reshape(-1)
    except HTEReportError:
        raise
    except (ValueError, np.linalg.LinAlgError, FloatingPointError) as exc:
        raise ModelError(f"the causal forest could not be fitted: {exc}") from None
    y_res = np.asarray(y_res, dtype=float).reshape(n)
    w_res = np.asarray(w_res, dtype=float).reshape(n)
    y_hat = y - y_res
    w_hat = w - w_res
    folds, tau_cf = _crossfit_priorities(Xv, w, w_res, y_res, n_folds=int(n_folds),
                                         n_trees=crossfit_trees, min_leaf=int(min_leaf),
                                         max_samples=float(max_samples), seed=seed,
                                         n_jobs=n_jobs)
    notes = [EXPLORATORY_NOTE]
    if family == "time":
        notes.append(f"Time-to-event outcome: the forest analysed jackknife pseudo-observations "
                     f"of the Kaplan-Meier restricted mean survival time to {horizon:g} (all "
                     "patients together), so the CATE is a difference in RMST to that "
                     "horizon. This assumes censoring independent of the covariates and the "
                     "treatment.")
    if not np.isfinite(tau_oob).all():
        raise ModelError("some patients have no out-of-bag forest prediction: use more trees "
                         f"(n_trees={n_trees})")
    if np.any((w_hat <= 0) | (w_hat >= 1)):
        raise ModelError("estimated propensities of 0 or 1: no overlap between the arms for "
                         "some patients; the doubly robust scores are undefined")
    lo, hi = float(w_hat.min()), float(w_hat.max())
    if design == "observational" and (lo < 0.05 or hi > 0.95):
        notes.append(f"Limited overlap: estimated propensities range from {lo:.3f} to {hi:.3f}; "
                     "doubly robust scores of patients near 0 or 1 are highly variable.")
    scores = cal.dr_scores(y, w, y_hat, w_hat, tau_oob)
    from scipy import stats

    z = float(stats.norm.ppf(0.5 + conf_level / 2))
    cate = pd.DataFrame({"row": frame.index.to_numpy(), "cate": tau_oob,
                         "cate_crossfit": tau_cf, "fold": folds + 1, "cate_fit": tau_fit,
                         "std_error": tau_se, "conf_low": tau_fit - z * tau_se,
                         "conf_high": tau_fit + z * tau_se, "y_hat": y_hat, "w_hat": w_hat,
                         "dr_score": scores, "treatment": w, "outcome": y})
    if family == "binary":
        r0 = y_hat - w_hat * tau_oob
        r1 = r0 + tau_oob
        cate["risk_control"] = r0
        cate["risk_treated"] = r1
        cate["rr_implied"] = np.where((r0 > 0) & (r0 < 1) & (r1 > 0) & (r1 < 1),
                                      r1 / np.where(r0 > 0, r0, 1), np.nan)
        notes.append("Binary outcome: the CATE is a risk difference. The implied risk ratio "
                     "divides the implied risk with treatment, m(x) + (1 - e(x)) tau(x), by the "
                     "one without, m(x) - e(x) tau(x), from the forest's baseline-risk model "
                     "m(x); it is not a fitted ratio model, and is left empty where an implied "
                     "risk falls outside (0, 1).")
    try:
        calib = cal.test_calibration(y, w, y_hat, w_hat, tau_oob, conf_level)
        gates, gates_tests = cal.gates(scores, tau_cf, int(n_groups), conf_level, folds)
        blp = cal.best_linear_projection(scores, A, conf_level)
    except np.linalg.LinAlgError as exc:
        raise ModelError(f"the calibration regressions cannot be fitted: {exc} (e.g. the forest "
                         "predicts the same CATE for everyone, or modifiers are collinear)"
                         ) from None
    ate_se = float(scores.std(ddof=1) / np.sqrt(n))
    ate_est = float(scores.mean())
    ate = pd.DataFrame({"estimand": ["ATE (AIPW)"], "estimate": [ate_est],
                        "std_error": [ate_se], "conf_low": [ate_est - z * ate_se],
                        "conf_high": [ate_est + z * ate_se]})
    rate = cal.rate(scores, tau_cf, int(n_bootstrap), seed, conf_level, folds)
    toc = cal.toc_curve(scores, tau_cf, None, int(n_bootstrap), seed, conf_level, folds)
    imp = pd.DataFrame({"column": X.columns.astype(str), "importance": importances})
    imp["variable"] = [next(c for c in names if col == c or col.startswith(f"{c}["))
                       for col in imp["column"]]
    imp["variable_importance"] = imp.groupby("variable")["importance"].transform("sum")
    imp = imp.sort_values(["variable_importance", "importance"], ascending=False,
                          kind="stable")
    subgroups, membership = _subgroups(frame, modifiers, tau_oob, scores, conf_level)
    diff = calib.set_index("term").loc["differential.forest.prediction"]
    if diff["p_value"] < alpha:
        verdict = (f"Exploratory evidence that the forest's CATE ranks patients by benefit: "
                   f"differential forest prediction coefficient {diff['estimate']:.2f} "
                   f"(one-sided p = {diff['p_value']:.2g}). A hypothesis to confirm in new "
                   "data, not a finding.")
    else:
        verdict = (f"No evidence of heterogeneity beyond the average effect: differential "
                   f"forest prediction coefficient {diff['estimate']:.2f} (one-sided p = "
                   f"{diff['p_value']:.2g}).")
    settings = {"n_trees": n_trees, "min_leaf": int(min_leaf), "max_samples": float(max_samples),
                "honest": True, "n_folds": int(n_folds), "nuisance_trees": int(nuisance_trees),
                "crossfit_trees": crossfit_trees, "n_groups": int(n_groups),
                "n_bootstrap": int(n_bootstrap),
                "propensity": None if propensity is None else float(propensity),
                "event": event, "horizon": None if horizon is None else float(horizon),
                "subforest_size": 4, "criterion": "mse", "n_jobs": int(n_jobs),
                "nuisance_outcome": "RandomForestRegressor",
                "nuisance_treatment": type(model_t).__name__}
    return ExploreResult(
        label=LABEL, method="causal_forest", outcome=outcome, treatment=treatment,
        family=family, design=design, propensity=how_e, covariates=tuple(names),
        modifiers=tuple(modifiers), n=n, n_excluded=n_excluded, seed=seed, settings=settings,
        versions=_versions(), conf_level=conf_level, alpha=alpha, verdict=verdict,
        cate=_labelled(cate), calibration=_labelled(calib), gates=_labelled(gates),
        gates_tests=_labelled(gates_tests), blp=_labelled(blp), ate=_labelled(ate),
        rate=_labelled(rate), toc=_labelled(toc), importance=_labelled(imp),
        subgroups=_labelled(subgroups), membership=membership.reset_index(drop=True),
        notes=tuple(notes))
