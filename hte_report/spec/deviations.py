"""What changed between the locked plan and the plan that was run, key by key.

Lock records of format 3 keep the locked plan itself, so a run can list every change (CONSORT
2025 item 10: changes to the analyses after the trial commenced, with reasons). Modifiers are
matched by their variable (a changed rationale, type or cut point is one entry; an added or
removed modifier another); other lists are compared whole; the plan's own ``deviations`` text
(the reasons) is not itself a deviation."""

from __future__ import annotations

import json

#: Keys whose change is not a change of the analysis.
_IGNORED = {"deviations"}


def plan_changes(locked: dict, current: dict) -> list[dict]:
    """Rows ``{"key", "change", "locked", "now"}`` (``change``: added / removed / changed),
    in the plan's key order."""
    out: list[dict] = []
    _diff(_plain(locked), _plain(current), "", out)
    return out


def _plain(obj):
    return json.loads(json.dumps(obj, default=str))


def _text(value) -> str:
    if value is None:
        return "–"
    text = (json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list, bool))
            else str(value))
    return text if len(text) <= 160 else text[:157] + "…"


def _diff(a, b, path: str, out: list) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(dict.fromkeys([*a, *b])):
            sub = f"{path}.{key}" if path else str(key)
            if not path and key in _IGNORED:
                continue
            if key not in b:
                out.append({"key": sub, "change": "removed", "locked": _text(a[key]), "now": "–"})
            elif key not in a:
                out.append({"key": sub, "change": "added", "locked": "–", "now": _text(b[key])})
            else:
                _diff(a[key], b[key], sub, out)
        return
    if path == "modifiers" and isinstance(a, list) and isinstance(b, list):
        _diff_modifiers(a, b, out)
        return
    if a != b:
        out.append({"key": path, "change": "changed", "locked": _text(a), "now": _text(b)})


def _diff_modifiers(a: list, b: list, out: list) -> None:
    def by_var(items):
        return {str(m.get("variable")): m for m in items if isinstance(m, dict)}

    old, new = by_var(a), by_var(b)
    for var in dict.fromkeys([*old, *new]):
        where = f"modifiers[{var}]"
        if var not in new:
            out.append({"key": where, "change": "removed", "locked": _text(old[var]),
                        "now": "–"})
        elif var not in old:
            out.append({"key": where, "change": "added", "locked": "–", "now": _text(new[var])})
        else:
            _diff(old[var], new[var], where, out)
    if [k for k in old if k in new] != [k for k in new if k in old]:
        out.append({"key": "modifiers", "change": "changed", "locked": ", ".join(old),
                    "now": ", ".join(new)})
