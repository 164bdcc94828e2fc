"""Checks of a plan's values beyond their types (each naming the key and its line): roles that
must differ, the family's outcome keys (survival, repeated), confidence level and alpha,
modifiers' cut points and directions, the risk-based block, ratings, the analysis set and the
demographic template."""

from __future__ import annotations

import copy
import json
import math

import yaml

from hte_report.errors import PlanError, short
from hte_report.spec.analysis_set import parse_filter
from hte_report.spec.demographics import check_demographics, demographic_modifiers
from hte_report.spec.repeated import check_repeated_outcome
from hte_report.spec.surv import check_survival_outcome
from hte_report.spec.yamlfile import child_node, line_of


def check_values(raw: dict, node, where: str, locked: dict | bool | None = None
                 ) -> tuple[dict, ...]:
    """Checks of values beyond their types, each naming the key and its line.

    ``locked``: the plan as its lock record keeps it (a dict), ``True`` when the lock keeps only
    the plan's hash and the plan matches it, ``None``/``False`` for a plan without a lock (or
    not as locked). Some checks refuse values that earlier versions accepted and ran in a known
    way (``scales``, a model listed twice in ``model.models``, ``model.variance`` beside
    ``model.cluster``, ``exploratory.horizon`` for an outcome that is not a survival outcome, a
    blank modifier ``label`` or ``rationale``). For a key whose value is exactly as locked,
    such a value is not an error but a deviation: the plan is run as earlier versions ran it
    (:func:`as_run`), and the deviation is returned as ``{"key", "locked", "as_run", "note"}``
    for the report's deviation log (and warned of by ``check_plan_against_data``)."""
    deviations: list[dict] = []

    def as_locked(path: str) -> bool:
        """``path``'s value is exactly as the lock record keeps it."""
        if locked is None or locked is False:
            return False
        if locked is True:
            return True
        value, kept = value_at(raw, path), value_at(locked, path)
        return value is not _ABSENT and kept is not _ABSENT and _plain(kept) == _plain(value)

    def lenient(path: str, message: str, what: str, locked_as: str, as_run: str,
                earlier: str) -> None:
        """The error ``message``, or (for a value exactly as locked) a deviation run as earlier
        versions ran it: ``what`` is wrong with the value, ``earlier`` what they did."""
        if not as_locked(path):
            fail(path, message)
        deviations.append({
            "key": path, "locked": locked_as, "as_run": as_run,
            "note": (f"the locked plan's '{path}' {what}. Earlier versions of hte_report "
                     f"accepted it and {earlier}; the plan is run as locked, as they ran it, "
                     "and the difference is recorded in the deviation log."),
        })

    def fail(path: str, message: str):
        parts = path.replace("]", "").replace("[", ".").split(".")
        n = node
        for part in parts:
            n = child_node(n, part) if not part.isdigit() else (
                n.value[int(part)] if isinstance(n, yaml.SequenceNode)
                and int(part) < len(n.value) else None)
        raise PlanError(f"{where}: '{path}'{line_of(n) if n is not None else ''}: {message}")

    for path in ("title", "population", "trial.id", "outcome.variable", "treatment.variable",
                 "model.formula"):
        first, _, second = path.partition(".")
        value = raw[first][second] if second else raw[first]
        if not value.strip():
            fail(path, "must not be empty.")
    tr = raw["treatment"]
    if tr["treated"] == tr["control"] and type(tr["treated"]) is type(tr["control"]):
        fail("treatment.treated", f"treated and control are both {short(tr['treated'])}; they "
             "must be the two different codes of the arms in the data.")
    out = raw["outcome"]
    roles = {out["variable"]: "outcome.variable", tr["variable"]: "treatment.variable"}
    if out["variable"] == tr["variable"]:
        fail("outcome.variable", "the outcome and the treatment are the same column.")
    for i, m in enumerate(raw["modifiers"]):
        if m["variable"] in roles:
            fail(f"modifiers[{i}].variable", f"{short(m['variable'])} is the "
                 f"{roles[m['variable']].split('.')[0]}; it cannot also be an effect modifier.")
    cluster = raw["model"].get("cluster")
    if cluster in roles:
        fail("model.cluster", f"{short(cluster)} is the {roles[cluster].split('.')[0]}; "
             "clusters are groups of patients such as sites or households.")
    try:
        from hte_report.spec.options import check_models

        if out["family"] not in ("survival", "repeated"):
            check_models(raw["model"].get("models"), out["family"])
    except ValueError as exc:
        fail("model.models", str(exc))
    deviations.extend(_check_models_and_scales(raw, out["family"], fail,
                                               as_locked("scales"), lenient))
    check_survival_outcome(raw, out, fail)
    check_repeated_outcome(raw, out, fail)
    check_demographics(raw, fail)
    aset = raw.get("analysis_set") or {}
    if aset.get("filter"):
        try:
            parse_filter(aset["filter"])
        except PlanError as exc:
            fail("analysis_set.filter", str(exc))
    if out.get("exposure") and out["family"] != "count":
        fail("outcome.exposure", f"an exposure (person-time) applies to family 'count' only; "
             f"this outcome's family is {out['family']!r}. Remove outcome.exposure.")
    level = raw.get("confidence_level", 0.95)
    if not 0.5 < level < 1:
        fail("confidence_level", f"must be between 0.5 and 1 (e.g. 0.95), got {short(level)}.")
    alpha = raw.get("alpha", 0.05)
    if not 0 < alpha < 1:
        fail("alpha", f"must be between 0 and 1 (e.g. 0.05), got {short(alpha)}.")
    seed = raw.get("seed")
    if seed is not None and not 0 <= seed < 2**63:
        fail("seed", f"must be an integer from 0 to 2**63 - 1, got {short(seed)}.")
    if not raw["modifiers"] and not demographic_modifiers(raw):
        fail("modifiers", "lists no modifier; a plan pre-specifies at least one effect "
             "modifier (variable, type, rationale).")
    for i, m in enumerate(raw["modifiers"]):
        cuts = m.get("display_cutpoints") or []
        if any(b <= a for a, b in zip(cuts, cuts[1:])):
            fail(f"modifiers[{i}].display_cutpoints", f"must be strictly increasing, got "
                 f"{short(cuts)}.")
        if any(not math.isfinite(c) for c in cuts):
            fail(f"modifiers[{i}].display_cutpoints", f"must be finite numbers, got "
                 f"{short(cuts)}.")
        analysis = m.get("analysis", "continuous" if m["type"] == "continuous" else "categorical")
        if cuts and analysis != "continuous":
            fail(f"modifiers[{i}].display_cutpoints", f"display cutpoints apply to a modifier "
                 f"analysed as continuous; {short(m['variable'])} is analysed as {analysis}. "
                 "Remove display_cutpoints.")
        if m["type"] != "continuous" and analysis == "continuous":
            fail(f"modifiers[{i}].analysis", f"a {m['type']} modifier cannot be analysed as "
                 "continuous; use analysis: categorical.")
        _check_level_labels(m.get("levels"), f"modifiers[{i}].levels", fail,
                            as_locked(f"modifiers[{i}].levels"))
        for field in ("label", "rationale"):
            if isinstance(m.get(field), str) and not m[field].strip():
                lenient(f"modifiers[{i}].{field}", "must not be empty" + (
                        " (leave label out to show the variable's name)." if field == "label"
                        else ": say why the modifier was chosen."), "is blank",
                        f"{field}: {m[field]!r} (blank)",
                        f"{short(m['variable'])} (the column name)" if field == "label"
                        else BLANK_RATIONALE,
                        f"showed a blank {field}; the report shows "
                        + (f"the column name {short(m['variable'])} instead" if field == "label"
                           else f"the rationale as {BLANK_RATIONALE!r}"))
        d = m.get("direction")
        if d:
            when = str(d["when"])
            if analysis == "continuous" and when not in ("higher", "lower"):
                fail(f"modifiers[{i}].direction.when", f"for a continuous analysis say 'higher' "
                     f"or 'lower', got {short(d['when'])}.")
            if analysis == "categorical" and when in ("higher", "lower"):
                fail(f"modifiers[{i}].direction.when", f"for a categorical analysis name a level "
                     f"of {short(m['variable'])} (e.g. \"0\"), not {when!r}.")
    rb = raw.get("risk_based") or {}
    cuts = rb.get("cutpoints")
    if cuts is not None and (not cuts or any(not 0 < c < 1 for c in cuts)
                             or any(b <= a for a, b in zip(cuts, cuts[1:]))):
        fail("risk_based.cutpoints", f"must be strictly increasing risks in (0, 1), got "
             f"{short(cuts)}.")
    for key, top in (("groups", 100), ("crossfit_folds", 100)):
        if rb.get(key) is not None and not 2 <= rb[key] <= top:
            fail(f"risk_based.{key}", f"must be an integer from 2 to {top}, got "
                 f"{short(rb[key])}.")
    _check_exploratory(raw, fail, lenient)
    _check_confounders(raw, fail)
    ps = raw.get("propensity") or {}
    if raw["trial"].get("design") == "observational" and not raw.get("confounders"):
        fail("confounders", "an observational plan (trial.design: observational) must name "
             "its confounders: the variables adjusted for in the propensity and outcome models.")
    if (raw.get("confounders") or ps) and raw["trial"].get("design") != "observational":
        fail("trial.design", "confounders and propensity apply to trial.design: observational.")
    if ps.get("trim") is not None and ps["trim"] != "crump" and not (
            isinstance(ps["trim"], (int, float)) and not isinstance(ps["trim"], bool)
            and 0 < ps["trim"] < 0.5):
        fail("propensity.trim", f"must be 'crump' or a number in (0, 0.5), got "
             f"{short(ps['trim'])}.")
    if ps.get("threshold") is not None and not 0 < ps["threshold"] < 0.5:
        fail("propensity.threshold", f"must be in (0, 0.5), got {short(ps['threshold'])}.")
    if rb.get("method") == "external" and not rb.get("risk_column"):
        fail("risk_based.method", "method 'external' needs risk_based.risk_column (the column "
             "of predicted risks).")
    names = {m["variable"] for m in [*raw["modifiers"], *demographic_modifiers(raw)]}
    seen, agreed = set(), set()
    for i, c in enumerate(raw.get("credibility") or []):
        if c["modifier"] not in names:
            fail(f"credibility[{i}].modifier", f"{short(c['modifier'])} is not a pre-specified "
                 f"modifier ({sorted(names)}).")
        key = (c["modifier"], c["scale"], c.get("assessor"), bool(c.get("reconciled")))
        if key in seen:
            fail(f"credibility[{i}]", f"a second rating of {short(c['modifier'])} on the "
                 f"{c['scale']} scale by the same assessor; give each assessor's rating once "
                 "(and the agreed one with reconciled: true).")
        seen.add(key)
        if c.get("reconciled"):
            if (c["modifier"], c["scale"]) in agreed:
                fail(f"credibility[{i}].reconciled", "only one reconciled rating per modifier "
                     "and scale.")
            agreed.add((c["modifier"], c["scale"]))
    return tuple(deviations)


