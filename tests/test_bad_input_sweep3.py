"""A sweep of bad inputs (third round): the command line (benefit's options, quarto init, data
files that are empty or damaged), plan values that were accepted and then dropped or failed only
when the report was rendered (scales, duplicated models, a model-based variance for modified
Poisson, variance beside cluster, level labels, the exploratory forest's settings and columns,
a risk model with the treatment), messages that named the wrong key or leaked a library's
repr, and Python entry points called with arguments of the wrong kind. Each gives one of the
package's errors saying what was wrong and what to do."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import hte_report as hr
from hte_report.cli import app
from hte_report.errors import ArgumentError, DataError, FormulaError, HTEReportError, PlanError
from hte_report.spec.options import OptionError
from hte_report.spec.plan import load_plan
from hte_report.spec.plan_data import check_plan_against_data

EXAMPLE = Path(__file__).parents[1] / "examples" / "rossi"
# a fresh plan: the example's recorded deviation belongs to the example's own lock
PLAN_TEXT = re.sub(r"(?m)^deviations:.*$", "deviations: []",
                   (EXAMPLE / "plan.yaml").read_text(encoding="utf-8"))
ROSSI = pd.read_csv(EXAMPLE / "rossi.csv")
MODELS = "models: [ols, modified-poisson, logit]"
RISK = 'formula: "arrest ~ age + prio + C(wexp) + C(mar) + paro + race"'
MAR_LEVELS = 'levels: {0: "No", 1: "Yes"}\n    rationale: "Marriage'


def _refused(call, tmp_path, error, match):
    """``call(tmp_path)`` raises ``error``, one of the package's own, saying ``match``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(error) as info:
            call(tmp_path)
    assert isinstance(info.value, HTEReportError)
    assert match in str(info.value)


def _plan(tmp_path: Path, old: str | None = None, new: str = "") -> Path:
    text = PLAN_TEXT
    if old is not None:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _extra(text: str) -> tuple[str, str]:
    """An edit adding top-level keys after 'deviations: []'."""
    return "deviations: []", "deviations: []\n" + text


