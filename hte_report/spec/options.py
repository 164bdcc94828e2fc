"""Typed options and the one checker per option.

Small choices are ``Literal`` aliases checked by :func:`check_choice`; options with parameters are
frozen objects (``Cluster("site")``), never loose strings or dicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Union, get_args

import numpy as np

from hte_report.core.inference import MULTIPLICITY_METHODS
from hte_report.errors import HTEReportError


class OptionError(HTEReportError, ValueError):
    """An option has a value outside its allowed set."""


Family = Literal["continuous", "binary", "count"]
HCType = Literal["model", "HC0", "HC1", "HC2", "HC3"]
ModelName = Literal[
    "ols",
    "identity-binomial",
    "logit",
    "modified-poisson",
    "log-binomial",
    "poisson",
    "identity-poisson",
]


@dataclass(frozen=True)
class Cluster:
    """Cluster-robust variance (multi-centre trials), clustered on a data column.

    The small-sample adjustment is ``G/(G-1) * (n-1)/(n-k)``, as in statsmodels'
    ``cov_type="cluster"`` and R's ``sandwich::vcovCL(type = "HC1")``.
    """

    column: str

    @property
    def label(self) -> str:
        return f"CL({self.column})"


Variance = Union[HCType, Cluster]


@dataclass(frozen=True)
class ModelInfo:
    """What a model name means: its GLM family/link and the scale it estimates natively."""

    name: str
    family: str  # statsmodels family name
    link: str
    native: Literal["difference", "ratio", "odds-ratio"]
    likelihood: bool  # is the likelihood the working model's own (LR tests meaningful)?
    robust_only: bool  # model-based variance is invalid (modified Poisson)
    families: tuple[str, ...]  # outcome families it applies to


MODELS: dict[str, ModelInfo] = {
    "ols": ModelInfo("ols", "gaussian", "identity", "difference", False, False,
                     ("continuous", "binary")),
    "identity-binomial": ModelInfo("identity-binomial", "binomial", "identity", "difference",
                                   True, False, ("binary",)),
    "logit": ModelInfo("logit", "binomial", "logit", "odds-ratio", True, False, ("binary",)),
    "modified-poisson": ModelInfo("modified-poisson", "poisson", "log", "ratio", False, True,
                                  ("binary",)),
    "log-binomial": ModelInfo("log-binomial", "binomial", "log", "ratio", True, False, ("binary",)),
    "poisson": ModelInfo("poisson", "poisson", "log", "ratio", True, False, ("count",)),
    "identity-poisson": ModelInfo("identity-poisson", "poisson", "identity", "difference", True,
                                  False, ("count",)),
}

DEFAULT_MODELS: dict[str, tuple[str, ...]] = {
    "continuous": ("ols",),
    "binary": ("ols", "modified-poisson", "logit"),
    "count": ("identity-poisson", "poisson"),
}

#: Fallback when a model does not converge: recorded in the result, never silent.
FALLBACK: dict[str, str] = {
    "log-binomial": "modified-poisson",
    "identity-binomial": "ols",
}

#: Scale names by outcome family.
DIFF_SCALE = {"continuous": "MD", "binary": "RD", "count": "RateDiff"}
RATIO_SCALE = {"continuous": "MeanRatio", "binary": "RR", "count": "RateRatio"}


def check_choice(name: str, value: object, allowed: Sequence[object]) -> None:
    """Raise :class:`OptionError` naming the argument when ``value`` is not allowed."""
    if value not in allowed:
        shown = ", ".join(repr(a) for a in allowed)
        raise OptionError(f"{name}={value!r} is not allowed; expected one of {shown}.")


def check_multiplicity(method: object) -> str:
    """A multiplicity method of R's ``p.adjust`` (or our ``fdr_bh``/``fdr_by`` spellings)."""
    if not isinstance(method, str) or method not in MULTIPLICITY_METHODS:
        shown = ", ".join(repr(m) for m in MULTIPLICITY_METHODS)
        raise OptionError(f"multiplicity={method!r} is not a multiplicity adjustment; expected "
                          f"one of {shown} ('BH'/'fdr_bh' is Benjamini-Hochberg, "
                          "'BY'/'fdr_by' Benjamini-Yekutieli, as in R's p.adjust).")
    return method


