"""Hostile inputs through formulas, plans and the command line (issue 12): every one gives a
clear message from the package's own errors, never a traceback, a hang or a silent wrong number.
"""

import json
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import hte_report as hr
from hte_report.cli import app
from hte_report.errors import FormulaError, PlanError
from hte_report.spec.plan import load_plan, lock_plan
from hte_report.spec.plan_data import check_plan_against_data

EXAMPLE = Path(__file__).parents[1] / "examples" / "rossi"
PLAN_TEXT = (EXAMPLE / "plan.yaml").read_text(encoding="utf-8")
FORMULA = "arrest ~ fin * (age + prio + C(wexp) + C(mar)) + race + paro"


@pytest.fixture()
def plan_file(tmp_path):
    import re

    dst = tmp_path / "plan.yaml"
    shutil.copy(EXAMPLE / "plan.yaml", dst)
    # a fresh plan: the example's recorded deviation belongs to the example's own lock
    dst.write_text(re.sub(r"(?m)^deviations:.*$", "deviations: []", dst.read_text()))
    return dst


@pytest.fixture()
def csv_file(tmp_path):
    dst = tmp_path / "rossi.csv"
    shutil.copy(EXAMPLE / "rossi.csv", dst)
    return dst


def edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def cli(*args):
    """Run the CLI; it must never end in an exception other than its own exit."""
    r = CliRunner().invoke(app, [str(a) for a in args])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert "Traceback" not in r.output
    return r


def cli_error(*args, match):
    r = cli(*args)
    assert r.exit_code != 0, r.output
    assert "error: " in r.output, r.output
    assert match in r.output, r.output
    return r


def trial(n=400, seed=1):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(dict(y=rng.binomial(1, .3, n), treat=rng.integers(0, 2, n),
                             a=rng.normal(size=n), b=rng.integers(0, 2, n),
                             sbp=rng.normal(120, 10, n), g=rng.integers(1, 5, n)))


