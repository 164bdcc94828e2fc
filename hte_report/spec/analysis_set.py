"""The analysis set of a plan (``analysis_set:``): which rows of the data the analysis uses,
defined in the locked plan rather than by code run beforehand (ADaM conventions).

::

    analysis_set:
      parameter: {column: PARAMCD, value: OS}   # one parameter of a BDS/ADTTE data set
      filter: "ITTFL == 'Y' and AGE >= 18"       # population flags and conditions
      subject: USUBJID                           # one row per subject (unless repeated)

``filter`` is an expression of comparisons (``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``,
``in``, ``not in``) between column names and literals (text, numbers, lists of them), joined by
``and``, ``or``, ``not`` and parentheses. Nothing else is accepted: no calls, attributes,
arithmetic or subscripts; the expression is parsed, never evaluated as code. A missing value
fails every comparison (the row is not selected). Each step's rows kept and removed are counted
and reported; the data hash in the report is of the data as given.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hte_report.errors import PlanError, short

ANALYSIS_SET = {
    "filter": ("str", False, None),
    "parameter": ("map", False, {
        "column": ("str", False, None),   # default PARAMCD
        "value": ("scalar", True, None),
    }),
    "subject": ("str", False, None),
}

_OPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
        ast.In: "in", ast.NotIn: "not in"}


def parse_filter(text: str) -> ast.Expression:
    """The filter's syntax tree, refusing anything but comparisons of columns and literals."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise PlanError(f"analysis_set.filter {short(text)} is not a valid expression: "
                        f"{exc.msg}. Write comparisons such as \"ITTFL == 'Y' and AGE >= 18\"."
                        ) from None
    _check(tree.body, text)
    return tree


def _check(node, text) -> None:
    if isinstance(node, ast.BoolOp):
        for v in node.values:
            _check(v, text)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        _check(node.operand, text)
    elif isinstance(node, ast.Compare):
        for op in node.ops:
            if type(op) not in _OPS:
                raise PlanError(f"analysis_set.filter {short(text)}: the operator "
                                f"{type(op).__name__} is not allowed; use ==, !=, <, <=, >, >=, "
                                "in, not in.")
        for side in [node.left, *node.comparators]:
            _operand(side, text)
        for op, right in zip(node.ops, node.comparators):
            if isinstance(op, (ast.In, ast.NotIn)) and not isinstance(right, (ast.List,
                                                                               ast.Tuple)):
                raise PlanError(f"analysis_set.filter {short(text)}: 'in' needs a list on its "
                                "right, e.g. \"RACE in ['ASIAN', 'WHITE']\".")
    else:
        raise PlanError(f"analysis_set.filter {short(text)}: only comparisons of column names "
                        "with literals, joined by and / or / not, are allowed (found "
                        f"{type(node).__name__}).")


def _operand(node, text) -> None:
    if isinstance(node, ast.Name):
        return
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool)):
        return
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(
            node.operand, ast.Constant) and isinstance(node.operand.value, (int, float)):
        return
    if isinstance(node, (ast.List, ast.Tuple)) and all(
            isinstance(e, ast.Constant) and isinstance(e.value, (str, int, float))
            for e in node.elts):
        return
    raise PlanError(f"analysis_set.filter {short(text)}: {ast.unparse(node)!r} is neither a "
                    "column name nor a literal (text in quotes, a number, or a list of them).")


def filter_columns(text: str) -> list[str]:
    tree = parse_filter(text)
    return list(dict.fromkeys(n.id for n in ast.walk(tree) if isinstance(n, ast.Name)))


def _value(node, frame: pd.DataFrame):
    if isinstance(node, ast.Name):
        return frame[node.id]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [e.value for e in node.elts]
    return ast.literal_eval(node)


def _compare(a, op, b) -> pd.Series | np.ndarray:
    if op in ("in", "not in"):
        if not isinstance(b, list):
            raise PlanError("analysis_set.filter: 'in' needs a list on its right, e.g. "
                            "\"RACE in ['ASIAN', 'WHITE']\".")
        hit = a.isin(b) if isinstance(a, pd.Series) else np.asarray(a in b)
        known = a.notna() if isinstance(a, pd.Series) else True
        return (hit if op == "in" else ~hit) & known
    try:
        with np.errstate(invalid="ignore"):
            out = {"==": lambda: a == b, "!=": lambda: a != b, "<": lambda: a < b,
                   "<=": lambda: a <= b, ">": lambda: a > b, ">=": lambda: a >= b}[op]()
    except TypeError:
        raise PlanError(f"analysis_set.filter: cannot compare {_what(a)} with {_what(b)} using "
                        f"{op}; compare text with text (in quotes) and numbers with numbers."
                        ) from None
    for side in (a, b):  # a missing value selects nothing, also for !=
        if isinstance(side, pd.Series):
            out = out & side.notna()
    return out