# ------------------------------------------------------------------ plan values (load_plan)
PLAN_CASES = [
    ("models listed twice", MODELS, "models: [ols, ols]", PlanError,
     "'model.models' (line 28): lists 'ols' more than once"),
    ("scales listed twice", "scales: [absolute, relative]", "scales: [absolute, absolute]",
     PlanError, "'scales' (line 29): lists 'absolute' more than once"),
    ("scales: [] (dropped silently before)", "scales: [absolute, relative]", "scales: []",
     PlanError, "the report of a binary outcome shows both the absolute and the relative scale"),
    ("scales: [relative] for a binary outcome", "scales: [absolute, relative]",
     "scales: [relative]", PlanError, "Write scales: [absolute, relative], or leave scales out"),
    ("variance: model with modified Poisson (failed only when fitting)", MODELS,
     MODELS + "\n  variance: model", PlanError,
     "a model-based variance is invalid for modified-poisson"),
    ("variance: model with the default models", MODELS + "\n", "variance: model\n", PlanError,
     "modified-poisson (one of the default models)"),
    ("variance beside cluster (variance was dropped silently)", MODELS,
     MODELS + "\n  variance: HC3\n  cluster: race", PlanError,
     "model.cluster ('race') gives a cluster-robust variance, which replaces model.variance"),
    ("two levels with the same label", MAR_LEVELS, MAR_LEVELS.replace('"No"', '"Same"')
     .replace('"Yes"', '"Same"'), PlanError,
     "gives the label 'Same' to two values ('0' and '1')"),
    ("exploratory n_trees: 0", *_extra("exploratory: {planned: true, covariates: [age], "
                                       "n_trees: 0}"),
     PlanError, "'exploratory.n_trees' (line 83): must be an integer from 4 to 100,000"),
    ("exploratory n_folds: 1", *_extra("exploratory: {planned: true, covariates: [age], "
                                       "n_folds: 1}"),
     PlanError, "'exploratory.n_folds' (line 83): must be an integer from 2 to 100"),
    ("exploratory n_bootstrap huge", *_extra("exploratory: {planned: true, covariates: [age], "
                                             "n_bootstrap: 100000000}"),
     PlanError, "must be an integer from 2 to 100,000, got 100000000"),
    ("exploratory max_samples: 5", *_extra("exploratory: {planned: true, covariates: [age], "
                                           "max_samples: 5}"),
     PlanError, "must be in (0, 0.5) for an honest forest"),
    ("exploratory propensity: 1.5", *_extra("exploratory: {planned: true, covariates: [age], "
                                            "propensity: 1.5}"),
     PlanError, "must be a probability strictly between 0 and 1, got 1.5"),
    ("exploratory horizon for a binary outcome (ignored before)",
     *_extra("exploratory: {planned: true, covariates: [age], horizon: 10}"), PlanError,
     "the RMST horizon applies to a survival outcome only"),
    ("exploratory n_jobs: -5", *_extra("exploratory: {planned: true, covariates: [age], "
                                       "n_jobs: -5}"),
     PlanError, "must be a number of threads from 1 (or -1: all cores)"),
    ("modifier label empty (a blank heading)", 'label: "Married at release"', 'label: ""',
     PlanError, "'modifiers[3].label' (line 72): must not be empty"),
    ("modifier rationale empty", '"Marriage is a recognised turning point toward desistance; '
     'no direction hypothesized."', '"  "', PlanError,
     "'modifiers[3].rationale' (line 75): must not be empty"),
    ("Surv() outcome with family binary",
     'formula: "arrest ~ fin', 'formula: "Surv(week, arrest) ~ fin', FormulaError,
     "a Surv(time, event) outcome is a survival outcome, but outcome.family is 'binary'"),
    ("misspelt top-level key", "multiplicity: holm", "multiplicty: holm", PlanError,
     "unknown key 'multiplicty' (line 32). Did you mean 'multiplicity'?"),
    ("misspelt confidence_level", "confidence_level: 0.95", "confidence_levle: 0.95",
     PlanError, "Did you mean 'confidence_level'?"),
]


@pytest.mark.parametrize("name, old, new, error, match", PLAN_CASES,
                         ids=[c[0] for c in PLAN_CASES])
def test_bad_plan_values(tmp_path, name, old, new, error, match):
    with pytest.raises(error) as info:
        load_plan(_plan(tmp_path, old, new))
    assert match in str(info.value)


