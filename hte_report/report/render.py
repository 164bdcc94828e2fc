"""Render the report: built-in HTML/PDF writers, or Quarto when it is installed."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from hte_report.analysis import fit_plan
from hte_report.errors import HTEReportError, HTEReportWarning
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

    Returns the paths written, keyed by format. ``engine='auto'`` uses Quarto when it can run
    the template (:func:`quarto_usable`) and plan and data are files, else the built-in writers;
    when that Quarto render fails it warns (``HTEReportWarning``, naming the log file) and uses
    the built-in writers. ``engine='quarto'`` renders in a temporary copy of the packaged
    Quarto project and writes only ``report.html``/``report.pdf`` (and, on failure,
    ``quarto-render.log``) to ``out``.

    The output depends only on the plan, the data and the package versions: the report's date
    is ``date`` (ISO, e.g. ``"2026-01-31"``), else ``SOURCE_DATE_EPOCH``, else the lock
    record's time (see :func:`~hte_report.report.content.report_date`), so rendering twice
    gives byte-identical HTML and PDF.
    """
    from hte_report.errors import ArgumentError

    if isinstance(to, str):  # "html,pdf" as on the command line
        to = [f.strip() for f in to.split(",") if f.strip()]
    if not isinstance(to, (list, tuple, set, frozenset)) or not to:
        raise ArgumentError(f"to= names the formats to write: 'html', 'pdf' or both (e.g. "
                            f"to=['html', 'pdf']); got {to!r}.")
    to = tuple(to)
    for fmt in to:
        check_choice("to", fmt, FORMATS)
    check_choice("engine", engine, ENGINES)
    # a malformed date (or SOURCE_DATE_EPOCH) fails before anything is fitted
    report_date(None, date)
    if progress is not None and not callable(progress):
        raise ArgumentError(f"progress= is a function called with each step's description "
                            f"(e.g. progress=print), got {type(progress).__name__}.")
    say = progress or (lambda _msg: None)
    if not isinstance(out, (str, os.PathLike)):
        raise ArgumentError(f"out= is the folder for the report (a path), got "
                            f"{type(out).__name__}.")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise HTEReportError(f"out={str(out)!r} is an existing file; give a folder for the "
                             "report (it is created if it does not exist).")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HTEReportError(f"cannot create the report folder {str(out)!r}: "
                             f"{exc.strerror or exc}.") from None
    if engine == "quarto":
        for what, value in (("plan", plan), ("data", data)):
            if not isinstance(value, (str, os.PathLike)):
                raise ArgumentError(
                    f"engine='quarto' renders files: {what}= must be the path of the {what} "
                    f"file, got {type(value).__name__}. Save it to a file, or use "
                    "engine='builtin' (which takes data frames and loaded plans).")
    use_quarto = engine == "quarto" or (
        engine == "auto" and quarto_usable() and isinstance(plan, (str, Path))
        and isinstance(data, (str, Path)))
    if use_quarto:
        try:
            return _render_quarto(Path(plan), Path(data), to, out, say, date, posthoc)
        except HTEReportError as exc:
            if engine == "quarto":
                raise
            warnings.warn(f"{exc} Rendering with the built-in writers instead.",
                          HTEReportWarning, stacklevel=2)
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


# The Quarto project, as shipped in the package (hte_report/report/assets): the extension's
# files go to _extensions/hte/, the template to the project's root.
EXTENSION_FILES = ("_extension.yml", "hte.css", "hte.scss", "typst-show.typ",
                   "typst-template.typ")
TEMPLATE = "hte-report.qmd"
LOG_NAME = "quarto-render.log"


def _asset(name: str):
    from importlib import resources

    return resources.files("hte_report.report").joinpath(f"assets/{name}")


def write_quarto_project(root: str | Path, *, plan: str | None = None,
                         data: str | None = None) -> Path:
    """Write a Quarto project that renders the report: ``_quarto.yml``, the ``hte`` extension
    in ``_extensions/hte/`` and the template ``hte-report.qmd``, all copied from the installed
    package. ``plan`` and ``data`` (paths as the template's cells will see them, i.e. relative
    to ``root`` or absolute) become the template's default parameters. Returns the template's
    path."""
    root = Path(root)
    ext = root / "_extensions" / "hte"
    ext.mkdir(parents=True, exist_ok=True)
    for name in EXTENSION_FILES:
        (ext / name).write_bytes(_asset(name).read_bytes())
    qmd = _asset(TEMPLATE).read_text("utf-8")
    for key, value in (("plan", plan), ("data", data)):
        if value is not None:
            qmd = re.sub(rf'(?m)^{key} = ".*"$', lambda _m, k=key, v=value: f"{k} = {v!r}",
                         qmd, count=1)
    path = root / TEMPLATE
    path.write_text(qmd, encoding="utf-8")
    (root / "_quarto.yml").write_text(
        "# Renders the pre-registered HTE report: quarto render (add --to hte-html or\n"
        "# --to hte-typst for one format; -P plan:FILE -P data:FILE for other inputs).\n"
        f"project:\n  type: default\n  render:\n    - {TEMPLATE}\n", encoding="utf-8")
    return path


