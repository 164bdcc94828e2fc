"""Multiplicity adjustment and the Gail-Simon test of qualitative interaction."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

#: Multiplicity methods (R's ``p.adjust`` names and our ``fdr_*`` spellings) -> statsmodels'
#: multipletests methods. Every method of R's ``p.adjust`` is here.
_METHODS = {"holm": "holm", "hochberg": "simes-hochberg", "hommel": "hommel",
            "bonferroni": "bonferroni", "BH": "fdr_bh", "fdr_bh": "fdr_bh", "fdr": "fdr_bh",
            "BY": "fdr_by", "fdr_by": "fdr_by"}

#: Every allowed value of ``multiplicity=`` (``"none"``: unadjusted).
MULTIPLICITY_METHODS = ("holm", "hochberg", "hommel", "bonferroni", "fdr_bh", "BH", "fdr",
                        "fdr_by", "BY", "none")


class UnknownMethodError(ValueError):
    """A multiplicity method outside :data:`MULTIPLICITY_METHODS`. (The entry points check the
    option first and raise ``hte_report.spec.options.OptionError``; this foundation module
    cannot import the package's exception tree.)"""


def _multipletests(p: np.ndarray, method: str) -> np.ndarray:
    """statsmodels' Holm branch calls gc.collect() on every call (tens of ms in a process with
    large arrays); the adjusted values do not depend on it, so it is skipped here."""
    import gc

    saved = gc.collect
    gc.collect = lambda *_a, **_k: 0  # type: ignore[assignment]
    try:
        return multipletests(p, method=method)[1]
    finally:
        gc.collect = saved  # type: ignore[assignment]


def adjust_pvalues(tests: pd.DataFrame, method: str) -> pd.DataFrame:
    """Add ``p_adjusted``: p-values adjusted across modifiers within each (model, scale, test).

    The family is the set of modifiers tested with the same model, test and scale, so the
    correction reflects the number of modifiers examined (ICEMAN question 4). ``method``: any
    of :data:`MULTIPLICITY_METHODS` (the methods of R's ``p.adjust``); another value raises
    :class:`UnknownMethodError` (a ``ValueError``) naming the choices, never a KeyError.
    """
    if not isinstance(method, str) or method not in MULTIPLICITY_METHODS:
        raise UnknownMethodError(
            f"multiplicity={method!r} is not a multiplicity adjustment; expected one of "
            f"{', '.join(repr(m) for m in MULTIPLICITY_METHODS)}.")
    out = tests.copy()
    out["p_adjusted"] = np.nan
    out["p_adjust_method"] = method
    if method == "none" or out.empty:
        out["p_adjusted"] = out["p_value"] if "p_value" in out else np.nan
        return out
    for _, idx in out.groupby(["model", "scale", "test"]).groups.items():
        p = out.loc[idx, "p_value"].to_numpy(float)
        ok = np.isfinite(p)
        if ok.sum() == 0:
            continue
        adj = np.full_like(p, np.nan)
        adj[ok] = _multipletests(p[ok], _METHODS[method])
        out.loc[idx, "p_adjusted"] = adj
    return out


def familywise_error(alpha: float, k: int) -> float:
    """Chance of at least one false positive among k independent tests at level alpha."""
    return 1.0 - (1.0 - alpha) ** k


def gail_simon(estimates: np.ndarray, std_errors: np.ndarray) -> tuple[float, float, float, float]:
    """Gail & Simon (1985) likelihood-ratio test of qualitative (crossover) interaction.

    ``estimates`` are subgroup effects on a scale where 0 is no effect (differences, or log
    ratios). Returns ``(Q_minus, Q_plus, Q, p_value)`` with ``Q = min(Q-, Q+)`` and the p-value
    from its least-favourable null distribution (large-sample, a mixture of chi-squares):
    ``P(Q >= q) = sum_{h=1}^{I-1} Binom(h; I-1, 1/2) * P(chi2_h >= q)`` for q > 0; 1 at q = 0.
    """
    d = np.asarray(estimates, float)
    s = np.asarray(std_errors, float)
    z2 = (d / s) ** 2
    q_minus = float(np.sum(z2 * (d > 0)))
    q_plus = float(np.sum(z2 * (d < 0)))
    q = min(q_minus, q_plus)
    k = len(d)
    if q <= 0.0:  # every effect on one side: no evidence of a crossover
        return q_minus, q_plus, q, 1.0
    p = 0.0
    for h in range(1, k):
        p += stats.binom.pmf(h, k - 1, 0.5) * stats.chi2.sf(q, h)
    return q_minus, q_plus, q, float(p)


def qualitative_interaction(result) -> pd.DataFrame:
    """Gail-Simon test for every categorical modifier on each primary scale.

    Reads the standardized subgroup estimates of the tidy frame (ratios on the log scale).
    """
    rows = []
    for axis, (scale, model) in result.primary.items():
        eff = result.effects(axis)
        for mod in result.modifiers:
            if result.modifier_kinds.get(mod) != "categorical":
                continue
            g = eff[eff.modifier == mod]
            est = g.estimate.to_numpy(float)
            se = g.std_error.to_numpy(float)
            if len(g) < 2 or not np.all(np.isfinite(est)) or not np.all(se > 0):
                rows.append({"modifier": mod, "scale": scale, "model": model,
                             "n_subgroups": len(g), "q_minus": np.nan, "q_plus": np.nan,
                             "statistic": np.nan, "p_value": np.nan,
                             "note": "not estimable in every subgroup"})
                continue
            theta = np.log(est) if g.method.iloc[0] and _is_ratio(scale) else est
            qm, qp, q, p = gail_simon(theta, se)
            rows.append({"modifier": mod, "scale": scale, "model": model,
                         "n_subgroups": len(g), "q_minus": qm, "q_plus": qp, "statistic": q,
                         "p_value": p, "note": ""})
    return pd.DataFrame(rows, columns=["modifier", "scale", "model", "n_subgroups", "q_minus",
                                       "q_plus", "statistic", "p_value", "note"])


def _is_ratio(scale: str) -> bool:
    return scale in ("RR", "OR", "RateRatio", "HR", "MeanRatio")
