"""The pre-registered analysis plan: schema, validation, locking and verification.

A plan is YAML with a versioned schema (``schema: hte-plan/1``). Validation reports the key path
and the line of every problem; unknown keys, duplicate keys and YAML anchors/aliases are errors.
Locking writes a record with the SHA-256 of a canonical serialization (sorted-key JSON of the
parsed plan), a UTC timestamp and a statement, sealed by a hash over the record itself; every
report states whether the plan still matches its lock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from hte_report.core.inference import MULTIPLICITY_METHODS
from hte_report.errors import FormulaError, PlanError
from hte_report.spec.analysis_set import ANALYSIS_SET
from hte_report.spec.demographics import (
    DEMOGRAPHICS,
    demographic_modifiers,
    formula_with,
)
from hte_report.spec.formula import check_formula_safety, short
from hte_report.spec.lock import (
    SCHEMA_VERSION,
    LockRecord,
    lock_path,
    plan_hash,
    read_lock,
)
from hte_report.spec.options import MODELS
from hte_report.spec.plan_values import as_run, check_values, level_key
from hte_report.spec.repeated import (
    CORRELATIONS,
    ESTIMANDS,
    RANDOM,
    REPEATED_MODELS,
)
from hte_report.spec.yamlfile import (
    child_node,
    key_text,
    kind_of,
    line_of,
    parse_yaml,
    read_text,
)

ANSWERS = ("definitely no", "probably no or unclear", "probably yes", "definitely yes")
RATINGS = ("very low", "low", "moderate", "high")

# key -> (type(s), required, sub-schema or allowed values). Types: str, num, int, bool, list, map
_DIRECTION = {
    "statement": ("str", True, None),
    "benefit": ("str", True, ("larger", "smaller")),
    "when": ("str", True, None),  # "higher" / "lower" for continuous, a level for categorical
    "scale": ("str", False, ("absolute", "relative", "both")),
}
_PRIOR = {
    "support": ("str", True, ANSWERS),
    "summary": ("str", False, None),
    "citations": ("list[str]", False, None),
}
_MODIFIER = {
    "variable": ("str", True, None),
    "label": ("str", False, None),
    "type": ("str", True, ("continuous", "categorical", "binary")),
    "analysis": ("str", False, ("continuous", "categorical")),
    "display_cutpoints": ("list[num]", False, None),
    "levels": ("labels", False, None),  # value labels of a categorical modifier: {0: "No"}
    "direction": ("map", False, _DIRECTION),
    "rationale": ("str", True, None),
    "prior_evidence": ("map", False, _PRIOR),
    "related_outcomes": ("list[str]", False, None),
    # EMA/CHMP/539146/2013: heterogeneity expected at design / key subgroup for consistency /
    # exploratory; and whether randomization was stratified by it (a Sun 2012 criterion)
    "role": ("str", False, ("design", "key", "exploratory")),
    "stratification_factor": ("bool", False, None),
}
_CREDIBILITY = {
    "modifier": ("str", True, None),
    "scale": ("str", True, ("absolute", "relative")),
    "rating": ("str", True, RATINGS),
    "rationale": ("str", True, None),
    "assessor": ("str", False, None),
    "reconciled": ("bool", False, None),  # the agreed rating of two (or more) assessors
}
_ESTIMAND = {
    # ICH E9(R1): how intercurrent events are handled (treatment policy, hypothetical,
    # composite, while on treatment, principal stratum) and any words the plan adds
    "strategy": ("str", False, ("treatment policy", "hypothetical", "composite",
                                "while on treatment", "principal stratum")),
    "intercurrent_events": ("str", False, None),
}
_SCHEMA = {
    "schema": ("str", True, (SCHEMA_VERSION,)),
    "title": ("str", True, None),
    "trial": ("map", True, {
        "id": ("str", True, None),
        "registry": ("str", False, None),
        "name": ("str", False, None),
        "design": ("str", False, ("randomized", "observational")),
        "citation": ("str", False, None),
    }),
    "population": ("str", True, None),
    "outcome": ("map", True, {
        "variable": ("str", True, None),
        "label": ("str", False, None),
        "family": ("str", True, ("continuous", "binary", "count", "survival", "repeated")),
        "time_point": ("str", False, None),
        "higher_is_better": ("bool", False, None),
        "exposure": ("str", False, None),
        # survival: `variable` is the follow-up time; exactly one of `event` (1 = event) or
        # `censor` (an ADaM-style flag such as CNSR: 1 = censored, 0 = event)
        "event": ("str", False, None),
        "censor": ("str", False, None),
        "time_unit": ("str", False, None),
        "horizons": ("list[num]", False, None),
        "rmst_tau": ("num", False, None),
        "ties": ("str", False, ("efron", "breslow")),
        # repeated: `variable` is the repeated measure; `subject` the patient identifier,
        # `time` the numeric visit time; the estimand is the effect on the slope or at a
        # landmark time (spec/repeated.py)
        "subject": ("str", False, None),
        "time": ("str", False, None),
        "estimand": ("str", False, ESTIMANDS),
        "landmark": ("num", False, None),
    }),
    "treatment": ("map", True, {
        "variable": ("str", True, None),
        "treated": ("scalar", True, None),
        "control": ("scalar", True, None),
        "treated_label": ("str", False, None),
        "control_label": ("str", False, None),
    }),
    "model": ("map", True, {
        "formula": ("str", True, None),
        "models": ("list[str]", False, tuple(MODELS) + REPEATED_MODELS),
        "variance": ("str", False, ("model", "HC0", "HC1", "HC2", "HC3")),
        "cluster": ("str", False, None),
        "random": ("str", False, RANDOM),              # repeated: lmm random effects
        "correlation": ("str", False, CORRELATIONS),   # repeated: GEE working correlation
        "method": ("str", False, ("reml", "ml")),     # repeated: lmm estimation
    }),
    "analysis": ("map", False, {
        "strategy": ("str", False, ("one-at-a-time", "joint", "within-subgroup")),
        "overall": ("str", False, ("adjusted", "unadjusted")),
    }),
    "scales": ("list[str]", False, ("absolute", "relative")),
    "confidence_level": ("num", False, None),
    "alpha": ("num", False, None),
    "multiplicity": ("str", False, MULTIPLICITY_METHODS),  # every method of R's p.adjust
    "seed": ("int", False, None),
    "modifiers": ("list[map]", True, _MODIFIER),
    "estimand": ("map", False, _ESTIMAND),
    "demographics": ("map", False, DEMOGRAPHICS),  # spec/demographics.py
    "analysis_set": ("map", False, ANALYSIS_SET),  # spec/analysis_set.py
    # exploratory machine-learning CATE (hte_report.explore; a causal forest), labelled
    # exploratory in its own multiplicity family; seeded by the plan's `seed`
    "exploratory": ("map", False, {
        "planned": ("bool", True, None),
        "method": ("str", False, ("causal_forest",)),
        "covariates": ("list[str]", False, None),
        "modifiers": ("list[str]", False, None),
        "design": ("str", False, ("randomized", "observational")),
        "propensity": ("num", False, None),
        "horizon": ("num", False, None),
        "n_trees": ("int", False, None),
        "min_leaf": ("int", False, None),
        "max_samples": ("num", False, None),
        "n_folds": ("int", False, None),
        "n_groups": ("int", False, None),
        "n_bootstrap": ("int", False, None),
        "nuisance_trees": ("int", False, None),
        "crossfit_trees": ("int", False, None),
        "n_jobs": ("int", False, None),
    }),
    "risk_based": ("map", False, {
        "planned": ("bool", True, None),
        "formula": ("str", False, None),          # outcome ~ covariates, without treatment
        "method": ("str", False, ("pooled", "control-arm", "external")),
        "include_treatment": ("bool", False, None),
        "risk_column": ("str", False, None),      # external predicted risks in (0, 1)
        "cutpoints": ("list[num]", False, None),
        "groups": ("int", False, None),
        "crossfit_folds": ("int", False, None),   # seeded by the plan's `seed`
    }),
    "credibility": ("list[map]", False, _CREDIBILITY),
    "deviations": ("list[str]", False, None),
    # trial.design: observational (issue 17): the confounders (columns or formula terms,
    # adjusted for in the propensity and outcome models; a modifier may also be one) and the
    # propensity model (right-hand side, default the confounders), Crump trimming ("crump" or
    # alpha) and the positivity threshold (default 0.05)
    "confounders": ("list[str]", False, None),
    "propensity": ("map", False, {
        "formula": ("str", False, None),
        "trim": ("scalar", False, None),
        "threshold": ("num", False, None),
    }),
}


@dataclass(frozen=True)
class Modifier:
    variable: str
    label: str
    type: str
    analysis: str
    rationale: str
    display_cutpoints: tuple[float, ...] = ()
    direction: dict | None = None
    prior_evidence: dict | None = None
    related_outcomes: tuple[str, ...] = ()
    levels: dict | None = None
    role: str | None = None
    stratification_factor: bool | None = None


@dataclass(frozen=True)
class Plan:
    """A validated analysis plan. ``raw`` is the parsed YAML; ``path`` where it came from."""

    raw: dict
    path: str | None = None
    lock: LockRecord | None = None
    modifiers: tuple[Modifier, ...] = field(default=())
    #: departures of a locked plan that are run rather than refused (values earlier versions
    #: accepted, such as a ``scales`` key they ignored or a model listed twice):
    #: ``{"key", "locked", "as_run", "note"}``, for the deviation log
    deviations_found: tuple[dict, ...] = field(default=())
    #: the plan as written and locked, when ``raw`` (the plan as run) differs from it because
    #: of ``deviations_found``; hashed, compared with the lock and shown in the appendix
    written: dict | None = field(default=None)

    # ------------------------------------------------------------- accessors
    @property
    def title(self) -> str:
        return self.raw["title"]

    @property
    def formula(self) -> str:
        """The formula fitted: ``model.formula`` plus the treatment interactions of the
        demographic template's modifiers (``demographics:``) it does not already name."""
        return formula_with(self.raw["model"]["formula"], self.raw,
                            demographic_modifiers(self.raw))

    @property
    def treatment(self) -> str:
        return self.raw["treatment"]["variable"]

    @property
    def outcome(self) -> dict:
        return self.raw["outcome"]

    @property
    def conf_level(self) -> float:
        return float(self.raw.get("confidence_level", 0.95))

    @property
    def alpha(self) -> float:
        return float(self.raw.get("alpha", 0.05))

    @property
    def multiplicity(self) -> str:
        return self.raw.get("multiplicity", "holm")

    @property
    def strategy(self) -> str:
        """How subgroup rows are analysed (``analysis.strategy``; default one-at-a-time)."""
        return (self.raw.get("analysis") or {}).get("strategy", "one-at-a-time")

    @property
    def overall_analysis(self) -> str:
        """The primary analysis of the overall row (``analysis.overall``; default adjusted)."""
        return (self.raw.get("analysis") or {}).get("overall", "adjusted")

    @property
    def display_cutpoints(self) -> dict[str, list[float]]:
        """Display categories of continuous modifiers, as ``fit(display_cutpoints=...)``."""
        return {m.variable: [float(c) for c in m.display_cutpoints] for m in self.modifiers
                if m.display_cutpoints}

    @property
    def seed(self) -> int | None:
        return self.raw.get("seed")

    @property
    def labels(self) -> dict[str, str]:
        return {m.variable: m.label for m in self.modifiers}

    @property
    def level_labels(self) -> dict[str, dict[str, str]]:
        return {m.variable: m.levels for m in self.modifiers if m.levels}

    def modifier(self, name: str) -> Modifier | None:
        return next((m for m in self.modifiers if m.variable == name), None)

    # ------------------------------------------------------------- hashing and locking
    @property
    def as_written(self) -> dict:
        """The plan as written (and locked): ``raw`` unless deviations of a locked plan are run
        as earlier versions ran them (``deviations_found``)."""
        return self.raw if self.written is None else self.written

    @property
    def sha256(self) -> str:
        return plan_hash(self.as_written)

    def lock_status(self) -> str:
        """``"matches"``, ``"modified"`` (the plan, or the lock record itself, was edited after
        locking) or ``"unlocked"``."""
        if self.lock is None:
            return "unlocked"
        return "modified" if self.lock_problem() else "matches"

    def lock_problem(self) -> str | None:
        """Why the plan does not verify against its lock record, in words; None when it does
        (or when there is no lock)."""
        if self.lock is None:
            return None
        where = lock_path(self.path) if self.path else "the lock record"
        if self.lock.record_status == "edited":
            return (f"{where} was edited after it was written: its record hash does not match "
                    "its fields (plan hash, locked_at, statement), so its lock time and "
                    "statement cannot be trusted. Restore it from version control, or re-lock "
                    "with 'hte-report lock --force' (a deviation: the new lock time is now).")
        if self.lock.plan_sha256 != self.sha256:
            return (f"the plan was modified after it was locked (locked {self.lock.locked_at} "
                    f"with SHA-256 {self.lock.plan_sha256[:16]}…; it is now "
                    f"{self.sha256[:16]}…). Editing a locked plan is a deviation: record it "
                    "under 'deviations' and either re-lock with 'hte-report lock --force' or "
                    "accept it explicitly (hte-report check --allow-modified).")
        return None

    def lock_note(self) -> str | None:
        """A caution that does not make the lock fail: an old lock file without record hash."""
        if self.lock is not None and self.lock.record_status == "legacy":
            return ("the lock file has no record hash (written by an older hte_report): the "
                    "plan matches it, but its locked_at and statement are not protected "
                    "against edits. Re-lock with 'hte-report lock --force' to seal them (this "
                    "records the time of re-locking).")
        return None

    def locked(self, statement: str = "", when: datetime | None = None) -> LockRecord:
        """A lock record for this plan as it is now."""
        when = when or datetime.now(timezone.utc)
        return LockRecord.create(self.sha256, when.strftime("%Y-%m-%dT%H:%M:%SZ"), statement,
                                 plan=self.as_written)


