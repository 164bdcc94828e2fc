"""``fit_mixed``: heterogeneity of the treatment effect on a repeated measure's trajectory.

For a model such as ``y ~ treat * time * (C(stage) + age)`` the treatment effect on the slope
(the ``treat:time`` interaction) may differ by modifier through the three-way terms. Every effect
is a contrast of counterfactual design rows built through the fitted formulaic spec. With
``x(t, s)`` the design row of a patient with treatment ``t`` at time ``s``:

``estimand="slope"``
    the effect on the slope per unit of time, ``[x(1, 1) - x(0, 1) - x(1, 0) + x(0, 0)]' b``;
``estimand="landmark"``
    the effect on the mean outcome at the landmark time ``L``, ``[x(1, L) - x(0, L)]' b``.

Subgroup rows of a categorical modifier average the patient-level contrasts over the patients of
the level (standardized, as every subgroup effect of the package); continuous modifiers are
evaluated at their quartiles (or ``at=`` values) at the reference profile of the other
covariates (conditional); the overall row is the primary analysis ``y ~ treat * time +
adjustment`` averaged over all patients. Heterogeneity: the Wald test of the
``treat:time:modifier`` coefficients (slope) or, for the landmark estimand, of the contrasts of
the landmark effect across the modifier's values (the effect at ``L`` does not depend on the
modifier: K - 1 df for a factor, 1 df for a linear continuous modifier; not the test of every
treatment-by-modifier coefficient, which would also test the effect at other times), and, for
categorical modifiers, the equality test of the level effects; interaction
effects are the differences of the level effects from the reference level (or per unit of a
continuous modifier), from one model's joint covariance.

``strategy="one-at-a-time"`` (default) fits ``y ~ treat * time * m + adjustment`` for each
modifier m on the rows where its variables are observed; ``"joint"`` one model with every
modifier. Every row says which analysis produced it (``analysis``); ``HTEResult.analyses`` lists
the analyses with their formulas and rows used.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from hte_report.data.levels import _sort_key
from hte_report.data.prepare import prepare, read_data
from hte_report.design.build import Design, build_design
from hte_report.errors import (
    DataError,
    ExcludedRowsWarning,
    FormulaError,
    ModelWarning,
)
from hte_report.estimation.contrasts import (
    contrast,
    equality_test,
    interval,
    reference_profile,
    wald_test,
    weights_for,
)
from hte_report.estimation.interaction_effects import linear_column, versus_reference
from hte_report.estimation.mixed_combine import combine, model_row, scale_of, trajectories
from hte_report.estimation.profiles import OVERALL, profile_frame
from hte_report.estimation.setup import check_hashable, check_number_like_text, design_overflow
from hte_report.models.fast import blas_single_threaded
from hte_report.models.glm import FittedModel
from hte_report.models.mixed import fit_gee, fit_lmm
from hte_report.results.result import HTEResult
from hte_report.spec.formula import _absent, _factor_columns, formula_text, split_formula
from hte_report.spec.options import (
    OptionError,
    check_choice,
    check_conf_level,
    check_multiplicity,
    check_numbers,
    checked_arguments,
)
from hte_report.spec.repeated import CORRELATIONS, ESTIMANDS, parse_mixed_formula

STRATEGIES = ("one-at-a-time", "joint")


@checked_arguments
@blas_single_threaded
def fit_mixed(
    formula: str,
    data: object,
    *,
    treatment: str,
    time: str,
    group: str,
    estimand: str = "slope",
    landmark: float | None = None,
    strategy: str = "one-at-a-time",
    overall: str = "adjusted",
    random: str = "slope",
    method: str = "reml",
    models: Sequence[str] = ("lmm",),
    correlation: str = "exchangeable",
    time_unit: str | None = None,
    reference: object = None,
    conf_level: float = 0.95,
    multiplicity: str = "holm",
    at: dict[str, Sequence[float]] | None = None,
    safe_formula: bool = False,
) -> HTEResult:
    """Treatment effect on the slope (or at a landmark time) of a repeated measure, by subgroup.

    Parameters
    ----------
    formula
        ``"y ~ treat * time * (C(stage) + age)"``: the ``treat:time`` term is the treatment
        effect on the slope; ``treat:time:modifier`` terms let it vary by modifier. Terms that
        involve no modifier (e.g. ``+ albumin``) are adjustment covariates.
    data
        Long format, one row per visit. Treatment and modifiers must be constant within a
        patient (baseline values); rows with missing values are excluded (per analysis) and
        counted.
    treatment, time, group
        Treatment column (two levels; ``reference`` names the control when not 0/1), the
        numeric time column, and the patient identifier.
    estimand
        ``"slope"``: the effect on the slope, per unit of time; ``"landmark"``: the effect on
        the mean outcome at time ``landmark`` (from the same linear-in-time model).
    strategy
        ``"one-at-a-time"`` (default; ``y ~ treat * time * m + adjustment`` for each modifier)
        or ``"joint"`` (one model with every modifier, mutually adjusted). The overall row is
        always the primary analysis ``y ~ treat * time + adjustment`` (``overall="adjusted"``)
        or ``y ~ treat * time`` (``"unadjusted"``).
    random
        ``"intercept"`` (``(1 | group)``) or ``"slope"`` (``(1 + time | group)``) for ``lmm``.
    method
        ``"reml"`` (default, as ``lmer``) or ``"ml"``.
    models
        ``"lmm"`` (linear mixed model) and/or ``"gee"`` (robust variance; working
        ``correlation`` ``"exchangeable"`` or ``"independence"``); each gives its own rows,
        labelled by model. The first is primary.
    time_unit
        Name of the time unit (e.g. ``"year"``), used in labels.
    conf_level, multiplicity, at, safe_formula
        As in :func:`hte_report.fit`; continuous modifiers are evaluated at their quartiles
        over patients unless ``at`` gives values.

    Returns
    -------
    HTEResult
        ``family="continuous"``; ``subgroups`` rows have ``scale="SlopeDiff"`` (difference in
        slopes per unit of time) or ``"MD"`` (difference in means at the landmark) and
        ``method="slope"`` or ``"landmark"``; ``n`` counts patients and ``n_obs`` visits.
        ``meta["repeated"]`` holds the design (time, group, estimand, models) and
        ``meta["trajectories"]`` the fitted mean trajectories by arm (overall and by level of
        each categorical modifier).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> d = pd.DataFrame({"id": np.repeat(np.arange(60), 4), "t": np.tile(np.arange(4.0), 60)})
    >>> d["trt"] = (d.id % 2).astype(int)
    >>> d["sex"] = np.where(d.id % 3 == 0, "f", "m")
    >>> d["y"] = 0.5 * d.t * d.trt + rng.normal(size=len(d)) + rng.normal(size=60)[d.id]
    >>> res = fit_mixed("y ~ trt * t * C(sex)", d, treatment="trt", time="t", group="id",
    ...                 random="intercept")
    >>> res.subgroups[["level", "method"]].values.tolist()
    [['f', 'slope'], ['m', 'slope']]
    """
    conf_level = check_conf_level(conf_level)
    for name, value in (("treatment", treatment), ("time", time), ("group", group)):
        if not isinstance(value, str) or not value:
            raise OptionError(f"{name} must be a column name (text), got {value!r}.")
    check_choice("estimand", estimand, ESTIMANDS)
    check_choice("strategy", strategy, STRATEGIES)
    check_choice("overall", overall, ("adjusted", "unadjusted"))
    check_choice("random", random, ("intercept", "slope"))
    check_choice("method", method, ("reml", "ml"))
    check_choice("correlation", correlation, CORRELATIONS)
    multiplicity = check_multiplicity(multiplicity)
    landmark = _check_landmark(estimand, landmark)
    if time_unit is not None and (not isinstance(time_unit, str) or not time_unit.strip()
                                  or len(time_unit) > 40):
        raise OptionError(f"time_unit must be a short text such as 'week', got {time_unit!r}.")
    if models is not None and not isinstance(models, (str, list, tuple)):
        raise OptionError(f"models must be 'lmm', 'gee' or a list of them, got {models!r}.")
    models = (models,) if isinstance(models, str) else tuple(dict.fromkeys(models or ()))
    if not models:
        raise OptionError("models must name at least one of 'lmm' and 'gee'.")
    for m in models:
        check_choice("models", m, ("lmm", "gee"))
    raw = read_data(data)
    roles = {"treatment": treatment, "time": time, "group": group}
    for a, b in (("time", "treatment"), ("group", "treatment"), ("group", "time")):
        if roles[a] is not None and roles[a] == roles[b]:
            raise FormulaError(f"{a}= and {b}= name the same column {roles[a]!r}; the "
                               f"{'patient identifier' if a == 'group' else 'time'} column is "
                               f"another column than the {b}.")
    parsed = parse_mixed_formula(formula, raw.columns, treatment, time, safe_formula)
    if group not in raw.columns:
        raise FormulaError(_absent(group, list(raw.columns), "group"))
    if group in parsed.variables:
        raise FormulaError(f"the patient identifier {group!r} also appears in the formula; "
                           "it identifies the repeated measurements and is not a covariate.")
    if at is not None:
        if not isinstance(at, dict):
            raise OptionError("at= must be a dict of modifier -> values, e.g. {'age': [40, 60]}.")
        unknown = set(at) - {m.name for m in parsed.modifiers}
        if unknown:
            raise OptionError(f"at= names {sorted(map(str, unknown))}, which are not effect "
                              "modifiers.")
        for k, v in at.items():
            if isinstance(v, (str, bytes)):  # '30' would be read as the values 3 and 0
                _at_numbers(k, v)
            vals = [v] if isinstance(v, (int, float)) else v
            try:
                ok = len(vals) > 0 and all(np.isfinite(float(x)) for x in vals)
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise OptionError(f"at= for {k!r} must be a non-empty list of finite numbers, "
                                  f"got {v!r}.")
    opts = dict(treatment=treatment, time=time, group=group, estimand=estimand,
                landmark=landmark, random=random, method=method, models=models,
                correlation=correlation, reference=reference, conf_level=conf_level, at=at,
                safe=safe_formula)
    lhs, common, own = split_terms(formula, parsed, raw.columns, treatment, time, safe_formula)
    kept = common if overall == "adjusted" else [
        t for t in common if {f.expr for f in t.factors} <= {treatment, time}]
    overall_fit = _run(f"overall analysis ({overall})", f"{lhs} ~ {formula_text(kept)}", raw,
                       opts, False)
    by_mod: dict[str, _Fit] = {}
    if strategy == "joint":
        joint = _run("joint model", formula, raw, opts, True)
        by_mod = {m.name: joint for m in parsed.modifiers}
    else:
        for m in parsed.modifiers:
            f = f"{lhs} ~ {formula_text(common + own[m.name])}"
            by_mod[m.name] = _run(f"analysis of {m.name}", f, raw, opts, True)
    return combine(formula, parsed, overall_fit, by_mod, strategy, multiplicity, opts,
                    time_unit, overall)


def _check_landmark(estimand: str, landmark) -> float | None:
    if estimand == "slope":
        if landmark is not None:
            raise OptionError("landmark= applies to estimand='landmark' only; remove it or "
                              "set estimand='landmark'.")
        return None
    if landmark is None:
        raise OptionError("estimand='landmark' needs landmark=, the time at which the "
                          "treatment effect is estimated (in the units of the time column).")
    try:
        value = float(landmark)
    except (TypeError, ValueError):
        raise OptionError(f"landmark must be a number (a time), got {landmark!r}.") from None
    if not np.isfinite(value):
        raise OptionError(f"landmark must be a finite time, got {landmark!r}.")
    return value


def split_terms(formula, parsed, columns, treatment, time, safe):
    """The formula's left-hand side, the terms that involve no modifier (treatment, time,
    their interaction, adjustment) and each modifier's own terms."""
    terms, _ = split_formula(formula, safe, "y ~ treat * time * stage")
    mods = [m.name for m in parsed.modifiers]
    common, own = [], {m: [] for m in mods}
    for term in terms.rhs:
        cols = {c for f in term.factors for c in _factor_columns(f, columns)}
        touched = [m for m in mods if m in cols]
        if touched:
            for m in touched:
                own[m].append(term)
        elif [f.expr for f in term.factors] != ["1"]:
            common.append(term)
    lhs = formula.split("~", 1)[0].strip()
    return lhs, common, own


