"""Forest plots and effect curves, tested through their artists against the tidy frames
(never through pixels)."""

import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

import hte_report as hr  # noqa: E402
from hte_report.core.format import fmt_p  # noqa: E402
from hte_report.presentation.plots import MINUS, POSTHOC, ForestStyle, effect_curve, forest_plot  # noqa: E402
from hte_report.spec.options import OptionError  # noqa: E402

DATA = Path(__file__).parent / "reference" / "data"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _fit(formula, data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hr.fit(formula, data, **kw)


def _axes(fig, label):
    found = [a for a in fig.axes if a.get_label() == label]
    return found[0] if found else None


def _artist(ax, gid):
    hits = [a for a in ax.get_children() if a.get_gid() == gid]
    assert len(hits) == 1, gid
    return hits[0]


def _column(fig, key):
    """Text of a forest column, one entry per row (gids forest-<key>-<row>)."""
    texts = [t for t in _axes(fig, f"forest-{key}").texts if (t.get_gid() or "").startswith(
        f"forest-{key}-")]
    return [t.get_text() for t in sorted(texts, key=lambda t: int(t.get_gid().rsplit("-", 1)[1]))]


def _frame_rows(res, axis):
    """Subgroup rows in plotted order: modifiers as in res.modifiers, levels by ``order``."""
    eff = res.effects(axis)
    return pd.concat([eff[eff.modifier == m].sort_values("order") for m in res.modifiers])


@pytest.fixture(scope="module")
def rossi_forest(rossi_result):
    return forest_plot(rossi_result, adjusted=True)


@pytest.fixture(scope="module")
def centres():
    """A randomized trial with a 36-level categorical modifier (41 forest rows)."""
    rng = np.random.default_rng(20240501)
    n = 7200
    site = rng.integers(0, 36, n)
    t = rng.integers(0, 2, n)
    p = (0.25 + 0.025 * (site % 5)) * np.where(t == 1, 0.8, 1.0)
    return pd.DataFrame({"y": (rng.random(n) < p).astype(int), "treat": t,
                         "centre": np.array([f"Centre {i + 1:02d}" for i in range(36)])[site],
                         "sex": rng.choice(["female", "male"], n)})


# ------------------------------------------------------------------------------ forest plot
@pytest.mark.parametrize("axis", ["absolute", "relative"])
def test_points_and_intervals_equal_the_tidy_frame(rossi_result, rossi_forest, axis):
    ax = _axes(rossi_forest, f"forest-{axis}")
    rows = _frame_rows(rossi_result, axis)
    points = _artist(ax, f"forest-points-{axis}").get_offsets()
    np.testing.assert_allclose(points[:, 0], rows.estimate, rtol=1e-12)
    segs = _artist(ax, f"forest-intervals-{axis}").get_segments()
    np.testing.assert_allclose([s[0][0] for s in segs], rows.conf_low, rtol=1e-12)
    np.testing.assert_allclose([s[1][0] for s in segs], rows.conf_high, rtol=1e-12)
    np.testing.assert_allclose(points[:, 1], [s[0][1] for s in segs])  # same rows
    o = rossi_result.overall_effect(axis)
    xy = _artist(ax, f"forest-overall-{axis}").get_xy()
    np.testing.assert_allclose(sorted(set(xy[:, 0])), sorted({o.conf_low, o.estimate,
                                                              o.conf_high}), rtol=1e-12)
    dashed = _artist(ax, f"forest-overall-line-{axis}").get_xdata()
    np.testing.assert_allclose(dashed, [o.estimate] * 2)
    null = _artist(ax, f"forest-null-{axis}").get_xdata()
    assert list(null) == [1.0, 1.0] if axis == "relative" else [0.0, 0.0]


def test_relative_axis_is_logarithmic(rossi_forest):
    assert _axes(rossi_forest, "forest-relative").get_xscale() == "log"
    assert _axes(rossi_forest, "forest-absolute").get_xscale() == "linear"


def test_counts_text_equals_the_frame(rossi_result, rossi_forest):
    o = rossi_result.overall_effect("absolute")
    expected_t, expected_c = [f"{o.events_treated:.0f}/{o.n_treated}"], [
        f"{o.events_control:.0f}/{o.n_control}"]
    eff = rossi_result.effects("absolute")
    for m in rossi_result.modifiers:
        expected_t.append("")
        expected_c.append("")
        for r in eff[eff.modifier == m].sort_values("order").itertuples():
            has = np.isfinite(r.n_treated)  # conditional rows of continuous modifiers: no counts
            expected_t.append(f"{r.events_treated:.0f}/{r.n_treated:.0f}" if has else "\u2013")
            expected_c.append(f"{r.events_control:.0f}/{r.n_control:.0f}" if has else "\u2013")
    assert _column(rossi_forest, "treated") == expected_t
    assert _column(rossi_forest, "control") == expected_c
    assert any(t.count("/") == 1 for t in expected_t[1:])


def test_heading_rows_show_raw_and_adjusted_interaction_p(rossi_result, rossi_forest):
    labels = _column(rossi_forest, "label")
    for axis in ("absolute", "relative"):
        text = _column(rossi_forest, f"text-{axis}")
        tests = rossi_result.interaction_p(axis).set_index("modifier")
        for m in rossi_result.modifiers:
            shown = text[labels.index(m)]
            assert shown.startswith("P-int")
            assert fmt_p(tests.loc[m, "p_value"]) in shown
            assert f"(adj {fmt_p(tests.loc[m, 'p_adjusted'])})" in shown
    plain = forest_plot(rossi_result)
    assert not any("adj" in t for t in _column(plain, "text-relative"))


def test_minus_signs_are_typeset():
    fig = forest_plot(_fit("arrest ~ fin * C(wexp)", pd.read_csv(DATA / "rossi.csv"),
                           treatment="fin"))
    estimates = " ".join(_column(fig, "text-absolute"))
    assert MINUS in estimates and "-" not in estimates.replace("P-int", "")
    ticks = [t.get_text() for t in _axes(fig, "forest-absolute").get_xticklabels()]
    assert any(MINUS in t for t in ticks) and not any("-" in t for t in ticks)


def test_posthoc_modifier_is_labelled(rossi_result):
    res = rossi_result.with_plan(labels={}, posthoc=("prio",))
    fig = forest_plot(res)
    labels = _column(fig, "label")
    heading = next(t for t in labels if t.startswith("prio"))
    assert POSTHOC in heading.replace("\n", " ")
    assert not any("post hoc" in t for t in labels if not t.startswith("prio"))
    assert "hypothesis-generating" in _artist(_axes(fig, "forest-background"),
                                              "forest-footnote").get_text().replace("\n", " ")


def test_display_labels_replace_modifier_names(rossi_result):
    res = rossi_result.with_plan(labels={"wexp": "Work experience"}, posthoc=())
    labels = _column(forest_plot(res), "label")
    assert "Work experience" in labels and "age" in labels and "wexp" not in labels


def test_marker_area_is_proportional_to_events(rossi_result, rossi_forest):
    rows = _frame_rows(rossi_result, "absolute")
    events = (rows.events_treated + rows.events_control).to_numpy()
    pts = _artist(_axes(rossi_forest, "forest-absolute"), "forest-points-absolute")
    sizes = pts.get_sizes()
    sized = np.isfinite(events) & (sizes > 2.5 ** 2)  # tiny squares are floored to stay visible
    assert sized.sum() >= 2
    np.testing.assert_allclose(sizes[sized] / events[sized], (sizes[sized] / events[sized])[0])
    if not np.isfinite(events).all():  # rows without a size (effects at a value): circles
        paths = pts.get_paths()
        square, circle = paths[np.argmax(sized)], paths[np.argmin(np.isfinite(events))]
        assert len(square.vertices) != len(circle.vertices)
        assert len(set(sizes[~np.isfinite(events)])) == 1


@pytest.mark.parametrize("better, left", [(False, "treatment"), (True, "control")])
def test_favours_labels_follow_the_outcome_direction(rossi_result, better, left):
    fig = forest_plot(rossi_result, higher_is_better=better)
    for axis in ("absolute", "relative"):
        ax = _axes(fig, f"forest-{axis}")
        text = _artist(ax, f"forest-favours-{axis}-right").get_text()
        assert _artist(ax, f"forest-favours-{axis}-left").get_text().replace("\n", " ") == (
            f"\u2190 Favours {left}")
        assert left not in text


def test_informative_treatment_labels_are_used():
    rng = np.random.default_rng(3)
    d = pd.DataFrame({"arm": rng.choice(["placebo", "aspirin"], 600),
                      "g": rng.choice(["a", "b"], 600)})
    d["y"] = (rng.random(600) < 0.3).astype(int)
    fig = forest_plot(_fit("y ~ arm * C(g)", d, treatment="arm", reference="placebo"))
    assert [a for a in fig.axes if a.get_label() == "forest-treated"][0].texts[0].get_text() \
        .startswith("Aspirin")
    ax = _axes(fig, "forest-absolute")
    assert "aspirin" in _artist(ax, "forest-favours-absolute-left").get_text()


def test_not_estimable_row_shows_its_note():
    rng = np.random.default_rng(1)
    d = pd.DataFrame({"t": rng.integers(0, 2, 800), "g": rng.choice(list("abc"), 800)})
    d["y"] = (rng.random(800) < 0.2).astype(int)
    d.loc[(d.g == "c") & (d.t == 1), "y"] = 0
    res = _fit("y ~ t * C(g)", d, treatment="t")
    fig = forest_plot(res)
    rel = _axes(fig, "forest-relative")
    eff = res.effects("relative")
    assert len(_artist(rel, "forest-points-relative").get_offsets()) == eff.estimate.notna().sum()
    notes = [t.get_text().replace("\n", " ") for t in rel.texts
             if (t.get_gid() or "").startswith("forest-not-estimable")]
    assert notes == [eff.note[eff.estimate.isna()].item()]
    assert "not estimable" in _column(fig, "text-relative")
    assert len(_artist(_axes(fig, "forest-absolute"), "forest-points-absolute")
               .get_offsets()) == 3


def test_continuous_outcome_has_one_panel_and_plain_counts():
    nsw = pd.read_csv(DATA / "nsw.csv")
    res = _fit("re78 ~ treat * (age + C(black))", nsw, treatment="treat")
    fig = forest_plot(res)
    assert _axes(fig, "forest-relative") is None and _axes(fig, "forest-absolute")
    o = res.overall_effect("absolute")
    assert _column(fig, "treated")[0] == str(o.n_treated)
    assert "/" not in "".join(_column(fig, "control"))
    rows = _frame_rows(res, "absolute")
    sizes = _artist(_axes(fig, "forest-absolute"), "forest-points-absolute").get_sizes()
    n = rows.n.to_numpy()
    ok = np.isfinite(n)
    assert ok.sum() >= 2  # at least the two levels of black are sized by n
    np.testing.assert_allclose(sizes[ok] / n[ok], sizes[ok][0] / n[ok][0])


def _no_overlap(fig, key):
    fig.canvas.draw()
    boxes = sorted((t.get_window_extent() for t in _axes(fig, f"forest-{key}").texts
                    if t.get_text() and (t.get_gid() or "").startswith("forest-")),
                   key=lambda b: -b.y1)
    fb = fig.bbox
    for b in boxes:
        assert fb.x0 - 0.5 <= b.x0 and b.x1 <= fb.x1 + 0.5 and fb.y0 <= b.y0 and b.y1 <= fb.y1
    for upper, lower in zip(boxes, boxes[1:]):
        assert lower.y1 <= upper.y0 + 0.5, (key, upper, lower)


def test_forty_rows_build_legibly(centres, rossi_forest):
    res = _fit("y ~ treat * (C(centre) + C(sex))", centres, treatment="treat")
    fig = forest_plot(res)
    labels = _column(fig, "label")
    assert len(labels) == 41 and labels[0] == "All patients"
    assert fig.get_figheight() > rossi_forest.get_figheight()
    assert fig.get_figheight() < 11  # fits a page
    for key in ("label", "treated", "control", "text-absolute", "text-relative"):
        _no_overlap(fig, key)
    assert len(_artist(_axes(fig, "forest-relative"), "forest-points-relative")
               .get_offsets()) == 38


def test_two_rows_and_long_labels():
    rng = np.random.default_rng(7)
    d = pd.DataFrame({"t": rng.integers(0, 2, 400), "x": rng.integers(0, 2, 400)})
    d["y"] = (rng.random(400) < 0.3).astype(int)
    d["x"] = d.x.map({0: "no prior hospital admission in the twelve months before enrolment",
                      1: "yes"})
    res = _fit("y ~ t * C(x)", d, treatment="t").with_plan(
        labels={"x": "Prior hospital admission within a year of randomization (any cause)"},
        posthoc=())
    fig = forest_plot(res)
    labels = _column(fig, "label")
    assert labels[1].count("\n") == 1  # long heading wrapped
    assert any(t.endswith("\u2026") for t in labels)  # long level truncated
    for key in ("label", "text-absolute"):
        _no_overlap(fig, key)


def test_vector_and_raster_output(rossi_forest, tmp_path):
    for ext in ("svg", "pdf", "png"):
        rossi_forest.savefig(tmp_path / f"f.{ext}", dpi=300)
        assert (tmp_path / f"f.{ext}").stat().st_size > 1000
    png = plt.imread(tmp_path / "f.png")
    assert abs(png.shape[1] - rossi_forest.get_figwidth() * 300) <= 1  # 300 dpi
    assert "forest-points-absolute" in (tmp_path / "f.svg").read_text()


def test_draws_into_a_given_axes(rossi_result):
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 9))
    assert forest_plot(rossi_result, ax=top) is fig
    assert rossi_result.forest(ax=bottom) is fig
    assert not top.axison and _axes(fig, "forest-relative").get_xscale() == "log"


