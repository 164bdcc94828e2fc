"""The report as data: a title block and sections of typed blocks.

Built once in Python from the plan, the data and the tidy results; the HTML and Typst writers
(and the Quarto template) only lay these blocks out. Every string here is plain text: writers
escape it for their format.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import pandas as pd

from hte_report.core.format import clean_label

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def slug(name: str) -> str:
    """A block name safe as a file name, an HTML id and a CSS selector: modifier names come
    from the data, so ``curve-a/b c`` becomes ``curve-a_b_c-`` plus a short hash of the name
    (distinct names stay distinct); names already safe are kept."""
    name = str(name)
    safe = _UNSAFE.sub("_", name)[:60]
    if safe == name:
        return name
    return f"{safe}-{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


@dataclass(frozen=True)
class Para:
    text: str
    strong: bool = False


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Callout:
    kind: str  # note | warning | danger
    title: str
    text: str


@dataclass(frozen=True)
class Table:
    """A display table: string cells. ``gt`` (a great-tables GT) is used for HTML when given."""

    frame: pd.DataFrame
    caption: str
    notes: tuple[str, ...] = ()
    group: str | None = None  # column whose runs become group heading rows
    gt: object = None
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", slug(self.name) if self.name else "")


@dataclass(frozen=True)
class Figure:
    svg: bytes
    caption: str
    name: str
    alt: str = ""
    png: bytes = b""  # only when asked for (Quarto's typst output, docs images)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", slug(self.name))

    @classmethod
    def from_matplotlib(cls, fig, caption: str, name: str, png: bool = False) -> Figure:
        """SVG (and PNG when asked) of a matplotlib figure, which is then closed."""
        import io

        import matplotlib.pyplot as plt

        _plain_text(fig)
        buf = io.BytesIO()
        # Same figure, same bytes: fixed salt for the SVG's clip-path and glyph ids, no date.
        with plt.rc_context({"svg.hashsalt": "hte-report"}):
            fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
        data = b""
        if png:  # PNG metadata holds no date unless given one; Software is the version
            pbuf = io.BytesIO()
            fig.savefig(pbuf, format="png", dpi=200, bbox_inches="tight")
            data = pbuf.getvalue()
        plt.close(fig)
        return cls(buf.getvalue(), caption, name, png=data)


def _plain_text(fig) -> None:
    """Every label of ``fig`` as plain text: no control characters (they make the SVG invalid
    XML) and no mathtext (a ``$`` in a label from the data is a dollar sign). Tick labels are
    left alone: they are numbers, and log axes may draw them with mathtext."""
    from matplotlib.text import Text

    ticks = {id(t) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)
             for t in axis.findobj(Text) if t is not axis.label}
    for t in fig.findobj(Text):
        if id(t) in ticks:
            continue
        t.set_parse_math(False)
        text = t.get_text()
        clean = "\n".join(clean_label(line) for line in text.split("\n"))
        if clean != text:
            t.set_text(clean)


@dataclass(frozen=True)
class Code:
    text: str
    language: str = ""


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple = ()
    id: str = ""
    posthoc: bool = False
    subsections: tuple = ()


@dataclass(frozen=True)
class Report:
    title: str
    meta: dict  # trial, date, plan-hash, lock-time, lock-status, data-hash, version
    sections: tuple[Section, ...] = field(default=())

    def section(self, id_: str) -> Section:
        for s in self.sections:
            if s.id == id_:
                return s
            for sub in s.subsections:
                if sub.id == id_:
                    return sub
        raise KeyError(id_)
