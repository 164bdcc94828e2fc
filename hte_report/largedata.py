"""Data larger than memory: aggregate a Parquet or CSV file to cells inside DuckDB.

For an all-categorical design, the sufficient statistics of every working model are per-cell
counts, sums of y, of y^2 and of log y! over the combinations of treatment, covariates (and
cluster). DuckDB computes them with one streaming ``GROUP BY`` query, so memory is bounded by
the number of cells, not rows; the rest of the analysis runs on the cells exactly as
:func:`hte_report.fit` does (``aggregate=True``). The query is plain SQL, so the same
aggregation can be run by a distributed engine and its result passed as a :class:`CellData`.

Missing values are counted per variable in the same pass and excluded, as in ``fit``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .data import file_sha256
from .errors import DataError, FormulaError
from .formula import parse_formula
from .models.fast import CellStats


@dataclass(frozen=True)
class CellData:
    """Pre-aggregated analysis data: one row per cell, with its sufficient statistics."""

    frame: pd.DataFrame  # used columns; the outcome column holds the cell mean
    cells: CellStats
    n_input: int
    exclusions: pd.DataFrame  # variable, n_missing
    data_sha256: str
    source: str


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def read_cells(
    source: str | Path,
    formula: str,
    *,
    treatment: str,
    family: str,
    cluster: str | None = None,
    safe_formula: bool = True,
) -> CellData:
    """Aggregate ``source`` (Parquet or CSV) to cells for ``formula`` with DuckDB.

    Every covariate must be categorical (wrapped in ``C()``, non-numeric, or numeric with at
    most two values); a continuous covariate has as many cells as rows and is refused.
    """
    try:
        import duckdb
    except ImportError as exc:  # pragma: no cover - dependency
        raise ImportError("reading large files needs DuckDB: pip install duckdb") from exc
    path = Path(source)
    if not path.exists():
        raise DataError(f"data file {str(path)!r} does not exist.")
    con = duckdb.connect()
    reader = "read_parquet" if path.suffix.lower() in (".parquet", ".pq") else "read_csv_auto"
    src = f"{reader}('{str(path).replace(chr(39), chr(39) * 2)}')"
    columns = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()]
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM "
                             f"{src})").fetchall())
    parsed = parse_formula(formula, columns, treatment=treatment, safe=safe_formula)
    keys = list(dict.fromkeys([parsed.treatment, *parsed.variables,
                               *([cluster] if cluster else [])]))
    used = [parsed.outcome, *keys]
    wrapped = {v for v in parsed.variables if f"C({v})" in parsed.rhs.replace(" ", "")}
    numeric = {c for c in used if any(t in types[c].upper() for t in
                                      ("INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL"))}
    for v in keys:
        if v in numeric and v not in wrapped and v not in (parsed.treatment, cluster):
            k = con.execute(f"SELECT count(DISTINCT {_q(v)}) FROM {src}").fetchone()[0]
            if k > 2:
                raise FormulaError(
                    f"{v!r} is numeric with {k} values: cell aggregation needs categorical "
                    f"covariates. Write C({v}) if it is categorical, or load the data with "
                    "pandas and use hte_report.fit for continuous covariates.")
    # one pass: rows, missing per variable, infinite values, invalid outcomes
    parts = ["count(*)"] + [f"count(*) FILTER (WHERE {_q(c)} IS NULL)" for c in used]
    floats = [c for c in used if any(t in types[c].upper() for t in ("DOUBLE", "FLOAT", "REAL"))]
    parts += [f"count(*) FILTER (WHERE isinf({_q(c)}))" for c in floats]
    y = _q(parsed.outcome)
    bad_y = {"binary": f"{y} NOT IN (0, 1)", "count": f"{y} < 0 OR {y} <> floor({y})",
             "continuous": "false"}[family]
    parts.append(f"count(*) FILTER (WHERE {bad_y})")
    complete = " AND ".join(f"{_q(c)} IS NOT NULL" for c in used)
    parts.append(f"count(*) FILTER (WHERE {complete})")
    row = con.execute(f"SELECT {', '.join(parts)} FROM {src}").fetchone()
    n_input = int(row[0])
    missing = [int(v) for v in row[1:1 + len(used)]]
    infs = [int(v) for v in row[1 + len(used):1 + len(used) + len(floats)]]
    n_bad, n_complete = int(row[-2]), int(row[-1])
    for c, k in zip(floats, infs):
        if k:
            raise DataError(f"column {c!r} has {k} infinite value(s); recode them as missing.")
    if n_bad:
        raise DataError(f"outcome {parsed.outcome!r}: {n_bad} row(s) are not valid for "
                        f"family={family!r}.")
    if n_complete == 0:
        raise DataError("no complete rows remain after excluding rows with missing values.")
    key_sql = ", ".join(_q(k) for k in keys)
    cells = con.execute(
        f"SELECT {key_sql}, count(*) AS _n, sum({y}) AS _s1, sum({y} * {y}) AS _s2, "
        f"sum(lgamma({y} + 1)) AS _lg FROM {src} WHERE {complete} GROUP BY {key_sql} "
        f"ORDER BY {key_sql}").df()
    stats = CellStats(cells["_n"].to_numpy(float), cells["_s1"].to_numpy(float),
                      cells["_s2"].to_numpy(float), cells["_lg"].to_numpy(float))
    frame = cells[keys].copy()
    frame[parsed.outcome] = stats.s1 / stats.cnt
    exclusions = pd.DataFrame({"variable": used, "n_missing": missing})
    con.close()
    return CellData(frame.reset_index(drop=True), stats, n_input, exclusions,
                    file_sha256(path), str(path))


def n_excluded(cd: CellData) -> int:
    return int(cd.n_input - np.round(cd.cells.cnt.sum()))