def test_style_is_a_typed_frozen_object(rossi_result):
    style = ForestStyle(font_size=9, show_counts=False, marker_color="#009E73")
    fig = forest_plot(rossi_result, style=style)
    assert _axes(fig, "forest-treated") is None
    pts = _artist(_axes(fig, "forest-absolute"), "forest-points-absolute")
    assert matplotlib.colors.to_hex(pts.get_facecolor()[0]) == "#009e73"
    with pytest.raises(OptionError, match="font_size"):
        ForestStyle(font_size=0)
    with pytest.raises(OptionError, match="marker_color"):
        ForestStyle(marker_color="not-a-colour")
    with pytest.raises(TypeError, match="ForestStyle"):
        forest_plot(rossi_result, style={"font_size": 9})
    with pytest.raises(TypeError):
        rossi_result.forest(colour="red")
    with pytest.raises(Exception):  # noqa: B017 - frozen
        style.font_size = 5


def test_plotting_leaves_the_result_untouched(rossi_result):
    before = rossi_result.subgroups.copy()
    forest_plot(rossi_result)
    effect_curve(rossi_result, "age")
    pd.testing.assert_frame_equal(rossi_result.subgroups, before)


# ------------------------------------------------------------------------------ effect curve
def test_effect_curve_equals_the_curve_frame(rossi_result, rossi):
    fig = effect_curve(rossi_result, "age", data=rossi)
    panels = [a for a in fig.axes if a.get_gid() is None and a.lines]
    assert [a.get_yscale() for a in panels] == ["linear", "log"]
    for ax, axis in zip(panels, ("absolute", "relative"), strict=True):
        cur = rossi_result.curve(axis, "age")
        for col in ("estimate", "conf_low", "conf_high"):
            line = _artist(ax, f"curve-{col}-{axis}")
            np.testing.assert_allclose(line.get_xdata(), cur.value)
            np.testing.assert_allclose(line.get_ydata(), cur[col])
        segs = _artist(ax, f"curve-rug-{axis}").get_segments()
        np.testing.assert_allclose(sorted(s[0][0] for s in segs), np.sort(rossi.age))
        p = rossi_result.interaction_p(axis).set_index("modifier").loc["age", "p_value"]
        assert f"(Wald) = {fmt_p(p)}" in ax.get_title(loc="left")
        assert ax.get_xlim() == (cur.value.min(), cur.value.max())
    assert "reference profile" in fig.get_suptitle()