class _Fit:
    """One analysis: its formula, data, design, working models and rows."""

    def __init__(self, formula, prep, parsed, design, fitted, base, profile, rows):
        self.formula, self.prep, self.parsed, self.design = formula, prep, parsed, design
        self.fitted, self.base, self.profile, self.rows = fitted, base, profile, rows


def _run(label: str, formula: str, raw: pd.DataFrame, opts: dict, need_mods: bool) -> _Fit:
    """One analysis; its warnings and errors say which analysis they come from (the same
    wrapper as the strategies of :mod:`hte_report.estimation.strategy`)."""
    from hte_report.estimation.strategy import _run as labelled

    return labelled(label, _analyse, formula, raw, o=opts, need_mods=need_mods)


def _analyse(formula: str, raw: pd.DataFrame, o: dict, need_mods: bool) -> _Fit:
    treatment, time, group = o["treatment"], o["time"], o["group"]
    parsed = parse_mixed_formula(formula, raw.columns, treatment, time, o["safe"],
                                 modifiers_required=need_mods)
    try:
        prep = prepare(raw, outcome=parsed.outcome, treatment=treatment,
                       variables=(group,) + parsed.variables, family="continuous",
                       reference=o["reference"])
    except TypeError:
        check_hashable(raw)
        raise
    check_number_like_text(prep, parsed)
    if prep.n_excluded:
        detail = ", ".join(f"{r.variable}: {r.n_missing}" for r in prep.exclusions.itertuples()
                           if r.n_missing)
        warnings.warn(f"{prep.n_excluded} of {prep.n_input} rows excluded for missing values "
                      f"({detail}).", ExcludedRowsWarning, stacklevel=2)
    frame = prep.frame
    if not pd.api.types.is_numeric_dtype(frame[time]) or pd.api.types.is_bool_dtype(frame[time]):
        raise DataError(f"time column {time!r} must be numeric, has dtype {frame[time].dtype}.")
    if not np.isfinite(frame[time].to_numpy(dtype=float)).all():
        raise DataError(f"time column {time!r} has infinite values; give finite times.")
    if frame[time].nunique() < 2:
        raise DataError(f"time column {time!r} has one value ({frame[time].iloc[0].item()!r}) "
                        "among the "
                        "analysed rows: no slope can be estimated. Check the time column.")
    if frame[group].nunique() < 2:
        raise DataError(f"group column {group!r} has one value: the data hold one patient. Give "
                        "the patient identifier, one value per patient.")
    if not frame[group].duplicated().any():
        raise DataError(f"every patient ({group!r}) has one measurement among the analysed "
                        "rows: there are no repeated measures. Check group= (the patient "
                        "identifier), or analyse one row per patient with hte_report.fit.")
    lm = o.get("landmark")
    if lm is not None:
        t = frame[time].to_numpy(dtype=float)
        if not t.min() <= float(lm) <= t.max():
            warnings.warn(f"landmark={float(lm):g} is outside the observed times of {time!r} "
                          f"({t.min():g} to {t.max():g}): the effect there extrapolates the "
                          "linear time trend beyond the data.", ModelWarning, stacklevel=2)
    _check_constant(frame, group, [treatment] + [m.name for m in parsed.modifiers])
    try:
        design = build_design(parsed, frame)
    except np.linalg.LinAlgError:
        raise design_overflow(parsed) from None
    y = frame[parsed.outcome].to_numpy(dtype=float)
    groups = frame[group].to_numpy()
    first = ~frame[group].duplicated().to_numpy()
    base = frame[first].reset_index(drop=True)
    if min(base[treatment].sum(), len(base) - base[treatment].sum()) < 1:
        raise DataError("one arm has no patients among the analysed rows; both arms are needed.")
    fitted = []
    for name in o["models"]:
        if name == "lmm":
            Z = np.ones((len(frame), 1)) if o["random"] == "intercept" else np.column_stack(
                [np.ones(len(frame)), frame[time].to_numpy(dtype=float)])
            fitted.append(fit_lmm(design.X, y, groups, Z, design.columns,
                                  reml=o["method"] == "reml"))
        else:
            fitted.append(fit_gee(design.X, y, groups, design.columns, o["correlation"]))
    profile = reference_profile(base, [c for c in parsed.variables if c not in (treatment, time)],
                                design.categorical)
    fit = _Fit(formula, prep, parsed, design, fitted, base, profile, {})
    fit.rows = _rows_of(fit, o)
    return fit


