"""File and frame readers beyond CSV: SAS (transport ``.xpt`` and ``.sas7bdat``, through
pyreadstat), Stata, Excel and polars frames.

What every reader guarantees:

* character variables arrive as text, never bytes (decoded with the encoding the file declares,
  or the one the user gives);
* SAS missing values are missing: ``.`` and the special missing values ``.A``-``.Z``, ``._`` of
  numeric variables, and blank character values (SAS stores a missing character value as
  blanks; trailing blanks are not significant in SAS, so they are dropped);
* variable labels (and SAS formats) are kept in ``frame.attrs["labels"]`` (and
  ``frame.attrs["formats"]``), keyed by column name, for display labels;
* the order of categories is kept: a pandas Categorical's own order, a polars ``Enum``'s
  declared order, a Stata value-labelled variable's order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hte_report.errors import DataError, short

#: Suffixes of the Excel workbooks :func:`read_excel` reads (through openpyxl).
EXCEL_SUFFIXES = (".xlsx", ".xlsm")


def variable_labels(frame: pd.DataFrame) -> dict[str, str]:
    """The variable labels a reader kept (``frame.attrs["labels"]``), e.g. to pass as display
    labels: ``forest(res, labels=variable_labels(df))``."""
    if not isinstance(frame, pd.DataFrame):
        from hte_report.errors import ArgumentError

        raise ArgumentError(f"variable_labels() takes a data frame read by hr.read_data (its "
                            f"labels are in frame.attrs['labels']), got "
                            f"{type(frame).__name__}.")
    labels = frame.attrs.get("labels") or {}
    if not isinstance(labels, dict):
        return {}
    return {str(k): str(v) for k, v in labels.items() if v not in (None, "")}


def read_sas(path: Path, encoding: str | None = None) -> pd.DataFrame:
    """A SAS transport (``.xpt``, version 5 or 8) or ``.sas7bdat`` file, through pyreadstat.

    ``encoding``: of the character values, when the file does not declare it (transport files
    never do; pyreadstat then reads UTF-8, which is also plain ASCII) or declares it wrongly,
    e.g. ``"latin1"`` or ``"cp1252"``."""
    try:
        import pyreadstat
    except ImportError:  # a declared dependency; pandas' reader without it
        return _read_sas_pandas(path, encoding)
    reader = pyreadstat.read_xport if path.suffix.lower() == ".xpt" else pyreadstat.read_sas7bdat
    kwargs = {"encoding": _pyreadstat_encoding(encoding)} if encoding else {}
    try:
        frame, meta = reader(str(path), **kwargs)
    except pyreadstat.ReadstatError as exc:
        text = str(exc)
        if any(w in text.lower() for w in ("convert", "encoding", "iconv", "charset")):
            raise DataError(
                f"cannot decode the character values of {path.name!r} as "
                f"{encoding or 'the encoding the file declares (UTF-8 for .xpt)'} ({text}). "
                "Give the encoding with --encoding (in Python: hte_report.read_data(path, "
                "encoding=...)), e.g. latin-1 or cp1252.") from None
        raise ValueError(text) from None
    frame = clean_sas_text(frame)
    labels = {c: lab for c, lab in (meta.column_names_to_labels or {}).items() if lab}
    formats = {c: f for c, f in (meta.original_variable_types or {}).items()
               if f and f.rstrip(".0123456789") not in ("", "$", "BEST")}
    frame.attrs["labels"] = labels
    frame.attrs["formats"] = formats
    if meta.file_label:
        frame.attrs["file_label"] = meta.file_label
    return frame


def _pyreadstat_encoding(encoding: str) -> str:
    """pyreadstat (iconv) spells encodings its own way: normalize Python's names (latin-1 ->
    LATIN1, cp1252 -> CP1252), refusing names Python does not know."""
    import codecs

    name = codecs.lookup(encoding).name  # LookupError for an unknown encoding
    return {"iso8859-1": "LATIN1", "latin-1": "LATIN1", "utf-8": "UTF-8"}.get(
        name, name.upper())


def _read_sas_pandas(path: Path, encoding: str | None) -> pd.DataFrame:
    """pandas' SAS reader, always decoding text (default UTF-8); it keeps no labels."""
    frame = pd.read_sas(path, encoding=encoding or "utf-8")
    return clean_sas_text(frame)


