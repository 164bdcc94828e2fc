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

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from hte_report.core.inference import adjust_pvalues
from hte_report.data.prepare import prepare, read_data
from hte_report.design.build import Design, build_design, subgroups
from hte_report.errors import ExcludedRowsWarning, FormulaError, ModelError, SparseSubgroupWarning
from hte_report.estimation import interaction_effects
from hte_report.estimation.contrasts import (
    contrast,
    interval,
    lr_test,
    reference_profile,
    wald_test,
)
from hte_report.estimation.interaction_effects import COLUMNS as EFFECT_COLUMNS
from hte_report.estimation.profiles import OVERALL, curve_points, eval_points, profile_designs
from hte_report.estimation.setup import (
    check_clusters,
    check_hashable,
    check_number_like_text,
    design_overflow,
)
from hte_report.estimation.survival_absolute import (
    conditional_survival_differences,
    rmst_differences,
    survival_differences,
)
from hte_report.estimation.survival_rows import (
    KM_MODEL,
    Ctx,
    broken_note,
    frame_of,
    row,
    test_row,
)
from hte_report.models.cox import risk_sets, subset_order
from hte_report.models.survival import (
    CoxFit,
    arm_counts,
    check_follow_up,
    check_outcome,
    cox_loglik_columns,
    fit_cox,
    fit_cox_columns,
    sparse_subgroups,
    zph_test,
)
from hte_report.results.result import HTEResult, provenance
from hte_report.spec.options import (
    Cluster,
    OptionError,
    check_choice,
    check_conf_level,
    check_multiplicity,
    checked_arguments,
)
from hte_report.spec.surv import parse_surv_formula


@checked_arguments
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
    modifiers_required: bool = True,
    cutpoints: dict[str, list[float]] | None = None,
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
    conf_level = check_conf_level(conf_level)
    check_choice("ties", ties, ("efron", "breslow"))
    check_multiplicity(multiplicity)
    if not (isinstance(variance, Cluster) or variance in ("model", "robust")):
        raise OptionError(f"variance={variance!r} is not allowed; expected 'model', 'robust' or "
                          "Cluster('column').")
    horizons = _check_times("horizons", horizons)
    tau = _check_times("rmst_tau", None if rmst_tau is None else [rmst_tau])
    raw = read_data(data)
    try:
        binary = [c for c in raw.columns
                  if treatment is None and raw[c].nunique(dropna=True) == 2]
    except TypeError:
        check_hashable(raw)
        raise
    sf = parse_surv_formula(formula, raw.columns, treatment, safe_formula, binary,
                            modifiers_required)
    parsed = sf.parsed
    cluster = variance.column if isinstance(variance, Cluster) else None
    extra = tuple(c for c in (sf.event, *sf.strata) if c not in parsed.variables)
    try:
        prep = prepare(raw, outcome=sf.time, treatment=parsed.treatment,
                       variables=extra + parsed.variables, family="time", reference=reference,
                       cluster=cluster)
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
    time, event = check_outcome(frame, sf.time, sf.event)
    try:
        design = build_design(parsed, frame)
    except np.linalg.LinAlgError:
        raise design_overflow(parsed) from None
    keep = _non_intercept(design, formula)
    strata_codes, n_strata = _strata_codes(frame, sf.strata)
    t = frame[parsed.treatment].to_numpy()
    groups = frame[cluster].to_numpy() if cluster else None
    check_clusters(cluster, groups)
    for arm, lab in ((1, "treated"), (0, "control")):
        if event[t == arm].sum() == 0:
            raise ModelError(f"the {lab} arm has no events: hazard ratios are not estimable.")

    subs = subgroups(design, parsed.treatment, cutpoints)
    counts = arm_counts(subs, t, time, event)
    sparse = sparse_subgroups(subs, counts)
    for s, why in sparse.items():
        warnings.warn(f"subgroup {s[0]}={s[1]}: {why}; its estimates are marked not estimable.",
                      SparseSubgroupWarning, stacklevel=2)
    beyond = {}
    for name, values in (("horizons", horizons), ("rmst_tau", tau)):
        beyond.update(check_follow_up(name, values, subs, t, time))
    for reasons in beyond.values():
        for why in reasons.values():
            warnings.warn(f"{why}: absolute effects of that subgroup at that time are marked not "
                          "estimable.", SparseSubgroupWarning, stacklevel=2)

    X = design.X[:, keep]
    risk = risk_sets(time, event, strata_codes)  # sorted once for every fit on these rows
    columns = tuple(design.columns[i] for i in keep)
    cox = fit_cox(X, time, event, strata_codes, ties, variance, groups, risk=risk,
                  names=columns)
    name = f"cox-{ties}"
    fm = cox.as_fitted_model(name, columns)
    label = fm.label
    continuous = {m.name for m in design.modifiers if m.kind == "continuous"}
    explained = sparse and not any(k is None or k[0] in continuous for k in sparse)
    if not cox.converged and not explained:
        raise ModelError(
            f"the {name} model did not converge (a coefficient drifts towards infinity: "
            f"monotone likelihood, with {cox.n_events} events for {len(cox.params)} "
            "coefficients, or a covariate that separates events from non-events). Use fewer "
            "modifiers or covariates, or merge levels.")
    ctx = Ctx(design, parsed.treatment, keep, cox, fm, subs, counts, sparse, conf_level, t,
               time, event, strata_codes, n_strata, ties, beyond, risk)
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
    effect_rows = _hr_interaction_effects(ctx, cond)
    for h in horizons:
        rows, ov, tests, c = survival_differences(ctx, h, ph)
        effect_rows += _categorical_effects(ctx, c, 1, "SurvDiff", {"horizon": h})
        sub_rows += rows + conditional_survival_differences(ctx, h, cond)
        overall_rows += ov
        test_rows += tests
    if tau:
        rows, ov, tests = rmst_differences(ctx, tau[0], ph)
        effect_rows += _rmst_interaction_effects(ctx, rows)
        sub_rows += rows
        overall_rows += ov
        test_rows += tests

    terms = {str(term): np.flatnonzero(np.isin(keep, np.arange(sl.start, sl.stop)))
             for term, sl in design.spec.term_slices.items()}
    terms = {k: v for k, v in terms.items() if len(v)}
    ph_terms = zph_test(cox, terms)
    interactions = _adjust(pd.DataFrame(test_rows, columns=None if test_rows else [
        "modifier", "scale", "test", "statistic", "df", "p_value", "model", "method", "note",
        "horizon"]), multiplicity)
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
        subgroups=frame_of(sub_rows),
        overall=frame_of(overall_rows),
        curves=frame_of(curve_rows),
        interactions=interactions,
        additive=pd.DataFrame(columns=["modifier", "measure", "estimate", "std_error",
                                       "conf_low", "conf_high", "model", "reference"]),
        models=pd.DataFrame(models),
        n_analysed=len(frame),
        notes=tuple(notes),
        primary_spec=primary,
        interaction_effects=pd.DataFrame(effect_rows, columns=[*EFFECT_COLUMNS, "horizon"]),
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


