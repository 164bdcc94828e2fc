"""Quarto support: show the report's sections from ``{python}`` cells of a ``.qmd``.

Each block is displayed as a Jupyter MIME bundle that carries both an HTML and a Markdown
representation (tables: great-tables HTML and a pipe table; figures: SVG and PNG), so Quarto
picks HTML for ``hte-html`` and Markdown/images for ``hte-typst``. Plan and data strings are
escaped for Pandoc Markdown (every ASCII punctuation character is backslash-escaped).
"""

from __future__ import annotations

import base64
import re
import string
from html import escape
from pathlib import Path

from hte_report.core.format import clean_text
from hte_report.report.content import build_report
from hte_report.report.model import Bullets, Callout, Code, Figure, Para, Report, Table

_PUNCT = re.compile("([" + re.escape(string.punctuation) + "])")


def md(text: object) -> str:
    """Escape text for Pandoc Markdown."""
    return _PUNCT.sub(r"\\\1", clean_text(text)).replace("\n", " ")


def _md_table(t: Table) -> str:
    cols = [c for c in t.frame.columns if c != t.group]
    lines = [f": {md(t.caption)}", "", "| " + " | ".join(md(c) for c in cols) + " |",
             "|" + "|".join(["---"] * len(cols)) + "|"]
    last = None
    for _, row in t.frame.iterrows():
        if t.group and row[t.group] != last:
            last = row[t.group]
            lines.append("| **" + md(last) + "** |" + " |" * (len(cols) - 1))
        lines.append("| " + " | ".join(md(row[c]) for c in cols) + " |")
    notes = [f"\n{md(n)}" for n in t.notes]
    return "\n".join(lines[2:] + ["", lines[0]] + notes) + "\n"


def bundle(block) -> dict:
    """The MIME bundle for one block."""
    if isinstance(block, Para):
        return {"text/markdown": f"**{md(block.text)}**" if block.strong else md(block.text)}
    if isinstance(block, Bullets):
        return {"text/markdown": "\n".join(f"- {md(i)}" for i in block.items) + "\n"}
    if isinstance(block, Callout):
        kind = {"danger": "important"}.get(block.kind, block.kind)
        return {"text/markdown": f"::: {{.callout-{kind}}}\n"
                                 f"## {md(block.title)}\n\n{md(block.text)}\n:::\n"}
    if isinstance(block, Table):
        out = {"text/markdown": _md_table(block)}
        if block.gt is not None:
            out["text/html"] = clean_text(
                block.gt.with_id(f"hte-{block.name or 'table'}").as_raw_html())
        return out
    if isinstance(block, Figure):
        out = {"image/svg+xml": block.svg.decode("utf-8")}
        if block.png:
            out["image/png"] = base64.b64encode(block.png).decode("ascii")
        return out
    if isinstance(block, Code):
        text = clean_text(block.text)
        fence = "`" * max(3, 1 + max(map(len, re.findall("`+", text)), default=0))
        return {"text/markdown": f"{fence}\n{text}\n{fence}\n",
                "text/html": f"<pre><code>{escape(clean_text(block.text))}</code></pre>"}
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
