"""at= for categorical modifiers is honoured (or refused clearly), and level labels of numeric
code columns read as floats (missing values) are the data's values, "1" not "1.0"."""

import warnings

import numpy as np
import pandas as pd
import pytest

import hte_report as hr
from hte_report.datasets import load_rossi
from hte_report.spec.options import OptionError

F = "arrest ~ fin * C(grp) + age"


def _data(float_codes: bool):
    d = load_rossi()
    d["grp"] = (d.prio.clip(upper=2) + 1).astype(float if float_codes else int)  # 1, 2, 3
    if float_codes:
        d.loc[[3, 10], "grp"] = np.nan  # a numeric code column with missing values: floats
    else:
        d = d.drop(index=[3, 10])
    return d


def _fit(d, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hr.fit(F, d, treatment="fin", models=kw.pop("models", ["logit"]), **kw)


def test_float_codes_with_missing_values_are_labelled_as_the_data():
    a, b = _fit(_data(True)), _fit(_data(False))
    assert list(a.subgroups[a.subgroups.modifier == "grp"].level.unique()) == ["1", "2", "3"]
    cols = ["level", "scale", "model", "method", "estimate", "std_error", "p_value", "n"]
    pd.testing.assert_frame_equal(a.subgroups[cols].reset_index(drop=True),
                                  b.subgroups[cols].reset_index(drop=True))
    lab = a.with_plan({}, (), {"grp": {"1": "none", "2": "one", "3": "two or more"}})
    assert lab.level_label("grp", "1") == "none (1)"


def test_at_restricts_the_conditional_effects_of_a_categorical_modifier():
    full = _fit(_data(True))
    for at in ([1, 3], ["1", "3"], [1.0, 3.0], [3, 1]):
        res = _fit(_data(True), at={"grp": at})
        cond = res.subgroups[res.subgroups.method == "conditional"]
        assert list(cond[cond.scale == "OR"].level) == ["1", "3"]
        ref = full.subgroups[(full.subgroups.method == "conditional")
                             & full.subgroups.level.isin(["1", "3"])]
        np.testing.assert_allclose(cond.estimate.to_numpy(), ref.estimate.to_numpy(),
                                   rtol=1e-12)
        # standardized subgroup effects describe every subgroup, whatever at= says
        std = res.subgroups[res.subgroups.method == "standardized"]
        assert set(std.level) == {"1", "2", "3"}


@pytest.mark.parametrize("bad", [[4], ["x"], [], "1.5"])
def test_at_with_a_value_that_is_not_a_level_is_refused(bad):
    with pytest.raises(OptionError, match="at\\['grp'\\]"):
        _fit(_data(False), at={"grp": bad})


def test_at_for_a_binary_modifier_of_text_labels():
    d = load_rossi().assign(sex=lambda x: np.where(x.mar == 1, "married", "single"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = hr.fit("arrest ~ fin * C(sex)", d, treatment="fin", models=["logit"],
                     at={"sex": "single"})
    cond = res.subgroups[res.subgroups.method == "conditional"]
    assert list(cond[cond.scale == "OR"].level) == ["single"]
