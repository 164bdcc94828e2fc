"""A plan checked against the data it will analyse: columns, treatment and control codes,
outcome coding, modifier levels, risk-model inputs. Run by ``hte-report check`` and before
every render, so a plan that does not fit the data fails before anything is fitted."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from hte_report.errors import FormulaError, HTEReportWarning, PlanError, short
from hte_report.spec.formula import parse_formula
from hte_report.spec.plan import YAML_BOOLEANS, Plan


def check_plan_against_data(plan: Plan, data) -> None:
    """Every variable the plan names must exist in the data; modifiers must be in the formula.

    ``data``: the data frame, or only its column names. With the frame, the values are
    checked too: the treated and control codes must both occur in the treatment column (and
    be its only values), a level named in a direction must occur, and a modifier's type must
    fit its column."""

    for dev in plan.deviations_found:  # run as locked, recorded in the deviation log
        warnings.warn(dev["note"], HTEReportWarning, stacklevel=2)
    frame = data if isinstance(data, pd.DataFrame) else None
    columns = list(data.columns if frame is not None else data)
    if frame is not None and frame.columns.duplicated().any():
        dup = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise PlanError(f"the data has duplicated column names {short(dup)}; rename them so "
                        "that every column name is unique.")
    if frame is not None and len(frame) == 0:
        raise PlanError("the data has no rows (only a header?): there is nothing to analyse.")
    needed = {
        "outcome.variable": plan.outcome["variable"],
        "treatment.variable": plan.treatment,
    }
    if plan.outcome.get("exposure"):
        needed["outcome.exposure"] = plan.outcome["exposure"]
    for key in ("event", "censor", "subject", "time"):
        if plan.outcome.get(key):
            needed[f"outcome.{key}"] = plan.outcome[key]
    if plan.raw["model"].get("cluster"):
        needed["model.cluster"] = plan.raw["model"]["cluster"]
    for i, m in enumerate(plan.modifiers):
        key = modifier_key(plan, i)
        needed[key if key.startswith("demographics") else f"{key}.variable"] = m.variable
    rb = plan.raw.get("risk_based") or {}
    if rb.get("risk_column"):
        needed["risk_based.risk_column"] = rb["risk_column"]
    for i, term in enumerate(plan.raw.get("confounders") or []):  # observational plans
        from formulaic import Formula

        used = [str(term)] if str(term) in columns else sorted(
            Formula(str(term)).required_variables)
        for var in used:
            needed[f"confounders[{i}]" + (f" ({var})" if len(used) > 1 else "")] = var
    ps_formula = (plan.raw.get("propensity") or {}).get("formula")
    if ps_formula:
        from formulaic import Formula

        try:
            ps_vars = sorted(Formula(ps_formula.split("~")[-1]).required_variables)
        except Exception as exc:  # noqa: BLE001 - formulaic's parser errors
            raise PlanError(f"propensity.formula {short(ps_formula)} cannot be parsed "
                            f"({type(exc).__name__}); write it like '~ age + C(sex)'.") from None
        for var in ps_vars:
            if var == plan.treatment:
                raise PlanError(f"propensity.formula uses the treatment {short(var)} on its "
                                "right-hand side; the propensity model predicts the treatment "
                                "from the confounders. Remove it.")
            needed[f"propensity.formula ({var})"] = var
    ex = plan.raw.get("exploratory") or {}
    if ex.get("planned", bool(ex)):
        for what in ("covariates", "modifiers"):
            for i, var in enumerate(ex.get(what) or []):
                needed[f"exploratory.{what}[{i}]"] = var
    for key, var in needed.items():
        if var not in columns:
            import difflib

            names = [str(c) for c in columns]
            near = [c for c in names if c.strip().lower() == str(var).strip().lower()]
            near = near or difflib.get_close_matches(var, names, n=3)
            hint = f" Did you mean {near}?" if near else ""
            if near and near[0] != near[0].strip():
                hint += " (the data's column name has spaces around it)"
            shown = ", ".join(short(c, 40) for c in columns[:20])
            more = ", ..." if len(columns) > 20 else ""
            raise PlanError(f"plan key '{key}' names column {short(var)}, which is not in the "
                            f"data.{hint} Columns: [{shown}{more}].{_separator_hint(columns)}")
    try:
        if plan.outcome["family"] == "survival":
            from hte_report.spec.surv import parse_surv_formula

            parsed = parse_surv_formula(plan.formula, columns, plan.treatment, True).parsed
        elif plan.outcome["family"] == "repeated":
            from hte_report.spec.repeated import parse_mixed_formula

            parsed = parse_mixed_formula(plan.formula, columns, plan.treatment,
                                         plan.outcome["time"], True)
        else:
            parsed = parse_formula(plan.formula, columns, treatment=plan.treatment, safe=True)
    except FormulaError as exc:
        raise FormulaError(f"model.formula: {exc}") from None
    if parsed.outcome != plan.outcome["variable"]:
        raise PlanError(f"model.formula's outcome {short(parsed.outcome)} differs from "
                        f"outcome.variable {short(plan.outcome['variable'])}.")
    in_formula = {m.name for m in parsed.modifiers}
    repeated = plan.outcome["family"] == "repeated"
    for i, m in enumerate(plan.modifiers):
        if m.variable not in in_formula and repeated:
            time = plan.outcome["time"]
            raise PlanError(
                f"modifiers[{i}] {short(m.variable)} is pre-specified but model.formula "
                f"({short(plan.formula)}) has no {plan.treatment}:{time}:{m.variable} term; "
                f"write '{plan.outcome['variable']} ~ {plan.treatment} * {time} * "
                f"({m.variable} + ...)'.")
        if m.variable not in in_formula:
            raise PlanError(
                f"modifiers[{i}] {short(m.variable)} is pre-specified but does not interact with "
                f"{short(plan.treatment)} in model.formula ({short(plan.formula)}); add "
                f"'{plan.treatment}:{m.variable}' to the formula."
            )
    if rb.get("formula"):
        from hte_report.spec.formula import split_formula, used_columns

        try:
            rparsed, routcome = split_formula(rb["formula"], True, "outcome ~ age + sex")
            if routcome != plan.outcome["variable"]:
                raise PlanError(f"its outcome {short(routcome)} differs from outcome.variable "
                                f"{short(plan.outcome['variable'])}; the risk model predicts "
                                "the plan's outcome.")
            if plan.treatment in used_columns(list(rparsed.rhs), columns):
                raise PlanError(
                    f"it uses the treatment {short(plan.treatment)}; the risk model predicts "
                    "the outcome from baseline covariates only. Remove the treatment from the "
                    "formula (include_treatment: true adds it as a main effect, set to control "
                    "when risks are predicted).")
        except (FormulaError, PlanError) as exc:
            raise PlanError(f"risk_based.formula: {exc}") from None
    aset = plan.raw.get("analysis_set") or {}
    for key, col in (("analysis_set.subject", aset.get("subject")),
                     ("analysis_set.parameter.column",
                      (aset.get("parameter") or {}).get("column", "PARAMCD")
                      if aset.get("parameter") else None)):
        if col and col not in columns:
            raise PlanError(f"plan key '{key}' names column {short(col)}, which is not in the "
                            "data.")
    if aset.get("filter"):
        from hte_report.spec.analysis_set import filter_columns

        missing = [c for c in filter_columns(aset["filter"]) if c not in columns]
        if missing:
            raise PlanError(f"analysis_set.filter names {short(missing)}, which are not columns "
                            "of the data.")
    if frame is not None:
        from hte_report.spec.analysis_set import select

        frame, _ = select(plan.raw, frame)
        _check_values_in_data(plan, frame)


def modifier_key(plan: Plan, i: int) -> str:
    """Where the plan names its ``i``-th modifier: ``modifiers[i]``, or the key of the
    demographic template that added it (``demographics.sex``)."""
    listed = len(plan.raw.get("modifiers") or [])
    if i < listed:
        return f"modifiers[{i}]"
    demo = plan.raw.get("demographics") or {}
    name = plan.modifiers[i].variable
    kind = next((k for k in ("sex", "age", "race", "ethnicity") if demo.get(k) == name), None)
    return f"demographics.{kind}" if kind else f"modifiers[{i}]"


def _separator_hint(columns: list) -> str:
    """A file read as one column whose name holds the real names with another separator."""
    if len(columns) != 1:
        return ""
    name = str(columns[0])
    for sep, word, fix in ((";", "semicolons", "save it as comma-separated .csv"),
                           ("\t", "tabs", "give it the extension .tsv"),
                           (",", "commas", "give it the extension .csv"),
                           ("|", "bars", "save it as comma-separated .csv")):
        if sep in name:
            return (f" The data was read as one column: the file separates its fields with "
                    f"{word}; {fix}.")
    return ""


def _check_not_all_missing(plan: Plan, frame: pd.DataFrame) -> None:
    """A column the analysis needs with no value at all would fail only when fitted."""
    keys = {"outcome.variable": plan.outcome["variable"], "treatment.variable": plan.treatment}
    keys.update({f"{modifier_key(plan, i)}.variable": m.variable
                 for i, m in enumerate(plan.modifiers)})
    for key, col in keys.items():
        if col in frame.columns and not frame[col].notna().any():
            raise PlanError(f"plan key '{key}' names column {short(col)}, which has no value: "
                            f"all {len(frame)} rows are missing. Check the data export (and "
                            "the codes used for missing values).")


def _check_values_in_data(plan: Plan, frame: pd.DataFrame) -> None:
    _check_not_all_missing(plan, frame)
    tr = plan.raw["treatment"]
    rb = plan.raw.get("risk_based") or {}
    col = frame[plan.treatment]
    present = pd.unique(col.dropna())
    shown = ", ".join(short(v.item() if hasattr(v, "item") else v, 30) for v in
                      sorted(present[:50], key=lambda v: (str(type(v)), str(v)))[:10])
    if len(present) > 10:
        shown += f", ... ({len(present)} values)"
    for arm in ("treated", "control"):
        code = tr[arm]
        if not bool((col == code).any()):
            same_text = [v.item() if hasattr(v, "item") else v for v in present
                         if str(v) == str(code)]
            hint = ""
            if same_text:
                hint = (f" The data has {short(same_text[0])} as "
                        f"{'text' if isinstance(same_text[0], str) else 'a number'}, the plan "
                        f"{short(code)} as {'text' if isinstance(code, str) else 'a number'}: "
                        "write it exactly as the data codes it (quotes make YAML text).")
            if isinstance(code, bool) and any(isinstance(v, str) for v in present):
                hint = f" ({YAML_BOOLEANS}: put the code in quotes, e.g. \"yes\".)"
            raise PlanError(
                f"treatment.{arm} is {short(code)}, but column {short(plan.treatment)} has no "
                f"such value; its values are: {shown or 'none (all missing)'}.{hint} Set "
                "treatment.treated and treatment.control to the codes of the two arms.")
    other = [v for v in present if not (v == tr["treated"] or v == tr["control"])]
    if other:
        raise PlanError(
            f"column {short(plan.treatment)} has values other than treatment.treated "
            f"({short(tr['treated'])}) and treatment.control ({short(tr['control'])}): "
            f"{short([v.item() if hasattr(v, 'item') else v for v in other[:5]])}. Keep only "
            "the rows of the two compared arms in the data.")
    _check_outcome_column(plan, frame)
    if rb.get("risk_column") and rb.get("method") == "external":
        r = pd.to_numeric(frame[rb["risk_column"]], errors="coerce")
        bad = int((r.notna() & ~((r > 0) & (r < 1))).sum()) + int(
            (r.isna() & frame[rb["risk_column"]].notna()).sum())
        if bad:
            raise PlanError(f"risk_based.risk_column {short(rb['risk_column'])} must hold "
                            f"predicted risks strictly between 0 and 1; {bad} row(s) do not.")
    method = rb.get("method", "external" if rb.get("risk_column") else "pooled")
    if rb.get("planned") and rb.get("include_treatment") and method != "pooled":
        raise PlanError(f"risk_based.include_treatment applies to method 'pooled' only (the arm "
                        f"as a main effect, set to control for prediction), not {method!r}; "
                        "the risk model would fail. Remove it.")
    for i, m in enumerate(plan.modifiers):
        s = frame[m.variable]
        distinct = pd.unique(s.dropna())
        if len(distinct) == 1:
            one = distinct[0].item() if hasattr(distinct[0], "item") else distinct[0]
            raise PlanError(
                f"{modifier_key(plan, i)} {short(m.variable)} is constant in the data (every "
                f"row with a value has {short(one)}): it cannot modify the treatment effect. "
                "Check the data (and analysis_set), or remove the modifier as a deviation.")
        numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
        if m.type == "continuous" and not numeric:
            raise PlanError(
                f"{modifier_key(plan, i)} {short(m.variable)} has type continuous, but the "
                f"column holds {s.dtype} values (e.g. {short(s.dropna().head(3).tolist())}); "
                "convert it to numbers, or declare type: categorical.")
        if m.type == "binary":
            k = s.nunique(dropna=True)
            if k > 2:
                raise PlanError(
                    f"{modifier_key(plan, i)} {short(m.variable)} has type binary, but the "
                    f"column has {k} distinct values; declare type: categorical (or continuous).")
        if m.levels:
            values = {str(v) for v in pd.unique(s.dropna())}
            for v in pd.unique(s.dropna()):
                if isinstance(v, (float, np.floating)) and float(v).is_integer():
                    values.add(str(int(v)))
            unknown = [k for k in m.levels if k not in values]
            if unknown:  # unused labels change no number: a warning, not an error
                import warnings

                from hte_report.errors import HTEReportWarning

                hint = (f" ({YAML_BOOLEANS}: quote the values)"
                        if set(unknown) & {"True", "False"} else "")
                warnings.warn(
                    f"{modifier_key(plan, i)}.levels labels {short(unknown)}, which are not "
                    f"values of {short(m.variable)} in the data (values: "
                    f"{short(sorted(values)[:10])}); those labels are not used.{hint}",
                    HTEReportWarning, stacklevel=3)
        if m.direction and m.analysis == "categorical":
            when = str(m.direction["when"])
            levels = {str(v) for v in pd.unique(s.dropna())}
            numbers = set()
            for v in pd.unique(s.dropna()):
                try:
                    numbers.add(float(v))
                except (TypeError, ValueError):
                    pass
            try:
                as_number = float(when) in numbers
            except ValueError:
                as_number = False
            if when not in levels and not as_number:
                raise PlanError(
                    f"modifiers[{i}].direction.when is {short(when)}, which is not a level of "
                    f"{short(m.variable)} in the data (levels: "
                    f"{short(sorted(levels)[:10])}).")


def _check_survival_columns(plan: Plan, frame: pd.DataFrame) -> None:
    """Time numeric and >= 0; the event or censoring flag 0/1; and a warning when the flag's
    coding looks reversed (a censoring flag passed as the event indicator)."""
    import warnings

    from hte_report.errors import DataWarning

    out = plan.outcome
    t = pd.to_numeric(frame[out["variable"]], errors="coerce")
    if frame[out["variable"]].notna().sum() != t.notna().sum():
        raise PlanError(f"outcome.variable {short(out['variable'])} (the follow-up time) must "
                        "be numeric; some values are not numbers.")
    if (t.dropna() < 0).any():
        raise PlanError(f"outcome.variable {short(out['variable'])} (the follow-up time) has "
                        "negative values; times must be >= 0.")
    _check_horizons(plan, frame, t)
    key = "event" if out.get("event") else "censor"
    flag = frame[out[key]]
    if pd.api.types.is_bool_dtype(flag):
        flag = flag.astype(int)
    v = pd.to_numeric(flag, errors="coerce")
    bad = flag.notna() & ~v.isin([0, 1])
    if bad.any():
        raise PlanError(f"outcome.{key} {short(out[key])} must be coded 0/1 ("
                        + ("1 = event, 0 = censored" if key == "event" else
                           "1 = censored, 0 = event") + f"); it has "
                        f"{short(pd.unique(flag[bad])[:5].tolist())}.")
    event = (v == 1) if key == "event" else (v == 0)
    ok = v.notna() & t.notna()
    if ok.sum() >= 20 and event[ok].any() and (~event[ok]).any():
        share = float(event[ok].mean())
        t_ev, t_cens = float(t[ok & event].median()), float(t[ok & ~event].median())
        if share > 0.5 and t_ev > t_cens:
            other = "outcome.censor" if key == "event" else "outcome.event"
            warnings.warn(
                f"outcome.{key} {short(out[key])} gives {share:.0%} events, and the 'events' "
                f"have the longer follow-up (median time {t_ev:g} against {t_cens:g} for the "
                "'censored'): this is how a censoring flag read as an event indicator looks. "
                f"If 1 means censored, name the column under {other} instead.",
                DataWarning, stacklevel=3)


def _check_horizons(plan: Plan, frame: pd.DataFrame, t: pd.Series) -> None:
    """Horizons and the RMST horizon within the follow-up of both arms (the fit would refuse
    them only after the first models were fitted)."""
    out, tr = plan.outcome, plan.raw["treatment"]
    arm = frame[plan.treatment]
    last = {}
    for name in ("treated", "control"):
        times = t[(arm == tr[name]).to_numpy()].dropna()
        if len(times):
            last[name] = float(times.max())
    if not last:
        return
    name = min(last, key=last.get)
    for key, values in (("horizons", out.get("horizons") or []),
                        ("rmst_tau", [out["rmst_tau"]] if out.get("rmst_tau") else [])):
        beyond = [v for v in values if v > last[name]]
        if beyond:
            raise PlanError(f"outcome.{key} {short(beyond[0])} is beyond the follow-up of the "
                            f"{name} arm (last observed time {last[name]:g}); choose times "
                            "within the follow-up of both arms.")


def _check_outcome_column(plan: Plan, frame: pd.DataFrame) -> None:
    name, family = plan.outcome["variable"], plan.outcome["family"]
    if family == "survival":
        _check_survival_columns(plan, frame)
        return
    if family == "repeated":
        from hte_report.spec.repeated import check_repeated_columns

        check_repeated_columns(plan, frame, PlanError)
        return
    y = frame[name].dropna()
    if pd.api.types.is_bool_dtype(y):
        y = y.astype(int)
    if not pd.api.types.is_numeric_dtype(y):
        raise PlanError(
            f"outcome.variable {short(name)} holds {y.dtype} values (e.g. "
            f"{short(pd.unique(y)[:4].tolist())}), but a {family} outcome must be numeric: "
            + ("recode it to 0/1 (1 = the event)." if family == "binary" else
               "convert it to numbers (and check which values did not convert)."))
    v = y.to_numpy(dtype=float)
    if family == "binary" and len(v) and not np.isin(v, (0.0, 1.0)).all():
        other = sorted(set(v[~np.isin(v, (0.0, 1.0))].tolist()))[:5]
        raise PlanError(f"outcome.variable {short(name)} must be 0/1 for family binary; it also "
                        f"has {short(other)}. Recode it, or change outcome.family.")
    if family == "count" and len(v) and ((v < 0) | (v != np.round(v))).any():
        raise PlanError(f"outcome.variable {short(name)} must be non-negative integers for "
                        "family count.")
