"""Self-contained HTML: inline CSS (the Quarto extension's hte.css), figures as data-URI SVG,
no external request. Every string from the plan or the data is escaped."""

from __future__ import annotations

import base64
import re
from html import escape
from importlib import resources

from hte_report.core.format import clean_text
from hte_report.report.model import Bullets, Callout, Code, Figure, Para, Report, Section, Table

_EXTERNAL = re.compile(r"@import\s+url\([^)]*\);?")


def css() -> str:
    return resources.files("hte_report.report").joinpath("assets/hte.css").read_text("utf-8")


def _e(text: object) -> str:
    """Plan or data text as HTML text: markup escaped, control characters as escapes."""
    return escape(clean_text(text), quote=True)


def _table(t: Table) -> str:
    if t.gt is not None:
        gt = t.gt.with_id(f"hte-{t.name or 'table'}")  # great-tables' own ids are random
        inner = clean_text(_EXTERNAL.sub("", gt.as_raw_html()))  # great-tables escapes markup
        return f'<div class="hte-table">{inner}</div>'
    from hte_report.report.typst import _numeric

    cols = [c for c in t.frame.columns if c != t.group]
    align = {c: "right" if _numeric(t.frame[c]) else "left" for c in cols}
    head = "".join(f'<th style="text-align:{align[c]}">{_e(c)}</th>' for c in cols)
    body, last = [], None
    for _, row in t.frame.iterrows():
        if t.group and row[t.group] != last:
            last = row[t.group]
            body.append(f'<tr class="hte-group"><th colspan="{len(cols)}">{_e(last)}</th></tr>')
        body.append("<tr>" + "".join(f'<td style="text-align:{align[c]}">{_e(row[c])}</td>'
                                     for c in cols) + "</tr>")
    notes = "".join(f'<p class="hte-table-note">{_e(n)}</p>' for n in t.notes)
    return (f'<div class="hte-table"><table class="hte-simple"><caption>{_e(t.caption)}'
            f"</caption><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            f"{notes}</div>")


def _block(b) -> str:
    if isinstance(b, Para):
        inner = f"<strong>{_e(b.text)}</strong>" if b.strong else _e(b.text)
        return f"<p>{inner}</p>"
    if isinstance(b, Bullets):
        return "<ul>" + "".join(f"<li>{_e(i)}</li>" for i in b.items) + "</ul>"
    if isinstance(b, Callout):
        return (f'<div class="hte-callout hte-{_e(b.kind)}"><p class="hte-callout-title">'
                f"{_e(b.title)}</p><p>{_e(b.text)}</p></div>")
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, Figure):
        data = base64.b64encode(b.svg).decode("ascii")
        alt = _e(b.alt or b.caption)
        return (f'<figure class="hte-figure" id="fig-{_e(b.name)}"><img alt="{alt}"'
                f' src="data:image/svg+xml;base64,{data}"><figcaption>{_e(b.caption)}'
                "</figcaption></figure>")
    if isinstance(b, Code):
        return f'<pre class="hte-code"><code>{_e(b.text)}</code></pre>'
    raise TypeError(f"unknown block {type(b).__name__}")


def _section(s: Section) -> str:
    cls = "hte-section hte-posthoc" if s.posthoc else "hte-section"
    body = "".join(_block(b) for b in s.blocks)
    return f'<section class="{cls}" id="{_e(s.id)}"><h2>{_e(s.title)}</h2>{body}</section>'


def render_html(report: Report) -> str:
    m = report.meta
    status = m["lock-status"]
    banner = {
        "matches": ("hte-lock-ok", f"Plan locked {m['lock-time']} and unchanged since."),
        "modified": ("hte-lock-modified", "Plan modified after locking — results are not "
                                          "confirmatory."),
        "unlocked": ("hte-lock-unlocked", "Plan not locked."),
    }[status]
    meta_rows = [("Trial", m["trial"]), ("Outcome", m["outcome"]), ("Date", m["date"]),
                 ("Plan SHA-256", m["plan-hash"]), ("Lock time", m["lock-time"]),
                 ("Lock status", status), ("Data SHA-256", m["data-hash"]),
                 ("hte_report", m["version"])]
    meta = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in meta_rows)
    toc = "".join(f'<li><a href="#{_e(s.id)}">{_e(s.title)}</a></li>' for s in report.sections)
    sections = "".join(_section(s) for s in report.sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(report.title)}</title><style>{css()}</style></head><body>"
        f'<header class="hte-title-block"><h1>{_e(report.title)}</h1>'
        f'<p class="hte-subtitle">{_e(m["trial"])}</p>'
        f'<div class="{banner[0]}">{_e(banner[1])}</div>'
        f'<table class="hte-meta">{meta}</table></header>'
        f'<nav class="hte-toc"><h2>Contents</h2><ol>{toc}</ol></nav>'
        f"<main>{sections}</main></body></html>\n"
    )
