"""``fit_survival``: treatment-effect heterogeneity for time-to-event outcomes.

The same pipeline as :func:`hte_report.fit`: parse the formula, prepare the data (exclusions
counted), build the design through formulaic, fit once, and derive every effect as a contrast of
counterfactual design rows (treatment set to 1 and 0):

* relative scale: hazard ratios of the Cox interaction model at the reference profile with the
  modifier at each level (or quartile), through :func:`hte_report.effects.contrast` with the Cox
  fit seen as a log-link model (``exp(x'b)`` is the relative hazard);
* absolute scale: the standardized survival difference at each horizon (predictions from the Cox
  model with the Breslow baseline hazard for every row under treatment 1 and 0, averaged over the
  subgroup), and the restricted-mean-survival-time difference within each subgroup from
  Kaplan–Meier curves per arm;
* heterogeneity: Wald and likelihood-ratio tests of the treatment interactions per modifier,
  equality tests of the absolute effects across levels, and proportional-hazards score tests
  (``cox.zph``) per term of the interaction model and of the treatment within each subgroup.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hte_report.core.inference import adjust_pvalues
from hte_report.data.prepare import prepare, read_data
from hte_report.design.build import Design, build_design, subgroups
from hte_report.errors import FormulaError, ModelError, SparseSubgroupWarning
from hte_report.estimation.contrasts import (
    Contrast,
    contrast,
    equality_test,
    interval,
    lr_test,
    reference_profile,
    wald_test,
    weights_for,
)
from hte_report.estimation.profiles import OVERALL, curve_points, eval_points, profile_designs
from hte_report.estimation.setup import check_clusters
from hte_report.models.survival import (
    CoxFit,
    arm_counts,
    check_follow_up,
    check_outcome,
    cox_loglik,
    fit_cox,
    rmst,
    sparse_subgroups,
    survival_at,
    survival_design,
    zph_test,
)
from hte_report.results.result import HTEResult, provenance
from hte_report.spec.formula import ParsedFormula, parse_formula
from hte_report.spec.options import Cluster, OptionError, check_choice

COLUMNS = ["modifier", "level", "order", "value", "scale", "model", "method", "mu_treated",
           "mu_control", "estimate", "std_error", "conf_low", "conf_high", "statistic", "p_value",
           "n", "n_treated", "n_control", "events_treated", "events_control", "exposure_treated",
           "exposure_control", "horizon", "ph_p_value", "note"]
KM_MODEL = "kaplan-meier"


@dataclass(frozen=True)
class SurvFormula:
    """A survival formula: ``Surv(time, event) ~ rhs + strata(s)``, with the right-hand side
    (strata removed) parsed by :func:`hte_report.formula.parse_formula`."""

    formula: str
    time: str
    event: str
    strata: tuple[str, ...]
    parsed: ParsedFormula


def _top_level_split(text: str, sep: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch in "([") - (ch in ")]")
        if ch == sep and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return parts + [cur]


def _call_of(text: str, name: str) -> list[str] | None:
    """Argument names of ``name(a, b, ...)`` when ``text`` is exactly such a call of names."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == name):
        return None
    if node.keywords or not all(isinstance(a, ast.Name) for a in node.args):
        raise FormulaError(f"{text.strip()!r}: {name}() takes data column names only, "
                           f"e.g. {name}(a, b).")
    return [a.id for a in node.args]