def lock_plan(path: str | Path, statement: str = "", force: bool = False,
              encoding: str = "utf-8") -> LockRecord:
    """Validate the plan at ``path`` and write ``<plan>.lock.json`` beside it.

    Refuses to overwrite an existing lock whose hash differs, or whose record was edited,
    unless ``force`` (re-locking an edited plan is a deviation and must be deliberate).
    """
    if not isinstance(statement, str) or len(statement) > 10_000:
        raise PlanError("the lock statement must be a text of at most 10,000 characters.")
    if not isinstance(force, bool):
        raise PlanError(f"force= must be True or False, got {short(force)}: re-locking an edited "
                        "plan is a deliberate step.")
    plan = load_plan(path, encoding=encoding)
    target = lock_path(path)
    if target.exists() and not force:
        old = plan.lock if plan.lock is not None else read_lock(target)
        if old.record_status == "edited":
            raise PlanError(f"{target} was edited after it was written (its record hash does "
                            "not match its fields). Restore it from version control, or "
                            "re-lock with --force if that is really intended.")
        if old.plan_sha256 == plan.sha256:
            return old
        raise PlanError(
            f"{target} already locks a different version of this plan (locked {old.locked_at}). "
            "Editing a locked plan is a deviation: record it under 'deviations' and re-lock with "
            "--force if that is really intended."
        )
    rec = plan.locked(statement)
    try:
        target.write_text(rec.to_json(), encoding="utf-8")
    except OSError as exc:
        raise PlanError(f"cannot write the lock file {target}: {exc.strerror or exc}.") from None
    return rec


