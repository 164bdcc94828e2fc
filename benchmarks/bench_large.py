"""Benchmark the large-n paths (issue 8): Fisher scoring in block passes vs statsmodels and vs
the floor, compressed cells, and the bootstrap. Ratios are measured in one run.

    python benchmarks/bench_large.py --n 1000000 --boot 200

The *floor* of a fit is the time of one bare pass computing X'WX and X'Wz (weights and working
response given, blocked numpy products, the faster of single- and multi-threaded BLAS) times
the number of IRLS iterations statsmodels needs for that fit.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd

import hte_report as hr
from hte_report.estimation.bootstrap import bootstrap
from hte_report.models.cells_fit import compress, fit_cells
from hte_report.models.fast import one_blas_thread
from hte_report.models.glm import fit_glm

FORMULA = "y ~ treat * (age + sbp + C(sex) + C(region) + C(bmi_cat))"
CATEGORICAL = "y ~ treat * (C(sex) + C(region) + C(bmi_cat) + C(age_cat))"


def make_data(n: int, seed: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({
        "treat": rng.integers(0, 2, n), "age": rng.normal(60, 10, n),
        "sbp": rng.normal(135, 18, n), "sex": rng.choice(["F", "M"], n),
        "region": rng.choice(list("NSEW"), n), "bmi_cat": rng.choice(["<25", "25-30", ">30"], n),
    })
    d["age_cat"] = pd.cut(d.age, [-np.inf, 50, 60, 70, np.inf], labels=False)
    lp = -1.2 + 0.03 * (d.age - 60) + 0.01 * (d.sbp - 135) - 0.3 * d.treat
    d["y"] = rng.binomial(1, 1 / (1 + np.exp(-lp)))
    return d


def timed(fn, memory=True):
    if memory:
        tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2**20 if memory else np.nan
    if memory:
        tracemalloc.stop()
    return out, dt, peak


def bare_pass(X, w, z, block=1 << 13) -> float:
    """Best of three: one blocked pass computing X'WX and X'Wz."""
    def one():
        A, v = np.zeros((X.shape[1], X.shape[1])), np.zeros(X.shape[1])
        for s in range(0, len(X), block):
            Xw = X[s:s + block] * w[s:s + block, None]
            A += X[s:s + block].T @ Xw
            v += Xw.T @ z[s:s + block]
    best = np.inf
    for threads in (False, True):
        for _ in range(3):
            t0 = time.perf_counter()
            if threads:
                one()
            else:
                with one_blas_thread():
                    one()
            best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--boot", type=int, default=0)
    ap.add_argument("--skip-statsmodels-analysis", action="store_true")
    args = ap.parse_args()
    d = make_data(args.n)
    warnings.simplefilter("ignore")
    from formulaic import model_matrix

    X = np.asarray(model_matrix(FORMULA.split("~")[1], d), dtype=float)
    y = d.y.to_numpy(float)
    design_mib = X.nbytes / 2**20
    rng = np.random.default_rng(1)
    t_pass = bare_pass(X, rng.random(len(y)), rng.random(len(y)))
    print(f"n = {args.n:,}; design {X.shape[1]} columns, {design_mib:.0f} MiB; "
          f"bare X'WX + X'Wz pass {t_pass:.3f} s\n")
    print("| fit | statsmodels (s) | iterations | floor (s) | fast path (s) | fast / floor | "
          "statsmodels / fast | fast peak / design |")
    print("|---|---|---|---|---|---|---|---|")
    for name, var in (("logit", "model"), ("modified-poisson", "HC0"), ("ols", "HC3"),
                      ("ols", "model")):
        sm, t_sm, _ = timed(lambda name=name, var=var: fit_glm(name, X, y, (), var,
                                                               path="statsmodels"), False)
        iters = max(sm.iterations, 1)
        _, t_f, peak = timed(lambda name=name, var=var: fit_glm(name, X, y, (), var,
                                                                path="irls"))
        _, t_f, _ = timed(lambda name=name, var=var: fit_glm(name, X, y, (), var,
                                                             path="irls"), False)
        floor = iters * t_pass
        print(f"| {name} ({var}) | {t_sm:.2f} | {iters} | {floor:.2f} | {t_f:.2f} | "
              f"{t_f / floor:.2f} | {t_sm / t_f:.1f}x | {peak / design_mib:.2f} |")
    # the first call in a process also pays for first-touch of its new memory
    runs = [timed(lambda: hr.fit(FORMULA, d, treatment="treat", strategy="joint"), False)[1]
            for _ in range(4)]
    t_first, t_f = runs[0], float(np.median(runs[1:]))
    _, _, peak = timed(lambda: hr.fit(FORMULA, d, treatment="treat", strategy="joint"))
    if args.skip_statsmodels_analysis:
        t_sm = np.nan
    else:
        _, t_sm, _ = timed(lambda: hr.fit(FORMULA, d, treatment="treat", path="statsmodels",
                                          strategy="joint"),
                           False)
    print(f"| full analysis (3 models, effects, tests) | {t_sm:.2f} | | | {t_f:.2f} "
          f"(first call {t_first:.2f}) | | {t_sm / t_f:.1f}x | {peak / design_mib:.2f} |")
    Xc = np.asarray(model_matrix(CATEGORICAL.split("~")[1], d), dtype=float)
    print("\nAll-categorical design, compressed fit including compression:")
    for name, var in (("logit", "model"), ("modified-poisson", "HC0"), ("ols", "HC3")):
        fm, t_c, _ = timed(lambda name=name, var=var: fit_glm(name, Xc, y, (), var,
                                                              path="compressed"), False)
        print(f"  {name} ({var}): {t_c:.3f} s, {fm.extra['cells']} cells")
    print("  fit on the cells alone (independent of n), by rows compressed:")
    for m in (args.n // 100, args.n // 10, args.n):
        Xm, ym = Xc[:m], y[:m]
        cells, t_z, _ = timed(lambda Xm=Xm, ym=ym: compress(Xm, ym, log_factorial=False), False)
        Xk, cnt, s1, s2, slg, _g = cells
        _, t_k, _ = timed(lambda Xk=Xk, cnt=cnt, s1=s1, s2=s2, slg=slg: fit_cells(
            "logit", Xk, cnt, s1, s2, slg, "model"), False)
        print(f"    n = {m:,}: compression {t_z:.3f} s, logit fit on {len(cnt)} cells "
              f"{t_k * 1000:.1f} ms")
    res, t_c, peak_c = timed(lambda: hr.fit(CATEGORICAL, d, treatment="treat", strategy="joint"))
    print(f"  full analysis from the data frame ({res.models.path.iloc[0]}): {t_c:.2f} s, "
          f"peak {peak_c:.0f} MiB")
    if args.boot:
        _, t_b, peak_b = timed(lambda: bootstrap(FORMULA, d, treatment="treat", B=args.boot,
                                                 seed=1))
        print(f"\nBootstrap, {args.boot} replicates, 3 models, percentile + BCa (20 jackknife "
              f"groups): {t_b:.1f} s, peak {peak_b:.0f} MiB ({peak_b / design_mib:.2f} x design)")


if __name__ == "__main__":
    main()
