"""A sweep of bad inputs (fourth round): numbers given as text (display cut points and
evaluation points read character by character), baseline risks and risk ratios that make no
risk (an NNT that overflowed, a treated risk above 1), arguments of the wrong kind to the risk
model, risk strata, the data reader and the result's files, and a plan's ``scales`` that does
not match its outcome. Each gives one of the package's errors saying what was wrong and what to
do (or, for a locked plan, a warning recorded as a deviation)."""

from __future__ import annotations

import re
import warnings
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import hte_report as hr
from hte_report.cli import app
from hte_report.datasets import load_rossi
from hte_report.errors import ArgumentError, DataError, HTEReportWarning, PlanError
from hte_report.path.personalized import personalized_benefit
from hte_report.report.standards import deviation_rows
from hte_report.spec.lock import LockRecord, lock_path, plan_hash
from hte_report.spec.options import OptionError
from hte_report.spec.plan import load_plan
from hte_report.spec.plan_data import check_plan_against_data

ROSSI = load_rossi()
EXAMPLE = Path(__file__).parents[1] / "examples" / "rossi"
FORMULA = "arrest ~ fin * (age + C(wexp))"


def _refused(call, error, match):
    """``call()`` raises ``error`` saying ``match``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(error) as info:
            call()
    assert match in str(info.value)


# ------------------------------------------------------- numbers given as text (hr.fit options)
TEXT_NUMBER_CASES = [
    ("display_cutpoints text '30' (cut at 3 and 0 before)", {"display_cutpoints": {"age": "30"}},
     "display_cutpoints['age'] must be numbers, got the text '30': write 30, not '30'"),
    ("display_cutpoints list of text", {"display_cutpoints": {"age": ["30", 40]}},
     "got the text '30' in ['30', 40]: write 30, not '30'"),
    ("display_cutpoints a bool", {"display_cutpoints": {"age": True}},
     "must be a number or a list of numbers, e.g. display_cutpoints={'age': [65]}"),
    ("display_cutpoints a mapping", {"display_cutpoints": {"age": {30: 1}}},
     "must be a number or a list of numbers"),
    ("display_cutpoints words", {"display_cutpoints": {"age": "thirty"}},
     "got the text 'thirty': write numbers without quotes"),
    ("at text '30' (evaluated at 3 and 0 before)", {"at": {"age": "30"}},
     "at['age'] must be numbers, got the text '30': write 30, not '30', e.g. "
     "at={'age': [40, 60]}"),
    ("at list with text", {"at": {"age": [25, "35"]}}, "got the text '35' in [25, '35']"),
]


@pytest.mark.parametrize("name, options, match", TEXT_NUMBER_CASES,
                         ids=[c[0] for c in TEXT_NUMBER_CASES])
def test_numbers_given_as_text(name, options, match):
    _refused(lambda: hr.fit(FORMULA, ROSSI, treatment="fin", **options), OptionError, match)


def test_numbers_still_accepted():
    """Numbers, numpy numbers and arrays of them are taken as before."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = hr.fit(FORMULA, ROSSI, treatment="fin", models=("ols",),
                     display_cutpoints={"age": np.array([30])}, at={"age": [np.int64(25), 35.0]})
    levels = set(res.subgroups.query("modifier == 'age'").level)
    assert {"< 30", ">= 30", "at 25", "at 35"} <= levels


# ------------------------------------------------------------- personalized benefit (NNT)
BENEFIT_CASES = [
    ("p0 1e-300 (OverflowError before)", (1e-300, 0.9), OptionError,
     "p0 (baseline risk) 1e-300 is below one in a billion"),
    ("p0 1e-320 (ARR rounded to 0: 'no difference')", (1e-320, 0.9), OptionError,
     "below one in a billion"),
    ("treated risk above 1 (ARR -100 points before)", (0.5, 3), OptionError,
     "p0 0.5 with risk ratio 3 gives a risk under treatment of 1.5, above 1"),
    ("treated risk above 1 in an array", ([0.1, 0.4], 3), OptionError,
     "cannot apply at baseline risks above 1/RR (0.3333 for RR 3)"),
    ("shapes that do not broadcast", ([0.1, 0.2], [1, 2, 3]), OptionError,
     "arrays of matching shapes"),
]


@pytest.mark.parametrize("name, args, error, match", BENEFIT_CASES,
                         ids=[c[0] for c in BENEFIT_CASES])