def quiet_fit(*args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hr.fit(*args, **kw)


# ------------------------------------------------------------------ item 2: formulas
@pytest.mark.parametrize("safe", [False, True])
@pytest.mark.parametrize("formula, message", [
    ("y ~ a | b", "several parts separated by '|'"),
    ("~ treat*a", "has no outcome: write the outcome column before '~'"),
    ("open('x').read() ~ treat*a", "cannot parse formula"),
    ("y ~ treat*" + "(" * 300 + "a" + ")" * 300, "nests brackets 300 levels deep"),
    ("y ~ treat*a + I(" + "(" * 300 + "a" + ")" * 300 + ")", "nests brackets 301 levels deep"),
    ("y ~ treat*a + I(a + 9**9**9)", "the power 9**387420489 is too large"),
    ("y ~ treat*a + I(a * 2**100000)", "too large"),
    ("y ~ treat*a + poly(a, 1000000)", "larger than 1000"),
    ("y ~ treat*(a + b) ~ g", "cannot parse formula"),
    ("y ~ 1", "has no treatment-by-covariate interaction"),
])
def test_bad_formulas_are_formula_errors(formula, message, safe):
    t0 = time.perf_counter()
    with pytest.raises(FormulaError) as info:
        hr.fit(formula, trial(), treatment="treat", safe_formula=safe)
    assert message in str(info.value)
    assert "\x1b[" not in str(info.value) and len(str(info.value)) < 1200
    assert time.perf_counter() - t0 < 10


def test_method_call_on_lhs_in_safe_mode():
    with pytest.raises(FormulaError, match="unsafe formula term 'y.astype"):
        hr.fit("y.astype(float) ~ treat*a", trial(), treatment="treat", safe_formula=True)


@pytest.mark.parametrize("term", [
    "I('a' * 10**9)",
    "I([1] * 10**9)",
    "I(a + 1/0)",
    "hashed(g)",
])
def test_resource_bombs_in_plan_formulas_are_refused(term):
    with pytest.raises(FormulaError, match="unsafe formula term"):
        hr.fit(f"y ~ treat*a + {term}", trial(), treatment="treat", safe_formula=True)


def test_hang_formula_in_plan_is_refused_by_check(plan_file, csv_file):
    edit(plan_file, '+ race + paro"', '+ race + paro + I(age + 9**9**9)"')
    t0 = time.perf_counter()
    cli_error("check", plan_file, "--data", csv_file, match="the power 9**387420489 is too large")
    with pytest.raises(FormulaError, match="too large"):
        load_plan(plan_file)
    assert time.perf_counter() - t0 < 10


@pytest.mark.parametrize("term, message", [
    ("| age", "several parts separated by '|'"),
    ("+ I(" + "(" * 300 + "age" + ")" * 300 + ")", "levels deep"),
])
def test_bad_plan_formulas_are_clear(plan_file, csv_file, term, message):
    edit(plan_file, '+ race + paro"', f'+ race + paro {term}"')
    cli_error("check", plan_file, "--data", csv_file, match=message)


def test_plan_formula_without_outcome(plan_file, csv_file):
    edit(plan_file, 'formula: "arrest ~', 'formula: "~')
    cli_error("check", plan_file, "--data", csv_file, match="has no outcome")


@pytest.mark.parametrize("quoted", ["`systolic bp`", 'Q("systolic bp")'])
def test_quoted_column_names_fit_like_renamed_columns(quoted):
    d = trial(600)
    e = d.rename(columns={"sbp": "systolic bp"})
    r0 = quiet_fit("y ~ treat*(a + sbp + I(sbp**2)) + C(g)", d, treatment="treat")
    r1 = quiet_fit(f"y ~ treat*(a + {quoted} + I({quoted}**2)) + C(g)", e, treatment="treat",
                   safe_formula=True)
    assert r1.modifiers == ("a", "systolic bp")
    assert r1.modifier_kinds["systolic bp"] == "continuous"
    for col in ("estimate", "std_error", "conf_low", "conf_high"):
        np.testing.assert_allclose(r1.subgroups[col], r0.subgroups[col], rtol=1e-10)
    np.testing.assert_allclose(r1.interactions.p_value, r0.interactions.p_value, rtol=1e-10)


def test_quoted_text_modifier_with_space():
    d = trial(600)
    d["blood group"] = np.where(d.g > 2, "high", "low")
    d0 = d.rename(columns={"blood group": "bg"})
    r0 = quiet_fit("y ~ treat*(a + bg)", d0, treatment="treat")
    r1 = quiet_fit("y ~ treat*(a + `blood group`)", d, treatment="treat", safe_formula=True)
    assert r1.modifier_kinds["blood group"] == "categorical"
    np.testing.assert_allclose(r1.subgroups.estimate, r0.subgroups.estimate, rtol=1e-10)


@pytest.mark.parametrize("term", ["C(`blood group`)", 'C(Q("blood group"))'])
def test_quoted_name_inside_C_is_categorical_like_a_plain_name(term):
    d = trial()
    r0 = quiet_fit("y ~ treat*(a + C(g))", d, treatment="treat")
    r1 = quiet_fit(f"y ~ treat*(a + {term})", d.rename(columns={"g": "blood group"}),
                   treatment="treat")
    assert r1.modifier_kinds["blood group"] == "categorical"
    np.testing.assert_allclose(r1.subgroups.estimate, r0.subgroups.estimate, rtol=1e-10)
    np.testing.assert_allclose(r1.subgroups.std_error, r0.subgroups.std_error, rtol=1e-10)


def test_long_formula_values_are_truncated_in_messages():
    long = "y ~ treat*a + " + " + ".join(f"x{i}" for i in range(500))
    with pytest.raises(FormulaError) as info:
        hr.fit(long, trial(), treatment="treat")
    assert len(str(info.value)) < 1500


# ------------------------------------------------------------------ item 1: treated/control
@pytest.mark.parametrize("old, new, message", [
    ("treated: 1", "treated: 2", "treatment.treated is 2, but column 'fin' has no such value; "
                                 "its values are: 0, 1"),
    ("control: 0", "control: 7", "treatment.control is 7, but column 'fin' has no such value"),
    ("treated: 1", 'treated: "1"', "the plan '1' as text"),
    ("control: 0", "control: 1", "treated and control are both 1"),
])
def test_treatment_codes_absent_from_data_are_refused(plan_file, csv_file, old, new, message):
    edit(plan_file, old, new)
    cli_error("check", plan_file, "--data", csv_file, match=message)
    frame = pd.read_csv(csv_file)
    with pytest.raises(PlanError, match="treated|control"):
        from hte_report.analysis import fit_plan

        fit_plan(plan_file, frame)


def test_render_refuses_absent_treated_code(plan_file, csv_file, tmp_path):
    edit(plan_file, "treated: 1", "treated: 2")
    cli_error("render", plan_file, "--data", csv_file, "--to", "html", "--out", tmp_path / "o",
              "--engine", "builtin", match="treatment.treated is 2")
    assert not (tmp_path / "o" / "report.html").exists()


def test_text_coded_arms_and_yaml_booleans(plan_file, tmp_path):
    d = pd.read_csv(EXAMPLE / "rossi.csv")
    d["fin"] = d.fin.map({0: "no", 1: "yes"})
    d.to_csv(tmp_path / "d.csv", index=False)
    cli_error("check", plan_file, "--data", tmp_path / "d.csv",
              match="its values are: 'no', 'yes'")
    edit(plan_file, "treated: 1", "treated: yes")
    edit(plan_file, "control: 0", "control: no")
    cli_error("check", plan_file, "--data", tmp_path / "d.csv", match="put the code in quotes")
    edit(plan_file, "treated: yes", 'treated: "yes"')
    edit(plan_file, "control: no", 'control: "no"')
    assert cli("check", plan_file, "--data", tmp_path / "d.csv").exit_code == 0


def test_third_arm_in_data_is_refused(plan_file, tmp_path):
    d = pd.read_csv(EXAMPLE / "rossi.csv")
    d.loc[:9, "fin"] = 2
    d.to_csv(tmp_path / "d.csv", index=False)
    cli_error("check", plan_file, "--data", tmp_path / "d.csv",
              match="has values other than treatment.treated (1) and treatment.control (0): [2]")


# ------------------------------------------------------------------ item 3: --posthoc
@pytest.mark.parametrize("posthoc, message", [
    ("<script>alert(1)</script>", "post hoc modifier '<script>alert(1)</script>' is not a "
                                  "column of the data"),
    ("fin", "is the treatment"),
    ("x" * 5000, "is not a column"),
])
def test_posthoc_names_that_are_not_columns(csv_file, tmp_path, posthoc, message):
    r = cli_error("render", EXAMPLE / "plan.yaml", "--data", csv_file, "--to", "html",
                  "--out", tmp_path / "o", "--engine", "builtin", "--posthoc", posthoc,
                  match=message)
    assert len(r.output) < 2000


def test_posthoc_column_with_odd_name_is_analysed(tmp_path):
    from hte_report.analysis import fit_plan

    d = pd.read_csv(EXAMPLE / "rossi.csv")
    d["z"] = np.random.default_rng(3).integers(0, 2, len(d))
    d["<b>z</b> x"] = d.z
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = fit_plan(EXAMPLE / "plan.yaml", d, posthoc=["<b>z</b> x", "z"])
    assert a.posthoc[0].posthoc == ("<b>z</b> x",)
    np.testing.assert_allclose(a.posthoc[0].subgroups.estimate.dropna(),
                               a.posthoc[1].subgroups.estimate.dropna(), rtol=1e-10)


# ------------------------------------------------------------------ item 4: YAML
BOMB = "a: &a [" + ", ".join(['"lol"'] * 9) + "]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))


def test_yaml_alias_bomb_is_refused_quickly(tmp_path, csv_file):
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    assert len(BOMB) < 1100
    t0 = time.perf_counter()
    r = cli_error("check", path, "--data", csv_file, match="YAML anchors")
    assert "not allowed in a plan; write the value out in full" in r.output
    assert len(r.output) < 500 and time.perf_counter() - t0 < 10


def test_alias_bomb_in_a_plan_value_is_refused(plan_file):
    nested = "[&a [" + ", ".join(['"lol"'] * 9) + "], " + ", ".join(
        f"&{c} [{', '.join([f'*{p}'] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi")) + "]"
    edit(plan_file, "seed: 19800101", "seed: " + nested)  # the old code repr'd it: gigabytes
    t0 = time.perf_counter()
    with pytest.raises(PlanError, match=r"line 33\): YAML anchors") as info:
        load_plan(plan_file)
    assert len(str(info.value)) < 400 and time.perf_counter() - t0 < 5


