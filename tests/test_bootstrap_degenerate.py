"""Bootstrap replicates without a finite estimate for a row (a subgroup arm that the resample
leaves without events, with events only or without patients; a ratio from a mean outside its
range; a fit drifting to the boundary; a refit that fails) are counted, left out and, beyond
1% of the replicates, make the row's SE and intervals withheld: never a ratio limit of 1e-13
or below zero (an R cross-check found both)."""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hte_report import bootstrap
from hte_report.estimation import bootstrap as bmod
from hte_report.estimation import bootstrap_summary as bsum
from hte_report.estimation.bootstrap import replicate_weights
from hte_report.estimation.glm import fit as engine_fit

DATA = Path(__file__).parent / "reference" / "data" / "unseen2_respiratory.csv"
FORMULA = "poor4 ~ treat * (C(centre2) + C(male)) + poor0"
KW = dict(treatment="treat", B=40, seed=7, jackknife_groups=8)
LIMITS = ["conf_low_percentile", "conf_high_percentile", "conf_low_bca", "conf_high_bca"]
NUMBERS = ["estimate", "boot_se"] + LIMITS
RATIOS = ["RR", "OR"]


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(DATA)


@pytest.fixture(scope="module")
def boot(data):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = bootstrap(FORMULA, data, keep_replicates=True, **KW)
    return res, [str(w.message) for w in caught]


def _groups(data):
    """The rows of every group, as the bootstrap orders them (all patients, then levels)."""
    return {("All patients", ""): np.ones(len(data), bool),
            **{("centre2", str(v)): (data.centre2 == v).to_numpy() for v in (0, 1)},
            **{("male", str(v)): (data.male == v).to_numpy() for v in (0, 1)}}


def _weights(data, B=40, seed=7):
    n = len(data)
    return np.array([replicate_weights(c, n, np.arange(n))
                     for c in np.random.SeedSequence(seed).spawn(B)])


def _arm_counts(data, W, rows):
    """Patients and events per arm of the group ``rows`` in every replicate (weights W)."""
    t, y = data.treat.to_numpy() == 1, data.poor4.to_numpy()
    n1, n0 = W[:, rows & t].sum(axis=1), W[:, rows & ~t].sum(axis=1)
    e1, e0 = W[:, rows & t] @ y[rows & t], W[:, rows & ~t] @ y[rows & ~t]
    return n1, n0, e1, e0


def _ols_means(data, W, rows):
    """Standardized risks under treatment and control of the group ``rows`` from the linear
    probability model refitted by weighted least squares in every replicate (numpy)."""
    c, m, t = (data[k].to_numpy(float) for k in ("centre2", "male", "treat"))
    base = [np.ones(len(data)), c, m, data.poor0.to_numpy(float)]
    X1 = np.column_stack(base + [np.ones(len(data)), c, m])
    X = np.column_stack(base + [t, t * c, t * m])
    X0 = np.column_stack(base + [np.zeros((len(data), 3))])
    out = []
    for w in W:
        sw = np.sqrt(w)
        beta = np.linalg.lstsq(X * sw[:, None], data.poor4.to_numpy() * sw, rcond=None)[0]
        ww = w * rows
        out.append((ww @ (X1 @ beta) / ww.sum(), ww @ (X0 @ beta) / ww.sum()))
    return np.array(out)