def test_personalized_benefit_bad_values(name, args, error, match):
    with pytest.raises(error) as info:
        personalized_benefit(*args)
    assert match in str(info.value)


def test_treated_risk_above_one_suggests_the_odds_ratio():
    with pytest.raises(OptionError, match="or an odds ratio"):
        personalized_benefit(0.5, 3)


def test_benefit_limit_beyond_a_treated_risk_of_one_is_flagged():
    """An upper RR limit above 1/p0 (the estimate below it) gives a lower ARR limit below
    p0 - 1: kept as p0 (1 - RR_high), as R computes it, with a warning saying so."""
    with pytest.warns(HTEReportWarning, match=r"is below p0 - 1 = -0.6, the smallest possible"):
        b = personalized_benefit(0.4, 1.2, (0.9, 3.0))
    assert b.arr_low[0] == pytest.approx(-0.8)
    assert b.arr[0] == pytest.approx(-0.08)


def test_benefit_at_small_and_boundary_risks():
    b = personalized_benefit([1e-9, 0.5], [0.9, 2.0])
    assert b.nnt_text.tolist() == ["NNTB 10000000000", "NNTH 2"]


CLI_BENEFIT_CASES = [
    ("tiny p0 (internal OverflowError before)", ["benefit", "1e-300", "--rr", "0.9"],
     "below one in a billion"),
    ("treated risk above 1", ["benefit", "0.5", "--rr", "3"],
     "gives a risk under treatment of 1.5, above 1"),
]


@pytest.mark.parametrize("name, args, match", CLI_BENEFIT_CASES,
                         ids=[c[0] for c in CLI_BENEFIT_CASES])
def test_cli_benefit_bad_values(name, args, match):
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 1, out.output
    assert match in out.output
    assert "Traceback" not in out.output and "internal error" not in out.output


# --------------------------------------------------------------- risk model and risk strata
RISK_MODEL_CASES = [
    ("crossfit_folds text (TypeError before)", {"crossfit_folds": "5"},
     "crossfit_folds must be a whole number of folds K >= 2 or one fold label per analysed row, "
     "got '5' (write 5, not '5')"),
    ("crossfit_folds 5.0", {"crossfit_folds": 5.0}, "got 5.0"),
    ("crossfit_folds True", {"crossfit_folds": True}, "got True"),
    ("seed text (ignored before)", {"seed": "x"}, "seed must be a whole number >= 0 (or None), "
     "got 'x'"),
    ("seed text with folds", {"seed": "3", "crossfit_folds": 5}, "got '3' (write 3, not '3')"),
    ("seed negative", {"seed": -1}, "seed must be a whole number >= 0"),
    ("seed 1.5", {"seed": 1.5}, "got 1.5"),
    ("calibration_groups True", {"calibration_groups": True}, "calibration_groups must be"),
]


@pytest.mark.parametrize("name, options, match", RISK_MODEL_CASES,
                         ids=[c[0] for c in RISK_MODEL_CASES])
def test_risk_model_argument_types(name, options, match):
    _refused(lambda: hr.risk_model("arrest ~ age", ROSSI, treatment="fin", **options),
             OptionError, match)


@pytest.fixture(scope="module")
def risk():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hr.risk_model("arrest ~ age + prio", ROSSI, treatment="fin")


STRATA_CASES = [
    ("cutpoints text (got ['0', '.', '2'] before)", {"cutpoints": "0.2"}, OptionError,
     "cutpoints must be numbers, got the text '0.2': write 0.2, not '0.2', e.g. "
     "cutpoints=[0.2, 0.4]"),
    ("cutpoints with NaN", {"cutpoints": [0.3, float("nan")]}, OptionError,
     "cutpoints must be strictly increasing risks in (0, 1), got [0.3, nan]"),
    ("groups 4.0", {"groups": 4.0}, OptionError, "groups must be a whole number >= 2, got 4.0"),
    ("curve_points text", {"curve_points": "61"}, OptionError,
     "curve_points must be a whole number >= 2, got '61'"),
]


@pytest.mark.parametrize("name, options, error, match", STRATA_CASES,
                         ids=[c[0] for c in STRATA_CASES])
def test_risk_stratified_bad_options(risk, name, options, error, match):
    with pytest.raises(error) as info:
        hr.risk_stratified(risk, **options)
    assert match in str(info.value)


