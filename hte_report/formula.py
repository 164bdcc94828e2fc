"""Formula parsing on formulaic: outcome, treatment, effect modifiers and adjustment terms.

The treatment is the variable that every treatment-by-covariate interaction shares; effect
modifiers are the variables crossed with it; every other term is an adjustment covariate.
Terms are identified through formulaic's parsed structure, never by matching column names.

Formulas that come from files (a plan) are data, not code: :func:`check_formula_safety` allows
column names, numbers, arithmetic and a listed set of transforms, and refuses anything else
before formulaic evaluates a single term.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass

from formulaic import Formula
from formulaic.errors import FormulaParsingError

from .errors import FormulaError

#: Transforms a formula from a file may call. Everything else is refused.
SAFE_TRANSFORMS = frozenset(
    {"C", "bs", "cr", "cs", "cc", "te", "poly", "center", "scale", "standardize", "lag",
     "log", "log1p", "log2", "log10", "exp", "sqrt", "abs", "I", "Q", "contr", "hashed",
     "Treatment", "T", "Sum", "S", "Helmert", "Poly", "Diff", "ns"}
)
_SAFE_NAMES = frozenset({"True", "False", "None"})
_SAFE_NODES = (
    ast.Expression, ast.Call, ast.Name, ast.Load, ast.Constant, ast.BinOp, ast.UnaryOp,
    ast.keyword, ast.List, ast.Tuple, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub,
    ast.UAdd, ast.Mod, ast.FloorDiv,
)


@dataclass(frozen=True)
class ModifierTerm:
    """One effect modifier: the term crossed with treatment and the data column behind it."""

    name: str  # the data column (display name)
    expr: str  # the factor expression in the formula, e.g. "C(region)" or "bs(age, df=3)"
    interaction_terms: tuple[str, ...]  # formulaic term strings of its treatment interactions
    kind: str = "unknown"  # "categorical" | "continuous", set after looking at the data


@dataclass(frozen=True)
class ParsedFormula:
    """The roles the formula gives to each variable."""

    formula: str
    outcome: str
    rhs: str
    treatment: str
    modifiers: tuple[ModifierTerm, ...]
    variables: tuple[str, ...]  # every data column the right-hand side uses
    adjustment: tuple[str, ...]  # columns used only in adjustment terms


def _names_in(expr: str) -> list[str]:
    """Data-column-like names an expression reads (function names excluded)."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        return [expr]
    funcs = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and id(node) not in funcs and node.id not in _SAFE_NAMES:
            if node.id not in names:
                names.append(node.id)
    return names


def used_columns(terms, columns: list[str]) -> list[str]:
    """Data columns the formula's right-hand-side terms use, in order of appearance; a column
    not in the data is a clear error naming the term."""
    used: list[str] = []
    for term in terms:
        for factor in term.factors:
            for col in _factor_columns(factor, columns):
                if col not in columns:
                    raise FormulaError(_absent(col, columns, f"term {str(term)!r}"))
                if col not in used:
                    used.append(col)
    return used


def _factor_columns(factor, columns: Iterable[str]) -> list[str]:
    if factor.eval_method.value == "lookup":
        return [factor.expr]
    if factor.eval_method.value == "literal":
        return []
    cols = set(columns)
    return [n for n in _names_in(factor.expr) if n in cols or n not in SAFE_TRANSFORMS]


def check_formula_safety(formula: str) -> None:
    """Refuse formula terms that would run arbitrary Python when formulaic evaluates them.

    Allowed: column names, numbers, strings, arithmetic, and calls to the transforms in
    :data:`SAFE_TRANSFORMS`. Refused: attribute access, subscripts, other calls (``open``,
    ``eval``, ``__import__``), lambdas, comprehensions and dunder names.

    Examples
    --------
    >>> check_formula_safety("y ~ treat * (age + C(region))")
    >>> check_formula_safety("y ~ treat * I(open('/etc/passwd').read())")
    Traceback (most recent call last):
    ...
    hte_report.errors.FormulaError: unsafe formula term "I(open('/etc/passwd').read())": ...
    """
    if "__" in formula:
        raise FormulaError(f"unsafe formula {formula!r}: dunder names ('__') are not allowed.")
    try:
        parsed = Formula(formula)
    except FormulaParsingError as exc:
        raise FormulaError(f"cannot parse formula {formula!r}: {exc}") from None
    parts = [parsed.lhs, parsed.rhs] if hasattr(parsed, "lhs") else [parsed]
    for part in parts:
        for term in part:
            for factor in term.factors:
                if factor.eval_method.value != "python":
                    continue
                _check_expr(factor.expr)


def _check_expr(expr: str) -> None:
    def refuse(why: str) -> FormulaError:
        return FormulaError(
            f"unsafe formula term {expr!r}: {why}. Formulas read from files may use column "
            f"names, numbers, arithmetic and the transforms {sorted(SAFE_TRANSFORMS)}."
        )

    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as exc:
        raise refuse(f"not a valid expression ({exc.msg})") from None
    for node in ast.walk(tree):
        if not isinstance(node, _SAFE_NODES):
            raise refuse(f"{type(node).__name__.lower()} is not allowed")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                raise refuse("only plain transform calls are allowed")
            if node.func.id not in SAFE_TRANSFORMS:
                raise refuse(f"calling {node.func.id!r} is not allowed")
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            raise refuse(f"name {node.id!r} is not allowed")
        if isinstance(node, ast.keyword) and node.arg is not None and node.arg.startswith("_"):
            raise refuse(f"keyword {node.arg!r} is not allowed")


