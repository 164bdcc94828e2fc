"""The entry point of every analysis from a formula: :func:`fit` sends each outcome to its
family's pipeline (``Surv()`` outcomes to the Cox/RMST analysis, others to the GLM family), so
no family module needs to know another."""

from __future__ import annotations

from collections.abc import Sequence

from hte_report.estimation import glm
from hte_report.estimation.survival import fit_survival
from hte_report.results.result import HTEResult


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
) -> HTEResult:
    """Fit treatment-by-covariate interaction models on the absolute and relative scales.

    Parameters
    ----------
    formula
        R-style formula, e.g. ``"death ~ treat * (age + C(diabetes)) + site"``. Variables crossed
        with the treatment are effect modifiers; other terms are adjustment covariates. A
        ``Surv(time, event) ~ ...`` outcome is passed to :func:`hte_report.fit_survival` (Cox
        hazard ratios and RMST differences; use it directly for horizons and ties).
    data
        pandas/polars DataFrame or a path to a CSV/Parquet/SAS/Stata file.
    treatment
        Treatment column; inferred when exactly one variable appears in every interaction.
    reference
        The control level of a two-level treatment that is not 0/1 or bool.
    family
        ``"continuous"``, ``"binary"`` or ``"count"``; inferred from the outcome when omitted
        (0/1 → binary; with ``exposure`` → count; otherwise continuous).
    models
        Working models to fit. Defaults: continuous ``("ols",)``; binary ``("ols",
        "modified-poisson", "logit")``; count ``("identity-poisson", "poisson")``. Also available:
        ``"identity-binomial"`` and ``"log-binomial"`` (recorded fallback to OLS / modified
        Poisson when they do not converge).
    variance
        ``"model"``, ``"HC0"``..``"HC3"`` or ``Cluster("site")`` for every model; default per
        model: HC3 for OLS, HC0 for Poisson working models, model-based otherwise.
    exposure
        Person-time column for counts (rates per unit of exposure; log offset / scaled design).
    conf_level
        Confidence level of every interval.
    at
        Values of continuous modifiers for conditional effects (default: their quartiles).
    multiplicity
        Adjustment of interaction p-values across modifiers: ``"holm"``, ``"hochberg"``,
        ``"bonferroni"``, ``"fdr_bh"`` or ``"none"``.
    safe_formula
        Refuse formula terms that would run arbitrary code (on for formulas from files).
    path
        How models are fitted: ``"auto"`` (compressed cells for all-categorical designs,
        blocked IRLS for n >= 50,000, statsmodels otherwise), or force ``"statsmodels"``,
        ``"irls"`` or ``"compressed"``. Every path returns the same numbers; the one used is
        recorded in ``result.models.path``.
    aggregate
        Fit on cells of identical patients: ``None`` (default) does so automatically for
        all-categorical designs from 20,000 rows; results are identical either way.

    Examples
    --------
    >>> import hte_report as hr
    >>> from hte_report.datasets import load_rossi
    >>> res = hr.fit("arrest ~ fin * (age + C(wexp))", load_rossi(), treatment="fin")
    >>> sorted(res.overall.scale.unique())
    ['OR', 'RD', 'RR']
    """
    if isinstance(formula, str) and formula.split("~")[0].strip().startswith("Surv("):
        given = {k for k, v in (("family", family), ("models", models), ("exposure", exposure))
                 if v is not None}
        if given:
            raise TypeError(f"{sorted(given)} do not apply to a Surv() outcome; use "
                            "hte_report.fit_survival for its options (ties, horizons, rmst_tau).")
        return fit_survival(formula, data, treatment=treatment, reference=reference,
                            variance="model" if variance is None else variance,
                            conf_level=conf_level, multiplicity=multiplicity, at=at,
                            safe_formula=safe_formula)
    return glm.fit(formula, data, treatment=treatment, reference=reference, family=family,
                   models=models, variance=variance, exposure=exposure, conf_level=conf_level,
                   at=at, multiplicity=multiplicity, safe_formula=safe_formula, path=path,
                   aggregate=aggregate)
