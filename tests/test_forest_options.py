"""Forest plot options (issue 19, item 4): x-limits, ticks, decimals, panels, arm labels,
column set, labels, font sizes that never truncate, drawing into a given Axes without overlap.
Each option is drawn and the drawn text and limits are compared with the tidy frame."""

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from hte_report.core.format import MINUS  # noqa: E402
from hte_report.presentation.plots import ForestStyle, forest_plot  # noqa: E402
from hte_report.spec.options import OptionError  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _axes(fig, label):
    found = [a for a in fig.axes if a.get_label() == label]
    return found[0] if found else None


def _column(fig, key):
    texts = [t for t in _axes(fig, f"forest-{key}").texts
             if (t.get_gid() or "").startswith(f"forest-{key}-")]
    return [t.get_text() for t in sorted(texts, key=lambda t: int(t.get_gid().rsplit("-", 1)[1]))]


def _texts(fig):
    """Every drawn text of the figure (column texts, headers, favours, footnote, ticks)."""
    fig.canvas.draw()
    out = []
    for a in (a for a in fig.axes if a.get_label().startswith("forest-")):
        out += [t for t in a.texts if t.get_text() and t.get_visible()]  # annotations too
        if a.axison:  # the panels: text columns and the background draw no axis
            out += [t for t in a.get_xticklabels() if t.get_text() and t.get_visible()]
    return out


def _levels(res, axis):
    eff = res.effects(axis)
    return eff[eff.modifier == "wexp"].sort_values("order")


def test_xlim_and_ticks_per_panel(rossi_result):
    fig = forest_plot(rossi_result, xlim={"absolute": (-0.3, 0.2), "RR": (0.4, 2.5)},
                      ticks={"RD": [-0.2, 0, 0.2], "relative": [0.5, 1, 2]})
    ab, rel = _axes(fig, "forest-absolute"), _axes(fig, "forest-relative")
    assert ab.get_xlim() == pytest.approx((-0.3, 0.2))
    assert rel.get_xlim() == pytest.approx((0.4, 2.5)) and rel.get_xscale() == "log"
    assert list(ab.get_xticks()) == pytest.approx([-0.2, 0, 0.2])
    assert list(rel.get_xticks()) == pytest.approx([0.5, 1, 2])
    fig.canvas.draw()
    assert [t.get_text() for t in ab.get_xticklabels()] == [f"{MINUS}20", "0", "20"]


def test_ticks_alone_widen_the_limits(rossi_result):
    fig = forest_plot(rossi_result, panels="relative", ticks=[0.25, 1, 4])
    lo, hi = _axes(fig, "forest-relative").get_xlim()
    assert lo <= 0.25 and hi >= 4


def test_decimals_match_the_frame(rossi_result):
    fig = forest_plot(rossi_result, decimals={"absolute": 2, "relative": 3})
    rows = [t for t in _column(fig, "text-absolute") if t and not t.startswith("P-int")]
    first = _levels(rossi_result, "absolute").iloc[0]
    want = f"{100 * first.estimate:.2f} ({100 * first.conf_low:.2f} to " \
           f"{100 * first.conf_high:.2f})".replace("-", MINUS)
    assert want in rows
    rel = _levels(rossi_result, "relative").iloc[0]
    assert f"{rel.estimate:.3f} ({rel.conf_low:.3f} to {rel.conf_high:.3f})" in _column(
        fig, "text-relative")
    fig = forest_plot(rossi_result, decimals=0)
    assert f"{rel.estimate:.0f} ({rel.conf_low:.0f} to {rel.conf_high:.0f})" in _column(
        fig, "text-relative")


@pytest.mark.parametrize("panels, shown", [("absolute", ["absolute"]),
                                           ("relative", ["relative"]),
                                           ("both", ["absolute", "relative"])])
def test_panels(rossi_result, panels, shown):
    fig = forest_plot(rossi_result, panels=panels)
    drawn = [a for a in ("absolute", "relative") if _axes(fig, f"forest-{a}") is not None]
    assert drawn == shown
    for a in shown:
        pts = [c for c in _axes(fig, f"forest-{a}").get_children()
               if c.get_gid() == f"forest-points-{a}"][0]
        x = np.sort(pts.get_offsets()[:, 0])
        want = np.sort(rossi_result.effects(a).estimate.dropna().to_numpy())
        np.testing.assert_allclose(x, want)
    # a single panel takes xlim/ticks as plain values
    fig = forest_plot(rossi_result, panels="relative", xlim=(0.3, 3))
    assert _axes(fig, "forest-relative").get_xlim() == pytest.approx((0.3, 3))


def test_arm_labels_in_counts_and_favours(rossi_result):
    fig = forest_plot(rossi_result, arm_labels=("No aid", "Financial aid"))
    headers = [t.get_text() for a in fig.axes for t in a.texts]
    assert any(h.startswith("Financial aid\n") for h in headers)
    assert any(h.startswith("No aid\n") for h in headers)
    favours = [t.get_text() for t in _texts(fig) if "Favours" in t.get_text()]
    assert any("Financial aid" in f for f in favours) and any("No aid" in f for f in favours)
    counts = _column(fig, "treated")
    ov = rossi_result.overall_effect("absolute")
    assert counts[0] == f"{int(ov.events_treated)}/{int(ov.n_treated)}"


def test_column_set(rossi_result):
    fig = forest_plot(rossi_result, columns=("estimates",))
    assert _axes(fig, "forest-treated") is None
    assert not any(t.startswith("P-int") for t in _column(fig, "text-absolute"))
    fig = forest_plot(rossi_result, columns=["counts", "p"])
    assert _axes(fig, "forest-treated") is not None
    col = _column(fig, "text-absolute")
    assert any(t.startswith("P-int") for t in col) and not any("to" in t for t in col)
    fig = forest_plot(rossi_result, columns=())
    assert _axes(fig, "forest-text-absolute") is None


