"""Plan-driven analysis: validate a plan against data, fit the pre-specified model, and fit any
post hoc modifiers separately, labelled as hypothesis-generating."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from .data import read_data
from .errors import PostHocWarning
from .fitting import fit
from .plan import Plan, check_plan_against_data, load_plan
from .result import HTEResult


@dataclass(frozen=True)
class PlannedAnalysis:
    """The confirmatory (pre-specified) result and the post hoc results, with their plan."""

    plan: Plan
    result: HTEResult
    posthoc: tuple[HTEResult, ...]
    data: pd.DataFrame


def fit_plan(plan: Plan | str, data: object, posthoc: Sequence[str] = ()) -> PlannedAnalysis:
    """Fit the plan's model on ``data``. Each ``posthoc`` modifier is analysed in the primary
    model extended by its treatment interaction, labelled post hoc (hypothesis-generating) and
    adjusted for multiplicity in its own family, never with the pre-specified ones."""
    if not isinstance(plan, Plan):
        plan = load_plan(plan)
    frame = read_data(data)
    check_plan_against_data(plan, frame.columns)
    raw = plan.raw
    kw = dict(
        treatment=plan.treatment,
        reference=raw["treatment"]["control"],
        family=plan.outcome["family"],
        models=raw["model"].get("models"),
        conf_level=plan.conf_level,
        multiplicity=plan.multiplicity,
        exposure=plan.outcome.get("exposure"),
        safe_formula=True,
    )
    variance = raw["model"].get("variance")
    if raw["model"].get("cluster"):
        from .options import Cluster

        variance = Cluster(raw["model"]["cluster"])
    kw["variance"] = variance
    result = fit(plan.formula, frame, **kw)
    extra = [m for m in result.modifiers if plan.modifier(m) is None]
    result = result.with_plan(plan.labels, tuple(extra), plan.level_labels)
    post = []
    for var in posthoc:
        if plan.modifier(var) is not None:
            continue
        if var not in frame.columns:
            from .errors import PlanError

            raise PlanError(f"post hoc modifier {var!r} is not a column of the data.")
        warnings.warn(f"{var!r} is not pre-specified in the plan: analysed post hoc "
                      "(hypothesis-generating).", PostHocWarning, stacklevel=2)
        # the primary model plus this one interaction: pre-specified terms stay as planned;
        # a non-numeric or few-valued column enters as categorical
        col = frame[var]
        if var in result.adjustment:  # keep the primary model's coding of the variable
            formula = f"{plan.formula} + {plan.treatment}:{var}"
        else:
            few = not pd.api.types.is_numeric_dtype(col) or col.nunique() <= 5
            term = f"C({var})" if few else var
            formula = f"{plan.formula} + {term} + {plan.treatment}:{term}"
        r = fit(formula, frame, **kw)
        post.append(r.with_plan({**plan.labels, var: var}, (var,), plan.level_labels))
    return PlannedAnalysis(plan, result, tuple(post), frame)
