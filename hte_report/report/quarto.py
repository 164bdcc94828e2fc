"""Quarto support: show the report's sections from ``{python}`` cells of a ``.qmd``.

Each block is displayed as Markdown (figures: SVG and PNG). Tables and callouts are raw blocks
for both formats, written by the built-in writers (``{=html}`` from report.html, ``{=typst}``
from report.typst), so the Quarto output has the same table markup, right-aligned figures and
callout boxes as the built-in one; Pandoc keeps the raw block of the format being rendered.

Two things keep a Quarto render offline:

- no ``text/html`` MIME output: Quarto adds require.js and jQuery from a CDN to any HTML
  document whose notebook has one (its "JavaScript widget" detection);
- no Quarto callouts: in Typst they import ``@preview/fontawesome``, which Typst downloads at
  compile time. The extension's ``hte-callout`` draws them instead.

Plan and data strings are escaped for Pandoc Markdown (every ASCII punctuation character is
backslash-escaped).
"""

from __future__ import annotations

import base64
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


def _both(block) -> dict:
    """The block as the built-in HTML and Typst writers draw it, one raw block each."""
    return {"text/markdown": raw("html", html_writer._block(block))
            + raw("typst", typst_writer._block(block, "figures"))}


def bundle(block) -> dict:
    """The MIME bundle for one block."""
    if isinstance(block, Para):
        return {"text/markdown": f"**{md(block.text)}**" if block.strong else md(block.text)}
    if isinstance(block, Bullets):
        return {"text/markdown": "\n".join(f"- {md(i)}" for i in block.items) + "\n"}
    if isinstance(block, (Callout, Table)):
        return _both(block)
    if isinstance(block, Figure):
        out = {"image/svg+xml": block.svg.decode("utf-8")}
        if block.png:
            out["image/png"] = base64.b64encode(block.png).decode("ascii")
        return out
    if isinstance(block, Code):
        text = clean_text(block.text)
        fence = "`" * max(3, 1 + max(map(len, re.findall("`+", text)), default=0))
        return {"text/markdown": f"{fence}\n{text}\n{fence}\n"}
    raise TypeError(type(block).__name__)


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

    def show(self, section_id: str) -> None:
        from IPython.display import display

        sec = self.report.section(section_id)
        display({"text/markdown": f"## {md(sec.title)}\n"}, raw=True)
        if sec.posthoc:  # a styled div in HTML; the template's #hte-posthoc block in Typst
            display({"text/markdown": "::: {.hte-posthoc}\n\n```{=typst}\n#hte-posthoc[\n```\n"},
                    raw=True)
        for b in sec.blocks:
            display(bundle(b), raw=True)
        if sec.posthoc:
            display({"text/markdown": "```{=typst}\n]\n```\n\n:::\n"}, raw=True)
