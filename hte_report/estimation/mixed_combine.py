"""Rows of :func:`~hte_report.estimation.mixed.fit_mixed` gathered into one result: the
analyses (primary, one per modifier or joint) tagged and combined, the working-model rows, the
analyses table and the fitted mean trajectories by arm."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hte_report.core.inference import adjust_pvalues
from hte_report.data.levels import _sort_key
from hte_report.estimation.interaction_effects import COLUMNS as IE_COLUMNS
from hte_report.models.glm import FittedModel
from hte_report.results.result import HTEResult, provenance

COLUMNS = ["analysis", "comparison", "modifier", "level", "order", "value", "scale", "model",
           "method", "mu_treated", "mu_control", "estimate", "std_error", "conf_low",
           "conf_high", "statistic", "p_value", "n", "n_treated", "n_control", "events_treated",
           "events_control", "n_obs", "note"]

def scale_of(estimand: str) -> str:
    """Slope estimand: 'SlopeDiff' (difference in slopes per unit of time); landmark: 'MD'."""
    return "SlopeDiff" if estimand == "slope" else "MD"


def trajectories(fit, fm: FittedModel, o: dict) -> list[dict]:
    """Fitted mean outcome by arm on a grid of times, averaged over the analysed patients
    (overall, or of each level of a categorical modifier), with delta-method SEs."""
    treatment, time = o["treatment"], o["time"]
    d, base = fit.design, fit.base
    t = fit.prep.frame[time].to_numpy(dtype=float)
    grid = np.linspace(t.min(), t.max(), 25)
    n = len(base)
    groups = [("", "", np.ones(n, dtype=bool))] if not d.modifiers else [
        (m.name, str(v), (base[m.name] == v).to_numpy())
        for m in d.modifiers if m.kind == "categorical"
        for v in sorted(pd.unique(base[m.name]), key=_sort_key)]
    if not groups:
        return []
    # each panel's curve stops at the last visit of its own patients (no extrapolation)
    frame = fit.prep.frame
    last = frame.groupby(o["group"], sort=False)[time].max()
    last = last.reindex(base[o["group"]]).to_numpy(dtype=float)
    rows = []
    for arm in (0, 1):
        big = pd.concat([base] * len(grid), ignore_index=True)
        big[treatment] = arm
        big[time] = np.repeat(grid, n)
        X = d.materialize(big).reshape(len(grid), n, -1)
        for modifier, level, mask in groups:
            a = X[:, mask, :].mean(axis=1)
            mu = a @ fm.params
            se = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", a, fm.vcov, a), 0, None))
            top = float(last[mask].max()) if mask.any() else float("nan")
            for s, m_, e in zip(grid, mu, se):
                if s > top + 1e-12 * max(1.0, abs(top)):
                    continue
                rows.append({"modifier": modifier, "level": level, "model": fm.label,
                             "arm": arm, "time": float(s), "mean": float(m_),
                             "std_error": float(e)})
    return rows


def model_row(fm: FittedModel, o: dict, fit) -> dict:
    group, time = o["group"], o["time"]
    if fm.name.startswith("lmm"):
        re_ = f"(1 | {group})" if o["random"] == "intercept" else f"(1 + {time} | {group})"
        note = (f"random effects {re_}; {o['method'].upper()}; residual variance "
                f"{fm.extra['scale']:.6g}" + (f"; {fm.note}" if fm.note else ""))
    else:
        corr = fm.extra.get("correlation", "exchangeable")
        alpha = fm.extra.get("alpha")
        note = (f"{corr} working correlation"
                + (f" alpha={alpha:.6g}" if alpha is not None and np.isfinite(alpha) else "")
                + f", scale={fm.extra['scale']:.6g}; robust (sandwich) variance clustered on "
                f"{group}")
    return {"model": fm.label, "requested": fm.name.split("-")[0], "family": "gaussian",
            "link": "identity", "variance": fm.variance, "converged": fm.converged, "n": fm.n,
            "n_groups": len(fit.base), "n_params": len(fm.params), "loglik": fm.loglik,
            "fallback_from": "", "note": note}

def _tag(rows: list[dict], analysis: str, columns=None) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    if columns is not None:
        df = df.reindex(columns=[c for c in columns if c not in ("analysis", "comparison")])
    df.insert(0, "analysis", analysis)
    df.insert(0, "comparison", "")
    return df

def combine(formula, parsed, overall, by_mod: dict, strategy, multiplicity, o,
             time_unit, overall_name) -> HTEResult:
    label = "joint" if strategy == "joint" else "one-at-a-time"
    olabel = f"overall-{overall_name}"
    frames = {k: [] for k in ("sub", "curve", "tests", "ie", "traj")}
    models = [_tag(overall.rows["models"], olabel).assign(modifier="")]
    analyses = [_analysis_row(olabel, "", overall, o["group"])]
    profiles = []
    done = set()
    for m, fit in by_mod.items():
        for key in frames:
            rows = [r for r in fit.rows[key] if r.get("modifier") == m]
            if rows:
                frames[key].append(_tag(rows, label))
        if id(fit) not in done:
            done.add(id(fit))
            mods = "" if strategy == "joint" else m
            models.append(_tag(fit.rows["models"], label).assign(modifier=mods))
            analyses.append(_analysis_row(label, mods, fit, o["group"]))
            profiles.append(pd.DataFrame({"variable": list(fit.profile),
                                          "value": [str(v) for v in fit.profile.values()]})
                            .assign(analysis=label, modifier=mods))
    frames["traj"].append(_tag(overall.rows["traj"], olabel))

    def cat(key, columns=None):
        df = pd.concat(frames[key], ignore_index=True) if frames[key] else pd.DataFrame()
        return df.reindex(columns=columns) if columns is not None else df

    tests = adjust_pvalues(cat("tests"), multiplicity)
    ie = cat("ie")
    ie = ie.reindex(columns=["comparison", "analysis"] + IE_COLUMNS) if len(ie) else pd.DataFrame(
        columns=["comparison", "analysis"] + IE_COLUMNS)
    first = overall.fitted[0]
    prov = provenance(overall.parsed, overall.design, overall.prep, overall.profile)
    fits = {id(f): f for f in by_mod.values()}
    kinds = {}
    for f in fits.values():
        kinds.update({m.name: m.kind for m in f.design.modifiers})
    prov.update(modifiers=tuple(m.name for m in parsed.modifiers),
                modifier_kinds={m.name: kinds.get(m.name, "unknown") for m in parsed.modifiers},
                adjustment=tuple(c for c in overall.parsed.adjustment))
    if profiles:
        prov["profile"] = pd.concat(profiles, ignore_index=True)
    unit = time_unit or o["time"]
    est = o["estimand"]
    what = (f"the slope of {parsed.outcome} per {unit}" if est == "slope" else
            f"the mean {parsed.outcome} at {o['time']} = {o['landmark']:g}"
            + (f" {time_unit}" if time_unit else ""))
    notes = (f"Treatment effect on {what} ({o['treatment']}:{o['time']}"
             + (")" if est == "slope" else f" and {o['treatment']} at {o['landmark']:g})")
             + f", by modifier; n counts patients ({o['group']}), n_obs visits.",)
    return HTEResult(
        formula=formula, family="continuous", outcome=parsed.outcome,
        treatment=o["treatment"], multiplicity=multiplicity,
        subgroups=cat("sub", COLUMNS), overall=_tag(overall.rows["overall"], olabel, COLUMNS),
        curves=cat("curve", COLUMNS), interactions=tests,
        additive=pd.DataFrame(columns=["modifier", "measure", "estimate", "std_error",
                                       "conf_low", "conf_high", "model", "reference"]),
        exposure=None, conf_level=o["conf_level"],
        models=pd.concat(models, ignore_index=True), n_analysed=len(overall.prep.frame),
        notes=notes,
        primary_spec={"absolute": [scale_of(est), first.label, {"method": est}]},
        interaction_effects=ie, strategy=strategy, analyses=pd.DataFrame(analyses),
        display_cutpoints={}, overall_analysis=overall_name,
        **prov,
        meta={"repeated": {
            "time": o["time"], "group": o["group"], "estimand": est,
            "landmark": o["landmark"], "time_unit": time_unit, "random": o["random"],
            "method": o["method"], "correlation": o["correlation"],
            "models": list(o["models"]), "n_groups": int(len(overall.base)),
            "n_obs": int(len(overall.prep.frame))},
            "time": o["time"], "group": o["group"], "random": o["random"],
            "method": o["method"], "n_groups": int(len(overall.base)),
            "models": {fm.label: fm.extra for fm in overall.fitted},
            "trajectories": cat("traj").to_dict(orient="list")},
    )

def _analysis_row(analysis, modifier, fit, group) -> dict:
    prep = fit.prep
    detail = ", ".join(f"{r.variable}: {int(r.n_missing)}" for r in prep.exclusions.itertuples()
                       if r.n_missing) if len(prep.exclusions) else ""
    return {"comparison": "", "analysis": analysis, "modifier": modifier, "level": "",
            "formula": fit.formula, "n_input": int(prep.n_input),
            "n_analysed": int(len(prep.frame)), "n_excluded": int(prep.n_excluded),
            "excluded_for": detail, "n_patients": int(len(fit.base))}