def _subgroup_ph(ctx: Ctx) -> dict:
    """cox.zph p of the treatment in a Cox model of the treatment alone within each subgroup."""
    out = {}
    masks = [(None, np.ones(len(ctx.t), dtype=bool))] + [
        ((s.modifier, s.level), s.rows) for s in ctx.subs]
    for key, rows in masks:
        if key in ctx.sparse:
            out[key] = np.nan
            continue
        codes = (np.zeros(int(rows.sum()), dtype=int) if ctx.n_strata == 1 else
                 np.unique(ctx.strata[rows], return_inverse=True)[1].ravel())
        try:
            fit = fit_cox(ctx.t[rows, None].astype(float), ctx.time[rows], ctx.event[rows],
                          codes, ctx.ties, order=subset_order(ctx.risk, rows))
            out[key] = zph_test(fit, {})[-1]["p_value"]
        except (ModelError, np.linalg.LinAlgError):
            out[key] = np.nan
    return out


def _hazard_ratios(ctx: Ctx, designs: dict, method: str, ph: dict) -> list[dict]:
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
            rows.append(row(base, res, i, cnt, note))
    return rows


def _hr_interaction_effects(ctx: Ctx, cond: dict) -> list[dict]:
    """Ratios of hazard ratios (each level against the reference level, from the conditional
    HRs and their joint covariance) and, for a linear continuous modifier, the interaction
    coefficient (ratio of HRs per unit)."""
    rows = []
    for m in ctx.design.modifiers:
        if m.kind == "categorical" and m.name in cond:
            vals, X1, X0, *_ = cond[m.name]
            c = contrast(ctx.fm, X1[:, ctx.keep], X0[:, ctx.keep], np.eye(len(vals)), "ratio")
            levels = [str(v) for v in vals]
            notes = [f"not estimable: {ctx.sparse[(m.name, lv)]}"
                     if (m.name, lv) in ctx.sparse else "" for lv in levels]
            rows += interaction_effects.versus_reference(
                c, list(range(len(vals))), levels, modifier=m.name, scale="HR",
                model=ctx.fm.label, method="conditional", conf_level=ctx.conf_level,
                notes=notes, extra={"horizon": np.nan})
        elif m.kind == "continuous":
            idx = _interaction_idx(ctx, m)
            if interaction_effects.linear_column(m, idx):
                se = float(np.sqrt(ctx.fm.vcov[idx[0], idx[0]]))
                rows += interaction_effects.per_unit(
                    float(ctx.fm.params[idx[0]]), se, modifier=m.name, scale="HR",
                    model=ctx.fm.label, conf_level=ctx.conf_level, extra={"horizon": np.nan})
    return rows


