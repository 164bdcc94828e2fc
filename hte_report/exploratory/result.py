"""The result of :func:`hte_report.explore`: a frozen record of tidy frames, labelled
exploratory."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

__all__ = ["ExploreResult"]

EXPLORATORY_NOTE = ("Exploratory, hypothesis-generating analysis (causal forest): its own "
                    "multiplicity family, not adjusted with the pre-specified tests. Never promote "
                    "a forest-found subgroup to a confirmatory claim.")


@dataclass(frozen=True, eq=False)
class ExploreResult:
    """An honest, orthogonalized causal forest and its cross-fitted calibration (exploratory).

    Frames (every one carries ``label = "exploratory"``)
    ------
    cate
        One row per analysed patient (``row`` = index label in the input data): ``cate`` (the
        out-of-bag forest prediction, from trees that never saw the patient; used by the
        calibration test and the best linear projection, as grf), ``cate_crossfit`` and
        ``fold`` (the CATE from a forest grown without the patient's fold: the priorities of
        GATES, RATE and TOC), ``cate_fit``, ``std_error``, ``conf_low``, ``conf_high`` (the whole
        forest's prediction with its bootstrap-of-little-bags variance, as EconML's
        ``effect_interval``), ``y_hat`` and ``w_hat`` (cross-fitted nuisance predictions) and
        ``dr_score`` (doubly robust score); for binary outcomes also ``risk_control``,
        ``risk_treated`` and ``rr_implied`` (see ``notes``).
    calibration
        grf's ``test_calibration``: ``mean.forest.prediction`` and
        ``differential.forest.prediction`` (HC3, one-sided p).
    gates, gates_tests
        Sorted group average treatment effects by quantile of ``cate_crossfit`` (within
        folds) and the tests of equal
        GATES and of top minus bottom.
    blp
        Best linear projection of the CATE on the pre-specified modifiers (DR scores, HC3).
    ate
        The AIPW average treatment effect (mean of the DR scores).
    rate, toc
        RATE (AUTOC, Qini) of the forest's priorities with bootstrap SEs; the TOC curve.
    importance
        Split-frequency variable importance (grf's definition: depth-weighted, max depth 4,
        decay exponent 2), per model column (``column``) and summed per covariate.
    subgroups
        CATE by pre-specified subgroup: mean, quartiles of ``cate`` and the AIPW subgroup
        effect (mean DR score, its SE and normal CI).
    membership
        ``row`` and, per pre-specified modifier, the display subgroup of each patient (its
        level, or below / at or above the median for a modifier with more than six values).
    """

    label: str
    method: str
    outcome: str
    treatment: str
    family: str
    design: str
    propensity: str
    covariates: tuple[str, ...]
    modifiers: tuple[str, ...]
    n: int
    n_excluded: int
    seed: int
    settings: dict
    versions: dict
    conf_level: float
    alpha: float
    verdict: str
    cate: pd.DataFrame
    calibration: pd.DataFrame
    gates: pd.DataFrame
    gates_tests: pd.DataFrame
    blp: pd.DataFrame
    ate: pd.DataFrame
    rate: pd.DataFrame
    toc: pd.DataFrame
    importance: pd.DataFrame
    subgroups: pd.DataFrame
    membership: pd.DataFrame
    notes: tuple[str, ...] = field(default=())

    @property
    def heterogeneity_detected(self) -> bool:
        """Whether the differential forest prediction test rejects at ``alpha`` (one-sided)."""
        row = self.calibration.set_index("term").loc["differential.forest.prediction"]
        return bool(row["p_value"] < self.alpha)

    def summary(self) -> str:
        """A plain-text summary, labelled exploratory."""
        from hte_report.core.format import fmt_p

        cal = self.calibration.set_index("term")
        lines = [f"EXPLORATORY causal forest ({self.method}): {self.outcome} by {self.treatment}, "
                 f"n = {self.n} ({self.n_excluded} excluded), design {self.design} "
                 f"(propensity: {self.propensity}), seed {self.seed}",
                 f"  {self.verdict}"]
        for term in cal.index:
            r = cal.loc[term]
            lines.append(f"  {term}: {r['estimate']:.3f} (SE {r['std_error']:.3f}, one-sided "
                         f"p {fmt_p(r['p_value'])})")
        ate = self.ate.iloc[0]
        lines.append(f"  AIPW ATE {ate['estimate']:.4g} [{ate['conf_low']:.4g}, "
                     f"{ate['conf_high']:.4g}]")
        for _, r in self.rate.iterrows():
            lines.append(f"  RATE {r['metric']}: {r['estimate']:.4g} (bootstrap SE "
                         f"{r['std_error']:.3g}, p {fmt_p(r['p_value'])})")
        lines.append("  " + EXPLORATORY_NOTE)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"ExploreResult(label='exploratory', outcome={self.outcome!r}, "
                f"treatment={self.treatment!r}, n={self.n}, seed={self.seed})")
