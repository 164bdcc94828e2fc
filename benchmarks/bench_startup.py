"""Benchmark: start-up time of ``import hte_report`` and ``hte-report --help``, fresh processes,
interleaved (so a busy machine slows every variant alike), now and (``--before DIR``) for a copy
of the package before the lazy exports of issue 21 (``git archive ad9f228 | tar -x -C DIR``).

    python benchmarks/bench_startup.py --repeat 7 --before /tmp/before

Prints the median and the best wall time of each, and the heavy modules each one loads.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

HEAVY = ("statsmodels.api", "scipy", "pandas", "matplotlib", "great_tables", "formulaic")

IMPORT = "import sys; {path}import hte_report"
HELP = ("import sys; {path}from hte_report.cli import app; sys.argv = ['hte-report', '--help']\n"
        "try:\n    app()\nexcept SystemExit:\n    pass")


def code(template: str, before: str | None) -> str:
    return template.format(path=f"sys.path.insert(0, {before!r}); " if before else "")


def wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def loaded(src: str) -> str:
    probe = src + f"\nprint('LOADED', *[m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout
    line = [x for x in out.splitlines() if x.startswith("LOADED")]
    return " ".join(line[0].split()[1:]) if line else "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--before", default=None)
    args = ap.parse_args()
    variants = {"import hte_report": [sys.executable, "-c", code(IMPORT, None)],
                "hte-report --help (python -c)": [sys.executable, "-c", code(HELP, None)]}
    script = shutil.which("hte-report")
    if script:
        variants["hte-report --help (console script)"] = [script, "--help"]
    if args.before:
        variants["import hte_report (before)"] = [sys.executable, "-c",
                                                  code(IMPORT, args.before)]
        variants["hte-report --help (python -c, before)"] = [sys.executable, "-c",
                                                             code(HELP, args.before)]
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.repeat):
        for k, cmd in variants.items():
            times[k].append(wall(cmd))
    print(f"{'':40s} {'median s':>9s} {'best s':>8s}  heavy modules loaded")
    for k, v in times.items():
        cmd = variants[k]
        heavy = loaded(cmd[2]) if cmd[0] == sys.executable else ""
        print(f"{k:40s} {statistics.median(v):9.3f} {min(v):8.3f}  {heavy}")


if __name__ == "__main__":
    main()