def clean_sas_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Character columns as text with SAS's conventions: bytes decoded (UTF-8), trailing blanks
    dropped, blank values missing. Other columns are unchanged (numeric missing values, ``.``
    and ``.A``-``.Z``, are NaN already)."""
    out = {}
    for col in frame.columns:
        s = frame[col]
        if not (s.dtype == object or s.dtype == "str"):
            continue
        values = s.to_numpy(dtype=object)
        if not any(isinstance(v, (str, bytes)) for v in values[:1000]):
            continue
        out[col] = pd.Series([_sas_text(v) for v in values], index=frame.index, dtype=object,
                             name=col)
    if not out:
        return frame
    frame = frame.copy()
    for col, s in out.items():
        frame[col] = s
    return frame


def _sas_text(v):
    if isinstance(v, bytes):
        v = v.decode("utf-8")
    if isinstance(v, str):
        v = v.rstrip()
        return v if v else None
    return v


def read_stata(path: Path) -> pd.DataFrame:
    """A Stata file: value-labelled variables as ordered-as-coded Categoricals, variable
    labels kept in ``attrs["labels"]``."""
    if path.stat().st_size == 0:
        raise DataError(f"Stata file {path.name!r} is empty (0 bytes); export the data again.")
    try:
        with pd.io.stata.StataReader(path) as reader:
            frame = reader.read()
            labels = {c: lab for c, lab in reader.variable_labels().items() if lab}
    except ValueError as exc:
        if "Version of given Stata file" not in str(exc):
            raise
        raise DataError(f"cannot read {path.name!r} as a Stata (.dta) file: it is damaged, not a "
                        "Stata file, or from a Stata version pandas cannot read (it reads "
                        "versions 105-119, Stata 5 to 18). Export the data again, or as CSV."
                        ) from None
    except (OSError, EOFError, UnicodeDecodeError):
        raise
    except Exception as exc:  # noqa: BLE001 - struct.error etc. from a damaged file
        raise DataError(f"cannot read {path.name!r} as a Stata (.dta) file: it is damaged or "
                        f"not a Stata file ({type(exc).__name__}: {short(str(exc), 100)[1:-1]})."
                        " Export the data again from Stata, or as CSV.") from None
    frame.attrs["labels"] = labels
    return frame


def read_excel(path: Path, sheet: str | int | None = None) -> pd.DataFrame:
    """The first (or the named) sheet of an ``.xlsx``/``.xlsm`` workbook, header in row 1,
    through openpyxl (``pip install 'hte-report[excel]'``)."""
    try:
        import openpyxl  # noqa: F401 - pandas imports it itself; checked for a clear message
    except ImportError:
        raise DataError(f"reading the Excel workbook {path.name!r} needs openpyxl: pip install "
                        "'hte-report[excel]' (or pip install openpyxl), or export the sheet "
                        "to CSV.") from None
    which = 0 if sheet is None else sheet
    try:
        header = pd.read_excel(path, sheet_name=which, engine="openpyxl", header=None, nrows=1)
        frame = pd.read_excel(path, sheet_name=which, engine="openpyxl")
    except (ValueError, IndexError) as exc:
        if sheet is not None and ("not found" in str(exc) or isinstance(exc, IndexError)):
            raise DataError(f"workbook {path.name!r} has no sheet {sheet!r} "
                            f"({short(str(exc), 160)[1:-1]}).") from None
        raise DataError(_excel_error(path, exc)) from None
    except Exception as exc:  # noqa: BLE001 - openpyxl / zipfile raise their own types
        raise DataError(_excel_error(path, exc)) from None
    if frame.columns.empty and sheet is None:
        import openpyxl

        try:
            wb = openpyxl.load_workbook(path, read_only=True)
            sheets = list(wb.sheetnames)
            wb.close()
        except Exception:  # noqa: BLE001 - the names are only a hint
            sheets = []
        if len(sheets) > 1:
            raise DataError(f"the first sheet of {path.name!r} ({sheets[0]!r}) is empty; the "
                            f"workbook has the sheets {short(sheets, 200)}. Name the sheet "
                            "with the data: hte_report.read_data(path, sheet='...'), or move "
                            "it to the front of the workbook.")
    names = [] if header.empty else [str(v) for v in header.iloc[0] if not pd.isna(v)]
    seen: set[str] = set()
    dup = list(dict.fromkeys(n for n in names if n in seen or seen.add(n)))
    if dup:  # pandas would rename the second 'age' to 'age.1'
        raise DataError(f"the header row of {path.name!r} has duplicated column name(s) "
                        f"{dup[:10]}: every column must have its own name. Give each column "
                        "its own name in the sheet's first row.")
    return frame


def _excel_error(path: Path, exc: Exception) -> str:
    return (f"cannot read {path.name!r} as an Excel (.xlsx) workbook: {type(exc).__name__}: "
            f"{short(str(exc), 160)[1:-1]}. Export the sheet to CSV first, or save it again "
            "as .xlsx.")


def polars_to_pandas(source) -> pd.DataFrame:
    """A polars (or pyarrow) frame as pandas. An ``Enum`` column becomes a Categorical with the
    Enum's declared order. polars' own ``to_pandas`` needs pyarrow; without it, columns are
    taken one by one: numbers and booleans as pandas' nullable types (nulls become missing
    values), text as text."""
    enums = {}
    if hasattr(source, "schema"):
        for name, dt in dict(source.schema).items():
            cats = getattr(dt, "categories", None)
            if cats is not None and type(dt).__name__ == "Enum":
                enums[name] = list(cats.to_list() if hasattr(cats, "to_list") else cats)
    try:
        frame = source.to_pandas()
    except ImportError:
        if not hasattr(source, "get_column"):
            raise DataError("converting this data frame to pandas needs pyarrow: "
                            "pip install pyarrow, or pass a pandas DataFrame.") from None
        frame = _polars_columns(source)
    for name, cats in enums.items():
        values = frame[name].astype(object).where(frame[name].notna(), None)
        frame[name] = pd.Categorical(values, categories=cats)
    return frame


def _polars_columns(source) -> pd.DataFrame:
    out = {}
    for name in source.columns:
        col = source.get_column(name)
        values, dt = col.to_list(), col.dtype
        if dt.is_integer():
            out[name] = pd.array(values, dtype="Int64")
        elif dt.is_float():
            out[name] = pd.array(values, dtype="Float64")
        elif str(dt) == "Boolean":
            out[name] = pd.array(values, dtype="boolean")
        else:
            out[name] = pd.Series(values, dtype=object)
    return pd.DataFrame(out)


def two_valued_note(v: np.ndarray, name: str) -> str | None:
    """For an outcome fitted as continuous: a warning text when it has exactly two distinct
    values other than 0/1 (e.g. SAS's 1 = yes / 2 = no), which is usually a binary outcome."""
    values = np.unique(v[~np.isnan(v)])
    if len(values) != 2 or set(values.tolist()) <= {0.0, 1.0}:
        return None
    a, b = (f"{x:g}" for x in values)
    return (f"outcome {name!r} has only two values ({a} and {b}) and is analysed as continuous "
            f"(mean differences). If it is an event indicator, recode it to 0/1 (1 = the event, "
            f"e.g. df[{name!r}] = (df[{name!r}] == {a}).astype(int)) and use "
            "family='binary'.")
