"""The report of a time-to-event plan (GBSG-2 example): every survival section renders, labels
carry the horizon and the time unit, and the direction of benefit follows the scale."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from hte_report.analysis import fit_plan
from hte_report.report.content import build_report
from hte_report.report.html import render_html
from hte_report.report.model import Figure, Table

ROOT = Path(__file__).resolve().parent.parent
PLAN = ROOT / "examples" / "gbsg2" / "plan.yaml"
DATA = ROOT / "examples" / "gbsg2" / "gbsg2.csv"


@pytest.fixture(scope="module")
def analysis():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_plan(PLAN, DATA)


@pytest.fixture(scope="module")
def report(analysis):
    return build_report(analysis, date="2026-01-31")


def _blocks(report, sid, kind):
    return [b for b in report.section(sid).blocks if isinstance(b, kind)]


def test_sections_in_order(report):
    ids = [s.id for s in report.sections]
    assert ids.index("overall") < ids.index("km") < ids.index("subgroups") < ids.index("ph")


def test_km_figures_per_categorical_modifier(report):
    figs = {f.name: f for f in _blocks(report, "km", Figure)}
    assert set(figs) == {"km-overall", "km-menostat", "km-tgrade"}
    svg = figs["km-tgrade"].svg.decode()
    for level in ("I", "II", "III"):  # one panel per level, each with numbers at risk
        assert f"Tumour grade: Grade {level}" in svg
    assert svg.count("Number at risk") == 3
    assert "median" in svg and "events" in svg
    assert "1095 days" in figs["km-overall"].caption
    summary = _blocks(report, "km", Table)[0].frame
    assert "KM survival at 1095 days" in summary.columns
    assert summary.iloc[0]["Events/n"] == "94/246"


def test_ph_tables(report, analysis):
    tabs = {t.name: t.frame for t in _blocks(report, "ph", Table)}
    sub, terms = tabs["ph-subgroups"], tabs["ph-terms"]
    assert {"Postmenopausal (Post)", "Grade III (III)", "All patients"} <= set(sub.Subgroup)
    assert "Events/n (Hormonal therapy)" in sub.columns
    assert list(terms.Term) == [t["term"] if t["term"] != "GLOBAL" else "GLOBAL (all terms)"
                                for t in analysis.result.meta["ph_tests"]]


def test_forest_has_both_survival_panels(report):
    forest = next(f for f in _blocks(report, "subgroups", Figure) if f.name == "forest")
    svg = forest.svg.decode()
    assert "Survival difference at" in svg and "1095 days (percentage" in svg  # wrapped title
    assert "Hazard ratio (log scale)" in svg
    assert "94/246" in svg and "205/440" in svg  # events/n per arm
    assert "favours treatment" in svg  # the footnote states the direction of each scale


def test_forest_favours_follow_the_scale(analysis):
    from dataclasses import replace

    res = replace(analysis.result, meta={**analysis.result.meta, "time_unit": "days"})
    fig = res.forest(higher_is_better=False)
    text = {t.get_gid(): t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_gid")
                                                           and a.get_gid() and
                                                           "favours" in a.get_gid())}
    assert "treatment" in text["forest-favours-absolute-right"]  # survival up: treatment
    assert "treatment" in text["forest-favours-relative-left"]  # HR below 1: treatment


def test_tables_in_percentage_points_with_horizon(report):
    sub = next(t for t in _blocks(report, "subgroups", Table) if t.name == "subgroups")
    col = next(c for c in sub.frame.columns if c.startswith("Surv. diff. at 1095 days"))
    assert sub.frame[col].iloc[0] == "9.2 (2.8 to 15.6)"
    ie = next(t for t in _blocks(report, "subgroups", Table) if t.name == "interaction-effects")
    measures = set(ie.frame.Measure)
    assert "ratio of HRs" in measures
    assert "difference of survival differences at 1095 days (percentage points)" in measures
    overall = _blocks(report, "overall", Table)[0].frame
    assert "RMST difference up to 1825 days (days)" in set(overall.Scale)


def test_methods_name_cox_breslow_km(report):
    text = " ".join(b.text for b in report.section("methods").blocks if hasattr(b, "text"))
    for words in ("Efron method", "Breslow", "Kaplan–Meier", "τ = 1825 days", "1095 days"):
        assert words in text


def test_html_and_pdf_render(report, tmp_path):
    html = render_html(report)
    for sid in ("km", "ph", "subgroups"):
        assert f'id="{sid}"' in html
    for fig in ("km-overall", "km-menostat", "km-tgrade", "forest"):
        assert f'id="fig-{fig}"' in html
    assert "Interaction effects (each level vs reference" in html
    assert "Proportional hazards of the treatment within each subgroup" in html
    from hte_report.report.typst import compile_pdf, write_typst_project

    pdf = compile_pdf(write_typst_project(report, tmp_path / "typst"), tmp_path / "r.pdf")
    assert pdf.read_bytes()[:4] == b"%PDF"
