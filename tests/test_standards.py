"""The report against the reporting standards (issue 22): estimands with subgroup roles, the
deviation log computed from the lock record's copy of the plan, ICEMAN ratings in duplicate
with a reconciled rating, the Sun 2012 stratification criterion, and the cross-reference of
every checklist item to a section anchor of the rendered report."""

import json
import re
import shutil
import warnings
from pathlib import Path

import pytest
import yaml

import hte_report as hr
from hte_report.errors import PlanError
from hte_report.presentation.credibility import analyst_ratings, recorded_rating, sun_checklist
from hte_report.report.content import build_report
from hte_report.report.html import render_html
from hte_report.report.standards import CHECKLIST, deviation_rows
from hte_report.spec.plan import load_plan, lock_plan

ROSSI = Path(__file__).parents[1] / "examples" / "rossi"


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **kw)


def _plan_dir(tmp_path, edit=None):
    raw = yaml.safe_load((ROSSI / "plan.yaml").read_text(encoding="utf-8"))
    raw["deviations"] = []
    raw["modifiers"][0]["role"] = "key"
    raw["modifiers"][0]["stratification_factor"] = True
    raw["estimand"] = {"strategy": "treatment policy",
                       "intercurrent_events": "re-arrest counted whatever the use of the aid"}
    if edit:
        edit(raw)
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    shutil.copy(ROSSI / "rossi.csv", tmp_path / "rossi.csv")
    return plan, raw


@pytest.fixture(scope="module")
def rossi_report():
    a = _quiet(hr.fit_plan, ROSSI / "plan.yaml", ROSSI / "rossi.csv", posthoc=["race"])
    return a, _quiet(build_report, a, date="2026-11-30")


def test_every_checklist_item_points_to_an_anchor_or_says_why_not(rossi_report):
    a, rep = rossi_report
    html = render_html(rep)
    ids = set(re.findall(r'<section[^>]* id="([^"]+)"', html))
    sec = rep.section("standards")
    tab = next(b for b in sec.blocks if getattr(b, "name", "") == "crossref").frame
    assert list(tab.Item) == [c[0] for c in CHECKLIST]
    for item, where in zip(tab.Item, tab["Where answered"]):
        anchors = re.findall(r"\(#([\w-]+)\)", where)
        if where.startswith("not applicable: "):
            assert len(where) > len("not applicable: ") + 10, item
            assert not anchors
        else:
            assert anchors, item
            assert not where.startswith("not applicable"), item
            assert set(anchors) <= ids, (item, anchors, ids)
    # the Rossi plan has a risk-based analysis: PATH items point to it
    assert "(#risk)" in tab.set_index("Item").loc["R12", "Where answered"]
    assert "(#deviations)" in tab.set_index("Item").loc["R4", "Where answered"]


def test_deviation_log_lists_post_hoc_and_recorded_deviations(rossi_report):
    a, rep = rossi_report
    rows = deviation_rows(a)
    assert "modifier race" in set(rows.Item)
    assert (rows.Source == "recorded in the plan").sum() == len(a.plan.raw["deviations"])


def test_a_modifier_changed_after_locking_is_logged(tmp_path):
    plan, raw = _plan_dir(tmp_path)
    lock_plan(plan, "before unblinding")
    rec = json.loads((tmp_path / "plan.yaml.lock.json").read_text())
    assert rec["lock_format"] == 3 and rec["plan"]["modifiers"][0]["variable"] == "age"
    raw["modifiers"][0]["display_cutpoints"] = [25]
    raw["modifiers"][1]["rationale"] = "changed after seeing the data"
    del raw["modifiers"][3]
    plan.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    p = load_plan(plan)
    assert p.lock_status() == "modified"
    a = _quiet(hr.fit_plan, p, tmp_path / "rossi.csv")
    rows = deviation_rows(a)
    got = {(r.Item, r.Note) for r in rows.itertuples()}
    assert ("modifiers[age].display_cutpoints", "changed") in got
    assert ("modifiers[prio].rationale", "changed") in got
    assert ("modifiers[mar]", "removed") in got
    changed = rows[rows.Item == "modifiers[age].display_cutpoints"].iloc[0]
    assert (changed.Locked, changed["As run"]) == ("[30]", "[25]")


def test_a_lock_whose_kept_plan_was_edited_is_caught(tmp_path):
    plan, _ = _plan_dir(tmp_path)
    lock_plan(plan, "x")
    path = tmp_path / "plan.yaml.lock.json"
    rec = json.loads(path.read_text())
    rec["plan"]["title"] = "another title"
    path.write_text(json.dumps(rec))
    assert load_plan(plan).lock.record_status == "edited"


def _ratings(raw, entries):
    raw["credibility"] = entries


