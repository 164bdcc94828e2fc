"""Exploratory machine-learning CATE (issue 18): an honest, orthogonalized causal forest
(EconML's ``CausalForestDML``, the optional ``ml`` extra) with cross-fitted calibration --
grf's ``test_calibration``, GATES, the best linear projection on pre-specified modifiers,
RATE (AUTOC, Qini) and variable importance. Everything here is labelled exploratory.

``hte_report.explore`` is :func:`hte_report.exploratory.forest.explore` (the sub-package is
named ``exploratory`` so that the function ``hte_report.explore`` is never shadowed by a
sub-module attribute). Importing this package does not import EconML or scikit-learn.
"""

from __future__ import annotations

from hte_report.exploratory.forest import MissingDependencyError, explore
from hte_report.exploratory.result import ExploreResult

__all__ = ["ExploreResult", "MissingDependencyError", "explore"]
