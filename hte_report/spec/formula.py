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
import re
from collections.abc import Iterable
from dataclasses import dataclass

from formulaic import Formula
from formulaic.errors import FormulaParsingError
from formulaic.formula import SimpleFormula

from hte_report.errors import FormulaError, short

#: Transforms a formula from a file may call. Everything else is refused. (``hashed`` is not
#: among them: its default of 2**20 feature columns is a memory bomb, not an analysis.)
SAFE_TRANSFORMS = frozenset(
    {"C", "bs", "cr", "cs", "cc", "te", "poly", "center", "scale", "standardize", "lag",
     "log", "log1p", "log2", "log10", "exp", "sqrt", "abs", "I", "Q", "contr",
     "Treatment", "T", "Sum", "S", "Helmert", "Poly", "Diff", "ns"}
)
#: Limits on formula text: longer or deeper formulas are refused before anything parses them.
MAX_FORMULA_LENGTH = 10_000
MAX_NESTING = 50
#: Constant arithmetic in a formula (``I(age + 2**10)``) is evaluated by Python when the term is
#: evaluated; integers beyond this many bits (a float tops out at 2**1024) are refused, as are
#: repeated strings or lists longer than MAX_REPEAT, so that no term can hang or exhaust memory.
MAX_CONSTANT_BITS = 4096
MAX_REPEAT = 10_000
#: Integer arguments of transforms (degrees of freedom, polynomial degree, lag) above this are
#: refused: ``poly(age, 10**6)`` would build a million columns.
MAX_TRANSFORM_ARGUMENT = 1000
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


_ANSI = re.compile(r"\x1b\[[0-9;]*m|[⧛⧚]")


def _clean(exc: BaseException) -> str:
    """The first paragraph of a parser's message, without terminal colour codes."""
    text = _ANSI.sub("", str(exc)).strip().split("\n\n")[0]
    return " ".join(text.split())[:300].rstrip(".")


_BACKTICK = re.compile(r"`([^`]*)`")


def pythonize(expr: str) -> tuple[str, dict[str, str]]:
    """``expr`` with every backtick-quoted column name replaced by a plain identifier (formulaic
    does the same before evaluating), and the map back to the names."""
    names: dict[str, str] = {}

    def sub(m: re.Match) -> str:
        key = f"hte_quoted{len(names)}x"
        names[key] = m.group(1)
        return key

    return _BACKTICK.sub(sub, expr), names


def _names_in(expr: str) -> list[str]:
    """Data-column-like names an expression reads (function names excluded): plain names,
    backtick-quoted names and the quoted names of ``Q("...")``."""
    code, quoted = pythonize(expr)
    try:
        tree = ast.parse(code, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return [expr]
    funcs = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    names = []
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Name) and id(node) not in funcs and node.id not in _SAFE_NAMES:
            name = quoted.get(node.id, node.id)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id == "Q" and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            name = node.args[0].value
        if name is not None and name not in names:
            names.append(name)
    return names


def c_wrapped(expr: str) -> list[tuple[str, bool]]:
    """Columns that ``expr`` wraps in ``C(...)``, each with whether it is spelled as a plain
    name (``C(region)``) rather than quoted (``C(`blood group`)``, ``C(Q("blood group"))``)."""
    code, quoted = pythonize(expr)
    try:
        tree = ast.parse(code, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    out = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "C" and node.args):
            continue
        arg = node.args[0]
        if isinstance(arg, ast.Name):
            out.append((quoted.get(arg.id, arg.id), arg.id not in quoted))
        else:
            out.extend((n, False) for n in _names_in(ast.unparse(arg)))
    return out


def quote_name(name: str) -> str:
    """A column name as a formula may spell it: backtick-quoted unless a plain identifier."""
    return name if name.isidentifier() else f"`{name}`"