def parse_surv_formula(formula: str, columns: Sequence[str], treatment: str | None = None,
                       safe: bool = False, binary_columns: Sequence[str] = ()) -> SurvFormula:
    """Parse ``Surv(time, event) ~ treat * (age + C(stage)) + strata(site)``.

    ``Surv`` and ``strata`` are read here; the rest of the right-hand side goes through
    :func:`hte_report.formula.parse_formula` with the time column standing in as the outcome.
    """
    columns = list(columns)
    if not isinstance(formula, str) or "~" not in formula:
        raise FormulaError(f"formula must be a string like 'Surv(time, event) ~ treat * age', "
                           f"got {formula!r}.")
    lhs, rhs = formula.split("~", 1)
    args = _call_of(lhs, "Surv")
    if args is None:
        raise FormulaError(f"the left-hand side of {formula!r} must be Surv(time, event).")
    if len(args) == 3:
        raise FormulaError("the counting-process form Surv(start, stop, event) is not supported; "
                           "use Surv(time, event) with one row per patient.")
    if len(args) != 2:
        raise FormulaError(f"Surv() takes (time, event); got {len(args)} argument(s).")
    time, event = args
    keep, strata = [], []
    for term in _top_level_split(rhs, "+"):
        s = _call_of(term, "strata")
        if s is not None:
            strata += [c for c in s if c not in strata]
            continue
        for bad, fix in (("strata(", "write strata(...) as a separate '+ strata(site)' term"),
                         ("cluster(", "use variance=Cluster('site') instead"),
                         ("Surv(", "Surv() belongs on the left-hand side")):
            if bad in term:
                raise FormulaError(f"term {term.strip()!r} of {formula!r}: {fix}.")
        keep.append(term.strip())
    for col, role in [(time, "time"), (event, "event")] + [(c, "strata") for c in strata]:
        if col not in columns:
            from hte_report.spec.formula import _absent

            raise FormulaError(_absent(col, columns, role))
    parsed = parse_formula(f"{time} ~ {' + '.join(keep)}", columns, treatment=treatment,
                           safe=safe, binary_columns=binary_columns)
    for col, role in [(event, "event")] + [(c, "strata") for c in strata]:
        if col in parsed.variables:
            raise FormulaError(f"the {role} column {col!r} also appears as a covariate.")
    return SurvFormula(formula, time, event, tuple(strata), parsed)


