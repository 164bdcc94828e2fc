"""``fit_mixed``: heterogeneity of the treatment effect on the slope of a repeated measure.

For a model such as ``y ~ treat * time * (C(stage) + age)`` the treatment effect on the slope
(the ``treat:time`` interaction) may differ by modifier through the three-way terms. Every effect
is a contrast of counterfactual design rows built through the fitted formulaic spec: with
``x(t, s)`` the design row of a covariate profile with treatment ``t`` and time ``s``, the slope
effect is ``[x(1, 1) - x(0, 1) - x(1, 0) + x(0, 0)]' b`` — per modifier level (or quartile) at the
reference profile, and averaged over patients for the overall effect. Heterogeneity: the Wald test
of the ``treat:time:modifier`` coefficients (found through the design's term metadata) and, for
categorical modifiers, the equality test of the level slope effects.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from hte_report.core.inference import adjust_pvalues
from hte_report.data.prepare import _sort_key, prepare, read_data
from hte_report.design.build import Design, build_design
from hte_report.errors import DataError, FormulaError, SparseSubgroupWarning
from hte_report.estimation.contrasts import (
    contrast,
    equality_test,
    interval,
    reference_profile,
    wald_test,
    weights_for,
)
from hte_report.estimation.profiles import OVERALL, profile_frame
from hte_report.models.glm import FittedModel
from hte_report.models.mixed import fit_gee, fit_lmm
from hte_report.results.result import HTEResult, provenance
from hte_report.spec.formula import (
    ModifierTerm,
    ParsedFormula,
    _absent,
    _factor_columns,
    formula_text,
    split_formula,
    used_columns,
)
from hte_report.spec.options import OptionError, check_choice, check_conf_level

COLUMNS = ["modifier", "level", "order", "value", "scale", "model", "method", "mu_treated",
           "mu_control", "estimate", "std_error", "conf_low", "conf_high", "statistic", "p_value",
           "n", "n_treated", "n_control", "events_treated", "events_control", "n_obs", "note"]


def parse_mixed_formula(formula: str, columns: Sequence[str], treatment: str, time: str,
                        safe: bool = False) -> ParsedFormula:
    """Roles in ``y ~ treat * time * (modifiers) + covariates``: modifiers are the variables of
    the ``treat:time:modifier`` terms; ``treat:time`` itself must be in the model."""
    columns = list(columns)
    parsed, outcome = split_formula(formula, safe, "y ~ treat * time * stage")
    for col, role in ((outcome, "outcome"), (treatment, "treatment"), (time, "time")):
        if col not in columns:
            raise FormulaError(_absent(col, columns, role))
    terms = list(parsed.rhs)
    used = used_columns(terms, columns)
    exprs = [{f.expr for f in t.factors} for t in terms]
    if {treatment, time} not in exprs:
        raise FormulaError(f"formula {formula!r} has no {treatment}:{time} term; write "
                           f"'{outcome} ~ {treatment} * {time} * (modifier1 + modifier2)'.")
    mods: dict[str, ModifierTerm] = {}
    for t, ex in zip(terms, exprs):
        if not {treatment, time} < ex:
            continue
        if len(ex) > 3:
            raise FormulaError(f"term {str(t)!r}: only treatment x time x one-modifier terms are "
                               "supported.")
        other = next(f for f in t.factors if f.expr not in (treatment, time))
        cols = _factor_columns(other, columns)
        if len(cols) != 1:
            raise FormulaError(f"modifier term {other.expr!r} must use exactly one data column, "
                               f"uses {cols}.")
        mods[cols[0]] = ModifierTerm(cols[0], other.expr, (str(t),))
    if not mods:
        raise FormulaError(f"formula {formula!r} has no {treatment}:{time}:modifier term; write "
                           f"'{outcome} ~ {treatment} * {time} * (modifier1 + modifier2)'.")
    if outcome in used:
        raise FormulaError(f"the outcome {outcome!r} also appears on the right-hand side.")
    adjustment = tuple(c for c in used if c not in (treatment, time) and c not in mods)
    return ParsedFormula(formula, outcome, formula_text(list(parsed.rhs)), treatment,
                         tuple(mods.values()),
                         tuple(used), adjustment)


def fit_mixed(
    formula: str,
    data: object,
    *,
    treatment: str,
    time: str,
    group: str,
    random: str = "slope",
    method: str = "reml",
    models: Sequence[str] = ("lmm",),
    reference: object = None,
    conf_level: float = 0.95,
    multiplicity: str = "holm",
    at: dict[str, Sequence[float]] | None = None,
    safe_formula: bool = False,
) -> HTEResult:
    """Treatment effect on the slope of a repeated measure, by subgroup.

    Parameters
    ----------
    formula
        ``"y ~ treat * time * (C(stage) + age)"``: the ``treat:time`` term is the treatment
        effect on the slope; ``treat:time:modifier`` terms let it vary by modifier.
    data
        Long format, one row per visit. Modifiers must be constant within a patient (baseline
        values); rows with missing values are excluded and counted.
    treatment, time, group
        Treatment column (two levels; ``reference`` names the control when not 0/1), the
        numeric time column, and the patient identifier.
    random
        ``"intercept"`` (``(1 | group)``) or ``"slope"`` (``(1 + time | group)``) for ``lmm``.
    method
        ``"reml"`` (default, as ``lmer``) or ``"ml"``.
    models
        ``"lmm"`` (linear mixed model) and/or ``"gee"`` (exchangeable working correlation,
        robust variance); each gives its own rows, labelled by model.
    conf_level, multiplicity, at, safe_formula
        As in :func:`hte_report.fit`; continuous modifiers are evaluated at their quartiles
        over patients unless ``at`` gives values.

    Returns
    -------
    HTEResult
        ``family="continuous"``; ``subgroups`` rows have ``scale="MD"`` (difference in slopes
        per unit of time) and ``method="slope"``; ``n`` counts patients and ``n_obs`` visits.

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
    check_choice("random", random, ("intercept", "slope"))
    check_choice("method", method, ("reml", "ml"))
    check_choice("multiplicity", multiplicity,
                 ("holm", "hochberg", "bonferroni", "fdr_bh", "none"))
    models = (models,) if isinstance(models, str) else tuple(dict.fromkeys(models))
    for m in models:
        check_choice("models", m, ("lmm", "gee"))
    raw = read_data(data)
    parsed = parse_mixed_formula(formula, raw.columns, treatment, time, safe_formula)
    if group not in raw.columns:
        raise FormulaError(_absent(group, list(raw.columns), "group"))
    extra = tuple(c for c in (group,) if c not in parsed.variables)
    prep = prepare(raw, outcome=parsed.outcome, treatment=treatment,
                   variables=extra + parsed.variables, family="continuous", reference=reference)
    if prep.n_excluded:
        detail = ", ".join(f"{r.variable}: {r.n_missing}" for r in prep.exclusions.itertuples()
                           if r.n_missing)
        warnings.warn(f"{prep.n_excluded} of {prep.n_input} rows excluded for missing values "
                      f"({detail}).", SparseSubgroupWarning, stacklevel=2)
    frame = prep.frame
    if not pd.api.types.is_numeric_dtype(frame[time]):
        raise DataError(f"time column {time!r} must be numeric, has dtype {frame[time].dtype}.")
    if frame[time].nunique() < 2:
        raise DataError(f"time column {time!r} has one value ({frame[time].iloc[0]!r}) among the "
                        "analysed rows: no slope can be estimated. Check the time column.")
    if frame[group].nunique() < 2:
        raise DataError(f"group column {group!r} has one value: the data hold one patient. Give "
                        "the patient identifier, one value per patient.")
    _check_constant(frame, group, [treatment] + [m.name for m in parsed.modifiers])
    design = build_design(parsed, frame)
    y = frame[parsed.outcome].to_numpy(dtype=float)
    groups = frame[group].to_numpy()
    first = ~frame[group].duplicated().to_numpy()
    base = frame[first].reset_index(drop=True)

    fitted = []
    for name in models:
        if name == "lmm":
            Z = np.ones((len(frame), 1)) if random == "intercept" else np.column_stack(
                [np.ones(len(frame)), frame[time].to_numpy(dtype=float)])
            fm = fit_lmm(design.X, y, groups, Z, design.columns, reml=method == "reml")
        else:
            fm = fit_gee(design.X, y, groups, design.columns)
        fitted.append(fm)

    profile = reference_profile(base, [c for c in parsed.variables if c not in (treatment, time)],
                                design.categorical)
    points = _points(design, base, at)
    grid = {m.name: list(np.linspace(base[m.name].min(), base[m.name].max(), 61))
            for m in design.modifiers if m.kind == "continuous"}
    counts = _counts(design, frame, base, treatment)
    sub_rows, overall_rows, curve_rows, test_rows = [], [], [], []
    for fm in fitted:
        sub_rows += _slopes(fm, design, points, profile, treatment, time, counts, conf_level,
                            "slope")
        curve_rows += _slopes(fm, design, grid, profile, treatment, time, {}, conf_level,
                              "curve")
        overall_rows.append(_overall(fm, design, base, treatment, time, counts, conf_level))
        test_rows += _tests(fm, design, points, profile, treatment, time)
    interactions = adjust_pvalues(pd.DataFrame(test_rows), multiplicity)
    model_rows = [_model_row(fm, random if fm.name.startswith("lmm") else "", group)
                  for fm in fitted]
    return HTEResult(
        formula=formula, family="continuous", outcome=parsed.outcome, treatment=treatment,
        multiplicity=multiplicity, subgroups=pd.DataFrame(sub_rows).reindex(columns=COLUMNS),
        overall=pd.DataFrame(overall_rows).reindex(columns=COLUMNS),
        curves=pd.DataFrame(curve_rows).reindex(columns=COLUMNS), interactions=interactions,
        additive=pd.DataFrame(columns=["modifier", "measure", "estimate", "std_error",
                                       "conf_low", "conf_high", "model", "reference"]),
        exposure=None, conf_level=conf_level,
        models=pd.DataFrame(model_rows), n_analysed=len(frame),
        notes=(f"Treatment effect on the slope of {parsed.outcome} per unit of {time} "
               f"({treatment}:{time}), by modifier; n counts patients ({group}).",),
        primary_spec={"absolute": ["MD", fitted[0].label, {"method": "slope"}]},
        **provenance(parsed, design, prep, profile),
        meta={"time": time, "group": group, "random": random, "method": method,
              "n_groups": int(first.sum()),
              "models": {fm.label: fm.extra for fm in fitted}},
    )