def test_labels_override(rossi_result):
    fig = forest_plot(rossi_result, labels={"wexp": "Full-time work experience"})
    assert "Full-time work experience" in _column(fig, "label")


@pytest.mark.parametrize("size", [7, 10, 14])
def test_larger_fonts_do_not_truncate_more(rossi_result, size):
    res = rossi_result.with_plan(labels={"wexp": "Full-time work experience before arrest",
                                         "age": "Age at release (years)"}, posthoc=())
    fig = forest_plot(res, style=ForestStyle(font_size=size))
    assert not any("\u2026" in t for t in _column(fig, "label"))
    _inside(fig, fig.bbox)


def test_truncate_labels_false_wraps_everything():
    import pandas as pd

    from hte_report import fit

    rng = np.random.default_rng(7)
    d = pd.DataFrame({"t": rng.integers(0, 2, 400), "x": rng.integers(0, 2, 400)})
    d["y"] = (rng.random(400) < 0.3).astype(int)
    long = "no prior hospital admission in the twelve months before enrolment"
    d["x"] = d.x.map({0: long, 1: "yes"})
    res = fit("y ~ t * C(x)", d, treatment="t")
    fig = forest_plot(res, style=ForestStyle(font_size=11, truncate_labels=False),
                      arm_labels=("Usual care with a very long arm name", "Intervention"))
    labels = _column(fig, "label")
    assert not any("\u2026" in t for t in labels)
    assert long in [t.replace("\n", " ") for t in labels]
    assert not any("\u2026" in t.get_text() for t in _texts(fig))
    _inside(fig, fig.bbox)


def _inside(fig, box):
    for t in _texts(fig):
        b = t.get_window_extent()
        assert box.x0 - 1 <= b.x0 and b.x1 <= box.x1 + 1, t.get_text()
        assert box.y0 - 1 <= b.y0 and b.y1 <= box.y1 + 1, t.get_text()


def _overlaps(a, b):
    return a.x0 < b.x1 - 0.5 and b.x0 < a.x1 - 0.5 and a.y0 < b.y1 - 0.5 and b.y0 < a.y1 - 0.5


def test_draws_into_given_axes_without_overlap(rossi_result):
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 11))
    top.set_title("A title above the given Axes")
    pos = bottom.get_position()
    forest_plot(rossi_result, ax=bottom, adjusted=True)
    fig.canvas.draw()
    box = pos.transformed(fig.transFigure)
    texts = [t for t in _texts(fig) if t.get_text() != "A title above the given Axes"]
    _inside(fig, box)
    boxes = [(t.get_text(), t.get_window_extent()) for t in texts]
    for i, (ta, a) in enumerate(boxes):  # no two texts of the plot overlap
        for tb, b in boxes[i + 1:]:
            assert not _overlaps(a, b), (ta, tb)


def test_too_small_axes_is_refused(rossi_result):
    fig, ax = plt.subplots(figsize=(2, 1.5))
    with pytest.raises(OptionError, match="needs at least"):
        forest_plot(rossi_result, ax=ax)


@pytest.mark.parametrize("kw, match", [
    ({"panels": "left"}, "panels="),
    ({"xlim": (0.5, 2)}, "per panel"),
    ({"xlim": {"absolute": (0.2, 0.1)}}, "low < high"),
    ({"xlim": {"relative": (0, 2)}}, "positive"),
    ({"xlim": {"HR": (0.5, 2)}}, "not a panel drawn"),
    ({"xlim": {"absolute": "wide"}}, "must be numbers"),
    ({"ticks": {"absolute": [0.5]}, "xlim": {"absolute": (-0.1, 0.1)}}, "outside"),
    ({"decimals": 1.5}, "integer"),
    ({"decimals": -1}, "integer"),
    ({"arm_labels": "treated"}, "two texts"),
    ({"arm_labels": ("a", 1)}, "two texts"),
    ({"columns": ("counts", "forest")}, "columns="),
    ({"labels": ["wexp"]}, "mapping"),
])
def test_bad_options_are_clear(rossi_result, kw, match):
    with pytest.raises(OptionError, match=match):
        forest_plot(rossi_result, **kw)


def test_arm_labels_recorded_in_meta_are_the_default(rossi_result):
    from dataclasses import replace

    res = replace(rossi_result, meta={**(rossi_result.meta or {}),
                                      "arm_labels": ["No aid", "Financial aid"]})
    fig = forest_plot(res)
    assert any(t.get_text().startswith("Financial aid\n")
               for a in fig.axes for t in a.texts)
    fig = forest_plot(res, arm_labels=("Control arm", "Aid arm"))  # the argument wins
    assert any(t.get_text().startswith("Aid arm\n") for a in fig.axes for t in a.texts)


def test_variable_labels_recorded_in_meta_fill_missing_plan_labels(rossi_result):
    from dataclasses import replace

    from hte_report.presentation.tables import subgroup_frame

    res = replace(rossi_result.with_plan(labels={"age": "Age (plan)", "wexp": "wexp"},
                                         posthoc=()),
                  meta={**(rossi_result.meta or {}),
                        "variable_labels": {"age": "Age (SAS)", "wexp": "Work experience"}})
    labels = _column(forest_plot(res), "label")
    assert "Age (plan)" in labels and "Work experience" in labels  # the plan's label wins
    assert {"Age (plan)", "Work experience"} <= set(subgroup_frame(res).group)