def _rows_of(fit: _Fit, o: dict) -> dict:
    d, base, prof = fit.design, fit.base, fit.profile
    treatment, time, est, cl = o["treatment"], o["time"], o["estimand"], o["conf_level"]
    eff = (treatment, time, est, o["landmark"])
    frame = fit.prep.frame
    counts = _counts(d, frame, base, treatment)
    at = {k: v for k, v in (o["at"] or {}).items() if k in {m.name for m in d.modifiers}}
    points = _points(d, base, at)
    grid = {m.name: list(np.linspace(base[m.name].min(), base[m.name].max(), 61))
            for m in d.modifiers if m.kind == "continuous"}
    A, B = _effect(d, base, *eff)
    out = {k: [] for k in ("sub", "curve", "overall", "tests", "ie", "traj", "models")}
    for fm in fit.fitted:
        W = weights_for([np.ones(len(base), dtype=bool)])
        res = interval(contrast(fm, A, B, W, "difference"), cl)
        out["overall"].append(_row(_base(OVERALL, "", 0, np.nan, fm, est, est), res, 0,
                                   counts[None]))
        for m in d.modifiers:
            vals = points[m.name]
            if m.kind == "categorical":
                masks = [(base[m.name] == v).to_numpy() for v in vals]
                c = contrast(fm, A, B, weights_for(masks), "difference")
                res = interval(c, cl)
                for i, v in enumerate(vals):
                    out["sub"].append(_row(_base(m.name, str(v), i, np.nan, fm, est, est), res,
                                           i, counts.get((m.name, str(v)), {})))
                out["ie"] += versus_reference(c, list(range(len(vals))), [str(v) for v in vals],
                                              modifier=m.name, scale=scale_of(est), model=fm.label,
                                              method=est, conf_level=cl)
            else:
                c = _conditional(fm, d, prof, m.name, vals, eff)
                res = interval(c, cl)
                for i, v in enumerate(vals):
                    out["sub"].append(_row(_base(m.name, f"at {v:.4g}", i, float(v), fm, est,
                                                 est), res, i, {}))
                gc = interval(_conditional(fm, d, prof, m.name, grid[m.name], eff), cl)
                for i, v in enumerate(grid[m.name]):
                    out["curve"].append(_row(_base(m.name, f"at {v:.4g}", i, float(v), fm,
                                                   "curve", est), gc, i, {}))
                idx = _term_columns(d, {treatment, time, m.expr})
                if linear_column(m, idx):
                    v0 = float(prof[m.name])
                    u = _conditional(fm, d, prof, m.name, [v0, v0 + 1.0], eff)
                    for r in versus_reference(u, [0, 1], ["", "per unit"], modifier=m.name,
                                              scale=scale_of(est), model=fm.label,
                                              method="per-unit",
                                              conf_level=cl):
                        out["ie"].append({**r, "reference": ""})
            out["tests"] += _tests(fm, d, prof, m, vals, eff)
        out["traj"] += trajectories(fit, fm, o)
        out["models"].append(model_row(fm, o, fit))
    return out



