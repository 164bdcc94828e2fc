"""Repeated-measures plans (``outcome.family: repeated``): the outcome is measured at several
visits per patient, and the estimand is the treatment effect on the outcome's slope over time
or its value at a landmark time, by subgroup.

A repeated plan names the patient identifier (``outcome.subject``), the numeric time of each
visit (``outcome.time``), the estimand (``outcome.estimand``: ``slope`` or ``landmark`` with
``outcome.landmark``) and the time unit; its formula is ``y ~ treat * time * (modifiers) +
adjustment`` (the ``treat:time`` term is the effect on the slope). The working models are a
linear mixed model (``model.models: [lmm]``, random intercept or intercept and slope in time,
``model.random``; REML or ML, ``model.method``) and/or a GEE (``gee``, working correlation
``model.correlation``: exchangeable or independence, robust variance).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from hte_report.errors import FormulaError, short
from hte_report.spec.formula import (
    ModifierTerm,
    ParsedFormula,
    _absent,
    _factor_columns,
    formula_text,
    split_formula,
    used_columns,
)

#: Keys of ``outcome`` that only a repeated-measures outcome takes.
REPEATED_OUTCOME_KEYS = ("subject", "time", "estimand", "landmark")
#: Keys of ``model`` that only a repeated-measures outcome takes.
REPEATED_MODEL_KEYS = ("random", "correlation", "method")
REPEATED_MODELS = ("lmm", "gee")
ESTIMANDS = ("slope", "landmark")
RANDOM = ("intercept", "slope")
CORRELATIONS = ("exchangeable", "independence")


def check_repeated_outcome(raw: dict, out: dict, fail) -> None:
    """A plan's repeated-measures outcome (``fail(path, message)`` raises the plan error).
    Other families take none of the repeated keys."""
    model = raw["model"]
    if out["family"] != "repeated":
        for key in REPEATED_OUTCOME_KEYS:
            if key in out:
                fail(f"outcome.{key}", f"applies to family 'repeated' only; this outcome's "
                     f"family is {out['family']!r}. Remove outcome.{key}.")
        for key in REPEATED_MODEL_KEYS:
            if key in model:
                fail(f"model.{key}", f"applies to family 'repeated' only; this outcome's "
                     f"family is {out['family']!r}. Remove model.{key}.")
        return
    for key in ("subject", "time"):
        if not out.get(key):
            what = ("the patient identifier column (one value per patient, repeated on each "
                    "of the patient's visits)" if key == "subject" else
                    "the numeric column of each visit's time (e.g. weeks since randomization)")
            fail("outcome.family", f"a repeated-measures outcome names outcome.{key}: {what}.")
    roles = {out["variable"]: "outcome.variable", raw["treatment"]["variable"]:
             "treatment.variable"}
    for key in ("subject", "time"):
        if out[key] in roles:
            fail(f"outcome.{key}", f"{short(out[key])} is already {roles[out[key]]}; name a "
                 "different column.")
        roles[out[key]] = f"outcome.{key}"
    if out["subject"] == out["time"]:
        fail("outcome.time", "is the same column as outcome.subject.")
    for i, m in enumerate(raw["modifiers"]):
        if m["variable"] in (out["subject"], out["time"]):
            fail(f"modifiers[{i}].variable", f"{short(m['variable'])} is "
                 f"{roles[m['variable']]}; it cannot also be an effect modifier (the effect on "
                 "the slope is the treatment-by-time interaction itself).")
    estimand = out.get("estimand", "slope")
    if estimand == "landmark":
        if "landmark" not in out:
            fail("outcome.estimand", "the landmark estimand needs outcome.landmark: the time at "
                 "which the treatment effect on the outcome is estimated (e.g. 2 for year 2).")
        if not math.isfinite(out["landmark"]):
            fail("outcome.landmark", f"must be a finite time, got {short(out['landmark'])}.")
    elif "landmark" in out:
        fail("outcome.landmark", "applies to estimand 'landmark' only; set outcome.estimand: "
             "landmark or remove outcome.landmark.")
    for key in ("variance", "cluster"):
        if model.get(key):
            fail(f"model.{key}", "a repeated-measures outcome uses the mixed model's own "
                 "variance or the GEE's robust (sandwich) variance clustered on "
                 "outcome.subject; remove model." + key + ".")
    models = model.get("models") or ["lmm"]
    for m in models:
        if m not in REPEATED_MODELS:
            fail("model.models", f"{short(m)} is not a repeated-measures model; use 'lmm' "
                 "(linear mixed model) and/or 'gee' (generalized estimating equations).")
    if "random" in model and "lmm" not in models:
        fail("model.random", "random effects belong to the linear mixed model ('lmm'), which "
             "model.models does not list.")
    if "correlation" in model and "gee" not in models:
        fail("model.correlation", "a working correlation belongs to the GEE ('gee'), which "
             "model.models does not list.")
    if raw.get("risk_based", {}).get("planned"):
        fail("risk_based.planned", "a risk-based (PATH) analysis of a repeated-measures "
             "outcome is not available; set planned: false or remove risk_based.")
    strategy = (raw.get("analysis") or {}).get("strategy")
    if strategy == "within-subgroup":
        fail("analysis.strategy", "repeated-measures outcomes are analysed 'one-at-a-time' "
             "(default) or 'joint'; within-subgroup fits are not available for them.")
    formula = model["formula"]
    if "~" not in formula or formula.split("~", 1)[0].strip() != out["variable"]:
        fail("model.formula", f"its left-hand side must be outcome.variable "
             f"{short(out['variable'])}: '{out['variable']} ~ {raw['treatment']['variable']} * "
             f"{out['time']} * (modifier1 + modifier2)'.")


def mixed_options(plan_raw: dict) -> dict:
    """Keyword arguments of :func:`hte_report.estimation.mixed.fit_mixed` from a plan."""
    out, model = plan_raw["outcome"], plan_raw["model"]
    opts = {
        "time": out["time"], "group": out["subject"],
        "estimand": out.get("estimand", "slope"),
        "landmark": out.get("landmark"),
        "models": tuple(model.get("models") or ("lmm",)),
        "random": model.get("random", "slope"),
        "method": model.get("method", "reml"),
        "correlation": model.get("correlation", "exchangeable"),
    }
    if out.get("time_unit"):
        opts["time_unit"] = out["time_unit"]
    return opts


def check_repeated_columns(plan, frame, fail_error) -> None:
    """Values of a repeated plan's columns: time numeric, the outcome numeric, at least two
    visits for some patients, treatment and modifiers constant within a patient."""
    import pandas as pd

    out = plan.outcome
    for key in ("variable", "time"):
        col = frame[out[key]]
        if pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
            raise fail_error(f"outcome.{key} {short(out[key])} must be numeric; it holds "
                             f"{col.dtype} values (e.g. {short(col.dropna().head(3).tolist())}).")
    subj = frame[out["subject"]]
    counts = subj.value_counts(dropna=True)
    if len(counts) and counts.max() < 2:
        raise fail_error(f"outcome.subject {short(out['subject'])} has one row per value: "
                         "there are no repeated measurements. Repeated-measures data are in "
                         "long format, one row per patient and visit.")
    landmark = out.get("landmark")
    times = frame[out["time"]].dropna()
    if landmark is not None and len(times) and not times.min() <= landmark <= times.max():
        import warnings

        from hte_report.errors import ModelWarning

        warnings.warn(f"outcome.landmark {landmark:g} is outside the observed times of "
                      f"{short(out['time'])} ({times.min():g} to {times.max():g}): the effect "
                      "there is an extrapolation of the fitted linear trends.", ModelWarning,
                      stacklevel=3)
    for var in [plan.treatment] + [m.variable for m in plan.modifiers]:
        sub = frame[[out["subject"], var]].dropna()
        k = sub.groupby(out["subject"], sort=False)[var].nunique()
        if (k > 1).any():
            who = k[k > 1].index[0]
            who = who.item() if hasattr(who, "item") else who
            raise fail_error(f"{short(var)} varies within {short(out['subject'])} "
                             f"{short(who)}: treatment and effect modifiers "
                             "must be constant within a patient (use baseline values).")


def parse_mixed_formula(formula: str, columns: Sequence[str], treatment: str, time: str,
                        safe: bool = False, modifiers_required: bool = True) -> ParsedFormula:
    """Roles in ``y ~ treat * time * (modifiers) + covariates``: modifiers are the variables of
    the ``treat:time:modifier`` terms; ``treat:time`` itself must be in the model.
    ``modifiers_required=False``: the primary analysis ``y ~ treat * time + covariates``."""
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
    if not mods and modifiers_required:
        raise FormulaError(f"formula {formula!r} has no {treatment}:{time}:modifier term; write "
                           f"'{outcome} ~ {treatment} * {time} * (modifier1 + modifier2)'.")
    if outcome in used:
        raise FormulaError(f"the outcome {outcome!r} also appears on the right-hand side.")
    adjustment = tuple(c for c in used if c not in (treatment, time) and c not in mods)
    return ParsedFormula(formula, outcome, formula_text(list(parsed.rhs)), treatment,
                         tuple(mods.values()),
                         tuple(used), adjustment)
