"""Benchmark: hte_report.fit against the bare statsmodels fits it performs.

Binary outcome, five modifiers (age, sbp, bmi continuous; sex, region categorical), default
models (OLS-HC3, modified Poisson-HC0, logit with likelihood-ratio tests). "Bare" = the same
statsmodels fits on a prebuilt design matrix: OLS, GLM Poisson, GLM logit, and the five reduced
logit fits behind the LR tests. Both measured in one run, in one process; peak memory via
tracemalloc (numpy allocations are traced).

    python benchmarks/bench_fit.py --n 100000 1000000

``strategy="joint"``: the one interaction model these figures have always measured (plus the
primary overall analysis, treatment + adjustment); the default one-at-a-time strategy fits one
model per modifier instead, each smaller.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from formulaic import model_matrix

import hte_report as hr

FORMULA = "y ~ treat * (age + sbp + bmi + C(sex) + C(region))"


def make_data(n: int, seed: int = 2026) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({
        "treat": rng.integers(0, 2, n),
        "age": rng.normal(60, 10, n),
        "sbp": rng.normal(135, 18, n),
        "bmi": rng.normal(27, 4, n),
        "sex": rng.choice(["F", "M"], n),
        "region": rng.choice(["N", "S", "E", "W"], n),
    })
    lp = -1.2 + 0.03 * (d.age - 60) + 0.01 * (d.sbp - 135) - 0.3 * d.treat \
        - 0.01 * d.treat * (d.age - 60)
    d["y"] = rng.binomial(1, 1 / (1 + np.exp(-lp)))
    return d


def bare(d: pd.DataFrame) -> None:
    mm = model_matrix(FORMULA.split("~")[1], d)
    X = np.asarray(mm, dtype=float)
    y = d.y.to_numpy(float)
    sm.OLS(y, X).fit(cov_type="HC3")
    sm.GLM(y, X, family=sm.families.Poisson()).fit(cov_type="HC0")
    sm.GLM(y, X, family=sm.families.Binomial()).fit()
    cols = list(mm.columns)
    for mod in ("age", "sbp", "bmi", "C(sex)", "C(region)"):
        keep = [i for i, c in enumerate(cols) if not c.startswith(f"treat:{mod}")]
        sm.GLM(y, X[:, keep], family=sm.families.Binomial()).fit()


def ours(d: pd.DataFrame) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hr.fit(FORMULA, d, treatment="treat", strategy="joint")


def measure(fn, d):
    tracemalloc.start()
    t0 = time.perf_counter()
    fn(d)
    dt = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return dt, peak / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="+", default=[100_000])
    args = ap.parse_args()
    print("| n | bare statsmodels (s) | hte_report.fit (s) | time ratio | bare peak MiB | "
          "fit peak MiB |")
    print("|---|---|---|---|---|---|")
    for n in args.n:
        d = make_data(n)
        tb, mb = measure(bare, d)
        to, mo = measure(ours, d)
        print(f"| {n:,} | {tb:.2f} | {to:.2f} | {to / tb:.2f} | {mb:.0f} | {mo:.0f} |")


if __name__ == "__main__":
    main()
