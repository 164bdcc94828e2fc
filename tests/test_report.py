"""The rendered report: every section, numbers equal the tidy frames, self-contained HTML,
a compiling PDF with the expected text, escaping of plan/data strings, the Quarto template."""

import re
import shutil
import warnings
from html import escape
from pathlib import Path

import pytest
import yaml
from pypdf import PdfReader

from hte_report.analysis import fit_plan
from hte_report.core.format import fmt_ci, fmt_p
from hte_report.report.content import build_report
from hte_report.report.html import render_html
from hte_report.report.render import render
from hte_report.report.typst import compile_pdf, lit, write_typst_project

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "examples" / "rossi"
SECTIONS = ["Executive summary", "Study population", "Overall effect",
            "Pre-specified subgroup analyses", "Continuous modifiers",
            "Risk-based analysis (PATH)", "Credibility of effect modification",
            "Post hoc analyses", "Methods", "Appendix: the analysis plan"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paths = render(EXAMPLE / "plan.yaml", EXAMPLE / "rossi.csv", out=out,
                       engine="builtin", posthoc=["race"], date="2026-01-01")
        analysis = fit_plan(EXAMPLE / "plan.yaml", EXAMPLE / "rossi.csv", posthoc=["race"])
    html = paths["html"].read_text()
    pdf_text = "\n".join(p.extract_text() for p in PdfReader(paths["pdf"]).pages)
    return analysis, html, pdf_text, paths


def test_every_section_in_html_and_pdf(rendered):
    _, html, pdf_text, _ = rendered
    flat = re.sub(r"\s+", " ", pdf_text)
    for title in SECTIONS:
        assert f">{title.replace('&', '&amp;')}</h2>" in html, title
        assert title in flat, title


def test_title_block_hashes_and_lock(rendered):
    analysis, html, pdf_text, _ = rendered
    assert analysis.plan.sha256 in html
    assert analysis.result.data_sha256 in html
    assert "matches the locked plan" in pdf_text or "matches" in pdf_text
    assert analysis.plan.sha256[:16] in pdf_text.replace("\n", "")


def test_numbers_in_report_equal_tidy_frames(rendered):
    analysis, html, pdf_text, _ = rendered
    res = analysis.result
    flat = re.sub(r"\s+", " ", pdf_text)
    for axis in res.primary:
        o = res.overall_effect(axis)
        text = fmt_ci(o.estimate, o.conf_low, o.conf_high, o.scale)
        assert text in html and text in flat
        eff = res.effects(axis)
        for r in eff.dropna(subset=["estimate"]).itertuples():
            assert fmt_ci(r.estimate, r.conf_low, r.conf_high, r.scale) in html
        for r in res.interaction_p(axis).itertuples():
            assert fmt_p(r.p_value) in html


def test_html_is_self_contained(rendered):
    _, html, _, _ = rendered
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html
    assert not re.search(r"url\(\s*['\"]?https?:", html)
    assert "<script" not in html.lower()


def test_posthoc_is_separated_and_labelled(rendered):
    _, html, pdf_text, _ = rendered
    assert 'class="hte-section hte-posthoc"' in html
    assert "post hoc — hypothesis-generating" in html
    assert "Post hoc" in pdf_text


def test_risk_section_is_rendered_when_planned(rendered):
    analysis, html, pdf_text, _ = rendered
    assert analysis.plan.raw["risk_based"]["planned"]
    assert "c-statistic" in html and "Treatment effects by stratum of predicted" in html
    assert "Figure" in pdf_text and "baseline risk" in pdf_text


def test_risk_section_says_not_planned(tmp_path, rossi):
    plan = yaml.safe_load((EXAMPLE / "plan.yaml").read_text())
    plan["risk_based"] = {"planned": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        html = render_html(build_report(fit_plan(plan, rossi)))
    assert "Not planned" in html


def test_escaping_html_and_typst(tmp_path, rossi):
    plan = yaml.safe_load((EXAMPLE / "plan.yaml").read_text())
    evil_title = '<script>alert(1)</script> #read("/etc/passwd") *bold* $x$ \\ "q"'
    plan["title"] = evil_title
    plan["modifiers"][0]["label"] = '<img src=x onerror=alert(1)> #sys.inputs'
    plan["population"] = "#import \"x\": * and ]#[ brackets"
    data = rossi.copy()
    data["wexp"] = data.wexp.map({0: "<b>none</b>", 1: '#read("/etc/hostname")'})
    plan["model"]["formula"] = plan["model"]["formula"]
    plan["modifiers"][2]["direction"]["when"] = "<b>none</b>"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = fit_plan(plan, data)
    report = build_report(analysis)
    html = render_html(report)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "<b>none</b>" not in html
    typ = write_typst_project(report, tmp_path)
    pdf = compile_pdf(typ, tmp_path / "r.pdf")
    text = re.sub(r"\s+", " ", "\n".join(p.extract_text() for p in PdfReader(pdf).pages))
    assert '#read("/etc/passwd")' in text or "#read(“/etc/passwd”)" in text
    assert "#read(\"/etc/hostname\")" in text or "#read(“/etc/hostname”)" in text
    assert "<script>" in text


def test_typst_literal_escapes():
    assert lit('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


def test_quarto_extension_and_template_are_consistent():
    ext = yaml.safe_load((ROOT / "_extensions" / "hte" / "_extension.yml").read_text())
    fmts = ext["contributes"]["formats"]
    assert {"html", "typst"} <= set(fmts)
    for partial in fmts["typst"]["template-partials"]:
        assert (ROOT / "_extensions" / "hte" / partial).exists()
    assert (ROOT / "_extensions" / "hte" / fmts["html"]["css"]).exists()
    project = yaml.safe_load((ROOT / "_quarto.yml").read_text())
    assert "templates/hte-report.qmd" in project["project"]["render"]
    # the built-in writers use the very same files (the package assets; _extensions/hte/
    # links to them)
    assets = ROOT / "hte_report" / "report" / "assets"
    for name in ("hte.css", "typst-template.typ"):
        assert (assets / name).read_bytes() == (ROOT / "_extensions" / "hte" / name).read_bytes()


def test_qmd_cells_execute_without_quarto(tmp_path):
    """Run the template's code cells as Quarto's Jupyter engine would (jupytext + nbclient)."""
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    qmd = ROOT / "templates" / "hte-report.qmd"
    nb = jupytext.read(qmd, fmt="md:myst") if False else jupytext.reads(
        _qmd_to_md(qmd.read_text()), fmt="md")
    params = next(c for c in nb.cells if c.cell_type == "code" and "parameters" in c.source)
    params.source = (f'plan = r"{EXAMPLE / "plan.yaml"}"\n'
                     f'data = r"{EXAMPLE / "rossi.csv"}"\nposthoc = "race"\n')
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    mimes = {k for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
             for k in o.get("data", {})}
    # Markdown only: a text/html output makes Quarto add require.js and jQuery from a CDN
    # (issue 20); tables, callouts and figures are raw {=html}/{=typst} blocks in it
    assert mimes == {"text/markdown"}
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    md_out = "".join(o["data"].get("text/markdown", "") for c in nb.cells
                     for o in c.get("outputs", []) if "data" in o)
    for title in SECTIONS:
        assert title.split(" (")[0].split(":")[0] in md_out.replace("\\", "")


def _qmd_to_md(text: str) -> str:
    """Quarto's ```{python} fences as plain ```python fences for jupytext."""
    return re.sub(r"```\{python\}", "```python", text)


def test_cli_render_check_lock(tmp_path):
    from typer.testing import CliRunner

    from hte_report.cli import app

    runner = CliRunner()
    plan = tmp_path / "plan.yaml"
    shutil.copy(EXAMPLE / "plan.yaml", plan)
    r = runner.invoke(app, ["check", str(plan), "--data", str(EXAMPLE / "rossi.csv")])
    assert r.exit_code == 0 and "lock status unlocked" in r.output
    r = runner.invoke(app, ["lock", str(plan), "--statement", "before unblinding"])
    assert r.exit_code == 0 and (tmp_path / "plan.yaml.lock.json").exists()
    r = runner.invoke(app, ["render", str(plan), "--data", str(EXAMPLE / "rossi.csv"),
                            "--to", "html", "--out", str(tmp_path / "o"), "--engine", "builtin"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "o" / "report.html").exists()
    r = runner.invoke(app, ["render", str(plan), "--data", str(tmp_path / "missing.csv")])
    assert r.exit_code == 1 and "does not exist" in r.output
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and "hte-report" in r.output


def test_cli_benefit_worked_example():
    from typer.testing import CliRunner

    from hte_report.cli import app

    r = CliRunner().invoke(app, ["benefit", "0.05", "--rr", "0.90"])
    assert r.exit_code == 0 and "ARR 0.50 percentage points" in r.output and "NNTB 200" in r.output
    r = CliRunner().invoke(app, ["benefit", "1.5", "--rr", "0.9"])
    assert r.exit_code == 1 and "error" in r.output


# ------------------------------------------------------------------------------ hostile text
HOSTILE_LEVELS = ["a\x00b", "x\x1b[31m", "$100+", "<script>alert(1)</script>",
                  '#read("x") *b* _i_ @ref <l> [c] \\ $m$']


def _pdf_text(path):
    return re.sub(r"\s+", " ", "\n".join(p.extract_text() for p in PdfReader(path).pages))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A small trial whose level values hold control characters, HTML, Typst markup and dollar
    signs, and whose labels and titles hold markup (the plan refuses control characters),
    rendered to HTML and PDF."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(11)
    n = 1200
    d = pd.DataFrame({"y": rng.integers(0, 2, n), "t": rng.integers(0, 2, n),
                      "g": rng.choice(HOSTILE_LEVELS, n), "age": rng.normal(50, 10, n)})
    plan = {
        "schema": "hte-plan/1", "title": "T <b>$x$</b> #title",
        "trial": {"id": "T-1", "name": "N ]#[ *_"}, "population": "P [x] <p>",
        "outcome": {"variable": "y", "label": "Out <i>$1$</i>", "family": "binary"},
        "treatment": {"variable": "t", "treated": 1, "control": 0,
                      "treated_label": "Drug $5", "control_label": "Placebo @x"},
        "model": {"formula": "y ~ t * (C(g) + age)", "models": ["ols", "modified-poisson"]},
        "scales": ["absolute", "relative"], "confidence_level": 0.95, "alpha": 0.05,
        "multiplicity": "holm",
        "modifiers": [{"variable": "g", "label": "Group <u> $g$ #g", "type": "categorical",
                       "rationale": "r"},
                      {"variable": "age", "label": "Age", "type": "continuous",
                       "analysis": "continuous", "rationale": "r"}],
        "risk_based": {"planned": False}, "deviations": [],
    }
    out = tmp_path_factory.mktemp("hostile")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = build_report(fit_plan(plan, d), date="2026-01-01")
        html = render_html(report)
        pdf = compile_pdf(write_typst_project(report, out / "typst"), out / "r.pdf")
    leaked = [w for w in caught if "Glyph" in str(w.message) or "mathtext" in str(w.message)
              or issubclass(w.category, RuntimeWarning)]
    return html, _pdf_text(pdf), leaked


@pytest.mark.parametrize("shown", ["a\\x00b", "x\\x1b[31m", "$100+", "<script>alert(1)</script>",
                                   '#read("x") *b* _i_ @ref <l> [c] \\ $m$',
                                   "Group <u> $g$ #g", "Drug $5", "Placebo @x"])
def test_hostile_labels_appear_literally(hostile, shown):
    html, pdf, _ = hostile
    assert shown in pdf
    assert escape(shown) in html


def test_hostile_labels_leave_no_control_character_or_markup(hostile):
    html, pdf, leaked = hostile
    assert not leaked, [str(w.message) for w in leaked]
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f]", html)
    assert "<script>" not in html and "<u>" not in html and "<b>$x$" not in html
    assert "T <b>$x$</b> #title" in pdf and "N ]#[ *_" in pdf


def test_long_words_wrap_and_hashes_copy_whole(rendered):
    analysis, _, pdf_text, _ = rendered
    flat = re.sub(r"\s+", "", pdf_text)
    assert f"PlanSHA-256:{analysis.plan.sha256}." in flat
    typ = (rendered[3]["pdf"].parent / "typst" / "report.typ").read_text()
    assert f'#box("{analysis.plan.sha256[:15]}")' in typ


def test_a_forest_plot_too_long_for_a_page_is_split(rossi_result, monkeypatch):
    from hte_report.report import subgroups as content

    monkeypatch.setattr(content, "FOREST_ROWS", 3)
    parts = content._forest_parts(rossi_result)  # age (3 quartiles), wexp (2), prio (3)
    assert [[(m, len(lv)) for m, lv in p] for p in parts] == [
        [("age", 2)], [("age", 1)], [("wexp", 2)], [("prio", 2)], [("prio", 1)]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        figs = content._forests(rossi_result, "Forest plot.", "forest", False)
    assert [f.name for f in figs] == ["forest", "forest-2", "forest-3", "forest-4", "forest-5"]
    assert figs[1].caption == "Forest plot (part 2 of 5)."
    monkeypatch.setattr(content, "FOREST_ROWS", 40)
    assert len(content._forests(rossi_result, "Forest plot.", "forest", False)) == 1


def test_a_hundred_and_twenty_level_modifier_gives_page_sized_forest_plots():
    import numpy as np
    import pandas as pd

    import hte_report as hr
    from hte_report.presentation.tables import subgroup_table
    from hte_report.report import subgroups as content

    rng = np.random.default_rng(5)
    n = 4800
    sites = np.array([f"Site {i:03d}" for i in range(120)])
    d = pd.DataFrame({"t": rng.integers(0, 2, n), "g": sites[rng.integers(0, 120, n)]})
    d["y"] = (rng.random(n) < 0.3).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = hr.fit("y ~ t * C(g)", d, treatment="t", models=["ols", "modified-poisson"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figs = content._forests(res, "Forest plot.", "forest", False)
        subgroup_table(res).as_raw_html()
    assert len(figs) == 4  # 121 rows in parts of at most 40
    for f in figs:
        height = float(re.search(rb'height="([\d.]+)pt"', f.svg).group(1))
        assert height < 11 * 72


def test_strategy_is_named_wherever_subgroup_numbers_appear(rendered):
    analysis, html, pdf_text, _ = rendered
    res = analysis.result
    assert res.strategy == "one-at-a-time" and res.overall_analysis == "adjusted"
    flat = re.sub(r"\s+", " ", pdf_text)
    note = ("Subgroup effects: one modifier at a time — each modifier's own model adjusted for "
            "race, paro; overall: primary analysis adjusted for race, paro.")
    assert escape(note, quote=False) in html or note.replace("'", "&#x27;") in html
    assert "Subgroup analysis strategy (pre-specified): one modifier at a time" in flat
    assert "Analyses: formula, rows analysed and rows excluded" in flat
    assert "arrest ~ fin + age + fin:age + race + paro" in flat
    assert "Interaction effects (each level vs reference; per unit for continuous)" in flat
    assert "standardized within category" in flat  # age, display cutpoint 30
    assert "race = 1, paro = 1 (reference profile of prio's model)" in flat
    # one row per subgroup: the frames select one analysis
    eff = res.effects("absolute")
    assert not eff.duplicated(["modifier", "level"]).any()
    assert list(eff[eff.modifier == "age"].level) == ["< 30", ">= 30"]


def test_post_hoc_overall_row_is_the_primary_analysis(rendered):
    analysis, *_ = rendered
    post = analysis.posthoc[0]
    a, p = analysis.result.overall_effect("absolute"), post.overall_effect("absolute")
    assert a.estimate == p.estimate
    assert "arrest ~ fin + C(race) + fin:C(race) + paro" in set(post.analyses.formula)


def test_multi_arm_forest_and_table_per_comparison(rossi):
    import numpy as np

    import hte_report as hr
    from hte_report.presentation.tables import subgroup_frame

    d = rossi.copy()
    rng = np.random.default_rng(1)
    d["arm"] = np.where(d.fin == 0, "ctrl", np.where(rng.random(len(d)) < 0.5, "A", "B"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = hr.fit("arrest ~ arm * (age + C(wexp)) + race", d, treatment="arm",
                     control="ctrl")
    frame = subgroup_frame(res)
    assert {g.split(":")[0] for g in frame.group} == {"A vs ctrl", "B vs ctrl"}
    assert len(frame) == 2 * len(subgroup_frame(res, comparison="A vs ctrl"))
    fig = res.forest(comparison="B vs ctrl")
    foot = [t.get_text() for t in fig.findobj() if getattr(t, "get_gid", lambda: "")()
            == "forest-footnote"]
    assert foot and "Comparison: B vs ctrl" in foot[0].replace("\n", " ")