def fit_survival(
    formula: str,
    data: object,
    *,
    treatment: str | None = None,
    reference: object = None,
    ties: str = "efron",
    horizons: Sequence[float] | None = None,
    rmst_tau: float | None = None,
    variance: object = "model",
    conf_level: float = 0.95,
    multiplicity: str = "holm",
    at: dict[str, Sequence[float]] | None = None,
    safe_formula: bool = False,
) -> HTEResult:
    """Hazard ratios, survival and RMST differences by subgroup from a Cox interaction model.

    Parameters
    ----------
    formula
        ``"Surv(time, event) ~ treat * (age + C(stage)) + strata(site)"``: variables crossed with
        the treatment are effect modifiers; ``strata()`` gives each stratum its own baseline
        hazard; other terms are adjustment covariates.
    data
        pandas/polars DataFrame or a path to a data file. Rows with a missing value in a used
        column are excluded and counted; negative times and events other than 0/1 are errors.
    treatment, reference
        As in :func:`hte_report.fit`.
    ties
        ``"efron"`` (default, as R's ``coxph``) or ``"breslow"``.
    horizons
        Times at which to report the standardized survival difference (scale ``SurvDiff``);
        each must be within the follow-up of both arms of every subgroup.
    rmst_tau
        Truncation time of the restricted mean survival time difference (scale ``RMSTDiff``,
        Kaplan–Meier per arm within each subgroup, Greenwood-type variance).
    variance
        ``"model"``, ``"robust"`` (each row its own cluster, as ``coxph(robust = TRUE)``) or
        ``Cluster("site")`` (``coxph(... + cluster(site))``).
    conf_level, multiplicity, at, safe_formula
        As in :func:`hte_report.fit`.

    Returns
    -------
    HTEResult
        ``family="survival"``. The primary absolute scale is the survival difference at the
        first horizon when ``horizons`` are given, else the RMST difference; the relative scale
        is the hazard ratio. ``subgroups`` rows: ``HR`` (conditional on the reference profile,
        model ``cox-efron``), ``SurvDiff`` (standardized, one set per horizon in ``horizon``) and
        ``RMSTDiff`` (``method="km"``, model ``kaplan-meier``), each with per-arm events and
        person-time and ``ph_p_value``, the ``cox.zph`` test of the treatment within that
        subgroup. ``meta["ph_tests"]`` holds ``cox.zph`` per term of the interaction model.

    Examples
    --------
    >>> from hte_report.datasets import load_rossi
    >>> res = fit_survival("Surv(week, arrest) ~ fin * (age + C(wexp))", load_rossi(),
    ...                    treatment="fin", horizons=[26, 52], rmst_tau=52)
    >>> res.primary["absolute"], res.primary["relative"]
    (('SurvDiff', 'cox-efron'), ('HR', 'cox-efron'))
    >>> sorted(res.subgroups.scale.unique())
    ['HR', 'RMSTDiff', 'SurvDiff']
    """
    if not (0.5 < conf_level < 1):
        raise OptionError(f"conf_level must be between 0.5 and 1, got {conf_level!r}.")
    check_choice("ties", ties, ("efron", "breslow"))
    check_choice("multiplicity", multiplicity,
                 ("holm", "hochberg", "bonferroni", "fdr_bh", "none"))
    if not (isinstance(variance, Cluster) or variance in ("model", "robust")):
        raise OptionError(f"variance={variance!r} is not allowed; expected 'model', 'robust' or "
                          "Cluster('column').")
    horizons = _check_times("horizons", horizons)
    tau = _check_times("rmst_tau", None if rmst_tau is None else [rmst_tau])
    raw = read_data(data)
    binary = [c for c in raw.columns if treatment is None and raw[c].nunique(dropna=True) == 2]
    sf = parse_surv_formula(formula, raw.columns, treatment, safe_formula, binary)
    parsed = sf.parsed
    cluster = variance.column if isinstance(variance, Cluster) else None
    extra = tuple(c for c in (sf.event, *sf.strata) if c not in parsed.variables)
    prep = prepare(raw, outcome=sf.time, treatment=parsed.treatment,
                   variables=extra + parsed.variables, family="time", reference=reference,
                   cluster=cluster)
    if prep.n_excluded:
        detail = ", ".join(f"{r.variable}: {r.n_missing}" for r in prep.exclusions.itertuples()
                           if r.n_missing)
        warnings.warn(f"{prep.n_excluded} of {prep.n_input} rows excluded for missing values "
                      f"({detail}).", SparseSubgroupWarning, stacklevel=2)
    frame = prep.frame
    time, event = check_outcome(frame, sf.time, sf.event)
    design = build_design(parsed, frame)
    keep = _non_intercept(design, formula)
    strata_codes, n_strata = _strata_codes(frame, sf.strata)
    t = frame[parsed.treatment].to_numpy()
    groups = frame[cluster].to_numpy() if cluster else None
    check_clusters(cluster, groups)
    for arm, lab in ((1, "treated"), (0, "control")):
        if event[t == arm].sum() == 0:
            raise ModelError(f"the {lab} arm has no events: hazard ratios are not estimable.")

    subs = subgroups(design, parsed.treatment)
    counts = arm_counts(subs, t, time, event)
    sparse = sparse_subgroups(subs, counts)
    for s, why in sparse.items():
        warnings.warn(f"subgroup {s[0]}={s[1]}: {why}; its estimates are marked not estimable.",
                      SparseSubgroupWarning, stacklevel=2)
    for name, values in (("horizons", horizons), ("rmst_tau", tau)):
        check_follow_up(name, values, subs, t, time)

    X = design.X[:, keep]
    cox = fit_cox(X, time, event, strata_codes, ties, variance, groups)
    name = f"cox-{ties}"
    fm = cox.as_fitted_model(name, tuple(design.columns[i] for i in keep))
    label = fm.label
    continuous = {m.name for m in design.modifiers if m.kind == "continuous"}
    explained = sparse and not any(k is None or k[0] in continuous for k in sparse)
    if not cox.converged and not explained:
        raise ModelError(
            f"the {name} model did not converge (a coefficient drifts towards infinity: "
            f"monotone likelihood, with {cox.n_events} events for {len(cox.params)} "
            "coefficients, or a covariate that separates events from non-events). Use fewer "
            "modifiers or covariates, or merge levels.")
    ctx = _Ctx(design, parsed.treatment, keep, cox, fm, subs, counts, sparse, conf_level, t,
               time, event, strata_codes, n_strata, ties)
    ph = _subgroup_ph(ctx)

    profile = reference_profile(frame, [c for c in parsed.variables if c != parsed.treatment],
                                design.categorical)
    cond = profile_designs(design, parsed.treatment, eval_points(design, at), profile)
    curve = profile_designs(design, parsed.treatment, curve_points(design), profile)
    sub_rows = _hazard_ratios(ctx, cond, "conditional", ph)
    curve_rows = _hazard_ratios(ctx, curve, "curve", {})
    main = _main_effects(ctx)
    overall_rows = [_overall_hr(ctx, main, ph)]
    test_rows = _cox_tests(ctx)
    for h in horizons:
        rows, ov, tests = _survdiff(ctx, h, ph)
        sub_rows += rows + _survdiff_conditional(ctx, h, cond)
        overall_rows += ov
        test_rows += tests
    if tau:
        rows, ov, tests = _rmst(ctx, tau[0], ph)
        sub_rows += rows
        overall_rows += ov
        test_rows += tests

    terms = {str(term): np.flatnonzero(np.isin(keep, np.arange(sl.start, sl.stop)))
             for term, sl in design.spec.term_slices.items()}
    terms = {k: v for k, v in terms.items() if len(v)}
    ph_terms = zph_test(cox, terms)
    interactions = _adjust(pd.DataFrame(test_rows), multiplicity)
    models = [_model_row(cox, name, label, main)]
    if tau:
        models.append({"model": KM_MODEL, "requested": KM_MODEL, "family": "nonparametric",
                       "link": "identity", "variance": "greenwood", "converged": True,
                       "n": len(frame), "n_params": 0, "loglik": np.nan, "fallback_from": "",
                       "note": "Kaplan-Meier per arm within each subgroup; RMST up to "
                               f"tau = {tau[0]:g}"})
    absolute = (["SurvDiff", label, {"horizon": horizons[0]}] if horizons else
                ["RMSTDiff", KM_MODEL, {"method": "km"}] if tau else None)
    primary = {"relative": ["HR", label, {"method": "conditional"}]}
    if absolute:
        primary = {"absolute": absolute, **primary}
    notes = [f"Cox model with {ties} ties" + (f", stratified by {', '.join(sf.strata)}"
                                              if sf.strata else "") + f"; {cox.variance} variance.",
             "Overall hazard ratio from the same Cox model without treatment interactions.",
             "ph_p_value: cox.zph (transform='km') score test of the treatment in a Cox model "
             "of the treatment alone (same strata) within each subgroup."]
    if horizons:
        notes.append("SurvDiff: Breslow baseline hazard; delta-method SE includes the "
                     "coefficient and the baseline-hazard (martingale) uncertainty.")
    return HTEResult(
        formula=formula,
        family="survival",
        outcome=f"Surv({sf.time}, {sf.event})",
        treatment=parsed.treatment,
        exposure=None,
        conf_level=conf_level,
        multiplicity=multiplicity,
        subgroups=_frame(sub_rows),
        overall=_frame(overall_rows),
        curves=_frame(curve_rows),
        interactions=interactions,
        additive=pd.DataFrame(columns=["modifier", "measure", "estimate", "std_error",
                                       "conf_low", "conf_high", "model", "reference"]),
        models=pd.DataFrame(models),
        n_analysed=len(frame),
        notes=tuple(notes),
        primary_spec=primary,
        **provenance(parsed, design, prep, profile),
        meta={"time": sf.time, "event": sf.event, "strata": list(sf.strata), "ties": ties,
              "horizons": list(horizons), "rmst_tau": tau[0] if tau else None,
              "baseline_hazard": "breslow", "ph_tests": ph_terms},
    )


