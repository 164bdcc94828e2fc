"""Out-of-core fits with continuous covariates (issue 21): ``fit_file`` runs exact IRLS whose
sums are aggregated inside DuckDB, and must equal ``hr.fit(..., strategy="joint")`` on the same
data read into pandas (coefficients and SEs rel 1e-8, standardized effects, tests), and R's
glm + sandwich (tests/reference/outofcore.R). Bad inputs give hte_report errors."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

duckdb = pytest.importorskip("duckdb")

import hte_report as hr  # noqa: E402
from hte_report.errors import DataError, FormulaError  # noqa: E402
from hte_report.estimation.outofcore import fit_file  # noqa: E402
from hte_report.spec.options import Cluster  # noqa: E402

REF = Path(__file__).parent / "reference"
FORMULA = "y ~ treat * (age + sbp + C(sex)) + C(region)"


def _data(n: int = 20_000, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"treat": rng.integers(0, 2, n), "age": rng.normal(60, 10, n).round(1),
                       "sbp": rng.normal(130, 15, n), "sex": rng.choice(["F", "M"], n),
                       "region": rng.integers(1, 4, n), "site": rng.integers(0, 40, n)})
    eta = (-1 + 0.4 * df.treat + 0.02 * (df.age - 60) + 0.01 * (df.sbp - 130)
           + 0.3 * (df.sex == "M") - 0.02 * df.treat * (df.age - 60))
    df["y"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(int)
    df.loc[rng.choice(n, 50, replace=False), "sbp"] = np.nan
    df.loc[rng.choice(n, 20, replace=False), "region"] = np.nan
    return df


def _write(df: pd.DataFrame, path: Path) -> Path:
    con = duckdb.connect()
    con.register("frame", df)
    fmt = "parquet" if path.suffix == ".parquet" else "csv, HEADER"
    con.execute(f"COPY (SELECT * FROM frame) TO '{path}' (FORMAT {fmt})")
    con.close()
    return path


@pytest.fixture(scope="module")
def parquet(tmp_path_factory) -> Path:
    return _write(_data(), tmp_path_factory.mktemp("ooc") / "trial.parquet")


@pytest.fixture(scope="module")
def both(parquet):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = fit_file(parquet, FORMULA, treatment="treat", family="binary", threads=2)
        frame = duckdb.sql(f"SELECT * FROM '{parquet}'").df()
        ref = hr.fit(FORMULA, frame, treatment="treat", family="binary", strategy="joint")
    return ours, ref


def _close(a, b, rtol, atol=0.0):
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)


def test_coefficients_and_ses_match_fit(both):
    ours, ref = both
    joint = ref.coefficients[ref.coefficients["analysis"] == "joint"]
    m = ours.coefficients.merge(joint, on=["model", "term"], suffixes=("", "_ref"))
    assert len(m) == len(ours.coefficients) == len(joint) == 30
    _close(m["estimate"], m["estimate_ref"], 1e-8, 1e-12)
    _close(m["std_error"], m["std_error_ref"], 1e-8)
    prim = ref.coefficients[ref.coefficients["analysis"] != "joint"]
    assert set(prim["term"]) == {"Intercept", "treat", "C(region)[T.2]", "C(region)[T.3]"}


def test_standardized_effects_and_counts_match_fit(both):
    ours, ref = both
    keys = ["scale", "model"]
    m = ours.overall.merge(ref.overall, on=keys, suffixes=("", "_ref"))
    assert len(m) == len(ours.overall) == 7
    for col in ("estimate", "std_error", "mu_treated", "mu_control", "p_value"):
        _close(m[col], m[col + "_ref"], 1e-8)
    for col in ("n", "n_treated", "events_treated", "events_control"):
        _close(m[col], m[col + "_ref"], 0)
    std = ref.subgroups[(ref.subgroups["method"] == "standardized")
                        & (ref.subgroups["modifier"] == "sex")]
    m = ours.subgroups.merge(std, on=["modifier", "level", "scale", "model"],
                             suffixes=("", "_ref"))
    assert len(m) == len(ours.subgroups) == 14
    for col in ("estimate", "std_error", "conf_low", "conf_high", "mu_treated_se"):
        _close(m[col], m[col + "_ref"], 1e-8)
    _close(m["n"], m["n_ref"], 0)
    eff = ours.interaction_effects.merge(ref.interaction_effects,
                                         on=["modifier", "scale", "model", "level"],
                                         suffixes=("", "_ref"))
    assert len(eff) == len(ours.interaction_effects) == 13
    _close(eff["estimate"], eff["estimate_ref"], 1e-8)
    _close(eff["std_error"], eff["std_error_ref"], 1e-8)


def test_tests_and_provenance_match_fit(both):
    ours, ref = both
    m = ours.interactions.merge(ref.interactions, on=["modifier", "scale", "test", "model"],
                                suffixes=("", "_ref"))
    assert len(m) == len(ours.interactions) == len(ref.interactions) == 19
    _close(m["statistic"], m["statistic_ref"], 1e-7)
    _close(m["p_adjusted"], m["p_adjusted_ref"], 1e-6)
    assert ours.n_input == 20_000 and ours.n_analysed == 19_930
    excl = dict(zip(ours.exclusions["variable"], ours.exclusions["n_missing"]))
    assert excl["sbp"] == 50 and excl["region"] == 20 and excl["age"] == 0
    assert len(ours.data_sha256) == 64
    assert ours.models["path"].str.startswith("out-of-core").all()
    meta = ours.meta["outofcore"]
    assert meta["engine"] == "duckdb" and meta["passes"] >= 4
    g = ours.glance.set_index("model")
    r = ref.glance[ref.glance["analysis"] == "joint"].set_index("model")
    for col in ("loglik", "deviance", "null_deviance", "aic"):
        _close(g.loc[r.index, col], r[col], 1e-8)


def test_cluster_variance_matches_fit(parquet):
    f = "y ~ treat * (age + C(sex))"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = fit_file(parquet, f, treatment="treat", family="binary", models=["logit"],
                        cluster="site")
        frame = duckdb.sql(f"SELECT * FROM '{parquet}'").df()
        ref = hr.fit(f, frame, treatment="treat", family="binary", models=["logit"],
                     variance=Cluster("site"), strategy="joint")
    joint = ref.coefficients[ref.coefficients["analysis"] == "joint"]
    m = ours.coefficients.merge(joint, on=["model", "term"], suffixes=("", "_ref"))
    assert len(m) == 6 and (m["variance"] == "CL(site)").all()
    _close(m["std_error"], m["std_error_ref"], 1e-8)


def test_against_r_glm_and_sandwich():
    ref = json.loads((REF / "outofcore.json").read_text())
    csv = REF / "data" / "outofcore.csv"
    f = "y ~ treat * (age + sbp + C(sex))"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit_file(csv, f, treatment="treat", family="binary")
        cl = fit_file(csv, f, treatment="treat", family="binary", models=["logit"],
                      cluster="site")
    assert res.n_analysed == ref["n"]
    c = res.coefficients
    for label, key in (("logit", "logit"), ("modified-poisson-HC0", "poisson"),
                       ("ols-HC3", "ols")):
        rows = c[c["model"] == label]
        _close(rows["estimate"], ref[key]["coef"], 1e-7, 1e-10)
        _close(rows["std_error"], ref[key]["se"], 1e-6)
    _close(cl.coefficients["std_error"], ref["logit_cl"]["se"], 1e-6)
    g = res.glance.set_index("model")
    _close(g.loc["logit", "loglik"], ref["logit"]["loglik"], 1e-9)
    lr = res.interactions[res.interactions["test"] == "lr"].set_index("modifier")
    for m, stat in ref["lr"].items():
        _close(lr.loc[m, "statistic"], stat, 1e-6)
    sub = res.subgroups[(res.subgroups["model"] == "logit") & (res.subgroups["scale"] == "RD")]
    _close(sub.set_index("level").loc[["F", "M"], "estimate"],
           [ref["std_rd_logit"]["F"], ref["std_rd_logit"]["M"]], 1e-7)


# --- bad inputs: hte_report errors, never an engine traceback ---------------------------------

def _small(tmp_path, **changes) -> Path:
    df = _data(400, seed=3)
    for col, fn in changes.items():
        df[col] = fn(df)
    return _write(df, tmp_path / "small.csv")


def test_missing_file_and_absent_column(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        fit_file(tmp_path / "nope.parquet", FORMULA, treatment="treat")
    path = _small(tmp_path)
    with pytest.raises(FormulaError, match="bmi"):
        fit_file(path, "y ~ treat * (age + bmi)", treatment="treat")
    with pytest.raises(DataError, match="cluster column"):
        fit_file(path, "y ~ treat * age", treatment="treat", cluster="centre")


def test_text_in_numeric_column(tmp_path):
    df = _data(400, seed=3).astype({"sbp": object})
    df.loc[np.arange(300), "sbp"] = [f"{i}x" for i in range(300)]
    path = _write(df, tmp_path / "text.csv")
    with pytest.raises(FormulaError, match="fix its non-numeric entries"):
        fit_file(path, "y ~ treat * (age + sbp)", treatment="treat")


def test_outcome_not_binary_and_unsupported_term(tmp_path):
    path = _small(tmp_path, y=lambda d: d["y"] * 2 + 1)
    with pytest.raises(DataError, match="must be 0/1"):
        fit_file(path, "y ~ treat * age", treatment="treat")
    path = _small(tmp_path)
    with pytest.raises(FormulaError, match="out of core|SQL passes"):
        fit_file(path, "y ~ treat * bs(age, df=3)", treatment="treat", safe_formula=False)
    with pytest.raises(FormulaError, match="out of core|SQL passes"):
        fit_file(path, "y ~ treat * (age + I(age**2))", treatment="treat", safe_formula=False)


def test_no_rows_left_and_one_arm(tmp_path):
    path = _small(tmp_path, sbp=lambda d: np.nan)
    with pytest.raises(DataError, match="no row can be analysed"):
        fit_file(path, "y ~ treat * (age + sbp)", treatment="treat")
    path = _small(tmp_path, treat=lambda d: 1)
    with pytest.raises(DataError, match="exactly two levels"):
        fit_file(path, "y ~ treat * age", treatment="treat")
    with pytest.raises(Exception, match="engine must be"):
        fit_file(_small(tmp_path), "y ~ treat * age", treatment="treat", engine="polars")


def test_hc2_text_treatment_and_numeric_binary_covariate(tmp_path):
    df = _data(3000, seed=7)
    df["arm"] = np.where(df["treat"] == 1, "B", "A")
    df["smoker"] = (df["age"] > 62).astype(int)  # numeric with two values: categorical
    path = _write(df, tmp_path / "arms.parquet")
    f = "y ~ arm * (sbp + smoker) + age"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = fit_file(path, f, treatment="arm", reference="A", family="binary",
                        models=["ols", "logit"], variance="HC2")
        frame = duckdb.sql(f"SELECT * FROM '{path}'").df()
        ref = hr.fit(f, frame, treatment="arm", reference="A", family="binary",
                     models=["ols", "logit"], variance="HC2", strategy="joint")
    assert ours.treatment_labels == ref.treatment_labels == ("A", "B")
    joint = ref.coefficients[ref.coefficients["analysis"] == "joint"]
    m = ours.coefficients.merge(joint, on=["model", "term"], suffixes=("", "_ref"))
    assert len(m) == len(joint) == 14
    _close(m["std_error"], m["std_error_ref"], 1e-8)
    sub = ref.subgroups[ref.subgroups["method"] == "standardized"]
    m = ours.subgroups.merge(sub, on=["modifier", "level", "scale", "model"],
                             suffixes=("", "_ref"))
    assert len(m) == len(ours.subgroups) == 10 and set(m["level"]) == {"0", "1"}
    _close(m["estimate"], m["estimate_ref"], 1e-8)
    _close(m["std_error"], m["std_error_ref"], 1e-8)
