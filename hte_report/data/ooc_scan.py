"""The first passes of an out-of-core analysis: what is in the file, what is excluded.

One pass counts rows, missing values per used variable (excluded, as :func:`hte_report.fit`
excludes them), infinite values and invalid outcomes, and takes each numeric variable's range
and mean over the complete rows; then each categorical variable's levels with their counts
(a ``GROUP BY`` per variable: levels, the reference profile's modes, the treatment's coding).
The SQL is the engines' shared dialect-aware text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hte_report.data.levels import _sort_key
from hte_report.data.ooc_engines import kind_of
from hte_report.data.ooc_sql import num
from hte_report.errors import DataError, FormulaError
from hte_report.spec.formula import ParsedFormula, c_wrapped, parse_formula

#: A text column with more distinct values than this is refused (a number stored as text?).
MAX_LEVELS = 200


@dataclass
class FileFacts:
    parsed: ParsedFormula
    kinds: dict[str, str]  # used column -> float | int | bool | text
    used: list[str]
    n_input: int
    n_complete: int
    exclusions: pd.DataFrame  # variable, n_missing
    categorical: set[str]
    levels: dict[str, list] = field(default_factory=dict)  # categorical -> levels (sorted)
    counts: dict[str, list] = field(default_factory=dict)  # categorical -> rows per level
    ranges: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # min,max,mean
    treated_value: object = None
    treatment_labels: tuple[str, str] = ("0", "1")
    events: float = 0.0  # sum of y over the complete rows
    sum_y2: float = 0.0  # sum of y^2


def _value(v):
    """A level as pandas would hold it: whole floats as ints (as ``integral_codes``)."""
    if isinstance(v, float) and np.isfinite(v) and v == round(v) and abs(v) < 2**53:
        return int(v)
    return v


def scan(engine, formula: str, treatment: str, family: str, cluster: str | None,
         reference: object, safe_formula: bool) -> FileFacts:
    d, src = engine.dialect, engine.source
    types = engine.describe()
    if not engine.query(f"SELECT 1 FROM {src} LIMIT 1"):
        raise DataError(f"{engine.path.name!r} has no rows"
                        + (f" (only the column names {list(types)[:10]})"
                           if set(types) != {"column0"} else "")
                        + ": the file is empty, nothing to analyse.")
    columns = list(types)
    parsed = parse_formula(formula, columns, treatment=treatment, safe=safe_formula)
    if cluster is not None and cluster not in types:
        raise DataError(f"cluster column {cluster!r} is not in {engine.path.name!r}; its "
                        f"columns are {columns[:20]}.")
    used = list(dict.fromkeys([parsed.outcome, parsed.treatment, *parsed.variables,
                               *([cluster] if cluster else [])]))
    kinds = {c: kind_of(types[c]) for c in used}
    for c in used:
        if types[c].upper().strip('"') == "NULL":
            raise DataError(f"column {c!r} holds no values: every row is missing it (its type "
                            "in the file is NULL).")
        if kinds[c] == "other":
            raise DataError(f"column {c!r} has type {types[c]}, which an out-of-core fit cannot "
                            "use; give numbers, text or booleans.")
    y = parsed.outcome
    if kinds[y] not in ("float", "int", "bool"):
        sample = [r[0] for r in engine.query(f"SELECT DISTINCT {d.ident(y)} FROM {src} "
                                             "LIMIT 4")]
        raise DataError(f"outcome {y!r} must be numeric for a {family} outcome; it has type "
                        f"{types[y]} (values like {sample}). Recode it to 0/1 or to numbers.")
    floats = [c for c in used if kinds[c] == "float"]

    def absent(c: str) -> str:
        q = d.ident(c)
        return f"({q} IS NULL OR isnan({q}))" if c in floats else f"{q} IS NULL"

    def count_if(cond: str) -> str:
        return f"SUM(CASE WHEN {cond} THEN 1 ELSE 0 END)"

    complete = " AND ".join(f"NOT {absent(c)}" for c in used)
    wrapped = {name for name, _plain in c_wrapped(parsed.rhs.replace(":", "*"))}
    numeric = [c for c in used if kinds[c] in ("float", "int") and c != y]
    text = [c for c in used if kinds[c] == "text" or (c in wrapped and c in numeric)]
    parts = ["COUNT(*)"] + [count_if(absent(c)) for c in used]
    # infinite: above the largest double (NaN compares false); Spark has no isinf
    parts += [count_if(f"abs({d.ident(c)}) > 1.7976931348623157E308") for c in floats]
    yq = f"CAST({d.ident(y)} AS DOUBLE)"
    bad_y = {"binary": f"{yq} NOT IN (0.0E0, 1.0E0)", "continuous": "FALSE",
             "count": f"{yq} < 0 OR {yq} <> floor({yq})"}[family]
    parts.append(count_if(f"NOT {absent(y)} AND ({bad_y})"))
    parts.append(count_if(complete))
    parts.append(f"SUM(CASE WHEN {complete} THEN {yq} ELSE 0.0E0 END)")
    parts.append(f"SUM(CASE WHEN {complete} THEN {yq} * {yq} ELSE 0.0E0 END)")
    for c in numeric:
        q = f"CAST({d.ident(c)} AS DOUBLE)"
        parts += [f"MIN(CASE WHEN {complete} THEN {q} END)",
                  f"MAX(CASE WHEN {complete} THEN {q} END)",
                  f"SUM(CASE WHEN {complete} THEN {q} ELSE 0.0E0 END)"]
    parts += [f"approx_count_distinct(CASE WHEN {complete} THEN {d.ident(c)} END)"
              for c in text]
    row = engine.query(f"SELECT {', '.join(parts)} FROM {src}")[0]
    row = [0 if v is None else v for v in row]
    n_input = int(row[0])
    k = 1
    missing = [int(v) for v in row[k:k + len(used)]]
    k += len(used)
    infs = dict(zip(floats, (int(v) for v in row[k:k + len(floats)])))
    k += len(floats)
    n_bad, n_complete, events = int(row[k]), int(row[k + 1]), float(row[k + 2])
    sum_y2 = float(row[k + 3])
    k += 4
    for c, n_inf in infs.items():
        if n_inf:
            raise DataError(f"column {c!r} has {n_inf} infinite value(s); recode them as "
                            "missing.")
    if n_bad:
        want = {"binary": "0/1", "count": "non-negative integers"}.get(family, "numbers")
        raise DataError(f"outcome {y!r} must be {want} for family={family!r}; {n_bad} row(s) "
                        "are not.")
    if n_input == 0:
        raise DataError(f"{engine.path.name!r} has no rows.")
    if n_complete == 0:
        raise DataError(f"every one of the {n_input} rows of {engine.path.name!r} misses a "
                        f"value in a used variable ({used}); no row can be analysed.")
    facts = FileFacts(parsed, kinds, used, n_input, n_complete,
                      pd.DataFrame({"variable": used, "n_missing": missing}), set(),
                      events=events, sum_y2=sum_y2)
    for c in numeric:
        lo, hi, s = (float(v) for v in row[k:k + 3])
        facts.ranges[c] = (lo, hi, s / n_complete)
        k += 3
    distinct = dict(zip(text, (int(v) for v in row[k:k + len(text)])))
    for c, nd in distinct.items():
        if nd > MAX_LEVELS and c != cluster:
            raise FormulaError(
                f"{c!r} is {'text' if kinds[c] == 'text' else 'categorical (C())'} with about "
                f"{nd} distinct values: too many levels for a covariate. If it should be "
                f"numeric, fix its non-numeric entries (or its type) in the file; if it is a "
                "centre, give it as cluster=.")
    # categorical: text, booleans, C(), numeric with at most two values (as hr.fit)
    cats = {c for c in used if kinds[c] in ("text", "bool") or c in wrapped}
    for c in numeric:
        if c in cats or c in (parsed.treatment, cluster):
            continue
        lo, hi, _ = facts.ranges[c]
        q = f"CAST({d.ident(c)} AS DOUBLE)"
        more = engine.query(f"SELECT 1 FROM {src} WHERE {complete} AND {q} <> {num(lo)} "
                            f"AND {q} <> {num(hi)} LIMIT 1") if lo != hi else []
        if not more:
            cats.add(c)
    facts.categorical = cats - {parsed.outcome, cluster}
    for c in sorted(facts.categorical | {parsed.treatment}):
        rows = engine.query(f"SELECT {d.ident(c)}, COUNT(*) FROM {src} WHERE {complete} "
                            f"GROUP BY {d.ident(c)}")
        rows = sorted(((_value(v), int(n)) for v, n in rows), key=lambda r: _sort_key(r[0]))
        facts.levels[c] = [v for v, _ in rows]
        facts.counts[c] = [n for _, n in rows]
    _code_treatment(facts, reference)
    return facts


def _code_treatment(facts: FileFacts, reference: object) -> None:
    """The treated arm's value, as :func:`hte_report.data.prepare` codes it."""
    name = facts.parsed.treatment
    levels = sorted(facts.levels[name], key=lambda v: (str(type(v)), v))
    if len(levels) != 2:
        raise DataError(f"treatment {name!r} must have exactly two levels among analysed rows; "
                        f"found {len(levels)}: {levels[:6]}. Recode it to 0/1 "
                        "(control/treated).")
    if reference is not None:
        if reference not in levels:
            raise DataError(f"reference={reference!r} is not a level of treatment {name!r} "
                            f"({levels}).")
        control = reference
    elif facts.kinds[name] == "bool":
        control = False
    elif set(levels) == {0, 1}:
        control = 0
    else:
        raise DataError(f"treatment {name!r} has levels {levels}; say which is the control "
                        "with reference=..., or recode to 0/1.")
    treated = next(v for v in levels if v != control)
    numeric01 = facts.kinds[name] in ("int", "float") and set(levels) == {0, 1} and control == 0
    facts.treated_value = None if numeric01 else treated
    facts.treatment_labels = (str(control), str(treated))
