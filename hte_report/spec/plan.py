"""The pre-registered analysis plan: schema, validation, locking and verification.

A plan is YAML with a versioned schema (``schema: hte-plan/1``). Validation reports the key path
and the line of every problem; unknown keys, duplicate keys and YAML anchors/aliases are errors.
Locking writes a record with the SHA-256 of a canonical serialization (sorted-key JSON of the
parsed plan), a UTC timestamp and a statement, sealed by a hash over the record itself; every
report states whether the plan still matches its lock.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from hte_report.errors import FormulaError, PlanError
from hte_report.spec.formula import check_formula_safety, short
from hte_report.spec.options import MODELS

SCHEMA_VERSION = "hte-plan/1"
#: Lock files written since record hashes were introduced; format 1 (no ``record_sha256``)
#: is still read, with a note that its own fields are not protected.
LOCK_FORMAT = 2
#: A plan is a short YAML document; anything larger is refused before it is parsed.
MAX_PLAN_BYTES = 1_000_000
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
    """What ``<plan>.lock.json`` holds. ``record_sha256`` seals the other fields (plan hash,
    lock time, statement, schema, package version): editing any of them is detected. Lock
    files of format 1 have no record hash; they are read, with :attr:`record_status`
    ``"legacy"``."""

    plan_sha256: str
    locked_at: str
    statement: str
    schema: str = SCHEMA_VERSION
    version: str = ""
    lock_format: int = 1
    record_sha256: str | None = None

    @classmethod
    def create(cls, plan_sha256: str, locked_at: str, statement: str = "") -> LockRecord:
        """A sealed (format 2) record."""
        from hte_report._version import __version__

        rec = cls(plan_sha256, locked_at, statement, SCHEMA_VERSION, __version__, LOCK_FORMAT)
        return replace(rec, record_sha256=rec.expected_record_sha256())

    def sealed_fields(self) -> dict:
        return {"lock_format": self.lock_format, "plan_sha256": self.plan_sha256,
                "locked_at": self.locked_at, "statement": self.statement,
                "schema": self.schema, "version": self.version}

    def expected_record_sha256(self) -> str:
        """SHA-256 of the sealed fields as sorted-key JSON, like :func:`plan_hash`."""
        return plan_hash(self.sealed_fields())

    @property
    def record_status(self) -> str:
        """``"verified"``, ``"legacy"`` (format 1, nothing to verify) or ``"edited"``."""
        if self.record_sha256 is None:
            return "legacy"
        return "verified" if self.record_sha256 == self.expected_record_sha256() else "edited"

    def to_json(self) -> str:
        return json.dumps({**self.sealed_fields(), "record_sha256": self.record_sha256},
                          indent=2, ensure_ascii=False) + "\n"


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
        return LockRecord.create(self.sha256, when.strftime("%Y-%m-%dT%H:%M:%SZ"), statement)


def plan_hash(raw: dict) -> str:
    """SHA-256 of the canonical serialization: JSON with sorted keys, no insignificant space."""
    text = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def lock_path(plan_path: str | Path) -> Path:
    p = Path(plan_path)
    return p.with_name(p.name + ".lock.json")


def lock_plan(path: str | Path, statement: str = "", force: bool = False,
              encoding: str = "utf-8") -> LockRecord:
    """Validate the plan at ``path`` and write ``<plan>.lock.json`` beside it.

    Refuses to overwrite an existing lock whose hash differs, or whose record was edited,
    unless ``force`` (re-locking an edited plan is a deviation and must be deliberate).
    """
    if not isinstance(statement, str) or len(statement) > 10_000:
        raise PlanError("the lock statement must be a text of at most 10,000 characters.")
    plan = load_plan(path, encoding=encoding)
    target = lock_path(path)
    if target.exists() and not force:
        old = plan.lock if plan.lock is not None else _read_lock(target)
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


def _read_lock(path: Path) -> LockRecord:
    bad = f"lock file {path} is not a valid lock record"
    text = _read_text(path, "lock file", "utf-8", "")
    try:
        d = json.loads(text)
    except ValueError as exc:
        raise PlanError(f"{bad}: not JSON ({exc}). Restore it from version control or re-lock "
                        "the plan with 'hte-report lock --force'.") from None
    if not isinstance(d, dict):
        raise PlanError(f"{bad}: expected a JSON object.")
    fields = {"plan_sha256": str, "locked_at": str, "statement": str, "schema": str,
              "version": str, "lock_format": int, "record_sha256": str}
    for key, typ in fields.items():
        if key in ("plan_sha256", "locked_at") and key not in d:
            raise PlanError(f"{bad}: it has no {key!r}.")
        if key in d and d[key] is not None and (not isinstance(d[key], typ)
                                                 or isinstance(d[key], bool)):
            raise PlanError(f"{bad}: {key!r} should be {typ.__name__}, got {short(d[key])}.")
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise PlanError(f"{bad}: unknown field(s) {short(unknown)}.")
    h = d["plan_sha256"]
    if len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
        raise PlanError(f"{bad}: plan_sha256 is not a SHA-256 hex digest ({short(h)}).")
    fmt = d.get("lock_format", 1)
    if fmt > LOCK_FORMAT:
        raise PlanError(f"{bad}: lock format {fmt} is newer than this hte_report understands "
                        f"({LOCK_FORMAT}); upgrade hte_report.")
    if fmt >= 2 and not d.get("record_sha256"):
        raise PlanError(f"{bad}: it has no record_sha256, which lock format {fmt} requires. "
                        "Restore it from version control or re-lock the plan.")
    return LockRecord(h, d["locked_at"], d.get("statement") or "",
                      d.get("schema", SCHEMA_VERSION), d.get("version") or "", fmt,
                      d.get("record_sha256"))


def _read_text(path: Path, what: str, encoding: str, option: str) -> str:
    """The text of a small file, with clear errors for a directory, a huge file, an unknown
    encoding or bytes that are not in the encoding."""
    if path.is_dir():
        raise PlanError(f"{what} {str(path)!r} is a directory, not a file.")
    try:
        with open(path, "rb") as fh:  # read at most the limit: /dev/zero has size 0
            data = fh.read(MAX_PLAN_BYTES + 1)
        if len(data) > MAX_PLAN_BYTES:
            raise PlanError(f"{what} {str(path)!r} is larger than {MAX_PLAN_BYTES:,} bytes; a "
                            f"{what} is a short text file.")
    except OSError as exc:
        raise PlanError(f"cannot read {what} {str(path)!r}: {exc.strerror or exc}.") from None
    try:
        return data.decode(encoding)
    except LookupError:
        raise PlanError(f"unknown encoding {short(encoding)} for {what} {str(path)!r}; use e.g. "
                        "utf-8, latin-1 or cp1252.") from None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        hint = (f" Save it as UTF-8, or name its encoding with {option} (e.g. {option} "
                "latin-1)." if option else " Save it as UTF-8.")
        raise PlanError(f"{what} {str(path)!r} is not valid {encoding} text: byte "
                        f"0x{data[exc.start]:02x} at line {line} cannot be decoded.{hint}"
                        ) from None


def _parse_yaml(text: str, where: str):
    """Parse one YAML document into (node, value). Anchors and aliases are refused (a 1 KB
    plan can otherwise expand to gigabytes), as are duplicate keys (YAML would keep the last
    value silently)."""
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                kind = "alias" if isinstance(event, yaml.AliasEvent) else "anchor"
                raise PlanError(
                    f"{where} (line {event.start_mark.line + 1}): YAML {kind}s "
                    f"('&{short(event.anchor, 30)[1:-1]}', '*…') are not allowed in a plan; "
                    "write the value out in full.")
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                _refuse_duplicate_keys(node, where)
            raw = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except PlanError:
        raise
    except yaml.YAMLError as exc:
        msg = str(exc).replace('"<unicode string>"', where)
        if "'\\t'" in msg or "\t" in msg and "tab" not in msg:
            msg += "\n(indent with spaces, not tabs)"
        raise PlanError(f"{where}: not valid YAML: {msg}") from None
    except RecursionError:
        raise PlanError(f"{where}: not valid YAML: nested too deeply.") from None
    except ValueError as exc:  # e.g. an integer with more than 4300 digits
        raise PlanError(f"{where}: not valid YAML: {short(str(exc), 200)}.") from None
    return node, raw


def _refuse_duplicate_keys(root, where: str) -> None:
    stack = [(root, "")]
    while stack:
        node, prefix = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for k, v in node.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else None
                if key is not None:
                    if key in seen:
                        raise PlanError(
                            f"{where}: key '{prefix}{short(key, 60)[1:-1]}' appears twice (lines "
                            f"{seen[key]} and {k.start_mark.line + 1}); YAML would silently "
                            "keep only the last value. Remove one of them.")
                    seen[key] = k.start_mark.line + 1
                stack.append((v, f"{prefix}{short(key, 60)[1:-1] if key else '?'}."))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                stack.append((v, f"{prefix[:-1]}[{i}]." if prefix else f"[{i}]."))


def load_plan(source: str | Path | dict, encoding: str = "utf-8") -> Plan:
    """Read and validate a plan from a YAML file (or an already-parsed dict).

    Errors name the key path, the line, what was expected and what was found. ``encoding``:
    of the plan file (UTF-8 unless said otherwise).
    """
    path = None
    if isinstance(source, dict):
        raw, node = source, None
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise PlanError(f"plan file {str(path)!r} does not exist.")
        text = _read_text(path, "plan file", encoding, "--plan-encoding")
        node, raw = _parse_yaml(text, str(path))
    else:
        raise PlanError(f"a plan is a YAML file path or a dict, got {type(source).__name__}.")
    where = str(path or "plan")
    if not isinstance(raw, dict):
        what = "empty" if raw is None else f"a YAML {_kind(raw)}"
        raise PlanError(f"{where}: the plan must be a YAML mapping of keys (schema, title, "
                        f"trial, ...), but the file is {what}. See examples/rossi/plan.yaml.")
    _validate(raw, node, _SCHEMA, "", where)
    _check_values(raw, node, where)
    rb = raw.get("risk_based") or {}
    for key, formula in (("model.formula", raw["model"]["formula"]),
                         ("risk_based.formula", rb.get("formula"))):
        if formula:
            try:
                check_formula_safety(formula)
            except FormulaError as exc:
                raise FormulaError(f"{where}: '{key}': {exc}") from None
    mods = []
    seen = set()
    for m in raw["modifiers"]:
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
            levels={str(k): v for k, v in m["levels"].items()} if m.get("levels") else None,
        ))
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


def _kind(value) -> str:
    return {dict: "mapping", list: "list", str: "text", bool: "boolean", int: "integer",
            float: "number"}.get(type(value), type(value).__name__)


def _key(key) -> str:
    """A mapping key for a message: its text, bounded."""
    return short(key, 60)[1:-1] if isinstance(key, str) else short(key, 60)


def _validate(raw: Any, node, schema: dict, prefix: str, where: str) -> None:
    if not isinstance(raw, dict):
        name = prefix[:-1] if prefix else "plan"
        raise PlanError(f"{where}: '{name}'{_line(node)}: expected a mapping of keys "
                        f"({', '.join(sorted(schema)[:6])}, ...), got {_kind(raw)} "
                        f"{short(raw)}.")
    for key in raw:
        if key not in schema:
            near = [k for k in schema if k.replace("_", "") == str(key).replace("_", "").lower()]
            hint = f" Did you mean {near[0]!r}?" if near else ""
            raise PlanError(
                f"{where}: unknown key '{prefix}{_key(key)}'{_line(node, key)}.{hint} Allowed "
                f"keys: {sorted(schema)}."
            )
    for key, (typ, required, sub) in schema.items():
        path = f"{prefix}{key}"
        if key not in raw or raw[key] is None:
            if required:
                raise PlanError(f"{where}: missing required key '{path}'{_line(node)}.")
            continue
        value, child = raw[key], _child(node, key)
        _check_type(value, typ, sub, path, child, where)


#: Keys whose text is a title or a label: at most 300 characters (other texts 20,000).
_SHORT_TEXT = {"title", "trial.id", "outcome.variable", "treatment.variable", "model.cluster",
               "outcome.exposure", "risk_based.risk_column"}

#: YAML 1.1 reads these unquoted words as booleans: "levels: {0: No, 1: Yes}" gives False/True.
_YAML_BOOLEANS = "unquoted yes/no/on/off/true/false are read as true/false by YAML"


def _check_type(value, typ, sub, path, node, where):
    def bad(expected):
        hint = ""
        booleans = isinstance(value, bool) or (isinstance(value, dict) and any(
            isinstance(v, bool) for v in value.values()))
        if booleans and typ in ("str", "labels"):
            hint = f" ({_YAML_BOOLEANS}: put the text in quotes)"
        elif typ == "str" and not isinstance(value, (dict, list)):
            hint = " (put the text in quotes)"
        raise PlanError(f"{where}: '{path}'{_line(node)}: expected {expected}, got "
                        f"{_kind(value)} {short(value)}{hint}.")

    if typ == "str":
        if not isinstance(value, str):
            bad("a string")
        if isinstance(sub, tuple) and value not in sub:
            raise PlanError(f"{where}: '{path}'{_line(node)}: {short(value)} is not one of "
                            f"{list(sub)}.")
        top = 300 if (path in _SHORT_TEXT or path.endswith((".label", "_label"))
                      or ".levels." in path) else 20_000
        if len(value) > top:
            raise PlanError(f"{where}: '{path}'{_line(node)}: is {len(value):,} characters "
                            f"long; at most {top:,} are allowed.")
        control = [c for c in value if ord(c) < 32 and c not in "\n\t\r"]
        if control:
            raise PlanError(f"{where}: '{path}'{_line(node)}: contains the control character "
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
            raise PlanError(f"{where}: '{path}'{_line(node)}: expected a finite number, got "
                            f"{short(value)}.")
    elif typ == "scalar":
        if isinstance(value, (list, dict)):
            bad("a single value (a number or a text)")
        if isinstance(value, float) and not math.isfinite(value):
            raise PlanError(f"{where}: '{path}'{_line(node)}: expected a value the data can "
                            f"hold, got {short(value)}.")
    elif typ == "map":
        _validate(value, node, sub, f"{path}.", where)
    elif typ == "labels":
        if not isinstance(value, dict) or not all(
                isinstance(v, str) and not isinstance(k, (list, dict)) for k, v in value.items()):
            bad('a mapping of values to text labels, e.g. {0: "No", 1: "Yes"}')
        for k, v in value.items():
            _check_type(v, "str", None, f"{path}.{_key(k)}", node, where)
    elif typ.startswith("list["):
        if not isinstance(value, list):
            bad("a list")
        inner = typ[5:-1]
        items = node.value if isinstance(node, yaml.SequenceNode) else [None] * len(value)
        for i, (v, n) in enumerate(zip(value, items)):
            _check_type(v, inner, sub, f"{path}[{i}]", n, where)
    else:  # pragma: no cover - schema error
        raise AssertionError(typ)


def _check_values(raw: dict, node, where: str) -> None:
    """Checks of values beyond their types, each naming the key and its line."""
    def fail(path: str, message: str):
        parts = path.replace("]", "").replace("[", ".").split(".")
        n = node
        for part in parts:
            n = _child(n, part) if not part.isdigit() else (
                n.value[int(part)] if isinstance(n, yaml.SequenceNode)
                and int(part) < len(n.value) else None)
        raise PlanError(f"{where}: '{path}'{_line(n) if n is not None else ''}: {message}")

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

        check_models(raw["model"].get("models"), out["family"])
    except ValueError as exc:
        fail("model.models", str(exc))
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
    if not raw["modifiers"]:
        fail("modifiers", "lists no modifier; a plan pre-specifies at least one effect "
             "modifier (variable, type, rationale).")
    for i, m in enumerate(raw["modifiers"]):
        cuts = m.get("display_cutpoints") or []
        if any(b <= a for a, b in zip(cuts, cuts[1:])):
            fail(f"modifiers[{i}].display_cutpoints", f"must be strictly increasing, got "
                 f"{short(cuts)}.")
        analysis = m.get("analysis", "continuous" if m["type"] == "continuous" else "categorical")
        if m["type"] != "continuous" and analysis == "continuous":
            fail(f"modifiers[{i}].analysis", f"a {m['type']} modifier cannot be analysed as "
                 "continuous; use analysis: categorical.")
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
    if rb.get("method") == "external" and not rb.get("risk_column"):
        fail("risk_based.method", "method 'external' needs risk_based.risk_column (the column "
             "of predicted risks).")
    names = {m["variable"] for m in raw["modifiers"]}
    for i, c in enumerate(raw.get("credibility") or []):
        if c["modifier"] not in names:
            fail(f"credibility[{i}].modifier", f"{short(c['modifier'])} is not a pre-specified "
                 f"modifier ({sorted(names)}).")


def check_plan_against_data(plan: Plan, data) -> None:
    """Every variable the plan names must exist in the data; modifiers must be in the formula.

    ``data``: the data frame, or only its column names. With the frame, the values are
    checked too: the treated and control codes must both occur in the treatment column (and
    be its only values), a level named in a direction must occur, and a modifier's type must
    fit its column."""
    from hte_report.spec.formula import parse_formula

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
    if plan.raw["model"].get("cluster"):
        needed["model.cluster"] = plan.raw["model"]["cluster"]
    for i, m in enumerate(plan.modifiers):
        needed[f"modifiers[{i}].variable"] = m.variable
    rb = plan.raw.get("risk_based") or {}
    if rb.get("risk_column"):
        needed["risk_based.risk_column"] = rb["risk_column"]
    for key, var in needed.items():
        if var not in columns:
            import difflib

            near = difflib.get_close_matches(var, [str(c) for c in columns], n=3)
            hint = f" Did you mean {near}?" if near else ""
            shown = ", ".join(short(c, 40) for c in columns[:20])
            more = ", ..." if len(columns) > 20 else ""
            raise PlanError(f"plan key '{key}' names column {short(var)}, which is not in the "
                            f"data.{hint} Columns: [{shown}{more}].")
    try:
        parsed = parse_formula(plan.formula, columns, treatment=plan.treatment, safe=True)
    except FormulaError as exc:
        raise FormulaError(f"model.formula: {exc}") from None
    if parsed.outcome != plan.outcome["variable"]:
        raise PlanError(f"model.formula's outcome {short(parsed.outcome)} differs from "
                        f"outcome.variable {short(plan.outcome['variable'])}.")
    in_formula = {m.name for m in parsed.modifiers}
    for i, m in enumerate(plan.modifiers):
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
            used_columns(list(rparsed.rhs), columns)
        except (FormulaError, PlanError) as exc:
            raise PlanError(f"risk_based.formula: {exc}") from None
    if frame is not None:
        _check_values_in_data(plan, frame)


def _check_values_in_data(plan: Plan, frame: pd.DataFrame) -> None:
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
                hint = f" ({_YAML_BOOLEANS}: put the code in quotes, e.g. \"yes\".)"
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
    for i, m in enumerate(plan.modifiers):
        s = frame[m.variable]
        numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
        if m.type == "continuous" and not numeric:
            raise PlanError(
                f"modifiers[{i}] {short(m.variable)} has type continuous, but the column holds "
                f"{s.dtype} values (e.g. {short(s.dropna().head(3).tolist())}); convert it to "
                "numbers, or declare type: categorical.")
        if m.type == "binary":
            k = s.nunique(dropna=True)
            if k > 2:
                raise PlanError(
                    f"modifiers[{i}] {short(m.variable)} has type binary, but the column has "
                    f"{k} distinct values; declare type: categorical (or continuous).")
        if m.levels:
            values = {str(v) for v in pd.unique(s.dropna())}
            for v in pd.unique(s.dropna()):
                if isinstance(v, (float, np.floating)) and float(v).is_integer():
                    values.add(str(int(v)))
            unknown = [k for k in m.levels if k not in values]
            if unknown:  # unused labels change no number: a warning, not an error
                import warnings

                from hte_report.errors import HTEReportWarning

                warnings.warn(
                    f"modifiers[{i}].levels labels {short(unknown)}, which are not values of "
                    f"{short(m.variable)} in the data (values: {short(sorted(values)[:10])}); "
                    "those labels are not used.", HTEReportWarning, stacklevel=3)
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


def _check_outcome_column(plan: Plan, frame: pd.DataFrame) -> None:
    name, family = plan.outcome["variable"], plan.outcome["family"]
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
