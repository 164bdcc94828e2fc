"""Bootstrap: each replicate equals an ordinary fit on explicitly resampled data; seeded and
reproducible for any number of processes; intervals behave."""

import warnings

import numpy as np
import pytest

from hte_report.estimation.bootstrap import bootstrap, replicate_weights
from hte_report.estimation.glm import fit as engine_fit  # one joint model

FORMULA = "arrest ~ fin * (age + C(wexp))"


@pytest.fixture(scope="module")
def boot(rossi):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bootstrap(FORMULA, rossi, treatment="fin", B=200, seed=11, keep_replicates=True)


def _resampled(data, seed, B, b):
    """The rows of replicate ``b`` of ``B`` (seed ``seed``), drawn explicitly."""
    w = replicate_weights(np.random.SeedSequence(seed).spawn(B)[b], len(data),
                          np.arange(len(data))).astype(int)
    return data.loc[np.repeat(np.arange(len(data)), w)].reset_index(drop=True)


def _compared(boot, b, ref, skip=()) -> int:
    """Replicate ``b`` of ``boot`` against the fit ``ref`` on its rows (standardized
    effects, every model and scale); how many numbers were compared. Modifiers in ``skip``
    may have other levels in the resampled fit."""
    got = boot.intervals.assign(rep=boot.replicates[b])
    compared = 0
    for r in got.itertuples():
        frame = ref.overall if r.modifier == "All patients" else ref.subgroups.query(
            "method == 'standardized'")
        want = frame[(frame.model == r.model) & (frame.scale == r.scale)]
        if r.modifier != "All patients":
            want = want[(want.modifier == r.modifier) & (want.level == r.level)]
            if r.modifier in skip and want.empty:
                continue
        np.testing.assert_allclose(r.rep, want.estimate.item(), rtol=1e-7)
        compared += 1
    return compared


def test_replicate_equals_fit_on_resampled_rows(rossi, boot):
    """Frequency weights are exact: refit statsmodels on the rows drawn, compare."""
    for b in (0, 7):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = engine_fit(FORMULA, _resampled(rossi, 11, 200, b), treatment="fin",
                             path="statsmodels")
        # age quarters are cut on the original sample: the resampled fit cuts its own
        compared = _compared(boot, b, ref, skip=("age",))
        assert compared >= 3 * 6  # whole sample and both wexp levels, 3 models x 2 scales


def test_counts_with_exposure_equal_fits_on_resampled_rows():
    """Count models with an exposure (the log-link offset, the identity link's scaled design)
    are refitted exactly too."""
    import pandas as pd

    rng = np.random.default_rng(7)
    n = 600
    d = pd.DataFrame({"t": rng.integers(0, 2, n), "g": rng.choice(list("abc"), n),
                      "time": rng.uniform(0.5, 3, n)})
    d["y"] = rng.poisson(d.time * np.exp(-0.5 + 0.3 * d.t + 0.2 * (d.g == "b")))
    kw = dict(treatment="t", family="count", exposure="time")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        boot = bootstrap("y ~ t * C(g)", d, B=20, seed=4, keep_replicates=True, **kw)
        ref = engine_fit("y ~ t * C(g)", _resampled(d, 4, 20, 3), path="statsmodels", **kw)
    assert _compared(boot, 3, ref) == len(boot.intervals) > 0


def test_reproducible_and_independent_of_threads(rossi, boot):
    """Batches are solved on threads (by default one per core): any number gives the same
    numbers, bit for bit."""
    for n_jobs in (1, 3):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            again = bootstrap(FORMULA, rossi, treatment="fin", B=200, seed=11, n_jobs=n_jobs,
                              keep_replicates=True)
        np.testing.assert_array_equal(again.replicates, boot.replicates)
    with pytest.raises(ValueError, match="n_jobs"):
        bootstrap(FORMULA, rossi, treatment="fin", B=50, n_jobs=0)


