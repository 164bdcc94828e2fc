"""Quarto support: show the report's sections from ``{python}`` cells of a ``.qmd``.

Each section is displayed as one Markdown output. Tables, callouts and figures are raw blocks
for both formats, written by the built-in writers (``{=html}`` from report.html, ``{=typst}``
from report.typst), so the Quarto output has the same table markup and CSS, right-aligned
figures and callout boxes as the built-in one; Pandoc keeps the raw block of the format being
rendered.

Two things keep a Quarto render offline:

- no ``text/html`` MIME output: Quarto adds require.js and jQuery from a CDN to any HTML
  document whose notebook has one (its "JavaScript widget" detection);
- no Quarto callouts: in Typst they import ``@preview/fontawesome``, which Typst downloads at
  compile time. The extension's ``hte-callout`` draws them instead.

Plan and data strings are escaped for Pandoc Markdown (every ASCII punctuation character is
backslash-escaped).
"""

from __future__ import annotations

import re
import string
from pathlib import Path

from hte_report.core.format import clean_text
from hte_report.report import html as html_writer
from hte_report.report import typst as typst_writer
from hte_report.report.content import build_report
from hte_report.report.model import Bullets, Callout, Code, Figure, Para, Report, Table

_PUNCT = re.compile("([" + re.escape(string.punctuation) + "])")


def md(text: object) -> str:
    """Escape text for Pandoc Markdown."""
    return _PUNCT.sub(r"\\\1", clean_text(text)).replace("\n", " ")


def raw(fmt: str, text: str) -> str:
    """A Pandoc raw block for ``fmt`` (``html`` or ``typst``), fenced longer than any run of
    backticks in ``text``."""
    fence = "`" * max(3, 1 + max(map(len, re.findall("`+", text)), default=0))
    return f"{fence}{{={fmt}}}\n{text.rstrip()}\n{fence}\n\n"


def _both(block) -> str:
    """The block as the built-in HTML and Typst writers draw it, one raw block each."""
    return (raw("html", html_writer._block(block))
            + raw("typst", typst_writer._block(block, "figures")))


FIGDIR = "hte-figures"  # PNG copies of the figures, next to the document, for Typst


def _figure(f: Figure) -> str:
    """A figure: the built-in writer's ``<figure>`` (SVG as a data URI) for HTML; for Typst the
    template's ``hte-figure`` with the PNG that :meth:`QuartoReport.show` writes to
    ``hte-figures/`` (the Typst 0.13 that Quarto 1.8 runs writes SVG images to PDF in a
    different order on every run; PNG keeps two renders byte-identical), else the SVG inline."""
    if f.png:
        img = typst_writer.lit(f"{FIGDIR}/{f.name}.png")
    else:
        img = (f"image(bytes({typst_writer.lit(f.svg.decode('utf-8'))}), format: \"svg\", "
               "width: 100%)")
    typ = f"#hte-figure({img}, caption: {typst_writer._content(f.caption)})"
    return raw("html", html_writer._block(f)) + raw("typst", typ)


def markdown(block) -> str:
    """One block as Pandoc Markdown (ending in a blank line)."""
    if isinstance(block, Para):
        return (f"**{md(block.text)}**" if block.strong else md(block.text)) + "\n\n"
    if isinstance(block, Bullets):
        return "\n".join(f"- {md(i)}" for i in block.items) + "\n\n"
    if isinstance(block, (Callout, Table)):
        return _both(block)
    if isinstance(block, Figure):
        return _figure(block)
    if isinstance(block, Code):
        text = clean_text(block.text)
        fence = "`" * max(3, 1 + max(map(len, re.findall("`+", text)), default=0))
        return f"{fence}\n{text}\n{fence}\n\n"
    raise TypeError(type(block).__name__)


def bundle(block) -> dict:
    """The MIME bundle for one block: Markdown only (see the module's docstring)."""
    return {"text/markdown": markdown(block)}


def section_markdown(sec) -> str:
    """A whole section as one Markdown text: its heading, its blocks, and for a post hoc
    section the styled div (HTML) and the template's ``#hte-posthoc`` block (Typst)."""
    anchor = f" {{#{sec.id}}}" if sec.id else ""  # the same anchors as the built-in HTML
    body = f"## {md(sec.title)}{anchor}\n\n" + "".join(markdown(b) for b in sec.blocks)
    if sec.posthoc:
        body = (f"::: {{.hte-posthoc}}\n\n{raw('typst', '#hte-posthoc[')}{body}"
                f"{raw('typst', ']')}:::\n")
    return body


class QuartoReport:
    """The report for a ``.qmd``: ``rep.show("summary")`` displays one section's blocks."""

    def __init__(self, report: Report):
        self.report = report

    @classmethod
    def from_paths(cls, plan: str | Path, data: str | Path, posthoc=()) -> QuartoReport:
        from hte_report.analysis import fit_plan

        return cls(build_report(fit_plan(plan, data, posthoc=posthoc), with_png=True))

    @property
    def meta(self) -> dict:
        return self.report.meta

    def show(self, section_id: str, optional: bool = False) -> None:
        """Display one section as a single Markdown output. One output per cell: Quarto leaves
        headings that come from a cell with several outputs out of the contents list.
        ``optional``: a section only some reports have (the survival sections ``km`` and
        ``ph``) shows nothing when this report has none."""
        from IPython.display import display

        try:
            sec = self.report.section(section_id)
        except KeyError:
            if optional:
                return
            raise
        for b in sec.blocks:
            if isinstance(b, Figure) and b.png:
                Path(FIGDIR).mkdir(exist_ok=True)
                (Path(FIGDIR) / f"{b.name}.png").write_bytes(b.png)
        display({"text/markdown": section_markdown(sec)}, raw=True)