def _categorical_effects(ctx: Ctx, c, offset: int, scale: str, extra: dict) -> list[dict]:
    """Differences of standardized subgroup effects (contrast ``c`` over all patients and
    then every subgroup of ``ctx.subs``) between each level and the reference level."""
    rows = []
    for m in ctx.design.modifiers:
        if m.kind != "categorical":
            continue
        idx = [offset + i for i, s in enumerate(ctx.subs) if s.modifier == m.name]
        levels = [ctx.subs[i - offset].level for i in idx]
        notes = [f"not estimable: {ctx.sparse[(m.name, lv)]}"
                 if (m.name, lv) in ctx.sparse else "" for lv in levels]
        rows += interaction_effects.versus_reference(
            c, idx, levels, modifier=m.name, scale=scale, model=ctx.fm.label,
            method="standardized", conf_level=ctx.conf_level, notes=notes, extra=extra)
    return rows


def _rmst_interaction_effects(ctx: Ctx, rows: list[dict]) -> list[dict]:
    """Differences of Kaplan-Meier RMST differences between levels (subgroups are disjoint
    sets of patients, so their variances add)."""
    out = []
    df = frame_of(rows)
    for m in ctx.design.modifiers:
        if m.kind != "categorical":
            continue
        part = df[df.modifier == m.name].sort_values("order")
        if len(part) < 2:
            continue
        notes = part.note.fillna("").tolist()
        out += interaction_effects.independent(
            part.estimate.to_numpy(float), part.std_error.to_numpy(float),
            part.level.tolist(), ratio=False, modifier=m.name, scale="RMSTDiff",
            model=KM_MODEL, method="km", conf_level=ctx.conf_level, notes=notes,
            extra={"horizon": np.nan})
    return out


def _interaction_idx(ctx: Ctx, m) -> np.ndarray:
    full = ctx.design.interaction_columns(m, ctx.treatment)
    return np.flatnonzero(np.isin(ctx.keep, full))


def _main_effects(ctx: Ctx) -> tuple[CoxFit, np.ndarray]:
    """The Cox model without treatment interactions (overall HR) and its columns."""
    drop = np.concatenate([np.array([], dtype=int)]
                          + [_interaction_idx(ctx, m) for m in ctx.design.modifiers])
    if not len(drop):  # no modifiers: the model itself
        return ctx.cox, np.arange(len(ctx.keep))
    cols = np.setdiff1d(np.arange(len(ctx.keep)), drop)
    groups = None
    variance = ctx.cox.variance
    if variance.startswith("CL("):
        variance = Cluster(variance[3:-1])
        groups = ctx.design.frame[variance.column].to_numpy()
    fit = fit_cox_columns(ctx.cox, cols, variance, groups, init=ctx.cox.params[cols])
    return fit, cols


def _overall_hr(ctx: Ctx, main, ph: dict) -> dict:
    fit, cols = main
    fm = fit.as_fitted_model(ctx.fm.name, ())
    X1 = ctx.design.treated_rows(slice(0, 1))[:, ctx.keep][:, cols]
    X0 = ctx.design.untreated_rows(slice(0, 1))[:, ctx.keep][:, cols]
    res = interval(contrast(fm, X1, X0, np.ones((1, 1)), "ratio"), ctx.conf_level)
    base = {"modifier": OVERALL, "level": "", "order": 0, "value": np.nan, "scale": "HR",
            "model": ctx.fm.label, "method": "main-effects", "mu_treated": np.nan,
            "mu_control": np.nan, "horizon": np.nan, "ph_p_value": ph.get(None, np.nan)}
    return row(base, res, 0, ctx.counts[None], "")


def _cox_tests(ctx: Ctx) -> list[dict]:
    rows = []
    cox, label = ctx.cox, ctx.fm.label
    for m in ctx.design.modifiers:
        idx = _interaction_idx(ctx, m)
        note = broken_note(ctx, m)
        stat, df, p = wald_test(cox.params[idx], cox.vcov[np.ix_(idx, idx)])
        rows.append(test_row(m.name, "HR", "wald", stat, df, p, label, "coefficient-wald", note))
        red = np.setdiff1d(np.arange(len(ctx.keep)), idx)
        ll = cox_loglik_columns(cox, red, init=cox.params[red])  # warm start, same rows
        stat, df, p = lr_test(cox.loglik, ll, len(idx))
        rows.append(test_row(m.name, "HR", "lr", stat, df, p, label, "likelihood-ratio", note))
    return rows


def _adjust(tests: pd.DataFrame, method: str) -> pd.DataFrame:
    """Multiplicity adjustment across modifiers, separately for each horizon."""
    key = tests["horizon"].fillna(-1.0)
    parts = [adjust_pvalues(tests[key == h], method) for h in pd.unique(key)]
    return pd.concat(parts).sort_index() if parts else adjust_pvalues(tests, method)


def _model_row(cox: CoxFit, name: str, label: str, main) -> dict:
    fit, _ = main
    return {"model": label, "requested": name, "family": "cox", "link": "log",
            "variance": cox.variance, "converged": cox.converged, "n": cox.n,
            "n_params": len(cox.params), "loglik": cox.loglik, "fallback_from": "",
            "note": f"{cox.n_events} events; overall HR from the main-effects model "
                    f"(loglik {fit.loglik:.6g})"}
