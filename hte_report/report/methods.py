"""The report's closing sections: methods (models, variance, every heterogeneity test, the
seed, software versions) and the appendix holding the analysis plan as locked."""

from __future__ import annotations

import platform
import re
from importlib import metadata

import numpy as np
import pandas as pd
import yaml

from hte_report._version import __version__
from hte_report.analysis import PlannedAnalysis
from hte_report.core.format import fmt_est, fmt_p
from hte_report.presentation.analyses import adjustment_terms, analyses_table
from hte_report.presentation.repeated import primary_words
from hte_report.presentation.tables import interaction_table
from hte_report.report.model import Bullets, Code, Para, Section, Table
from hte_report.results.result import HTEResult

DEPENDENCIES = ("numpy", "pandas", "scipy", "statsmodels", "formulaic", "great-tables",
                "matplotlib", "typst", "PyYAML")


def versions() -> dict[str, str]:
    out = {"hte-report": __version__, "python": platform.python_version()}
    for dep in DEPENDENCIES:
        try:
            out[dep] = metadata.version(dep)
        except metadata.PackageNotFoundError:
            out[dep] = "not installed"
    return out



def _methods(a: PlannedAnalysis) -> Section:
    res, plan = a.result, a.plan
    mt = _models_table(res.models)
    ver = versions()
    vt = pd.DataFrame({"Software": list(ver), "Version": list(ver.values())})
    seed = plan.seed
    blocks = [
        Para(f"Model formula: {res.formula}. Treatment {res.treatment} "
             f"({res.treatment_labels[1]} vs {res.treatment_labels[0]}). Effect modifiers: "
             f"{', '.join(res.modifiers)}; adjustment covariates: "
             f"{', '.join(adjustment_terms(res)[0]) or 'none'}"
             + (f"; strata (each its own baseline hazard): "
                f"{', '.join(adjustment_terms(res)[1])}." if adjustment_terms(res)[1]
                else ".")),
        *_strategy_blocks(res),
        *_family_blocks(a),
    ]
    blocks += [
        Table(mt, "Working models (each fitted in every analysis listed above)",
              name="models"),
        *_coefficient_tables(res),
        Table(_all_tests(res), "All heterogeneity tests (every model, scale and test; "
              "sensitivity analyses)", group="Modifier", gt=interaction_table(res),
              notes=(_tests_note(res),), name="all-tests"),
        Para(f"Seed recorded in the plan: {seed if seed is not None else 'none'}. " + (
            f"It seeds the {plan.raw['risk_based']['crossfit_folds']}-fold cross-fitting of the "
            "risk model; nothing else in this report is random."
            if (plan.raw.get("risk_based") or {}).get("planned")
            and (plan.raw.get("risk_based") or {}).get("crossfit_folds")
            else "No analysis in this report is random, so results do not depend on it.")
             + f" Confidence level {plan.conf_level}."),
        Table(vt, "Software and versions", name="versions"),
    ]
    return Section("Methods", tuple(blocks), id="methods")


def _tests_note(res: HTEResult) -> str:
    if (res.meta or {}).get("repeated"):
        from hte_report.presentation.repeated import interaction_words

        return (f"wald: all {interaction_words(res)} coefficients of the model (z, chi-square); "
                "equality: Wald test that the level effects (at the reference profile) are "
                "equal. No likelihood-ratio tests: REML likelihoods do not compare models with "
                "different fixed effects.")
    if res.family == "survival":
        return ("wald / lr: all treatment × modifier coefficients of the Cox model (hazard-ratio "
                "scale); equality: Wald test that the subgroup survival differences (Cox, "
                "standardized) or RMST differences (Kaplan–Meier) are equal across levels.")
    return ("equality: Wald test that the standardized subgroup effects are equal, on "
            "the scale named; the RD and RR rows of one model test different nulls "
            "and can differ. Logit-model tests are on the odds-ratio scale.")