def formula_text(terms) -> str:
    """The text of formulaic terms that formulaic parses back to the same terms. (``str()`` of
    a term drops the backticks of quoted column names such as `` `systolic bp` ``.)"""
    def factor(f) -> str:
        return quote_name(f.expr) if f.eval_method.value == "lookup" else f.expr

    return " + ".join(":".join(factor(f) for f in t.factors) for t in terms)


def parse_text(formula: str, example: str = "y ~ treat * (age + sex)") -> Formula:
    """``Formula(formula)`` with every parser failure as a :class:`FormulaError`, refusing
    multi-part (``|``) formulas and formulas without a left-hand side."""
    if not isinstance(formula, str):
        raise FormulaError(f"formula must be a string like {example!r}, got {short(formula)}.")
    if "~" not in formula:
        raise FormulaError(f"formula {short(formula)} has no '~': write the outcome column, "
                           f"'~' and the model terms, like {example!r}.")
    if len(formula) > MAX_FORMULA_LENGTH:
        raise FormulaError(f"formula {short(formula)} is {len(formula)} characters long; at most "
                           f"{MAX_FORMULA_LENGTH} are allowed.")
    depth = deepest = 0
    for ch in formula:
        depth += ch in "([{"
        depth -= ch in ")]}"
        deepest = max(deepest, depth)
    if deepest > MAX_NESTING:
        raise FormulaError(f"formula {short(formula)} nests brackets {deepest} levels deep; at "
                           f"most {MAX_NESTING} are allowed. Remove the redundant parentheses.")
    try:
        parsed = Formula(formula)
    except (FormulaParsingError, SyntaxError, ValueError, TypeError, RecursionError,
            MemoryError) as exc:
        raise FormulaError(f"cannot parse formula {short(formula)}: {_clean(exc)}. Write it like "
                           f"{example!r}.{_quote_hint(formula, str(exc))}") from None
    if not hasattr(parsed, "lhs"):
        raise FormulaError(f"formula {short(formula)} has no outcome: write the outcome column "
                           f"before '~', like {example!r}.")
    if not (isinstance(parsed.lhs, SimpleFormula) and isinstance(parsed.rhs, SimpleFormula)):
        raise FormulaError(f"formula {short(formula)} has several parts separated by '|'; only "
                           f"one-part formulas like {example!r} are supported (for repeated "
                           "measures use hr.fit_mixed with group=...).")
    return parsed


def _quote_hint(formula: str, message: str) -> str:
    """For an 'unknown operator' that is part of a column name (``prio€``, ``bp-sys``): how to
    quote the name."""
    import re

    m = re.search(r"Unknown operator '(.+?)'", message)
    if not m:
        return ""
    op = m.group(1)
    word = re.search(rf"[\w.]*{re.escape(op)}[\w.{re.escape(op)}]*", formula)
    if not word or not re.search(r"\w", word.group(0)):
        return ""
    return (f" If {word.group(0)!r} is a column name, quote it with backticks: "
            f"`{word.group(0)}`.")


def used_columns(terms, columns: list[str]) -> list[str]:
    """Data columns the formula's right-hand-side terms use, in order of appearance; a column
    not in the data is a clear error naming the term."""
    used: list[str] = []
    for term in terms:
        for factor in term.factors:
            for col in _factor_columns(factor, columns):
                if col not in columns:
                    raise FormulaError(_absent(col, columns, f"term {short(str(term))}"))
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
    if isinstance(formula, str) and "__" in formula:
        raise FormulaError(f"unsafe formula {short(formula)}: dunder names ('__') are not "
                           "allowed.")
    parsed = parse_text(formula)
    for part in (parsed.lhs, parsed.rhs):
        for term in part:
            for factor in term.factors:
                if factor.eval_method.value == "python":
                    _check_expr(factor.expr)