def test_risk_stratified_needs_a_risk_model():
    """A data frame gave AttributeError: 'DataFrame' object has no attribute 'patients'."""
    with pytest.raises(ArgumentError) as info:
        hr.risk_stratified(ROSSI)
    assert "takes a fitted risk model (a RiskModel), got DataFrame: fit it first" in str(
        info.value)
    assert "hr.risk_model(" in str(info.value)


def test_risk_stratified_one_cutpoint_as_a_number(risk):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = hr.risk_stratified(risk, cutpoints=0.3)
    assert res.edges == (0.0, 0.3, 1.0)


# ------------------------------------------------------------------------------- read_data
def test_read_data_encoding_not_text(tmp_path):
    """encoding=5 leaked "TypeError: lookup() argument must be str"."""
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(ArgumentError) as info:
        hr.read_data(path, encoding=5)
    assert "encoding= must name an encoding as text, e.g. 'utf-8'" in str(info.value)
    assert "lookup()" not in str(info.value)


SEMICOLON_CASES = [
    ("decimal commas (a 'line 2 has 3 fields' message before)", "a;b\n1,5;2,0\n3,1;4,2\n"),
    ("whole numbers (one column 'a;b' before, silently)", "a;b\n1;2\n3;4\n"),
]


@pytest.mark.parametrize("name, text", SEMICOLON_CASES, ids=[c[0] for c in SEMICOLON_CASES])
def test_read_data_semicolon_separated_csv(tmp_path, name, text):
    path = tmp_path / "semi.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as info:
        hr.read_data(path)
    msg = str(info.value)
    assert "the file looks separated by semicolons" in msg
    assert "sep=';', decimal=','" in msg and "Save it again as comma-separated" in msg
    assert "write.table" not in msg


