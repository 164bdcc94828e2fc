"""The design: model matrices (observed and counterfactual) from one formulaic
materialization, estimability checks, subgroup definitions."""

from hte_report.design.build import Design, Subgroup, build_design, subgroups

__all__ = ["Design", "Subgroup", "build_design", "subgroups"]
