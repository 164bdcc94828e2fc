"""Reading, validating and accounting for the analysis data.

Nothing the user gave is lost silently: rows with a missing value in a used variable are excluded
and counted per variable; non-finite numbers and a treatment that is not binary are errors.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hte_report.data import readers
from hte_report.data.digest import PendingDigest, start_digest
from hte_report.data.levels import factorize, raw_codes
from hte_report.errors import ArgumentError, DataError, DataWarning, short

TREATMENT_COLUMN = "treat"


@dataclass(frozen=True)
class PreparedData:
    """The rows analysed, with the treatment recoded to 0/1, and what was excluded."""

    frame: pd.DataFrame
    n_input: int
    exclusions: pd.DataFrame  # columns: variable, n_missing (rows may miss several variables)
    n_excluded: int
    treatment_labels: tuple[str, str]  # (control, treated) as the user coded them
    digest: str | PendingDigest  # the data's SHA-256, or its computation under way
    levels: dict = field(default_factory=dict)  # text covariates of ``frame``: Levels

    @property
    def data_sha256(self) -> str:
        """SHA-256 of the data (:func:`dataset_sha256`), waiting for it if under way."""
        return self.digest if isinstance(self.digest, str) else self.digest.result()


#: File types read_data knows, by suffix.
TEXT_SUFFIXES = {".csv": ",", ".txt": ",", ".tsv": "\t"}
OTHER_SUFFIXES = {".parquet": "Parquet", ".pq": "Parquet", ".xpt": "SAS transport",
                  ".sas7bdat": "SAS", ".dta": "Stata", ".xlsx": "Excel", ".xlsm": "Excel"}
_KNOWN = ".csv, .tsv, .parquet, .xpt, .sas7bdat, .dta or .xlsx"


def read_data(source: object, encoding: str | None = None,
              sheet: str | int | None = None) -> pd.DataFrame:
    """A pandas or polars DataFrame, or a CSV / TSV / Parquet / SAS (``.xpt``, ``.sas7bdat``) /
    Stata / Excel (``.xlsx``) file, as a pandas DataFrame, with clear errors for a path that is
    missing, a directory, of an unknown type, empty, or not in the expected text encoding.

    SAS character values arrive as text (never bytes), blank ones and SAS's special missing
    values as missing; variable labels are kept in ``frame.attrs["labels"]`` (see
    :mod:`hte_report.data.readers`). A pandas Categorical keeps its order of categories.

    ``encoding``: of a CSV/TSV or SAS file (default: UTF-8 for text, as declared for SAS).
    ``sheet``: of an Excel workbook (default: the first)."""
    if encoding is not None and not isinstance(encoding, str):
        raise ArgumentError(f"encoding= must name an encoding as text, e.g. 'utf-8', 'latin-1' "
                            f"or 'cp1252', got {short(encoding)}.")
    if not isinstance(source, (str, Path)):
        if encoding is not None:
            raise DataError("encoding= applies to data files, not to data frames.")
        if sheet is not None:
            raise DataError("sheet= applies to Excel workbooks, not to data frames: select the "
                            "sheet when reading the workbook (hr.read_data('file.xlsx', "
                            "sheet=...)), or pass the data frame without sheet=.")
        return _read_frame(source)
    path = Path(source)
    if not path.exists():
        raise DataError(f"data file {str(path)!r} does not exist.")
    if path.is_dir():
        raise DataError(f"data file {str(path)!r} is a directory; give the path of a data file "
                        f"({_KNOWN}).")
    suffix = path.suffix.lower()
    if suffix not in TEXT_SUFFIXES and suffix not in OTHER_SUFFIXES:
        hint = (" Save the sheet as .xlsx or export it to CSV first."
                if suffix in (".xls", ".ods") else "")
        raise DataError(f"cannot read {path.name!r}: use a {_KNOWN} file.{hint}")
    if encoding is not None and suffix not in TEXT_SUFFIXES and suffix not in (".xpt",
                                                                               ".sas7bdat"):
        raise DataError(f"--encoding applies to CSV/TSV and SAS files; {path.name!r} is a "
                        f"{OTHER_SUFFIXES[suffix]} file, which records its own encoding.")
    if sheet is not None and suffix not in readers.EXCEL_SUFFIXES:
        raise DataError(f"sheet= applies to Excel workbooks; {path.name!r} is not one.")
    kind = "CSV" if suffix in TEXT_SUFFIXES else OTHER_SUFFIXES[suffix]
    try:
        if suffix in TEXT_SUFFIXES:
            frame = _read_text(path, TEXT_SUFFIXES[suffix], encoding)
        elif suffix in (".xpt", ".sas7bdat"):
            frame = readers.read_sas(path, encoding)
        elif suffix in readers.EXCEL_SUFFIXES:
            frame = readers.read_excel(path, sheet)
        else:
            frame = _read_path(path)
    except DataError:
        raise
    except UnicodeDecodeError as exc:
        enc = encoding or "utf-8"
        where, byte = "", exc.object[exc.start] if isinstance(exc.object, bytes) else None
        if suffix in TEXT_SUFFIXES:
            where, byte = _first_bad_byte(path, enc) or (where, byte)
        raise DataError(
            f"data file {str(path)!r} is not valid {enc} text: byte "
            f"{'' if byte is None else f'0x{byte:02x}'}{where} cannot be decoded. Give its "
            "encoding with --encoding (in Python: hte_report.read_data(path, encoding=...)), "
            "e.g. latin-1, or cp1252 for files saved by Excel on Windows.") from None
    except LookupError:
        raise DataError(f"unknown encoding {short(encoding)}; use e.g. utf-8, latin-1 or "
                        "cp1252.") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {str(path)!r} is empty: no header line with column "
                        "names.") from None
    except ImportError as exc:
        raise DataError(f"reading {kind} file {path.name!r} needs an optional package that is "
                        f"not installed ({short(str(exc), 120)}); for Parquet: pip install "
                        "pyarrow.") from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read {str(path)!r} as a {kind} file: "
                        f"{short(str(exc), 200)[1:-1]}.") from None
    except Exception as exc:  # noqa: BLE001 - readers (pyarrow, SAS) raise their own types
        raise DataError(f"cannot read {str(path)!r} as a {kind} file: {type(exc).__name__}: "
                        f"{short(str(exc), 200)[1:-1]}.") from None
    if len(frame.columns) == 0:
        raise DataError(f"data file {str(path)!r} has no columns.")
    return _check_columns(frame)


def _read_text(path: Path, sep: str, encoding: str | None) -> pd.DataFrame:
    """A CSV/TSV file, every line with no more fields than the header names: pandas would
    otherwise take a first column without a name as the row index (shifting every value one
    column to the left) or, told not to, drop the extra fields. A duplicated name in the header
    is an error (pandas would rename the second ``age`` to ``age.1``)."""
    kw = {"sep": sep, **({"encoding": encoding} if encoding else {})}
    header = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False, **kw)
    names = [] if header.empty else header.iloc[0].tolist()
    if sep == "," and len(names) == 1 and ";" in str(names[0]):
        raise DataError(
            f"the header line of {path.name!r} is {short(names[0], 60)}: the file looks "
            "separated by semicolons (as Excel writes CSV files where the decimal mark is a "
            "comma), but a .csv file is read as comma-separated. Save it again as "
            "comma-separated with decimal points, or read it with pandas, "
            f"pd.read_csv({str(path)!r}, sep=';', decimal=',') (decimal=',' for numbers "
            "written 1,5), and pass the data frame.")
    _check_names([n for n in names if n != ""], f"the header line of {path.name!r} has",
                 "Give each column its own name in the file's header line.")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        try:
            frame = pd.read_csv(path, index_col=False, on_bad_lines="error", **kw)
        except pd.errors.ParserError as exc:
            raise DataError(_ragged_message(path, len(names), str(exc), sep, encoding)) from None
    for w in caught:
        if issubclass(w.category, pd.errors.ParserWarning) and "does not match" in str(
                w.message):
            raise DataError(_ragged_message(path, len(names), "", sep, encoding))
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return frame


def _ragged_message(path: Path, n_names: int, parser: str, sep: str,
                    encoding: str | None) -> str:
    """What a line with more fields than the header names is, and where."""
    import re

    m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", parser)
    # pandas counts records, not lines (a quoted value may span lines): the line is found
    # again in the file, pandas' record number kept if it cannot be
    line, seen = _first_long_line(path, n_names, sep, encoding or "utf-8",
                                  fields=int(m.group(3)) if m else None)
    if m and line is None:
        line, seen = int(m.group(2)), int(m.group(3))
    if line is None:
        return (f"cannot read {str(path)!r} as a CSV file: a line has more fields than the "
                f"{n_names} column names of its header line "
                f"({short(parser, 200)[1:-1] or 'values would be lost'}).")
    return (f"cannot read {str(path)!r} as a CSV file: line {line} has {seen} fields but the "
            f"header line names {n_names} columns, so its values cannot be matched to "
            "columns. Fix that line (a separator inside a value must be quoted: \"1,5\"); if "
            "the first column holds row names (as R's write.table writes by default), give it "
            "a name in the header line, or write the file without row names.")


def _first_long_line(path: Path, n_names: int, sep: str, encoding: str,
                     fields: int | None = None) -> tuple[int | None, int]:
    """The line (counting from 1, the header) where the first record starts that has
    ``fields`` fields (default: a non-empty field beyond the header's ``n_names``), and its
    number of fields; read only when the file has one."""
    import csv

    with open(path, newline="", encoding=encoding, errors="replace") as fh:
        reader = csv.reader(fh, delimiter=sep)
        start, header = 1, False
        for row in reader:
            if header and len(row) > n_names and (
                    len(row) == fields if fields else any(f.strip() for f in row[n_names:])):
                return start, len(row)
            header = header or bool(row)  # blank lines before the header are skipped
            start = reader.line_num + 1
    return None, 0


def _first_bad_byte(path: Path, encoding: str) -> tuple[str, int] | None:
    """Where the first byte that ``encoding`` cannot decode is: (" at line L", byte), read
    incrementally (the readers report positions within their own buffers)."""
    import codecs

    decoder = codecs.getincrementaldecoder(encoding)()
    line = 1
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                pos = max(exc.start - len(decoder.getstate()[0]), 0)
                line += chunk[:pos].count(b"\n")
                return f" at line {line}", chunk[pos] if pos < len(chunk) else exc.object[
                    exc.start]
            line += chunk.count(b"\n")
    return None


def _read_frame(source: object) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return _check_columns(source)
    if hasattr(source, "to_pandas") and hasattr(source, "columns"):  # polars, pyarrow
        return _check_columns(readers.polars_to_pandas(source))
    raise DataError(
        f"data must be a pandas/polars DataFrame or a file path, got {type(source).__name__}."
    )


def _read_path(path: Path) -> pd.DataFrame:
    """Parquet and Stata files (the others are read in :func:`read_data`)."""
    if path.suffix.lower() in (".parquet", ".pq"):
        return _read_parquet(path)
    return readers.read_stata(path)


def _read_parquet(path: Path) -> pd.DataFrame:
    """pandas reads Parquet through pyarrow; without it, through DuckDB (the ``large``
    extra), which reads a float NaN as NaN, as pandas does."""
    try:
        return pd.read_parquet(path)
    except ImportError:
        pass
    try:
        import duckdb
    except ImportError:
        raise DataError("reading Parquet needs pyarrow or DuckDB: pip install pyarrow "
                        "(or pip install 'hte-report[large]').") from None
    con = duckdb.connect()
    try:
        quoted = str(path).replace("'", "''")
        return con.execute(f"SELECT * FROM read_parquet('{quoted}')").df()
    except duckdb.Error as exc:
        raise DataError(f"cannot read Parquet file {path.name!r}: "
                        f"{str(exc).splitlines()[0][:200]}") from None
    finally:
        con.close()


#: dtypes a formula cannot use as they are, with what to do instead.
_UNUSABLE = (
    (pd.api.types.is_datetime64_any_dtype,
     "holds dates/times; derive a number (e.g. days since randomisation: "
     "(df[{c!r}] - df[{c!r}].min()).dt.days) or a period category first"),
    (pd.api.types.is_timedelta64_dtype,
     "holds time spans; convert them to a number of days or hours first"),
    (lambda s: isinstance(s.dtype, (pd.PeriodDtype, pd.IntervalDtype)),
     "holds periods or intervals; convert them to numbers or text categories first"),
    (pd.api.types.is_complex_dtype, "holds complex numbers, which no model can use"),
)


def _check_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Column names must be unique (a duplicated name makes every use of it ambiguous)."""
    _check_names(frame.columns, "the data have",
                 "Rename or drop the duplicates (df.loc[:, ~df.columns.duplicated()]).")
    return frame


def _check_names(columns, subject: str, advice: str) -> None:
    if not isinstance(columns, pd.Index):
        columns = pd.Index(list(columns), dtype=object)
    dup = columns[columns.duplicated()]
    if len(dup):
        names = list(dict.fromkeys(str(c) for c in dup))
        raise DataError(
            f"{subject} duplicated column name(s) "
            f"{names[:10]}: every column must have its own name. {advice}"
        )


def _check_usable(frame: pd.DataFrame, used: list[str]) -> None:
    for col in used:
        s = frame[col]
        for test, advice in _UNUSABLE:
            if test(s):
                raise DataError(f"column {col!r} ({s.dtype}) {advice.format(c=col)}.")
        if s.dtype == object:
            kinds = _inferred(frame, col)
            if kinds in ("bytes", "mixed") and any(isinstance(v, bytes) for v in s.head(1000)):
                raise DataError(
                    f"column {col!r} holds bytes (as SAS transport files give without an "
                    "encoding); decode it first, e.g. df[col].str.decode('latin-1')."
                )
            if kinds in ("datetime", "datetime64", "date", "time", "timedelta", "period"):
                raise DataError(f"column {col!r} holds {kinds} values; derive a number or a "
                                "text category from it first.")


def _inferred(frame: pd.DataFrame, col: str) -> str:
    """pandas' inferred kind of an object column's values, once per frame and column within
    :func:`same_data` (the usability check and the text test ask for it; a scan of 1e6 values
    takes 10-20 ms)."""
    return remembered(("inferred", col), frame,
                      lambda: pd.api.types.infer_dtype(frame[col], skipna=True))


def _text_column(frame: pd.DataFrame, col: str) -> bool:
    """:func:`is_text` of a column of ``frame``, its inferred kind remembered."""
    s = frame.get(col)
    if not isinstance(s, pd.Series):  # absent, or duplicated (a DataFrame)
        return False
    if s.dtype == "str":
        return True
    return s.dtype == object and _inferred(frame, col) == "string"


#: Within :func:`same_data`: what has been derived from each data frame (by identity).
_MEMO: ContextVar[dict | None] = ContextVar("hte_report_same_data", default=None)


@contextmanager
def same_data():
    """Context in which the analyses of one call (a strategy's overall, per-modifier and joint
    analyses of the same frame) share what depends on a data frame only: its SHA-256 and the
    factorization of its text columns, computed once per frame instead of once per analysis.
    Frames are recognised by identity (each entry keeps its frame alive, so an identity is
    never reused) and must not be modified inside the context. Nested uses share the outer
    memo; outside any context nothing is remembered."""
    if _MEMO.get() is not None:
        yield
        return
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


def remembered(key, frame, compute):
    """``compute()`` once per (``key``, ``frame``) within :func:`same_data`, else every time."""
    memo = _MEMO.get()
    if memo is None:
        return compute()
    hit = memo.get((key, id(frame)))
    if hit is not None and hit[0] is frame:
        return hit[1]
    value = compute()
    memo[key, id(frame)] = (frame, value)
    return value


def remembered_last(slot: str, key, frame, compute):
    """As :func:`remembered`, but only the last value of ``slot`` is kept (a design is large:
    a strategy's earlier analyses must not stay in memory for the rest of the call)."""
    memo = _MEMO.get()
    if memo is None:
        return compute()
    hit = memo.get(slot)
    if hit is not None and hit[0] == key and hit[1] is frame:
        return hit[2]
    memo.pop(slot, None)  # the previous value is freed before the next is computed
    value = compute()
    memo[slot] = (key, frame, value)
    return value


def prepare(
    data: pd.DataFrame,
    *,
    outcome: str,
    treatment: str,
    variables: tuple[str, ...],
    family: str,
    reference: object = None,
    exposure: str | None = None,
    cluster: str | None = None,
) -> PreparedData:
    """Select used columns, exclude incomplete rows (counted), recode treatment, check types."""
    data = _check_columns(data)
    if len(data) == 0:
        raise DataError("the data have no rows.")
    used = [outcome, *variables]
    for extra, role in ((exposure, "exposure"), (cluster, "cluster")):
        if extra is not None:
            if extra not in data.columns:
                raise DataError(f"{role} column {extra!r} is not in the data.")
            if extra not in used:
                used.append(extra)
    _check_usable(data, used)
    # text columns are hashed once: for the digest (every text column of the data, used or
    # not) and, put in display order, for missing values and the design (the used ones)
    raw = {c: remembered(("codes", c), data, lambda c=c: raw_codes(data[c]))
           for c in data.columns if _text_column(data, c)}
    text = {c: remembered(("levels", c), data, lambda c=c: factorize(data[c], raw[c]))
            for c in variables if c != treatment and c in raw}
    # the digest does not depend on which text columns are given factorized
    sha = remembered("sha256", data, lambda: start_digest(data, raw))
    # the used columns without copying them: columns are only ever replaced below (treatment
    # recoded, outcome checked), never written into, so the caller's data stay untouched
    frame = pd.DataFrame({c: data[c] for c in used}, copy=False)
    frame.index = pd.RangeIndex(len(frame))

    for col in used:
        s = frame[col]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            bad = np.isinf(s.to_numpy(dtype=float, na_value=np.nan))
            if bad.any():
                raise DataError(
                    f"column {col!r} has {int(bad.sum())} infinite value(s) (first at row "
                    f"{int(np.flatnonzero(bad)[0])}); recode them as missing or fix them."
                )
    miss = {c: np.asarray(text[c].missing() if c in text else frame[c].isna()) for c in used}
    counts = {c: int(np.count_nonzero(m)) for c, m in miss.items()}
    exclusions = pd.DataFrame({"variable": used, "n_missing": [counts[c] for c in used]})
    keep = np.ones(len(frame), dtype=bool)
    for c in used:
        if counts[c]:
            keep &= ~miss[c]
    n_excluded = len(frame) - int(np.count_nonzero(keep))
    if n_excluded:  # no copy when every row is complete
        frame = frame.loc[keep].reset_index(drop=True)
        text = {c: lv.take(keep) for c, lv in text.items()}
    if len(frame) == 0:
        detail = ", ".join(f"{c}: {counts[c]}" for c in used if counts[c])
        raise DataError(
            f"every one of the {len(data)} rows misses a value in a used variable (missing per "
            f"variable: {detail}), so no row can be analysed. Check the coding of missing "
            "values, or drop the variables that are mostly missing."
        )

    frame[treatment], labels = _code_treatment(frame[treatment], treatment, reference)
    frame[outcome] = _check_outcome(frame[outcome], outcome, family)
    if exposure is not None:
        e = pd.to_numeric(frame[exposure], errors="coerce")
        if e.isna().any() or (e <= 0).any():
            raise DataError(
                f"exposure column {exposure!r} must be positive numbers (person-time); "
                f"{int((e.isna() | (e <= 0)).sum())} row(s) are not."
            )
        frame[exposure] = e.astype(float)
    return PreparedData(frame, len(data), exclusions, n_excluded, labels, sha, text)


def _code_treatment(s: pd.Series, name: str, reference: object) -> tuple[pd.Series, tuple]:
    if (reference is None and pd.api.types.is_integer_dtype(s) and not s.hasnans
            and s.min() == 0 and s.max() == 1):  # integers 0/1 (the common case): as they are
        return s.astype(int), ("0", "1")  # (no copy= keyword: pandas 3 deprecates it)
    levels = sorted(pd.unique(s), key=lambda v: (str(type(v)), v))
    if len(levels) != 2:
        shown = levels[:6]
        raise DataError(
            f"treatment {name!r} must have exactly two levels among analysed rows; found "
            f"{len(levels)}: {shown}. Recode it to 0/1 (control/treated)."
        )
    if reference is not None:
        if reference not in levels:
            raise DataError(
                f"reference={reference!r} is not a level of treatment {name!r} ({levels})."
            )
        control = reference
    elif pd.api.types.is_bool_dtype(s):
        control = False
    elif isinstance(s.dtype, pd.CategoricalDtype):  # its first category, as R's reference level
        control = next(c for c in s.cat.categories if c in levels)
    elif set(levels) == {0, 1}:
        control = 0
    else:
        raise DataError(
            f"treatment {name!r} has levels {levels}; say which is the control with "
            f"reference=..., or recode to 0/1."
        )
    treated = next(v for v in levels if v != control)
    return (s != control).astype(int), (str(control), str(treated))


def _check_outcome(s: pd.Series, name: str, family: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(s):
        s = s.astype(int)
    if family == "time":
        if not pd.api.types.is_numeric_dtype(s):
            sample = [str(v)[:20] for v in list(pd.unique(s))[:4]]
            raise DataError(
                f"survival time {name!r} must be numeric (days, months, years); it has dtype "
                f"{s.dtype} (values like {sample}). Convert it, e.g. "
                f"pd.to_numeric(df[{name!r}], errors='coerce'), and check what did not convert."
            )
        return pd.Series(s.to_numpy(dtype=float), index=s.index, name=name)
    if not pd.api.types.is_numeric_dtype(s):
        levels = list(pd.unique(s))[:4]
        raise DataError(
            f"outcome {name!r} must be numeric for a {family} outcome; it has dtype {s.dtype} "
            f"(values like {levels}). Recode it to 0/1 and use family='binary', or to numbers."
        )
    v = s.to_numpy(dtype=float)
    if family == "binary":
        bad = ~np.isin(v, (0.0, 1.0))
        if bad.any():
            seen = sorted(set(v.tolist()))
            hint = ""
            if len(seen) == 2:  # e.g. SAS's 1 = yes / 2 = no: which one is the event?
                a, b = (f"{x:g}" for x in seen)
                hint = (f" It is coded {a}/{b}: recode it to 0/1 saying which value is the "
                        f"event, e.g. df[{name!r}] = (df[{name!r}] == {a}).astype(int) when {a} "
                        "is the event; it is not recoded for you.")
            raise DataError(
                f"outcome {name!r} must be 0/1 for family='binary'; {int(bad.sum())} row(s) have "
                f"other values, e.g. {[float(x) for x in sorted(set(v[bad]))[:5]]}.{hint}"
            )
    elif family == "continuous":
        note = readers.two_valued_note(v, name)
        if note:
            warnings.warn(note, DataWarning, stacklevel=4)
    elif family == "count":
        bad = (v < 0) | (v != np.round(v))
        if bad.any():
            raise DataError(
                f"outcome {name!r} must be non-negative integers for family='count'; "
                f"{int(bad.sum())} row(s) are not."
            )
    if family in ("binary", "count") and v.sum() == 0:
        raise DataError(f"outcome {name!r} has no events among the analysed rows: no effect "
                        "can be estimated on a ratio scale, and every risk is zero.")
    if family == "binary" and v.min() == 1:
        raise DataError(f"outcome {name!r} is 1 for every analysed row: no effect can be "
                        "estimated.")
    return pd.Series(v, index=s.index, name=name)
