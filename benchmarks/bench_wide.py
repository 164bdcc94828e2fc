"""Benchmark: many-level adjustment factors (issue 21), the wide path against the dense path
and R.

Binary outcome, ``y ~ treat * (age + C(sex)) + C(site)`` with K sites, the default analysis
(one-at-a-time: the primary overall analysis and one model per modifier, OLS-HC3, modified
Poisson-HC0 and logit each, likelihood-ratio tests, the joint heterogeneity test, every
effect). Each measurement runs in a fresh process:

Each process first analyses a small data set (3,000 rows, 60 sites), so that imports and
first-touch costs are not timed.

* ``wide``: ``hr.fit`` as shipped (the site factor kept as codes); wall time, the median of
  ``--repeat`` fresh processes (each time is printed too), then peak memory (tracemalloc:
  what the analysis allocates, the data frame it is given not counted) in one more run, also
  as a multiple of the data frame's memory (issue 21's target: at most 2);
* ``dense``: the same analysis with the site factor materialized as dummy columns (the package
  before issue 21: ``WIDE_MIN_LEVELS`` raised), one run with tracemalloc, stopped after
  ``--timeout`` seconds;
* ``R``: R's ``lm`` + ``sandwich::vcovHC(type = "HC3")``, ``glm(poisson)`` + ``vcovHC("HC0")``
  and ``glm(binomial)`` for the same three analyses plus the two reduced logit fits of the LR
  tests: the model fits alone (no effects), stopped after ``--timeout`` seconds.

    python benchmarks/bench_wide.py --n 10000 100000 --sites 100 1000
    python benchmarks/bench_wide.py --wide-only --n 10000 100000 --sites 1000 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd

FORMULA = "y ~ treat * (age + C(sex)) + C(site)"


def make_data(n: int, sites: int, seed: int = 2026) -> pd.DataFrame:
    """Sites of equal size with random intercepts; every site has an event and a non-event
    (else its logit coefficient is infinite)."""
    rng = np.random.default_rng(seed)
    site = np.arange(n) % sites
    rng.shuffle(site)
    d = pd.DataFrame({"treat": rng.integers(0, 2, n), "age": rng.normal(60, 10, n),
                      "sex": rng.integers(0, 2, n), "site": site})
    eta = (-0.5 + 0.3 * d.treat + 0.02 * (d.age - 60) + 0.2 * d.sex - 0.2 * d.treat * d.sex
           + rng.normal(0, 0.5, sites)[site])
    d["y"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    s = pd.Series(site)
    first, last = ~s.duplicated().to_numpy(), ~s.duplicated(keep="last").to_numpy()
    d.loc[first, "y"] = 1
    d.loc[last & ~first, "y"] = 0
    return d


PY = textwrap.dedent("""
    import sys, time, tracemalloc, warnings
    import pandas as pd
    import hte_report as hr
    from hte_report.design import wide
    mode, csv, trace = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    if mode == "dense":
        wide.WIDE_MIN_LEVELS = 10**9
    d = pd.read_csv(csv)
    warnings.simplefilter("ignore")
    warm = pd.read_csv(sys.argv[4])  # first call in the process: imports, first touch
    hr.fit({formula!r}, warm)
    if trace:
        tracemalloc.start()
    t = time.perf_counter()
    res = hr.fit({formula!r}, d)
    el = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    print(el, peak, d.memory_usage(deep=True).sum(), ",".join(sorted(set(res.models.path))))
""").format(formula=FORMULA)

R = textwrap.dedent("""
    suppressMessages(library(sandwich))
    d <- read.csv(commandArgs(TRUE)[1]); d$site <- factor(d$site); d$sex <- factor(d$sex)
    tm <- system.time({
      for (f in list(y ~ treat + site, y ~ treat * age + site, y ~ treat * sex + site)) {
        m <- lm(f, d); V <- vcovHC(m, type = "HC3")
        m <- glm(f, poisson, d); V <- vcovHC(m, type = "HC0")
        m <- glm(f, binomial, d); V <- vcov(m)
        if (length(attr(terms(f), "term.labels")) > 2) glm(y ~ treat + age + sex + site,
                                                         binomial, d)
      }
    })
    cat(tm[["elapsed"]], "\\n")
""")


def run(cmd: list[str], timeout: float):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return None
    return out.stdout.split()


def _fmt(v, timeout: float | None, digits: int = 2) -> str:
    """A measurement, "> timeout" for one stopped, "–" for one not made (timeout None)."""
    if timeout is None:
        return "–"
    return f"> {timeout:.0f} s" if v is None else f"{v:.{digits}f}"


def _ratio(v, wide: float, timeout: float | None) -> str:
    if timeout is None:
        return "–"
    return f"> {timeout / wide:.0f}" if v is None else f"{v / wide:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--sites", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--out", type=Path, default=None, help="also write the rows as JSON")
    ap.add_argument("--wide-only", action="store_true", help="measure the wide path only")
    ap.add_argument("--repeat", type=int, default=3,
                    help="fresh processes timed for the wide path (the median is reported)")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        py, r = Path(tmp, "fit.py"), Path(tmp, "fit.R")
        py.write_text(PY)
        r.write_text(R)
        warm = str(Path(tmp, "warm.csv"))
        make_data(3000, 60, seed=1).to_csv(warm, index=False)
        for n in args.n:
            for k in args.sites:
                csv = Path(tmp, f"d{n}_{k}.csv")
                make_data(n, k).to_csv(csv, index=False)
                times = [run([sys.executable, str(py), "wide", str(csv), "0", warm],
                             args.timeout) for _ in range(max(1, args.repeat))]
                wide_t = sorted(times, key=lambda r_: float(r_[0]))[len(times) // 2]
                wide_m = run([sys.executable, str(py), "wide", str(csv), "1", warm],
                             args.timeout)
                dense = rt = None
                t0 = time.perf_counter()
                if not args.wide_only:
                    dense = run([sys.executable, str(py), "dense", str(csv), "1", warm],
                                args.timeout)
                    t0 = time.perf_counter()
                    rt = run(["Rscript", str(r), str(csv)], args.timeout)
                row = {"n": n, "sites": k, "wide_s": float(wide_t[0]),
                       "wide_runs_s": [round(float(r_[0]), 3) for r_ in times],
                       "wide_peak_mib": float(wide_m[1]) / 2**20,
                       "frame_mib": float(wide_m[2]) / 2**20, "wide_path": wide_t[3],
                       "dense_s": float(dense[0]) if dense else None,
                       "dense_peak_mib": float(dense[1]) / 2**20 if dense else None,
                       "dense_path": dense[3] if dense else "",
                       "r_s": float(rt[0]) if rt else None,
                       "r_wall_s": time.perf_counter() - t0}
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("\n| n | sites | wide (s) | dense (s) | R fits (s) | dense / wide | R / wide "
          "| wide peak MiB | dense peak MiB | data frame MiB | wide peak / data |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    limit = None if args.wide_only else args.timeout
    for r_ in rows:
        print(f"| {r_['n']:,} | {r_['sites']:,} | {r_['wide_s']:.2f} "
              f"| {_fmt(r_['dense_s'], limit)} | {_fmt(r_['r_s'], limit)} "
              f"| {_ratio(r_['dense_s'], r_['wide_s'], limit)} "
              f"| {_ratio(r_['r_s'], r_['wide_s'], limit)} "
              f"| {r_['wide_peak_mib']:.1f} | {_fmt(r_['dense_peak_mib'], limit, 0)} "
              f"| {r_['frame_mib']:.1f} | {r_['wide_peak_mib'] / r_['frame_mib']:.1f} |")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
