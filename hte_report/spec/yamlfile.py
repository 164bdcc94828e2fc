"""Reading plan and lock files: bounded size, named encodings, and YAML without aliases or
duplicate keys, with the line of every node for error messages."""

from __future__ import annotations

from pathlib import Path

import yaml

from hte_report.errors import PlanError, short

#: A plan is a short YAML document; anything larger is refused before it is parsed.
MAX_PLAN_BYTES = 1_000_000


def read_text(path: Path, what: str, encoding: str, option: str) -> str:
    """The text of a small file, with clear errors for a directory, a huge file, an unknown
    encoding or bytes that are not in the encoding. ``encoding=None`` is UTF-8."""
    if encoding is None:
        encoding = "utf-8"
    if not isinstance(encoding, str):
        raise PlanError(f"the encoding of the {what} must be the name of a text encoding such "
                        f"as 'utf-8' or 'latin-1', got {short(encoding)}.")
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


def parse_yaml(text: str, where: str):
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
                refuse_duplicate_keys(node, where)
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


def refuse_duplicate_keys(root, where: str) -> None:
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


def line_of(node, key: str | None = None) -> str:
    if node is None:
        return ""
    if key is not None and isinstance(node, yaml.MappingNode):
        for k, _v in node.value:
            if k.value == key:
                return f" (line {k.start_mark.line + 1})"
    return f" (line {node.start_mark.line + 1})"


def child_node(node, key):
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.value == key:
                return v
    return None


def kind_of(value) -> str:
    return {dict: "mapping", list: "list", str: "text", bool: "boolean", int: "integer",
            float: "number"}.get(type(value), type(value).__name__)


def key_text(key) -> str:
    """A mapping key for a message: its text, bounded."""
    return short(key, 60)[1:-1] if isinstance(key, str) else short(key, 60)
