"""hte_report: treatment-effect heterogeneity on absolute and relative scales.

Public API: :func:`fit` (continuous, binary, count outcomes), :func:`fit_survival`,
:func:`fit_mixed`, :func:`fit_plan` with :func:`load_plan` / :func:`lock_plan`,
:func:`bootstrap`, :func:`read_data` (files in any text encoding), the risk-based tools
:func:`risk_model`, :func:`risk_stratified`,
:func:`personalized_benefit`, the result :class:`HTEResult`, the option :class:`Cluster`, and
errors under :class:`HTEReportError`.
"""

from hte_report._version import __version__  # noqa: I001

from hte_report.analysis import fit_plan  # noqa: E402, I001
from hte_report.path.benefit import risk_stratified  # noqa: E402
from hte_report.path.personalized import personalized_benefit  # noqa: E402
from hte_report.estimation.bootstrap import bootstrap  # noqa: E402
from hte_report.data.prepare import read_data  # noqa: E402
from hte_report.errors import HTEReportError, HTEReportWarning  # noqa: E402
from hte_report.api import fit  # noqa: E402
from hte_report.estimation.mixed import fit_mixed  # noqa: E402
from hte_report.spec.options import Cluster  # noqa: E402
from hte_report.spec.plan import load_plan, lock_plan  # noqa: E402
from hte_report.results.result import HTEResult  # noqa: E402
from hte_report.path.risk import risk_model  # noqa: E402
from hte_report.estimation.survival import fit_survival  # noqa: E402

__all__ = ["Cluster", "HTEReportError", "HTEReportWarning", "HTEResult", "bootstrap", "fit",
           "fit_mixed", "fit_plan", "fit_survival", "load_plan", "lock_plan",
           "personalized_benefit", "read_data", "risk_model", "risk_stratified", "__version__"]
