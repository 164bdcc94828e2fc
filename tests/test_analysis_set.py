"""The plan's analysis set (issue 19, ADaM-aware plans): parameter selection, a population
filter parsed safely (never evaluated as code), the one-row-per-subject check, the USUBJID
warning, counts of each step in the report, and the data hash of the data as given."""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import hte_report as hr
from hte_report.data.digest import dataset_sha256
from hte_report.errors import DataWarning, PlanError
from hte_report.report.content import build_report
from hte_report.spec.analysis_set import select
from hte_report.spec.plan import load_plan
from hte_report.spec.plan_data import check_plan_against_data

ACTG = Path(__file__).parents[1] / "examples" / "actg320"


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **kw)


@pytest.fixture(scope="module")
def adam():
    """ACTG 320 as an ADaM-style long file: two parameters per subject (AIDS or death; death),
    a population flag that excludes every 50th subject, a subject key."""
    d = pd.read_csv(ACTG / "actg320.csv")
    d["USUBJID"] = "ACTG-" + d.index.astype(str)
    d["ITTFL"] = np.where(d.index % 50 == 0, "N", "Y")
    death = d.assign(PARAMCD="DTH", time=d.time_d, censor=d.censor_d)
    return pd.concat([d.assign(PARAMCD="AIDSDTH"), death], ignore_index=True)


def _raw(**aset):
    raw = yaml.safe_load((ACTG / "plan.yaml").read_text(encoding="utf-8"))
    if aset:
        raw["analysis_set"] = aset
    return raw


def test_selection_gives_the_same_numbers_as_the_subset(adam):
    raw = _raw(parameter={"value": "AIDSDTH"}, filter="ITTFL == 'Y'", subject="USUBJID")
    a = _quiet(hr.fit_plan, load_plan(raw), adam)
    subset = adam[(adam.PARAMCD == "AIDSDTH") & (adam.ITTFL == "Y")]
    b = _quiet(hr.fit_plan, load_plan(_raw()), subset)
    cols = ["estimate", "std_error"]
    np.testing.assert_allclose(a.result.subgroups[cols].to_numpy(float),
                               b.result.subgroups[cols].to_numpy(float), rtol=1e-12)
    steps = a.result.meta["analysis_set"]
    assert [(s["step"], s["rows_before"], s["rows_kept"]) for s in steps] == [
        ("parameter", 2302, 1151), ("filter", 1151, 1127), ("subject", 1127, 1127)]
    assert a.result.data_sha256 == dataset_sha256(adam)  # the data as given
    rep = _quiet(build_report, a, date="2026-11-30")
    tab = next(b for b in rep.section("population").blocks
               if getattr(b, "name", "") == "analysis-set").frame
    assert list(tab["Rows removed"]) == ["1151", "24", "0"]


def test_two_rows_per_subject_are_refused_with_a_subject_key(adam):
    plan = load_plan(_raw(filter="ITTFL == 'Y'", subject="USUBJID"))
    with pytest.raises(PlanError, match="more than one row after the selection"):
        check_plan_against_data(plan, adam)


def test_usubjid_repeats_without_a_subject_key_warn(adam):
    with pytest.warns(DataWarning, match="USUBJID repeats"):
        select(_raw(), adam)


@pytest.mark.parametrize("text,match", [
    ("__import__('os').system('echo hi')", "only comparisons"),
    ("age + 1 > 3", "neither a column name nor a literal"),
    ("ITTFL.lower() == 'y'", "neither a column name"),
    ("age >", "not a valid expression"),
    ("ITTFL in 'Y'", "needs a list"),
    ("(lambda: 1)() == 1", "neither a column name"),
    ("age[0] > 1", "neither a column name"),
    ("age is None", "not allowed"),
])
def test_unsafe_or_invalid_filters_are_refused(text, match):
    with pytest.raises(PlanError, match=match):
        load_plan(_raw(filter=text))


@pytest.mark.parametrize("aset,match", [
    (dict(filter="NOPE == 'Y'"), "NOPE"),
    (dict(parameter={"value": "OS"}), "does not occur"),
    (dict(parameter={"column": "PARAM", "value": "OS"}), "PARAM"),
    (dict(subject="SUBJ"), "SUBJ"),
    (dict(filter="ITTFL == 'y'"), "selects no row"),
    (dict(filter="age > 'x'"), "cannot compare"),
])
def test_selection_errors_name_the_key(adam, aset, match):
    with pytest.raises(PlanError, match=match):
        check_plan_against_data(load_plan(_raw(**aset)), adam)


def test_filter_semantics():
    d = pd.DataFrame({"A": ["Y", "N", None, "Y"], "B": [1.0, 2.0, 3.0, np.nan],
                      "treat": [0, 1, 0, 1]})
    raw = {"outcome": {"family": "binary"}}

    def rows(text):
        return list(select({**raw, "analysis_set": {"filter": text}}, d)[0].index)

    assert rows("A == 'Y'") == [0, 3]
    assert rows("A != 'Y'") == [1]            # a missing value fails every comparison
    assert rows("B >= 2 or A == 'Y'") == [0, 1, 2, 3]
    assert rows("not B < 2") == [1, 2, 3]      # not (missing < 2) is selected: stated in docs
    assert rows("A in ['N', 'Y'] and B < 3") == [0, 1]
    assert rows("1 < B < 3") == [1]


def test_adam_example_reads_from_xpt_and_checks():
    from hte_report.data.prepare import read_data

    here = ACTG.parent / "actg320_adam"
    d = read_data(here / "adtte.xpt")
    assert d.TRT01P.map(type).eq(str).all()  # text, never bytes
    plan = load_plan(here / "plan.yaml")
    assert plan.lock_status() == "matches"
    check_plan_against_data(plan, d)
    rows, steps = select(plan.raw, d)
    assert len(rows) == 1151 and [s.rows_kept for s in steps] == [1151, 1151, 1151]
    assert {m.variable for m in plan.modifiers} == {"CD4BL", "KARNOF", "SEX", "AGE"}
