"""Readers (issue 19, item 1): SAS transport and sas7bdat files (text never bytes, SAS missing
values missing, labels kept), Excel, polars, the order of a Categorical's levels and a 1/2
outcome."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hte_report as hr
from hte_report.data.levels import factorize
from hte_report.data.prepare import read_data
from hte_report.data.readers import variable_labels
from hte_report.errors import DataError, DataWarning

pyreadstat = pytest.importorskip("pyreadstat")

DATA = Path(__file__).parent / "data"


def _xpt(path: Path, frame: pd.DataFrame, labels: dict, version: int = 5) -> Path:
    pyreadstat.write_xport(frame, str(path), column_labels=labels, table_name="ADSL",
                           file_format_version=version)
    return path


def _special_missing(path: Path, letter: bytes = b"A") -> None:
    """Turn the first numeric missing value (``.``: 0x2E then seven zero bytes) of a version 5
    transport file's data into the special missing value ``.A`` (first byte 0x41)."""
    raw = path.read_bytes()
    start = raw.index(b"OBS     HEADER RECORD") + 60  # the record is 80 bytes
    at = raw.index(b"\x2e" + b"\x00" * 7, start)
    path.write_bytes(raw[:at] + letter + raw[at + 1:])


@pytest.fixture
def adsl() -> pd.DataFrame:
    return pd.DataFrame({
        "USUBJID": ["S-01", "S-02", "S-03", "S-04", "S-05", "S-06"],
        "SEX": ["F", "M", "", "M", "F", " "],
        "AGE": [65.0, np.nan, 40.0, 50.0, np.nan, 71.0],
        "TRT01P": ["Drug", "Placebo", "Drug", "Placebo", "Drug", "Placebo"],
        "SITE": ["Zürich", "Genève", "Zürich", "Genève", "Zürich", "Genève"],
    })


@pytest.mark.parametrize("version", [5, 8])
def test_xpt_text_missing_and_labels(tmp_path, adsl, version):
    path = _xpt(tmp_path / "adsl.xpt", adsl, {"SEX": "Sex", "AGE": "Age (years)",
                                               "TRT01P": "Planned Treatment"}, version)
    if version == 5:
        _special_missing(path)  # AGE of S-02 becomes .A
    df = read_data(path)
    for col in ("USUBJID", "SEX", "TRT01P", "SITE"):  # text, never bytes
        assert all(isinstance(v, str) for v in df[col].dropna()), col
    assert df["SITE"].tolist() == adsl["SITE"].tolist()  # UTF-8 decoded
    assert df["SEX"].isna().tolist() == [False, False, True, False, False, True]  # blanks
    assert df["AGE"].isna().tolist() == [False, True, False, False, True, False]  # . and .A
    assert df.attrs["labels"] == {"SEX": "Sex", "AGE": "Age (years)",
                                  "TRT01P": "Planned Treatment"}
    assert variable_labels(df) == df.attrs["labels"]


def test_xpt_special_missing_letters_are_missing(tmp_path):
    frame = pd.DataFrame({"X": [1.0, np.nan, 3.0]})
    for letter in (b"Z", b"_"):
        path = _xpt(tmp_path / f"x{letter[0]}.xpt", frame, {})
        _special_missing(path, letter)
        assert read_data(path)["X"].isna().tolist() == [False, True, False]


def test_xpt_declared_encoding(tmp_path):
    """A latin-1 transport file (as SAS writes on Windows): the declared encoding decodes it."""
    path = _xpt(tmp_path / "l1.xpt", pd.DataFrame({"SITE": ["Zurich", "Geneve"]}), {})
    raw = path.read_bytes()
    raw = raw.replace(b"Geneve", "Genève".encode("latin-1"))
    path.write_bytes(raw)
    df = read_data(path, encoding="latin-1")
    assert df["SITE"].tolist() == ["Zurich", "Genève"]
    with pytest.raises(DataError, match="encoding|decode"):
        read_data(path)


