"""Build the pre-registered HTE report (a :class:`Report`) from a planned analysis.

The sections are built in :mod:`~hte_report.report.summary` (executive summary, study
population, overall effect), :mod:`~hte_report.report.subgroups` (subgroup analyses and their
forest plots, continuous modifiers, the risk-based analysis, credibility, post hoc analyses)
and :mod:`~hte_report.report.methods` (methods, software versions, the plan appendix); this
module dates the report and assembles them in order. ``versions``, ``DEPENDENCIES``,
``baseline_table`` and the block types of :mod:`~hte_report.report.model` remain importable
from here.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

from hte_report._version import __version__
from hte_report.analysis import PlannedAnalysis
from hte_report.errors import HTEReportError
from hte_report.presentation.credibility import iceman, propose_rating
from hte_report.report.explore import explore_section
from hte_report.report.methods import DEPENDENCIES, _appendix, _methods, versions  # noqa: F401
from hte_report.report.model import Bullets, Callout, Code, Figure, Para, Report, Section, Table  # noqa: F401
from hte_report.report.observational import observational_section
from hte_report.report.repeated import is_repeated, trajectory_section
from hte_report.report.standards import crossref_section, deviation_section, estimand_section
from hte_report.report.subgroups import _continuous, _credibility, _posthoc, _risk, _subgroups
from hte_report.report.summary import _overall, _population, _summary, baseline_table  # noqa: F401
from hte_report.report.survival import km_section, ph_section


def report_date(plan, date: str | None = None) -> tuple[str, datetime | None]:
    """The report's date as shown, and the instant written into the PDF's metadata.

    Never the wall clock, so the same plan, data and version give the same bytes. In order:
    ``date`` (an ISO date or date-time, e.g. ``"2026-01-31"``; anything else is refused),
    the ``SOURCE_DATE_EPOCH`` environment variable (Unix seconds, the reproducible-builds
    convention), the lock record's ``locked_at``; an unlocked plan without
    either is reported as undated.
    """
    if date is not None and str(date).strip():
        text = str(date).strip()
        when = _parse_instant(text)
        if when is None:
            raise HTEReportError(f"date must be an ISO date such as 2026-01-31 (or a date-time "
                                 f"such as 2026-01-31T09:30:00Z), got {text[:40]!r}.")
        return text, when
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch:
        try:
            when = datetime.fromtimestamp(int(epoch), timezone.utc)
        except (ValueError, OverflowError, OSError):
            raise HTEReportError(f"SOURCE_DATE_EPOCH must be whole seconds since 1970-01-01 UTC "
                                 f"(e.g. 1767225600), got {epoch[:40]!r}.") from None
        return when.strftime("%Y-%m-%d"), when
    lock = getattr(plan, "lock", None)
    if lock is not None:
        when = _parse_instant(lock.locked_at)
        return (when.strftime("%Y-%m-%d") if when else str(lock.locked_at)), when
    return "undated (plan not locked; set a date or SOURCE_DATE_EPOCH)", None


def _parse_instant(text: str) -> datetime | None:
    """An ISO date or date-time as an aware UTC datetime (a date is taken at 00:00 UTC)."""
    try:
        when = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return when.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None



def with_time_unit(analysis: PlannedAnalysis) -> PlannedAnalysis:
    """A survival analysis whose result carries the plan's ``outcome.time_unit`` in its
    ``meta`` (every survival label names it), and the same for its post hoc results."""
    from dataclasses import replace

    unit = analysis.plan.outcome.get("time_unit")
    if analysis.result.family != "survival" or not unit:
        return analysis

    def add(r):
        return r if (r.meta or {}).get("time_unit") else replace(
            r, meta={**(r.meta or {}), "time_unit": unit})

    return replace(analysis, result=add(analysis.result),
                   posthoc=tuple(add(r) for r in analysis.posthoc))


def build_report(analysis: PlannedAnalysis, date: str | None = None,
                 with_png: bool = False) -> Report:
    """The full report: every section listed in the README, in order."""
    analysis = with_time_unit(analysis)
    plan, res = analysis.plan, analysis.result
    lock = plan.lock_status()
    shown, instant = report_date(plan, date)
    meta = {
        "trial": plan.raw["trial"].get("name") or plan.raw["trial"]["id"],
        "trial-id": plan.raw["trial"]["id"],
        "date": shown,
        "timestamp": instant,  # the PDF's creation date (None: undated)
        "plan-hash": plan.sha256,
        "lock-time": plan.lock.locked_at if plan.lock else "not locked",
        "lock-status": lock,
        "lock-statement": plan.lock.statement if plan.lock else "",
        "data-hash": res.data_sha256,
        "version": __version__,
        "outcome": plan.outcome.get("label", plan.outcome["variable"]),
    }
    answers = iceman(res, plan)
    proposed = propose_rating(answers)
    survival = res.family == "survival"
    sections = [
        _summary(analysis, answers, proposed, lock),
        _population(analysis),
        _overall(res),
        *([km_section(analysis, with_png)] if survival else []),
        *([trajectory_section(analysis, with_png)] if is_repeated(res) else []),
        _subgroups(analysis, with_png),
        *filter(None, [observational_section(analysis, with_png)]),
        *([ph_section(analysis, with_png)] if survival else []),
        _continuous(analysis, with_png),
        _risk(analysis, with_png),
        *([explore_section(analysis, with_png)]
          if (plan.raw.get("exploratory") or {}).get("planned") else []),
        _credibility(analysis, answers, proposed),
        _posthoc(analysis, with_png),
        _methods(analysis),
        _appendix(analysis),
        deviation_section(analysis),
    ]
    sections.insert(2, estimand_section(analysis))
    sections.append(crossref_section(analysis, sections))
    return Report(title=plan.title, meta=meta, sections=tuple(sections))