def test_effect_curve_without_data_omits_the_rug(rossi_result):
    fig = effect_curve(rossi_result, "prio")
    assert not any((c.get_gid() or "").startswith("curve-rug") for a in fig.axes
                   for c in a.get_children())
    caption = next(t for t in fig.texts if t.get_gid() == "curve-caption").get_text()
    assert "Rug omitted" in caption.replace("\n", " ")


def test_effect_curve_checks_its_arguments(rossi_result, rossi):
    with pytest.raises(OptionError, match="modifier"):
        effect_curve(rossi_result, "wexp")  # categorical
    with pytest.raises(hr.HTEReportError, match="no column"):
        effect_curve(rossi_result, "age", data=rossi.drop(columns="age"))
    with pytest.raises(ValueError, match="2 Axes"):
        _, ax = plt.subplots()
        effect_curve(rossi_result, "age", ax=ax)


def test_effect_curve_continuous_outcome_has_one_panel():
    nsw = pd.read_csv(DATA / "nsw.csv")
    res = _fit("re78 ~ treat * (age + C(black))", nsw, treatment="treat")
    fig = res.effect_curve("age", data=nsw)
    assert len(fig.axes) == 1 and fig.axes[0].get_yscale() == "linear"


# ------------------------------------------------------------------------------ hostile input
HOSTILE = ["a\x00b", "x\x1b[31m", "$100+", "<b>&amp;</b> #*_@[]\\"]


