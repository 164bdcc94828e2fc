"""From a formula and data to a design ready to fit: parse, validate, prepare (exclusions
counted), aggregate all-categorical data to cells when worthwhile, build the design. Shared by
:func:`~hte_report.fitting.fit`, the bootstrap and the risk-based tools."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hte_report.data.cells import aggregate as aggregate_cells
from hte_report.data.prepare import prepare, read_data, remembered_last
from hte_report.design.build import Design, build_design, categorical_columns
from hte_report.errors import DataError, MissingDataWarning, ModelWarning
from hte_report.spec.formula import parse_formula
from hte_report.spec.options import Cluster, OptionError, check_family, check_models, check_variance


@dataclass(frozen=True)
class Setup:
    """Everything fit() needs before fitting: parsed formula, prepared data, design."""

    parsed: object
    prep: object
    design: Design
    family: str
    model_names: tuple[str, ...]
    var_opt: object
    y: np.ndarray
    expo: np.ndarray | None
    groups: np.ndarray | None
    cluster: str | None
    cells: object = None  # CellStats when rows of the design are cells of identical patients
    #: what the analyses sharing this setup (see :func:`setup`) derive from it once, e.g. the
    #: fitted working models of the joint model that the joint heterogeneity test reuses
    memo: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def freq(self) -> np.ndarray | None:
        return None if self.cells is None else self.cells.cnt


#: Aggregate automatically from this many rows when the design is all-categorical.
AGGREGATE_MIN_ROWS = 20_000


def setup(formula, data, *, treatment=None, reference=None, family=None, models=None,
          variance=None, exposure=None, safe_formula=False, extra_columns=(),
          aggregate: bool | None = False, modifiers_required: bool = True) -> Setup:
    """Parse, validate, prepare (exclusions counted) and build the design.

    ``aggregate``: fit on cells of identical patients (all-categorical designs without
    exposure): exact, and the design is built on the cells, not on every row. ``None`` decides
    automatically (from :data:`AGGREGATE_MIN_ROWS` rows).

    Within :func:`hte_report.data.prepare.same_data` (one strategy call), the same formula,
    data frame and options as the previous call give the same :class:`Setup` object (only the
    last is kept): the joint model and the joint heterogeneity test that follows it share it,
    and its ``memo``. Its warnings are then given once.
    """
    key = ("setup", formula, treatment, repr(reference), family,
           None if models is None else repr(models), repr(variance), exposure, safe_formula,
           tuple(extra_columns), aggregate, modifiers_required)
    return remembered_last("setup", key, data, lambda: _setup(
        formula, data, treatment=treatment, reference=reference, family=family, models=models,
        variance=variance, exposure=exposure, safe_formula=safe_formula,
        extra_columns=extra_columns, aggregate=aggregate,
        modifiers_required=modifiers_required))


def _setup(formula, data, *, treatment, reference, family, models, variance, exposure,
           safe_formula, extra_columns, aggregate, modifiers_required) -> Setup:
    var_opt = check_variance(variance)
    from hte_report.data.largedata import CellData

    if isinstance(data, CellData):
        return _setup_cells(data, formula, treatment=treatment, reference=reference,
                            family=family, models=models, var_opt=var_opt,
                            safe_formula=safe_formula, modifiers_required=modifiers_required)
    raw = read_data(data)
    binary = [c for c in raw.columns if treatment is None and raw[c].nunique(dropna=True) == 2]
    parsed = parse_formula(formula, raw.columns, treatment=treatment, safe=safe_formula,
                           binary_columns=binary, modifiers_required=modifiers_required)
    if family is None:
        family = _infer_family(raw[parsed.outcome], exposure)
    check_family(family)
    if exposure is not None and family != "count":
        raise OptionError(f"exposure={exposure!r} applies to family='count' only.")
    model_names = check_models(models, family)
    cluster = var_opt.column if isinstance(var_opt, Cluster) else None
    extra = [c for c in extra_columns if c]
    prep = prepare(raw, outcome=parsed.outcome, treatment=parsed.treatment,
                   variables=tuple(dict.fromkeys([*parsed.variables, *extra])), family=family,
                   reference=reference, exposure=exposure, cluster=cluster)
    if prep.n_excluded:
        detail = ", ".join(f"{r.variable}: {r.n_missing}" for r in prep.exclusions.itertuples()
                           if r.n_missing)
        warnings.warn(
            f"{prep.n_excluded} of {prep.n_input} rows excluded for missing values ({detail}).",
            MissingDataWarning, stacklevel=3,
        )
    frame = prep.frame
    cells = None
    rhs = [v for v in parsed.variables if v != parsed.treatment]
    cats = categorical_columns(parsed, frame)
    can = exposure is None and not extra and all(v in cats for v in rhs)
    if aggregate is None:
        aggregate = can and len(frame) >= AGGREGATE_MIN_ROWS
    elif aggregate and not can:
        raise OptionError("aggregate=True needs an all-categorical design (every covariate "
                         "categorical) and no exposure.")
    if aggregate:
        frame, cells = aggregate_cells(frame, parsed.treatment, parsed.outcome, rhs, cluster)
    design = build_design(parsed, frame, None if aggregate else prep.levels,
                          None if cells is None else int(round(cells.cnt.sum())))
    y = frame[parsed.outcome].to_numpy(dtype=float)
    expo = frame[exposure].to_numpy(dtype=float) if exposure else None
    groups = frame[cluster].to_numpy() if cluster else None
    check_clusters(cluster, groups)
    return Setup(parsed, prep, design, family, model_names, var_opt, y, expo, groups, cluster,
                 cells)


#: Fewer clusters than this: cluster-robust standard errors are biased downwards (CR1 needs
#: a few dozen clusters; Cameron & Miller 2015), which the user is told.
FEW_CLUSTERS = 20


def check_clusters(cluster: str | None, groups) -> None:
    """A cluster variance needs at least two clusters; with few, its SEs are too small."""
    if cluster is None or groups is None:
        return
    G = len(pd.unique(groups))
    if G < 2:
        raise DataError(
            f"variance=Cluster({cluster!r}) needs at least 2 clusters; the analysed rows have "
            f"{G} cluster. Use variance='HC0'..'HC3', or check the cluster column."
        )
    if G < FEW_CLUSTERS:
        warnings.warn(
            f"variance=Cluster({cluster!r}) with only {G} clusters: cluster-robust standard "
            f"errors are biased downwards with fewer than about {FEW_CLUSTERS}-40 clusters; "
            "interpret intervals and p-values with caution.", ModelWarning, stacklevel=3)


def _setup_cells(cd, formula, *, treatment, reference, family, models, var_opt,
                 safe_formula, modifiers_required=True) -> Setup:
    """Setup from pre-aggregated cells (DuckDB or another engine)."""
    from hte_report.data.largedata import n_excluded
    from hte_report.data.prepare import PreparedData, _code_treatment

    if family is None:
        raise OptionError("give family= with pre-aggregated data.")
    check_family(family)
    frame = cd.frame.copy()
    parsed = parse_formula(formula, frame.columns, treatment=treatment, safe=safe_formula,
                           modifiers_required=modifiers_required)
    model_names = check_models(models, family)
    cluster = var_opt.column if isinstance(var_opt, Cluster) else None
    frame[parsed.treatment], labels = _code_treatment(frame[parsed.treatment],
                                                      parsed.treatment, reference)
    excluded = n_excluded(cd)
    if excluded:
        detail = ", ".join(f"{r.variable}: {r.n_missing}" for r in cd.exclusions.itertuples()
                           if r.n_missing)
        warnings.warn(f"{excluded} of {cd.n_input} rows excluded for missing values "
                      f"({detail}).", MissingDataWarning, stacklevel=3)
    prep = PreparedData(frame, cd.n_input, cd.exclusions, excluded, labels, cd.data_sha256)
    design = build_design(parsed, frame, None, int(round(cd.cells.cnt.sum())))
    y = frame[parsed.outcome].to_numpy(dtype=float)
    groups = frame[cluster].to_numpy() if cluster else None
    check_clusters(cluster, groups)
    return Setup(parsed, prep, design, family, model_names, var_opt, y, None, groups, cluster,
                 cd.cells)


def _infer_family(y: pd.Series, exposure: str | None) -> str:
    v = pd.to_numeric(y, errors="coerce").dropna()
    if len(v) and ((v == 0) | (v == 1)).all():
        return "binary"
    if exposure is not None:
        return "count"
    return "continuous"