def test_intervals_are_sensible(rossi, boot):
    df = boot.intervals.dropna(subset=["conf_low_percentile"])
    # an RR from the linear probability model can be undefined in some replicates
    assert len(df) >= len(boot.intervals) - 2
    assert (df.conf_low_percentile <= df.estimate).all()
    assert (df.estimate <= df.conf_high_percentile).all()
    assert (df.conf_low_bca < df.conf_high_bca).all()
    # bootstrap SE of the overall RD is close to the HC3 sandwich SE (same estimand)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = engine_fit(FORMULA, rossi, treatment="fin")
    se = res.overall.query("model == 'ols-HC3' and scale == 'RD'").std_error.item()
    bse = df.query("modifier == 'All patients' and model == 'ols-HC3' and scale == 'RD'")
    assert bse.boot_se.item() == pytest.approx(se, rel=0.2)
    rr = res.overall.query("model == 'modified-poisson-HC0' and scale == 'RR'").std_error.item()
    brr = df.query("modifier == 'All patients' and model == 'modified-poisson-HC0' "
                   "and scale == 'RR'")
    assert brr.boot_se.item() == pytest.approx(rr, rel=0.2)  # both on the log scale


def test_cluster_bootstrap_resamples_clusters(rossi):
    d = rossi.assign(site=np.arange(len(rossi)) % 12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bootstrap(FORMULA, d, treatment="fin", B=50, seed=3, cluster="site")
    assert set(res.intervals.unit) == {"site"}


def test_bad_arguments(rossi):
    with pytest.raises(ValueError, match="too few"):
        bootstrap(FORMULA, rossi, treatment="fin", B=5)
    with pytest.raises(TypeError):
        bootstrap(FORMULA, rossi, treatment="fin", B=50, seeds=3)


def test_cells_cannot_be_bootstrapped(tmp_path):
    pytest.importorskip("duckdb")
    from hte_report.data.largedata import read_cells

    rng = np.random.default_rng(1)
    import pandas as pd

    d = pd.DataFrame({"t": rng.integers(0, 2, 500), "s": rng.choice(["a", "b"], 500),
                      "y": rng.integers(0, 2, 500)})
    d.to_csv(tmp_path / "d.csv", index=False)
    f = "y ~ t * C(s)"
    cells = read_cells(tmp_path / "d.csv", f, treatment="t", family="binary")
    with pytest.raises(ValueError, match="one row per patient"):
        bootstrap(f, cells, treatment="t", family="binary", B=50)


def test_replicates_left_to_fisher_scoring_give_the_same_numbers(rossi, boot, monkeypatch):
    """A replicate whose chord iterations do not converge is refitted by Fisher scoring; both
    routes solve the same weighted score equations."""
    import importlib

    bmod = importlib.import_module("hte_report.estimation.bootstrap")
    monkeypatch.setattr(bmod, "MAXITER", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        slow = bootstrap(FORMULA, rossi, treatment="fin", B=32, seed=11, keep_replicates=True)
    np.testing.assert_allclose(slow.replicates, boot.replicates[:32], rtol=1e-8)


def test_models_fall_back_as_in_fit(rossi):
    """A working model that fails on the full sample is replaced as in fit() (with its
    warning), not leaked as an internal error; log-binomial replicates are exact refits."""
    f = "arrest ~ fin * C(wexp) + age"
    models = ["identity-binomial", "log-binomial"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        boot = bootstrap(f, rossi, treatment="fin", B=20, seed=5, models=models,
                         keep_replicates=True)
    assert any("fell back to ols" in str(w.message) for w in caught)
    assert set(boot.intervals.model) == {"ols-HC3", "log-binomial"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = engine_fit(f, _resampled(rossi, 5, 20, 0), treatment="fin", models=["log-binomial"],
                         path="statsmodels")
    got = boot.intervals.assign(rep=boot.replicates[0]).query("model == 'log-binomial'")
    want = ref.subgroups.query("method == 'standardized'")
    for r in got[got.modifier == "wexp"].itertuples():
        w_ = want[(want.level == r.level) & (want.scale == r.scale)].estimate.item()
        np.testing.assert_allclose(r.rep, w_, rtol=1e-7)


def test_cells_without_events_are_not_estimable_as_in_fit():
    """A subgroup without events in the treated arm: its ratios (and every logit-scale
    effect) are reported not estimable, never as a degenerate interval around zero."""
    import pandas as pd

    rng = np.random.default_rng(4)
    n = 900
    d = pd.DataFrame({"t": rng.integers(0, 2, n), "g": rng.choice(list("abc"), n)})
    d["y"] = rng.binomial(1, 0.3, n)
    d.loc[(d.g == "c") & (d.t == 1), "y"] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = bootstrap("y ~ t * C(g)", d, treatment="t", B=20, seed=2)
        ref = engine_fit("y ~ t * C(g)", d, treatment="t")
    df = res.intervals
    cell = df[(df.modifier == "g") & (df.level == "c")]
    flagged = cell[cell.note.str.startswith("not estimable")]
    want = ref.subgroups.query("modifier == 'g' and level == 'c' and method == 'standardized'")
    assert len(flagged) == want.note.str.startswith("not estimable").sum() > 0
    assert flagged[["estimate", "conf_low_percentile", "conf_high_bca"]].isna().all().all()
    assert df[df.level != "c"].note.eq("").all()
    assert df[df.level != "c"].conf_low_percentile.notna().all()


def test_same_numbers_as_before_the_issue_21_speedups(rossi):
    """Same replicate weights (per-replicate SeedSequence children, drawn as indices and
    counted) and the same solutions: numbers recorded with the implementation before issue 21
    (one column per replicate, the jackknife in its own batch)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = bootstrap(FORMULA, rossi, treatment="fin", B=40, seed=11, keep_replicates=True)
        clusters = bootstrap(FORMULA, rossi.assign(site=np.arange(len(rossi)) % 12),
                             treatment="fin", B=20, seed=3, cluster="site",
                             keep_replicates=True)
    np.testing.assert_allclose(rows.replicates[[0, 39], :6], [
        [-0.10333559055646241, -0.09362764174136551, -0.08987760240309217,
         -0.09783102157031137, -0.13229359001136903, -0.12826753010359604],
        [-0.08346895626482784, -0.08660864931276346, -0.09265881220288597,
         -0.0880497522617592, -0.06362993556408172, -0.0640346845296692]], rtol=1e-10)
    np.testing.assert_allclose(rows.intervals[["conf_low_bca", "conf_high_bca"]].to_numpy()[
        [0, 5, 10]], [[-0.14329526011360386, 0.01607784072057171],
                      [-0.23863162828639733, 0.0599481842177061],
                      [0.5330514297321797, 1.040762865650167]], rtol=1e-10)
    np.testing.assert_allclose(clusters.replicates[[0, 19], :3], [
        [-0.12078916290138197, -0.15989086132779257, -0.10173560388179223],
        [-0.03155337691641494, 0.0293167335099429, 0.01572968183141205]], rtol=1e-10)


def test_batches_are_fixed_sets_of_columns(rossi, boot, monkeypatch):
    """Replicates, the full sample and the jackknife share batches; any batch size gives the
    same numbers (each column is solved on its own, to the same tolerance)."""
    import importlib

    bmod = importlib.import_module("hte_report.estimation.bootstrap")
    monkeypatch.setattr(bmod, "BATCH", 7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small = bootstrap(FORMULA, rossi, treatment="fin", B=200, seed=11, keep_replicates=True)
    np.testing.assert_allclose(small.replicates, boot.replicates, rtol=1e-10)
    cols = ["estimate", "conf_low_bca", "conf_high_bca", "conf_low_percentile", "boot_se"]
    np.testing.assert_allclose(small.intervals[cols].to_numpy(float),
                               boot.intervals[cols].to_numpy(float), rtol=1e-10)
