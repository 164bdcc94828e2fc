"""Benchmark of the bootstrap alone (issue 21), with a per-phase breakdown.

    python benchmarks/bench_bootstrap.py --n 1000000 --boot 200
    python benchmarks/bench_bootstrap.py --no-phases --before /tmp/bootstrap_before.py --rounds 2

Phases are timed by wrapping the module's internal functions: weight generation, the first
(shared) chord pass, the other chord passes, the means pass, the intervals; the full sample and
the 20 jackknife samples are columns of the last batch, so they are inside those phases. The
batches are solved on threads (``--n-jobs``, default one per core): the phase times are then
summed over the threads and can exceed the wall time. The rest is setup, design and the
full-sample fits. ``--memory`` also reports the tracemalloc peak (slower). ``--before FILE``
times a copy of an earlier ``bootstrap.py`` in the same process, interleaved with the current
one (same data, same seed), and reports the largest difference of their replicates. Every
version is first run once on 50,000 rows (B = 20), so that neither pays the first call's
imports and set-up alone (``--no-warm-up`` to time a first call).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import time
import tracemalloc
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

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


def load_copy(path: str):
    """A copy of the module from ``path`` (an earlier version), importable by its own name."""
    spec = importlib.util.spec_from_file_location("bootstrap_before", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bootstrap_before"] = mod
    spec.loader.exec_module(mod)
    return mod


def run(mod, d, B, **kw):
    """One bootstrap: (replicates, wall seconds, CPU seconds)."""
    t0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = mod.bootstrap(FORMULA, d, treatment="treat", B=B, seed=1, keep_replicates=True,
                            **kw)
    return res.replicates, time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--boot", type=int, default=200)
    ap.add_argument("--n-jobs", type=int, default=None, help="threads (default: one per core)")
    ap.add_argument("--memory", action="store_true")
    ap.add_argument("--no-phases", action="store_true", help="time without the wrappers")
    ap.add_argument("--before", help="path of an earlier bootstrap.py, timed interleaved")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--no-warm-up", action="store_true")
    args = ap.parse_args()
    d = make_data(args.n)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the start")
    before = load_copy(args.before) if args.before else None
    versions = [("before", before, {})] if before else []
    versions.append(("now", bmod, {"n_jobs": args.n_jobs}))
    for _name, mod, kw in [] if args.no_warm_up else versions:
        run(mod, d.iloc[:50_000], 20, **kw)
    acc = {} if args.no_phases else instrument()
    if args.memory:
        tracemalloc.start()
    reps = {}
    for r in range(args.rounds):
        for name, mod, kw in versions:
            reps[name], wall, cpu = run(mod, d, args.boot, **kw)
            print(f"round {r} {name}: bootstrap n={args.n} B={args.boot}: {wall:.1f} s "
                  f"(CPU {cpu:.1f} s), load average {os.getloadavg()[0]:.2f} after")
    if before:
        print(f"largest |now - before| of the replicates: "
              f"{np.nanmax(np.abs(reps['now'] - reps['before'])):.1e}")
    if args.memory:
        print(f"peak {tracemalloc.get_traced_memory()[1] / 2**20:.0f} MiB")
    if acc:
        print(f"phases of the current version, summed over {args.rounds} round(s) and threads:")
        for name, t in acc.items():
            print(f"  {name:20s} {t:6.2f} s")


if __name__ == "__main__":
    main()
