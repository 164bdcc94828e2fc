"""The design layer: model matrices from formulaic, counterfactual designs, subgroup definitions.

Counterfactual designs are built by setting the treatment column to 1 or 0 and re-materializing
through the fitted formulaic ``ModelSpec``, so stateful transforms (``C()``, ``bs()``, ``center()``)
keep the levels, knots and centres they had when fitting.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from formulaic import model_matrix

from hte_report.core.memory import release_freed_memory
from hte_report.data.levels import Levels, factorize, first_rows, is_text
from hte_report.design import columns as design_columns
from hte_report.design import wide as wd
from hte_report.design.arms import ArmDesign
from hte_report.design.checks import (
    check_arms,
    check_listed_levels,
    check_not_constant,
    check_rank,
    short_text,
)
from hte_report.design.counterfactual import Treated, rest_columns
from hte_report.design.wide import SplitMatrix, WideFactor
from hte_report.design.wide_narrow import NarrowColumns
from hte_report.errors import (
    DataError,
    FormulaError,
    ModelError,
    ModelWarning,
    SparseSubgroupWarning,
)
from hte_report.spec.formula import ModifierTerm, ParsedFormula, c_wrapped


@dataclass(frozen=True)
class Subgroup:
    """Rows of one subgroup of one modifier (a level, or a display quarter of a continuous one)."""

    modifier: str
    level: str
    rows: np.ndarray  # boolean mask over analysed rows
    order: int


@dataclass(frozen=True)
class Design:
    """A model matrix and what is needed to predict under either treatment.

    Only the observed design ``X`` is stored; ``treated`` says how its treatment columns
    (terms containing the 0/1 treatment, zero on untreated rows) read under treatment
    (:mod:`hte_report.design.counterfactual`). The counterfactual designs ``X1`` (everyone
    treated) and ``X0`` (no one) follow: blocks of their rows on request
    (:meth:`treated_rows`, :meth:`untreated_rows`) and predictions without forming them
    (:meth:`linear_predictor`), so the design is held once, not three times (issue 21).
    """

    frame: pd.DataFrame
    spec: object  # formulaic ModelSpec
    X: np.ndarray
    treated: Treated
    columns: tuple[str, ...]
    term_columns: dict  # frozenset of factor exprs -> np.ndarray of column indices
    modifiers: tuple[ModifierTerm, ...]
    categorical: frozenset  # data columns treated as categorical
    treatment_columns: np.ndarray  # columns of terms containing the treatment
    levels: dict  # categorical variable (other than the treatment) -> Levels
    quartiles: dict  # continuous modifier -> its (min, 25%, 50%, 75%, max), type-7 quantiles
    #: many-level adjustment factors kept as codes (``X`` is then a
    #: :class:`~hte_report.design.wide.SplitMatrix`, its wide columns last); () if none
    wide: tuple[WideFactor, ...] = ()

    @property
    def X1(self) -> np.ndarray:
        """Every row with treatment = 1: a new n x p array (for small designs; large ones use
        :meth:`treated_rows` by blocks and :meth:`linear_predictor`); for an
        :class:`~hte_report.design.arms.ArmDesign`, another one."""
        if isinstance(self.X, ArmDesign):
            return self.X.under(1)
        return self.treated_rows(slice(None))

    @property
    def X0(self) -> np.ndarray:
        """Every row with treatment = 0: a new n x p array (see :attr:`X1`)."""
        if isinstance(self.X, ArmDesign):
            return self.X.under(0)
        return self.untreated_rows(slice(None))

    def treated_rows(self, rows) -> np.ndarray:
        """Rows ``rows`` (a slice, a boolean mask or row positions) of ``X1``, a new array."""
        if isinstance(self.X, ArmDesign):
            return self.X.under(1)[rows]
        if isinstance(self.X, SplitMatrix) and self.X.lazy:
            return self.X.under(1).written(rows)
        out = self._rows(rows)
        at, where = self.treated.among(rows, self.X.shape[0])
        self.treated.fill(out.dense if isinstance(out, SplitMatrix) else out, at, where)
        return out

    def untreated_rows(self, rows) -> np.ndarray:
        """Rows ``rows`` of ``X0``, a new array."""
        if isinstance(self.X, ArmDesign):
            return self.X.under(0)[rows]
        if isinstance(self.X, SplitMatrix) and self.X.lazy:
            return self.X.under(0).written(rows)
        out = self._rows(rows)
        dense = out.dense if isinstance(out, SplitMatrix) else out
        dense[:, self.treatment_columns] = 0.0
        return out

    def _rows(self, rows):
        """``X[rows]`` as a new array (a slice is a view: copied, keeping the layout)."""
        out = self.X[rows]
        if not isinstance(rows, slice):
            return out
        return out.copy() if isinstance(out, SplitMatrix) else out.copy(order="K")

    def linear_predictor(self, params: np.ndarray, treated: bool,
                         rows: slice = slice(None)) -> np.ndarray:
        """``(X1 @ params)[rows]`` or ``(X0 @ params)[rows]`` without forming either (``rows``:
        a slice)."""
        if isinstance(self.X, ArmDesign):
            c0, c1 = self.X.coefficients(params)
            return self.X.z_rows(rows) @ (c1 if treated else c0)
        if isinstance(self.X, SplitMatrix) and self.X.lazy:
            return self.X.under(1 if treated else 0)[rows] @ params
        X = self.X[rows]
        eta = X @ self.coefficients_under(params, treated)
        if treated and self.treated.untreated.size:
            at, where = self.treated.among(rows, self.X.shape[0])
            eta[at] += self.treated.shift(X, params, at, where)
        return eta

    def coefficients_under(self, params: np.ndarray, treated: bool) -> np.ndarray:
        """Coefficients that give the predictions under treatment 0 from the observed design:
        ``X @ coefficients_under(b, False)`` equals ``X0 @ b`` (the treatment columns of
        ``X`` are zero on untreated rows); ``treated``: ``params`` unchanged."""
        if treated:
            return params
        out = np.array(params, dtype=float)
        out[self.treatment_columns] = 0.0
        return out

    def interaction_columns(self, modifier: ModifierTerm, treatment: str) -> np.ndarray:
        idx = []
        for key, cols in self.term_columns.items():
            if treatment in key and len(key) == 2 and (set(key) - {treatment}) <= _exprs_of(
                modifier
            ):
                idx.extend(cols.tolist())
        return np.array(sorted(idx), dtype=int)

    def main_columns(self, expr: str) -> np.ndarray:
        return self.term_columns.get(frozenset({expr}), np.array([], dtype=int))

    def materialize(self, frame: pd.DataFrame) -> np.ndarray:
        """The (dense) model matrix of ``frame``: for a split design its narrow part and the
        one-hot columns of each wide factor (for a few rows: profiles, not the data)."""
        if isinstance(self.X, ArmDesign) and not self.wide:
            X = self.X.rows_of(frame, self.levels)
            if X is not None:
                return X
        X = np.asarray(self.spec.get_model_matrix(frame), dtype=float)
        if not self.wide:
            return X
        return np.hstack([X] + [w.one_hot(frame[w.column].tolist()) for w in self.wide])

    def materialize_many(self, frames: list[pd.DataFrame]) -> list[np.ndarray]:
        """Model matrices of several (small) frames through one formulaic call: its overhead
        per call, not the rows, is what costs for profile rows. Each comes back column-major,
        as from :meth:`materialize`, so that products with it round the same way."""
        if not frames:
            return []
        if self.wide:
            return self._wide_many(frames)
        X = self.materialize(pd.concat(frames, ignore_index=True))
        return [np.asfortranarray(x) for x in np.split(X, np.cumsum([len(f) for f in frames])[:-1])]


    def _wide_many(self, frames: list[pd.DataFrame]) -> list[np.ndarray]:
        """:meth:`materialize_many` of a split design: the narrow part through one formulaic
        call, each frame's matrix written column-major in place (the values of
        :meth:`materialize`, not held twice: a thousand one-hot columns per row)."""
        D = np.asarray(self.spec.get_model_matrix(pd.concat(frames, ignore_index=True)),
                       dtype=float)
        out, start = [], 0
        for f in frames:
            X = np.empty((len(f), self.X.shape[1]), order="F")
            X[:, :D.shape[1]] = D[start:start + len(f)]
            col = D.shape[1]
            for w in self.wide:
                X[:, col:col + len(w.names)] = w.one_hot(f[w.column].tolist())
                col += len(w.names)
            out.append(X)
            start += len(f)
        return out


def _exprs_of(modifier: ModifierTerm) -> set:
    out = {modifier.expr}
    for t in modifier.interaction_terms:
        out.update(p.strip() for p in _split_term(t))
    return out


def _split_term(term: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in term:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == ":" and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def categorical_columns(parsed: ParsedFormula, frame: pd.DataFrame) -> frozenset:
    """Columns in C(...) anywhere, non-numeric columns, and numeric columns with ≤ 2 values."""
    cats = {name for name, _plain in c_wrapped(parsed.rhs.replace(":", "*"))}
    for col in parsed.variables:
        s = frame[col]
        if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            cats.add(col)
        elif n_distinct(s, 2) <= 2:
            cats.add(col)
    return frozenset(cats)


def n_distinct(s: pd.Series, limit: int) -> int:
    """Distinct non-missing values of a numeric column, counted exactly up to ``limit``
    (``limit + 1`` means more). Unlike ``nunique`` it hashes nothing: at most ``limit + 1``
    passes, each dropping the rows equal to one value."""
    rest = s.dropna().to_numpy() if s.hasnans else s.to_numpy()
    if len(np.unique(rest[:16 * (limit + 1)])) > limit:  # typical of continuous columns
        return limit + 1
    found = 0
    while rest.size and found <= limit:
        rest = rest[rest != rest[0]]
        found += 1
    return found


def build_design(parsed: ParsedFormula, frame: pd.DataFrame,
                 levels: dict[str, Levels] | None = None,
                 n_patients: int | None = None, split: bool | None = None,
                 by_arm: bool | None = None) -> Design:
    """Materialize the model matrix and its two counterfactual versions; check estimability.

    ``levels``: factorizations of categorical columns of ``frame`` already made (by
    :func:`~hte_report.data.prepare`); the others are made here. ``n_patients``: when rows of
    ``frame`` are cells of identical patients, how many patients they hold.

    ``split``: keep many-level adjustment factors as codes (:mod:`hte_report.design.wide`).
    ``None``: for the GLM families, i.e. when the caller passes ``levels`` or ``n_patients``
    (:func:`~hte_report.estimation.setup.setup` does; the Cox and mixed-model families, whose
    fits take dense designs, do not and are told how to avoid the wide factor instead).

    ``by_arm``: a large design of that form may be held as its sources
    (:class:`~hte_report.design.arms.ArmDesign`, from :data:`ARMS_MIN_ROWS` rows); ``None``:
    as ``split`` (the GLM fits take it; Cox and mixed models take dense arrays)."""
    if split is None:
        split = levels is not None or n_patients is not None
    if by_arm is None:
        by_arm = split
    cats = categorical_columns(parsed, frame)
    check_listed_levels(parsed, frame)
    known = levels or {}
    levels = {c: known[c] if c in known else _factorize(frame[c]) for c in parsed.variables
              if c in cats and c != parsed.treatment}
    frame, levels = integral_codes(frame, levels)
    for col in parsed.adjustment:
        if col in frame:
            check_not_constant(col, frame[col], levels.get(col), modifier=False)
    mods = []
    for m in parsed.modifiers:
        kind = "categorical" if m.name in cats else "continuous"
        check_not_constant(m.name, frame[m.name], levels.get(m.name))
        k = len(levels[m.name].values) if kind == "categorical" else 0
        if k > wd.WARN_MODIFIER_LEVELS:
            text = (f"effect modifier {m.name!r} has {k} levels: one subgroup effect per level "
                    "is not a sensible heterogeneity analysis. Group its levels into a few "
                    f"pre-specified categories, or keep {m.name!r} as an adjustment factor "
                    "only (outside the interaction), where many levels are fitted "
                    "efficiently")
            if k > wd.MAX_MODIFIER_LEVELS:
                raise ModelError(f"{text} (more than {wd.MAX_MODIFIER_LEVELS} levels are "
                                 "refused).")
            warnings.warn(text + ".", ModelWarning, stacklevel=3)
        if kind == "continuous":
            k = n_distinct(frame[m.name], 4)
            if k < 5:
                warnings.warn(
                    f"continuous modifier {m.name!r} has only {k} distinct values; its quartiles "
                    f"coincide. If it is ordinal or categorical, write C({m.name}).",
                    SparseSubgroupWarning, stacklevel=3,
                )
        mods.append(ModifierTerm(m.name, m.expr, m.interaction_terms, kind))
    check_arms(parsed.treatment, tuple(mods), frame, levels)
    try:
        # Materialize once, with treatment = 1 for everyone. The treatment is a plain 0/1
        # column, so every column of a term containing it is that column times the rest:
        # zero under treatment = 0, and the observed design mixes the two row by row.
        # Stateful transforms (C, bs, center, ...) only see covariates, which are unchanged.
        wterms = wd.wide_terms(parsed.rhs, frame, cats, levels, parsed.treatment)
        if wterms and not split:
            wd.warn_dense(wterms, levels)
            wterms = []
        data = frame.copy(deep=False)  # columns shared, not copied; two replaced
        # (a split design reads it on the rows showing every level only: one byte a row)
        one = np.ones(len(frame), dtype=np.int8) if wterms else 1
        for col, values in {parsed.treatment: one,
                            **_text_as_categorical(frame, levels)}.items():
            data[col] = values
        rhs = wd.narrow_rhs(parsed.rhs, wterms) if wterms else parsed.rhs
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            lazy = _narrow_columns(rhs, data, frame, levels, parsed.treatment) if wterms \
                else None
            if lazy is not None:  # a split design's narrow part, written on demand
                X, spec, columns = lazy
            else:
                observed = frame[parsed.treatment].to_numpy() if by_arm else None
                X, spec, columns = _materialize(rhs, data, levels, parsed.treatment, observed)
    except Exception as exc:  # formulaic raises many types; report them as formula errors
        raise FormulaError(f"cannot build the design for {parsed.formula!r}: "
                           f"{short_text(exc)}") from None
    for w in caught:
        text = str(w.message)
        if "outside of the nominated levels" in text or "not in that dtype's categories" in text:
            raise DataError(  # a level missed by the check above: never fold rows silently
                f"a C(..., levels=[...]) term of {parsed.formula!r} omits values present in "
                f"the data ({short_text(text)}); list every level or exclude those rows first.")
        if not issubclass(w.category, (DeprecationWarning, FutureWarning)):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    wide = wd.wide_factors(wterms, data, levels, X.shape[1])
    term_columns = {}
    for term, sl in spec.term_slices.items():
        key = frozenset(f.expr for f in term.factors)
        term_columns[key] = np.arange(sl.start, sl.stop)
    tcols = np.concatenate([cols for key, cols in term_columns.items()
                            if parsed.treatment in key] or [np.array([], int)])
    if isinstance(X, ArmDesign) and wterms:  # a split design takes a dense narrow part
        X = np.asarray(X.under(1))
    if isinstance(X, NarrowColumns) and not wide:
        X = np.asarray(X)
    if isinstance(X, (ArmDesign, NarrowColumns)):  # never materialized: its arms are known
        treated = Treated(tcols, np.empty(0, dtype=np.intp), np.zeros(len(tcols), int),
                          np.empty((0, 0)))
    else:
        untreated = np.flatnonzero(frame[parsed.treatment].to_numpy() == 0)
        treated = Treated.split(X, untreated, tcols, rest_columns(term_columns,
                                                                  parsed.treatment))
    if wide:
        # each level's design column + 1; the level codes themselves when formulaic's order
        # is theirs (the usual case: no second copy)
        codes = tuple(lcodes if lcodes.dtype == column.dtype and np.array_equal(
            column, np.arange(len(column))) else column[lcodes] for _w, lcodes, column in wide)
        sizes = tuple(len(w[0].names) for w in wide)
        X = SplitMatrix(X, codes, sizes)
        wide = tuple(w[0] for w in wide)
        columns = columns + sum((w.names for w in wide), ())
        for w in wide:
            term_columns[frozenset({w.expr})] = np.arange(w.start, w.start + len(w.names))
        wd.check_rank(X, columns, wide, n_patients)
    else:
        check_rank(X, columns, n_patients)
    quartiles = {m.name: np.quantile(frame[m.name].to_numpy(dtype=float), QUARTILES)
                 for m in mods if m.kind == "continuous"}
    return Design(frame, spec, X, treated, columns, term_columns, tuple(mods), cats,
                  tcols, levels, quartiles, tuple(wide))


#: Large designs are materialized by blocks of at least this many rows, and at most
#: :data:`CHUNKS` blocks (see :func:`_materialize`): formulaic's cost per call (encoding each
#: factor again) stays below ~0.2 s, the block's temporaries near 1/8 of the design.
CHUNK_ROWS = 1 << 17
CHUNKS = 8
#: From this many rows, designs of plain columns and ``C()`` factors are written from the
#: data's columns and codes (:mod:`hte_report.design.columns`).
COLUMNS_MIN_ROWS = 20_000
#: From this many rows (where the GLM fits run by blocks of rows, not through statsmodels),
#: such designs are not written at all but held as their sources, by arm
#: (:class:`~hte_report.design.arms.ArmDesign`).
ARMS_MIN_ROWS = 50_000

_PLAIN = re.compile(r"^(1|[A-Za-z_][A-Za-z0-9_]*|C\(\s*[A-Za-z_][A-Za-z0-9_]*\s*(,.*)?\))$", re.S)


def _materialize(rhs: str, data: pd.DataFrame, levels: dict[str, Levels],
                 treatment: str | None = None, observed: np.ndarray | None = None):
    """(X, formulaic ModelSpec, column names) of ``rhs`` on ``data``.

    A large design whose factors are plain columns and ``C()`` of columns (their encoding
    depends on the levels only, every other value row by row) has its spec learned from the
    rows that show every level of every categorical column. Its columns are then written from
    the data's columns and codes (:mod:`hte_report.design.columns`) when formulaic's columns
    on those rows are products of them, else materialized by formulaic in blocks of rows into
    one array: either gives exactly the full-data design without holding it twice. Other
    designs (``center()``, ``bs()``, ``I()``, ...: state learned from all rows, or expressions
    that could use other rows) are materialized whole."""
    n = len(data)
    if n >= COLUMNS_MIN_ROWS:
        first = [first_rows(lv.codes) for lv in levels.values()]
        shown = np.unique(np.concatenate([np.zeros(1, np.int64), *first]))
        skeleton = model_matrix(rhs, data.iloc[shown], na_action="raise")
        spec = skeleton.model_spec
        spec_is_plain = not spec.transform_state and all(
            _PLAIN.match(f.expr) for t in spec.terms for f in t.factors)
        if spec_is_plain:
            sources = design_columns.plan(spec, np.asarray(skeleton, dtype=float), data,
                                          levels, shown)
            if sources is not None and observed is not None and n >= ARMS_MIN_ROWS:
                X = ArmDesign.from_columns(sources, data, levels, treatment, observed)
                if X is not None:
                    return X, spec, tuple(spec.column_names)
            if sources is not None:
                X = design_columns.write(sources, data, levels)
                release_freed_memory()  # the source columns converted on the way
                return X, spec, tuple(spec.column_names)
        if spec_is_plain and n >= 2 * CHUNK_ROWS:
            X = np.empty((n, len(spec.column_names)), order="F")
            rows = max(CHUNK_ROWS, -(-n // CHUNKS))
            for s in range(0, n, rows):
                block = spec.get_model_matrix(data.iloc[s:s + rows])
                for j, name in enumerate(block.columns):  # column by column: no interleaving
                    X[s:s + rows, j] = block[name].to_numpy(dtype=float)
                del block
                release_freed_memory()  # the block's temporaries, before the next block's
            return X, spec, tuple(spec.column_names)
    mm = model_matrix(rhs, data, na_action="raise")
    columns, spec = tuple(mm.columns), mm.model_spec
    return _dense_columns(mm), spec, columns


def _narrow_columns(rhs: str, data: pd.DataFrame, frame: pd.DataFrame,
                    levels: dict[str, Levels], treatment: str):
    """(narrow part, formulaic ModelSpec, column names) of a split design whose narrow
    formula ``rhs`` has plain columns and ``C()`` factors only: its spec learned from the rows
    showing every level (as :func:`_materialize` does for large designs), its columns matched
    exactly to products of the data's columns and codes, and held as those sources
    (:class:`~hte_report.design.wide_narrow.NarrowColumns`, on ``frame``'s own arrays). None
    otherwise (the caller materializes it)."""
    first = [first_rows(lv.codes) for lv in levels.values()]
    shown = np.unique(np.concatenate([np.zeros(1, np.int64), *first]))
    skeleton = model_matrix(rhs, data.iloc[shown], na_action="raise")
    spec = skeleton.model_spec
    if spec.transform_state or not all(_PLAIN.match(f.expr) for t in spec.terms
                                       for f in t.factors):
        return None
    sources = design_columns.plan(spec, np.asarray(skeleton, dtype=float), data, levels, shown)
    narrow = None if sources is None else NarrowColumns.from_sources(sources, frame, levels,
                                                                     treatment)
    return None if narrow is None else (narrow, spec, tuple(spec.column_names))


def _dense_columns(mm) -> np.ndarray:
    """formulaic's model matrix (a data frame of one array per column) as one float array,
    column-major, copied a column at a time while the frame's columns are dropped: the design
    is held about once, not twice, on the way."""
    X = np.empty(mm.shape, order="F")
    for j, name in enumerate(list(mm.columns)):
        X[:, j] = mm.pop(name).to_numpy(dtype=float)
        if j % 4 == 3:
            release_freed_memory()
    return X


#: Rows per block of :func:`_factorize`'s passes over an integer column.
LEVELS_BLOCK = 1 << 16


def _factorize(s: pd.Series) -> Levels:
    """:func:`~hte_report.data.levels.factorize`, for an int64 column whose values span at most
    a few times its length (site numbers) by a table of that range, a block of rows at a
    time: the same levels (ascending, as numpy integers) and codes (the smallest integer
    type), without a hash table and length-n int64 codes (2.8 MiB at 10^5 rows, every
    analysis of a strategy, for a many-level adjustment factor)."""
    v = s.to_numpy() if isinstance(s, pd.Series) else None
    if v is None or v.dtype != np.int64 or not len(v):
        return factorize(s)
    lo, hi = int(v.min()), int(v.max())
    if hi - lo > 4 * len(v):
        return factorize(s)
    present = np.zeros(hi - lo + 1, dtype=bool)
    for a in range(0, len(v), LEVELS_BLOCK):
        present[v[a:a + LEVELS_BLOCK] - lo] = True
    values = np.flatnonzero(present)
    table = np.full(hi - lo + 1, -1, dtype=np.min_scalar_type(-(len(values) + 1)))
    table[values] = np.arange(len(values))
    codes = np.empty(len(v), dtype=table.dtype)
    for a in range(0, len(v), LEVELS_BLOCK):
        codes[a:a + LEVELS_BLOCK] = table[v[a:a + LEVELS_BLOCK] - lo]
    return Levels(list(values + lo), codes)


def integral_codes(frame: pd.DataFrame, levels: dict[str, Levels]
                   ) -> tuple[pd.DataFrame, dict[str, Levels]]:
    """Categorical float columns whose values are all whole numbers (integer codes read as
    floats because the column had missing values) as integers, so that their levels are
    labelled as the data's values ("1", not "1.0") and match a plan's ``levels: {1: ...}``.
    The design is unchanged (formulaic codes the same categories)."""
    cast, out = {}, dict(levels)
    for col, lv in levels.items():
        s = frame[col]
        if not pd.api.types.is_float_dtype(s) or not lv.values or s.hasnans:
            continue
        vals = np.asarray(lv.values, float)
        if np.all(np.isfinite(vals)) and np.all(vals == np.round(vals)) and np.all(
                np.abs(vals) < 2 ** 53):
            cast[col] = s.to_numpy().astype(np.int64)
            out[col] = Levels([int(v) for v in vals], lv.codes)
    return (frame.assign(**cast) if cast else frame), out


#: Probabilities of :attr:`Design.quartiles`: shared by display quarters, default evaluation
#: points and curve ranges, so each continuous modifier is partitioned once.
QUARTILES = (0.0, 0.25, 0.5, 0.75, 1.0)


def _text_as_categorical(frame: pd.DataFrame, levels: dict[str, Levels]) -> dict:
    """Text columns as pandas Categoricals made from their factorization, for formulaic.

    formulaic encodes text by its sorted distinct values, which are these categories (sorted
    the same way), so the design is unchanged; it just does not hash every string again."""
    return {col: lv.categorical() for col, lv in levels.items()
            if is_text(frame[col]) and not lv.missing().any()}


def subgroups(design: Design, treatment: str,
              cutpoints: dict[str, list[float]] | None = None) -> list[Subgroup]:
    """Subgroups for standardized effects: levels of categorical modifiers; display categories
    of continuous ones (at ``cutpoints[name]`` when given, e.g. ``[65]``: < 65 and >= 65,
    else quarters). Continuous modifiers are analysed as continuous; the categories only
    display standardized effects within them."""
    out = []
    frame = design.frame
    cutpoints = cutpoints or {}
    for m in design.modifiers:
        s = frame[m.name]
        if m.kind == "categorical":
            lv = design.levels[m.name]
            for i, value in enumerate(lv.values):
                out.append(Subgroup(m.name, str(value), lv.rows(i), i))
        elif m.name in cutpoints:
            x = s.to_numpy(dtype=float)
            for i, (label, rows) in enumerate(cut_categories(x, cutpoints[m.name])):
                if rows.any():
                    out.append(Subgroup(m.name, label, rows, i))
        else:
            bins, edges = quarter_bins(s, design.quartiles[m.name])
            for i in range(len(edges) - 1):
                label = f"Q{i + 1} [{_fmt(edges[i])}, {_fmt(edges[i + 1])}]"
                out.append(Subgroup(m.name, label, (bins == i), i))
    return out


def cut_categories(x: np.ndarray, cuts) -> list[tuple[str, np.ndarray]]:
    """Display categories at cutpoints, left-closed: ``[65]`` gives "< 65" and ">= 65";
    ``[50, 65]`` gives "< 50", "50 to < 65" and ">= 65"."""
    cuts = sorted(float(c) for c in cuts)
    out = [(f"< {_fmt(cuts[0])}", x < cuts[0])]
    for lo, hi in zip(cuts, cuts[1:]):
        out.append((f"{_fmt(lo)} to < {_fmt(hi)}", (x >= lo) & (x < hi)))
    out.append((f">= {_fmt(cuts[-1])}", x >= cuts[-1]))
    return out


def quarter_bins(s: pd.Series, quartiles: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Quarters at type-7 quantiles, right-closed, lowest included (R: include.lowest).
    ``quartiles``: the quantiles at :data:`QUARTILES`, when already known."""
    x = s.to_numpy(dtype=float)
    edges = np.unique(np.quantile(x, QUARTILES) if quartiles is None else quartiles)
    if np.isnan(x).any():
        codes = np.searchsorted(edges, x, side="left") - 1
    else:  # the same codes (edges below x, less one) from a few comparisons: 3x faster
        codes = np.full(len(x), -1, dtype=np.intp)
        for e in edges:
            codes += x > e
    codes[x == edges[0]] = 0
    return codes, edges


def _fmt(v: float) -> str:
    return f"{v:.4g}"
