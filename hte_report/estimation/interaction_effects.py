"""Interaction effects with confidence intervals: how much the treatment effect changes between
the levels of a modifier (difference of risk differences, ratio of risk/odds/hazard ratios), or
per unit of a continuous modifier — the numbers EMA (2019), the NEJM (2007) and CONSORT 2025 ask
for beside the interaction p-value.

Categorical modifiers: each level against the modifier's reference (first) level, from the
effects of one model with their joint covariance (so the contrast accounts for the shared
coefficients). Continuous modifiers entered linearly: the interaction coefficient, the change of
the effect on the model's native scale per unit of the modifier. Splines and other transforms
have no single per-unit change; they get no row here (their curve shows the change)."""

from __future__ import annotations

import numpy as np

from hte_report.estimation.contrasts import Contrast, critical_value, two_sided_p

#: Columns of ``HTEResult.interaction_effects``.
COLUMNS = ["modifier", "level", "reference", "scale", "estimate", "std_error", "conf_low",
           "conf_high", "statistic", "p_value", "model", "method", "note", "inference", "df"]

#: Scale of an interaction effect, from the scale of the effects it compares.
RATIO_OF = {"RR": "ratio of RRs", "OR": "ratio of ORs", "HR": "ratio of HRs",
            "RateRatio": "ratio of rate ratios", "MeanRatio": "ratio of mean ratios"}
DIFFERENCE_OF = {"RD": "difference of RDs", "MD": "difference of MDs",
                 "SlopeDiff": "difference of slope differences",
                 "RateDiff": "difference of rate differences",
                 "SurvDiff": "difference of survival differences",
                 "RMSTDiff": "difference of RMST differences"}


def interaction_scale(scale: str) -> str:
    return RATIO_OF.get(scale) or DIFFERENCE_OF.get(scale) or f"contrast of {scale}"


def _interval(theta, se, ratio: bool, conf_level: float, df: float | None = None) -> dict:
    z = critical_value(conf_level, df)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lo, hi, stat = theta - z * se, theta + z * se, theta / se
        est = np.exp(theta) if ratio else theta
        if ratio:
            lo, hi = np.exp(lo), np.exp(hi)
    return {"estimate": est, "std_error": se, "conf_low": lo, "conf_high": hi,
            "statistic": stat, "p_value": two_sided_p(stat, df)}


def versus_reference(c: Contrast, idx: list[int], levels: list[str], *, modifier: str,
                     scale: str, model: str, method: str, conf_level: float,
                     notes: list[str] | None = None, extra: dict | None = None) -> list[dict]:
    """Rows for levels ``levels[1:]`` against ``levels[0]``: differences of the contrasts
    ``c.theta[idx]`` (log scale for ratios), with the variance from their joint covariance."""
    theta = c.theta[idx]
    V = c.cov[np.ix_(idx, idx)]
    d = theta[1:] - theta[0]
    with np.errstate(invalid="ignore"):
        var = np.diag(V)[1:] + V[0, 0] - 2 * V[0, 1:]
        se = np.sqrt(np.clip(var, 0, None))
    return _rows(d, se, levels, c.kind != "difference", modifier=modifier, scale=scale,
                 model=model, method=method, conf_level=conf_level, notes=notes, extra=extra,
                 df=c.df)


def pairwise(c: Contrast, idx: list[int], levels: list[str], *, notes: list[str] | None = None,
             **kw) -> list[dict]:
    """Every pair of levels (later against earlier, in the levels' order): the difference of
    the two subgroup effects (ratio for ratio scales) with its CI, from their joint
    covariance. The pairs with the first level are the rows of :func:`versus_reference`."""
    rows = []
    for a in range(len(idx) - 1):
        rows += versus_reference(c, idx[a:], levels[a:],
                                 notes=None if notes is None else notes[a:], **kw)
    return rows


def independent(theta: np.ndarray, se: np.ndarray, levels: list[str], *, ratio: bool,
                **kw) -> list[dict]:
    """As :func:`versus_reference` for effects estimated on disjoint sets of patients (e.g.
    Kaplan-Meier RMST within each subgroup): the variances add."""
    theta, se = np.asarray(theta, float), np.asarray(se, float)
    d = theta[1:] - theta[0]
    return _rows(d, np.sqrt(se[1:] ** 2 + se[0] ** 2), levels, ratio, **kw)


def per_unit(theta: float, se: float, *, modifier: str, scale: str, model: str,
             conf_level: float, note: str = "", extra: dict | None = None,
             df: float | None = None) -> list[dict]:
    """The interaction coefficient of a linear continuous modifier (native scale of the model:
    log ratio for log/logit/Cox links; t inference with ``df`` residual df)."""
    ratio = scale in RATIO_OF
    return _rows(np.array([theta]), np.array([se]), ["", "per unit"], ratio, modifier=modifier,
                 scale=scale, model=model, method="coefficient", conf_level=conf_level,
                 notes=["", note], extra=extra, reference="", df=df)


def _rows(d, se, levels, ratio, *, modifier, scale, model, method, conf_level, notes=None,
          extra=None, reference=None, df=None) -> list[dict]:
    res = _interval(d, se, ratio, conf_level, df)
    notes = notes or [""] * len(levels)
    rows = []
    for i, level in enumerate(levels[1:]):
        note = notes[i + 1] or notes[0]
        row = {"modifier": modifier, "level": str(level),
               "reference": str(levels[0]) if reference is None else reference,
               "scale": interaction_scale(scale)}
        for k in ("estimate", "std_error", "conf_low", "conf_high", "statistic", "p_value"):
            row[k] = float(res[k][i]) if not note else np.nan
        row.update({"model": model, "method": method, "note": note,
                    "inference": "z" if df is None else "t",
                    "df": np.nan if df is None else float(df), **(extra or {})})
        rows.append(row)
    return rows


def linear_column(modifier, idx: np.ndarray) -> bool:
    """True when a continuous modifier enters as the plain column (one interaction column), so
    its interaction coefficient is a change per unit."""
    plain = modifier.expr in (modifier.name, f"`{modifier.name}`")
    return plain and len(idx) == 1
