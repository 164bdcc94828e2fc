"""Issue 13: the package's import structure is part of its contract.

The layers and acyclic contracts live in pyproject.toml ([tool.importlinter]); this test runs
them through import-linter, and checks that every module belongs to a layer, so a new module
cannot slip past the contract by sitting outside it."""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parent.parent


def _config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def test_import_contracts_are_kept(capsys, monkeypatch):
    from importlinter.cli import lint_imports

    monkeypatch.chdir(ROOT)
    code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True)
    out = capsys.readouterr().out
    assert code == 0, out[-4000:]
    assert "0 broken" in out


def test_every_module_is_in_a_layer():
    layers = next(c for c in _config()["contracts"] if c["type"] == "layers")["layers"]
    names = {part.strip() for layer in layers for part in layer.split("|")}
    graph = grimp.build_graph("hte_report")
    outside = sorted(m for m in graph.modules if m != "hte_report"
                     and not any(m == n or m.startswith(n + ".") for n in names))
    assert outside == [], f"modules outside every layer: {outside}"