def _check_constant(frame: pd.DataFrame, group: str, cols: list[str]) -> None:
    for col in cols:
        k = frame.groupby(group, sort=False)[col].nunique()
        if (k > 1).any():
            raise DataError(f"{col!r} varies within {group} {k[k > 1].index[0]!r}: treatment and "
                            "modifiers must be constant within a patient (use baseline values).")


def _points(design: Design, base: pd.DataFrame, at) -> dict:
    at = dict(at or {})
    unknown = set(at) - {m.name for m in design.modifiers}
    if unknown:
        raise OptionError(f"at= names {sorted(unknown)}, which are not effect modifiers.")
    out = {}
    for m in design.modifiers:
        s = base[m.name]
        if m.kind == "categorical":
            out[m.name] = sorted(pd.unique(s), key=_sort_key)
        elif m.name in at:
            out[m.name] = [float(v) for v in at[m.name]]
        else:
            out[m.name] = list(dict.fromkeys(np.quantile(s.to_numpy(float), [0.25, 0.5, 0.75])))
    return out


def _double_difference(design: Design, rows: pd.DataFrame, treatment: str, time: str):
    """Designs whose difference is the slope-effect row x(1,1) - x(0,1) - x(1,0) + x(0,0)."""
    def at(t, s):
        r = rows.copy()
        r[treatment] = t
        r[time] = float(s)
        return design.materialize(r)
    return at(1, 1) + at(0, 0), at(0, 1) + at(1, 0)