def test_alias_inside_a_valid_plan_is_refused(plan_file):
    edit(plan_file, 'title: "', 'title: &t "')
    edit(plan_file, "seed: 19800101", "seed: [*t, *t]")
    with pytest.raises(PlanError, match=r"line 5\): YAML anchors"):
        load_plan(plan_file)


def test_duplicate_key_is_refused_with_key_and_lines(plan_file):
    edit(plan_file, "alpha: 0.05", "alpha: 0.05\nalpha: 0.5")
    with pytest.raises(PlanError, match=r"key 'alpha' appears twice \(lines 31 and 32\)"):
        load_plan(plan_file)


def test_nested_duplicate_key_names_its_path(plan_file):
    edit(plan_file, "  family: binary", "  family: binary\n  family: count")
    with pytest.raises(PlanError, match=r"key 'outcome.family' appears twice"):
        load_plan(plan_file)


def test_long_values_are_truncated_in_messages(plan_file):
    edit(plan_file, "seed: 19800101", "seed: " + "x" * 100_000)
    with pytest.raises(PlanError) as info:
        load_plan(plan_file)
    assert "expected an integer" in str(info.value) and len(str(info.value)) < 400


# ------------------------------------------------------------------ item 5: files
def test_non_utf8_csv_names_file_and_suggests_encoding(plan_file, tmp_path):
    text = (EXAMPLE / "rossi.csv").read_text().replace("week", "wéek")
    (tmp_path / "l1.csv").write_bytes(text.encode("latin-1"))
    cli_error("check", plan_file, "--data", tmp_path / "l1.csv",
              match="data file '" + str(tmp_path / "l1.csv") + "' is not valid utf-8 text: "
                    "byte 0xe9 at line 1")
    r = cli("check", plan_file, "--data", tmp_path / "l1.csv", "--encoding", "latin-1")
    assert r.exit_code == 0, r.output
    cli_error("check", plan_file, "--data", tmp_path / "l1.csv", "--encoding", "klingon",
              match="unknown encoding 'klingon'")