def test_reproducer_rows_are_withheld_not_printed(boot, data):
    """The R cross-check's case: treated men are 6 patients with 1 event, so about a third of
    the replicates have no event there. Their rows keep the full-sample estimate (as fit())
    and withhold SE and limits with the reason; no ratio limit is <= 0 or near 1e-13."""
    res, caught = boot
    df = res.intervals
    men = df[(df.modifier == "male") & (df.level == "1")]
    hit = men[(men.model != "ols-HC3") | (men.scale == "RR")]
    assert len(hit) == 6  # modified Poisson RD, RR; logit RD, RR, OR; OLS RR
    assert hit.note.str.startswith("SE and intervals not estimable: 16 of 40 replicates "
                                   "degenerate (zero events in the treated arm: 15").all()
    assert hit[["boot_se"] + LIMITS].isna().all().all()
    assert hit.estimate.notna().all()
    # the estimate is the full-sample one, as fit() reports it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = engine_fit(FORMULA, data, treatment="treat")
    want = ref.subgroups.query("method == 'standardized' and modifier == 'male' and level == '1'")
    for r in hit.itertuples():
        w_ = want[(want.model == r.model) & (want.scale == r.scale)]
        assert w_.note.item() == ""
        assert r.estimate == pytest.approx(w_.estimate.item(), rel=1e-8)
    # the OLS RD needs no events: reported, nothing left out
    rd = men[(men.model == "ols-HC3") & (men.scale == "RD")]
    assert rd.n_degenerate.item() == 0 and rd.note.item() == ""
    assert rd[LIMITS].notna().all().all()
    # every other row is untouched by the sparse cell
    rest = df.drop(index=hit.index)
    assert rest.n_degenerate.eq(0).all() and rest.note.eq("").all()
    assert rest[NUMBERS].notna().all().all()
    ratio = df[df.scale.isin(RATIOS)][LIMITS].to_numpy(float)
    assert (ratio[~np.isnan(ratio)] > 1e-3).all()  # was 1.6e-13 (RR), 3.6e-14 (OR), -0.33
    assert (df.boot_se.dropna() < 2).all()  # was 13.5 on the log scale
    assert any("SE and intervals withheld" in m and "male 1 RR modified-poisson-HC0" in m
               for m in caught)


def test_degenerate_counts_match_the_resampling_weights(boot, data):
    """Recounted independently: each replicate's arm patients and events of every group from
    its frequency weights; for the OLS RR, a least-squares refit's standardized risks."""
    res, _ = boot
    df = res.intervals
    W = _weights(data)
    for (modifier, level), rows in _groups(data).items():
        n1, n0, e1, e0 = _arm_counts(data, W, rows)
        empty = (n1 == 0) | (n0 == 0)
        cell = empty | (e1 == 0) | (e0 == 0) | (e1 == n1) | (e0 == n0)
        m = _ols_means(data, W, rows)
        ols_rr = cell | (m.min(axis=1) <= 0)
        g = df[(df.modifier == modifier) & (df.level == level)]
        for r in g.itertuples():
            if r.model == "ols-HC3":
                want = ols_rr if r.scale == "RR" else empty
            else:  # log and logit models: every scale
                want = cell
            what = f"{modifier}={level} {r.model} {r.scale}"
            assert r.n_degenerate == want.sum(), what
            # the replicates kept are exactly the others
            np.testing.assert_array_equal(np.isnan(res.replicates[:, r.Index]), want,
                                          err_msg=what)
    men = _groups(data)["male", "1"]
    n1, _n0, e1, e0 = _arm_counts(data, W, men)
    assert (e1 == 0).sum() == 15 and (e0 == _n0).sum() == 1  # the note's reasons


def test_same_seed_same_output(boot, data):
    """Degenerate replicates are decided from the weights and fits alone: the same seed gives
    the same frame and replicates, for any number of threads."""
    res, _ = boot
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = bootstrap(FORMULA, data, keep_replicates=True, n_jobs=1, **KW)
    pd.testing.assert_frame_equal(again.intervals, res.intervals)
    np.testing.assert_array_equal(again.replicates, res.replicates)