@pytest.fixture(scope="module")
def hostile_result():
    rng = np.random.default_rng(12)
    d = pd.DataFrame({"t": rng.integers(0, 2, 800), "g": rng.choice(HOSTILE, 800),
                      "x": rng.normal(0, 1, 800)})
    d["y"] = (rng.random(800) < 0.3).astype(int)
    return _fit("y ~ t * (C(g) + x)", d, treatment="t").with_plan(
        labels={"g": "Group $g$ \x07 <i>", "x": "Score $x_1$\x1b"}, posthoc=()), d


def _svg_texts_are_plain(fig):
    """Save as the report does; the SVG must be XML and no text may be mathtext."""
    import xml.etree.ElementTree as ET

    from matplotlib.text import Text

    from hte_report.report.model import Figure

    texts = [t for t in fig.findobj(Text) if t.get_text()]
    svg = Figure.from_matplotlib(fig, "c", "n").svg
    ET.fromstring(svg)  # control characters would make this raise
    return texts


def test_hostile_level_labels_are_plain_text(hostile_result):
    res, _ = hostile_result
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Glyph missing", no mathtext errors
        fig = forest_plot(res)
        labels = _column(fig, "label")
        texts = _svg_texts_are_plain(fig)
    assert {"a\\x00b", "x\\x1b[31m", "$100+", "<b>&amp;</b> #*_@[]\\"} <= set(labels)
    assert "Group $g$ \\x07 <i>" in labels
    assert not any(c in t.get_text() for t in texts for c in "\x00\x1b\x07")
    assert not any(t.get_parse_math() for t in _axes(fig, "forest-label").texts)
    from hte_report.presentation.tables import interaction_table, subgroup_table

    for html in (subgroup_table(res).as_raw_html(), interaction_table(res).as_raw_html()):
        assert "a\\x00b" in html or "Group $g$ \\x07 &lt;i&gt;" in html
        assert not any(c in html for c in "\x00\x1b\x07") and "<i>" not in html