def test_render_with_encoding(plan_file, tmp_path):
    text = (EXAMPLE / "rossi.csv").read_text().replace("week", "wéek")
    (tmp_path / "l1.csv").write_bytes(text.encode("latin-1"))
    cli_error("render", plan_file, "--data", tmp_path / "l1.csv", "--to", "html", "--out",
              tmp_path / "o", "--engine", "builtin", match="--encoding")
    r = cli("render", plan_file, "--data", tmp_path / "l1.csv", "--to", "html", "--out",
            tmp_path / "o", "--engine", "builtin", "--encoding", "latin-1")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "o" / "report.html").exists()


def test_non_utf8_plan(plan_file, csv_file):
    text = plan_file.read_text().replace("Baltimore Life", "Baltimöre Life")
    plan_file.write_bytes(text.encode("latin-1"))
    cli_error("check", plan_file, "--data", csv_file,
              match="is not valid utf-8 text: byte 0xf6 at line 8 cannot be decoded. Save it "
                    "as UTF-8, or name its encoding with --plan-encoding")
    assert cli("check", plan_file, "--data", csv_file, "--plan-encoding",
               "latin-1").exit_code == 0


def test_directories_and_blocked_out(plan_file, csv_file, tmp_path):
    (tmp_path / "dir.csv").mkdir()
    cli_error("check", plan_file, "--data", tmp_path / "dir.csv", match="is a directory")
    cli_error("check", tmp_path / "dir.csv", "--data", csv_file,
              match="plan file '" + str(tmp_path / "dir.csv") + "' is a directory")
    (tmp_path / "blocker").write_text("x")
    cli_error("render", plan_file, "--data", csv_file, "--to", "html", "--engine", "builtin",
              "--out", tmp_path / "blocker", match="is an existing file; give a directory")
    cli_error("render", plan_file, "--data", csv_file, "--to", "html", "--engine", "builtin",
              "--out", tmp_path / "blocker" / "sub", match="is a file")


