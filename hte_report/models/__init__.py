"""Model fitting: one module per outcome family, each turning a design into a fitted model."""

from hte_report.models.glm import FittedModel, fit_glm

__all__ = ["FittedModel", "fit_glm"]
