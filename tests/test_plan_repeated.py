"""Repeated measures through a locked plan (issue 15): the schema, checks against the data, the
plan's analysis against R (lme4, tests/reference/mixed_plan.json), post hoc modifiers, the
report's trajectory section and the CLI end to end, on the Mayo Clinic PBC trial's repeated
bilirubin measurements (examples/pbcseq)."""

import copy
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

import hte_report as hr
from hte_report.cli import app
from hte_report.errors import FormulaError, PlanError
from hte_report.spec.plan import load_plan
from hte_report.spec.plan_data import check_plan_against_data

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "pbcseq"
R = json.loads((ROOT / "tests" / "reference" / "mixed_plan.json").read_text())
FORMULA = "logbili ~ trt * years * (C(stagegrp) + age)"


def _raw(**change):
    raw = yaml.safe_load((EXAMPLE / "plan.yaml").read_text(encoding="utf-8"))
    raw["model"] = {"formula": FORMULA, "models": ["lmm"], "random": "slope", "method": "reml"}
    raw["modifiers"] = [m for m in raw["modifiers"] if m["variable"] != "sex"]
    for key, value in change.items():
        section, _, name = key.partition("__")
        if value is None:
            raw[section].pop(name, None)
        else:
            raw[section][name] = value
    return raw


def same(got, ref):
    """Estimate within 1e-6 standard errors, standard error within relative 1e-6."""
    se = ref["std_error"]
    np.testing.assert_allclose(got.estimate, ref["estimate"], rtol=1e-6, atol=1e-6 * se)
    np.testing.assert_allclose(got.std_error, se, rtol=1e-6)


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **kw)


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(EXAMPLE / "pbcseq.csv")


@pytest.fixture(scope="module")
def planned(data):
    return _quiet(hr.fit_plan, load_plan(_raw()), data, posthoc=["sex"])


def test_plan_numbers_agree_with_r(planned):
    res = planned.result
    assert res.strategy == "one-at-a-time" and res.primary["absolute"][0] == "SlopeDiff"
    sub = res.subgroups
    for key, modifier in (("oaat_slope_stage", "stagegrp"), ("oaat_slope_age", "age")):
        for r in [r for r in R["analyses"][key]["rows"] if r["modifier"] == modifier]:
            got = sub[(sub.modifier == modifier) & (sub.level == r["level"])] if "level" in r \
                else sub[(sub.modifier == modifier) & np.isclose(sub.value, r["value"])]
            assert len(got) == 1
            same(got.iloc[0], r)
    same(res.overall.iloc[0], R["overall"]["slope"])
    assert res.labels["stagegrp"] == "Histologic stage at entry"


def test_posthoc_modifier_in_its_own_family(planned):
    (post,) = planned.posthoc
    assert post.posthoc == ("sex",)
    assert set(post.subgroups.modifier) == {"sex"}
    assert post.overall.estimate.iloc[0] == planned.result.overall.estimate.iloc[0]
    assert "trt:years:C(sex)" in post.analyses.formula.iloc[-1]


def test_landmark_plan(data):
    raw = _raw(outcome__estimand="landmark", outcome__landmark=2)
    res = _quiet(hr.fit_plan, load_plan(raw), data).result
    ref = [r for r in R["analyses"]["oaat_landmark_stage"]["rows"] if r["level"] == "4"][0]
    got = res.subgroups[(res.subgroups.modifier == "stagegrp") & (res.subgroups.level == "4")]
    same(got.iloc[0], ref)
    assert (res.subgroups.method == "landmark").all() and res.primary["absolute"][0] == "MD"


@pytest.mark.parametrize("change,match", [
    (dict(outcome__subject=None), "outcome.subject"),
    (dict(outcome__time=None), "outcome.time"),
    (dict(outcome__estimand="landmark"), "needs outcome.landmark"),
    (dict(outcome__landmark=2), "estimand 'landmark' only"),
    (dict(outcome__time="trt"), "already treatment.variable"),
    (dict(outcome__subject="years", outcome__time="years"), "already outcome.subject"),
    (dict(outcome__estimand="intercept"), "not one of"),
    (dict(model__models=["ols"]), "not a repeated-measures model"),
    (dict(model__correlation="exchangeable"), "which model.models does not list"),
    (dict(model__variance="HC3"), "remove model.variance"),
    (dict(analysis__strategy="within-subgroup"), "within-subgroup fits are not available"),
    (dict(model__formula="bili ~ trt * years * age"), "left-hand side"),
])
def test_plan_schema_errors(change, match):
    raw = _raw()
    raw.setdefault("analysis", {})
    for key, value in change.items():
        section, _, name = key.partition("__")
        if value is None:
            raw[section].pop(name, None)
        else:
            raw[section][name] = value
    with pytest.raises(PlanError, match=match):
        load_plan(raw)