def _profile_rows(design: Design, profile: dict, name: str, vals: list) -> pd.DataFrame:
    return profile_frame(design, [{**profile, name: v} for v in vals])


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


def _slopes(fm, design, points, profile, treatment, time, counts, conf_level, method):
    rows = []
    for m in design.modifiers:
        if m.name not in points:
            continue
        vals = points[m.name]
        A, B = _double_difference(design, _profile_rows(design, profile, m.name, vals),
                                   treatment, time)
        res = interval(contrast(fm, A, B, np.eye(len(vals)), "difference"), conf_level)
        cat = m.kind == "categorical"
        for i, v in enumerate(vals):
            base = {"modifier": m.name, "level": str(v) if cat else f"at {v:.4g}", "order": i,
                    "value": np.nan if cat else float(v), "scale": "MD", "model": fm.label,
                    "method": method, "mu_treated": np.nan, "mu_control": np.nan}
            rows.append(_row(base, res, i, counts.get((m.name, str(v)), {}) if cat else {}))
    return rows


def _overall(fm, design, base, treatment, time, counts, conf_level):
    A, B = _double_difference(design, base, treatment, time)
    W = weights_for([np.ones(len(base), dtype=bool)])
    res = interval(contrast(fm, A, B, W, "difference"), conf_level)
    row = {"modifier": OVERALL, "level": "", "order": 0, "value": np.nan, "scale": "MD",
           "model": fm.label, "method": "slope", "mu_treated": np.nan, "mu_control": np.nan}
    return _row(row, res, 0, counts[None])


