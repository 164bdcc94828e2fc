"""Aggregation of Parquet/CSV files inside DuckDB gives the same numbers as the in-memory fit."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest

import hte_report as hr
from hte_report.data.largedata import read_cells
from hte_report.errors import DataError, FormulaError
from hte_report.estimation.glm import fit as engine_fit  # one joint model

duckdb = pytest.importorskip("duckdb")
FORMULA = "y ~ treat * (C(sex) + C(region)) + C(age_band)"


def _data(n=5000, seed=4):
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({"treat": rng.integers(0, 2, n), "sex": rng.choice(["F", "M"], n),
                      "region": rng.choice(list("NSEW"), n),
                      "age_band": rng.integers(0, 4, n), "site": rng.integers(0, 15, n)})
    d["y"] = rng.binomial(1, 1 / (1 + np.exp(-(-1 + 0.3 * (d.sex == "M") - 0.4 * d.treat))))
    d.loc[:29, "region"] = None
    return d


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_file_aggregation_equals_in_memory_fit(tmp_path, fmt):
    d = _data()
    path = tmp_path / f"trial.{fmt}"
    con = duckdb.connect()
    con.register("d", d)
    con.execute(f"COPY d TO '{path}' ({'FORMAT PARQUET' if fmt == 'parquet' else 'HEADER'})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cells = read_cells(path, FORMULA, treatment="treat", family="binary", cluster="site")
        a = engine_fit(FORMULA, cells, treatment="treat", family="binary",
                   variance=hr.Cluster("site"))
        b = engine_fit(FORMULA, d, treatment="treat", variance=hr.Cluster("site"),
                   aggregate=False, path="statsmodels")
    assert a.n_input == 5000 and a.n_analysed == b.n_analysed == 4970
    assert set(a.models.path) == {"cells"}
    assert a.exclusions.set_index("variable").n_missing["region"] == 30
    cols = ["estimate", "std_error", "conf_low", "conf_high", "p_value", "n", "events_treated"]
    pd.testing.assert_frame_equal(a.subgroups[cols], b.subgroups[cols], rtol=1e-8)
    pd.testing.assert_frame_equal(a.overall[cols], b.overall[cols], rtol=1e-8)
    pd.testing.assert_frame_equal(a.interactions[["statistic", "p_value"]],
                                  b.interactions[["statistic", "p_value"]], rtol=1e-6)
    assert len(a.data_sha256) == 64


def test_continuous_covariate_is_refused(tmp_path):
    d = _data().assign(age=np.random.default_rng(1).normal(60, 10, 5000))
    path = tmp_path / "t.parquet"
    con = duckdb.connect()
    con.register("d", d)
    con.execute(f"COPY d TO '{path}' (FORMAT PARQUET)")
    with pytest.raises(FormulaError, match="categorical covariates"):
        read_cells(path, "y ~ treat * (age + C(sex))", treatment="treat", family="binary")


def test_invalid_outcome_in_file(tmp_path):
    d = _data()
    d.loc[5, "y"] = 2
    path = tmp_path / "t.parquet"
    con = duckdb.connect()
    con.register("d", d)
    con.execute(f"COPY d TO '{path}' (FORMAT PARQUET)")
    with pytest.raises(DataError, match="must be 0/1 for family='binary'; 1 row"):
        read_cells(path, FORMULA, treatment="treat", family="binary")


@pytest.mark.parametrize("text,phrase", [
    ("y,treat,sex\n1,0,F\n0,1,M,extra\n1,1,F\n", "line 3 has 4 fields"),
    ("y,treat,sex,sex\n1,0,F,M\n0,1,M,F\n", "duplicated column name(s) ['sex']"),
])
def test_csv_that_cannot_be_read_as_columns(tmp_path, text, phrase):
    """A ragged line (DuckDB's sniffer would read every line as one text column) and a
    duplicated header name (DuckDB would rename it sex_1) are errors, as in read_data."""
    path = tmp_path / "trial.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=re.escape(phrase)):
        read_cells(path, "y ~ treat * C(sex)", treatment="treat", family="binary")
