"""Data larger than memory: aggregate a Parquet or CSV file to cells inside DuckDB.

For an all-categorical design, the sufficient statistics of every working model are per-cell
counts, sums of y, of y^2 and of log y! over the combinations of treatment, covariates (and
cluster). DuckDB computes them with one streaming ``GROUP BY`` query, so memory is bounded by
the number of cells, not rows; the rest of the analysis runs on the cells exactly as
:func:`hte_report.fit` does (``aggregate=True``). The query is plain SQL, so the same
aggregation can be run by a distributed engine and its result passed as a :class:`CellData`.

Missing values are counted per variable in the same pass and excluded, as in ``fit``.

A design with continuous covariates has as many cells as rows: it is analysed out of core by
:func:`hte_report.estimation.outofcore.fit_file`, exact IRLS whose passes are SQL aggregates
(:mod:`hte_report.data.ooc_sql`, run by DuckDB or Spark: :mod:`hte_report.data.ooc_engines`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hte_report.data.cells import CellStats
from hte_report.data.digest import file_sha256
from hte_report.errors import DataError, FormulaError
from hte_report.spec.formula import c_wrapped, parse_formula


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


#: Text that pandas' read_csv reads as missing: DuckDB is told the same, so that a file gives
#: the same analysis through read_cells as through hte_report.fit.
PANDAS_NA = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
             "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")
NUMERIC = ("INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL", "HUGEINT")
FLOATING = ("DOUBLE", "FLOAT", "REAL")


#: Suffixes of Parquet files (and of the data files of a Parquet dataset directory).
PARQUET_SUFFIXES = (".parquet", ".pq")


#: Suffixes of the text files read_cells reads (DuckDB's CSV reader sniffs the separator).
CSV_SUFFIXES = (".csv", ".tsv", ".txt")


#: Separators a CSV file's header is tried with (DuckDB's sniffer knows these).
CSV_SEPARATORS = (",", ";", "\t", "|")


def check_csv_columns(path: Path, columns: list[str]) -> None:
    """What the engine made of a CSV file's header, checked against the file's first line: a
    duplicated name (DuckDB would rename the second ``age`` to ``age_1``) and lines whose
    number of fields differs from the header's (the sniffer then reads each line as one text
    column, named after the whole header line) are errors naming the names or the line."""
    if path.is_dir() or path.suffix.lower() in PARQUET_SUFFIXES:
        return
    import csv

    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        first = next((line for line in fh if line.strip()), "")
    for sep in CSV_SEPARATORS:
        names = next(csv.reader([first], delimiter=sep), [])
        if len(names) > 1 and len(names) == len(columns):
            seen: set[str] = set()
            dup = list(dict.fromkeys(n for n in names if n and (n in seen or seen.add(n))))
            if dup:
                raise DataError(f"the header line of {path.name!r} has duplicated column "
                                f"name(s) {dup[:10]}: every column must have its own name. "
                                "Give each column its own name in the file's header line.")
            return
        if len(columns) == 1 and len(names) > 1:  # the sniffer gave up on this separator
            where = _first_ragged_line(path, sep, len(names))
            if where is not None:
                raise DataError(
                    f"cannot read {str(path)!r} as a CSV file: line {where[0]} has {where[1]} "
                    f"fields but the header line names {len(names)} columns, so its values "
                    "cannot be matched to columns. Fix that line (a separator inside a value "
                    "must be quoted: \"1,5\").")
            return


def _first_ragged_line(path: Path, sep: str, n_names: int) -> tuple[int, int] | None:
    """The line where the first record starts whose number of fields is not ``n_names``
    (blank lines skipped), and that number; read only when the engine could not parse it."""
    import csv

    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh, delimiter=sep)
        start, header = 1, False
        for row in reader:
            if row and header and len(row) != n_names:
                return start, len(row)
            header = header or bool(row)
            start = reader.line_num + 1
    return None


def _reader(path: Path) -> str:
    quoted = str(path).replace("'", "''")
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return f"read_parquet('{quoted}')"
    na = ", ".join("'" + v.replace("'", "''") + "'" for v in PANDAS_NA)
    # numbers or text, as pandas reads a CSV ('inf' a number, 'yes'/'no' text)
    return (f"read_csv('{quoted}', nullstr=[{na}], "
            "auto_type_candidates=['BIGINT', 'DOUBLE', 'VARCHAR'])")


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
    import os

    from hte_report.spec.options import check_choice

    if not isinstance(source, (str, os.PathLike)):
        raise DataError(f"read_cells() reads a Parquet or CSV file: source= is its path, got "
                        f"{type(source).__name__}. For a data frame in memory use hte_report.fit "
                        "directly.")
    check_choice("family", family, ("binary", "count", "continuous"))
    path = Path(source)
    if not path.exists():
        raise DataError(f"data file {str(path)!r} does not exist.")
    if path.is_dir():
        raise DataError(f"data path {str(path)!r} is a directory; give a Parquet or CSV file.")
    if path.suffix.lower() not in (*PARQUET_SUFFIXES, *CSV_SUFFIXES):
        raise DataError(f"read_cells() reads Parquet (.parquet) and CSV (.csv, .tsv, .txt) files, "
                        f"not {path.name!r}. Read other files with hte_report.read_data and fit "
                        "the data frame with hte_report.fit.")
    if path.suffix.lower() in CSV_SUFFIXES:
        with open(path, "rb") as fh:
            head = fh.read(65536)
        if not head.strip():
            raise DataError(f"data file {str(path)!r} is empty: no header line with column "
                            "names.")
    con = duckdb.connect()
    try:
        return _read_cells(con, path, formula, treatment, family, cluster, safe_formula)
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0][:300]
        raise DataError(f"DuckDB could not read or aggregate {path.name!r}: {first}. Check "
                        "that it is a Parquet or CSV file with the formula's columns.") from None
    finally:
        con.close()


def _read_cells(con, path: Path, formula: str, treatment: str, family: str,
                cluster: str | None, safe_formula: bool) -> CellData:
    src = _reader(path)
    described = con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()
    columns = [r[0] for r in described]
    check_csv_columns(path, columns)
    types = {r[0]: str(r[1]) for r in described}
    parsed = parse_formula(formula, columns, treatment=treatment, safe=safe_formula)
    if cluster is not None and cluster not in types:
        raise DataError(f"cluster column {cluster!r} is not in {path.name!r}.")
    ytype = types[parsed.outcome].upper()
    if not any(t in ytype for t in NUMERIC):
        sample = [r[0] for r in con.execute(
            f"SELECT DISTINCT {_q(parsed.outcome)} FROM {src} LIMIT 4").fetchall()]
        if not sample:  # a header without rows reads as text columns
            raise DataError(f"{path.name!r} has no rows (only the column names); there is "
                            "nothing to analyse.")
        raise DataError(
            f"outcome {parsed.outcome!r} must be numeric for a {family} outcome; it has type "
            f"{types[parsed.outcome]} (values like {sample}). Recode it to 0/1 or to numbers.")
    keys = list(dict.fromkeys([parsed.treatment, *parsed.variables,
                               *([cluster] if cluster else [])]))
    used = [parsed.outcome, *keys]
    wrapped = {name for name, _plain in c_wrapped(parsed.rhs.replace(":", "*"))}
    numeric = {c for c in used if any(t in types[c].upper() for t in NUMERIC)}
    for v in keys:
        if v in numeric and v not in wrapped and v not in (parsed.treatment, cluster):
            k = con.execute(f"SELECT count(DISTINCT {_q(v)}) FROM {src}").fetchone()[0]
            if k > 2:
                raise FormulaError(
                    f"{v!r} is numeric with {k} values: cell aggregation needs categorical "
                    f"covariates. Write C({v}) if it is categorical; for continuous "
                    "covariates use hte_report.estimation.outofcore.fit_file (out of core), "
                    "or load the data with pandas and use hte_report.fit.")
    # one pass: rows, missing per variable, infinite values, invalid outcomes; a float NaN
    # (Parquet) is missing, as pandas reads it
    floats = [c for c in used if any(t in types[c].upper() for t in FLOATING)]

    def absent(c: str) -> str:
        return f"({_q(c)} IS NULL OR isnan({_q(c)}))" if c in floats else f"{_q(c)} IS NULL"

    parts = ["count(*)"] + [f"count(*) FILTER (WHERE {absent(c)})" for c in used]
    parts += [f"count(*) FILTER (WHERE isinf({_q(c)}))" for c in floats]
    y = _q(parsed.outcome)
    bad_y = {"binary": f"{y} NOT IN (0, 1)", "count": f"{y} < 0 OR {y} <> floor({y})",
             "continuous": "false"}[family]
    parts.append(f"count(*) FILTER (WHERE NOT {absent(parsed.outcome)} AND ({bad_y}))")
    complete = " AND ".join(f"NOT {absent(c)}" for c in used)
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
        want = {"binary": "0/1", "count": "non-negative integers"}.get(family, "numbers")
        raise DataError(f"outcome {parsed.outcome!r} must be {want} for family={family!r}; "
                        f"{n_bad} row(s) are not.")
    if n_input == 0:
        raise DataError(f"{path.name!r} has no rows.")
    if n_complete == 0:
        raise DataError(f"every one of the {n_input} rows of {path.name!r} misses a value in a "
                        "used variable; no row can be analysed.")
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
    return CellData(frame.reset_index(drop=True), stats, n_input, exclusions,
                    file_sha256(path), str(path))


def n_excluded(cd: CellData) -> int:
    return int(cd.n_input - np.round(cd.cells.cnt.sum()))
