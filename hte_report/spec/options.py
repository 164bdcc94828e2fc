"""Typed options and the one checker per option.

Small choices are ``Literal`` aliases checked by :func:`check_choice`; options with parameters are
frozen objects (``Cluster("site")``), never loose strings or dicts.
"""

from __future__ import annotations

import functools
import inspect
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Union, get_args

import numpy as np

from hte_report.core.inference import MULTIPLICITY_METHODS
from hte_report.errors import ArgumentError, HTEReportError, short


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

    def __post_init__(self) -> None:
        ok = isinstance(self.column, (int, np.integer)) and not isinstance(self.column, bool)
        if not (ok or (isinstance(self.column, str) and self.column.strip())):
            raise OptionError(f"Cluster() takes the name of the cluster column, e.g. "
                              f"Cluster('site'); got {short(self.column)}.")

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


def check_flags(**flags: object) -> None:
    """Yes/no options are True or False: a text such as ``"no"`` would count as yes."""
    for name, value in flags.items():
        if not isinstance(value, (bool, np.bool_)):
            raise ArgumentError(f"{name}= must be True or False, got {short(value)}.")


def check_integer(name: str, value: object, minimum: int = 0) -> int:
    """A whole number (not text, not a bool) at least ``minimum``: counts and seeds."""
    if (isinstance(value, bool) or not isinstance(value, (int, np.integer))
            or int(value) < minimum):
        raise OptionError(f"{name} must be a whole number >= {minimum}, got {value!r}.")
    return int(value)


def check_numbers(name: str, given: object, example: str) -> list[float]:
    """One number or a list of numbers (floats, in the order given) for option ``name``.

    Text is refused, even text that reads as a number: a string is a sequence of characters, so
    ``"30"`` would otherwise become the cut points or values 3 and 0. ``example`` shows how to
    write the option (e.g. ``"display_cutpoints={'age': [30]}"``)."""
    def number(v: object) -> bool:
        return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))

    def as_text(v: object) -> str:
        try:
            float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            return "write numbers without quotes"
        text = v.decode(errors="replace") if isinstance(v, bytes) else str(v)
        return f"write {short(text.strip(), 30)[1:-1]}, not {short(v, 30)}"

    if isinstance(given, (str, bytes)):
        raise OptionError(f"{name} must be numbers, got the text {short(given)}: "
                          f"{as_text(given)}, e.g. {example}.")
    if number(given):
        values = [given]
    elif isinstance(given, (dict, set, frozenset)) or not hasattr(given, "__iter__"):
        raise OptionError(f"{name} must be a number or a list of numbers, e.g. {example}; got "
                          f"{short(given)}.")
    else:
        values = list(given)  # type: ignore[call-overload]
    bad = [v for v in values if not number(v)]
    if bad:
        what = "the text" if isinstance(bad[0], (str, bytes)) else "the value"
        raise OptionError(f"{name} must be numbers, got {what} {short(bad[0])} in "
                          f"{short(given)}: {as_text(bad[0])}, e.g. {example}.")
    return [float(v) for v in values]  # type: ignore[arg-type]


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
    ok = [k for k, v in MODELS.items() if family in v.families]
    if not isinstance(models, (list, tuple)) or not models:
        raise OptionError(f"models= must name one or more working models, e.g. models={ok}; "
                          f"got {short(models)}. Leave it out for the defaults "
                          f"{list(DEFAULT_MODELS[family])}.")
    out = []
    for m in models:
        check_choice("models", m, tuple(MODELS))
        if family not in MODELS[m].families:
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


