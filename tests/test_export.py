"""Outputs (issue 19, item 3): the ARD round trip, Word/RTF/LaTeX tables read back
structurally, figures at a chosen size and resolution."""

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from hte_report.errors import DataError  # noqa: E402
from hte_report.presentation import export  # noqa: E402
from hte_report.presentation.tables import subgroup_frame  # noqa: E402
from hte_report.results import ard  # noqa: E402
from hte_report.spec.options import OptionError  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _same(a: pd.Series, b: pd.Series) -> bool:
    x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
    return bool(((x == y) | (np.isnan(x) & np.isnan(y))).all())


@pytest.mark.parametrize("suffix", [".csv", ".json", ".parquet"])
def test_ard_round_trip(rossi_result, tmp_path, suffix):
    if suffix == ".parquet":
        pytest.importorskip("duckdb")
    frame = ard.to_ard(rossi_result)
    assert {"context", "analysis", "modifier", "level", "stat_name", "stat_value",
            "stat_fmt"} <= set(frame.columns)
    assert {"overall", "subgroup", "interaction", "interaction_effect"} <= set(frame.context)
    back = ard.read_ard(export.save_ard(rossi_result, tmp_path / f"ard{suffix}"))
    assert len(back) == len(frame)
    assert _same(back.stat_value, frame.stat_value)  # exact, not to 15 digits
    sub = ard.from_ard(back, "subgroup")
    orig = rossi_result.subgroups.reset_index(drop=True)
    assert len(sub) == len(orig)
    for col in ("estimate", "conf_low", "conf_high", "std_error", "p_value", "n",
                "events_treated"):
        assert _same(sub[col], orig[col]), col
    for col in ("modifier", "level", "scale", "model", "analysis"):
        assert sub[col].tolist() == [str(v) for v in orig[col]], col
    tests = ard.from_ard(back, "interaction")
    assert _same(tests.p_adjusted, rossi_result.interactions.reset_index(drop=True).p_adjusted)
    ie = ard.from_ard(back, "interaction_effect")
    orig = rossi_result.interaction_effects.reset_index(drop=True)
    assert _same(ie.estimate, orig.estimate) and ie.scale.tolist() == orig.scale.tolist()
    per_unit = frame[(frame.context == "interaction_effect") & (frame.stat_name == "estimate")
                     & (frame.scale == "difference of RDs")]
    row = orig[orig.scale == "difference of RDs"].iloc[0]
    assert per_unit.stat_fmt.iloc[0] == f"{100 * row.estimate:.1f}".replace("-", "\u2212")


def test_ard_text_equals_the_subgroup_table(rossi_result):
    """The ARD's formatted statistics rebuild the cells of the subgroup table."""
    frame = ard.to_ard(rossi_result)
    text = ard.ard_effect_text(frame, "subgroup")
    sub = rossi_result.subgroups.reset_index(drop=True)
    table = subgroup_frame(rossi_result, adjusted=False)
    cells = set(table.est_absolute) | set(table.est_relative)
    for axis in ("absolute", "relative"):
        shown = rossi_result.effects(axis)
        for _, r in shown.iterrows():
            row = sub.index[(sub.modifier == r.modifier) & (sub.level == r.level)
                            & (sub.scale == r.scale) & (sub.model == r.model)
                            & (sub.method == r.method)][0]
            assert text[row] in cells, (r.modifier, r.level, text[row])
    p = frame[(frame.context == "interaction") & (frame.stat_name == "p_value")]
    assert all(f == "<0.001" or 0 <= float(f) <= 1 for f in p.stat_fmt if f)


def test_ard_bad_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        ard.read_ard(tmp_path / "none.csv")
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="not an ARD"):
        ard.read_ard(tmp_path / "x.csv")
    with pytest.raises(DataError, match="use .csv"):
        ard.write_ard(pd.DataFrame(), tmp_path / "x.xlsx")


def test_docx_table_reads_back(rossi_result, tmp_path):
    docx = pytest.importorskip("docx")
    path = export.to_docx(rossi_result, tmp_path / "t.docx", title="Table 14.2.1 Arrest")
    doc = docx.Document(str(path))
    assert doc.paragraphs[0].text == "Table 14.2.1 Arrest"
    assert doc.sections[0].page_width > doc.sections[0].page_height  # landscape
    table = doc.tables[0]
    content = export.table_content(rossi_result)
    assert [c.text for c in table.rows[0].cells] == content["header"]
    body = [[c.text for c in row.cells] for row in table.rows[1:]]
    frame = subgroup_frame(rossi_result)
    data = [r for r in body if len(set(r)) > 1]  # heading rows are merged across
    assert [r[0] for r in data] == frame.subgroup.tolist()
    assert [r[3] for r in data] == frame.est_absolute.tolist()
    assert [r[5] for r in data] == frame.est_relative.tolist()
    headings = [r[0] for r in body if len(set(r)) == 1]
    assert headings == list(dict.fromkeys(frame.group))
    text = "\n".join(p.text for p in doc.paragraphs)
    assert "Formula: arrest" in text and "interaction p" in text


