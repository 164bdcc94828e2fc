"""Hostile inputs through formulas, plans and the command line (issue 12): every one gives a
clear message from the package's own errors, never a traceback, a hang or a silent wrong number.
"""

import json
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import hte_report as hr
from hte_report.cli import app
from hte_report.errors import FormulaError, HTEReportError, PlanError
from hte_report.plan import check_plan_against_data, load_plan, lock_plan

EXAMPLE = Path(__file__).parents[1] / "examples" / "rossi"
PLAN_TEXT = (EXAMPLE / "plan.yaml").read_text(encoding="utf-8")
FORMULA = "arrest ~ fin * (age + prio + C(wexp) + C(mar)) + race + paro"


@pytest.fixture()
def plan_file(tmp_path):
    dst = tmp_path / "plan.yaml"
    shutil.copy(EXAMPLE / "plan.yaml", dst)
    return dst


@pytest.fixture()
def csv_file(tmp_path):
    dst = tmp_path / "rossi.csv"
    shutil.copy(EXAMPLE / "rossi.csv", dst)
    return dst


def edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def cli(*args):
    """Run the CLI; it must never end in an exception other than its own exit."""
    r = CliRunner().invoke(app, [str(a) for a in args])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert "Traceback" not in r.output
    return r


def cli_error(*args, match):
    r = cli(*args)
    assert r.exit_code != 0, r.output
    assert "error: " in r.output, r.output
    assert match in r.output, r.output
    return r


def trial(n=400, seed=1):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(dict(y=rng.binomial(1, .3, n), treat=rng.integers(0, 2, n),
                             a=rng.normal(size=n), b=rng.integers(0, 2, n),
                             sbp=rng.normal(120, 10, n), g=rng.integers(1, 5, n)))


def quiet_fit(*args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hr.fit(*args, **kw)


# ------------------------------------------------------------------ item 2: formulas
@pytest.mark.parametrize("safe", [False, True])
@pytest.mark.parametrize("formula, message", [
    ("y ~ a | b", "several parts separated by '|'"),
    ("~ treat*a", "has no outcome: write the outcome column before '~'"),
    ("open('x').read() ~ treat*a", "cannot parse formula"),
    ("y ~ treat*" + "(" * 300 + "a" + ")" * 300, "nests brackets 300 levels deep"),
    ("y ~ treat*a + I(" + "(" * 300 + "a" + ")" * 300 + ")", "nests brackets 301 levels deep"),
    ("y ~ treat*a + I(a + 9**9**9)", "the power 9**387420489 is too large"),
    ("y ~ treat*a + I(a * 2**100000)", "too large"),
    ("y ~ treat*a + poly(a, 1000000)", "larger than 1000"),
    ("y ~ treat*(a + b) ~ g", "cannot parse formula"),
    ("y ~ 1", "has no treatment-by-covariate interaction"),
])
def test_bad_formulas_are_formula_errors(formula, message, safe):
    t0 = time.perf_counter()
    with pytest.raises(FormulaError) as info:
        hr.fit(formula, trial(), treatment="treat", safe_formula=safe)
    assert message in str(info.value)
    assert "\x1b[" not in str(info.value) and len(str(info.value)) < 1200
    assert time.perf_counter() - t0 < 10


def test_method_call_on_lhs_in_safe_mode():
    with pytest.raises(FormulaError, match="unsafe formula term 'y.astype"):
        hr.fit("y.astype(float) ~ treat*a", trial(), treatment="treat", safe_formula=True)


@pytest.mark.parametrize("term", [
    "I('a' * 10**9)",
    "I([1] * 10**9)",
    "I(a + 1/0)",
    "hashed(g)",
])
def test_resource_bombs_in_plan_formulas_are_refused(term):
    with pytest.raises(FormulaError, match="unsafe formula term"):
        hr.fit(f"y ~ treat*a + {term}", trial(), treatment="treat", safe_formula=True)


def test_hang_formula_in_plan_is_refused_by_check(plan_file, csv_file):
    edit(plan_file, '+ race + paro"', '+ race + paro + I(age + 9**9**9)"')
    t0 = time.perf_counter()
    cli_error("check", plan_file, "--data", csv_file, match="the power 9**387420489 is too large")
    with pytest.raises(FormulaError, match="too large"):
        load_plan(plan_file)
    assert time.perf_counter() - t0 < 10


@pytest.mark.parametrize("term, message", [
    ("| age", "several parts separated by '|'"),
    ("+ I(" + "(" * 300 + "age" + ")" * 300 + ")", "levels deep"),
])
def test_bad_plan_formulas_are_clear(plan_file, csv_file, term, message):
    edit(plan_file, '+ race + paro"', f'+ race + paro {term}"')
    cli_error("check", plan_file, "--data", csv_file, match=message)


def test_plan_formula_without_outcome(plan_file, csv_file):
    edit(plan_file, 'formula: "arrest ~', 'formula: "~')
    cli_error("check", plan_file, "--data", csv_file, match="has no outcome")


@pytest.mark.parametrize("quoted", ["`systolic bp`", 'Q("systolic bp")'])
def test_quoted_column_names_fit_like_renamed_columns(quoted):
    d = trial(600)
    e = d.rename(columns={"sbp": "systolic bp"})
    r0 = quiet_fit("y ~ treat*(a + sbp + I(sbp**2)) + C(g)", d, treatment="treat")
    r1 = quiet_fit(f"y ~ treat*(a + {quoted} + I({quoted}**2)) + C(g)", e, treatment="treat",
                   safe_formula=True)
    assert r1.modifiers == ("a", "systolic bp")
    assert r1.modifier_kinds["systolic bp"] == "continuous"
    for col in ("estimate", "std_error", "conf_low", "conf_high"):
        np.testing.assert_allclose(r1.subgroups[col], r0.subgroups[col], rtol=1e-10)
    np.testing.assert_allclose(r1.interactions.p_value, r0.interactions.p_value, rtol=1e-10)


def test_quoted_text_modifier_with_space():
    d = trial(600)
    d["blood group"] = np.where(d.g > 2, "high", "low")
    d0 = d.rename(columns={"blood group": "bg"})
    r0 = quiet_fit("y ~ treat*(a + bg)", d0, treatment="treat")
    r1 = quiet_fit("y ~ treat*(a + `blood group`)", d, treatment="treat", safe_formula=True)
    assert r1.modifier_kinds["blood group"] == "categorical"
    np.testing.assert_allclose(r1.subgroups.estimate, r0.subgroups.estimate, rtol=1e-10)


@pytest.mark.parametrize("term", ["C(`blood group`)", 'C(Q("blood group"))'])
def test_quoted_name_inside_C_is_refused_not_misread(term):
    d = trial().rename(columns={"g": "blood group"})
    with pytest.raises(FormulaError, match="quoted column name inside C"):
        hr.fit(f"y ~ treat*(a + {term})", d, treatment="treat")


def test_long_formula_values_are_truncated_in_messages():
    long = "y ~ treat*a + " + " + ".join(f"x{i}" for i in range(500))
    with pytest.raises(FormulaError) as info:
        hr.fit(long, trial(), treatment="treat")
    assert len(str(info.value)) < 1500