# ------------------------------------------------------------------ item 6: benefit --result
def test_benefit_result_that_is_not_a_result(csv_file, tmp_path):
    how = "hr.fit(...).to_json('result.json')"
    r = cli_error("benefit", "0.1", "--result", csv_file, match="is not a result JSON")
    assert how in r.output
    (tmp_path / "r.json").write_text('{"a": 1}')
    cli_error("benefit", "0.1", "--result", tmp_path / "r.json",
              match="is JSON but not an hte_report result")
    cli_error("benefit", "0.1", "--result", tmp_path, match="is a directory")
    cli_error("benefit", "0.1", "--result", tmp_path / "none.json", match="does not exist")
    cli_error("benefit", "abc", "--rr", "0.9", match="P0 (baseline risks) must be numbers")


def test_benefit_result_round_trip(tmp_path):
    res = quiet_fit("arrest ~ fin * C(wexp)", pd.read_csv(EXAMPLE / "rossi.csv"),
                    treatment="fin")
    res.to_json(str(tmp_path / "res.json"))
    r = cli("benefit", "0.1", "--result", tmp_path / "res.json")
    assert r.exit_code == 0 and "ARR" in r.output, r.output


# ------------------------------------------------------------------ item 7: locks
def test_check_on_modified_plan_fails_unless_allowed(plan_file, csv_file):
    assert cli("lock", plan_file, "--statement", "before unblinding").exit_code == 0
    r = cli("check", plan_file, "--data", csv_file)
    assert r.exit_code == 0 and "lock status matches" in r.output
    edit(plan_file, "alpha: 0.05", "alpha: 0.06")
    cli_error("check", plan_file, "--data", csv_file,
              match="the plan was modified after it was locked")
    r = cli("check", plan_file, "--data", csv_file, "--allow-modified")
    assert r.exit_code == 0 and "Accepted as a deviation" in r.output
    assert "lists no 'deviations'" in r.output and "lock status modified" in r.output


@pytest.mark.parametrize("field, value", [("locked_at", "2001-01-01T00:00:00Z"),
                                          ("statement", "locked before the trial began"),
                                          ("plan_sha256", "0" * 64)])
def test_edited_lock_record_is_detected(plan_file, csv_file, field, value):
    lock_plan(plan_file, statement="before unblinding")
    lock = plan_file.with_name("plan.yaml.lock.json")
    d = json.loads(lock.read_text())
    d[field] = value
    lock.write_text(json.dumps(d))
    plan = load_plan(plan_file)
    assert plan.lock_status() == "modified"
    expect = ("was edited after it was written" if field != "plan_sha256"
              else "was edited after it was written")
    cli_error("check", plan_file, "--data", csv_file, match=expect)
    with pytest.raises(PlanError, match="was edited after it was written"):
        lock_plan(plan_file)
    lock_plan(plan_file, force=True)
    assert load_plan(plan_file).lock_status() == "matches"


def test_legacy_lock_is_read_with_a_note(plan_file, csv_file):
    h = load_plan(plan_file).sha256
    plan_file.with_name("plan.yaml.lock.json").write_text(json.dumps(
        {"plan_sha256": h, "locked_at": "2024-01-01T00:00:00Z", "statement": "old",
         "schema": "hte-plan/1"}))
    plan = load_plan(plan_file)
    assert plan.lock_status() == "matches" and plan.lock.record_status == "legacy"
    r = cli("check", plan_file, "--data", csv_file)
    assert r.exit_code == 0 and "note: the lock file has no record hash" in r.output


