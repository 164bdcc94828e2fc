"""A plan's exploratory causal forest (issue 18) through the plan schema and the report: the
section appears when planned, labelled exploratory, seeded by the plan; bad keys are refused."""

import warnings
from pathlib import Path

import pytest
import yaml

pytest.importorskip("econml", reason="econml (extra 'ml') is not installed")

import hte_report as hr  # noqa: E402
from hte_report.errors import PlanError  # noqa: E402
from hte_report.report.content import build_report  # noqa: E402
from hte_report.spec.plan import load_plan  # noqa: E402

ROSSI = Path(__file__).parents[1] / "examples" / "rossi"


def _raw(**exploratory):
    raw = yaml.safe_load((ROSSI / "plan.yaml").read_text(encoding="utf-8"))
    raw["exploratory"] = {"planned": True, "covariates": ["age", "prio", "wexp", "mar", "paro",
                                                          "race"],
                          "n_trees": 100, "nuisance_trees": 40, "crossfit_trees": 40,
                          "n_bootstrap": 20, **exploratory}
    return raw


def test_planned_forest_section_in_the_report():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = hr.fit_plan(load_plan(_raw()), ROSSI / "rossi.csv")
        rep = build_report(a, date="2026-11-30")
    ids = [s.id for s in rep.sections]
    assert "explore" in ids and ids.index("explore") > ids.index("subgroups")
    sec = rep.section("explore")
    text = " ".join(getattr(b, "text", "") or getattr(b, "caption", "") for b in sec.blocks)
    assert "xploratory" in text and "Never promote" in text


@pytest.mark.parametrize("change,match", [
    (dict(method="lasso"), "not one of"),
    (dict(n_trees="many"), "integer"),
    (dict(planned="yes"), "true or false"),
])
def test_exploratory_keys_are_checked(change, match):
    with pytest.raises(PlanError, match=match):
        load_plan(_raw(**change))
