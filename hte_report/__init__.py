"""hte_report: treatment-effect heterogeneity on absolute and relative scales.

Public API: :func:`fit` and :class:`HTEResult`; options :class:`Cluster`; errors under
:class:`HTEReportError`.
"""

__version__ = "0.1.0"

from .errors import HTEReportError, HTEReportWarning  # noqa: E402
from .fitting import fit  # noqa: E402
from .options import Cluster  # noqa: E402
from .result import HTEResult  # noqa: E402

__all__ = ["Cluster", "HTEReportError", "HTEReportWarning", "HTEResult", "fit", "__version__"]