def test_hostile_labels_in_effect_curve(hostile_result):
    res, d = hostile_result
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = effect_curve(res, "x", data=d)
        texts = _svg_texts_are_plain(fig)
    assert "Score $x_1$\\x1b" in fig.axes[0].get_xlabel()
    assert fig.get_suptitle().startswith("Score $x_1$\\x1b:")
    assert not any(t.get_parse_math() for t in texts if "$" in t.get_text())


# ------------------------------------------------------------------------------ odd results
def _with(res, frame="subgroups", **cols):
    from dataclasses import replace

    df = getattr(res, frame).copy()
    for k, v in cols.items():
        df[k] = v
    return replace(res, **{frame: df})


def _odd_cases(res):
    sg = res.subgroups
    one = sg.level == "1"
    return {
        "CIs missing": (_with(res, conf_low=np.nan, conf_high=np.nan), "(CI not estimable)"),
        "infinite bound": (_with(res, conf_high=np.where(one, np.inf, sg.conf_high)), "to \u221e)"),
        "minus infinite": (_with(res, conf_low=np.where(one, -np.inf, sg.conf_low)),
                           f"({MINUS}\u221e to"),
        "bound at 1e12": (_with(res, conf_high=np.where(one, 1e12, sg.conf_high)), "e"),
        "nothing estimable": (_with(res, estimate=np.nan, conf_low=np.nan, conf_high=np.nan,
                                    note=None), "not estimable"),
        "overall missing": (_with(res, "overall", estimate=np.nan, conf_low=np.nan,
                                  conf_high=np.nan), "not estimable"),
    }