#: the rationale shown for a locked plan's blank ``rationale`` (run as locked)
BLANK_RATIONALE = "not recorded"
_ABSENT = object()


def _plain(value: object) -> object:
    """``value`` as the lock record keeps it (JSON: mapping keys are text)."""
    return json.loads(json.dumps(value, default=str))


def value_at(raw: object, path: str) -> object:
    """The value at a key path such as ``modifiers[0].label`` (``_ABSENT`` if there is none)."""
    value = raw
    for part in path.replace("]", "").replace("[", ".").split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _ABSENT
    return value


def as_run(raw: dict, deviations: tuple[dict, ...]) -> dict:
    """The plan as it is run when ``deviations`` (of :func:`check_values`, for a locked plan)
    are run as earlier versions ran them: each model once, ``model.variance`` dropped beside
    ``model.cluster``, ``exploratory.horizon`` dropped for an outcome that is not a survival
    outcome, a blank label left out (the column name is shown) and a blank rationale
    ``"not recorded"``. ``raw`` itself (the plan as written and locked) is not changed."""
    if not any(d["key"] != "scales" for d in deviations):
        return raw
    run = copy.deepcopy(raw)
    for d in deviations:
        key = d["key"]
        if key == "model.models":
            run["model"]["models"] = list(dict.fromkeys(run["model"]["models"]))
        elif key == "model.variance":
            del run["model"]["variance"]
        elif key == "exploratory.horizon":
            del run["exploratory"]["horizon"]
        elif key.startswith("modifiers["):
            i = int(key[len("modifiers["):key.index("]")])
            if key.endswith(".label"):
                del run["modifiers"][i]["label"]
            else:
                run["modifiers"][i]["rationale"] = BLANK_RATIONALE
    return run


