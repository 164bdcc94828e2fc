"""The Quarto extension in _extensions/hte: format definition, Typst template and CSS.

The Typst template is compiled with the PyPI ``typst`` package (the same compiler the
package uses for its own PDF output) using only the fonts Typst embeds, so the result
does not depend on the fonts installed on the machine.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

EXT = Path(__file__).resolve().parents[1] / "_extensions" / "hte"
TEMPLATE = EXT / "typst-template.typ"
SHOW = EXT / "typst-show.typ"
CSS = EXT / "hte.css"

PLAN_HASH = "3f2a9c1e0b7d4e5f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f"
DATA_HASH = "9c8d7e6f3f2a9c1e0b7d4e5f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b"
TITLE = "Heterogeneity of treatment effect in EXAMPLE-1"
MODIFIED_BANNER = "Plan modified after locking — results are not confirmatory"
UNLOCKED_BANNER = "Plan not locked"


# --------------------------------------------------------------------------- helpers


def _extension() -> dict:
    return yaml.safe_load((EXT / "_extension.yml").read_text(encoding="utf-8"))


def _signature(source: str, name: str) -> str:
    """Parameter list of `#let name(...) =` (parentheses balanced)."""
    start = source.index(f"#let {name}(") + len(f"#let {name}(")
    depth, i = 1, start
    while depth:
        depth += {"(": 1, ")": -1}.get(source[i], 0)
        i += 1
    return source[start : i - 1]


def _top_level_names(params: str) -> set[str]:
    """Named parameters at nesting depth 0 (skips keys inside default dictionaries)."""
    params = re.sub(r"//[^\n]*", "", params)
    names, depth, token = set(), 0, ""
    for ch in params:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == ":" and depth == 0:
            m = re.search(r"([a-z][a-z0-9-]*)\s*$", token)
            if m:
                names.add(m.group(1))
        if ch == "," and depth == 0:
            token = ""
        else:
            token += ch
    return names


def _compile(src: Path, out: Path) -> list:
    """Compile with the PyPI typst package, embedded fonts only; return the warnings."""
    typst = pytest.importorskip("typst")
    kwargs = {"output": str(out), "font_paths": [], "ignore_system_fonts": True}
    if hasattr(typst, "compile_with_warnings"):
        _, warnings = typst.compile_with_warnings(str(src), **kwargs)
        return list(warnings)
    typst.compile(str(src), **kwargs)
    return []


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    text = "\n".join(page.extract_text() or "" for page in PdfReader(str(path)).pages)
    return re.sub(r"[ \t]+", " ", text)


def _png(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 2.5))
    ax.plot([0, 1, 2, 3], [0.02, -0.01, -0.03, -0.05], marker="o")
    ax.set_xlabel("baseline risk")
    ax.set_ylabel("risk difference")
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)


def _typst_str(value: str | None) -> str:
    return "none" if value is None else f'"{value}"'


def _document(lock_status: str | None) -> str:
    return f"""#import "typst-template.typ": *
#show: hte-report.with(
  title: [{TITLE}],
  subtitle: [Pre-registered analysis report],
  trial: [EXAMPLE-1 (NCT01234567)],
  date: "2025-03-14",
  plan-hash: "{PLAN_HASH}",
  lock-time: "2024-11-02 09:41 UTC",
  lock-status: {_typst_str(lock_status)},
  data-hash: "{DATA_HASH}",
  version: "0.1.0",
  toc: true,
)

= Summary
The estimand is the risk difference at 12 months.

#hte-callout(kind: "note", title: [Estimand])[Risk difference at 12 months.]
#hte-callout(kind: "warning")[Intervals are wide in small subgroups.]
#hte-callout(kind: "danger", title: [Deviation])[The outcome definition changed.]

= Effects by subgroup
#table(
  columns: (auto, auto, auto),
  align: (left, right, right),
  table.header[Subgroup][n][RD (95% CI)],
  [Age < 65], [1,204], [−0.031 (−0.052, −0.010)],
  [Age ≥ 65], [988], [−0.058 (−0.090, −0.026)],
)

#hte-figure("fig.png", caption: [Risk difference by baseline risk.], width: 60%)