def test_level_labels_written_as_floats_label_integer_levels(tmp_path):
    """levels: {0.0: "No", 1.0: "Yes"} labelled nothing: '0.0' is not the data's level '0'."""
    plan = load_plan(_plan(tmp_path, MAR_LEVELS, MAR_LEVELS.replace("{0:", "{0.0:")
                           .replace("1:", "1.0:")))
    assert plan.level_labels["mar"] == {"0": "No", "1": "Yes"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_plan_against_data(plan, ROSSI)


def test_unquoted_yes_no_level_keys_get_the_yaml_hint(tmp_path):
    plan = load_plan(_plan(tmp_path, MAR_LEVELS, MAR_LEVELS.replace("{0:", "{false:")
                           .replace("1:", "true:")))
    with pytest.warns(hr.HTEReportWarning, match=r"labels \['False', 'True'\], which are not "
                                                 r"values of 'mar'.*read as true/false by YAML"):
        check_plan_against_data(plan, ROSSI)


@pytest.mark.parametrize("old, new", [
    ("scales: [absolute, relative]", "scales: [relative, absolute]"),
    (MODELS, "models: [logit]\n  variance: model"),
    _extra("exploratory: {planned: false, covariates: [nosuch]}"),
], ids=["scales in another order", "model variance for logit", "exploratory not planned"])
def test_good_plan_values_still_pass(tmp_path, old, new):
    check_plan_against_data(load_plan(_plan(tmp_path, old, new)), ROSSI)


# ------------------------------------------------------------------ plan against data
DATA_CASES = [
    ("risk model with the treatment (it was fitted anyway)", RISK,
     RISK.replace("arrest ~ age", "arrest ~ fin + age"), None, PlanError,
     "risk_based.formula: it uses the treatment 'fin'"),
    ("include_treatment with the control-arm risk model (failed inside the report)",
     "method: pooled", "method: control-arm", None, PlanError,
     "risk_based.include_treatment applies to method 'pooled' only"),
    ("exploratory covariate not in the data (found only when rendering)",
     *_extra("exploratory: {planned: true, covariates: [nosuch]}"), None, PlanError,
     "plan key 'exploratory.covariates[0]' names column 'nosuch'"),
    ("exploratory modifier not in the data",
     *_extra("exploratory: {planned: true, covariates: [age], modifiers: [agee]}"), None,
     PlanError, "'exploratory.modifiers[0]' names column 'agee', which is not in the data. "
                "Did you mean ['age']?"),
    ("demographic column not in the data: named by its template key",
     *_extra("demographics: {sex: nosuch}"), None, PlanError,
     "plan key 'demographics.sex' names column 'nosuch'"),
    ("subject key repeated: no numpy repr in the message",
     *_extra("analysis_set: {subject: fin}"), None, PlanError,
     "more than one row after the selection (e.g. 0);"),
    ("outcome column without any value (failed only when fitted)", None, "",
     lambda d: d.assign(arrest=float("nan")), PlanError,
     "plan key 'outcome.variable' names column 'arrest', which has no value: all 432 rows"),
    ("modifier column without any value", None, "", lambda d: d.assign(age=float("nan")),
     PlanError, "plan key 'modifiers[0].variable' names column 'age', which has no value"),
    ("binary modifier constant in the data (failed only when fitted)", None, "",
     lambda d: d.assign(mar=0), PlanError,
     "modifiers[3] 'mar' is constant in the data (every row with a value has 0)"),
    ("column named in capitals (SAS)", None, "", lambda d: d.rename(columns={"arrest": "ARREST"}),
     PlanError, "names column 'arrest', which is not in the data. Did you mean ['ARREST']?"),
    ("column name with spaces around it", None, "",
     lambda d: d.rename(columns={"arrest": " arrest "}), PlanError,
     "Did you mean [' arrest ']? (the data's column name has spaces around it)"),
    ("semicolon-separated file read as one column", None, "", ";", PlanError,
     "the file separates its fields with semicolons; save it as comma-separated .csv"),
    ("comma-separated file named .tsv", None, "", ",", PlanError,
     "the file separates its fields with commas; give it the extension .csv"),
]


@pytest.mark.parametrize("name, old, new, sep, error, match", DATA_CASES,
                         ids=[c[0] for c in DATA_CASES])
def test_plan_against_data(tmp_path, name, old, new, sep, error, match):
    data = (ROSSI if sep is None else sep(ROSSI) if callable(sep)
            else pd.DataFrame({sep.join(ROSSI.columns): ["x"]}))
    with pytest.raises(error) as info:
        check_plan_against_data(load_plan(_plan(tmp_path, old, new)), data)
    assert match in str(info.value)
    assert "np.int64" not in str(info.value)


# ------------------------------------------------------------------ survival and repeated plans
ACTG = Path(__file__).parents[1] / "examples" / "actg320"
PBC = Path(__file__).parents[1] / "examples" / "pbcseq"


def _family_plan(tmp_path, folder: Path, old: str, new: str) -> Path:
    text = (folder / "plan.yaml").read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / "plan.yaml"  # no lock file beside it: an unlocked copy
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


FAMILY_CASES = [
    ("horizons: [] (no survival difference, silently)", "horizons: [300]", "horizons: []",
     PlanError, "'outcome.horizons' (line 22): lists no time"),
    ("horizons listed twice", "horizons: [300]", "horizons: [300, 300]", PlanError,
     "lists 300 more than once"),
    ("scales: [absolute] for a survival outcome", "scales: [absolute, relative]",
     "scales: [absolute]", PlanError, "shows both the absolute and the relative scale"),
]


@pytest.mark.parametrize("name, old, new, error, match", FAMILY_CASES,
                         ids=[c[0] for c in FAMILY_CASES])
def test_bad_survival_plan_values(tmp_path, name, old, new, error, match):
    with pytest.raises(error) as info:
        load_plan(_family_plan(tmp_path, ACTG, old, new))
    assert match in str(info.value)


@pytest.mark.parametrize("old, new", [("horizons: [300]", "horizons: [100000]"),
                                      ("rmst_tau: 300 ", "rmst_tau: 100000 ")],
                         ids=["horizon", "rmst_tau"])
def test_survival_times_beyond_follow_up_fail_the_check(tmp_path, old, new):
    """Found by 'hte-report check', not after the first models of a render were fitted."""
    plan = load_plan(_family_plan(tmp_path, ACTG, old, new))
    with pytest.raises(PlanError, match=r"100000 is beyond the follow-up of the treated arm "
                                        r"\(last observed time 364\)"):
        check_plan_against_data(plan, pd.read_csv(ACTG / "actg320.csv"))


def test_repeated_plan_scales_and_landmark(tmp_path):
    with pytest.raises(PlanError, match=r"shows the absolute scale only \(a repeated outcome "
                                        "has no relative scale"):
        load_plan(_family_plan(tmp_path, PBC, "scales: [absolute]",
                               "scales: [absolute, relative]"))
    plan = load_plan(_family_plan(tmp_path, PBC, "estimand: slope",
                                  "estimand: landmark\n  landmark: 300"))
    with pytest.warns(hr.HTEReportWarning, match="outcome.landmark 300 is outside the observed "
                                                 "times of 'years'"):
        check_plan_against_data(plan, pd.read_csv(PBC / "pbcseq.csv"))


NHEFS = Path(__file__).parents[1] / "examples" / "nhefs"
OBS_CASES = [
    ("the outcome as a confounder", "confounders: [sex,", "confounders: [wt82_71,",
     "'confounders[0]' (line 32): 'wt82_71' is the outcome"),
    ("the treatment as a confounder", "confounders: [sex,", "confounders: [qsmk,",
     "'qsmk' is the treatment; confounders are the variables adjusted for"),
    ("a confounder listed twice", "confounders: [sex,", "confounders: [sex, sex,",
     "'confounders[1]' (line 32): 'sex' is listed twice"),
    ("a propensity formula with another outcome (dropped silently)", "threshold: 0.05",
     'threshold: 0.05\n  formula: "wt82_71 ~ age + sex"',
     "the model predicts the treatment 'qsmk', but the formula's left-hand side is 'wt82_71'"),
]


@pytest.mark.parametrize("name, old, new, match", OBS_CASES, ids=[c[0] for c in OBS_CASES])
def test_bad_observational_plan_values(tmp_path, name, old, new, match):
    with pytest.raises(PlanError) as info:
        load_plan(_family_plan(tmp_path, NHEFS, old, new))
    assert match in str(info.value)


@pytest.mark.parametrize("formula, match", [
    ("~ agee + sex", "plan key 'propensity.formula (agee)' names column 'agee', which is not "
                     "in the data. Did you mean ['age']?"),
    ("~ qsmk + sex", "propensity.formula uses the treatment 'qsmk' on its right-hand side"),
], ids=["column not in the data", "the treatment"])
def test_propensity_formula_against_data(tmp_path, formula, match):
    plan = load_plan(_family_plan(tmp_path, NHEFS, "threshold: 0.05",
                                  f'threshold: 0.05\n  formula: "{formula}"'))
    data = pd.read_csv(next(NHEFS.glob("*.csv")))
    with pytest.raises(PlanError) as info:
        check_plan_against_data(plan, data)
    assert match in str(info.value)


def test_a_planned_section_not_produced_is_a_warning_too(tmp_path):
    """The report records a planned risk-based analysis that failed as a deviation; the
    render says so as well (it printed nothing)."""
    from hte_report.analysis import fit_plan
    from hte_report.report.path import risk_section

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = fit_plan(_plan(tmp_path, "crossfit_folds: 5",
                                  "crossfit_folds: 5\n  cutpoints: [0.001, 0.002]"), ROSSI)
    with pytest.warns(hr.HTEReportWarning, match=r"the planned risk-based \(PATH\) analysis "
                                                 r"was not produced: it failed: risk stratum"):
        blocks = risk_section(analysis)
    assert blocks[0].title == "Risk-based analysis not produced"


# ------------------------------------------------------------------ render()
def _render(tmp_path, plan=None, data=None, **kw):
    from hte_report.report.render import render

    kw.setdefault("out", tmp_path / "out")
    kw.setdefault("engine", "builtin")
    return render(_plan(tmp_path) if plan is None else plan,
                  ROSSI if data is None else data, **kw)


def _a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    return tmp_path / "f"


RENDER_CASES = [
    ("to=None", lambda t: _render(t, to=None), ArgumentError, "to= names the formats to write"),
    ("to=[] (wrote nothing, silently)", lambda t: _render(t, to=[]), ArgumentError,
     "to= names the formats to write: 'html', 'pdf' or both"),
    ("out=5", lambda t: _render(t, to=["html"], out=5), ArgumentError,
     "out= is the folder for the report (a path), got int"),
    ("out is a file (FileExistsError)", lambda t: _render(t, to=["html"], out=_a_file(t)),
     HTEReportError, "is an existing file; give a folder for the report"),
    ("progress=5", lambda t: _render(t, to=["html"], progress=5), ArgumentError,
     "progress= is a function called with each step's description"),
    ("engine='quarto' with a data frame", lambda t: _render(t, to=["html"], engine="quarto"),
     ArgumentError, "engine='quarto' renders files: data= must be the path of the data file"),
    ("engine='quarto' with a loaded plan",
     lambda t: _render(t, plan=load_plan(_plan(t)), data=EXAMPLE / "rossi.csv", to=["html"],
                       engine="quarto"),
     ArgumentError, "plan= must be the path of the plan file, got Plan"),
]


@pytest.mark.parametrize("name, call, error, match", RENDER_CASES,
                         ids=[c[0] for c in RENDER_CASES])
def test_render_refuses_before_fitting(tmp_path, name, call, error, match):
    with pytest.raises(error) as info:
        call(tmp_path)
    assert match in str(info.value)


def test_render_checks_source_date_epoch_before_fitting(tmp_path, monkeypatch):
    import hte_report.report.render as module

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "abc")
    monkeypatch.setattr(module, "fit_plan", lambda *a, **k: pytest.fail("fitted"))
    with pytest.raises(HTEReportError, match="SOURCE_DATE_EPOCH must be whole seconds"):
        _render(tmp_path, to=["html"])