#: The scales each outcome family's report shows (every one of them, always).
_FAMILY_SCALES = {"continuous": ("absolute",), "repeated": ("absolute",),
                  "binary": ("absolute", "relative"), "count": ("absolute", "relative"),
                  "survival": ("absolute", "relative")}


def _check_models_and_scales(raw: dict, family: str, fail, locked_scales: bool = False,
                             lenient=None) -> tuple[dict, ...]:
    """``model.models`` and ``scales`` name each entry once; ``scales`` lists the scales the
    report shows for the family (it cannot leave one out or add one the family does not have:
    that would be dropped silently); a model-based variance is not asked of a working model
    that needs a robust one; ``model.variance`` and ``model.cluster`` are not both given.

    ``scales`` was ignored by earlier versions, so a locked plan may list other scales: it is
    run as locked (every scale of the family shown) and the difference returned as a deviation
    rather than refused (``locked_scales``). ``lenient`` (of :func:`check_values`) does the
    same for a model listed twice (fitted once) and ``model.variance`` beside ``model.cluster``
    (the cluster-robust variance), as locked."""
    from hte_report.spec.options import DEFAULT_MODELS, MODELS

    model = raw["model"]
    horizons = raw["outcome"].get("horizons")
    if horizons is not None and not horizons:
        fail("outcome.horizons", "lists no time; give the times of the survival differences "
             "(e.g. horizons: [365]), or leave horizons out.")
    for key, values in (("model.models", model.get("models")), ("scales", raw.get("scales")),
                        ("outcome.horizons", horizons)):
        twice = sorted({v for v in values or [] if values.count(v) > 1})
        if twice and key == "model.models" and lenient is not None:
            once = list(dict.fromkeys(values))
            lenient(key, f"lists {short(twice[0])} more than once; name each entry once.",
                    f"lists {short(twice[0])} more than once", f"[{', '.join(values)}]",
                    ", ".join(once) + " (each fitted once)", "fitted each model once")
        elif twice and not (key == "scales" and locked_scales):
            fail(key, f"lists {short(twice[0])} more than once; name each entry once.")
    deviations: tuple[dict, ...] = ()
    scales = raw.get("scales")
    shown = _FAMILY_SCALES.get(family)
    if scales is not None and shown is not None and (
            sorted(scales) != sorted(shown) or len(set(scales)) != len(scales)):
        what = ("both the absolute and the relative scale (neither can be left out)"
                if len(shown) > 1 else f"the absolute scale only (a {family} outcome has no "
                "relative scale)")
        if not locked_scales:
            fail("scales", f"the report of a {family} outcome shows {what}; got "
                 f"{short(scales)}. Write scales: [{', '.join(shown)}], or leave scales out.")
        missing = [x for x in dict.fromkeys(scales) if x not in shown]
        deviations = ({
            "key": "scales", "locked": f"[{', '.join(scales)}]", "as_run": ", ".join(shown),
            "note": (f"the locked plan lists scales: [{', '.join(scales)}], but the report of a "
                     f"{family} outcome shows {what}"
                     + (f"; the {' and '.join(missing)} scale the plan lists is not produced"
                        if missing else "")
                     + ". Earlier versions of hte_report ignored this key; the plan is run as "
                     "locked and the difference is recorded in the deviation log."),
        },)
    if model.get("variance") is not None and model.get("cluster"):
        message = (f"model.cluster ({short(model['cluster'])}) gives a cluster-robust "
                   f"variance, which replaces model.variance ({short(model['variance'])}); give "
                   "one of them.")
        if lenient is None:
            fail("model.variance", message)
        lenient("model.variance", message, f"({short(model['variance'])}) is given beside "
                f"model.cluster ({short(model['cluster'])}), whose cluster-robust variance "
                "replaces it", f"variance: {model['variance']}, cluster: {model['cluster']}",
                f"cluster-robust variance (clusters: {model['cluster']}); model.variance not "
                "used", f"used the cluster-robust variance and did not use model.variance "
                f"({model['variance']})")
    if model.get("variance") == "model" and family in DEFAULT_MODELS:
        models = model.get("models") or DEFAULT_MODELS[family]
        robust = [m for m in models if m in MODELS and MODELS[m].robust_only]
        if robust:
            given = "" if model.get("models") else " (one of the default models)"
            fail("model.variance", f"a model-based variance is invalid for {robust[0]}"
                 f"{given}: it needs a robust variance (Zou 2004). Use HC0..HC3, or leave "
                 "model.variance out for each model's default.")
    return deviations


