"""hte_report: treatment-effect heterogeneity on absolute and relative scales.

Public API: :func:`fit` (continuous, binary, count outcomes), :func:`fit_survival`,
:func:`fit_mixed`, :func:`fit_file` (Parquet/CSV beyond memory, DuckDB or Spark),
:func:`fit_plan` with :func:`load_plan` / :func:`lock_plan`,
:func:`bootstrap`, :func:`read_data` (files in any text encoding), the risk-based tools
:func:`risk_model`, :func:`risk_stratified`,
:func:`personalized_benefit`, the result :class:`HTEResult`, the option :class:`Cluster`, and
errors under :class:`HTEReportError`.

The names are exported lazily (PEP 562): ``import hte_report`` loads only the version, and the
first use of ``hte_report.fit`` (or ``from hte_report import fit``) imports the module that
defines it, so ``import hte_report`` and ``hte-report --help`` do not load statsmodels, scipy,
pandas or the plotting stack.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from hte_report._version import __version__

# public name -> module that defines it
_EXPORTS = {
    "Cluster": "hte_report.spec.options",
    "HTEReportError": "hte_report.errors",
    "HTEReportWarning": "hte_report.errors",
    "HTEResult": "hte_report.results.result",
    "bootstrap": "hte_report.estimation.bootstrap",
    "explore": "hte_report.exploratory.forest",
    "fit": "hte_report.api",
    "fit_file": "hte_report.estimation.outofcore",
    "fit_mixed": "hte_report.estimation.mixed",
    "fit_observational": "hte_report.estimation.observational",
    "fit_plan": "hte_report.analysis",
    "fit_survival": "hte_report.estimation.survival",
    "load_plan": "hte_report.spec.plan",
    "lock_plan": "hte_report.spec.plan",
    "personalized_benefit": "hte_report.path.personalized",
    "read_data": "hte_report.data.prepare",
    "risk_model": "hte_report.path.risk",
    "risk_stratified": "hte_report.path.benefit",
    # outputs (issue 19): tables for a study report, the analysis-results dataset, figures
    "ForestStyle": "hte_report.presentation.plots",
    "variable_labels": "hte_report.data.readers",
    "to_docx": "hte_report.presentation.export",
    "to_rtf": "hte_report.presentation.export",
    "to_latex": "hte_report.presentation.export",
    "save_figure": "hte_report.presentation.export",
    "save_ard": "hte_report.presentation.export",
    "to_ard": "hte_report.results.ard",
    "read_ard": "hte_report.results.ard",
    "from_ard": "hte_report.results.ard",
}

__all__ = ["Cluster", "HTEReportError", "HTEReportWarning", "HTEResult", "bootstrap", "explore",
           "fit", "fit_file", "fit_mixed", "fit_observational", "fit_plan", "fit_survival",
           "load_plan", "lock_plan", "personalized_benefit", "read_data", "risk_model",
           "risk_stratified", "ForestStyle", "variable_labels", "to_docx", "to_rtf", "to_latex",
           "save_figure", "save_ard", "to_ard", "read_ard", "from_ard", "__version__"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        if name.startswith("_"):
            raise AttributeError(f"module 'hte_report' has no attribute {name!r}")
        try:  # a sub-package, as ``hte_report.models`` was after the old eager imports
            return import_module(f"hte_report.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"hte_report.{name}":
                raise
            raise AttributeError(f"module 'hte_report' has no attribute {name!r}") from None
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # static analysers and IDEs see the eager imports
    from hte_report.analysis import fit_plan
    from hte_report.api import fit
    from hte_report.data.prepare import read_data
    from hte_report.errors import HTEReportError, HTEReportWarning
    from hte_report.estimation.bootstrap import bootstrap
    from hte_report.estimation.mixed import fit_mixed
    from hte_report.estimation.observational import fit_observational
    from hte_report.estimation.survival import fit_survival
    from hte_report.exploratory.forest import explore
    from hte_report.path.benefit import risk_stratified
    from hte_report.path.personalized import personalized_benefit
    from hte_report.path.risk import risk_model
    from hte_report.results.result import HTEResult
    from hte_report.spec.options import Cluster
    from hte_report.spec.plan import load_plan, lock_plan
