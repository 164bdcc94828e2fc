"""The design layer: model matrices from formulaic, counterfactual designs, subgroup definitions.

Counterfactual designs are built by setting the treatment column to 1 or 0 and re-materializing
through the fitted formulaic ``ModelSpec``, so stateful transforms (``C()``, ``bs()``, ``center()``)
keep the levels, knots and centres they had when fitting.
"""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.linalg
from formulaic import model_matrix

from .errors import FormulaError, ModelError, SparseSubgroupWarning
from .formula import ModifierTerm, ParsedFormula


@dataclass(frozen=True)
class Subgroup:
    """Rows of one subgroup of one modifier (a level, or a display quarter of a continuous one)."""

    modifier: str
    level: str
    rows: np.ndarray  # boolean mask over analysed rows
    order: int


@dataclass(frozen=True)
class Design:
    frame: pd.DataFrame
    spec: object  # formulaic ModelSpec
    X: np.ndarray
    X1: np.ndarray  # every row with treatment = 1
    X0: np.ndarray  # every row with treatment = 0
    columns: tuple[str, ...]
    term_columns: dict  # frozenset of factor exprs -> np.ndarray of column indices
    modifiers: tuple[ModifierTerm, ...]
    categorical: frozenset  # data columns treated as categorical

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
        return np.asarray(self.spec.get_model_matrix(frame), dtype=float)


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
    cats = set()
    try:
        tree = ast.parse(parsed.rhs.replace(":", "*"), mode="eval")
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "C" and node.args and isinstance(node.args[0], ast.Name)):
                cats.add(node.args[0].id)
    except SyntaxError:
        pass
    for col in parsed.variables:
        s = frame[col]
        if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            cats.add(col)
        elif s.nunique() <= 2:
            cats.add(col)
    return frozenset(cats)


def build_design(parsed: ParsedFormula, frame: pd.DataFrame) -> Design:
    """Materialize the model matrix and its two counterfactual versions; check estimability."""
    cats = categorical_columns(parsed, frame)
    mods = []
    for m in parsed.modifiers:
        kind = "categorical" if m.name in cats else "continuous"
        if kind == "continuous":
            k = frame[m.name].nunique()
            if k < 5:
                warnings.warn(
                    f"continuous modifier {m.name!r} has only {k} distinct values; its quartiles "
                    f"coincide. If it is ordinal or categorical, write C({m.name}).",
                    SparseSubgroupWarning, stacklevel=3,
                )
        mods.append(ModifierTerm(m.name, m.expr, m.interaction_terms, kind))
    _check_arms(parsed.treatment, tuple(mods), frame)
    try:
        # Materialize once, with treatment = 1 for everyone. The treatment is a plain 0/1
        # column, so every column of a term containing it is that column times the rest:
        # zero under treatment = 0, and the observed design mixes the two row by row.
        # Stateful transforms (C, bs, center, ...) only see covariates, which are unchanged.
        f1 = frame.copy()
        f1[parsed.treatment] = 1
        mm = model_matrix(parsed.rhs, f1, na_action="raise")
    except Exception as exc:  # formulaic raises many types; report them as formula errors
        raise FormulaError(f"cannot build the design for {parsed.formula!r}: {exc}") from None
    X1 = np.asarray(mm, dtype=float)
    columns = tuple(mm.columns)
    spec = mm.model_spec
    term_columns = {}
    for term, sl in spec.term_slices.items():
        key = frozenset(f.expr for f in term.factors)
        term_columns[key] = np.arange(sl.start, sl.stop)
    tcols = np.concatenate([cols for key, cols in term_columns.items()
                            if parsed.treatment in key] or [np.array([], int)])
    X0 = X1.copy()
    X0[:, tcols] = 0.0
    untreated = frame[parsed.treatment].to_numpy() == 0
    X = X1.copy()
    X[np.ix_(untreated, tcols)] = 0.0
    _check_rank(X, columns)
    return Design(frame, spec, X, X1, X0, columns, term_columns, tuple(mods), cats)


def _check_arms(treatment: str, modifiers: tuple[ModifierTerm, ...], frame: pd.DataFrame) -> None:
    t = frame[treatment].to_numpy()
    for m in modifiers:
        if m.kind != "categorical":
            continue
        s = frame[m.name]
        if isinstance(s.dtype, pd.CategoricalDtype):
            empty = [c for c in s.cat.categories if (s == c).sum() == 0]
            if empty:
                raise ModelError(
                    f"modifier {m.name!r} has empty level(s) {empty}: no patient has them, so "
                    "their effect is not estimable. Remove unused categories "
                    "(s.cat.remove_unused_categories()) or merge levels."
                )
        for level, rows in frame.groupby(m.name, sort=True).groups.items():
            n1 = int(t[rows].sum())
            n0 = len(rows) - n1
            if n1 == 0 or n0 == 0:
                arm = "treated" if n1 == 0 else "control"
                raise ModelError(
                    f"subgroup {m.name}={level!r} has no {arm} patients ({n1} treated, {n0} "
                    "control): the treatment effect there is not estimable. Merge the level "
                    "with a neighbour or exclude it, and say so in the report."
                )


def _check_rank(X: np.ndarray, columns: tuple[str, ...]) -> None:
    if X.shape[0] <= X.shape[1]:
        raise ModelError(
            f"{X.shape[0]} analysed rows for {X.shape[1]} model coefficients: the model cannot "
            "be estimated. Use fewer modifiers or covariates."
        )
    # cheap screen on the cross-product; the pivoted QR (which names the columns) only when needed
    gram = X.T @ X
    ev = np.linalg.eigvalsh(gram)
    if ev[0] > ev[-1] * 1e-12:
        return
    _, r, piv = scipy.linalg.qr(X, mode="economic", pivoting=True)
    d = np.abs(np.diag(r))
    tol = d.max() * max(X.shape) * np.finfo(float).eps * 1e3
    rank = int((d > tol).sum())
    if rank < X.shape[1]:
        bad = [columns[i] for i in piv[rank:]]
        raise ModelError(
            f"collinear design: column(s) {bad} are linear combinations of other columns. "
            "Remove duplicated or derived covariates, or merge sparse levels."
        )


def subgroups(design: Design, treatment: str) -> list[Subgroup]:
    """Subgroups for standardized effects: levels of categorical modifiers; display quarters of
    continuous ones (continuous modifiers are analysed as continuous; quarters only display)."""
    out = []
    frame = design.frame
    for m in design.modifiers:
        s = frame[m.name]
        if m.kind == "categorical":
            levels = sorted(pd.unique(s), key=_sort_key)
            for i, lv in enumerate(levels):
                out.append(Subgroup(m.name, str(lv), (s == lv).to_numpy(), i))
        else:
            bins, edges = quarter_bins(s)
            for i in range(len(edges) - 1):
                label = f"Q{i + 1} [{_fmt(edges[i])}, {_fmt(edges[i + 1])}]"
                out.append(Subgroup(m.name, label, (bins == i), i))
    return out


def quarter_bins(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Quarters at type-7 quantiles, right-closed, lowest included (R: include.lowest)."""
    x = s.to_numpy(dtype=float)
    edges = np.unique(np.quantile(x, [0, 0.25, 0.5, 0.75, 1.0]))
    codes = np.searchsorted(edges, x, side="left") - 1
    codes[x == edges[0]] = 0
    return codes, edges


def _sort_key(v):
    return (0, v) if isinstance(v, (int, float, np.integer, np.floating)) else (1, str(v))


def _fmt(v: float) -> str:
    return f"{v:.4g}"