def _base(modifier, level, order, value, fm, method, estimand) -> dict:
    return {"modifier": modifier, "level": level, "order": order, "value": value,
            "scale": scale_of(estimand),
            "model": fm.label, "method": method, "mu_treated": np.nan, "mu_control": np.nan}


def _effect(design: Design, rows: pd.DataFrame, treatment, time, estimand, landmark):
    """Designs whose difference is the effect row: x(1,1) - x(0,1) - x(1,0) + x(0,0) (slope)
    or x(1,L) - x(0,L) (landmark)."""
    def at(t, s):
        r = rows.copy()
        r[treatment] = t
        r[time] = float(s)
        return design.materialize(r)
    if estimand == "slope":
        return at(1, 1) + at(0, 0), at(0, 1) + at(1, 0)
    return at(1, landmark), at(0, landmark)


def _conditional(fm, design, profile, name, vals, eff):
    rows = profile_frame(design, [{**profile, name: v} for v in vals])
    A, B = _effect(design, rows, *eff)
    return contrast(fm, A, B, np.eye(len(vals)), "difference")


def _term_columns(design: Design, exprs: set) -> np.ndarray:
    slices = [np.arange(sl.start, sl.stop) for term, sl in design.spec.term_slices.items()
              if {f.expr for f in term.factors} == exprs]
    return np.concatenate(slices) if slices else np.array([], dtype=int)


