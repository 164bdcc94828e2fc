"""Quarto as a first-class path (issue 20).

The tests marked ``real_quarto`` run the real ``quarto`` (and its Jupyter engine) on the Rossi
example and are skipped, with the reason, when ``quarto`` is not on PATH or the ``[quarto]``
extra is not installed. None of them needs the network: that is what they check.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest

from hte_report.errors import HTEReportError, HTEReportWarning
from hte_report.report import render as R
from hte_report.report.model import Callout, Table
from hte_report.report.quarto import bundle

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "hte_report" / "report" / "assets"
EXAMPLE = ROOT / "examples" / "rossi"
PLAN, DATA = EXAMPLE / "plan.yaml", EXAMPLE / "rossi.csv"
SECTIONS = ("Executive summary", "Study population", "Overall effect",
            "Pre-specified subgroup analyses", "Continuous modifiers", "Risk-based analysis",
            "Credibility of effect modification", "Post hoc analyses", "Methods",
            "Appendix: the analysis plan")

# a Typst package import (`#import "@preview/…"`, `#import "@local/…"`): Typst would download it
PACKAGE_IMPORT = re.compile(r'#import\s+"@')
# a Quarto callout in Markdown (::: {.callout-note}); in Typst it imports @preview/fontawesome
QUARTO_CALLOUT = re.compile(r"\{\s*\.callout-|\bcallout-(?:note|tip|warning|caution|important)\b")
# a resource the browser would fetch from the network: src/href of script, link, img, iframe,
# source; CSS url(...) and @import
REMOTE = re.compile(
    r"<(?:script|link|img|iframe|source)\b[^>]*?\b(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//"
    r"|url\(\s*[\"']?\s*(?:https?:)?//|@import\s+[\"']?\s*(?:https?:)?//", re.I)


def _why_no_quarto() -> str | None:
    if shutil.which("quarto") is None:
        return "quarto is not on PATH (the real-Quarto tests need Quarto >= 1.4)"
    missing = [m for m in ("papermill", "ipykernel") if importlib.util.find_spec(m) is None]
    if missing:
        return (f"Quarto's Jupyter engine needs {', '.join(missing)} "
                "(pip install 'hte-report[quarto]')")
    return None


real_quarto = pytest.mark.skipif(_why_no_quarto() is not None,
                                 reason=str(_why_no_quarto()))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- without Quarto -------------------------------------------------------------------------

def test_sections_are_one_markdown_output_without_quarto_callouts():
    """Callouts are the extension's hte-callout (Typst) and the built-in writer's div (HTML),
    never Quarto callouts (which import @preview/fontawesome in Typst); no block is a
    text/html output (which makes Quarto add require.js and jQuery from a CDN)."""
    import pandas as pd

    call = bundle(Callout(kind="danger", title='Lock "broken"', text="Plan edited after lock"))
    table = bundle(Table(name="t", caption="Counts", frame=pd.DataFrame(
        {"Arm": ["a", "b"], "N": ["1", "22"]})))
    for b in (call, table):
        assert set(b) == {"text/markdown"}
    text = call["text/markdown"]
    assert not QUARTO_CALLOUT.search(text) and "{=typst}" in text and "{=html}" in text
    assert '#hte-callout(kind: "danger", title: "Lock \\"broken\\"")' in text
    assert 'class="hte-callout hte-danger"' in text
    assert "align: (left, right,)" in table["text/markdown"]  # figures right-aligned in Typst


def test_extension_reaches_no_package_or_network():
    for name in R.EXTENSION_FILES + (R.TEMPLATE,):
        text = (ASSETS / name).read_text("utf-8")
        assert not PACKAGE_IMPORT.search(text), name
        assert not QUARTO_CALLOUT.search(text), name
        assert not REMOTE.search(text), name
    assert "$web-font-path: false" in (ASSETS / "hte.scss").read_text()


def test_repository_extension_is_the_package_assets():
    """_extensions/hte/ and templates/ in the repository are the package's files (links)."""
    for name in R.EXTENSION_FILES:
        repo = ROOT / "_extensions" / "hte" / name
        assert repo.resolve() == (ASSETS / name).resolve(), name
        assert not (ASSETS / name).is_symlink(), name  # a wheel gets the real file
    assert (ROOT / "templates" / R.TEMPLATE).resolve() == (ASSETS / R.TEMPLATE).resolve()