@pytest.mark.parametrize("content, message", [
    ("garbage", "not JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"plan_sha256": "abc", "locked_at": "x"}', "not a SHA-256 hex digest"),
    ('{"locked_at": "x"}', "it has no 'plan_sha256'"),
    ('{"plan_sha256": "' + "a" * 64 + '", "locked_at": 5}', "'locked_at' should be str"),
])
def test_broken_lock_files(plan_file, content, message):
    plan_file.with_name("plan.yaml.lock.json").write_text(content)
    with pytest.raises(PlanError, match=message):
        load_plan(plan_file)


def test_example_lock_is_sealed_and_matches():
    plan = load_plan(EXAMPLE / "plan.yaml")
    assert plan.lock_status() == "matches"
    assert plan.lock.record_status == "verified" and plan.lock.lock_format in (2, 3)
    # re-locked with the deviation recorded in the plan (never backdated)
    assert plan.lock.locked_at.startswith("2026-11-30T") and plan.raw["deviations"]


# ------------------------------------------------------------------ more hostile inputs
@pytest.mark.parametrize("text, message", [
    ("", "the plan must be a YAML mapping of keys (schema, title, trial, ...), but the file is "
         "empty"),
    ("- a\n- b\n", "but the file is a YAML list"),
    ("just text\n", "but the file is a YAML text"),
    ("a: [" * 5000 + "]" * 5000, "nested too deeply"),
    ("a: 1\n---\nb: 2\n", "not valid YAML"),
    ("seed: !!python/object:os.system 'true'\n", "could not determine a constructor"),
])
def test_malformed_plan_files(tmp_path, csv_file, text, message):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    r = cli_error("check", path, "--data", csv_file, match=message)
    assert "<unicode string>" not in r.output


@pytest.mark.parametrize("old, new, message", [
    ("alpha: 0.05", "alpha: 7", "'alpha' (line 31): must be between 0 and 1"),
    ("alpha: 0.05", "alpha: .nan", "'alpha' (line 31): expected a finite number, got nan"),
    ("confidence_level: 0.95", "confidence_level: .inf", "expected a finite number"),
    ("confidence_level: 0.95", "confidence_level: [0.95]", "expected a number, got list"),
    ("seed: 19800101", "seed: -1", "'seed' (line 33): must be an integer from 0"),
    ("seed: 19800101", "seed: 1" + "0" * 5000, "not valid YAML"),
    ("seed: 19800101", "seed: 2020-01-01", "expected an integer, got date"),
    ('title: "Financial', 'title: 12 #', "'title' (line 5): expected a string, got integer 12 "
                                          "(put the text in quotes)"),
    ('title: "Financial aid and re-arrest after release from prison: heterogeneity of '
     'treatment effect"', 'title: "  "', "'title' (line 5): must not be empty"),
    ('title: "Financial aid', 'title: "\\0', "control character U+0000"),
    ("crossfit_folds: 5", "crossfit_folds: 100000000000000000000",
     "'risk_based.crossfit_folds' (line 81): must be an integer from 2 to 100"),
    ("crossfit_folds: 5", "crossfit_folds: 5\n  groups: 1000000", "from 2 to 100"),
    ("crossfit_folds: 5", "crossfit_folds: 5\n  cutpoints: [0.5, 0.2]", "strictly increasing"),
    ("  higher_is_better: false", "  higher_is_better: false\n  exposure: week",
     "applies to family 'count' only"),
    ('levels: {0: "No", 1: "Yes"}', "levels: {0: No, 1: Yes}",
     "read as true/false by YAML: put the text in quotes"),
    ("deviations: []", "deviations: []\ncredibility:\n  - modifier: nosuch\n    scale: absolute\n"
                       "    rating: high\n    rationale: x", "'nosuch' is not a pre-specified"),
    ("    analysis: continuous\n    direction:\n      statement: \"Larger",
     "    analysis: continuous\n    direction:\n      when: \"0\"\n      statement: \"Larger",
     "duplicate"),
    ("      when: \"0\"", "      when: higher", "name a level of 'wexp'"),
    ("variable: fin", "variable: [fin]", "'treatment.variable' (line 21): expected a string, "
                                          "got list"),
    ("treated: 1", "treated: [1]", "expected a single value"),
    ("treated: 1", "treated: .nan", "expected a value the data can hold"),
    ("models: [ols, modified-poisson, logit]", "models: ols", "expected a list, got text"),
    ("schema: hte-plan/1", "schema: hte-plan/2", "'hte-plan/2' is not one of"),
    ("alpha: 0.05", "1: 0.05", "unknown key '1'"),
    ("alpha: 0.05", "? [a, b]\n: 0.05", "unhashable key"),
    ("  variable: arrest", "\tvariable: arrest", "indent with spaces, not tabs"),
    ("formula: \"arrest ~", "formula: \"", "has no '~'"),
])
def test_bad_plan_values(plan_file, old, new, message):
    if message == "duplicate":  # direction.when given twice
        edit(plan_file, old, new)
        with pytest.raises(PlanError, match="'modifiers.0.direction.when' appears twice|"
                                            "when' appears twice"):
            load_plan(plan_file)
        return
    edit(plan_file, old, new)
    with pytest.raises((PlanError, FormulaError)) as info:
        load_plan(plan_file)
    assert message in str(info.value)
    assert len(str(info.value)) < 1500


def test_empty_modifier_list(plan_file):
    text = plan_file.read_text()
    plan_file.write_text(text[:text.index("modifiers:")] + "modifiers: []\n")
    with pytest.raises(PlanError, match="'modifiers' \\(line 34\\): lists no modifier"):
        load_plan(plan_file)


def test_modifier_that_is_a_string(plan_file):
    text = plan_file.read_text()
    plan_file.write_text(text[:text.index("modifiers:")] + "modifiers: [age]\n")
    with pytest.raises(PlanError, match=r"'modifiers\[0\]' \(line 34\): expected a mapping of "
                                        "keys .*, got text 'age'"):
        load_plan(plan_file)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.iloc[:0], "the data has no rows"),
    (lambda d: d.assign(wexp=d.wexp + d.prio), "has type binary, but the column has"),
    (lambda d: d.assign(age=d.age.astype(str) + " years"), "has type continuous, but the "
                                                              "column holds"),
    (lambda d: d.rename(columns={"prio": "age"}), "duplicated column names ['age']"),
    (lambda d: d.rename(columns={"paro": "parole"}), "column 'paro' (term 'paro') is not in "
                                                      "the data"),
    (lambda d: d.assign(arrest=d.arrest.map({0: "no", 1: "yes"})),
     "outcome.variable 'arrest' holds"),
    (lambda d: d.assign(arrest=d.arrest * 2), "must be 0/1 for family binary; it also has [2.0]"),
])
def test_data_that_does_not_fit_the_plan(tmp_path, mutate, message):
    d = mutate(pd.read_csv(EXAMPLE / "rossi.csv"))
    plan = load_plan(EXAMPLE / "plan.yaml")
    with pytest.raises((PlanError, FormulaError)) as info:
        check_plan_against_data(plan, d)
    assert message in str(info.value)


