"""The design of an out-of-core fit, as SQL: formulaic's own columns, each written as a product
of SQL factors.

The package's design layer builds the design of a small *skeleton* frame that has every level
of every categorical variable (from the file's ``GROUP BY``) and distinct random values for
continuous ones. That gives the column names, order, terms, modifiers and treatment columns
exactly as :func:`hte_report.fit` has them. Each skeleton column is then matched, value for
value, to a product of one candidate factor per factor of its term (a numeric column, a level
indicator, the treatment); a column no product reproduces (``bs(age)``, ``I(age**2)``,
``log(x)``, sum contrasts) is a term the SQL passes cannot compute, and is refused.
"""

from __future__ import annotations

import itertools
import re
import warnings

import numpy as np
import pandas as pd

from hte_report.data.ooc_scan import FileFacts
from hte_report.data.ooc_sql import DesignSQL
from hte_report.design.build import Design, build_design
from hte_report.errors import FormulaError

_C = re.compile(r"^C\(\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(,.*)?\)$", re.S)


def skeleton(facts: FileFacts, rows: int = 0) -> pd.DataFrame:
    """A small frame with the file's levels and random continuous values; every level of a
    categorical variable appears in both arms."""
    parsed = facts.parsed
    n_levels = [len(v) for v in facts.levels.values()] or [1]
    rows = rows or max(256, 8 * sum(n_levels))
    rows += rows % 2
    rng = np.random.default_rng(20261130)
    i = np.arange(rows)
    data = {parsed.treatment: (i % 2).astype(np.int64)}
    for c in parsed.variables:
        if c == parsed.treatment:
            continue
        if c in facts.categorical:
            lv = facts.levels[c]
            if c in (m.name for m in parsed.modifiers):
                codes = (i // 2) % len(lv)  # each level in both arms
            else:
                codes = rng.integers(0, len(lv), rows)
                codes[: len(lv)] = np.arange(len(lv))
            vals = [lv[k] for k in codes]
            kind = facts.kinds[c]
            if kind == "bool":
                data[c] = np.array(vals, dtype=bool)
            elif kind == "text":
                data[c] = pd.array([str(v) for v in vals], dtype="str")
            else:
                data[c] = np.array(vals)
        else:
            data[c] = rng.normal(size=rows) * 1.7 + 3.1
    return pd.DataFrame(data)


def design_sql(facts: FileFacts, cluster: str | None) -> tuple[Design, DesignSQL]:
    """The skeleton's design (names, terms, modifiers) and its columns as SQL products."""
    parsed = facts.parsed
    frame = skeleton(facts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        design = build_design(parsed, frame)
    X1 = design.X1
    columns: list[tuple] = [()] * X1.shape[1]
    for term, sl in design.spec.term_slices.items():
        cands = [_candidates(f.expr, facts, frame) for f in term.factors]
        for j in range(sl.start, sl.stop):
            columns[j] = _match(X1[:, j], cands, design.columns[j], parsed.formula)
    keys = tuple(m.name for m in design.modifiers if m.kind == "categorical")
    floats = frozenset(c for c in facts.used if facts.kinds[c] == "float")
    outer = tuple(dict.fromkeys([parsed.outcome, parsed.treatment, *parsed.adjustment,
                                 *([cluster] if cluster else [])]))
    dsql = DesignSQL(tuple(columns), parsed.outcome, parsed.treatment, facts.treated_value,
                     tuple(facts.used), floats, keys, cluster, outer)
    return design, dsql


def _candidates(expr: str, facts: FileFacts, frame: pd.DataFrame) -> list[tuple]:
    """(factor, its values on the skeleton with treatment 1) for one factor expression."""
    parsed = facts.parsed
    n = len(frame)
    if expr == "1":
        return [((), np.ones(n))]
    if expr == parsed.treatment:
        return [(("treat",), np.ones(n))]
    m = _C.match(expr.strip())
    col = m.group(1) if m else expr.strip()
    if col not in frame.columns or col == parsed.treatment:
        raise FormulaError(
            f"term {expr!r} of {parsed.formula!r} cannot be computed out of core: use numeric "
            "columns, C() or text factors and their interactions with the treatment "
            "(transforms such as bs(), ns(), I(), log() need the data in memory: "
            "hte_report.fit).")
    out = []
    if not m and facts.kinds.get(col) in ("float", "int"):
        out.append((("num", col), frame[col].to_numpy(float)))
    if col in facts.levels:
        s = frame[col]
        for v in facts.levels[col]:
            vv = str(v) if facts.kinds[col] == "text" else v
            out.append((("level", col, v), (s == vv).to_numpy(float)))
    return out


def _match(x: np.ndarray, cands: list[list[tuple]], name: str, formula: str) -> tuple:
    for combo in itertools.product(*cands):
        val = np.ones_like(x)
        for _f, v in combo:
            val = val * v
        if np.allclose(val, x, rtol=1e-12, atol=1e-12):
            return tuple(f for f, _v in combo if f)
    raise FormulaError(
        f"design column {name!r} of {formula!r} is not a product of numeric columns and level "
        "indicators, so the SQL passes cannot compute it (a transform, a contrast other than "
        "treatment coding, or levels given in C(..., levels=)). Fit it with hte_report.fit "
        "on data in memory, or write the term as numeric columns and C() factors.")