# ----------------------------------------------------------------------------- checks
def _check_times(name: str, values) -> list[float]:
    if values is None:
        return []
    if isinstance(values, (int, float)):
        values = [values]
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            f = np.nan
        if not np.isfinite(f) or f <= 0:
            raise OptionError(f"{name} must be positive finite times, got {v!r}.")
        out.append(f)
    return out


def _non_intercept(design: Design, formula: str) -> np.ndarray:
    icpt = design.term_columns.get(frozenset({"1"}))
    if icpt is None or len(icpt) != 1:
        raise FormulaError(f"{formula!r}: keep the intercept (do not write '- 1' or '+ 0'); a Cox "
                           "model absorbs it into the baseline hazard.")
    return np.setdiff1d(np.arange(design.X.shape[1]), icpt)


def _strata_codes(frame: pd.DataFrame, cols: tuple[str, ...]):
    if not cols:
        return np.zeros(len(frame), dtype=int), 1
    key = frame[list(cols)].astype(str).agg("\x1f".join, axis=1)
    codes, uniq = pd.factorize(key, sort=True)
    return codes.astype(int), len(uniq)


# ----------------------------------------------------------------------------- rows
@dataclass(frozen=True)
class _Ctx:
    design: Design
    treatment: str
    keep: np.ndarray
    cox: CoxFit
    fm: object
    subs: list
    counts: dict
    sparse: dict
    conf_level: float
    t: np.ndarray
    time: np.ndarray
    event: np.ndarray
    strata: np.ndarray
    n_strata: int
    ties: str


