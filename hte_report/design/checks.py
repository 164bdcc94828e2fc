"""Checks of a design before it is fitted: every level of a modifier in both arms, no constant
covariate, ``C(x, levels=[...])`` listing every value, columns not collinear. Each failure is
a clear error naming the column or level and what to do."""

from __future__ import annotations

import ast

import numpy as np
import pandas as pd
import scipy.linalg

from hte_report.data.levels import Levels
from hte_report.design.arms import ArmDesign, accumulate
from hte_report.errors import DataError, ModelError
from hte_report.spec.formula import ModifierTerm, ParsedFormula, pythonize


def check_arms(treatment: str, modifiers: tuple[ModifierTerm, ...], frame: pd.DataFrame,
                levels: dict[str, Levels]) -> None:
    """Every level of every categorical modifier has treated and control patients (counted
    on the factorized levels; the error is then worded from the data itself)."""
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
        lv = levels[m.name]
        n, n1 = lv.totals(), lv.totals(t)
        if ((n1 == 0) | (n1 == n)).any():
            raise_empty_arm(m.name, frame, t)


def raise_empty_arm(name: str, frame: pd.DataFrame, t: np.ndarray) -> None:
    """Name the first level (in the data's own order) of modifier ``name`` with no treated or
    no control patients."""
    for level, rows in frame.groupby(name, sort=True).groups.items():
        n1 = int(t[rows].sum())
        n0 = len(rows) - n1
        if n1 == 0 or n0 == 0:
            arm = "treated" if n1 == 0 else "control"
            raise ModelError(
                f"subgroup {name}={level!r} has no {arm} patients ({n1} treated, {n0} "
                "control): the treatment effect there is not estimable. Merge the level "
                "with a neighbour or exclude it, and say so in the report."
            )


def short_text(value: object, limit: int = 300) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + " …"


def check_not_constant(name: str, s: pd.Series, lv: Levels | None = None,
                        modifier: bool = True) -> None:
    """A modifier with one value cannot modify anything, and a constant covariate duplicates
    the intercept: say so (not 'collinear'). ``lv``: the column's factorization, if made."""
    if not len(s):
        return
    if lv is not None:
        constant = len(lv.values) <= 1
    elif pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        v = s.to_numpy(dtype=float, na_value=np.nan)
        constant = bool(np.nanmin(v) == np.nanmax(v))
    else:
        constant = s.nunique(dropna=True) <= 1
    first = s.iloc[0]
    if constant:
        what = ("effect modifier", "it cannot modify the treatment effect. Remove it from the "
                "interaction") if modifier else (
                "adjustment covariate", "it duplicates the intercept. Remove it")
        raise DataError(
            f"{what[0]} {name!r} is constant (every analysed row has {name} = "
            f"{short_text(first, 40)}): {what[1]}, or check the data filter."
        )


def check_listed_levels(parsed: ParsedFormula, frame: pd.DataFrame) -> None:
    """``C(x, levels=[...])`` must list every value of x in the data: formulaic codes the
    unlisted ones like the reference level, which would give their rows the reference level's
    effect while they are still reported as their own subgroup."""
    code, quoted = pythonize(parsed.rhs.replace(":", "*"))
    try:
        tree = ast.parse(code, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "C" and node.args and isinstance(node.args[0], ast.Name)
                and quoted.get(node.args[0].id, node.args[0].id) in frame.columns):
            continue
        listed = [k.value for k in node.keywords if k.arg == "levels"] + node.args[2:3]
        if not listed:
            continue
        try:
            values = list(ast.literal_eval(listed[0]))
        except (ValueError, TypeError, SyntaxError):
            continue  # not a literal list: formulaic's warning is caught after materializing
        col = quoted.get(node.args[0].id, node.args[0].id)
        s = frame[col]
        counts = s[~s.isin(values) & s.notna()].value_counts()
        if len(counts):
            shown = ", ".join(f"{short_text(v, 30)!s} ({n} rows)"
                              for v, n in counts.head(8).items())
            raise DataError(
                f"C({col}, levels=...) lists {values!r} but {col!r} also takes the value(s) "
                f"{shown}. Rows at an unlisted level would be coded like the reference level "
                "and given its effect. List every level, or exclude or recode those rows first."
            )