def test_risk_formula_columns_are_checked(plan_file, csv_file):
    edit(plan_file, 'formula: "arrest ~ age + prio', 'formula: "arrest ~ agex + prio')
    cli_error("check", plan_file, "--data", csv_file,
              match="risk_based.formula: column 'agex' (term 'agex') is not in the data. "
                    "Did you mean ['age']?")


@pytest.mark.parametrize("name, content, message", [
    ("empty.csv", "", "is empty: no header line"),
    ("data.xlsx", "x", "Export the sheet to CSV first"),
    ("data.json", "{}", "cannot read 'data.json': use a .csv"),
    ("none.csv", None, "does not exist"),
])
def test_bad_data_files(plan_file, tmp_path, name, content, message):
    if content is not None:
        (tmp_path / name).write_text(content)
    cli_error("check", plan_file, "--data", tmp_path / name, match=message)


def test_unicode_column_names_work(plan_file, tmp_path):
    d = pd.read_csv(EXAMPLE / "rossi.csv").rename(columns={"age": "âge"})
    d.to_csv(tmp_path / "u.csv", index=False)
    text = plan_file.read_text().replace("age", "âge")
    plan_file.write_text(text)
    r = cli("check", plan_file, "--data", tmp_path / "u.csv")
    assert r.exit_code == 0, r.output
    cli_error("check", EXAMPLE / "plan.yaml", "--data", tmp_path / "u.csv",
              match="names column 'age', which is not in the data. Did you mean ['âge']?")


