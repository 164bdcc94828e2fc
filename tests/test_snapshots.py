"""Snapshots (syrupy) of generated text: great-tables HTML with volatile ids stripped, and the
Typst source of the example report. Update deliberately with `pytest --snapshot-update`."""

import re
import warnings
from pathlib import Path

import pytest

from hte_report.analysis import fit_plan
from hte_report.presentation.credibility import (
    analyst_ratings,
    credibility_table,
    iceman,
    propose_rating,
)
from hte_report.presentation.tables import interaction_table, subgroup_table
from hte_report.report.content import build_report
from hte_report.report.typst import render_typst

EXAMPLE = Path(__file__).parents[1] / "examples" / "rossi"


def _stable(html: str) -> str:
    """Remove the random table id great-tables generates (attribute and CSS selectors)."""
    ids = set(re.findall(r'id="([a-z]{10})"', html))
    for i in ids:
        html = html.replace(i, "GTID")
    return html


@pytest.fixture(scope="module")
def analysis():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_plan(EXAMPLE / "plan.yaml", EXAMPLE / "rossi.csv", posthoc=["race"])


def test_subgroup_table_html(analysis, snapshot):
    assert _stable(subgroup_table(analysis.result).as_raw_html()) == snapshot


def test_interaction_table_html(analysis, snapshot):
    assert _stable(interaction_table(analysis.result).as_raw_html()) == snapshot


def test_credibility_table_html(analysis, snapshot):
    ans = iceman(analysis.result, analysis.plan)
    gt = credibility_table(ans, propose_rating(ans), analyst_ratings(analysis.plan))
    assert _stable(gt.as_raw_html()) == snapshot


def test_report_typst_source(analysis, snapshot):
    """The whole report's Typst source, without the dependency-versions table (it changes
    whenever a dependency is released)."""
    from dataclasses import replace

    from hte_report.report.model import Table

    report = build_report(analysis, date="2026-01-01")
    sections = tuple(
        replace(s, blocks=tuple(b for b in s.blocks
                                if not (isinstance(b, Table) and b.name == "versions")))
        for s in report.sections)
    text = render_typst(replace(report, sections=sections))
    assert text.replace(report.meta["version"], "VERSION") == snapshot


def test_tables_do_not_change_the_result(analysis):
    before = analysis.result.subgroups.copy()
    subgroup_table(analysis.result)
    assert analysis.result.subgroups.equals(before)
