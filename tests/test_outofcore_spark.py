"""The Spark engine of ``fit_file`` runs the same SQL passes as DuckDB and gives the same
numbers (local mode). Skipped, with the reason printed, where pyspark or Java is absent (CI)."""

from __future__ import annotations

import shutil
import subprocess
import warnings

import pytest

pytest.importorskip("duckdb")


def _spark_missing() -> str:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install 'hte_report[spark]')"
    java = shutil.which("java")
    if java is None:
        return "Java is not installed (pyspark 4 needs Java 17)"
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    if '"1.' in out or any(f'"{v}.' in out for v in range(9, 17)):
        return f"Java 17 or later is needed: {out.splitlines()[0]}"
    return ""


REASON = _spark_missing()
if REASON:
    print(f"skipping Spark tests: {REASON}")
pytestmark = pytest.mark.skipif(bool(REASON), reason=REASON or "spark available")


def test_spark_equals_duckdb(tmp_path):
    """Every number of every frame within rel 1e-10 (the iterations start from the same sample
    and stop at the same pass; likelihood-ratio statistics are sums of per-row differences)."""
    from benchmarks.bench_outofcore import relative_differences
    from hte_report.estimation.outofcore import fit_file
    from tests.test_outofcore import FORMULA, _data, _write

    path = _write(_data(8000, seed=5), tmp_path / "trial.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        duck = fit_file(path, FORMULA, treatment="treat", family="binary")
        spark = fit_file(path, FORMULA, treatment="treat", family="binary", engine="spark",
                         threads=2)
    assert spark.meta["outofcore"]["engine"] == "spark"
    assert spark.data_sha256 == duck.data_sha256 and spark.n_analysed == duck.n_analysed
    assert (duck.interactions["test"] == "lr").sum() == 3 and len(duck.subgroups) > 0
    rel = relative_differences(duck, spark)
    worst = {k: v for k, v in rel.items() if not v <= 1e-10}
    assert not worst, worst
    excl = duck.exclusions.merge(spark.exclusions, on="variable")
    assert (excl["n_missing_x"] == excl["n_missing_y"]).all()