def test_write_quarto_project_sets_parameters(tmp_path):
    qmd = R.write_quarto_project(tmp_path, plan="../plan.yaml", data="d'ata.csv")
    text = qmd.read_text()
    assert "plan = '../plan.yaml'" in text and "data = \"d'ata.csv\"" in text
    assert sorted(p.name for p in (tmp_path / "_extensions" / "hte").iterdir()) == sorted(
        R.EXTENSION_FILES)
    assert "hte-report.qmd" in (tmp_path / "_quarto.yml").read_text()


def test_cli_quarto_init(tmp_path):
    from typer.testing import CliRunner

    from hte_report.cli import app

    proj = tmp_path / "proj"
    r = CliRunner().invoke(app, ["quarto", "init", str(proj), "--plan", str(PLAN),
                                 "--data", str(DATA)])
    assert r.exit_code == 0, r.output
    qmd = (proj / "hte-report.qmd").read_text()
    plan = re.search(r"^plan = '(.*)'$", qmd, re.M).group(1)
    assert (proj / plan).resolve() == PLAN.resolve()
    r = CliRunner().invoke(app, ["quarto", "init", str(proj), "--plan", str(PLAN),
                                 "--data", str(DATA)])
    assert r.exit_code == 1 and "--force" in r.output
    r = CliRunner().invoke(app, ["quarto", "init", str(proj), "--plan", str(tmp_path / "no"),
                                 "--data", str(DATA)])
    assert r.exit_code == 1 and "is not a file" in r.output


def _fake_quarto(tmp_path, monkeypatch, script: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "quarto"
    exe.write_text("#!/bin/sh\n" + script)
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_quarto_failure_writes_whole_log_to_out(tmp_path, monkeypatch):
    lines = "".join(f"echo 'log line {i}'\n" for i in range(200))
    _fake_quarto(tmp_path, monkeypatch, lines + "echo 'ERROR: the real cause' >&2\nexit 1\n")
    out = tmp_path / "out"
    with pytest.raises(HTEReportError) as exc:
        R.render(PLAN, DATA, to=["html"], out=out, engine="quarto")
    log = out / R.LOG_NAME
    assert str(log) in str(exc.value) and "the real cause" in str(exc.value)
    text = log.read_text()
    assert "log line 0\n" in text and "log line 199\n" in text and "the real cause" in text
    assert sorted(p.name for p in out.iterdir()) == [R.LOG_NAME]  # nothing else, no report


def test_undated_report_passes_no_date_to_quarto_html(tmp_path, monkeypatch):
    """An unlocked plan has no report date: Quarto's HTML title block would print "Invalid
    Date" for the explanatory text, so the HTML render gets no ``date`` (the report's own
    metadata list says why it is undated); the PDF's title block still gets the text."""
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN.read_text())  # without its lock file: unlocked, undated
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    _fake_quarto(tmp_path, monkeypatch, "exit 1\n")
    for fmt in ("html", "pdf"):
        out = tmp_path / f"out-{fmt}"
        with pytest.raises(HTEReportError):
            R.render(plan, DATA, to=[fmt], out=out, engine="quarto")
        command = (out / R.LOG_NAME).read_text().splitlines()[0]
        assert ("-M date:undated" in command) == (fmt == "pdf"), command


def test_auto_falls_back_to_builtin_when_quarto_fails(tmp_path, monkeypatch):
    _fake_quarto(tmp_path, monkeypatch, "echo broken >&2\nexit 3\n")
    monkeypatch.setattr(R, "quarto_usable", lambda: True)
    out = tmp_path / "out"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = R.render(PLAN, DATA, to=["html"], out=out, engine="auto")
    assert written == {"html": out / "report.html"}
    assert "hte-callout" in written["html"].read_text()  # the built-in writer's page
    msgs = [str(w.message) for w in caught if issubclass(w.category, HTEReportWarning)]
    assert any("built-in writers instead" in m and R.LOG_NAME in m for m in msgs), msgs


def test_quarto_engine_without_quarto_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(R.shutil, "which", lambda _name: None)
    with pytest.raises(HTEReportError, match="not on PATH"):
        R.render(PLAN, DATA, to=["html"], out=tmp_path, engine="quarto")