def load_plan(source: str | Path | dict, encoding: str = "utf-8") -> Plan:
    """Read and validate a plan from a YAML file (or an already-parsed dict).

    Errors name the key path, the line, what was expected and what was found. ``encoding``:
    of the plan file (UTF-8 unless said otherwise).
    """
    path = None
    if isinstance(source, dict):
        raw, node = source, None
    elif isinstance(source, (str, Path)):
        if isinstance(source, str) and ("\n" in source or len(source) > 4096):
            raise PlanError(f"load_plan() takes the path of a plan file (or a parsed mapping); "
                            f"got text of {source.count(chr(10)) + 1} lines, "
                            f"{short(source, 40)}. Save the plan to a .yaml file and pass its "
                            "path.")
        path = Path(source)
        if not path.exists():
            raise PlanError(f"plan file {str(path)!r} does not exist.")
        text = read_text(path, "plan file", encoding, "--plan-encoding")
        node, raw = parse_yaml(text, str(path))
    else:
        raise PlanError(f"a plan is a YAML file path or a dict, got {type(source).__name__}.")
    where = str(path or "plan")
    if not isinstance(raw, dict):
        what = "empty" if raw is None else f"a YAML {kind_of(raw)}"
        raise PlanError(f"{where}: the plan must be a YAML mapping of keys (schema, title, "
                        f"trial, ...), but the file is {what}. See examples/rossi/plan.yaml.")
    _validate(raw, node, _SCHEMA, "", where)
    lock = None
    if path is not None and lock_path(path).exists():
        lock = read_lock(lock_path(path))
    # values as locked (the lock keeps the plan, or only its hash and the plan matches it): keys
    # earlier versions accepted and ran in a known way are run that way, as recorded deviations
    locked: dict | bool | None = None
    if lock is not None and lock.record_status != "edited":
        locked = lock.plan if lock.plan is not None else lock.plan_sha256 == plan_hash(raw)
    found = check_values(raw, node, where, locked)
    written, raw = raw, as_run(raw, found)
    rb = raw.get("risk_based") or {}
    survival = raw["outcome"]["family"] == "survival"
    for key, formula in (("model.formula", raw["model"]["formula"]),
                         ("risk_based.formula", rb.get("formula")),
                         ("propensity.formula", (raw.get("propensity") or {}).get("formula")
                          and f"{raw['treatment']['variable']} ~ "
                          f"{raw['propensity']['formula'].split('~')[-1]}"),
                         ("confounders", raw.get("confounders") and "y ~ " + " + ".join(
                             str(c) for c in raw["confounders"]))):
        if formula:
            try:
                if survival and key == "model.formula":
                    from hte_report.spec.surv import check_surv_formula_safety

                    check_surv_formula_safety(formula)
                else:
                    if key == "model.formula" and formula.split("~")[0].strip().startswith(
                            "Surv("):
                        raise FormulaError(
                            f"a Surv(time, event) outcome is a survival outcome, but "
                            f"outcome.family is {raw['outcome']['family']!r}. Write "
                            "outcome.family: survival (with outcome.variable the time and "
                            "outcome.event the event indicator), or put the outcome column "
                            "itself before '~'.")
                    check_formula_safety(formula)
            except FormulaError as exc:
                raise FormulaError(f"{where}: '{key}': {exc}") from None
    mods = []
    seen = set()
    for m in [*raw["modifiers"], *demographic_modifiers(raw)]:
        if m["variable"] in seen:
            raise PlanError(f"{where}: modifier {short(m['variable'])} is listed twice in "
                            "'modifiers'.")
        seen.add(m["variable"])
        analysis = m.get("analysis", "continuous" if m["type"] == "continuous" else "categorical")
        mods.append(Modifier(
            variable=m["variable"], label=m.get("label", m["variable"]), type=m["type"],
            analysis=analysis, rationale=m["rationale"],
            display_cutpoints=tuple(m.get("display_cutpoints", ())),
            direction=m.get("direction"), prior_evidence=m.get("prior_evidence"),
            related_outcomes=tuple(m.get("related_outcomes", ())),
            levels={level_key(k): v for k, v in m["levels"].items()} if m.get("levels")
            else None,
            role=m.get("role"), stratification_factor=m.get("stratification_factor"),
        ))
    return Plan(raw=raw, path=str(path) if path else None, lock=lock, modifiers=tuple(mods),
                deviations_found=found, written=written if written is not raw else None)


