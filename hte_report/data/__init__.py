"""Data: reading files and frames, validation with exclusions counted, dataset hashes,
aggregation to cells of identical patients (in memory or inside DuckDB)."""

from hte_report.data.digest import dataset_sha256, file_sha256
from hte_report.data.levels import Levels, factorize, is_text
from hte_report.data.prepare import PreparedData, prepare, read_data
from hte_report.data.readers import variable_labels

__all__ = ["Levels", "PreparedData", "dataset_sha256", "factorize", "file_sha256", "is_text",
           "prepare", "read_data", "variable_labels"]