def _check_level_labels(levels: dict | None, key: str, fail, locked: bool = False) -> None:
    """Value labels of a modifier: one label per value (``0`` and ``"0"`` are the same value)
    and a different label for each value (the report would show two levels alike).

    Refused even as locked (``locked``): a report with two subgroups under one name cannot be
    read, and of two labels for one value none is the one the plan chose. The message then
    says how to amend the plan (a label is presentation, so the analysis is unchanged)."""
    if not levels:
        return
    amend = (" The plan is locked and earlier versions of hte_report accepted it, but a report "
             "run this way would be ambiguous, so it is refused: amend the plan (give each value "
             "its own label; a label changes how a subgroup is named, not the analysis), record "
             "the amendment under 'deviations', and re-lock with 'hte-report lock --force' (or "
             "run with --allow-modified, which lists the change in the deviation log)."
             if locked else "")
    by_text: dict[str, object] = {}
    for value in levels:
        text = level_key(value)
        if text in by_text:
            fail(key, f"labels the value {text!r} twice ({short(by_text[text])} and "
                 f"{short(value)}); give each value one label.{amend}")
        by_text[text] = value
    seen: dict[str, str] = {}
    for value, label in levels.items():
        if label in seen:
            fail(key, f"gives the label {short(label)} to two values ({seen[label]!r} and "
                 f"{level_key(value)!r}); the report could not tell those subgroups apart. Give "
                 f"each value its own label.{amend}")
        seen[label] = level_key(value)


