"""A sweep of bad inputs (second round): reading CSV/TSV/Excel files (ragged lines, duplicated
header names, sheet= with a data frame), hr.bootstrap, hr.fit_file (out of core) and
hr.fit_plan's post hoc modifiers. Each gives one of the package's errors saying what was wrong
and what to do (never a KeyError, a TypeError from pathlib or a library's exception), and rows
excluded for missing values are counted and warned about."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hte_report as hr
from hte_report.errors import ArgumentError, DataError, MissingDataWarning, PlanError
from hte_report.spec.options import OptionError

EXAMPLE = Path(__file__).parents[1] / "examples" / "rossi"


def _trial(n=160, seed=3):
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({"treat": rng.integers(0, 2, n), "age": rng.normal(60, 10, n).round(1),
                      "sbp": rng.normal(130, 15, n).round(1)})
    d["death"] = rng.binomial(1, 0.35, n)
    return d


D = _trial()
F = "death ~ treat * age"


def _text(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _read(tmp_path, name, text):
    return hr.read_data(_text(tmp_path, name, text))


def _excel_duplicated(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    wb.active.append(["death", "treat", "age", "age"])
    wb.active.append([1, 0, 50, 60])
    wb.save(tmp_path / "dup.xlsx")
    return hr.read_data(tmp_path / "dup.xlsx")


def _boot(**kw):
    data = kw.pop("data", D)
    return hr.bootstrap(F, data, treatment="treat", B=20, **kw)


# ------------------------------------------------------------------------------ read_data
READ_CASES = [
    ("ragged first line: no silent row index",
     lambda t: _read(t, "r.csv", "a,b\n1,2,3\n4\n"), DataError,
     r"line 2 has 3 fields but the header line names 2 columns"),
    ("ragged later line", lambda t: _read(t, "r.csv", "a,b\n1,2\n3,4\n5,6,7\n"), DataError,
     r"line 4 has 3 fields"),
    ("ragged line after a trailing comma (pandas would drop the value)",
     lambda t: _read(t, "r.csv", "a,b\n1,2,\n\n3,4,5\n"), DataError, r"line 4 has 3 fields"),
    ("ragged line after a quoted line break",
     lambda t: _read(t, "r.csv", 'a,b\n1,"x\ny"\n3,4,5\n'), DataError, r"line 4 has 3 fields"),
    ("row names without a header name (R write.table)",
     lambda t: _read(t, "r.csv", "a,b\n1,2,3\n2,4,5\n"), DataError, "write.table"),
    ("ragged TSV", lambda t: _read(t, "r.tsv", "a\tb\n1\t2\t3\n"), DataError,
     r"line 2 has 3 fields"),
    ("ragged line, blank lines before the header",
     lambda t: _read(t, "r.csv", "\n\na,b\n1,2,3\n"), DataError, r"line 4 has 3 fields"),
    ("duplicated header name (pandas would rename it age.1)",
     lambda t: _read(t, "d.csv", "death,treat,age,age\n1,0,50,60\n"), DataError,
     r"header line of 'd.csv' has duplicated column name\(s\) \['age'\]"),
    ("duplicated header name in a workbook", _excel_duplicated, DataError,
     r"duplicated column name\(s\) \['age'\]"),
    ("sheet= with a data frame", lambda t: hr.read_data(D, sheet=1), DataError,
     "sheet= applies to Excel workbooks, not to data frames"),
    ("sheet= with a data frame, named", lambda t: hr.read_data(D, sheet="Data"), DataError,
     "sheet= applies to Excel workbooks"),
]


@pytest.mark.parametrize("name, call, error, match", READ_CASES, ids=[c[0] for c in READ_CASES])
def test_read_data_refuses(tmp_path, name, call, error, match):
    with pytest.raises(error, match=match):
        call(tmp_path)


@pytest.mark.parametrize("text, expected", [
    ("a,b\n1,2\n3,4\n", {"a": [1, 3], "b": [2, 4]}),
    ("a,b\n1,2,\n3,4,\n", {"a": [1, 3], "b": [2, 4]}),  # trailing separators: nothing lost
    ("a,b,\n1,2,\n3,4,\n", {"a": [1, 3], "b": [2, 4], "Unnamed: 2": [np.nan, np.nan]}),
    (",a\n0,5\n1,6\n", {"Unnamed: 0": [0, 1], "a": [5, 6]}),  # pandas' own index column
    ('a,b\n"1,5",2\n', {"a": ["1,5"], "b": [2]}),
    ("a,b\n1,2\n4\n", {"a": [1, 4], "b": [2, np.nan]}),  # short line: missing, counted later
])
def test_read_data_still_reads_regular_files(tmp_path, text, expected):
    got = _read(tmp_path, "ok.csv", text)
    pd.testing.assert_frame_equal(got, pd.DataFrame(expected), check_dtype=False)


# ------------------------------------------------------------------------------ bootstrap
BOOT_CASES = [
    ("cluster column absent", lambda: _boot(cluster="centre"), DataError,
     "cluster column 'centre' is not in the data"),
    ("one cluster", lambda: _boot(data=D.assign(centre="A"), cluster="centre"), DataError,
     "single cluster"),
    ("cluster= a Cluster", lambda: _boot(cluster=hr.Cluster("centre")), OptionError,
     "name of the column whose clusters are resampled"),
    ("variance=Cluster instead of cluster=",
     lambda: _boot(data=D.assign(centre=np.arange(len(D)) % 5),
                   variance=hr.Cluster("centre")),
     OptionError, "cluster='centre'"),
    ("weights=", lambda: _boot(weights="w"), ArgumentError,
     r"bootstrap\(\) has no argument weights=.*weighted analyses are not supported"),
    ("strategy=", lambda: _boot(strategy="joint"), ArgumentError,
     r"bootstrap\(\) has no argument strategy="),
    ("typo jacknife_groups=", lambda: _boot(jacknife_groups=10), ArgumentError,
     "did you mean jackknife_groups="),
    ("jackknife_groups=1", lambda: _boot(jackknife_groups=1), OptionError,
     "needs at least 2 groups"),
    ("jackknife_groups=0", lambda: _boot(jackknife_groups=0), OptionError,
     "needs at least 2 groups"),
    ("jackknife_groups text", lambda: _boot(jackknife_groups="5"), OptionError,
     "whole number"),
    ("conf_level=95", lambda: _boot(conf_level=95), OptionError, "between 0.5 and 1"),
    ("keep_replicates='no'", lambda: _boot(keep_replicates="no"), ArgumentError,
     "must be True or False"),
]


@pytest.mark.parametrize("name, call, error, match", BOOT_CASES, ids=[c[0] for c in BOOT_CASES])
def test_bootstrap_refuses(name, call, error, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(error, match=match):
            call()


# ------------------------------------------------------------------------------ fit_file
def _ooc_data(n=200, seed=5):
    d = _trial(n, seed)
    d.loc[:9, "sbp"] = np.nan
    d.loc[10:13, "death"] = np.nan
    return d


def _parquet(frame: pd.DataFrame, path: Path) -> Path:
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    con.register("frame", frame)
    con.execute(f"COPY (SELECT * FROM frame) TO '{path}' (FORMAT parquet)")
    con.close()
    return path


def _ff(source, formula="death ~ treat * (age + sbp)", **kw):
    pytest.importorskip("duckdb")
    return hr.fit_file(source, formula, treatment="treat", **kw)


def _ooc_csv(line: int, append: str | None) -> str:
    """The trial as CSV text with data line ``line`` (0: none) given ``append`` at its end, or
    (None) cut to two fields."""
    lines = _trial(200, 5).assign(site=1).to_csv(index=False).splitlines()
    if line:
        lines[line] = lines[line] + append if append else "1,0"
    return "\n".join(lines) + "\n"


def _directory(tmp_path, *extra):
    folder = tmp_path / "dataset"
    folder.mkdir()
    _parquet(_ooc_data(), folder / "part-0.parquet")
    for name in extra:
        (folder / name).write_text("a,b\n1,2\n")
    return folder


def _null_column(tmp_path):
    duckdb = pytest.importorskip("duckdb")
    path = tmp_path / "null.parquet"
    duckdb.connect().execute(f"COPY (SELECT NULL AS death, 1 AS treat, 50.0 AS age, 1.0 AS "
                             f"sbp) TO '{path}' (FORMAT parquet)")
    return path


OOC_CASES = [
    ("a data frame", lambda t: _ff(D), ArgumentError,
     r"reads Parquet or CSV files.*got a pandas DataFrame.*use hr\.fit"),
    ("an array", lambda t: _ff(D.to_numpy()), ArgumentError, r"got a numpy ndarray.*hr\.fit"),
    ("a number", lambda t: _ff(5), ArgumentError, "source= is the path of the file, got 5"),
    ("formula and file swapped",
     lambda t: hr.fit_file("death ~ treat * age", str(_parquet(D, t / "d.parquet"))),
     ArgumentError, "file first and the formula second"),
    ("a directory with other files",
     lambda t: _ff(_directory(t, "notes.csv")), DataError,
     r"is a directory.*other file\(s\) \(\['notes.csv'\]\), which would not be read"),
    ("a directory without Parquet files",
     lambda t: _ff(_text(t, "x.csv", "a\n1\n").parent), DataError, "holds no .parquet file"),
    ("an empty CSV file", lambda t: _ff(_text(t, "e.csv", "")), DataError,
     "has no rows: the file is empty"),
    ("a CSV file with a header only",
     lambda t: _ff(_text(t, "h.csv", "death,treat,age,sbp\n")), DataError,
     r"has no rows \(only the column names"),
    ("an empty Parquet file", lambda t: _ff(_parquet(D.iloc[:0], t / "e.parquet")), DataError,
     "has no rows"),
    ("a column of NULL type", lambda t: _ff(_null_column(t), "death ~ treat * age"),
     DataError, "column 'death' holds no values"),
    ("a CSV line with a field too many",
     lambda t: _ff(_text(t, "r.csv", _ooc_csv(5, ",99"))), DataError,
     r"line 6 has 6 fields but the header line names 5 columns"),
    ("a CSV line with fields missing",
     lambda t: _ff(_text(t, "r.csv", _ooc_csv(8, None))), DataError,
     r"line 9 has 2 fields but the header line names 5 columns"),
    ("a duplicated name in a CSV header (DuckDB would rename it age_1)",
     lambda t: _ff(_text(t, "d.csv", _ooc_csv(0, None).replace("sbp", "age", 1)),
                   "death ~ treat * age"), DataError,
     r"header line of 'd.csv' has duplicated column name\(s\) \['age'\]"),
    ("weights=", lambda t: _ff(t / "x.parquet", weights="w"), ArgumentError,
     r"fit_file\(\) has no argument weights=.*weighted analyses are not supported"),
    ("strategy=", lambda t: _ff(t / "x.parquet", strategy="joint"), ArgumentError,
     r"fit_file\(\) has no argument strategy="),
]


@pytest.mark.parametrize("name, call, error, match", OOC_CASES, ids=[c[0] for c in OOC_CASES])
def test_fit_file_refuses(tmp_path, name, call, error, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(error, match=match):
            call(tmp_path)


@pytest.mark.parametrize("as_directory", [False, True], ids=["file", "dataset directory"])
def test_fit_file_warns_of_excluded_rows(tmp_path, as_directory):
    """Rows missing a used variable are counted in res.exclusions and warned about, as hr.fit
    (strategy="joint") warns; a Parquet dataset directory (with Spark's _SUCCESS) is read as
    its one file is."""
    source = (_directory(tmp_path, "_SUCCESS") if as_directory
              else _parquet(_ooc_data(), tmp_path / "d.parquet"))
    with pytest.warns(MissingDataWarning) as caught:
        res = _ff(source)
    messages = [str(w.message) for w in caught if issubclass(w.category, MissingDataWarning)]
    assert "overall analysis (adjusted): 4 of 200 rows excluded for missing values " \
           "(death: 4)." in messages
    assert "joint model: 14 of 200 rows excluded for missing values (death: 4, sbp: 10)." \
        in messages
    assert res.n_analysed == 186
    assert dict(zip(res.exclusions.variable, res.exclusions.n_missing)) == {
        "death": 4, "treat": 0, "age": 0, "sbp": 10}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = hr.fit("death ~ treat * (age + sbp)", _ooc_data(), treatment="treat",
                     strategy="joint")
    assert ref.analyses.n_excluded.tolist() == [4, 14]


# ------------------------------------------------------------------------------ fit_plan
def test_fit_plan_posthoc_modifier_already_prespecified():
    rossi = pd.read_csv(EXAMPLE / "rossi.csv")
    with pytest.raises(PlanError, match="'age' is already a pre-specified modifier"):
        hr.fit_plan(EXAMPLE / "plan.yaml", rossi, posthoc=["age"])
    with pytest.raises(PlanError, match="'prio' is already a pre-specified modifier"):
        hr.fit_plan(EXAMPLE / "plan.yaml", rossi, posthoc="race, prio")