def _row(base: dict, res: dict | None, i: int, counts: dict, note: str) -> dict:
    row = dict(base)
    for k in ("estimate", "std_error", "conf_low", "conf_high", "statistic", "p_value"):
        row[k] = float(res[k][i]) if (res is not None and not note) else np.nan
    row.update(counts)
    row["note"] = note
    return row


def _frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    return df.reindex(columns=COLUMNS)


def _subgroup_ph(ctx: _Ctx) -> dict:
    """cox.zph p of the treatment in a Cox model of the treatment alone within each subgroup."""
    out = {}
    masks = [(None, np.ones(len(ctx.t), dtype=bool))] + [
        ((s.modifier, s.level), s.rows) for s in ctx.subs]
    for key, rows in masks:
        if key in ctx.sparse:
            out[key] = np.nan
            continue
        codes = np.unique(ctx.strata[rows], return_inverse=True)[1]
        try:
            fit = fit_cox(ctx.t[rows, None].astype(float), ctx.time[rows], ctx.event[rows],
                          codes, ctx.ties)
            out[key] = zph_test(fit, {})[-1]["p_value"]
        except (ModelError, np.linalg.LinAlgError):
            out[key] = np.nan
    return out


def _hazard_ratios(ctx: _Ctx, designs: dict, method: str, ph: dict) -> list[dict]:
    rows = []
    for m in ctx.design.modifiers:
        if m.name not in designs:
            continue
        vals, X1, X0, *rest = designs[m.name]
        labels = rest[0] if rest else [f"{m.name} = {v:.4g}" for v in vals]
        c = contrast(ctx.fm, X1[:, ctx.keep], X0[:, ctx.keep], np.eye(len(vals)), "ratio")
        res = interval(c, ctx.conf_level)
        cat = m.kind == "categorical"
        for i, v in enumerate(vals):
            key = (m.name, str(v))
            note = f"not estimable: {ctx.sparse[key]}" if cat and key in ctx.sparse else ""
            base = {"modifier": m.name, "level": str(v) if cat else labels[i], "order": i,
                    "value": np.nan if cat else float(v), "scale": "HR", "model": ctx.fm.label,
                    "method": method, "mu_treated": np.nan, "mu_control": np.nan,
                    "horizon": np.nan,
                    "ph_p_value": ph.get(key, np.nan) if cat else np.nan}
            cnt = ctx.counts.get(key, {}) if cat and method != "curve" else {}
            rows.append(_row(base, res, i, cnt, note))
    return rows


def _interaction_idx(ctx: _Ctx, m) -> np.ndarray:
    full = ctx.design.interaction_columns(m, ctx.treatment)
    return np.flatnonzero(np.isin(ctx.keep, full))


def _main_effects(ctx: _Ctx) -> tuple[CoxFit, np.ndarray]:
    """The Cox model without treatment interactions (overall HR) and its columns."""
    drop = np.concatenate([_interaction_idx(ctx, m) for m in ctx.design.modifiers])
    cols = np.setdiff1d(np.arange(len(ctx.keep)), drop)
    X = ctx.design.X[:, ctx.keep][:, cols]
    groups = None
    variance = ctx.cox.variance
    if variance.startswith("CL("):
        variance = Cluster(variance[3:-1])
        groups = ctx.design.frame[variance.column].to_numpy()
    fit = fit_cox(X, ctx.time, ctx.event, ctx.strata, ctx.ties, variance, groups)
    return fit, cols


