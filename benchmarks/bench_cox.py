"""Benchmark: the numpy Cox fit against statsmodels' PHReg (the path before issue 21) and R's
``survival::coxph``, all measured in one run on the same data.

1. One Cox fit, ``treat * (age + sex + region)`` (10 coefficients, Efron ties, times rounded to
   0.01 so there are ties), at each n: ``models.survival.fit_cox`` (numpy), ``fit_cox_phreg``
   (statsmodels PHReg, the reference) and R ``coxph`` (the model fit only, data already in R).
2. The whole ``fit_survival("Surv(time, event) ~ treat * (age + sex + region)", horizons=[5],
   rmst_tau=10)`` at ``--full-n``: 16 Cox fits (the interaction model, the main-effects model,
   three likelihood-ratio reduced models, eleven treatment-only fits within subgroups for the
   cox.zph column), cox.zph tests, hazard ratios, standardized survival differences and RMST
   (and the same without ``horizons`` / ``rmst_tau``: the relative scale and tests only).
   Against: the package before issue 21 (``--before DIR``, every Cox fit through PHReg, run in a
   fresh process from a copy made by ``git archive ad9f228 | tar -x -C DIR``), R ``coxph`` for the
   interaction model alone, and R doing the same set of fits (the 16 ``coxph`` calls plus
   ``cox.zph`` on the interaction model and on each subgroup fit).

    mkdir -p /tmp/before && git archive ad9f228 | tar -x -C /tmp/before
    python benchmarks/bench_cox.py --n 1000 10000 100000 --full-n 100000 --before /tmp/before

Times are the best of ``--repeat`` runs, ours and R's interleaved (one R process per repeat,
timed by ``system.time`` inside R: R's start and data reading are not counted), so a busy
machine slows both alike; the package before issue 21 is run once.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

FORMULA = "Surv(time, event) ~ treat * (age + sex + region)"


def make_data(n: int, seed: int = 2026) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({"treat": rng.integers(0, 2, n), "age": rng.normal(60, 10, n),
                      "sex": rng.choice(["F", "M"], n),
                      "region": rng.choice(["E", "N", "S", "W"], n)})
    lp = (0.03 * (d.age - 60) - 0.4 * d.treat + 0.2 * (d.sex == "M")
          - 0.01 * d.treat * (d.age - 60) + 0.1 * (d.region == "S"))
    t = rng.exponential(10 * np.exp(-lp))
    c = rng.uniform(2, 20, n)
    d["time"] = np.round(np.minimum(t, c), 2)
    d["event"] = (t <= c).astype(int)
    return d


def design(d: pd.DataFrame) -> np.ndarray:
    sex = (d.sex == "M").to_numpy(float)
    reg = np.column_stack([(d.region == r).to_numpy(float) for r in ("N", "S", "W")])
    tr = d.treat.to_numpy(float)
    age = d.age.to_numpy(float)
    main = np.column_stack([tr, age, sex, reg])
    return np.column_stack([main, tr[:, None] * main[:, 1:]])


def best(f, repeat: int) -> float:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        out.append(time.perf_counter() - t0)
    return min(out)


R_SINGLE = r"""
suppressMessages(library(survival))
args <- commandArgs(TRUE)
d <- read.csv(args[1]); reps <- as.integer(args[2])
d$sex <- factor(d$sex); d$region <- factor(d$region)
tm <- replicate(reps, system.time(coxph(Surv(time, event) ~ treat * (age + sex + region),
                data = d, ties = "efron"))[["elapsed"]])
cat(min(tm), "\n")
"""

R_FULL = r"""
suppressMessages(library(survival))
args <- commandArgs(TRUE)
d <- read.csv(args[1]); reps <- as.integer(args[2])
d$sex <- factor(d$sex); d$region <- factor(d$region)
d$agecat <- cut(d$age, quantile(d$age, 0:4 / 4), include.lowest = TRUE)
all_fits <- function() {
  full <- coxph(Surv(time, event) ~ treat * (age + sex + region), data = d)
  cox.zph(full, transform = "km", terms = TRUE)
  coxph(Surv(time, event) ~ treat + age + sex + region, data = d)
  for (red in c(". ~ . - treat:age", ". ~ . - treat:sex", ". ~ . - treat:region"))
    update(full, as.formula(red))
  subs <- c(list(rep(TRUE, nrow(d))), lapply(levels(d$sex), function(l) d$sex == l),
            lapply(levels(d$region), function(l) d$region == l),
            lapply(levels(d$agecat), function(l) d$agecat == l))
  for (s in subs) cox.zph(coxph(Surv(time, event) ~ treat, data = d[s, ]), transform = "km")
}
model <- replicate(reps, system.time(coxph(Surv(time, event) ~ treat * (age + sex + region),
                   data = d))[["elapsed"]])
