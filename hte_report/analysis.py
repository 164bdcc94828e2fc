"""Plan-driven analysis: validate a plan against data, fit the pre-specified model, and fit any
post hoc modifiers separately, labelled as hypothesis-generating."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .data import read_data
from .errors import DataError, PlanError, PostHocWarning
from .fitting import fit
from .formula import quote_name, short
from .plan import Plan, check_plan_against_data, load_plan
from .result import HTEResult

#: File types read_data_file knows, by suffix.
TEXT_SUFFIXES = {".csv": ",", ".txt": ",", ".tsv": "\t"}
OTHER_SUFFIXES = {".parquet": "Parquet", ".pq": "Parquet", ".xpt": "SAS transport",
                  ".sas7bdat": "SAS", ".dta": "Stata"}


def read_data_file(source: object, encoding: str | None = None) -> pd.DataFrame:
    """:func:`hte_report.data.read_data` with clear errors for a path that is missing, a
    directory, of an unknown type, empty, or not in the expected text encoding.

    ``encoding``: of a CSV/TSV or SAS file (default: UTF-8 for text, as stored for SAS)."""
    if not isinstance(source, (str, Path)):
        if encoding is not None:
            raise DataError("encoding= applies to data files, not to data frames.")
        return read_data(source)
    path = Path(source)
    if not path.exists():
        raise DataError(f"data file {str(path)!r} does not exist.")
    if path.is_dir():
        raise DataError(f"data file {str(path)!r} is a directory; give the path of a data file "
                        "(.csv, .tsv, .parquet, .xpt, .sas7bdat or .dta).")
    suffix = path.suffix.lower()
    if suffix not in TEXT_SUFFIXES and suffix not in OTHER_SUFFIXES:
        hint = (" Export the sheet to CSV first." if suffix in (".xlsx", ".xls", ".ods")
                else "")
        raise DataError(f"cannot read {path.name!r}: use a .csv, .tsv, .parquet, .xpt, "
                        f".sas7bdat or .dta file.{hint}")
    if encoding is not None and suffix in (".parquet", ".pq", ".dta"):
        raise DataError(f"--encoding applies to CSV/TSV and SAS files; {path.name!r} is a "
                        f"{OTHER_SUFFIXES[suffix]} file, which records its own encoding.")
    kind = "CSV" if suffix in TEXT_SUFFIXES else OTHER_SUFFIXES[suffix]
    try:
        if encoding is None:
            frame = read_data(path)
        elif suffix in TEXT_SUFFIXES:
            frame = pd.read_csv(path, sep=TEXT_SUFFIXES[suffix], encoding=encoding)
        else:
            frame = pd.read_sas(path, encoding=encoding)
    except DataError:
        raise
    except UnicodeDecodeError as exc:
        enc = encoding or "utf-8"
        where = ""
        if isinstance(exc.object, (bytes, bytearray)) and suffix in TEXT_SUFFIXES:
            with open(path, "rb") as fh:  # the line of the first bad byte, for the message
                head = fh.read(exc.start) if exc.start < 100_000_000 else b""
            line = head.count(b"\n") + 1
            where = f" at line {line}" if head or exc.start == 0 else ""
        raise DataError(
            f"data file {str(path)!r} is not valid {enc} text: byte "
            f"0x{exc.object[exc.start]:02x}{where} cannot be decoded. Give its encoding with "
            "--encoding (in Python: encoding=...), e.g. --encoding latin-1 or --encoding "
            "cp1252 for files saved by Excel on Windows.") from None
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
    return frame


@dataclass(frozen=True)
class PlannedAnalysis:
    """The confirmatory (pre-specified) result and the post hoc results, with their plan."""

    plan: Plan
    result: HTEResult
    posthoc: tuple[HTEResult, ...]
    data: pd.DataFrame


def fit_plan(plan: Plan | str, data: object, posthoc: Sequence[str] = (),
             encoding: str | None = None) -> PlannedAnalysis:
    """Fit the plan's model on ``data``. Each ``posthoc`` modifier is analysed in the primary
    model extended by its treatment interaction, labelled post hoc (hypothesis-generating) and
    adjusted for multiplicity in its own family, never with the pre-specified ones.

    ``encoding``: of a CSV/TSV or SAS data file, when it is not UTF-8."""
    if not isinstance(plan, Plan):
        plan = load_plan(plan)
    frame = read_data_file(data, encoding)
    check_plan_against_data(plan, frame)
    if isinstance(posthoc, str):
        posthoc = [p.strip() for p in posthoc.split(",") if p.strip()]
    posthoc = list(dict.fromkeys(posthoc))
    for var in posthoc:
        if not isinstance(var, str) or var not in frame.columns:
            shown = ", ".join(short(c, 40) for c in list(frame.columns)[:20])
            raise PlanError(f"post hoc modifier {short(var)} is not a column of the data; "
                            f"name columns, separated by commas. Columns: [{shown}].")
        roles = {plan.treatment: "the treatment", plan.outcome["variable"]: "the outcome"}
        if var in roles:
            raise PlanError(f"post hoc modifier {short(var)} is {roles[var]}; it cannot also be "
                            "an effect modifier.")
    raw = plan.raw
    kw = dict(
        treatment=plan.treatment,
        reference=raw["treatment"]["control"],
        family=plan.outcome["family"],
        models=raw["model"].get("models"),
        conf_level=plan.conf_level,
        multiplicity=plan.multiplicity,
        exposure=plan.outcome.get("exposure"),
        safe_formula=True,
    )
    variance = raw["model"].get("variance")
    if raw["model"].get("cluster"):
        from .options import Cluster

        variance = Cluster(raw["model"]["cluster"])
    kw["variance"] = variance
    result = fit(plan.formula, frame, **kw)
    extra = [m for m in result.modifiers if plan.modifier(m) is None]
    result = result.with_plan(plan.labels, tuple(extra), plan.level_labels)
    post = []
    for var in posthoc:
        if plan.modifier(var) is not None:
            continue
        warnings.warn(f"{short(var)} is not pre-specified in the plan: analysed post hoc "
                      "(hypothesis-generating).", PostHocWarning, stacklevel=2)
        # the primary model plus this one interaction: pre-specified terms stay as planned;
        # a non-numeric or few-valued column enters as categorical
        col = frame[var]
        name, trt = quote_name(var), quote_name(plan.treatment)
        if var in result.adjustment:  # keep the primary model's coding of the variable
            formula = f"{plan.formula} + {trt}:{name}"
        else:
            few = not pd.api.types.is_numeric_dtype(col) or col.nunique() <= 5
            term = name
            if few and name == var:
                term = f"C({name})"
            elif few and pd.api.types.is_numeric_dtype(col) and col.nunique() > 2:
                raise PlanError(  # C() of a quoted name is refused (see parse_formula)
                    f"post hoc modifier {short(var)} has {col.nunique()} numeric codes and a "
                    "name that is not a plain identifier; rename the column (letters, digits, "
                    "underscores) to analyse it as categorical.")
            formula = f"{plan.formula} + {term} + {trt}:{term}"
        r = fit(formula, frame, **kw)
        post.append(r.with_plan({**plan.labels, var: var}, (var,), plan.level_labels))
    return PlannedAnalysis(plan, result, tuple(post), frame)
