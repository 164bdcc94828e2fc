"""The proportional-hazards diagnostic figures of the time-to-event report (issue 15):
log-minus-log Kaplan–Meier curves and scaled Schoenfeld residuals with the plot.cox.zph
smoother, against R (tests/reference/ph_plots.R -> ph_plots.json) at rel 1e-6 on the ACTG 320
example (stratified, Efron) and on Rossi (many ties: Efron and Breslow, with and without
strata); the numbers drawn are the numbers checked; the figures render byte-identically; and
tables in the PDF keep their captions (typst writer)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hte_report.analysis import fit_plan
from hte_report.presentation.survival_ph import (
    lml_curve,
    lml_panels,
    scaled_schoenfeld,
    schoenfeld_panels,
    zph_smooth,
)
from hte_report.report.content import with_time_unit
from hte_report.report.model import Figure, Para, Table

ROOT = Path(__file__).resolve().parent.parent
REF = json.loads((ROOT / "tests" / "reference" / "ph_plots.json").read_text())
CASES = {c["name"]: c for c in REF["cases"]}
ACTG = ROOT / "examples" / "actg320"
RTOL = 1e-6


def _data(name: str) -> pd.DataFrame:
    """The rows of a reference case, columns time, event, trt (+ covariates)."""
    if name.startswith("actg320"):
        d = pd.read_csv(ACTG / "actg320.csv").rename(columns={"censor": "event", "tx": "trt"})
        for var in ("sex", "ivdrug_ever"):
            if f": {var} " in name:
                d = d[d[var] == int(name.split()[-1])]
        return d
    d = pd.read_csv(ROOT / "examples" / "rossi" / "rossi.csv").rename(
        columns={"week": "time", "arrest": "event", "fin": "trt"})
    return d[d.wexp == 0] if "wexp 0" in name else d


def _sorted_zph(z: dict) -> tuple[np.ndarray, ...]:
    """(time, x, y) in (stratum, time, y) order: tied deaths have no order of their own."""
    strata = pd.factorize(pd.Series(z["strata"]).astype(str), sort=True)[0]
    t, x, y = (np.asarray(z[k], float) for k in ("time", "x", "y"))
    o = np.lexsort((y, t, strata))
    return t[o], x[o], y[o]


def _approx(a, b) -> None:
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=RTOL,
                               atol=1e-12)


def test_reference_is_survival_3():
    assert int(REF["survival"].split(".")[0]) >= 3  # cox.zph in its score-test form
    assert len(CASES) == 9


@pytest.mark.parametrize("name", list(CASES))
def test_scaled_schoenfeld_residuals_equal_cox_zph(name):
    c = CASES[name]
    d = _data(name)
    z = scaled_schoenfeld(d.time, d.event, d.trt, d[c["strata"]] if c["strata"] else None,
                          c["ties"])
    assert z["beta"] == pytest.approx(c["zph"]["coef"], rel=RTOL)
    assert z["var"] == pytest.approx(c["zph"]["var"], rel=RTOL)
    mine = _sorted_zph({**z, "strata": z["stratum"]})
    ref = _sorted_zph(c["zph"])
    for a, b in zip(mine, ref, strict=True):
        _approx(a, b)


@pytest.mark.parametrize("name", list(CASES))
def test_smoother_equals_plot_cox_zph(name):
    c = CASES[name]
    d = _data(name)
    z = scaled_schoenfeld(d.time, d.event, d.trt, d[c["strata"]] if c["strata"] else None,
                          c["ties"])
    sm = zph_smooth(z["x"], z["y"], z["var"])
    for col in ("x", "yhat", "lower", "upper"):
        _approx(sm[col], c["smooth"][col])


@pytest.mark.parametrize("name", list(CASES))
def test_log_minus_log_equals_survfit(name):
    d = _data(name)
    for arm, code in (("treated", 1), ("control", 0)):
        km = CASES[name]["km"][arm]
        ref = pd.DataFrame({"t": km["time"], "s": km["surv"]})
        ref = ref[(ref.s > 0) & (ref.s < 1)]
        g = d[d.trt == code]
        got = lml_curve(g.time.to_numpy(float), g.event.to_numpy(float))
        _approx(got.t, ref.t)
        _approx(got.s, ref.s)
        _approx(got.lml, np.log(-np.log(ref.s)))


def test_schoenfeld_of_a_constant_stratum_is_missing_as_in_r():
    """A stratum with one arm only adds no residuals and no weight (R: NA)."""
    t = np.array([1, 2, 3, 4, 5, 6, 7, 8], float)
    e = np.array([1, 1, 0, 1, 1, 1, 0, 1], float)
    x = np.array([0, 1, 0, 1, 0, 0, 0, 0], float)
    s = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    z = scaled_schoenfeld(t, e, x, s, "efron")
    assert np.isnan(z["y"][z["stratum"] == 1]).all()
    assert np.isfinite(z["y"][z["stratum"] == 0]).all()
    assert zph_smooth(z["x"], z["y"], z["var"]) is None  # 3 points: no 4-df spline


def test_panels_without_a_finite_coefficient_say_not_estimable(analysis):
    """No events, or none in one arm (the Cox coefficient is infinite): an empty log-minus-log
    panel says so, the Schoenfeld panel is 'not estimable'; an empty place stays empty."""
    d = analysis.data
    groups = [("no events", d[d.censor == 0]), None,
              ("treated arm without events", d[(d.censor == 0) | (d.tx == 0)])]
    codes, labels = {"treated": 1, "control": 0}, {"treated": "T", "control": "C"}
    fig, frame = schoenfeld_panels(groups, analysis.result, codes, strata=("strat2",), ncols=2)
    assert frame.empty
    gids = {a.get_gid() for a in fig.findobj() if a.get_gid()}
    assert {"zph-not-estimable-0", "zph-not-estimable-2"} <= gids
    assert sum(ax is not None and ax.get_label().startswith("panel") for ax in fig.axes) == 2
    fig, frame = lml_panels(groups, analysis.result, codes, labels, ncols=2)
    assert set(frame.panel) == {"treated arm without events"} and set(frame.arm) == {"C"}
    import matplotlib.pyplot as plt

    plt.close("all")


# ----------------------------------------------------------------------------- the report
@pytest.fixture(scope="module")
def analysis():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return with_time_unit(fit_plan(ACTG / "plan.yaml", ACTG / "actg320.csv"))


@pytest.fixture(scope="module")
def section(analysis):
    from hte_report.report.survival import ph_section

    return ph_section(analysis)


def test_figures_are_a_subsection_of_the_ph_section(section):
    blocks = list(section.blocks)
    head = next(i for i, b in enumerate(blocks) if isinstance(b, Para) and b.strong
                and b.text == "Proportional-hazards diagnostics (figures)")
    assert all(isinstance(b, Table) for b in blocks[1:head])  # after the tables
    figs = [b for b in blocks[head:] if isinstance(b, Figure)]
    assert [f.name for f in figs] == ["ph-lml", "ph-zph"]  # one row per modifier, in one
    for f in figs:
        assert "days" in f.caption
        assert "all analysed patients (n = 1151) and within each level of Sex and Injection " \
               "drug use" in f.caption
    assert "Parallel curves" in figs[0].caption and "log scale" in figs[0].caption
    assert "flat smoother" in figs[1].caption and "Kaplan–Meier scale" in figs[1].caption
    assert "stratified by strat2" in figs[1].caption and "Efron" in figs[1].caption
    lml, zph = (f.svg.decode() for f in figs)
    for text in ("All patients", "Sex: Male (1)", "Sex: Female (2)", "Time (days, log scale)",
                 "Injection drug use: Current or previous (1)", "IDV + ZDV + 3TC", "ZDV + 3TC"):
        assert text in lml
    for text in ("All patients (P = 0.18)", "Sex: Female (2) (P = 0.33)",
                 "Time (days, Kaplan–Meier scale)"):
        assert text in zph


def test_panel_rows_one_modifier_per_row():
    from hte_report.report.survival import _ph_chunks

    specs = [([("All", 0)], 1, "overall"), ([("a", 1), ("b", 2)], 3, "m"),
             ([(str(i), i) for i in range(4)], 3, "k")] + [([("x", 0)], 3, f"z{i}")
                                                           for i in range(3)]
    chunks = _ph_chunks(specs, 3)
    assert [[k for k, _r in c] for c in chunks] == [["overall", "m", "k", "k"],
                                                    ["z0", "z1", "z2"]]
    assert chunks[0][0][1] == [("All", 0), None, None]
    assert chunks[0][3][1] == [("3", 3), None, None]


def _groups(analysis):
    from hte_report.report.survival import _arms, _panel_groups

    codes, labels = _arms(analysis)
    return _panel_groups(analysis), codes, labels


_PANELS = {"All patients": "actg320: all", "Sex: Male (1)": "actg320: sex 1",
           "Sex: Female (2)": "actg320: sex 2", "Injection drug use: Never (0)":
           "actg320: ivdrug_ever 0", "Injection drug use: Current or previous (1)":
           "actg320: ivdrug_ever 1"}


def test_drawn_curves_are_the_reference_numbers(analysis):
    """Every plotted step of every panel (read back from the artists) is R's survfit."""
    res = analysis.result
    specs, codes, labels = _groups(analysis)
    seen = set()
    for groups, ncols, _key in specs:
        fig, frame = lml_panels(groups, res, codes, labels, ncols=ncols)
        lines = {a.get_gid(): a for ax in fig.axes for a in ax.get_lines() if a.get_gid()}
        for k, (title, _g) in enumerate(groups):
            case = CASES[_PANELS[title]]
            seen.add(title)
            for arm, label in labels.items():
                km = pd.DataFrame({"t": case["km"][arm]["time"], "s": case["km"][arm]["surv"]})
                km = km[(km.s > 0) & (km.s < 1)]
                got = frame[(frame.panel == title) & (frame.arm == label)]
                _approx(got.lml, np.log(-np.log(km.s)))
                line = lines[f"lml-{k}-{arm}"]
                _approx(np.asarray(line.get_xdata())[:-1], km.t)
                _approx(np.asarray(line.get_ydata())[:-1], np.log(-np.log(km.s)))
        import matplotlib.pyplot as plt

        plt.close(fig)
    assert seen == set(_PANELS)