def test_cli_bad_options(plan_file, csv_file, tmp_path):
    cli_error("render", plan_file, "--data", csv_file, "--to", ",", "--out", tmp_path / "o",
              match="--to names no format")
    cli_error("render", plan_file, "--data", csv_file, "--to", "docx", "--out", tmp_path / "o",
              match="to='docx' is not allowed")
    cli_error("render", plan_file, "--data", csv_file, "--engine", "word", "--out",
              tmp_path / "o", match="engine='word' is not allowed")
    cli_error("benefit", "0.1", "--rr", "0.9", "--ci", "a,b", match="--ci must be numbers")
    cli_error("benefit", "0.1", "--rr", "0.9", "--ci", "1,2,3", match="--ci must be 'low,high'")
    cli_error("benefit", ",", "--rr", "0.9", match="at least one baseline risk")
    cli_error("lock", tmp_path / "none.yaml", match="does not exist")


def test_internal_errors_are_one_line_not_a_traceback(monkeypatch, plan_file, csv_file):
    import hte_report.spec.plan_data as plan_module

    def boom(*a, **k):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(plan_module, "check_plan_against_data", boom)
    r = cli("check", plan_file, "--data", csv_file)
    assert r.exit_code == 2
    assert "error: internal error (ZeroDivisionError: division by zero). This is a bug" in r.output


@pytest.mark.parametrize("old, new, message", [
    ("- variable: mar", "- variable: fin", "'modifiers[3].variable' (line 71): 'fin' is the "
                                           "treatment; it cannot also be an effect modifier"),
    ("models: [ols, modified-poisson, logit]", "models: [ols]\n  cluster: fin",
     "'model.cluster' (line 29): 'fin' is the treatment"),
    ("models: [ols, modified-poisson, logit]", "models: [poisson]",
     "model 'poisson' does not apply to a binary outcome"),
    ('title: "Financial', 'title: "' + "x" * 1000 + " Financial",
     "'title' (line 5): is 1,089 characters long; at most 300 are allowed"),
    ('levels: {0: "No", 1: "Yes"}', 'levels: {0: "' + "n" * 400 + '", 1: "Yes"}',
     "'modifiers[2].levels.0' (line 64): is 400 characters long"),
])
def test_more_bad_plan_values(plan_file, old, new, message):
    edit(plan_file, old, new)
    with pytest.raises(PlanError) as info:
        load_plan(plan_file)
    assert message in str(info.value)


@pytest.mark.parametrize("old, new, message", [
    ("method: pooled", "method: external\n  risk_column: age",
     "risk_based.risk_column 'age' must hold predicted risks strictly between 0 and 1; 432 "
     "row(s) do not"),
    ('formula: "arrest ~ age + prio', 'formula: "week ~ age + prio',
     "risk_based.formula: its outcome 'week' differs from outcome.variable 'arrest'"),
])
def test_plan_values_checked_against_data(plan_file, csv_file, old, new, message):
    edit(plan_file, old, new)
    cli_error("check", plan_file, "--data", csv_file, match=message)


def test_level_labels_that_match_no_value_are_a_warning(plan_file, csv_file):
    edit(plan_file, 'levels: {0: "No", 1: "Yes"}', 'levels: {5: "No", 7: "Yes"}')
    r = cli("check", plan_file, "--data", csv_file)
    assert r.exit_code == 0
    assert ("warning: modifiers[2].levels labels ['5', '7'], which are not values of 'wexp' in "
            "the data") in r.output


def test_unreadable_inputs_do_not_hang(csv_file, tmp_path):
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    cli_error("check", "/dev/zero", "--data", csv_file, match="is larger than 1,000,000 bytes")
    (tmp_path / "rnd.csv").write_bytes(bytes(range(128, 256)) * 20)
    cli_error("check", EXAMPLE / "plan.yaml", "--data", tmp_path / "rnd.csv",
              match="is not valid utf-8 text")
    (tmp_path / "rag.csv").write_text('a,b\n1,2,3,4\n"unterminated\n')
    cli_error("check", EXAMPLE / "plan.yaml", "--data", tmp_path / "rag.csv",
              match="cannot read")
