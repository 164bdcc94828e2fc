"""The pre-registered analysis plan: schema, validation, locking and verification.

A plan is YAML with a versioned schema (``schema: hte-plan/1``). Validation reports the key path
and the line of every problem; unknown keys are errors. Locking writes a record with the SHA-256
of a canonical serialization (sorted-key JSON of the parsed plan), a UTC timestamp and a
statement; every report states whether the plan still matches its lock.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from .errors import PlanError
from .formula import check_formula_safety
from .options import MODELS

SCHEMA_VERSION = "hte-plan/1"
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
}
_CREDIBILITY = {
    "modifier": ("str", True, None),
    "scale": ("str", True, ("absolute", "relative")),
    "rating": ("str", True, RATINGS),
    "rationale": ("str", True, None),
    "assessor": ("str", False, None),
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
        "family": ("str", True, ("continuous", "binary", "count")),
        "time_point": ("str", False, None),
        "higher_is_better": ("bool", False, None),
        "exposure": ("str", False, None),
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
        "models": ("list[str]", False, tuple(MODELS)),
        "variance": ("str", False, ("model", "HC0", "HC1", "HC2", "HC3")),
        "cluster": ("str", False, None),
    }),
    "scales": ("list[str]", False, ("absolute", "relative")),
    "confidence_level": ("num", False, None),
    "alpha": ("num", False, None),
    "multiplicity": ("str", False, ("holm", "hochberg", "bonferroni", "fdr_bh", "none")),
    "seed": ("int", False, None),
    "modifiers": ("list[map]", True, _MODIFIER),
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


@dataclass(frozen=True)
class LockRecord:
    plan_sha256: str
    locked_at: str
    statement: str
    schema: str = SCHEMA_VERSION


@dataclass(frozen=True)
class Plan:
    """A validated analysis plan. ``raw`` is the parsed YAML; ``path`` where it came from."""

    raw: dict
    path: str | None = None
    lock: LockRecord | None = None
    modifiers: tuple[Modifier, ...] = field(default=())

    # ------------------------------------------------------------- accessors
    @property
    def title(self) -> str:
        return self.raw["title"]

    @property
    def formula(self) -> str:
        return self.raw["model"]["formula"]

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
    def sha256(self) -> str:
        return plan_hash(self.raw)

    def lock_status(self) -> str:
        """``"matches"``, ``"modified"`` (edited after locking) or ``"unlocked"``."""
        if self.lock is None:
            return "unlocked"
        return "matches" if self.lock.plan_sha256 == self.sha256 else "modified"

    def locked(self, statement: str = "", when: datetime | None = None) -> LockRecord:
        """A lock record for this plan as it is now."""
        when = when or datetime.now(timezone.utc)
        return LockRecord(self.sha256, when.strftime("%Y-%m-%dT%H:%M:%SZ"), statement)


def plan_hash(raw: dict) -> str:
    """SHA-256 of the canonical serialization: JSON with sorted keys, no insignificant space."""
    text = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def lock_path(plan_path: str | Path) -> Path:
    p = Path(plan_path)
    return p.with_name(p.name + ".lock.json")


def lock_plan(path: str | Path, statement: str = "", force: bool = False) -> LockRecord:
    """Validate the plan at ``path`` and write ``<plan>.lock.json`` beside it.

    Refuses to overwrite an existing lock whose hash differs unless ``force`` (re-locking an
    edited plan is a deviation and must be deliberate).
    """
    plan = load_plan(path)
    target = lock_path(path)
    if target.exists() and not force:
        old = _read_lock(target)
        if old.plan_sha256 == plan.sha256:
            return old
        raise PlanError(
            f"{target} already locks a different version of this plan (locked {old.locked_at}). "
            "Editing a locked plan is a deviation: record it under 'deviations' and re-lock with "
            "--force if that is really intended."
        )
    rec = plan.locked(statement)
    target.write_text(json.dumps(rec.__dict__, indent=2) + "\n", encoding="utf-8")
    return rec


def _read_lock(path: Path) -> LockRecord:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        return LockRecord(d["plan_sha256"], d["locked_at"], d.get("statement", ""),
                          d.get("schema", SCHEMA_VERSION))
    except (ValueError, KeyError) as exc:
        raise PlanError(f"lock file {path} is not a valid lock record: {exc}") from None


def load_plan(source: str | Path | dict) -> Plan:
    """Read and validate a plan from a YAML file (or an already-parsed dict).

    Errors name the key path, the line, what was expected and what was found.
    """
    path = None
    if isinstance(source, dict):
        raw, node = source, None
    else:
        path = Path(source)
        if not path.exists():
            raise PlanError(f"plan file {str(path)!r} does not exist.")
        text = path.read_text(encoding="utf-8")
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise PlanError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise PlanError(f"{path or 'plan'}: the plan must be a YAML mapping of keys.")
    _validate(raw, node, _SCHEMA, "", str(path or "plan"))
    check_formula_safety(raw["model"]["formula"])
    rb = raw.get("risk_based") or {}
    if rb.get("formula"):
        check_formula_safety(rb["formula"])
    cuts = rb.get("cutpoints")
    if cuts is not None and (not cuts or any(not 0 < c < 1 for c in cuts)
                             or any(b <= a for a, b in zip(cuts, cuts[1:]))):
        raise PlanError(f"risk_based.cutpoints must be strictly increasing risks in (0, 1), "
                        f"got {cuts}.")
    for key in ("groups", "crossfit_folds"):
        if rb.get(key) is not None and rb[key] < 2:
            raise PlanError(f"risk_based.{key} must be an integer >= 2, got {rb[key]}.")
    if rb.get("method") == "external" and not rb.get("risk_column"):
        raise PlanError("risk_based.method 'external' needs risk_based.risk_column.")
    mods = []
    seen = set()
    for m in raw["modifiers"]:
        if m["variable"] in seen:
            raise PlanError(f"modifier {m['variable']!r} is listed twice in 'modifiers'.")
        seen.add(m["variable"])
        analysis = m.get("analysis", "continuous" if m["type"] == "continuous" else "categorical")
        mods.append(Modifier(
            variable=m["variable"], label=m.get("label", m["variable"]), type=m["type"],
            analysis=analysis, rationale=m["rationale"],
            display_cutpoints=tuple(m.get("display_cutpoints", ())),
            direction=m.get("direction"), prior_evidence=m.get("prior_evidence"),
            related_outcomes=tuple(m.get("related_outcomes", ())),
            levels={str(k): v for k, v in m["levels"].items()} if m.get("levels") else None,
        ))
    level = raw.get("confidence_level", 0.95)
    if not 0.5 < level < 1:
        raise PlanError(f"confidence_level must be between 0.5 and 1, got {level}.")
    lock = None
    if path is not None and lock_path(path).exists():
        lock = _read_lock(lock_path(path))
    return Plan(raw=raw, path=str(path) if path else None, lock=lock, modifiers=tuple(mods))


def _line(node, key: str | None = None) -> str:
    if node is None:
        return ""
    if key is not None and isinstance(node, yaml.MappingNode):
        for k, _v in node.value:
            if k.value == key:
                return f" (line {k.start_mark.line + 1})"
    return f" (line {node.start_mark.line + 1})"


def _child(node, key):
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.value == key:
                return v
    return None


def _validate(raw: Any, node, schema: dict, prefix: str, where: str) -> None:
    if not isinstance(raw, dict):
        raise PlanError(f"{where}: {prefix or 'plan'}{_line(node)} must be a mapping of keys.")
    for key in raw:
        if key not in schema:
            near = [k for k in schema if k.replace("_", "") == str(key).replace("_", "").lower()]
            hint = f" Did you mean {near[0]!r}?" if near else ""
            raise PlanError(
                f"{where}: unknown key '{prefix}{key}'{_line(node, key)}.{hint} Allowed keys: "
                f"{sorted(schema)}."
            )
    for key, (typ, required, sub) in schema.items():
        path = f"{prefix}{key}"
        if key not in raw or raw[key] is None:
            if required:
                raise PlanError(f"{where}: missing required key '{path}'{_line(node)}.")
            continue
        value, child = raw[key], _child(node, key)
        _check_type(value, typ, sub, path, child, where)


def _check_type(value, typ, sub, path, node, where):
    def bad(expected):
        got = type(value).__name__
        raise PlanError(f"{where}: '{path}'{_line(node)}: expected {expected}, got {got} "
                        f"{value!r}.")

    if typ == "str":
        if not isinstance(value, str):
            bad("a string")
        if isinstance(sub, tuple) and value not in sub:
            raise PlanError(f"{where}: '{path}'{_line(node)}: {value!r} is not one of "
                            f"{list(sub)}.")
    elif typ == "bool":
        if not isinstance(value, bool):
            bad("true or false")
    elif typ == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            bad("an integer")
    elif typ == "num":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            bad("a number")
    elif typ == "scalar":
        if isinstance(value, (list, dict)):
            bad("a single value")
    elif typ == "map":
        _validate(value, node, sub, f"{path}.", where)
    elif typ == "labels":
        if not isinstance(value, dict) or not all(
                isinstance(v, str) and not isinstance(k, (list, dict)) for k, v in value.items()):
            bad("a mapping of values to text labels, e.g. {0: No, 1: Yes}")
    elif typ.startswith("list["):
        if not isinstance(value, list):
            bad("a list")
        inner = typ[5:-1]
        items = node.value if isinstance(node, yaml.SequenceNode) else [None] * len(value)
        for i, (v, n) in enumerate(zip(value, items)):
            _check_type(v, inner, sub, f"{path}[{i}]", n, where)
    else:  # pragma: no cover - schema error
        raise AssertionError(typ)


def check_plan_against_data(plan: Plan, columns) -> None:
    """Every variable the plan names must exist in the data; modifiers must be in the formula."""
    from .formula import parse_formula

    columns = list(columns)
    needed = {
        "outcome.variable": plan.outcome["variable"],
        "treatment.variable": plan.treatment,
    }
    if plan.outcome.get("exposure"):
        needed["outcome.exposure"] = plan.outcome["exposure"]
    if plan.raw["model"].get("cluster"):
        needed["model.cluster"] = plan.raw["model"]["cluster"]
    for i, m in enumerate(plan.modifiers):
        needed[f"modifiers[{i}].variable"] = m.variable
    if (plan.raw.get("risk_based") or {}).get("risk_column"):
        needed["risk_based.risk_column"] = plan.raw["risk_based"]["risk_column"]
    for key, var in needed.items():
        if var not in columns:
            raise PlanError(f"plan key '{key}' names column {var!r}, which is not in the data "
                            f"(columns: {columns[:20]}).")
    parsed = parse_formula(plan.formula, columns, treatment=plan.treatment, safe=True)
    if parsed.outcome != plan.outcome["variable"]:
        raise PlanError(f"model.formula's outcome {parsed.outcome!r} differs from "
                        f"outcome.variable {plan.outcome['variable']!r}.")
    in_formula = {m.name for m in parsed.modifiers}
    for i, m in enumerate(plan.modifiers):
        if m.variable not in in_formula:
            raise PlanError(
                f"modifiers[{i}] {m.variable!r} is pre-specified but does not interact with "
                f"{plan.treatment!r} in model.formula ({plan.formula!r}); add "
                f"'{plan.treatment}:{m.variable}' to the formula."
            )