fits <- replicate(reps, system.time(all_fits())[["elapsed"]])
cat(min(model), min(fits), "\n")
"""


def run_r(script: str, csv: Path, reps: int) -> list[float]:
    with tempfile.NamedTemporaryFile("w", suffix=".R", delete=False) as f:
        f.write(script)
    out = subprocess.run(["Rscript", f.name, str(csv), str(reps)], capture_output=True,
                         text=True, check=True).stdout
    return [float(x) for x in out.split()]


def single_fits(ns, repeat, old_max, tmp, have_r) -> list[dict]:
    from hte_report.models.survival import fit_cox, fit_cox_phreg

    rows = []
    for n in ns:
        d = make_data(n)
        X = design(d)
        t, e = d.time.to_numpy(float), d.event.to_numpy(float)
        s = np.zeros(n, dtype=int)
        fit = fit_cox(X, t, e, s, "efron")
        csv = Path(tmp) / f"cox_{n}.csv"
        d.to_csv(csv, index=False)
        new, r = [], [np.nan]
        for _ in range(repeat):  # interleaved: a busy machine slows both alike
            new.append(best(partial(fit_cox, X, t, e, s, "efron"), 1))
            if have_r:
                r.append(run_r(R_SINGLE, csv, 1)[0])
        new, r = min(new), np.nanmin(r)
        ref, old = None, np.nan
        if n <= old_max:
            t0 = time.perf_counter()
            ref = fit_cox_phreg(X, t, e, s, "efron")
            old = time.perf_counter() - t0
        diff = (np.max(np.abs(fit.params - ref.params) / np.abs(ref.params)) if ref
                else np.nan)
        rows.append({"n": n, "events": int(e.sum()), "distinct event times":
                     len(np.unique(t[e == 1])), "numpy (s)": new, "PHReg (s)": old,
                     "R coxph (s)": r, "PHReg / numpy": old / new, "numpy / R": new / r,
                     "Newton iterations": fit.iterations, "max rel diff vs PHReg": diff})
    return rows


BEFORE = r"""
import sys, time, warnings
sys.path.insert(0, sys.argv[1])
import pandas as pd
from hte_report import fit_survival
d = pd.read_csv(sys.argv[2])
warnings.simplefilter("ignore")
best = float("inf")
for _ in range(int(sys.argv[3])):
    t0 = time.perf_counter()
    res = fit_survival("Surv(time, event) ~ treat * (age + sex + region)", d,
                       treatment="treat", horizons=[5], rmst_tau=10)
    best = min(best, time.perf_counter() - t0)
print(best, *res.subgroups.estimate.tolist())
"""


def full_analysis(n, repeat, before, tmp, have_r) -> dict:
    from hte_report import fit_survival

    d = make_data(n)

    def run(absolute=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            extra = {"horizons": [5], "rmst_tau": 10} if absolute else {}
            return fit_survival(FORMULA, d, treatment="treat", **extra)

    res = run()
    csv = Path(tmp) / f"full_{n}.csv"
    d.to_csv(csv, index=False)
    ours, rel, model, fits = [], [], [np.nan], [np.nan]
    for _ in range(repeat):  # interleaved: a busy machine slows both alike
        ours.append(best(run, 1))
        rel.append(best(partial(run, False), 1))
        if have_r:
            m, f = run_r(R_FULL, csv, 1)
            model.append(m)
            fits.append(f)
    out = {"n": n, "numpy full analysis (s)": min(ours),
           "numpy without SurvDiff/RMST (s)": min(rel)}
    if before:  # the package as it was before issue 21, in a fresh process
        out_before = subprocess.run(
            [sys.executable, "-c", BEFORE, str(before), str(csv), "1"],  # one run: slow
            capture_output=True, text=True, check=True).stdout.split()
        out["before (PHReg) full analysis (s)"] = float(out_before[0])
        a = res.subgroups.estimate.to_numpy()
        b = np.array([float(x) for x in out_before[1:]])
        ok = np.isfinite(a) & np.isfinite(b)
        out["max rel diff of subgroup estimates vs before"] = float(
            np.max(np.abs(a[ok] - b[ok]) / np.maximum(np.abs(b[ok]), 1e-12)))
        out["before / numpy"] = out["before (PHReg) full analysis (s)"] / out[
            "numpy full analysis (s)"]
    if have_r:
        out["R coxph interaction model (s)"] = np.nanmin(model)
        out["R same set of fits + cox.zph (s)"] = np.nanmin(fits)
        out["numpy full / R model"] = out["numpy full analysis (s)"] / np.nanmin(model)
        out["numpy without SurvDiff/RMST / R model"] = min(rel) / np.nanmin(model)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, nargs="*", default=[1000, 10000, 100000])
    ap.add_argument("--full-n", type=int, nargs="*", default=[100000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--before", type=Path, default=None,
                    help="a copy of the package before issue 21 (git archive ad9f228 | tar -x "
                         "-C DIR): time its full analysis too (every Cox fit through PHReg)")
    ap.add_argument("--old-max", type=int, default=100000,
                    help="largest n for single PHReg fits")
    args = ap.parse_args()
    have_r = shutil.which("Rscript") is not None
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    with tempfile.TemporaryDirectory() as tmp:
        if args.n:
            print(pd.DataFrame(single_fits(args.n, args.repeat, args.old_max, tmp, have_r))
                  .to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        for n in args.full_n:
            for k, v in full_analysis(n, args.repeat, args.before, tmp, have_r).items():
                print(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")


if __name__ == "__main__":
    main()
