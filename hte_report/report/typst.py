"""Typst source for the PDF, laid out by the Quarto extension's ``typst-template.typ``.

Every string from the plan or the data enters Typst as a string literal (``#"..."``), so markup
and code in it (``#read(...)``, ``*bold*``) stay text.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from hte_report.core.format import clean_text
from hte_report.report.model import Bullets, Callout, Code, Figure, Para, Report, Section, Table

TEMPLATE = "typst-template.typ"


def template_source() -> str:
    return resources.files("hte_report.report").joinpath(f"assets/{TEMPLATE}").read_text("utf-8")


def lit(text: object) -> str:
    """A Typst string literal for any text (control characters shown as escapes)."""
    s = clean_text(text).replace("\\", "\\\\").replace('"', '\\"')
    s = s.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{s}"'


_LONG = re.compile(r"[^\s\u00a0]{31,}")
_CHUNK = 15


def _markup(text: object) -> str:
    """Text as Typst markup: string literals (so nothing in it is markup or code), with words
    of more than 30 characters (a long label, a hash) cut into boxes of 15, between which a
    line or a table cell may break; no character is added, so copied text stays exact."""
    s = clean_text(text)
    out, pos = [], 0
    for m in _LONG.finditer(s):
        if m.start() > pos:
            out.append(f"#{lit(s[pos:m.start()])}")
        word = m.group()
        out.extend(f"#box({lit(word[i:i + _CHUNK])})" for i in range(0, len(word), _CHUNK))
        pos = m.end()
    if pos < len(s) or not out:
        out.append(f"#{lit(s[pos:])}")
    return "".join(out)


def _content(text: object) -> str:
    return f"[{_markup(text)}]"


def _table(t: Table) -> str:
    cols = [c for c in t.frame.columns if c != t.group]
    n = len(cols)
    num = {c: _numeric(t.frame[c]) for c in cols}
    cells = [f"table.header({', '.join(f'[*{_markup(c)}*]' for c in cols)})"]
    last = None
    for _, row in t.frame.iterrows():
        if t.group and row[t.group] != last:
            last = row[t.group]
            cells.append(f"table.cell(colspan: {n}, fill: luma(240))[*{_markup(last)}*]")
        cells.extend(_content(_nbsp(row[c]) if num[c] else row[c]) for c in cols)
    align = "(" + ", ".join("right" if num[c] else "left" for c in cols) + ",)"
    notes = "".join(f"\n#text(size: 7.5pt){_content(x)}\n" for x in t.notes)
    if notes:  # the last note ends its paragraph: Pandoc (Quarto) sets the next paragraph
        notes += "#parbreak()\n"  # right after a raw block, which would join the two
    fig = (f"#figure(kind: table, caption: {_content(t.caption)}, "
           f"table(columns: {n}, align: {align}, {', '.join(cells)}))")
    if _table_lines(t) <= ONE_PAGE_LINES:  # fits a page: moves whole, caption included
        fig = f"#[#show figure: set block(breakable: false)\n{fig}]"
    return f"{fig}\n{notes}\n"


#: Tables estimated at up to this many lines of table text (about 60% of an A4 page's text
#: height) are unbreakable: a page break before them moves the caption, the header and every
#: row to the next page together. Longer tables run across pages (header repeated), their
#: caption sticky to the table (typst-template.typ).
ONE_PAGE_LINES = 28
_LINE_CHARS = 118  # characters of 8.6 pt table text in the 17 cm text width


def _table_lines(t: Table) -> int:
    """Estimated height of a table in lines: the header, group rows and each row's tallest
    cell, with columns sharing the text width in proportion to their longest entry."""
    cols = [c for c in t.frame.columns if c != t.group]
    if not cols:
        return 1
    text = {c: [str(v) for v in t.frame[c]] for c in cols}
    longest = {c: max([len(str(c)), *map(len, text[c])]) for c in cols}
    room = max(_LINE_CHARS - 2.5 * len(cols), len(cols))
    total = sum(longest.values())
    width = {c: longest[c] if total <= room else max(4.0, room * longest[c] / total)
             for c in cols}

    def lines(cells: list[str]) -> int:
        return max(-(-len(v) // max(1, int(width[c]))) or 1
                   for c, v in zip(cols, cells, strict=True))

    n = lines([str(c) for c in cols])
    if t.group:
        n += t.frame[t.group].ne(t.frame[t.group].shift()).sum()
    for i in range(len(t.frame)):
        n += lines([text[c][i] for c in cols])
    return int(n)


_NUMERIC = re.compile(r"^[\s\d.,()<>%/+\-\u2212–to adje∞]*$")


def _numeric(col) -> bool:
    """Right-align columns of numbers, intervals and p-values; left-align text."""
    vals = [str(v) for v in col if str(v) not in ("", "–")]
    return bool(vals) and all(_NUMERIC.match(v) for v in vals)


def _nbsp(text: object) -> str:
    """Keep an estimate and its interval on one line."""
    return str(text).replace(" ", "\u00a0")


def _block(b, figdir: str) -> str:
    if isinstance(b, Para):
        if b.strong:  # a title line: on the page of what follows it (Typst >= 0.12)
            inner = f"strong{_content(b.text)}"
            return (f"#if sys.version >= version(0, 12, 0) {{ block(sticky: true, {inner}) }} "
                    f"else {{ {inner} }}\n\n")
        return _markup(b.text) + "\n\n"
    if isinstance(b, Bullets):
        return "".join(f"- {_markup(i)}\n" for i in b.items) + "\n"
    if isinstance(b, Callout):
        return (f"#hte-callout(kind: {lit(b.kind)}, title: {lit(b.title)})"
                f"{_content(b.text)}\n\n")
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, Figure):
        return (f"#hte-figure({lit(f'{figdir}/{b.name}.svg')}, caption: {_content(b.caption)})"
                "\n\n")
    if isinstance(b, Code):
        return f"#text(size: 7pt, raw({lit(b.text)}, block: true, lang: {lit(b.language)}))\n\n"
    raise TypeError(f"unknown block {type(b).__name__}")


def _section(s: Section, figdir: str) -> str:
    body = f"= #{lit(s.title)} <{s.id}>\n\n" + "".join(_block(b, figdir) for b in s.blocks)
    if s.posthoc:
        return f"#hte-posthoc[\n{body}]\n\n"
    return body


def render_typst(report: Report, figdir: str = "figures") -> str:
    m = report.meta
    args = ", ".join([
        f"title: {lit(report.title)}", f"trial: {lit(m['trial'])}", f"date: {lit(m['date'])}",
        f"plan-hash: {lit(m['plan-hash'])}", f"lock-time: {lit(m['lock-time'])}",
        f"lock-status: {lit(m['lock-status'])}", f"data-hash: {lit(m['data-hash'])}",
        f"version: {lit(m['version'])}", "toc: true",
    ])
    body = "".join(_section(s, figdir) for s in report.sections)
    return (f'#import "{TEMPLATE}": *\n#set document(date: {_typst_date(m.get("timestamp"))})\n'
            f"#show: hte-report.with({args})\n"
            "#show figure.where(kind: table): set block(breakable: true)\n"
            "#show heading: set block(sticky: true)\n\n" + body)


def _typst_date(when) -> str:
    """The PDF's creation date from the report (never the compile time): ``none`` when undated."""
    if when is None:
        return "none"
    return (f"datetime(year: {when.year}, month: {when.month}, day: {when.day}, "
            f"hour: {when.hour}, minute: {when.minute}, second: {when.second})")


def write_typst_project(report: Report, outdir: Path) -> Path:
    """Write report.typ, the template and the figures (SVG) into ``outdir``."""
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / TEMPLATE).write_text(template_source(), encoding="utf-8")
    figdir = outdir / "figures"
    figdir.mkdir(exist_ok=True)
    for s in report.sections:
        for b in s.blocks:
            if isinstance(b, Figure):
                (figdir / f"{b.name}.svg").write_bytes(b.svg)
    path = outdir / "report.typ"
    path.write_text(render_typst(report), encoding="utf-8")
    return path


def compile_pdf(typ_path: Path, pdf_path: Path) -> Path:
    try:
        import typst
    except ImportError as exc:  # pragma: no cover - typst is a dependency
        raise RuntimeError("rendering PDF requires the `typst` package: pip install typst") \
            from exc
    typst.compile(str(typ_path), output=str(pdf_path), root=str(typ_path.parent))
    return pdf_path
