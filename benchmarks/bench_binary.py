"""Benchmark (issue 21): the whole binary-outcome analysis at n = 1e6 against the same analysis
written by hand in statsmodels and in R (glm + sandwich), each in a fresh process, interleaved,
all in one run.

The analysis, ``y ~ treat * (age + sbp + C(sex) + C(region) + C(bmi_cat))`` (18 coefficients),
as ``hr.fit(..., strategy="joint")`` does it:

* the primary overall analysis ``y ~ treat + age + sbp + C(sex) + C(region) + C(bmi_cat)`` with
  three working models (OLS-HC3, modified Poisson-HC0, logit) and its standardized effects;
* the joint interaction model with the same three working models;
* standardized (g-computation) effects overall and in every level of the categorical modifiers
  on the difference and ratio scales, with delta-method standard errors;
* Wald interaction tests per modifier and model, likelihood-ratio tests (logit) per modifier,
  and the joint heterogeneity test (Wald per model, LR for logit).

The hand-written versions do only these (``hr.fit`` also gives conditional effects, effect
curves, interaction effects, subgroup differences, coefficient tables, RERI and equality tests):
they are what a careful analyst would write, not a re-implementation of the package. Times are
the analysis only: data generation (Python) and ``read.csv`` (R) are not counted, imports are
not counted; the package's time is its first call in a fresh process (first-touch memory
included). The statsmodels process runs with one BLAS thread (``--sm-threads``), its best
setting here; R uses its reference BLAS. Peak RSS of each process is reported (``ru_maxrss``),
and for hte_report the resident memory the analysis adds (high-water mark over the resident
size before the call) as a multiple of the design.

    python benchmarks/bench_binary.py --n 1000000 --repeat 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

COMMON = textwrap.dedent("""
    import json, resource, sys, time, warnings
    sys.path.insert(0, __BENCH__)
    from bench_large import make_data, FORMULA
    d = make_data(__N__)
    warnings.simplefilter("ignore")
    def report(t):
        print(json.dumps({"seconds": t, "maxrss_mib":
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""")

OURS = COMMON + textwrap.dedent("""
    import hte_report as hr
    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    base = status("VmRSS:")
    with open("/proc/self/clear_refs", "w") as f:  # the high-water mark restarts here
        f.write("5")
    fit = hr.fit  # the lazy import of the API happens here: imports are not counted
    t0 = time.perf_counter()
    fit(FORMULA, d, treatment="treat", strategy="joint")
    t = time.perf_counter() - t0
    design = len(d) * 18 * 8 / 2**20  # the n x 18 float design
    print(json.dumps({"added_peak_mib": status("VmHWM:") - base, "design_mib": design}))
    report(t)
""")

STATSMODELS = COMMON + textwrap.dedent("""
    import numpy as np
    import statsmodels.api as sm
    from formulaic import model_matrix
    from scipy import stats

    MODELS = (("ols", "HC3"), ("poisson", "HC0"), ("logit", "nonrobust"))

    def fit(kind, X, y, cov):
        if kind == "ols":
            return sm.OLS(y, X).fit(cov_type=cov)
        fam = sm.families.Poisson() if kind == "poisson" else sm.families.Binomial()
        return sm.GLM(y, X, family=fam).fit(cov_type=cov)

    def standardized(kind, res, X1, X0, groups):
        b, V = res.params, res.cov_params()
        out = []
        for g in groups:
            rows = []
            for Xa in (X1[g], X0[g]):
                eta = Xa @ b
                if kind == "ols":
                    mu, d = eta, np.ones_like(eta)
                elif kind == "poisson":
                    mu = np.exp(eta); d = mu
                else:
                    mu = 1 / (1 + np.exp(-eta)); d = mu * (1 - mu)
                rows.append((mu.mean(), (d[:, None] * Xa).mean(0)))
            (m1, g1), (m0, g0) = rows
            rd, grd = m1 - m0, g1 - g0
            lrr, glrr = np.log(m1 / m0), g1 / m1 - g0 / m0
            out.append((rd, np.sqrt(grd @ V @ grd), lrr, np.sqrt(glrr @ V @ glrr)))
        return out

    def wald(res, idx):
        b, V = res.params[idx], res.cov_params()[np.ix_(idx, idx)]
        stat = float(b @ np.linalg.solve(V, b))
        return stat, stats.chi2.sf(stat, len(idx))

    t0 = time.perf_counter()
    y = d.y.to_numpy(float)
    rhs = FORMULA.split("~")[1]
    main_rhs = "treat + age + sbp + C(sex) + C(region) + C(bmi_cat)"
    groups = [np.ones(len(d), bool)] + [(d[c] == v).to_numpy() for c in ("sex", "region", "bmi_cat")
                                        for v in sorted(d[c].unique())]
    for formula in (main_rhs, rhs):
        mm = model_matrix(formula, d)
        X = np.asarray(mm, float)
        cols = list(mm.columns)
        X1 = np.asarray(model_matrix(formula, d.assign(treat=1)), float)
        X0 = np.asarray(model_matrix(formula, d.assign(treat=0)), float)
        inter = {m: [i for i, c in enumerate(cols) if c.startswith("treat:") and m in c]
                 for m in ("age", "sbp", "sex", "region", "bmi_cat")}
        for kind, cov in MODELS:
            res = fit(kind, X, y, cov)
            standardized(kind, res, X1, X0, groups)
            if formula == rhs:
                for m, idx in inter.items():
                    wald(res, idx)
                wald(res, sorted(i for v in inter.values() for i in v))
                if kind == "logit":
                    for idx in [*inter.values(), sorted(i for v in inter.values() for i in v)]:
                        keep = [i for i in range(X.shape[1]) if i not in idx]
                        red = fit("logit", X[:, keep], y, "nonrobust")
                        stats.chi2.sf(2 * (res.llf - red.llf), len(idx))
    report(time.perf_counter() - t0)
""")

R_SCRIPT = textwrap.dedent("""
    suppressMessages(library(sandwich))
    d <- read.csv(commandArgs(TRUE)[1])
    d$sex <- factor(d$sex); d$region <- factor(d$region); d$bmi_cat <- factor(d$bmi_cat)
    tm <- system.time({
      main_f <- y ~ treat + age + sbp + sex + region + bmi_cat
      full_f <- y ~ treat * (age + sbp + sex + region + bmi_cat)
      groups <- c(list(rep(TRUE, nrow(d))),
                  unlist(lapply(c("sex", "region", "bmi_cat"), function(v)
                    lapply(levels(d[[v]]), function(l) d[[v]] == l)), recursive = FALSE))
      d1 <- d; d1$treat <- 1; d0 <- d; d0$treat <- 0
      fits <- function(f) list(
        ols = { m <- lm(f, d); list(m = m, V = vcovHC(m, type = "HC3")) },
        poisson = { m <- glm(f, poisson, d); list(m = m, V = vcovHC(m, type = "HC0")) },
        logit = { m <- glm(f, binomial, d); list(m = m, V = vcov(m)) })
      stdz <- function(fit, f) {
        tt <- delete.response(terms(fit$m))
        X1 <- model.matrix(tt, d1, contrasts.arg = fit$m$contrasts)
        X0 <- model.matrix(tt, d0, contrasts.arg = fit$m$contrasts)
        b <- coef(fit$m); fam <- if (inherits(fit$m, "glm")) family(fit$m) else gaussian()
        lapply(groups, function(g) {
          e1 <- drop(X1[g, ] %*% b); e0 <- drop(X0[g, ] %*% b)
          m1 <- fam$linkinv(e1); m0 <- fam$linkinv(e0)
          g1 <- colMeans(fam$mu.eta(e1) * X1[g, ]); g0 <- colMeans(fam$mu.eta(e0) * X0[g, ])
          rd <- mean(m1) - mean(m0); grd <- g1 - g0
          glrr <- g1 / mean(m1) - g0 / mean(m0)
          c(rd, sqrt(drop(grd %*% fit$V %*% grd)), log(mean(m1) / mean(m0)),
            sqrt(drop(glrr %*% fit$V %*% glrr)))
        })
      }
      wald <- function(fit, idx) {
        b <- coef(fit$m)[idx]; V <- fit$V[idx, idx, drop = FALSE]
        s <- drop(b %*% solve(V, b)); pchisq(s, length(idx), lower.tail = FALSE)
      }
      for (f in list(main_f, full_f)) {
        fs <- fits(f)
        for (k in names(fs)) {
          stdz(fs[[k]], f)
          if (identical(f, full_f)) {
            nm <- names(coef(fs[[k]]$m))
            inter <- lapply(c("age", "sbp", "sex", "region", "bmi_cat"), function(v)
              grep(paste0("^treat:", v), nm))
            for (idx in inter) wald(fs[[k]], idx)
            wald(fs[[k]], unlist(inter))
            if (k == "logit") {
              for (v in c("age", "sbp", "sex", "region", "bmi_cat")) {
                red <- update(fs$logit$m, as.formula(paste(". ~ . - treat:", v)))
                anova(red, fs$logit$m, test = "LRT")
              }
              red <- glm(main_f, binomial, d)
              anova(red, fs$logit$m, test = "LRT")
            }
          }
        }
      }
    })
    cat(sprintf('{"seconds": %.4f, "maxrss_mib": null}\\n', tm[["elapsed"]]))
""")


def run_python(code: str, threads: int | None = None) -> dict:
    env = dict(os.environ)
    if threads:
        env.update({k: str(threads) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                              "MKL_NUM_THREADS")})
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT, env=env)
    result = {}
    for line in out.stdout.strip().splitlines():
        if line.startswith("{"):
            result.update(json.loads(line))
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--no-r", action="store_true")
    ap.add_argument("--sm-threads", type=int, default=1,
                    help="BLAS threads of the statsmodels process (0: the library default); "
                         "one thread is its best setting on a busy 2-core machine")
    args = ap.parse_args()
    bench = str(ROOT / "benchmarks")

    def fill(code: str) -> str:
        return code.replace("__BENCH__", repr(bench)).replace("__N__", str(args.n))
    sys.path.insert(0, bench)
    from bench_large import make_data

    tmp = Path(tempfile.mkdtemp())
    csv = tmp / "binary.csv"
    make_data(args.n).to_csv(csv, index=False)
    rfile = tmp / "binary.R"
    rfile.write_text(R_SCRIPT)
    results: dict[str, list] = {"hte_report": [], "statsmodels": [], "R": []}
    for _ in range(args.repeat):
        results["hte_report"].append(run_python(fill(OURS)))
        results["statsmodels"].append(run_python(fill(STATSMODELS), args.sm_threads))
        if not args.no_r:
            out = subprocess.run(["Rscript", str(rfile), str(csv)], capture_output=True,
                                 text=True, check=True)
            results["R"].append(json.loads(out.stdout.strip().splitlines()[-1]))
    best = {k: min(r["seconds"] for r in v) for k, v in results.items() if v}
    print(f"n = {args.n:,}, best of {args.repeat} fresh processes (interleaved)\n")
    print("| implementation | seconds (each run) | best | best / hte_report | peak RSS MiB |")
    print("|---|---|---|---|---|")
    for k, v in results.items():
        if not v:
            continue
        runs = ", ".join(f"{r['seconds']:.2f}" for r in v)
        rss = max((r["maxrss_mib"] or 0) for r in v)
        print(f"| {k} | {runs} | {best[k]:.2f} | {best[k] / best['hte_report']:.1f}x | "
              f"{rss:.0f} |" if rss else f"| {k} | {runs} | {best[k]:.2f} | "
              f"{best[k] / best['hte_report']:.1f}x | |")
    ours = results["hte_report"]
    added = max(r["added_peak_mib"] for r in ours)
    print(f"\nhte_report: resident memory added by the analysis (high-water mark over the "
          f"resident size before the call, data loaded): {added:.0f} MiB = "
          f"{added / ours[0]['design_mib']:.2f}x the n x 18 design "
          f"({ours[0]['design_mib']:.0f} MiB)")


if __name__ == "__main__":
    main()
