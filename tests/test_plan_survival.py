"""Time-to-event outcomes in a locked plan: schema, checks against the data, censor flags, and
the plan's analysis equal to the API's."""

import copy
import warnings

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import hte_report as hr
from hte_report.cli import app
from hte_report.datasets import load_rossi
from hte_report.errors import DataWarning, FormulaError, PlanError
from hte_report.spec.plan import load_plan
from tests.test_hardening_plan_cli import EXAMPLE

FORMULA = "Surv(week, arrest) ~ fin * (age + prio + C(wexp) + C(mar)) + race + paro"


def _raw(**outcome):
    with open(EXAMPLE / "plan.yaml", encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    raw["outcome"] = {"variable": "week", "event": "arrest", "family": "survival",
                      "label": "Time to re-arrest", "time_unit": "weeks", "horizons": [26],
                      "rmst_tau": 52, **outcome}
    raw["outcome"] = {k: v for k, v in raw["outcome"].items() if v is not None}
    raw["model"] = {"formula": FORMULA}
    raw.pop("risk_based", None)
    raw["deviations"] = []
    return raw


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **kw)


@pytest.fixture(scope="module")
def planned():
    return _quiet(hr.fit_plan, load_plan(_raw()), load_rossi())


def test_survival_plan_fits_as_the_api_does(planned):
    res = planned.result
    api = _quiet(hr.fit, FORMULA, load_rossi(), treatment="fin", reference=0, horizons=[26],
                 rmst_tau=52, display_cutpoints={"age": [30]})
    assert res.family == "survival" and res.strategy == "one-at-a-time"
    cols = ["estimate", "std_error"]
    np.testing.assert_allclose(res.subgroups[cols].to_numpy(float),
                               api.subgroups[cols].to_numpy(float), rtol=1e-12)
    assert set(res.overall.scale) == {"HR", "SurvDiff", "RMSTDiff"}
    assert res.overall.analysis.unique().tolist() == ["overall-adjusted"]


def test_a_censor_flag_gives_the_same_numbers_as_the_event():
    d = load_rossi().assign(CNSR=lambda x: 1 - x.arrest)
    raw = _raw(event=None, censor="CNSR")
    raw["model"]["formula"] = FORMULA.replace("arrest)", "CNSR)")
    by_flag = _quiet(hr.fit_plan, load_plan(raw), d).result
    by_event = _quiet(hr.fit_plan, load_plan(_raw()), d).result
    for name in ("subgroups", "overall", "interactions"):
        a, b = getattr(by_flag, name), getattr(by_event, name)
        np.testing.assert_allclose(a.estimate if "estimate" in a else a.statistic,
                                   b.estimate if "estimate" in b else b.statistic,
                                   rtol=1e-12, equal_nan=True)
    # the report's data hash is the hash of the data as given
    assert by_flag.data_sha256 == by_event.data_sha256


def test_a_censor_flag_read_as_the_event_is_caught():
    d = load_rossi().assign(CNSR=lambda x: 1 - x.arrest)
    raw = _raw(event="CNSR")
    raw["model"]["formula"] = FORMULA.replace("arrest)", "CNSR)")
    with pytest.warns(DataWarning, match=r"74% events.*median time 52 against 28.*outcome.censor"):
        _quiet_except_data(hr.fit_plan, load_plan(raw), d)


def _quiet_except_data(fn, *a):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("always", DataWarning)
        return fn(*a)


@pytest.mark.parametrize("change,match", [
    (dict(censor="arrest"), "exactly one of outcome.event"),
    (dict(event=None), "exactly one of outcome.event"),
    (dict(event="week"), "is the time column"),
    (dict(horizons=[-1]), "must be positive times"),
    (dict(rmst_tau=0), "must be a positive time"),
    (dict(ties="exact"), "ties"),
])
def test_bad_survival_outcomes(change, match):
    with pytest.raises(PlanError, match=match):
        load_plan(_raw(**change))


@pytest.mark.parametrize("formula,match", [
    ("arrest ~ fin * age", "Surv\\(time, event\\)"),
    ("Surv(week, paro) ~ fin * age", "must be Surv\\(week, arrest\\)"),
    ("Surv(week, arrest, x) ~ fin * age", "counting-process"),
])
def test_survival_formula_must_match_the_outcome(formula, match):
    raw = _raw()
    raw["model"]["formula"] = formula
    with pytest.raises(PlanError, match=match):
        load_plan(raw)


def test_unsafe_terms_in_a_survival_formula_are_refused():
    raw = _raw()
    raw["model"]["formula"] = "Surv(week, arrest) ~ fin * I(open('x').read())"
    with pytest.raises(FormulaError, match="unsafe formula term"):
        load_plan(raw)
    raw["model"]["formula"] = "Surv(week, arrest) ~ fin * age + strata(__import__('os'))"
    with pytest.raises((FormulaError, PlanError), match="column names only"):
        load_plan(raw)


def test_survival_keys_belong_to_survival_plans():
    with open(EXAMPLE / "plan.yaml", encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    raw["outcome"]["horizons"] = [26]
    with pytest.raises(PlanError, match="applies to family 'survival' only"):
        load_plan(raw)
    raw = _raw()
    raw["model"]["models"] = ["logit"]
    with pytest.raises(PlanError, match="Cox model"):
        load_plan(raw)


@pytest.mark.parametrize("column,values,match", [
    ("arrest", lambda d: d.arrest * 2, "must be coded 0/1"),
    ("week", lambda d: -d.week, "negative values"),
    ("week", lambda d: d.week.astype(str).where(d.index > 5, "soon"), "must be numeric"),
])
def test_survival_columns_are_checked_against_the_data(column, values, match):
    d = load_rossi()
    d[column] = values(d)
    with pytest.raises(PlanError, match=match):
        hr.fit_plan(load_plan(_raw()), d)


def test_cli_checks_and_locks_a_survival_plan(tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(copy.deepcopy(_raw()), sort_keys=False), encoding="utf-8")
    data = tmp_path / "rossi.csv"
    load_rossi().to_csv(data, index=False)
    runner = CliRunner()
    r = runner.invoke(app, ["check", str(plan), "--data", str(data)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["lock", str(plan), "--statement", "before unblinding"])
    assert r.exit_code == 0, r.output
    assert load_plan(plan).lock_status() == "matches"