def _tests(fm: FittedModel, design: Design, profile, m, vals, eff) -> list[dict]:
    treatment, time, estimand, landmark = eff
    rows = []
    if estimand == "slope":
        idx = _term_columns(design, {treatment, time, m.expr})
        stat, df, p = wald_test(fm.params[idx], fm.vcov[np.ix_(idx, idx)])
        method = "coefficient-wald"
    else:  # the landmark effect is constant in m: every direction its contrasts span
        span = vals if m.kind == "categorical" else list(
            np.linspace(min(vals), max(vals), 9)) if len(set(vals)) > 1 else vals
        rows_ = profile_frame(design, [{**profile, m.name: v} for v in span])
        A, B = _effect(design, rows_, *eff)
        stat, df, p = _span_test(fm, (A - B)[1:] - (A - B)[0])
        method = "landmark-wald"
    rows.append({"modifier": m.name, "scale": scale_of(estimand), "test": "wald",
                 "statistic": stat,
                 "df": df, "p_value": p, "model": fm.label, "method": method, "note": ""})
    if m.kind == "categorical":
        c = _conditional(fm, design, profile, m.name, vals, eff)
        stat, df, p = equality_test(c)
        rows.append({"modifier": m.name, "scale": scale_of(estimand), "test": "equality",
                     "statistic": stat, "df": df, "p_value": p, "model": fm.label,
                     "method": f"{estimand}-equality", "note": ""})
    return rows