#hte-posthoc[
  == Exploratory: effect by eGFR
  Not in the plan.
]
"""


# --------------------------------------------------------------------------- format


def test_extension_yaml_declares_formats():
    ext = _extension()
    assert ext["title"] == "HTE report"
    assert ext["author"]
    assert ext["version"]
    assert ext["quarto-required"] == ">=1.4.0"
    formats = ext["contributes"]["formats"]
    assert set(formats) == {"common", "html", "typst"}

    common = formats["common"]
    assert common["execute"]["echo"] is False
    assert common["execute"]["warning"] is False

    html = formats["html"]
    assert html["embed-resources"] is True
    assert html["css"] == "hte.css"
    assert html["toc"] is True
    assert html["theme"] == ["cosmo", "hte.scss"]  # hte.scss turns off web fonts
    assert "$web-font-path: false" in (EXT / "hte.scss").read_text()

    typ = formats["typst"]
    assert typ["template-partials"] == ["typst-template.typ", "typst-show.typ"]
    assert typ["papersize"] == "a4"
    assert typ["toc"] is True


def test_every_referenced_file_exists():
    formats = _extension()["contributes"]["formats"]
    referenced = list(formats["typst"]["template-partials"])
    css = formats["html"]["css"]
    referenced += css if isinstance(css, list) else [css]
    for name in referenced:
        assert (EXT / name).is_file(), name


def test_partials_are_safe_for_pandoc_templates():
    # Quarto passes template partials through pandoc's template engine, where `$`
    # starts a variable: the layout file must contain none (hence no Typst math).
    assert "$" not in TEMPLATE.read_text(encoding="utf-8")
    # It must not pull packages from the network either.
    for path in (TEMPLATE, SHOW):
        assert not re.search(r"#import\s+\"@", path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- typst


def test_template_signatures():
    source = TEMPLATE.read_text(encoding="utf-8")
    assert _top_level_names(_signature(source, "hte-report")) == {
        "title", "subtitle", "trial", "date", "plan-hash", "lock-time", "lock-status",
        "data-hash", "version", "paper", "margin", "font", "fontsize", "toc",
    }
    assert _top_level_names(_signature(source, "hte-callout")) == {"kind", "title"}
    assert _signature(source, "hte-posthoc").strip() == "body"
    assert _top_level_names(_signature(source, "hte-figure")) == {"caption", "width"}


def test_show_only_passes_parameters_hte_report_accepts():
    template = TEMPLATE.read_text(encoding="utf-8")
    accepted = _top_level_names(_signature(template, "hte-report"))
    show = SHOW.read_text(encoding="utf-8")
    assert "#show: doc => hte-report(" in show
    call = show[show.index("hte-report(") :]
    # drop pandoc conditionals/loops and comments; what remains are `name: value` lines
    call = re.sub(r"\$(?:if|endif|for|endfor|else|sep)[^$]*\$", "", call)
    passed = {
        m.group(1)
        for m in re.finditer(r"^\s*([a-z][a-z0-9-]*)\s*:", call, flags=re.MULTILINE)
    }
    assert passed, "no arguments found in typst-show.typ"
    assert passed <= accepted, passed - accepted
    assert re.search(r"^\s*doc,\s*$", call, flags=re.MULTILINE), "body must be passed last"
    # every custom metadata key and every Quarto option the brief names is forwarded
    for key in ("title", "trial", "plan-hash", "lock-time", "lock-status", "data-hash",
                "hte-version", "papersize", "mainfont", "fontsize", "toc"):
        assert f"$if({key})$" in show, key
    assert 'version: "$hte-version$"' in show
    assert 'paper: "$papersize$"' in show


@pytest.mark.parametrize("lock_status", ["matches", "modified", "unlocked", None])
def test_template_compiles_and_renders(tmp_path, lock_status):
    shutil.copy(TEMPLATE, tmp_path / "typst-template.typ")
    _png(tmp_path / "fig.png")
    doc = tmp_path / "report.typ"
    doc.write_text(_document(lock_status), encoding="utf-8")
    pdf = tmp_path / "report.pdf"

    warnings = _compile(doc, pdf)
    assert not warnings, warnings

    text = _pdf_text(pdf)
    assert TITLE in text
    assert "EXAMPLE-1 (NCT01234567)" in text
    assert "2025-03-14" in text
    assert PLAN_HASH[:16] in text
    assert PLAN_HASH in text.replace("\n", "")  # full hash, no separators inserted
    assert DATA_HASH in text.replace("\n", "")
    assert "0.1.0" in text
    assert "Post hoc" in text
    assert "Estimand" in text and "Warning" in text and "Deviation" in text
    assert "Risk difference by baseline risk." in text
    assert re.search(r"page 1 of \d", text)
    assert ("Contents" in text) and ("Effects by subgroup" in text)

    assert (MODIFIED_BANNER in text) == (lock_status == "modified")
    assert (UNLOCKED_BANNER in text) == (lock_status == "unlocked")
    if lock_status == "matches":
        assert "matches the locked plan" in text


def test_unknown_lock_status_and_callout_kind_are_errors(tmp_path):
    typst = pytest.importorskip("typst")
    shutil.copy(TEMPLATE, tmp_path / "typst-template.typ")
    bad_status = tmp_path / "bad_status.typ"
    bad_status.write_text(
        '#import "typst-template.typ": *\n#show: hte-report.with(lock-status: "maybe")\nx\n',
        encoding="utf-8",
    )
    with pytest.raises(Exception, match="lock-status"):
        typst.compile(str(bad_status), font_paths=[], ignore_system_fonts=True)
    bad_kind = tmp_path / "bad_kind.typ"
    bad_kind.write_text(
        '#import "typst-template.typ": *\n#hte-callout(kind: "tip")[x]\n', encoding="utf-8"
    )
    with pytest.raises(Exception, match="hte-callout"):
        typst.compile(str(bad_kind), font_paths=[], ignore_system_fonts=True)


def _pandoc() -> list[str] | None:
    """pandoc, or the one Quarto bundles (`quarto pandoc`)."""
    if shutil.which("pandoc"):
        return ["pandoc"]
    if shutil.which("quarto"):
        return ["quarto", "pandoc"]
    return None


@pytest.mark.skipif(_pandoc() is None, reason="neither pandoc nor quarto is on PATH")
def test_quarto_style_assembly_with_pandoc_templates(tmp_path):
    """Assemble the partials the way Quarto's typst template.typ does (layout partial,
    then show partial, then body), with pandoc's own template engine, and compile."""
    for path in (TEMPLATE, SHOW):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "template.typ").write_text(
        "$typst-template.typ()$\n\n$typst-show.typ()$\n\n$body$\n", encoding="utf-8"
    )
    (tmp_path / "in.md").write_text(
        f"""---
title: "{TITLE}"
subtitle: Quarto rendering
trial: "EXAMPLE-1"
date: 2025-03-14
plan-hash: {PLAN_HASH}
lock-time: "2024-11-02T09:41:00Z"
lock-status: modified
data-hash: {DATA_HASH}
hte-version: 0.1.0
papersize: us-letter
margin:
  x: 2.5cm
  y: 2cm
mainfont: Font That Does Not Exist
fontsize: 11pt
toc: true
---

Body text.
""",
        encoding="utf-8",
    )
    # `plain` output: no escaping of metadata values (the typst writer of pandoc >= 3.1.2
    # escapes markup characters, which the values above do not contain).
    subprocess.run(
        [*_pandoc(), "in.md", "-t", "plain", "--template", "template.typ", "-o", "out.typ"],
        cwd=tmp_path, check=True, capture_output=True,
    )
    out = (tmp_path / "out.typ").read_text(encoding="utf-8")
    assert 'paper: "us-letter"' in out and "version: \"0.1.0\"" in out
    warnings = _compile(tmp_path / "out.typ", tmp_path / "out.pdf")
    # the only acceptable warning is the missing font (fallback to the embedded ones)
    assert all("font" in str(w).lower() for w in warnings), warnings
    text = _pdf_text(tmp_path / "out.pdf")
    assert TITLE in text and MODIFIED_BANNER in text and "Body text." in text


# --------------------------------------------------------------------------- css


def test_css_is_self_contained():
    css = CSS.read_text(encoding="utf-8")
    assert "url(http" not in css.replace(" ", "")
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", css)
    assert "@import" not in css
    assert "@font-face" not in css


@pytest.mark.parametrize("cls", [
    "hte-title-block", "hte-meta", "hte-lock-ok", "hte-lock-modified", "hte-lock-unlocked",
    "hte-callout", "hte-note", "hte-warning", "hte-danger", "hte-posthoc", "hte-figure",
    "hte-table", "hte-toc",
])
def test_css_styles_class(cls):
    css = CSS.read_text(encoding="utf-8")
    assert re.search(rf"\.{cls}(?![\w-])[^{{}}]*\{{", css), cls


def test_css_print_and_posthoc_label():
    css = CSS.read_text(encoding="utf-8")
    assert "@media print" in css
    assert re.search(r"\.hte-posthoc::before\s*\{[^}]*POST HOC", css)
    assert css.count("{") == css.count("}")