def quarto_env(when=None) -> dict[str, str]:
    """The environment for ``quarto render``: Quarto's Jupyter engine runs this Python (the one
    with hte_report, papermill and ipykernel), and Typst takes the PDF's dates from
    ``SOURCE_DATE_EPOCH`` instead of the clock."""
    env = dict(os.environ)
    env["QUARTO_PYTHON"] = sys.executable
    if when is not None:
        env["SOURCE_DATE_EPOCH"] = str(int(when.timestamp()))
    return env


_PDF_ID = re.compile(rb"/ID \[\(([A-Za-z0-9+/]{22}==)\) \(")


def stable_pdf_id(pdf: bytes) -> bytes:
    """The PDF with its document identifier made a hash of its content. Typst 0.13 (the one
    Quarto 1.8 runs) derives it from the path of the .typ file, which is a new temporary
    folder on every render; the replacement has the same length, so offsets stay valid."""
    m = _PDF_ID.search(pdf)
    if m is None:
        return pdf
    old = m.group(1)
    new = base64.b64encode(hashlib.md5(pdf.replace(old, b"")).digest())  # 24 bytes, like old
    return pdf.replace(old, new)


def _quarto_failure(log: str) -> str:
    """What stopped a Quarto render, from its log: the exception that ended a code cell (the
    package's own message, e.g. ``ModelError: analysis of ...``), else the last line."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", log)  # Jupyter's tracebacks are coloured
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    raised = [ln for ln in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception): \S", ln)]
    if raised:
        return f"the report's code stopped with {raised[-1][:600]}"
    return lines[-1][:300] if lines else "no output"


def _render_quarto(plan: Path, data: Path, to, out: Path, say, date: str | None = None,
                   posthoc: Sequence[str] = ()) -> dict[str, Path]:
    """Render with Quarto in a temporary copy of the packaged project; only the outputs (and,
    on failure, the whole Quarto log) are written to ``out``."""
    quarto = shutil.which("quarto")
    if quarto is None:
        raise HTEReportError("engine='quarto' but the quarto command is not on PATH; use "
                             "--engine builtin.")
    from hte_report._version import __version__
    from hte_report.data.digest import dataset_sha256
    from hte_report.data.prepare import read_data
    from hte_report.spec.plan import load_plan

    p = load_plan(plan)
    shown, when = report_date(p, date)
    env = quarto_env(when)
    meta = {"date": shown, "plan-hash": p.sha256, "lock-status": p.lock_status(),
            "lock-time": p.lock.locked_at if p.lock else "not locked",
            "data-hash": dataset_sha256(read_data(data)), "hte-version": __version__,
            "trial": p.raw["trial"].get("name") or p.raw["trial"]["id"], "title": p.title}
    if when is None:  # the PDF's creation date (typst-show.typ), never the compile time
        meta["hte-undated"] = "true"
    else:
        meta["hte-epoch"] = str(int(when.timestamp()))
    written: dict[str, Path] = {}
    (out / LOG_NAME).unlink(missing_ok=True)  # a failed render's log, not this render's
    with tempfile.TemporaryDirectory(prefix="hte-quarto-") as tmp:
        project = Path(tmp)
        qmd = write_quarto_project(project)
        for fmt in to:
            qfmt, ext = {"html": ("hte-html", "html"), "pdf": ("hte-typst", "pdf")}[fmt]
            say(f"quarto render ({qfmt})")
            cmd = [quarto, "render", qmd.name, "--to", qfmt,
                   "-P", f"plan:{plan.resolve()}", "-P", f"data:{data.resolve()}"]
            if posthoc:  # (an empty -P value would reach the template as None)
                cmd += ["-P", f"posthoc:{','.join(posthoc)}"]
            for key, value in meta.items():  # the title block reads these (typst-show.typ)
                if key == "date" and when is None and fmt == "html":
                    continue  # Quarto's HTML title block would print "Invalid Date"; the
                    # report's own metadata list says why it is undated
                cmd += ["-M", f"{key}:{value}"]
            proc = subprocess.run(cmd, cwd=project, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, errors="replace")
            result = project / f"{qmd.stem}.{ext}"
            if proc.returncode != 0 or not result.is_file():
                log = out / LOG_NAME
                log.write_text(f"$ {' '.join(cmd)}\n\n{proc.stdout}", encoding="utf-8")
                raise HTEReportError(
                    f"quarto render --to {qfmt} failed (exit {proc.returncode}): "
                    f"{_quarto_failure(proc.stdout)}; the whole Quarto log is in {log}")
            target = out / f"report.{ext}"
            if ext == "pdf":
                target.write_bytes(stable_pdf_id(result.read_bytes()))
            else:
                shutil.copyfile(result, target)
            written[fmt] = target
    return written
