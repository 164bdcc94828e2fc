"""The frozen result of every analysis and its tidy contract."""

from hte_report.results.result import HTEResult

__all__ = ["HTEResult"]