def test_drawn_residuals_and_p_values_are_the_reference_numbers(analysis):
    from hte_report.report.survival import _ph_p_values

    res = analysis.result
    specs, codes, _labels = _groups(analysis)
    p = _ph_p_values(res)
    for groups, ncols, _key in specs:
        fig, frame = schoenfeld_panels(groups, res, codes, strata=("strat2",), ties="efron",
                                       p_values=p, ncols=ncols)
        lines = {a.get_gid(): a for ax in fig.axes for a in ax.get_lines() if a.get_gid()}
        for k, (title, _g) in enumerate(groups):
            case = CASES[_PANELS[title]]
            assert p[title] == pytest.approx(case["zph"]["p"], rel=RTOL)
            pts = lines[f"zph-points-{k}"]
            mine = np.lexsort((np.asarray(pts.get_ydata()), np.asarray(pts.get_xdata())))
            ref = np.lexsort((case["zph"]["y"], case["zph"]["x"]))
            _approx(np.asarray(pts.get_xdata())[mine], np.asarray(case["zph"]["x"])[ref])
            _approx(np.asarray(pts.get_ydata())[mine], np.asarray(case["zph"]["y"])[ref])
            _approx(lines[f"zph-smooth-{k}"].get_ydata(), case["smooth"]["yhat"])
            _approx(lines[f"zph-band-upper-{k}"].get_ydata(), case["smooth"]["upper"])
            _approx(lines[f"zph-beta-{k}"].get_ydata(), [case["zph"]["coef"]] * 2)
            assert len(frame[frame.panel == title]) == len(case["zph"]["y"])
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_figures_render_byte_identically(analysis, section):
    from hte_report.report.survival import ph_section

    again = ph_section(analysis)
    a = {b.name: b.svg for b in section.blocks if isinstance(b, Figure)}
    b = {b.name: b.svg for b in again.blocks if isinstance(b, Figure)}
    assert a == b and len(a) == 2