def _overall_hr(ctx: _Ctx, main, ph: dict) -> dict:
    fit, cols = main
    fm = fit.as_fitted_model(ctx.fm.name, ())
    X1 = ctx.design.X1[:1][:, ctx.keep][:, cols]
    X0 = ctx.design.X0[:1][:, ctx.keep][:, cols]
    res = interval(contrast(fm, X1, X0, np.ones((1, 1)), "ratio"), ctx.conf_level)
    base = {"modifier": OVERALL, "level": "", "order": 0, "value": np.nan, "scale": "HR",
            "model": ctx.fm.label, "method": "main-effects", "mu_treated": np.nan,
            "mu_control": np.nan, "horizon": np.nan, "ph_p_value": ph.get(None, np.nan)}
    return _row(base, res, 0, ctx.counts[None], "")


def _test_row(modifier, scale, test, stat, df, p, model, method, note, horizon=np.nan):
    if note.startswith("not estimable"):
        stat, p = np.nan, np.nan
    return {"modifier": modifier, "scale": scale, "test": test, "statistic": float(stat),
            "df": int(df), "p_value": float(p), "model": model, "method": method, "note": note,
            "horizon": horizon}


def _broken(ctx: _Ctx, m) -> str:
    if m.kind == "categorical" and any(k[0] == m.name for k in ctx.sparse):
        return "not estimable: a subgroup has no events in an arm"
    return ""


def _cox_tests(ctx: _Ctx) -> list[dict]:
    rows = []
    cox, label = ctx.cox, ctx.fm.label
    X = ctx.design.X[:, ctx.keep]
    for m in ctx.design.modifiers:
        idx = _interaction_idx(ctx, m)
        note = _broken(ctx, m)
        stat, df, p = wald_test(cox.params[idx], cox.vcov[np.ix_(idx, idx)])
        rows.append(_test_row(m.name, "HR", "wald", stat, df, p, label, "coefficient-wald", note))
        red = np.setdiff1d(np.arange(X.shape[1]), idx)
        ll = cox_loglik(X[:, red], ctx.time, ctx.event, ctx.strata, ctx.ties)
        stat, df, p = lr_test(cox.loglik, ll, len(idx))
        rows.append(_test_row(m.name, "HR", "lr", stat, df, p, label, "likelihood-ratio", note))
    return rows


def _absolute_rows(ctx, c: Contrast, keys, scale, model, method, horizon, ph, notes):
    res = interval(c, ctx.conf_level)
    rows = []
    for i, s in enumerate(keys):
        key = None if s is None else (s.modifier, s.level)
        base = {"modifier": OVERALL if s is None else s.modifier,
                "level": "" if s is None else s.level, "order": 0 if s is None else s.order,
                "value": np.nan, "scale": scale, "model": model, "method": method,
                "mu_treated": float(c.mu1[i]), "mu_control": float(c.mu0[i]),
                "horizon": horizon, "ph_p_value": ph.get(key, np.nan)}
        rows.append(_row(base, res, i, ctx.counts[key], notes[i]))
    return rows


def _equality_rows(ctx, c: Contrast, keys, scale, model, method, horizon, notes):
    rows = []
    for m in ctx.design.modifiers:
        if m.kind != "categorical":
            continue
        idx = [i for i, s in enumerate(keys) if s is not None and s.modifier == m.name]
        sub = Contrast(c.kind, c.estimate[idx], c.theta[idx], c.cov[np.ix_(idx, idx)],
                       c.mu1[idx], c.mu0[idx])
        bad = next((notes[i] for i in idx if notes[i]), "")
        stat, df, p = equality_test(sub)
        rows.append(_test_row(m.name, scale, "equality", stat, df, p, model, method,
                              "not estimable: " + bad.split(": ", 1)[-1] if bad else "", horizon))
    return rows


def _survdiff(ctx: _Ctx, h: float, ph: dict):
    """Standardized survival difference at horizon h over all rows and each subgroup."""
    model = survival_at(ctx.cox, h, ctx.n_strata)
    d = ctx.design
    Z1 = survival_design(d.X1[:, ctx.keep], ctx.cox.center, ctx.strata, ctx.n_strata)
    Z0 = survival_design(d.X0[:, ctx.keep], ctx.cox.center, ctx.strata, ctx.n_strata)
    keys = [None] + list(ctx.subs)
    W = weights_for([np.ones(len(ctx.t), dtype=bool)] + [s.rows for s in ctx.subs])
    c = contrast(model, Z1, Z0, W, "difference")
    notes = [""] + [f"not estimable: {ctx.sparse[(s.modifier, s.level)]}"
                    if (s.modifier, s.level) in ctx.sparse else "" for s in ctx.subs]
    rows = _absolute_rows(ctx, c, keys, "SurvDiff", ctx.fm.label, "standardized", h, ph, notes)
    tests = _equality_rows(ctx, c, keys, "SurvDiff", ctx.fm.label, "standardized-equality", h,
                           notes)
    return rows[1:], rows[:1], tests


