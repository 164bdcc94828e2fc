"""The report as data: a title block and sections of typed blocks.

Built once in Python from the plan, the data and the tidy results; the HTML and Typst writers
(and the Quarto template) only lay these blocks out. Every string here is plain text: writers
escape it for their format.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


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


@dataclass(frozen=True)
class Figure:
    svg: bytes
    caption: str
    name: str
    alt: str = ""
    png: bytes = b""  # only when asked for (Quarto's typst output, docs images)

    @classmethod
    def from_matplotlib(cls, fig, caption: str, name: str, png: bool = False) -> Figure:
        """SVG (and PNG when asked) of a matplotlib figure, which is then closed."""
        import io

        import matplotlib.pyplot as plt

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
