"""Plan values that bad-input sweep 3 refuses but earlier versions accepted (and ran in a known
way): an unlocked plan is refused; a locked plan whose value is exactly as locked is run as the
earlier versions ran it, with a warning and a row of the deviation log ('locked plan key').
Conflicting level labels stay refused (a report with two subgroups under one name would be
ambiguous), with the way to amend the plan."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import yaml

import hte_report as hr
import hte_report.spec.plan as plan_module
from hte_report.errors import HTEReportWarning, PlanError
from hte_report.report.content import build_report
from hte_report.report.standards import deviation_rows
from hte_report.spec.lock import LockRecord, lock_path, plan_hash
from hte_report.spec.plan import load_plan, lock_plan

ROSSI = Path(__file__).parents[1] / "examples" / "rossi"


def _write(tmp_path: Path, raw: dict) -> Path:
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return plan


def _plan(tmp_path: Path, edit, *, locked: bool) -> Path:
    """The Rossi example with ``edit`` applied (data with a 'site' column for clusters);
    ``locked``: locked as an earlier version, which accepted the value, would have locked it
    (``lock_plan`` with the value checks of this version switched off)."""
    raw = yaml.safe_load((ROSSI / "plan.yaml").read_text(encoding="utf-8"))
    raw["deviations"] = []
    edit(raw)
    data = pd.read_csv(ROSSI / "rossi.csv")
    data["site"] = [i % 12 for i in range(len(data))]
    data.to_csv(tmp_path / "rossi.csv", index=False)
    plan = _write(tmp_path, raw)
    if locked:
        with pytest.MonkeyPatch.context() as mp:  # an earlier version: no such check
            mp.setattr(plan_module, "check_values", lambda *a, **k: ())
            lock_plan(plan, "before unblinding")
    return plan


def _models(raw):
    raw["model"]["models"] = ["ols", "logit", "ols"]


def _variance(raw):
    raw["model"]["variance"] = "HC1"
    raw["model"]["cluster"] = "site"


def _horizon(raw):
    raw["exploratory"] = {"planned": False, "horizon": 300}


def _label(raw):
    raw["modifiers"][3]["label"] = "  "


def _rationale(raw):
    raw["modifiers"][1]["rationale"] = ""


CASES = [
    # name, edit, key, error of an unlocked plan, locked, as run
    ("model listed twice", _models, "model.models", "lists 'ols' more than once",
     "[ols, logit, ols]", "ols, logit (each fitted once)"),
    ("variance beside cluster", _variance, "model.variance",
     "gives a cluster-robust variance, which replaces model.variance",
     "variance: HC1, cluster: site",
     "cluster-robust variance (clusters: site); model.variance not used"),
    ("horizon of a binary outcome", _horizon, "exploratory.horizon",
     "the RMST horizon applies to a survival outcome only", "horizon: 300",
     "not used (a binary outcome has no RMST horizon)"),
    ("blank label", _label, "modifiers[3].label", "must not be empty (leave label out",
     "label: '  ' (blank)", "'mar' (the column name)"),
    ("blank rationale", _rationale, "modifiers[1].rationale",
     "must not be empty: say why the modifier was chosen", "rationale: '' (blank)",
     "not recorded"),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name, edit, key, error, locked, as_run", CASES, ids=IDS)
def test_unlocked_plan_is_refused(tmp_path, name, edit, key, error, locked, as_run):
    with pytest.raises(PlanError) as info:
        load_plan(_plan(tmp_path, edit, locked=False))
    assert f"'{key}'" in str(info.value) and error in str(info.value)


def _as_run(plan, name: str) -> None:
    """The plan is run as the earlier versions ran it."""
    raw, written = plan.raw, plan.as_written
    if name == "model listed twice":
        assert raw["model"]["models"] == ["ols", "logit"]
        assert written["model"]["models"] == ["ols", "logit", "ols"]
    elif name == "variance beside cluster":
        assert "variance" not in raw["model"] and raw["model"]["cluster"] == "site"
    elif name == "horizon of a binary outcome":
        assert "horizon" not in raw["exploratory"] and written["exploratory"]["horizon"] == 300
    elif name == "blank label":
        assert plan.labels["mar"] == "mar"
    else:
        assert plan.modifier("prio").rationale == "not recorded"


@pytest.mark.parametrize("name, edit, key, error, locked, as_run", CASES, ids=IDS)
def test_locked_plan_runs_as_locked_with_a_warning_and_a_deviation(tmp_path, name, edit, key,
                                                                   error, locked, as_run):
    path = _plan(tmp_path, edit, locked=True)
    plan = load_plan(path)
    assert plan.lock_status() == "matches"  # hashed as written, not as run
    (dev,) = plan.deviations_found
    assert (dev["key"], dev["locked"], dev["as_run"]) == (key, locked, as_run)
    assert dev["note"].startswith(f"the locked plan's '{key}' ")
    assert "Earlier versions of hte_report accepted it" in dev["note"]
    _as_run(plan, name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = hr.fit_plan(plan, tmp_path / "rossi.csv")
    assert any(issubclass(w.category, HTEReportWarning) and str(w.message) == dev["note"]
               for w in caught), [str(w.message) for w in caught]
    rows = deviation_rows(a)
    row = rows[rows.Source == "locked plan key"]
    assert len(row) == 1, rows
    row = row.iloc[0]
    assert (row.Item, row.Locked, row["As run"], row.Note) == (key, locked, as_run, dev["note"])
    # the plan was not edited after locking: nothing else is logged against the lock
    assert not (rows.Source == "plan edited after locking").any()
    if name == "model listed twice":
        models = a.result.models
        assert sorted(models.requested.unique()) == ["logit", "ols"]
        assert not models.duplicated(["analysis", "modifier", "requested"]).any()
    if name == "variance beside cluster":
        assert "HC1" not in set(a.result.models.variance.astype(str)), a.result.models.variance


def test_locked_plan_deviation_is_in_the_report(tmp_path):
    """The report's deviation log (its data) has the row; the appendix shows the plan as
    written and locked, with its hash."""
    plan = load_plan(_plan(tmp_path, _models, locked=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = hr.fit_plan(plan, tmp_path / "rossi.csv")
        rep = build_report(a, date="2026-12-01")
    tab = next(b for b in rep.section("deviations").blocks
               if getattr(b, "name", "") == "deviation-log").frame
    assert ("locked plan key", "model.models") in set(zip(tab.Source, tab.Item))
    appendix = " ".join(str(getattr(b, "text", "")) for s in rep.sections for b in s.blocks)
    assert "models:\n  - ols\n  - logit\n  - ols" in appendix
    assert plan.lock.plan_sha256 in appendix


def test_value_changed_after_locking_is_refused(tmp_path):
    """Only a value exactly as locked is run as earlier versions ran it."""
    path = _plan(tmp_path, lambda raw: None, locked=True)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    _models(raw)
    _write(tmp_path, raw)
    with pytest.raises(PlanError, match="lists 'ols' more than once"):
        load_plan(path)


def test_hash_only_lock(tmp_path):
    """A lock record that keeps only the plan's hash (format 2): as locked when the whole plan
    matches it, refused when the plan differs."""
    path = _plan(tmp_path, _variance, locked=False)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    rec = LockRecord(plan_hash(raw), "2025-01-02T03:04:05Z", "locked", lock_format=2)
    rec = replace(rec, record_sha256=rec.expected_record_sha256())
    lock_path(path).write_text(rec.to_json(), encoding="utf-8")
    plan = load_plan(path)
    assert [d["key"] for d in plan.deviations_found] == ["model.variance"]
    assert plan.lock_status() == "matches"
    raw["title"] += " (edited)"
    _write(tmp_path, raw)
    with pytest.raises(PlanError, match="gives a cluster-robust variance"):
        load_plan(path)


def _same_label(raw):
    raw["modifiers"][2]["levels"] = {0: "Yes", 1: "Yes"}


def test_conflicting_level_labels_stay_refused_even_locked(tmp_path):
    """A report with two subgroups under one name would be ambiguous: refused even for a locked
    plan, saying how to amend it."""
    edit, match = _same_label, "gives the label 'Yes' to two values"
    with pytest.raises(PlanError, match=match) as info:
        load_plan(_plan(tmp_path, edit, locked=False))
    assert "amend the plan" not in str(info.value)
    (tmp_path / "locked").mkdir()
    with pytest.raises(PlanError, match=match) as info:
        load_plan(_plan(tmp_path / "locked", edit, locked=True))
    text = str(info.value)
    assert "amend the plan" in text and "under 'deviations'" in text
    assert "hte-report lock --force" in text



# ------------------------------------------------------- fit_mixed(at=) refuses text (not chars)
@pytest.fixture(scope="module")
def pbc():
    return pd.read_csv(Path(__file__).parent / "reference" / "data" / "pbcseq.csv")


def _mixed(pbc, at):
    from hte_report.estimation.mixed import fit_mixed

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_mixed("logbili ~ trt * years * age", pbc, treatment="trt", time="years",
                         group="id", at=at)


@pytest.mark.parametrize("at", [{"age": "30"}, {"age": b"30"}, {"age": ["30", 40]}],
                         ids=["text", "bytes", "text in a list"])
def test_mixed_at_refuses_text(pbc, at):
    """'30' was read as the characters '3' and '0': effects at ages 3 and 0."""
    from hte_report.spec.options import OptionError

    with pytest.raises(OptionError, match=r"at\['age'\].*must be numbers, got the text") as info:
        _mixed(pbc, at)
    assert "write 30, not" in str(info.value)


def test_mixed_at_numbers_still_work(pbc):
    rows = _mixed(pbc, {"age": 30}).subgroups
    assert set(rows[rows.modifier == "age"].level) == {"at 30"}


# ------------------------------------------- personalized benefit: refused rows say why
RISK = "arrest ~ age + prio + C(wexp) + C(mar) + paro + race"


@pytest.fixture(scope="module")
def rossi_risk():
    import dataclasses

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = hr.fit_plan(ROSSI / "plan.yaml", ROSSI / "rossi.csv")
    rb = {"planned": True, "formula": RISK, "method": "pooled", "cutpoints": [0.2, 0.3, 0.4]}
    plan = dataclasses.replace(a.plan, raw={**a.plan.raw, "risk_based": rb})
    return dataclasses.replace(a, plan=plan)


def _with_rr(a, rr: float):
    """The analysis with an overall risk ratio of ``rr`` (interval rr/1.1 to rr*1.1)."""
    import dataclasses

    ov = a.result.overall.copy()
    at = ov.scale == "RR"
    ov.loc[at, "estimate"], ov.loc[at, "conf_low"], ov.loc[at, "conf_high"] = (
        rr, rr / 1.1, rr * 1.1)
    return dataclasses.replace(a, result=dataclasses.replace(a.result, overall=ov))


def _benefit(a):
    from hte_report.report.path import risk_section

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        blocks = risk_section(a)
    return blocks, next((b for b in blocks if getattr(b, "name", "") ==
                         "personalized-benefit"), None)


def test_personalized_benefit_marks_refused_rows(rossi_risk):
    _, table = _benefit(rossi_risk)
    assert table is not None and "Note" not in table.frame.columns  # nothing refused
    risks = sorted(float(r.rstrip("%")) / 100 for r in table.frame["Baseline risk"])
    assert len(risks) == 4 and risks[-1] > risks[-2]
    rr = 2 / (risks[-1] + risks[-2])  # the highest stratum's risk x RR is above 1
    _, table = _benefit(_with_rr(rossi_risk, rr))
    tab = table.frame
    assert len(tab) == 4, tab
    refused = tab[tab["ARR, % points (CI)"] == "–"]
    assert len(refused) == 1 and refused.iloc[0]["NNT (Altman 1998)"] == "–"
    assert refused.iloc[0]["Note"].startswith("not computed: p0 ")
    assert "above 1: a risk ratio cannot apply" in refused.iloc[0]["Note"]
    assert (tab.drop(refused.index)["Note"] == "").all()
    assert any("1 of 4 rows not computed" in n for n in table.notes)


def test_personalized_benefit_absent_says_why(rossi_risk):
    from hte_report.report.model import Callout

    blocks, table = _benefit(_with_rr(rossi_risk, 50.0))  # refused at every stratum
    assert table is None
    (c,) = [b for b in blocks if isinstance(b, Callout) and "Personalized benefit" in b.title]
    assert c.kind == "warning" and "is not shown: p0 " in c.text
    assert "a risk ratio cannot apply" in c.text


# -------------------------------------- hte-report check: warnings of loading the plan captured
def _check_cli(path: Path, data: Path):
    from typer.testing import CliRunner

    from hte_report.cli import app

    return CliRunner().invoke(app, ["check", str(path), "--data", str(data)])


def test_check_prints_warnings_of_loading_the_plan(tmp_path, monkeypatch):
    original = plan_module.load_plan

    def load_with_a_warning(*a, **k):
        warnings.warn("a warning while the plan is read", HTEReportWarning, stacklevel=2)
        return original(*a, **k)

    monkeypatch.setattr(plan_module, "load_plan", load_with_a_warning)
    out = _check_cli(ROSSI / "plan.yaml", ROSSI / "rossi.csv")
    assert out.exit_code == 0, out.output
    assert "warning: a warning while the plan is read" in out.output
    assert "HTEReportWarning" not in out.output and "warnings.warn" not in out.output


def test_check_prints_warnings_before_an_error(tmp_path, monkeypatch):
    def load_warn_fail(*a, **k):
        warnings.warn("read so far", HTEReportWarning, stacklevel=2)
        raise PlanError("plan.yaml: broken")

    monkeypatch.setattr(plan_module, "load_plan", load_warn_fail)
    out = _check_cli(ROSSI / "plan.yaml", ROSSI / "rossi.csv")
    assert out.exit_code == 1
    assert out.output.index("warning: read so far") < out.output.index("error: plan.yaml: broken")
    assert "HTEReportWarning" not in out.output


def test_check_of_a_locked_plan_run_as_locked(tmp_path):
    path = _plan(tmp_path, _models, locked=True)
    out = _check_cli(path, tmp_path / "rossi.csv")
    assert out.exit_code == 0, out.output
    assert "warning: the locked plan's 'model.models' lists 'ols' more than once" in out.output
    assert "lock status matches" in out.output
    (tmp_path / "unlocked").mkdir()
    path = _plan(tmp_path / "unlocked", _models, locked=False)
    out = _check_cli(path, tmp_path / "rossi.csv")
    assert out.exit_code == 1 and "error:" in out.output and "more than once" in out.output
