"""The report of a time-to-event plan (ACTG 320 example): every survival section renders, labels
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
PLAN = ROOT / "examples" / "actg320" / "plan.yaml"
DATA = ROOT / "examples" / "actg320" / "actg320.csv"


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
    assert set(figs) == {"km-overall", "km-sex", "km-ivdrug_ever"}
    svg = figs["km-sex"].svg.decode()
    for level in ("Male", "Female"):  # one panel per level, each with numbers at risk
        assert f"Sex: {level}" in svg
    assert svg.count("Number at risk") == 2
    assert "median" in svg and "events" in svg
    assert "300 days" in figs["km-overall"].caption
    summary = _blocks(report, "km", Table)[0].frame
    assert "KM survival at 300 days" in summary.columns
    assert summary.iloc[0]["Events/n"] == "33/574"


def test_km_infrequent_events_drawn_going_up(report):
    """8% events: cumulative incidence going up on a 0-20% axis, named by the outcome (the
    curves are not labelled with the event's name while going down)."""
    figs = {f.name: f for f in _blocks(report, "km", Figure)}
    for f in figs.values():
        assert "Cumulative incidence (1 − Kaplan–Meier) going up" in f.caption
        assert "ends at 20%" in f.caption
    assert "AIDS-defining event or death (%)" in figs["km-overall"].svg.decode()


def test_ph_tables(report, analysis):
    tabs = {t.name: t.frame for t in _blocks(report, "ph", Table)}
    sub, terms = tabs["ph-subgroups"], tabs["ph-terms"]
    assert {"Female (2)", "Current or previous (1)", "All patients"} <= set(sub.Subgroup)
    assert "Events/n (IDV + ZDV + 3TC)" in sub.columns
    assert list(terms.Term) == [t["term"] if t["term"] != "GLOBAL" else "GLOBAL (all terms)"
                                for t in analysis.result.meta["ph_tests"]]


def test_ph_figures_follow_the_tables(report):
    """Log-minus-log and scaled Schoenfeld figures (tests/test_ph_plots.py checks their
    numbers against R) in the ph section, after its tables: all patients and each level of
    the categorical modifiers, one row per modifier, in one figure of each kind."""
    blocks = report.section("ph").blocks
    kinds = [type(b).__name__ for b in blocks]
    assert kinds.index("Figure") > max(i for i, k in enumerate(kinds) if k == "Table")
    figs = [b.name for b in blocks if isinstance(b, Figure)]
    assert figs == ["ph-lml", "ph-zph"]
    assert any(getattr(b, "strong", False) and "(figures)" in b.text for b in blocks)


def test_forest_has_both_survival_panels(report):
    forest = next(f for f in _blocks(report, "subgroups", Figure) if f.name == "forest")
    svg = forest.svg.decode()
    assert "Survival difference at" in svg and "300 days (percentage" in svg  # wrapped title
    assert "Hazard ratio (log scale)" in svg
    assert "33/574" in svg and "63/577" in svg  # events/n per arm
    assert "favours treatment" in svg  # the footnote states the direction of each scale
    assert "IDV + ZDV + 3TC" in svg and "Treated" not in svg  # the plan's arm labels
    assert "Efron ties, stratified by strat2" in svg
    # the display categories of CD4 are survival differences only, its HRs conditional at
    # the stated values, and the notes say so (footnote lines wrap anywhere)
    flat = " ".join(svg.split())
    assert "at 74.5 (median)" in flat and "0.53 (0.30 to 0.93)" in flat
    assert "no HR by display category" in flat
    assert "as in the test" not in svg


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
    col = next(c for c in sub.frame.columns if c.startswith("Surv. diff. at 300 days"))
    assert sub.frame[col].iloc[0] == "6.1 (2.5 to 9.7)"
    assert "IDV + ZDV + 3TC (events/n)" in sub.frame.columns
    ie = next(t for t in _blocks(report, "subgroups", Table) if t.name == "interaction-effects")
    measures = set(ie.frame.Measure)
    assert "ratio of HRs" in measures
    assert "difference of survival differences at 300 days (percentage points)" in measures
    overall = _blocks(report, "overall", Table)[0].frame
    assert "RMST difference up to 300 days (days)" in set(overall.Scale)
    hr = overall[overall.Scale == "Hazard ratio"]["Estimate (CI)"].iloc[0]
    assert hr == "0.50 (0.33 to 0.76)"  # as published (Hammer et al. 1997)


def test_methods_name_cox_breslow_km(report):
    text = " ".join(b.text for b in report.section("methods").blocks if hasattr(b, "text"))
    for words in ("Efron method", "Breslow", "Kaplan–Meier", "τ = 300 days", "300 days",
                  "stratified by strat2"):
        assert words in text
    assert "adjusted for strata(" not in text


def test_stratified_baseline_and_wording(report):
    base = next(t for t in _blocks(report, "population", Table) if "Baseline" in t.caption)
    assert "strat2 (stratum of the Cox model)" in set(base.frame.Characteristic)
    summary = " ".join(b.text for b in report.section("summary").blocks if hasattr(b, "text"))
    assert "primary analysis stratified by strat2" in summary


def test_event_indicator_named_censor_does_not_warn():
    """'censor' is the event indicator here (96 events of 1151): no reversed-flag warning."""
    from hte_report.errors import DataWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit_plan(PLAN, DATA)
    assert not [w for w in caught if issubclass(w.category, DataWarning)
                and "censoring flag" in str(w.message)]


def test_html_and_pdf_render(report, tmp_path):
    html = render_html(report)
    for sid in ("km", "ph", "subgroups"):
        assert f'id="{sid}"' in html
    for fig in ("km-overall", "km-sex", "km-ivdrug_ever", "forest", "ph-lml", "ph-zph"):
        assert f'id="fig-{fig}"' in html
    assert "Interaction effects (each level vs reference" in html
    assert "Proportional hazards of the treatment within each subgroup" in html
    from hte_report.report.typst import compile_pdf, write_typst_project

    pdf = compile_pdf(write_typst_project(report, tmp_path / "typst"), tmp_path / "r.pdf")
    assert pdf.read_bytes()[:4] == b"%PDF"