#: ``inference=None``: per outcome family. z throughout for now; "t" for continuous outcomes
#: (R's lm convention) is one entry away (see the issue-16 report).
DEFAULT_INFERENCE = {"continuous": "t", "binary": "z", "count": "z"}  # t as R lm/coeftest


def check_inference(inference: object, family: str) -> str:
    """``"z"`` or ``"t"`` (``None``: the family's default, :data:`DEFAULT_INFERENCE`)."""
    if inference is None:
        return DEFAULT_INFERENCE.get(family, "z")
    check_choice("inference", inference, ("z", "t"))
    return inference  # type: ignore[return-value]


def model_inference(model: str, inference: str) -> str:
    """The inference of one working model: t applies to Gaussian linear models (``ols``),
    whose residual df R's lm uses; likelihood models of binary and count outcomes keep z,
    as R's glm does for families with a fixed dispersion."""
    info = MODELS.get(model)
    gaussian = info is not None and info.family == "gaussian" and info.link == "identity"
    return "t" if inference == "t" and gaussian else "z"


def check_conf_level(conf_level: object) -> float:
    """A confidence level strictly between 0.5 and 1 (a number, not text)."""
    if (isinstance(conf_level, bool) or not isinstance(conf_level, (int, float, np.number))
            or not (0.5 < float(conf_level) < 1)):
        raise OptionError(f"conf_level must be a number between 0.5 and 1 (e.g. 0.95), got "
                          f"{conf_level!r}.")
    return float(conf_level)


def check_integer(name: str, value: object, minimum: int = 0) -> int:
    """A whole number (not text, not a bool) at least ``minimum``: counts and seeds."""
    if (isinstance(value, bool) or not isinstance(value, (int, np.integer))
            or int(value) < minimum):
        raise OptionError(f"{name} must be a whole number >= {minimum}, got {value!r}.")
    return int(value)


def check_family(family: str) -> str:
    check_choice("family", family, get_args(Family))
    return family


def check_variance(variance: object) -> Variance | None:
    """Validate a variance option: ``None`` (per-model default), an HC label or a Cluster."""
    if variance is None or isinstance(variance, Cluster):
        return variance
    if isinstance(variance, dict):
        raise OptionError(
            "variance must be 'model', 'HC0'..'HC3' or Cluster('column'), not a dict; "
            "write variance=Cluster('site')."
        )
    check_choice("variance", variance, get_args(HCType))
    return variance  # type: ignore[return-value]


def check_models(models: Sequence[str] | None, family: str) -> tuple[str, ...]:
    if models is None:
        return DEFAULT_MODELS[family]
    if isinstance(models, str):
        models = (models,)
    out = []
    for m in models:
        check_choice("models", m, tuple(MODELS))
        if family not in MODELS[m].families:
            ok = [k for k, v in MODELS.items() if family in v.families]
            raise OptionError(
                f"model {m!r} does not apply to a {family} outcome; use one of {ok}."
            )
        if m not in out:
            out.append(m)
    return tuple(out)


def default_variance(model: str) -> Variance:
    """Per-model default: HC3 for OLS; HC0 for Poisson working models (Zou 2004 for binary
    outcomes; counts are usually overdispersed); model-based for binomial likelihoods."""
    if model == "ols":
        return "HC3"
    if model in ("modified-poisson", "poisson", "identity-poisson"):
        return "HC0"
    return "model"


def variance_label(variance: Variance) -> str:
    return variance.label if isinstance(variance, Cluster) else str(variance)
