"""The report's closing sections: methods (models, variance, every heterogeneity test, the
seed, software versions) and the appendix holding the analysis plan as locked."""

from __future__ import annotations

import platform
from importlib import metadata

import numpy as np
import pandas as pd
import yaml

from hte_report._version import __version__
from hte_report.analysis import PlannedAnalysis
from hte_report.core.format import fmt_p
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
    models = res.models.copy()
    mt = pd.DataFrame({
        "Model": models.model, "Requested": models.requested, "Family": models.family,
        "Link": models.link, "Variance": models.variance,
        "Converged": models.converged.map({True: "yes", False: "no"}),
        "Note": models.note.fillna(""),
    })
    ver = versions()
    vt = pd.DataFrame({"Software": list(ver), "Version": list(ver.values())})
    seed = plan.seed
    blocks = [
        Para(f"Model formula: {res.formula}. Treatment {res.treatment} "
             f"({res.treatment_labels[1]} vs {res.treatment_labels[0]}). Effect modifiers: "
             f"{', '.join(res.modifiers)}; adjustment covariates: "
             f"{', '.join(res.adjustment) or 'none'}."),
        Para("Absolute-scale effects come from identity-link working models, relative-scale "
             "effects from log-link models (modified Poisson with robust variance, Zou 2004) or "
             "logit models (odds ratios). Subgroup and overall effects are standardized "
             "(g-computation): predictions with treatment set to 1 and 0 averaged over the "
             "subgroup's rows and contrasted; delta-method standard errors treat the covariate "
             "distribution as fixed (sample-average effects). Conditional effects are evaluated "
             "at the reference profile. Inference is large-sample (z, chi-square). "
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
        Table(mt, "Working models", name="models"),
        Table(_all_tests(res), "All heterogeneity tests (every model, scale and test; "
              "sensitivity analyses)", group="Modifier", gt=interaction_table(res),
              notes=("equality: Wald test that the standardized subgroup effects are equal, on "
                     "the scale named; the RD and RR rows of one model test different nulls "
                     "and can differ. Logit-model tests are on the odds-ratio scale.",),
              name="all-tests"),
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
    text = yaml.safe_dump(plan.raw, sort_keys=False, allow_unicode=True, width=90)
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