def _validate(raw: Any, node, schema: dict, prefix: str, where: str) -> None:
    if not isinstance(raw, dict):
        name = prefix[:-1] if prefix else "plan"
        raise PlanError(f"{where}: '{name}'{line_of(node)}: expected a mapping of keys "
                        f"({', '.join(sorted(schema)[:6])}, ...), got {kind_of(raw)} "
                        f"{short(raw)}.")
    for key in raw:
        if key not in schema:
            import difflib

            near = [k for k in schema if k.replace("_", "") == str(key).replace("_", "").lower()]
            near = near or difflib.get_close_matches(str(key), list(schema), n=1, cutoff=0.75)
            hint = f" Did you mean {near[0]!r}?" if near else ""
            raise PlanError(
                f"{where}: unknown key '{prefix}{key_text(key)}'{line_of(node, key)}.{hint} "
                f"Allowed keys: {sorted(schema)}."
            )
    for key, (typ, required, sub) in schema.items():
        path = f"{prefix}{key}"
        if key not in raw or raw[key] is None:
            if required:
                raise PlanError(f"{where}: missing required key '{path}'{line_of(node)}.")
            continue
        value, child = raw[key], child_node(node, key)
        _check_type(value, typ, sub, path, child, where)


#: Keys whose text is a title or a label: at most 300 characters (other texts 20,000).
_SHORT_TEXT = {"title", "trial.id", "outcome.variable", "treatment.variable", "model.cluster",
               "outcome.exposure", "risk_based.risk_column"}

