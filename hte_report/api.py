"""The entry point of every analysis from a formula: :func:`fit` sends each outcome to its
family's pipeline (``Surv()`` outcomes to the Cox/RMST analysis, others to the GLM family), so
no family module needs to know another."""

from __future__ import annotations

from collections.abc import Sequence

from hte_report.estimation.strategy import fit_by_strategy
from hte_report.results.result import HTEResult
from hte_report.spec.options import OptionError, checked_arguments


@checked_arguments
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
    strategy: str = "one-at-a-time",
    control: object = None,
    overall: str = "adjusted",
    display_cutpoints: dict[str, Sequence[float]] | None = None,
    ties: str = "efron",
    horizons: Sequence[float] | None = None,
    rmst_tau: float | None = None,
    inference: str | None = None,
    ci_method: str = "wald",
    reri_reference: str = "coded",
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
        Where conditional effects are evaluated: values of continuous modifiers (default: their
        quartiles), or the levels of a categorical modifier (default: every level), e.g.
        ``{"age": [40, 60], "sex": [1]}``. Standardized subgroup effects keep every level.
    multiplicity
        Adjustment of interaction p-values across modifiers, any method of R's ``p.adjust``:
        ``"holm"``, ``"hochberg"``, ``"hommel"``, ``"bonferroni"``, ``"fdr_bh"`` (``"BH"``),
        ``"fdr_by"`` (``"BY"``) or ``"none"``.
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
    strategy
        How subgroup rows are analysed. ``"one-at-a-time"`` (default): each modifier in its own
        model with the treatment, that modifier, their interaction and the formula's adjustment
        covariates (never the other modifiers), on the rows where its variables are observed.
        ``"joint"``: one model with every interaction, mutually adjusted. ``"within-subgroup"``:
        separate fits within each subgroup (a sensitivity view), with the one-at-a-time
        interaction tests and effects beside them. Column ``analysis`` of every frame says which
        analysis produced each row; ``result.analyses`` lists them with rows used and excluded.
    control
        The control arm of a treatment with three or more arms: each active arm is compared
        with it on the patients of the two arms (column ``comparison``). Two arms: as
        ``reference``.
    overall
        The primary analysis shown as the overall row: ``"adjusted"`` (treatment plus the
        formula's adjustment covariates, standardized), ``"unadjusted"`` (treatment only), or
        the list of covariates (formula terms) the primary analysis adjusts for, e.g.
        ``["age", "C(stratum)"]``; on every patient with the outcome (and those covariates)
        observed.
    display_cutpoints
        Display categories of continuous modifiers, e.g. ``{"age": [65]}``: standardized
        effects within < 65 and >= 65 from the modifier's continuous model (default:
        quarters). The modifier stays continuous in every model and test.
    ties, horizons, rmst_tau
        ``Surv()`` outcomes only: see :func:`hte_report.fit_survival`.
    inference
        ``"z"`` (large-sample normal intervals and p-values, chi-square tests) or ``"t"`` (for
        Gaussian linear models, ``ols``: t intervals and p-values and F tests on the residual
        df n - p, as R's ``lm`` with ``lmtest::coeftest`` / ``coefci``, also with a robust
        variance). Likelihood models of binary and count outcomes and Cox models use z.
        Default (``None``): per family, :data:`hte_report.spec.options.DEFAULT_INFERENCE`.
        Every row says which was used (columns ``inference``, ``df``; tests ``distribution``,
        ``df_denominator``).
    ci_method
        ``"wald"`` (default) or ``"profile"``: profile-likelihood intervals (R's
        ``confint(glm)``) for what is a linear combination of a likelihood model's
        coefficients (logit, log-binomial, Poisson with model-based variance): the
        coefficient table, conditional ORs/RRs and per-unit interaction effects; other rows
        keep Wald intervals (column ``ci_method``).
    reri_reference
        Reference stratum of RERI, AP, SI and the joint-exposure ratios of binary modifiers:
        ``"coded"`` (treatment = 0 at the modifier's first level) or ``"lowest-risk"`` (the
        stratum with the lowest predicted risk, preventive exposures recoded as Knol et al.
        2011 recommend; column ``reference`` and the note name it).

    Examples
    --------
    >>> import hte_report as hr
    >>> from hte_report.datasets import load_rossi
    >>> res = hr.fit("arrest ~ fin * (age + C(wexp))", load_rossi(), treatment="fin")
    >>> sorted(res.overall.scale.unique())
    ['OR', 'RD', 'RR']
    """
    survival = isinstance(formula, str) and formula.split("~")[0].strip().startswith("Surv(")
    if survival:
        given = {k for k, v in (("family", family), ("models", models), ("exposure", exposure))
                 if v is not None} | ({"inference"} if inference not in (None, "z") else set())
        given |= {"ci_method"} if ci_method != "wald" else set()
        given |= {"reri_reference"} if reri_reference != "coded" else set()
        if given:
            raise OptionError(f"{sorted(given)} do not apply to a Surv() outcome; its options "
                              "are ties, horizons, rmst_tau and variance.")
        engine = dict(ties=ties, horizons=horizons, rmst_tau=rmst_tau,
                      variance="model" if variance is None else variance)
    else:
        given = {k for k, v in (("ties", ties != "efron"), ("horizons", horizons is not None),
                                ("rmst_tau", rmst_tau is not None)) if v}
        if given:
            raise OptionError(f"{sorted(given)} apply only to a Surv(time, event) outcome; "
                              "remove them, or write the outcome as Surv(time, event).")
        engine = dict(family=family, models=models, variance=variance, exposure=exposure,
                      path=path, aggregate=aggregate, inference=inference,
                      ci_method=ci_method, reri_reference=reri_reference)
    return fit_by_strategy(formula, data, strategy=strategy, treatment=treatment,
                           reference=reference, control=control, overall=overall,
                           display_cutpoints=display_cutpoints, at=at, multiplicity=multiplicity,
                           safe_formula=safe_formula, conf_level=conf_level, **engine)
