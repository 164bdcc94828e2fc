"""Where effects are evaluated: the overall row's label, evaluation points of modifiers
(levels, quartiles or ``at=``), curve grids, and counterfactual design rows at a reference
profile. Shared by every outcome family."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from hte_report.design.build import Design
from hte_report.errors import SparseSubgroupWarning
from hte_report.spec.options import OptionError, check_numbers

#: Label of the row for all patients (the overall effect) in every tidy frame.
OVERALL = "All patients"


class Points(dict):
    """Evaluation points per modifier, with percentile names for the default quartiles."""

    def __init__(self):
        super().__init__()
        self.percentiles: dict[str, list[str]] = {}


def eval_points(design: Design, at):
    at = dict(at or {})
    out = Points()
    unknown = set(at) - {m.name for m in design.modifiers}
    if unknown:
        raise OptionError(f"at= names {sorted(unknown)}, which are not effect modifiers "
                         f"({[m.name for m in design.modifiers]}).")
    for m in design.modifiers:
        s = design.frame[m.name]
        if m.kind == "categorical":
            values = list(design.levels[m.name].values)
            out[m.name] = _at_levels(m.name, at[m.name], values) if m.name in at else values
        elif m.name in at:
            vals = _at_values(m.name, at[m.name])
            lo, hi = s.min(), s.max()
            outside = [v for v in vals if v < lo or v > hi]
            if outside:
                warnings.warn(f"at[{m.name!r}] values {outside} are outside the observed range "
                              f"[{lo}, {hi}]: extrapolation.", SparseSubgroupWarning, stacklevel=3)
            out[m.name] = vals
        else:
            q = design.quartiles[m.name][1:4]
            vals, names = [], []
            for i in range(3):
                if q[i] not in vals:
                    vals.append(float(q[i]))
                    names.append(["25th percentile", "median", "75th percentile"][i])
            out[m.name] = vals
            out.percentiles[m.name] = names
    return out


def at_profile(design: Design, treatment: str, at, variables) -> tuple[dict, dict]:
    """Split ``at`` into the evaluation points of effect modifiers and a covariate profile:
    one value for each other covariate of the model (a level of a categorical one, a finite
    number for a continuous one), which replaces its reference value (mean / mode) for every
    conditional effect and curve. A name that is neither, or several values for a covariate,
    is an :class:`OptionError`."""
    at = dict(at or {})
    mods = {m.name for m in design.modifiers}
    covariates = [c for c in variables if c != treatment and c not in mods]
    out_mod, out_cov = {}, {}
    for name, given in at.items():
        if name in mods:
            out_mod[name] = given
            continue
        if name not in covariates:
            raise OptionError(f"at= names {name!r}, which is neither an effect modifier "
                              f"({sorted(mods)}) nor a covariate of the model "
                              f"({covariates}).")
        many = not isinstance(given, (str, int, float, np.number, bool))
        values = list(given) if many else [given]
        if len(values) != 1:
            raise OptionError(f"at[{name!r}] must be one value: {name!r} is a covariate, so it "
                              "sets the profile at which conditional effects are evaluated "
                              "(several values are for effect modifiers).")
        if name in design.categorical:
            out_cov[name] = _at_levels(name, values, list(design.levels[name].values))[0]
        else:
            out_cov[name] = _at_values(name, values, one=True)[0]
    return out_mod, out_cov


def _at_levels(name: str, given, values: list) -> list:
    """The levels of categorical modifier ``name`` named in ``at[name]`` (by value or by its
    label, e.g. 1 or "1"), in the data's order; a value that is not a level is an error."""
    given = [given] if isinstance(given, (str, int, float, np.number, bool)) else given
    try:
        given = list(given)
    except TypeError:
        given = None
    if not given:
        raise OptionError(f"at[{name!r}] must list one or more levels of the categorical "
                          f"modifier {name!r} ({[str(v) for v in values][:20]}), got "
                          f"{given!r}.")
    chosen = []
    for g in given:
        match = [v for v in values if _same_level(v, g)]
        if not match:
            raise OptionError(
                f"at[{name!r}] names {g!r}, which is not a level of the categorical modifier "
                f"{name!r}; its levels are {[str(v) for v in values][:20]}. Conditional "
                f"effects of {name!r} are evaluated at the levels listed in at[{name!r}].")
        chosen += [v for v in match if v not in chosen]
    return [v for v in values if v in chosen]


def _same_level(value, given) -> bool:
    """Does ``given`` (from ``at=``) name the level ``value``: equal, equal as text, or equal
    as numbers (1 and 1.0 and "1")?"""
    if str(value) == str(given):
        return True
    if isinstance(given, bool) or isinstance(value, bool):
        return value is given
    try:
        return float(value) == float(given)
    except (TypeError, ValueError):
        return False


def _at_values(name: str, given, one: bool = False) -> list[float]:
    """Finite numbers for ``at[name]``: a list of values of a continuous modifier (``one``: the
    single value of a covariate)."""
    example = f"at={{{name!r}: {'40' if one else '[40, 60]'}}}"
    vals = check_numbers(f"at[{name!r}]", given, example)
    if not vals or not all(np.isfinite(vals)):
        raise OptionError(f"at[{name!r}] must be one or more finite numbers, got {given!r}.")
    return vals


def curve_points(design: Design, size: int = 61) -> dict:
    """Evenly spaced values over the observed range of each continuous modifier."""
    out = {}
    for m in design.modifiers:
        if m.kind == "continuous":
            lo, hi = design.quartiles[m.name][[0, -1]]
            out[m.name] = list(np.linspace(float(lo), float(hi), size))
    return out


def profile_frame(design: Design, rows: list[dict]) -> pd.DataFrame:
    """Profile rows completed to every analysed column (others from the first analysed row,
    categorical columns with the analysed categories), ready to materialize."""
    prof = pd.DataFrame(rows)
    for col in design.frame.columns:
        if col not in prof:
            prof[col] = design.frame[col].iloc[0]
        if isinstance(design.frame[col].dtype, pd.CategoricalDtype):
            prof[col] = pd.Categorical(prof[col], categories=design.frame[col].cat.categories)
    return prof


def profile_designs(design: Design, treatment: str, points: dict, profile: dict) -> dict:
    """Counterfactual design rows at the reference profile with each modifier at its points;
    built once (one materialization for all modifiers) and shared by every model."""
    mods = [m for m in design.modifiers if m.name in points]
    frames = []
    for m in mods:
        prof = profile_frame(design, [{**profile, m.name: v} for v in points[m.name]])
        frames += [prof.assign(**{treatment: 1}), prof.assign(**{treatment: 0})]
    matrices = iter(design.materialize_many(frames))
    out = {}
    for m in mods:
        vals = points[m.name]
        labels = [str(v) for v in vals] if m.kind == "categorical" else [
            f"at {v:.4g}" + (f" ({q})" if q else "") for v, q in zip(
                vals, getattr(points, "percentiles", {}).get(m.name, [""] * len(vals)))]
        out[m.name] = (vals, next(matrices), next(matrices), labels)
    return out