def _inference_words(res: HTEResult) -> str:
    """Which reference distribution the intervals and tests use."""
    sub = res.subgroups
    t = "inference" in sub and (sub.inference.astype(str) == "t").any()
    if t:
        return ("Inference: t intervals and p-values with the residual degrees of freedom (F "
                "for joint tests) for the Gaussian linear model, as R's lm and "
                "lmtest::coeftest with a sandwich variance; large-sample z and chi-square for "
                "the other models.")
    return "Inference is large-sample (z, chi-square)."


def _family_blocks(a: PlannedAnalysis) -> list:
    res = a.result
    if res.family == "survival":
        from hte_report.report.survival import methods_paras

        return methods_paras(a)
    if (res.meta or {}).get("repeated"):
        from hte_report.report.repeated import methods_paras as repeated_paras

        return repeated_paras(a)
    return [
        Para("Absolute-scale effects come from identity-link working models, relative-scale "
             "effects from log-link models (modified Poisson with robust variance, Zou 2004) or "
             "logit models (odds ratios). Subgroup and overall effects are standardized "
             "(g-computation): predictions with treatment set to 1 and 0 averaged over the "
             "subgroup's rows and contrasted; delta-method standard errors treat the covariate "
             "distribution as fixed (sample-average effects). Conditional effects are evaluated "
             "at the reference profile. " + _inference_words(res) + " "
             "Interaction tests: Wald tests of all treatment × modifier coefficients, likelihood-"
             "ratio tests for likelihood-based models, and Wald tests of equal standardized "
             f"subgroup effects; multiplicity: {res.multiplicity} across pre-specified "
             "modifiers, post hoc modifiers in a separate family."),
        Para("Primary models: " + "; ".join(
            f"{ax} scale — {scale} from {model}" for ax, (scale, model) in res.primary.items())
             + ". Other working models are sensitivity analyses. Variance: HC3 for the linear "
               "(probability) model, whose errors are heteroscedastic by construction for a "
               "binary outcome; HC0 sandwich for Poisson working models of binary outcomes "
               "(Zou 2004), whose model-based variance is wrong; model-based for likelihood "
               "models that are correctly specified for the outcome type (logit)."),
    ]


def _strategy_blocks(res: HTEResult) -> list:
    """The subgroup-analysis strategy in words, the primary analysis, and the analyses table."""
    if not res.overall_analysis:
        return []
    covs, strata = adjustment_terms(res)
    repeated = bool((res.meta or {}).get("repeated"))
    prim = ("the treatment" + (f" and the adjustment covariates ({', '.join(covs)})"
                               if covs else "")
            + (f", stratified by {', '.join(strata)}" if strata else "")
            if res.overall_analysis == "adjusted" and res.adjustment
            else "the treatment only (unadjusted)")
    if repeated:
        prim = primary_words(res)
    how = {
        "one-at-a-time": "each modifier is analysed in its own model — the treatment, that "
                         "modifier, their interaction and the adjustment covariates, never the "
                         "other modifiers; its subgroup effects, conditional effects, "
                         "interaction tests and interaction effects come from that model",
        "joint": "one model holds every modifier's interaction with the treatment, so each "
                 "modifier's effects are mutually adjusted for the other modifiers",
        "within-subgroup": "the treatment effect is estimated by a separate model (treatment "
                           "and adjustment covariates) within each subgroup — a sensitivity "
                           "view; interaction tests and interaction effects come from "
                           "one-modifier-at-a-time models",
    }.get(res.strategy, res.strategy)
    if repeated:
        how = how.replace("that modifier, their interaction",
                          f"{res.meta['repeated']['time']}, that modifier and their "
                          "interactions")
    name = {"one-at-a-time": "one modifier at a time", "joint": "one joint model",
            "within-subgroup": "separate fits within each subgroup"}.get(res.strategy,
                                                                         res.strategy)
    text = (f"Subgroup analysis strategy (pre-specified): {name} — {how}. The "
            "overall effect is the primary analysis, a model of the outcome on "
            f"{prim}, standardized over every analysed patient, whatever the strategy. Each "
            "analysis uses the rows where its own variables are observed (complete cases per "
            "analysis), so the numbers analysed can differ between analyses; the table below "
            "lists every fitted analysis with its formula, rows analysed and rows excluded.")
    cuts = res.display_cutpoints or {}
    if cuts:
        text += (" Display categories of continuous modifiers ("
                 + "; ".join(f"{m}: cut at {', '.join(f'{c:g}' for c in v)}"
                             for m, v in cuts.items())
                 + ") are for display only: their rows are standardized within category from "
                   "the modifier's continuous model, which stays continuous in every test.")
    blocks = [Para(text)]
    tab = analyses_table(res)
    if len(tab):
        blocks.append(Table(tab, "Analyses: formula, rows analysed and rows excluded",
                            name="analyses"))
    return blocks