# ----------------------------------------------------------------------------- Typst tables
def _frame(rows: int, text: str = "x") -> Table:
    return Table(pd.DataFrame({"A": [text] * rows, "B": ["1.0"] * rows}), "Caption")


def test_short_tables_are_unbreakable_long_ones_break_with_a_sticky_caption():
    from hte_report.report.typst import ONE_PAGE_LINES, _table, _table_lines, template_source

    short = _frame(12)
    assert _table_lines(short) == 13
    assert _table(short).startswith("#[#show figure: set block(breakable: false)\n#figure(")
    long = _frame(60)
    assert _table_lines(long) > ONE_PAGE_LINES
    assert _table(long).startswith("#figure(")
    wrapped = _frame(12, "word " * 60)  # long cells wrap: the estimate counts their lines
    assert _table_lines(wrapped) > ONE_PAGE_LINES
    src = template_source()
    assert "block(sticky: true, c)" in src and "hte-sticky" in src


def test_a_table_near_the_foot_of_a_page_moves_whole(tmp_path):
    """A table that fits a page starts on the next page with its caption when it does not
    fit below the text before it; a long table's caption is never the last line of a page."""
    import subprocess

    typst = pytest.importorskip("typst")
    from hte_report.report.typst import TEMPLATE, _table, template_source

    (tmp_path / TEMPLATE).write_text(template_source(), encoding="utf-8")
    filler = "#lorem(560)\n\n"
    body = (f'#import "{TEMPLATE}": *\n#show: hte-report.with(title: "T")\n' + filler
            + _table(Table(pd.DataFrame({"A": [f"row {i}" for i in range(20)]}),
                           "Short table")) + filler
            + _table(Table(pd.DataFrame({"A": [f"line {i}" for i in range(90)]}),
                           "Long table")))
    (tmp_path / "t.typ").write_text(body, encoding="utf-8")
    typst.compile(str(tmp_path / "t.typ"), output=str(tmp_path / "t.pdf"))
    try:
        out = subprocess.run(["pdftotext", "-layout", str(tmp_path / "t.pdf"), "-"],
                             capture_output=True, text=True, check=True).stdout
    except FileNotFoundError:
        pytest.skip("pdftotext not installed")
    for page in out.split("\f"):
        lines = [x.strip() for x in page.splitlines() if x.strip()
                 and not x.strip().startswith("page ")]
        if "Table 1: Short table" in page:
            assert "row 0" in page and "row 19" in page  # caption and all rows together
        if lines and lines[-1].startswith("Table "):
            raise AssertionError(f"caption alone at the foot of a page: {lines[-1]}")