def test_repeated_keys_refused_for_other_families():
    raw = _raw()
    raw["outcome"] = {"variable": "logbili", "family": "continuous", "subject": "id"}
    raw["model"] = {"formula": "logbili ~ trt * age"}
    with pytest.raises(PlanError, match="family 'repeated' only"):
        load_plan(raw)
    raw["outcome"] = {"variable": "logbili", "family": "continuous"}
    raw["model"] = {"formula": "logbili ~ trt * age", "random": "slope"}
    with pytest.raises(PlanError, match="model.random"):
        load_plan(raw)


def test_checks_against_the_data(data):
    plan = load_plan(_raw())
    check_plan_against_data(plan, data)
    with pytest.raises(PlanError, match="'age' varies within 'id' 1: "):
        check_plan_against_data(plan, data.assign(age=data.age + data.years))
    with pytest.raises(PlanError, match="no repeated measurements"):
        check_plan_against_data(plan, data.drop_duplicates("id"))
    with pytest.raises(PlanError, match="must be numeric"):
        check_plan_against_data(plan, data.assign(years=data.years.astype(str) + "y"))
    with pytest.raises(PlanError, match="outcome.subject"):
        check_plan_against_data(plan, data.drop(columns="id"))
    raw = _raw()
    raw["modifiers"].append({"variable": "sex", "type": "categorical", "rationale": "x"})
    with pytest.raises(PlanError, match="no trt:years:sex term"):
        check_plan_against_data(load_plan(raw), data)
    raw = _raw(model__formula="logbili ~ trt + years + age")
    with pytest.raises(FormulaError, match="no trt:years term"):
        check_plan_against_data(load_plan(raw), data)


def test_report_sections(planned):
    from hte_report.report.content import build_report

    rep = _quiet(build_report, planned, date="2026-11-30")
    ids = [s.id for s in rep.sections]
    assert ids.index("trajectories") == ids.index("overall") + 1
    sec = rep.section("trajectories")
    names = [b.name for b in sec.blocks if hasattr(b, "name")]
    assert {"trajectory-overall", "trajectory-stagegrp", "visits",
            "repeated-models"} <= set(names)
    visits = next(b for b in sec.blocks if getattr(b, "name", "") == "visits").frame
    assert visits.Patients.astype(int).sum() == 312 and visits.Visits.astype(int).sum() == 1945
    pop = {b.name: b.frame for b in rep.section("population").blocks if hasattr(b, "frame")}
    assert pop["arms"]["Participants analysed"].tolist() == ["158", "154", "312"]
    assert pop["arms"]["Visits analysed"].tolist() == ["978", "967", "1945"]
    assert "(n = 158)" in " ".join(pop["baseline"].columns)  # patients, not visits
    methods = " ".join(b.text for b in rep.section("methods").blocks if hasattr(b, "text"))
    assert "linear mixed model with a random intercept and a random slope in years" in methods
    assert "difference in the slope of logbili per year" in methods
    assert "modified Poisson" not in methods
    sub = " ".join(b.text for b in rep.section("subgroups").blocks if hasattr(b, "text"))
    assert "treatment × years × modifier" in sub


def test_cli_check_lock_render(tmp_path, data):
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(_raw(), allow_unicode=True, sort_keys=False),
                    encoding="utf-8")
    csv = tmp_path / "pbcseq.csv"
    shutil.copy(EXAMPLE / "pbcseq.csv", csv)
    runner = CliRunner()
    r = runner.invoke(app, ["check", str(plan), "--data", str(csv)])
    assert r.exit_code == 0, r.output
    assert "3 pre-specified" not in r.output and "2 pre-specified modifiers" in r.output
    r = runner.invoke(app, ["lock", str(plan), "--statement", "before unblinding"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["render", str(plan), "--data", str(csv), "--out",
                            str(tmp_path / "out"), "--engine", "builtin", "--to", "html",
                            "--date", "2026-11-30"])
    assert r.exit_code == 0, r.output
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    for text in ("Trajectories", "Patients and visits by arm", "Repeated-measures working "
                 "models", "Difference in slope"):
        assert text in html, text


def test_example_plan_is_valid_and_locked(data):
    plan = load_plan(EXAMPLE / "plan.yaml")
    check_plan_against_data(plan, data)
    assert plan.lock_status() in ("matches", "unlocked")
    _ = copy.deepcopy(plan.raw)