def test_read_data_cli_semicolon_hint(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("a;b\n1,5;2,0\n", encoding="utf-8")
    out = CliRunner().invoke(app, ["check", str(EXAMPLE / "plan.yaml"), "--data", str(path)])
    assert out.exit_code == 1, out.output
    assert "looks separated by semicolons" in out.output


def test_read_data_one_column_csv_still_read(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("a\n1\n2\n", encoding="utf-8")
    assert hr.read_data(path).shape == (2, 1)


# ------------------------------------------------------------------- the result's files
@pytest.fixture(scope="module")
def result():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hr.fit("arrest ~ fin * C(wexp)", ROSSI, treatment="fin", models=("ols",))


FILE_CASES = [
    ("read_ard of a directory ('does not exist' before)", lambda res, d: hr.read_ard(d),
     DataError, "cannot read an ARD from '/", ),
    ("read_ard of an integer", lambda res, d: hr.read_ard(5), ArgumentError,
     "read_ard takes the path of a file as text or a pathlib.Path"),
    ("to_json(5) (wrote to file descriptor 5 before)", lambda res, d: res.to_json(5),
     ArgumentError, "got int 5 (an integer would be taken as an open file descriptor)"),
    ("to_json of a directory", lambda res, d: res.to_json(d), DataError,
     "cannot write the result to '/"),
    ("to_json(True)", lambda res, d: res.to_json(True), ArgumentError, "got bool True"),
]


@pytest.mark.parametrize("name, call, error, match", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_result_files_bad_paths(result, tmp_path, name, call, error, match):
    with pytest.raises(error) as info:
        call(result, tmp_path)
    assert match in str(info.value)
    if error is DataError:
        assert ": it is a directory, not a file; give the path of a file in it, e.g. " in str(
            info.value)


def test_result_files_paths_still_work(result, tmp_path):
    result.to_json(tmp_path / "r.json")
    assert hr.HTEResult.from_json(str(tmp_path / "r.json")).formula == result.formula
    hr.save_ard(result, tmp_path / "a.csv")
    assert len(hr.read_ard(str(tmp_path / "a.csv"))) > 0


# ------------------------------------------ scales: an error when checked, a deviation if locked
PLAN_TEXT = re.sub(r"(?m)^deviations:.*$", "deviations: []",
                   (EXAMPLE / "plan.yaml").read_text(encoding="utf-8"))
BOTH = "scales: [absolute, relative]"


def _scales_plan(tmp_path: Path, scales: str, *, family: str = "binary",
                 lock: str | None = None, locked_scales: str | None = None) -> Path:
    """The example plan with ``scales``; ``lock``: None (unlocked), "plan" (format 3, the
    locked plan kept, with ``locked_scales`` if given) or "hash" (an older lock: hash only)."""
    text = PLAN_TEXT.replace(BOTH, scales)
    if family != "binary":
        text = text.replace("family: binary", f"family: {family}").replace(
            "models: [ols, modified-poisson, logit]", "models: [ols]")
    path = tmp_path / "plan.yaml"
    if lock is not None:
        path.write_text(text.replace(scales, locked_scales or scales), encoding="utf-8")
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        if lock == "plan":
            rec = LockRecord.create(plan_hash(raw), "2025-01-02T03:04:05Z", "locked", plan=raw)
        else:  # format 2, as earlier versions wrote it
            rec = LockRecord(plan_hash(raw), "2025-01-02T03:04:05Z", "locked", lock_format=2)
            rec = replace(rec, record_sha256=rec.expected_record_sha256())
        lock_path(path).write_text(rec.to_json(), encoding="utf-8")
    path.write_text(text, encoding="utf-8")
    return path


UNLOCKED_SCALES = [
    ("binary, relative only", "scales: [relative]", "binary",
     "the report of a binary outcome shows both the absolute and the relative scale"),
    ("continuous with a relative scale", BOTH, "continuous",
     "the absolute scale only (a continuous outcome has no relative scale)"),
]


@pytest.mark.parametrize("name, scales, family, match", UNLOCKED_SCALES,
                         ids=[c[0] for c in UNLOCKED_SCALES])
def test_scales_unlocked_plan_is_an_error(tmp_path, name, scales, family, match):
    with pytest.raises(PlanError) as info:
        load_plan(_scales_plan(tmp_path, scales, family=family))
    assert match in str(info.value) and "or leave scales out" in str(info.value)


LOCKED_SCALES = [
    ("binary, relative only, format-3 lock", "scales: [relative]", "binary", "plan",
     "[relative]", "absolute, relative", "the report of a binary outcome shows both"),
    ("binary, listed twice, hash-only lock", "scales: [absolute, absolute]", "binary", "hash",
     "[absolute, absolute]", "absolute, relative", "shows both the absolute and the relative"),
    ("continuous with a relative scale, format-3 lock", BOTH, "continuous", "plan",
     "[absolute, relative]", "absolute",
     "the relative scale the plan lists is not produced"),
]


@pytest.mark.parametrize("name, scales, family, lock, locked, as_run, match", LOCKED_SCALES,
                         ids=[c[0] for c in LOCKED_SCALES])
def test_scales_of_a_locked_plan_are_a_recorded_deviation(tmp_path, name, scales, family, lock,
                                                          locked, as_run, match):
    """A key earlier versions ignored does not stop a pre-registered plan: it runs as locked,
    with a warning, and the deviation log records the difference."""
    plan = load_plan(_scales_plan(tmp_path, scales, family=family, lock=lock))
    assert plan.lock_status() == "matches"
    (dev,) = plan.deviations_found
    assert (dev["key"], dev["locked"], dev["as_run"]) == ("scales", locked, as_run)
    assert match in dev["note"] and "Earlier versions of hte_report ignored this key" in dev[
        "note"]
    with pytest.warns(HTEReportWarning, match="recorded in the deviation log"):
        check_plan_against_data(plan, list(ROSSI.columns))
    analysis = SimpleNamespace(plan=plan, posthoc=(), result=SimpleNamespace(
        posthoc=(), models=pd.DataFrame()))
    rows = deviation_rows(analysis)
    row = rows[rows.Item == "scales"].iloc[0]
    assert (row.Source, row.Locked, row["As run"]) == ("locked plan key", locked, as_run)


def test_scales_changed_after_locking_is_an_error(tmp_path):
    """The exemption covers scales as locked; an edit after locking is checked like any plan."""
    path = _scales_plan(tmp_path, "scales: [relative]", lock="plan", locked_scales=BOTH)
    with pytest.raises(PlanError, match="shows both the absolute and the relative scale"):
        load_plan(path)


def test_scales_locked_plan_cli_check(tmp_path):
    path = _scales_plan(tmp_path, "scales: [relative]", lock="plan")
    out = CliRunner().invoke(app, ["check", str(path), "--data", str(EXAMPLE / "rossi.csv")])
    assert out.exit_code == 0, out.output
    assert "warning: the locked plan lists scales: [relative]" in out.output
    assert "lock status matches" in out.output
