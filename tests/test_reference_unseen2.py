"""hte_report against R on public data sets that no other reference test uses, for the areas the
first cross-check (test_reference_unseen.py) left out (tests/reference/unseen2_*.R ->
unseen2_*.json; data in tests/reference/data/unseen2_*.csv; helpers in unseen2_common.R):

* veteran (survival::veteran, VA lung cancer trial): Cox one modifier at a time (celltype,
  prior, karno) + age, Efron / model variance and Breslow / robust variance: HRs, ratios of HRs,
  Wald / LR tests, standardized survival differences at 60 and 90 days by subgroup and overall
  (R route of its own: survfit(ctype = 1) baseline and its variance, numDeriv derivatives of
  the baseline through coxph(init =, iter.max = 0)), conditional SurvDiff, Kaplan-Meier
  RMST differences at 90 days (summary(survfit, rmean =)), equality tests, differences of
  SurvDiffs / RMSTDiffs, within-subgroup cox.zph p.

Every R record is matched to exactly one package row and compared at relative tolerance 1e-6
(values near zero: absolute 1e-6 standard errors; p-values below 1e-4: relative on the log);
every package row of the compared frames must be described by a record. R is not needed at
test time.
"""

import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hte_report as hr

REF = Path(__file__).parent / "reference"
RTOL = 1e-6
VALUES = ("estimate", "std_error", "conf_low", "conf_high", "statistic", "p_value")
COUNTS = ("n", "n_treated", "n_control", "events_treated", "events_control",
          "exposure_treated", "exposure_control")


@cache
def ref(case):
    return json.loads((REF / f"unseen2_{case}.json").read_text())


def data(case, **kw):
    return pd.read_csv(REF / "data" / f"unseen2_{case}.csv", **kw)


def num(v):
    return np.nan if v is None else float(v)


def close(got, want, what, scale=0.0):
    """Relative 1e-6; absolute 1e-6 x ``scale`` (a standard error) for values near zero;
    p-values below 1e-4 compared on the log scale."""
    want, got = num(want), float(got)
    if np.isnan(want):
        assert np.isnan(got), f"{what}: {got} (R: NA)"
        return
    if what.endswith("p_value") and 0 < want < 1e-4:
        got, want = np.log(got), np.log(want)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=max(1e-13, RTOL * scale),
                               err_msg=what)


def one(df, what):
    assert len(df) == 1, f"{what}: {len(df)} rows"
    return df.iloc[0]


def same(col, value):
    """Rows whose ``col`` equals an R value (NA matches NaN)."""
    s = col.astype(float)
    return s.isna() if value is None else np.isclose(s, float(value), rtol=1e-12, atol=0)


def compare(g, r, what, cols=VALUES):
    scale = num(r.get("std_error")) if r.get("std_error") is not None else 0.0
    for c in cols:
        if c in r:
            close(g[c], r[c], f"{what}: {c}", scale=0.0 if c == "std_error" else scale)


# ---------------------------------------------------------------------------------- veteran
VETERAN_CALLS = list(ref("veteran")["calls"])


@cache
def veteran(call):
    J = ref("veteran")
    kw = dict(J["common"], **J["calls"][call]["kwargs"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hr.fit(J["formula"], data("veteran"), **kw)


@pytest.mark.parametrize("call", VETERAN_CALLS)
def test_veteran_subgroup_and_overall_rows(call):
    """HR, standardized / conditional SurvDiff at 60 and 90 days, KM RMSTDiff at 90 days, per
    subgroup and overall, with means per arm, counts and within-subgroup cox.zph p."""
    res = veteran(call)
    refs = ref("veteran")["calls"][call]["records"]
    for frame, analysis in ((res.subgroups, "one-at-a-time"), (res.overall, "overall-adjusted")):
        mine = [r for r in refs if r["analysis"] == analysis]
        for r in mine:
            rows = frame[(frame.modifier == r["modifier"]) & (frame.scale == r["scale"])
                         & (frame.method == r["method"]) & (frame.level == r["level"])
                         & same(frame.horizon, r["horizon"])]
            what = (f"{call} {r['modifier']}={r['level']} {r['scale']} {r['method']} "
                    f"h={r['horizon']}")
            g = one(rows, what)
            compare(g, r, what, VALUES + ("mu_treated", "mu_control", "ph_p_value", "value"))
            for c in COUNTS:
                if c in r:
                    assert float(g[c]) == r[c], f"{what}: {c}"
        assert len(frame) == len(mine), f"{call} {analysis}: rows R does not describe"
    assert len(refs) == 43


@pytest.mark.parametrize("call", VETERAN_CALLS)
def test_veteran_interaction_effects(call):
    res = veteran(call)
    df = res.interaction_effects
    refs = ref("veteran")["calls"][call]["interaction_effects"]
    for r in refs:
        what = f"{call} {r['modifier']}={r['level']} {r['scale']} h={r['horizon']}"
        g = one(df[(df.modifier == r["modifier"]) & (df.level == r["level"])
                   & (df.scale == r["scale"]) & same(df.horizon, r["horizon"])], what)
        assert g.reference == r["reference"] and g.method == r["method"], what
        compare(g, r, what)
    assert len(df) == len(refs) == 17


@pytest.mark.parametrize("call", VETERAN_CALLS)
def test_veteran_tests(call):
    """Wald and LR tests of the interaction terms, equality tests of SurvDiff / RMSTDiff."""
    res = veteran(call)
    df = res.interactions
    refs = ref("veteran")["calls"][call]["tests"]
    for r in refs:
        what = f"{call} {r['modifier']} {r['scale']} {r['test']} h={r['horizon']}"
        g = one(df[(df.modifier == r["modifier"]) & (df.scale == r["scale"])
                   & (df.test == r["test"]) & same(df.horizon, r["horizon"])], what)
        assert int(g.df) == r["df"], what
        for c in ("statistic", "p_value"):
            close(g[c], r[c], f"{what}: {c}")
    assert len(df) == len(refs) == 12
