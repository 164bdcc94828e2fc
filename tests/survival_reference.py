"""Checks shared by the survival R-reference tests (test_reference_gbsg2.py,
test_reference_actg320.py): each reference record (written by tests/reference/<trial>.R) is
matched to exactly one row of the package's tidy frames and compared at relative tolerance
RTOL; rows the reference does not describe are failures too."""

import numpy as np
import pytest

RTOL = 1e-6
VALUES = ("estimate", "std_error", "conf_low", "conf_high", "statistic", "p_value")
COUNTS = ("n", "n_treated", "n_control", "events_treated", "events_control",
          "exposure_treated", "exposure_control")


def num(v):
    return np.nan if v is None else float(v)


def approx(got, want, what):
    want = num(want)
    if np.isnan(want):
        assert np.isnan(float(got)), f"{what}: {got} (R: NA)"
    else:
        assert float(got) == pytest.approx(want, rel=RTOL), f"{what}: {got} (R: {want})"


def one(df, what):
    assert len(df) == 1, f"{what}: {len(df)} rows"
    return df.iloc[0]


def record_row(df, r):
    rows = df[(df.modifier == r["modifier"]) & (df.scale == r["scale"])
              & (df.method == r["method"]) & (df.analysis == r["analysis"])]
    if r["value"] is not None:  # conditional effect at a value of a continuous modifier
        rows = rows[np.isclose(rows.value.astype(float), r["value"])]
    else:
        rows = rows[rows.level == r["level"]]
    return one(rows, f"{r['modifier']}={r['level']} {r['scale']} {r['method']}")


def check_record(g, r):
    what = f"{r['analysis']} {r['modifier']}={r['level']} {r['scale']} {r['method']}"
    for col in VALUES:
        approx(g[col], r[col], f"{what}: {col}")
    for col in ("mu_treated", "mu_control", "ph_p_value", "horizon"):
        approx(g[col], r[col], f"{what}: {col}")
    for col in COUNTS:
        if col in r:
            assert float(g[col]) == r[col], f"{what}: {col}"


def check_subgroup_rows(res, records, modifier):
    refs = [r for r in records if r["analysis"] == "one-at-a-time" and r["modifier"] == modifier]
    assert len(refs) >= 6
    for r in refs:
        check_record(record_row(res.subgroups, r), r)
    mine = res.subgroups[res.subgroups.modifier == modifier]
    assert len(mine) == len(refs), "rows the R reference does not describe"


def check_overall_rows(res, records):
    refs = [r for r in records if r["analysis"] == "overall-adjusted"]
    assert {r["scale"] for r in refs} == {"HR", "SurvDiff", "RMSTDiff"}
    for r in refs:
        check_record(record_row(res.overall, r), r)
    assert len(res.overall) == len(refs)


def check_interaction_effects(res, refs):
    df = res.interaction_effects
    for r in refs:
        rows = df[(df.modifier == r["modifier"]) & (df.level == r["level"])
                  & (df.scale == r["scale"]) & (df.analysis == "one-at-a-time")]
        g = one(rows, f"{r['modifier']}={r['level']} {r['scale']}")
        assert g.reference == r["reference"] and g.method == r["method"]
        approx(g.horizon, r["horizon"], "horizon")
        for col in VALUES:
            approx(g[col], r[col], f"{r['modifier']}={r['level']} {r['scale']}: {col}")
    assert len(df) == len(refs)


def check_tests(res, refs):
    df = res.interactions
    for r in refs:
        rows = df[(df.modifier == r["modifier"]) & (df.scale == r["scale"])
                  & (df.test == r["test"])]
        g = one(rows, f"{r['modifier']} {r['scale']} {r['test']}")
        assert int(g.df) == r["df"]
        approx(g.horizon, r["horizon"], "horizon")
        for col in ("statistic", "p_value"):
            approx(g[col], r[col], f"{r['modifier']} {r['scale']} {r['test']}: {col}")
    assert len(df) == len(refs)


def zph_close(got: list, want: list, what):
    assert [t["term"] for t in got] == [t["term"] for t in want], what
    for g, w in zip(got, want):
        assert g["df"] == w["df"], f"{what} {w['term']}"
        for col in ("statistic", "p_value"):
            approx(g[col], w[col], f"{what} {w['term']}: {col}")
