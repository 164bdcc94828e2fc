"""Tables and figures out of the package, for a clinical study report: the subgroup table as
Word (``.docx``, python-docx), RTF (rtflite) and LaTeX (great-tables), figures at a chosen size
and resolution (PNG/SVG/PDF), and the analysis-results data (ARD, one row per statistic) as
CSV/Parquet/JSON.

Every function takes an :class:`HTEResult` and a path and returns the path written. The
tables hold the same strings as :func:`~hte_report.presentation.tables.subgroup_frame` (and so
as the HTML/PDF report), with a title, the column headers, one heading row per modifier and
the notes under the table; Word and RTF pages are landscape with the table across the page.
Word and RTF need the ``export`` extra: ``pip install 'hte-report[export]'``. ``labels=`` and
``arm_labels=`` set display labels of modifiers and arms, as in the forest plot.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from hte_report.core.format import clean_text
from hte_report.errors import DataError
from hte_report.presentation.plots.style import relabelled
from hte_report.presentation.tables import (
    column_labels,
    scale_notes,
    source_notes,
    subgroup_frame,
    subgroup_table,
)
from hte_report.spec.options import OptionError, check_flags

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from hte_report.results.result import HTEResult

_COLUMNS = ("subgroup", "treated", "control")
_LATEX_TEXT = {"\u2212": "$-$", "\u00d7": "$\\times$", "\u2026": "\\ldots{}", "\u2013": "--",
               "\u2014": "---", "\u2265": "$\\geq$", "\u2264": "$\\leq$", "\u03c7": "$\\chi$",
               "\u00b2": "$^2$", "\u2192": "$\\rightarrow$", "\u2190": "$\\leftarrow$"}


def table_content(result: HTEResult, *, adjusted: bool = True, title: str | None = None,
                  labels: dict[str, str] | None = None,
                  arm_labels: tuple[str, str] | None = None) -> dict:
    """What every table export writes: ``title``, ``subtitle``, ``header`` (column labels),
    ``rows`` (one list of cells per row; a modifier's heading row has its label in the first
    cell and ``None`` elsewhere), ``kinds`` (``"heading"`` / ``"row"`` per row) and
    ``notes``.

    ``labels``: display labels of modifiers over the result's (e.g. a SAS file's variable
    labels, :func:`hte_report.data.readers.variable_labels`); ``arm_labels``: ``(control,
    treated)`` names for the count columns."""
    result = relabelled(result, arm_labels, labels)
    check_flags(adjusted=adjusted)
    df = subgroup_frame(result, adjusted=adjusted)
    labels = column_labels(result)
    cols = [c for c in df.columns if c != "group"]
    header = ["Subgroup" if c == "subgroup" else labels.get(c, c) for c in cols]
    rows, kinds, group = [], [], None
    for _, r in df.iterrows():
        if r["group"] != group:
            group = r["group"]
            rows.append([group] + [None] * (len(cols) - 1))
            kinds.append("heading")
        rows.append([str(r[c]) for c in cols])
        kinds.append("row")
    ctrl, trt = result.treatment_labels
    pct = f"{100 * result.conf_level:g}%"
    subtitle = (f"{result.treatment}: {', '.join(result.comparisons)}" if result.comparisons
                else f"{result.treatment} = {trt} vs {ctrl}") + f"; {pct} confidence intervals"
    notes = list(scale_notes(result, adjusted).values()) + source_notes(result)
    return {"title": clean_text(title or f"Treatment effect by subgroup: {result.outcome}"),
            "subtitle": clean_text(subtitle), "header": header, "rows": rows, "kinds": kinds,
            "notes": notes, "columns": cols}


def _path(path: str | Path, suffixes: tuple[str, ...], what: str) -> Path:
    import os

    if not isinstance(path, (str, os.PathLike)):
        from hte_report.errors import ArgumentError

        raise ArgumentError(f"{what} goes to a file: give its path (a {' or '.join(suffixes)} "
                            f"file), got {type(path).__name__}.")
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise OptionError(f"{what} goes to a {' or '.join(suffixes)} file, not "
                          f"{path.name!r}.")
    if not path.parent.exists():
        raise DataError(f"folder {str(path.parent)!r} does not exist.")
    if path.is_dir():
        raise DataError(f"{str(path)!r} is a folder; give the path of the {path.suffix} file "
                        "to write.")
    return path


def _needs(module: str, package: str, what: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise DataError(f"{what} needs {package}: pip install 'hte-report[export]' (or pip "
                        f"install {package}).") from None


# ------------------------------------------------------------------------------- Word
def to_docx(result: HTEResult, path: str | Path, *, title: str | None = None,
            adjusted: bool = True, font_size: float = 9.0, landscape: bool = True,
            labels: dict[str, str] | None = None,
            arm_labels: tuple[str, str] | None = None) -> Path:
    """The subgroup table as a Word document: title and subtitle, a table across the page
    (header row repeated on every page, a bold heading row per modifier), notes below."""
    path = _path(path, (".docx",), "A Word table")
    check_flags(landscape=landscape)
    if (isinstance(font_size, bool) or not isinstance(font_size, (int, float))
            or not 4 <= font_size <= 72):
        raise OptionError(f"font_size= must be a number of points from 4 to 72, got "
                          f"{font_size!r}.")
    docx = _needs("docx", "python-docx", "Word output")
    from docx.enum.section import WD_ORIENT
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    from docx.shared import Pt

    content = table_content(result, adjusted=adjusted, title=title, labels=labels,
                            arm_labels=arm_labels)
    doc = docx.Document()
    section = doc.sections[0]
    if landscape:
        section.orientation = WD_ORIENT.LANDSCAPE
        section.page_width, section.page_height = section.page_height, section.page_width
    style = doc.styles["Normal"]
    style.font.size = Pt(font_size)
    doc.add_heading(content["title"], level=2)
    doc.add_paragraph(content["subtitle"])
    n = len(content["header"])
    table = doc.add_table(rows=1, cols=n)
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    table.autofit = True
    width = section.page_width - section.left_margin - section.right_margin
    first = 0.28  # the subgroup column's share of the page width
    widths = [int(width * first)] + [int(width * (1 - first) / (n - 1))] * (n - 1)
    head = table.rows[0]
    flag = OxmlElement("w:tblHeader")  # repeat the header row on every page
    flag.set(qn("w:val"), "true")
    head._tr.get_or_add_trPr().append(flag)
    for j, text in enumerate(content["header"]):
        cell = head.cells[j]
        cell.text = ""
        run = cell.paragraphs[0].add_run(text)
        run.bold = True
    for cells, kind in zip(content["rows"], content["kinds"]):
        row = table.add_row()
        if kind == "heading":
            merged = row.cells[0].merge(row.cells[n - 1])
            merged.text = ""
            merged.paragraphs[0].add_run(cells[0]).bold = True
            continue
        for j, text in enumerate(cells):
            row.cells[j].text = text
            if j:
                row.cells[j].paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.RIGHT
    for row in table.rows:
        for j, cell in enumerate(row.cells[:n]):
            cell.width = widths[min(j, n - 1)]
    for note in content["notes"]:
        p = doc.add_paragraph(note)
        p.paragraph_format.space_after = Pt(2)
        for run in p.runs:
            run.font.size = Pt(max(font_size - 1, 6))
    doc.save(str(path))
    return path


# -------------------------------------------------------------------------------- RTF
def to_rtf(result: HTEResult, path: str | Path, *, title: str | None = None,
           adjusted: bool = True, landscape: bool = True, labels: dict[str, str] | None = None,
           arm_labels: tuple[str, str] | None = None) -> Path:
    """The subgroup table as RTF (rtflite): title and subtitle, the column header, a heading
    row per modifier, notes as footnotes; landscape and page-wide as a CSR appendix
    expects."""
    path = _path(path, (".rtf",), "An RTF table")
    check_flags(landscape=landscape)
    rtf = _needs("rtflite", "rtflite", "RTF output")
    import polars as pl  # a dependency of rtflite

    content = table_content(result, adjusted=adjusted, title=title, labels=labels,
                            arm_labels=arm_labels)
    # every text as RTF, with rtflite's own conversion off: it reads '_' and '^' as subscript
    # and superscript ('work_exp' showed as work with a subscript exp) and writes Latin-1
    # letters as raw UTF-8 bytes, which Word shows as two characters ('Ã¼' for 'ü')
    def text(v):
        return _rtf_text(v) if isinstance(v, str) else v

    content = {**content, "title": text(content["title"]),
               "subtitle": text(content["subtitle"]),
               "header": [text(h) for h in content["header"]],
               "rows": [[text(c) for c in cells] for cells in content["rows"]],
               "notes": [text(note) for note in content["notes"]]}
    n = len(content["header"])
    body = [[c if c is not None else "" for c in cells] for cells in content["rows"]]
    frame = pl.DataFrame({f"c{j}": [r[j] for r in body] for j in range(n)})
    widths = [3.0] + [1.6] * (n - 1)
    bold = [["b" if k == "heading" else ""] + [""] * (n - 1) for k in content["kinds"]]
    just = [["l"] + ["r"] * (n - 1) for _ in content["kinds"]]
    doc = rtf.RTFDocument(
        df=frame,
        rtf_page=rtf.RTFPage(orientation="landscape" if landscape else "portrait"),
        rtf_title=rtf.RTFTitle(text=[content["title"], content["subtitle"]],
                               text_convert=[False]),
        rtf_column_header=[rtf.RTFColumnHeader(text=content["header"], col_rel_width=widths,
                                               text_format=["b"] * n, text_convert=[False])],
        rtf_body=rtf.RTFBody(col_rel_width=widths, text_format=bold,
                             text_justification=just,
                             text_convert=[[False] * n for _ in content["kinds"]]),
        rtf_footnote=rtf.RTFFootnote(text=content["notes"], text_convert=[False]),
    )
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # rtflite prints the path it writes
        doc.write_rtf(str(path))
    return path


def _rtf_text(text: str) -> str:
    """Text as RTF: braces and backslashes escaped, line breaks and tabs as control words,
    other control characters as spaces, and every non-ASCII character as a Unicode escape
    (``\\u252\\'3f``; UTF-16 surrogate pairs beyond the Basic Multilingual Plane)."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in "\\{}":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\line ")
        elif ch == "\t":
            out.append("\\tab ")
        elif code < 32:
            out.append(" ")
        elif code < 128:
            out.append(ch)
        else:
            units = ch.encode("utf-16-le")
            for i in range(0, len(units), 2):
                unit = int.from_bytes(units[i:i + 2], "little")
                # the fallback character as a hex escape (\\'3f, '?'), as Word writes it
                out.append(f"\\uc1\\u{unit - 65536 if unit >= 32768 else unit}\\'3f")
    return "".join(out)


# ------------------------------------------------------------------------------ LaTeX
def to_latex(result: HTEResult, path: str | Path | None = None, *, title: str | None = None,
             adjusted: bool = True, unicode: bool = False, labels: dict[str, str] | None = None,
             arm_labels: tuple[str, str] | None = None) -> str:
    """The subgroup table as LaTeX (great-tables' ``as_latex``; needs the booktabs and
    caption packages). great-tables cannot render footnote marks in LaTeX, so the column
    footnotes become notes under the table. ``unicode=False`` (default) writes minus signs,
    dashes and symbols as LaTeX commands, so pdfLaTeX compiles it; ``True`` keeps them (for
    XeLaTeX/LuaLaTeX). Returns the LaTeX text (and writes it to ``path`` when given)."""
    if path is not None:
        path = _path(path, (".tex",), "A LaTeX table")
    result = relabelled(result, arm_labels, labels)
    gt = subgroup_table(result, adjusted=adjusted, title=title, footnotes="notes")
    import warnings

    try:
        with warnings.catch_warnings():  # the HTML-only styles (tabular figures) are dropped
            warnings.filterwarnings("ignore", "Styles are not yet supported in LaTeX")
            text = gt.as_latex()
    except NotImplementedError as exc:  # a great-tables feature without LaTeX support
        raise DataError(f"great-tables cannot write this table as LaTeX: {exc}") from None
    if not unicode:
        for char, command in _LATEX_TEXT.items():
            text = text.replace(char, command)
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


# ---------------------------------------------------------------------------- figures
FIGURE_SUFFIXES = (".png", ".svg", ".pdf")


def save_figure(fig: Figure, path: str | Path, *, width: float | None = None,
                height: float | None = None, dpi: float = 300) -> Path:
    """Save a figure (e.g. ``result.forest(...)``) as PNG, SVG or PDF at ``width`` x
    ``height`` inches (default: its own size; one given, the other keeps the aspect ratio)
    and ``dpi`` (PNG). A forest plot is laid out for its own size: draw it again with a
    larger ``ForestStyle`` rather than stretching it far."""
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        from hte_report.errors import ArgumentError

        raise ArgumentError(f"save_figure() takes a matplotlib Figure (e.g. res.forest()), got "
                            f"{type(fig).__name__}.")
    path = _path(path, FIGURE_SUFFIXES, "A figure")
    for name, v in (("width", width), ("height", height), ("dpi", dpi)):
        if v is not None and not (isinstance(v, (int, float)) and not isinstance(v, bool)
                                  and 0 < v < 1e4):
            raise OptionError(f"{name}= must be a positive number, got {v!r}.")
    w0, h0 = fig.get_size_inches()
    if width is not None or height is not None:
        w = width if width is not None else w0 * height / h0
        h = height if height is not None else h0 * width / w0
        fig.set_size_inches(w, h)
    try:
        fig.savefig(path, dpi=dpi, metadata={"Software": None} if path.suffix == ".png"
                    else None)
    finally:
        fig.set_size_inches(w0, h0)
    return path


# -------------------------------------------------------------------------------- ARD
def save_ard(result: HTEResult, path: str | Path) -> Path:
    """The analysis-results data (:mod:`hte_report.results.ard`) as CSV, Parquet or JSON."""
    from hte_report.results import ard

    _path(path, (".csv", ".parquet", ".pq", ".json"), "An analysis-results dataset")
    return ard.write_ard(ard.to_ard(result), path)


def ard_frame(result: HTEResult) -> pd.DataFrame:
    """The analysis-results data as a pandas frame (one row per statistic)."""
    from hte_report.results import ard

    return ard.to_ard(result)