def _span_test(fm: FittedModel, C: np.ndarray) -> tuple[float, int, float]:
    """Wald test that ``C b = 0`` on the row space of ``C`` (rank-reduced by SVD)."""
    if C.size == 0:
        return np.nan, 0, np.nan
    u, s, vt = np.linalg.svd(C, full_matrices=False)
    keep = s > 1e-9 * max(s.max(), 1e-300)
    basis = vt[keep]
    return wald_test(basis @ fm.params, basis @ fm.vcov @ basis.T)



def _check_constant(frame: pd.DataFrame, group: str, cols: list[str]) -> None:
    for col in cols:
        k = frame.groupby(group, sort=False)[col].nunique()
        if (k > 1).any():
            who = k[k > 1].index[0]
            who = who.item() if hasattr(who, "item") else who
            raise DataError(f"{col!r} varies within {group} {who!r}: treatment and "
                            "modifiers must be constant within a patient (use baseline values).")


def _points(design: Design, base: pd.DataFrame, at) -> dict:
    out = {}
    for m in design.modifiers:
        s = base[m.name]
        if m.kind == "categorical":
            if m.name in at:
                raise OptionError(f"at= gives values for {m.name!r}, a categorical modifier: "
                                  "its effects are shown for every level; remove it from at=.")
            out[m.name] = sorted(pd.unique(s), key=_sort_key)
        elif m.name in at:
            out[m.name] = _at_numbers(m.name, at[m.name])
        else:
            out[m.name] = list(dict.fromkeys(np.quantile(s.to_numpy(float), [0.25, 0.5, 0.75])))
    return out


def _at_numbers(name: str, given) -> list[float]:
    """``at[name]``: finite numbers (text refused, even text that reads as numbers)."""
    vals = check_numbers(f"at[{name!r}] (finite numbers: values of the continuous modifier "
                         f"{name!r})", given, f"at={{{name!r}: [40, 60]}}")
    if not vals or not all(np.isfinite(vals)):
        raise OptionError(f"at= for {name!r} must be a non-empty list of finite numbers, got "
                          f"{given!r}.")
    return vals


def _counts(design: Design, frame: pd.DataFrame, base: pd.DataFrame, treatment: str) -> dict:
    out = {}
    masks = [(None, np.ones(len(base), dtype=bool), np.ones(len(frame), dtype=bool))]
    for m in design.modifiers:
        if m.kind == "categorical":
            for lv in pd.unique(base[m.name]):
                masks.append(((m.name, str(lv)), (base[m.name] == lv).to_numpy(),
                              (frame[m.name] == lv).to_numpy()))
    for key, b, f in masks:
        t = base[treatment].to_numpy()[b]
        out[key] = {"n": int(b.sum()), "n_treated": int(t.sum()), "n_control": int(len(t) -
                    t.sum()), "events_treated": np.nan, "events_control": np.nan,
                    "n_obs": int(f.sum())}
    return out


def _row(base: dict, res: dict, i: int, counts: dict) -> dict:
    row = dict(base)
    for k in ("estimate", "std_error", "conf_low", "conf_high", "statistic", "p_value"):
        row[k] = float(res[k][i])
    row.update(counts)
    row["note"] = ""
    return row