def _models_table(models: pd.DataFrame) -> pd.DataFrame:
    """One row per working model; convergence and notes say which analysis they concern."""
    rows = []
    for model, g in models.groupby("model", sort=False):
        names = _analysis_names(g) if "analysis" in g else [""] * len(g)
        conv = g.converged.astype(bool).to_numpy()
        notes = [f"{n}: {t}" if n else str(t) for n, t in zip(names, g.note.fillna(""))
                 if isinstance(t, str) and t]
        first = g.iloc[0]
        rows.append({
            "Model": model, "Requested": first.requested, "Family": first.family,
            "Link": first.link, "Variance": first.variance,
            "Converged": ("yes" if conv.all() else "no" if not conv.any() else
                          "no in " + ", ".join(n for n, c in zip(names, conv) if not c)),
            "Note": "; ".join(dict.fromkeys(notes)),
        })
    return pd.DataFrame(rows)


def _coefficient_tables(res: HTEResult) -> list:
    """The coefficient table of each primary model, one group of rows per analysis that
    fitted it (``HTEResult.coefficients``; survival and mixed-model results have none)."""
    coef = res.coefficients
    if coef is None or coef.empty:
        return []
    if "analysis" in coef:
        coef = coef[coef.analysis != "within-subgroup"]
    out = []
    for model in dict.fromkeys(m for _, m in res.primary.values()):
        g = coef[coef.model == model]
        if g.empty:
            continue
        g, folded = _fold_wide_factors(g, res.adjustment)
        names = _analysis_names(g) if "analysis" in g else [""] * len(g)
        t = "t" in set(g.inference)
        frame = pd.DataFrame({
            "Analysis": names, "Term": g.term.to_numpy(),
            "Estimate": [fmt_est(v, "coefficient") for v in g.estimate],
            "SE": [fmt_est(v, "coefficient") for v in g.std_error],
            f"{int(round(res.conf_level * 100))}% CI": [
                f"{fmt_est(lo, 'coefficient')} to {fmt_est(hi, 'coefficient')}"
                for lo, hi in zip(g.conf_low, g.conf_high)],
            "P": [fmt_p(p) for p in g.p_value]})
        frame.loc[folded, frame.columns[2:]] = ""
        link = g.model.iloc[0]
        note = (f"Coefficients of {link} on its link scale"
                + (" (log odds ratios / log ratios for logit and log links)"
                   if not str(link).startswith("ols") else "")
                + f", standard errors from its {g.variance.iloc[0]} variance; "
                + ("t intervals and p-values on the residual degrees of freedom"
                   if t else "large-sample (z) intervals and p-values")
                + (", profile-likelihood intervals" if "ci_method" in g
                   and (g.ci_method == "profile").all() else "") + "."
                + (" A many-level adjustment factor is one line: its per-level coefficients "
                   "adjust the effects and are not shown." if folded.any() else ""))
        out.append(Table(frame, f"Coefficients of the primary model {model}", group="Analysis",
                         notes=(note,), name=f"coefficients-{model}"))
    return out


