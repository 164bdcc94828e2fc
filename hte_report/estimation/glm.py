"""``fit``: from a formula and data to an :class:`~hte_report.result.HTEResult`.

The pipeline runs in one direction: parse the formula, prepare the data (exclusions counted),
build the design and its counterfactual versions, fit each working model once, and derive every
effect and test as a contrast of predictions. Presentation layers read only the tidy frames.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from hte_report.core.inference import adjust_pvalues
from hte_report.design.build import Design, subgroups
from hte_report.errors import (
    ConvergenceWarning,
    ModelError,
    ModelWarning,
    SparseSubgroupWarning,
)
from hte_report.estimation import additive, fit_time, interaction_effects
from hte_report.estimation.coefficients import coefficient_frames
from hte_report.estimation.coefficients import inference_columns as _inference_columns
from hte_report.estimation.coefficients import test_row as _test_row
from hte_report.estimation.contrasts import (
    Means,
    RowGroups,
    contrast,
    equality_test,
    group_means,
    interval,
    lr_test,
    reference_profile,
    unit_rows,
    wald_test,
)
from hte_report.estimation.interaction_effects import COLUMNS as EFFECT_COLUMNS
from hte_report.estimation.profile_ci import CI_METHODS, apply_profile
from hte_report.estimation.profiles import (
    OVERALL,
    at_profile,
    curve_points,
    eval_points,
    profile_designs,
)
from hte_report.estimation.setup import setup
from hte_report.models.glm import FitFailure, FittedModel, fit_glm
from hte_report.models.glm import reduced_start as _reduced_start
from hte_report.models.glm import start_values as _start
from hte_report.results.result import HTEResult, provenance
from hte_report.spec.options import (
    DIFF_SCALE,
    FALLBACK,
    MODELS,
    RATIO_SCALE,
    OptionError,
    check_choice,
    check_conf_level,
    check_inference,
    check_multiplicity,
    default_variance,
    model_inference,
)


def fit(
    formula: str,
    data: object,
    *,
    treatment: str | None = None,
    reference: object = None,
    family: str | None = None,
    models: Sequence[str] | None = None,
    variance: object = None,
    exposure: str | None = None,
    conf_level: float = 0.95,
    at: dict[str, Sequence[float]] | None = None,
    multiplicity: str = "holm",
    safe_formula: bool = False,
    path: str = "auto",
    aggregate: bool | None = None,
    modifiers_required: bool = True,
    cutpoints: dict[str, list[float]] | None = None,
    inference: str | None = None,
    ci_method: str = "wald",
    reri_reference: str = "coded",
) -> HTEResult:
    """Continuous, binary and count outcomes: the working models of the family, every effect
    and test. The public entry point is :func:`hte_report.fit` (documented there), which also
    sends ``Surv()`` outcomes to :func:`~hte_report.estimation.survival.fit_survival`."""
    conf_level = check_conf_level(conf_level)
    check_multiplicity(multiplicity)
    check_choice("path", path, ("auto", "statsmodels", "irls", "compressed"))
    check_choice("ci_method", ci_method, CI_METHODS)
    check_choice("reri_reference", reri_reference, ("coded", "lowest-risk"))
    st = setup(formula, data, treatment=treatment, reference=reference, family=family,
               models=models, variance=variance, exposure=exposure, safe_formula=safe_formula,
               aggregate=aggregate if path in ("auto", "compressed") else False,
               modifiers_required=modifiers_required)
    parsed, prep, design, family = st.parsed, st.prep, st.design, st.family
    model_names, var_opt, frame = st.model_names, st.var_opt, prep.frame
    y, expo, groups, cells, freq = st.y, st.expo, st.groups, st.cells, st.freq
    t = design.frame[parsed.treatment].to_numpy()

    if ci_method == "profile" and design.wide and design.X.shape[0] * design.X.shape[1] > 2e7:
        raise OptionError("ci_method='profile' refits the model on a dense design, which a "
                          f"many-level factor ({design.wide[0].expr}) makes too large here; "
                          "use ci_method='wald' (the default).")
    if cells is not None:
        path = "cells"
    elif path == "auto":
        from hte_report.models.glm import choose_path

        path = choose_path(design.X, expo)
    seconds = fit_time.warn_if_slow(design, model_names, path)
    if ("fit_models", path) not in st.memo:  # the joint heterogeneity test reuses them
        st.memo["fit_models", path] = fit_models(model_names, design, y, var_opt, expo, groups,
                                                 path, cells, seconds)
    fitted, model_rows, notes = st.memo["fit_models", path]
    model_rows = [dict(r) for r in model_rows]
    inference = check_inference(inference, family)
    fitted = [_with(fm, inference=model_inference(fm.name, inference)) for fm in fitted]
    for row, fm in zip([r for r in model_rows if r["converged"]], fitted):
        row["inference"] = fm.inference
    subs = subgroups(design, parsed.treatment, cutpoints)
    row_groups = RowGroups.of([np.ones(len(t), dtype=bool)] + [s.rows for s in subs], freq)
    counts = arm_counts(subs, row_groups, t, y, expo, family, cells)
    sparse = sparse_cells(subs, counts, family)
    for s, why in sparse.items():
        where = "all patients" if s is None else f"subgroup {s[0]}={s[1]}"
        warnings.warn(f"{where}: {why}; ratio-scale estimates there are marked not estimable.",
                      SparseSubgroupWarning, stacklevel=2)

    at, at_covariates = at_profile(design, parsed.treatment, at, parsed.variables)
    points = eval_points(design, at)
    profile = reference_profile(design.frame,
                                [c for c in parsed.variables if c != parsed.treatment],
                                design.categorical, freq, design.levels) | at_covariates
    grid = curve_points(design)
    cond_designs = profile_designs(design, parsed.treatment, points, profile)
    curve_designs = profile_designs(design, parsed.treatment, grid, profile)
    reri_designs = (additive.reri_designs(design, parsed.treatment, profile)
                    if any(fm.link != "identity" for fm in fitted) else {})
    sub_rows, overall_rows, test_rows, reri_rows, curve_rows = [], [], [], [], []
    joint_rows = []
    effect_rows, pair_rows = [], []
    all_means = Means.of_models(fitted, design, row_groups)  # group 0: all patients
    for fm, means in zip(fitted, all_means):
        sub_rows += _standardized(fm, subs, means.take(slice(1, None)), counts, sparse, family,
                                  conf_level)
        overall_rows += _standardized(fm, [None], means.take([0]), counts, sparse, family,
                                      conf_level)
        sub_rows += _conditional(fm, design, cond_designs, family, conf_level, counts, sparse)
        curve_rows += _conditional(fm, design, curve_designs, family, conf_level, counts,
                                   sparse, method="curve")
        test_rows += _tests(fm, design, parsed.treatment, subs, sparse, family, y, expo, groups,
                            path, cells, means.take(slice(1, None)))
        rows = additive.reri(fm, parsed.treatment, conf_level, reri_designs, reri_reference)
        reri_rows += rows["additive"]
        joint_rows += rows["joint_effects"]
        effects, pairs = _interaction_effects(fm, design, parsed.treatment, subs,
                                              means.take(slice(1, None)), sparse, family,
                                              conf_level)
        effect_rows += effects
        pair_rows += pairs
    subgroups_df = pd.DataFrame(sub_rows, columns=None if sub_rows else ROW_COLUMNS)
    interactions = pd.DataFrame(test_rows, columns=None if test_rows else TEST_COLUMNS)
    interactions = adjust_pvalues(interactions, multiplicity)
    frames = {**coefficient_frames(fitted, design.X, y, expo, cells, conf_level),
              "subgroups": subgroups_df,
              "interaction_effects": pd.DataFrame(effect_rows, columns=EFFECT_COLUMNS),
              "subgroup_differences": pd.DataFrame(pair_rows, columns=EFFECT_COLUMNS)}
    if ci_method == "profile":
        frames.update(apply_profile({k: frames[k] for k in ("coefficients", "subgroups",
                                                           "interaction_effects")},
                                    fitted, design, parsed.treatment, y, expo, cells,
                                    conf_level, cond_designs,
                                    {fm.label: _native(fm, family)[1] for fm in fitted}))
    return HTEResult(
        formula=formula,
        family=family,
        outcome=parsed.outcome,
        treatment=parsed.treatment,
        exposure=exposure,
        conf_level=conf_level,
        multiplicity=multiplicity,
        overall=pd.DataFrame(overall_rows),
        curves=pd.DataFrame(curve_rows, columns=None if curve_rows else ROW_COLUMNS),
        interactions=interactions,
        additive=pd.DataFrame(reri_rows, columns=additive.COLUMNS),
        joint_effects=pd.DataFrame(joint_rows, columns=additive.COLUMNS),
        models=pd.DataFrame(model_rows),
        **frames,
        n_analysed=len(frame) if cells is None else int(round(cells.cnt.sum())),
        notes=tuple(notes),
        **provenance(parsed, design, prep, profile),
    )


ROW_COLUMNS = ["modifier", "level", "order", "value", "scale", "model", "method", "mu_treated",
               "mu_control", "mu_treated_se", "mu_control_se", "estimate", "std_error",
               "conf_low", "conf_high", "statistic", "p_value", "n", "n_treated", "n_control",
               "events_treated", "events_control", "note", "inference", "df"]
TEST_COLUMNS = ["modifier", "scale", "test", "statistic", "df", "p_value", "model", "method",
                "note", "distribution", "df_denominator"]

def fit_models(names, design: Design, y, var_opt, expo, groups, path="statsmodels",
                cells=None, seconds: float = 0.0):
    """Fit each working model (with its fallback). ``seconds``: the predicted time per model
    (:func:`~hte_report.estimation.fit_time.fit_seconds`); from ``PROGRESS_SECONDS`` on, each
    fit is announced as it starts."""
    fitted: list[FittedModel] = []
    rows, notes = [], []
    for name in names:
        var = var_opt if var_opt is not None else default_variance(name)
        if MODELS[name].robust_only and var == "model":
            raise ModelError(f"{name} needs a robust variance; variance='model' is invalid for it.")

    def first_fit(i, name):
        if seconds >= fit_time.PROGRESS_SECONDS:
            warnings.warn(f"fitting working model {i + 1} of {len(names)} ({name}), about "
                          f"{seconds:.0f} s", ModelWarning, stacklevel=4)
        var = var_opt if var_opt is not None else default_variance(name)
        try:
            return fit_glm(name, design.X, y, design.columns, var, expo, groups,
                           _start(name, design.X, y, expo), path, cells)
        except FitFailure as exc:
            return exc

    firsts = [first_fit(i, name) for i, name in enumerate(names)]
    for name, fm in zip(names, firsts):
        var = var_opt if var_opt is not None else default_variance(name)
        if isinstance(fm, FitFailure):
            exc = fm
            fb = FALLBACK.get(name)
            if fb is None:
                raise ModelError(
                    f"{exc}. Check the data for separation (a subgroup-arm cell with no or only "
                    "events) and consider fewer modifiers or another working model."
                ) from None
            msg = f"{exc}; fell back to {fb} (recorded in result.models)"
            warnings.warn(msg, ConvergenceWarning, stacklevel=3)
            notes.append(msg)
            if fb in names:
                rows.append(_model_row(None, name, var, str(exc), fb))
                continue
            fvar = var_opt if var_opt is not None else default_variance(fb)
            fm = fit_glm(fb, design.X, y, design.columns, fvar, expo, groups, None, path,
                         cells)
            fm = _with(fm, fallback_from=name, note=str(exc))
        diag = _diagnostics(fm, design, y, expo, cells)
        for msg in diag:
            warnings.warn(msg, ModelWarning, stacklevel=3)
            notes.append(msg)
        if diag:
            fm = _with(fm, note="; ".join([fm.note, *diag]).strip("; "))
        fitted.append(fm)
        rows.append(_model_row(fm, name, var, fm.note, ""))
    return fitted, rows, notes


def _outside_unit(design: Design, params, treated: bool) -> tuple[int, float, float]:
    """Predictions under one arm outside [0, 1]: how many, and the range of all, by blocks of
    rows (no length-n vector)."""
    bad, lo, hi, n, rows = 0, np.inf, -np.inf, design.X.shape[0], 1 << 16
    for s in range(0, n, rows):
        p = design.linear_predictor(params, treated, slice(s, s + rows))
        bad += int(np.count_nonzero((p < 0) | (p > 1)))
        lo, hi = min(lo, float(p.min())), max(hi, float(p.max()))
    return bad, lo, hi


def _diagnostics(fm: FittedModel, design: Design, y, expo, cells=None) -> list[str]:
    """Plausibility checks a reader must see: a linear probability model predicting outside
    [0, 1], and overdispersion of a Poisson model reported with model-based variance."""
    out = []
    info = MODELS[fm.name]
    if fm.extra.get("separated"):  # many-level factors (issue 21)
        out.append(f"{fm.label}: {fm.extra['separated']}")
    if fm.undefined is not None and fm.undefined.shape[1]:
        out.append(f"{fm.label}: {fm.undefined.shape[1]} patient(s) have leverage 1 (fitted "
                   "exactly, e.g. the only patient of a subgroup arm), so their "
                   f"{fm.variance} variance contribution is 0/0; effects and tests that depend "
                   "on them are marked not estimable (merge sparse levels)")
    if fm.name == "ols" and np.all((y == 0) | (y == 1)):
        for arm, treated in (("treated", True), ("control", False)):
            bad, lo, hi = _outside_unit(design, fm.params, treated)
            if bad:
                out.append(f"{fm.label}: {bad} predicted risks under {arm} fall outside [0, 1] "
                           f"(range {lo:.3f} to {hi:.3f}); absolute effects near "
                           "the edges of the covariate range are extrapolations")
    if info.family == "poisson" and info.link == "log" and fm.name == "poisson":
        mu = np.exp(design.X @ fm.params + (np.log(expo) if expo is not None else 0.0))
        if cells is None:
            pearson, n = float(np.sum((y - mu) ** 2 / mu)), len(y)
        else:
            ss = cells.s2 - 2 * mu * cells.s1 + cells.cnt * mu * mu
            pearson, n = float(np.sum(ss / mu)), float(cells.cnt.sum())
        disp = pearson / (n - len(fm.params))
        if disp > 1.5:
            msg = f"{fm.label}: Pearson dispersion {disp:.2f} (overdispersed counts)"
            if fm.variance == "model":
                msg += "; model-based standard errors are too small, use variance='HC0'"
            out.append(msg)
    return out


def _with(fm: FittedModel, **kw) -> FittedModel:
    from dataclasses import replace

    return replace(fm, **kw)


def _model_row(fm, requested, var, note, replaced_by):
    from hte_report.spec.options import variance_label

    if fm is None:
        return {"model": requested, "requested": requested, "family": MODELS[requested].family,
                "link": MODELS[requested].link, "variance": variance_label(var),
                "converged": False, "n": np.nan, "n_params": np.nan, "loglik": np.nan,
                "fallback_from": "", "path": "", "note": f"{note}; replaced by {replaced_by}"}
    return {"model": fm.label, "requested": requested, "family": MODELS[fm.name].family,
            "link": fm.link, "variance": fm.variance, "converged": fm.converged, "n": fm.n,
            "n_params": len(fm.params), "loglik": fm.loglik, "fallback_from": fm.fallback_from,
            "path": fm.extra.get("path", ""), "note": note}


def arm_counts(subs, row_groups, t, y, expo, family, cells=None):
    """Patients, events (and exposure) per arm in all patients and every subgroup (groups 0,
    1, ... of ``row_groups``); rows may be cells. One pass of sums over all groups."""
    w = None if cells is None else cells.cnt  # None: count the rows
    events = family in ("binary", "count")
    columns = [w] + ([y if cells is None else cells.s1] if events else [])
    columns += [expo] if expo is not None else []
    treated, control = row_groups.sums(columns, t == 1)  # t is 0/1
    out = {}
    for key, tr, co in zip([None] + [(s.modifier, s.level) for s in subs], treated, control):
        rec = {"n": int(round(tr[0] + co[0])), "n_treated": int(round(tr[0])),
               "n_control": int(round(co[0]))}
        rec["events_treated"] = float(tr[1]) if events else np.nan
        rec["events_control"] = float(co[1]) if events else np.nan
        if expo is not None:
            rec["exposure_treated"] = float(tr[-1])
            rec["exposure_control"] = float(co[-1])
        out[key] = rec
    return out


def sparse_cells(subs, counts, family):
    """Subgroups with zero events (or, for binary, only events) in an arm."""
    out = {}
    if family == "continuous":
        return out
    for key in [None] + [(s.modifier, s.level) for s in subs]:
        c = counts[key]
        for arm in ("treated", "control"):
            ev, n = c[f"events_{arm}"], c[f"n_{arm}"]
            if n and ev == 0:
                out[key] = f"zero events in the {arm} arm"
            elif family == "binary" and n and ev == n:
                out[key] = f"every {arm} patient has the event"
    return out


def scales_of(fm: FittedModel, family: str):
    """(contrast kind, scale label) pairs reported for standardized effects."""
    out = [("difference", DIFF_SCALE[family])]
    if family != "continuous":
        out.append(("ratio", RATIO_SCALE[family]))
    if fm.link == "logit":
        out.append(("odds-ratio", "OR"))  # marginal (population-averaged) odds ratio
    return out


def _native(fm: FittedModel, family: str):
    kind = MODELS[fm.name].native
    return kind, {"difference": DIFF_SCALE[family], "ratio": RATIO_SCALE[family],
                  "odds-ratio": "OR"}[kind]


def not_estimable(fm: FittedModel, key, sparse, kind: str) -> str:
    """Zero-event cells make ratio scales, and every scale of a log/logit model, not estimable."""
    if key in sparse and (fm.link != "identity" or kind != "difference"):
        return f"not estimable: {sparse[key]}"
    return ""


LEVERAGE_NOTE = ("not estimable: {var} variance undefined (it depends on a patient with "
                 "leverage 1, e.g. the only patient of a subgroup arm); merge sparse levels")


def _undefined(fm: FittedModel, se: float) -> str:
    """Note for an effect or test whose HC2/HC3 variance is undefined (``FittedModel.cov``)."""
    if fm.undefined is not None and fm.undefined.size and not np.isfinite(se):
        return LEVERAGE_NOTE.format(var=fm.variance)
    return ""


def _out_of_range(fm: FittedModel, c, i: int) -> str:
    """Note for a ratio from means outside their range (a linear model predicting a risk or
    rate <= 0, or >= 1 for an odds ratio): the ratio does not exist there."""
    if c.kind == "difference":
        return ""
    m1, m0 = float(c.mu1[i]), float(c.mu0[i])
    bad = min(m1, m0) <= 0 or (c.kind == "odds-ratio" and max(m1, m0) >= 1)
    if not bad:
        return ""
    return (f"not estimable: {fm.label} predicts a mean outside the range of a "
            f"{'risk' if c.kind == 'odds-ratio' else 'risk or rate'} here "
            f"(treated {m1:.3g}, control {m0:.3g}), so the ratio does not exist")


def _row(base: dict, res: dict, i: int, counts: dict, note: str) -> dict:
    row = dict(base)
    for k in ("estimate", "std_error", "conf_low", "conf_high", "statistic", "p_value"):
        row[k] = float(res[k][i]) if not note else np.nan
    row.update({k: v for k, v in counts.items()})
    row["note"] = note
    return row


def _standardized(fm, subs, means, counts, sparse, family, conf_level):
    """Standardized effects of the groups ``subs`` (None: all patients) from their means."""
    rows = []
    with np.errstate(invalid="ignore"):  # per-arm standardized means: delta-method SEs
        se1 = np.sqrt(np.clip(np.diag(fm.cov(means.g1)), 0, None))
        se0 = np.sqrt(np.clip(np.diag(fm.cov(means.g0)), 0, None))
    for kind, scale in scales_of(fm, family):
        c = means.contrast(kind, fm)
        res = interval(c, conf_level)
        for i, s in enumerate(subs):
            key = None if s is None else (s.modifier, s.level)
            note = (not_estimable(fm, key, sparse, kind) or _out_of_range(fm, c, i)
                    or _undefined(fm, res["std_error"][i]))
            base = {"modifier": OVERALL if s is None else s.modifier,
                    "level": "" if s is None else s.level,
                    "order": 0 if s is None else s.order,
                    "value": np.nan, "scale": scale, "model": fm.label,
                    "method": "standardized",
                    "mu_treated": float(c.mu1[i]), "mu_control": float(c.mu0[i]),
                    "mu_treated_se": float(se1[i]), "mu_control_se": float(se0[i]),
                    **_inference_columns(fm)}
            rows.append(_row(base, res, i, counts[key], note))
    return rows



def _conditional(fm, design, designs, family, conf_level, counts, sparse, method="conditional"):
    """Effects at the reference profile with each modifier at its evaluation points: on every
    scale of the model (a logit model's conditional RD and RR beside its OR; the ratio from a
    linear model's predicted means), curves on the model's native scale only."""
    scales = scales_of(fm, family) if method == "conditional" else [_native(fm, family)]
    rows = []
    for m, (kind, scale) in ((m, ks) for m in design.modifiers for ks in scales):
        if m.name not in designs:
            continue
        vals, X1, X0, labels = designs[m.name]
        c = contrast(fm, X1, X0, np.eye(len(vals)), kind)
        res = interval(c, conf_level)
        arm_se = [np.sqrt(np.clip(np.diag(fm.cov(group_means(fm, X, np.eye(len(vals)))[1])),
                                  0, None)) for X in (X1, X0)]
        for i, v in enumerate(vals):
            cat = m.kind == "categorical"
            key = (m.name, str(v))
            note = ((not_estimable(fm, key, sparse, kind) if cat else "")
                    or _out_of_range(fm, c, i) or _undefined(fm, res["std_error"][i]))
            base = {"modifier": m.name, "level": str(v) if cat else labels[i],
                    "order": i, "value": np.nan if cat else float(v), "scale": scale,
                    "model": fm.label, "method": method,
                    "mu_treated": float(c.mu1[i]), "mu_control": float(c.mu0[i]),
                    "mu_treated_se": float(arm_se[0][i]), "mu_control_se": float(arm_se[1][i]),
                    **_inference_columns(fm)}
            cnt = counts.get(key, {}) if cat else {}
            rows.append(_row(base, res, i, cnt, note))
    return rows


def _tests(fm, design, treatment, subs, sparse, family, y, expo, groups, path="statsmodels",
           cells=None, means=None):
    rows = []
    _, native_scale = _native(fm, family)
    info = MODELS[fm.name]
    lr = info.likelihood and fm.variance == "model"  # LR ignores robust/cluster variance
    together = _reduced_together(fm, design, treatment, y, expo, path) if lr else {}
    for m in design.modifiers:
        idx = design.interaction_columns(m, treatment)
        hit = any(k is not None and k[0] == m.name for k in sparse)
        broken = fm.link != "identity" and hit and m.kind == "categorical"
        note = "not estimable: a subgroup has zero events in an arm" if broken else ""
        stat, df, p = wald_test(fm.params[idx], fm.cov(unit_rows(idx, len(fm.params))),
                                fm.t_df)
        note = note or _undefined(fm, stat)
        rows.append(_test_row(m.name, native_scale, "wald", stat, df, p, fm.label,
                              "coefficient-wald", note, fm.t_df))
        if lr:
            try:
                ll = together.get(m.name)
                if ll is None:
                    ll = fit_glm(fm.name, design.X, y, (), "model", expo, None,
                                 _reduced_start(fm, idx, design.X, y, expo), path, cells,
                                 drop=tuple(idx)).loglik
                stat, df, p = lr_test(fm.loglik, ll, len(idx))
                rows.append(_test_row(m.name, native_scale, "lr", stat, df, p, fm.label,
                                      "likelihood-ratio", note))
            except FitFailure as exc:
                rows.append(_test_row(m.name, native_scale, "lr", np.nan, len(idx), np.nan,
                                      fm.label, "likelihood-ratio",
                                      f"reduced model failed: {exc}"))
        if m.kind == "categorical":
            rows += equality_rows(fm, m, subs, means, family, broken, note)
    return rows


def equality_rows(fm, m, subs, means, family, broken: bool, note: str) -> list[dict]:
    """Equality tests of a categorical modifier's standardized subgroup effects, one row per
    scale (shared by the in-memory and the out-of-core analyses)."""
    rows = []
    idx = [i for i, s in enumerate(subs) if s.modifier == m.name]
    for kind, scale in scales_of(fm, family):
        bad = broken and (kind == "ratio" or fm.link != "identity")
        c = means.take(idx).contrast(kind, fm)
        stat, df, p = equality_test(c)
        rows.append(_test_row(m.name, scale, "equality", stat, df, p, fm.label,
                              "standardized-equality",
                              (note if bad else "") or _undefined(fm, stat), c.df))
    return rows


def _reduced_together(fm, design, treatment, y, expo, path) -> dict:
    """Every modifier's reduced-model log-likelihood, solved together (see
    :func:`reduced_logliks_of`); modifiers it cannot settle are missing.

    The model without any interaction (the joint heterogeneity test's) is solved in the same
    passes and kept in ``fm.extra["reduced"]`` (dropped columns -> log-likelihood), where
    :func:`~hte_report.estimation.global_tests.joint_heterogeneity` finds it."""
    drops = {m.name: design.interaction_columns(m, treatment) for m in design.modifiers}
    drops = {k: v for k, v in drops.items() if len(v)}
    every = np.unique(np.concatenate(list(drops.values()))) if drops else None
    extra = [every] if len(drops) > 1 else []
    lls = reduced_logliks_of(fm, design, y, expo, list(drops.values()) + extra, path)
    if extra and lls[-1] is not None:
        fm.extra.setdefault("reduced", {})[tuple(every.tolist())] = lls[-1]
    return {k: ll for k, ll in zip(drops, lls) if ll is not None}


def reduced_logliks_of(fm, design, y, expo, drops: list, path) -> list:
    """Log-likelihoods of reduced models of ``fm`` (each drops the columns ``drops[k]``) for
    canonical-link models (logit, Poisson) on patient rows, solved together by
    :func:`hte_report.models.reduced.reduced_logliks`: a few thin passes for all of them. None
    where that does not apply or does not settle (the caller refits by Fisher scoring)."""
    if not drops or fm.name not in ("logit", "poisson") or path not in ("irls", "statsmodels"):
        return [None] * len(drops)
    from hte_report.models.reduced import reduced_logliks

    try:
        return reduced_logliks(fm.name, design.X, y, fm.params, np.linalg.inv(fm.vcov), drops,
                               expo)
    except (np.linalg.LinAlgError, ValueError):
        return [None] * len(drops)


def _interaction_effects(fm, design, treatment, subs, means, sparse, family, conf_level):
    """Interaction effects with CIs: for a categorical modifier each level against its
    reference level on every scale (differences of the standardized subgroup effects, joint
    covariance); for a linear continuous modifier the interaction coefficient per unit.
    Returns these rows and every pairwise difference of a categorical modifier's levels."""
    rows, pairs = [], []
    contrasts = {kind: means.contrast(kind, fm) for kind, _ in scales_of(fm, family)}
    for m in design.modifiers:
        if m.kind == "categorical":
            idx = [i for i, s in enumerate(subs) if s.modifier == m.name]
            levels = [subs[i].level for i in idx]
            for kind, scale in scales_of(fm, family):
                notes = [not_estimable(fm, (m.name, lv), sparse, kind) for lv in levels]
                kw = dict(modifier=m.name, scale=scale, model=fm.label, method="standardized",
                          conf_level=conf_level, notes=notes)
                rows += interaction_effects.versus_reference(contrasts[kind], idx, levels, **kw)
                pairs += interaction_effects.pairwise(contrasts[kind], idx, levels, **kw)
            continue
        idx = design.interaction_columns(m, treatment)
        if interaction_effects.linear_column(m, idx):
            L = unit_rows(idx, len(fm.params))
            se = float(np.sqrt(fm.cov(L)[0, 0]))
            rows += interaction_effects.per_unit(
                float(fm.params[idx[0]]), se, modifier=m.name, scale=_native(fm, family)[1],
                model=fm.label, conf_level=conf_level, note=_undefined(fm, se), df=fm.t_df)
    return rows, pairs
