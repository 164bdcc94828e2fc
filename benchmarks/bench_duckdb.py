"""Benchmark: an all-categorical analysis of a Parquet file too large for pandas, aggregated in
DuckDB (issue 8). Reports wall time and the process's peak resident memory.

    python benchmarks/bench_duckdb.py --rows 100000000 --file /tmp/hte_1e8.parquet
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings
from pathlib import Path

import duckdb

import hte_report as hr
from hte_report.data.largedata import read_cells

FORMULA = "y ~ treat * (C(sex) + C(region) + C(bmi_cat) + C(age_cat))"


def make(path: Path, rows: int) -> None:
    duckdb.execute(f"""
        COPY (SELECT (random() < 0.5)::INT AS treat,
                     CASE WHEN random() < 0.5 THEN 'F' ELSE 'M' END AS sex,
                     ['N','S','E','W'][1 + floor(random() * 4)::INT] AS region,
                     ['<25','25-30','>30'][1 + floor(random() * 3)::INT] AS bmi_cat,
                     floor(random() * 4)::INT AS age_cat,
                     (random() < 0.25)::INT AS y
              FROM range({rows})) TO '{path}' (FORMAT PARQUET)""")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--file", type=Path, default=Path("/tmp/hte_bench.parquet"))
    args = ap.parse_args()
    if not args.file.exists():
        t0 = time.perf_counter()
        make(args.file, args.rows)
        print(f"wrote {args.rows:,} rows to {args.file} "
              f"({args.file.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.1f} s")
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    cells = read_cells(args.file, FORMULA, treatment="treat", family="binary")
    t1 = time.perf_counter()
    res = hr.fit(FORMULA, cells, treatment="treat", family="binary", strategy="joint")
    t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"rows {res.n_analysed:,}; cells {len(cells.frame)}; aggregation in DuckDB (incl. "
          f"file SHA-256) {t1 - t0:.1f} s; full analysis on cells {t2 - t1:.2f} s; "
          f"peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