def _check_expr(expr: str) -> None:
    def refuse(why: str) -> FormulaError:
        return FormulaError(
            f"unsafe formula term {short(expr)}: {why}. Formulas read from files may use "
            f"column names, numbers, arithmetic and the transforms {sorted(SAFE_TRANSFORMS)}."
        )

    code, quoted = pythonize(expr)
    try:
        tree = ast.parse(code, mode="eval")
    except SyntaxError as exc:
        raise refuse(f"not a valid expression ({exc.msg})") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise refuse(f"not a valid expression ({_clean(exc)})") from None
    for node in ast.walk(tree):
        if not isinstance(node, _SAFE_NODES):
            raise refuse(f"{type(node).__name__.lower()} is not allowed")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                raise refuse("only plain transform calls are allowed")
            if node.func.id not in SAFE_TRANSFORMS:
                raise refuse(f"calling {short(node.func.id)} is not allowed")
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            raise refuse(f"name {short(node.id)} is not allowed")
        if isinstance(node, ast.keyword) and node.arg is not None and node.arg.startswith("_"):
            raise refuse(f"keyword {short(node.arg)} is not allowed")
    why = _constant_problem(tree)
    if why:
        raise refuse(why)


class _Unknown:
    """Marks a sub-expression whose value depends on the data."""


_UNKNOWN = _Unknown()


def _constant_problem(tree: ast.AST) -> str | None:
    """Why the constant arithmetic in ``tree`` could hang or exhaust memory, or None.

    Every constant sub-expression is evaluated here with bounds (integers up to
    :data:`MAX_CONSTANT_BITS` bits, repeated text or lists up to :data:`MAX_REPEAT` items), so
    that ``9**9**9`` is refused in microseconds instead of computed for hours."""
    problems: list[str] = []

    def bits(v) -> int:
        return abs(int(v)).bit_length() if isinstance(v, (bool, int)) else 0

    def binop(op, a, b):
        if isinstance(op, ast.Pow):
            if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
                if b * bits(a) > MAX_CONSTANT_BITS:
                    raise OverflowError(f"the power {short(a, 20)}**{short(b, 20)} is too large")
        elif isinstance(op, ast.Mult):
            for x, y in ((a, b), (b, a)):
                if isinstance(x, (str, bytes, list, tuple)) and isinstance(y, int):
                    if len(x) * max(y, 0) > MAX_REPEAT:
                        raise OverflowError(f"repeating a text or list {short(y, 20)} times "
                                            "is not allowed")
            if isinstance(a, int) and isinstance(b, int) and bits(a) + bits(b) > \
                    MAX_CONSTANT_BITS:
                raise OverflowError("the product of the constants is too large")
        ops = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b,
               ast.Div: lambda: a / b, ast.FloorDiv: lambda: a // b, ast.Mod: lambda: a % b,
               ast.Pow: lambda: a ** b}
        return ops[type(op)]()

    def value(node):
        if isinstance(node, ast.Constant):
            if bits(node.value) > MAX_CONSTANT_BITS:
                raise OverflowError("a constant is too large")
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [value(e) for e in node.elts]
            if any(v is _UNKNOWN for v in items):
                return _UNKNOWN
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.UnaryOp):
            v = value(node.operand)
            if v is _UNKNOWN:
                return _UNKNOWN
            return -v if isinstance(node.op, ast.USub) else +v
        if isinstance(node, ast.BinOp):
            a, b = value(node.left), value(node.right)
            if a is _UNKNOWN or b is _UNKNOWN:
                return _UNKNOWN
            return binop(node.op, a, b)
        if isinstance(node, ast.Call):
            func = node.func.id if isinstance(node.func, ast.Name) else ""
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                v = value(arg)
                if (func not in ("I", "Q") and isinstance(v, (int, float))
                        and not isinstance(v, bool) and abs(v) > MAX_TRANSFORM_ARGUMENT
                        and not isinstance(arg, (ast.List, ast.Tuple))):
                    raise OverflowError(f"the argument {short(v, 30)} of {func}() is larger "
                                        f"than {MAX_TRANSFORM_ARGUMENT}")
            return _UNKNOWN
        if isinstance(node, ast.Expression):
            return value(node.body)
        for child in ast.iter_child_nodes(node):
            value(child)
        return _UNKNOWN

    try:
        value(tree)
    except OverflowError as exc:
        problems.append(f"{exc}; constants must stay within {MAX_CONSTANT_BITS}-bit integers "
                        "and floating-point range")
    except ZeroDivisionError:
        problems.append("a constant is divided by zero")
    except (TypeError, ValueError, RecursionError, MemoryError) as exc:
        problems.append(f"its constant arithmetic is invalid ({_clean(exc)})")
    return problems[0] if problems else None


