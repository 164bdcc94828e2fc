"""Engines that run the out-of-core passes of :mod:`hte_report.data.ooc_sql`: DuckDB (a file on
this machine, bounded memory) and Spark (data on a cluster; local mode in tests).

An engine only knows how to describe the source's columns and run a query; the passes (and
the sample of the starting values) are the shared SQL text. Engine errors never reach the user
as a traceback: they become :class:`~hte_report.errors.DataError` with the engine's first line.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from hte_report.data.digest import file_sha256
from hte_report.data.largedata import PARQUET_SUFFIXES, _reader, check_csv_columns
from hte_report.data.ooc_sql import DUCKDB, SPARK, Dialect
from hte_report.errors import DataError


def kind_of(type_name: str) -> str:
    """'float', 'int', 'bool', 'text' or 'other' from a DuckDB or Spark type name."""
    t = type_name.upper()
    if "BOOL" in t:
        return "bool"
    if any(k in t for k in ("DOUBLE", "FLOAT", "REAL")):
        return "float"
    if any(k in t for k in ("INT", "DECIMAL", "LONG", "SHORT", "BYTE")):
        return "int"
    if any(k in t for k in ("VARCHAR", "STRING", "CHAR", "TEXT")):
        return "text"
    return "other"


def source_sha256(path: Path) -> str:
    """SHA-256 of a file, or of a directory's files in sorted order (a Parquet dataset)."""
    if path.is_file():
        return file_sha256(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(bytes.fromhex(file_sha256(f)))
    return h.hexdigest()


def _bookkeeping(f: Path, root: Path) -> bool:
    """Files a Parquet dataset holds besides its data (Spark's ``_SUCCESS`` and ``.crc``
    checksums, ``_metadata``, hidden files), which readers skip."""
    parts = f.relative_to(root).parts
    return any(p.startswith(("_", ".")) for p in parts) or f.suffix.lower() == ".crc"


def check_dataset_directory(path: Path) -> None:
    """A directory is read as one Parquet dataset (the data files ``*.parquet`` under it, as
    Spark, pyarrow or DuckDB write them): refused when it holds none, or holds other files,
    which would silently be left unread (a folder of unrelated data files)."""
    files = [f for f in path.rglob("*") if f.is_file()]
    parquet = [f.suffix.lower() in PARQUET_SUFFIXES for f in files]
    skip = [_bookkeeping(f, path) for f in files]
    data = [f for f, pq, sk in zip(files, parquet, skip) if pq and not sk]
    # a .parquet file under a hidden or '_' folder (Spark's _temporary) is one engine reads
    # and another skips: refused as well
    other = [str(f.relative_to(path)) for f, pq, sk in zip(files, parquet, skip)
             if pq == sk]
    what = (f"{str(path)!r} is a directory. fit_file reads a Parquet or CSV file, or a "
            "directory holding one Parquet dataset (its data files ending in .parquet, as "
            "Spark, pyarrow or DuckDB write them)")
    if not data:
        raise DataError(f"{what}; this one holds no .parquet file"
                        + (f" (it holds {sorted(other)[:5]})" if other else "")
                        + ". Give the path of the data file.")
    if other:
        raise DataError(f"{what}; this one also holds {len(other)} other file(s) "
                        f"({sorted(other)[:5]}), which would not be read. Give the path of "
                        "one data file, or keep only the dataset's .parquet files in the "
                        "directory.")




def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return (lines[0] if lines else type(exc).__name__)[:300]


class DuckDBEngine:
    """DuckDB over a Parquet or CSV file, with a memory limit and a number of threads."""

    dialect: Dialect = DUCKDB
    name = "duckdb"

    def __init__(self, path: Path, memory_limit: str = "512MB", threads: int | None = None):
        try:
            import duckdb
        except ImportError as exc:  # pragma: no cover - dependency
            raise ImportError("out-of-core fits need DuckDB: pip install duckdb") from exc
        self._error = duckdb.Error
        config = {"memory_limit": str(memory_limit)}
        if threads is not None:
            config["threads"] = int(threads)
        try:
            self.con = duckdb.connect(config=config)
        except duckdb.Error as exc:
            raise DataError(f"DuckDB refused the settings memory_limit={memory_limit!r}, "
                            f"threads={threads!r}: {_first_line(exc)}") from None
        if path.is_dir():
            quoted = str(path).replace("'", "''")
            self.source = f"read_parquet('{quoted}/**/*.parquet')"
        else:
            self.source = _reader(path)
        self.path = path

    def describe(self) -> dict[str, str]:
        rows = self.query(f"DESCRIBE SELECT * FROM {self.source}")
        types = {r[0]: str(r[1]) for r in rows}
        check_csv_columns(self.path, list(types))
        return types

    def query(self, sql: str) -> list[tuple]:
        try:
            return self.con.execute(sql).fetchall()
        except self._error as exc:
            raise DataError(f"DuckDB could not read or aggregate {self.path.name!r}: "
                            f"{_first_line(exc)}. Check that it is a Parquet or CSV file "
                            "with the formula's columns.") from None

    def close(self) -> None:
        self.con.close()


class SparkEngine:
    """Spark SQL over a Parquet (or CSV) file or directory; a local session unless one is
    running (``SparkSession.getActiveSession()``), which is then used as it is."""

    dialect: Dialect = SPARK
    name = "spark"
    VIEW = "hte_report_source"

    def __init__(self, path: Path, memory_limit: str = "512MB", threads: int | None = None):
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise ImportError("engine='spark' needs pyspark (and Java 17): "
                              "pip install 'hte_report[spark]'") from exc
        self.path = path
        spark = SparkSession.getActiveSession()
        self._own = spark is None
        if spark is None:
            try:
                spark = (SparkSession.builder.master(f"local[{threads or 2}]")
                         .appName("hte_report").config("spark.ui.enabled", "false")
                         .config("spark.ui.showConsoleProgress", "false")
                         .config("spark.driver.memory", _spark_memory(memory_limit))
                         .config("spark.sql.shuffle.partitions", str(max(2, threads or 2)))
                         .getOrCreate())
            except Exception as exc:  # no Java, wrong Java: Py4J / runtime errors
                raise DataError(f"could not start Spark (it needs Java 17): "
                                f"{_first_line(exc)}") from None
            spark.sparkContext.setLogLevel("ERROR")
        # IEEE arithmetic as DuckDB's (ANSI mode would stop on a division by zero)
        spark.conf.set("spark.sql.ansi.enabled", "false")
        self.spark = spark
        try:
            reader = spark.read
            if path.suffix.lower() in (".csv", ".txt"):
                df = reader.csv(str(path), header=True, inferSchema=True, nullValue="NA")
            else:
                df = reader.parquet(str(path))
        except Exception as exc:
            raise DataError(f"Spark could not read {path.name!r}: {_first_line(exc)}. "
                            "Give a Parquet (or CSV) file or directory.") from None
        df.createOrReplaceTempView(self.VIEW)
        self.source = self.VIEW
        self._df = df

    def describe(self) -> dict[str, str]:
        types = dict(self._df.dtypes)
        check_csv_columns(self.path, list(types))
        return types

    def query(self, sql: str) -> list[tuple]:
        try:
            return [tuple(r) for r in self.spark.sql(sql).collect()]
        except Exception as exc:
            raise DataError(f"Spark could not read or aggregate {self.path.name!r}: "
                            f"{_first_line(exc)}") from None

    def close(self) -> None:
        try:
            self.spark.catalog.dropTempView(self.VIEW)
        except Exception:  # pragma: no cover - a stopped session
            pass


def _spark_memory(limit: str) -> str:
    """DuckDB's '512MB' / '2GB' as Spark's '512m' / '2g'."""
    text = str(limit).strip().upper().replace("IB", "B")
    for unit, short in (("GB", "g"), ("MB", "m"), ("KB", "k")):
        if text.endswith(unit):
            return text[: -len(unit)].strip() + short
    return text.lower()


def engine_for(name: str, path: Path, memory_limit: str, threads: int | None):
    if name == "duckdb":
        return DuckDBEngine(path, memory_limit, threads)
    if name == "spark":
        return SparkEngine(path, memory_limit, threads)
    raise DataError(f"engine must be 'duckdb' or 'spark', got {name!r}.")