def _what(x) -> str:
    return f"column {x.name!r} ({x.dtype})" if isinstance(x, pd.Series) else repr(x)


def _evaluate(node, frame: pd.DataFrame) -> pd.Series:
    if isinstance(node, ast.BoolOp):
        parts = [_evaluate(v, frame) for v in node.values]
        out = parts[0]
        for p in parts[1:]:
            out = (out & p) if isinstance(node.op, ast.And) else (out | p)
        return out
    if isinstance(node, ast.UnaryOp):
        return ~_evaluate(node.operand, frame)
    left = _value(node.left, frame)
    out = None
    for op, comp in zip(node.ops, node.comparators):
        right = _value(comp, frame)
        step = _compare(left, _OPS[type(op)], right)
        out = step if out is None else (out & step)
        left = right
    if not isinstance(out, pd.Series):
        out = pd.Series(bool(out), index=frame.index)
    return out.fillna(False).astype(bool)


@dataclass(frozen=True)
class SelectionStep:
    step: str
    rule: str
    rows_before: int
    rows_kept: int


def select(plan_raw: dict, frame: pd.DataFrame) -> tuple[pd.DataFrame, list[SelectionStep]]:
    """The analysis set's rows of ``frame`` and the count of each step (parameter, filter,
    subject check). Errors name the key and what to do."""
    spec = plan_raw.get("analysis_set") or {}
    steps: list[SelectionStep] = []
    out = frame
    par = spec.get("parameter")
    if par:
        col = par.get("column", "PARAMCD")
        if col not in out.columns:
            raise PlanError(f"analysis_set.parameter.column {short(col)} is not a column of the "
                            "data; name the parameter column (ADaM: PARAMCD).")
        values = out[col]
        hit = (values == par["value"]) | (values.astype(str) == str(par["value"]))
        if not hit.any():
            shown = sorted(map(str, pd.unique(values.dropna())))[:10]
            raise PlanError(f"analysis_set.parameter.value {short(par['value'])} does not occur "
                            f"in {short(col)}; its values are {short(shown)}.")
        steps.append(SelectionStep("parameter", f"{col} == {par['value']!r}", len(out),
                                   int(hit.sum())))
        out = out[hit.to_numpy()]
    if spec.get("filter"):
        tree = parse_filter(spec["filter"])
        missing = [c for c in filter_columns(spec["filter"]) if c not in out.columns]
        if missing:
            raise PlanError(f"analysis_set.filter names {short(missing)}, not columns of the "
                            "data.")
        mask = _evaluate(tree.body, out)
        steps.append(SelectionStep("filter", spec["filter"], len(out), int(mask.sum())))
        out = out[mask.to_numpy()]
        if len(out) == 0:
            raise PlanError(f"analysis_set.filter {short(spec['filter'])} selects no row; check "
                            "the flag values (e.g. 'Y' versus 'y') and the conditions.")
    subject = spec.get("subject")
    repeated = plan_raw["outcome"]["family"] == "repeated"
    if not subject and not repeated and "USUBJID" in out.columns and \
            out["USUBJID"].dropna().duplicated().any():
        import warnings

        from hte_report.errors import DataWarning

        n = int(out["USUBJID"].dropna().duplicated().sum())
        warnings.warn(f"USUBJID repeats in {n} rows: the data look like an ADaM data set with "
                      "several rows per subject (parameters or visits), analysed here as "
                      "independent patients. Select one row per subject in the plan "
                      "(analysis_set: parameter, filter, subject: USUBJID).", DataWarning,
                      stacklevel=3)
    if subject:
        if subject not in out.columns:
            raise PlanError(f"analysis_set.subject {short(subject)} is not a column of the data.")
        dup = out[subject].duplicated(keep=False) & out[subject].notna()
        if dup.any() and not repeated:
            who = out.loc[dup, subject].iloc[0]
            who = who.item() if hasattr(who, "item") else who
            raise PlanError(
                f"analysis_set.subject: {int(out.loc[dup, subject].nunique())} subjects have "
                f"more than one row after the selection (e.g. {short(who)}); an analysis of one "
                "outcome per patient needs one row per subject. Select one parameter "
                "(analysis_set.parameter) or visit, or use family: repeated.")
        steps.append(SelectionStep("subject", f"one row per {subject}" if not repeated else
                                   f"{out[subject].nunique()} subjects", len(out), len(out)))
    return out, steps