def test_nothing_degenerate_output_unchanged(data):
    """The R reference formula (tests/test_reference_unseen2.py) has no degenerate
    replicate: the numbers are those of the code before degenerate replicates were counted
    (recorded), with n_degenerate 0 and empty notes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bootstrap("poor4 ~ treat * C(centre2) + poor0 + male", data,
                        keep_replicates=True, **KW)
    df = res.intervals
    assert list(df.columns) == ["modifier", "level", "scale", "model"] + NUMBERS + [
        "n_degenerate", "note", "B", "seed", "unit"]
    assert df.n_degenerate.eq(0).all() and df.note.eq("").all()
    assert np.isfinite(res.replicates).all() and df[NUMBERS].notna().all().all()
    before = {
        0: [-0.19846101008027833, 0.08498107443864436, -0.35472456285135395,
            -0.06431999279735659, -0.3515530512629989, -0.05744436396522931],
        4: [0.8131350151659728, 0.18707286080813815, 0.65120003521984, 1.1281953765527108,
            0.6530130537653693, 1.2958023489309691],
        9: [0.6546477572538145, 0.18542814994035794, 0.4718984924361605, 0.8832738567482363,
            0.5264985926384965, 0.9368095428267875],
        13: [-0.12825186115620468, 0.11679390790785586, -0.28428208463378013,
             0.07163504237523247, -0.2617228681107789, 0.17057224734379436],
        20: [0.26559119737527365, 0.6556103229998812, 0.06590692602249232, 0.8351257141374869,
             0.08501952049526375, 0.8470638918305934]}
    for j, want in before.items():
        np.testing.assert_allclose(df.loc[j, NUMBERS].to_numpy(float), want, rtol=1e-12)


def test_a_few_degenerate_replicates_are_left_out(rossi):
    """At most 1% of the replicates may be degenerate: the OLS RR in the oldest age quarter
    has one replicate whose standardized risk is negative (its 'ratio' was -0.027 and the
    lower limit was computed with it); it is left out and counted, the others give the
    limits."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bootstrap("arrest ~ fin * (age + C(wexp))", rossi, treatment="fin", B=200,
                        seed=11, keep_replicates=True)
    df = res.intervals
    r = df[(df.level == "Q4 [27, 44]") & (df.scale == "RR") & (df.model == "ols-HC3")]
    j = r.index.item()
    assert r.n_degenerate.item() == 1
    assert r.note.item() == ("1 of 200 replicates degenerate (a predicted mean outside the "
                             "range of a risk or rate: 1), left out of the SE and intervals")
    kept = res.replicates[:, j][~np.isnan(res.replicates[:, j])]
    assert len(kept) == 199 and (kept > 0).all()
    lo, hi = np.quantile(kept, [0.025, 0.975])
    assert r.conf_low_percentile.item() == pytest.approx(lo, rel=1e-12)
    assert r.conf_high_percentile.item() == pytest.approx(hi, rel=1e-12)
    assert r.conf_low_percentile.item() != pytest.approx(0.11000874649846383, rel=1e-6)
    assert r[LIMITS].notna().all().all()
    others = df.drop(index=j)
    assert others.n_degenerate.eq(0).all() and others.note.eq("").all()


def test_counts_zero_events_in_a_level():
    """Counts with exposure: replicates that leave a level's treated arm without events are
    counted from the weights. The log-link model has no finite estimate there; the
    identity-link Poisson's mean there is at the boundary (0, where its variance vanishes)
    and its refit does not converge: the same replicates, counted as such."""
    rng = np.random.default_rng(5)
    n = 400
    d = pd.DataFrame({"t": np.arange(n) % 2, "g": np.where(np.arange(n) < 40, "c",
                                                            rng.choice(["a", "b"], n)),
                      "time": rng.uniform(0.5, 2, n)})
    d["y"] = rng.poisson(d.time * 0.6)
    c_treated = ((d.g == "c") & (d.t == 1)).to_numpy()
    d.loc[c_treated, "y"] = 0
    d.loc[np.flatnonzero(c_treated)[:2], "y"] = 1  # two events: some replicates draw neither
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bootstrap("y ~ t * C(g)", d, treatment="t", family="count", exposure="time",
                        B=60, seed=3, jackknife_groups=5, keep_replicates=True)
    W = np.array([replicate_weights(c, n, np.arange(n))
                  for c in np.random.SeedSequence(3).spawn(60)])
    none = (W[:, c_treated] @ d.y.to_numpy()[c_treated]) == 0
    assert 0 < none.sum() < 60
    df = res.intervals
    cell = df[(df.modifier == "g") & (df.level == "c")]
    assert len(cell) == 4
    for r in cell.itertuples():
        np.testing.assert_array_equal(np.isnan(res.replicates[:, r.Index]), none)
        assert r.n_degenerate == none.sum() and np.isnan(r.boot_se), (r.model, r.scale)
        linear_difference = r.model.startswith("identity") and r.scale == "RateDiff"
        reason = "no finite estimate" if linear_difference else "zero events in the treated arm"
        assert f"({reason}" in r.note
    # the log-link model's other rows are finite limits (as fit() reports them); the
    # identity-link refit failed as a whole, so its other rows lose the same replicates
    others = df[df.level != "c"]
    identity = others.model.str.startswith("identity").to_numpy()
    assert others[~identity].n_degenerate.eq(0).all()
    assert others[identity].n_degenerate.eq(none.sum()).all()