@pytest.mark.parametrize("case", ["CIs missing", "infinite bound", "minus infinite",
                                  "bound at 1e12", "nothing estimable", "overall missing"])
def test_odd_results_draw_without_warnings(rossi_result, case):
    from hte_report.presentation.tables import subgroup_table

    res, text = _odd_cases(rossi_result)[case]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = forest_plot(res, adjusted=True)
        _svg_texts_are_plain(fig)
        html = subgroup_table(res).as_raw_html()
    shown = _column(fig, "text-absolute") + _column(fig, "text-relative")
    assert any(text in t for t in shown), shown
    assert text.split(" (")[0] in html or text in html
    for axis in ("absolute", "relative"):
        ax = _axes(fig, f"forest-{axis}")
        lo, hi = ax.get_xlim()
        assert np.isfinite([lo, hi]).all() and lo < hi
        if case == "bound at 1e12" and axis == "absolute":
            assert hi < 1  # one degenerate interval does not squash the others
        segs = _artist(ax, f"forest-intervals-{axis}").get_segments()
        assert all(np.isfinite(s).all() or np.isnan(s).any() for s in segs)


def test_effect_curve_with_missing_and_infinite_band(rossi_result, rossi):
    c = rossi_result.curves
    odd = _with(rossi_result, "curves", conf_low=np.nan,
                conf_high=np.where(c.value > c.value.median(), np.inf, c.conf_high))
    gone = _with(rossi_result, "curves", estimate=np.nan, conf_low=np.nan, conf_high=np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = effect_curve(odd, "age", data=rossi)
        _svg_texts_are_plain(fig)
        for ax in fig.axes:
            assert np.isfinite(ax.get_ylim()).all()
        fig = effect_curve(gone, "age", data=rossi)
        _svg_texts_are_plain(fig)
    notes = [t for a in fig.axes for t in a.texts if (t.get_gid() or "").startswith(
        "curve-not-estimable")]
    assert len(notes) == 2


def test_a_500_character_label_is_truncated_with_few_measurements(monkeypatch):
    from hte_report.presentation.plots import style as plots

    calls = []
    real = plots._line_width.__wrapped__
    monkeypatch.setattr(plots, "_line_width", lambda s, p: calls.append(s) or real(s, p))
    prop = ForestStyle().font()
    for text in ("a" * 500, "b " * 250, "L" * 499 + "\x00"):
        calls.clear()
        out = plots._fit_text(text, 100, prop, max_lines=2)
        assert out.endswith("\u2026") and plots._width(out, prop) <= 100
        assert len(calls) < 120  # was one measurement per two characters cut


def test_five_hundred_character_labels_in_a_forest_plot():
    rng = np.random.default_rng(3)
    d = pd.DataFrame({"t": rng.integers(0, 2, 600),
                      "g": rng.choice(["a" * 500, "b " * 250, "c"], 600)})
    d["y"] = (rng.random(600) < 0.3).astype(int)
    res = _fit("y ~ t * C(g)", d, treatment="t").with_plan(labels={"g": "L" * 500},
                                                           posthoc=())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = forest_plot(res)
    labels = _column(fig, "label")
    assert all(len(t) < 120 for t in labels) and sum(t.endswith("\u2026") for t in labels) == 3
    assert fig.get_figwidth() < 10
    _no_overlap(fig, "label")