def test_rtf_table(rossi_result, tmp_path):
    pytest.importorskip("rtflite")
    path = export.to_rtf(rossi_result, tmp_path / "t.rtf", title="Table 14.2.1 Arrest")
    raw = path.read_text()
    assert raw.startswith("{\\rtf1") and "\\landscape" in raw
    assert "Table 14.2.1 Arrest" in raw and "Formula: arrest" in raw
    frame = subgroup_frame(rossi_result)
    n_rows = len(frame) + frame.group.nunique() + 1  # body, headings, the column header
    assert raw.count("\\row") >= n_rows
    for level in ("All patients", "at 23 (median)"):
        assert level in raw
    assert "\\u8722" in raw  # minus signs kept as Unicode


def test_latex(rossi_result, tmp_path):
    text = export.to_latex(rossi_result, tmp_path / "t.tex")
    assert (tmp_path / "t.tex").read_text() == text
    assert "\\begin{table}" in text and "\\toprule" in text and "All patients" in text
    assert "\u2212" not in text and "$-$" in text
    assert "\u2212" in export.to_latex(rossi_result, unicode=True)
    with pytest.raises(OptionError, match=".tex"):
        export.to_latex(rossi_result, tmp_path / "t.txt")


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_figure_size_and_dpi(rossi_result, tmp_path, suffix):
    fig = rossi_result.forest()
    w0, h0 = fig.get_size_inches()
    path = export.save_figure(fig, tmp_path / f"f{suffix}", width=8, dpi=150)
    assert path.stat().st_size > 1000
    assert tuple(fig.get_size_inches()) == (w0, h0)  # the figure itself is unchanged
    if suffix == ".png":
        img = plt.imread(path)
        assert abs(img.shape[1] - 8 * 150) <= 1
        assert abs(img.shape[0] - 8 * h0 / w0 * 150) <= 1
    elif suffix == ".svg":
        assert 'width="576pt"' in path.read_text()  # 8 in
    else:
        assert path.read_bytes().startswith(b"%PDF")


def test_bad_export_arguments(rossi_result, tmp_path):
    fig = rossi_result.forest()
    with pytest.raises(OptionError, match="png"):
        export.save_figure(fig, tmp_path / "f.gif")
    with pytest.raises(OptionError, match="dpi"):
        export.save_figure(fig, tmp_path / "f.png", dpi=-1)
    with pytest.raises(DataError, match="does not exist"):
        export.to_docx(rossi_result, tmp_path / "no" / "t.docx")
    with pytest.raises(OptionError, match=".docx"):
        export.to_docx(rossi_result, tmp_path / "t.doc")


def test_ard_json_is_strict_and_keeps_infinite_values(tmp_path):
    import json

    frame = pd.DataFrame({"context": ["subgroup"] * 3, "row": [0, 0, 0],
                          "stat_name": ["estimate", "conf_low", "conf_high"],
                          "stat_value": [1.5, np.nan, np.inf], "stat_fmt": ["1.5", "", "∞"]})
    path = ard.write_ard(frame, tmp_path / "a.json")
    json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    back = ard.read_ard(path)
    assert back.stat_value.iloc[0] == 1.5 and np.isnan(back.stat_value.iloc[1])
    assert back.stat_value.iloc[2] == np.inf


def test_sas_labels_and_arm_labels_reach_the_word_table(tmp_path):
    """Variable labels of a transport file are the table's modifier labels when passed."""
    docx = pytest.importorskip("docx")
    pyreadstat = pytest.importorskip("pyreadstat")
    import warnings

    import hte_report as hr
    from hte_report.data import read_data, variable_labels

    rng = np.random.default_rng(5)
    n = 200
    frame = pd.DataFrame({"TRTN": rng.integers(0, 2, n).astype(float),
                          "SEX": rng.choice(["F", "M"], n),
                          "AVALC": (rng.random(n) < 0.3).astype(float)})
    pyreadstat.write_xport(frame, str(tmp_path / "adeff.xpt"),
                           column_labels={"SEX": "Sex at birth", "AVALC": "Responder"})
    df = read_data(tmp_path / "adeff.xpt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = hr.fit("AVALC ~ TRTN * C(SEX)", df, treatment="TRTN")
    path = export.to_docx(res, tmp_path / "t.docx", labels=variable_labels(df),
                          arm_labels=("Placebo", "Drug X"))
    table = docx.Document(str(path)).tables[0]
    assert table.rows[0].cells[1].text.startswith("Drug X")
    assert "Sex at birth" in [row.cells[0].text for row in table.rows]