def _model(link, family="binomial"):
    from hte_report.models.fast import Family

    return bmod._Model("m", Family(family, link), np.zeros(1), None, (), None, None, None)


def _job(family="binary"):
    return bmod._Job((), None, None, None, None, np.ones((1, 1), bool), None, 1, None, family,
                     np.ones(1, bool))


def test_degenerate_rules():
    """Which replicate is degenerate for which model and scale (codes of REASONS): a cell
    without events counts for ratios and for every scale of a log or logit model, not for a
    linear model's difference; an arm without patients for all; a linear model's ratio from
    a mean <= 0; a log or logit model's risk within EDGE of 0 (logit: or 1); no estimate."""
    cells = np.array([[0, 2, 1, 0, 0, 0, 0]])
    m1 = np.array([[0.3, 0.3, 0.3, -0.1, 1e-12, 1 - 1e-12, np.nan]])
    m0 = np.full_like(m1, 0.4)
    e = m1 / m0

    def codes(link, kind):
        return bsum.effect_codes(_job(), _model(link), kind, cells, m1, m0, e)[0].tolist()

    assert codes("identity", "difference") == [0, 0, 1, 0, 0, 0, 8]
    assert codes("identity", "ratio") == [0, 2, 1, 6, 0, 0, 8]
    assert codes("log", "difference") == [0, 2, 1, 7, 7, 0, 8]
    assert codes("logit", "odds-ratio") == [0, 2, 1, 6, 7, 7, 8]
    # rates may be tiny (exposure in seconds): the edge is for risks only
    count = bsum.effect_codes(_job("count"), _model("log", "poisson"), "difference", cells,
                             m1, m0, e)[0].tolist()
    assert count == [0, 2, 1, 0, 0, 0, 8]


def test_summary_thresholds_and_jackknife():
    """Up to 1% of the replicates may be left out (2 of 200), 3 are too many; a degenerate
    jackknife sample withholds the BCa limits only; a degenerate full sample the row, in
    fit()'s words."""
    B, g = 200, 5
    rng = np.random.default_rng(0)
    est = np.exp(rng.normal(0, 0.2, (B + 1 + g, 4)))
    est[B] = 1.0
    codes = np.zeros(est.shape, np.int8)
    codes[:2, 0] = 2  # 1%: left out
    codes[:3, 1] = 2  # 1.5%: withheld
    codes[B + 1, 2] = 2  # a jackknife sample
    codes[B, 3] = bsum.OUT_OF_RANGE  # the full sample
    out = bsum.summarize(est, codes, B, g, [""] * 4, ["ols-HC3"] * 4, ["RR"] * 4, 0.95,
                          np.ones(4, bool))
    assert out["n_degenerate"].tolist() == [2, 3, 0, 0]
    assert np.isfinite([out[k][0] for k in ["boot_se"] + LIMITS]).all()
    assert out["note"][0] == ("2 of 200 replicates degenerate (zero events in the treated "
                              "arm: 2), left out of the SE and intervals")
    assert np.isnan([out[k][1] for k in ["boot_se"] + LIMITS]).all()
    assert out["note"][1].startswith("SE and intervals not estimable: 3 of 200 replicates")
    assert np.isfinite([out[k][2] for k in ["boot_se", "conf_low_percentile"]]).all()
    assert np.isnan([out[k][2] for k in ("conf_low_bca", "conf_high_bca")]).all()
    assert out["note"][2] == ("BCa not estimable: 1 of 5 jackknife samples degenerate (zero "
                              "events in the treated arm: 1)")
    assert np.isnan(out["estimate"][3]) and np.isnan(out["conf_low_percentile"][3])
    assert out["note"][3] == ("not estimable: ols-HC3 predicts a mean outside the range of a "
                              "risk or rate here, so the ratio does not exist")
    assert np.isnan(out["replicates"][:2, 0]).all() and np.isfinite(out["replicates"][2:, 0]).all()
