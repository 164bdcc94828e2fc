"""One exception tree for the package.

Every error the package raises on bad input derives from :class:`HTEReportError` and from the
matching builtin, so ``except ValueError`` keeps working for callers who do not know us.
Domain warnings derive from :class:`HTEReportWarning`.
"""

from __future__ import annotations

import reprlib


class HTEReportError(Exception):
    """Base class of all errors raised by hte_report."""


class FormulaError(HTEReportError, ValueError):
    """The formula cannot be used: unknown column, no treatment interaction, unsafe term, ..."""


class DataError(HTEReportError, ValueError):
    """The data cannot be used as given: non-binary treatment, non-finite values, ..."""


class ModelError(HTEReportError, RuntimeError):
    """A model could not be fitted: separation, non-convergence, collinear design."""


class PlanError(HTEReportError, ValueError):
    """The analysis plan is malformed or does not match the data."""


class ArgumentError(HTEReportError, TypeError):
    """A function was called with an argument it does not take (``p_adjust=``, ``weights=``), or
    with a value of the wrong kind (a data frame where a result or a figure belongs)."""


class HTEReportWarning(UserWarning):
    """Base class of all warnings issued by hte_report."""


class SparseSubgroupWarning(HTEReportWarning):
    """A subgroup is empty, single-arm or has zero events in an arm."""


class ConvergenceWarning(HTEReportWarning):
    """A model did not converge and a recorded fallback was used."""


class ModelWarning(HTEReportWarning):
    """A fitted model is implausible somewhere: predictions outside their range, overdispersion."""


class MissingDataWarning(HTEReportWarning):
    """Rows were excluded for missing values."""


class ExcludedRowsWarning(MissingDataWarning, SparseSubgroupWarning):
    """Rows excluded for missing values, from a time-to-event or repeated-measures analysis: a
    :class:`MissingDataWarning` (and a :class:`SparseSubgroupWarning`, the category these
    analyses gave it first, so that existing filters keep working)."""


class MultiplicityWarning(HTEReportWarning):
    """Many modifiers were tested; chance findings are likely."""


class DataWarning(HTEReportWarning):
    """The data are usable but something in them looks miscoded (e.g. a reversed flag)."""


class PostHocWarning(HTEReportWarning):
    """An analysis was not pre-specified in the locked plan."""


def short(value: object, limit: int = 80) -> str:
    """``repr`` of a user-supplied value for an error message, bounded in length and in the
    work it takes: a nested structure built from YAML aliases may expand to gigabytes."""
    r = reprlib.Repr()
    r.maxstring = r.maxother = r.maxlong = limit
    r.maxlist = r.maxtuple = r.maxdict = r.maxset = 6
    r.maxlevel = 3
    try:
        text = r.repr(value)
    except Exception:  # noqa: BLE001 - e.g. an integer too long to print
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"
