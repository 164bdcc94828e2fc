"""The error of an option outside its allowed set, shared by the foundation (multiplicity
methods) and the specification layer (``hte_report.spec.options`` re-exports it)."""

from __future__ import annotations

from hte_report.errors import HTEReportError


class OptionError(HTEReportError, ValueError):
    """An option has a value outside its allowed set."""
