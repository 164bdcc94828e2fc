"""``Surv(time, event) ~ ...`` formulas: the time and event columns, ``strata()`` terms, and
the right-hand side parsed like any other formula (treatment, modifiers, adjustment)."""

from __future__ import annotations

import ast
import math
from collections.abc import Sequence
from dataclasses import dataclass

from hte_report.errors import FormulaError, short
from hte_report.spec.formula import ParsedFormula, parse_formula


@dataclass(frozen=True)
class SurvFormula:
    """A survival formula: ``Surv(time, event) ~ rhs + strata(s)``, with the right-hand side
    (strata removed) parsed by :func:`hte_report.formula.parse_formula`."""

    formula: str
    time: str
    event: str
    strata: tuple[str, ...]
    parsed: ParsedFormula


def _top_level_split(text: str, sep: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch in "([") - (ch in ")]")
        if ch == sep and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return parts + [cur]


def _call_of(text: str, name: str) -> list[str] | None:
    """Argument names of ``name(a, b, ...)`` when ``text`` is exactly such a call of names."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == name):
        return None
    if node.keywords or not all(isinstance(a, ast.Name) for a in node.args):
        raise FormulaError(f"{text.strip()!r}: {name}() takes data column names only, "
                           f"e.g. {name}(a, b).")
    return [a.id for a in node.args]


def split_surv(formula: str) -> tuple[str, str, list[str], list[str]]:
    """(time, event, strata columns, other right-hand-side terms) of a ``Surv()`` formula, with
    clear errors for every other form."""
    if not isinstance(formula, str) or "~" not in formula:
        raise FormulaError(f"formula must be a string like 'Surv(time, event) ~ treat * age', "
                           f"got {formula!r}.")
    lhs, rhs = formula.split("~", 1)
    args = _call_of(lhs, "Surv")
    if args is None:
        raise FormulaError(f"the left-hand side of {formula!r} must be Surv(time, event).")
    if len(args) == 3:
        raise FormulaError("the counting-process form Surv(start, stop, event) is not supported; "
                           "use Surv(time, event) with one row per patient.")
    if len(args) != 2:
        raise FormulaError(f"Surv() takes (time, event); got {len(args)} argument(s).")
    time, event = args
    keep, strata = [], []
    for term in _top_level_split(rhs, "+"):
        s = _call_of(term, "strata")
        if s is not None:
            strata += [c for c in s if c not in strata]
            continue
        for bad, fix in (("strata(", "write strata(...) as a separate '+ strata(site)' term"),
                         ("cluster(", "use variance=Cluster('site') instead"),
                         ("Surv(", "Surv() belongs on the left-hand side")):
            if bad in term:
                raise FormulaError(f"term {term.strip()!r} of {formula!r}: {fix}.")
        keep.append(term.strip())
    return time, event, strata, keep


def check_surv_formula_safety(formula: str) -> None:
    """:func:`~hte_report.spec.formula.check_formula_safety` for a ``Surv(time, event) ~ ...
    + strata(s)`` formula from a file: Surv() and strata() of column names only, every other
    term as for any formula."""
    from hte_report.spec.formula import check_formula_safety

    time, _, _, keep = split_surv(formula)
    check_formula_safety(f"{time} ~ {' + '.join(keep) or '1'}")


def parse_surv_formula(formula: str, columns: Sequence[str], treatment: str | None = None,
                       safe: bool = False, binary_columns: Sequence[str] = (),
                       modifiers_required: bool = True) -> SurvFormula:
    """Parse ``Surv(time, event) ~ treat * (age + C(stage)) + strata(site)``.

    ``Surv`` and ``strata`` are read here; the rest of the right-hand side goes through
    :func:`hte_report.formula.parse_formula` with the time column standing in as the outcome.
    """
    columns = list(columns)
    time, event, strata, keep = split_surv(formula)
    for col, role in [(time, "time"), (event, "event")] + [(c, "strata") for c in strata]:
        if col not in columns:
            from hte_report.spec.formula import _absent

            raise FormulaError(_absent(col, columns, role))
    parsed = parse_formula(f"{time} ~ {' + '.join(keep)}", columns, treatment=treatment,
                           safe=safe, binary_columns=binary_columns,
                           modifiers_required=modifiers_required)
    for col, role in [(event, "event")] + [(c, "strata") for c in strata]:
        if col in parsed.variables:
            raise FormulaError(f"the {role} column {col!r} also appears as a covariate.")
    return SurvFormula(formula, time, event, tuple(strata), parsed)


SURVIVAL_KEYS = ("event", "censor", "time_unit", "horizons", "rmst_tau", "ties")


def check_survival_outcome(raw: dict, out: dict, fail) -> None:
    """A plan's survival outcome (``fail(path, message)`` raises the plan error): it names its
    time (``variable``) and exactly one of ``event`` or ``censor``; its formula is
    ``Surv(time, event-or-censor) ~ ...``; horizons and tau are positive. Other families take
    none of these keys."""
    if out["family"] != "survival":
        for key in SURVIVAL_KEYS:
            if key in out and not (key == "time_unit" and out["family"] == "repeated"):
                fail(f"outcome.{key}", f"applies to family 'survival' only; this outcome's "
                     f"family is {out['family']!r}. Remove outcome.{key}.")
        return
    given = [k for k in ("event", "censor") if out.get(k)]
    if len(given) != 1:
        fail("outcome.family", "a survival outcome names its event indicator: exactly one of "
             "outcome.event (1 = event, 0 = censored) or outcome.censor (a censoring flag such "
             "as ADaM CNSR: 1 = censored, 0 = event).")
    flag = out[given[0]]
    if flag == out["variable"]:
        fail(f"outcome.{given[0]}", "is the time column (outcome.variable); name the event or "
             "censoring indicator.")
    if raw["model"].get("models"):
        fail("model.models", "a survival outcome is analysed with the Cox model (hazard "
             "ratios) and Kaplan-Meier (RMST); remove model.models.")
    if raw["model"].get("variance") not in (None, "model"):
        fail("model.variance", "a survival outcome uses the Cox model's own variance, or a "
             "cluster-robust one with model.cluster; remove model.variance.")
    try:
        time, event, _, _ = split_surv(raw["model"]["formula"])
    except FormulaError as exc:
        fail("model.formula", f"a survival outcome needs a 'Surv(time, event) ~ ...' formula: "
             f"{exc}")
    if time != out["variable"] or event != flag:
        fail("model.formula", f"its left-hand side Surv({time}, {event}) must be "
             f"Surv({out['variable']}, {flag}): outcome.variable and outcome.{given[0]}.")
    for h in out.get("horizons") or []:
        if not (math.isfinite(h) and h > 0):
            fail("outcome.horizons", f"must be positive times, got {short(out['horizons'])}.")
    if "rmst_tau" in out and not (math.isfinite(out["rmst_tau"]) and out["rmst_tau"] > 0):
        fail("outcome.rmst_tau", f"must be a positive time, got {short(out['rmst_tau'])}.")
