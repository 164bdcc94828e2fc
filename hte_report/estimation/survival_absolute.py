"""The absolute scales of a time-to-event analysis: standardized survival differences at
fixed horizons (from the Cox model and its baseline hazard) and Kaplan–Meier RMST differences,
with their equality tests."""

from __future__ import annotations

import numpy as np

from hte_report.estimation.contrasts import (
    Contrast,
    contrast,
    equality_test,
    interval,
    weights_for,
)
from hte_report.estimation.profiles import OVERALL
from hte_report.estimation.survival_rows import KM_MODEL, Ctx, row, test_row
from hte_report.models.survival import rmst, survival_at, survival_design


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
        rows.append(row(base, res, i, ctx.counts[key], notes[i]))
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
        rows.append(test_row(m.name, scale, "equality", stat, df, p, model, method,
                              "not estimable: " + bad.split(": ", 1)[-1] if bad else "", horizon))
    return rows


def survival_differences(ctx: Ctx, h: float, ph: dict):
    """Standardized survival difference at horizon h over all rows and each subgroup."""
    model = survival_at(ctx.cox, h, ctx.n_strata)
    d = ctx.design
    Z1 = survival_design(d.X1, ctx.cox.center, ctx.strata, ctx.n_strata, ctx.keep)
    Z0 = survival_design(d.X0, ctx.cox.center, ctx.strata, ctx.n_strata, ctx.keep)
    keys = [None] + list(ctx.subs)
    W = weights_for([np.ones(len(ctx.t), dtype=bool)] + [s.rows for s in ctx.subs])
    c = contrast(model, Z1, Z0, W, "difference")
    late = ctx.beyond.get(("horizons", h), {})
    notes = [""] + [f"not estimable: {ctx.sparse[(s.modifier, s.level)]}"
                    if (s.modifier, s.level) in ctx.sparse else
                    f"not estimable: {late[(s.modifier, s.level)]}"
                    if (s.modifier, s.level) in late else "" for s in ctx.subs]
    rows = _absolute_rows(ctx, c, keys, "SurvDiff", ctx.fm.label, "standardized", h, ph, notes)
    tests = _equality_rows(ctx, c, keys, "SurvDiff", ctx.fm.label, "standardized-equality", h,
                           notes)
    return rows[1:], rows[:1], tests, c


def conditional_survival_differences(ctx: Ctx, h: float, designs: dict) -> list[dict]:
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
            rows.append(row(base, res, i, {}, ""))
    return rows


def rmst_differences(ctx: Ctx, tau: float, ph: dict):
    """RMST difference up to tau from Kaplan–Meier curves per arm within each subgroup."""
    keys = [None] + list(ctx.subs)
    order = np.argsort(ctx.time, kind="stable")  # sorted once: each arm's KM needs no sort
    time, event, t = ctx.time[order], ctx.event[order], ctx.t[order]
    masks = [np.ones(len(ctx.t), dtype=bool)] + [s.rows[order] for s in ctx.subs]
    est, var, mu1, mu0, notes = [], [], [], [], []
    for key, rows in zip(keys, masks):
        arms = []
        for arm in (1, 0):
            m = rows & (t == arm)
            arms.append(rmst(time[m], event[m], tau, presorted=True))
        (m1, v1), (m0, v0) = arms
        est.append(m1 - m0)
        var.append(v1 + v0)
        mu1.append(m1)
        mu0.append(m0)
        sk = None if key is None else (key.modifier, key.level)
        late = ctx.beyond.get(("rmst_tau", tau), {})
        if sk in ctx.sparse:
            notes.append(f"not estimable: {ctx.sparse[sk]}")
        elif sk in late:
            notes.append(f"not estimable: {late[sk]}")
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