def check_rank(X: np.ndarray, columns: tuple[str, ...],
               n_patients: int | None = None) -> None:
    n = X.shape[0] if n_patients is None else n_patients
    if n <= X.shape[1]:
        raise ModelError(
            f"{n} analysed rows for {X.shape[1]} model coefficients: the model cannot "
            "be estimated. Use fewer modifiers or covariates."
        )
    # Columns judged at unit length, so that a covariate on a large scale (epoch seconds,
    # age x 1e9) is judged by its angle to the others, not by its size. A cheap screen on the
    # cross-product (of the columns divided by their largest value: no overflow or underflow
    # whatever their scale); the pivoted QR (which names the columns) only when needed.
    size, gram = _largest_values(X)
    huge = [columns[j] for j in np.flatnonzero(~np.isfinite(size))]
    if huge:
        raise DataError(
            f"design column(s) {huge[:10]} have infinite or overflowing values on the analysed "
            "rows (a transform that overflows, e.g. a large power or exp() of a large "
            "variable). Rescale the variable first or change the term.")
    zero = [columns[j] for j in np.flatnonzero(size == 0)]
    if zero:
        raise ModelError(
            f"design column(s) {zero[:10]} are zero for every analysed row (a level or "
            "combination no analysed patient has). Remove the term or merge levels."
        )
    extreme = np.flatnonzero((size > EXTREME_SCALE) | (size < 1 / EXTREME_SCALE))
    if extreme.size:
        j = extreme[0]
        raise ModelError(
            f"design column(s) {[columns[k] for k in extreme[:10]]} are on an extreme scale "
            f"(largest absolute value of {columns[j]!r}: {size[j]:.3g}): coefficients and "
            "their variances would overflow. Rescale the covariate (e.g. other units).")
    gram = _scaled_gram(X, size) if gram is None else gram / np.outer(size, size)
    norms = np.sqrt(np.diag(gram))
    gram = gram / np.outer(norms, norms)
    ev = np.linalg.eigvalsh(gram)
    if ev[0] > ev[-1] * 1e-12:
        return
    _, r, piv = scipy.linalg.qr(np.asarray(X) / (size * norms), mode="economic",
                                pivoting=True)
    d = np.abs(np.diag(r))
    tol = d.max() * max(X.shape) * np.finfo(float).eps * 1e3
    rank = int((d > tol).sum())
    if rank < X.shape[1]:
        bad = [columns[i] for i in piv[rank:]]
        raise ModelError(
            f"collinear design: column(s) {bad} are linear combinations of other columns. "
            "Remove duplicated or derived covariates, or merge sparse levels."
        )


#: Rows per block of the checks' passes over a design.
ROWS = 1 << 13


def _largest_values(X) -> tuple[np.ndarray, np.ndarray | None]:
    """The largest absolute value of each column (NaN or inf where a value is), by blocks;
    for a design held by arm also ``X'X`` from the same pass (meaningful when the sizes are
    within :data:`EXTREME_SCALE`), else None."""
    if isinstance(X, ArmDesign):
        def part(blocks):
            z_all = np.zeros(X.q)
            z_treated = np.zeros(X.q)
            A0 = A1 = None
            for blk in blocks:  # NaN propagates
                a0, a1 = np.abs(blk.Z0).max(0, initial=0.0), np.abs(blk.Z1).max(0, initial=0.0)
                z_all = np.maximum(z_all, np.maximum(a0, a1))
                z_treated = np.maximum(z_treated, a1)
                a0, a1 = blk.gram(None)
                A0, A1 = accumulate(A0, a0), accumulate(A1, a1)
            return z_all, z_treated, A0, A1

        z_all = np.zeros(X.q)
        z_treated = np.zeros(X.q)
        A0 = A1 = None
        with np.errstate(over="ignore", invalid="ignore"):
            for za, zt, a0, a1 in X.map_blocks(part):  # in range order
                z_all, z_treated = np.maximum(z_all, za), np.maximum(z_treated, zt)
                A0, A1 = accumulate(A0, a0), accumulate(A1, a1)
        if X.arm is None:  # summed as a fit's pass sums them: the same bits
            X.unit_gram = (A0, A1)
        return np.where(X.tmask, z_treated[X.base], z_all[X.base]), X.lift(A0, A1)
    out = np.zeros(X.shape[1])
    for s in range(0, X.shape[0], ROWS):
        a = np.abs(X[s:s + ROWS])
        out = np.maximum(out, a.max(0, initial=0.0))  # NaN propagates
    return out, None


#: Design columns whose largest absolute value is above this, or below its inverse, are
#: refused: the variances of their coefficients (and products of those) would overflow.
EXTREME_SCALE = 1e100


def _scaled_gram(X, size: np.ndarray) -> np.ndarray:
    """``D X'X D`` with ``D = 1 / size``: the cross-product of the columns on scale one."""
    gram = np.zeros((X.shape[1], X.shape[1]))
    for s in range(0, X.shape[0], ROWS):
        Xb = X[s:s + ROWS] / size
        gram += Xb.T @ Xb
    return gram