def split_formula(formula: str, safe: bool, example: str):
    """Parse with formulaic (after the safety check when ``safe``); the outcome must be one
    column. Returns the parsed formula and the outcome name."""
    if safe:
        check_formula_safety(formula)
    parsed = parse_text(formula, example)
    for part in (parsed.lhs, parsed.rhs):  # constant arithmetic is bounded on every path
        for term in part:
            for factor in term.factors:
                if factor.eval_method.value == "python":
                    why = _constant_problem_of(factor.expr)
                    if why:
                        raise FormulaError(f"formula term {short(factor.expr)}: {why}.")
    lhs = list(parsed.lhs)
    if len(lhs) != 1 or len(lhs[0].factors) != 1:
        raise FormulaError(f"the left-hand side of {short(formula)} must be one outcome column.")
    return parsed, lhs[0].factors[0].expr


def _constant_problem_of(expr: str) -> str | None:
    try:
        tree = ast.parse(pythonize(expr)[0], mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None  # not Python: formulaic reports it when it evaluates the term
    return _constant_problem(tree)


def parse_formula(
    formula: str,
    columns: Iterable[str],
    treatment: str | None = None,
    safe: bool = False,
    binary_columns: Iterable[str] = (),
    modifiers_required: bool = True,
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
    modifiers_required
        False for an analysis without effect modifiers (the overall analysis of a subgroup
        strategy, a model fitted within one subgroup); ``treatment`` must then be named.
    """
    columns = list(columns)
    if treatment is not None and not isinstance(treatment, str):
        raise FormulaError(f"treatment= must be the name of the treatment column (text), got "
                           f"{short(treatment)}.")
    parsed, outcome = split_formula(formula, safe, "y ~ treat * (age + sex)")
    if outcome not in columns:
        raise FormulaError(_absent(outcome, columns, "outcome"))

    rhs_terms = list(parsed.rhs)
    if not any(len(t.factors) == 1 and t.factors[0].expr == "1" for t in rhs_terms):
        raise FormulaError(
            f"formula {short(formula)} removes the intercept ('- 1' or '+ 0'); interaction models "
            "without an intercept are not supported. Remove it from the formula."
        )
    used = used_columns(rhs_terms, columns)

    interactions = [t for t in rhs_terms if len(t.factors) > 1]
    lookup = {
        t.factors[0].expr
        for t in rhs_terms
        if len(t.factors) == 1 and t.factors[0].eval_method.value == "lookup"
    }
    if not interactions and modifiers_required:
        raise FormulaError(
            f"formula {short(formula)} has no treatment-by-covariate interaction; write "
            f"'y ~ {quote_name(treatment) if treatment else 'treat'} * (modifier1 + modifier2)' "
            "so effect modification can be estimated."
        )
    if treatment is None and not interactions:
        raise FormulaError(f"name the treatment of {short(formula)} with treatment='...'.")
    if treatment is None:
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
                f"cannot tell the treatment in {short(formula)}: candidates {cands or 'none'}. "
                "Name it with treatment='...'."
            )
        treatment = cands[0]
    if treatment not in columns:
        raise FormulaError(_absent(treatment, columns, "treatment"))
    if treatment not in used:
        raise FormulaError(
            f"treatment {short(treatment)} does not appear in the formula {short(formula)}; "
            f"write it crossed with the modifiers, e.g. "
            f"'{outcome} ~ {quote_name(treatment)} * (age + sex)'.")
    if treatment not in lookup:
        raise FormulaError(
            f"treatment {short(treatment)} must enter the formula as a plain main effect "
            f"(e.g. '{treatment} * (age + sex)'); transforms of the treatment are not supported."
        )

    for term in rhs_terms:
        for factor in term.factors:
            if factor.expr != treatment and treatment in _factor_columns(factor, columns):
                raise FormulaError(
                    f"the treatment {short(treatment)} appears inside {short(factor.expr)}; it "
                    "may enter only as a plain main effect and in interactions "
                    f"('{treatment} * age')."
                )
    mods: dict[str, ModifierTerm] = {}
    for t in interactions:
        exprs = [f.expr for f in t.factors]
        if treatment not in exprs:
            continue  # covariate-by-covariate interaction: adjustment
        if len(exprs) > 2:
            raise FormulaError(
                f"term {short(str(t))} is a three-way interaction with treatment; only "
                "treatment x one-modifier terms are supported. Combine the modifiers into one "
                "factor column first."
            )
        other = next(f for f in t.factors if f.expr != treatment)
        cols = _factor_columns(other, columns)
        if len(cols) != 1:
            raise FormulaError(
                f"modifier term {short(other.expr)} must use exactly one data column, uses {cols}."
            )
        name = cols[0]
        if name in mods:
            prev = mods[name]
            mods[name] = ModifierTerm(name, prev.expr, prev.interaction_terms + (str(t),))
        else:
            mods[name] = ModifierTerm(name, other.expr, (str(t),))
    if not mods and modifiers_required:
        raise FormulaError(
            f"formula {short(formula)} has no interaction with treatment {short(treatment)}; write "
            f"'y ~ {treatment} * (modifier1 + modifier2)'."
        )
    if outcome in used:
        raise FormulaError(f"the outcome {short(outcome)} also appears on the right-hand side.")
    adjustment = tuple(c for c in used if c != treatment and c not in mods)
    return ParsedFormula(
        formula=formula,
        outcome=outcome,
        rhs=formula_text(rhs_terms),
        treatment=treatment,
        modifiers=tuple(mods.values()),
        variables=tuple(used),
        adjustment=adjustment,
    )


def _absent(name: str, columns: list[str], role: str) -> str:
    import difflib

    text = [c for c in columns if isinstance(c, str)]
    near = difflib.get_close_matches(name, text, n=3) if isinstance(name, str) else []
    hint = f" Did you mean {near}?" if near else ""
    shown = ", ".join(short(c, 40) for c in columns[:20]) + (", ..." if len(columns) > 20 else "")
    return (f"column {short(name)} ({role}) is not in the data.{hint} Columns: [{shown}]"
            + _columns_hint(columns))


def _columns_hint(columns: list) -> str:
    """Why a name may be missing from the columns: names that are not text (a MultiIndex, or
    numbers), or one column whose name holds the whole header (another separator)."""
    if columns and any(isinstance(c, tuple) for c in columns):
        return (". The columns are a MultiIndex (tuples): flatten them first, e.g. "
                "df.columns = ['_'.join(map(str, c)) for c in df.columns].")
    if columns and any(not isinstance(c, str) for c in columns):
        return (". Some column names are not text; a formula can only name text columns: "
                "df.columns = df.columns.astype(str).")
    if len(columns) == 1 and isinstance(columns[0], str):
        for sep, label in ((";", "semicolons"), ("\t", "tabs"), (",", "commas"),
                           ("|", "bars")):
            if sep in columns[0]:
                return (f". The data have one column whose name holds {label}: the file "
                        f"separates its fields with {label}. Save it as comma-separated .csv "
                        "(tab-separated as .tsv), or read it with "
                        f"pd.read_csv(path, sep={sep!r}) and pass the frame.")
    return ""
