"""Benchmark of the bootstrap alone (issue 21), with a per-phase breakdown.

    python benchmarks/bench_bootstrap.py --n 1000000 --boot 200

Phases are timed by wrapping the module's internal functions: weight generation, the first
(shared) chord pass, the other chord passes, the means pass, the intervals; the full sample and
the 20 jackknife samples are columns of the last batch, so they are inside those phases. The
rest is setup, design and the full-sample fits. ``--memory`` also reports the tracemalloc peak
(slower).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import tracemalloc
import warnings
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_large import FORMULA, make_data  # noqa: E402

bmod = importlib.import_module("hte_report.estimation.bootstrap")

PHASES = ("_weights", "_first_pass", "_chords", "_means", "_bca")


def instrument():
    """Wrap the phase functions with timers; returns the timings dict."""
    acc = defaultdict(float)
    for name in PHASES:
        fn = getattr(bmod, name, None)
        if fn is None:
            continue

        def wrapped(*a, _fn=fn, _name=name, **k):
            t0 = time.perf_counter()
            try:
                return _fn(*a, **k)
            finally:
                acc[_name] += time.perf_counter() - t0

        setattr(bmod, name, wrapped)
    return acc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--boot", type=int, default=200)
    ap.add_argument("--memory", action="store_true")
    ap.add_argument("--no-phases", action="store_true", help="time without the wrappers")
    args = ap.parse_args()
    d = make_data(args.n)
    acc = {} if args.no_phases else instrument()
    if args.memory:
        tracemalloc.start()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bmod.bootstrap(FORMULA, d, treatment="treat", B=args.boot, seed=1)
    total = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2**20 if args.memory else float("nan")
    print(f"bootstrap n={args.n} B={args.boot}: {total:.1f} s, peak {peak:.0f} MiB")
    if acc:
        for name, t in acc.items():
            print(f"  {name:20s} {t:6.2f} s")
        print(f"  {'setup, fits, rest':20s} {total - sum(acc.values()):6.2f} s")


if __name__ == "__main__":
    main()
