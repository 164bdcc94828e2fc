"""The methods section lists the coefficient table of each primary model (issue 16)."""

import warnings

import pytest

import hte_report as hr
from hte_report.datasets import load_rossi
from hte_report.report.methods import _coefficient_tables


@pytest.fixture(scope="module")
def res():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hr.fit("arrest ~ fin * (age + C(wexp))", load_rossi(), treatment="fin")


def test_one_table_per_primary_model_grouped_by_analysis(res):
    tables = _coefficient_tables(res)
    models = [m for _, m in res.primary.values()]
    assert [t.caption for t in tables] == [f"Coefficients of the primary model {m}"
                                           for m in models]
    for t, model in zip(tables, models):
        coef = res.coefficients[res.coefficients.model == model]
        assert len(t.frame) == len(coef) and t.group == "Analysis"
        assert list(t.frame.Term) == list(coef.term)
        assert set(t.frame.Analysis) == {"overall", "age's model", "wexp's model"}
    # numbers as in the tidy frame (3 significant digits)
    first = res.coefficients[res.coefficients.model == models[0]].iloc[1]
    assert tables[0].frame.Estimate.iloc[1] == f"{first.estimate:.3g}".replace("-", "\u2212")


def test_no_tables_without_coefficients(res):
    from dataclasses import replace

    import pandas as pd

    assert _coefficient_tables(replace(res, coefficients=pd.DataFrame())) == []