#: Arguments people reach for under another name (other packages' spellings, R's), with what
#: to write instead. Used by :func:`checked_arguments` when a call names an unknown argument.
ARGUMENT_HINTS = {
    "p_adjust": "the adjustment of interaction p-values is multiplicity= ('holm', 'BH', ...)",
    "p_adjust_method": "the adjustment of interaction p-values is multiplicity=",
    "padjust": "the adjustment of interaction p-values is multiplicity=",
    "adjust": "the adjustment of interaction p-values is multiplicity=",
    "correction": "the adjustment of interaction p-values is multiplicity=",
    "weights": "weighted analyses are not supported: every patient counts once (for inverse "
               "probability weighting of observational data use hr.fit_observational)",
    "weight": "weighted analyses are not supported: every patient counts once",
    "sample_weight": "weighted analyses are not supported: every patient counts once",
    "cluster": "a cluster-robust variance is variance=hr.Cluster('site')",
    "clusters": "a cluster-robust variance is variance=hr.Cluster('site')",
    "groups": "a cluster-robust variance is variance=hr.Cluster('site')",
    "subgroups": "effect modifiers are the terms crossed with the treatment in the formula, "
                 "e.g. 'y ~ treat * (age + C(sex))'",
    "modifiers": "effect modifiers are the terms crossed with the treatment in the formula, "
                 "e.g. 'y ~ treat * (age + C(sex))'",
    "covariates": "adjustment covariates are the formula's terms not crossed with the treatment, "
                  "e.g. 'y ~ treat * age + site'",
    "adjust_for": "adjustment covariates are the formula's terms not crossed with the treatment",
    "scales": "every analysis reports both the absolute and the relative scale; models= picks "
              "the working models (e.g. models=['ols', 'logit'])",
    "scale": "every analysis reports both the absolute and the relative scale; models= picks "
             "the working models",
    "link": "models= picks the working models (e.g. models=['logit'])",
    "model": "the working models are models= (a list, e.g. models=['logit'])",
    "alpha": "the level of every interval is conf_level= (e.g. conf_level=0.95)",
    "level": "the level of every interval is conf_level= (e.g. conf_level=0.95)",
    "confidence_level": "the level of every interval is conf_level= (e.g. conf_level=0.95)",
    "ci": "the level of every interval is conf_level=, the kind of interval ci_method=",
    "ref": "the control arm is reference= (two arms) or control= (three or more)",
    "baseline": "the control arm is reference= (two arms) or control= (three or more)",
    "treat": "the treatment column is treatment=",
    "arm": "the treatment column is treatment=",
    "outcome": "the outcome is the left-hand side of the formula",
    "time": "a time-to-event outcome is written Surv(time, event) on the formula's left-hand "
            "side",
    "event": "a time-to-event outcome is written Surv(time, event) on the formula's left-hand "
             "side",
    "offset": "person-time of a count outcome is exposure= (a column name)",
    "df": "the data are the second argument: hr.fit(formula, df, ...)",
}


def checked_arguments(fn):
    """Decorator: a call with an argument ``fn`` does not take, or without one it requires, is
    an :class:`~hte_report.errors.ArgumentError` (also a ``TypeError``) that names the argument
    and what to write instead, before anything is read or fitted."""
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        check_call(fn, args, kwargs, sig=sig)
        return fn(*args, **kwargs)

    wrapper.__signature__ = sig  # type: ignore[attr-defined]
    return wrapper


def check_call(fn, args: tuple, kwargs: dict, *, name: str | None = None,
               see: str | None = None, sig: inspect.Signature | None = None,
               hints: bool = True) -> None:
    """Raise :class:`~hte_report.errors.ArgumentError` if ``fn(*args, **kwargs)`` would fail for
    an unknown or missing argument. ``name``: how the user called it (``"res.forest"``);
    ``see``: where its arguments are documented."""
    sig = sig or inspect.signature(fn)
    try:
        sig.bind(*args, **kwargs)
    except TypeError as exc:
        name = name or fn.__name__
        see = see or f"help(hte_report.{fn.__name__})"
        raise ArgumentError(_argument_problem(name, sig, kwargs, exc, see, hints)) from None


def _argument_problem(name, sig, kwargs, exc, see, hints=True) -> str:
    import difflib

    allowed = [p for p in sig.parameters if p not in ("self", "result", "res") and
               sig.parameters[p].kind not in (inspect.Parameter.VAR_POSITIONAL,
                                              inspect.Parameter.VAR_KEYWORD)]
    unknown = [k for k in kwargs if k not in sig.parameters]
    if not unknown:
        why = str(exc).split("() ", 1)[-1] if "() " in str(exc) else str(exc)
        return f"{name}(): {why}. Its arguments are {allowed}; see {see}."
    parts = []
    for k in unknown:
        hint = (ARGUMENT_HINTS.get(k) or ARGUMENT_HINTS.get(k.lower())) if hints else None
        near = difflib.get_close_matches(k, allowed, n=1)
        if hint:
            parts.append(f"{k}= ({hint})")
        elif near:
            parts.append(f"{k}= (did you mean {near[0]}=?)")
        else:
            parts.append(f"{k}=")
    return f"{name}() has no argument {', '.join(parts)}. Its arguments are {allowed}; see {see}."
