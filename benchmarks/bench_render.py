"""Benchmark: render the example report (HTML + PDF, built-in engine), end to end.

    python benchmarks/bench_render.py
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

from hte_report.report.render import render

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        render(ROOT / "examples/rossi/plan.yaml", ROOT / "examples/rossi/rossi.csv",
               out=tmp, engine="builtin", to=("html", "pdf"))
        t_all = time.perf_counter() - t0
        t0 = time.perf_counter()
        render(ROOT / "examples/rossi/plan.yaml", ROOT / "examples/rossi/rossi.csv",
               out=tmp, engine="builtin", to=("html",))
        t_html = time.perf_counter() - t0
    print("| step | seconds |\n|---|---|")
    print(f"| fit + HTML + PDF (first run, includes imports) | {t_all:.2f} |")
    print(f"| fit + HTML (second run) | {t_html:.2f} |")


if __name__ == "__main__":
    main()
