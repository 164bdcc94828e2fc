"""Render the report: built-in HTML/PDF writers, or Quarto when it is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from hte_report.analysis import fit_plan
from hte_report.errors import HTEReportError
from hte_report.report.content import build_report, report_date
from hte_report.report.html import render_html
from hte_report.report.typst import compile_pdf, write_typst_project
from hte_report.spec.options import check_choice

FORMATS = ("html", "pdf")
ENGINES = ("auto", "builtin", "quarto")


def quarto_usable() -> bool:
    """Quarto is on PATH and can run the parameterized template: its Python engine needs
    papermill (for ``-P``) and a Jupyter kernel. ``engine='auto'`` uses the built-in writers
    otherwise, so a Quarto install without them does not break the default command."""
    import importlib.util

    return shutil.which("quarto") is not None and all(
        importlib.util.find_spec(m) is not None for m in ("papermill", "ipykernel"))


def render(
    plan: str | Path,
    data: str | Path | object,
    *,
    to: Sequence[str] = FORMATS,
    out: str | Path = "out",
    engine: str = "auto",
    posthoc: Sequence[str] = (),
    date: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """Render the pre-registered HTE report for ``plan`` on ``data``.

    Returns the paths written, keyed by format. ``engine='auto'`` uses Quarto when ``quarto`` is
    on PATH and the data is a file, else the built-in writers.

    The output depends only on the plan, the data and the package versions: the report's date
    is ``date`` (ISO, e.g. ``"2026-01-31"``), else ``SOURCE_DATE_EPOCH``, else the lock
    record's time (see :func:`~hte_report.report.content.report_date`), so rendering twice
    gives byte-identical HTML and PDF.
    """
    to = tuple(to)
    for fmt in to:
        check_choice("to", fmt, FORMATS)
    check_choice("engine", engine, ENGINES)
    if date is not None:
        report_date(None, date)  # a malformed date fails before anything is fitted
    say = progress or (lambda _msg: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    use_quarto = engine == "quarto" or (
        engine == "auto" and quarto_usable() and isinstance(data, (str, Path)) and not posthoc)
    if use_quarto:
        return _render_quarto(Path(plan), Path(data), to, out, say, date)
    say("fitting the planned models")
    analysis = fit_plan(plan, data, posthoc=posthoc)
    say("building the report")
    report = build_report(analysis, date=date)
    written: dict[str, Path] = {}
    if "html" in to:
        say("writing HTML")
        path = out / "report.html"
        path.write_text(render_html(report), encoding="utf-8")
        written["html"] = path
    if "pdf" in to:
        say("compiling PDF with Typst")
        typ = write_typst_project(report, out / "typst")
        written["pdf"] = compile_pdf(typ, out / "report.pdf")
    return written


def _render_quarto(plan: Path, data: Path, to, out: Path, say,
                   date: str | None = None) -> dict[str, Path]:
    quarto = shutil.which("quarto")
    if quarto is None:
        raise HTEReportError("engine='quarto' but the quarto command is not on PATH; use "
                             "--engine builtin.")
    root = Path(__file__).resolve().parents[2]
    qmd = root / "templates" / "hte-report.qmd"
    if not qmd.exists():
        raise HTEReportError(f"Quarto template {qmd} not found (run from a source checkout).")
    from hte_report._version import __version__
    from hte_report.data.prepare import dataset_sha256, read_data
    from hte_report.spec.plan import load_plan

    p = load_plan(plan)
    shown, when = report_date(p, date)
    env = dict(os.environ)
    if when is not None:  # Typst (and Pandoc) take the PDF's dates from it, not the clock
        env["SOURCE_DATE_EPOCH"] = str(int(when.timestamp()))
    meta = {"date": shown,"plan-hash": p.sha256, "lock-status": p.lock_status(),
            "lock-time": p.lock.locked_at if p.lock else "not locked",
            "data-hash": dataset_sha256(read_data(data)), "hte-version": __version__,
            "trial": p.raw["trial"].get("name") or p.raw["trial"]["id"], "title": p.title}
    written = {}
    for fmt in to:
        qfmt = {"html": "hte-html", "pdf": "hte-typst"}[fmt]
        say(f"quarto render ({qfmt})")
        cmd = [quarto, "render", str(qmd), "--to", qfmt, "-P", f"plan:{plan.resolve()}",
               "-P", f"data:{data.resolve()}", "--output-dir", str(out.resolve())]
        for key, value in meta.items():  # the title block reads these (typst-show.typ)
            cmd += ["-M", f"{key}:{value}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise HTEReportError(f"quarto render failed: {proc.stderr.strip()[-500:]}")
        ext = "html" if fmt == "html" else "pdf"
        written[fmt] = out / f"hte-report.{ext}"
    return written
