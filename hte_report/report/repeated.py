"""The report's repeated-measures section: trajectories by arm (overall and within each level of
the pre-specified categorical modifiers), the visits behind them, and the working models with
their covariance structure and estimand."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hte_report.analysis import PlannedAnalysis
from hte_report.presentation.repeated import (
    MIN_WINDOW,
    effect_words,
    fitted,
    interaction_words,
    repeated_meta,
    trajectory_panels,
    visit_summary,
)
from hte_report.report.model import Figure, Para, Section, Table
from hte_report.report.survival import _arms


def is_repeated(res) -> bool:
    return bool(repeated_meta(res))


def _analysed(a: PlannedAnalysis, extra: tuple[str, ...] = ()) -> pd.DataFrame:
    res = a.result
    rm = repeated_meta(res)
    codes, _ = _arms(a)
    cols = [res.outcome, rm["time"], rm["group"], res.treatment, *extra]
    d = a.data.dropna(subset=[c for c in cols if c in a.data.columns])
    return d[d[res.treatment].isin(list(codes.values()))]


def trajectory_section(a: PlannedAnalysis, png: bool = False) -> Section:
    """Trajectories by arm, overall and per level of each pre-specified categorical modifier,
    with the visits per arm and the working models."""
    res = a.result
    rm = repeated_meta(res)
    codes, labels = _arms(a)
    out_label = a.plan.outcome.get("label", res.outcome)
    unit = rm.get("time_unit") or rm["time"]
    est = effect_words(res)
    blocks: list = [Para(
        f"{out_label} over {rm['time']}" + (
            f" ({unit}s)" if rm.get("time_unit") and rm["time_unit"].rstrip("s").lower()
            not in rm["time"].lower() else "") + f" by arm. The estimand is the treatment {est}: "
        + ("the difference between the arms' mean rates of change (the treatment-by-time "
           "interaction of the model)" if rm["estimand"] == "slope" else
           "the difference between the arms' fitted means at the landmark time")
        + ", overall and within each pre-specified subgroup (next section). The figures show "
        "the data behind it: each patient's measurements, the observed means and the fitted "
        "mean trajectories of the primary model.")]
    overall = _analysed(a)
    specs = [([("All patients", overall, fitted(res))], 1,
              f"{out_label} by arm, all analysed patients ({overall[rm['group']].nunique()} "
              f"patients, {len(overall)} visits).", "trajectory-overall")]
    for m in [m for m in res.modifiers if m not in res.posthoc
              and res.modifier_kinds.get(m) == "categorical" and m in a.data.columns]:
        d = _analysed(a, (m,))
        rows = res.effects("absolute").query("modifier == @m").sort_values("order")
        groups = []
        for lv in dict.fromkeys(rows.level):
            g = d[d[m].astype(str) == str(lv)]
            if len(g) == 0 and pd.api.types.is_numeric_dtype(d[m]):
                g = d[d[m].astype(float) == float(lv)]
            groups.append((f"{res.labels.get(m, m)}: {res.level_label(m, str(lv))}", g,
                           fitted(res, m, str(lv))))
        specs.append((groups, 3, f"{out_label} by arm within each level of "
                      f"{res.labels.get(m, m)}.", f"trajectory-{m}"))
    model = res.primary["absolute"][1]
    how = ""
    for groups, ncols, head, name in specs:
        fig, how = trajectory_panels(groups, res, codes, labels, ncols=ncols,
                                     ylabel=out_label)
        blocks.append(Figure.from_matplotlib(
            fig, head + f" Thin lines: individual patients; points: observed means {how} "
            f"({rm['time']}), with {100 * res.conf_level:g}% t intervals; thick lines and "
            f"bands: mean trajectory fitted by the primary model ({model}) averaged over the "
            "panel's patients, with pointwise confidence bands"
            + (" (for a subgroup, from the model of that modifier)" if name != "trajectory-overall"
               else " (primary analysis)") + f". Windows with fewer than {MIN_WINDOW} "
            "measurements in an arm show no observed mean. Observed means at later times come "
            "only from patients still followed; the fitted trajectories estimate the mean of "
            "all analysed patients under missing at random, so the two part when dropout "
            "(death, transplantation, end of follow-up) depends on the outcome.", name, png))
    blocks.append(Table(visit_summary(overall, res, codes, labels),
                        "Patients and visits by arm (analysed rows)", name="visits",
                        notes=(f"Last visit: time of the patient's last analysed measurement "
                               f"({rm['time']}). Patients contribute every visit with the "
                               "outcome and covariates observed; the models use all of them "
                               "(missing at random given the model).",)))
    blocks += models_blocks(a)
    return Section("Trajectories", tuple(blocks), id="trajectories")


def models_blocks(a: PlannedAnalysis) -> list:
    """The working models with their covariance structure, variance components and estimand."""
    res = a.result
    rm = repeated_meta(res)
    models = res.models
    if "analysis" in models:
        models = models[models.analysis.astype(str).str.startswith("overall")]
    extra = (res.meta or {}).get("models") or {}
    rows = []
    for r in models.itertuples():
        if r.model.startswith("lmm"):
            info = extra.get(r.model, {})
            cov = np.asarray(info.get("cov_re", [[np.nan]]), dtype=float)
            names = info.get("re_names", ["Intercept"])
            comps = "; ".join(f"SD({n}) {np.sqrt(cov[i, i]):.3g}" for i, n in enumerate(names))
            if cov.shape[0] == 2:
                comps += f"; corr {cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1]):.2f}"
            what = ("linear mixed model, random intercept" + (
                f" and slope in {rm['time']}" if rm["random"] == "slope" else "")
                + f" per {rm['group']}, {rm['method'].upper()}")
            var = "model-based (GLS at the estimated variance components)"
            comps += f"; residual SD {np.sqrt(info.get('scale', np.nan)):.3g}"
        else:
            what = f"GEE, {rm.get('correlation', 'exchangeable')} working correlation"
            var = f"robust (sandwich), clustered on {rm['group']}"
            comps = r.note.split(";")[0]
        rows.append({"Model": r.model, "Working model": what, "Variance": var,
                     "Covariance parameters": comps,
                     "Converged": "yes" if bool(r.converged) else "no"})
    blocks: list = [Table(pd.DataFrame(rows), "Repeated-measures working models (primary "
                          "analysis)", name="repeated-models", notes=(
        f"Estimand: the treatment {effect_words(res)}, from a model linear in {rm['time']}: "
        + ("x(1, s+1) − x(0, s+1) − x(1, s) + x(0, s) of each patient's design row, averaged "
           "over the patients of the subgroup (standardized)" if rm["estimand"] == "slope"
           else f"x(1, {rm['landmark']:g}) − x(0, {rm['landmark']:g}) of each patient's design "
           "row, averaged over the patients of the subgroup (standardized)")
        + "; continuous modifiers at stated values with the other covariates at the reference "
        "profile. The first model listed is primary; the others are sensitivity analyses. "
        "z-based intervals and Wald tests.",))]
    return blocks



def methods_paras(a: PlannedAnalysis) -> list:
    """The Methods text of a repeated-measures analysis."""
    res = a.result
    rm = repeated_meta(res)
    models = ", ".join(rm.get("models") or [])
    lmm = ("linear mixed model with a random intercept"
           + (f" and a random slope in {rm['time']}" if rm["random"] == "slope" else "")
           + f" per {rm['group']} (unstructured 2 × 2 covariance of the random effects when "
           f"both), fitted by {rm['method'].upper()} (statsmodels MixedLM); fixed-effect "
           "covariance (Σ X'V⁻¹X)⁻¹ at the estimated variance components, as lme4")
    gee = (f"generalized estimating equations (Gaussian, identity link, "
           f"{rm.get('correlation', 'exchangeable')} working correlation within {rm['group']}) "
           "with the robust (sandwich) covariance, as geepack::geeglm")
    parts = [p for m, p in (("lmm", lmm), ("gee", gee)) if m in (rm.get("models") or [])]
    return [
        Para(f"Working models ({models}; the first is primary): " + "; ".join(parts) + ". "
             f"Time ({rm['time']}) enters linearly; every row with the outcome and covariates "
             "observed is used, so patients with fewer visits contribute what they have "
             "(valid under missing at random given the model; the mixed model, not the GEE, "
             "keeps that validity when dropout depends on earlier measurements)."),
        Para(f"Estimand: the treatment {effect_words(res)}. Subgroup effects of categorical "
             "modifiers are standardized: the contrast of each patient's design rows under "
             "treatment and control averaged over the patients of the level; continuous "
             "modifiers are evaluated at stated values with the other covariates at the "
             "reference profile; the overall effect is the primary analysis averaged over all "
             f"patients. Interaction tests: Wald tests of all {interaction_words(res)} "
             "coefficients (z, chi-square, large-sample), equality of the level effects, and "
             "interaction effects (difference of each level's effect from the reference level, "
             f"or per unit of a linear continuous modifier); multiplicity: {res.multiplicity} "
             "across pre-specified modifiers, post hoc modifiers in a separate family."),
    ]
