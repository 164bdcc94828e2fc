"""Issue 21: ``import hte_report`` and ``hte-report --help`` load no heavy dependency; the
public names still import (lazily, PEP 562)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("statsmodels", "statsmodels.api", "matplotlib", "great_tables", "scipy", "pandas",
         "formulaic", "duckdb")


def _loaded_after(code: str) -> set[str]:
    probe = (f"import sys\n{code}\n"
             f"print('LOADED:', *(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("LOADED:"))
    return set(line.split()[1:])


def test_import_loads_nothing_heavy():
    assert _loaded_after("import hte_report") == set()


def test_cli_help_loads_nothing_heavy():
    code = ("import sys\nfrom hte_report.cli import app\nsys.argv = ['hte-report', '--help']\n"
            "try:\n    app()\nexcept SystemExit:\n    pass")
    assert _loaded_after(code) == set()


def test_public_names_import():
    import hte_report

    assert "__version__" in hte_report.__all__
    for name in hte_report.__all__:
        assert getattr(hte_report, name) is not None, name
    from hte_report import Cluster, HTEResult, fit, fit_mixed, fit_survival  # noqa: F401
    from hte_report.estimation.survival import fit_survival as direct

    assert hte_report.fit_survival is direct
    assert set(hte_report.__all__) <= set(dir(hte_report))


def test_unknown_name_is_an_attribute_error():
    import hte_report

    with pytest.raises(AttributeError):
        hte_report.no_such_name  # noqa: B018
    with pytest.raises(ImportError):
        exec("from hte_report import no_such_name")
    assert hte_report.models.__name__ == "hte_report.models"  # sub-packages stay reachable