#: exploratory (causal forest) settings: the smallest and largest value allowed
_FOREST_LIMITS = {"n_trees": (4, 100_000), "min_leaf": (1, 100_000), "n_folds": (2, 100),
                  "n_groups": (2, 100), "n_bootstrap": (2, 100_000),
                  "nuisance_trees": (1, 100_000), "crossfit_trees": (4, 100_000)}


def _check_exploratory(raw: dict, fail, lenient=None) -> None:
    """The causal forest's settings in ``exploratory``, checked when the plan is read (the
    report would otherwise say only then that the planned analysis failed)."""
    ex = raw.get("exploratory") or {}
    if not ex:
        return
    for key, (low, high) in _FOREST_LIMITS.items():
        if ex.get(key) is not None and not low <= ex[key] <= high:
            fail(f"exploratory.{key}", f"must be an integer from {low} to {high:,}, got "
                 f"{short(ex[key])}.")
    jobs = ex.get("n_jobs")
    if jobs is not None and not (jobs == -1 or 1 <= jobs <= 1024):
        fail("exploratory.n_jobs", f"must be a number of threads from 1 (or -1: all cores), "
             f"got {short(jobs)}.")
    if ex.get("max_samples") is not None and not 0 < ex["max_samples"] < 0.5:
        fail("exploratory.max_samples", f"must be in (0, 0.5) for an honest forest (the share "
             f"of patients each tree sees), got {short(ex['max_samples'])}.")
    design = ex.get("design", raw["trial"].get("design", "randomized"))
    if ex.get("propensity") is not None:
        if design == "observational":
            fail("exploratory.propensity", "is the known allocation probability of a "
                 "randomized trial; an observational design estimates it. Remove it.")
        if not 0 < ex["propensity"] < 1:
            fail("exploratory.propensity", f"must be a probability strictly between 0 and 1, "
                 f"got {short(ex['propensity'])}.")
    family = raw["outcome"]["family"]
    if ex.get("horizon") is not None:
        if family != "survival":
            message = (f"the RMST horizon applies to a survival outcome only; this outcome's "
                       f"family is {family!r}. Remove exploratory.horizon.")
            if lenient is None:
                fail("exploratory.horizon", message)
            lenient("exploratory.horizon", message, f"({short(ex['horizon'])}) is an RMST "
                    f"horizon, which applies to a survival outcome only; this outcome's family "
                    f"is {family!r}", f"horizon: {short(ex['horizon'])}",
                    f"not used (a {family} outcome has no RMST horizon)", "ignored it")
            return
        if ex["horizon"] <= 0:
            fail("exploratory.horizon", f"must be a positive time, got {short(ex['horizon'])}.")


def _check_confounders(raw: dict, fail) -> None:
    """Confounders name each term once and are neither the outcome nor the treatment; the
    propensity formula is a right-hand side (its left-hand side, if any, is the treatment)."""
    conf = [str(c).strip() for c in raw.get("confounders") or []]
    roles = {raw["outcome"]["variable"]: "the outcome", raw["treatment"]["variable"]:
             "the treatment"}
    for i, c in enumerate(conf):
        if c in roles:
            fail(f"confounders[{i}]", f"{short(c)} is {roles[c]}; confounders are the "
                 "variables adjusted for (measured before treatment). Remove it.")
        if c in conf[:i]:
            fail(f"confounders[{i}]", f"{short(c)} is listed twice; name each confounder once.")
    formula = (raw.get("propensity") or {}).get("formula")
    if formula and "~" in formula:
        lhs = formula.split("~", 1)[0].strip()
        if lhs and lhs != raw["treatment"]["variable"]:
            fail("propensity.formula", f"is the right-hand side of the propensity model (e.g. "
                 f"'~ age + sex'): the model predicts the treatment "
                 f"{short(raw['treatment']['variable'])}, but the formula's left-hand side is "
                 f"{short(lhs)}. Remove it.")


def level_key(value: object) -> str:
    """A value label's key as text, as the data's levels are compared: a whole number written
    as a float in YAML (``1.0``) is the level ``1``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
