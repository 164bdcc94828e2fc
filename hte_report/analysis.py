"""Plan-driven analysis: validate a plan against data, fit the pre-specified analyses (the
plan's subgroup-analysis strategy, its primary analysis for the overall row and the display
cutpoints of continuous modifiers), and fit any post hoc modifiers separately, one at a time,
labelled as hypothesis-generating."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from hte_report.data.prepare import read_data
from hte_report.errors import PlanError, PostHocWarning
from hte_report.estimation.strategy import fit_by_strategy
from hte_report.models.fast import blas_single_threaded
from hte_report.results.result import HTEResult
from hte_report.spec.analysis_set import select
from hte_report.spec.formula import quote_name, short
from hte_report.spec.plan import Plan, load_plan
from hte_report.spec.plan_data import check_plan_against_data


def read_data_file(source: object, encoding: str | None = None) -> pd.DataFrame:
    """:func:`hte_report.data.read_data` (kept for callers of this name)."""
    return read_data(source, encoding)


@dataclass(frozen=True)
class PlannedAnalysis:
    """The confirmatory (pre-specified) result and the post hoc results, with their plan."""

    plan: Plan
    result: HTEResult
    posthoc: tuple[HTEResult, ...]
    data: pd.DataFrame
    # trial.design: observational — g-computation, IPW and AIPW with the plan's confounders
    # (hte_report.estimation.observational.ObservationalResult); None otherwise
    observational: object = None


@blas_single_threaded
def fit_plan(plan: Plan | str, data: object, posthoc: Sequence[str] = (),
             encoding: str | None = None) -> PlannedAnalysis:
    """Fit the plan's analyses on ``data``: the subgroup-analysis strategy of the plan's
    ``analysis.strategy`` (default one-at-a-time), the overall row from its primary analysis
    (``analysis.overall``, default adjusted) and the modifiers' ``display_cutpoints``. Each
    ``posthoc`` modifier is analysed one at a time, ``outcome ~ treatment * modifier +
    adjustment`` (the plan's adjustment covariates), labelled post hoc (hypothesis-generating)
    and adjusted for multiplicity in its own family, never with the pre-specified ones.

    ``encoding``: of a CSV/TSV or SAS data file, when it is not UTF-8."""
    if not isinstance(plan, Plan):
        plan = load_plan(plan)
    frame = read_data_file(data, encoding)
    check_plan_against_data(plan, frame)
    given = frame
    with warnings.catch_warnings():  # check_plan_against_data has warned already
        warnings.simplefilter("ignore")
        frame, selection = select(plan.raw, frame)  # the plan's analysis set
    if posthoc is None:
        posthoc = []
    if isinstance(posthoc, str):
        posthoc = [p.strip() for p in posthoc.split(",") if p.strip()]
    if not isinstance(posthoc, (list, tuple)) or not all(isinstance(p, str) for p in posthoc):
        raise PlanError(f"posthoc= names the columns to analyse post hoc: a list of column names "
                        f"(or one text, separated by commas), e.g. posthoc=['race']; got "
                        f"{short(posthoc)}.")
    posthoc = list(dict.fromkeys(posthoc))
    for var in posthoc:
        if not isinstance(var, str) or var not in frame.columns:
            shown = ", ".join(short(c, 40) for c in list(frame.columns)[:20])
            raise PlanError(f"post hoc modifier {short(var)} is not a column of the data; "
                            f"name columns, separated by commas. Columns: [{shown}].")
        roles = {plan.treatment: "the treatment", plan.outcome["variable"]: "the outcome"}
        if var in roles:
            raise PlanError(f"post hoc modifier {short(var)} is {roles[var]}; it cannot also be "
                            "an effect modifier.")
        if plan.modifier(var) is not None:
            raise PlanError(f"post hoc modifier {short(var)} is already a pre-specified "
                            "modifier of the plan and is analysed as pre-specified; a post hoc "
                            "analysis is for variables the plan does not name. Remove it from "
                            "the post hoc modifiers (posthoc= / --posthoc).")
    raw = plan.raw
    original = given
    formula, frame = survival_formula(plan, frame)
    kw = dict(
        treatment=plan.treatment,
        reference=raw["treatment"]["control"],
        conf_level=plan.conf_level,
        multiplicity=plan.multiplicity,
        safe_formula=True,
    )
    out = plan.outcome
    if out["family"] == "repeated":
        return _fit_repeated(plan, frame, posthoc, kw, given, selection)
    if out["family"] == "survival":
        kw.update(ties=out.get("ties", "efron"), horizons=out.get("horizons"),
                  rmst_tau=out.get("rmst_tau"))
    else:
        kw.update(family=out["family"], models=raw["model"].get("models"),
                  exposure=out.get("exposure"))
    variance = raw["model"].get("variance")
    if raw["model"].get("cluster"):
        from hte_report.spec.options import Cluster

        variance = Cluster(raw["model"]["cluster"])
    if out["family"] == "survival" and variance is None:
        variance = "model"
    kw["variance"] = variance
    kw["overall"] = plan.overall_analysis
    result = fit_by_strategy(formula, frame, strategy=plan.strategy,
                             display_cutpoints=plan.display_cutpoints or None, **kw)
    result = _as_given(result, original, frame, selection)
    extra = [m for m in result.modifiers if plan.modifier(m) is None]
    result = result.with_plan(plan.labels, tuple(extra), plan.level_labels)
    post = []
    for var in posthoc:
        if plan.modifier(var) is not None:
            continue
        warnings.warn(f"{short(var)} is not pre-specified in the plan: analysed post hoc "
                      "(hypothesis-generating).", PostHocWarning, stacklevel=2)
        # one at a time: the outcome, the treatment, this modifier, its interaction and the
        # plan's adjustment covariates (a non-numeric or few-valued column is categorical)
        term = _posthoc_term(frame, var)
        r = fit_by_strategy(posthoc_formula(formula, plan, frame, term, var), frame,
                            strategy="one-at-a-time", **kw)
        r = _as_given(r, original, frame, selection)
        r = _with_primary_overall(r, result)
        post.append(r.with_plan({**plan.labels, var: var}, (var,), plan.level_labels))
    from hte_report.estimation.observational import fit_observational_plan

    return PlannedAnalysis(plan, result, tuple(post), frame, fit_observational_plan(plan, frame))


def _fit_repeated(plan: Plan, frame: pd.DataFrame, posthoc: list, kw: dict,
                  given: pd.DataFrame, selection: list) -> PlannedAnalysis:
    """A repeated-measures plan: :func:`~hte_report.estimation.mixed.fit_mixed` with the plan's
    subject, time, estimand and working models; post hoc modifiers one at a time as
    ``y ~ treat * time * modifier + adjustment``."""
    from hte_report.estimation.mixed import fit_mixed, split_terms
    from hte_report.spec.formula import _factor_columns, formula_text
    from hte_report.spec.repeated import mixed_options, parse_mixed_formula

    opts = {**kw, **mixed_options(plan.raw), "overall": plan.overall_analysis}
    result = fit_mixed(plan.formula, frame, strategy=plan.strategy, **opts)
    result = _as_given(result, given, frame, selection)
    extra = [m for m in result.modifiers if plan.modifier(m) is None]
    result = result.with_plan(plan.labels, tuple(extra), plan.level_labels)
    time = opts["time"]
    parsed = parse_mixed_formula(plan.formula, frame.columns, plan.treatment, time, True)
    lhs, common, _ = split_terms(plan.formula, parsed, frame.columns, plan.treatment, time, True)
    post = []
    for var in posthoc:
        if plan.modifier(var) is not None:
            continue
        if var in (time, opts["group"]):
            raise PlanError(f"post hoc modifier {short(var)} is the time or subject column; it "
                            "cannot be an effect modifier.")
        warnings.warn(f"{short(var)} is not pre-specified in the plan: analysed post hoc "
                      "(hypothesis-generating).", PostHocWarning, stacklevel=3)
        term = _posthoc_term(frame, var)
        adj = [t for t in common
               if var not in {c for f in t.factors for c in _factor_columns(f, frame.columns)}]
        rhs = formula_text(adj) + f" + {term} + {quote_name(plan.treatment)}:{term} + " \
            f"{quote_name(time)}:{term} + {quote_name(plan.treatment)}:{quote_name(time)}:{term}"
        r = fit_mixed(f"{lhs} ~ {rhs}", frame, strategy="one-at-a-time", **opts)
        r = _with_primary_overall(_as_given(r, given, frame, selection), result)
        post.append(r.with_plan({**plan.labels, var: var}, (var,), plan.level_labels))
    return PlannedAnalysis(plan, result, tuple(post), frame)


def _posthoc_term(frame: pd.DataFrame, var: str) -> str:
    """A post hoc modifier's formula term: ``C(var)`` for a non-numeric or few-valued column."""
    col = frame[var]
    name = quote_name(var)
    few = not pd.api.types.is_numeric_dtype(col) or col.nunique() <= 5
    if few and name == var:
        return f"C({name})"
    if few and pd.api.types.is_numeric_dtype(col) and col.nunique() > 2:
        raise PlanError(  # C() of a quoted name is refused (see parse_formula)
            f"post hoc modifier {short(var)} has {col.nunique()} numeric codes and a "
            "name that is not a plain identifier; rename the column (letters, digits, "
            "underscores) to analyse it as categorical.")
    return name


def posthoc_formula(formula: str, plan: Plan, frame: pd.DataFrame, term: str, var: str) -> str:
    """``outcome ~ treatment * term + adjustment``: the post hoc modifier's own model, with the
    plan formula's adjustment covariates (those that do not involve ``var`` itself)."""
    from hte_report.estimation.strategy import roles
    from hte_report.spec.formula import _factor_columns, formula_text

    r = roles(formula, frame, plan.treatment, True, plan.outcome["family"] == "survival")
    adj = [t for t in r.adjustment
           if var not in {c for f in t.factors for c in _factor_columns(f, frame.columns)}]
    rest = f" + {formula_text(adj)}" if adj else ""
    return f"{r.lhs} ~ {quote_name(r.treatment)} * {term}{rest}{r.strata}"


#: Suffix of the event indicator derived from a censoring flag (1 - flag).
EVENT_FROM_CENSOR = "_event"


def survival_formula(plan: Plan, frame: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """The formula and data a survival plan is fitted with. With ``outcome.censor`` (1 =
    censored, e.g. ADaM CNSR) the event indicator is ``1 - censor``, a derived column
    ``<censor>_event`` that the formula's Surv() then reads; the input data are unchanged (its
    hash in the report is the hash of the data as given)."""
    out = plan.outcome
    if out["family"] != "survival" or not out.get("censor"):
        return plan.formula, frame
    flag = out["censor"]
    name = f"{flag}{EVENT_FROM_CENSOR}"
    if name in frame.columns:
        raise PlanError(f"outcome.censor {short(flag)}: the data already has a column "
                        f"{short(name)}, the name of the event indicator derived from it; "
                        "rename that column.")
    col = frame[flag]
    v = pd.to_numeric(col.astype(int) if pd.api.types.is_bool_dtype(col) else col,
                      errors="coerce")
    from hte_report.spec.surv import split_surv

    time, _, _, _ = split_surv(plan.formula)
    rhs = plan.formula.split("~", 1)[1]
    return f"Surv({time}, {name}) ~{rhs}", frame.assign(**{name: 1 - v})


def _as_given(result: HTEResult, original: pd.DataFrame, fitted: pd.DataFrame,
              selection: list = ()) -> HTEResult:
    """The result with the hash of the data as given (not of the plan's analysis set or a
    derived event column), and the analysis set's selection steps in ``meta``."""
    if fitted is original and not selection:
        return result
    from dataclasses import asdict, replace

    from hte_report.data.digest import dataset_sha256

    meta = dict(result.meta or {})
    if selection:
        meta["analysis_set"] = [asdict(s) for s in selection]
        meta["rows_given"] = int(len(original))
    return replace(result, data_sha256=dataset_sha256(original), meta=meta)


def _with_primary_overall(post: HTEResult, primary: HTEResult) -> HTEResult:
    """A post hoc result whose overall row is the plan's primary analysis (the same as the
    pre-specified result's), not a model without the post hoc variable."""
    from dataclasses import replace

    a = post.analyses
    if len(a) and "analysis" in a:
        own = a[~a.analysis.str.startswith("overall")]
        ref = primary.analyses
        a = pd.concat([ref[ref.analysis.str.startswith("overall")], own], ignore_index=True)
    models = post.models
    if "analysis" in models:
        pm = primary.models
        models = pd.concat([pm[pm.analysis.str.startswith("overall")],
                            models[~models.analysis.str.startswith("overall")]],
                           ignore_index=True)
    return replace(post, overall=primary.overall, analyses=a, models=models,
                   n_analysed=primary.n_analysed, exclusions=primary.exclusions)