def test_wheel_ships_template_and_extension_as_files(tmp_path):
    """A wheel (not the source tree) carries the template and the extension, as real files."""
    pytest.importorskip("setuptools")
    src = tmp_path / "src"  # build from a copy: nothing is written into the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "hte_report", src / "hte_report",
                    ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "--no-index", "-w", str(tmp_path), str(src)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {proc.stderr.strip()[-300:]}")
    wheel = next(tmp_path.glob("hte_report-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        for name in R.EXTENSION_FILES + (R.TEMPLATE,):
            info = z.getinfo(f"hte_report/report/assets/{name}")
            assert z.read(info) == (ASSETS / name).read_bytes(), name
            assert (info.external_attr >> 16) & 0o170000 != 0o120000, name  # not a symlink


# --- with the real Quarto -------------------------------------------------------------------

@pytest.fixture(scope="module")
def quarto_renders(tmp_path_factory):
    """The Rossi report rendered twice by `render(engine="quarto")` (HTML and PDF)."""
    why = _why_no_quarto()
    if why:
        pytest.skip(why)
    outs = []
    for name in ("a", "b"):
        out = tmp_path_factory.mktemp(f"quarto-{name}")
        outs.append((out, R.render(PLAN, DATA, to=["html", "pdf"], out=out, engine="quarto")))
    return outs


@real_quarto
def test_quarto_render_writes_only_the_reports_to_out(quarto_renders):
    out, written = quarto_renders[0]
    assert written == {"html": out / "report.html", "pdf": out / "report.pdf"}
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.pdf"]
    assert written["pdf"].read_bytes().startswith(b"%PDF")
    assert not (ROOT / "templates" / "hte-report.html").exists()
    assert sorted(p.name for p in (ROOT / "templates").iterdir()) == [R.TEMPLATE]


@real_quarto
def test_quarto_renders_are_byte_identical(quarto_renders):
    (_, a), (_, b) = quarto_renders
    for fmt in ("html", "pdf"):
        assert _sha(a[fmt]) == _sha(b[fmt]), fmt


@real_quarto
def test_quarto_html_sections_hashes_lock_and_no_network(quarto_renders):
    from hte_report.data.digest import dataset_sha256
    from hte_report.data.prepare import read_data
    from hte_report.spec.plan import load_plan

    html = quarto_renders[0][1]["html"].read_text("utf-8")
    bad = [m.group(0)[:120] for m in REMOTE.finditer(html)]
    assert not bad, bad
    plan = load_plan(PLAN)
    text = re.sub(r"\\", "", html)
    for title in SECTIONS:
        assert title in text, title
    assert plan.sha256 in html and dataset_sha256(read_data(DATA)) in html
    assert f"Lock:** {plan.lock_status()}" not in html  # markdown was rendered
    assert re.search(rf"Lock:</strong>\s*{plan.lock_status()}", html)
    assert 'class="hte-table' in html or "hte-num" in html  # the built-in table markup
    assert 'id="TOC"' in html or 'id="toc"' in html  # contents list


@real_quarto
def test_quarto_pdf_sections_hashes_lock(quarto_renders):
    pypdf = pytest.importorskip("pypdf")
    from hte_report.spec.plan import load_plan

    pdf = quarto_renders[0][1]["pdf"]
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(pdf).pages)
    flat = re.sub(r"\s+", " ", text)
    for title in SECTIONS:
        assert title in flat, title
    plan = load_plan(PLAN)
    assert plan.sha256 in re.sub(r"\s+", "", text)
    assert "matches the locked plan" in flat  # the title block's lock banner


@real_quarto
def test_quarto_init_project_renders_typst_offline(tmp_path):
    """`hte-report quarto init` makes a project that `quarto render` turns into a PDF; the
    generated .typ imports no Typst package (Typst would download it)."""
    proj = tmp_path / "proj"
    R.write_quarto_project(proj, plan=str(PLAN), data=str(DATA))
    before = set(os.listdir(ROOT))
    proc = subprocess.run(["quarto", "render", "--to", "hte-typst", "-M", "keep-typ:true"],
                          cwd=proj, env=R.quarto_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
    typ = (proj / "hte-report.typ").read_text("utf-8")
    assert not PACKAGE_IMPORT.search(typ), PACKAGE_IMPORT.search(typ)
    assert "#hte-callout(" in typ and "quarto-callout" not in typ.split("#show: doc =>")[1]
    assert (proj / "hte-report.pdf").read_bytes().startswith(b"%PDF")
    assert set(os.listdir(ROOT)) == before