def _survdiff_conditional(ctx: _Ctx, h: float, designs: dict) -> list[dict]:
    """Survival difference at h at the reference profile (modal stratum) with a continuous
    modifier at each of its quartiles (or ``at=`` values): the absolute-scale companion of the
    conditional hazard ratios."""
    model = survival_at(ctx.cox, h, ctx.n_strata)
    stratum = np.bincount(ctx.strata).argmax()
    rows = []
    for m in ctx.design.modifiers:
        if m.kind == "categorical" or m.name not in designs:
            continue
        vals, X1, X0, *rest = designs[m.name]
        labels = rest[0] if rest else [f"{m.name} = {v:.4g}" for v in vals]
        s = np.full(len(vals), stratum)
        Z1 = survival_design(X1[:, ctx.keep], ctx.cox.center, s, ctx.n_strata)
        Z0 = survival_design(X0[:, ctx.keep], ctx.cox.center, s, ctx.n_strata)
        c = contrast(model, Z1, Z0, np.eye(len(vals)), "difference")
        res = interval(c, ctx.conf_level)
        for i, v in enumerate(vals):
            base = {"modifier": m.name, "level": labels[i], "order": i, "value": float(v),
                    "scale": "SurvDiff", "model": ctx.fm.label, "method": "conditional",
                    "mu_treated": float(c.mu1[i]), "mu_control": float(c.mu0[i]),
                    "horizon": h, "ph_p_value": np.nan}
            rows.append(_row(base, res, i, {}, ""))
    return rows


def _rmst(ctx: _Ctx, tau: float, ph: dict):
    """RMST difference up to tau from Kaplan–Meier curves per arm within each subgroup."""
    keys = [None] + list(ctx.subs)
    masks = [np.ones(len(ctx.t), dtype=bool)] + [s.rows for s in ctx.subs]
    est, var, mu1, mu0, notes = [], [], [], [], []
    for key, rows in zip(keys, masks):
        arms = []
        for arm in (1, 0):
            m = rows & (ctx.t == arm)
            arms.append(rmst(ctx.time[m], ctx.event[m], tau))
        (m1, v1), (m0, v0) = arms
        est.append(m1 - m0)
        var.append(v1 + v0)
        mu1.append(m1)
        mu0.append(m0)
        sk = None if key is None else (key.modifier, key.level)
        if sk in ctx.sparse:
            notes.append(f"not estimable: {ctx.sparse[sk]}")
        elif v1 == 0 or v0 == 0:
            arm = "treated" if v1 == 0 else "control"
            notes.append(f"not estimable: no events before tau in the {arm} arm")
        else:
            notes.append("")
    est = np.array(est)
    c = Contrast("difference", est, est, np.diag(var), np.array(mu1), np.array(mu0))
    rows = _absolute_rows(ctx, c, keys, "RMSTDiff", KM_MODEL, "km", tau, ph, notes)
    tests = _equality_rows(ctx, c, keys, "RMSTDiff", KM_MODEL, "km-equality", tau, notes)
    return rows[1:], rows[:1], tests


def _adjust(tests: pd.DataFrame, method: str) -> pd.DataFrame:
    """Multiplicity adjustment across modifiers, separately for each horizon."""
    key = tests["horizon"].fillna(-1.0)
    parts = [adjust_pvalues(tests[key == h], method) for h in pd.unique(key)]
    return pd.concat(parts).sort_index()


def _model_row(cox: CoxFit, name: str, label: str, main) -> dict:
    fit, _ = main
    return {"model": label, "requested": name, "family": "cox", "link": "log",
            "variance": cox.variance, "converged": cox.converged, "n": cox.n,
            "n_params": len(cox.params), "loglik": cox.loglik, "fallback_from": "",
            "note": f"{cox.n_events} events; overall HR from the main-effects model "
                    f"(loglik {fit.loglik:.6g})"}
