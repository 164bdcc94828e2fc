"""The lock record of a plan: its hash (a canonical serialization), the lock time and
statement, sealed by a hash over the record itself."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

from hte_report.errors import PlanError, short
from hte_report.spec.yamlfile import read_text

#: The plan schema this package reads and writes.
SCHEMA_VERSION = "hte-plan/1"


#: Lock files written now: format 3 also keeps the locked plan itself (``plan``, sealed by the
#: record hash), so a later run can list what changed (the deviation log). Format 2 (hashes
#: only) and format 1 (no ``record_sha256``) are still read.
LOCK_FORMAT = 3


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
    plan: dict | None = None  # the locked plan (format 3)

    @classmethod
    def create(cls, plan_sha256: str, locked_at: str, statement: str = "",
               plan: dict | None = None) -> LockRecord:
        """A sealed record (format 3: with the locked plan)."""
        from hte_report._version import __version__

        rec = cls(plan_sha256, locked_at, statement, SCHEMA_VERSION, __version__, LOCK_FORMAT,
                  plan=json.loads(json.dumps(plan, default=str)) if plan is not None else None)
        return replace(rec, record_sha256=rec.expected_record_sha256())

    def sealed_fields(self) -> dict:
        out = {"lock_format": self.lock_format, "plan_sha256": self.plan_sha256,
               "locked_at": self.locked_at, "statement": self.statement,
               "schema": self.schema, "version": self.version}
        if self.lock_format >= 3:
            out["plan"] = self.plan
        return out

    def expected_record_sha256(self) -> str:
        """SHA-256 of the sealed fields as sorted-key JSON, like :func:`plan_hash`."""
        return plan_hash(self.sealed_fields())

    @property
    def record_status(self) -> str:
        """``"verified"``, ``"legacy"`` (format 1, nothing to verify) or ``"edited"``."""
        if self.record_sha256 is None:
            return "legacy"
        if self.record_sha256 != self.expected_record_sha256():
            return "edited"
        if self.lock_format >= 3 and (self.plan is None
                                      or plan_hash(self.plan) != self.plan_sha256):
            return "edited"  # the kept plan is not the plan whose hash was locked
        return "verified"

    def to_json(self) -> str:
        return json.dumps({**self.sealed_fields(), "record_sha256": self.record_sha256},
                          indent=2, ensure_ascii=False) + "\n"


def plan_hash(raw: dict) -> str:
    """SHA-256 of the canonical serialization: JSON with sorted keys, no insignificant space."""
    text = json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def lock_path(plan_path: str | Path) -> Path:
    p = Path(plan_path)
    return p.with_name(p.name + ".lock.json")


def read_lock(path: Path) -> LockRecord:
    bad = f"lock file {path} is not a valid lock record"
    text = read_text(path, "lock file", "utf-8", "")
    try:
        d = json.loads(text)
    except ValueError as exc:
        raise PlanError(f"{bad}: not JSON ({exc}). Restore it from version control or re-lock "
                        "the plan with 'hte-report lock --force'.") from None
    if not isinstance(d, dict):
        raise PlanError(f"{bad}: expected a JSON object.")
    fields = {"plan_sha256": str, "locked_at": str, "statement": str, "schema": str,
              "version": str, "lock_format": int, "record_sha256": str, "plan": dict}
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
                      d.get("record_sha256"), d.get("plan") if fmt >= 3 else None)
