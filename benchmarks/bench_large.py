"""Benchmark the large-n paths (issue 8): blocked IRLS vs statsmodels, compressed cells, and the
bootstrap. Ratios are measured in one run.

    python benchmarks/bench_large.py --n 1000000 --boot 200
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd

import hte_report as hr
from hte_report.bootstrap import bootstrap
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


def timed(fn):
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return out, dt, peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--boot", type=int, default=0)
    args = ap.parse_args()
    d = make_data(args.n)
    warnings.simplefilter("ignore")
    from formulaic import model_matrix

    X = np.asarray(model_matrix(FORMULA.split("~")[1], d), dtype=float)
    y = d.y.to_numpy(float)
    design_mib = X.nbytes / 2**20
    print(f"n = {args.n:,}; design {X.shape[1]} columns, {design_mib:.0f} MiB\n")
    print("| fit | statsmodels (s) | fast path (s) | ratio | fast peak / design |")
    print("|---|---|---|---|---|")
    for name, var in (("logit", "model"), ("modified-poisson", "HC0"), ("ols", "HC3")):
        _, t_sm, _ = timed(lambda name=name, var=var: fit_glm(name, X, y, (), var,
                                                              path="statsmodels"))
        _, t_f, peak = timed(lambda name=name, var=var: fit_glm(name, X, y, (), var,
                                                                path="irls"))
        print(f"| {name} ({var}) | {t_sm:.2f} | {t_f:.2f} | {t_sm / t_f:.1f}x | "
              f"{peak / design_mib:.2f} |")
    _, t_sm, _ = timed(lambda: hr.fit(FORMULA, d, treatment="treat", path="statsmodels"))
    _, t_f, peak = timed(lambda: hr.fit(FORMULA, d, treatment="treat", path="irls"))
    print(f"| full analysis (3 models, effects, tests) | {t_sm:.2f} | {t_f:.2f} | "
          f"{t_sm / t_f:.1f}x | {peak / design_mib:.2f} |")
    res, t_c, peak_c = timed(lambda: hr.fit(CATEGORICAL, d, treatment="treat"))
    cells = res.models.path.iloc[0]
    print(f"\nAll-categorical design ({cells}): full analysis {t_c:.2f} s, peak {peak_c:.0f} MiB")
    if args.boot:
        _, t_b, peak_b = timed(lambda: bootstrap(FORMULA, d, treatment="treat", B=args.boot,
                                                 seed=1))
        print(f"\nBootstrap, {args.boot} replicates, 3 models: {t_b:.1f} s, peak {peak_b:.0f} MiB")


if __name__ == "__main__":
    main()