def split_formula(formula: str, safe: bool, example: str):
    """Parse with formulaic (after the safety check when ``safe``); the outcome must be one
    column. Returns the parsed formula and the outcome name."""
    if not isinstance(formula, str) or "~" not in formula:
        raise FormulaError(f"formula must be a string like {example!r}, got {formula!r}.")
    if safe:
        check_formula_safety(formula)
    try:
        parsed = Formula(formula)
    except FormulaParsingError as exc:
        raise FormulaError(f"cannot parse formula {formula!r}: {exc}") from None
    lhs = list(parsed.lhs)
    if len(lhs) != 1 or len(lhs[0].factors) != 1:
        raise FormulaError(f"the left-hand side of {formula!r} must be one outcome column.")
    return parsed, lhs[0].factors[0].expr


def parse_formula(
    formula: str,
    columns: Iterable[str],
    treatment: str | None = None,
    safe: bool = False,
    binary_columns: Iterable[str] = (),
) -> ParsedFormula:
    """Split a formula into outcome, treatment, modifiers and adjustment variables.

    Parameters
    ----------
    formula
        An R-style formula such as ``"death ~ treat * (age + C(region)) + site"``.
    columns
        The data's column names, for precise errors about absent columns.
    treatment
        The treatment column; inferred when exactly one variable appears in every interaction.
    safe
        Refuse unsafe terms (see :func:`check_formula_safety`) before anything is evaluated.
    binary_columns
        Columns with exactly two distinct values; when several variables appear in every
        interaction, the treatment is inferred only if exactly one of them is binary.
    """
    columns = list(columns)
    parsed, outcome = split_formula(formula, safe, "y ~ treat * (age + sex)")
    if outcome not in columns:
        raise FormulaError(_absent(outcome, columns, "outcome"))

    rhs_terms = list(parsed.rhs)
    if not any(len(t.factors) == 1 and t.factors[0].expr == "1" for t in rhs_terms):
        raise FormulaError(
            f"formula {formula!r} removes the intercept ('- 1' or '+ 0'); interaction models "
            "without an intercept are not supported. Remove it from the formula."
        )
    used = used_columns(rhs_terms, columns)

    interactions = [t for t in rhs_terms if len(t.factors) > 1]
    lookup = {
        t.factors[0].expr
        for t in rhs_terms
        if len(t.factors) == 1 and t.factors[0].eval_method.value == "lookup"
    }
    if treatment is None:
        if not interactions:
            raise FormulaError(
                f"formula {formula!r} has no treatment-by-covariate interaction; write "
                "'y ~ treat * (modifier1 + modifier2)' so effect modification can be estimated."
            )
        shared = None
        for t in interactions:
            exprs = {f.expr for f in t.factors if f.eval_method.value == "lookup"}
            shared = exprs if shared is None else shared & exprs
        cands = sorted((shared or set()) & lookup)
        binary = [c for c in cands if c in set(binary_columns)]
        if len(cands) > 1 and len(binary) == 1:
            cands = binary
        if len(cands) != 1:
            raise FormulaError(
                f"cannot tell the treatment in {formula!r}: candidates {cands or 'none'}. "
                "Name it with treatment='...'."
            )
        treatment = cands[0]
    if treatment not in columns:
        raise FormulaError(_absent(treatment, columns, "treatment"))
    if treatment not in lookup:
        raise FormulaError(
            f"treatment {treatment!r} must enter the formula as a plain main effect "
            f"(e.g. '{treatment} * (age + sex)'); transforms of the treatment are not supported."
        )

    for term in rhs_terms:
        for factor in term.factors:
            if factor.expr != treatment and treatment in _factor_columns(factor, columns):
                raise FormulaError(
                    f"the treatment {treatment!r} appears inside {factor.expr!r}; it may enter "
                    f"only as a plain main effect and in interactions ('{treatment} * age')."
                )
    mods: dict[str, ModifierTerm] = {}
    for t in interactions:
        exprs = [f.expr for f in t.factors]
        if treatment not in exprs:
            continue  # covariate-by-covariate interaction: adjustment
        if len(exprs) > 2:
            raise FormulaError(
                f"term {str(t)!r} is a three-way interaction with treatment; only "
                "treatment x one-modifier terms are supported. Combine the modifiers into one "
                "factor column first."
            )
        other = next(f for f in t.factors if f.expr != treatment)
        cols = _factor_columns(other, columns)
        if len(cols) != 1:
            raise FormulaError(
                f"modifier term {other.expr!r} must use exactly one data column, uses {cols}."
            )
        name = cols[0]
        if name in mods:
            prev = mods[name]
            mods[name] = ModifierTerm(name, prev.expr, prev.interaction_terms + (str(t),))
        else:
            mods[name] = ModifierTerm(name, other.expr, (str(t),))
    if not mods:
        raise FormulaError(
            f"formula {formula!r} has no interaction with treatment {treatment!r}; write "
            f"'y ~ {treatment} * (modifier1 + modifier2)'."
        )
    if outcome in used:
        raise FormulaError(f"the outcome {outcome!r} also appears on the right-hand side.")
    adjustment = tuple(c for c in used if c != treatment and c not in mods)
    return ParsedFormula(
        formula=formula,
        outcome=outcome,
        rhs=str(parsed.rhs),
        treatment=treatment,
        modifiers=tuple(mods.values()),
        variables=tuple(used),
        adjustment=adjustment,
    )


def _absent(name: str, columns: list[str], role: str) -> str:
    import difflib

    near = difflib.get_close_matches(name, columns, n=3)
    hint = f" Did you mean {near}?" if near else ""
    return f"column {name!r} ({role}) is not in the data.{hint} Columns: {columns[:20]}"