def test_xpt_fits_with_text_arms(tmp_path, adsl):
    """The arms arrive as text, so a reference given as text matches (bytes never would)."""
    rng = np.random.default_rng(1)
    n = 80
    frame = pd.DataFrame({"TRT01P": np.where(np.arange(n) % 2, "Drug", "Placebo"),
                          "SEX": np.where(rng.random(n) < .5, "F", "M"),
                          "AVAL": rng.normal(size=n)})
    frame.loc[3, "SEX"] = ""
    path = _xpt(tmp_path / "adeff.xpt", frame, {"AVAL": "Analysis Value"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = hr.fit("AVAL ~ TRT01P * C(SEX)", path, treatment="TRT01P", reference="Placebo")
    levels = res.subgroups.query("modifier == 'SEX'")["level"].unique().tolist()
    assert levels == ["F", "M"]  # the blank SEX is missing, not its own subgroup


def test_sas7bdat(tmp_path):
    df = read_data(DATA / "iris.sas7bdat")
    assert len(df) == 150 and df["Species"].map(type).eq(str).all()
    assert sorted(df["Species"].unique()) == ["setosa", "versic", "virgin"]
    assert df.attrs["labels"] == {} and df.attrs["formats"] == {}  # none beyond $6 / BEST12


def test_sas_unreadable(tmp_path):
    bad = tmp_path / "bad.xpt"
    bad.write_bytes(b"not a transport file" * 10)
    with pytest.raises(DataError, match="SAS transport"):
        read_data(bad)


def test_excel(tmp_path):
    pytest.importorskip("openpyxl")
    path = tmp_path / "d.xlsx"
    frame = pd.DataFrame({"y": [1.5, 2.0], "arm": ["A", "B"]})
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        frame.to_excel(xw, sheet_name="first", index=False)
        frame.assign(y=[3.0, 4.0]).to_excel(xw, sheet_name="second", index=False)
    pd.testing.assert_frame_equal(read_data(path), frame)
    assert read_data(path, sheet="second")["y"].tolist() == [3.0, 4.0]
    with pytest.raises(DataError, match="no sheet"):
        read_data(path, sheet="third")
    (tmp_path / "bad.xlsx").write_text("x")
    with pytest.raises(DataError, match="Export the sheet to CSV first"):
        read_data(tmp_path / "bad.xlsx")
    with pytest.raises(DataError, match="sheet= applies"):
        read_data(DATA / "iris.sas7bdat", sheet="x")


def test_parquet_and_csv(tmp_path):
    frame = pd.DataFrame({"y": [1.0, np.nan], "arm": ["A", None]})
    frame.to_csv(tmp_path / "d.csv", index=False)
    got = read_data(tmp_path / "d.csv")
    assert got["y"].isna().tolist() == [False, True] and got["arm"].isna().tolist() == [False,
                                                                                           True]
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    con.execute(f"COPY (SELECT 1.5 AS y, 'A' AS arm) TO '{tmp_path / 'd.parquet'}' "
                "(FORMAT PARQUET)")
    con.close()
    got = read_data(tmp_path / "d.parquet")
    assert got["y"].tolist() == [1.5] and got["arm"].tolist() == ["A"]


def test_polars_enum_keeps_order():
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame({"grade": pl.Series(["high", "low", None, "mid"],
                                             dtype=pl.Enum(["low", "mid", "high"])),
                          "y": [1.0, 2.0, 3.0, None]})
    df = read_data(frame)
    assert list(df["grade"].cat.categories) == ["low", "mid", "high"]
    assert df["grade"].isna().tolist() == [False, False, True, False]
    assert df["y"].isna().tolist() == [False, False, False, True]


def test_categorical_order_kept():
    s = pd.Series(pd.Categorical(["low", "high", "mid", None, "high"],
                                 categories=["low", "mid", "high", "unused"]))
    lv = factorize(s)
    assert lv.values == ["low", "mid", "high"]
    assert lv.codes.tolist() == [0, 2, 1, -1, 2]


def test_categorical_order_in_subgroups():
    rng = np.random.default_rng(7)
    n = 300
    grade = pd.Categorical(rng.choice(["low", "mid", "high"], n),
                           categories=["low", "mid", "high"])
    t = rng.integers(0, 2, n)
    df = pd.DataFrame({"t": t, "grade": grade, "y": rng.normal(size=n) + t})
    res = hr.fit("y ~ t * grade", df, treatment="t")
    levels = res.subgroups.query("modifier == 'grade'")["level"].drop_duplicates().tolist()
    assert levels == ["low", "mid", "high"]


def test_outcome_coded_1_2():
    rng = np.random.default_rng(3)
    n = 120
    df = pd.DataFrame({"t": rng.integers(0, 2, n), "x": rng.normal(size=n),
                       "y": rng.integers(1, 3, n)})
    with pytest.raises(DataError, match=r"coded 1/2.*not recoded"):
        hr.fit("y ~ t * x", df, treatment="t", family="binary")
    with pytest.warns(DataWarning, match="only two values"):
        hr.fit("y ~ t * x", df, treatment="t")  # inferred continuous: said, not silent


def test_categorical_treatment_control_is_its_first_category():
    rng = np.random.default_rng(11)
    n = 200
    arm = pd.Categorical(rng.choice(["Placebo", "Drug"], n), categories=["Placebo", "Drug"])
    df = pd.DataFrame({"arm": arm, "x": rng.normal(size=n), "y": rng.normal(size=n)})
    res = hr.fit("y ~ arm * x", df, treatment="arm")
    assert res.treatment_labels == ("Placebo", "Drug")
    plain = df.assign(arm=df.arm.astype(str))
    with pytest.raises(DataError, match="reference="):  # text arms: the user says which
        hr.fit("y ~ arm * x", plain, treatment="arm")