def _tests(fm: FittedModel, design: Design, points, profile, treatment, time) -> list[dict]:
    rows = []
    for m in design.modifiers:
        want = {treatment, time, m.expr}
        idx = np.concatenate([np.arange(sl.start, sl.stop) for term, sl in
                              design.spec.term_slices.items()
                              if {f.expr for f in term.factors} == want])
        stat, df, p = wald_test(fm.params[idx], fm.vcov[np.ix_(idx, idx)])
        rows.append({"modifier": m.name, "scale": "MD", "test": "wald", "statistic": stat,
                     "df": df, "p_value": p, "model": fm.label,
                     "method": "coefficient-wald", "note": ""})
        if m.kind == "categorical":
            vals = points[m.name]
            A, B = _double_difference(design, _profile_rows(design, profile, m.name, vals),
                                      treatment, time)
            c = contrast(fm, A, B, np.eye(len(vals)), "difference")
            stat, df, p = equality_test(c)
            rows.append({"modifier": m.name, "scale": "MD", "test": "equality",
                         "statistic": stat, "df": df, "p_value": p, "model": fm.label,
                         "method": "slope-equality", "note": ""})
    return rows


def _model_row(fm: FittedModel, random: str, group: str) -> dict:
    if fm.name.startswith("lmm"):
        re_ = "(1 | " + group + ")" if random == "intercept" else f"(1 + time | {group})"
        note = f"random effects {re_}; " + ", ".join(
            f"{k}={v:.6g}" for k, v in (("residual variance", fm.extra["scale"]),)) + (
            f"; {fm.note}" if fm.note else "")
    else:
        note = (f"exchangeable working correlation alpha={fm.extra['alpha']:.6g}, "
                f"scale={fm.extra['scale']:.6g}; clusters {group}")
    return {"model": fm.label, "requested": fm.name.split("-")[0], "family": "gaussian",
            "link": "identity", "variance": fm.variance, "converged": fm.converged, "n": fm.n,
            "n_params": len(fm.params), "loglik": fm.loglik, "fallback_from": "", "note": note}
