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
from hte_report.errors import DataError, MissingDataWarning, ModelWarning, short
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
    try:
        prep = prepare(raw, outcome=parsed.outcome, treatment=parsed.treatment,
                       variables=tuple(dict.fromkeys([*parsed.variables, *extra])),
                       family=family, reference=reference, exposure=exposure, cluster=cluster)
    except TypeError:
        check_hashable(raw)
        raise
    check_number_like_text(prep, parsed)
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
    try:
        design = build_design(parsed, frame, None if aggregate else prep.levels,
                              None if cells is None else int(round(cells.cnt.sum())))
    except np.linalg.LinAlgError:
        raise design_overflow(parsed) from None
    y = frame[parsed.outcome].to_numpy(dtype=float)
    check_magnitude(parsed.outcome, y)
    expo = frame[exposure].to_numpy(dtype=float) if exposure else None
    groups = frame[cluster].to_numpy() if cluster else None
    check_clusters(cluster, groups)
    return Setup(parsed, prep, design, family, model_names, var_opt, y, expo, groups, cluster,
                 cells)


def check_hashable(frame: pd.DataFrame) -> None:
    """A column of lists, dicts or sets (e.g. a nested Parquet or JSON field) cannot be hashed,
    compared or modelled: a :class:`DataError` naming it (called when pandas failed with a
    ``TypeError``, so it costs nothing on usable data)."""
    for col in frame.columns:
        s = frame[col]
        if s.dtype != object:
            continue
        for v in s.head(10_000):
            if isinstance(v, (list, dict, set, np.ndarray, tuple)):
                raise DataError(
                    f"column {col!r} holds {type(v).__name__} values (e.g. {short(v, 40)}), "
                    "which no analysis can use, even as an unused column of the data. Drop it "
                    "(df.drop(columns=[...])) or turn it into one number or text per row first.")
            try:
                hash(v)
            except TypeError:
                raise DataError(
                    f"column {col!r} holds {type(v).__name__} values, which no analysis can "
                    "use. Drop the column or turn it into one number or text per row first."
                ) from None


#: A text column whose distinct values are numbers except for at most this many is numbers
#: with missing-value codes (".", "-", "NR"), not a category (from that many numbers on).
_CODES_AT_MOST = 3
_NUMBERS_FROM = 10


def check_number_like_text(prep, parsed) -> None:
    """A covariate entered as a plain name (not ``C(x)``) whose values are text only because a
    few of them are codes such as ``"."`` (SAS's missing value read from a CSV) would be
    analysed as a category with one level per number: refuse it, saying how to convert it."""
    from hte_report.spec.formula import c_wrapped

    levels = getattr(prep, "levels", None) or {}
    if not levels:
        return
    wrapped = {name for name, _ in c_wrapped(parsed.rhs.replace(":", "*"))}
    for col, lv in levels.items():
        if col in wrapped or col == parsed.treatment:
            continue
        values = pd.Series(lv.values, dtype=object)
        numbers = pd.to_numeric(values, errors="coerce")
        codes = values[numbers.isna()]
        if numbers.notna().sum() < _NUMBERS_FROM or not 0 < len(codes) <= _CODES_AT_MOST:
            continue
        counts = lv.totals(None) if (lv.codes >= 0).all() else np.bincount(
            lv.codes[lv.codes >= 0], minlength=len(lv.values))
        shown = ", ".join(f"{short(c, 20)} ({int(counts[i])} rows)"
                          for i, c in zip(codes.index, codes))
        raise DataError(
            f"column {col!r} is text only because of the value(s) {shown}; its other "
            f"{int(numbers.notna().sum())} distinct values are numbers, so it would be analysed "
            "as a category with one level per number. If those values mean missing, convert "
            f"the column: df[{col!r}] = pd.to_numeric(df[{col!r}], errors='coerce') (the rows "
            "are then excluded and counted), or read the file with na_values=[...]; if it is "
            f"a category, write C({col}) in the formula.")


def design_overflow(parsed) -> DataError:
    """The error for a design whose columns overflow (``I(x**1000)``, ``exp(income)``): the
    estimability check's linear algebra fails on infinite entries."""
    import re

    calls = sorted(set(re.findall(r"\b(?:I|exp|log|sqrt|pow|np\.\w+)\([^()]*\)", parsed.rhs)))
    which = f" (transformed terms: {calls[:6]})" if calls else ""
    return DataError(
        f"the model terms of {short(parsed.formula, 120)} evaluate to infinite or overflowing "
        f"values on the analysed rows{which}; check the transforms (e.g. a power or exp() of a "
        "large variable) and rescale the variable first.")


#: Outcomes beyond this magnitude overflow when squared and summed (sums of squares, deviances).
_LARGEST_OUTCOME = 1e150


def check_magnitude(name: str, y: np.ndarray) -> None:
    """An outcome whose squares overflow floating point cannot be modelled: say to rescale."""
    if len(y) and np.nanmax(np.abs(y)) * np.sqrt(len(y)) > _LARGEST_OUTCOME:
        raise DataError(
            f"outcome {name!r} has values up to {np.nanmax(np.abs(y)):.3g}, too large for "
            "sums of squares in floating point; rescale it (e.g. divide by a power of 10 or "
            "analyse its logarithm).")


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