def test_render_takes_formats_as_text(tmp_path, monkeypatch):
    import hte_report.report.render as module

    seen = {}

    def stop(*a, **k):
        seen["to"] = True
        raise HTEReportError("stop")

    monkeypatch.setattr(module, "fit_plan", stop)
    with pytest.raises(HTEReportError, match="stop"):  # 'html' was ('h', 't', 'm', 'l')
        _render(tmp_path, to="html")
    assert seen


# ------------------------------------------------------------------ exports and read_cells
_RESULT = {}


def _res():
    if "r" not in _RESULT:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _RESULT["r"] = hr.fit("arrest ~ fin * (age + C(work_exp))",
                                  ROSSI.rename(columns={"wexp": "work_exp"}), treatment="fin")
    return _RESULT["r"]


def _folder(tmp_path, name):
    (tmp_path / name).mkdir()
    return tmp_path / name


def _cells(source, formula="arrest ~ fin * C(wexp)", family="binary"):
    pytest.importorskip("duckdb")
    from hte_report.data.largedata import read_cells

    return read_cells(source, formula, treatment="fin", family=family)


def _text_file(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    return tmp_path / name


EXPORT_CASES = [
    ("to_docx(path=5)", lambda t: hr.to_docx(_res(), 5), ArgumentError,
     "A Word table goes to a file: give its path (a .docx file), got int"),
    ("to_docx(path=None)", lambda t: hr.to_docx(_res(), None), ArgumentError, "got NoneType"),
    ("to_docx into a folder named x.docx (IsADirectoryError)",
     lambda t: hr.to_docx(_res(), _folder(t, "x.docx")), DataError,
     "is a folder; give the path of the .docx file to write"),
    ("save_figure into a folder named f.png",
     lambda t: hr.save_figure(_res().forest(), _folder(t, "f.png")), DataError,
     "is a folder; give the path of the .png file"),
    ("save_figure(width=True) (1 inch, silently)",
     lambda t: hr.save_figure(_res().forest(), t / "f.png", width=True), OptionError,
     "width= must be a positive number, got True"),
    ("save_ard(path=5)", lambda t: hr.save_ard(_res(), 5), ArgumentError,
     "An analysis-results dataset goes to a file"),
    ("save_ard into a folder named a.csv", lambda t: hr.save_ard(_res(), _folder(t, "a.csv")),
     DataError, "is a folder; give the path of the .csv file"),
    ("save_ard into a missing folder (pandas' OSError)",
     lambda t: hr.save_ard(_res(), t / "nope" / "a.csv"), DataError, "does not exist"),
    ("read_cells(5)", lambda t: _cells(5), DataError,
     "read_cells() reads a Parquet or CSV file: source= is its path, got int"),
    ("read_cells(family='binomial') (KeyError)",
     lambda t: _cells(EXAMPLE / "rossi.csv", family="binomial"), OptionError,
     "family='binomial' is not allowed; expected one of 'binary', 'count', 'continuous'"),
    ("read_cells(family='survival') (KeyError)",
     lambda t: _cells(EXAMPLE / "rossi.csv", family="survival"), OptionError,
     "family='survival' is not allowed"),
    ("read_cells of a workbook (read as CSV)",
     lambda t: _cells(_text_file(t, "d.xlsx", "PK\x03\x04")), DataError,
     "read_cells() reads Parquet (.parquet) and CSV (.csv, .tsv, .txt) files, not 'd.xlsx'"),
    ("read_cells of an empty CSV (column0)", lambda t: _cells(_text_file(t, "e.csv", "\n\n")),
     DataError, "is empty: no header line with column names"),
    ("read_cells of a header-only CSV (outcome VARCHAR)",
     lambda t: _cells(_text_file(t, "h.csv", "week,arrest,fin,wexp\n")), DataError,
     "'h.csv' has no rows (only the column names)"),
]


@pytest.mark.parametrize("name, call, error, match", EXPORT_CASES,
                         ids=[c[0] for c in EXPORT_CASES])
def test_exports_and_read_cells_refuse(tmp_path, name, call, error, match):
    _refused(call, tmp_path, error, match)


def test_rtf_text_is_escaped_not_converted(tmp_path):
    """rtflite read '_' as a subscript (work_exp showed as 'work' with subscript 'exp'),
    passed braces and backslashes through as RTF code, and wrote Latin-1 letters as raw UTF-8
    bytes (Word shows 'Ã¢' for 'â')."""
    pytest.importorskip("rtflite")
    path = hr.to_rtf(_res(), tmp_path / "t.rtf", title="T^2 a_b",
                     labels={"age": "Âge ≥ 30 {x} \\par 中"})
    text = path.read_text(encoding="utf-8")
    assert all(ord(c) < 128 for c in text)
    assert "work_exp" in text and "\\sub" not in text and "\\super" not in text
    assert "T^2 a_b" in text
    assert "\\uc1\\u194\\'3fge \\uc1\\u8805\\'3f 30 \\{x\\} \\\\par \\uc1\\u20013\\'3f" in text


def test_a_failed_quarto_render_names_the_error_of_the_report_code():
    """The message was Quarto's last line, 'WARN: Error encountered when rendering files';
    the package's own error was only in the log (coloured by Jupyter)."""
    from hte_report.report.render import _quarto_failure

    log = ("Starting python3 kernel...Done\nAn error occurred while executing the following "
           "cell:\n\x1b[0;31mModelError\x1b[0m    Traceback (most recent call last)\n"
           "\x1b[0;31mModelError\x1b[0m: analysis of grp2: subgroup grp2='x' has no control "
           "patients\n\x1b[33mWARN: Error encountered when rendering files\x1b[39m\n")
    assert _quarto_failure(log) == ("the report's code stopped with ModelError: analysis of "
                                    "grp2: subgroup grp2='x' has no control patients")
    assert _quarto_failure("ERROR: typst not found\n") == "ERROR: typst not found"


# ------------------------------------------------------------------ Python entry points
def _lock(tmp_path, **kw):
    return hr.lock_plan(_plan(tmp_path), **kw)


def _stata(tmp_path, content: bytes):
    path = tmp_path / "d.dta"
    path.write_bytes(content)
    return hr.read_data(path)


def _workbook(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    wb.active.title = "Data"
    wb.active.append(["a", "b"])
    wb.active.append([1, 2])
    wb.create_sheet("Empty", 0)
    wb.save(tmp_path / "w.xlsx")
    return tmp_path / "w.xlsx"


API_CASES = [
    ("fit_plan(posthoc=5)", lambda t: hr.fit_plan(_plan(t), ROSSI, posthoc=5), PlanError,
     "posthoc= names the columns to analyse post hoc"),
    ("fit_plan(posthoc=[['race']])", lambda t: hr.fit_plan(_plan(t), ROSSI, posthoc=[["race"]]),
     PlanError, "a list of column names"),
    ("load_plan(encoding=5)", lambda t: load_plan(_plan(t), encoding=5), PlanError,
     "must be the name of a text encoding such as 'utf-8'"),
    ("load_plan(YAML text instead of a path)", lambda t: load_plan(PLAN_TEXT), PlanError,
     "load_plan() takes the path of a plan file (or a parsed mapping); got text of"),
    ("lock_plan(force='no') re-locked silently", lambda t: _lock(t, force="no"), PlanError,
     "force= must be True or False, got 'no'"),
    ("variable_labels(None)", lambda t: hr.variable_labels(None), ArgumentError,
     "variable_labels() takes a data frame"),
    ("variable_labels(dict)", lambda t: hr.variable_labels({"a": 1}), ArgumentError,
     "got dict"),
    ("ForestStyle(colour=)", lambda t: hr.ForestStyle(colour="red"), ArgumentError,
     "ForestStyle() has no argument colour="),
    ("ForestStyle(marker_colour=)", lambda t: hr.ForestStyle(marker_colour="red"),
     ArgumentError, "did you mean marker_color=?"),
    ("ForestStyle(show_counts='no')", lambda t: hr.ForestStyle(show_counts="no"), OptionError,
     "ForestStyle.show_counts must be True or False"),
    ("ForestStyle(font_size=inf)", lambda t: hr.ForestStyle(font_size=float("inf")),
     OptionError, "ForestStyle.font_size must be a positive number"),
    ("ForestStyle(font_family=5)", lambda t: hr.ForestStyle(font_family=5), OptionError,
     "ForestStyle.font_family must be a font name"),
    ("empty Stata file", lambda t: _stata(t, b""), DataError,
     "Stata file 'd.dta' is empty (0 bytes)"),
    ("truncated Stata file (struct.error)", lambda t: _stata(t, b"\x72\x02\x01\x00" + bytes(20)),
     DataError, "it is damaged or not a Stata file"),
    ("not a Stata file", lambda t: _stata(t, b"garbage stata"), DataError,
     # pandas 2 reports an unknown version, pandas 3 a short read: both are "damaged"
     "as a Stata (.dta) file: it is damaged"),
    ("workbook whose first sheet is empty", lambda t: hr.read_data(_workbook(t)), DataError,
     "the first sheet of 'w.xlsx' ('Empty') is empty; the workbook has the sheets ['Empty', "
     "'Data']"),
    ("column name with a symbol: quote it", lambda t: hr.fit(
        "arrest ~ fin * (age + prio€)", ROSSI.rename(columns={"prio": "prio€"}),
        treatment="fin"), FormulaError, "If 'prio€' is a column name, quote it with backticks"),
]


@pytest.mark.parametrize("name, call, error, match", API_CASES, ids=[c[0] for c in API_CASES])
def test_python_entry_points_refuse(tmp_path, name, call, error, match):
    _refused(call, tmp_path, error, match)


def test_python_entry_points_still_accept_good_values(tmp_path):
    assert load_plan(_plan(tmp_path), encoding=None).title  # None: UTF-8
    assert hr.ForestStyle(font_size=8, show_counts=False).font_size == 8
    assert hr.variable_labels(ROSSI) == {}


# ------------------------------------------------------------------ the command line
def _cli(*args):
    r = CliRunner().invoke(app, [str(a) for a in args])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert "Traceback" not in r.output
    return r


CLI_CASES = [
    ("benefit --modifier with --rr (ignored before)",
     lambda t: ("benefit", "0.1", "--rr", "0.9", "--modifier", "age"),
     "--modifier (and --level) pick a subgroup's risk ratio from a fitted --result"),
    ("benefit --level without --modifier (ignored before)",
     lambda t: ("benefit", "0.1", "--rr", "0.9", "--level", "1"),
     "--level names a level of a subgroup's modifier; give the modifier with --modifier"),
    ("benefit negative P0 ('No such option: -0' before)",
     lambda t: ("benefit", "-0.1", "--rr", "0.9"), "P0 '-0.1' is negative"),
    ("benefit --percent 0 (told to give proportions)",
     lambda t: ("benefit", "0", "--rr", "0.9", "--percent"),
     "with --percent, P0 must be percentages strictly between 0 and 100; got 0."),
    ("benefit 10%", lambda t: ("benefit", "10%", "--rr", "0.9"),
     "For percentages write the numbers and add --percent"),
    ("quarto init with a plan that is not YAML (the project was written)",
     lambda t: ("quarto", "init", t / "q", "--plan", _bad_yaml(t), "--data",
                EXAMPLE / "rossi.csv"), "not valid YAML"),
    ("quarto init with data that do not fit the plan",
     lambda t: ("quarto", "init", t / "q", "--plan", _plan(t), "--data", _no_outcome(t)),
     "plan key 'outcome.variable' names column 'arrest', which is not in the data"),
]


def _bad_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("a: [\n")
    return path


def _no_outcome(tmp_path):
    path = tmp_path / "d.csv"
    ROSSI.drop(columns="arrest").to_csv(path, index=False)
    return path


@pytest.mark.parametrize("name, args, match", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_refuses(tmp_path, name, args, match):
    r = _cli(*args(tmp_path))
    assert r.exit_code != 0, r.output
    assert match in " ".join(r.output.split()), r.output
    assert not (tmp_path / "q" / "hte-report.qmd").exists()


def test_cli_negative_option_values_still_reach_their_checks():
    r = _cli("benefit", "0.1", "--rr", "-0.9")
    assert r.exit_code == 1 and "rr must be a finite risk ratio > 0" in r.output
    r = _cli("benefit", "0.1", "--rr", "0.9", "--ci", "-1,2")
    assert r.exit_code == 1 and "rr_ci[0] must be a finite risk ratio > 0" in r.output