#: YAML 1.1 reads these unquoted words as booleans: "levels: {0: No, 1: Yes}" gives False/True.
YAML_BOOLEANS = "unquoted yes/no/on/off/true/false are read as true/false by YAML"


def _check_type(value, typ, sub, path, node, where):
    def bad(expected):
        hint = ""
        booleans = isinstance(value, bool) or (isinstance(value, dict) and any(
            isinstance(v, bool) for v in value.values()))
        if booleans and typ in ("str", "labels"):
            hint = f" ({YAML_BOOLEANS}: put the text in quotes)"
        elif typ == "str" and not isinstance(value, (dict, list)):
            hint = " (put the text in quotes)"
        raise PlanError(f"{where}: '{path}'{line_of(node)}: expected {expected}, got "
                        f"{kind_of(value)} {short(value)}{hint}.")

    if typ == "str":
        if not isinstance(value, str):
            bad("a string")
        if isinstance(sub, tuple) and value not in sub:
            raise PlanError(f"{where}: '{path}'{line_of(node)}: {short(value)} is not one of "
                            f"{list(sub)}.")
        top = 300 if (path in _SHORT_TEXT or path.endswith((".label", "_label"))
                      or ".levels." in path) else 20_000
        if len(value) > top:
            raise PlanError(f"{where}: '{path}'{line_of(node)}: is {len(value):,} characters "
                            f"long; at most {top:,} are allowed.")
        control = [c for c in value if ord(c) < 32 and c not in "\n\t\r"]
        if control:
            raise PlanError(f"{where}: '{path}'{line_of(node)}: contains the control character "
                            f"U+{ord(control[0]):04X}; remove it.")
    elif typ == "bool":
        if not isinstance(value, bool):
            bad("true or false")
    elif typ == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            bad("an integer")
    elif typ == "num":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            bad("a number")
        if not math.isfinite(value):
            raise PlanError(f"{where}: '{path}'{line_of(node)}: expected a finite number, got "
                            f"{short(value)}.")
    elif typ == "scalar":
        if isinstance(value, (list, dict)):
            bad("a single value (a number or a text)")
        if isinstance(value, float) and not math.isfinite(value):
            raise PlanError(f"{where}: '{path}'{line_of(node)}: expected a value the data can "
                            f"hold, got {short(value)}.")
    elif typ == "map":
        _validate(value, node, sub, f"{path}.", where)
    elif typ == "labels":
        if not isinstance(value, dict) or not all(
                isinstance(v, str) and not isinstance(k, (list, dict)) for k, v in value.items()):
            bad('a mapping of values to text labels, e.g. {0: "No", 1: "Yes"}')
        for k, v in value.items():
            _check_type(v, "str", None, f"{path}.{key_text(k)}", node, where)
    elif typ.startswith("list["):
        if not isinstance(value, list):
            bad("a list")
        inner = typ[5:-1]
        items = node.value if isinstance(node, yaml.SequenceNode) else [None] * len(value)
        for i, (v, n) in enumerate(zip(value, items)):
            _check_type(v, inner, sub, f"{path}[{i}]", n, where)
    else:  # pragma: no cover - schema error
        raise AssertionError(typ)