def _fold_wide_factors(g: pd.DataFrame, adjustment) -> tuple[pd.DataFrame, np.ndarray]:
    """The coefficient rows with each many-level adjustment factor (a main effect ``C(x)`` /
    ``x`` of an adjustment covariate with at least ``WIDE_MIN_LEVELS`` coefficients: a wide
    factor, :mod:`hte_report.design.wide`) folded into its first row per analysis, whose term
    says how many coefficients it stands for; and the mask of those rows."""
    from hte_report.design import wide

    g = g.reset_index(drop=True)
    factor = pd.Series([_main_effect_of(t, adjustment) for t in g.term], index=g.index)
    keys = pd.DataFrame({c: g[c].astype(str) for c in ("comparison", "analysis", "modifier")
                         if c in g}).assign(factor=factor)
    size = factor.groupby([keys[c] for c in keys], sort=False).transform("size")
    wide_rows = (factor != "") & (size >= wide.WIDE_MIN_LEVELS)
    first = wide_rows & ~keys.duplicated()
    out = g[~wide_rows | first].copy()
    folded = first[out.index].to_numpy()
    out.loc[folded, "term"] = [f"{f}: {k} fixed-effect coefficients (not shown)" for f, k
                               in zip(factor[out.index][folded], size[out.index][folded])]
    return out, folded


def _main_effect_of(term: str, adjustment) -> str:
    """``C(x)`` (or ``x``) when ``term`` is a column of the main effect of the adjustment
    covariate x (``C(x)[T.level]``), else ""."""
    m = re.fullmatch(r"(C\(\s*([A-Za-z_][\w.]*)\s*\)|([A-Za-z_][\w.]*))\[[^\]]*\]", term)
    return m.group(1) if m and (m.group(2) or m.group(3)) in adjustment else ""


def _analysis_names(models: pd.DataFrame) -> list[str]:
    out = []
    for r in models.itertuples():
        a, m = getattr(r, "analysis", ""), getattr(r, "modifier", "")
        lvl = getattr(r, "level", None)
        if str(a).startswith("overall"):
            name = "overall"
        elif a == "joint":
            name = "joint model"
        elif a == "within-subgroup":
            name = f"within {m} = {lvl}"
        else:
            name = f"{m}'s model" if m else str(a)
        comp = getattr(r, "comparison", "")
        out.append(f"{comp}: {name}" if isinstance(comp, str) and comp else name)
    return out


def _all_tests(res: HTEResult) -> pd.DataFrame:
    order = {m: i for i, m in enumerate(res.modifiers)}
    t = res.interactions.assign(o=res.interactions.modifier.map(order))
    t = t.sort_values(["o", "model"], kind="stable")
    out = pd.DataFrame({
        "Modifier": [res.labels.get(m, m) for m in t.modifier], "Model": t.model,
        "Scale": t.scale, "Test": t.test,
        "Chi-square": [f"{v:.2f}" if np.isfinite(v) else "–" for v in t.statistic],
        "df": t.df.astype(str), "P": [fmt_p(p) for p in t.p_value],
        "P adjusted": [fmt_p(p) for p in t.p_adjusted], "Note": t.note.fillna(""),
    })
    return out if out["Note"].astype(bool).any() else out.drop(columns="Note")


def _appendix(a: PlannedAnalysis) -> Section:
    plan = a.plan
    # the plan as written and locked (a locked value run as earlier versions ran it is in the
    # deviation log)
    text = yaml.safe_dump(getattr(plan, "as_written", plan.raw), sort_keys=False,
                          allow_unicode=True, width=90)
    devs = plan.raw.get("deviations") or []
    lock = plan.lock_status()
    if lock == "modified":
        devs = ["The plan file differs from its locked version (hash mismatch)."] + list(devs)
    blocks = [
        Para(f"Plan SHA-256: {plan.sha256}. Lock status: {lock}"
             + (f"; locked {plan.lock.locked_at}; lock hash {plan.lock.plan_sha256}"
                + (f"; statement: {plan.lock.statement}" if plan.lock.statement else "")
                if plan.lock else "") + "."),
        Code(text, "yaml"),
        Para("Deviations from the plan:" if devs else "Deviations from the plan: none recorded."),
    ]
    if devs:
        blocks.append(Bullets(tuple(devs)))
    return Section("Appendix: the analysis plan", tuple(blocks), id="appendix")