def test_two_assessors_and_a_reconciled_rating(tmp_path):
    entries = [
        {"modifier": "age", "scale": "relative", "rating": "low", "rationale": "one trial",
         "assessor": "A"},
        {"modifier": "age", "scale": "relative", "rating": "very low", "rationale": "post hoc "
         "feel", "assessor": "B"},
        {"modifier": "age", "scale": "relative", "rating": "low", "rationale": "agreed",
         "reconciled": True},
    ]
    plan, _ = _plan_dir(tmp_path, lambda raw: _ratings(raw, entries))
    p = load_plan(plan)
    analyst = analyst_ratings(p)
    assert recorded_rating(analyst, "age", "relative") == "low (reconciled)"
    assert recorded_rating(analyst, "age", "absolute") == "not recorded"
    a = _quiet(hr.fit_plan, p, tmp_path / "rossi.csv")
    rep = _quiet(build_report, a, date="2026-11-30")
    tab = next(b for b in rep.section("credibility").blocks
               if getattr(b, "name", "") == "iceman-assessors").frame
    assert list(tab.Assessor) == ["A", "B", "reconciled"]
    assert list(tab.Rating) == ["low", "very low", "low"]
    unreconciled = analyst_ratings(load_plan({**p.raw, "credibility": entries[:2]}))
    assert recorded_rating(unreconciled, "age", "relative") == \
        "A: low; B: very low (not reconciled)"


@pytest.mark.parametrize("entries,match", [
    ([{"modifier": "age", "scale": "relative", "rating": "low", "rationale": "x",
       "assessor": "A"} for _ in range(2)], "same assessor"),
    ([{"modifier": "age", "scale": "relative", "rating": "low", "rationale": "x",
       "reconciled": True, "assessor": a} for a in ("A", "B")], "only one reconciled"),
])
def test_rating_entries_are_checked(tmp_path, entries, match):
    plan, _ = _plan_dir(tmp_path, lambda raw: _ratings(raw, entries))
    with pytest.raises(PlanError, match=match):
        load_plan(plan)


def test_roles_stratification_and_estimand(tmp_path):
    plan, _ = _plan_dir(tmp_path)
    a = _quiet(hr.fit_plan, load_plan(plan), tmp_path / "rossi.csv")
    rep = _quiet(build_report, a, date="2026-11-30")
    sec = rep.section("estimands")
    tab = next(b for b in sec.blocks if getattr(b, "name", "") == "estimands")
    age = tab.frame[tab.frame.Analysis.str.contains("Age")].iloc[0]
    assert age.Role == "key subgroup for consistency; randomization stratification factor"
    assert "re-arrest counted whatever the use of the aid" in tab.notes[0]
    assert "treatment policy" in tab.notes[0]
    sun = sun_checklist(a.result, a.plan)
    item = sun[(sun.modifier == "age") & (sun.criterion == 12)].iloc[0]
    assert item.answer == "yes" and "stratification" in item["item"]


@pytest.mark.parametrize("bad,match", [
    ({"role": "primary"}, "not one of"),
    ({"stratification_factor": "yes"}, "true or false"),
])
def test_modifier_role_keys_are_checked(tmp_path, bad, match):
    plan, _ = _plan_dir(tmp_path, lambda raw: raw["modifiers"][1].update(bad))
    with pytest.raises(PlanError, match=match):
        load_plan(plan)


def test_demographic_template_adds_key_modifiers(tmp_path):
    def edit(raw):
        raw["demographics"] = {"age": "age", "age_groups": [25, 35], "race": "race"}
    plan, _ = _plan_dir(tmp_path, edit)
    p = load_plan(plan)
    assert p.formula.endswith("+ race + paro + fin:race")
    race = p.modifier("race")
    assert race.role == "key" and race.type == "categorical" and "template" in race.rationale
    assert p.modifier("age").display_cutpoints == (30,)  # the listed modifier wins
    a = _quiet(hr.fit_plan, p, tmp_path / "rossi.csv")
    assert "race" in set(a.result.subgroups.modifier) and "race" not in a.result.posthoc
    rep = _quiet(build_report, a, date="2026-11-30")
    tab = next(b for b in rep.section("standards").blocks
               if getattr(b, "name", "") == "crossref").frame.set_index("Item")
    assert "Race" in tab.loc["P14", "Where answered"]


@pytest.mark.parametrize("demo,match", [
    ({"age_groups": [60]}, "need demographics.age"),
    ({"age": "age", "age_groups": [70, 60]}, "strictly increasing"),
    ({"sex": "race", "race": "race"}, "same column"),
    ({"sex": "arrest"}, "the outcome"),
])
def test_demographic_template_is_checked(tmp_path, demo, match):
    plan, _ = _plan_dir(tmp_path, lambda raw: raw.update(demographics=demo))
    with pytest.raises(PlanError, match=match):
        load_plan(plan)
