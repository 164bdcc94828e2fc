"""Analysis-results data (ARD): every number of an :class:`HTEResult` as one long, tidy row per
statistic, in the spirit of CDISC's Analysis Results Data (and R's ``cards``), to build
tables elsewhere and to archive what was reported.

Columns: ``context`` (``overall`` / ``subgroup`` / ``interaction`` (tests) /
``interaction_effect`` (difference of RDs, ratio of RRs, ... per level or unit) /
``additive`` (RERI)), ``row`` (the row of that
frame of the result), the keys of the row (``analysis``, ``comparison``, ``modifier``,
``level``, ``order``, ``value``, ``scale``, ``model``, ``method``, ``test``, ... as the frame
has them; text), ``label`` (the modifier's display label), ``stat_name``, ``stat_value`` (a
number, empty when missing) and ``stat_fmt`` (the number as the tables show it: risk and
survival differences in percentage points, ratios with two decimals, p-values as ``<0.001``).

:func:`to_ard` builds it, :func:`write_ard` / :func:`read_ard` store it as CSV, Parquet or
JSON, and :func:`from_ard` turns it back into the result's frames (the round trip is exact
for every statistic: values are written with 17 significant digits).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hte_report.core.format import MINUS, fmt_est, fmt_p, is_ratio
from hte_report.errors import DataError
from hte_report.results.result import file_path

if TYPE_CHECKING:
    from hte_report.results.result import HTEResult

#: The frames of a result the ARD holds, by context.
CONTEXTS = {"overall": "overall", "subgroup": "subgroups", "interaction": "interactions",
            "interaction_effect": "interaction_effects", "additive": "additive"}
#: Columns that identify a row (kept as text); every other numeric column is a statistic.
KEYS = ("analysis", "comparison", "modifier", "level", "order", "value", "scale", "model",
        "method", "test", "inference", "distribution", "note", "p_adjust_method", "family",
        "horizon", "time", "reference", "measure")
COLUMNS = ("context", "row", "analysis", "comparison", "modifier", "label", "level", "order",
           "value", "scale", "model", "method", "test", "stat_name", "stat_value", "stat_fmt")
_P = ("p_value", "p_adjusted")
_COUNTS = ("n", "n_treated", "n_control", "events_treated", "events_control", "df")


def to_ard(result: HTEResult) -> pd.DataFrame:
    """The result as a long frame: one row per statistic of its overall, subgroup and
    interaction-test rows (see the module's description of the columns)."""
    from hte_report.results.result import require_result

    require_result(result, "to_ard()")
    parts = []
    for context, attr in CONTEXTS.items():
        frame = getattr(result, attr, None)
        if frame is None or len(frame) == 0:
            continue
        keys = [c for c in frame.columns if c in KEYS or not _numeric(frame[c])]
        stats = [c for c in frame.columns if c not in keys]
        base = frame[keys].reset_index(drop=True).copy()
        for k in keys:
            base[k] = [_key_text(v) for v in base[k]]
        base.insert(0, "row", np.arange(len(frame)))
        base.insert(0, "context", context)
        long = base.loc[base.index.repeat(len(stats))].reset_index(drop=True)
        values = frame[stats].to_numpy(dtype=float).reshape(-1)
        long["stat_name"] = np.tile(stats, len(frame))
        long["stat_value"] = values
        scales = long["scale"] if "scale" in long else pd.Series("", index=long.index)
        long["stat_fmt"] = [_fmt(n, v, s) for n, v, s in zip(long.stat_name, values, scales)]
        parts.append(long)
    if not parts:
        raise DataError("the result has no overall, subgroup or interaction rows to export.")
    ard = pd.concat(parts, ignore_index=True)
    labels = result.labels or {}
    mods = ard["modifier"] if "modifier" in ard else pd.Series("", index=ard.index)
    ard["label"] = [str(labels.get(m) or m) if m else "" for m in mods.fillna("")]
    for c in COLUMNS:
        if c not in ard:
            ard[c] = ""
    rest = [c for c in ard.columns if c not in COLUMNS]
    ard = ard[[*COLUMNS[:-3], *rest, *COLUMNS[-3:]]]
    for c in ard.columns:
        if c not in ("row", "stat_value"):
            ard[c] = ard[c].fillna("").astype(str)
    return ard


def _numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _key_text(v: object) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _fmt(name: str, value: float, scale: str) -> str:
    """A statistic as the tables show it."""
    if not np.isfinite(value) and not np.isinf(value):
        return ""
    if name in _P or name.startswith("p_"):
        return fmt_p(value)
    if name in _COUNTS:
        return f"{value:.0f}" if np.isfinite(value) else ""
    if name in ("estimate", "conf_low", "conf_high", "mu_treated", "mu_control"):
        shown = "RD" if scale == "SurvDiff" or scale.startswith("difference of RD") else (
            "RR" if scale.startswith("ratio of") else scale)
        if name.startswith("mu_"):
            shown = "RD" if scale in ("RD", "RR", "OR", "SurvDiff") else ""
        return fmt_est(value, shown)
    if name == "std_error" and is_ratio(scale):
        return f"{value:.3f}"
    return f"{value:.3g}".replace("-", MINUS)


def write_ard(ard: pd.DataFrame, path: str | Path) -> Path:
    """Write an ARD as ``.csv``, ``.parquet`` or ``.json`` (by suffix): values with 17
    significant digits, so that :func:`read_ard` gives back the same numbers."""
    path = file_path(path, "write_ard", "'results.csv'", "cannot write an ARD to")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        ard.to_csv(path, index=False, float_format="%.17g")
    elif suffix == ".json":
        records = [{k: _json_value(v) for k, v in rec.items()}
                   for rec in ard.to_dict(orient="records")]
        path.write_text(json.dumps({"ard_version": 1, "rows": records}, indent=0,
                                   allow_nan=False), encoding="utf-8")
    elif suffix in (".parquet", ".pq"):
        _write_parquet(ard, path)
    else:
        raise DataError(f"cannot write an ARD to {path.name!r}: use .csv, .parquet or .json.")
    return path


def _json_value(v: object) -> object:
    """Strict JSON: a missing number as null, an infinite one as the text "Infinity" /
    "-Infinity" (which :func:`read_ard` reads back as a number)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    if isinstance(v, np.integer):
        return int(v)
    return v


def _write_parquet(ard: pd.DataFrame, path: Path) -> None:
    try:
        ard.to_parquet(path, index=False)
        return
    except ImportError:
        pass
    try:
        import duckdb
    except ImportError:
        raise DataError("writing Parquet needs pyarrow or DuckDB: pip install pyarrow.") from None
    con = duckdb.connect()
    try:
        con.register("ard", ard)
        quoted = str(path).replace("'", "''")
        con.execute(f"COPY ard TO '{quoted}' (FORMAT PARQUET)")
    finally:
        con.close()


def read_ard(path: str | Path) -> pd.DataFrame:
    """An ARD written by :func:`write_ard` (keys as text, ``stat_value`` as numbers)."""
    path = file_path(path, "read_ard", "hr.read_ard('results.csv')",
                     "cannot read an ARD from")
    if not path.is_file():
        raise DataError(f"ARD file {str(path)!r} does not exist.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            ard = pd.read_csv(path, dtype=str, keep_default_na=False)
        elif suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            ard = pd.DataFrame(data["rows"] if isinstance(data, dict) else data)
        elif suffix in (".parquet", ".pq"):
            from hte_report.data.prepare import read_data

            ard = read_data(path)
        else:
            raise DataError(f"cannot read an ARD from {path.name!r}: use .csv, .parquet or "
                            ".json.")
    except DataError:
        raise
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise DataError(f"cannot read {path.name!r} as an ARD: {exc}") from None
    missing = [c for c in ("context", "row", "stat_name", "stat_value") if c not in ard]
    if missing:
        raise DataError(f"{path.name!r} is not an ARD of hte_report: no column(s) {missing}.")
    ard["stat_value"] = [_number(v) for v in ard["stat_value"]]  # exact: float(), not a parser
    ard["row"] = pd.to_numeric(ard["row"]).astype(int)
    for c in ard.columns:
        if c not in ("row", "stat_value"):
            ard[c] = ard[c].fillna("").astype(str)
    return ard


def _number(v: object) -> float:
    if v is None or v == "":
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        raise DataError(f"ARD stat_value {v!r} is not a number.") from None


def from_ard(ard: pd.DataFrame, context: str = "subgroup") -> pd.DataFrame:
    """One of the result's frames back from its ARD (``context``: ``"subgroup"``,
    ``"overall"`` or ``"interaction"``): one row per original row, key columns as text (empty
    for missing), each statistic as a number column, in the original row order."""
    if context not in CONTEXTS:  # e.g. "subgroup", "interaction"
        raise DataError(f"context={context!r} is not an ARD context; use one of "
                        f"{list(CONTEXTS)}.")
    missing = [c for c in ("context", "row", "stat_name", "stat_value")
               if not isinstance(ard, pd.DataFrame) or c not in ard.columns]
    if missing:
        what = (f"it has no column(s) {missing}" if isinstance(ard, pd.DataFrame)
                else f"got {type(ard).__name__}")
        raise DataError(f"from_ard() takes an ARD of hte_report (to_ard() or read_ard()); "
                        f"{what}.")
    part = ard[ard["context"] == context]
    if part.empty:
        raise DataError(f"the ARD has no {context!r} rows.")
    keys = [c for c in part.columns if c not in ("context", "stat_name", "stat_value",
                                                 "stat_fmt", "label")]
    first = part.drop_duplicates("row").set_index("row")[[k for k in keys if k != "row"]]
    wide = part.pivot(index="row", columns="stat_name", values="stat_value")
    order = list(dict.fromkeys(part["stat_name"]))
    out = first.join(wide[order]).sort_index().reset_index()
    return out.drop(columns=[c for c in out.columns if c not in (*KEYS, "row", *order)
                             and (out[c] == "").all()])


def ard_effect_text(ard: pd.DataFrame, context: str = "subgroup") -> pd.Series:
    """``estimate (conf_low to conf_high)`` per row of ``context``, from the ARD's formatted
    statistics alone (as the subgroup table shows it), indexed by ``row``."""
    part = ard[(ard["context"] == context) & ard["stat_name"].isin(
        ["estimate", "conf_low", "conf_high"])]
    fmt = part.pivot(index="row", columns="stat_name", values="stat_fmt")
    out = {}
    for row, r in fmt.iterrows():
        if not r.get("estimate") or r["estimate"] in ("–", "\u221e", f"{MINUS}\u221e"):
            out[row] = "not estimable"
        elif r.get("conf_low") in ("", "–") and r.get("conf_high") in ("", "–"):
            out[row] = f"{r['estimate']} (CI not estimable)"
        else:
            out[row] = f"{r['estimate']} ({r['conf_low'] or '–'} to {r['conf_high'] or '–'})"
    return pd.Series(out, name="effect")
