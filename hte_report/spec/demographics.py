"""The demographic subgroup template of a plan (``demographics:``).

Diversity action plans (FDORA 2022, sections 3601-3603) ask for results by age group, sex, and
race and ethnicity. One plan block names the columns::

    demographics:
      sex: SEX
      age: AGE
      age_groups: [65, 75]     # display categories of the continuous age analysis
      race: RACE
      ethnicity: ETHNIC

Each named column becomes a pre-specified modifier with ``role: key`` (a subgroup for
consistency) unless the plan already lists it under ``modifiers`` (then that entry, with its own
rationale, is used). Sex, race and ethnicity are analysed as categorical; age as continuous,
shown in ``age_groups``. The plan's formula gets the matching treatment interactions (and, for
repeated measures, the treatment-by-time-by-modifier terms); the report shows the formula
actually fitted and the plan as written.
"""

from __future__ import annotations

DEMOGRAPHICS = {
    "sex": ("str", False, None),
    "age": ("str", False, None),
    "age_groups": ("list[num]", False, None),
    "race": ("str", False, None),
    "ethnicity": ("str", False, None),
}

_LABELS = {"sex": "Sex", "age": "Age (years)", "race": "Race", "ethnicity": "Ethnicity"}


def demographic_modifiers(raw: dict) -> list[dict]:
    """Modifier entries (as in ``modifiers:``) for the template's columns the plan does not
    already list, in the order sex, age, race, ethnicity."""
    demo = raw.get("demographics") or {}
    listed = {m["variable"] for m in raw.get("modifiers") or []}
    out = []
    for kind in ("sex", "age", "race", "ethnicity"):
        col = demo.get(kind)
        if not col or col in listed:
            continue
        entry = {"variable": col, "label": _LABELS[kind], "role": "key",
                 "type": "continuous" if kind == "age" else "categorical",
                 "rationale": f"Demographic subgroup ({kind}) from the plan's demographic "
                              "template: consistency of the treatment effect across "
                              f"{_LABELS[kind].split(' (')[0].lower()} (FDORA 2022 diversity "
                              "action plans); no direction hypothesized."}
        if kind == "age":
            entry["analysis"] = "continuous"
            if demo.get("age_groups"):
                entry["display_cutpoints"] = list(demo["age_groups"])
        out.append(entry)
    return out


def check_demographics(raw: dict, fail) -> None:
    demo = raw.get("demographics") or {}
    if demo.get("age_groups") and not demo.get("age"):
        fail("demographics.age_groups", "age groups need demographics.age (the age column).")
    cuts = demo.get("age_groups") or []
    if any(b <= a for a, b in zip(cuts, cuts[1:])):
        fail("demographics.age_groups", f"must be strictly increasing, got {cuts}.")
    cols = [demo[k] for k in ("sex", "age", "race", "ethnicity") if demo.get(k)]
    if len(set(cols)) < len(cols):
        fail("demographics", "names the same column for two characteristics.")
    roles = {raw["outcome"]["variable"]: "the outcome", raw["treatment"]["variable"]:
             "the treatment"}
    for k in ("sex", "age", "race", "ethnicity"):
        if demo.get(k) in roles:
            fail(f"demographics.{k}", f"{demo[k]!r} is {roles[demo[k]]}; name the "
                 f"{k} column.")


def formula_with(formula: str, raw: dict, added: list[dict]) -> str:
    """``formula`` with the treatment interactions of the template's added modifiers."""
    if not added:
        return formula
    from hte_report.spec.formula import quote_name

    trt = quote_name(raw["treatment"]["variable"])
    out = raw["outcome"]
    extra = []
    import re

    rhs = formula.split("~", 1)[-1]
    for m in added:
        name = quote_name(m["variable"])
        term = f"C({name})" if m["type"] != "continuous" and name == m["variable"] else name
        present = re.search(rf"(?<![\w.(]){re.escape(name)}(?![\w.(])", rhs) or \
            f"C({name})" in rhs
        if present and f"C({name})" not in rhs:
            term = name  # already an adjustment term as written: interact it as written
        main = "" if present else f"{term} + "
        if out["family"] == "repeated":
            time = quote_name(out["time"])
            extra.append(f"{main}{trt}:{term} + {time}:{term} + {trt}:{time}:{term}")
        else:
            extra.append(f"{main}{trt}:{term}")
    return f"{formula} + " + " + ".join(extra)
